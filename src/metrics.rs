//! Prometheus metrics and the HTTP admin endpoint (`/metrics`, `/livez`, `/readyz`).
//!
//! Counters and histograms are updated on the request path; partition counts, log
//! sizes, under-min-ISR partitions and consumer-group lag are computed at scrape time
//! from the cluster (high watermarks) and the group coordinator (committed offsets).
//! Exposition is OpenMetrics text through `prometheus-client`.
//!
//! The HTTP server is a deliberately tiny HTTP/1.1 responder on tokio: it answers three
//! GET paths and closes each connection, which keeps a full HTTP stack (hyper and its
//! dependencies) out of the broker for an endpoint that only scrapers and probes use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::cluster::Cluster;

/// Storage failures (I/O errors answered with KAFKA_STORAGE_ERROR), process-wide: they
/// are counted where the storage error is mapped, which has no handle on the broker.
pub static STORAGE_ERRORS: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: String,
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

    /// Records batches sent to a consumer.
    pub fn fetched(&self, topic: &str, records: u64, bytes: u64) {
        if records == 0 && bytes == 0 {
            return;
        }
        let labels = TopicLabels { topic: topic.to_string() };
        self.records_out.get_or_create(&labels).inc_by(records);
        self.bytes_out.get_or_create(&labels).inc_by(bytes);
    }

    /// The OpenMetrics text exposition, with scrape-time gauges read from `cluster`.
    pub fn render(&self, cluster: &Cluster) -> String {
        let mut reg = Registry::default();
        reg.register("strom_active_connections", "Open Kafka client connections", self.connections.clone());
        reg.register("strom_requests", "Requests handled, per API", self.requests.clone());
        reg.register("strom_request_latency_seconds", "Request handling time, per API", self.latency.clone());
        reg.register("strom_topic_bytes_in", "Record batch bytes appended, per topic", self.bytes_in.clone());
        reg.register("strom_topic_records_in", "Records appended, per topic", self.records_in.clone());
        reg.register("strom_topic_bytes_out", "Record batch bytes sent to fetchers, per topic", self.bytes_out.clone());
        reg.register("strom_topic_records_out", "Records sent to fetchers, per topic", self.records_out.clone());
        let storage_errors: Counter = Counter::default();
        storage_errors.inc_by(STORAGE_ERRORS.load(Ordering::Relaxed));
        reg.register("strom_storage_errors", "Storage I/O failures (KAFKA_STORAGE_ERROR)", storage_errors);

        let partitions: Gauge = Gauge::default();
        let under_min_isr: Gauge = Gauge::default();
        let log_size: Family<PartitionLabels, Gauge> = Family::default();
        let log_end: Family<PartitionLabels, Gauge> = Family::default();
        let log_start: Family<PartitionLabels, Gauge> = Family::default();
        for topic in cluster.topics() {
            partitions.inc_by(topic.partitions.len() as i64);
            // A single broker: every ISR has one replica.
            let min_isr: i64 = cluster.topic_setting(&topic, "min.insync.replicas").parse().unwrap_or(1);
            if min_isr > 1 {
                under_min_isr.inc_by(topic.partitions.len() as i64);
            }
            for p in &topic.partitions {
                let l = PartitionLabels { topic: topic.name.to_string(), partition: p.index.to_string() };
                log_size.get_or_create(&l).set(p.size_bytes() as i64);
                log_end.get_or_create(&l).set(p.high_watermark());
                log_start.get_or_create(&l).set(p.log_start_offset());
            }
        }
        reg.register("strom_partitions", "Partitions on this broker", partitions);
        reg.register(
            "strom_under_min_isr_partitions",
            "Partitions whose ISR is below min.insync.replicas",
            under_min_isr,
        );
        reg.register("strom_log_size_bytes", "Bytes on disk, per partition", log_size);
        reg.register("strom_log_end_offset", "Log end offset (high watermark), per partition", log_end);
        reg.register("strom_log_start_offset", "Log start offset, per partition", log_start);

        let lag: Family<LagLabels, Gauge> = Family::default();
        let committed: Family<LagLabels, Gauge> = Family::default();
        let mut rows = Vec::new();
        cluster.groups.for_each_group(|name, g| {
            for ((topic, partition), v) in g.offsets() {
                rows.push((name.to_string(), topic.clone(), *partition, v.offset));
            }
        });
        for (group, topic, partition, offset) in rows {
            let Some(p) = cluster.partition(&topic, partition) else { continue };
            let l = LagLabels { group, topic, partition: partition.to_string() };
            committed.get_or_create(&l).set(offset);
            lag.get_or_create(&l).set((p.high_watermark() - offset).max(0));
        }
        reg.register("strom_consumergroup_lag", "Log end offset minus committed offset", lag);
        reg.register("strom_consumergroup_current_offset", "Committed offset", committed);

        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &reg);
        out
    }
}

fn api_label(key: i16) -> String {
    strom_protocol::api_schema(key).map_or_else(|| key.to_string(), |s| s.name.to_string())
}

/// Serves `/metrics`, `/livez` and `/readyz` on `listener` until the task is dropped.
pub async fn serve_http(listener: TcpListener, cluster: Arc<Cluster>) {
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(&mut stream, &cluster)).await;
        });
    }
}

async fn answer(stream: &mut tokio::net::TcpStream, cluster: &Cluster) -> std::io::Result<()> {
    // Read the request head (bounded); the body of a GET is ignored.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 * 1024 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let text = "text/plain; charset=utf-8";
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", cluster.metrics.render(cluster))
        }
        ("GET" | "HEAD", "/livez") => ("200 OK", text, "ok\n".to_string()),
        ("GET" | "HEAD", "/readyz") => {
            if cluster.groups.is_loaded() {
                ("200 OK", text, "ok\n".to_string())
            } else {
                ("503 Service Unavailable", text, "loading __consumer_offsets\n".to_string())
            }
        }
        ("GET" | "HEAD", _) => ("404 Not Found", text, "not found\n".to_string()),
        _ => ("405 Method Not Allowed", text, "only GET\n".to_string()),
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        resp.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&resp).await?;
    stream.shutdown().await
}
