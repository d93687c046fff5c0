//! CreateTopics (key 19).

use std::collections::BTreeMap;

use strom_protocol::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use strom_protocol::{CreateTopicsRequest, CreateTopicsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::config::topic::{self as topic_config, TOPIC_CONFIGS};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// Versions served.
pub const API: ApiRange = ApiRange { key: 19, min: 2, max: 7, advertised_min: 2 };

/// Creates each topic in turn; one topic's failure does not affect the others.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let c = &node.meta.config;
    let mut results = Vec::with_capacity(req.topics.len());
    // Kafka: CREATE on the cluster, or else on each topic.
    let on_cluster = az.sees(op::CREATE, resource::CLUSTER, super::authz::CLUSTER);
    for t in req.topics {
        let mut result = CreatableTopicResult { name: t.name.clone(), ..Default::default() };
        let outcome = (|| {
            if !on_cluster && !az.topic(op::CREATE, &t.name) {
                return Err((ErrorCode::TopicAuthorizationFailed, "not authorized to create the topic".to_string()));
            }
            let assignments = if t.assignments.is_empty() {
                None
            } else {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    return Err((
                        ErrorCode::InvalidRequest,
                        "give either assignments or partitions and replication factor".to_string(),
                    ));
                }
                let mut a = t.assignments.clone();
                a.sort_by_key(|x| x.partition_index);
                if a.iter().enumerate().any(|(i, x)| x.partition_index != i as i32) {
                    return Err((
                        ErrorCode::InvalidReplicaAssignment,
                        "assignments must name partitions 0, 1, ... once each".to_string(),
                    ));
                }
                Some(a.into_iter().map(|x| x.broker_ids).collect::<Vec<_>>())
            };
            let partitions = match &assignments {
                Some(a) => a.len() as i32,
                None if t.num_partitions == -1 => c.num_partitions,
                None => t.num_partitions,
            };
            let rf = if t.replication_factor == -1 { c.default_replication_factor } else { t.replication_factor };
            let mut configs = BTreeMap::new();
            for cfg in &t.configs {
                let Some(value) = &cfg.value else {
                    return Err((ErrorCode::InvalidConfig, format!("null value for config {}", cfg.name)));
                };
                configs.insert(cfg.name.clone(), value.clone());
            }
            if !crate::metadata::valid_topic_name(&t.name) {
                return Err((ErrorCode::InvalidTopicException, format!("topic name {:?} is not valid", t.name)));
            }
            if crate::metadata::Metadata::is_internal(&t.name) {
                return Err((ErrorCode::TopicAlreadyExists, format!("{} is an internal topic", t.name)));
            }
            let rf_used = assignments.as_ref().and_then(|a| a.first()).map_or(rf, |r| r.len() as i16);
            let topic = node.meta.create_topic_placed(
                &t.name,
                partitions,
                Some(rf),
                assignments,
                configs,
                req.validate_only,
            )?;
            Ok((topic, partitions, rf_used))
        })();
        match outcome {
            Ok((topic, partitions, rf)) => {
                result.topic_id = topic.id;
                result.num_partitions = partitions;
                result.replication_factor = rf;
                result.configs = Some(
                    TOPIC_CONFIGS
                        .iter()
                        .map(|k| {
                            let r = topic_config::resolve(k, &topic.configs, &node.meta.config.explicit);
                            CreatableTopicConfigs {
                                name: k.name.to_string(),
                                value: Some(r.value),
                                config_source: r.source,
                                ..Default::default()
                            }
                        })
                        .collect(),
                );
            }
            Err((code, msg)) => {
                result.error_code = code.code();
                result.error_message = Some(msg);
            }
        }
        results.push(result);
    }
    CreateTopicsResponse { topics: results, ..Default::default() }
}
