//! DeleteTopics (key 20): by name (v1–5) or by name or id (v6).

use strom_protocol::delete_topics_response::DeletableTopicResult;
use strom_protocol::{DeleteTopicsRequest, DeleteTopicsResponse, Uuid};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 20, min: 1, max: 6, advertised_min: 1 };

/// Deletes each named topic.
pub fn handle(node: &Node, az: &Authz<'_>, version: i16, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let targets: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics.into_iter().map(|t| (t.name, t.topic_id)).collect()
    } else {
        req.topic_names.into_iter().map(|n| (Some(n), Uuid::ZERO)).collect()
    };
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let resolved = match (&name, id) {
                (Some(n), _) => Some(n.clone()),
                (None, id) if id != Uuid::ZERO => node.meta.topic_by_id(&id).map(|t| t.name.to_string()),
                _ => None,
            };
            let mut r =
                DeletableTopicResult { name: resolved.clone().or(name.clone()), topic_id: id, ..Default::default() };
            match resolved {
                None if name.is_none() => r.error_code = ErrorCode::UnknownTopicId.code(),
                None => r.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                // Kafka: DELETE on the topic, checked before its existence.
                Some(n) if !az.topic(op::DELETE, &n) => r.error_code = ErrorCode::TopicAuthorizationFailed.code(),
                Some(n) => match node.meta.delete_topic(&n) {
                    Ok(deleted) => r.topic_id = deleted,
                    Err(code) => r.error_code = code.code(),
                },
            }
            if version < 6 && r.name.is_none() {
                r.name = Some(String::new());
            }
            r
        })
        .collect();
    DeleteTopicsResponse { responses, ..Default::default() }
}
