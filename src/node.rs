//! One broker's state as the API handlers see it: the metadata (topics, partitions,
//! configs), the group coordinator and the request metrics. Handlers take a `&Node`;
//! the layers below (coordinator, metadata, partitions) never see one, so imports run
//! one way: net → api → node → coordinator → metadata → partition → storage.

use std::sync::Arc;

use crate::config::Config;
use crate::coordinator::group::{self, Coordinator};
use crate::metadata::{self, Metadata};
use crate::metrics::Metrics;

/// The broker's state, shared by every connection.
pub struct Node {
    /// Topics, partitions, configs, producer ids.
    pub meta: Arc<Metadata>,
    /// The group coordinator.
    pub groups: Arc<Coordinator>,
    /// Request-path metrics (scrape-time gauges are read from `meta` and `groups`).
    pub metrics: Metrics,
    /// How many fetches are parked waiting for data (a gauge tests and metrics watch).
    pub parked_fetches: tokio::sync::watch::Sender<usize>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("cluster_id", &self.meta.cluster_id).finish_non_exhaustive()
    }
}

impl Node {
    /// Opens the data directory (metadata and every partition's log).
    pub fn open(config: Config) -> anyhow::Result<Node> {
        let groups = Arc::new(Coordinator::new(config.group));
        let meta = Arc::new(Metadata::open(config)?);
        Ok(Node { meta, groups, metrics: Metrics::default(), parked_fetches: tokio::sync::watch::Sender::new(0) })
    }

    /// Starts the background work: loading `__consumer_offsets` and the group timers,
    /// retention, the flusher and the cleaner. Each task ends once the node is dropped.
    pub fn start(&self) {
        group::start(&self.groups, &self.meta);
        tokio::spawn(metadata::run_retention(Arc::downgrade(&self.meta)));
        tokio::spawn(metadata::run_flusher(Arc::downgrade(&self.meta)));
        tokio::spawn(metadata::run_cleaner(Arc::downgrade(&self.meta)));
    }
}
