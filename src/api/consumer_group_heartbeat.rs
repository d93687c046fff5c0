//! ConsumerGroupHeartbeat (key 68): the KIP-848 consumer protocol.

use std::collections::BTreeSet;

use strom_protocol::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use strom_protocol::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};

use super::authz::Authz;
use super::{ApiRange, RequestContext};
use crate::coordinator::group::consumer::HeartbeatRequest;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served (v1: client-generated member ids, regex subscriptions).
pub const API: ApiRange = ApiRange { key: 68, min: 0, max: 1, advertised_min: 0 };

/// Runs the member's heartbeat through its group.
pub fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    version: i16,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    // Kafka: READ on the group, and DESCRIBE on every topic subscribed to by name.
    let refuse = |code: ErrorCode, msg: String| ConsumerGroupHeartbeatResponse {
        error_code: code.code(),
        error_message: Some(msg),
        ..Default::default()
    };
    if !az.group(op::READ, &req.group_id) {
        return refuse(ErrorCode::GroupAuthorizationFailed, format!("not authorized to read group {}", req.group_id));
    }
    let hidden: Vec<&String> =
        req.subscribed_topic_names.iter().flatten().filter(|t| !az.topic(op::DESCRIBE, t)).collect();
    if !hidden.is_empty() {
        return refuse(ErrorCode::TopicAuthorizationFailed, format!("not authorized to describe topics {hidden:?}"));
    }
    // v0 lets the coordinator pick the member id.
    let member_id = if req.member_id.is_empty() && version == 0 && req.member_epoch == 0 {
        crate::metadata::random_uuid().to_string()
    } else {
        req.member_id
    };
    let hb = HeartbeatRequest {
        version,
        group_id: req.group_id,
        member_id,
        member_epoch: req.member_epoch,
        instance_id: req.instance_id,
        rack_id: req.rack_id,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req.subscribed_topic_names,
        subscribed_topic_regex: req.subscribed_topic_regex,
        server_assignor: req.server_assignor,
        owned: req.topic_partitions.map(|tps| {
            tps.into_iter().map(|tp| (tp.topic_id, tp.partitions.into_iter().collect::<BTreeSet<i32>>())).collect()
        }),
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    match node.groups.consumer_heartbeat(&node.meta, hb) {
        Err((code, msg)) => {
            ConsumerGroupHeartbeatResponse { error_code: code.code(), error_message: Some(msg), ..Default::default() }
        }
        Ok(r) => ConsumerGroupHeartbeatResponse {
            member_id: Some(r.member_id),
            member_epoch: r.member_epoch,
            heartbeat_interval_ms: r.heartbeat_interval_ms,
            assignment: r.assignment.map(|a| Assignment {
                topic_partitions: a
                    .into_iter()
                    .map(|(topic_id, ps)| TopicPartitions {
                        topic_id,
                        partitions: ps.into_iter().collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}
