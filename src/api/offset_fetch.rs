//! OffsetFetch (key 9): one group (v1–7) or several (v8+); v10 by topic id.

use strom_protocol::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use strom_protocol::{OffsetFetchRequest, OffsetFetchResponse, Uuid};

use super::authz::Authz;
use super::ApiRange;
use crate::coordinator::group::log::OffsetValue;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 9, min: 1, max: 10, advertised_min: 1 };

/// The rows, and the topics asked for by name that the principal may not describe.
type Fetched = Result<(Vec<(String, i32, Option<OffsetValue>)>, Vec<String>), ErrorCode>;
/// One topic's partitions with their committed offsets, if any.
type TopicOffsets = (String, Vec<(i32, Option<OffsetValue>)>);

/// Kafka's checks: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED); asked for
/// every topic, those the principal may not describe are left out; asked by name, they
/// are answered TOPIC_AUTHORIZATION_FAILED without their offsets.
fn fetch(node: &Node, az: &Authz<'_>, group: &str, wanted: Option<Vec<(String, i32)>>) -> Fetched {
    if !az.group(op::DESCRIBE, group) {
        return Err(ErrorCode::GroupAuthorizationFailed);
    }
    let all = wanted.is_none();
    let mut rows = node.groups.fetch_offsets(group, wanted.as_deref())?;
    let mut denied: Vec<String> = Vec::new();
    if all {
        rows.retain(|(t, ..)| az.sees(op::DESCRIBE, resource::TOPIC, t));
    } else {
        for (t, _, v) in &mut rows {
            if denied.contains(t) || !az.topic(op::DESCRIBE, t) {
                *v = None;
                if !denied.contains(t) {
                    denied.push(t.clone());
                }
            }
        }
    }
    Ok((rows, denied))
}

fn topic_error(denied: &[String], name: &str) -> i16 {
    if denied.iter().any(|d| d == name) {
        ErrorCode::TopicAuthorizationFailed.code()
    } else {
        0
    }
}

/// (offset, leader epoch, metadata) as OffsetFetch reports them; a partition without a
/// committed offset reads as offset -1, epoch -1 and empty metadata, as in Kafka.
fn as_committed(v: Option<OffsetValue>) -> (i64, i32, Option<String>) {
    match v {
        Some(v) => (v.offset, v.leader_epoch, Some(v.metadata)),
        None => (-1, -1, Some(String::new())),
    }
}

/// Groups (topic, partition, value) by topic, keeping first-seen order.
fn by_topic(rows: Vec<(String, i32, Option<OffsetValue>)>) -> Vec<TopicOffsets> {
    let mut out: Vec<TopicOffsets> = Vec::new();
    for (t, p, v) in rows {
        match out.iter_mut().find(|(n, _)| *n == t) {
            Some((_, ps)) => ps.push((p, v)),
            None => out.push((t, vec![(p, v)])),
        }
    }
    out
}

/// Answers the lookup; unknown partitions read as offset -1, as in Kafka.
pub fn handle(node: &Node, az: &Authz<'_>, version: i16, req: OffsetFetchRequest) -> OffsetFetchResponse {
    if version < 8 {
        let wanted = req.topics.as_ref().map(|ts| {
            ts.iter().flat_map(|t| t.partition_indexes.iter().map(move |p| (t.name.clone(), *p))).collect::<Vec<_>>()
        });
        return match fetch(node, az, &req.group_id, wanted) {
            Err(code) => OffsetFetchResponse { error_code: code.code(), ..Default::default() },
            Ok((rows, denied)) => OffsetFetchResponse {
                topics: by_topic(rows)
                    .into_iter()
                    .map(|(name, ps)| OffsetFetchResponseTopic {
                        partitions: ps
                            .into_iter()
                            .map(|(p, v)| {
                                let (committed_offset, committed_leader_epoch, metadata) = as_committed(v);
                                OffsetFetchResponsePartition {
                                    partition_index: p,
                                    committed_offset,
                                    committed_leader_epoch,
                                    metadata,
                                    error_code: topic_error(&denied, &name),
                                    ..Default::default()
                                }
                            })
                            .collect(),
                        name,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            },
        };
    }
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            // v10 names topics by id.
            let id_of = |name: &str| node.meta.topic(name).map(|t| t.id).unwrap_or(Uuid::ZERO);
            let wanted = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .flat_map(|t| {
                        let name = if version >= 10 {
                            node.meta.topic_by_id(&t.topic_id).map(|x| x.name.to_string()).unwrap_or_default()
                        } else {
                            t.name.clone()
                        };
                        t.partition_indexes.iter().map(move |p| (name.clone(), *p))
                    })
                    .collect::<Vec<_>>()
            });
            let check = g.member_id.as_ref().map_or(ErrorCode::None, |m| {
                node.groups
                    .with_group(&g.group_id, |grp| match grp {
                        crate::coordinator::group::AnyGroup::Consumer(c) => c.validate_fetch(m, g.member_epoch),
                        crate::coordinator::group::AnyGroup::Classic(_) => ErrorCode::None,
                    })
                    .unwrap_or(ErrorCode::None)
            });
            let result = if check != ErrorCode::None { Err(check) } else { fetch(node, az, &g.group_id, wanted) };
            match result {
                Err(code) => {
                    OffsetFetchResponseGroup { group_id: g.group_id, error_code: code.code(), ..Default::default() }
                }
                Ok((rows, denied)) => OffsetFetchResponseGroup {
                    group_id: g.group_id,
                    topics: by_topic(rows)
                        .into_iter()
                        .map(|(name, ps)| OffsetFetchResponseTopics {
                            topic_id: id_of(&name),
                            partitions: ps
                                .into_iter()
                                .map(|(p, v)| {
                                    let (committed_offset, committed_leader_epoch, metadata) = as_committed(v);
                                    OffsetFetchResponsePartitions {
                                        partition_index: p,
                                        committed_offset,
                                        committed_leader_epoch,
                                        metadata,
                                        error_code: topic_error(&denied, &name),
                                        ..Default::default()
                                    }
                                })
                                .collect(),
                            name,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
            }
        })
        .collect();
    OffsetFetchResponse { groups, ..Default::default() }
}
