//! ElectLeaders (key 43): preferred-leader elections (type 0) and unclean elections of
//! leaderless partitions (type 1), committed through the metadata quorum (ADR 0010).

use strom_protocol::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use strom_protocol::{ElectLeadersRequest, ElectLeadersResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 43, min: 0, max: 2, advertised_min: 0 };

/// Elects leaders for the named partitions (all partitions when the list is null).
pub fn handle(node: &Node, az: &Authz<'_>, version: i16, req: ElectLeadersRequest) -> ElectLeadersResponse {
    // Kafka: ALTER on the cluster; v0 has only the partitions' errors to say so.
    if !az.cluster(op::ALTER) {
        let denied = ErrorCode::ClusterAuthorizationFailed;
        let results = req
            .topic_partitions
            .iter()
            .flatten()
            .map(|t| ReplicaElectionResult {
                topic: t.topic.clone(),
                partition_result: t
                    .partitions
                    .iter()
                    .map(|&p| PartitionResult { partition_id: p, error_code: denied.code(), ..Default::default() })
                    .collect(),
                ..Default::default()
            })
            .collect();
        return ElectLeadersResponse {
            error_code: denied.code(),
            replica_election_results: results,
            ..Default::default()
        };
    }
    let unclean = version >= 1 && req.election_type == 1;
    if version >= 1 && !matches!(req.election_type, 0 | 1) {
        return ElectLeadersResponse { error_code: ErrorCode::InvalidRequest.code(), ..Default::default() };
    }
    let parts: Vec<(String, i32)> = match &req.topic_partitions {
        Some(tps) => tps.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.topic.clone(), *p))).collect(),
        None => node
            .meta
            .topics()
            .iter()
            .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.index)))
            .collect(),
    };
    let answers = node.meta.elect_leaders(unclean, &parts);
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, partition), (code, message)) in parts.into_iter().zip(answers) {
        let r = PartitionResult {
            partition_id: partition,
            error_code: code.code(),
            error_message: message,
            ..Default::default()
        };
        match results.iter_mut().find(|x| x.topic == topic) {
            Some(x) => x.partition_result.push(r),
            None => results.push(ReplicaElectionResult { topic, partition_result: vec![r], ..Default::default() }),
        }
    }
    ElectLeadersResponse { replica_election_results: results, ..Default::default() }
}
