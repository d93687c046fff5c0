//! OffsetCommit (key 8): classic generations and KIP-848 member epochs; v10 by topic id.

use strom_protocol::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use strom_protocol::{OffsetCommitRequest, OffsetCommitResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::coordinator::group::{offsets_partition, CommitEntry};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 8, min: 2, max: 10, advertised_min: 2 };

/// How long a commit waits for the `__consumer_offsets` replicas (Kafka's
/// `offsets.commit.timeout.ms`).
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// In a cluster, waits until everything this coordinator appended to `group`'s
/// `__consumer_offsets` partition is on every in-sync replica (Kafka writes group
/// records with acks=all); the error is Kafka's mapping of a failed append. Nothing to
/// wait for on a single node.
pub async fn wait_replicated(node: &Node, group: &str) -> Result<(), ErrorCode> {
    if node.meta.quorum().is_none() {
        return Ok(());
    }
    let Some(p) = offsets_partition(&node.meta, group) else { return Ok(()) };
    let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
    p.wait_committed(p.log_end_offset(), deadline).await.map_err(|code| match code {
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => ErrorCode::NotCoordinator,
        _ => ErrorCode::CoordinatorNotAvailable,
    })
}

/// Validates the committer and stores the offsets; in a cluster the answer waits until
/// the commit is on every in-sync replica of the group's `__consumer_offsets` partition
/// (Kafka writes offsets with acks=all), so an acknowledged commit survives failover.
pub async fn handle(node: &Node, az: &Authz<'_>, version: i16, req: OffsetCommitRequest) -> OffsetCommitResponse {
    // v10 names topics by id; resolve them, remembering which are unknown.
    let names: Vec<Option<String>> = req
        .topics
        .iter()
        .map(|t| {
            if version >= 10 {
                node.meta.topic_by_id(&t.topic_id).map(|x| x.name.to_string())
            } else {
                Some(t.name.clone())
            }
        })
        .collect();
    // Kafka: READ on the group (else every partition fails), then READ on each topic.
    let group_denied = !az.group(op::READ, &req.group_id);
    let refused: Vec<Option<ErrorCode>> = names
        .iter()
        .map(|name| match name {
            _ if group_denied => Some(ErrorCode::GroupAuthorizationFailed),
            None => Some(ErrorCode::UnknownTopicId),
            Some(n) if !az.topic(op::READ, n) => Some(ErrorCode::TopicAuthorizationFailed),
            Some(_) => None,
        })
        .collect();
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .zip(&names)
        .zip(&refused)
        .filter(|(_, refused)| refused.is_none_or(|c| c == ErrorCode::UnknownTopicId))
        .flat_map(|((t, name), _)| {
            t.partitions.iter().map(move |p| CommitEntry {
                topic: name.clone().unwrap_or_default(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.clone(),
            })
        })
        .collect();
    let (mut codes, pending) = if group_denied || entries.is_empty() && !req.topics.is_empty() {
        (Vec::new(), None)
    } else {
        node.groups.commit(
            &node.meta,
            version,
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            &entries,
        )
    };
    if codes.contains(&ErrorCode::None) {
        match wait_replicated(node, &req.group_id).await {
            Ok(()) => {
                if let Some(p) = pending {
                    node.groups.apply_commit(p);
                }
            }
            Err(code) => {
                for c in codes.iter_mut().filter(|c| **c == ErrorCode::None) {
                    *c = code;
                }
            }
        }
    }
    let mut codes = codes.into_iter();
    let topics = req
        .topics
        .iter()
        .zip(&refused)
        .map(|(t, refused)| OffsetCommitResponseTopic {
            name: t.name.clone(),
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let code = match refused {
                        Some(ErrorCode::UnknownTopicId) => {
                            codes.next();
                            ErrorCode::UnknownTopicId
                        }
                        Some(code) => *code,
                        None => codes.next().unwrap_or(ErrorCode::UnknownServerError),
                    };
                    OffsetCommitResponsePartition {
                        partition_index: p.partition_index,
                        error_code: code.code(),
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    OffsetCommitResponse { topics, ..Default::default() }
}
