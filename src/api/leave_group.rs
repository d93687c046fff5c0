//! LeaveGroup (key 13): one member (v0–2) or a batch of members (v3+) leave.

use strom_protocol::leave_group_response::MemberResponse;
use strom_protocol::{LeaveGroupRequest, LeaveGroupResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 13, min: 0, max: 5, advertised_min: 0 };

/// Removes the members and triggers a rebalance for the rest.
pub fn handle(node: &Node, az: &Authz<'_>, version: i16, req: LeaveGroupRequest) -> LeaveGroupResponse {
    // Kafka: READ on the group.
    let denied = az.group_error(op::READ, &req.group_id);
    if denied != ErrorCode::None {
        return LeaveGroupResponse { error_code: denied.code(), ..Default::default() };
    }
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members.iter().map(|m| (m.member_id.clone(), m.group_instance_id.clone())).collect()
    } else {
        vec![(req.member_id.clone(), None)]
    };
    match node.groups.leave(&node.meta, &req.group_id, &members) {
        Err(code) => LeaveGroupResponse { error_code: code.code(), ..Default::default() },
        Ok(codes) if version < 3 => LeaveGroupResponse {
            error_code: codes.first().copied().unwrap_or(ErrorCode::None).code(),
            ..Default::default()
        },
        Ok(codes) => LeaveGroupResponse {
            members: members
                .into_iter()
                .zip(codes)
                .map(|((member_id, group_instance_id), code)| MemberResponse {
                    member_id,
                    group_instance_id,
                    error_code: code.code(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        },
    }
}
