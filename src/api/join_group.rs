//! JoinGroup (key 11): classic group membership; parks until the rebalance completes.

use strom_protocol::join_group_response::JoinGroupResponseMember;
use strom_protocol::{JoinGroupRequest, JoinGroupResponse};

use super::authz::Authz;
use super::{ApiRange, RequestContext};
use crate::coordinator::group::classic::JoinRequest;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 11, min: 0, max: 9, advertised_min: 0 };

/// Joins (or rejoins) the member and waits for the generation it ends up in.
pub async fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    version: i16,
    req: JoinGroupRequest,
) -> JoinGroupResponse {
    // Kafka: READ on the group.
    if !az.group(op::READ, &req.group_id) {
        return JoinGroupResponse {
            error_code: ErrorCode::GroupAuthorizationFailed.code(),
            generation_id: -1,
            member_id: req.member_id,
            protocol_name: (version < 7).then(String::new),
            ..Default::default()
        };
    }
    let join = JoinRequest {
        member_id: req.member_id,
        instance_id: req.group_instance_id,
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type,
        protocols: req.protocols.into_iter().map(|p| (p.name, p.metadata)).collect(),
        require_known_member_id: version >= 4,
    };
    let r = node.groups.join(&node.meta, &req.group_id, join).await;
    JoinGroupResponse {
        error_code: r.error.code(),
        generation_id: r.generation,
        protocol_type: r.protocol_type,
        // Before v7 the protocol name is not nullable.
        protocol_name: if version >= 7 { r.protocol_name } else { Some(r.protocol_name.unwrap_or_default()) },
        leader: r.leader,
        member_id: r.member_id,
        members: r
            .members
            .into_iter()
            .map(|(member_id, group_instance_id, metadata)| JoinGroupResponseMember {
                member_id,
                group_instance_id,
                metadata,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
