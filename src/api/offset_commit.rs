//! OffsetCommit (key 8): classic generations and KIP-848 member epochs; v10 by topic id.

use strom_protocol::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use strom_protocol::{OffsetCommitRequest, OffsetCommitResponse};

use super::ApiRange;
use crate::coordinator::group::CommitEntry;
use crate::error::ErrorCode;
use crate::node::Node;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 8, min: 2, max: 10, advertised_min: 2 };

/// Validates the committer and stores the offsets.
pub fn handle(node: &Node, version: i16, req: OffsetCommitRequest) -> OffsetCommitResponse {
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
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .zip(&names)
        .flat_map(|(t, name)| {
            t.partitions.iter().map(move |p| CommitEntry {
                topic: name.clone().unwrap_or_default(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.clone(),
            })
        })
        .collect();
    let mut codes = node
        .groups
        .commit(
            &node.meta,
            version,
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            &entries,
        )
        .into_iter();
    let topics = req
        .topics
        .iter()
        .zip(&names)
        .map(|(t, name)| OffsetCommitResponseTopic {
            name: t.name.clone(),
            topic_id: t.topic_id,
            partitions: t
                .partitions
                .iter()
                .map(|p| {
                    let code = codes.next().unwrap_or(ErrorCode::UnknownServerError);
                    let code = if name.is_none() { ErrorCode::UnknownTopicId } else { code };
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
