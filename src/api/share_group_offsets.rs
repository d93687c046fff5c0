//! The share-group offset admin APIs (KIP-932): DescribeShareGroupOffsets (90),
//! AlterShareGroupOffsets (91) and DeleteShareGroupOffsets (92), answered by the group's
//! coordinator from the state the share coordinators hold (`__share_group_state`).
//!
//! A share group's "offset" is its share-partition start offset (SPSO): every record
//! below it is done with. Altering or deleting needs an empty group, as in Kafka; the
//! partition leaders drop a group's share-partitions once its last share session closes
//! (`ShareState::release_member`), so the next consumer starts from the new state.
//!
//! Deviation: DescribeShareGroupOffsets answers leader epoch -1 (the share coordinator's
//! ReadShareGroupState v0 does not carry it; Kafka reads it with
//! ReadShareGroupStateSummary, which Strom does not serve).

use strom_protocol::{
    alter_share_group_offsets_response as alter, delete_share_group_offsets_response as del,
    describe_share_group_offsets_response as desc, AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse, DescribeShareGroupOffsetsRequest,
    DescribeShareGroupOffsetsResponse,
};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};
use crate::share::broker::Key;
use crate::share::partition::Snapshot;
use crate::share::state::SHARE_STATE_TOPIC;

/// DescribeShareGroupOffsets versions served: v0, and v1 (Kafka 4.2, KIP-1226) with each
/// share-partition's lag.
pub const DESCRIBE_API: ApiRange = ApiRange { key: 90, min: 0, max: 1, advertised_min: 0 };
/// AlterShareGroupOffsets versions served: v0.
pub const ALTER_API: ApiRange = ApiRange { key: 91, min: 0, max: 0, advertised_min: 0 };
/// DeleteShareGroupOffsets versions served: v0.
pub const DELETE_API: ApiRange = ApiRange { key: 92, min: 0, max: 0, advertised_min: 0 };

/// Answers DescribeShareGroupOffsets: the start offset of each share-partition asked for
/// (-1 without state), or of every one with state when the topics are null; from v1 also
/// its lag (KIP-1226): the records from the start offset up to the partition's high
/// watermark not yet acknowledged or archived (-1 when unknown).
pub async fn describe(
    node: &Node,
    az: &Authz<'_>,
    version: i16,
    req: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let id = g.group_id.clone();
        let fail = |code: ErrorCode| desc::DescribeShareGroupOffsetsResponseGroup {
            group_id: id.clone(),
            error_code: code.code(),
            error_message: Some(format!("{code:?}")),
            ..Default::default()
        };
        // Kafka: DESCRIBE on the group, and on each topic.
        if !az.group(op::DESCRIBE, &id) {
            groups.push(fail(ErrorCode::GroupAuthorizationFailed));
            continue;
        }
        if let Err(code) = node.groups.share_offsets_admin(&id, false) {
            groups.push(fail(code));
            continue;
        }
        // (name, topic id, asked partitions (None: every one with state), error)
        let mut wanted: Vec<(String, strom_protocol::Uuid, Option<Vec<i32>>, ErrorCode)> = Vec::new();
        match g.topics {
            Some(topics) => {
                for t in topics {
                    let (uuid, code) = if !az.topic(op::DESCRIBE, &t.topic_name) {
                        (Default::default(), ErrorCode::TopicAuthorizationFailed)
                    } else {
                        match node.meta.topic(&t.topic_name) {
                            Some(topic) => (topic.id, ErrorCode::None),
                            None => (Default::default(), ErrorCode::UnknownTopicOrPartition),
                        }
                    };
                    wanted.push((t.topic_name, uuid, Some(t.partitions), code));
                }
            }
            None => {
                for t in node.meta.topics() {
                    if &*t.name != SHARE_STATE_TOPIC && az.sees(op::DESCRIBE, resource::TOPIC, &t.name) {
                        wanted.push((t.name.to_string(), t.id, None, ErrorCode::None));
                    }
                }
            }
        }
        let mut keys: Vec<Key> = Vec::new();
        for (name, uuid, parts, code) in &wanted {
            if *code != ErrorCode::None {
                continue;
            }
            let count = node.meta.topic(name).map_or(0, |t| t.partitions.len() as i32);
            match parts {
                Some(ps) => {
                    keys.extend(ps.iter().filter(|&&p| (0..count).contains(&p)).map(|&p| (id.clone(), uuid.0, p)))
                }
                None => keys.extend((0..count).map(|p| (id.clone(), uuid.0, p))),
            }
        }
        let states: std::collections::HashMap<Key, _> =
            node.shares.read_states(&node.meta, keys).await.into_iter().collect();
        let with_state: Vec<(String, i32)> = wanted
            .iter()
            .flat_map(|(name, uuid, _, _)| {
                let keyed = states.iter().filter(move |(k, v)| k.1 == uuid.0 && matches!(v, Ok(Some(_))));
                keyed.map(move |(k, _)| (name.clone(), k.2))
            })
            .collect();
        let ends = if version >= 1 && !with_state.is_empty() {
            node.shares.high_watermarks(&node.meta, &with_state).await
        } else {
            Default::default()
        };
        let mut topics = Vec::with_capacity(wanted.len());
        for (name, uuid, parts, code) in wanted {
            let count = node.meta.topic(&name).map_or(0, |t| t.partitions.len() as i32);
            let indexes: Vec<i32> = match &parts {
                Some(ps) => ps.clone(),
                None => (0..count).collect(),
            };
            let mut partitions = Vec::new();
            for p in indexes {
                let key: Key = (id.clone(), uuid.0, p);
                let (start_offset, lag, code, message) = if code != ErrorCode::None {
                    (-1, -1, code, Some(format!("{code:?}")))
                } else if !(0..count).contains(&p) {
                    (-1, -1, ErrorCode::UnknownTopicOrPartition, Some("no such partition".into()))
                } else {
                    match states.get(&key) {
                        Some(Ok(Some((_, snapshot)))) => {
                            let lag = ends.get(&(name.clone(), p)).map_or(-1, |&end| lag(snapshot, end));
                            (snapshot.start_offset, lag, ErrorCode::None, None)
                        }
                        Some(Ok(None)) | None => (-1, -1, ErrorCode::None, None),
                        Some(Err((c, m))) => (-1, -1, *c, Some(m.clone())),
                    }
                };
                // Null topics: only the share-partitions with state.
                if parts.is_none() && start_offset < 0 && code == ErrorCode::None {
                    continue;
                }
                partitions.push(desc::DescribeShareGroupOffsetsResponsePartition {
                    partition_index: p,
                    start_offset,
                    leader_epoch: -1,
                    lag,
                    error_code: code.code(),
                    error_message: message,
                    ..Default::default()
                });
            }
            if parts.is_none() && partitions.is_empty() {
                continue;
            }
            topics.push(desc::DescribeShareGroupOffsetsResponseTopic {
                topic_name: name,
                topic_id: uuid,
                partitions,
                ..Default::default()
            });
        }
        groups.push(desc::DescribeShareGroupOffsetsResponseGroup { group_id: id, topics, ..Default::default() });
    }
    DescribeShareGroupOffsetsResponse { groups, ..Default::default() }
}

/// KIP-1226's share-partition lag: the offsets in `[start, end)` whose delivery is not
/// complete (neither acknowledged nor archived), `end` being the high watermark.
/// Saturating throughout: a snapshot read from another broker is not trusted to be sane.
fn lag(snapshot: &Snapshot, end: i64) -> i64 {
    let done = snapshot
        .batches
        .iter()
        .filter(|b| b.state != crate::share::partition::STATE_AVAILABLE)
        .map(|b| {
            let (first, last) = (b.first.max(snapshot.start_offset), b.last.min(end.saturating_sub(1)));
            last.saturating_sub(first).saturating_add(1).max(0)
        })
        .fold(0i64, i64::saturating_add);
    end.saturating_sub(snapshot.start_offset).saturating_sub(done).max(0)
}

/// The group-level checks before a share group's offsets change: `operation` on the
/// group, this broker coordinating it, no members.
fn may_change(node: &Node, az: &Authz<'_>, operation: i8, group: &str) -> Result<(), ErrorCode> {
    if !az.group(operation, group) {
        return Err(ErrorCode::GroupAuthorizationFailed);
    }
    node.groups.share_offsets_admin(group, true)
}

/// Answers AlterShareGroupOffsets: each share-partition starts again at the given offset
/// (its state epoch bumped, its in-flight records forgotten).
pub async fn alter(node: &Node, az: &Authz<'_>, req: AlterShareGroupOffsetsRequest) -> AlterShareGroupOffsetsResponse {
    // Kafka: READ on the group, READ on each topic.
    if let Err(code) = may_change(node, az, op::READ, &req.group_id) {
        let error_message = Some(format!("{code:?}"));
        return AlterShareGroupOffsetsResponse { error_code: code.code(), error_message, ..Default::default() };
    }
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = node.meta.topic(&t.topic_name);
        let topic_code = if !az.topic(op::READ, &t.topic_name) {
            ErrorCode::TopicAuthorizationFailed
        } else if topic.is_none() {
            ErrorCode::UnknownTopicOrPartition
        } else {
            ErrorCode::None
        };
        let uuid = topic.as_ref().map(|t| t.id).unwrap_or_default();
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let outcome = match &topic {
                _ if topic_code != ErrorCode::None => Err((topic_code, format!("{topic_code:?}"))),
                Some(tp) if !(0..tp.partitions.len() as i32).contains(&p.partition_index) => {
                    Err((ErrorCode::UnknownTopicOrPartition, "no such partition".into()))
                }
                _ if p.start_offset < 0 => Err((ErrorCode::InvalidRequest, "a start offset cannot be negative".into())),
                _ => {
                    let key: Key = (req.group_id.clone(), uuid.0, p.partition_index);
                    let reset = Snapshot { start_offset: p.start_offset, batches: Vec::new() };
                    node.shares.forget(&key);
                    node.shares.write_state(&node.meta, &key, 0, -1, reset).await
                }
            };
            tracing::info!(group = %req.group_id, topic = %t.topic_name, partition = p.partition_index,
                start = p.start_offset, ok = outcome.is_ok(), "share-group offset altered");
            partitions.push(alter::AlterShareGroupOffsetsResponsePartition {
                partition_index: p.partition_index,
                error_code: outcome.as_ref().err().map_or(0, |e| e.0.code()),
                error_message: outcome.err().map(|e| e.1),
                ..Default::default()
            });
        }
        responses.push(alter::AlterShareGroupOffsetsResponseTopic {
            topic_name: t.topic_name,
            topic_id: uuid,
            partitions,
            ..Default::default()
        });
    }
    AlterShareGroupOffsetsResponse { responses, ..Default::default() }
}

/// Answers DeleteShareGroupOffsets: the group's state for whole topics goes; a later
/// consumer starts them from `share.auto.offset.reset`.
pub async fn delete(
    node: &Node,
    az: &Authz<'_>,
    req: DeleteShareGroupOffsetsRequest,
) -> DeleteShareGroupOffsetsResponse {
    // Kafka: DELETE on the group, READ on each topic.
    if let Err(code) = may_change(node, az, op::DELETE, &req.group_id) {
        let error_message = Some(format!("{code:?}"));
        return DeleteShareGroupOffsetsResponse { error_code: code.code(), error_message, ..Default::default() };
    }
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = node.meta.topic(&t.topic_name);
        let outcome = match &topic {
            _ if !az.topic(op::READ, &t.topic_name) => Err((ErrorCode::TopicAuthorizationFailed, None)),
            None => Err((ErrorCode::UnknownTopicOrPartition, None)),
            Some(tp) => {
                let keys: Vec<Key> =
                    (0..tp.partitions.len() as i32).map(|p| (req.group_id.clone(), tp.id.0, p)).collect();
                for k in &keys {
                    node.shares.forget(k);
                }
                match node.shares.delete_state(&node.meta, keys).await.into_iter().next() {
                    None => Ok(()),
                    Some((_, (code, msg))) => Err((code, Some(msg))),
                }
            }
        };
        tracing::info!(group = %req.group_id, topic = %t.topic_name, ok = outcome.is_ok(), "share-group offsets deleted");
        let (error_code, error_message) = match outcome {
            Ok(()) => (0, None),
            Err((code, msg)) => (code.code(), Some(msg.unwrap_or_else(|| format!("{code:?}")))),
        };
        responses.push(del::DeleteShareGroupOffsetsResponseTopic {
            topic_name: t.topic_name,
            topic_id: topic.map(|t| t.id).unwrap_or_default(),
            error_code,
            error_message,
            ..Default::default()
        });
    }
    DeleteShareGroupOffsetsResponse { responses, ..Default::default() }
}

#[cfg(test)]
mod tests {
    use super::lag;
    use crate::share::partition::{Snapshot, StateBatch, STATE_ACKNOWLEDGED, STATE_ARCHIVED, STATE_AVAILABLE};

    fn b(first: i64, last: i64, state: u8) -> StateBatch {
        StateBatch { first, last, state, delivery_count: 1 }
    }

    #[test]
    fn lag_counts_what_is_not_done_below_the_high_watermark() {
        let s = |batches| Snapshot { start_offset: 5, batches };
        assert_eq!(lag(&s(vec![]), 10), 5);
        let runs = vec![b(5, 5, STATE_AVAILABLE), b(6, 6, STATE_ACKNOWLEDGED), b(7, 8, STATE_ARCHIVED)];
        assert_eq!(lag(&s(runs), 10), 2, "5 and 9 are not done");
        assert_eq!(lag(&s(vec![b(5, 20, STATE_ACKNOWLEDGED)]), 10), 0, "runs past the watermark count up to it");
        assert_eq!(lag(&s(vec![]), 3), 0, "a watermark below the start is no lag");
        // Hostile values from a peer neither panic nor go negative.
        let wild = vec![b(i64::MIN, i64::MAX, STATE_ARCHIVED), b(i64::MAX, i64::MIN, STATE_ARCHIVED)];
        assert_eq!(lag(&Snapshot { start_offset: i64::MIN, batches: wild }, i64::MAX), 0);
        assert_eq!(lag(&Snapshot { start_offset: i64::MAX, batches: vec![] }, i64::MIN), 0);
    }
}
