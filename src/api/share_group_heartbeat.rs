//! ShareGroupHeartbeat (key 76): a KIP-932 share consumer joins, stays in or leaves its
//! share group and learns its assignment (the group coordinator's `simple` assignor).

use strom_protocol::share_group_heartbeat_response::{Assignment, TopicPartitions};
use strom_protocol::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};

use super::authz::Authz;
use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served: v1, the stable one (Kafka 4.1 removed the early-access v0).
pub const API: ApiRange = ApiRange { key: 76, min: 1, max: 1, advertised_min: 1 };

/// Runs the member's heartbeat through its share group.
pub fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    _version: i16,
    req: ShareGroupHeartbeatRequest,
) -> ShareGroupHeartbeatResponse {
    let refuse = |code: ErrorCode, msg: String| ShareGroupHeartbeatResponse {
        error_code: code.code(),
        error_message: Some(msg),
        ..Default::default()
    };
    // Kafka: READ on the group, DESCRIBE on every subscribed topic.
    if !az.group(op::READ, &req.group_id) {
        return refuse(ErrorCode::GroupAuthorizationFailed, format!("not authorized to read group {}", req.group_id));
    }
    let hidden: Vec<&String> =
        req.subscribed_topic_names.iter().flatten().filter(|t| !az.topic(op::DESCRIBE, t)).collect();
    if !hidden.is_empty() {
        return refuse(ErrorCode::TopicAuthorizationFailed, format!("not authorized to describe topics {hidden:?}"));
    }
    let hb = crate::share::group::Heartbeat {
        member_id: req.member_id,
        member_epoch: req.member_epoch,
        rack_id: req.rack_id,
        subscribed_topic_names: req.subscribed_topic_names,
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let _span = tracing::debug_span!("share_group_heartbeat", group = %req.group_id, member = %hb.member_id).entered();
    match node.groups.share_heartbeat(&node.meta, &req.group_id, hb) {
        Err((code, msg)) => refuse(code, msg),
        Ok(r) => ShareGroupHeartbeatResponse {
            member_id: Some(r.member_id),
            member_epoch: r.member_epoch,
            heartbeat_interval_ms: r.heartbeat_interval_ms,
            assignment: r.assignment.map(|a| Assignment {
                topic_partitions: a
                    .into_iter()
                    .map(|(topic_id, partitions)| TopicPartitions {
                        topic_id: strom_protocol::Uuid(topic_id),
                        partitions,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}
