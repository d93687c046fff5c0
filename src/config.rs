//! One typed broker configuration, read from (lowest to highest precedence) built-in
//! defaults, an optional Kafka-style properties file, the apache/kafka image's `KAFKA_*`
//! environment variables, `STROM_*` environment variables and command-line overrides.
//! Keys use Kafka's names wherever Kafka has the setting, so an operator's
//! `server.properties` knowledge carries over: `log.dirs` can be given as `log.dirs=…` in
//! the file, `KAFKA_LOG_DIRS=…` or `STROM_LOG_DIRS=…` in the environment, or `--log-dirs …`.
//!
//! `STROM_*` beats `KAFKA_*`: the Strom name is the more specific one, so a compose file
//! written for Kafka can be tuned for Strom without editing its Kafka settings.
//!
//! Every given key is honoured, accepted without effect (logged at INFO with the
//! reason: Kafka settings that mean nothing on a single node, JVM variables), or unknown
//! (logged as a WARNING). A setting whose meaning Strom cannot honour stops startup
//! with an explanation: SSL/SASL listeners, KRaft settings naming other nodes, an
//! authorizer (see `listener.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

pub mod env;
pub mod group;
pub mod listener;
pub mod sasl;
pub mod ssl;
pub mod topic;

pub use listener::Listener;

/// Broker-level settings Strom honours, with Kafka's defaults unless noted.
pub const BROKER_DEFAULTS: &[(&str, &str, ConfigType, &str)] = &[
    ("node.id", "1", ConfigType::Int, "This broker's id."),
    ("listeners", "PLAINTEXT://localhost:9092", ConfigType::List, "Addresses the broker listens on."),
    ("advertised.listeners", "", ConfigType::List, "Addresses clients are told to use; defaults to listeners."),
    (
        "listener.security.protocol.map",
        listener::DEFAULT_PROTOCOL_MAP,
        ConfigType::List,
        "Security protocol of each listener name; Strom serves PLAINTEXT listeners only.",
    ),
    (
        "controller.listener.names",
        "",
        ConfigType::List,
        "KRaft controller listener names: the listener the metadata quorum speaks on (multi-node clusters).",
    ),
    (
        "process.roles",
        "",
        ConfigType::List,
        "KRaft roles: broker,controller (the default), broker (observes the controllers) or controller (no clients).",
    ),
    (
        "controller.quorum.voters",
        "",
        ConfigType::List,
        "KRaft voters (id@host:port,...): unset or this node alone for a single node; every node of a cluster.",
    ),
    ("broker.rack", "", ConfigType::String, "Rack of this broker, for rack-aware replica placement."),
    ("broker.session.timeout.ms", "9000", ConfigType::Int, "A broker that sends no heartbeat this long is fenced."),
    (
        "replica.lag.time.max.ms",
        "30000",
        ConfigType::Long,
        "A follower not caught up with its leader this long leaves the ISR.",
    ),
    ("broker.heartbeat.interval.ms", "2000", ConfigType::Int, "Interval between a broker's heartbeats."),
    (
        "controller.quorum.bootstrap.servers",
        "",
        ConfigType::List,
        "Controllers a broker-only node may find the quorum through (then cluster.id is required).",
    ),
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
        "strom.schema.registry.listener",
        "127.0.0.1:8081",
        ConfigType::String,
        "Schema registry REST listener (Confluent's API) as host:port; empty disables it. Left at its default, a \
         port already in use only disables the registry (with a warning); set explicitly, it stops the start.",
    ),
    (
        "strom.schema.registry.max.body.bytes",
        "16777216",
        ConfigType::Int,
        "Largest schema registry request body (HTTP 413 beyond it).",
    ),
    (
        "strom.schema.registry.max.connections",
        "1000",
        ConfigType::Int,
        "Schema registry connections served at once; more are answered 503.",
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
        "strom.ssl.reload.interval.ms",
        "10000",
        ConfigType::Long,
        "Strom: how often TLS listeners re-read their key, certificate and truststore files; a change takes \
         effect for new connections without a restart (0: never).",
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
        "group.share.session.timeout.ms",
        "45000",
        ConfigType::Int,
        "Session timeout of share-group members (KIP-932).",
    ),
    (
        "group.share.heartbeat.interval.ms",
        "5000",
        ConfigType::Int,
        "Heartbeat interval of share-group members.",
    ),
    ("group.share.max.size", "200", ConfigType::Int, "Most members a share group may have."),
    (
        "group.share.record.lock.duration.ms",
        "30000",
        ConfigType::Int,
        "How long a share consumer holds the records it acquired before they are delivered again.",
    ),
    (
        "group.share.delivery.count.limit",
        "5",
        ConfigType::Int,
        "Deliveries of a record to share consumers after which it is archived.",
    ),
    (
        "group.share.partition.max.record.locks",
        "2000",
        ConfigType::Int,
        "Most records in flight (acquired or awaiting redelivery) per share-partition.",
    ),
    (
        "group.share.max.share.sessions",
        "2000",
        ConfigType::Int,
        "Most share sessions (one per share consumer and broker) this broker keeps.",
    ),
    (
        "group.consumer.migration.policy",
        "bidirectional",
        ConfigType::String,
        "Online conversion of groups with members between the classic and the KIP-848 protocol: \
         bidirectional, upgrade, downgrade or disabled.",
    ),
    ("offsets.topic.num.partitions", "50", ConfigType::Int, "Partitions of __consumer_offsets (fixed once created)."),
    (
        "offsets.topic.replication.factor",
        "3",
        ConfigType::Short,
        "Replicas of each __consumer_offsets partition in a cluster (at most the brokers registered when it is created).",
    ),
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
    (
        "sasl.enabled.mechanisms",
        "GSSAPI",
        ConfigType::List,
        "SASL mechanisms offered on SASL listeners (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; Kafka's default GSSAPI is \
         refused at start).",
    ),
    (
        "super.users",
        "",
        ConfigType::String,
        "Principals allowed every operation, separated by semicolons (User:admin;User:ops).",
    ),
    (
        "inter.broker.listener.name",
        "",
        ConfigType::String,
        "The client listener brokers connect to each other on (replica fetches, transaction markers); \
         empty: the first in listeners.",
    ),
    (
        "sasl.mechanism.inter.broker.protocol",
        "GSSAPI",
        ConfigType::String,
        "The SASL mechanism brokers log in to each other with when their (first) listener is a SASL one: \
         PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with username and password in that listener's \
         listener.name.<l>.<mechanism>.sasl.jaas.config (Kafka's default GSSAPI is refused).",
    ),
    (
        "authorizer.class.name",
        "",
        ConfigType::String,
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer enforces ACLs (ADR 0014); empty: no \
         authorizer, every request is allowed and the ACL APIs answer SECURITY_DISABLED.",
    ),
    (
        "allow.everyone.if.no.acl.found",
        "false",
        ConfigType::Boolean,
        "With an authorizer: whether a resource no ACL names is open to everyone.",
    ),
    (
        "connections.max.reauth.ms",
        "0",
        ConfigType::Long,
        "SASL sessions last at most this long: clients re-authenticate before (KIP-368), and a connection \
         that has not is closed at its next request (0: sessions never expire).",
    ),
    (
        "connection.failed.authentication.delay.ms",
        "100",
        ConfigType::Int,
        "How long a connection whose authentication failed stays open before it is closed.",
    ),
    (
        "sasl.server.max.receive.size",
        "524288",
        ConfigType::Int,
        "Largest request accepted from a connection before it has authenticated.",
    ),
    (
        "transaction.state.log.num.partitions",
        "50",
        ConfigType::Int,
        "Partitions of __transaction_state (created on the first transactional FindCoordinator; fixed once created).",
    ),
    (
        "transaction.state.log.replication.factor",
        "3",
        ConfigType::Short,
        "Replicas of each __transaction_state partition (at most the live brokers when it is created).",
    ),
    ("transaction.state.log.min.isr", "2", ConfigType::Int, "min.insync.replicas of __transaction_state."),
    (
        "share.coordinator.state.topic.num.partitions",
        "50",
        ConfigType::Int,
        "Partitions of __share_group_state (created on the first share-group acknowledgement; fixed once created).",
    ),
    (
        "share.coordinator.state.topic.replication.factor",
        "3",
        ConfigType::Short,
        "Replicas of each __share_group_state partition (at most the live brokers when it is created).",
    ),
    ("share.coordinator.state.topic.min.isr", "2", ConfigType::Int, "min.insync.replicas of __share_group_state."),
    ("transaction.max.timeout.ms", "900000", ConfigType::Int, "Largest transaction.timeout.ms a producer may ask for."),
    (
        "transactional.id.expiration.ms",
        "604800000",
        ConfigType::Int,
        "Idle time after which a transactional id without an ongoing transaction is forgotten.",
    ),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
        ConfigType::Int,
        "How often transactions open past their timeout are looked for (and aborted).",
    ),
];

/// Kafka broker settings Strom accepts without acting on them, and why; each one given
/// is logged once at start (`true`: as a warning, because a Kafka user may expect more).
pub const NO_EFFECT: &[(&str, &str, bool)] = &[
    ("security.inter.broker.protocol", "single node: no inter-broker traffic", false),
    ("num.network.threads", "one runtime thread per CPU serves every connection", false),
    ("num.io.threads", "one runtime thread per CPU serves every request", false),
    ("num.recovery.threads.per.data.dir", "logs are opened by the starting thread", false),
    ("background.threads", "background work runs on the runtime's threads", false),
    ("socket.send.buffer.bytes", "the OS socket buffer sizes apply", false),
    ("socket.receive.buffer.bytes", "the OS socket buffer sizes apply", false),
    (
        "zookeeper.connect",
        "Strom keeps its metadata in log.dirs and needs no ZooKeeper; brokers sharing a ZooKeeper do NOT form a cluster",
        true,
    ),
];

/// `STROM_*` variables that are not broker settings: the log filter, the config file,
/// the CLI's bootstrap address, and the test and benchmark scripts' knobs.
pub const STROM_TOOL_VARS: &[&str] = &[
    "STROM_LOG",
    "STROM_CONFIG",
    "STROM_BOOTSTRAP",
    "STROM_BIN",
    "STROM_SKIP_COMPAT",
    "STROM_FUZZ_SECONDS",
    "STROM_BENCH_LOG_MIB",
];

/// A given setting that is not acted on, and why (logged once at start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The setting as given (`key=value (source)`, or an environment variable name).
    pub setting: String,
    /// Why it has no effect.
    pub reason: String,
    /// Logged as a warning (unknown keys, or a Kafka user may expect more) rather than
    /// as information.
    pub warn: bool,
}

impl Ignored {
    /// An informational note: accepted, no effect.
    pub fn info(setting: impl Into<String>, reason: impl Into<String>) -> Ignored {
        Ignored { setting: setting.into(), reason: reason.into(), warn: false }
    }

    /// A warning: unknown, or ignored where a Kafka user might expect an effect.
    pub fn warn(setting: impl Into<String>, reason: impl Into<String>) -> Ignored {
        Ignored { setting: setting.into(), reason: reason.into(), warn: true }
    }

    /// Logs it (once per start: `Config::from_sources` calls this for each).
    pub fn log(&self) {
        if self.warn {
            tracing::warn!(setting = %self.setting, reason = %self.reason, "configuration ignored");
        } else {
            tracing::info!(setting = %self.setting, reason = %self.reason, "configuration accepted without effect");
        }
    }
}

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
    BROKER_DEFAULTS.iter().any(|(k, ..)| *k == key)
        || topic::broker_synonym_keys().any(|(k, ..)| k == key)
        || sasl::is_listener_sasl_key(key)
        || ssl::is_listener_ssl_key(key)
        || ssl::SSL_KEYS.contains(&key)
}

/// The client side of the inter-broker listener `l`: Kafka's client settings assembled
/// from the listener's own (`listener.name.<l>.ssl.*` or `ssl.*`: the truststore checks
/// the other brokers, the keystore is this broker's certificate for mTLS) and, for SASL,
/// `sasl.mechanism.inter.broker.protocol` with the username and password of the
/// listener's JAAS line for that mechanism, as Kafka brokers log in to each other.
fn inter_broker_security(values: &BTreeMap<String, String>, l: &Listener) -> anyhow::Result<strom_client::Security> {
    let get = |k: &str| values.get(k).cloned().unwrap_or_default();
    let lower = l.name.to_ascii_lowercase();
    let setting = |key: &str| {
        let v = get(&format!("listener.name.{lower}.{key}"));
        if v.is_empty() {
            get(key)
        } else {
            v
        }
    };
    let mut props = BTreeMap::from([("security.protocol".to_string(), l.protocol().to_string())]);
    if l.tls.is_some() {
        for key in [
            "ssl.truststore.type",
            "ssl.truststore.location",
            "ssl.truststore.certificates",
            "ssl.keystore.type",
            "ssl.keystore.location",
            "ssl.keystore.key",
            "ssl.keystore.certificate.chain",
        ] {
            let v = setting(key);
            if !v.is_empty() {
                props.insert(key.to_string(), v);
            }
        }
        // Given (even empty, which checks the chain only) or Kafka's default, https.
        let key = "ssl.endpoint.identification.algorithm";
        let given = [format!("listener.name.{lower}.{key}"), key.to_string()];
        if let Some(v) = given.iter().find_map(|k| values.get(k)) {
            props.insert(key.to_string(), v.clone());
        }
    }
    if l.sasl.is_some() {
        let mechanism = get("sasl.mechanism.inter.broker.protocol").trim().to_ascii_uppercase();
        if mechanism == "GSSAPI" {
            bail!(
                "listener {} ({}) is the inter-broker one: set sasl.mechanism.inter.broker.protocol \
                 (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512) and the brokers' username and password in \
                 listener.name.{lower}.<mechanism>.sasl.jaas.config",
                l.name,
                l.protocol()
            );
        }
        let jaas = setting(&format!("{}.sasl.jaas.config", mechanism.to_ascii_lowercase()));
        props.insert("sasl.mechanism".into(), mechanism);
        props.insert("sasl.jaas.config".into(), jaas);
    }
    strom_client::Security::from_map(&props)
        .with_context(|| format!("the inter-broker connections over listener {}", l.name))
}

/// The `authorizer.class.name` values accepted: Kafka's KRaft authorizer, which Strom's
/// follows (ADR 0014). ZooKeeper's AclAuthorizer and custom classes are refused.
pub const AUTHORIZERS: &[&str] = &["org.apache.kafka.metadata.authorizer.StandardAuthorizer"];

/// The effective broker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every key with its effective value (known keys only).
    pub values: BTreeMap<String, String>,
    /// Keys that were set explicitly (file, env or flag) rather than defaulted.
    pub explicit: BTreeMap<String, String>,
    /// Settings given but not acted on, with the reason (each was logged at start).
    pub ignored: Vec<Ignored>,
    pub node_id: i32,
    /// The metadata quorum when `controller.quorum.voters` names other nodes too.
    pub quorum: Option<listener::QuorumConfig>,
    /// `broker.rack`, advertised to clients and used to spread replicas.
    pub rack: Option<String>,
    /// The client listeners, in `listeners` order (at least one).
    pub listeners: Vec<Listener>,
    /// The HTTP admin listener (`strom.http.listener`), `None` when disabled.
    pub http_listen: Option<String>,
    /// The schema registry listener (`strom.schema.registry.listener`), `None` when
    /// disabled, and whether it was set explicitly (a default that cannot bind only warns).
    pub registry_listen: Option<(String, bool)>,
    /// The schema registry listener's limits.
    pub registry_limits: crate::registry::rest::Limits,
    /// Where other brokers reach this broker's schema registry (filled in once its
    /// listener is bound; registered with the quorum so writes can be forwarded here).
    pub registry_advertised: Option<(String, u16)>,
    pub data_dir: PathBuf,
    /// `sasl.server.max.receive.size`: the frame cap before a connection authenticated.
    pub sasl_max_receive_size: usize,
    /// `super.users`: principals allowed everything (`User:admin`).
    pub super_users: std::collections::BTreeSet<String>,
    /// How this broker connects to the others (replica fetches, transaction markers,
    /// verification): the inter-broker listener's protocol with the broker's credentials.
    pub inter_broker: strom_client::Security,
    /// The index in `listeners` of the inter-broker listener (`inter.broker.listener.name`,
    /// else 0): other brokers are reached at their endpoint of that name.
    pub inter_broker_listener: usize,
    /// `authorizer.class.name` names the StandardAuthorizer: requests are authorized
    /// against the ACLs of the metadata image.
    pub authorizer: bool,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_authentication_delay_ms: u64,
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
    /// `strom.ssl.reload.interval.ms`: how often TLS files are checked for changes (0: never).
    pub ssl_reload_interval_ms: u64,
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
    env::strom_name(key)
}

impl Config {
    /// Builds the configuration from a file, the process environment and flag overrides.
    pub fn load(file: Option<&Path>, overrides: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        // vars_os: a variable that is not UTF-8 (which `vars` would panic on) cannot be
        // a setting; it is skipped, and reported if it looks like one.
        let mut env = BTreeMap::new();
        for (k, v) in std::env::vars_os() {
            match (k.into_string(), v.into_string()) {
                (Ok(k), Ok(v)) => {
                    env.insert(k, v);
                }
                (Ok(k), Err(_)) if k.starts_with("STROM_") || k.starts_with("KAFKA_") => {
                    tracing::warn!(variable = k, "ignoring an environment variable whose value is not UTF-8");
                }
                _ => {}
            }
        }
        Config::from_sources(file, &env, overrides)
    }

    /// The listener a connection arrived on, by its index in `listeners` (the first one
    /// for an unknown index): (advertised host, advertised port).
    pub fn advertised(&self, listener: usize) -> (&str, u16) {
        match self.listeners.get(listener).or(self.listeners.first()) {
            Some(l) => (l.advertised_host.as_str(), l.advertised_port),
            None => ("localhost", 0),
        }
    }

    /// Builds the configuration from explicit sources (testable without touching the
    /// process): defaults < `file` < `KAFKA_*`/`CLUSTER_ID` in `env` < `STROM_*` in `env`
    /// < `overrides`. Settings that are not acted on are logged (once) and listed in
    /// `ignored`.
    pub fn from_sources(
        file: Option<&Path>,
        env: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> anyhow::Result<Config> {
        let mut ignored = Vec::new();
        // Each explicit key with its value and where it came from (for messages).
        let mut given: BTreeMap<String, (String, String)> = BTreeMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            for (k, v) in parse_properties(&text) {
                given.insert(k, (v, path.display().to_string()));
            }
        }
        for s in env::kafka_settings(env, &mut ignored) {
            given.insert(s.key, (s.value, s.var));
        }
        let known = BROKER_DEFAULTS.iter().map(|(k, ..)| *k).chain(topic::broker_synonym_keys().map(|s| s.0));
        let mut strom_vars = std::collections::BTreeSet::new();
        for key in known {
            let var = env_name(key);
            if let Some(v) = env.get(&var) {
                given.insert(key.to_string(), (v.clone(), var.clone()));
            }
            strom_vars.insert(var);
        }
        for var in env.keys().filter(|v| v.starts_with("STROM_")) {
            if !strom_vars.contains(var) && !STROM_TOOL_VARS.contains(&var.as_str()) {
                ignored.push(Ignored::warn(var.clone(), "not a Strom setting (no configuration key has this name)"));
            }
        }
        for (k, v) in overrides {
            given.insert(k.clone(), (v.clone(), "command line".to_string()));
        }
        // Kafka's older name for node.id.
        if let Some(v) = given.remove("broker.id") {
            given.entry("node.id".into()).or_insert(v);
        }
        if let Some((v, from)) = given.get("authorizer.class.name") {
            if !v.trim().is_empty() && !AUTHORIZERS.contains(&v.trim()) {
                bail!(
                    "authorizer.class.name={v} (from {from}): Strom's authorizer is Kafka's StandardAuthorizer \
                     ({}); refusing to start without the access control you configured",
                    AUTHORIZERS[0]
                );
            }
        }
        let mut explicit = BTreeMap::new();
        for (key, (value, from)) in given {
            if is_broker_key(&key) {
                explicit.insert(key, value);
            } else if let Some(why) = ssl::no_effect(&key) {
                ignored.push(Ignored::info(format!("{key} (from {from})"), why));
            } else if let Some((_, why, warn)) = NO_EFFECT.iter().find(|(k, ..)| *k == key) {
                let setting = format!("{key}={value} (from {from})");
                ignored.push(if *warn { Ignored::warn(setting, *why) } else { Ignored::info(setting, *why) });
            } else {
                ignored.push(Ignored::warn(format!("{key} (from {from})"), "unknown configuration key"));
            }
        }
        let mut values: BTreeMap<String, String> =
            BROKER_DEFAULTS.iter().map(|(k, v, ..)| (k.to_string(), v.to_string())).collect();
        values.extend(explicit.clone());

        let get = |k: &str| values.get(k).cloned().unwrap_or_default();
        fn num<T: std::str::FromStr>(k: &str, v: &str) -> anyhow::Result<T> {
            v.trim().parse::<T>().map_err(|_| anyhow::anyhow!("{k}: {v:?} is not a valid number"))
        }
        fn boolean(k: &str, v: &str) -> anyhow::Result<bool> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => bail!("{k}: {v:?} is not true or false"),
            }
        }
        let node_id: i32 = num("node.id", &get("node.id"))?;
        let listeners = listener::resolve(&get, node_id, &mut ignored);
        for i in &ignored {
            i.log();
        }
        let listeners = listeners?;
        let quorum = listener::quorum(&get)?;
        // Brokers reach each other on the inter-broker listener (`inter.broker.listener.name`,
        // else the first), with its security protocol and the broker's own credentials.
        let inter_broker_listener = match get("inter.broker.listener.name").trim() {
            "" => 0,
            name => listeners.iter().position(|l| l.name.eq_ignore_ascii_case(name)).ok_or_else(|| {
                anyhow::anyhow!(
                    "inter.broker.listener.name={name} names no client listener in listeners (the controller \
                     listener cannot be it)"
                )
            })?,
        };
        let inter_broker = match listeners.get(inter_broker_listener) {
            Some(l) if quorum.is_some() => inter_broker_security(&values, l)?,
            _ => strom_client::Security::plaintext(),
        };
        // With ACLs, brokers need CLUSTER_ACTION (follower fetches, markers): they must be
        // told apart from clients, which an unauthenticated inter-broker listener cannot.
        let authenticated = listeners.get(inter_broker_listener).is_some_and(|l| {
            l.sasl.is_some() || l.tls.as_ref().is_some_and(|t| t.client_auth == ssl::ClientAuth::Required)
        });
        if quorum.is_some() && !get("authorizer.class.name").trim().is_empty() && !authenticated {
            anyhow::bail!(
                "authorizer.class.name: in a cluster, brokers must authenticate to each other for ACLs to \
                 tell them apart from clients: make the inter-broker listener SASL_PLAINTEXT or \
                 SASL_SSL, or SSL with ssl.client.auth=required, and give the brokers' principal in \
                 super.users"
            );
        }
        let rack = Some(get("broker.rack").trim().to_string()).filter(|s| !s.is_empty());
        let data_dir = PathBuf::from(get("log.dirs").split(',').next().unwrap_or("./data").trim());
        let cluster_id = Some(get("cluster.id")).filter(|s| !s.is_empty());
        let auto = get("auto.create.topics.enable");
        Ok(Config {
            ignored,
            node_id,
            listeners,
            quorum,
            rack,
            http_listen: Some(get("strom.http.listener").trim().to_string()).filter(|s| !s.is_empty()),
            registry_listen: Some(get("strom.schema.registry.listener").trim().to_string())
                .filter(|s| !s.is_empty())
                .map(|s| (s, explicit.contains_key("strom.schema.registry.listener"))),
            registry_limits: crate::registry::rest::Limits {
                max_body: num("strom.schema.registry.max.body.bytes", &get("strom.schema.registry.max.body.bytes"))?,
                max_connections: num(
                    "strom.schema.registry.max.connections",
                    &get("strom.schema.registry.max.connections"),
                )?,
                ..Default::default()
            },
            registry_advertised: None,
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
            ssl_reload_interval_ms: num("strom.ssl.reload.interval.ms", &get("strom.ssl.reload.interval.ms"))?,
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
                share: group::ShareConfig {
                    session_timeout_ms: num("group.share.session.timeout.ms", &get("group.share.session.timeout.ms"))?,
                    heartbeat_interval_ms: num(
                        "group.share.heartbeat.interval.ms",
                        &get("group.share.heartbeat.interval.ms"),
                    )?,
                    max_size: num("group.share.max.size", &get("group.share.max.size"))?,
                    record_lock_duration_ms: num(
                        "group.share.record.lock.duration.ms",
                        &get("group.share.record.lock.duration.ms"),
                    )?,
                    delivery_count_limit: num(
                        "group.share.delivery.count.limit",
                        &get("group.share.delivery.count.limit"),
                    )?,
                    partition_max_record_locks: num(
                        "group.share.partition.max.record.locks",
                        &get("group.share.partition.max.record.locks"),
                    )?,
                    max_share_sessions: num(
                        "group.share.max.share.sessions",
                        &get("group.share.max.share.sessions"),
                    )?,
                },
                migration_policy: group::MigrationPolicy::parse(&get("group.consumer.migration.policy"))
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "group.consumer.migration.policy: {:?} is not bidirectional, upgrade, downgrade or disabled",
                            get("group.consumer.migration.policy")
                        )
                    })?,
            },
            sasl_max_receive_size: num("sasl.server.max.receive.size", &get("sasl.server.max.receive.size"))?,
            super_users: get("super.users")
                .split(';')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect(),
            inter_broker,
            inter_broker_listener,
            authorizer: !get("authorizer.class.name").trim().is_empty(),
            allow_everyone_if_no_acl_found: boolean(
                "allow.everyone.if.no.acl.found",
                &get("allow.everyone.if.no.acl.found"),
            )?,
            failed_authentication_delay_ms: num(
                "connection.failed.authentication.delay.ms",
                &get("connection.failed.authentication.delay.ms"),
            )?,
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
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].bind, "localhost:9092");
        assert_eq!(c.advertised(0), ("localhost", 9092));
        assert!(c.ignored.is_empty());
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
        assert_eq!(c.listeners[0].bind, "0.0.0.0:19092");
        assert_eq!(c.advertised(0), ("localhost", 19092));
        let env = map(&[
            ("STROM_LISTENERS", "PLAINTEXT://0.0.0.0:19092"),
            ("STROM_ADVERTISED_LISTENERS", "PLAINTEXT://strom:9092"),
        ]);
        let c = Config::from_sources(None, &env, &BTreeMap::new()).unwrap();
        assert_eq!(c.advertised(0), ("strom", 9092));
    }

    /// The environment of apache/kafka's single-node compose example
    /// (docker/examples/docker-compose-files/single-node/plaintext).
    fn apache_kafka_compose_env() -> BTreeMap<String, String> {
        map(&[
            ("KAFKA_NODE_ID", "1"),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
            ),
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT_HOST://localhost:9092,PLAINTEXT://broker:19092"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@broker:29093"),
            ("KAFKA_LISTENERS", "CONTROLLER://:29093,PLAINTEXT_HOST://:9092,PLAINTEXT://:19092"),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0"),
            ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1"),
            ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1"),
            ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "1"),
            ("KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "1"),
            ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
            // Noise every container has.
            ("PATH", "/usr/local/bin:/usr/bin"),
            ("HOSTNAME", "broker"),
        ])
    }

    #[test]
    fn the_apache_kafka_single_node_compose_environment_configures_strom() {
        let c = Config::from_sources(None, &apache_kafka_compose_env(), &BTreeMap::new()).unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.cluster_id.as_deref(), Some("4L6g3nShT-eMCtK--X86sw"));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(c.group.limits.initial_rebalance_delay_ms, 0);
        let binds: Vec<(&str, &str)> = c.listeners.iter().map(|l| (l.name.as_str(), l.bind.as_str())).collect();
        assert_eq!(binds, [("PLAINTEXT_HOST", "0.0.0.0:9092"), ("PLAINTEXT", "0.0.0.0:19092")]);
        assert_eq!(c.advertised(0), ("localhost", 9092));
        assert_eq!(c.advertised(1), ("broker", 19092));
        assert_eq!(c.inter_broker_listener, 1, "KAFKA_INTER_BROKER_LISTENER_NAME=PLAINTEXT, the second");
        // Everything not acted on is reported, none of it as a warning.
        let mut said: Vec<&str> = c.ignored.iter().map(|i| i.setting.split([' ', '=']).next().unwrap()).collect();
        said.sort();
        assert_eq!(said, ["controller.quorum.voters", "listener"]);
        assert!(c.ignored.iter().all(|i| !i.warn), "{:?}", c.ignored);
        assert_eq!(c.values.get("transaction.state.log.replication.factor").map(String::as_str), Some("1"));
        assert_eq!(c.values.get("share.coordinator.state.topic.min.isr").map(String::as_str), Some("1"));
        // Acted on now (a cluster replicates __consumer_offsets), so not reported.
        assert_eq!(c.values.get("offsets.topic.replication.factor").map(String::as_str), Some("1"));
    }

    /// Kafka's StandardAuthorizer is accepted; any other class, and an authorizer on a
    /// cluster whose brokers cannot authenticate to each other, refuse to start. A SASL
    /// inter-broker listener needs the brokers' mechanism and credentials.
    #[test]
    fn the_standard_authorizer_needs_brokers_that_authenticate_in_a_cluster() {
        let standard = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";
        let c = Config::from_sources(None, &BTreeMap::new(), &map(&[("authorizer.class.name", standard)])).unwrap();
        assert!(c.authorizer && !c.allow_everyone_if_no_acl_found);
        let c = Config::from_sources(None, &BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert!(!c.authorizer);
        let open = map(&[("authorizer.class.name", standard), ("allow.everyone.if.no.acl.found", "TRUE")]);
        assert!(Config::from_sources(None, &BTreeMap::new(), &open).unwrap().allow_everyone_if_no_acl_found);
        let cluster = map(&[
            ("authorizer.class.name", standard),
            ("node.id", "1"),
            ("listeners", "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
            ("controller.quorum.voters", "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293"),
            ("controller.listener.names", "CONTROLLER"),
        ]);
        let err = Config::from_sources(None, &BTreeMap::new(), &cluster).unwrap_err();
        assert!(err.to_string().contains("brokers must authenticate"), "{err}");
        let mut sasl = cluster.clone();
        sasl.extend(map(&[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"),
            ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"b\" password=\"p\" \
                 user_b=\"p\";",
            ),
        ]));
        let err = Config::from_sources(None, &BTreeMap::new(), &sasl).unwrap_err();
        assert!(err.to_string().contains("sasl.mechanism.inter.broker.protocol"), "{err:#}");
        sasl.insert("sasl.mechanism.inter.broker.protocol".into(), "PLAIN".into());
        let c = Config::from_sources(None, &BTreeMap::new(), &sasl).unwrap();
        assert!(c.authorizer);
        assert_eq!(c.inter_broker.protocol(), "SASL_PLAINTEXT");
        assert_eq!(c.inter_broker.sasl.as_ref().map(|s| s.username.as_str()), Some("b"));
        // inter.broker.listener.name picks another listener; one that does not exist is refused.
        let mut named = sasl.clone();
        named.extend(map(&[
            ("listeners", "EXTERNAL://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9093"),
            ("listener.security.protocol.map", "EXTERNAL:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"),
            ("inter.broker.listener.name", "sasl_plaintext"),
        ]));
        let c = Config::from_sources(None, &BTreeMap::new(), &named).unwrap();
        assert_eq!((c.inter_broker_listener, c.inter_broker.protocol()), (1, "SASL_PLAINTEXT"));
        named.insert("inter.broker.listener.name".into(), "CONTROLLER".into());
        let err = Config::from_sources(None, &BTreeMap::new(), &named).unwrap_err();
        assert!(err.to_string().contains("names no client listener"), "{err}");
        let custom = map(&[("authorizer.class.name", "com.example.MyAuthorizer")]);
        assert!(Config::from_sources(None, &BTreeMap::new(), &custom).is_err());
    }

    #[test]
    fn strom_variables_beat_kafka_variables_which_beat_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("server.properties");
        std::fs::write(&file, "num.partitions=3\nlog.dirs=/from/file\nnode.id=4\n").unwrap();
        let env = map(&[("KAFKA_NUM_PARTITIONS", "5"), ("STROM_NUM_PARTITIONS", "6"), ("KAFKA_LOG_DIRS", "/k")]);
        let c = Config::from_sources(Some(&file), &env, &BTreeMap::new()).unwrap();
        assert_eq!((c.num_partitions, c.node_id), (6, 4));
        assert_eq!(c.data_dir, PathBuf::from("/k"));
        // KAFKA_BROKER_ID is Kafka's older node.id.
        let c = Config::from_sources(None, &map(&[("KAFKA_BROKER_ID", "9")]), &BTreeMap::new()).unwrap();
        assert_eq!(c.node_id, 9);
    }

    #[test]
    fn unknown_and_jvm_settings_are_reported_and_semantic_ones_stop_startup() {
        let env = map(&[
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("KAFKA_NO_SUCH_SETTING", "1"),
            ("KAFKA_ZOOKEEPER_CONNECT", "zk:2181"),
            ("STROM_NOT_A_KEY", "x"),
        ]);
        let c = Config::from_sources(None, &env, &BTreeMap::new()).unwrap();
        let got: Vec<(&str, bool)> = c.ignored.iter().map(|i| (i.setting.as_str(), i.warn)).collect();
        assert_eq!(
            got,
            [
                ("KAFKA_HEAP_OPTS", false),
                ("STROM_NOT_A_KEY", true),
                ("no.such.setting (from KAFKA_NO_SUCH_SETTING)", true),
                ("zookeeper.connect=zk:2181 (from KAFKA_ZOOKEEPER_CONNECT)", true),
            ]
        );
        for (k, v, why) in [
            ("KAFKA_AUTHORIZER_CLASS_NAME", "kafka.security.authorizer.AclAuthorizer", "StandardAuthorizer"),
            ("KAFKA_LISTENERS", "SASL_PLAINTEXT://:9092", "SASL_PLAINTEXT"),
            ("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@a:9093,2@b:9093,3@c:9093", "controller listener"),
            ("KAFKA_PROCESS_ROLES", "controller", "needs controller.quorum.voters"),
        ] {
            let err = Config::from_sources(None, &map(&[(k, v)]), &BTreeMap::new()).unwrap_err();
            assert!(err.to_string().contains(why), "{k}={v}: {err}");
        }
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
