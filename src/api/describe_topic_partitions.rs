//! DescribeTopicPartitions (key 75): topic and partition metadata, paginated (KIP-966).

use strom_protocol::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use strom_protocol::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, Uuid};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 75, min: 0, max: 0, advertised_min: 0 };

/// Describes the named topics (all when none are named) in name order, at most
/// `response_partition_limit` partitions per response, resuming from `cursor`.
pub fn handle(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    // Kafka: DESCRIBE on each topic; all topics means those the principal may describe,
    // a named one it may not is TOPIC_AUTHORIZATION_FAILED whether or not it exists.
    let mut names: Vec<String> = if req.topics.is_empty() {
        node.meta
            .topics()
            .iter()
            .filter(|t| az.sees(op::DESCRIBE, resource::TOPIC, &t.name))
            .map(|t| t.name.to_string())
            .collect()
    } else {
        req.topics.iter().map(|t| t.name.clone()).collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) =
        req.cursor.as_ref().map(|c| (c.topic_name.clone(), c.partition_index)).unwrap_or_default();
    let mut budget = req.response_partition_limit.max(1) as usize;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|n| *n >= start_topic) {
        if !req.topics.is_empty() && !az.topic(op::DESCRIBE, &name) {
            topics.push(DescribeTopicPartitionsResponseTopic {
                error_code: ErrorCode::TopicAuthorizationFailed.code(),
                name: Some(name),
                topic_id: Uuid::ZERO,
                ..Default::default()
            });
            continue;
        }
        let Some(t) = node.meta.topic(&name) else {
            topics.push(DescribeTopicPartitionsResponseTopic {
                error_code: ErrorCode::UnknownTopicOrPartition.code(),
                name: Some(name),
                topic_id: Uuid::ZERO,
                ..Default::default()
            });
            continue;
        };
        let first = if name == start_topic { start_partition.max(0) as usize } else { 0 };
        let mut partitions = Vec::new();
        for p in t.partitions.iter().skip(first) {
            if budget == 0 {
                next_cursor = Some(Cursor { topic_name: name.clone(), partition_index: p.index, ..Default::default() });
                break;
            }
            budget -= 1;
            let v = node.partition_view(&t, p.index);
            partitions.push(DescribeTopicPartitionsResponsePartition {
                error_code: if v.leader < 0 { ErrorCode::LeaderNotAvailable.code() } else { 0 },
                partition_index: p.index,
                leader_id: v.leader,
                leader_epoch: v.leader_epoch,
                replica_nodes: v.replicas,
                isr_nodes: v.isr,
                offline_replicas: v.offline,
                eligible_leader_replicas: Some(Vec::new()),
                last_known_elr: Some(Vec::new()),
                ..Default::default()
            });
        }
        topics.push(DescribeTopicPartitionsResponseTopic {
            name: Some(name),
            topic_id: t.id,
            is_internal: crate::metadata::Metadata::is_internal(&t.name),
            partitions,
            ..Default::default()
        });
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse { topics, next_cursor, ..Default::default() }
}
