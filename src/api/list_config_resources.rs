//! ListConfigResources (key 74, KIP-1142): the config resources an admin client can
//! describe. Version 0 was ListClientMetricsResources (KIP-714) and lists client-metrics
//! subscriptions only; version 1 lists resources of the requested types.
//!
//! Kafka's `KafkaApis.handleListConfigResources`: an empty type list means every type the
//! request version supports (`ListConfigResourcesRequest.supportedResourceTypes`); any
//! type outside that set fails the whole request with UNSUPPORTED_VERSION; resources are
//! listed type by type in the order GROUP, CLIENT_METRICS, BROKER_LOGGER, BROKER, TOPIC,
//! each type once however often it is named.

use strom_protocol::list_config_resources_response::ConfigResource;
use strom_protocol::{ListConfigResourcesRequest, ListConfigResourcesResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 74, min: 0, max: 1, advertised_min: 0 };

/// `ConfigResource.Type` ids.
const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// The types a request version may name; v1 is exactly the set Kafka 4.1 defined, so a
/// type added later needs a new version (KIP-1142).
fn supported_types(version: i16) -> &'static [i8] {
    if version == 0 {
        &[CLIENT_METRICS]
    } else {
        &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP]
    }
}

/// Lists the resources of the requested types.
///
/// What each type lists here, as Kafka does for a single combined node:
/// - GROUP: groups that have dynamic group configs, whether or not they have members
///   (running groups come from ListGroups), from the metadata image.
/// - CLIENT_METRICS: client-metrics subscriptions. Strom has none.
/// - BROKER_LOGGER and BROKER: this node's id.
/// - TOPIC: every topic, `__consumer_offsets` included, by name.
pub fn handle(
    node: &Node,
    az: &Authz<'_>,
    version: i16,
    req: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    // Kafka: DESCRIBE_CONFIGS on the cluster.
    if !az.cluster(op::DESCRIBE_CONFIGS) {
        return ListConfigResourcesResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let supported = supported_types(version);
    // v0 has no type field: the list is empty and means "client metrics".
    let wanted: &[i8] = if req.resource_types.is_empty() { supported } else { &req.resource_types };
    if wanted.iter().any(|t| !supported.contains(t)) {
        return ListConfigResourcesResponse { error_code: ErrorCode::UnsupportedVersion.code(), ..Default::default() };
    }
    let node_id = node.meta.config.node_id.to_string();
    let mut out = Vec::new();
    let mut add = |resource_type: i8, names: Vec<String>| {
        if wanted.contains(&resource_type) {
            out.extend(names.into_iter().map(|resource_name| ConfigResource {
                resource_name,
                resource_type,
                ..Default::default()
            }));
        }
    };
    let image = node.meta.image();
    add(GROUP, image.configs.keys().filter(|(t, _)| *t == GROUP).map(|(_, name)| name.clone()).collect());
    add(CLIENT_METRICS, Vec::new());
    add(BROKER_LOGGER, vec![node_id.clone()]);
    add(BROKER, vec![node_id]);
    add(TOPIC, node.meta.topics().iter().map(|t| t.name.to_string()).collect());
    ListConfigResourcesResponse { config_resources: out, ..Default::default() }
}
