//! DescribeQuorum (key 55): the KRaft metadata quorum, as a single-node Kafka running
//! broker and controller in one process reports it — one voter, leading.
//!
//! Kafka's `KafkaRaftClient.handleDescribeQuorumRequest`: a request that does not name
//! exactly one topic with exactly one partition, `__cluster_metadata`-0, gets
//! UNKNOWN_TOPIC_OR_PARTITION on every partition it named (`DescribeQuorumRequest.
//! getPartitionLevelErrorResponse`); otherwise the leader answers with its epoch, high
//! watermark, voters and observers (`RaftUtil.singletonDescribeQuorumResponse`). The
//! leader's own replica state carries the current time as its last fetch and last
//! caught-up time.
//!
//! What is Strom's own:
//! - The metadata log (ADR 0008) has one voter, this node: the high watermark is its
//!   log end offset, and the leader epoch is 1 (the first epoch a freshly formatted
//!   quorum elects, and the term this node writes at).
//! - The voter is a static one (`controller.quorum.voters`, kraft.version 0): its
//!   directory id is the zero UUID, Kafka's "no directory id".
//! - v2 lists the voter's endpoint under Kafka's conventional controller listener name
//!   `CONTROLLER`, at the address advertised for the listener the request came on: Strom
//!   answers controller requests on its client listeners (controller listeners are not
//!   bound), as DescribeCluster's controller endpoints already say.

use strom_protocol::describe_quorum_response::{Listener, Node as QuorumNode, PartitionData, ReplicaState, TopicData};
use strom_protocol::{DescribeQuorumRequest, DescribeQuorumResponse, Uuid};

use super::authz::Authz;
use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 55, min: 0, max: 2, advertised_min: 0 };

/// The KRaft metadata topic and its one partition.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The listener name the voter's endpoint is reported under (v2).
pub const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// The leader epoch reported: the first one a new quorum elects.
pub const LEADER_EPOCH: i32 = 1;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Describes the quorum, or refuses anything but `__cluster_metadata`-0.
pub fn handle(
    node: &Node,
    ctx: &RequestContext,
    az: &Authz<'_>,
    version: i16,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    // Kafka: DESCRIBE on the cluster.
    if !az.cluster(op::DESCRIBE) {
        return DescribeQuorumResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            error_message: Some("not authorized to describe the cluster".into()),
            ..Default::default()
        };
    }
    let names_the_metadata_partition = match req.topics.as_slice() {
        [t] => t.topic_name == METADATA_TOPIC && matches!(t.partitions.as_slice(), [p] if p.partition_index == 0),
        _ => false,
    };
    if !names_the_metadata_partition {
        let topics = req
            .topics
            .into_iter()
            .map(|t| TopicData {
                topic_name: t.topic_name,
                partitions: t
                    .partitions
                    .into_iter()
                    .map(|p| PartitionData {
                        partition_index: p.partition_index,
                        error_code: ErrorCode::UnknownTopicOrPartition.code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        return DescribeQuorumResponse { topics, ..Default::default() };
    }
    let now = now_ms();
    let (partition, nodes) = match node.meta.quorum() {
        None => single_voter(node, ctx, version, now),
        Some(q) => quorum_view(q, version, now),
    };
    DescribeQuorumResponse {
        topics: vec![TopicData {
            topic_name: METADATA_TOPIC.to_string(),
            partitions: vec![partition],
            ..Default::default()
        }],
        nodes,
        ..Default::default()
    }
}

/// A single node: one voter, leading, everything it appended committed.
fn single_voter(node: &Node, ctx: &RequestContext, version: i16, now: i64) -> (PartitionData, Vec<QuorumNode>) {
    let c = &node.meta.config;
    let end = node.meta.metadata_log_end();
    let voter = ReplicaState {
        replica_id: c.node_id,
        replica_directory_id: Uuid::ZERO,
        log_end_offset: end,
        last_fetch_timestamp: now,
        last_caught_up_timestamp: now,
        ..Default::default()
    };
    let partition = PartitionData {
        partition_index: 0,
        error_code: ErrorCode::None.code(),
        leader_id: c.node_id,
        leader_epoch: LEADER_EPOCH,
        high_watermark: end,
        current_voters: vec![voter],
        observers: Vec::new(),
        ..Default::default()
    };
    let nodes = if version >= 2 {
        vec![QuorumNode {
            node_id: c.node_id,
            listeners: vec![Listener {
                name: CONTROLLER_LISTENER.to_string(),
                host: c.advertised(ctx.listener).0.to_string(),
                port: c.advertised(ctx.listener).1,
                ..Default::default()
            }],
            ..Default::default()
        }]
    } else {
        Vec::new()
    };
    (partition, nodes)
}

/// A cluster: the quorum as this node's Raft sees it. The leader knows every voter's log
/// end (its replication progress); a follower reports -1 for the voters it cannot know,
/// as Kafka's followers would not answer at all (they send NOT_LEADER_OR_FOLLOWER; the
/// admin client then asks again) — an answer is more useful to `strom cluster info`.
fn quorum_view(q: &crate::metadata::quorum::Quorum, version: i16, now: i64) -> (PartitionData, Vec<QuorumNode>) {
    let v = q.view();
    let leading = v.voter && v.leader == Some(v.id);
    let end_of = |id: u64| -> i64 {
        if id == v.id && v.voter {
            return v.log_end;
        }
        v.voter_log_ends.as_ref().map_or(-1, |ends| ends.get(&id).copied().unwrap_or(0))
    };
    let current_voters = v
        .voters
        .iter()
        .map(|&id| ReplicaState {
            replica_id: id as i32,
            replica_directory_id: Uuid::ZERO,
            log_end_offset: end_of(id),
            last_fetch_timestamp: if leading || id == v.id { now } else { -1 },
            last_caught_up_timestamp: if leading || id == v.id { now } else { -1 },
            ..Default::default()
        })
        .collect();
    // Observers (broker-only nodes) report themselves: what they applied.
    let observers = if v.voter {
        Vec::new()
    } else {
        vec![ReplicaState {
            replica_id: v.id as i32,
            replica_directory_id: Uuid::ZERO,
            log_end_offset: v.applied_end,
            last_fetch_timestamp: now,
            last_caught_up_timestamp: -1,
            ..Default::default()
        }]
    };
    let partition = PartitionData {
        partition_index: 0,
        error_code: ErrorCode::None.code(),
        leader_id: v.leader.map_or(-1, |l| l as i32),
        leader_epoch: i32::try_from(v.term).unwrap_or(i32::MAX),
        high_watermark: v.applied_end,
        current_voters,
        observers,
        ..Default::default()
    };
    let nodes = if version >= 2 {
        v.addresses
            .iter()
            .map(|(&id, addr)| {
                let (host, port) = addr.rsplit_once(':').unwrap_or((addr.as_str(), "0"));
                QuorumNode {
                    node_id: id as i32,
                    listeners: vec![Listener {
                        name: CONTROLLER_LISTENER.to_string(),
                        host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
                        port: port.parse().unwrap_or(0),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    (partition, nodes)
}
