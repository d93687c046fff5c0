//! `strom acl add|list|remove`: ACL bindings over CreateAcls, DescribeAcls and DeleteAcls
//! (KIP-140), as `kafka-acls.sh --add|--list|--remove` manages them.

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use strom_client::check;
use strom_protocol::*;

use super::{connect, Common, Table};
use crate::security::acl::{op, pattern, permission, resource};

/// `strom acl ...`
#[derive(Subcommand, Debug)]
pub enum AclCmd {
    /// Creates a binding for each operation given.
    Add {
        #[command(flatten)]
        resource: ResourceArgs,
        /// The principal (`User:alice`, or `User:*` for everyone).
        #[arg(long)]
        principal: String,
        /// Operations (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
        /// DescribeConfigs, AlterConfigs, IdempotentWrite, All).
        #[arg(long = "operation", required = true)]
        operations: Vec<String>,
        /// The client address the binding applies to (`*`: any).
        #[arg(long, default_value = "*")]
        host: String,
        /// A DENY binding (default: ALLOW).
        #[arg(long)]
        deny: bool,
    },
    /// Lists the bindings of a resource (or all of them).
    List {
        #[command(flatten)]
        resource: ResourceArgs,
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
    },
    /// Removes the bindings matching the resource and the options given.
    Remove {
        #[command(flatten)]
        resource: ResourceArgs,
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
        /// Only these operations (default: any).
        #[arg(long = "operation")]
        operations: Vec<String>,
        /// Only bindings for this host.
        #[arg(long)]
        host: Option<String>,
    },
}

/// The resource an ACL command is about: one of `--topic`, `--group`,
/// `--transactional-id`, `--cluster`.
#[derive(Args, Debug)]
pub struct ResourceArgs {
    /// A topic (`*`: every topic).
    #[arg(long, conflicts_with_all = ["group", "transactional_id", "cluster"])]
    topic: Option<String>,
    /// A consumer group.
    #[arg(long, conflicts_with_all = ["transactional_id", "cluster"])]
    group: Option<String>,
    /// A transactional id.
    #[arg(long, conflicts_with = "cluster")]
    transactional_id: Option<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// The name is a prefix (PREFIXED pattern) rather than a name (LITERAL).
    #[arg(long)]
    prefixed: bool,
}

impl ResourceArgs {
    /// (resource type, name) or `None` when no resource was named.
    fn resource(&self) -> Option<(i8, String)> {
        if let Some(t) = &self.topic {
            Some((resource::TOPIC, t.clone()))
        } else if let Some(g) = &self.group {
            Some((resource::GROUP, g.clone()))
        } else if let Some(t) = &self.transactional_id {
            Some((resource::TRANSACTIONAL_ID, t.clone()))
        } else if self.cluster {
            Some((resource::CLUSTER, "kafka-cluster".to_string()))
        } else {
            None
        }
    }

    fn pattern(&self) -> i8 {
        if self.prefixed {
            pattern::PREFIXED
        } else {
            pattern::LITERAL
        }
    }
}

const OPERATIONS: &[(&str, i8)] = &[
    ("All", op::ALL),
    ("Read", op::READ),
    ("Write", op::WRITE),
    ("Create", op::CREATE),
    ("Delete", op::DELETE),
    ("Alter", op::ALTER),
    ("Describe", op::DESCRIBE),
    ("ClusterAction", op::CLUSTER_ACTION),
    ("DescribeConfigs", op::DESCRIBE_CONFIGS),
    ("AlterConfigs", op::ALTER_CONFIGS),
    ("IdempotentWrite", op::IDEMPOTENT_WRITE),
];

fn operation(name: &str) -> anyhow::Result<i8> {
    let wanted: String = name.chars().filter(|c| *c != '_' && *c != '-').collect();
    OPERATIONS.iter().find(|(n, _)| n.eq_ignore_ascii_case(&wanted)).map(|(_, code)| *code).ok_or_else(|| {
        anyhow!("operation {name}: one of {}", OPERATIONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))
    })
}

fn operation_name(code: i8) -> String {
    OPERATIONS.iter().find(|(_, c)| *c == code).map_or_else(|| code.to_string(), |(n, _)| n.to_string())
}

fn resource_type_name(code: i8) -> String {
    match code {
        resource::TOPIC => "Topic",
        resource::GROUP => "Group",
        resource::CLUSTER => "Cluster",
        resource::TRANSACTIONAL_ID => "TransactionalId",
        resource::DELEGATION_TOKEN => "DelegationToken",
        resource::USER => "User",
        _ => return code.to_string(),
    }
    .to_string()
}

fn pattern_name(code: i8) -> &'static str {
    if code == pattern::PREFIXED {
        "PREFIXED"
    } else {
        "LITERAL"
    }
}

fn permission_name(code: i8) -> &'static str {
    if code == permission::DENY {
        "DENY"
    } else {
        "ALLOW"
    }
}

/// Runs a `strom acl` command.
pub async fn acl(cmd: AclCmd, c: &Common) -> anyhow::Result<()> {
    let mut client = connect(c).await?;
    match cmd {
        AclCmd::Add { resource: r, principal, operations, host, deny } => {
            let Some((resource_type, resource_name)) = r.resource() else {
                bail!("name the resource: --topic, --group, --transactional-id or --cluster");
            };
            let ops = operations.iter().map(|o| operation(o)).collect::<anyhow::Result<Vec<_>>>()?;
            let creations = ops
                .iter()
                .map(|&o| create_acls_request::AclCreation {
                    resource_type,
                    resource_name: resource_name.clone(),
                    resource_pattern_type: r.pattern(),
                    principal: principal.clone(),
                    host: host.clone(),
                    operation: o,
                    permission_type: if deny { permission::DENY } else { permission::ALLOW },
                    ..Default::default()
                })
                .collect();
            let (resp, _): (CreateAclsResponse, _) =
                client.call(3, &CreateAclsRequest { creations, ..Default::default() }).await?;
            for (res, o) in resp.results.iter().zip(&ops) {
                check(
                    res.error_code,
                    &format!("ACL {} {}", operation_name(*o), principal),
                    res.error_message.as_deref(),
                )?;
            }
            println!(
                "added {} {} binding(s) for {principal} on {} {resource_name} ({})",
                ops.len(),
                permission_name(if deny { permission::DENY } else { permission::ALLOW }),
                resource_type_name(resource_type),
                pattern_name(r.pattern())
            );
        }
        AclCmd::List { resource: r, principal } => {
            let (resource_type, name) = r.resource().map_or((resource::ANY, None), |(t, n)| (t, Some(n)));
            let req = DescribeAclsRequest {
                resource_type_filter: resource_type,
                resource_name_filter: name,
                pattern_type_filter: if r.resource().is_some() { r.pattern() } else { pattern::ANY },
                principal_filter: principal,
                host_filter: None,
                operation: op::ANY,
                permission_type: permission::ANY,
                ..Default::default()
            };
            let (resp, _): (DescribeAclsResponse, _) = client.call(3, &req).await?;
            check(resp.error_code, "DescribeAcls", resp.error_message.as_deref())?;
            let mut t =
                Table::new(&["RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"]);
            for res in resp.resources {
                for a in res.acls {
                    t.row(vec![
                        resource_type_name(res.resource_type),
                        res.resource_name.clone(),
                        pattern_name(res.pattern_type).to_string(),
                        a.principal,
                        a.host,
                        operation_name(a.operation),
                        permission_name(a.permission_type).to_string(),
                    ]);
                }
            }
            t.print(c.output)?;
        }
        AclCmd::Remove { resource: r, principal, operations, host } => {
            let Some((resource_type, resource_name)) = r.resource() else {
                bail!("name the resource: --topic, --group, --transactional-id or --cluster");
            };
            let ops = if operations.is_empty() {
                vec![op::ANY]
            } else {
                operations.iter().map(|o| operation(o)).collect::<anyhow::Result<Vec<_>>>()?
            };
            let filters = ops
                .iter()
                .map(|&o| delete_acls_request::DeleteAclsFilter {
                    resource_type_filter: resource_type,
                    resource_name_filter: Some(resource_name.clone()),
                    pattern_type_filter: r.pattern(),
                    principal_filter: principal.clone(),
                    host_filter: host.clone(),
                    operation: o,
                    permission_type: permission::ANY,
                    ..Default::default()
                })
                .collect();
            let (resp, _): (DeleteAclsResponse, _) =
                client.call(3, &DeleteAclsRequest { filters, ..Default::default() }).await?;
            let mut removed = 0;
            for f in resp.filter_results {
                check(f.error_code, "DeleteAcls", f.error_message.as_deref())?;
                for m in f.matching_acls {
                    removed += 1;
                    println!(
                        "removed {} {} {} on {} {} ({}) for host {}",
                        permission_name(m.permission_type),
                        m.principal,
                        operation_name(m.operation),
                        resource_type_name(m.resource_type),
                        m.resource_name,
                        pattern_name(m.pattern_type),
                        m.host
                    );
                }
            }
            if removed == 0 {
                println!("no binding matched");
            }
        }
    }
    Ok(())
}
