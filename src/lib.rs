//! Strom: a Kafka-protocol-compatible message broker.
//!
//! The binary (`main.rs`) parses the command line; everything else lives here so the
//! integration tests can start a broker in-process on a free port.

pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod error;
pub mod group;
pub mod handler;
pub mod metrics;
pub mod server;
pub mod topic_config;

use std::sync::Arc;

use tokio::net::TcpListener;

/// A broker bound to its listener, ready to serve.
pub struct Broker {
    /// The topics and partitions.
    pub cluster: Arc<cluster::Cluster>,
    listener: TcpListener,
    http: Option<TcpListener>,
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
        let http =
            match &config.http_listen {
                Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!("binding the HTTP admin listener {addr} (strom.http.listener): {e}")
                })?),
                None => None,
            };
        let cluster = Arc::new(cluster::Cluster::open(config)?);
        group::start(&cluster);
        tokio::spawn(cluster::run_retention(Arc::downgrade(&cluster)));
        tokio::spawn(cluster::run_flusher(Arc::downgrade(&cluster)));
        tokio::spawn(cluster::run_cleaner(Arc::downgrade(&cluster)));
        Ok(Broker { cluster, listener, http })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The HTTP admin endpoint's address, when enabled.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then closes every log cleanly.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let http = self.http.map(|l| tokio::spawn(metrics::serve_http(l, self.cluster.clone())));
        let result = server::run(self.listener, self.cluster, shutdown).await;
        if let Some(h) = http {
            h.abort();
        }
        result
    }
}
