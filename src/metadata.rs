//! The broker's view of its topics and partitions, and the small metadata file that
//! makes them survive a restart.
//!
//! Topic metadata (names, ids, partition counts, configs), the cluster id and the
//! producer-id allocator live in `<log.dirs>/strom-meta.json`, rewritten atomically
//! (temp file, fsync, rename, directory fsync) on every change. Partition data lives in
//! Kafka's layout, one directory `<topic>-<partition>` per partition (ADR 0002).

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use strom_protocol::Uuid;
use strom_storage::{Log, LogConfig};

use crate::config::topic as topic_config;
use crate::config::Config;
use crate::error::ErrorCode;
pub use crate::partition::{storage_error_code, Partition};

pub mod controller;
pub mod image;
pub mod log;
pub mod quorum;

use image::Image;
use quorum::{Applied, Quorum};

use strom_protocol::metadata_record::{Record, RESOURCE_GROUP, RESOURCE_TOPIC};

/// The pre-metadata-log file (format version 1), upgraded on first start (ADR 0009).
const META_FILE: &str = "strom-meta.json";
/// Kafka's name for the file holding the directory's cluster and node ids.
const PROPERTIES_FILE: &str = "meta.properties";
/// Metadata changes between snapshots of the image.
const SNAPSHOT_INTERVAL: i64 = 1000;

/// The internal topic holding committed offsets and group metadata (Kafka's name).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// The transaction coordinator's topic (ADR 0012).
pub const TXN_TOPIC: &str = "__transaction_state";
/// Producer ids are handed out from blocks persisted ahead of use, so an id is never
/// reused after a crash.
pub(crate) const PRODUCER_ID_BLOCK: i64 = 1000;

/// `strom-meta.json` as brokers before the metadata log wrote it; read only to upgrade.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct MetaFile {
    /// Format version of this file.
    version: u32,
    cluster_id: String,
    /// Every id below this may have been handed out.
    producer_id_limit: i64,
    topics: BTreeMap<String, TopicMeta>,
}

/// What is persisted about a topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicMeta {
    /// The topic id as 32 hex digits.
    pub id: String,
    pub partitions: i32,
    /// Topic-level overrides (only keys that were set explicitly).
    pub configs: BTreeMap<String, String>,
}

/// A topic and its partitions.
#[derive(Debug)]
pub struct Topic {
    pub name: Arc<str>,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
    pub configs: BTreeMap<String, String>,
}

/// Where metadata changes are committed.
enum Backend {
    /// A single node: the metadata log on this node, appended to directly (ADR 0008).
    Local(Box<Mutex<log::MetadataLog>>),
    /// A cluster: changes are committed by the metadata quorum (ADR 0007).
    Quorum(Arc<quorum::Quorum>),
}

/// All topics on this broker.
pub struct Metadata {
    pub config: Config,
    pub cluster_id: String,
    data_dir: PathBuf,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    backend: Backend,
    /// Serialises this node's metadata changes (check the image, then commit).
    writes: Mutex<()>,
    /// Serialises bringing the local partitions in line with the image.
    following: Mutex<()>,
    /// The producer-id block this node hands ids from: (next, end).
    producer_ids: Mutex<(i64, i64)>,
    /// The newest epoch handed out per producer id since start (InitProducerId fencing).
    producer_epochs: Mutex<HashMap<i64, i16>>,
    /// This broker's registration epoch in a cluster (-1 on a single node).
    broker_epoch: Arc<std::sync::atomic::AtomicI64>,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata").field("cluster_id", &self.cluster_id).finish_non_exhaustive()
    }
}

/// Kafka's topic name rule: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
fn uuid_hex(u: &Uuid) -> String {
    u.0.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_uuid_hex(s: &str) -> Option<Uuid> {
    if s.len() != 32 {
        return None;
    }
    let mut a = [0u8; 16];
    for (i, b) in a.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Uuid(a))
}

/// A random (version 4) UUID; never the zero or all-ones id Kafka reserves.
pub fn random_uuid() -> Uuid {
    loop {
        let mut a = [0u8; 16];
        if getrandom::fill(&mut a).is_err() {
            // No OS randomness: fall back to time and address entropy; ids only need uniqueness.
            let t =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
            a = (t ^ (&a as *const _ as u128)).to_le_bytes();
        }
        a[6] = (a[6] & 0x0f) | 0x40;
        a[8] = (a[8] & 0x3f) | 0x80;
        let u = Uuid(a);
        if u != Uuid::ZERO {
            return u;
        }
    }
}

fn write_atomically(dir: &Path, name: &str, data: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &dst)?;
    std::fs::File::open(dir)?.sync_all()
}

/// `key=value` lines of `meta.properties` (none if the file does not exist).
fn read_properties(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let path = dir.join(PROPERTIES_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// The records that describe what a version-1 `strom-meta.json` holds (ADR 0009).
fn legacy_records(meta: &MetaFile, node_id: i32) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    for (name, t) in &meta.topics {
        let id = parse_uuid_hex(&t.id).with_context(|| format!("topic {name}: bad id {}", t.id))?;
        out.push(Record::Topic { name: name.clone(), id });
        for p in 0..t.partitions {
            out.push(Record::Partition {
                topic_id: id,
                partition: p,
                replicas: vec![node_id],
                isr: vec![node_id],
                leader: node_id,
                leader_epoch: 0,
                partition_epoch: 0,
            });
        }
        for (k, v) in &t.configs {
            out.push(Record::Config {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.clone(),
                name: k.clone(),
                value: Some(v.clone()),
            });
        }
    }
    if meta.producer_id_limit > 0 {
        out.push(Record::ProducerIds {
            broker_id: node_id,
            broker_epoch: -1,
            next_producer_id: meta.producer_id_limit,
        });
    }
    Ok(out)
}

/// The record placing partition `index` of topic `id` on `replicas`, led by the first.
/// A new partition is empty, so every replica is in sync with it (as Kafka creates them);
/// one that does not start fetching leaves the ISR after `replica.lag.time.max.ms`.
fn partition_record(id: Uuid, index: i32, replicas: Vec<i32>) -> Record {
    let leader = replicas.first().copied().unwrap_or(-1);
    Record::Partition {
        topic_id: id,
        partition: index,
        isr: replicas.clone(),
        replicas,
        leader,
        leader_epoch: 0,
        partition_epoch: 0,
    }
}

/// Broker ids ordered so that consecutive entries are on different racks where possible
/// (Kafka's rack-alternated list): racks in name order, taking one broker of each in turn.
/// Brokers without a rack form their own group.
fn rack_alternated(brokers: &[(i32, Option<String>)]) -> Vec<i32> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack.entry(rack.as_deref()).or_default().push(*id);
    }
    if by_rack.len() <= 1 {
        return brokers.iter().map(|(id, _)| *id).collect();
    }
    let mut out = Vec::with_capacity(brokers.len());
    for round in 0.. {
        let before = out.len();
        out.extend(by_rack.values().filter_map(|ids| ids.get(round)));
        if out.len() == before {
            break;
        }
    }
    out
}

/// Kafka's placement, reduced: partition `p`'s leader is broker `(start + p) mod n` of
/// the rack-alternated broker list, so leaders spread evenly; its followers come from the
/// list after a shift that grows every `n` partitions (so pairs vary), each on a rack no
/// earlier replica uses while such racks remain. `(id, rack)` of the live brokers.
fn place_replicas(
    brokers: &[(i32, Option<String>)],
    range: std::ops::Range<i32>,
    rf: i16,
    start: usize,
) -> Result<Vec<Vec<i32>>, (ErrorCode, String)> {
    let order = rack_alternated(brokers);
    let n = order.len();
    if rf < 1 || rf as usize > n {
        return Err((
            ErrorCode::InvalidReplicationFactor,
            format!("replication factor {rf} is larger than the {n} available broker(s)"),
        ));
    }
    let rack = |id: i32| brokers.iter().find(|b| b.0 == id).and_then(|b| b.1.clone());
    let all_racks: std::collections::BTreeSet<Option<String>> = brokers.iter().map(|b| b.1.clone()).collect();
    Ok(range
        .map(|p| {
            let p = p.max(0) as usize;
            let first = (start + p) % n;
            let shift = if n > 1 { 1 + (p / n) % (n - 1) } else { 0 };
            let mut replicas = vec![order[first]];
            let mut used = std::collections::BTreeSet::from([rack(order[first])]);
            let candidates: Vec<i32> = (0..n).map(|j| order[(first + shift + j) % n]).collect();
            for &c in &candidates {
                if replicas.len() == rf as usize {
                    break;
                }
                let fresh_rack = !used.contains(&rack(c)) || used.len() == all_racks.len();
                if !replicas.contains(&c) && fresh_rack {
                    used.insert(rack(c));
                    replicas.push(c);
                }
            }
            for &c in &candidates {
                if replicas.len() == rf as usize {
                    break;
                }
                if !replicas.contains(&c) {
                    replicas.push(c);
                }
            }
            replicas
        })
        .collect())
}

/// The cluster id a cluster without `cluster.id` uses: derived from the voters, which
/// every node is configured with alike (and then kept in `meta.properties`).
fn derived_cluster_id(voters: &BTreeMap<i32, String>) -> String {
    let text: String = voters.iter().map(|(id, a)| format!("{id}@{a},")).collect();
    let a = crc32c::crc32c(text.as_bytes());
    let b = crc32c::crc32c_append(a, b"strom-cluster");
    let c = crc32c::crc32c_append(b, text.as_bytes());
    let d = crc32c::crc32c_append(c, b"id");
    let mut bytes = [0u8; 16];
    for (i, w) in [a, b, c, d].iter().enumerate() {
        bytes[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
    }
    Uuid(bytes).to_string()
}

/// The data directory's cluster id: the one in `meta.properties` (which `cluster.id`, if
/// given, must match), else `legacy`, else `cluster.id`, else `default`; written back.
fn settle_cluster_id(
    data_dir: &Path,
    config: &Config,
    legacy: Option<String>,
    default: String,
) -> anyhow::Result<String> {
    let stored = read_properties(data_dir)?.remove("cluster.id").or(legacy);
    let cluster_id = match (stored, &config.cluster_id) {
        (Some(have), Some(want)) => {
            anyhow::ensure!(
                want == &have,
                "cluster.id {want} does not match {have} stored in {}",
                data_dir.join(PROPERTIES_FILE).display()
            );
            have
        }
        (Some(have), None) => have,
        (None, want) => want.clone().unwrap_or(default),
    };
    let props = format!("# Strom data directory\nversion=1\ncluster.id={cluster_id}\nnode.id={}\n", config.node_id);
    write_atomically(data_dir, PROPERTIES_FILE, props.as_bytes())
        .with_context(|| format!("writing {}", data_dir.join(PROPERTIES_FILE).display()))?;
    Ok(cluster_id)
}

impl Metadata {
    /// Opens the data directory: replays the metadata log (upgrading `strom-meta.json`
    /// on first start, ADR 0009) and opens every partition's log.
    pub fn open(config: Config) -> anyhow::Result<Metadata> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let mut mlog = log::MetadataLog::open(&data_dir, SNAPSHOT_INTERVAL)?;
        let mut legacy_cluster_id = None;
        let legacy = data_dir.join(META_FILE);
        if legacy.exists() {
            let meta: MetaFile = serde_json::from_slice(
                &std::fs::read(&legacy).with_context(|| format!("reading {}", legacy.display()))?,
            )
            .with_context(|| format!("parsing {}", legacy.display()))?;
            anyhow::ensure!(meta.version <= 1, "{} has unknown format version {}", legacy.display(), meta.version);
            if mlog.is_empty() {
                mlog.install_base(&legacy_records(&meta, config.node_id)?)?;
                tracing::info!(topics = meta.topics.len(), "upgraded {} to the metadata log", legacy.display());
            } else {
                // A crash between the conversion and the rename below: the snapshot is there.
                tracing::warn!("{} was already converted to the metadata log", legacy.display());
            }
            legacy_cluster_id = Some(meta.cluster_id.clone()).filter(|c| !c.is_empty());
        }
        let cluster_id = settle_cluster_id(&data_dir, &config, legacy_cluster_id, random_uuid().to_string())?;
        if legacy.exists() {
            let done = legacy.with_extension("json.migrated");
            std::fs::rename(&legacy, &done).with_context(|| format!("renaming {}", legacy.display()))?;
        }
        // Reserve a fresh block of producer ids: ids handed out before a crash stay unused.
        let next_producer_id = mlog.image().next_producer_id;
        mlog.append(&[Record::ProducerIds {
            broker_id: config.node_id,
            broker_epoch: -1,
            next_producer_id: next_producer_id + PRODUCER_ID_BLOCK,
        }])?;
        let image = mlog.image();
        let cluster = Metadata::new(config, cluster_id, data_dir, Backend::Local(Box::new(Mutex::new(mlog))));
        *cluster.producer_ids.lock().unwrap_or_else(|p| p.into_inner()) =
            (next_producer_id, next_producer_id + PRODUCER_ID_BLOCK);
        cluster.follow(&image)?;
        cluster.log_opened();
        if cluster.topic(OFFSETS_TOPIC).is_none() {
            let records = cluster.offsets_topic_records(&image).map_err(|(_, m)| anyhow::anyhow!("{m}"))?;
            cluster
                .commit(records, ErrorCode::TopicAlreadyExists)
                .map_err(|(_, m)| anyhow::anyhow!("creating {OFFSETS_TOPIC}: {m}"))?;
        }
        Ok(cluster)
    }

    /// Opens the data directory of a node of a multi-node cluster: starts the metadata
    /// quorum, follows its image, registers this broker with the quorum and makes sure
    /// `__consumer_offsets` exists. Waits until the quorum has a leader (as a Kafka broker
    /// waits for its controller).
    pub async fn open_cluster(config: Config) -> anyhow::Result<Metadata> {
        let q = config.quorum.clone().context("open_cluster without controller.quorum.voters")?;
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        if data_dir.join(META_FILE).exists() || log::MetadataLog::holds_single_node_log(&data_dir)? {
            anyhow::bail!(
                "{} holds a single-node data directory; turning it into a node of a multi-node cluster is not \
                 supported yet (start the cluster on empty data directories)",
                data_dir.display()
            );
        }
        // Every node of a cluster must agree on its id: without cluster.id it is derived
        // from the voters, which every node is configured with alike. A broker that knows
        // the controllers only from bootstrap servers must be told the id.
        if q.voters.is_empty() && config.cluster_id.is_none() && !read_properties(&data_dir)?.contains_key("cluster.id")
        {
            anyhow::bail!(
                "a broker that finds the controllers through controller.quorum.bootstrap.servers needs cluster.id \
                 (CLUSTER_ID): the id cannot be derived without controller.quorum.voters"
            );
        }
        let derived = derived_cluster_id(&q.voters);
        let cluster_id = settle_cluster_id(&data_dir, &config, None, derived)?;
        let mut seeds: Vec<String> = q.voters.values().cloned().collect();
        seeds.extend(q.bootstrap.iter().filter(|b| !seeds.contains(b)).cloned().collect::<Vec<_>>());
        let settings = quorum::QuorumSettings {
            node_id: u64::try_from(config.node_id).context("node.id must not be negative in a cluster")?,
            voters: quorum::AddressBook(q.voters.iter().map(|(&id, a)| (id as u64, a.clone())).collect()),
            seeds,
            bind: q.bind.clone(),
            cluster_id: cluster_id.clone(),
        };
        let quorum = Quorum::start(&data_dir, settings).await?;
        let cluster = Metadata::new(config, cluster_id, data_dir, Backend::Quorum(quorum.clone()));
        if !q.broker {
            // A controller-only node: no partitions, no registration, no clients.
            tracing::info!("controller only (process.roles=controller): serving the metadata quorum, no clients");
            return Ok(cluster);
        }
        let image = cluster.image();
        cluster.follow(&image)?;
        cluster.log_opened();
        cluster.register().await?;
        // Heartbeats start with the registration: waiting below must not get us fenced.
        let every =
            cluster.config.values.get("broker.heartbeat.interval.ms").and_then(|v| v.parse().ok()).unwrap_or(2000);
        tokio::spawn(controller::heartbeats(
            Arc::downgrade(&quorum),
            cluster.config.node_id,
            cluster.broker_epoch.clone(),
            std::time::Duration::from_millis(every),
        ));
        if cluster.image().topic(OFFSETS_TOPIC).is_none() {
            // The first start of a cluster: spread __consumer_offsets over the brokers, so
            // wait (bounded) until as many registered as there are voters (at most 3), as
            // Kafka creates it once offsets.topic.replication.factor brokers are up.
            // A broker-only node cannot know how many brokers are coming: it waits less.
            let (want, wait) = if q.controller { (q.voters.len().clamp(1, 3), 30) } else { (3, 10) };
            let mut rx = quorum.published();
            let ready = |p: &quorum::Published| {
                p.image.topic(OFFSETS_TOPIC).is_some() || p.image.brokers.values().filter(|b| !b.fenced).count() >= want
            };
            if tokio::time::timeout(std::time::Duration::from_secs(wait), rx.wait_for(ready)).await.is_err() {
                tracing::warn!(
                    want,
                    wait,
                    "fewer brokers registered in time; placing __consumer_offsets on those that did"
                );
            }
            if cluster.image().topic(OFFSETS_TOPIC).is_none() {
                match cluster.offsets_topic_records(&cluster.image()) {
                    // Every broker may try; the quorum keeps the first and refuses the others.
                    Ok(records) => match cluster.commit_async(records, ErrorCode::TopicAlreadyExists).await {
                        Ok(_) | Err((ErrorCode::TopicAlreadyExists, _)) => {}
                        Err((code, m)) => tracing::warn!(?code, error = %m, "creating __consumer_offsets failed"),
                    },
                    Err((code, m)) => tracing::warn!(?code, error = %m, "cannot create __consumer_offsets"),
                }
            }
            let has = |p: &quorum::Published| p.image.topic(OFFSETS_TOPIC).is_some();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(15), rx.wait_for(has)).await;
            cluster.follow(&cluster.image())?;
        }
        Ok(cluster)
    }

    fn new(config: Config, cluster_id: String, data_dir: PathBuf, backend: Backend) -> Metadata {
        Metadata {
            cluster_id,
            data_dir,
            topics: RwLock::new(HashMap::new()),
            backend,
            writes: Mutex::new(()),
            following: Mutex::new(()),
            producer_ids: Mutex::new((0, 0)),
            producer_epochs: Mutex::new(HashMap::new()),
            broker_epoch: Arc::new(std::sync::atomic::AtomicI64::new(-1)),
            config,
        }
    }

    /// One line an operator (or a test) can check: after a clean shutdown every
    /// partition reopens from its marker, with no tail scan.
    fn log_opened(&self) {
        let (mut clean, mut recovered) = (0usize, 0usize);
        for topic in self.topics() {
            for p in &topic.partitions {
                if p.with_log(|l| l.opened_clean()) {
                    clean += 1;
                } else {
                    recovered += 1;
                }
            }
        }
        tracing::info!(
            partitions = clean + recovered,
            clean,
            recovered,
            "opened partition logs (clean: reopened after a clean shutdown, tail not scanned; recovered: tail scanned)"
        );
    }

    fn offsets_topic_records(&self, image: &Image) -> Result<Vec<Record>, (ErrorCode, String)> {
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("segment.bytes".to_string(), self.config.offsets_topic_segment_bytes.to_string()),
        ]);
        let n = self.config.offsets_topic_partitions.max(1);
        // Kafka's offsets.topic.replication.factor (3), capped by the brokers there are:
        // a cluster smaller than three still gets its group offsets replicated.
        let want = self.config.values.get("offsets.topic.replication.factor").and_then(|v| v.parse::<i16>().ok());
        let brokers = image.brokers.values().filter(|b| !b.fenced).count().max(1);
        let rf = want.unwrap_or(3).clamp(1, i16::try_from(brokers).unwrap_or(i16::MAX));
        self.topic_records(image, OFFSETS_TOPIC, n, Some(rf), None, &configs)
    }

    /// The current metadata image.
    pub fn image(&self) -> Arc<Image> {
        match &self.backend {
            Backend::Local(l) => l.lock().unwrap_or_else(|p| p.into_inner()).image(),
            Backend::Quorum(q) => q.published().borrow().image.clone(),
        }
    }

    /// Whether this node is a broker (everything but a controller-only node).
    pub fn serves_clients(&self) -> bool {
        self.config.quorum.as_ref().is_none_or(|q| q.broker)
    }

    /// The metadata quorum, in a multi-node cluster.
    pub fn quorum(&self) -> Option<&Arc<Quorum>> {
        match &self.backend {
            Backend::Local(_) => None,
            Backend::Quorum(q) => Some(q),
        }
    }

    /// The leader of a partition: this node on a single node, else the image's (-1 for none).
    pub fn leader_of(&self, topic: &Topic, partition: i32) -> i32 {
        match &self.backend {
            Backend::Local(_) => self.config.node_id,
            Backend::Quorum(q) => q
                .published()
                .borrow()
                .image
                .topics
                .get(&topic.id)
                .and_then(|t| t.partitions.get(&partition))
                .map_or(-1, |p| p.leader),
        }
    }

    /// Whether this node leads `p` (always, on a single node).
    pub fn leads_partition(&self, p: &Partition) -> bool {
        match &self.backend {
            Backend::Local(_) => true,
            Backend::Quorum(_) => {
                self.topic(&p.topic).is_some_and(|t| self.leader_of(&t, p.index) == self.config.node_id)
            }
        }
    }

    /// Whether this node leads the partition (always, on a single node).
    pub fn leads(&self, topic: &Topic, partition: i32) -> bool {
        self.leader_of(topic, partition) == self.config.node_id
    }

    /// Commits a change and brings the local partitions in line with the new image. A
    /// change the quorum refuses when its turn comes (another node's change got there
    /// first) is `Err(refused)`.
    /// Takes the lock that serialises this node's metadata changes. In a cluster its holder
    /// may be waiting for the quorum (`commit` blocks in place), so a handler waiting for
    /// it must give its runtime worker away too: a worker blocked on a plain mutex keeps
    /// the tasks queued on it (the Raft core's among them), and the holder then waits for a
    /// quorum this node no longer takes part in (a node froze that way after a controller
    /// failover, with two CreateTopics in flight).
    fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock_held_across_commits(&self.writes)
    }

    /// Locks `m`, a lock whose holders may commit (see [`Self::write_lock`]).
    fn lock_held_across_commits<'a, T>(&self, m: &'a Mutex<T>) -> std::sync::MutexGuard<'a, T> {
        let lock = || m.lock().unwrap_or_else(|p| p.into_inner());
        match &self.backend {
            Backend::Quorum(_) => tokio::task::block_in_place(lock),
            Backend::Local(_) => lock(),
        }
    }

    fn commit(&self, records: Vec<Record>, refused: ErrorCode) -> Result<Arc<Image>, (ErrorCode, String)> {
        match &self.backend {
            Backend::Local(l) => {
                let image = l
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .append(&records)
                    .map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
                self.follow(&image).map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
                Ok(image)
            }
            // Handlers are synchronous; a cluster's commit waits for the quorum. The broker
            // runs on tokio's multi-threaded runtime, where a worker may block like this
            // (another takes over its tasks). Making the handlers async removes this.
            Backend::Quorum(_) => tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(self.commit_async(records, refused))
            }),
        }
    }

    async fn commit_async(&self, records: Vec<Record>, refused: ErrorCode) -> Result<Arc<Image>, (ErrorCode, String)> {
        let Backend::Quorum(q) = &self.backend else { return self.commit(records, refused) };
        match q.write(records).await {
            Ok(Applied::Ok) => {}
            Ok(Applied::Refused(m)) => return Err((refused, m)),
            Err(e) => return Err((ErrorCode::RequestTimedOut, format!("{e:#}"))),
        }
        let image = self.image();
        self.follow(&image).map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
        Ok(image)
    }

    /// Brings the local partitions in line with `image`: opens the logs of new topics and
    /// partitions, applies changed configs to the live logs, and closes and deletes the
    /// logs of removed topics. In a cluster every node keeps a log for every partition
    /// (the replicas of issue 14 will use them); only the leader serves it.
    pub fn follow(&self, image: &Image) -> anyhow::Result<()> {
        if !self.serves_clients() {
            return Ok(());
        }
        let _g = self.following.lock().unwrap_or_else(|p| p.into_inner());
        for t in self.topics() {
            if !image.topics.contains_key(&t.id) {
                self.remove_local(&t);
            }
        }
        for ti in image.topics.values() {
            let configs = image.configs.get(&(RESOURCE_TOPIC, ti.name.clone())).cloned().unwrap_or_default();
            let want = ti.partitions.keys().next_back().map_or(0, |&p| p + 1);
            match self.topic(&ti.name) {
                None => {
                    let topic = self.open_topic(&ti.name, ti.id, want, configs)?;
                    for p in &topic.partitions {
                        if let Some(pi) = ti.partitions.get(&p.index) {
                            self.assign_role(p, pi, &topic.configs);
                        }
                    }
                    self.write_topics().insert(ti.name.clone(), Arc::new(topic));
                    tracing::info!(topic = %ti.name, partitions = want, id = %ti.id, "opened topic");
                }
                Some(old) => {
                    for p in &old.partitions {
                        if let Some(pi) = ti.partitions.get(&p.index) {
                            self.assign_role(p, pi, &configs);
                        }
                    }
                    let have = old.partitions.len() as i32;
                    if configs == old.configs && want <= have {
                        continue;
                    }
                    let mut partitions = old.partitions.clone();
                    if want > have {
                        let added = self.open_partitions(&old.name, have..want, &configs)?;
                        for p in &added {
                            if let Some(pi) = ti.partitions.get(&p.index) {
                                self.assign_role(p, pi, &configs);
                            }
                        }
                        partitions.extend(added);
                        tracing::info!(topic = %ti.name, from = have, to = want, "partitions added");
                    }
                    if configs != old.configs {
                        let log_config = self.log_config(&configs);
                        for p in &old.partitions {
                            if let Err(e) = p.with_log(|log| log.set_config(log_config.clone())) {
                                tracing::warn!(partition = ?p, error = %e, "could not apply new log settings");
                            }
                        }
                        tracing::info!(topic = %ti.name, "topic configs changed");
                    }
                    let new = Topic { name: old.name.clone(), id: old.id, partitions, configs };
                    self.write_topics().insert(ti.name.clone(), Arc::new(new));
                }
            }
        }
        Ok(())
    }

    /// Gives a local partition the role the image says this broker has (ADR 0010). On a
    /// single node only the leader epoch is taken: the partition stays the only copy.
    fn assign_role(&self, p: &Partition, pi: &image::PartitionImage, configs: &BTreeMap<String, String>) {
        if matches!(self.backend, Backend::Local(_)) {
            p.set_leader_epoch(pi.leader_epoch);
            return;
        }
        let me = self.config.node_id;
        if pi.leader == me {
            let min_isr = usize::try_from(self.setting_i64(configs, "min.insync.replicas")).unwrap_or(1).max(1);
            p.become_leader(
                me,
                pi.leader_epoch,
                pi.partition_epoch,
                pi.replicas.clone(),
                pi.isr.clone(),
                min_isr,
                strom_storage::now_ms(),
            );
        } else if pi.replicas.contains(&me) {
            p.become_follower(pi.leader, pi.leader_epoch);
        } else {
            p.become_outside();
        }
    }

    /// ElectLeaders: a preferred (`unclean == false`) or unclean election for each
    /// partition, committed as one change; each partition's answer (Kafka's codes:
    /// ELECTION_NOT_NEEDED, PREFERRED_LEADER_NOT_AVAILABLE, ELIGIBLE_LEADERS_NOT_AVAILABLE).
    pub fn elect_leaders(&self, unclean: bool, parts: &[(String, i32)]) -> Vec<(ErrorCode, Option<String>)> {
        if self.quorum().is_none() {
            // One broker leads everything already.
            return parts
                .iter()
                .map(|(t, p)| match self.partition(t, *p) {
                    Some(_) => (ErrorCode::ElectionNotNeeded, None),
                    None => (ErrorCode::UnknownTopicOrPartition, None),
                })
                .collect();
        }
        let image = self.image();
        let usable = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced && !b.in_controlled_shutdown);
        let mut records = Vec::new();
        let mut answers = Vec::new();
        for (topic, index) in parts {
            let Some((t, p)) = image.topic(topic).and_then(|t| Some((t, t.partitions.get(index)?))) else {
                answers.push((ErrorCode::UnknownTopicOrPartition, None));
                continue;
            };
            let change = if unclean {
                if p.leader >= 0 {
                    Err(ErrorCode::ElectionNotNeeded)
                } else {
                    match controller::elect(p, &usable, true) {
                        Some((Some(l), isr)) if l >= 0 => Ok((l, isr)),
                        _ => Err(ErrorCode::EligibleLeadersNotAvailable),
                    }
                }
            } else {
                controller::preferred_election(p, &usable).map(|l| (l, None))
            };
            match change {
                Ok((leader, isr)) => {
                    records.push(Record::PartitionChange {
                        topic_id: t.id,
                        partition: *index,
                        leader: Some(leader),
                        isr,
                        replicas: None,
                    });
                    answers.push((ErrorCode::None, None));
                }
                Err(code) => answers.push((code, None)),
            }
        }
        if !records.is_empty() {
            if let Err((code, m)) = self.commit(records, ErrorCode::PreferredLeaderNotAvailable) {
                for a in answers.iter_mut().filter(|a| a.0 == ErrorCode::None) {
                    *a = (code, Some(m.clone()));
                }
            }
        }
        answers
    }

    /// AlterPartitionReassignments (KIP-455): starts, replaces or (`None`) cancels the
    /// reassignment of each partition, all committed as one change; each partition's
    /// answer. With `allow_rf_change == false` a target of another size than the
    /// original replica set is INVALID_REPLICATION_FACTOR (KIP-860). On a single node the
    /// only valid target is the node itself.
    pub fn reassign_partitions(
        &self,
        parts: &[(String, i32, Option<Vec<i32>>)],
        allow_rf_change: bool,
    ) -> Vec<(ErrorCode, Option<String>)> {
        let image = self.image();
        let single = self.quorum().is_none();
        let usable = |id: i32| image.brokers.get(&id).is_some_and(|b| !b.fenced && !b.in_controlled_shutdown);
        let mut records = Vec::new();
        let mut answers = Vec::new();
        for (topic, index, target) in parts {
            let Some((t, p)) = image.topic(topic).and_then(|t| Some((t, t.partitions.get(index)?))) else {
                answers.push((ErrorCode::UnknownTopicOrPartition, None));
                continue;
            };
            if let Some(target) = target {
                if !allow_rf_change && target.len() != p.original_replicas().len() {
                    answers.push((
                        ErrorCode::InvalidReplicationFactor,
                        Some("the request does not allow changing the replication factor".into()),
                    ));
                    continue;
                }
                if single && target.as_slice() != [self.config.node_id] {
                    answers.push((
                        ErrorCode::InvalidReplicaAssignment,
                        Some(format!("this single node is broker {}", self.config.node_id)),
                    ));
                    continue;
                }
            }
            if single {
                answers.push(match target {
                    Some(_) => (ErrorCode::None, None),
                    None => (ErrorCode::NoReassignmentInProgress, None),
                });
                continue;
            }
            match controller::reassign(&image, t.id, *index, p, target.as_deref(), &usable) {
                Ok(change) => {
                    if !change.is_empty() {
                        tracing::info!(topic, partition = index, target = ?target, "reassigning partition");
                    }
                    records.extend(change);
                    answers.push((ErrorCode::None, None));
                }
                Err((code, m)) => answers.push((code, Some(m))),
            }
        }
        if !records.is_empty() {
            // Refused only when a partition changed between reading the image and
            // committing (an ISR change, an election): retriable, as Kafka's NOT_CONTROLLER.
            if let Err((code, m)) = self.commit(records, ErrorCode::NotController) {
                for a in answers.iter_mut().filter(|a| a.0 == ErrorCode::None) {
                    *a = (code, Some(m.clone()));
                }
            }
        }
        answers
    }

    /// Closes and deletes the logs of a topic the image no longer has.
    fn remove_local(&self, t: &Topic) {
        let removed = {
            let mut topics = self.write_topics();
            match topics.get(&*t.name) {
                Some(cur) if cur.id == t.id => topics.remove(&*t.name),
                _ => None,
            }
        };
        let Some(topic) = removed else { return };
        for p in &topic.partitions {
            // Wake long-polling fetches so they notice the topic is gone.
            p.appended.notify_waiters();
            // Close the log before its files go: otherwise the last reference to drop
            // (possibly a fetch still in flight) would try to seal its segment into a
            // directory that no longer exists.
            p.with_log(|log| log.mark_deleted());
            let dir = self.data_dir.join(format!("{}-{}", topic.name, p.index));
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
            }
        }
        tracing::info!(topic = %topic.name, "deleted topic");
    }

    /// Registers this broker with the quorum: its listeners and rack, unfenced, at the
    /// next broker epoch. Retries until the quorum has a leader.
    async fn register(&self) -> anyhow::Result<()> {
        let endpoints = self
            .config
            .listeners
            .iter()
            .map(|l| strom_protocol::metadata_record::Endpoint {
                name: l.name.clone(),
                host: l.advertised_host.clone(),
                port: l.advertised_port,
                security_protocol: 0,
            })
            .chain(self.config.registry_advertised.iter().map(|(host, port)| {
                strom_protocol::metadata_record::Endpoint {
                    name: crate::registry::REGISTRY_ENDPOINT.to_string(),
                    host: host.clone(),
                    port: *port,
                    security_protocol: 0,
                }
            }))
            .collect::<Vec<_>>();
        let mut attempt = 0u32;
        loop {
            let epoch = self.image().brokers.get(&self.config.node_id).map_or(0, |b| b.epoch + 1);
            let record = Record::RegisterBroker {
                broker_id: self.config.node_id,
                incarnation_id: random_uuid(),
                broker_epoch: epoch,
                endpoints: endpoints.clone(),
                rack: self.config.rack.clone(),
                fenced: false,
            };
            match self.commit_async(vec![record], ErrorCode::UnknownServerError).await {
                Ok(_) => {
                    self.broker_epoch.store(epoch, Ordering::Relaxed);
                    tracing::info!(broker = self.config.node_id, epoch, "registered with the metadata quorum");
                    return Ok(());
                }
                Err((code, m)) => {
                    attempt += 1;
                    tracing::warn!(attempt, ?code, error = %m, "broker registration not committed yet; retrying");
                }
            }
        }
    }

    /// A controlled shutdown (SIGTERM in a cluster): this broker is fenced and its
    /// partitions left leaderless through the quorum before it stops, bounded by a few
    /// seconds so a lost quorum cannot hold the shutdown.
    pub async fn controlled_shutdown(&self) {
        let Backend::Quorum(q) = &self.backend else { return };
        let records = controller::controlled_shutdown(&self.image(), self.config.node_id);
        if records.is_empty() {
            return;
        }
        match tokio::time::timeout(std::time::Duration::from_secs(5), q.write(records)).await {
            Ok(Ok(_)) => tracing::info!("controlled shutdown: fenced, partitions handed back"),
            Ok(Err(e)) => tracing::warn!(error = %format!("{e:#}"), "controlled shutdown not committed"),
            Err(_) => tracing::warn!("controlled shutdown: no quorum answer within 5 s"),
        }
    }

    /// Starts a cluster node's background work: following the image, heartbeats and the
    /// controller's duties. Nothing on a single node.
    pub fn start_cluster_tasks(self: &Arc<Self>) {
        let Backend::Quorum(q) = &self.backend else { return };
        let num = |k: &str, d: u64| self.config.values.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(d);
        let session = std::time::Duration::from_millis(num("broker.session.timeout.ms", 9000));
        let rebalance = self.config.values.get("auto.leader.rebalance.enable").is_none_or(|v| v != "false");
        let every = std::time::Duration::from_secs(num("leader.imbalance.check.interval.seconds", 300).max(1));
        tokio::spawn(controller::run(Arc::downgrade(q), session, rebalance.then_some(every)));
        if !self.serves_clients() {
            return;
        }
        let weak = Arc::downgrade(self);
        let mut rx = q.published();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                let Some(meta) = weak.upgrade() else { return };
                let image = rx.borrow_and_update().image.clone();
                if let Err(e) = meta.follow(&image) {
                    tracing::error!(error = %format!("{e:#}"), "could not bring local partitions in line with the metadata");
                }
            }
        });
    }

    /// This broker's registration epoch (-1 on a single node or before registering).
    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Relaxed)
    }

    fn write_topics(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read_topics(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<Topic>>> {
        self.topics.read().unwrap_or_else(|p| p.into_inner())
    }

    fn log_config(&self, configs: &BTreeMap<String, String>) -> LogConfig {
        let segment_bytes =
            configs.get("segment.bytes").and_then(|v| v.parse().ok()).unwrap_or(self.config.segment_bytes);
        LogConfig {
            segment_bytes,
            index_interval_bytes: self.config.index_interval_bytes,
            segment_index_bytes: self.config.index_max_bytes,
            producer_id_expiration_ms: self.config.producer_id_expiration_ms,
            segment_ms: self.setting_i64(configs, "segment.ms"),
        }
    }

    /// A numeric topic setting: the override, else the broker synonyms, else Kafka's default.
    fn setting_i64(&self, configs: &BTreeMap<String, String>, key: &str) -> i64 {
        let Some(k) = topic_config::lookup(key) else { return -1 };
        topic_config::resolve(k, configs, &self.config.explicit)
            .value
            .parse()
            .ok()
            .or_else(|| k.default.parse().ok())
            .unwrap_or(-1)
    }

    /// One cleaner pass: compacts partitions of topics whose `cleanup.policy` includes
    /// `compact` and that sealed a segment since their last compaction (or all of them
    /// with `force`). Returns (records before, records after) summed over partitions.
    pub fn compact(&self, now_ms: i64, force: bool) -> (u64, u64) {
        let (mut before, mut after) = (0, 0);
        for topic in self.topics() {
            let policy = self.topic_setting(&topic, "cleanup.policy");
            if !policy.split(',').any(|p| p.trim() == "compact") {
                continue;
            }
            let delete_retention = self.setting_i64(&topic.configs, "delete.retention.ms");
            for p in &topic.partitions {
                let segments = p.with_log(|log| log.segment_count());
                if !force && segments == p.compacted_at_segments.load(Ordering::Acquire) {
                    continue;
                }
                // Only the snapshot and the swap hold the partition's lock; the cleaning
                // itself runs without it, so appends and fetches carry on.
                let outcome = p.with_log(|log| log.compaction_input()).and_then(|input| {
                    let (cleaned, stats) = strom_storage::compact_offline(&input, now_ms, delete_retention)?;
                    p.with_log(|log| log.install_cleaned(cleaned)).map(|()| stats)
                });
                match outcome {
                    Ok((b, a)) => {
                        p.compacted_at_segments.store(segments, Ordering::Release);
                        if b != a {
                            tracing::info!(partition = ?p, before = b, after = a, "compacted");
                        }
                        before += b;
                        after += a;
                    }
                    Err(e) => tracing::error!(partition = ?p, error = %e, "compaction failed"),
                }
            }
        }
        (before, after)
    }

    /// One retention pass over every topic whose `cleanup.policy` includes `delete`:
    /// whole sealed segments past `retention.ms` or beyond `retention.bytes` go.
    pub fn apply_retention(&self, now_ms: i64) {
        for topic in self.topics() {
            let policy = self.topic_setting(&topic, "cleanup.policy");
            if !policy.split(',').any(|p| p.trim() == "delete") {
                continue;
            }
            let retention_ms = self.setting_i64(&topic.configs, "retention.ms");
            let retention_bytes = self.setting_i64(&topic.configs, "retention.bytes");
            for p in &topic.partitions {
                match p.with_log(|log| log.apply_retention(now_ms, retention_ms, retention_bytes)) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(partition = ?p, segments = n, start = p.log_start_offset(), "retention deleted segments")
                    }
                    Err(e) => tracing::error!(partition = ?p, error = %e, "retention failed"),
                }
            }
        }
    }

    fn open_topic(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> anyhow::Result<Topic> {
        let name: Arc<str> = Arc::from(name);
        let parts = self.open_partitions(&name, 0..partitions, &configs)?;
        Ok(Topic { name, id, partitions: parts, configs })
    }

    /// Opens (creating if needed) the logs of partitions `range` of topic `name`.
    fn open_partitions(
        &self,
        name: &Arc<str>,
        range: std::ops::Range<i32>,
        configs: &BTreeMap<String, String>,
    ) -> anyhow::Result<Vec<Arc<Partition>>> {
        let log_config = self.log_config(configs);
        let mut parts = Vec::with_capacity(range.len());
        for index in range {
            let dir = self.data_dir.join(format!("{name}-{index}"));
            let log = Log::open(&dir, log_config.clone()).with_context(|| format!("opening {}", dir.display()))?;
            parts.push(Arc::new(Partition::new(name.clone(), index, log)));
        }
        Ok(parts)
    }

    /// Replaces a topic's config overrides (AlterConfigs semantics: the given set is the
    /// new set). Changes persist and apply to the live logs at once.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), (ErrorCode, String)> {
        topic_config::validate(&configs).map_err(|m| (ErrorCode::InvalidConfig, m))?;
        let _w = self.write_lock();
        let old =
            self.topic(name).ok_or((ErrorCode::UnknownTopicOrPartition, format!("topic {name} does not exist")))?;
        if validate_only {
            return Ok(());
        }
        let set = configs.iter().filter(|(k, v)| old.configs.get(*k) != Some(*v)).map(|(k, v)| (k, Some(v)));
        let removed = old.configs.keys().filter(|k| !configs.contains_key(*k)).map(|k| (k, None));
        let records: Vec<Record> = set
            .chain(removed)
            .map(|(k, v)| Record::Config {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_string(),
                name: k.clone(),
                value: v.cloned(),
            })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        self.commit(records, ErrorCode::UnknownTopicOrPartition)?;
        Ok(())
    }

    /// A group's config overrides (resource type GROUP), empty if it has none. Groups need
    /// not exist to have configs: Kafka lets an operator configure a group before its
    /// first member joins (that is how `share.auto.offset.reset` is usually set).
    pub fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.image().configs.get(&(RESOURCE_GROUP, group.to_string())).cloned().unwrap_or_default()
    }

    /// Replaces a group's config overrides (the given set is the new set), through the
    /// metadata log like topic configs, so every broker sees them.
    pub fn set_group_configs(
        &self,
        group: &str,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), (ErrorCode, String)> {
        if group.is_empty() {
            return Err((ErrorCode::InvalidRequest, "a group config needs a group id".to_string()));
        }
        crate::config::group::validate_group_configs(&configs).map_err(|m| (ErrorCode::InvalidConfig, m))?;
        let _w = self.write_lock();
        if validate_only {
            return Ok(());
        }
        let old = self.group_configs(group);
        let set = configs.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, v)| (k, Some(v)));
        let removed = old.keys().filter(|k| !configs.contains_key(*k)).map(|k| (k, None));
        let records: Vec<Record> = set
            .chain(removed)
            .map(|(k, v)| Record::Config {
                resource_type: RESOURCE_GROUP,
                resource_name: group.to_string(),
                name: k.clone(),
                value: v.cloned(),
            })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
        self.commit(records, ErrorCode::InvalidRequest)?;
        Ok(())
    }

    /// CreatePartitions: grows a topic to `count` partitions (never shrinks).
    pub fn add_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), (ErrorCode, String)> {
        let _w = self.write_lock();
        let old =
            self.topic(name).ok_or((ErrorCode::UnknownTopicOrPartition, format!("topic {name} does not exist")))?;
        let current = old.partitions.len() as i32;
        if count <= current {
            return Err((
                ErrorCode::InvalidPartitions,
                format!("topic has {current} partitions; {count} would not add any"),
            ));
        }
        if Self::is_internal(name) {
            return Err((ErrorCode::InvalidRequest, format!("{name} is an internal topic")));
        }
        let image = self.image();
        let rf = image
            .topics
            .get(&old.id)
            .and_then(|t| t.partitions.values().next())
            .map_or(1, |p| p.replicas.len().max(1) as i16);
        let replicas = self.place(&image, current..count, rf)?;
        if validate_only {
            return Ok(());
        }
        let records: Vec<Record> =
            (current..count).zip(replicas).map(|(p, r)| partition_record(old.id, p, r)).collect();
        self.commit(records, ErrorCode::UnknownTopicOrPartition)?;
        Ok(())
    }

    /// The topic named `name`, if it exists.
    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_topics().get(name).cloned()
    }

    /// The topic with id `id`, if it exists.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        self.read_topics().values().find(|t| &t.id == id).cloned()
    }

    /// All topics, sorted by name.
    pub fn topics(&self) -> Vec<Arc<Topic>> {
        let mut v: Vec<_> = self.read_topics().values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// A partition of a topic by name.
    pub fn partition(&self, topic: &str, index: i32) -> Option<Arc<Partition>> {
        self.topic(topic)?.partitions.get(usize::try_from(index).ok()?).cloned()
    }

    /// The address of `broker` on this broker's first listener (the inter-broker one):
    /// where followers fetch and coordinators send markers and verifications.
    pub fn broker_address(&self, broker: i32) -> Option<String> {
        let listeners = &self.config.listeners;
        let inter = listeners.get(self.config.inter_broker_listener).or(listeners.first());
        let name = inter.map(|l| l.name.clone()).unwrap_or_default();
        let image = self.image();
        let b = image.brokers.get(&broker)?;
        let ep = b.endpoints.iter().find(|e| e.name == name).or(b.endpoints.first())?;
        Some(format!("{}:{}", ep.host, ep.port))
    }

    /// Whether `name` is one of the broker's own topics.
    pub fn is_internal(name: &str) -> bool {
        name == OFFSETS_TOPIC || name == TXN_TOPIC || name == crate::share::state::SHARE_STATE_TOPIC
    }

    /// `__transaction_state`, created on first use as Kafka creates it (on the first
    /// FindCoordinator for a transactional id): `transaction.state.log.num.partitions`
    /// partitions, `transaction.state.log.replication.factor` replicas (at most the live
    /// brokers), `min.insync.replicas` from `transaction.state.log.min.isr` (at most the
    /// replicas), compacted. `None` while it cannot be created (too few brokers, no
    /// quorum leader); the caller answers COORDINATOR_NOT_AVAILABLE and the client retries.
    pub fn transaction_topic(&self) -> Option<Arc<Topic>> {
        if let Some(t) = self.topic(TXN_TOPIC) {
            return Some(t);
        }
        let int = |k: &str, d: i64| self.config.values.get(k).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(d);
        let partitions = int("transaction.state.log.num.partitions", 50).clamp(1, 10_000) as i32;
        let brokers = self.live_brokers(&self.image()).len().max(1) as i64;
        let rf = int("transaction.state.log.replication.factor", 3).clamp(1, brokers) as i16;
        let min_isr = int("transaction.state.log.min.isr", 2).clamp(1, i64::from(rf));
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("min.insync.replicas".to_string(), min_isr.to_string()),
            ("segment.bytes".to_string(), "104857600".to_string()),
        ]);
        match self.create_topic_placed(TXN_TOPIC, partitions, Some(rf), None, configs, false) {
            Ok(t) => Some(t),
            Err((ErrorCode::TopicAlreadyExists, _)) => self.opened(TXN_TOPIC),
            Err((code, m)) => {
                tracing::warn!(?code, error = %m, "cannot create {TXN_TOPIC}");
                None
            }
        }
    }

    /// `__share_group_state`, created on first use as Kafka's share coordinator creates
    /// it: `share.coordinator.state.topic.num.partitions` partitions (50),
    /// `share.coordinator.state.topic.replication.factor` replicas (3, at most the live
    /// brokers), `min.insync.replicas` from `share.coordinator.state.topic.min.isr` (2, at
    /// most the replicas), compacted. `None` while it cannot be created.
    pub fn share_state_topic(&self) -> Option<Arc<Topic>> {
        let name = crate::share::state::SHARE_STATE_TOPIC;
        if let Some(t) = self.topic(name) {
            return Some(t);
        }
        let int = |k: &str, d: i64| self.config.values.get(k).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(d);
        let partitions = int("share.coordinator.state.topic.num.partitions", 50).clamp(1, 10_000) as i32;
        let brokers = self.live_brokers(&self.image()).len().max(1) as i64;
        let rf = int("share.coordinator.state.topic.replication.factor", 3).clamp(1, brokers) as i16;
        let min_isr = int("share.coordinator.state.topic.min.isr", 2).clamp(1, i64::from(rf));
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("min.insync.replicas".to_string(), min_isr.to_string()),
            ("segment.bytes".to_string(), "104857600".to_string()),
        ]);
        match self.create_topic_placed(name, partitions, Some(rf), None, configs, false) {
            Ok(t) => Some(t),
            Err((ErrorCode::TopicAlreadyExists, _)) => self.opened(name),
            Err((code, m)) => {
                tracing::warn!(?code, error = %m, "cannot create {name}");
                None
            }
        }
    }

    /// A topic another node has just created: the image may hold it before this node
    /// has opened its logs (a request forwarded here by the creator arrives first), so
    /// open them now rather than answer that it cannot be created.
    fn opened(&self, name: &str) -> Option<Arc<Topic>> {
        if let Some(t) = self.topic(name) {
            return Some(t);
        }
        if let Err(e) = self.follow(&self.image()) {
            tracing::warn!(topic = name, error = %format!("{e:#}"), "cannot open a topic created elsewhere");
        }
        self.topic(name)
    }

    /// The schema registry's `_schemas` topic, created on first use: one partition,
    /// compacted, replicated like the coordinators' topics (Confluent's
    /// `kafkastore.topic.replication.factor` is 3).
    pub fn schemas_topic(&self) -> Option<Arc<Topic>> {
        let name = crate::registry::SCHEMAS_TOPIC;
        if let Some(t) = self.topic(name) {
            return Some(t);
        }
        let brokers = self.live_brokers(&self.image()).len().max(1) as i64;
        let rf = 3i64.clamp(1, brokers) as i16;
        let configs = BTreeMap::from([
            ("cleanup.policy".to_string(), "compact".to_string()),
            ("min.insync.replicas".to_string(), i64::from(rf).min(2).to_string()),
        ]);
        match self.create_topic_placed(name, 1, Some(rf), None, configs, false) {
            Ok(t) => Some(t),
            Err((ErrorCode::TopicAlreadyExists, _)) => self.opened(name),
            Err((code, m)) => {
                tracing::warn!(?code, error = %m, "cannot create {name}");
                None
            }
        }
    }

    /// Creates a topic, or explains why not with Kafka's error code.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, (ErrorCode, String)> {
        if !valid_topic_name(name) {
            return Err((ErrorCode::InvalidTopicException, format!("topic name {name:?} is not valid")));
        }
        if Self::is_internal(name) {
            return Err((ErrorCode::TopicAlreadyExists, format!("{name} is an internal topic")));
        }
        self.create_topic_unchecked(name, partitions, configs, validate_only)
    }

    fn create_topic_unchecked(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, (ErrorCode, String)> {
        // Auto-created topics get default.replication.factor in a cluster, as Kafka's do.
        let rf = self.quorum().map(|_| self.config.default_replication_factor);
        self.create_topic_placed(name, partitions, rf, None, configs, validate_only)
    }

    /// Creates a topic with `partitions` partitions of `replication_factor` replicas
    /// placed across the live brokers (default: 1), or with the given replica
    /// `assignments` (one list of broker ids per partition).
    pub fn create_topic_placed(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: Option<i16>,
        assignments: Option<Vec<Vec<i32>>>,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, (ErrorCode, String)> {
        topic_config::validate(&configs).map_err(|m| (ErrorCode::InvalidConfig, m))?;
        let _w = self.write_lock();
        let image = self.image();
        let records = self.topic_records(&image, name, partitions, replication_factor, assignments, &configs)?;
        let Some(Record::Topic { id, .. }) = records.first() else {
            return Err((ErrorCode::UnknownServerError, "no topic record".into()));
        };
        let id = *id;
        if validate_only {
            return Ok(Arc::new(Topic { name: Arc::from(name), id, partitions: Vec::new(), configs }));
        }
        match self.commit(records, ErrorCode::TopicAlreadyExists) {
            Ok(_) => {}
            // The quorum retried our write after an answer was lost (a leader change): the
            // topic that exists is ours, with the id we chose.
            Err((ErrorCode::TopicAlreadyExists, _)) if self.image().topic(name).is_some_and(|t| t.id == id) => {
                self.follow(&self.image()).map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
            }
            Err(e) => return Err(e),
        }
        let topic = self
            .topic(name)
            .filter(|t| t.id == id)
            .ok_or_else(|| (ErrorCode::UnknownServerError, format!("topic {name} was created but is not open here")))?;
        tracing::info!(topic = name, partitions, id = %id, "created topic");
        Ok(topic)
    }

    /// The records creating a topic, checked against `image`.
    fn topic_records(
        &self,
        image: &Image,
        name: &str,
        partitions: i32,
        replication_factor: Option<i16>,
        assignments: Option<Vec<Vec<i32>>>,
        configs: &BTreeMap<String, String>,
    ) -> Result<Vec<Record>, (ErrorCode, String)> {
        if image.topic(name).is_some() || self.read_topics().contains_key(name) {
            return Err((ErrorCode::TopicAlreadyExists, format!("topic {name:?} already exists")));
        }
        let replicas = match assignments {
            Some(a) => {
                self.check_assignments(image, &a)?;
                a
            }
            None => {
                if partitions < 1 {
                    return Err((ErrorCode::InvalidPartitions, "number of partitions must be at least 1".into()));
                }
                self.place(image, 0..partitions, replication_factor.unwrap_or(1))?
            }
        };
        let id = random_uuid();
        let mut records = vec![Record::Topic { name: name.to_string(), id }];
        records.extend(replicas.into_iter().enumerate().map(|(p, r)| partition_record(id, p as i32, r)));
        records.extend(configs.iter().map(|(k, v)| Record::Config {
            resource_type: RESOURCE_TOPIC,
            resource_name: name.to_string(),
            name: k.clone(),
            value: Some(v.clone()),
        }));
        Ok(records)
    }

    /// The brokers replicas may go to: every registered, unfenced broker in a cluster,
    /// this node on a single node. `(id, rack)`, by id.
    fn live_brokers(&self, image: &Image) -> Vec<(i32, Option<String>)> {
        match &self.backend {
            Backend::Local(_) => vec![(self.config.node_id, self.config.rack.clone())],
            Backend::Quorum(_) => image
                .brokers
                .iter()
                .filter(|(_, b)| !b.fenced && !b.in_controlled_shutdown)
                .map(|(&id, b)| (id, b.rack.clone()))
                .collect(),
        }
    }

    /// Replica lists for partitions `range` over the live brokers, from a random start.
    fn place(&self, image: &Image, range: std::ops::Range<i32>, rf: i16) -> Result<Vec<Vec<i32>>, (ErrorCode, String)> {
        let start = random_uuid().0[0] as usize;
        place_replicas(&self.live_brokers(image), range, rf, start)
    }

    fn check_assignments(&self, image: &Image, a: &[Vec<i32>]) -> Result<(), (ErrorCode, String)> {
        let known: Vec<i32> = match &self.backend {
            Backend::Local(_) => vec![self.config.node_id],
            Backend::Quorum(_) => image.brokers.keys().copied().collect(),
        };
        let rf = a.first().map_or(0, Vec::len);
        for (p, replicas) in a.iter().enumerate() {
            let mut distinct = replicas.clone();
            distinct.sort_unstable();
            distinct.dedup();
            if replicas.is_empty() || distinct.len() != replicas.len() || replicas.len() != rf {
                return Err((
                    ErrorCode::InvalidReplicaAssignment,
                    format!("partition {p}: replicas {replicas:?} must be {rf} distinct broker ids"),
                ));
            }
            if let Some(b) = replicas.iter().find(|b| !known.contains(b)) {
                return Err((
                    ErrorCode::InvalidReplicaAssignment,
                    format!("partition {p}: broker {b} is not registered (brokers: {known:?})"),
                ));
            }
        }
        Ok(())
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, ErrorCode> {
        let _w = self.write_lock();
        let id = self.topic(name).ok_or(ErrorCode::UnknownTopicOrPartition)?.id;
        let result = self.commit(vec![Record::RemoveTopic { id }], ErrorCode::UnknownTopicOrPartition);
        // As for creation: a retried removal of our own change finds the topic gone.
        let result = match result {
            Err((ErrorCode::UnknownTopicOrPartition, _)) if !self.image().topics.contains_key(&id) => self
                .follow(&self.image())
                .map(|()| self.image())
                .map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}"))),
            other => other,
        };
        if let Err((code, m)) = result {
            tracing::error!(topic = name, error = %m, "could not record topic deletion");
            return Err(code);
        }
        Ok(id)
    }

    /// The metadata log's end offset (DescribeQuorum, metrics).
    pub fn metadata_log_end(&self) -> i64 {
        match &self.backend {
            Backend::Local(l) => l.lock().unwrap_or_else(|p| p.into_inner()).end_offset(),
            Backend::Quorum(q) => q.published().borrow().applied + 1,
        }
    }

    /// Sets and deletes SCRAM credentials (AlterUserScramCredentials, ADR 0013) as one
    /// change; a deletion of a credential that no longer exists refuses it whole.
    pub fn alter_scram(&self, records: Vec<Record>) -> Result<(), (ErrorCode, String)> {
        if records.is_empty() {
            return Ok(());
        }
        let _w = self.write_lock();
        self.commit(records, ErrorCode::ResourceNotFound).map(|_| ())
    }

    /// Creates and deletes ACL bindings (CreateAcls, DeleteAcls; ADR 0014) as one change.
    /// Creating a binding that exists is a no-op; deleting one another request deleted
    /// first refuses the change whole.
    pub fn alter_acls(&self, records: Vec<Record>) -> Result<(), (ErrorCode, String)> {
        let _w = self.write_lock();
        let image = self.image();
        let records: Vec<Record> =
            records.into_iter().filter(|r| !matches!(r, Record::Acl(b) if image.acls.contains(b))).collect();
        if records.is_empty() {
            return Ok(());
        }
        self.commit(records, ErrorCode::UnknownServerError).map(|_| ())
    }

    /// A user's SCRAM credential for `mechanism` (1: SHA-256, 2: SHA-512).
    pub fn scram_credential(&self, user: &str, mechanism: i8) -> Option<image::ScramImage> {
        self.image().scram.get(&(user.to_string(), mechanism)).cloned()
    }

    /// A fresh producer id, never handed out before by any node: ids come from blocks
    /// committed to the metadata log before use.
    pub fn allocate_producer_id(&self) -> Result<i64, ErrorCode> {
        let mut ids = self.lock_held_across_commits(&self.producer_ids);
        // A block another node took first is refused; the next try starts after it.
        for _ in 0..5 {
            if ids.0 < ids.1 {
                let id = ids.0;
                ids.0 += 1;
                return Ok(id);
            }
            let from = self.image().next_producer_id;
            let block = Record::ProducerIds {
                broker_id: self.config.node_id,
                broker_epoch: self.broker_epoch(),
                next_producer_id: from + PRODUCER_ID_BLOCK,
            };
            match self.commit(vec![block], ErrorCode::UnknownServerError) {
                Ok(_) => *ids = (from, from + PRODUCER_ID_BLOCK),
                Err((ErrorCode::UnknownServerError, m)) => {
                    tracing::debug!(error = %m, "producer-id block taken by another node; retrying");
                }
                Err((code, m)) => {
                    tracing::error!(error = %m, "could not record a producer-id block");
                    return Err(code);
                }
            }
        }
        Err(ErrorCode::UnknownServerError)
    }

    /// Answers an idempotent producer's InitProducerId: a new id at epoch 0, or (KIP-360,
    /// v3+) the same id at the next epoch when the producer names its current id and
    /// epoch. A producer naming an epoch older than the newest one handed out for its id is
    /// fenced (`Err(ProducerFenced)`; the handler maps it per version). A retried bump (the
    /// epoch just below the newest) gets the newest again. An exhausted epoch gets a new id.
    pub fn init_producer(&self, producer_id: i64, epoch: i16) -> Result<(i64, i16), ErrorCode> {
        if producer_id >= 0 && epoch >= 0 {
            let mut epochs = self.producer_epochs.lock().unwrap_or_else(|p| p.into_inner());
            let known = epochs.get(&producer_id).copied();
            match known {
                Some(k) if epoch == k - 1 => return Ok((producer_id, k)),
                Some(k) if epoch != k => return Err(ErrorCode::ProducerFenced),
                _ => {}
            }
            if epoch < i16::MAX - 1 {
                epochs.insert(producer_id, epoch + 1);
                return Ok((producer_id, epoch + 1));
            }
        }
        let id = self.allocate_producer_id()?;
        self.producer_epochs.lock().unwrap_or_else(|p| p.into_inner()).insert(id, 0);
        Ok((id, 0))
    }

    /// The effective value of topic setting `key` for `topic`: its override, else the
    /// broker setting it falls back to, else Kafka's default.
    pub fn topic_setting(&self, topic: &Topic, key: &str) -> String {
        if let Some(v) = topic.configs.get(key) {
            return v.clone();
        }
        let Some(k) = topic_config::lookup(key) else { return String::new() };
        topic_config::resolve(k, &topic.configs, &self.config.explicit).value
    }

    /// Closes every log cleanly (trims preallocated files), for a graceful shutdown.
    pub fn shutdown(&self) {
        match &self.backend {
            Backend::Local(l) => l.lock().unwrap_or_else(|p| p.into_inner()).shutdown(),
            // Raft stops with the runtime; its log is fsync'd on every append.
            Backend::Quorum(_) => {}
        }
        for topic in self.write_topics().drain().map(|(_, t)| t) {
            for p in &topic.partitions {
                // Seal, fsync, snapshot producer state and leave the clean-shutdown marker.
                if let Err(e) = p.with_log(|log| log.shutdown()) {
                    tracing::error!(partition = ?p, error = %e, "clean shutdown of the log failed");
                }
            }
        }
    }
}

/// Once a second: fsyncs partitions whose oldest unflushed data is older than their
/// topic's `flush.ms` (a no-op with the default, which leaves it to the page cache), and
/// checkpoints each partition's recovery point at its fsync'd offset.
pub async fn run_flusher(cluster: std::sync::Weak<Metadata>) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let Some(c) = cluster.upgrade() else { return };
        let now = strom_storage::now_ms();
        for topic in c.topics() {
            let interval = c.setting_i64(&topic.configs, "flush.ms");
            if interval == i64::MAX || interval < 0 {
                continue;
            }
            for p in &topic.partitions {
                p.sync_if_older_than(interval, now).await;
            }
        }
        // Advance recovery points to what fsyncs made durable (a no-op when unchanged).
        for topic in c.topics() {
            for p in &topic.partitions {
                let durable = p.durable_offset();
                if durable > 0 {
                    if let Err(e) = p.with_log(|log| log.checkpoint_recovery_point(durable)) {
                        tracing::warn!(partition = ?p, error = %e, "could not write the recovery point");
                    }
                }
            }
        }
    }
}

/// Runs the cleaner every `log.cleaner.backoff.ms` until the cluster is dropped.
pub async fn run_cleaner(cluster: std::sync::Weak<Metadata>) {
    loop {
        let interval = match cluster.upgrade() {
            Some(c) => c.config.values.get("log.cleaner.backoff.ms").and_then(|v| v.parse().ok()).unwrap_or(15_000),
            None => return,
        };
        tokio::time::sleep(std::time::Duration::from_millis(interval)).await;
        let Some(c) = cluster.upgrade() else { return };
        // Compaction reads and rewrites files: keep it off the async worker threads.
        let _ = tokio::task::spawn_blocking(move || c.compact(strom_storage::now_ms(), false)).await;
    }
}

/// Runs retention every `log.retention.check.interval.ms` until the cluster is dropped.
pub async fn run_retention(cluster: std::sync::Weak<Metadata>) {
    loop {
        let interval = match cluster.upgrade() {
            Some(c) => {
                c.config.values.get("log.retention.check.interval.ms").and_then(|v| v.parse().ok()).unwrap_or(300_000)
            }
            None => return,
        };
        tokio::time::sleep(std::time::Duration::from_millis(interval)).await;
        let Some(c) = cluster.upgrade() else { return };
        // Retention deletes files: keep it off the async worker threads.
        let _ = tokio::task::spawn_blocking(move || c.apply_retention(strom_storage::now_ms())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_spread_leaders_evenly_and_cover_racks() {
        let plain: Vec<(i32, Option<String>)> = (1..=3).map(|b| (b, None)).collect();
        for start in 0..3 {
            let one = place_replicas(&plain, 0..6, 1, start).expect("rf 1");
            for b in 1..=3 {
                assert_eq!(one.iter().filter(|r| r[0] == b).count(), 2, "{one:?}");
            }
            let three = place_replicas(&plain, 0..6, 3, start).expect("rf 3");
            for r in &three {
                let mut d = r.clone();
                d.sort();
                assert_eq!(d, vec![1, 2, 3], "distinct replicas: {three:?}");
            }
        }
        assert_eq!(place_replicas(&plain, 0..1, 4, 0).unwrap_err().0, ErrorCode::InvalidReplicationFactor);
        assert_eq!(place_replicas(&plain, 0..1, 0, 0).unwrap_err().0, ErrorCode::InvalidReplicationFactor);
        // Two racks of two brokers: every partition with two replicas has one in each.
        let racked: Vec<(i32, Option<String>)> =
            vec![(1, Some("a".into())), (2, Some("a".into())), (3, Some("b".into())), (4, Some("b".into()))];
        let rack = |id: i32| racked.iter().find(|b| b.0 == id).and_then(|b| b.1.clone());
        for start in 0..4 {
            let two = place_replicas(&racked, 0..16, 2, start).expect("rf 2");
            for r in &two {
                assert_ne!(rack(r[0]), rack(r[1]), "replicas {r:?} share a rack (start {start})");
            }
            for b in 1..=4 {
                assert_eq!(two.iter().filter(|r| r[0] == b).count(), 4, "leaders even: {two:?}");
            }
        }
    }

    #[test]
    fn topic_names_follow_kafkas_rules() {
        assert!(valid_topic_name("orders.v1_eu-west"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name(".."));
        assert!(!valid_topic_name("a/b"));
        assert!(!valid_topic_name(&"x".repeat(250)));
    }

    /// Captures what the broker logs at WARN and above while `f` runs.
    fn warnings_during(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let out = buf.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn deleting_a_topic_closes_its_logs_without_warnings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let overrides = BTreeMap::from([("log.dirs".to_string(), dir.path().display().to_string())]);
        let config = Config::from_sources(None, &BTreeMap::new(), &overrides).expect("config");
        let cluster = Metadata::open(config).expect("open");
        let mut b = strom_protocol::records::BatchBuilder::new(strom_storage::now_ms());
        b.add(Some(b"k"), Some(b"v"));
        let batch = b.build();
        let logs = warnings_during(|| {
            let topic = cluster.create_topic("doomed", 3, BTreeMap::new(), false).expect("create");
            for p in &topic.partitions {
                p.append(&batch).expect("append");
            }
            drop(topic);
            cluster.delete_topic("doomed").expect("delete");
        });
        assert!(logs.is_empty(), "deleting a topic logged: {logs}");
        assert!(!dir.path().join("doomed-0").exists());
    }

    fn config_for(dir: &Path, extra: &[(&str, &str)]) -> Config {
        let mut overrides = BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())]);
        overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Config::from_sources(None, &BTreeMap::new(), &overrides).expect("config")
    }

    /// ADR 0009: a data directory of the strom-meta.json era opens with every topic, id,
    /// config, record and producer-id reservation, and the file is renamed afterwards.
    #[test]
    fn a_strom_meta_json_directory_is_upgraded_to_the_metadata_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = random_uuid();
        let legacy = MetaFile {
            version: 1,
            cluster_id: "legacy-cluster".into(),
            producer_id_limit: 5000,
            topics: BTreeMap::from([(
                "legacy".to_string(),
                TopicMeta {
                    id: uuid_hex(&id),
                    partitions: 2,
                    configs: BTreeMap::from([("retention.ms".to_string(), "1234".to_string())]),
                },
            )]),
        };
        std::fs::write(dir.path().join(META_FILE), serde_json::to_vec_pretty(&legacy).expect("json")).expect("write");
        {
            let mut log = Log::open(&dir.path().join("legacy-1"), LogConfig::default()).expect("log");
            let mut b = strom_protocol::records::BatchBuilder::new(strom_storage::now_ms());
            b.add(Some(b"k"), Some(b"kept"));
            log.append(&b.build(), 0).expect("append");
            log.shutdown().expect("shutdown");
        }
        for round in 0..2 {
            let meta = Metadata::open(config_for(dir.path(), &[])).expect("open");
            assert_eq!(meta.cluster_id, "legacy-cluster", "round {round}");
            let t = meta.topic("legacy").expect("topic");
            assert_eq!((t.id, t.partitions.len()), (id, 2), "round {round}");
            assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1234"));
            assert_eq!(t.partitions[1].high_watermark(), 1, "the partition's data is where it was");
            assert!(meta.topic(OFFSETS_TOPIC).is_some());
            let pid = meta.allocate_producer_id().expect("producer id");
            assert!(pid >= 5000, "producer id {pid} may have been handed out before the upgrade");
            assert!(!dir.path().join(META_FILE).exists());
            assert!(dir.path().join("strom-meta.json.migrated").exists());
            meta.shutdown();
        }
        let err = Metadata::open(config_for(dir.path(), &[("cluster.id", "another")])).expect_err("refused");
        assert!(format!("{err:#}").contains("does not match"), "{err:#}");
    }

    /// Topics, configs, partitions added and deletions persist through the metadata log.
    #[test]
    fn metadata_changes_survive_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (id, first_pid) = {
            let meta = Metadata::open(config_for(dir.path(), &[])).expect("open");
            let t = meta.create_topic("kept", 1, BTreeMap::new(), false).expect("create");
            meta.create_topic("gone", 3, BTreeMap::new(), false).expect("create");
            meta.set_topic_configs("kept", BTreeMap::from([("retention.ms".to_string(), "99".to_string())]), false)
                .expect("configs");
            meta.add_partitions("kept", 4, false).expect("partitions");
            meta.delete_topic("gone").expect("delete");
            let pid = meta.allocate_producer_id().expect("pid");
            meta.shutdown();
            (t.id, pid)
        };
        let meta = Metadata::open(config_for(dir.path(), &[])).expect("reopen");
        let t = meta.topic("kept").expect("kept");
        assert_eq!((t.id, t.partitions.len()), (id, 4));
        assert_eq!(t.configs, BTreeMap::from([("retention.ms".to_string(), "99".to_string())]));
        assert!(meta.topic("gone").is_none());
        assert!(meta.allocate_producer_id().expect("pid") > first_pid, "producer ids are never handed out twice");
    }

    #[test]
    fn uuid_hex_round_trips() {
        let u = random_uuid();
        assert_eq!(parse_uuid_hex(&uuid_hex(&u)), Some(u));
        assert_eq!(parse_uuid_hex("zz"), None);
    }
}
