//! One typed broker configuration, read from (lowest to highest precedence) built-in
//! defaults, an optional Kafka-style properties file, `STROM_*` environment variables and
//! command-line overrides. Keys use Kafka's names wherever Kafka has the setting, so an
//! operator's `server.properties` knowledge carries over: `log.dirs` can be given as
//! `log.dirs=…` in the file, `STROM_LOG_DIRS=…` in the environment or `--log-dirs …`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

pub mod group;
pub mod topic;

/// Broker-level settings Strom honours, with Kafka's defaults unless noted.
pub const BROKER_DEFAULTS: &[(&str, &str, ConfigType, &str)] = &[
    ("node.id", "1", ConfigType::Int, "This broker's id."),
    ("listeners", "PLAINTEXT://localhost:9092", ConfigType::List, "Addresses the broker listens on."),
    ("advertised.listeners", "", ConfigType::List, "Addresses clients are told to use; defaults to listeners."),
    ("log.dirs", "./data", ConfigType::List, "Data directory (Strom uses the first entry)."),
    ("num.partitions", "1", ConfigType::Int, "Partitions of an auto-created topic."),
    ("default.replication.factor", "1", ConfigType::Short, "Replication factor of an auto-created topic."),
    ("auto.create.topics.enable", "true", ConfigType::Boolean, "Create unknown topics on metadata requests."),
    ("log.segment.bytes", "1073741824", ConfigType::Int, "Default segment size."),
    (
        "log.retention.ms",
        "",
        ConfigType::Long,
        "Default retention.ms of topics; unset: log.retention.minutes, then log.retention.hours (168).",
    ),
    ("log.retention.bytes", "-1", ConfigType::Long, "Default retention.bytes of topics (-1: no size limit)."),
    ("log.roll.ms", "", ConfigType::Long, "Default segment.ms of topics; unset: log.roll.hours (168)."),
    (
        "log.flush.interval.messages",
        "9223372036854775807",
        ConfigType::Long,
        "fsync after this many records; 1 = fsync before every acknowledgement (group commit).",
    ),
    (
        "log.flush.interval.ms",
        "",
        ConfigType::Long,
        "fsync data older than this; unset: log.flush.scheduler.interval.ms (never: the OS page cache, as Kafka).",
    ),
    ("log.cleaner.backoff.ms", "15000", ConfigType::Long, "How often compacted topics are checked for cleaning."),
    (
        "log.cleaner.delete.retention.ms",
        "86400000",
        ConfigType::Long,
        "Default delete.retention.ms: how long tombstones survive compaction.",
    ),
    ("log.retention.check.interval.ms", "300000", ConfigType::Long, "How often retention runs."),
    ("log.index.interval.bytes", "4096", ConfigType::Int, "Bytes of log between offset index entries."),
    ("log.index.size.max.bytes", "10485760", ConfigType::Int, "Maximum size of an offset index file."),
    ("message.max.bytes", "1048588", ConfigType::Int, "Largest record batch accepted."),
    ("socket.request.max.bytes", "104857600", ConfigType::Int, "Largest request frame accepted."),
    (
        "strom.http.listener",
        "127.0.0.1:9644",
        ConfigType::String,
        "HTTP admin endpoint (/metrics, /livez, /readyz) as host:port; empty disables it.",
    ),
    (
        "connections.max.idle.ms",
        "600000",
        ConfigType::Long,
        "Close connections idle (no request, no progress writing) this long.",
    ),
    (
        "max.connections",
        "2147483647",
        ConfigType::Int,
        "Most client connections open at once; more are closed at accept.",
    ),
    (
        "max.connections.per.ip",
        "2147483647",
        ConfigType::Int,
        "Most client connections open at once from one IP address.",
    ),
    (
        "strom.request.read.timeout.ms",
        "30000",
        ConfigType::Long,
        "Strom: a request frame must arrive whole within this time of its first byte (slowloris guard).",
    ),
    (
        "strom.inflight.request.max.bytes",
        "268435456",
        ConfigType::Long,
        "Strom: request bytes all connections may hold at once; sockets stop being read beyond it.",
    ),
    ("cluster.id", "", ConfigType::String, "Cluster id; generated and persisted on first start when empty."),
    (
        "group.initial.rebalance.delay.ms",
        "3000",
        ConfigType::Int,
        "How long a new classic group waits for more members.",
    ),
    ("group.min.session.timeout.ms", "6000", ConfigType::Int, "Smallest session timeout a classic member may ask for."),
    (
        "group.max.session.timeout.ms",
        "1800000",
        ConfigType::Int,
        "Largest session timeout a classic member may ask for.",
    ),
    ("group.max.size", "2147483647", ConfigType::Int, "Most members a classic group may have."),
    (
        "group.consumer.session.timeout.ms",
        "45000",
        ConfigType::Int,
        "Session timeout of KIP-848 consumer-group members.",
    ),
    (
        "group.consumer.heartbeat.interval.ms",
        "5000",
        ConfigType::Int,
        "Heartbeat interval of KIP-848 consumer-group members.",
    ),
    (
        "group.consumer.migration.policy",
        "bidirectional",
        ConfigType::String,
        "Online conversion of groups with members between the classic and the KIP-848 protocol: \
         bidirectional, upgrade, downgrade or disabled.",
    ),
    ("offsets.topic.num.partitions", "50", ConfigType::Int, "Partitions of __consumer_offsets (fixed once created)."),
    ("offsets.topic.segment.bytes", "104857600", ConfigType::Int, "Segment size of __consumer_offsets."),
    ("offsets.retention.minutes", "10080", ConfigType::Int, "How long offsets of a group without members are kept."),
    ("offsets.retention.check.interval.ms", "600000", ConfigType::Long, "How often expired offsets are removed."),
    ("offset.metadata.max.bytes", "4096", ConfigType::Int, "Largest metadata string of a committed offset."),
    ("compression.type", "producer", ConfigType::String, "Default codec of stored batches (producer = as produced)."),
    ("log.message.timestamp.type", "CreateTime", ConfigType::String, "CreateTime or LogAppendTime."),
    (
        "log.message.timestamp.before.max.ms",
        "9223372036854775807",
        ConfigType::Long,
        "How far in the past a CreateTime timestamp may be.",
    ),
    ("log.message.timestamp.after.max.ms", "3600000", ConfigType::Long, "How far in the future a timestamp may be."),
    ("producer.id.expiration.ms", "86400000", ConfigType::Int, "Idle time after which producer state is dropped."),
];

/// Kafka's config value types, as reported by DescribeConfigs v3+.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// BOOLEAN
    Boolean = 1,
    /// STRING
    String = 2,
    /// INT
    Int = 3,
    /// SHORT
    Short = 4,
    /// LONG
    Long = 5,
    /// DOUBLE
    Double = 6,
    /// LIST
    List = 7,
}

/// Whether `key` is a broker setting Strom knows: its own table, or a broker synonym of
/// a topic config (`log.retention.hours`, `log.cleaner.min.cleanable.ratio`, …).
pub fn is_broker_key(key: &str) -> bool {
    BROKER_DEFAULTS.iter().any(|(k, ..)| *k == key) || topic::broker_synonym_keys().any(|(k, ..)| k == key)
}

/// The effective broker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every key with its effective value (known keys only).
    pub values: BTreeMap<String, String>,
    /// Keys that were set explicitly (file, env or flag) rather than defaulted.
    pub explicit: BTreeMap<String, String>,
    pub node_id: i32,
    pub listen: String,
    /// The HTTP admin listener (`strom.http.listener`), `None` when disabled.
    pub http_listen: Option<String>,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub data_dir: PathBuf,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub segment_bytes: u64,
    pub index_interval_bytes: u64,
    pub index_max_bytes: u64,
    pub message_max_bytes: usize,
    pub socket_request_max_bytes: usize,
    /// `connections.max.idle.ms`.
    pub connections_max_idle_ms: u64,
    /// `max.connections`.
    pub max_connections: usize,
    /// `max.connections.per.ip`.
    pub max_connections_per_ip: usize,
    /// `strom.request.read.timeout.ms`: deadline for a frame, from its first byte.
    pub request_read_timeout_ms: u64,
    /// `strom.inflight.request.max.bytes`: global budget of request bytes being read or handled.
    pub inflight_request_max_bytes: usize,
    pub producer_id_expiration_ms: i64,
    pub cluster_id: Option<String>,
    /// Group coordinator settings.
    pub group: group::GroupConfig,
    pub offsets_topic_partitions: i32,
    pub offsets_topic_segment_bytes: u64,
}

/// Parses a Kafka properties file: `key=value` (or `key: value`), `#`/`!` comments.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']);
        if let Some(i) = split {
            out.insert(line[..i].trim().to_string(), line[i + 1..].trim().to_string());
        }
    }
    out
}

/// The environment variable for a Kafka key: `log.dirs` → `STROM_LOG_DIRS`.
pub fn env_name(key: &str) -> String {
    format!("STROM_{}", key.replace(['.', '-'], "_").to_uppercase())
}

/// Splits a listener such as `PLAINTEXT://host:9092` into host and port.
pub fn parse_listener(s: &str) -> anyhow::Result<(String, u16)> {
    let first = s.split(',').next().unwrap_or_default().trim();
    let addr = match first.split_once("://") {
        Some((proto, rest)) => {
            if !proto.eq_ignore_ascii_case("PLAINTEXT") {
                bail!("listener {first:?}: only PLAINTEXT listeners are supported");
            }
            rest
        }
        None => first,
    };
    let (host, port) = addr.rsplit_once(':').with_context(|| format!("listener {first:?} has no port"))?;
    let port: u16 = port.parse().with_context(|| format!("listener {first:?}: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

impl Config {
    /// Builds the configuration from a file, the process environment and flag overrides.
    pub fn load(file: Option<&Path>, overrides: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Config::from_sources(file, &env, overrides)
    }

    /// Builds the configuration from explicit sources (testable without touching the process).
    pub fn from_sources(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> anyhow::Result<Config> {
        let mut explicit = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            explicit.extend(parse_properties(&text));
        }
        let known = BROKER_DEFAULTS.iter().map(|(k, ..)| *k).chain(topic::broker_synonym_keys().map(|s| s.0));
        for key in known {
            if let Some(v) = env.get(&env_name(key)) {
                explicit.insert(key.to_string(), v.clone());
            }
        }
        explicit.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
        // Kafka's older name for node.id.
        if let Some(v) = explicit.remove("broker.id") {
            explicit.entry("node.id".into()).or_insert(v);
        }
        for key in explicit.keys() {
            if !is_broker_key(key) {
                tracing::warn!(key, "ignoring unknown configuration key");
            }
        }
        explicit.retain(|k, _| is_broker_key(k));
        let mut values: BTreeMap<String, String> =
            BROKER_DEFAULTS.iter().map(|(k, v, ..)| (k.to_string(), v.to_string())).collect();
        values.extend(explicit.clone());

        let get = |k: &str| values.get(k).cloned().unwrap_or_default();
        fn num<T: std::str::FromStr>(k: &str, v: &str) -> anyhow::Result<T> {
            v.trim().parse::<T>().map_err(|_| anyhow::anyhow!("{k}: {v:?} is not a valid number"))
        }
        let listeners = get("listeners");
        let (host, port) = parse_listener(&listeners)?;
        let advertised = get("advertised.listeners");
        let (advertised_host, advertised_port) = if advertised.trim().is_empty() {
            // 0.0.0.0 cannot be dialled; advertise the loopback name instead.
            let h = if host.is_empty() || host == "0.0.0.0" || host == "::" {
                "localhost".to_string()
            } else {
                host.clone()
            };
            (h, port)
        } else {
            parse_listener(&advertised)?
        };
        let data_dir = PathBuf::from(get("log.dirs").split(',').next().unwrap_or("./data").trim());
        let cluster_id = Some(get("cluster.id")).filter(|s| !s.is_empty());
        let auto = get("auto.create.topics.enable");
        Ok(Config {
            node_id: num("node.id", &get("node.id"))?,
            listen: format!("{}:{port}", if host.contains(':') { format!("[{host}]") } else { host }),
            http_listen: Some(get("strom.http.listener").trim().to_string()).filter(|s| !s.is_empty()),
            advertised_host,
            advertised_port,
            data_dir,
            num_partitions: num("num.partitions", &get("num.partitions"))?,
            default_replication_factor: num("default.replication.factor", &get("default.replication.factor"))?,
            auto_create_topics: match auto.trim() {
                "true" => true,
                "false" => false,
                other => bail!("auto.create.topics.enable: {other:?} is not true or false"),
            },
            segment_bytes: num("log.segment.bytes", &get("log.segment.bytes"))?,
            index_interval_bytes: num("log.index.interval.bytes", &get("log.index.interval.bytes"))?,
            index_max_bytes: num("log.index.size.max.bytes", &get("log.index.size.max.bytes"))?,
            message_max_bytes: num("message.max.bytes", &get("message.max.bytes"))?,
            socket_request_max_bytes: num("socket.request.max.bytes", &get("socket.request.max.bytes"))?,
            connections_max_idle_ms: num("connections.max.idle.ms", &get("connections.max.idle.ms"))?,
            max_connections: num("max.connections", &get("max.connections"))?,
            max_connections_per_ip: num("max.connections.per.ip", &get("max.connections.per.ip"))?,
            request_read_timeout_ms: num("strom.request.read.timeout.ms", &get("strom.request.read.timeout.ms"))?,
            inflight_request_max_bytes: num(
                "strom.inflight.request.max.bytes",
                &get("strom.inflight.request.max.bytes"),
            )?,
            producer_id_expiration_ms: num("producer.id.expiration.ms", &get("producer.id.expiration.ms"))?,
            cluster_id,
            group: group::GroupConfig {
                limits: group::Limits {
                    min_session_timeout_ms: num("group.min.session.timeout.ms", &get("group.min.session.timeout.ms"))?,
                    max_session_timeout_ms: num("group.max.session.timeout.ms", &get("group.max.session.timeout.ms"))?,
                    initial_rebalance_delay_ms: num(
                        "group.initial.rebalance.delay.ms",
                        &get("group.initial.rebalance.delay.ms"),
                    )?,
                    max_size: num("group.max.size", &get("group.max.size"))?,
                },
                offsets_retention_ms: num::<i64>("offsets.retention.minutes", &get("offsets.retention.minutes"))?
                    .saturating_mul(60_000),
                retention_check_interval_ms: num(
                    "offsets.retention.check.interval.ms",
                    &get("offsets.retention.check.interval.ms"),
                )?,
                offset_metadata_max_bytes: num("offset.metadata.max.bytes", &get("offset.metadata.max.bytes"))?,
                consumer_session_timeout_ms: num(
                    "group.consumer.session.timeout.ms",
                    &get("group.consumer.session.timeout.ms"),
                )?,
                consumer_heartbeat_interval_ms: num(
                    "group.consumer.heartbeat.interval.ms",
                    &get("group.consumer.heartbeat.interval.ms"),
                )?,
                migration_policy: group::MigrationPolicy::parse(&get("group.consumer.migration.policy"))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "group.consumer.migration.policy: {:?} is not bidirectional, upgrade, downgrade or disabled",
                            get("group.consumer.migration.policy")
                        )
                    })?,
            },
            offsets_topic_partitions: num("offsets.topic.num.partitions", &get("offsets.topic.num.partitions"))?,
            offsets_topic_segment_bytes: num("offsets.topic.segment.bytes", &get("offsets.topic.segment.bytes"))?,
            values,
            explicit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_listen_on_localhost_9092_with_data_in_dot_data() {
        let c = Config::from_sources(None, &BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!(c.listen, "localhost:9092");
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("localhost", 9092));
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert!(c.auto_create_topics);
        assert_eq!(c.num_partitions, 1);
    }

    #[test]
    fn flags_beat_env_which_beats_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "# comment\nnum.partitions=3\nlog.dirs = /from/file\nnode.id: 7\n").unwrap();
        let env = map(&[("STROM_NUM_PARTITIONS", "5"), ("STROM_LOG_DIRS", "/from/env")]);
        let flags = map(&[("log.dirs", "/from/flag")]);
        let c = Config::from_sources(Some(&file), &env, &flags).unwrap();
        assert_eq!(c.num_partitions, 5);
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.node_id, 7);
        assert_eq!(c.explicit.get("num.partitions").map(String::as_str), Some("5"));
    }

    #[test]
    fn wildcard_listener_advertises_localhost_unless_told_otherwise() {
        let env = map(&[("STROM_LISTENERS", "PLAINTEXT://0.0.0.0:19092")]);
        let c = Config::from_sources(None, &env, &BTreeMap::new()).unwrap();
        assert_eq!(c.listen, "0.0.0.0:19092");
        assert_eq!(c.advertised_host, "localhost");
        let env = map(&[
            ("STROM_LISTENERS", "PLAINTEXT://0.0.0.0:19092"),
            ("STROM_ADVERTISED_LISTENERS", "PLAINTEXT://strom:9092"),
        ]);
        let c = Config::from_sources(None, &env, &BTreeMap::new()).unwrap();
        assert_eq!((c.advertised_host.as_str(), c.advertised_port), ("strom", 9092));
    }

    #[test]
    fn bad_values_are_reported_with_their_key() {
        let err = Config::from_sources(None, &BTreeMap::new(), &map(&[("num.partitions", "many")])).unwrap_err();
        assert!(err.to_string().contains("num.partitions"), "{err}");
    }

    #[test]
    fn the_group_migration_policy_is_kafkas_case_insensitive_enum() {
        use group::MigrationPolicy;
        let c = Config::from_sources(None, &BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!(c.group.migration_policy, MigrationPolicy::Bidirectional);
        let o = map(&[("group.consumer.migration.policy", "UPGRADE")]);
        let c = Config::from_sources(None, &BTreeMap::new(), &o).unwrap();
        assert_eq!(c.group.migration_policy, MigrationPolicy::Upgrade);
        let o = map(&[("group.consumer.migration.policy", "sideways")]);
        let err = Config::from_sources(None, &BTreeMap::new(), &o).unwrap_err();
        assert!(err.to_string().contains("group.consumer.migration.policy"), "{err}");
    }
}
