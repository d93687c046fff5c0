//! SyncGroup (key 14): the leader publishes the assignment; everyone receives theirs.

use strom_protocol::{SyncGroupRequest, SyncGroupResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 14, min: 0, max: 5, advertised_min: 0 };

/// Waits for the leader's assignment (or returns the current one). In a cluster the
/// answer also waits until the group's state record is on every in-sync replica of its
/// `__consumer_offsets` partition, as Kafka's does: an assignment a member acted on
/// survives a failover of the coordinator.
pub async fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: SyncGroupRequest) -> SyncGroupResponse {
    // Kafka: READ on the group.
    if !az.group(op::READ, &req.group_id) {
        return SyncGroupResponse {
            error_code: crate::error::ErrorCode::GroupAuthorizationFailed.code(),
            ..Default::default()
        };
    }
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
    let mut error = r.error;
    if error == crate::error::ErrorCode::None {
        if let Err(code) = super::offset_commit::wait_replicated(node, &req.group_id).await {
            error = code;
        }
    }
    SyncGroupResponse {
        error_code: error.code(),
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        assignment: if error == crate::error::ErrorCode::None { r.assignment } else { Default::default() },
        ..Default::default()
    }
}
