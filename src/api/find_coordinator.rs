//! FindCoordinator (key 10): a group's coordinator is the leader of its
//! `__consumer_offsets` partition (this broker, on a single node); a transactional id's
//! is the leader of its `__transaction_state` partition (the topic is created by the
//! first such lookup, as in Kafka); a share-partition's share coordinator (key type 2,
//! "group:topic id:partition", v6) is the leader of its `__share_group_state` partition.

use strom_protocol::find_coordinator_response::Coordinator;
use strom_protocol::{FindCoordinatorRequest, FindCoordinatorResponse};

use super::authz::Authz;
use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 10, min: 0, max: 6, advertised_min: 0 };

const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;
const KEY_TYPE_SHARE: i8 = 2;

/// Answers single (v0–3) and batched (v4+) lookups.
pub fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    version: i16,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let lookup = |key: &str| -> Coordinator {
        // Kafka: DESCRIBE on the group or the transactional id.
        let denied = match req.key_type {
            KEY_TYPE_GROUP => az.group_error(op::DESCRIBE, key),
            KEY_TYPE_TRANSACTION => az.txn_id_error(op::DESCRIBE, key),
            // Kafka: share coordinators are looked up by brokers (CLUSTER_ACTION).
            KEY_TYPE_SHARE if !az.cluster_action() => ErrorCode::ClusterAuthorizationFailed,
            _ => ErrorCode::None,
        };
        // While groups load, the coordinator is still this broker: the group APIs
        // themselves answer COORDINATOR_LOAD_IN_PROGRESS and clients retry them.
        let (id, error, message) = if denied != ErrorCode::None {
            (-1, denied, Some("the principal may not describe this key".to_string()))
        } else if req.key_type == KEY_TYPE_TRANSACTION {
            match node.txn_coordinator(key) {
                Some(id) => (id, ErrorCode::None, None),
                None => {
                    (-1, ErrorCode::CoordinatorNotAvailable, Some("the transaction's partition has no leader".into()))
                }
            }
        } else if req.key_type == KEY_TYPE_SHARE && version >= 6 {
            match node.share_coordinator(key) {
                Some(id) => (id, ErrorCode::None, None),
                None => {
                    (-1, ErrorCode::CoordinatorNotAvailable, Some("the key's state partition has no leader".into()))
                }
            }
        } else if req.key_type != KEY_TYPE_GROUP {
            (-1, ErrorCode::InvalidRequest, Some(format!("unknown key type {}", req.key_type)))
        } else {
            match node.group_coordinator(key) {
                Some(id) => (id, ErrorCode::None, None),
                None => (-1, ErrorCode::CoordinatorNotAvailable, Some("the group's partition has no leader".into())),
            }
        };
        let broker = node.brokers(ctx.listener).into_iter().find(|b| b.id == id);
        match broker {
            Some(b) if error == ErrorCode::None => {
                Coordinator { key: key.to_string(), node_id: b.id, host: b.host, port: b.port, ..Default::default() }
            }
            _ => Coordinator {
                key: key.to_string(),
                node_id: -1,
                host: String::new(),
                port: -1,
                error_code: if error == ErrorCode::None { ErrorCode::CoordinatorNotAvailable } else { error }.code(),
                error_message: message.or_else(|| Some(format!("broker {id} is not available"))),
                ..Default::default()
            },
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
