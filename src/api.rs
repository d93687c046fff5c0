//! Request dispatch: one module per API, each declaring the versions it serves.
//!
//! The ApiVersions response is built from [`APIS`], so what is advertised and what is
//! dispatched cannot disagree; a test checks every advertised version decodes.

use strom_protocol::frame::RequestHeader;
use strom_protocol::{Message, Reader, Writer};

use crate::net::ConnError;
use crate::node::Node;

pub mod acls;
pub mod alter_configs;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod authz;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod sasl;
pub mod scram;
pub mod share_acknowledge;
pub mod share_fetch;
pub mod share_group_describe;
pub mod share_group_heartbeat;
pub mod share_group_offsets;
pub mod share_state;
pub mod sync_group;
pub mod telemetry;
pub mod transactions;

/// Who sent a request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// The index in `config.listeners` of the listener the connection arrived on, whose
    /// advertised endpoint the broker tells this client.
    pub listener: usize,
    /// The client id from the request header ("" when null).
    pub client_id: String,
    /// The authenticated principal (`User:alice`), `User:ANONYMOUS` on PLAINTEXT
    /// listeners and TLS connections without a client certificate.
    pub principal: std::sync::Arc<str>,
}

/// The versions of one API this broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    /// The API key.
    pub key: i16,
    /// Lowest version served.
    pub min: i16,
    /// Highest version served.
    pub max: i16,
    /// Lowest version advertised; below `min` only for Produce, which Kafka advertises
    /// from 0 although it refuses v0–2, because old librdkafka checks Produce v0 to decide
    /// whether the broker supports compression (KAFKA-18659).
    pub advertised_min: i16,
}

/// Every API this broker serves, in API-key order.
pub const APIS: &[ApiRange] = &[
    produce::API,
    fetch::API,
    list_offsets::API,
    metadata::API,
    offset_commit::API,
    offset_fetch::API,
    find_coordinator::API,
    join_group::API,
    heartbeat::API,
    leave_group::API,
    sync_group::API,
    describe_groups::API,
    list_groups::API,
    sasl::HANDSHAKE_API,
    api_versions::API,
    create_topics::API,
    delete_topics::API,
    delete_records::API,
    init_producer_id::API,
    offset_for_leader_epoch::API,
    transactions::ADD_PARTITIONS_API,
    transactions::ADD_OFFSETS_API,
    transactions::END_TXN_API,
    transactions::WRITE_MARKERS_API,
    transactions::TXN_OFFSET_COMMIT_API,
    acls::DESCRIBE_API,
    acls::CREATE_API,
    acls::DELETE_API,
    describe_configs::API,
    alter_configs::API,
    alter_replica_log_dirs::API,
    describe_log_dirs::API,
    sasl::AUTHENTICATE_API,
    create_partitions::API,
    delete_groups::API,
    elect_leaders::API,
    alter_configs::INCREMENTAL_API,
    partition_reassignments::ALTER_API,
    partition_reassignments::LIST_API,
    offset_delete::API,
    scram::DESCRIBE_API,
    scram::ALTER_API,
    describe_quorum::API,
    describe_cluster::API,
    transactions::DESCRIBE_PRODUCERS_API,
    transactions::DESCRIBE_TRANSACTIONS_API,
    transactions::LIST_TRANSACTIONS_API,
    consumer_group_heartbeat::API,
    consumer_group_describe::API,
    telemetry::GET_SUBSCRIPTIONS_API,
    telemetry::PUSH_API,
    list_config_resources::API,
    describe_topic_partitions::API,
    share_group_heartbeat::API,
    share_group_describe::API,
    share_fetch::API,
    share_acknowledge::API,
    share_state::READ_API,
    share_state::WRITE_API,
    share_state::DELETE_API,
    share_group_offsets::DESCRIBE_API,
    share_group_offsets::ALTER_API,
    share_group_offsets::DELETE_API,
];

fn respond<M: Message>(body: &M, version: i16) -> Result<Option<Writer>, ConnError> {
    let mut w = Writer::new();
    body.encode(&mut w, version)?;
    Ok(Some(w))
}

/// Decodes the body of a request, runs its handler, and encodes the response body.
pub async fn dispatch(
    node: &Node,
    ctx: &RequestContext,
    h: &RequestHeader,
    r: &mut Reader,
) -> Result<Option<Writer>, ConnError> {
    let v = h.api_version;
    if h.api_key == api_versions::API.key {
        // ApiVersions accepts every version, so a newer client can learn ours.
        return Ok(Some(api_versions::handle(h, r)));
    }
    let api = APIS
        .iter()
        .find(|a| a.key == h.api_key)
        .ok_or_else(|| ConnError::Refused(format!("API key {} is not served", h.api_key)))?;
    if !(api.min..=api.max).contains(&v) {
        return Err(ConnError::Refused(format!("version {v} of API key {} is not served", h.api_key)));
    }
    use strom_protocol::*;
    let az = &authz::Authz::new(node, ctx);
    match h.api_key {
        ProduceRequest::API_KEY => match produce::handle(node, az, v, ProduceRequest::decode(r, v)?).await {
            Some(resp) => respond(&resp, v),
            None => Ok(None),
        },
        FetchRequest::API_KEY => respond(&fetch::handle(node, az, v, FetchRequest::decode(r, v)?).await, v),
        ListOffsetsRequest::API_KEY => {
            respond(&list_offsets::handle(node, az, v, ListOffsetsRequest::decode(r, v)?), v)
        }
        MetadataRequest::API_KEY => respond(&metadata::handle(node, ctx, az, v, MetadataRequest::decode(r, v)?), v),
        CreateTopicsRequest::API_KEY => {
            respond(&create_topics::handle(node, az, v, CreateTopicsRequest::decode(r, v)?), v)
        }
        DeleteTopicsRequest::API_KEY => {
            respond(&delete_topics::handle(node, az, v, DeleteTopicsRequest::decode(r, v)?), v)
        }
        InitProducerIdRequest::API_KEY => {
            respond(&init_producer_id::handle(node, az, v, InitProducerIdRequest::decode(r, v)?).await, v)
        }
        AddPartitionsToTxnRequest::API_KEY => {
            respond(&transactions::add_partitions(node, az, v, AddPartitionsToTxnRequest::decode(r, v)?).await, v)
        }
        AddOffsetsToTxnRequest::API_KEY => {
            respond(&transactions::add_offsets(node, az, v, AddOffsetsToTxnRequest::decode(r, v)?).await, v)
        }
        EndTxnRequest::API_KEY => respond(&transactions::end_txn(node, az, v, EndTxnRequest::decode(r, v)?).await, v),
        WriteTxnMarkersRequest::API_KEY => {
            respond(&transactions::write_markers(node, az, v, WriteTxnMarkersRequest::decode(r, v)?).await, v)
        }
        CreateAclsRequest::API_KEY => respond(&acls::create(node, az, CreateAclsRequest::decode(r, v)?), v),
        DescribeAclsRequest::API_KEY => respond(&acls::describe(node, az, DescribeAclsRequest::decode(r, v)?), v),
        DeleteAclsRequest::API_KEY => respond(&acls::delete(node, az, DeleteAclsRequest::decode(r, v)?), v),
        DescribeUserScramCredentialsRequest::API_KEY => {
            respond(&scram::describe(node, ctx, az, DescribeUserScramCredentialsRequest::decode(r, v)?), v)
        }
        AlterUserScramCredentialsRequest::API_KEY => {
            respond(&scram::alter(node, ctx, az, AlterUserScramCredentialsRequest::decode(r, v)?), v)
        }
        SaslHandshakeRequest::API_KEY => {
            let _ = SaslHandshakeRequest::decode(r, v)?;
            let mechanisms = node
                .meta
                .config
                .listeners
                .get(ctx.listener)
                .and_then(|l| l.sasl.as_ref())
                .map(|s| s.mechanisms.clone())
                .unwrap_or_default();
            respond(&sasl::handshake(mechanisms), v)
        }
        SaslAuthenticateRequest::API_KEY => {
            let _ = SaslAuthenticateRequest::decode(r, v)?;
            respond(&sasl::authenticate(), v)
        }
        DescribeTransactionsRequest::API_KEY => {
            respond(&transactions::describe_transactions(node, az, v, DescribeTransactionsRequest::decode(r, v)?), v)
        }
        ListTransactionsRequest::API_KEY => {
            respond(&transactions::list_transactions(node, az, v, ListTransactionsRequest::decode(r, v)?), v)
        }
        DescribeProducersRequest::API_KEY => {
            respond(&transactions::describe_producers(node, az, v, DescribeProducersRequest::decode(r, v)?), v)
        }
        TxnOffsetCommitRequest::API_KEY => {
            respond(&transactions::txn_offset_commit(node, az, v, TxnOffsetCommitRequest::decode(r, v)?).await, v)
        }
        DescribeConfigsRequest::API_KEY => {
            respond(&describe_configs::handle(node, az, v, DescribeConfigsRequest::decode(r, v)?), v)
        }
        DescribeClusterRequest::API_KEY => {
            respond(&describe_cluster::handle(node, ctx, az, v, DescribeClusterRequest::decode(r, v)?), v)
        }
        FindCoordinatorRequest::API_KEY => {
            respond(&find_coordinator::handle(node, ctx, az, v, FindCoordinatorRequest::decode(r, v)?), v)
        }
        JoinGroupRequest::API_KEY => {
            respond(&join_group::handle(node, ctx, az, v, JoinGroupRequest::decode(r, v)?).await, v)
        }
        SyncGroupRequest::API_KEY => {
            respond(&sync_group::handle(node, az, v, SyncGroupRequest::decode(r, v)?).await, v)
        }
        HeartbeatRequest::API_KEY => respond(&heartbeat::handle(node, az, v, HeartbeatRequest::decode(r, v)?), v),
        LeaveGroupRequest::API_KEY => respond(&leave_group::handle(node, az, v, LeaveGroupRequest::decode(r, v)?), v),
        OffsetCommitRequest::API_KEY => {
            respond(&offset_commit::handle(node, az, v, OffsetCommitRequest::decode(r, v)?).await, v)
        }
        OffsetFetchRequest::API_KEY => {
            respond(&offset_fetch::handle(node, az, v, OffsetFetchRequest::decode(r, v)?), v)
        }
        DescribeGroupsRequest::API_KEY => {
            respond(&describe_groups::handle(node, az, v, DescribeGroupsRequest::decode(r, v)?), v)
        }
        ListGroupsRequest::API_KEY => respond(&list_groups::handle(node, az, v, ListGroupsRequest::decode(r, v)?), v),
        DeleteGroupsRequest::API_KEY => {
            respond(&delete_groups::handle(node, az, v, DeleteGroupsRequest::decode(r, v)?), v)
        }
        OffsetDeleteRequest::API_KEY => {
            respond(&offset_delete::handle(node, az, v, OffsetDeleteRequest::decode(r, v)?), v)
        }
        ConsumerGroupHeartbeatRequest::API_KEY => respond(
            &consumer_group_heartbeat::handle(node, ctx, az, v, ConsumerGroupHeartbeatRequest::decode(r, v)?),
            v,
        ),
        ShareGroupHeartbeatRequest::API_KEY => {
            respond(&share_group_heartbeat::handle(node, ctx, az, v, ShareGroupHeartbeatRequest::decode(r, v)?), v)
        }
        ShareGroupDescribeRequest::API_KEY => {
            respond(&share_group_describe::handle(node, az, v, ShareGroupDescribeRequest::decode(r, v)?), v)
        }
        ShareFetchRequest::API_KEY => {
            respond(&share_fetch::handle(node, ctx, az, v, ShareFetchRequest::decode(r, v)?).await, v)
        }
        ShareAcknowledgeRequest::API_KEY => {
            respond(&share_acknowledge::handle(node, ctx, az, v, ShareAcknowledgeRequest::decode(r, v)?).await, v)
        }
        ReadShareGroupStateRequest::API_KEY => {
            respond(&share_state::read(node, az, ReadShareGroupStateRequest::decode(r, v)?), v)
        }
        WriteShareGroupStateRequest::API_KEY => {
            respond(&share_state::write(node, az, WriteShareGroupStateRequest::decode(r, v)?).await, v)
        }
        DeleteShareGroupStateRequest::API_KEY => {
            respond(&share_state::delete(node, az, DeleteShareGroupStateRequest::decode(r, v)?).await, v)
        }
        DescribeShareGroupOffsetsRequest::API_KEY => respond(
            &share_group_offsets::describe(node, az, v, DescribeShareGroupOffsetsRequest::decode(r, v)?).await,
            v,
        ),
        AlterShareGroupOffsetsRequest::API_KEY => {
            respond(&share_group_offsets::alter(node, az, AlterShareGroupOffsetsRequest::decode(r, v)?).await, v)
        }
        DeleteShareGroupOffsetsRequest::API_KEY => {
            respond(&share_group_offsets::delete(node, az, DeleteShareGroupOffsetsRequest::decode(r, v)?).await, v)
        }
        ConsumerGroupDescribeRequest::API_KEY => {
            respond(&consumer_group_describe::handle(node, az, v, ConsumerGroupDescribeRequest::decode(r, v)?), v)
        }
        CreatePartitionsRequest::API_KEY => {
            respond(&create_partitions::handle(node, az, v, CreatePartitionsRequest::decode(r, v)?), v)
        }
        AlterConfigsRequest::API_KEY => {
            respond(&alter_configs::handle(node, az, v, AlterConfigsRequest::decode(r, v)?), v)
        }
        IncrementalAlterConfigsRequest::API_KEY => {
            respond(&alter_configs::handle_incremental(node, az, v, IncrementalAlterConfigsRequest::decode(r, v)?), v)
        }
        ElectLeadersRequest::API_KEY => {
            respond(&elect_leaders::handle(node, az, v, ElectLeadersRequest::decode(r, v)?), v)
        }
        AlterPartitionReassignmentsRequest::API_KEY => respond(
            &partition_reassignments::handle_alter(node, v, az, AlterPartitionReassignmentsRequest::decode(r, v)?),
            v,
        ),
        ListPartitionReassignmentsRequest::API_KEY => respond(
            &partition_reassignments::handle_list(node, v, az, ListPartitionReassignmentsRequest::decode(r, v)?),
            v,
        ),
        DeleteRecordsRequest::API_KEY => {
            respond(&delete_records::handle(node, az, v, DeleteRecordsRequest::decode(r, v)?), v)
        }
        OffsetForLeaderEpochRequest::API_KEY => {
            respond(&offset_for_leader_epoch::handle(node, az, v, OffsetForLeaderEpochRequest::decode(r, v)?), v)
        }
        DescribeLogDirsRequest::API_KEY => {
            respond(&describe_log_dirs::handle(node, az, v, DescribeLogDirsRequest::decode(r, v)?), v)
        }
        AlterReplicaLogDirsRequest::API_KEY => {
            respond(&alter_replica_log_dirs::handle(node, az, v, AlterReplicaLogDirsRequest::decode(r, v)?), v)
        }
        DescribeQuorumRequest::API_KEY => {
            respond(&describe_quorum::handle(node, ctx, az, v, DescribeQuorumRequest::decode(r, v)?), v)
        }
        GetTelemetrySubscriptionsRequest::API_KEY => {
            respond(&telemetry::get_subscriptions(ctx, v, GetTelemetrySubscriptionsRequest::decode(r, v)?), v)
        }
        PushTelemetryRequest::API_KEY => respond(&telemetry::push(ctx, v, PushTelemetryRequest::decode(r, v)?), v),
        ListConfigResourcesRequest::API_KEY => {
            respond(&list_config_resources::handle(node, az, v, ListConfigResourcesRequest::decode(r, v)?), v)
        }
        DescribeTopicPartitionsRequest::API_KEY => {
            respond(&describe_topic_partitions::handle(node, az, v, DescribeTopicPartitionsRequest::decode(r, v)?), v)
        }
        other => Err(ConnError::Refused(format!("API key {other} has no dispatcher"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_version_has_a_schema() {
        for api in APIS {
            let schema = strom_protocol::api_schema(api.key).unwrap_or_else(|| panic!("no schema for API {}", api.key));
            assert!(
                schema.min_version <= api.min && api.max <= schema.max_version,
                "API {} serves {}..={} beyond its schema",
                api.key,
                api.min,
                api.max
            );
            assert!(api.advertised_min <= api.min);
        }
    }

    /// The fuzz targets reach a request decoder only through the harness's list: every
    /// served API must be on it, or its decoder goes unfuzzed.
    #[test]
    fn every_served_api_is_fuzzed() {
        for api in APIS {
            let mut r = Reader::new(bytes::Bytes::new());
            let out = strom_protocol::harness::decode_request_body(api.key, api.min, &mut r, false);
            assert!(
                !matches!(out, Err(strom_protocol::DecodeError::UnknownApiKey(_))),
                "API key {} is missing from protocol/src/harness.rs",
                api.key
            );
        }
    }

    /// A forgotten match arm would refuse an advertised API at run time: feed every
    /// advertised (key, version) an empty body and accept anything but "no dispatcher".
    #[tokio::test]
    async fn every_advertised_version_reaches_its_handler() {
        let dir = tempfile::tempdir().expect("tempdir");
        let overrides = std::collections::BTreeMap::from([
            ("log.dirs".to_string(), dir.path().display().to_string()),
            ("offsets.topic.num.partitions".to_string(), "1".to_string()),
        ]);
        let config = crate::config::Config::from_sources(None, &Default::default(), &overrides).expect("config");
        let node = crate::node::Node::open(config).expect("node");
        let ctx = RequestContext {
            peer: "127.0.0.1:1".parse().expect("addr"),
            listener: 0,
            client_id: String::new(),
            principal: "User:ANONYMOUS".into(),
        };
        for api in APIS {
            for version in api.min..=api.max {
                let h = RequestHeader { api_key: api.key, api_version: version, ..Default::default() };
                let mut r = Reader::new(bytes::Bytes::new());
                // A parked JoinGroup/SyncGroup never answers an empty request: bound the wait.
                let outcome =
                    tokio::time::timeout(std::time::Duration::from_millis(200), dispatch(&node, &ctx, &h, &mut r))
                        .await;
                if let Ok(Err(ConnError::Refused(msg))) = outcome {
                    panic!("API {} v{version} is advertised but refused: {msg}", api.key);
                }
            }
        }
    }

    #[test]
    fn apis_are_listed_once_in_key_order() {
        assert!(APIS.windows(2).all(|w| w[0].key < w[1].key));
    }
}
