//! DescribeCluster (key 60): the live brokers and the active controller.

use strom_protocol::describe_cluster_response::DescribeClusterBroker;
use strom_protocol::{DescribeClusterRequest, DescribeClusterResponse};

use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 60, min: 0, max: 2, advertised_min: 0 };

/// Endpoint type 1 = brokers; 2 = controllers (KIP-919). Strom is both.
pub fn handle(
    node: &Node,
    ctx: &RequestContext,
    _version: i16,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    if req.endpoint_type != 1 && req.endpoint_type != 2 {
        return DescribeClusterResponse {
            error_code: ErrorCode::UnsupportedVersion.code(),
            error_message: Some(format!("unknown endpoint type {}", req.endpoint_type)),
            endpoint_type: req.endpoint_type,
            ..Default::default()
        };
    }
    DescribeClusterResponse {
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
