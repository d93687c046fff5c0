//! The share coordinator's inter-broker APIs (KIP-932): ReadShareGroupState (84),
//! WriteShareGroupState (85) and DeleteShareGroupState (86). A share-partition leader
//! sends them to the leader of the key's `__share_group_state` partition
//! ([`crate::share::coordinator`]). Like Kafka, only a principal with CLUSTER_ACTION (a
//! broker) may call them.
//!
//! Strom's conventions between its brokers: a read of a share-partition without state
//! answers start offset -1; a write with leader epoch -1 is an admin's reset to its start
//! offset (AlterShareGroupOffsets; Kafka has InitializeShareGroupState for it).

use strom_protocol::{
    delete_share_group_state_response as del, read_share_group_state_response as read,
    write_share_group_state_response as write, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse,
    ReadShareGroupStateRequest, ReadShareGroupStateResponse, WriteShareGroupStateRequest, WriteShareGroupStateResponse,
};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::share::broker::Key;
use crate::share::coordinator::Refusal;
use crate::share::partition::{Snapshot, StateBatch};

/// ReadShareGroupState versions served: v0.
pub const READ_API: ApiRange = ApiRange { key: 84, min: 0, max: 0, advertised_min: 0 };
/// WriteShareGroupState versions served: v0.
pub const WRITE_API: ApiRange = ApiRange { key: 85, min: 0, max: 0, advertised_min: 0 };
/// DeleteShareGroupState versions served: v0.
pub const DELETE_API: ApiRange = ApiRange { key: 86, min: 0, max: 0, advertised_min: 0 };

fn denied() -> Refusal {
    (ErrorCode::ClusterAuthorizationFailed, "CLUSTER_ACTION is required".into())
}

/// Answers ReadShareGroupState from this broker's share coordinator.
pub fn read(node: &Node, az: &Authz<'_>, req: ReadShareGroupStateRequest) -> ReadShareGroupStateResponse {
    let allowed = az.cluster_action();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let key: Key = (req.group_id.clone(), t.topic_id.0, p.partition);
            let outcome =
                if allowed { node.shares.coordinator.read(&node.meta, &key, p.leader_epoch) } else { Err(denied()) };
            partitions.push(match outcome {
                Ok(state) => {
                    let (state_epoch, snapshot) =
                        state.unwrap_or((0, Snapshot { start_offset: -1, batches: Vec::new() }));
                    read::PartitionResult {
                        partition: p.partition,
                        state_epoch,
                        start_offset: snapshot.start_offset,
                        state_batches: snapshot
                            .batches
                            .iter()
                            .map(|b| read::StateBatch {
                                first_offset: b.first,
                                last_offset: b.last,
                                delivery_state: b.state as i8,
                                delivery_count: b.delivery_count,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    }
                }
                Err((code, msg)) => read::PartitionResult {
                    partition: p.partition,
                    error_code: code.code(),
                    error_message: Some(msg),
                    start_offset: -1,
                    ..Default::default()
                },
            });
        }
        results.push(read::ReadStateResult { topic_id: t.topic_id, partitions, ..Default::default() });
    }
    ReadShareGroupStateResponse { results, ..Default::default() }
}

/// Answers WriteShareGroupState: each partition's snapshot is committed before the answer.
pub async fn write(node: &Node, az: &Authz<'_>, req: WriteShareGroupStateRequest) -> WriteShareGroupStateResponse {
    let allowed = az.cluster_action();
    let coordinator = &node.shares.coordinator;
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let key: Key = (req.group_id.clone(), t.topic_id.0, p.partition);
            let outcome = if !allowed {
                Err(denied())
            } else if p.leader_epoch < 0 {
                coordinator.reset(&node.meta, &key, p.start_offset).await
            } else {
                let batches = p
                    .state_batches
                    .iter()
                    .map(|b| StateBatch {
                        first: b.first_offset,
                        last: b.last_offset,
                        state: b.delivery_state as u8,
                        delivery_count: b.delivery_count,
                    })
                    .collect();
                let snapshot = Snapshot { start_offset: p.start_offset, batches };
                coordinator.write(&node.meta, &key, p.state_epoch, p.leader_epoch, snapshot).await
            };
            partitions.push(write::PartitionResult {
                partition: p.partition,
                error_code: outcome.as_ref().err().map_or(0, |e| e.0.code()),
                error_message: outcome.err().map(|e| e.1),
                ..Default::default()
            });
        }
        results.push(write::WriteStateResult { topic_id: t.topic_id, partitions, ..Default::default() });
    }
    WriteShareGroupStateResponse { results, ..Default::default() }
}

/// Answers DeleteShareGroupState: tombstones for the partitions that have state.
pub async fn delete(node: &Node, az: &Authz<'_>, req: DeleteShareGroupStateRequest) -> DeleteShareGroupStateResponse {
    let allowed = az.cluster_action();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let key: Key = (req.group_id.clone(), t.topic_id.0, p.partition);
            let outcome = if allowed { node.shares.coordinator.delete(&node.meta, &key).await } else { Err(denied()) };
            partitions.push(del::PartitionResult {
                partition: p.partition,
                error_code: outcome.as_ref().err().map_or(0, |e| e.0.code()),
                error_message: outcome.err().map(|e| e.1),
                ..Default::default()
            });
        }
        results.push(del::DeleteStateResult { topic_id: t.topic_id, partitions, ..Default::default() });
    }
    DeleteShareGroupStateResponse { results, ..Default::default() }
}
