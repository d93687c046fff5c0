//! One broker's state as the API handlers see it: the metadata (topics, partitions,
//! configs), the group coordinator and the request metrics. Handlers take a `&Node`;
//! the layers below (coordinator, metadata, partitions) never see one, so imports run
//! one way: net → api → node → coordinator → metadata → partition → storage.

use std::sync::Arc;

use crate::config::Config;
use crate::coordinator::group::{self, Coordinator};
use crate::coordinator::txn::{self, TxnCoordinator, TxnSettings};
use crate::metadata::{self, Metadata};
use crate::metrics::Metrics;

/// The broker's state, shared by every connection.
pub struct Node {
    /// Topics, partitions, configs, producer ids.
    pub meta: Arc<Metadata>,
    /// The group coordinator.
    pub groups: Arc<Coordinator>,
    /// The transaction coordinator.
    pub txns: Arc<TxnCoordinator>,
    /// The schema registry (served on its own listener, consulted by produce).
    pub registry: Arc<crate::registry::Registry>,
    /// Request-path metrics (scrape-time gauges are read from `meta` and `groups`).
    pub metrics: Metrics,
    /// Share-partitions and share sessions (KIP-932).
    pub shares: Arc<crate::share::broker::ShareState>,
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
        let txns = Arc::new(TxnCoordinator::new(TxnSettings::from_config(&config.values), groups.clone()));
        let meta = Arc::new(Metadata::open(config)?);
        Ok(Node::assemble(meta, groups, txns))
    }

    /// Opens the data directory of a node of a multi-node cluster (joins the metadata
    /// quorum and registers this broker first).
    pub async fn open_cluster(config: Config) -> anyhow::Result<Node> {
        let groups = Arc::new(Coordinator::new(config.group));
        let txns = Arc::new(TxnCoordinator::new(TxnSettings::from_config(&config.values), groups.clone()));
        let meta = Arc::new(Metadata::open_cluster(config).await?);
        Ok(Node::assemble(meta, groups, txns))
    }

    fn assemble(meta: Arc<Metadata>, groups: Arc<Coordinator>, txns: Arc<TxnCoordinator>) -> Node {
        let registry = Arc::new(crate::registry::Registry::new());
        registry.attach(&meta);
        let shares = Arc::new(crate::share::broker::ShareState::new(groups.config.share));
        groups.attach_shares(&shares);
        shares.attach(&meta);
        Node {
            meta,
            groups,
            txns,
            registry,
            shares,
            metrics: Metrics::default(),
            parked_fetches: tokio::sync::watch::Sender::new(0),
        }
    }

    /// Starts the background work: loading `__consumer_offsets` and the group timers,
    /// retention, the flusher and the cleaner. Each task ends once the node is dropped.
    pub fn start(&self) {
        group::start(&self.groups, &self.meta);
        txn::start(&self.txns, &self.meta);
        tokio::spawn(crate::share::broker::run_expiry(Arc::downgrade(&self.shares)));
        self.meta.start_cluster_tasks();
        crate::replication::start(&self.meta);
        tokio::spawn(metadata::run_retention(Arc::downgrade(&self.meta)));
        tokio::spawn(metadata::run_flusher(Arc::downgrade(&self.meta)));
        tokio::spawn(metadata::run_cleaner(Arc::downgrade(&self.meta)));
    }
}

/// A broker as clients are told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerView {
    /// Its id.
    pub id: i32,
    /// The host of its endpoint for the listener the request came in on.
    pub host: String,
    /// That endpoint's port.
    pub port: i32,
    /// `broker.rack`.
    pub rack: Option<String>,
}

/// A partition's placement as clients are told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionView {
    /// Leader broker id, -1 for none.
    pub leader: i32,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Replicas on fenced brokers.
    pub offline: Vec<i32>,
}

impl Node {
    /// Every registered broker with whether it is fenced (DescribeCluster v2's
    /// `include_fenced_brokers`); on a single node, this broker.
    pub fn brokers_with_fenced(&self, listener: usize) -> Vec<(BrokerView, bool)> {
        if self.meta.quorum().is_none() {
            return self.brokers(listener).into_iter().map(|b| (b, false)).collect();
        }
        let c = &self.meta.config;
        let name = c.listeners.get(listener).or(c.listeners.first()).map(|l| l.name.as_str()).unwrap_or("");
        self.meta
            .image()
            .brokers
            .iter()
            .filter_map(|(&id, b)| {
                let ep = b.endpoints.iter().find(|e| e.name == name).or(b.endpoints.first())?;
                let v = BrokerView { id, host: ep.host.clone(), port: i32::from(ep.port), rack: b.rack.clone() };
                Some((v, b.fenced))
            })
            .collect()
    }

    /// The live brokers, with the endpoint of `listener` (the index of the listener a
    /// request arrived on; brokers are matched by its name, as Kafka does). On a single
    /// node: this broker.
    pub fn brokers(&self, listener: usize) -> Vec<BrokerView> {
        let c = &self.meta.config;
        if self.meta.quorum().is_none() {
            let (host, port) = c.advertised(listener);
            return vec![BrokerView {
                id: c.node_id,
                host: host.to_string(),
                port: i32::from(port),
                rack: c.rack.clone(),
            }];
        }
        let name = c.listeners.get(listener).or(c.listeners.first()).map(|l| l.name.as_str()).unwrap_or("");
        self.meta
            .image()
            .brokers
            .iter()
            .filter(|(_, b)| !b.fenced)
            .filter_map(|(&id, b)| {
                let ep = b.endpoints.iter().find(|e| e.name == name).or(b.endpoints.first())?;
                Some(BrokerView { id, host: ep.host.clone(), port: i32::from(ep.port), rack: b.rack.clone() })
            })
            .collect()
    }

    /// The broker coordinating `group`: the leader of its `__consumer_offsets` partition
    /// (this broker on a single node); `None` while that partition has no leader.
    pub fn group_coordinator(&self, group: &str) -> Option<i32> {
        if self.meta.quorum().is_none() {
            return Some(self.meta.config.node_id);
        }
        let offsets = self.meta.topic(metadata::OFFSETS_TOPIC)?;
        let p = crate::coordinator::group::log::partition_for(group, offsets.partitions.len() as i32);
        Some(self.meta.leader_of(&offsets, p)).filter(|&l| l >= 0)
    }

    /// The broker coordinating `transactional_id`: the leader of its
    /// `__transaction_state` partition (created on first use, as Kafka does); `None`
    /// while it has none.
    pub fn txn_coordinator(&self, transactional_id: &str) -> Option<i32> {
        let existed = self.meta.topic(metadata::TXN_TOPIC).is_some();
        let topic = self.meta.transaction_topic()?;
        if !existed {
            // Just created: load (nothing) now rather than at the coordinator's next look.
            self.txns.follow_leadership(&self.meta);
        }
        if self.meta.quorum().is_none() {
            return Some(self.meta.config.node_id);
        }
        let p = txn::partition_for(transactional_id, topic.partitions.len() as i32);
        Some(self.meta.leader_of(&topic, p)).filter(|&l| l >= 0)
    }

    /// The share coordinator of a share-partition key ("group:topic id:partition", the
    /// FindCoordinator key type 2 string): the leader of the key's `__share_group_state`
    /// partition.
    pub fn share_coordinator(&self, key: &str) -> Option<i32> {
        let topic = self.meta.share_state_topic()?;
        if self.meta.quorum().is_none() {
            return Some(self.meta.config.node_id);
        }
        let p = crate::coordinator::group::log::partition_for(key, topic.partitions.len() as i32);
        Some(self.meta.leader_of(&topic, p)).filter(|&l| l >= 0)
    }

    /// The controller id clients are told in Metadata: this broker. As in Kafka's KRaft
    /// mode (where clients cannot reach the controllers and any broker forwards admin
    /// requests to the active one), every Strom broker takes CreateTopics and the like and
    /// commits them through the quorum leader, so naming this broker keeps clients on a
    /// connection they have and never points them at a dead controller.
    pub fn controller_for_clients(&self) -> i32 {
        self.meta.config.node_id
    }

    /// The id of the active controller (the quorum leader; this node on a single node).
    pub fn controller_id(&self) -> i32 {
        match self.meta.quorum() {
            None => self.meta.config.node_id,
            Some(q) => q.leader().map_or(-1, |l| l as i32),
        }
    }

    /// Where partition `index` of `topic` lives.
    pub fn partition_view(&self, topic: &metadata::Topic, index: i32) -> PartitionView {
        let me = self.meta.config.node_id;
        if self.meta.quorum().is_none() {
            let epoch = topic.partitions.get(index as usize).map_or(0, |p| p.leader_epoch());
            return PartitionView {
                leader: me,
                leader_epoch: epoch,
                replicas: vec![me],
                isr: vec![me],
                offline: vec![],
            };
        }
        let image = self.meta.image();
        let Some(p) = image.topics.get(&topic.id).and_then(|t| t.partitions.get(&index)) else {
            return PartitionView { leader: -1, leader_epoch: -1, replicas: vec![], isr: vec![], offline: vec![] };
        };
        let offline = p.replicas.iter().copied().filter(|r| image.brokers.get(r).is_none_or(|b| b.fenced)).collect();
        PartitionView {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            offline,
        }
    }
}
