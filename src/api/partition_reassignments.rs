//! AlterPartitionReassignments (key 45) and ListPartitionReassignments (key 46): moving
//! a partition's replicas to other brokers, or changing its replication factor, while
//! it serves (KIP-455, ADR 0011). The change is committed through the metadata quorum;
//! the controller finishes each move once the new replicas are in sync.

use strom_protocol::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use strom_protocol::list_partition_reassignments_response::{OngoingPartitionReassignment, OngoingTopicReassignment};
use strom_protocol::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ListPartitionReassignmentsRequest,
    ListPartitionReassignmentsResponse,
};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// AlterPartitionReassignments versions served (v1: KIP-860's AllowReplicationFactorChange).
pub const ALTER_API: ApiRange = ApiRange { key: 45, min: 0, max: 1, advertised_min: 0 };
/// ListPartitionReassignments versions served.
pub const LIST_API: ApiRange = ApiRange { key: 46, min: 0, max: 0, advertised_min: 0 };

/// Starts, replaces or cancels the reassignments asked for.
pub fn handle_alter(
    node: &Node,
    version: i16,
    az: &Authz<'_>,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let allow_rf_change = version < 1 || req.allow_replication_factor_change;
    // Kafka: ALTER on the cluster.
    if !az.cluster(op::ALTER) {
        return AlterPartitionReassignmentsResponse {
            allow_replication_factor_change: allow_rf_change,
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let parts: Vec<(String, i32, Option<Vec<i32>>)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.clone(), p.partition_index, p.replicas.clone())))
        .collect();
    let answers = node.meta.reassign_partitions(&parts, allow_rf_change);
    let mut responses: Vec<ReassignableTopicResponse> = Vec::new();
    for ((topic, partition, _), (code, message)) in parts.into_iter().zip(answers) {
        let r = ReassignablePartitionResponse {
            partition_index: partition,
            error_code: code.code(),
            error_message: message,
            ..Default::default()
        };
        match responses.iter_mut().find(|x| x.name == topic) {
            Some(x) => x.partitions.push(r),
            None => {
                responses.push(ReassignableTopicResponse { name: topic, partitions: vec![r], ..Default::default() })
            }
        }
    }
    AlterPartitionReassignmentsResponse {
        allow_replication_factor_change: allow_rf_change,
        responses,
        ..Default::default()
    }
}

/// Lists the ongoing reassignments of the named partitions (of all, when null).
pub fn handle_list(
    node: &Node,
    _version: i16,
    az: &Authz<'_>,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    // Kafka: DESCRIBE on the cluster.
    if !az.cluster(op::DESCRIBE) {
        return ListPartitionReassignmentsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let image = node.meta.image();
    let mut topics = Vec::new();
    let wanted: Vec<(String, Option<Vec<i32>>)> = match &req.topics {
        Some(ts) => ts.iter().map(|t| (t.name.clone(), Some(t.partition_indexes.clone()))).collect(),
        None => image.topics.values().map(|t| (t.name.clone(), None)).collect(),
    };
    for (name, indexes) in wanted {
        let Some(t) = image.topic(&name) else { continue };
        let partitions: Vec<OngoingPartitionReassignment> = t
            .partitions
            .iter()
            .filter(|(i, p)| p.reassigning() && indexes.as_ref().is_none_or(|want| want.contains(i)))
            .map(|(&i, p)| OngoingPartitionReassignment {
                partition_index: i,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding.clone(),
                removing_replicas: p.removing.clone(),
                ..Default::default()
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(OngoingTopicReassignment { name, partitions, ..Default::default() });
        }
    }
    ListPartitionReassignmentsResponse { topics, ..Default::default() }
}
