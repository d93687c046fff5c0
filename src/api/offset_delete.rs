//! OffsetDelete (key 47): drops a group's offsets for topics it does not consume.

use strom_protocol::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use strom_protocol::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 47, min: 0, max: 0, advertised_min: 0 };

/// Deletes the offsets, partition by partition.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    // Kafka: DELETE on the group, then READ on each topic (others are left alone).
    let denied = az.group_error(op::DELETE, &req.group_id);
    if denied != crate::error::ErrorCode::None {
        return OffsetDeleteResponse { error_code: denied.code(), ..Default::default() };
    }
    let readable: Vec<bool> = req.topics.iter().map(|t| az.topic(op::READ, &t.name)).collect();
    let wanted: Vec<(String, i32)> = req
        .topics
        .iter()
        .zip(&readable)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| t.partitions.iter().map(move |p| (t.name.clone(), p.partition_index)))
        .collect();
    match node.groups.delete_offsets(&node.meta, &req.group_id, &wanted) {
        Err(code) => OffsetDeleteResponse { error_code: code.code(), ..Default::default() },
        Ok(codes) => {
            let mut codes = codes.into_iter();
            OffsetDeleteResponse {
                topics: req
                    .topics
                    .into_iter()
                    .zip(readable)
                    .map(|(t, readable)| OffsetDeleteResponseTopic {
                        name: t.name,
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| OffsetDeleteResponsePartition {
                                partition_index: p.partition_index,
                                error_code: if readable {
                                    codes.next().map(|c| c.code()).unwrap_or(0)
                                } else {
                                    crate::error::ErrorCode::TopicAuthorizationFailed.code()
                                },
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        }
    }
}
