//! The ACL matrix (issue 16, ADR 0014): every served API that Kafka authorizes, for the
//! operation and resource it checks, with an ALLOW of it, with a DENY of it (beside an
//! ALLOW of ALL on the resource: deny wins), and with no ACL granting it, for a normal
//! user (SASL PLAIN `User:alice`) and a super user; a denied produce appends nothing and
//! a denied fetch returns no records. Real clients run the compat scenario `security-acl`.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use strom_client::Client;
use strom_protocol::*;

const JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                    user_alice=\"alice-secret\" user_admin=\"admin-secret\";";

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;

// ACL codes (Kafka's).
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TXN_ID: i8 = 5;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const CLUSTER_ACTION: i8 = 9;
const DESCRIBE_CONFIGS: i8 = 10;
const ALTER_CONFIGS: i8 = 11;
const IDEMPOTENT_WRITE: i8 = 12;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

/// The topic, group and transactional id the requests name.
const T: &str = "orders";
const G: &str = "g";
const CG: &str = "cg";
const TX: &str = "tx";

async fn broker(dir: &std::path::Path) -> common::Running {
    common::start(
        dir,
        &[
            ("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
            ("listener.security.protocol.map", "SASL_PLAINTEXT:SASL_PLAINTEXT"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
            ("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
            ("super.users", "User:admin"),
            ("offsets.topic.num.partitions", "1"),
            ("transaction.state.log.num.partitions", "1"),
        ],
    )
    .await
}

async fn login(addr: &str, user: &str, password: &str) -> Client {
    let mut c = Client::connect(addr, Duration::from_secs(10)).await.expect("connect");
    let h: SaslHandshakeResponse = c
        .call_at(1, &SaslHandshakeRequest { mechanism: "PLAIN".into(), ..Default::default() })
        .await
        .expect("handshake");
    assert_eq!(h.error_code, 0);
    let token = format!("\0{user}\0{password}");
    let req = SaslAuthenticateRequest { auth_bytes: Bytes::from(token.into_bytes()), ..Default::default() };
    let a: SaslAuthenticateResponse = c.call_at(2, &req).await.expect("authenticate");
    assert_eq!(a.error_code, 0, "{user}: {:?}", a.error_message);
    c
}

/// One ACL: resource type, name, pattern, operation.
#[derive(Clone, Copy, Debug)]
struct Acl(i8, &'static str, i8, i8);

async fn grant(admin: &mut Client, acls: &[Acl], permission: i8) {
    let creations = acls
        .iter()
        .map(|Acl(rt, name, pattern, op)| create_acls_request::AclCreation {
            resource_type: *rt,
            resource_name: name.to_string(),
            resource_pattern_type: *pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: *op,
            permission_type: permission,
            ..Default::default()
        })
        .collect();
    let r: CreateAclsResponse =
        admin.call_at(2, &CreateAclsRequest { creations, ..Default::default() }).await.expect("CreateAcls");
    for x in r.results {
        assert_eq!(x.error_code, 0, "{:?}", x.error_message);
    }
}

async fn clear(admin: &mut Client) {
    let filter = delete_acls_request::DeleteAclsFilter {
        resource_type_filter: 1,
        resource_name_filter: None,
        pattern_type_filter: 1,
        principal_filter: Some("User:alice".into()),
        host_filter: None,
        operation: 1,
        permission_type: 1,
        ..Default::default()
    };
    let r: DeleteAclsResponse =
        admin.call_at(2, &DeleteAclsRequest { filters: vec![filter], ..Default::default() }).await.expect("DeleteAcls");
    assert_eq!(r.filter_results[0].error_code, 0);
}

/// The APIs of the matrix, each naming what its request is about.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Api {
    Produce,
    ProduceTxn,
    Fetch,
    FollowerFetch,
    ListOffsets,
    Metadata,
    MetadataAll,
    MetadataAutoCreate,
    OffsetCommit,
    OffsetFetchGroup,
    OffsetFetchTopic,
    FindGroupCoordinator,
    FindTxnCoordinator,
    JoinGroup,
    SyncGroup,
    Heartbeat,
    LeaveGroup,
    DescribeGroups,
    ListGroups,
    CreateTopics,
    DeleteTopics,
    DeleteRecords,
    InitProducerIdTxn,
    InitProducerIdIdempotent,
    OffsetForLeaderEpoch,
    AddPartitionsToTxn,
    AddPartitionsToTxnBroker,
    AddOffsetsToTxn,
    EndTxn,
    WriteTxnMarkers,
    TxnOffsetCommit,
    DescribeAcls,
    CreateAcls,
    DeleteAcls,
    DescribeConfigsTopic,
    DescribeConfigsBroker,
    AlterConfigs,
    IncrementalAlterConfigs,
    AlterReplicaLogDirs,
    DescribeLogDirs,
    CreatePartitions,
    DeleteGroups,
    ElectLeaders,
    AlterPartitionReassignments,
    ListPartitionReassignments,
    OffsetDelete,
    DescribeUserScramCredentials,
    AlterUserScramCredentials,
    DescribeQuorum,
    DescribeCluster,
    DescribeProducers,
    DescribeTransactions,
    ListTransactions,
    ConsumerGroupHeartbeat,
    ConsumerGroupDescribe,
    ListConfigResources,
    DescribeTopicPartitions,
    ReadShareGroupState,
    WriteShareGroupState,
    DeleteShareGroupState,
    FindShareCoordinator,
    DescribeShareGroupOffsets,
    DeleteShareGroupOffsets,
}

/// A row of the matrix: the API, the ACL it needs, other ACLs it needs granted, and
/// the error a denial gets.
struct Case {
    api: Api,
    need: Acl,
    also: &'static [Acl],
    denial: i16,
}

fn cases() -> Vec<Case> {
    use Api::*;
    let t = |op| Acl(TOPIC, T, LITERAL, op);
    let g = |op| Acl(GROUP, G, LITERAL, op);
    let c = |op| Acl(CLUSTER, "kafka-cluster", LITERAL, op);
    let x = |op| Acl(TXN_ID, TX, LITERAL, op);
    const G_READ: &[Acl] = &[Acl(GROUP, G, LITERAL, READ)];
    const G_DESCRIBE: &[Acl] = &[Acl(GROUP, G, LITERAL, DESCRIBE)];
    const G_DELETE: &[Acl] = &[Acl(GROUP, G, LITERAL, DELETE)];
    const X_WRITE: &[Acl] = &[Acl(TXN_ID, TX, LITERAL, WRITE)];
    const X_WRITE_G_READ: &[Acl] = &[Acl(TXN_ID, TX, LITERAL, WRITE), Acl(GROUP, G, LITERAL, READ)];
    const T_WRITE: &[Acl] = &[Acl(TOPIC, T, LITERAL, WRITE)];
    const AUTO_DESCRIBE: &[Acl] = &[Acl(TOPIC, "auto-", PREFIXED, DESCRIBE)];
    const CG_READ: &[Acl] = &[Acl(GROUP, CG, LITERAL, READ)];
    const T_DESCRIBE: &[Acl] = &[Acl(TOPIC, T, LITERAL, DESCRIBE)];
    let case = |api, need, also, denial| Case { api, need, also, denial };
    vec![
        case(Produce, t(WRITE), &[], TOPIC_DENIED),
        case(ProduceTxn, x(WRITE), T_WRITE, TXN_DENIED),
        case(Fetch, t(READ), &[], TOPIC_DENIED),
        case(FollowerFetch, c(CLUSTER_ACTION), &[], TOPIC_DENIED),
        case(ListOffsets, t(DESCRIBE), &[], TOPIC_DENIED),
        case(Metadata, t(DESCRIBE), &[], TOPIC_DENIED),
        case(MetadataAll, t(DESCRIBE), &[], TOPIC_DENIED),
        case(MetadataAutoCreate, Acl(TOPIC, "auto-", PREFIXED, CREATE), AUTO_DESCRIBE, TOPIC_DENIED),
        case(OffsetCommit, g(READ), T_DESCRIBE, GROUP_DENIED),
        case(OffsetCommit, t(READ), G_READ, TOPIC_DENIED),
        case(OffsetFetchGroup, g(DESCRIBE), &[], GROUP_DENIED),
        case(OffsetFetchTopic, t(DESCRIBE), G_DESCRIBE, TOPIC_DENIED),
        case(FindGroupCoordinator, g(DESCRIBE), &[], GROUP_DENIED),
        case(FindTxnCoordinator, x(DESCRIBE), &[], TXN_DENIED),
        case(JoinGroup, g(READ), &[], GROUP_DENIED),
        case(SyncGroup, g(READ), &[], GROUP_DENIED),
        case(Heartbeat, g(READ), &[], GROUP_DENIED),
        case(LeaveGroup, g(READ), &[], GROUP_DENIED),
        case(DescribeGroups, g(DESCRIBE), &[], GROUP_DENIED),
        case(ListGroups, g(DESCRIBE), &[], GROUP_DENIED),
        case(CreateTopics, Acl(TOPIC, "fresh", LITERAL, CREATE), &[], TOPIC_DENIED),
        case(DeleteTopics, Acl(TOPIC, "doomed", LITERAL, DELETE), &[], TOPIC_DENIED),
        case(DeleteRecords, t(DELETE), &[], TOPIC_DENIED),
        case(InitProducerIdTxn, x(WRITE), &[], TXN_DENIED),
        case(InitProducerIdIdempotent, c(IDEMPOTENT_WRITE), &[], CLUSTER_DENIED),
        case(OffsetForLeaderEpoch, t(DESCRIBE), &[], TOPIC_DENIED),
        case(AddPartitionsToTxn, x(WRITE), T_WRITE, TXN_DENIED),
        case(AddPartitionsToTxn, t(WRITE), X_WRITE, TOPIC_DENIED),
        case(AddPartitionsToTxnBroker, c(CLUSTER_ACTION), &[], CLUSTER_DENIED),
        case(AddOffsetsToTxn, x(WRITE), G_READ, TXN_DENIED),
        case(AddOffsetsToTxn, g(READ), X_WRITE, GROUP_DENIED),
        case(EndTxn, x(WRITE), &[], TXN_DENIED),
        case(WriteTxnMarkers, c(CLUSTER_ACTION), &[], CLUSTER_DENIED),
        // The share coordinator's inter-broker APIs: only brokers may read or write
        // share-partition state.
        case(ReadShareGroupState, c(CLUSTER_ACTION), &[], CLUSTER_DENIED),
        case(WriteShareGroupState, c(CLUSTER_ACTION), &[], CLUSTER_DENIED),
        case(DeleteShareGroupState, c(CLUSTER_ACTION), &[], CLUSTER_DENIED),
        case(FindShareCoordinator, c(CLUSTER_ACTION), &[], CLUSTER_DENIED),
        case(DescribeShareGroupOffsets, g(DESCRIBE), &[], GROUP_DENIED),
        case(DeleteShareGroupOffsets, g(DELETE), &[], GROUP_DENIED),
        case(TxnOffsetCommit, x(WRITE), &[Acl(GROUP, G, LITERAL, READ), Acl(TOPIC, T, LITERAL, READ)], TXN_DENIED),
        case(TxnOffsetCommit, g(READ), &[Acl(TXN_ID, TX, LITERAL, WRITE), Acl(TOPIC, T, LITERAL, READ)], GROUP_DENIED),
        case(TxnOffsetCommit, t(READ), X_WRITE_G_READ, TOPIC_DENIED),
        case(DescribeAcls, c(DESCRIBE), &[], CLUSTER_DENIED),
        case(CreateAcls, c(ALTER), &[], CLUSTER_DENIED),
        case(DeleteAcls, c(ALTER), &[], CLUSTER_DENIED),
        case(DescribeConfigsTopic, t(DESCRIBE_CONFIGS), &[], TOPIC_DENIED),
        case(DescribeConfigsBroker, c(DESCRIBE_CONFIGS), &[], CLUSTER_DENIED),
        case(AlterConfigs, t(ALTER_CONFIGS), &[], TOPIC_DENIED),
        case(IncrementalAlterConfigs, t(ALTER_CONFIGS), &[], TOPIC_DENIED),
        case(AlterReplicaLogDirs, c(ALTER), &[], CLUSTER_DENIED),
        case(DescribeLogDirs, c(DESCRIBE), &[], CLUSTER_DENIED),
        case(CreatePartitions, t(ALTER), &[], TOPIC_DENIED),
        case(DeleteGroups, Acl(GROUP, "gone", LITERAL, DELETE), &[], GROUP_DENIED),
        case(ElectLeaders, c(ALTER), &[], CLUSTER_DENIED),
        case(AlterPartitionReassignments, c(ALTER), &[], CLUSTER_DENIED),
        case(ListPartitionReassignments, c(DESCRIBE), &[], CLUSTER_DENIED),
        case(OffsetDelete, g(DELETE), &[], GROUP_DENIED),
        case(OffsetDelete, t(READ), G_DELETE, TOPIC_DENIED),
        case(DescribeUserScramCredentials, c(DESCRIBE), &[], CLUSTER_DENIED),
        case(AlterUserScramCredentials, c(ALTER), &[], CLUSTER_DENIED),
        case(DescribeQuorum, c(DESCRIBE), &[], CLUSTER_DENIED),
        case(DescribeCluster, c(DESCRIBE), &[], CLUSTER_DENIED),
        case(DescribeProducers, t(READ), &[], TOPIC_DENIED),
        case(DescribeTransactions, x(DESCRIBE), &[], TXN_DENIED),
        case(ListTransactions, x(DESCRIBE), &[], TXN_DENIED),
        case(ConsumerGroupHeartbeat, Acl(GROUP, CG, LITERAL, READ), T_DESCRIBE, GROUP_DENIED),
        case(ConsumerGroupHeartbeat, t(DESCRIBE), CG_READ, TOPIC_DENIED),
        case(ConsumerGroupDescribe, Acl(GROUP, CG, LITERAL, DESCRIBE), &[], GROUP_DENIED),
        case(ListConfigResources, c(DESCRIBE_CONFIGS), &[], CLUSTER_DENIED),
        case(DescribeTopicPartitions, t(DESCRIBE), &[], TOPIC_DENIED),
    ]
}

fn batch() -> Bytes {
    let mut b = records::BatchBuilder::new(strom_storage::now_ms());
    b.add(Some(b"k"), Some(b"v"));
    b.build().freeze()
}

static AUTO: AtomicU32 = AtomicU32::new(0);

/// Sends the API's request; returns the error code that says whether it was authorized
/// (for list APIs: the denial code when the resource is missing from the list).
async fn call(api: Api, c: &mut Client) -> i16 {
    use Api::*;
    match api {
        Produce | ProduceTxn => {
            let req = ProduceRequest {
                transactional_id: (api == ProduceTxn).then(|| TX.to_string()),
                acks: 1,
                timeout_ms: 5000,
                topic_data: vec![produce_request::TopicProduceData {
                    name: T.into(),
                    partition_data: vec![produce_request::PartitionProduceData {
                        index: 0,
                        records: Some(batch()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: ProduceResponse = c.call_at(9, &req).await.expect("Produce");
            r.responses[0].partition_responses[0].error_code
        }
        Fetch | FollowerFetch => {
            let req = FetchRequest {
                replica_id: if api == FollowerFetch { 7 } else { -1 },
                max_wait_ms: 0,
                min_bytes: 0,
                topics: vec![fetch_request::FetchTopic {
                    topic: T.into(),
                    partitions: vec![fetch_request::FetchPartition {
                        partition: 0,
                        fetch_offset: 0,
                        partition_max_bytes: 1 << 20,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: FetchResponse = c.call_at(12, &req).await.expect("Fetch");
            let p = &r.responses[0].partitions[0];
            if p.error_code == TOPIC_DENIED {
                assert!(p.records.as_ref().is_none_or(|b| b.is_empty()), "a denied fetch returned records");
            }
            p.error_code
        }
        ListOffsets => {
            let r: ListOffsetsResponse = c.call_at(7, &list_offsets_latest()).await.expect("ListOffsets");
            r.topics[0].partitions[0].error_code
        }
        Metadata | MetadataAutoCreate => {
            let name =
                if api == Metadata { T.to_string() } else { format!("auto-{}", AUTO.fetch_add(1, Ordering::Relaxed)) };
            let req = MetadataRequest {
                topics: Some(vec![metadata_request::MetadataRequestTopic { name: Some(name), ..Default::default() }]),
                allow_auto_topic_creation: true,
                ..Default::default()
            };
            let r: MetadataResponse = c.call_at(12, &req).await.expect("Metadata");
            r.topics[0].error_code
        }
        MetadataAll => {
            let r: MetadataResponse =
                c.call_at(12, &MetadataRequest { topics: None, ..Default::default() }).await.expect("Metadata");
            if r.topics.iter().any(|t| t.name.as_deref() == Some(T)) {
                0
            } else {
                TOPIC_DENIED
            }
        }
        OffsetCommit => {
            let r: OffsetCommitResponse =
                c.call_at(8, &common::standalone_commit(G, T, 1)).await.expect("OffsetCommit");
            r.topics[0].partitions[0].error_code
        }
        OffsetFetchGroup | OffsetFetchTopic => {
            let req = OffsetFetchRequest {
                groups: vec![offset_fetch_request::OffsetFetchRequestGroup {
                    group_id: G.into(),
                    topics: Some(vec![offset_fetch_request::OffsetFetchRequestTopics {
                        name: T.into(),
                        partition_indexes: vec![0],
                        ..Default::default()
                    }]),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: OffsetFetchResponse = c.call_at(8, &req).await.expect("OffsetFetch");
            let g = &r.groups[0];
            if api == OffsetFetchGroup {
                g.error_code
            } else {
                g.topics[0].partitions[0].error_code
            }
        }
        FindGroupCoordinator | FindTxnCoordinator => {
            let (key, key_type) = if api == FindGroupCoordinator { (G, 0) } else { (TX, 1) };
            let req = FindCoordinatorRequest { key_type, coordinator_keys: vec![key.into()], ..Default::default() };
            let r: FindCoordinatorResponse = c.call_at(4, &req).await.expect("FindCoordinator");
            r.coordinators[0].error_code
        }
        JoinGroup => {
            let req = JoinGroupRequest {
                group_id: G.into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                protocol_type: "consumer".into(),
                protocols: vec![join_group_request::JoinGroupRequestProtocol {
                    name: "range".into(),
                    metadata: Bytes::new(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: JoinGroupResponse = c.call_at(5, &req).await.expect("JoinGroup");
            r.error_code
        }
        SyncGroup => {
            let req = SyncGroupRequest { group_id: G.into(), member_id: "m".into(), ..Default::default() };
            let r: SyncGroupResponse = c.call_at(4, &req).await.expect("SyncGroup");
            r.error_code
        }
        Heartbeat => {
            let req = HeartbeatRequest { group_id: G.into(), member_id: "m".into(), ..Default::default() };
            let r: HeartbeatResponse = c.call_at(4, &req).await.expect("Heartbeat");
            r.error_code
        }
        LeaveGroup => {
            let req = LeaveGroupRequest {
                group_id: G.into(),
                members: vec![leave_group_request::MemberIdentity { member_id: "m".into(), ..Default::default() }],
                ..Default::default()
            };
            let r: LeaveGroupResponse = c.call_at(4, &req).await.expect("LeaveGroup");
            r.error_code
        }
        DescribeGroups => {
            let req = DescribeGroupsRequest { groups: vec![G.into()], ..Default::default() };
            let r: DescribeGroupsResponse = c.call_at(5, &req).await.expect("DescribeGroups");
            r.groups[0].error_code
        }
        ListGroups => {
            let r: ListGroupsResponse = c.call_at(4, &ListGroupsRequest::default()).await.expect("ListGroups");
            assert_eq!(r.error_code, 0);
            if r.groups.iter().any(|g| g.group_id == G) {
                0
            } else {
                GROUP_DENIED
            }
        }
        CreateTopics => {
            let req = CreateTopicsRequest {
                topics: vec![create_topics_request::CreatableTopic {
                    name: "fresh".into(),
                    num_partitions: 1,
                    replication_factor: 1,
                    ..Default::default()
                }],
                validate_only: true,
                ..Default::default()
            };
            let r: CreateTopicsResponse = c.call_at(5, &req).await.expect("CreateTopics");
            r.topics[0].error_code
        }
        DeleteTopics => {
            let req = DeleteTopicsRequest { topic_names: vec!["doomed".into()], ..Default::default() };
            let r: DeleteTopicsResponse = c.call_at(5, &req).await.expect("DeleteTopics");
            r.responses[0].error_code
        }
        DeleteRecords => {
            let req = DeleteRecordsRequest {
                topics: vec![delete_records_request::DeleteRecordsTopic {
                    name: T.into(),
                    partitions: vec![delete_records_request::DeleteRecordsPartition {
                        partition_index: 0,
                        offset: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                timeout_ms: 5000,
                ..Default::default()
            };
            let r: DeleteRecordsResponse = c.call_at(2, &req).await.expect("DeleteRecords");
            r.topics[0].partitions[0].error_code
        }
        InitProducerIdTxn | InitProducerIdIdempotent => {
            let req = InitProducerIdRequest {
                transactional_id: (api == InitProducerIdTxn).then(|| TX.to_string()),
                transaction_timeout_ms: 60_000,
                ..Default::default()
            };
            let r: InitProducerIdResponse = c.call_at(4, &req).await.expect("InitProducerId");
            r.error_code
        }
        OffsetForLeaderEpoch => {
            let req = OffsetForLeaderEpochRequest {
                replica_id: -1,
                topics: vec![offset_for_leader_epoch_request::OffsetForLeaderTopic {
                    topic: T.into(),
                    partitions: vec![offset_for_leader_epoch_request::OffsetForLeaderPartition {
                        partition: 0,
                        leader_epoch: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: OffsetForLeaderEpochResponse = c.call_at(4, &req).await.expect("OffsetForLeaderEpoch");
            r.topics[0].partitions[0].error_code
        }
        AddPartitionsToTxn => {
            let req = AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: TX.into(),
                v3_and_below_producer_id: 1,
                v3_and_below_producer_epoch: 0,
                v3_and_below_topics: vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic {
                    name: T.into(),
                    partitions: vec![0],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: AddPartitionsToTxnResponse = c.call_at(3, &req).await.expect("AddPartitionsToTxn");
            r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
        }
        AddPartitionsToTxnBroker => {
            let req = AddPartitionsToTxnRequest {
                transactions: vec![add_partitions_to_txn_request::AddPartitionsToTxnTransaction {
                    transactional_id: TX.into(),
                    producer_id: 1,
                    producer_epoch: 0,
                    verify_only: true,
                    topics: vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic {
                        name: T.into(),
                        partitions: vec![0],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: AddPartitionsToTxnResponse = c.call_at(4, &req).await.expect("AddPartitionsToTxn v4");
            r.error_code
        }
        AddOffsetsToTxn => {
            let req = AddOffsetsToTxnRequest {
                transactional_id: TX.into(),
                producer_id: 1,
                producer_epoch: 0,
                group_id: G.into(),
                ..Default::default()
            };
            let r: AddOffsetsToTxnResponse = c.call_at(3, &req).await.expect("AddOffsetsToTxn");
            r.error_code
        }
        EndTxn => {
            let req = EndTxnRequest {
                transactional_id: TX.into(),
                producer_id: 1,
                producer_epoch: 0,
                committed: false,
                ..Default::default()
            };
            let r: EndTxnResponse = c.call_at(3, &req).await.expect("EndTxn");
            r.error_code
        }
        ReadShareGroupState => {
            let req = ReadShareGroupStateRequest {
                group_id: G.into(),
                topics: vec![read_share_group_state_request::ReadStateData {
                    partitions: vec![read_share_group_state_request::PartitionData {
                        partition: 0,
                        leader_epoch: -1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: ReadShareGroupStateResponse = c.call_at(0, &req).await.expect("ReadShareGroupState");
            r.results[0].partitions[0].error_code
        }
        WriteShareGroupState => {
            let req = WriteShareGroupStateRequest {
                group_id: G.into(),
                topics: vec![write_share_group_state_request::WriteStateData {
                    partitions: vec![write_share_group_state_request::PartitionData {
                        partition: 0,
                        start_offset: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: WriteShareGroupStateResponse = c.call_at(0, &req).await.expect("WriteShareGroupState");
            r.results[0].partitions[0].error_code
        }
        DeleteShareGroupState => {
            let req = DeleteShareGroupStateRequest {
                group_id: G.into(),
                topics: vec![delete_share_group_state_request::DeleteStateData {
                    partitions: vec![delete_share_group_state_request::PartitionData {
                        partition: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: DeleteShareGroupStateResponse = c.call_at(0, &req).await.expect("DeleteShareGroupState");
            r.results[0].partitions[0].error_code
        }
        FindShareCoordinator => {
            let key = format!("{G}:{}:0", Uuid::default());
            let req = FindCoordinatorRequest { key_type: 2, coordinator_keys: vec![key], ..Default::default() };
            let r: FindCoordinatorResponse = c.call_at(6, &req).await.expect("FindCoordinator");
            r.coordinators[0].error_code
        }
        DescribeShareGroupOffsets => {
            let req = DescribeShareGroupOffsetsRequest {
                groups: vec![describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup {
                    group_id: G.into(),
                    topics: None,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: DescribeShareGroupOffsetsResponse = c.call_at(0, &req).await.expect("DescribeShareGroupOffsets");
            r.groups[0].error_code
        }
        DeleteShareGroupOffsets => {
            let req = DeleteShareGroupOffsetsRequest {
                group_id: G.into(),
                topics: vec![delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic {
                    topic_name: T.into(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: DeleteShareGroupOffsetsResponse = c.call_at(0, &req).await.expect("DeleteShareGroupOffsets");
            r.error_code
        }
        WriteTxnMarkers => {
            let req = WriteTxnMarkersRequest {
                markers: vec![write_txn_markers_request::WritableTxnMarker {
                    producer_id: 4242,
                    producer_epoch: 0,
                    transaction_result: false,
                    topics: vec![write_txn_markers_request::WritableTxnMarkerTopic {
                        name: T.into(),
                        partition_indexes: vec![0],
                        ..Default::default()
                    }],
                    coordinator_epoch: 0,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: WriteTxnMarkersResponse = c.call_at(1, &req).await.expect("WriteTxnMarkers");
            r.markers[0].topics[0].partitions[0].error_code
        }
        TxnOffsetCommit => {
            let req = TxnOffsetCommitRequest {
                transactional_id: TX.into(),
                group_id: G.into(),
                producer_id: 1,
                producer_epoch: 0,
                topics: vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic {
                    name: T.into(),
                    partitions: vec![txn_offset_commit_request::TxnOffsetCommitRequestPartition {
                        partition_index: 0,
                        committed_offset: 1,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: TxnOffsetCommitResponse = c.call_at(3, &req).await.expect("TxnOffsetCommit");
            r.topics[0].partitions[0].error_code
        }
        DescribeAcls => {
            let req = DescribeAclsRequest {
                resource_type_filter: 1,
                pattern_type_filter: 1,
                operation: 1,
                permission_type: 1,
                ..Default::default()
            };
            let r: DescribeAclsResponse = c.call_at(2, &req).await.expect("DescribeAcls");
            r.error_code
        }
        CreateAcls => {
            let req = CreateAclsRequest {
                creations: vec![create_acls_request::AclCreation {
                    resource_type: TOPIC,
                    resource_name: "other".into(),
                    resource_pattern_type: LITERAL,
                    principal: "User:bob".into(),
                    host: "*".into(),
                    operation: READ,
                    permission_type: ALLOW,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: CreateAclsResponse = c.call_at(2, &req).await.expect("CreateAcls");
            r.results[0].error_code
        }
        DeleteAcls => {
            let req = DeleteAclsRequest {
                filters: vec![delete_acls_request::DeleteAclsFilter {
                    resource_type_filter: 1,
                    pattern_type_filter: 1,
                    principal_filter: Some("User:bob".into()),
                    operation: 1,
                    permission_type: 1,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: DeleteAclsResponse = c.call_at(2, &req).await.expect("DeleteAcls");
            r.filter_results[0].error_code
        }
        DescribeConfigsTopic | DescribeConfigsBroker => {
            let (resource_type, resource_name) = if api == DescribeConfigsTopic { (2, T) } else { (4, "1") };
            let req = DescribeConfigsRequest {
                resources: vec![describe_configs_request::DescribeConfigsResource {
                    resource_type,
                    resource_name: resource_name.into(),
                    configuration_keys: None,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: DescribeConfigsResponse = c.call_at(4, &req).await.expect("DescribeConfigs");
            r.results[0].error_code
        }
        AlterConfigs => {
            let req = AlterConfigsRequest {
                resources: vec![alter_configs_request::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: T.into(),
                    configs: vec![alter_configs_request::AlterableConfig {
                        name: "retention.ms".into(),
                        value: Some("600000".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                validate_only: true,
                ..Default::default()
            };
            let r: AlterConfigsResponse = c.call_at(2, &req).await.expect("AlterConfigs");
            r.responses[0].error_code
        }
        IncrementalAlterConfigs => {
            let req = IncrementalAlterConfigsRequest {
                resources: vec![incremental_alter_configs_request::AlterConfigsResource {
                    resource_type: 2,
                    resource_name: T.into(),
                    configs: vec![incremental_alter_configs_request::AlterableConfig {
                        name: "retention.ms".into(),
                        config_operation: 0,
                        value: Some("600000".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                validate_only: true,
                ..Default::default()
            };
            let r: IncrementalAlterConfigsResponse = c.call_at(1, &req).await.expect("IncrementalAlterConfigs");
            r.responses[0].error_code
        }
        AlterReplicaLogDirs => {
            let req = AlterReplicaLogDirsRequest {
                dirs: vec![alter_replica_log_dirs_request::AlterReplicaLogDir {
                    path: "/nowhere".into(),
                    topics: vec![alter_replica_log_dirs_request::AlterReplicaLogDirTopic {
                        name: T.into(),
                        partitions: vec![0],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: AlterReplicaLogDirsResponse = c.call_at(2, &req).await.expect("AlterReplicaLogDirs");
            r.results[0].partitions[0].error_code
        }
        DescribeLogDirs => {
            let r: DescribeLogDirsResponse = c
                .call_at(4, &DescribeLogDirsRequest { topics: None, ..Default::default() })
                .await
                .expect("DescribeLogDirs");
            r.error_code
        }
        CreatePartitions => {
            let req = CreatePartitionsRequest {
                topics: vec![create_partitions_request::CreatePartitionsTopic {
                    name: T.into(),
                    count: 2,
                    assignments: None,
                    ..Default::default()
                }],
                timeout_ms: 5000,
                validate_only: true,
                ..Default::default()
            };
            let r: CreatePartitionsResponse = c.call_at(2, &req).await.expect("CreatePartitions");
            r.results[0].error_code
        }
        DeleteGroups => {
            let req = DeleteGroupsRequest { groups_names: vec!["gone".into()], ..Default::default() };
            let r: DeleteGroupsResponse = c.call_at(2, &req).await.expect("DeleteGroups");
            r.results[0].error_code
        }
        ElectLeaders => {
            let req = ElectLeadersRequest {
                election_type: 0,
                topic_partitions: Some(vec![elect_leaders_request::TopicPartitions {
                    topic: T.into(),
                    partitions: vec![0],
                    ..Default::default()
                }]),
                ..Default::default()
            };
            let r: ElectLeadersResponse = c.call_at(2, &req).await.expect("ElectLeaders");
            r.error_code
        }
        AlterPartitionReassignments => {
            let req = AlterPartitionReassignmentsRequest {
                topics: vec![alter_partition_reassignments_request::ReassignableTopic {
                    name: T.into(),
                    partitions: vec![alter_partition_reassignments_request::ReassignablePartition {
                        partition_index: 0,
                        replicas: None,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: AlterPartitionReassignmentsResponse = c.call_at(0, &req).await.expect("AlterPartitionReassignments");
            r.error_code
        }
        ListPartitionReassignments => {
            let r: ListPartitionReassignmentsResponse =
                c.call_at(0, &ListPartitionReassignmentsRequest::default()).await.expect("ListPartitionReassignments");
            r.error_code
        }
        OffsetDelete => {
            let req = OffsetDeleteRequest {
                group_id: G.into(),
                topics: vec![offset_delete_request::OffsetDeleteRequestTopic {
                    name: T.into(),
                    partitions: vec![offset_delete_request::OffsetDeleteRequestPartition {
                        partition_index: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: OffsetDeleteResponse = c.call_at(0, &req).await.expect("OffsetDelete");
            if r.error_code != 0 {
                r.error_code
            } else {
                r.topics[0].partitions[0].error_code
            }
        }
        DescribeUserScramCredentials => {
            let r: DescribeUserScramCredentialsResponse = c
                .call_at(0, &DescribeUserScramCredentialsRequest::default())
                .await
                .expect("DescribeUserScramCredentials");
            r.error_code
        }
        AlterUserScramCredentials => {
            let req = AlterUserScramCredentialsRequest {
                deletions: vec![alter_user_scram_credentials_request::ScramCredentialDeletion {
                    name: "nobody".into(),
                    mechanism: 1,
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: AlterUserScramCredentialsResponse = c.call_at(0, &req).await.expect("AlterUserScramCredentials");
            r.results[0].error_code
        }
        DescribeQuorum => {
            let req = DescribeQuorumRequest {
                topics: vec![describe_quorum_request::TopicData {
                    topic_name: "__cluster_metadata".into(),
                    partitions: vec![describe_quorum_request::PartitionData {
                        partition_index: 0,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: DescribeQuorumResponse = c.call_at(1, &req).await.expect("DescribeQuorum");
            r.error_code
        }
        DescribeCluster => {
            let r: DescribeClusterResponse = c
                .call_at(1, &DescribeClusterRequest { endpoint_type: 1, ..Default::default() })
                .await
                .expect("DescribeCluster");
            r.error_code
        }
        DescribeProducers => {
            let req = DescribeProducersRequest {
                topics: vec![describe_producers_request::TopicRequest {
                    name: T.into(),
                    partition_indexes: vec![0],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let r: DescribeProducersResponse = c.call_at(0, &req).await.expect("DescribeProducers");
            r.topics[0].partitions[0].error_code
        }
        DescribeTransactions => {
            let req = DescribeTransactionsRequest { transactional_ids: vec![TX.into()], ..Default::default() };
            let r: DescribeTransactionsResponse = c.call_at(0, &req).await.expect("DescribeTransactions");
            r.transaction_states[0].error_code
        }
        ListTransactions => {
            let r: ListTransactionsResponse = c
                .call_at(1, &ListTransactionsRequest { duration_filter: -1, ..Default::default() })
                .await
                .expect("ListTransactions");
            assert_eq!(r.error_code, 0);
            if r.transaction_states.iter().any(|s| s.transactional_id == TX) {
                0
            } else {
                TXN_DENIED
            }
        }
        ConsumerGroupHeartbeat => {
            let req = ConsumerGroupHeartbeatRequest {
                group_id: CG.into(),
                member_id: String::new(),
                member_epoch: 0,
                rebalance_timeout_ms: 10_000,
                subscribed_topic_names: Some(vec![T.into()]),
                topic_partitions: Some(Vec::new()),
                ..Default::default()
            };
            let r: ConsumerGroupHeartbeatResponse = c.call_at(0, &req).await.expect("ConsumerGroupHeartbeat");
            r.error_code
        }
        ConsumerGroupDescribe => {
            let req = ConsumerGroupDescribeRequest { group_ids: vec![CG.into()], ..Default::default() };
            let r: ConsumerGroupDescribeResponse = c.call_at(0, &req).await.expect("ConsumerGroupDescribe");
            r.groups[0].error_code
        }
        ListConfigResources => {
            let r: ListConfigResourcesResponse =
                c.call_at(1, &ListConfigResourcesRequest::default()).await.expect("ListConfigResources");
            r.error_code
        }
        DescribeTopicPartitions => {
            let req = DescribeTopicPartitionsRequest {
                topics: vec![describe_topic_partitions_request::TopicRequest { name: T.into(), ..Default::default() }],
                response_partition_limit: 100,
                ..Default::default()
            };
            let r: DescribeTopicPartitionsResponse = c.call_at(0, &req).await.expect("DescribeTopicPartitions");
            r.topics[0].error_code
        }
    }
}

/// ListOffsets (latest) of `orders`-0.
fn list_offsets_latest() -> ListOffsetsRequest {
    ListOffsetsRequest {
        replica_id: -1,
        topics: vec![list_offsets_request::ListOffsetsTopic {
            name: T.into(),
            partitions: vec![list_offsets_request::ListOffsetsPartition {
                partition_index: 0,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The end offset of `orders`-0, read by the super user.
async fn log_end(admin: &mut Client) -> i64 {
    let r: ListOffsetsResponse = admin.call_at(7, &list_offsets_latest()).await.expect("ListOffsets");
    r.topics[0].partitions[0].offset
}

/// Creates a topic of one partition as the super user; its error code.
async fn create(admin: &mut Client, name: &str) -> i16 {
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: CreateTopicsResponse = admin.call_at(5, &req).await.expect("CreateTopics");
    r.topics[0].error_code
}

/// Brings back what an allowed request may have taken away: the topic `doomed`, and
/// a committed offset of group `g` (so it exists for the group listings).
async fn restore(admin: &mut Client) {
    let code = create(admin, "doomed").await;
    assert!(matches!(code, 0 | 36), "CreateTopics doomed: {code}");
    assert_eq!(call(Api::OffsetCommit, admin).await, 0);
}

#[derive(Clone, Copy, Debug)]
enum State {
    Allow,
    Deny,
    NoAcl,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_checks_the_operation_kafka_checks() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut admin = login(&b.addr, "admin", "admin-secret").await;
    let mut alice = login(&b.addr, "alice", "alice-secret").await;

    // The resources the requests name: a topic with a record, a group with a commit,
    // a transactional id the coordinator knows.
    assert_eq!(create(&mut admin, T).await, 0);
    assert_eq!(call(Api::Produce, &mut admin).await, 0);
    // The first transactional FindCoordinator creates __transaction_state; the
    // coordinator answers COORDINATOR_NOT_AVAILABLE / LOAD_IN_PROGRESS until it is led
    // and loaded, as a client sees it (which retries the same way).
    assert_eq!(call(Api::FindTxnCoordinator, &mut admin).await, 0);
    let mut code = -1;
    for _ in 0..100 {
        code = call(Api::InitProducerIdTxn, &mut admin).await;
        if code != 15 && code != 14 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(code, 0, "InitProducerId for {TX}");
    restore(&mut admin).await;

    let mut checked = 0;
    let mut wrong = Vec::new();
    for case in cases() {
        for state in [State::Allow, State::Deny, State::NoAcl] {
            clear(&mut admin).await;
            restore(&mut admin).await;
            grant(&mut admin, case.also, ALLOW).await;
            match state {
                State::Allow => grant(&mut admin, &[case.need], ALLOW).await,
                State::Deny => {
                    let Acl(rt, name, pattern, op) = case.need;
                    grant(&mut admin, &[Acl(rt, name, pattern, ALL)], ALLOW).await;
                    grant(&mut admin, &[Acl(rt, name, pattern, op)], DENY).await;
                }
                State::NoAcl => {}
            }
            let before = log_end(&mut admin).await;
            let code = call(case.api, &mut alice).await;
            let after = log_end(&mut admin).await;
            checked += 1;
            let denied = code == case.denial;
            let ok = match state {
                State::Allow => !denied,
                State::Deny | State::NoAcl => denied,
            };
            if !ok {
                wrong.push(format!("{:?} needing {:?}, {:?}: error {code}", case.api, case.need, state));
            }
            if denied && matches!(case.api, Api::Produce | Api::ProduceTxn) {
                assert_eq!(before, after, "{:?}: a denied produce appended", case.api);
            }
        }
        // The super user needs no ACL at all.
        clear(&mut admin).await;
        restore(&mut admin).await;
        let code = call(case.api, &mut admin).await;
        checked += 1;
        if code == case.denial {
            wrong.push(format!("{:?} by the super user: error {code}", case.api));
        }
    }
    assert!(wrong.is_empty(), "{} of {checked} cases wrong:\n{}", wrong.len(), wrong.join("\n"));
    println!("{checked} cases (APIs x allow/deny/no ACL, and the super user): 0 wrong");

    // Denials are counted for operators, per resource type.
    for (code, name) in [(2, "topic"), (3, "group"), (4, "cluster"), (5, "transactional id")] {
        let n = strom::metrics::AUTHORIZATION_DENIED[code].load(Ordering::Relaxed);
        assert!(n > 0, "no {name} denial counted");
    }
    b.stop().await;
}

/// Runs `strom ARGS` as `user` (a `--command-config` file with its PLAIN login).
async fn strom_as(dir: &std::path::Path, addr: &str, user: &str, password: &str, args: &[&str]) -> (bool, String) {
    let config = dir.join(format!("{user}.properties"));
    std::fs::write(
        &config,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.\
             plain.PlainLoginModule required username=\"{user}\" password=\"{password}\";\n"
        ),
    )
    .expect("command config");
    let mut argv: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    argv.extend(["--bootstrap-server".to_string(), addr.to_string(), "--command-config".to_string()]);
    argv.push(config.display().to_string());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_strom")).args(&argv).env("STROM_LOG", "warn").output()
    })
    .await
    .expect("join")
    .expect("run strom");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// `strom acl add|list|remove` against a broker enforcing ACLs: what the super user adds
/// takes effect for alice at once and is listed; what it removes stops taking effect;
/// alice herself may not manage ACLs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strom_acl_adds_lists_and_removes_bindings() {
    let dir = tempfile::tempdir().unwrap();
    let b = broker(dir.path()).await;
    let mut admin = login(&b.addr, "admin", "admin-secret").await;
    let mut alice = login(&b.addr, "alice", "alice-secret").await;
    assert_eq!(create(&mut admin, T).await, 0);
    assert_eq!(call(Api::ListOffsets, &mut alice).await, TOPIC_DENIED);

    let add =
        ["acl", "add", "--topic", T, "--principal", "User:alice", "--operation", "Describe", "--operation", "Read"];
    let (ok, out) = strom_as(dir.path(), &b.addr, "admin", "admin-secret", &add).await;
    assert!(ok, "{out}");
    assert!(out.contains("added 2 ALLOW binding(s) for User:alice on Topic orders (LITERAL)"), "{out}");
    assert_eq!(call(Api::ListOffsets, &mut alice).await, 0, "DESCRIBE granted");

    let (ok, out) = strom_as(dir.path(), &b.addr, "admin", "admin-secret", &["acl", "list", "--topic", T]).await;
    assert!(ok, "{out}");
    let rows: Vec<&str> = out.lines().filter(|l| l.contains("User:alice")).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(rows.iter().any(|r| r.contains("Describe")) && rows.iter().any(|r| r.contains("Read")), "{out}");

    let (ok, out) = strom_as(dir.path(), &b.addr, "alice", "alice-secret", &["acl", "list"]).await;
    assert!(!ok && out.contains("CLUSTER_AUTHORIZATION_FAILED"), "alice listed ACLs: {out}");

    let remove = ["acl", "remove", "--topic", T, "--principal", "User:alice", "--operation", "Describe"];
    let (ok, out) = strom_as(dir.path(), &b.addr, "admin", "admin-secret", &remove).await;
    assert!(ok, "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with("removed ALLOW User:alice Describe")).count(), 1, "{out}");
    // READ still implies DESCRIBE; without it nothing is left.
    assert_eq!(call(Api::ListOffsets, &mut alice).await, 0);
    let remove = ["acl", "remove", "--topic", T, "--principal", "User:alice"];
    let (ok, out) = strom_as(dir.path(), &b.addr, "admin", "admin-secret", &remove).await;
    assert!(ok && out.contains("removed ALLOW User:alice Read"), "{out}");
    assert_eq!(call(Api::ListOffsets, &mut alice).await, TOPIC_DENIED);
    b.stop().await;
}
