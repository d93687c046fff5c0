//! Strom: a Kafka-protocol-compatible message broker.
//!
//! The binary (`main.rs`) parses the command line; everything else lives here so the
//! integration tests can start a broker in-process on a free port.

// Layers, top to bottom; each module imports only from those below it.
pub mod api; // one module per Kafka API, the dispatch table
pub mod config; // typed configuration (broker, topic, group settings)
pub mod coordinator; // group coordinator over __consumer_offsets
pub mod error; // Kafka's error codes
pub mod http; // admin endpoint: /metrics, /livez, /readyz
pub mod metadata; // topics, ids, configs, producer ids, background log tasks
pub mod metrics; // counters and the exposition format
pub mod net; // listener, connections, framing, limits
pub mod node; // the state handlers see: metadata + coordinator + metrics
pub mod partition; // one partition: log, high watermark, fsync bookkeeping
pub mod registry; // schema registry over _schemas, its REST API, produce-side validation (issue 18)
pub mod replication; // follower fetchers and ISR proposals (ADR 0010)
pub mod security; // SASL authentication on SASL listeners (issue 16)
pub mod share; // share groups (KIP-932, issue 19): the share-partition state machine so far
pub mod tls; // TLS on SSL and SASL_SSL listeners (issue 16)

// Client-side tools built on strom-client.
pub mod bench;
pub mod cli;

use std::sync::Arc;

use tokio::net::TcpListener;

/// A broker bound to its listeners, ready to serve.
pub struct Broker {
    /// The broker's state (metadata, coordinator, metrics).
    pub node: Arc<node::Node>,
    /// One per client listener, in `config.listeners` order.
    listeners: Vec<TcpListener>,
    /// The TLS configuration of each listener (`None`: plaintext), same order.
    tls: Vec<Option<Arc<tls::TlsListener>>>,
    http: Option<TcpListener>,
    registry: Option<TcpListener>,
}

impl Broker {
    /// Opens the data directory and binds the listeners.
    pub async fn bind(mut config: config::Config) -> anyhow::Result<Broker> {
        for l in config.listeners.iter().filter(|l| l.sasl.as_ref().is_some_and(|s| s.oauth.is_some())) {
            tracing::warn!(
                listener = %l.name,
                "OAUTHBEARER validates unsecured JWTs (Kafka's default handler): anyone can mint a token for any \
                 principal; for development only"
            );
        }
        // Keys and certificates first: a TLS listener that cannot serve stops the start.
        let tls = config
            .listeners
            .iter()
            .map(|l| l.tls.as_ref().map(|s| tls::TlsListener::load(&l.name, s).map(Arc::new)).transpose())
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for l in &mut config.listeners {
            let bound = TcpListener::bind(&l.bind)
                .await
                .map_err(|e| anyhow::anyhow!("binding listener {} on {}: {e}", l.name, l.bind))?;
            if l.advertised_port == 0 {
                // Listening on port 0: advertise the port the OS picked.
                l.advertised_port = bound.local_addr()?.port();
            }
            listeners.push(bound);
        }
        let http =
            match &config.http_listen {
                Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!("binding the HTTP admin listener {addr} (strom.http.listener): {e}")
                })?),
                None => None,
            };
        let registry = match &config.registry_listen {
            Some((addr, explicit)) => match TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) if !explicit => {
                    tracing::warn!(
                        registry_listener = %addr,
                        error = %e,
                        "schema registry disabled: its default listener cannot bind (set strom.schema.registry.listener)"
                    );
                    None
                }
                Err(e) => {
                    anyhow::bail!("binding the schema registry listener {addr} (strom.schema.registry.listener): {e}")
                }
            },
            None => None,
        };
        if let Some(l) = &registry {
            let addr = l.local_addr()?;
            // A wildcard bind is advertised under the inter-broker listener's host.
            let host = if addr.ip().is_unspecified() {
                let inter = config.listeners.get(config.inter_broker_listener).or(config.listeners.first());
                inter.map_or_else(|| "localhost".to_string(), |l| l.advertised_host.clone())
            } else {
                addr.ip().to_string()
            };
            config.registry_advertised = Some((host, addr.port()));
        }
        let node = Arc::new(if config.quorum.is_some() {
            node::Node::open_cluster(config).await?
        } else {
            node::Node::open(config)?
        });
        node.start();
        Ok(Broker { node, listeners, tls, http, registry })
    }

    /// The address the first listener actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        match self.listeners.first() {
            Some(l) => l.local_addr(),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no listener")),
        }
    }

    /// Every listener's bound address, in `config.listeners` order.
    pub fn local_addrs(&self) -> std::io::Result<Vec<std::net::SocketAddr>> {
        self.listeners.iter().map(TcpListener::local_addr).collect()
    }

    /// The HTTP admin endpoint's address, when enabled.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The schema registry's address, when enabled.
    pub fn registry_addr(&self) -> Option<std::net::SocketAddr> {
        self.registry.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then closes every log cleanly.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
        let http = self.http.map(|l| tokio::spawn(http::serve_http(l, self.node.clone())));
        let limits = self.node.meta.config.registry_limits;
        let registry =
            self.registry.map(|l| tokio::spawn(registry::rest::serve(l, self.node.registry.clone(), limits)));
        let listeners = self.listeners.into_iter().zip(self.tls).collect();
        let result = net::run(listeners, self.node, shutdown).await;
        for h in [http, registry].into_iter().flatten() {
            h.abort();
        }
        result
    }
}

/// Helpers shared by unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    /// A tiny deterministic generator (xorshift64), so the randomized tests need no crates
    /// and a failing seed replays. The seed must not be 0.
    pub(crate) struct Rng(pub(crate) u64);

    impl Rng {
        /// The next value below `n` (`n` > 0).
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }
}
