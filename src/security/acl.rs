//! ACLs with Kafka's StandardAuthorizer semantics (KIP-140, KIP-290, KIP-801): bindings
//! of a resource pattern (type, name, LITERAL or PREFIXED; the literal name `*` matches
//! every resource of the type) to an entry (principal or `User:*`, host or `*`,
//! operation, ALLOW or DENY). A request is allowed for a super user; otherwise a
//! matching DENY wins over any ALLOW; an ALLOW of ALL, of the operation, or of an
//! operation implying it (READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS
//! implies DESCRIBE_CONFIGS) allows it; with no binding on the resource at all,
//! `allow.everyone.if.no.acl.found` decides (false by default). Pure data and logic: the
//! bindings live in the metadata log (ADR 0014).

use std::collections::BTreeSet;

/// Resource types (Kafka's `ResourceType` codes).
pub mod resource {
    /// Matches any type (filters only).
    pub const ANY: i8 = 1;
    /// A topic.
    pub const TOPIC: i8 = 2;
    /// A consumer group.
    pub const GROUP: i8 = 3;
    /// The cluster (`kafka-cluster`).
    pub const CLUSTER: i8 = 4;
    /// A transactional id.
    pub const TRANSACTIONAL_ID: i8 = 5;
    /// A delegation token.
    pub const DELEGATION_TOKEN: i8 = 6;
    /// A user (for CREATE_TOKENS / DESCRIBE_TOKENS).
    pub const USER: i8 = 7;
}

/// Pattern types (Kafka's `PatternType` codes).
pub mod pattern {
    /// Matches any pattern type (filters only).
    pub const ANY: i8 = 1;
    /// Filters: every binding that would apply to the named resource.
    pub const MATCH: i8 = 2;
    /// The name is the resource's name (or `*`).
    pub const LITERAL: i8 = 3;
    /// The name is a prefix of the resources' names.
    pub const PREFIXED: i8 = 4;
}

/// Operations (Kafka's `AclOperation` codes).
pub mod op {
    /// Matches any operation (filters only).
    pub const ANY: i8 = 1;
    /// Every operation.
    pub const ALL: i8 = 2;
    /// Read (fetch, commit offsets, join a group).
    pub const READ: i8 = 3;
    /// Write (produce).
    pub const WRITE: i8 = 4;
    /// Create (topics, on the cluster or the topic).
    pub const CREATE: i8 = 5;
    /// Delete (topics, groups, records).
    pub const DELETE: i8 = 6;
    /// Alter (partitions, ACLs, credentials on the cluster).
    pub const ALTER: i8 = 7;
    /// Describe (metadata, offsets, groups).
    pub const DESCRIBE: i8 = 8;
    /// Inter-broker actions (replica fetches, markers).
    pub const CLUSTER_ACTION: i8 = 9;
    /// Describe configs.
    pub const DESCRIBE_CONFIGS: i8 = 10;
    /// Alter configs.
    pub const ALTER_CONFIGS: i8 = 11;
    /// Idempotent produce (on the cluster, before KIP-679 made WRITE enough).
    pub const IDEMPOTENT_WRITE: i8 = 12;
    /// Create delegation tokens.
    pub const CREATE_TOKENS: i8 = 13;
    /// Describe delegation tokens.
    pub const DESCRIBE_TOKENS: i8 = 14;
}

/// Permission types (Kafka's `AclPermissionType` codes).
pub mod permission {
    /// Matches any permission (filters only).
    pub const ANY: i8 = 1;
    /// Denies.
    pub const DENY: i8 = 2;
    /// Allows.
    pub const ALLOW: i8 = 3;
}

/// One ACL binding: the metadata log's record is the binding itself (ADR 0014).
pub type Binding = strom_protocol::metadata_record::AclBinding;

/// A filter over bindings (DescribeAcls, DeleteAcls): ANY and null match everything;
/// MATCH patterns match every binding that applies to the named resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Resource type or ANY.
    pub resource_type: i8,
    /// Resource name, or `None` for any.
    pub resource_name: Option<String>,
    /// LITERAL, PREFIXED, ANY or MATCH.
    pub pattern_type: i8,
    /// Principal, or `None` for any.
    pub principal: Option<String>,
    /// Host, or `None` for any.
    pub host: Option<String>,
    /// Operation or ANY.
    pub operation: i8,
    /// Permission or ANY.
    pub permission: i8,
}

/// Why a binding cannot be created (Kafka answers INVALID_REQUEST with such a message).
pub fn validate(b: &Binding) -> Result<(), String> {
    if !(resource::TOPIC..=resource::USER).contains(&b.resource_type) {
        return Err(format!("resource type {} cannot be used in an ACL", b.resource_type));
    }
    if b.pattern_type != pattern::LITERAL && b.pattern_type != pattern::PREFIXED {
        return Err(format!("pattern type {} cannot be used in an ACL (LITERAL or PREFIXED)", b.pattern_type));
    }
    if !(op::ALL..=op::DESCRIBE_TOKENS).contains(&b.operation) {
        return Err(format!("operation {} cannot be used in an ACL", b.operation));
    }
    if b.permission != permission::ALLOW && b.permission != permission::DENY {
        return Err(format!("permission type {} cannot be used in an ACL", b.permission));
    }
    if b.resource_name.is_empty() {
        return Err("the resource name is empty".into());
    }
    if b.resource_type == resource::CLUSTER && b.resource_name != "kafka-cluster" {
        return Err("the cluster resource is named kafka-cluster".into());
    }
    let Some((kind, name)) = b.principal.split_once(':') else {
        return Err(format!("principal {:?} is not of the form Type:name", b.principal));
    };
    if kind.is_empty() || name.is_empty() {
        return Err(format!("principal {:?} is not of the form Type:name", b.principal));
    }
    if b.host.is_empty() {
        return Err("the host is empty (use * for any)".into());
    }
    Ok(())
}

fn pattern_applies(b: &Binding, resource_type: i8, name: &str) -> bool {
    b.resource_type == resource_type
        && match b.pattern_type {
            pattern::LITERAL => b.resource_name == name || b.resource_name == "*",
            pattern::PREFIXED => name.starts_with(&b.resource_name),
            _ => false,
        }
}

impl Filter {
    /// Whether `b` passes this filter.
    pub fn matches(&self, b: &Binding) -> bool {
        let resource = (self.resource_type == resource::ANY || self.resource_type == b.resource_type)
            && match (self.pattern_type, &self.resource_name) {
                (pattern::MATCH, Some(name)) => pattern_applies(b, b.resource_type, name),
                (pattern::MATCH, None) | (pattern::ANY, None) => true,
                (pattern::ANY, Some(name)) => b.resource_name == *name,
                (p, None) => b.pattern_type == p,
                (p, Some(name)) => b.pattern_type == p && b.resource_name == *name,
            };
        resource
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == op::ANY || self.operation == b.operation)
            && (self.permission == permission::ANY || self.permission == b.permission)
    }

    /// Why the filter is unusable for DeleteAcls / DescribeAcls, if it is.
    pub fn invalid(&self) -> Option<String> {
        if self.resource_type < resource::ANY || self.resource_type > resource::USER {
            return Some(format!("unknown resource type {}", self.resource_type));
        }
        if self.pattern_type < pattern::ANY || self.pattern_type > pattern::PREFIXED {
            return Some(format!("unknown pattern type {}", self.pattern_type));
        }
        if self.operation < op::ANY || self.operation > op::DESCRIBE_TOKENS {
            return Some(format!("unknown operation {}", self.operation));
        }
        if self.permission < permission::ANY || self.permission > permission::ALLOW {
            return Some(format!("unknown permission type {}", self.permission));
        }
        None
    }
}

/// The operations an ALLOW of `granted` also allows.
fn implies(granted: i8, wanted: i8) -> bool {
    granted == op::ALL
        || granted == wanted
        || (wanted == op::DESCRIBE && matches!(granted, op::READ | op::WRITE | op::DELETE | op::ALTER))
        || (wanted == op::DESCRIBE_CONFIGS && granted == op::ALTER_CONFIGS)
}

/// Decides requests from a set of bindings (borrowed from the metadata image, which
/// changes only as a whole).
#[derive(Debug, Clone, Copy)]
pub struct Authorizer<'a> {
    /// The bindings.
    pub bindings: &'a BTreeSet<Binding>,
    /// `super.users`: principals allowed everything.
    pub super_users: &'a BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

impl Authorizer<'_> {
    /// Whether `principal` connecting from `host` may perform `operation` on the resource.
    pub fn authorize(&self, principal: &str, host: &str, resource_type: i8, name: &str, operation: i8) -> bool {
        if self.super_users.contains(principal) {
            return true;
        }
        let mut any_on_resource = false;
        let mut allowed = false;
        let wildcard_principal = principal.split_once(':').map(|(kind, _)| format!("{kind}:*"));
        for b in self.bindings.iter().filter(|b| pattern_applies(b, resource_type, name)) {
            any_on_resource = true;
            let applies = (b.principal == principal || Some(&b.principal) == wildcard_principal.as_ref())
                && (b.host == "*" || b.host == host);
            if !applies {
                continue;
            }
            if b.permission == permission::DENY && (b.operation == op::ALL || b.operation == operation) {
                return false;
            }
            allowed |= b.permission == permission::ALLOW && implies(b.operation, operation);
        }
        if !any_on_resource {
            return self.allow_if_no_acl;
        }
        allowed
    }

    /// Whether `principal` may perform `operation` on some resource of the type (Kafka's
    /// `authorizeByResourceType`, KIP-679: an idempotent producer needs WRITE on some
    /// topic): an ALLOW applying to it that no DENY of the whole type (the literal `*`
    /// or the empty prefix) cancels. With no binding on the type at all,
    /// `allow.everyone.if.no.acl.found` decides.
    pub fn authorize_any(&self, principal: &str, host: &str, resource_type: i8, operation: i8) -> bool {
        if self.super_users.contains(principal) {
            return true;
        }
        let wildcard_principal = principal.split_once(':').map(|(kind, _)| format!("{kind}:*"));
        let applies = |b: &&&Binding| {
            b.resource_type == resource_type
                && (b.principal == principal || Some(&b.principal) == wildcard_principal.as_ref())
                && (b.host == "*" || b.host == host)
        };
        let of_type: Vec<&Binding> = self.bindings.iter().filter(|b| b.resource_type == resource_type).collect();
        if of_type.is_empty() {
            return self.allow_if_no_acl;
        }
        let denied_everywhere = of_type.iter().filter(applies).any(|b| {
            b.permission == permission::DENY
                && (b.operation == op::ALL || b.operation == operation)
                && ((b.pattern_type == pattern::LITERAL && b.resource_name == "*")
                    || (b.pattern_type == pattern::PREFIXED && b.resource_name.is_empty()))
        });
        !denied_everywhere
            && of_type
                .iter()
                .filter(applies)
                .any(|b| b.permission == permission::ALLOW && implies(b.operation, operation))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(rt: i8, name: &str, pt: i8, principal: &str, host: &str, o: i8, perm: i8) -> Binding {
        Binding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: host.into(),
            operation: o,
            permission: perm,
        }
    }

    #[test]
    fn deny_wins_implied_operations_allow_and_no_acl_follows_the_setting() {
        use permission::{ALLOW, DENY};
        use resource::{GROUP, TOPIC};
        let bindings = BTreeSet::from([
            bind(TOPIC, "orders", pattern::LITERAL, "User:alice", "*", op::READ, ALLOW),
            bind(TOPIC, "pay-", pattern::PREFIXED, "User:*", "*", op::WRITE, ALLOW),
            bind(TOPIC, "pay-secret", pattern::LITERAL, "User:bob", "*", op::ALL, DENY),
            bind(TOPIC, "*", pattern::LITERAL, "User:carol", "10.0.0.1", op::DESCRIBE, ALLOW),
            bind(GROUP, "g", pattern::LITERAL, "User:alice", "*", op::ALL, ALLOW),
        ]);
        let super_users = BTreeSet::from(["User:admin".to_string()]);
        let mut a = Authorizer { bindings: &bindings, super_users: &super_users, allow_if_no_acl: false };

        assert!(a.authorize("User:alice", "1.2.3.4", TOPIC, "orders", op::READ));
        assert!(a.authorize("User:alice", "1.2.3.4", TOPIC, "orders", op::DESCRIBE), "READ implies DESCRIBE");
        assert!(!a.authorize("User:alice", "1.2.3.4", TOPIC, "orders", op::WRITE));
        assert!(!a.authorize("User:bob", "1.2.3.4", TOPIC, "orders", op::READ), "not bob's");
        assert!(a.authorize("User:bob", "h", TOPIC, "pay-in", op::WRITE), "prefixed, any user");
        assert!(!a.authorize("User:bob", "h", TOPIC, "pay-secret", op::WRITE), "DENY ALL wins over the prefix ALLOW");
        assert!(a.authorize("User:alice", "h", TOPIC, "pay-secret", op::WRITE));
        assert!(a.authorize("User:carol", "10.0.0.1", TOPIC, "anything", op::DESCRIBE), "wildcard resource");
        assert!(!a.authorize("User:carol", "10.0.0.2", TOPIC, "anything", op::DESCRIBE), "other host");
        assert!(a.authorize("User:alice", "h", GROUP, "g", op::DELETE), "ALL");
        assert!(a.authorize("User:admin", "h", TOPIC, "pay-secret", op::ALTER), "super user");
        // No ACL on the resource at all: denied unless allow.everyone.if.no.acl.found.
        assert!(!a.authorize("User:alice", "h", GROUP, "other", op::READ));
        a.allow_if_no_acl = true;
        assert!(a.authorize("User:alice", "h", GROUP, "other", op::READ));
        assert!(!a.authorize("User:bob", "h", TOPIC, "orders", op::READ), "ACLs exist: the setting does not apply");
    }

    #[test]
    fn filters_select_bindings_as_kafka_does() {
        let lit = bind(resource::TOPIC, "orders", pattern::LITERAL, "User:alice", "*", op::READ, permission::ALLOW);
        let pre = bind(resource::TOPIC, "ord", pattern::PREFIXED, "User:bob", "*", op::WRITE, permission::ALLOW);
        let any = Filter {
            resource_type: resource::ANY,
            resource_name: None,
            pattern_type: pattern::ANY,
            principal: None,
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        };
        assert!(any.matches(&lit) && any.matches(&pre));
        let matching = Filter { resource_name: Some("orders".into()), pattern_type: pattern::MATCH, ..any.clone() };
        assert!(matching.matches(&lit) && matching.matches(&pre), "MATCH: everything that applies to orders");
        let literal = Filter { resource_name: Some("orders".into()), pattern_type: pattern::LITERAL, ..any.clone() };
        assert!(literal.matches(&lit) && !literal.matches(&pre));
        let bob = Filter { principal: Some("User:bob".into()), ..any.clone() };
        assert!(!bob.matches(&lit) && bob.matches(&pre));
        assert!(validate(&lit).is_ok());
        assert!(validate(&Binding { principal: "alice".into(), ..lit.clone() }).is_err());
        assert!(validate(&Binding { pattern_type: pattern::MATCH, ..lit.clone() }).is_err());
        assert!(validate(&Binding { operation: op::ANY, ..lit }).is_err());
    }
}
