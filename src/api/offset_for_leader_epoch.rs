//! OffsetForLeaderEpoch (key 23): where a leader epoch ends in this leader's log, from
//! the log's leader-epoch cache. Consumers validate their positions with it (KIP-320);
//! followers find where their log diverges from the leader's after a leader change
//! (KIP-101/279, ADR 0010).

use strom_protocol::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use strom_protocol::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 23, min: 2, max: 4, advertised_min: 2 };

/// Answers the end offset of the largest epoch at or below each requested one.
pub fn handle(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    // Kafka: CLUSTER_ACTION on the cluster (followers), or else DESCRIBE on each topic
    // (consumers checking for truncation, KIP-320).
    let broker = az.sees(op::CLUSTER_ACTION, resource::CLUSTER, super::authz::CLUSTER);
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let denied = !broker && !az.topic(op::DESCRIBE, &t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = EpochEndOffset { partition: p.partition, ..Default::default() };
                    if denied {
                        r.error_code = ErrorCode::TopicAuthorizationFailed.code();
                        return r;
                    }
                    match node.meta.partition(&t.topic, p.partition) {
                        None => r.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                        Some(part) if !node.meta.leads_partition(&part) => {
                            r.error_code = ErrorCode::NotLeaderOrFollower.code()
                        }
                        Some(part) if p.current_leader_epoch > part.leader_epoch() => {
                            r.error_code = ErrorCode::UnknownLeaderEpoch.code()
                        }
                        Some(part) if p.current_leader_epoch >= 0 && p.current_leader_epoch < part.leader_epoch() => {
                            r.error_code = ErrorCode::FencedLeaderEpoch.code()
                        }
                        Some(part) => match part.end_offset_for_epoch(p.leader_epoch) {
                            // The leader-epoch cache: the largest epoch at or below the one
                            // asked about, and where it ends (ADR 0010).
                            Some((epoch, end)) => {
                                r.leader_epoch = epoch;
                                r.end_offset = end;
                            }
                            // A log with no batches and no assigned epoch (a single node's
                            // fresh partition): the current epoch ends at the log end.
                            None if p.leader_epoch >= part.leader_epoch() => {
                                r.leader_epoch = part.leader_epoch();
                                r.end_offset = part.log_end_offset();
                            }
                            // An epoch before the first one this log knows: undefined, as Kafka.
                            None => {}
                        },
                    }
                    r
                })
                .collect();
            OffsetForLeaderTopicResult { topic: t.topic, partitions, ..Default::default() }
        })
        .collect();
    OffsetForLeaderEpochResponse { topics, ..Default::default() }
}
