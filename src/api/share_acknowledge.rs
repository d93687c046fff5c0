//! ShareAcknowledge (key 79): acknowledges records acquired through ShareFetch without
//! fetching more (KIP-932); epoch -1 also closes the share session, releasing whatever
//! the member still holds on its partitions. From v2 (KIP-1222) it may renew locks.

use std::collections::BTreeMap;

use strom_protocol::share_acknowledge_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionData, ShareAcknowledgeTopicResponse,
};
use strom_protocol::{ShareAcknowledgeRequest, ShareAcknowledgeResponse, Uuid};

use super::authz::Authz;
use super::share_fetch::{ack_batches, acknowledge, check_member, endpoints, release_closed, Answer};
use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::share::group::TopicPartition;

/// Versions served: v1 and v2 (Kafka 4.2: KIP-1222's RENEW acknowledgements).
pub const API: ApiRange = ApiRange { key: 79, min: 1, max: 2, advertised_min: 1 };

/// Applies the acknowledgements, partition by partition (each all or nothing).
pub async fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    version: i16,
    req: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let group = req.group_id.clone().unwrap_or_default();
    let member = req.member_id.clone().unwrap_or_default();
    let refuse = |code: ErrorCode, msg: &str| ShareAcknowledgeResponse {
        error_code: code.code(),
        error_message: Some(msg.to_string()),
        ..Default::default()
    };
    if let Err((code, msg)) = check_member(az, &group, &member) {
        return refuse(code, msg);
    }
    let renew = version >= 2 && req.is_renew_ack;
    let _span = tracing::debug_span!("share_acknowledge", group = %group, member = %member, renew);
    let _span = _span.enter();
    let now = strom_storage::now_ms();
    let limits = node.shares.limits(&node.meta.group_configs(&group));
    let view = match node.shares.session_acknowledge(&group, &member, req.share_session_epoch, now) {
        Ok(v) => v,
        Err(e) => return refuse(e.error_code(), e.message()),
    };
    let mut answers: BTreeMap<TopicPartition, Answer> = BTreeMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = (t.topic_id.0, p.partition_index);
            let acks = ack_batches(
                p.acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.as_slice())),
                renew,
            );
            let answer = answers.entry(tp).or_default();
            acknowledge(node, az, (&group, &member), tp, acks, (now, limits), answer).await;
        }
    }
    if view.closed {
        release_closed(node, &group, &member, &view.partitions);
    }
    let node_endpoints = endpoints(node, ctx, &answers);
    let mut responses: Vec<ShareAcknowledgeTopicResponse> = Vec::new();
    for ((topic_id, index), a) in answers {
        // ShareAcknowledge has one error per partition: the acknowledgement's.
        let (leader_id, leader_epoch) = a.leader.unwrap_or((-1, -1));
        let error = a.ack_error.or(a.error);
        let pd = PartitionData {
            partition_index: index,
            error_code: error.as_ref().map_or(0, |e| e.0.code()),
            error_message: error.map(|e| e.1),
            current_leader: LeaderIdAndEpoch { leader_id, leader_epoch, ..Default::default() },
            ..Default::default()
        };
        match responses.last_mut() {
            Some(t) if t.topic_id.0 == topic_id => t.partitions.push(pd),
            _ => responses.push(ShareAcknowledgeTopicResponse {
                topic_id: Uuid(topic_id),
                partitions: vec![pd],
                ..Default::default()
            }),
        }
    }
    let node_endpoints = node_endpoints
        .into_iter()
        .map(|e| NodeEndpoint { node_id: e.node_id, host: e.host, port: e.port, rack: e.rack, ..Default::default() })
        .collect();
    // v2: how long the locks renewed here now last (the group's lock duration).
    let acquisition_lock_timeout_ms = i32::try_from(limits.lock_duration_ms).unwrap_or(i32::MAX);
    ShareAcknowledgeResponse { acquisition_lock_timeout_ms, responses, node_endpoints, ..Default::default() }
}
