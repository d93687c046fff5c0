//! FindCoordinator (key 10): this broker coordinates every group. Transactions have no
//! coordinator yet, so transactional lookups get COORDINATOR_NOT_AVAILABLE.

use strom_protocol::find_coordinator_response::Coordinator;
use strom_protocol::{FindCoordinatorRequest, FindCoordinatorResponse};

use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 10, min: 0, max: 6, advertised_min: 0 };

const KEY_TYPE_GROUP: i8 = 0;

/// Answers single (v0–3) and batched (v4+) lookups.
pub fn handle(node: &Node, ctx: &RequestContext, version: i16, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let c = &node.meta.config;
    let lookup = |key: &str| -> Coordinator {
        // While groups load, the coordinator is still this broker: the group APIs
        // themselves answer COORDINATOR_LOAD_IN_PROGRESS and clients retry them.
        let error = if req.key_type == KEY_TYPE_GROUP { ErrorCode::None } else { ErrorCode::CoordinatorNotAvailable };
        let ok = error == ErrorCode::None;
        Coordinator {
            key: key.to_string(),
            node_id: if ok { c.node_id } else { -1 },
            host: if ok { c.advertised(ctx.listener).0.to_string() } else { String::new() },
            port: if ok { i32::from(c.advertised(ctx.listener).1) } else { -1 },
            error_code: error.code(),
            error_message: if ok { None } else { Some("transactions are not supported yet".into()) },
            ..Default::default()
        }
    };
    if version >= 4 {
        return FindCoordinatorResponse {
            coordinators: req.coordinator_keys.iter().map(|k| lookup(k)).collect(),
            ..Default::default()
        };
    }
    let one = lookup(&req.key);
    FindCoordinatorResponse {
        error_code: one.error_code,
        error_message: one.error_message,
        node_id: one.node_id,
        host: one.host,
        port: one.port,
        ..Default::default()
    }
}
