//! Prometheus metrics.
//!
//! Counters and histograms are updated on the request path; partition counts, log
//! sizes, under-min-ISR partitions and consumer-group lag are gauges computed at scrape
//! time from a [`Scrape`] that the HTTP endpoint (`http.rs`) gathers from the partitions
//! (high watermarks) and the group coordinator (committed offsets). Exposition is
//! OpenMetrics text through `prometheus-client`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// One partition's state at scrape time.
#[derive(Debug, Clone)]
pub struct PartitionSample {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Bytes on disk.
    pub size_bytes: u64,
    /// Log end offset (high watermark).
    pub log_end_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// High watermark (what consumers may read up to).
    pub high_watermark: i64,
    /// Last stable offset (what read_committed consumers may read up to).
    pub last_stable_offset: i64,
}

/// A follower of a partition this broker leads, at scrape time.
#[derive(Debug, Clone)]
pub struct FollowerSample {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The follower's broker id.
    pub replica: i32,
    /// Records the follower is behind the leader's log end.
    pub lag_records: i64,
    /// Milliseconds since the follower was last caught up.
    pub lag_ms: i64,
}

/// A group's committed offset with its partition's end, at scrape time.
#[derive(Debug, Clone)]
pub struct CommittedSample {
    /// Group id.
    pub group: String,
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Committed offset.
    pub offset: i64,
    /// The partition's log end offset.
    pub log_end_offset: i64,
}

/// What the scrape-time gauges show, gathered by the owner of the state (the HTTP
/// endpoint reads it from the node), so this module depends on nothing above it.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Every partition on this broker.
    pub partitions: Vec<PartitionSample>,
    /// Partitions whose ISR is below `min.insync.replicas`.
    pub under_min_isr: i64,
    /// Partitions this broker leads whose ISR lacks some replica.
    pub under_replicated: i64,
    /// Followers of the partitions this broker leads.
    pub followers: Vec<FollowerSample>,
    /// Every committed offset of every group, for lag.
    pub committed: Vec<CommittedSample>,
    /// The metadata quorum as this node sees it (a cluster; `None` on a single node).
    pub quorum: Option<QuorumSample>,
    /// The transaction coordinator on this node.
    pub transactions: TxnSample,
    /// The schema registry on this node.
    pub registry: RegistrySample,
    /// Share groups' records on this broker (KIP-932).
    pub share: ShareSample,
}

/// Share-partition totals on this broker (KIP-932, issue 19).
#[derive(Debug, Clone, Default)]
pub struct ShareSample {
    /// Records acquired by ShareFetch, accepted, released, archived (rejected or at the
    /// delivery limit), released because their lock ran out, and whose lock was renewed.
    pub acquired: u64,
    pub accepted: u64,
    pub released: u64,
    pub archived: u64,
    pub lock_timeouts: u64,
    pub renewed: u64,
    /// Share-partitions and share sessions held.
    pub partitions: i64,
    pub sessions: i64,
}

/// The schema registry's state and counters (issue 18).
#[derive(Debug, Clone, Default)]
pub struct RegistrySample {
    /// REST requests answered 2xx, 4xx and 5xx.
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    /// Schemas (distinct ids) and subjects known.
    pub schemas: i64,
    pub subjects: i64,
}

/// The transaction coordinator's state and counters (issue 15).
#[derive(Debug, Clone, Default)]
pub struct TxnSample {
    /// Transactional ids coordinated here.
    pub ids: i64,
    /// Of those, with a transaction between its first partition and its Complete record.
    pub ongoing: i64,
    /// Transactions committed / aborted (including timed out) since start.
    pub committed: u64,
    pub aborted: u64,
    /// Transactions the broker aborted because they outlived their timeout.
    pub timed_out: u64,
    /// Markers written for this coordinator's transactions.
    pub markers: u64,
    /// Total time spent loading `__transaction_state` partitions, in ms.
    pub load_ms: u64,
}

/// The metadata quorum's state on this node.
#[derive(Debug, Clone, Default)]
pub struct QuorumSample {
    /// 1 while this node is the active controller (quorum leader).
    pub is_leader: bool,
    /// The current Raft term (KRaft's leader epoch).
    pub term: i64,
    /// Offset of the next metadata change this node's image will apply.
    pub applied_offset: i64,
    /// The metadata log's end offset on this node.
    pub log_end_offset: i64,
    /// Metadata changes in this node's log that its image has not applied yet.
    pub lag: i64,
    /// Registered brokers that are fenced.
    pub fenced_brokers: i64,
    /// Registered brokers.
    pub brokers: i64,
    /// Partitions without a leader.
    pub leaderless_partitions: i64,
}

/// Storage failures (I/O errors answered with KAFKA_STORAGE_ERROR), process-wide: they
/// are counted where the storage error is mapped, which has no handle on the broker.
pub static STORAGE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Successful and failed SASL authentications (counted by `security.rs`).
pub static SASL_AUTH_SUCCEEDED: AtomicU64 = AtomicU64::new(0);
/// See [`SASL_AUTH_SUCCEEDED`].
pub static SASL_AUTH_FAILED: AtomicU64 = AtomicU64::new(0);
/// Successful re-authentications of live connections (KIP-368), also counted in
/// [`SASL_AUTH_SUCCEEDED`].
pub static SASL_REAUTHENTICATIONS: AtomicU64 = AtomicU64::new(0);

/// Requests (or parts of them: one topic, one group) the authorizer denied, per ACL
/// resource type code (`security::acl::resource`; counted by `api/authz.rs`).
pub static AUTHORIZATION_DENIED: [AtomicU64; 8] = [const { AtomicU64::new(0) }; 8];

/// Completed TLS handshakes on SSL and SASL_SSL listeners (counted by `net.rs`).
pub static TLS_HANDSHAKES: AtomicU64 = AtomicU64::new(0);
/// TLS handshakes that failed or timed out, and client certificates no mapping rule
/// applies to.
pub static TLS_HANDSHAKE_FAILURES: AtomicU64 = AtomicU64::new(0);
/// Key, certificate or truststore files re-read after a change (`tls.rs`).
pub static TLS_RELOADS: AtomicU64 = AtomicU64::new(0);
/// TLS files that changed but could not be loaded (the previous configuration stays).
pub static TLS_RELOAD_FAILURES: AtomicU64 = AtomicU64::new(0);

/// ISR changes this broker proposed and the quorum committed (shrinks and expansions).
pub static ISR_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Partition leader changes this node's controller made (failovers and elections).
pub static LEADER_ELECTIONS: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FollowerLabels {
    topic: String,
    partition: String,
    replica: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceTypeLabels {
    resource_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LagLabels {
    group: String,
    topic: String,
    partition: String,
}

type HistogramFamily = Family<ApiLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 µs .. ~3.3 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 17))
}

/// The broker's live metrics.
#[derive(Clone)]
pub struct Metrics {
    connections: Gauge,
    requests: Family<ApiLabels, Counter>,
    latency: HistogramFamily,
    bytes_in: Family<TopicLabels, Counter>,
    records_in: Family<TopicLabels, Counter>,
    bytes_out: Family<TopicLabels, Counter>,
    records_out: Family<TopicLabels, Counter>,
    schema_rejected: Family<TopicLabels, Counter>,
    dead_lettered: Family<TopicLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            connections: Gauge::default(),
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            bytes_in: Family::default(),
            records_in: Family::default(),
            bytes_out: Family::default(),
            records_out: Family::default(),
            schema_rejected: Family::default(),
            dead_lettered: Family::default(),
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Decrements the connection gauge when the connection task ends.
pub struct ConnectionGuard(Gauge);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Counts an open connection until the guard drops.
    pub fn connection(&self) -> ConnectionGuard {
        self.connections.inc();
        ConnectionGuard(self.connections.clone())
    }

    /// Records one request of API `key` that took `elapsed`.
    pub fn request(&self, key: i16, elapsed: Duration) {
        let labels = ApiLabels { api: api_label(key) };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(elapsed.as_secs_f64());
    }

    /// Records an appended batch.
    pub fn produced(&self, topic: &str, records: u64, bytes: u64) {
        let labels = TopicLabels { topic: topic.to_string() };
        self.records_in.get_or_create(&labels).inc_by(records);
        self.bytes_in.get_or_create(&labels).inc_by(bytes);
    }

    /// Counts a batch refused by schema validation (INVALID_RECORD).
    pub fn schema_rejected(&self, topic: &str) {
        self.schema_rejected.get_or_create(&TopicLabels { topic: topic.to_string() }).inc();
    }

    /// Counts records of `topic` routed to its dead-letter topic.
    pub fn dead_lettered(&self, topic: &str, records: u64) {
        self.dead_lettered.get_or_create(&TopicLabels { topic: topic.to_string() }).inc_by(records);
    }

    /// Records batches sent to a consumer.
    pub fn fetched(&self, topic: &str, records: u64, bytes: u64) {
        if records == 0 && bytes == 0 {
            return;
        }
        let labels = TopicLabels { topic: topic.to_string() };
        self.records_out.get_or_create(&labels).inc_by(records);
        self.bytes_out.get_or_create(&labels).inc_by(bytes);
    }

    /// The OpenMetrics text exposition, with the scrape-time gauges of `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut reg = Registry::default();
        reg.register("strom_active_connections", "Open Kafka client connections", self.connections.clone());
        reg.register("strom_requests", "Requests handled, per API", self.requests.clone());
        reg.register("strom_request_latency_seconds", "Request handling time, per API", self.latency.clone());
        reg.register("strom_topic_bytes_in", "Record batch bytes appended, per topic", self.bytes_in.clone());
        reg.register("strom_topic_records_in", "Records appended, per topic", self.records_in.clone());
        reg.register("strom_topic_bytes_out", "Record batch bytes sent to fetchers, per topic", self.bytes_out.clone());
        reg.register("strom_topic_records_out", "Records sent to fetchers, per topic", self.records_out.clone());
        reg.register(
            "strom_schema_validation_failures",
            "Produce batches refused because a record failed schema validation, per topic",
            self.schema_rejected.clone(),
        );
        reg.register(
            "strom_dead_letter_records",
            "Records routed to a dead-letter topic by schema validation, per source topic",
            self.dead_lettered.clone(),
        );
        let r = &scrape.registry;
        let registry_requests: Family<OutcomeLabels, Counter> = Family::default();
        for (outcome, n) in [("ok", r.ok), ("client_error", r.client_errors), ("server_error", r.server_errors)] {
            registry_requests.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc_by(n);
        }
        reg.register("strom_schema_registry_requests", "Schema registry REST requests, by outcome", registry_requests);
        let g = |v: i64| {
            let g: Gauge = Gauge::default();
            g.set(v);
            g
        };
        reg.register("strom_schema_registry_schemas", "Schemas (distinct ids) in the registry", g(r.schemas));
        reg.register("strom_schema_registry_subjects", "Subjects in the registry", g(r.subjects));
        let sh = &scrape.share;
        let share_records: Family<OutcomeLabels, Counter> = Family::default();
        for (outcome, n) in [
            ("acquired", sh.acquired),
            ("accepted", sh.accepted),
            ("released", sh.released),
            ("archived", sh.archived),
            ("lock_timeout", sh.lock_timeouts),
            ("renewed", sh.renewed),
        ] {
            share_records.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc_by(n);
        }
        reg.register(
            "strom_share_records",
            "Share-group records on this broker, by what happened to them",
            share_records,
        );
        reg.register("strom_share_partitions", "Share-partitions held by this broker", g(sh.partitions));
        reg.register("strom_share_sessions", "Share sessions open on this broker", g(sh.sessions));
        let storage_errors: Counter = Counter::default();
        storage_errors.inc_by(STORAGE_ERRORS.load(Ordering::Relaxed));
        reg.register("strom_storage_errors", "Storage I/O failures (KAFKA_STORAGE_ERROR)", storage_errors);
        let isr_changes: Counter = Counter::default();
        isr_changes.inc_by(ISR_CHANGES.load(Ordering::Relaxed));
        reg.register(
            "strom_isr_changes",
            "ISR shrinks and expansions this broker proposed and got committed",
            isr_changes,
        );
        let elections: Counter = Counter::default();
        elections.inc_by(LEADER_ELECTIONS.load(Ordering::Relaxed));
        reg.register("strom_leader_elections", "Partition leader changes made by this node as controller", elections);
        let auth_ok: Counter = Counter::default();
        auth_ok.inc_by(SASL_AUTH_SUCCEEDED.load(Ordering::Relaxed));
        reg.register("strom_sasl_authentications", "Successful SASL authentications", auth_ok);
        let auth_failed: Counter = Counter::default();
        auth_failed.inc_by(SASL_AUTH_FAILED.load(Ordering::Relaxed));
        reg.register("strom_sasl_authentication_failures", "Failed SASL authentications", auth_failed);
        let reauth: Counter = Counter::default();
        reauth.inc_by(SASL_REAUTHENTICATIONS.load(Ordering::Relaxed));
        reg.register(
            "strom_sasl_reauthentications",
            "Connections that re-authenticated before their session ended (KIP-368)",
            reauth,
        );
        let denied: Family<ResourceTypeLabels, Counter> = Family::default();
        for (code, name) in [(2, "topic"), (3, "group"), (4, "cluster"), (5, "transactional_id"), (7, "user")] {
            let n = AUTHORIZATION_DENIED[code].load(Ordering::Relaxed);
            denied.get_or_create(&ResourceTypeLabels { resource_type: name.into() }).inc_by(n);
        }
        reg.register(
            "strom_authorization_denials",
            "Operations the authorizer denied (ACLs), per resource type",
            denied,
        );
        for (name, help, value) in [
            ("strom_tls_handshakes", "Completed TLS handshakes", &TLS_HANDSHAKES),
            ("strom_tls_handshake_failures", "Failed or timed-out TLS handshakes", &TLS_HANDSHAKE_FAILURES),
            ("strom_tls_reloads", "TLS key/certificate/truststore reloads after a file change", &TLS_RELOADS),
            ("strom_tls_reload_failures", "Changed TLS files that could not be loaded", &TLS_RELOAD_FAILURES),
        ] {
            let c: Counter = Counter::default();
            c.inc_by(value.load(Ordering::Relaxed));
            reg.register(name, help, c);
        }

        let partitions: Gauge = Gauge::default();
        let under_min_isr: Gauge = Gauge::default();
        let log_size: Family<PartitionLabels, Gauge> = Family::default();
        let log_end: Family<PartitionLabels, Gauge> = Family::default();
        let log_start: Family<PartitionLabels, Gauge> = Family::default();
        let hw: Family<PartitionLabels, Gauge> = Family::default();
        let lso_lag: Family<PartitionLabels, Gauge> = Family::default();
        let under_replicated: Gauge = Gauge::default();
        under_replicated.set(scrape.under_replicated);
        partitions.set(scrape.partitions.len() as i64);
        under_min_isr.set(scrape.under_min_isr);
        for p in &scrape.partitions {
            let l = PartitionLabels { topic: p.topic.clone(), partition: p.partition.to_string() };
            log_size.get_or_create(&l).set(p.size_bytes as i64);
            log_end.get_or_create(&l).set(p.log_end_offset);
            log_start.get_or_create(&l).set(p.log_start_offset);
            hw.get_or_create(&l).set(p.high_watermark);
            lso_lag.get_or_create(&l).set((p.high_watermark - p.last_stable_offset).max(0));
        }
        let follower_lag: Family<FollowerLabels, Gauge> = Family::default();
        let follower_lag_ms: Family<FollowerLabels, Gauge> = Family::default();
        for f in &scrape.followers {
            let l = FollowerLabels {
                topic: f.topic.clone(),
                partition: f.partition.to_string(),
                replica: f.replica.to_string(),
            };
            follower_lag.get_or_create(&l).set(f.lag_records);
            follower_lag_ms.get_or_create(&l).set(f.lag_ms);
        }
        reg.register(
            "strom_under_replicated_partitions",
            "Partitions this broker leads whose ISR lacks a replica",
            under_replicated,
        );
        reg.register(
            "strom_replica_lag_records",
            "Records a follower is behind its leader, per follower",
            follower_lag,
        );
        reg.register("strom_replica_lag_ms", "Time since a follower was last caught up, per follower", follower_lag_ms);
        reg.register("strom_partitions", "Partitions on this broker", partitions);
        reg.register(
            "strom_under_min_isr_partitions",
            "Partitions whose ISR is below min.insync.replicas",
            under_min_isr,
        );
        reg.register("strom_log_size_bytes", "Bytes on disk, per partition", log_size);
        reg.register("strom_log_end_offset", "Log end offset, per partition", log_end);
        reg.register("strom_high_watermark", "High watermark (committed up to), per partition", hw);
        reg.register("strom_log_start_offset", "Log start offset, per partition", log_start);
        reg.register(
            "strom_last_stable_offset_lag",
            "High watermark minus last stable offset (records held back by open transactions), per partition",
            lso_lag,
        );
        {
            let t = &scrape.transactions;
            let g = |v: i64| {
                let g: Gauge = Gauge::default();
                g.set(v);
                g
            };
            let c = |v: u64| {
                let c: Counter = Counter::default();
                c.inc_by(v);
                c
            };
            reg.register("strom_transactional_ids", "Transactional ids this broker coordinates", g(t.ids));
            reg.register(
                "strom_transactions_ongoing",
                "Transactions open (not yet Complete) on this coordinator",
                g(t.ongoing),
            );
            reg.register("strom_transactions_committed", "Transactions committed by this coordinator", c(t.committed));
            reg.register("strom_transactions_aborted", "Transactions aborted by this coordinator", c(t.aborted));
            reg.register(
                "strom_transactions_timed_out",
                "Transactions aborted for outliving their timeout",
                c(t.timed_out),
            );
            reg.register("strom_transaction_markers", "Transaction markers written for this coordinator", c(t.markers));
            reg.register(
                "strom_transaction_coordinator_load_ms",
                "Time spent loading __transaction_state partitions",
                c(t.load_ms),
            );
        }

        let lag: Family<LagLabels, Gauge> = Family::default();
        let committed: Family<LagLabels, Gauge> = Family::default();
        for c in &scrape.committed {
            let l = LagLabels { group: c.group.clone(), topic: c.topic.clone(), partition: c.partition.to_string() };
            committed.get_or_create(&l).set(c.offset);
            lag.get_or_create(&l).set((c.log_end_offset - c.offset).max(0));
        }
        reg.register("strom_consumergroup_lag", "Log end offset minus committed offset", lag);
        if let Some(q) = &scrape.quorum {
            let g = |v: i64| {
                let g: Gauge = Gauge::default();
                g.set(v);
                g
            };
            reg.register(
                "strom_controller_active",
                "1 while this node leads the metadata quorum",
                g(i64::from(q.is_leader)),
            );
            reg.register("strom_metadata_term", "Current Raft term of the metadata quorum", g(q.term));
            reg.register(
                "strom_metadata_applied_offset",
                "Metadata offset this node's image reached",
                g(q.applied_offset),
            );
            reg.register("strom_metadata_log_end_offset", "Metadata log end offset on this node", g(q.log_end_offset));
            reg.register("strom_metadata_lag", "Metadata log entries not applied to the image yet", g(q.lag));
            reg.register("strom_brokers", "Registered brokers", g(q.brokers));
            reg.register("strom_fenced_brokers", "Registered brokers that are fenced", g(q.fenced_brokers));
            reg.register("strom_leaderless_partitions", "Partitions without a leader", g(q.leaderless_partitions));
        }
        reg.register("strom_consumergroup_current_offset", "Committed offset", committed);

        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

fn api_label(key: i16) -> String {
    strom_protocol::api_schema(key).map_or_else(|| key.to_string(), |s| s.name.to_string())
}
