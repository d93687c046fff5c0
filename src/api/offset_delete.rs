//! OffsetDelete (key 47): drops a group's offsets for topics it does not consume.

use strom_protocol::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use strom_protocol::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::ApiRange;
use crate::node::Node;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 47, min: 0, max: 0, advertised_min: 0 };

/// Deletes the offsets, partition by partition.
pub fn handle(node: &Node, _version: i16, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let wanted: Vec<(String, i32)> =
        req.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p.partition_index))).collect();
    match node.groups.delete_offsets(&node.meta, &req.group_id, &wanted) {
        Err(code) => OffsetDeleteResponse { error_code: code.code(), ..Default::default() },
        Ok(codes) => {
            let mut codes = codes.into_iter();
            OffsetDeleteResponse {
                topics: req
                    .topics
                    .into_iter()
                    .map(|t| OffsetDeleteResponseTopic {
                        name: t.name,
                        partitions: t
                            .partitions
                            .into_iter()
                            .map(|p| OffsetDeleteResponsePartition {
                                partition_index: p.partition_index,
                                error_code: codes.next().map(|c| c.code()).unwrap_or(0),
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
