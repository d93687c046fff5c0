//! DeleteGroups (key 42): removes groups without members, with their offsets.

use strom_protocol::delete_groups_response::DeletableGroupResult;
use strom_protocol::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 42, min: 0, max: 2, advertised_min: 0 };

/// Deletes each group.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            // Kafka: DELETE on each group.
            let code = match az.group_error(op::DELETE, &g) {
                crate::error::ErrorCode::None => node.groups.delete_group(&node.meta, &g),
                denied => denied,
            };
            DeletableGroupResult { group_id: g, error_code: code.code(), ..Default::default() }
        })
        .collect();
    DeleteGroupsResponse { results, ..Default::default() }
}
