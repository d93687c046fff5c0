//! DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key 51), KIP-554:
//! SCRAM credentials kept as salted hashes in the metadata log (ADR 0013). The request
//! carries the salted password, never the password; the broker keeps StoredKey and
//! ServerKey. Checks and errors follow Kafka's controller: per user, UNSUPPORTED_SASL_MECHANISM
//! for a mechanism other than SCRAM-SHA-256/512, UNACCEPTABLE_CREDENTIAL for iterations
//! outside 4096..=16384 or an empty salt/password, DUPLICATE_RESOURCE when a request
//! names the same (user, mechanism) twice, RESOURCE_NOT_FOUND for a deletion of nothing.
//!
//! Kafka asks DESCRIBE / ALTER on the cluster resource. Until ACLs are enforced, only
//! `super.users` may use these APIs (CLUSTER_AUTHORIZATION_FAILED for anyone else): with
//! no check at all, any client could set another user's password.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use strom_protocol::metadata_record::Record;
use strom_protocol::{
    alter_user_scram_credentials_response, describe_user_scram_credentials_response, AlterUserScramCredentialsRequest,
    AlterUserScramCredentialsResponse, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};

use super::authz::Authz;
use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;
use crate::security::scram::{Credential, Mechanism, MAX_ITERATIONS, MIN_ITERATIONS};

/// DescribeUserScramCredentials versions served.
pub const DESCRIBE_API: ApiRange = ApiRange { key: 50, min: 0, max: 0, advertised_min: 0 };
/// AlterUserScramCredentials versions served.
pub const ALTER_API: ApiRange = ApiRange { key: 51, min: 0, max: 0, advertised_min: 0 };

/// With an authorizer, Kafka's check: `operation` (DESCRIBE or ALTER) on the cluster.
/// Without one, only super users: Kafka would let anyone, but credentials are too
/// sensitive to hand to every client of a broker that has no ACLs.
fn allowed(node: &Node, ctx: &RequestContext, az: &Authz<'_>, operation: i8) -> bool {
    if az.enabled() {
        return az.cluster(operation);
    }
    let allowed = node.meta.config.super_users.contains(&*ctx.principal);
    if !allowed {
        tracing::info!(principal = %ctx.principal, peer = %ctx.peer, "SCRAM credential request denied: not a super user");
    }
    allowed
}

const NOT_SUPER: &str =
    "Not authorized: without an authorizer only super.users may describe or alter SCRAM credentials; with one, \
     DESCRIBE or ALTER on the cluster";

/// Describes every user's mechanisms (users null or empty) or the named users'.
pub fn describe(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !allowed(node, ctx, az, op::DESCRIBE) {
        return DescribeUserScramCredentialsResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some(NOT_SUPER.into()),
            ..Default::default()
        };
    }
    let image = node.meta.image();
    let mut by_user: BTreeMap<&str, Vec<describe_user_scram_credentials_response::CredentialInfo>> = BTreeMap::new();
    for ((user, mechanism), c) in &image.scram {
        by_user.entry(user.as_str()).or_default().push(describe_user_scram_credentials_response::CredentialInfo {
            mechanism: *mechanism,
            iterations: c.iterations,
            ..Default::default()
        });
    }
    let result = |user: &str, code: ErrorCode, message: Option<String>, infos| {
        describe_user_scram_credentials_response::DescribeUserScramCredentialsResult {
            user: user.to_string(),
            error_code: code.code(),
            error_message: message,
            credential_infos: infos,
            ..Default::default()
        }
    };
    let results = match req.users.filter(|u| !u.is_empty()) {
        None => by_user.iter().map(|(u, infos)| result(u, ErrorCode::None, None, infos.clone())).collect(),
        Some(users) => {
            let mut seen = BTreeMap::new();
            for u in &users {
                *seen.entry(u.name.as_str()).or_insert(0) += 1;
            }
            seen.iter()
                .map(|(u, n)| match (n, by_user.get(u)) {
                    (n, _) if *n > 1 => result(
                        u,
                        ErrorCode::DuplicateResource,
                        Some(format!(
                            "Cannot describe SCRAM credentials for the same user twice in a single request: {u}"
                        )),
                        Vec::new(),
                    ),
                    (_, Some(infos)) => result(u, ErrorCode::None, None, infos.clone()),
                    (_, None) => result(
                        u,
                        ErrorCode::ResourceNotFound,
                        Some(format!("Attempt to describe a user credential that does not exist: {u}")),
                        Vec::new(),
                    ),
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse { results, ..Default::default() }
}

/// Applies the valid deletions and upsertions as one metadata change; each user gets the
/// first error among its operations, or none.
pub fn alter(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !allowed(node, ctx, az, op::ALTER) {
        let users: BTreeSet<String> =
            req.deletions.iter().map(|d| d.name.clone()).chain(req.upsertions.iter().map(|u| u.name.clone())).collect();
        let results = users
            .into_iter()
            .map(|user| alter_user_scram_credentials_response::AlterUserScramCredentialsResult {
                user,
                error_code: ErrorCode::ClusterAuthorizationFailed.code(),
                error_message: Some(NOT_SUPER.into()),
                ..Default::default()
            })
            .collect();
        return AlterUserScramCredentialsResponse { results, ..Default::default() };
    }
    let image = node.meta.image();
    let mut errors: BTreeMap<String, (ErrorCode, String)> = BTreeMap::new();
    let mut users: BTreeSet<String> = BTreeSet::new();
    let mut count: BTreeMap<(String, i8), usize> = BTreeMap::new();
    for (name, m) in req
        .deletions
        .iter()
        .map(|d| (&d.name, d.mechanism))
        .chain(req.upsertions.iter().map(|u| (&u.name, u.mechanism)))
    {
        users.insert(name.clone());
        *count.entry((name.clone(), m)).or_insert(0) += 1;
    }
    fn fail(errors: &mut BTreeMap<String, (ErrorCode, String)>, user: &str, code: ErrorCode, message: String) {
        errors.entry(user.to_string()).or_insert((code, message));
    }
    for ((user, m), n) in &count {
        if user.is_empty() {
            fail(&mut errors, user, ErrorCode::UnacceptableCredential, "Username must not be empty".into());
        } else if Mechanism::from_code(*m).is_none() {
            fail(&mut errors, user, ErrorCode::UnsupportedSaslMechanism, format!("Unknown SCRAM mechanism {m}"));
        } else if *n > 1 {
            fail(
                &mut errors,
                user,
                ErrorCode::DuplicateResource,
                "A user credential cannot be altered twice in the same request".into(),
            );
        }
    }
    let mut records = Vec::new();
    for d in &req.deletions {
        if errors.contains_key(&d.name) {
            continue;
        }
        if !image.scram.contains_key(&(d.name.clone(), d.mechanism)) {
            fail(
                &mut errors,
                &d.name,
                ErrorCode::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".into(),
            );
            continue;
        }
        records.push(Record::RemoveUserScramCredential { user: d.name.clone(), mechanism: d.mechanism });
    }
    for u in &req.upsertions {
        if errors.contains_key(&u.name) {
            continue;
        }
        let Some(m) = Mechanism::from_code(u.mechanism) else { continue };
        let iterations = u32::try_from(u.iterations).unwrap_or(0);
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            fail(
                &mut errors,
                &u.name,
                ErrorCode::UnacceptableCredential,
                format!("Iterations {} not in [{MIN_ITERATIONS}, {MAX_ITERATIONS}]", u.iterations),
            );
            continue;
        }
        if u.salt.is_empty() || u.salted_password.is_empty() {
            fail(
                &mut errors,
                &u.name,
                ErrorCode::UnacceptableCredential,
                "Salt and salted password must not be empty".into(),
            );
            continue;
        }
        let c = Credential::from_salted_password(m, &u.salted_password, &u.salt, iterations);
        records.push(Record::UserScramCredential {
            user: u.name.clone(),
            mechanism: u.mechanism,
            salt: u.salt.clone(),
            stored_key: Bytes::from(c.stored_key),
            server_key: Bytes::from(c.server_key),
            iterations: u.iterations,
        });
    }
    // A user with an error has no operation applied: drop its other records.
    records.retain(|r| match r {
        Record::UserScramCredential { user, .. } | Record::RemoveUserScramCredential { user, .. } => {
            !errors.contains_key(user)
        }
        _ => true,
    });
    let changed: BTreeSet<String> = records
        .iter()
        .filter_map(|r| match r {
            Record::UserScramCredential { user, .. } | Record::RemoveUserScramCredential { user, .. } => {
                Some(user.clone())
            }
            _ => None,
        })
        .collect();
    if let Err((code, message)) = node.meta.alter_scram(records) {
        for user in changed {
            errors.insert(user, (code, message.clone()));
        }
    } else if !changed.is_empty() {
        tracing::info!(users = ?changed, "SCRAM credentials altered");
    }
    let results = users
        .into_iter()
        .map(|user| {
            let (code, message) = match errors.remove(&user) {
                Some((c, m)) => (c, Some(m)),
                None => (ErrorCode::None, None),
            };
            alter_user_scram_credentials_response::AlterUserScramCredentialsResult {
                user,
                error_code: code.code(),
                error_message: message,
                ..Default::default()
            }
        })
        .collect();
    AlterUserScramCredentialsResponse { results, ..Default::default() }
}
