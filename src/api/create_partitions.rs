//! CreatePartitions (key 37): grow topics.

use strom_protocol::create_partitions_response::CreatePartitionsTopicResult;
use strom_protocol::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 37, min: 0, max: 3, advertised_min: 0 };

/// Adds partitions; manual assignments must name this broker only.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let node_id = node.meta.config.node_id;
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            // Kafka: ALTER on the topic.
            let outcome = match &t.assignments {
                _ if !az.topic(op::ALTER, &t.name) => {
                    Err((ErrorCode::TopicAuthorizationFailed, "not authorized to alter the topic".to_string()))
                }
                Some(a) if a.iter().any(|x| x.broker_ids != [node_id]) => {
                    Err((ErrorCode::InvalidReplicaAssignment, format!("this cluster has one broker, id {node_id}")))
                }
                _ => node.meta.add_partitions(&t.name, t.count, req.validate_only),
            };
            let (code, msg) = match outcome {
                Ok(()) => (ErrorCode::None, None),
                Err((c, m)) => (c, Some(m)),
            };
            CreatePartitionsTopicResult {
                name: t.name,
                error_code: code.code(),
                error_message: msg,
                ..Default::default()
            }
        })
        .collect();
    CreatePartitionsResponse { results, ..Default::default() }
}
