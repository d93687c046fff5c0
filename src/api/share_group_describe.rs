//! ShareGroupDescribe (key 77): share groups' members, subscriptions and assignments.

use strom_protocol::share_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use strom_protocol::{ShareGroupDescribeRequest, ShareGroupDescribeResponse};

use super::authz::{Authz, GROUP_OPERATIONS};
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 77, min: 1, max: 1, advertised_min: 1 };

/// Describes each group; a group that is not a share group (or none) is GROUP_ID_NOT_FOUND,
/// as in Kafka.
pub fn handle(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let groups = req
        .group_ids
        .into_iter()
        .map(|id| {
            let mut d = DescribedGroup { group_id: id.clone(), group_state: "Dead".into(), ..Default::default() };
            if !az.group(op::DESCRIBE, &id) {
                d.group_state = String::new();
                d.error_code = ErrorCode::GroupAuthorizationFailed.code();
                return d;
            }
            if az.enabled() && req.include_authorized_operations {
                d.authorized_operations = az.operations(resource::GROUP, &id, GROUP_OPERATIONS);
            }
            match node.groups.describe_share_group(&id) {
                Err(code) => {
                    d.error_code = code.code();
                    if code == ErrorCode::GroupIdNotFound {
                        d.error_message = Some(format!("Group {id} not found or not a share group."));
                    }
                }
                Ok(g) => {
                    d.group_state = g.state.to_string();
                    d.group_epoch = g.group_epoch;
                    d.assignment_epoch = g.assignment_epoch;
                    d.assignor_name = g.assignor_name.to_string();
                    d.members = g
                        .members
                        .into_iter()
                        .map(|m| Member {
                            member_id: m.member_id,
                            rack_id: m.rack_id,
                            member_epoch: m.member_epoch,
                            client_id: m.client_id,
                            client_host: m.client_host,
                            subscribed_topic_names: m.subscribed_topic_names,
                            assignment: Assignment {
                                topic_partitions: m
                                    .assignment
                                    .into_iter()
                                    .map(|(topic_id, partitions)| TopicPartitions {
                                        topic_id: strom_protocol::Uuid(topic_id),
                                        topic_name: node
                                            .meta
                                            .topic_by_id(&strom_protocol::Uuid(topic_id))
                                            .map(|t| t.name.to_string())
                                            .unwrap_or_default(),
                                        partitions,
                                        ..Default::default()
                                    })
                                    .collect(),
                                ..Default::default()
                            },
                            ..Default::default()
                        })
                        .collect();
                }
            }
            d
        })
        .collect();
    ShareGroupDescribeResponse { groups, ..Default::default() }
}
