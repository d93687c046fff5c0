//! CreateAcls (key 30), DescribeAcls (key 29) and DeleteAcls (key 31), KIP-140/290: ACL
//! bindings kept in the metadata log (ADR 0014), with Kafka's validation and filters.
//!
//! Without an authorizer (`authorizer.class.name` empty) these APIs answer
//! SECURITY_DISABLED, as Kafka's do, rather than store bindings nobody enforces.

use strom_protocol::metadata_record::Record;
use strom_protocol::{
    create_acls_response, delete_acls_response, describe_acls_response, CreateAclsRequest, CreateAclsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::{self, op, Binding, Filter};

/// DescribeAcls versions served.
pub const DESCRIBE_API: ApiRange = ApiRange { key: 29, min: 1, max: 3, advertised_min: 1 };
/// CreateAcls versions served.
pub const CREATE_API: ApiRange = ApiRange { key: 30, min: 1, max: 3, advertised_min: 1 };
/// DeleteAcls versions served.
pub const DELETE_API: ApiRange = ApiRange { key: 31, min: 1, max: 3, advertised_min: 1 };

/// The bindings of the metadata image.
pub fn bindings(node: &Node) -> Vec<Binding> {
    node.meta.image().acls.iter().cloned().collect()
}

const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";
const NOT_AUTHORIZED: &str = "Not authorized: ACLs need ALTER (DESCRIBE to list them) on the cluster";

/// Creates each valid binding (one metadata change); an invalid one gets INVALID_REQUEST.
pub fn create(node: &Node, az: &Authz<'_>, req: CreateAclsRequest) -> CreateAclsResponse {
    // Kafka: ALTER on the cluster.
    let denied = az.cluster_error(op::ALTER);
    if !az.enabled() || denied != ErrorCode::None {
        let (code, message) =
            if az.enabled() { (denied, NOT_AUTHORIZED) } else { (ErrorCode::SecurityDisabled, NO_AUTHORIZER) };
        let results = req
            .creations
            .iter()
            .map(|_| create_acls_response::AclCreationResult {
                error_code: code.code(),
                error_message: Some(message.into()),
                ..Default::default()
            })
            .collect();
        return CreateAclsResponse { results, ..Default::default() };
    }
    let mut results = Vec::with_capacity(req.creations.len());
    let mut records = Vec::new();
    let mut at = Vec::new();
    for c in req.creations {
        let b = Binding {
            resource_type: c.resource_type,
            resource_name: c.resource_name,
            pattern_type: c.resource_pattern_type,
            principal: c.principal,
            host: c.host,
            operation: c.operation,
            permission: c.permission_type,
        };
        match acl::validate(&b) {
            Ok(()) => {
                at.push(results.len());
                records.push(Record::Acl(b));
                results.push(create_acls_response::AclCreationResult::default());
            }
            Err(m) => results.push(create_acls_response::AclCreationResult {
                error_code: ErrorCode::InvalidRequest.code(),
                error_message: Some(m),
                ..Default::default()
            }),
        }
    }
    if let Err((code, message)) = node.meta.alter_acls(records) {
        for i in at {
            results[i].error_code = code.code();
            results[i].error_message = Some(message.clone());
        }
    }
    CreateAclsResponse { results, ..Default::default() }
}

fn filter(
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
) -> Filter {
    Filter { resource_type, resource_name, pattern_type, principal, host, operation, permission }
}

/// The bindings matching the filter, grouped by resource pattern.
pub fn describe(node: &Node, az: &Authz<'_>, req: DescribeAclsRequest) -> DescribeAclsResponse {
    if !az.enabled() {
        return DescribeAclsResponse {
            error_code: ErrorCode::SecurityDisabled.code(),
            error_message: Some(NO_AUTHORIZER.into()),
            ..Default::default()
        };
    }
    // Kafka: DESCRIBE on the cluster.
    if !az.cluster(op::DESCRIBE) {
        return DescribeAclsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some(NOT_AUTHORIZED.into()),
            ..Default::default()
        };
    }
    let f = filter(
        req.resource_type_filter,
        req.resource_name_filter,
        req.pattern_type_filter,
        req.principal_filter,
        req.host_filter,
        req.operation,
        req.permission_type,
    );
    if let Some(m) = f.invalid() {
        return DescribeAclsResponse {
            error_code: ErrorCode::InvalidRequest.code(),
            error_message: Some(m),
            ..Default::default()
        };
    }
    let mut resources: Vec<describe_acls_response::DescribeAclsResource> = Vec::new();
    for b in bindings(node).into_iter().filter(|b| f.matches(b)) {
        let entry = describe_acls_response::AclDescription {
            principal: b.principal.clone(),
            host: b.host.clone(),
            operation: b.operation,
            permission_type: b.permission,
            ..Default::default()
        };
        match resources.iter_mut().find(|r| {
            r.resource_type == b.resource_type && r.resource_name == b.resource_name && r.pattern_type == b.pattern_type
        }) {
            Some(r) => r.acls.push(entry),
            None => resources.push(describe_acls_response::DescribeAclsResource {
                resource_type: b.resource_type,
                resource_name: b.resource_name,
                pattern_type: b.pattern_type,
                acls: vec![entry],
                ..Default::default()
            }),
        }
    }
    DescribeAclsResponse { resources, ..Default::default() }
}

/// Deletes every binding matching each filter (one metadata change), reporting them.
pub fn delete(node: &Node, az: &Authz<'_>, req: DeleteAclsRequest) -> DeleteAclsResponse {
    // Kafka: ALTER on the cluster.
    let denied = az.cluster_error(op::ALTER);
    if !az.enabled() || denied != ErrorCode::None {
        let (code, message) =
            if az.enabled() { (denied, NOT_AUTHORIZED) } else { (ErrorCode::SecurityDisabled, NO_AUTHORIZER) };
        let filter_results = req
            .filters
            .iter()
            .map(|_| delete_acls_response::DeleteAclsFilterResult {
                error_code: code.code(),
                error_message: Some(message.into()),
                ..Default::default()
            })
            .collect();
        return DeleteAclsResponse { filter_results, ..Default::default() };
    }
    let all = bindings(node);
    let mut gone = std::collections::BTreeSet::new();
    let mut filter_results = Vec::with_capacity(req.filters.len());
    for fr in req.filters {
        let f = filter(
            fr.resource_type_filter,
            fr.resource_name_filter,
            fr.pattern_type_filter,
            fr.principal_filter,
            fr.host_filter,
            fr.operation,
            fr.permission_type,
        );
        if let Some(m) = f.invalid() {
            filter_results.push(delete_acls_response::DeleteAclsFilterResult {
                error_code: ErrorCode::InvalidRequest.code(),
                error_message: Some(m),
                ..Default::default()
            });
            continue;
        }
        let matching_acls = all
            .iter()
            .filter(|b| f.matches(b))
            .map(|b| {
                gone.insert(b.clone());
                delete_acls_response::DeleteAclsMatchingAcl {
                    resource_type: b.resource_type,
                    resource_name: b.resource_name.clone(),
                    pattern_type: b.pattern_type,
                    principal: b.principal.clone(),
                    host: b.host.clone(),
                    operation: b.operation,
                    permission_type: b.permission,
                    ..Default::default()
                }
            })
            .collect();
        filter_results.push(delete_acls_response::DeleteAclsFilterResult { matching_acls, ..Default::default() });
    }
    let records = gone.iter().map(|b| Record::RemoveAcl(b.clone())).collect();
    if let Err((code, message)) = node.meta.alter_acls(records) {
        for r in filter_results.iter_mut().filter(|r| r.error_code == 0) {
            r.error_code = code.code();
            r.error_message = Some(message.clone());
            r.matching_acls.clear();
        }
    }
    DeleteAclsResponse { filter_results, ..Default::default() }
}
