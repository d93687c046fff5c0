//! DeleteRecords (key 21): move partitions' log start offsets forward.

use strom_protocol::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use strom_protocol::{DeleteRecordsRequest, DeleteRecordsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 21, min: 0, max: 2, advertised_min: 0 };

/// Deletes records below each requested offset (-1: everything below the high watermark).
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            // Kafka: DELETE on the topic.
            let denied = !az.topic(op::DELETE, &t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let mut r = DeleteRecordsPartitionResult {
                        partition_index: p.partition_index,
                        low_watermark: -1,
                        ..Default::default()
                    };
                    if denied {
                        r.error_code = ErrorCode::TopicAuthorizationFailed.code();
                        return r;
                    }
                    match node
                        .meta
                        .partition(&t.name, p.partition_index)
                        .ok_or(ErrorCode::UnknownTopicOrPartition)
                        .and_then(|part| {
                            if node.meta.leads_partition(&part) {
                                part.delete_records(p.offset)
                            } else {
                                Err(ErrorCode::NotLeaderOrFollower)
                            }
                        }) {
                        Ok(low) => r.low_watermark = low,
                        Err(code) => r.error_code = code.code(),
                    }
                    r
                })
                .collect();
            DeleteRecordsTopicResult { name: t.name, partitions, ..Default::default() }
        })
        .collect();
    DeleteRecordsResponse { topics, ..Default::default() }
}
