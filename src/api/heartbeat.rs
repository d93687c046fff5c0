//! Heartbeat (key 12): keeps a classic member alive and tells it about rebalances.

use strom_protocol::{HeartbeatRequest, HeartbeatResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 12, min: 0, max: 4, advertised_min: 0 };

/// Records the heartbeat.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: HeartbeatRequest) -> HeartbeatResponse {
    // Kafka: READ on the group.
    let denied = az.group_error(op::READ, &req.group_id);
    if denied != crate::error::ErrorCode::None {
        return HeartbeatResponse { error_code: denied.code(), ..Default::default() };
    }
    let code =
        node.groups.heartbeat(&req.group_id, &req.member_id, req.group_instance_id.as_deref(), req.generation_id);
    HeartbeatResponse { error_code: code.code(), ..Default::default() }
}
