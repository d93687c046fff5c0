//! Shared by the hostile-input and load tests: an in-process broker, raw frames, RSS.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use strom::config::Config;
use strom_protocol::share_fetch_request;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Running {
    pub addr: String,
    /// The schema registry's address, when its listener is enabled.
    pub registry: Option<String>,
    /// The HTTP admin endpoint's address (`/metrics`).
    pub http: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("broker task panicked").expect("broker failed");
        }
    }
}

pub async fn start(dir: &Path, extra: &[(&str, &str)]) -> Running {
    let mut overrides: BTreeMap<String, String> = BTreeMap::from([
        ("listeners".to_string(), "PLAINTEXT://127.0.0.1:0".to_string()),
        ("log.dirs".to_string(), dir.display().to_string()),
        // Never the default 9644: another broker on this machine may hold it.
        ("strom.http.listener".to_string(), "127.0.0.1:0".to_string()),
        // Nor the registry's default 8081 (tests that use it pass a port).
        ("strom.schema.registry.listener".to_string(), String::new()),
    ]);
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_sources(None, &BTreeMap::new(), &overrides).expect("config");
    let broker = strom::Broker::bind(config).await.expect("bind");
    let addr = broker.local_addr().expect("addr").to_string();
    let registry = broker.registry_addr().map(|a| a.to_string());
    let http = broker.http_addr().map(|a| a.to_string());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    Running { addr, registry, http, stop: Some(tx), task: Some(task) }
}

/// This process's resident set size in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// An ApiVersions v0 request frame, size prefix included.
pub fn api_versions_frame(correlation_id: i32) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend(18i16.to_be_bytes());
    f.extend(0i16.to_be_bytes());
    f.extend(correlation_id.to_be_bytes());
    f.extend((-1i16).to_be_bytes());
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend(f);
    out
}

/// Sends ApiVersions and reads the response; the broker is alive and serving.
pub async fn api_versions_ok(addr: &str) -> bool {
    let run = async {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(&api_versions_frame(42)).await?;
        let mut size = [0u8; 4];
        s.read_exact(&mut size).await?;
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        s.read_exact(&mut body).await?;
        Ok::<bool, std::io::Error>(body[..4] == 42i32.to_be_bytes())
    };
    matches!(tokio::time::timeout(Duration::from_secs(10), run).await, Ok(Ok(true)))
}

/// Writes `bytes` (ignoring a reset) and reads until the broker closes the connection,
/// one whole response has arrived, or `wait` passes; returns (bytes read, whether it closed).
pub async fn send_and_drain(addr: &str, bytes: &[u8], wait: Duration) -> (usize, bool) {
    let Ok(mut s) = TcpStream::connect(addr).await else { return (0, false) };
    let _ = s.write_all(bytes).await;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(wait, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.len() >= 4 && got.len() >= 4 + i32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize {
                return false;
            }
        }
    })
    .await
    .unwrap_or(false);
    (got.len(), closed)
}

pub fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// One HTTP/1.1 request (`Connection: close`) with an optional JSON body; the status and
/// the body parsed as JSON (`Value::Null` when it is not JSON). For the schema registry.
pub async fn http_json(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let (status, raw) = http_raw(addr, method, path, body.unwrap_or("").as_bytes()).await;
    (status, serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null))
}

/// [`http_json`] with raw body bytes; the status (0 if the connection closed without
/// one) and the raw response body.
pub async fn http_raw(addr: &str, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(addr).await else { return (0, Vec::new()) };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut out = Vec::new();
    let sent = async {
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await
    }
    .await;
    // The server may answer (and close) before the whole body is sent: read anyway.
    let _ = sent;
    let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
    let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else { return (0, out) };
    let status = String::from_utf8_lossy(&out[..end]).split_whitespace().nth(1).and_then(|s| s.parse().ok());
    (status.unwrap_or(0), out[end + 4..].to_vec())
}

/// IncrementalAlterConfigs SET of `configs` on share group `group` (resource type GROUP):
/// the error code and message.
pub async fn set_group_configs(
    c: &mut strom_client::Client,
    group: &str,
    configs: &[(&str, &str)],
) -> (i16, Option<String>) {
    use strom_protocol::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use strom_protocol::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
    let req = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 32,
            resource_name: group.into(),
            configs: configs
                .iter()
                .map(|(k, v)| AlterableConfig {
                    name: k.to_string(),
                    config_operation: 0,
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp: IncrementalAlterConfigsResponse = c.call_at(1, &req).await.expect("alter configs");
    (resp.responses[0].error_code, resp.responses[0].error_message.clone())
}

/// A ShareFetch of `partitions` of `topic` carrying `acks` ((first, last, type)) for each.
#[allow(clippy::too_many_arguments)]
pub fn share_fetch(
    group: &str,
    member: &str,
    epoch: i32,
    topic: strom_protocol::Uuid,
    partitions: &[i32],
    acks: &[(i64, i64, i8)],
    max_wait_ms: i32,
) -> strom_protocol::ShareFetchRequest {
    strom_protocol::ShareFetchRequest {
        group_id: Some(group.into()),
        member_id: Some(member.into()),
        share_session_epoch: epoch,
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        max_records: 500,
        batch_size: 500,
        topics: vec![share_fetch_request::FetchTopic {
            topic_id: topic,
            partitions: partitions
                .iter()
                .map(|&p| share_fetch_request::FetchPartition {
                    partition_index: p,
                    acknowledgement_batches: acks
                        .iter()
                        .map(|&(first_offset, last_offset, t)| share_fetch_request::AcknowledgementBatch {
                            first_offset,
                            last_offset,
                            acknowledge_types: vec![t],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// (first, last, delivery count) of every acquired range in a response.
pub fn acquired(resp: &strom_protocol::ShareFetchResponse) -> Vec<(i64, i64, i16)> {
    resp.responses
        .iter()
        .flat_map(|t| &t.partitions)
        .flat_map(|p| &p.acquired_records)
        .map(|r| (r.first_offset, r.last_offset, r.delivery_count))
        .collect()
}

/// A standalone OffsetCommit (generation -1, no member) of `offset` on `topic`-0.
pub fn standalone_commit(group: &str, topic: &str, offset: i64) -> strom_protocol::OffsetCommitRequest {
    use strom_protocol::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
    strom_protocol::OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: topic.into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}
