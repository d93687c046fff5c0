//! AlterConfigs (key 33) and IncrementalAlterConfigs (key 44) for topics.
//!
//! Broker settings are static in Strom (read from file, env and flags at start), so
//! altering a broker resource is refused with INVALID_REQUEST, as Kafka refuses configs
//! it cannot update dynamically.

use std::collections::BTreeMap;

use strom_protocol::alter_configs_response::AlterConfigsResourceResponse;
use strom_protocol::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use strom_protocol::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::authz::Authz;
use super::ApiRange;
use crate::config::topic as topic_config;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served (AlterConfigs).
pub const API: ApiRange = ApiRange { key: 33, min: 0, max: 2, advertised_min: 0 };
/// Versions served (IncrementalAlterConfigs).
pub const INCREMENTAL_API: ApiRange = ApiRange { key: 44, min: 0, max: 1, advertised_min: 0 };

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_GROUP: i8 = 32;

/// Incremental operations (KIP-339).
const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

type Outcome = Result<(), (ErrorCode, String)>;

fn not_a_topic(resource_type: i8) -> Outcome {
    match resource_type {
        RESOURCE_BROKER => Err((ErrorCode::InvalidRequest, "broker settings cannot be changed at run time".into())),
        other => Err((ErrorCode::InvalidRequest, format!("resource type {other} is not supported"))),
    }
}

fn split(outcome: Outcome) -> (i16, Option<String>) {
    match outcome {
        Ok(()) => (0, None),
        Err((c, m)) => (c.code(), Some(m)),
    }
}

/// AlterConfigs: the given configs become the topic's complete set of overrides.
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            // Kafka: ALTER_CONFIGS on the topic, or on the cluster for a broker.
            let denied = az.config_error(op::ALTER_CONFIGS, r.resource_type, &r.resource_name);
            let outcome = if denied != ErrorCode::None {
                Err((denied, "not authorized to alter its configs".to_string()))
            } else if r.resource_type != RESOURCE_TOPIC {
                not_a_topic(r.resource_type)
            } else {
                r.configs
                    .iter()
                    .map(|c| match &c.value {
                        Some(v) => Ok((c.name.clone(), v.clone())),
                        None => Err((ErrorCode::InvalidRequest, format!("null value for {}", c.name))),
                    })
                    .collect::<Result<BTreeMap<_, _>, _>>()
                    .and_then(|configs| node.meta.set_topic_configs(&r.resource_name, configs, req.validate_only))
            };
            let (error_code, error_message) = split(outcome);
            AlterConfigsResourceResponse {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    AlterConfigsResponse { responses, ..Default::default() }
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT on the current overrides.
pub fn handle_incremental(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let denied = az.config_error(op::ALTER_CONFIGS, r.resource_type, &r.resource_name);
            let outcome = if denied != ErrorCode::None {
                Err((denied, "not authorized to alter its configs".to_string()))
            } else if r.resource_type == RESOURCE_GROUP {
                alter_group(node, &r.resource_name, &r.configs, req.validate_only)
            } else if r.resource_type != RESOURCE_TOPIC {
                not_a_topic(r.resource_type)
            } else {
                match node.meta.topic(&r.resource_name) {
                    None => {
                        Err((ErrorCode::UnknownTopicOrPartition, format!("topic {} does not exist", r.resource_name)))
                    }
                    Some(topic) => {
                        let mut configs = topic.configs.clone();
                        let mut result = Ok(());
                        for c in &r.configs {
                            let value = c.value.clone().unwrap_or_default();
                            let is_list =
                                topic_config::lookup(&c.name).is_some_and(|k| k.ty == crate::config::ConfigType::List);
                            let current = configs
                                .get(&c.name)
                                .cloned()
                                .unwrap_or_else(|| node.meta.topic_setting(&topic, &c.name));
                            let items = |s: &str| {
                                s.split(',').filter(|x| !x.is_empty()).map(str::to_string).collect::<Vec<_>>()
                            };
                            match c.config_operation {
                                OP_SET => {
                                    configs.insert(c.name.clone(), value);
                                }
                                OP_DELETE => {
                                    configs.remove(&c.name);
                                }
                                OP_APPEND | OP_SUBTRACT if !is_list => {
                                    result = Err((ErrorCode::InvalidConfig, format!("{} is not a list", c.name)));
                                }
                                OP_APPEND => {
                                    let mut v = items(&current);
                                    v.extend(items(&value).into_iter().filter(|x| !items(&current).contains(x)));
                                    configs.insert(c.name.clone(), v.join(","));
                                }
                                OP_SUBTRACT => {
                                    let drop = items(&value);
                                    let v: Vec<String> =
                                        items(&current).into_iter().filter(|x| !drop.contains(x)).collect();
                                    configs.insert(c.name.clone(), v.join(","));
                                }
                                other => {
                                    result = Err((ErrorCode::InvalidRequest, format!("unknown operation {other}")))
                                }
                            }
                        }
                        result.and_then(|()| node.meta.set_topic_configs(&r.resource_name, configs, req.validate_only))
                    }
                }
            };
            let (error_code, error_message) = split(outcome);
            IncrementalResult {
                error_code,
                error_message,
                resource_type: r.resource_type,
                resource_name: r.resource_name,
                ..Default::default()
            }
        })
        .collect();
    IncrementalAlterConfigsResponse { responses, ..Default::default() }
}

/// IncrementalAlterConfigs on a GROUP (KIP-848, KIP-932): SET and DELETE on the group's
/// overrides; group configs have no lists, so APPEND and SUBTRACT are INVALID_CONFIG, as
/// in Kafka. Kafka's legacy AlterConfigs does not take groups, and neither does Strom's.
fn alter_group(
    node: &Node,
    group: &str,
    ops: &[strom_protocol::incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Outcome {
    let mut configs = node.meta.group_configs(group);
    for c in ops {
        match c.config_operation {
            OP_SET => {
                configs.insert(c.name.clone(), c.value.clone().unwrap_or_default());
            }
            OP_DELETE => {
                configs.remove(&c.name);
            }
            OP_APPEND | OP_SUBTRACT => {
                return Err((ErrorCode::InvalidConfig, format!("{} is not a list", c.name)));
            }
            other => return Err((ErrorCode::InvalidRequest, format!("unknown operation {other}"))),
        }
    }
    node.meta.set_group_configs(group, configs, validate_only)
}
