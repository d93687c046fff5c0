//! SyncGroup (key 14): the leader publishes the assignment; everyone receives theirs.

use strom_protocol::{SyncGroupRequest, SyncGroupResponse};

use super::ApiRange;
use crate::node::Node;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 14, min: 0, max: 5, advertised_min: 0 };

/// Waits for the leader's assignment (or returns the current one).
pub async fn handle(node: &Node, _version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = req.assignments.into_iter().map(|a| (a.member_id, a.assignment)).collect();
    let r = node
        .groups
        .sync(
            &node.meta,
            &req.group_id,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
            req.protocol_type.as_deref(),
            req.protocol_name.as_deref(),
            assignments,
        )
        .await;
    SyncGroupResponse {
        error_code: r.error.code(),
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        assignment: r.assignment,
        ..Default::default()
    }
}
