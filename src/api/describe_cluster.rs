//! DescribeCluster (key 60): the live brokers and the active controller.

use strom_protocol::describe_cluster_response::DescribeClusterBroker;
use strom_protocol::{DescribeClusterRequest, DescribeClusterResponse};

use super::authz::{Authz, CLUSTER_OPERATIONS};
use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 60, min: 0, max: 2, advertised_min: 0 };

/// Endpoint type 1 = brokers; 2 = controllers (KIP-919). Strom is both.
pub fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    _version: i16,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    // Kafka: DESCRIBE on the cluster.
    if !az.cluster(op::DESCRIBE) {
        return DescribeClusterResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some("not authorized to describe the cluster".into()),
            endpoint_type: req.endpoint_type,
            ..Default::default()
        };
    }
    if req.endpoint_type != 1 && req.endpoint_type != 2 {
        return DescribeClusterResponse {
            error_code: ErrorCode::UnsupportedVersion.code(),
            error_message: Some(format!("unknown endpoint type {}", req.endpoint_type)),
            endpoint_type: req.endpoint_type,
            ..Default::default()
        };
    }
    DescribeClusterResponse {
        cluster_authorized_operations: if az.enabled() && req.include_cluster_authorized_operations {
            az.operations(resource::CLUSTER, super::authz::CLUSTER, CLUSTER_OPERATIONS)
        } else {
            i32::MIN
        },
        endpoint_type: req.endpoint_type,
        cluster_id: node.meta.cluster_id.clone(),
        // Brokers (type 1) name a broker that forwards to the controller, as Metadata does;
        // controllers (type 2, KIP-919) name the quorum leader.
        controller_id: if req.endpoint_type == 2 { node.controller_id() } else { node.controller_for_clients() },
        brokers: node
            .brokers_with_fenced(ctx.listener)
            .into_iter()
            .filter(|(_, fenced)| req.include_fenced_brokers || !fenced)
            .map(|(b, fenced)| DescribeClusterBroker {
                broker_id: b.id,
                host: b.host,
                port: b.port,
                rack: b.rack,
                is_fenced: fenced,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}
