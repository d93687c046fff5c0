//! Fetch (key 1): serve batches as zero-copy slices of the mapped log, long-polling on
//! `max_wait_ms`/`min_bytes` by waiting on per-partition append notifications.
//!
//! Fetch sessions (KIP-227) are not created: every response carries session id 0, which
//! tells clients to keep sending full fetch requests. That is valid Kafka behaviour.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use strom_protocol::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use strom_protocol::records::BatchHeader;
use strom_protocol::{FetchRequest, FetchResponse};
use tokio::time::Instant;

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::metadata::Partition;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 1, min: 4, max: 18, advertised_min: 4 };

/// Longest a fetch may wait, whatever the client asks: bounds a connection's idle time.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// Builds one response from the logs' current state; returns it with its record bytes.
fn collect(
    node: &Node,
    version: i16,
    req: &FetchRequest,
    parts: &[Vec<Option<Arc<Partition>>>],
    denied: &[bool],
) -> (FetchResponse, usize, bool) {
    let mut budget = usize::try_from(req.max_bytes).unwrap_or(0);
    let mut total = 0usize;
    let replica = replica_of(version, req);
    let now_ms = strom_storage::now_ms();
    let mut any_error = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for (ti, (t, tparts)) in req.topics.iter().zip(parts).enumerate() {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for (fp, p) in t.partitions.iter().zip(tparts) {
            let mut pd =
                PartitionData { partition_index: fp.partition, records: Some(Bytes::new()), ..Default::default() };
            if req.isolation_level == 1 {
                pd.aborted_transactions = Some(Vec::new());
            }
            if denied.get(ti).copied().unwrap_or(false) {
                pd.error_code = ErrorCode::TopicAuthorizationFailed.code();
                pd.high_watermark = -1;
                partitions.push(pd);
                continue;
            }
            let led = p.as_ref().filter(|p| p.is_leader() && node.meta.leads_partition(p));
            // A follower's fetch tells the leader what the follower holds (ADR 0010).
            let follower = match (replica, led) {
                (Some(id), Some(p)) => Some(p.follower_fetched(id, fp.fetch_offset, fp.current_leader_epoch, now_ms)),
                _ => None,
            };
            if let Some(Err(code)) = follower {
                pd.error_code = code.code();
                pd.high_watermark = led.map_or(-1, |p| p.high_watermark());
                any_error = true;
                partitions.push(pd);
                continue;
            }
            let Some(p) = led else {
                pd.error_code = if p.is_some() {
                    // The partition exists but another broker leads it: the client refreshes
                    // its metadata and goes there.
                    ErrorCode::NotLeaderOrFollower.code()
                } else if version >= 13 && node.meta.topic_by_id(&t.topic_id).is_none() {
                    ErrorCode::UnknownTopicId.code()
                } else {
                    ErrorCode::UnknownTopicOrPartition.code()
                };
                pd.high_watermark = -1;
                any_error = true;
                partitions.push(pd);
                continue;
            };
            pd.high_watermark = p.high_watermark();
            pd.last_stable_offset = p.last_stable_offset();
            pd.log_start_offset = p.log_start_offset();
            // Once the response is full, later partitions get nothing (not even a first batch).
            let limit = usize::try_from(fp.partition_max_bytes).unwrap_or(0).min(budget);
            // Fetch < v10 predates zstd. Kafka refuses it for topics whose
            // `compression.type` is zstd; zstd batches a producer wrote to a `producer`
            // topic are served as stored (Kafka never inspects or down-converts them).
            if version < 10
                && node.meta.topic(&p.topic).is_some_and(|t| node.meta.topic_setting(&t, "compression.type") == "zstd")
            {
                pd.error_code = ErrorCode::UnsupportedCompressionType.code();
                any_error = true;
                partitions.push(pd);
                continue;
            }
            // KIP-74: the first partition with data gets at least one whole batch, even
            // past the limits, so a consumer always progresses; every later partition gets
            // only whole batches within `min(partition_max_bytes, what is left)`, possibly
            // none (Kafka's `minOneMessage`). Kafka would send a partial batch there;
            // whole batches or nothing carry the same records and never a fragment a
            // client must discard.
            let min_one = total == 0;
            if limit > 0 || min_one {
                let read = if follower.is_some() {
                    p.read_to_end(fp.fetch_offset, limit.max(1))
                } else if req.isolation_level == 1 {
                    p.read_committed(fp.fetch_offset, limit.max(1))
                } else {
                    p.read(fp.fetch_offset, limit.max(1))
                };
                match read {
                    Ok(data) => {
                        let data = if min_one { data } else { whole_batches_within(data, limit) };
                        if req.isolation_level == 1 && follower.is_none() && !data.is_empty() {
                            // Kafka lists the aborted transactions overlapping the fetched
                            // range; the client skips their records.
                            let upto = last_offset_in(&data).map_or(fp.fetch_offset, |o| o + 1);
                            pd.aborted_transactions = Some(
                                p.aborted_transactions(fp.fetch_offset, upto)
                                    .into_iter()
                                    .map(|(producer_id, first_offset)| AbortedTransaction {
                                        producer_id,
                                        first_offset,
                                        ..Default::default()
                                    })
                                    .collect(),
                            );
                        }
                        budget = budget.saturating_sub(data.len());
                        total += data.len();
                        pd.records = Some(data);
                    }
                    Err(code) => {
                        pd.error_code = code.code();
                        any_error = true;
                    }
                }
            }
            partitions.push(pd);
        }
        responses.push(FetchableTopicResponse {
            topic: t.topic.clone(),
            topic_id: t.topic_id,
            partitions,
            ..Default::default()
        });
    }
    (FetchResponse { responses, ..Default::default() }, total, any_error)
}

/// The offset of the last record of the last whole batch in `data`.
fn last_offset_in(data: &Bytes) -> Option<i64> {
    let mut last = None;
    for span in strom_protocol::records::split_batches(data) {
        let Some(h) = span.ok().and_then(|r| data.get(r)).and_then(|b| BatchHeader::parse(b).ok()) else { break };
        last = Some(h.last_offset());
    }
    last
}

/// The broker id of a follower's fetch (`None` for consumers).
fn replica_of(version: i16, req: &FetchRequest) -> Option<i32> {
    let id = if version >= 15 { req.replica_state.replica_id } else { req.replica_id };
    (id >= 0).then_some(id)
}

/// The longest prefix of `data` (whole batches) that fits in `limit` bytes.
fn whole_batches_within(data: Bytes, limit: usize) -> Bytes {
    if data.len() <= limit {
        return data;
    }
    let mut end = 0;
    for span in strom_protocol::records::split_batches(&data) {
        match span {
            Ok(r) if r.end <= limit => end = r.end,
            _ => break,
        }
    }
    data.slice(..end)
}

/// Resolves the request's partitions once; topics deleted meanwhile keep their `Arc`s.
/// `denied[i]`: topic `i` is not authorized (an empty slice: none is denied).
fn resolve(node: &Node, version: i16, req: &FetchRequest, denied: &[bool]) -> Vec<Vec<Option<Arc<Partition>>>> {
    req.topics
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let topic = if denied.get(i).copied().unwrap_or(false) {
                None
            } else if version >= 13 {
                node.meta.topic_by_id(&t.topic_id)
            } else {
                node.meta.topic(&t.topic)
            };
            t.partitions
                .iter()
                .map(|fp| {
                    topic
                        .as_ref()
                        .and_then(|t| usize::try_from(fp.partition).ok().and_then(|i| t.partitions.get(i).cloned()))
                })
                .collect()
        })
        .collect()
}

/// Answers a fetch, waiting up to `max_wait_ms` for `min_bytes` to arrive.
pub async fn handle(node: &Node, az: &Authz<'_>, version: i16, req: FetchRequest) -> FetchResponse {
    let replica = replica_of(version, &req).is_some();
    // Kafka: a follower's fetch needs CLUSTER_ACTION on the cluster (else every
    // partition is TOPIC_AUTHORIZATION_FAILED, so a client cannot pose as a follower);
    // a consumer's needs READ on each topic. Unknown topic ids stay UNKNOWN_TOPIC_ID.
    // Without an authorizer nothing is denied and nothing is computed (an empty list).
    let follower_denied = replica && !az.cluster_action();
    let checked = follower_denied || (!replica && az.enabled());
    let denied: Vec<bool> = if !checked {
        Vec::new()
    } else {
        req.topics
            .iter()
            .map(|t| {
                if follower_denied {
                    return true;
                }
                let name = if version >= 13 {
                    match node.meta.topic_by_id(&t.topic_id) {
                        Some(topic) => topic.name.to_string(),
                        None => return false,
                    }
                } else {
                    t.topic.clone()
                };
                !az.topic(op::READ, &name)
            })
            .collect()
    };
    let resp = fetch(node, version, req, &denied).await;
    if !replica {
        count_out(node, &resp);
    }
    resp
}

/// Counts the records and bytes sent, per topic, from the batch headers.
fn count_out(node: &Node, resp: &FetchResponse) {
    for t in &resp.responses {
        let name = if t.topic.is_empty() {
            match node.meta.topic_by_id(&t.topic_id) {
                Some(topic) => topic.name.to_string(),
                None => continue,
            }
        } else {
            t.topic.clone()
        };
        let (mut records, mut bytes) = (0u64, 0u64);
        for p in &t.partitions {
            let Some(data) = &p.records else { continue };
            bytes += data.len() as u64;
            for range in strom_protocol::records::split_batches(data).flatten() {
                if let Ok(h) = strom_protocol::records::BatchHeader::parse(&data[range]) {
                    if !h.is_control() {
                        records += (i64::from(h.last_offset_delta) + 1).max(0) as u64;
                    }
                }
            }
        }
        node.metrics.fetched(&name, records, bytes);
    }
}

async fn fetch(node: &Node, version: i16, req: FetchRequest, denied: &[bool]) -> FetchResponse {
    if req.session_id != 0 {
        return FetchResponse { error_code: ErrorCode::FetchSessionIdNotFound.code(), ..Default::default() };
    }
    let parts = resolve(node, version, &req, denied);
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    loop {
        // Register for wake-ups before looking, so an append in between is not missed.
        let mut waits: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> =
            parts.iter().flatten().flatten().map(|p| Box::pin(p.appended.notified())).collect();
        for w in &mut waits {
            w.as_mut().enable();
        }
        let (resp, bytes, error) = collect(node, version, &req, &parts, denied);
        if bytes >= min_bytes || error || Instant::now() >= deadline || waits.is_empty() {
            return resp;
        }
        let any_append = std::future::poll_fn(|cx| {
            if waits.iter_mut().any(|w| w.as_mut().poll(cx).is_ready()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        let _parked = Parked::new(node);
        if tokio::time::timeout_at(deadline, any_append).await.is_err() {
            return collect(node, version, &req, &parts, denied).0;
        }
    }
}

/// Counts a fetch as parked for as long as it lives.
struct Parked<'a>(&'a Node);

impl<'a> Parked<'a> {
    fn new(node: &'a Node) -> Self {
        node.parked_fetches.send_modify(|n| *n += 1);
        Parked(node)
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.0.parked_fetches.send_modify(|n| *n = n.saturating_sub(1));
    }
}
