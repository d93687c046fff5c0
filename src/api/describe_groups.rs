//! DescribeGroups (key 15): state, protocol and members of classic groups.

use strom_protocol::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use strom_protocol::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::authz::{Authz, GROUP_OPERATIONS};
use super::ApiRange;
use crate::coordinator::group::AnyGroup;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 15, min: 0, max: 6, advertised_min: 0 };

/// Describes each group. Unknown groups read as `Dead`; v6 adds GROUP_ID_NOT_FOUND.
pub fn handle(node: &Node, az: &Authz<'_>, version: i16, req: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let loaded = node.groups.is_loaded();
    let groups = req
        .groups
        .into_iter()
        .map(|id| {
            let mut d = DescribedGroup { group_id: id.clone(), group_state: "Dead".into(), ..Default::default() };
            // Kafka: DESCRIBE on each group.
            if !az.group(op::DESCRIBE, &id) {
                d.group_state = String::new();
                d.error_code = ErrorCode::GroupAuthorizationFailed.code();
                return d;
            }
            if az.enabled() && req.include_authorized_operations {
                d.authorized_operations = az.operations(resource::GROUP, &id, GROUP_OPERATIONS);
            }
            if !loaded {
                d.error_code = ErrorCode::CoordinatorLoadInProgress.code();
                return d;
            }
            let found = node.groups.with_group(&id, |g| match g {
                AnyGroup::Classic(c) => {
                    let proto = c.protocol_name.clone().unwrap_or_default();
                    d.group_state = c.state.name().into();
                    d.protocol_type = c.protocol_type.clone().unwrap_or_default();
                    d.protocol_data = proto.clone();
                    d.members = c
                        .members
                        .values()
                        .map(|m| DescribedGroupMember {
                            member_id: m.id.clone(),
                            group_instance_id: m.instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            member_metadata: m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == proto)
                                .map(|(_, b)| b.clone())
                                .unwrap_or_default(),
                            member_assignment: m.assignment.clone(),
                            ..Default::default()
                        })
                        .collect();
                }
                AnyGroup::Consumer(c) => {
                    // A KIP-848 group seen through the classic API: Kafka reports it with
                    // its state and protocol type "consumer" but no classic members.
                    d.group_state = c.state_name().into();
                    d.protocol_type = "consumer".into();
                    if version >= 6 {
                        d.error_code = ErrorCode::GroupIdNotFound.code();
                        d.error_message = Some(format!("group {id} is not a classic group"));
                    }
                }
            });
            if found.is_none() && version >= 6 {
                d.error_code = ErrorCode::GroupIdNotFound.code();
                d.error_message = Some(format!("group {id} not found"));
            }
            d
        })
        .collect();
    DescribeGroupsResponse { groups, ..Default::default() }
}
