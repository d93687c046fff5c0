//! DescribeConfigs (key 32): topic and broker configuration, with sources and synonyms.

use strom_protocol::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use strom_protocol::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::config::topic::{self as topic_config, SOURCE_DEFAULT, SOURCE_STATIC_BROKER, TOPIC_CONFIGS};
use crate::config::BROKER_DEFAULTS;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 32, min: 1, max: 4, advertised_min: 1 };

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

struct Entry {
    name: String,
    /// `None` for a setting with no value (Kafka's null default).
    value: Option<String>,
    source: i8,
    ty: i8,
    doc: &'static str,
    read_only: bool,
    synonyms: Vec<(String, Option<String>, i8)>,
}

fn topic_entries(node: &Node, name: &str) -> Result<Vec<Entry>, ErrorCode> {
    let topic = node.meta.topic(name).ok_or(ErrorCode::UnknownTopicOrPartition)?;
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|k| {
            let r = topic_config::resolve(k, &topic.configs, &node.meta.config.explicit);
            Entry {
                name: k.name.into(),
                value: Some(r.value),
                source: r.source,
                ty: k.ty as i8,
                doc: "",
                read_only: false,
                synonyms: r.synonyms.into_iter().map(|(n, v, s)| (n, Some(v), s)).collect(),
            }
        })
        .collect())
}

/// Broker settings: Strom's table, then the broker synonyms of topic configs it lacks.
fn broker_entries(node: &Node) -> Vec<Entry> {
    let own = BROKER_DEFAULTS.iter().map(|(k, default, ty, doc)| (*k, *default, *ty, *doc));
    let synonyms = topic_config::broker_synonym_keys()
        .filter(|(k, ..)| !BROKER_DEFAULTS.iter().any(|(b, ..)| b == k))
        .map(|(k, default, ty)| (k, default, ty, "Broker default of a topic config."));
    let mut seen = std::collections::HashSet::new();
    own.chain(synonyms)
        .filter(|(k, ..)| seen.insert(*k))
        .map(|(k, default, ty, doc)| {
            let explicit = node.meta.config.explicit.get(k);
            let value = explicit.cloned().or_else(|| Some(default.to_string()).filter(|d| !d.is_empty()));
            let source = if explicit.is_some() { SOURCE_STATIC_BROKER } else { SOURCE_DEFAULT };
            Entry {
                name: k.to_string(),
                value: value.clone(),
                source,
                ty: ty as i8,
                doc,
                // Broker settings cannot change at run time yet.
                read_only: true,
                synonyms: if value.is_some() { vec![(k.to_string(), value, source)] } else { Vec::new() },
            }
        })
        .collect()
}

/// A group's configs: its overrides (dynamic group configs), else the broker setting that
/// gives the default, else Kafka's default. Any group id may be described, as in Kafka.
fn group_entries(node: &Node, group: &str) -> Vec<Entry> {
    const SOURCE_DYNAMIC_GROUP: i8 = 8;
    let overrides = node.meta.group_configs(group);
    crate::config::group::GROUP_CONFIGS
        .iter()
        .map(|k| {
            let broker = k.broker_synonym.map(|b| {
                let explicit = node.meta.config.explicit.get(b).cloned();
                let source = if explicit.is_some() { SOURCE_STATIC_BROKER } else { SOURCE_DEFAULT };
                (b.to_string(), explicit.unwrap_or_else(|| k.default.to_string()), source)
            });
            let (value, source) = match (overrides.get(k.name), &broker) {
                (Some(v), _) => (v.clone(), SOURCE_DYNAMIC_GROUP),
                (None, Some((_, v, source))) => (v.clone(), *source),
                (None, None) => (k.default.to_string(), SOURCE_DEFAULT),
            };
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(k.name) {
                synonyms.push((k.name.to_string(), Some(v.clone()), SOURCE_DYNAMIC_GROUP));
            }
            if let Some((name, v, source)) = broker {
                synonyms.push((name, Some(v), source));
            }
            Entry {
                name: k.name.to_string(),
                value: Some(value),
                source,
                ty: k.ty as i8,
                doc: "",
                read_only: false,
                synonyms,
            }
        })
        .collect()
}

/// Describes each requested resource.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|res| {
            // Kafka: DESCRIBE_CONFIGS on the topic, or on the cluster for a broker.
            let denied = az.config_error(op::DESCRIBE_CONFIGS, res.resource_type, &res.resource_name);
            let entries = match res.resource_type {
                _ if denied != ErrorCode::None => Err((denied, "not authorized to describe its configs".to_string())),
                RESOURCE_TOPIC => topic_entries(node, &res.resource_name)
                    .map_err(|c| (c, format!("topic {} does not exist", res.resource_name))),
                RESOURCE_BROKER
                    if res.resource_name.is_empty() || res.resource_name == node.meta.config.node_id.to_string() =>
                {
                    Ok(broker_entries(node))
                }
                RESOURCE_BROKER => {
                    Err((ErrorCode::InvalidRequest, format!("broker {} is not this broker", res.resource_name)))
                }
                RESOURCE_GROUP => Ok(group_entries(node, &res.resource_name)),
                other => Err((ErrorCode::InvalidRequest, format!("resource type {other} is not supported"))),
            };
            let mut result = DescribeConfigsResult {
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                ..Default::default()
            };
            match entries {
                Ok(entries) => {
                    result.error_message = None;
                    result.configs = entries
                        .into_iter()
                        .filter(|e| res.configuration_keys.as_ref().is_none_or(|keys| keys.contains(&e.name)))
                        .map(|e| DescribeConfigsResourceResult {
                            name: e.name,
                            value: e.value,
                            read_only: e.read_only,
                            config_source: e.source,
                            is_default: e.source == SOURCE_DEFAULT,
                            is_sensitive: false,
                            synonyms: if req.include_synonyms {
                                e.synonyms
                                    .into_iter()
                                    .map(|(name, value, source)| DescribeConfigsSynonym {
                                        name,
                                        value,
                                        source,
                                        ..Default::default()
                                    })
                                    .collect()
                            } else {
                                Vec::new()
                            },
                            config_type: e.ty,
                            documentation: if req.include_documentation { Some(e.doc.to_string()) } else { None },
                            ..Default::default()
                        })
                        .collect();
                }
                Err((code, msg)) => {
                    result.error_code = code.code();
                    result.error_message = Some(msg);
                }
            }
            result
        })
        .collect();
    DescribeConfigsResponse { results, ..Default::default() }
}
