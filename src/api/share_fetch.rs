//! ShareFetch (key 78): a share consumer's fetch (KIP-932). It carries the share session
//! (epoch 0 opens, N continues, -1 closes), acknowledgements of records fetched before,
//! and answers with whole batches plus the ranges of records now locked to the member
//! (AcquiredRecords). Long-polls like Fetch, also waking when locked records come back.
//!
//! Like Kafka, the partition leader does not ask the group coordinator whether the member
//! is assigned the partition: any member of the group may fetch any partition.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use strom_protocol::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, NodeEndpoint, PartitionData, ShareFetchableTopicResponse,
};
use strom_protocol::{ShareFetchRequest, ShareFetchResponse, Uuid};
use tokio::time::Instant;

use super::authz::Authz;
use super::{ApiRange, RequestContext};
use crate::config::group::ShareAutoOffsetReset;
use crate::error::ErrorCode;
use crate::metadata::Partition;
use crate::node::Node;
use crate::security::acl::op;
use crate::share::broker::Key;
use crate::share::group::{TopicPartition, FINAL_SESSION_EPOCH, INITIAL_SESSION_EPOCH};

/// Versions served: v1 and v2 (Kafka 4.2: KIP-1206's record-limit acquire mode, KIP-1222's
/// RENEW acknowledgements).
pub const API: ApiRange = ApiRange { key: 78, min: 1, max: 2, advertised_min: 1 };

/// `ShareAcquireMode` 0: whole batches, `max_records` a soft limit (KIP-1206).
const BATCH_OPTIMIZED: i8 = 0;
/// `ShareAcquireMode` 1: never more than `max_records` records (KIP-1206).
const RECORD_LIMIT: i8 = 1;

/// Longest a share fetch may wait, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);

/// Records per fetch when the client leaves `max_records` unset (Kafka's
/// `max.poll.records` default).
const DEFAULT_MAX_RECORDS: usize = 500;

/// One partition's answer being built: its error, acknowledgement outcome and grant.
#[derive(Default)]
pub(super) struct Answer {
    pub error: Option<(ErrorCode, String)>,
    pub ack_error: Option<(ErrorCode, String)>,
    pub leader: Option<(i32, i32)>,
    grant: crate::share::broker::Grant,
}

/// The checks before a share request touches anything: a group and member id, and READ
/// on the group (Kafka's rule for ShareFetch and ShareAcknowledge).
pub(super) fn check_member(az: &Authz<'_>, group: &str, member: &str) -> Result<(), (ErrorCode, &'static str)> {
    if group.is_empty() || member.is_empty() {
        return Err((ErrorCode::InvalidRequest, "the group id and member id are required"));
    }
    if !az.group(op::READ, group) {
        return Err((ErrorCode::GroupAuthorizationFailed, "not authorized to read the group"));
    }
    Ok(())
}

/// Checks a partition's acknowledgement batches as Kafka does (ascending, disjoint, each
/// `first <= last`, one type or one per offset, types 0..=3, and 4 (RENEW) only when the
/// request is v2+ and says `IsRenewAck`) and converts them.
pub(super) fn ack_batches<'a>(
    batches: impl Iterator<Item = (i64, i64, &'a [i8])>,
    renew: bool,
) -> Result<Vec<(i64, i64, Vec<u8>)>, String> {
    let max_type = if renew { crate::share::partition::ACK_RENEW } else { crate::share::partition::ACK_REJECT };
    let mut out: Vec<(i64, i64, Vec<u8>)> = Vec::new();
    for (first, last, types) in batches {
        if first > last {
            return Err(format!("acknowledgement batch {first}..{last} is reversed"));
        }
        if let Some((_, prev_last, _)) = out.last() {
            if first <= *prev_last {
                return Err(format!("acknowledgement batch at {first} overlaps or is out of order"));
            }
        }
        if types.is_empty() {
            return Err(format!("acknowledgement batch at {first} has no types"));
        }
        let types: Vec<u8> = types.iter().map(|&t| u8::try_from(t).unwrap_or(u8::MAX)).collect();
        if types.iter().any(|&t| t > max_type) {
            return Err(if types.contains(&crate::share::partition::ACK_RENEW) {
                format!("acknowledgement batch at {first} renews without IsRenewAck (v2+)")
            } else {
                format!("acknowledgement batch at {first} has an unknown type")
            });
        }
        out.push((first, last, types));
    }
    Ok(out)
}

/// Why a partition cannot be served here: the error, its message, and the leader
/// (id, epoch) clients should go to, if known.
pub(super) type Refusal = (ErrorCode, String, Option<(i32, i32)>);

/// The partition behind (topic id, index), if this broker leads it; else why not.
pub(super) fn led_partition(node: &Node, az: &Authz<'_>, tp: TopicPartition) -> Result<Arc<Partition>, Refusal> {
    let Some(topic) = node.meta.topic_by_id(&Uuid(tp.0)) else {
        return Err((ErrorCode::UnknownTopicId, "no topic with this id".into(), None));
    };
    if !az.topic(op::READ, &topic.name) {
        return Err((ErrorCode::TopicAuthorizationFailed, "not authorized to read the topic".into(), None));
    }
    let Some(p) = usize::try_from(tp.1).ok().and_then(|i| topic.partitions.get(i)).cloned() else {
        return Err((ErrorCode::UnknownTopicOrPartition, "no such partition".into(), None));
    };
    if !(p.is_leader() && node.meta.leads_partition(&p)) {
        let leader = (node.meta.leader_of(&topic, tp.1), p.leader_epoch());
        return Err((ErrorCode::NotLeaderOrFollower, "this broker does not lead the partition".into(), Some(leader)));
    }
    Ok(p)
}

/// Applies one partition's acknowledgements; the outcome goes to `answer.ack_error`.
pub(super) async fn acknowledge(
    node: &Node,
    az: &Authz<'_>,
    (group, member): (&str, &str),
    tp: TopicPartition,
    acks: Result<Vec<(i64, i64, Vec<u8>)>, String>,
    (now_ms, limits): (i64, crate::share::partition::Limits),
    answer: &mut Answer,
) {
    let acks = match acks {
        Ok(a) if a.is_empty() => return,
        Ok(a) => a,
        Err(msg) => {
            answer.ack_error = Some((ErrorCode::InvalidRequest, msg));
            return;
        }
    };
    let p = match led_partition(node, az, tp) {
        Ok(p) => p,
        Err((code, msg, leader)) => {
            answer.ack_error = Some((code, msg));
            answer.leader = leader;
            return;
        }
    };
    let key: Key = (group.to_string(), tp.0, tp.1);
    match node.shares.acknowledge(&key, member, &acks, now_ms, (limits, p.leader_epoch())).await {
        Ok(_) => {}
        Err(e) => answer.ack_error = Some(e),
    }
}

/// Releases what a closing member holds on its session's partitions.
pub(super) fn release_closed(node: &Node, group: &str, member: &str, partitions: &[TopicPartition]) {
    node.shares.release_member(group, member, Some(partitions));
}

/// Builds the response's topics from the answers.
pub(super) fn topics_of(answers: BTreeMap<TopicPartition, Answer>) -> Vec<ShareFetchableTopicResponse> {
    let mut topics: Vec<ShareFetchableTopicResponse> = Vec::new();
    for ((topic_id, index), a) in answers {
        let (leader_id, leader_epoch) = a.leader.unwrap_or((-1, -1));
        let pd = PartitionData {
            partition_index: index,
            error_code: a.error.as_ref().map_or(0, |e| e.0.code()),
            error_message: a.error.map(|e| e.1),
            acknowledge_error_code: a.ack_error.as_ref().map_or(0, |e| e.0.code()),
            acknowledge_error_message: a.ack_error.map(|e| e.1),
            current_leader: LeaderIdAndEpoch { leader_id, leader_epoch, ..Default::default() },
            records: Some(a.grant.records),
            acquired_records: a
                .grant
                .acquired
                .iter()
                .map(|r| AcquiredRecords {
                    first_offset: r.first,
                    last_offset: r.last,
                    delivery_count: r.delivery_count,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        match topics.last_mut() {
            Some(t) if t.topic_id.0 == topic_id => t.partitions.push(pd),
            _ => topics.push(ShareFetchableTopicResponse {
                topic_id: Uuid(topic_id),
                partitions: vec![pd],
                ..Default::default()
            }),
        }
    }
    topics
}

/// The endpoints of leaders named in `answers` (clients move there on NOT_LEADER).
pub(super) fn endpoints(
    node: &Node,
    ctx: &RequestContext,
    answers: &BTreeMap<TopicPartition, Answer>,
) -> Vec<NodeEndpoint> {
    let wanted: std::collections::BTreeSet<i32> = answers
        .values()
        .filter(|a| a.error.is_some() || a.ack_error.is_some())
        .filter_map(|a| a.leader.map(|l| l.0))
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    node.brokers(ctx.listener)
        .into_iter()
        .filter(|b| wanted.contains(&b.id))
        .map(|b| NodeEndpoint { node_id: b.id, host: b.host, port: b.port, rack: b.rack, ..Default::default() })
        .collect()
}

/// Answers a share fetch.
pub async fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    version: i16,
    req: ShareFetchRequest,
) -> ShareFetchResponse {
    let group = req.group_id.clone().unwrap_or_default();
    let member = req.member_id.clone().unwrap_or_default();
    let refuse = |code: ErrorCode, msg: &str| ShareFetchResponse {
        error_code: code.code(),
        error_message: Some(msg.to_string()),
        ..Default::default()
    };
    if let Err((code, msg)) = check_member(az, &group, &member) {
        return refuse(code, msg);
    }
    // v1 requests decode with mode 0 and no renewals.
    let renew = version >= 2 && req.is_renew_ack;
    if !matches!(req.share_acquire_mode, BATCH_OPTIMIZED | RECORD_LIMIT) {
        return refuse(ErrorCode::InvalidRequest, "unknown share acquire mode");
    }
    // KIP-1222: a renewing request only acknowledges (fetching could outlast the renewed
    // locks), and says so with zero fetch limits.
    if renew && (req.max_wait_ms != 0 || req.min_bytes != 0 || req.max_bytes != 0 || req.max_records != 0) {
        return refuse(ErrorCode::InvalidRequest, "a renewing share fetch must not ask for records");
    }
    let epoch = req.share_session_epoch;
    let has_acks = req.topics.iter().flat_map(|t| &t.partitions).any(|p| !p.acknowledgement_batches.is_empty());
    // Checked before the session is touched (Kafka's order, which librdkafka tests).
    if epoch == INITIAL_SESSION_EPOCH && has_acks {
        return refuse(ErrorCode::InvalidRequest, "acknowledgements cannot open a share session");
    }
    if epoch == FINAL_SESSION_EPOCH && req.forgotten_topics_data.iter().any(|t| !t.partitions.is_empty()) {
        return refuse(ErrorCode::InvalidRequest, "the final share fetch cannot forget partitions");
    }
    let span = tracing::debug_span!("share_fetch", group = %group, member = %member, epoch, renew);
    let _g = span.enter();
    let now = strom_storage::now_ms();
    let add: Vec<TopicPartition> = if epoch == FINAL_SESSION_EPOCH { Vec::new() } else { requested(&req) };
    let forget: Vec<TopicPartition> =
        req.forgotten_topics_data.iter().flat_map(|t| t.partitions.iter().map(move |&p| (t.topic_id.0, p))).collect();
    let view = match node.shares.session_fetch(ctx.peer, &group, &member, epoch, &add, &forget, now) {
        Ok(v) => v,
        Err(e) => return refuse(e.error_code(), e.message()),
    };
    let group_configs = node.meta.group_configs(&group);
    let limits = node.shares.limits(&group_configs);
    let mut answers: BTreeMap<TopicPartition, Answer> = BTreeMap::new();
    // Acknowledgements first: records released here may be acquired again below.
    for t in &req.topics {
        for p in &t.partitions {
            let tp = (t.topic_id.0, p.partition_index);
            let acks = ack_batches(
                p.acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.as_slice())),
                renew,
            );
            let answer = answers.entry(tp).or_default();
            acknowledge(node, az, (&group, &member), tp, acks, (now, limits), answer).await;
        }
    }
    let lock_ms = i32::try_from(limits.lock_duration_ms).unwrap_or(i32::MAX);
    if renew {
        return ShareFetchResponse {
            acquisition_lock_timeout_ms: lock_ms,
            node_endpoints: endpoints(node, ctx, &answers),
            responses: topics_of(answers),
            ..Default::default()
        };
    }
    if view.closed {
        release_closed(node, &group, &member, &view.partitions);
        return ShareFetchResponse {
            acquisition_lock_timeout_ms: lock_ms,
            responses: topics_of(answers),
            ..Default::default()
        };
    }
    let reset = group_configs
        .get("share.auto.offset.reset")
        .and_then(|v| ShareAutoOffsetReset::parse(v))
        .unwrap_or(ShareAutoOffsetReset::Latest);
    let mode = crate::share::broker::AcquireMode {
        read_committed: group_configs
            .get("share.isolation.level")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("read_committed")),
        record_limit: req.share_acquire_mode == RECORD_LIMIT,
    };
    // Start at a different partition each time, so that one busy partition does not take
    // every fetch's record budget.
    let mut order = view.partitions.clone();
    if !order.is_empty() {
        let k = usize::try_from(epoch).unwrap_or(0) % order.len();
        order.rotate_left(k);
    }
    let max_records = usize::try_from(req.max_records).ok().filter(|&n| n > 0).unwrap_or(DEFAULT_MAX_RECORDS);
    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let mut parts: Vec<(TopicPartition, Arc<Partition>)> = Vec::new();
    for tp in &order {
        match led_partition(node, az, *tp) {
            Ok(p) => parts.push((*tp, p)),
            Err((code, msg, leader)) => {
                if code == ErrorCode::NotLeaderOrFollower {
                    node.shares.forget(&(group.clone(), tp.0, tp.1));
                }
                let slot = answers.entry(*tp).or_default();
                slot.error = Some((code, msg));
                slot.leader = leader;
            }
        }
    }
    // Open the share-partitions (from their coordinators' state) before acquiring.
    let mut open = Vec::with_capacity(parts.len());
    for (tp, p) in parts {
        let key: Key = (group.clone(), tp.0, tp.1);
        let start = || match reset {
            ShareAutoOffsetReset::Earliest => p.log_start_offset(),
            ShareAutoOffsetReset::Latest => p.high_watermark(),
            // The first record no older than the duration; none: the log end (Kafka's rule).
            ShareAutoOffsetReset::ByDuration(ms) => {
                let hwm = p.high_watermark();
                let since = strom_storage::now_ms().saturating_sub(ms);
                super::list_offsets::first_offset_since(&p, since).map_or(hwm, |o| o.min(hwm))
            }
        };
        match node.shares.open(&key, &p, limits, start).await {
            Ok(()) => open.push((tp, p)),
            Err(e) => answers.entry(tp).or_default().error = Some(e),
        }
    }
    let parts = open;
    let errors = answers.values().any(|a| a.error.is_some());
    loop {
        // Register for wake-ups before looking, so an append or release in between is
        // not missed.
        let mut waits: Vec<Pin<Box<tokio::sync::futures::Notified<'_>>>> =
            parts.iter().map(|(_, p)| Box::pin(p.appended.notified())).collect();
        waits.push(Box::pin(node.shares.released.notified()));
        for w in &mut waits {
            w.as_mut().enable();
        }
        let (records, bytes) =
            acquire(node, &group, &member, &parts, (limits, mode), max_records, max_bytes, &mut answers);
        let now_i = Instant::now();
        if bytes >= min_bytes.max(1) || records > 0 || errors || has_acks || now_i >= deadline || parts.is_empty() {
            break;
        }
        let woken = std::future::poll_fn(|cx| {
            if waits.iter_mut().any(|w| w.as_mut().poll(cx).is_ready()) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        });
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            acquire(node, &group, &member, &parts, (limits, mode), max_records, max_bytes, &mut answers);
            break;
        }
    }
    // Kafka answers every partition of the request and those that got records; the
    // others of the session are left out.
    let asked: std::collections::BTreeSet<TopicPartition> = requested(&req).into_iter().collect();
    answers.retain(|tp, a| {
        asked.contains(tp) || a.error.is_some() || !a.grant.acquired.is_empty() || a.ack_error.is_some()
    });
    let node_endpoints = endpoints(node, ctx, &answers);
    ShareFetchResponse {
        acquisition_lock_timeout_ms: lock_ms,
        responses: topics_of(answers),
        node_endpoints,
        ..Default::default()
    }
}

/// The partitions the request names (to add to the session, or to acknowledge).
fn requested(req: &ShareFetchRequest) -> Vec<TopicPartition> {
    req.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id.0, p.partition_index))).collect()
}

/// One pass over the led partitions: acquires up to the record and byte budgets, whole
/// batches only; returns the records acquired and the bytes handed out.
#[allow(clippy::too_many_arguments)]
fn acquire(
    node: &Node,
    group: &str,
    member: &str,
    parts: &[(TopicPartition, Arc<Partition>)],
    (limits, mode): (crate::share::partition::Limits, crate::share::broker::AcquireMode),
    max_records: usize,
    max_bytes: usize,
    answers: &mut BTreeMap<TopicPartition, Answer>,
) -> (usize, usize) {
    let now = strom_storage::now_ms();
    let (mut records, mut bytes) = (0usize, 0usize);
    for (tp, p) in parts {
        if records >= max_records {
            break;
        }
        // KIP-74, as Fetch: the first batch goes whatever its size; later ones within
        // what is left of `max_bytes`.
        let budget = if bytes == 0 { max_bytes.max(1) } else { max_bytes.saturating_sub(bytes) };
        if budget == 0 {
            break;
        }
        let key: Key = (group.to_string(), tp.0, tp.1);
        match node.shares.acquire(&key, member, p, limits, mode, max_records - records, budget, now) {
            Ok(grant) if grant.acquired.is_empty() => {}
            Ok(grant) => {
                records += grant.acquired.iter().map(|a| (a.last - a.first + 1).max(0) as usize).sum::<usize>();
                bytes += grant.records.len();
                answers.entry(*tp).or_default().grant = grant;
            }
            Err(code) => {
                answers.entry(*tp).or_default().error = Some((code, "could not read the partition".to_string()));
            }
        }
    }
    (records, bytes)
}
