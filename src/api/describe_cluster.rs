//! DescribeCluster (key 60): this broker is the whole cluster and its controller.

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
    let c = &node.meta.config;
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
        controller_id: c.node_id,
        brokers: vec![DescribeClusterBroker {
            broker_id: c.node_id,
            host: c.advertised(ctx.listener).0.to_string(),
            port: i32::from(c.advertised(ctx.listener).1),
            ..Default::default()
        }],
        ..Default::default()
    }
}
