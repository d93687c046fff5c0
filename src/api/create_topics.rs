//! CreateTopics (key 19).

use std::collections::BTreeMap;

use strom_protocol::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use strom_protocol::{CreateTopicsRequest, CreateTopicsResponse};

use super::ApiRange;
use crate::config::topic::{self as topic_config, TOPIC_CONFIGS};
use crate::error::ErrorCode;
use crate::node::Node;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 19, min: 2, max: 7, advertised_min: 2 };

/// Creates each topic in turn; one topic's failure does not affect the others.
pub fn handle(node: &Node, _version: i16, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let c = &node.meta.config;
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let mut result = CreatableTopicResult { name: t.name.clone(), ..Default::default() };
        let outcome = (|| {
            let partitions = if !t.assignments.is_empty() {
                if t.num_partitions != -1 || t.replication_factor != -1 {
                    return Err((
                        ErrorCode::InvalidRequest,
                        "give either assignments or partitions and replication factor".to_string(),
                    ));
                }
                if t.assignments.iter().any(|a| a.broker_ids != [c.node_id]) {
                    return Err((
                        ErrorCode::InvalidReplicaAssignment,
                        format!("this cluster has one broker, id {}", c.node_id),
                    ));
                }
                t.assignments.len() as i32
            } else if t.num_partitions == -1 {
                c.num_partitions
            } else {
                t.num_partitions
            };
            let rf = if t.replication_factor == -1 { c.default_replication_factor } else { t.replication_factor };
            if t.assignments.is_empty() && rf != 1 {
                return Err((
                    ErrorCode::InvalidReplicationFactor,
                    format!("replication factor {rf} is larger than the 1 available broker"),
                ));
            }
            let mut configs = BTreeMap::new();
            for cfg in &t.configs {
                let Some(value) = &cfg.value else {
                    return Err((ErrorCode::InvalidConfig, format!("null value for config {}", cfg.name)));
                };
                configs.insert(cfg.name.clone(), value.clone());
            }
            let topic = node.meta.create_topic(&t.name, partitions, configs, req.validate_only)?;
            Ok((topic, partitions))
        })();
        match outcome {
            Ok((topic, partitions)) => {
                result.topic_id = topic.id;
                result.num_partitions = partitions;
                result.replication_factor = 1;
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
