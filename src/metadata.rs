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

pub mod image;
pub mod log;

use strom_protocol::metadata_record::{Record, RESOURCE_TOPIC};

/// The pre-metadata-log file (format version 1), upgraded on first start (ADR 0009).
const META_FILE: &str = "strom-meta.json";
/// Kafka's name for the file holding the directory's cluster and node ids.
const PROPERTIES_FILE: &str = "meta.properties";
/// Metadata changes between snapshots of the image.
const SNAPSHOT_INTERVAL: i64 = 1000;

/// The internal topic holding committed offsets and group metadata (Kafka's name).
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Producer ids are handed out from blocks persisted ahead of use, so an id is never
/// reused after a crash.
const PRODUCER_ID_BLOCK: i64 = 1000;

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

/// All topics on this broker.
pub struct Metadata {
    pub config: Config,
    pub cluster_id: String,
    data_dir: PathBuf,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// The metadata log and its image; its lock serialises metadata changes.
    meta: Mutex<log::MetadataLog>,
    next_producer_id: Mutex<i64>,
    /// The newest epoch handed out per producer id since start (InitProducerId fencing).
    producer_epochs: Mutex<HashMap<i64, i16>>,
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

impl Metadata {
    /// Opens the data directory: replays the metadata log (upgrading `strom-meta.json`
    /// on first start, ADR 0009) and opens every partition's log.
    pub fn open(config: Config) -> anyhow::Result<Metadata> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let mut mlog = log::MetadataLog::open(&data_dir, SNAPSHOT_INTERVAL)?;
        let mut cluster_id = read_properties(&data_dir)?.remove("cluster.id");
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
            if cluster_id.is_none() && !meta.cluster_id.is_empty() {
                cluster_id = Some(meta.cluster_id.clone());
            }
        }
        let cluster_id = match (cluster_id, &config.cluster_id) {
            (Some(have), Some(want)) => {
                anyhow::ensure!(
                    want == &have,
                    "cluster.id {want} does not match {have} stored in {}",
                    data_dir.join(PROPERTIES_FILE).display()
                );
                have
            }
            (Some(have), None) => have,
            (None, want) => want.clone().unwrap_or_else(|| random_uuid().to_string()),
        };
        let props = format!("# Strom data directory\nversion=1\ncluster.id={cluster_id}\nnode.id={}\n", config.node_id);
        write_atomically(&data_dir, PROPERTIES_FILE, props.as_bytes())
            .with_context(|| format!("writing {}", data_dir.join(PROPERTIES_FILE).display()))?;
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

        let cluster = Metadata {
            cluster_id,
            data_dir,
            topics: RwLock::new(HashMap::new()),
            meta: Mutex::new(mlog),
            next_producer_id: Mutex::new(next_producer_id),
            producer_epochs: Mutex::new(HashMap::new()),
            config,
        };
        let (mut clean, mut recovered) = (0usize, 0usize);
        for t in image.topics.values() {
            let configs = image.configs.get(&(RESOURCE_TOPIC, t.name.clone())).cloned().unwrap_or_default();
            let topic = cluster.open_topic(&t.name, t.id, t.partitions.len() as i32, configs)?;
            for p in &topic.partitions {
                if p.with_log(|l| l.opened_clean()) {
                    clean += 1;
                } else {
                    recovered += 1;
                }
            }
            cluster.write_topics().insert(t.name.clone(), Arc::new(topic));
        }
        // One line an operator (or a test) can check: after a clean shutdown every
        // partition reopens from its marker, with no tail scan.
        tracing::info!(
            partitions = clean + recovered,
            clean,
            recovered,
            "opened partition logs (clean: reopened after a clean shutdown, tail not scanned; recovered: tail scanned)"
        );
        if cluster.topic(OFFSETS_TOPIC).is_none() {
            let configs = BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), cluster.config.offsets_topic_segment_bytes.to_string()),
            ]);
            let n = cluster.config.offsets_topic_partitions.max(1);
            cluster
                .create_internal_topic(OFFSETS_TOPIC, n, configs)
                .map_err(|(_, m)| anyhow::anyhow!("creating {}: {m}", OFFSETS_TOPIC))?;
        }
        Ok(cluster)
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
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
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
        meta.append(&records).map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
        let log_config = self.log_config(&configs);
        for p in &old.partitions {
            if let Err(e) = p.with_log(|log| log.set_config(log_config.clone())) {
                tracing::warn!(partition = ?p, error = %e, "could not apply new log settings");
            }
        }
        let new = Topic { name: old.name.clone(), id: old.id, partitions: old.partitions.clone(), configs };
        self.write_topics().insert(name.to_string(), Arc::new(new));
        tracing::info!(topic = name, "topic configs changed");
        Ok(())
    }

    /// CreatePartitions: grows a topic to `count` partitions (never shrinks).
    pub fn add_partitions(&self, name: &str, count: i32, validate_only: bool) -> Result<(), (ErrorCode, String)> {
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
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
        if validate_only {
            return Ok(());
        }
        let added = self
            .open_partitions(&old.name, current..count, &old.configs)
            .map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
        let records: Vec<Record> = (current..count).map(|p| self.partition_record(old.id, p)).collect();
        meta.append(&records).map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
        let mut partitions = old.partitions.clone();
        partitions.extend(added);
        let new = Topic { name: old.name.clone(), id: old.id, partitions, configs: old.configs.clone() };
        self.write_topics().insert(name.to_string(), Arc::new(new));
        tracing::info!(topic = name, from = current, to = count, "partitions added");
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

    /// Whether `name` is one of the broker's own topics.
    pub fn is_internal(name: &str) -> bool {
        name == OFFSETS_TOPIC
    }

    fn create_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<Topic>, (ErrorCode, String)> {
        self.create_topic_unchecked(name, partitions, configs, false)
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
        if partitions < 1 {
            return Err((ErrorCode::InvalidPartitions, "number of partitions must be at least 1".into()));
        }
        topic_config::validate(&configs).map_err(|m| (ErrorCode::InvalidConfig, m))?;
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        if self.read_topics().contains_key(name) {
            return Err((ErrorCode::TopicAlreadyExists, format!("topic {name:?} already exists")));
        }
        let id = random_uuid();
        if validate_only {
            return Ok(Arc::new(Topic { name: Arc::from(name), id, partitions: Vec::new(), configs }));
        }
        let topic = self
            .open_topic(name, id, partitions, configs.clone())
            .map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
        let mut records = vec![Record::Topic { name: name.to_string(), id }];
        records.extend((0..partitions).map(|p| self.partition_record(id, p)));
        records.extend(configs.iter().map(|(k, v)| Record::Config {
            resource_type: RESOURCE_TOPIC,
            resource_name: name.to_string(),
            name: k.clone(),
            value: Some(v.clone()),
        }));
        meta.append(&records).map_err(|e| (ErrorCode::KafkaStorageError, format!("{e:#}")))?;
        let topic = Arc::new(topic);
        self.write_topics().insert(name.to_string(), topic.clone());
        tracing::info!(topic = name, partitions, id = %id, "created topic");
        Ok(topic)
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<Uuid, ErrorCode> {
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        let id = self.topic(name).ok_or(ErrorCode::UnknownTopicOrPartition)?.id;
        if let Err(e) = meta.append(&[Record::RemoveTopic { id }]) {
            tracing::error!(topic = name, error = %format!("{e:#}"), "could not record topic deletion");
            return Err(ErrorCode::KafkaStorageError);
        }
        let topic = self.write_topics().remove(name).ok_or(ErrorCode::UnknownTopicOrPartition)?;
        for p in &topic.partitions {
            // Wake long-polling fetches so they notice the topic is gone.
            p.appended.notify_waiters();
            // Close the log before its files go: otherwise the last reference to drop
            // (possibly a fetch still in flight) would try to seal its segment into a
            // directory that no longer exists.
            p.with_log(|log| log.mark_deleted());
            let dir = self.data_dir.join(format!("{name}-{}", p.index));
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove partition directory");
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(topic.id)
    }

    /// The metadata log's end offset (DescribeQuorum, metrics).
    pub fn metadata_log_end(&self) -> i64 {
        self.meta.lock().unwrap_or_else(|p| p.into_inner()).end_offset()
    }

    /// The record placing partition `index` of topic `id` on this node, the only replica.
    fn partition_record(&self, id: Uuid, index: i32) -> Record {
        let me = self.config.node_id;
        Record::Partition {
            topic_id: id,
            partition: index,
            replicas: vec![me],
            isr: vec![me],
            leader: me,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    /// A fresh producer id, never handed out before by this data directory.
    pub fn allocate_producer_id(&self) -> Result<i64, ErrorCode> {
        let mut next = self.next_producer_id.lock().unwrap_or_else(|p| p.into_inner());
        let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
        if *next >= meta.image().next_producer_id {
            let block = Record::ProducerIds {
                broker_id: self.config.node_id,
                broker_epoch: -1,
                next_producer_id: *next + PRODUCER_ID_BLOCK,
            };
            if let Err(e) = meta.append(&[block]) {
                tracing::error!(error = %format!("{e:#}"), "could not record a producer-id block");
                return Err(ErrorCode::KafkaStorageError);
            }
        }
        let id = *next;
        *next += 1;
        Ok(id)
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
        self.meta.lock().unwrap_or_else(|p| p.into_inner()).shutdown();
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
