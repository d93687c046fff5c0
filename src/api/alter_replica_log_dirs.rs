//! AlterReplicaLogDirs (key 34): move replicas between this broker's log directories.
//!
//! Strom has one log directory, so every replica already lives in the only valid
//! destination and a valid request changes nothing. The answers follow Kafka's
//! `ReplicaManager.alterReplicaLogDirs`, checked per partition in its order:
//! 1. a topic name so long that the future-log directory name would exceed 255
//!    characters: INVALID_TOPIC_EXCEPTION;
//! 2. a destination that is not a configured log dir (`LogManager.isLogDirOnline`
//!    compares the path with each configured dir's absolute path): LOG_DIR_NOT_FOUND;
//! 3. a partition the metadata does not have: UNKNOWN_TOPIC_OR_PARTITION. (Kafka answers
//!    REPLICA_NOT_AVAILABLE for a partition that exists but has no replica on the broker
//!    it asked; on a single node every partition has its replica here.)
//! 4. a replica already in the destination: NONE, nothing moves.

use std::collections::BTreeMap;

use strom_protocol::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use strom_protocol::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served (Kafka 4 removed v0).
pub const API: ApiRange = ApiRange { key: 34, min: 1, max: 2, advertised_min: 1 };

/// LOG_DIR_NOT_FOUND, which only this API uses.
pub const LOG_DIR_NOT_FOUND: i16 = 57;

/// Kafka's limit on a log directory name (KAFKA-4893).
const MAX_DIR_NAME: usize = 255;

/// The length of `<topic>-<partition>.<32 hex digits>-future`, Kafka's
/// `UnifiedLog.logFutureDirName`, in Java chars.
fn future_dir_name_len(topic: &str, partition: i32) -> usize {
    topic.encode_utf16().count() + 1 + partition.to_string().len() + 1 + 32 + "-future".len()
}

/// The spellings of the configured log dir a client may send: its absolute path (what
/// Kafka compares with) and its canonical path (what DescribeLogDirs reports).
fn log_dir_names(node: &Node) -> Vec<String> {
    let dir = &node.meta.config.data_dir;
    [std::path::absolute(dir).ok(), std::fs::canonicalize(dir).ok()]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect()
}

/// Answers each requested partition; a partition named twice takes the last path, as
/// Kafka's `AlterReplicaLogDirsRequest.partitionDirs` map does.
pub fn handle(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    // Kafka: ALTER on the cluster, else every partition fails.
    let denied = az.cluster_error(op::ALTER);
    // Keys borrow the request's names: a request naming a long topic with many
    // partitions must not cost a copy of the name per partition.
    let mut wanted: BTreeMap<(&str, i32), &str> = BTreeMap::new();
    for dir in &req.dirs {
        for topic in &dir.topics {
            for &p in &topic.partitions {
                wanted.insert((topic.name.as_str(), p), dir.path.as_str());
            }
        }
    }
    let dirs = log_dir_names(node);
    let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
    for ((topic, partition), path) in wanted {
        let error = if denied != ErrorCode::None {
            denied.code()
        } else if future_dir_name_len(topic, partition) > MAX_DIR_NAME {
            ErrorCode::InvalidTopicException.code()
        } else if !dirs.iter().any(|d| d == path) {
            LOG_DIR_NOT_FOUND
        } else if node.meta.partition(topic, partition).is_none() {
            ErrorCode::UnknownTopicOrPartition.code()
        } else {
            ErrorCode::None.code()
        };
        let result =
            AlterReplicaLogDirPartitionResult { partition_index: partition, error_code: error, ..Default::default() };
        match results.last_mut() {
            Some(t) if t.topic_name == topic => t.partitions.push(result),
            _ => results.push(AlterReplicaLogDirTopicResult {
                topic_name: topic.to_string(),
                partitions: vec![result],
                ..Default::default()
            }),
        }
    }
    AlterReplicaLogDirsResponse { results, ..Default::default() }
}
