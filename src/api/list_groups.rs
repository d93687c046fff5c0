//! ListGroups (key 16), with state (v4) and type (v5) filters.

use strom_protocol::list_groups_response::ListedGroup;
use strom_protocol::{ListGroupsRequest, ListGroupsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::coordinator::group::AnyGroup;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 16, min: 0, max: 5, advertised_min: 0 };

/// Lists the groups matching the filters (case-insensitively, as Kafka).
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: ListGroupsRequest) -> ListGroupsResponse {
    if !node.groups.is_loaded() {
        return ListGroupsResponse { error_code: ErrorCode::CoordinatorLoadInProgress.code(), ..Default::default() };
    }
    let matches =
        |filter: &[String], value: &str| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value));
    let mut groups = Vec::new();
    // Kafka: DESCRIBE on the cluster lists every group, else those the principal may
    // describe.
    let all = az.sees(op::DESCRIBE, resource::CLUSTER, super::authz::CLUSTER);
    node.groups.for_each_group(|id, g| {
        if !all && !az.sees(op::DESCRIBE, resource::GROUP, id) {
            return;
        }
        let protocol_type = match g {
            AnyGroup::Classic(c) => c.protocol_type.clone().unwrap_or_default(),
            AnyGroup::Consumer(_) => "consumer".to_string(),
        };
        if matches(&req.states_filter, g.state_name()) && matches(&req.types_filter, g.group_type()) {
            groups.push(ListedGroup {
                group_id: id.to_string(),
                protocol_type,
                group_state: g.state_name().to_string(),
                group_type: g.group_type().to_string(),
                ..Default::default()
            });
        }
    });
    // Share groups (KIP-932): protocol type "share", as Kafka lists them.
    node.groups.for_each_share_group(|id, state| {
        if !all && !az.sees(op::DESCRIBE, resource::GROUP, id) {
            return;
        }
        if matches(&req.states_filter, state) && matches(&req.types_filter, "share") {
            groups.push(ListedGroup {
                group_id: id.to_string(),
                protocol_type: "share".to_string(),
                group_state: state.to_string(),
                group_type: "share".to_string(),
                ..Default::default()
            });
        }
    });
    groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
    ListGroupsResponse { groups, ..Default::default() }
}
