//! Metadata (key 3): brokers, topics and partition leaders; creates topics on demand
//! when `auto.create.topics.enable` is on and the client allows it (v4+).

use std::collections::BTreeMap;

use strom_protocol::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use strom_protocol::{MetadataRequest, MetadataResponse, Uuid};

use super::authz::{Authz, CLUSTER, CLUSTER_OPERATIONS, TOPIC_OPERATIONS};
use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::metadata::{valid_topic_name, Metadata, Topic};
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 3, min: 0, max: 13, advertised_min: 0 };

fn describe(node: &Node, t: &Topic) -> MetadataResponseTopic {
    MetadataResponseTopic {
        name: Some(t.name.to_string()),
        topic_id: t.id,
        is_internal: Metadata::is_internal(&t.name),
        partitions: t
            .partitions
            .iter()
            .map(|p| {
                let v = node.partition_view(t, p.index);
                MetadataResponsePartition {
                    // A partition whose leader is fenced has none (Kafka's answer).
                    error_code: if v.leader < 0 { ErrorCode::LeaderNotAvailable.code() } else { 0 },
                    partition_index: p.index,
                    leader_id: v.leader,
                    leader_epoch: v.leader_epoch,
                    replica_nodes: v.replicas,
                    isr_nodes: v.isr,
                    offline_replicas: v.offline,
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    }
}

fn error_topic(name: Option<String>, id: Uuid, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic { error_code: code.code(), name, topic_id: id, ..Default::default() }
}

/// Answers a metadata request. With an authorizer (Kafka's rules): every topic means
/// every topic the principal may DESCRIBE; a named topic it may not describe is
/// TOPIC_AUTHORIZATION_FAILED whether or not it exists; auto-creation needs CREATE on
/// the cluster or the topic.
pub fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    version: i16,
    req: MetadataRequest,
) -> MetadataResponse {
    let c = &node.meta.config;
    let topic_ops = az.enabled() && req.include_topic_authorized_operations;
    let describe = |node: &Node, t: &Topic| {
        let mut d = describe(node, t);
        if topic_ops {
            d.topic_authorized_operations = az.operations(resource::TOPIC, &t.name, TOPIC_OPERATIONS);
        }
        d
    };
    let denied = |name: Option<String>, id: Uuid| error_topic(name, id, ErrorCode::TopicAuthorizationFailed);
    // v0: an empty list means every topic; v1+: null means every topic.
    let wanted = match req.topics {
        None => None,
        Some(t) if t.is_empty() && version == 0 => None,
        Some(t) => Some(t),
    };
    let topics = match wanted {
        None => node
            .meta
            .topics()
            .iter()
            .filter(|t| az.sees(op::DESCRIBE, resource::TOPIC, &t.name))
            .map(|t| describe(node, t))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|req_topic| {
                let Some(name) = req_topic.name else {
                    return match node.meta.topic_by_id(&req_topic.topic_id) {
                        Some(t) if !az.topic(op::DESCRIBE, &t.name) => denied(None, req_topic.topic_id),
                        Some(t) => describe(node, &t),
                        None => error_topic(None, req_topic.topic_id, ErrorCode::UnknownTopicId),
                    };
                };
                if !az.topic(op::DESCRIBE, &name) {
                    return denied(Some(name), Uuid::ZERO);
                }
                if let Some(t) = node.meta.topic(&name) {
                    return describe(node, &t);
                }
                if !valid_topic_name(&name) {
                    return error_topic(Some(name), Uuid::ZERO, ErrorCode::InvalidTopicException);
                }
                if !(c.auto_create_topics && req.allow_auto_topic_creation) {
                    return error_topic(Some(name), Uuid::ZERO, ErrorCode::UnknownTopicOrPartition);
                }
                if az.enabled() && !az.sees(op::CREATE, resource::CLUSTER, CLUSTER) && !az.topic(op::CREATE, &name) {
                    return denied(Some(name), Uuid::ZERO);
                }
                match node.meta.create_topic(&name, c.num_partitions, BTreeMap::new(), false) {
                    Ok(t) => describe(node, &t),
                    // Lost a race with another creator: describe the winner's topic.
                    Err((ErrorCode::TopicAlreadyExists, _)) => match node.meta.topic(&name) {
                        Some(t) => describe(node, &t),
                        None => error_topic(Some(name), Uuid::ZERO, ErrorCode::LeaderNotAvailable),
                    },
                    Err((code, msg)) => {
                        tracing::warn!(topic = name, error = msg, "auto-creating topic failed");
                        error_topic(Some(name), Uuid::ZERO, code)
                    }
                }
            })
            .collect(),
    };
    MetadataResponse {
        brokers: node
            .brokers(ctx.listener)
            .into_iter()
            .map(|b| MetadataResponseBroker {
                node_id: b.id,
                host: b.host,
                port: b.port,
                rack: b.rack,
                ..Default::default()
            })
            .collect(),
        cluster_id: Some(node.meta.cluster_id.clone()),
        controller_id: node.controller_for_clients(),
        topics,
        cluster_authorized_operations: if az.enabled() && req.include_cluster_authorized_operations {
            az.operations(resource::CLUSTER, CLUSTER, CLUSTER_OPERATIONS)
        } else {
            i32::MIN
        },
        ..Default::default()
    }
}
