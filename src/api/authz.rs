//! Request authorization (issue 16, ADR 0014): what each handler asks before it acts.
//! With `authorizer.class.name` set to Kafka's StandardAuthorizer, every check goes to
//! the ACL bindings of the metadata image (`security::acl`); without it every request is
//! allowed, as Kafka without an authorizer.
//!
//! Handlers check the operation Kafka's `KafkaApis` checks for the same request and
//! answer with Kafka's error for the resource type (TOPIC_AUTHORIZATION_FAILED,
//! GROUP_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED,
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED). A denial is counted
//! (`strom_authorization_denials`) and logged at INFO on the `strom::authorizer` target
//! with the principal and the client address; lists filtered by what the principal may
//! describe (Metadata for all topics, ListGroups, ListTransactions) drop entries silently,
//! as Kafka's `logIfDenied = false` does.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::RequestContext;
use crate::error::ErrorCode;
use crate::metadata::image::Image;
use crate::node::Node;
use crate::security::acl::{op, resource, Authorizer};

/// The cluster resource's name in ACLs.
pub const CLUSTER: &str = "kafka-cluster";

/// One request's view of the authorizer.
pub struct Authz<'a> {
    node: &'a Node,
    ctx: &'a RequestContext,
    /// The image whose bindings decide and the client's address as ACLs name hosts;
    /// `None` without an authorizer (nothing is computed on that path).
    image: Option<(Arc<Image>, String)>,
}

impl<'a> Authz<'a> {
    /// The checks for one request of `ctx`'s connection.
    pub fn new(node: &'a Node, ctx: &'a RequestContext) -> Authz<'a> {
        let image = node.meta.config.authorizer.then(|| (node.meta.image(), ctx.peer.ip().to_string()));
        Authz { node, ctx, image }
    }

    /// Whether an authorizer is configured.
    pub fn enabled(&self) -> bool {
        self.image.is_some()
    }

    /// The authenticated principal.
    pub fn principal(&self) -> &str {
        &self.ctx.principal
    }

    fn decide(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        let Some((image, host)) = &self.image else { return true };
        let config = &self.node.meta.config;
        Authorizer {
            bindings: &image.acls,
            super_users: &config.super_users,
            allow_if_no_acl: config.allow_everyone_if_no_acl_found,
        }
        .authorize(&self.ctx.principal, host, resource_type, name, operation)
    }

    /// Whether the principal may perform `operation` on the resource; a denial is
    /// counted and logged.
    pub fn allows(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        if self.decide(operation, resource_type, name) {
            return true;
        }
        if let Some(c) = crate::metrics::AUTHORIZATION_DENIED.get(resource_type as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(
            target: "strom::authorizer",
            principal = %self.ctx.principal,
            client = %self.ctx.peer,
            operation = op_name(operation),
            resource_type = resource_name(resource_type),
            resource = name,
            "denied"
        );
        false
    }

    /// Whether the principal may see the resource in a list (not logged when it may not).
    pub fn sees(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        self.decide(operation, resource_type, name)
    }

    /// Whether the principal may perform `operation` on some resource of the type
    /// ([`Authorizer::authorize_any`]); not logged.
    pub fn may_on_some(&self, operation: i8, resource_type: i8) -> bool {
        let Some((image, host)) = &self.image else { return true };
        let config = &self.node.meta.config;
        Authorizer {
            bindings: &image.acls,
            super_users: &config.super_users,
            allow_if_no_acl: config.allow_everyone_if_no_acl_found,
        }
        .authorize_any(&self.ctx.principal, host, resource_type, operation)
    }

    /// `operation` on topic `name`.
    pub fn topic(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::TOPIC, name)
    }

    /// `operation` on group `name`.
    pub fn group(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::GROUP, name)
    }

    /// `operation` on the cluster.
    pub fn cluster(&self, operation: i8) -> bool {
        self.allows(operation, resource::CLUSTER, CLUSTER)
    }

    /// `operation` on transactional id `id`.
    pub fn txn_id(&self, operation: i8, id: &str) -> bool {
        self.allows(operation, resource::TRANSACTIONAL_ID, id)
    }

    /// NONE if the principal may perform `operation` on the resource, else Kafka's
    /// error for the resource type (TOPIC_, GROUP_, CLUSTER_ or
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    pub fn error(&self, operation: i8, resource_type: i8, name: &str) -> ErrorCode {
        if self.allows(operation, resource_type, name) {
            return ErrorCode::None;
        }
        match resource_type {
            resource::TOPIC => ErrorCode::TopicAuthorizationFailed,
            resource::GROUP => ErrorCode::GroupAuthorizationFailed,
            resource::TRANSACTIONAL_ID => ErrorCode::TransactionalIdAuthorizationFailed,
            _ => ErrorCode::ClusterAuthorizationFailed,
        }
    }

    /// [`Authz::error`] for topic `name`.
    pub fn topic_error(&self, operation: i8, name: &str) -> ErrorCode {
        self.error(operation, resource::TOPIC, name)
    }

    /// [`Authz::error`] for group `name`.
    pub fn group_error(&self, operation: i8, name: &str) -> ErrorCode {
        self.error(operation, resource::GROUP, name)
    }

    /// [`Authz::error`] for the cluster.
    pub fn cluster_error(&self, operation: i8) -> ErrorCode {
        self.error(operation, resource::CLUSTER, CLUSTER)
    }

    /// [`Authz::error`] for transactional id `id`.
    pub fn txn_id_error(&self, operation: i8, id: &str) -> ErrorCode {
        self.error(operation, resource::TRANSACTIONAL_ID, id)
    }

    /// A config resource's error for `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS),
    /// by DescribeConfigs' resource types: topics (2) are checked on the topic, brokers
    /// (4) and broker loggers (8) on the cluster, groups (32) on the group.
    pub fn config_error(&self, operation: i8, config_resource_type: i8, name: &str) -> ErrorCode {
        match config_resource_type {
            2 => self.topic_error(operation, name),
            4 | 8 => self.cluster_error(operation),
            32 => self.group_error(operation, name),
            _ => ErrorCode::None,
        }
    }

    /// Whether a request carrying a replica id comes from a broker: Kafka asks for
    /// CLUSTER_ACTION on the cluster (follower fetches, OffsetForLeaderEpoch of a
    /// follower, WriteTxnMarkers), which no client should hold.
    pub fn cluster_action(&self) -> bool {
        self.cluster(op::CLUSTER_ACTION)
    }

    /// The operations of `ops` the principal may perform on the resource, as the
    /// `*_authorized_operations` bit fields of Metadata and the describe APIs.
    pub fn operations(&self, resource_type: i8, name: &str, ops: &[i8]) -> i32 {
        ops.iter().filter(|o| self.sees(**o, resource_type, name)).fold(0, |bits, o| bits | (1 << *o))
    }
}

/// The operations a topic has (Kafka's `AclEntry.supportedOperations(TOPIC)`).
pub const TOPIC_OPERATIONS: &[i8] =
    &[op::READ, op::WRITE, op::CREATE, op::DESCRIBE, op::DELETE, op::ALTER, op::DESCRIBE_CONFIGS, op::ALTER_CONFIGS];
/// The operations a group has.
pub const GROUP_OPERATIONS: &[i8] = &[op::READ, op::DESCRIBE, op::DELETE, op::DESCRIBE_CONFIGS, op::ALTER_CONFIGS];
/// The operations the cluster has.
pub const CLUSTER_OPERATIONS: &[i8] = &[
    op::CREATE,
    op::CLUSTER_ACTION,
    op::DESCRIBE_CONFIGS,
    op::ALTER_CONFIGS,
    op::IDEMPOTENT_WRITE,
    op::ALTER,
    op::DESCRIBE,
];

fn op_name(operation: i8) -> &'static str {
    match operation {
        op::ALL => "ALL",
        op::READ => "READ",
        op::WRITE => "WRITE",
        op::CREATE => "CREATE",
        op::DELETE => "DELETE",
        op::ALTER => "ALTER",
        op::DESCRIBE => "DESCRIBE",
        op::CLUSTER_ACTION => "CLUSTER_ACTION",
        op::DESCRIBE_CONFIGS => "DESCRIBE_CONFIGS",
        op::ALTER_CONFIGS => "ALTER_CONFIGS",
        op::IDEMPOTENT_WRITE => "IDEMPOTENT_WRITE",
        op::CREATE_TOKENS => "CREATE_TOKENS",
        op::DESCRIBE_TOKENS => "DESCRIBE_TOKENS",
        _ => "UNKNOWN",
    }
}

fn resource_name(resource_type: i8) -> &'static str {
    match resource_type {
        resource::TOPIC => "TOPIC",
        resource::GROUP => "GROUP",
        resource::CLUSTER => "CLUSTER",
        resource::TRANSACTIONAL_ID => "TRANSACTIONAL_ID",
        resource::DELEGATION_TOKEN => "DELEGATION_TOKEN",
        resource::USER => "USER",
        _ => "UNKNOWN",
    }
}
