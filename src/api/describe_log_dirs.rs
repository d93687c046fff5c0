//! DescribeLogDirs (key 35): the data directory and each partition's size on disk.

use strom_protocol::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use strom_protocol::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::authz::Authz;
use super::ApiRange;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 35, min: 1, max: 5, advertised_min: 1 };

/// Describes the requested partitions (all when null).
pub fn handle(node: &Node, az: &Authz<'_>, _version: i16, req: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    // Kafka: DESCRIBE on the cluster; without it nothing is listed (and v3+ say why).
    if !az.cluster(op::DESCRIBE) {
        return DescribeLogDirsResponse {
            error_code: crate::error::ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        req.topics.map(|ts| ts.into_iter().map(|t| (t.topic, t.partitions)).collect());
    let topics = node
        .meta
        .topics()
        .into_iter()
        .filter_map(|t| {
            let parts: Vec<i32> = match &wanted {
                None => (0..t.partitions.len() as i32).collect(),
                Some(w) => w.iter().find(|(n, _)| **n == *t.name)?.1.clone(),
            };
            let partitions: Vec<DescribeLogDirsPartition> = parts
                .into_iter()
                .filter_map(|i| t.partitions.get(usize::try_from(i).ok()?))
                .map(|p| DescribeLogDirsPartition {
                    partition_index: p.index,
                    partition_size: p.size_bytes() as i64,
                    ..Default::default()
                })
                .collect();
            Some(DescribeLogDirsTopic { name: t.name.to_string(), partitions, ..Default::default() })
        })
        .collect();
    let dir = std::fs::canonicalize(&node.meta.config.data_dir).unwrap_or_else(|_| node.meta.config.data_dir.clone());
    DescribeLogDirsResponse {
        results: vec![DescribeLogDirsResult { log_dir: dir.display().to_string(), topics, ..Default::default() }],
        ..Default::default()
    }
}
