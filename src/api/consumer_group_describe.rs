//! ConsumerGroupDescribe (key 69): KIP-848 groups with epochs and assignments.

use strom_protocol::consumer_group_describe_response::{Assignment, DescribedGroup, Member, TopicPartitions};
use strom_protocol::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};

use super::authz::{Authz, GROUP_OPERATIONS};
use super::ApiRange;
use crate::coordinator::group::assignor;
use crate::coordinator::group::consumer::TopicsView;
use crate::coordinator::group::AnyGroup;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 69, min: 0, max: 1, advertised_min: 0 };

fn convert(a: &assignor::Assignment, topics: &TopicsView) -> Assignment {
    Assignment {
        topic_partitions: a
            .iter()
            .map(|(id, ps)| TopicPartitions {
                topic_id: *id,
                topic_name: topics.name(id).unwrap_or_default().to_string(),
                partitions: ps.iter().copied().collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Describes each group.
pub fn handle(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let topics = TopicsView::from_metadata(&node.meta);
    let groups = req
        .group_ids
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
            if !node.groups.is_loaded() {
                d.error_code = ErrorCode::CoordinatorLoadInProgress.code();
                return d;
            }
            let found = node.groups.with_group(&id, |g| match g {
                AnyGroup::Consumer(c) => {
                    d.group_state = c.state_name().into();
                    d.group_epoch = c.group_epoch;
                    d.assignment_epoch = c.assignment_epoch;
                    d.assignor_name = c.assignor.clone();
                    d.members = c
                        .members
                        .values()
                        .map(|m| Member {
                            member_id: m.id.clone(),
                            instance_id: m.instance_id.clone(),
                            rack_id: m.rack_id.clone(),
                            member_epoch: m.epoch,
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            subscribed_topic_names: m.subscribed_topics.clone(),
                            subscribed_topic_regex: m.subscribed_regex.clone(),
                            assignment: convert(&m.assigned, &topics),
                            target_assignment: convert(&c.target.get(&m.id).cloned().unwrap_or_default(), &topics),
                            // KIP-1099: 0 = classic protocol (a migrating member), 1 = consumer.
                            member_type: if m.classic.is_some() { 0 } else { 1 },
                            ..Default::default()
                        })
                        .collect();
                }
                AnyGroup::Classic(_) => {
                    d.error_code = ErrorCode::GroupIdNotFound.code();
                    d.error_message = Some(format!("group {id} is not a consumer group"));
                }
            });
            if found.is_none() {
                d.error_code = ErrorCode::GroupIdNotFound.code();
                d.error_message = Some(format!("group {id} not found"));
            }
            d
        })
        .collect();
    ConsumerGroupDescribeResponse { groups, ..Default::default() }
}
