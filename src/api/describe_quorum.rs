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

use super::{ApiRange, RequestContext};
use crate::error::ErrorCode;
use crate::node::Node;

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
pub fn handle(node: &Node, ctx: &RequestContext, version: i16, req: DescribeQuorumRequest) -> DescribeQuorumResponse {
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
    let c = &node.meta.config;
    let now = now_ms();
    // A single voter: everything it appended is committed.
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
