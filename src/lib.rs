//! Strom: a Kafka-protocol-compatible message broker.
//!
//! The binary (`main.rs`) parses the command line; everything else lives here so the
//! integration tests can start a broker in-process on a free port.

pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod group;
pub mod handler;
pub mod server;
pub mod topic_config;

use std::sync::Arc;

use tokio::net::TcpListener;

/// A broker bound to its listener, ready to serve.
pub struct Broker {
    /// The topics and partitions.
    pub cluster: Arc<cluster::Cluster>,
    listener: TcpListener,
}

impl Broker {
    /// Opens the data directory and binds the listener.
    pub async fn bind(mut config: config::Config) -> anyhow::Result<Broker> {
        let listener =
            TcpListener::bind(&config.listen).await.map_err(|e| anyhow::anyhow!("binding {}: {e}", config.listen))?;
        if config.advertised_port == 0 {
            // Listening on port 0: advertise the port the OS picked.
            config.advertised_port = listener.local_addr()?.port();
        }
        let cluster = Arc::new(cluster::Cluster::open(config)?);
        group::start(&cluster);
        Ok(Broker { cluster, listener })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then closes every log cleanly.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        server::run(self.listener, self.cluster, shutdown).await
    }
}
