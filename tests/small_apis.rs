//! The small APIs Kafka 4.x clients call (issue 20 item 9): ListConfigResources,
//! AlterReplicaLogDirs, DescribeQuorum, GetTelemetrySubscriptions and PushTelemetry,
//! over the wire against an in-process broker. Each test names the Kafka rule it checks.

mod common;

use std::time::Duration;

use bytes::Bytes;
use strom_client::Client;
use strom_protocol::alter_replica_log_dirs_request::{AlterReplicaLogDir, AlterReplicaLogDirTopic};
use strom_protocol::create_topics_request::CreatableTopic;
use strom_protocol::describe_log_dirs_request::DescribableLogDirTopic;
use strom_protocol::describe_quorum_request::{PartitionData, TopicData};
use strom_protocol::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeQuorumRequest, DescribeQuorumResponse,
    GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse, ListConfigResourcesRequest,
    ListConfigResourcesResponse, MetadataRequest, MetadataResponse, PushTelemetryRequest, PushTelemetryResponse, Uuid,
};

const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const UNSUPPORTED_VERSION: i16 = 35;
const INVALID_REQUEST: i16 = 42;
const LOG_DIR_NOT_FOUND: i16 = 57;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const THROTTLING_QUOTA_EXCEEDED: i16 = 89;
const UNKNOWN_SUBSCRIPTION_ID: i16 = 117;
const TELEMETRY_TOO_LARGE: i16 = 118;

async fn connect(addr: &str) -> Client {
    Client::connect(addr, Duration::from_secs(30)).await.expect("connect")
}

async fn create_topic(c: &mut Client, name: &str, partitions: i32) {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let resp: CreateTopicsResponse = c.call_at(7, &req).await.expect("create topics");
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0].error_message);
}

/// Every API of item 9 is advertised with the versions Kafka 4.x serves.
#[tokio::test]
async fn the_small_apis_are_advertised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let c = connect(&broker.addr).await;
    let v = c.api_versions();
    assert_eq!(v.get(&34), Some(&(1, 2)), "AlterReplicaLogDirs");
    assert_eq!(v.get(&55), Some(&(0, 2)), "DescribeQuorum");
    assert_eq!(v.get(&71), Some(&(0, 0)), "GetTelemetrySubscriptions");
    assert_eq!(v.get(&72), Some(&(0, 0)), "PushTelemetry");
    assert_eq!(v.get(&74), Some(&(0, 1)), "ListConfigResources");
    broker.stop().await;
}

async fn list_config_resources(c: &mut Client, version: i16, types: &[i8]) -> ListConfigResourcesResponse {
    let req = ListConfigResourcesRequest { resource_types: types.to_vec(), ..Default::default() };
    c.call_at(version, &req).await.expect("list config resources")
}

fn listed(resp: &ListConfigResourcesResponse) -> Vec<(i8, String)> {
    resp.config_resources.iter().map(|r| (r.resource_type, r.resource_name.clone())).collect()
}

/// KafkaApis.handleListConfigResources (KIP-1142): an empty v1 type list lists every
/// supported type, in the order GROUP, CLIENT_METRICS, BROKER_LOGGER, BROKER, TOPIC;
/// a type named twice is listed once; the request order does not matter; a type
/// outside {2, 4, 8, 16, 32} fails the whole request with UNSUPPORTED_VERSION; v0
/// (ListClientMetricsResources) lists client-metrics subscriptions only, none here.
/// Topics are every topic, internal ones included; groups are groups with dynamic
/// configs (none here, even with a running group).
#[tokio::test]
async fn list_config_resources_lists_what_kafka_lists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[("node.id", "7")]).await;
    let mut c = connect(&broker.addr).await;
    create_topic(&mut c, "zeta", 1).await;
    create_topic(&mut c, "alpha", 2).await;
    let meta: MetadataResponse =
        c.call_at(12, &MetadataRequest { topics: None, ..Default::default() }).await.expect("metadata");
    let mut topics: Vec<String> = meta.topics.iter().filter_map(|t| t.name.clone()).collect();
    topics.sort();
    assert!(topics.contains(&"alpha".to_string()) && topics.contains(&"zeta".to_string()));
    let as_topics = |names: &[String]| names.iter().map(|n| (2i8, n.clone())).collect::<Vec<_>>();

    let all = list_config_resources(&mut c, 1, &[]).await;
    assert_eq!(all.error_code, 0);
    let mut want = vec![(8, "7".to_string()), (4, "7".to_string())];
    want.extend(as_topics(&topics));
    assert_eq!(listed(&all), want);

    let resp = list_config_resources(&mut c, 1, &[2, 2]).await;
    assert_eq!(listed(&resp), as_topics(&topics), "a repeated type is listed once");
    let resp = list_config_resources(&mut c, 1, &[2, 4]).await;
    let mut want = vec![(4, "7".to_string())];
    want.extend(as_topics(&topics));
    assert_eq!(listed(&resp), want, "Kafka's type order, not the request's");
    for types in [&[32i8][..], &[16], &[16, 32]] {
        let resp = list_config_resources(&mut c, 1, types).await;
        assert_eq!((resp.error_code, listed(&resp)), (0, vec![]), "types {types:?}");
    }
    for types in [&[64i8][..], &[2, 64], &[0], &[-1]] {
        let resp = list_config_resources(&mut c, 1, types).await;
        assert_eq!((resp.error_code, listed(&resp)), (UNSUPPORTED_VERSION, vec![]), "types {types:?}");
    }
    let v0 = list_config_resources(&mut c, 0, &[]).await;
    assert_eq!((v0.error_code, v0.config_resources.len()), (0, 0));
    broker.stop().await;
}

async fn alter_dirs(c: &mut Client, version: i16, moves: &[(&str, &str, &[i32])]) -> Vec<(String, i32, i16)> {
    let req = AlterReplicaLogDirsRequest {
        dirs: moves
            .iter()
            .map(|(path, topic, partitions)| AlterReplicaLogDir {
                path: path.to_string(),
                topics: vec![AlterReplicaLogDirTopic {
                    name: topic.to_string(),
                    partitions: partitions.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp: AlterReplicaLogDirsResponse = c.call_at(version, &req).await.expect("alter replica log dirs");
    resp.results
        .into_iter()
        .flat_map(|t| {
            let name = t.topic_name;
            t.partitions.into_iter().map(move |p| (name.clone(), p.partition_index, p.error_code))
        })
        .collect()
}

/// ReplicaManager.alterReplicaLogDirs, per partition: a future-log directory name over
/// 255 characters is INVALID_TOPIC_EXCEPTION (checked first); a destination that is not
/// a configured log dir is LOG_DIR_NOT_FOUND; a partition the metadata does not have is
/// UNKNOWN_TOPIC_OR_PARTITION; a replica already in the destination is NONE. A partition
/// named twice takes the last path (the request's partition → dir map).
#[tokio::test]
async fn alter_replica_log_dirs_answers_as_kafka() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    create_topic(&mut c, "moves", 2).await;
    let described: DescribeLogDirsResponse = c
        .call_at(
            4,
            &DescribeLogDirsRequest {
                topics: Some(vec![DescribableLogDirTopic {
                    topic: "moves".into(),
                    partitions: vec![0],
                    ..Default::default()
                }]),
                ..Default::default()
            },
        )
        .await
        .expect("describe log dirs");
    let reported = described.results[0].log_dir.clone();
    let configured = dir.path().display().to_string();
    let long = "x".repeat(215);

    for version in [1, 2] {
        let got = alter_dirs(
            &mut c,
            version,
            &[
                (&reported, "moves", &[0, 1, 2, -1]),
                (&configured, "missing", &[0]),
                ("/no/such/dir", "moves", &[1]),
                ("relative/dir", long.as_str(), &[0]),
            ],
        )
        .await;
        assert_eq!(
            got,
            vec![
                ("missing".to_string(), 0, UNKNOWN_TOPIC_OR_PARTITION),
                ("moves".to_string(), -1, UNKNOWN_TOPIC_OR_PARTITION),
                ("moves".to_string(), 0, 0),
                ("moves".to_string(), 1, LOG_DIR_NOT_FOUND),
                ("moves".to_string(), 2, UNKNOWN_TOPIC_OR_PARTITION),
                (long.clone(), 0, INVALID_TOPIC_EXCEPTION),
            ],
            "v{version}"
        );
        // The configured spelling is accepted as well as the reported one.
        assert_eq!(alter_dirs(&mut c, version, &[(&configured, "moves", &[1])]).await, vec![("moves".into(), 1, 0)]);
    }
    // 210 characters still fits: 210 + "-0." + 32 + "-future" = 252.
    let fits = "y".repeat(210);
    assert_eq!(
        alter_dirs(&mut c, 2, &[(&reported, &fits, &[0])]).await,
        vec![(fits.clone(), 0, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    assert!(alter_dirs(&mut c, 2, &[]).await.is_empty());
    broker.stop().await;
}

fn quorum_request(topics: &[(&str, &[i32])]) -> DescribeQuorumRequest {
    DescribeQuorumRequest {
        topics: topics
            .iter()
            .map(|(name, partitions)| TopicData {
                topic_name: name.to_string(),
                partitions: partitions
                    .iter()
                    .map(|&p| PartitionData { partition_index: p, ..Default::default() })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// KafkaRaftClient.handleDescribeQuorumRequest on a single combined node: the node is the
/// only voter and the leader; its replica state has the current time as last fetch and
/// caught-up time (v1+); v2 lists the voter's endpoint. Anything but exactly
/// `__cluster_metadata`-0 gets UNKNOWN_TOPIC_OR_PARTITION on every partition named.
#[tokio::test]
async fn describe_quorum_is_a_single_voter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[("node.id", "3")]).await;
    let mut c = connect(&broker.addr).await;
    let port: u16 = broker.addr.rsplit_once(':').expect("port").1.parse().expect("port");
    for version in 0..=2 {
        let before = chrono::Utc::now().timestamp_millis();
        let resp: DescribeQuorumResponse =
            c.call_at(version, &quorum_request(&[("__cluster_metadata", &[0])])).await.expect("describe quorum");
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].topic_name, "__cluster_metadata");
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.error_code, p.leader_id, p.leader_epoch), (0, 0, 3, 1), "v{version}");
        // Startup wrote at least the producer-id reservation and __consumer_offsets.
        assert!(p.high_watermark >= 2, "{p:?}");
        assert!(p.observers.is_empty());
        assert_eq!(p.current_voters.len(), 1);
        let voter = &p.current_voters[0];
        assert_eq!(
            (voter.replica_id, voter.log_end_offset, voter.replica_directory_id),
            (3, p.high_watermark, Uuid::ZERO)
        );
        if version >= 1 {
            assert!(voter.last_fetch_timestamp >= before, "v{version}: {voter:?}");
            assert_eq!(voter.last_fetch_timestamp, voter.last_caught_up_timestamp);
        } else {
            assert_eq!((voter.last_fetch_timestamp, voter.last_caught_up_timestamp), (-1, -1));
        }
        if version >= 2 {
            assert_eq!(resp.nodes.len(), 1);
            assert_eq!(resp.nodes[0].node_id, 3);
            let l = &resp.nodes[0].listeners;
            assert_eq!(l.len(), 1);
            assert_eq!((l[0].name.as_str(), l[0].host.as_str(), l[0].port), ("CONTROLLER", "127.0.0.1", port));
        } else {
            assert!(resp.nodes.is_empty());
        }
    }
    for request in [
        quorum_request(&[("__cluster_metadata", &[1])]),
        quorum_request(&[("orders", &[0])]),
        quorum_request(&[("__cluster_metadata", &[0, 1])]),
        quorum_request(&[("__cluster_metadata", &[0]), ("orders", &[3])]),
        quorum_request(&[("__cluster_metadata", &[])]),
    ] {
        let resp: DescribeQuorumResponse = c.call_at(2, &request).await.expect("describe quorum");
        assert_eq!(resp.error_code, 0);
        let named: Vec<(String, i32)> = request
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic_name.clone(), p.partition_index)))
            .collect();
        let answered: Vec<(String, i32, i16, i32)> = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| (t.topic_name.clone(), p.partition_index, p.error_code, p.leader_id))
            })
            .collect();
        let expected: Vec<_> = named.into_iter().map(|(t, p)| (t, p, UNKNOWN_TOPIC_OR_PARTITION, 0)).collect();
        assert_eq!(answered, expected);
        assert!(resp.nodes.is_empty());
    }
    let empty: DescribeQuorumResponse = c.call_at(1, &quorum_request(&[])).await.expect("describe quorum");
    assert_eq!((empty.error_code, empty.topics.len()), (0, 0));
    broker.stop().await;
}

async fn get_subscriptions(c: &mut Client, id: Uuid) -> GetTelemetrySubscriptionsResponse {
    let req = GetTelemetrySubscriptionsRequest { client_instance_id: id, ..Default::default() };
    c.call_at(0, &req).await.expect("get telemetry subscriptions")
}

async fn push(c: &mut Client, id: Uuid, subscription_id: i32, terminating: bool, compression: i8, bytes: usize) -> i16 {
    let req = PushTelemetryRequest {
        client_instance_id: id,
        subscription_id,
        terminating,
        compression_type: compression,
        metrics: Bytes::from(vec![7u8; bytes]),
        ..Default::default()
    };
    let resp: PushTelemetryResponse = c.call_at(0, &req).await.expect("push telemetry");
    resp.error_code
}

/// ClientMetricsManager with no subscriptions: a zero instance id gets a new id; the
/// subscription is empty with the default 5-minute interval, 1 MiB limit, delta
/// temporality and zstd/lz4/gzip/snappy; the subscription id is CRC32C("[]300000") XOR
/// the id's Java hash. A second Get within the interval on the same connection is
/// throttled; a Get on a new connection starts afresh and echoes the id.
#[tokio::test]
async fn get_telemetry_subscriptions_gives_an_empty_subscription() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let first = get_subscriptions(&mut c, Uuid::ZERO).await;
    assert_eq!(first.error_code, 0);
    let id = first.client_instance_id;
    assert_ne!(id, Uuid::ZERO);
    assert!(!id.to_string().starts_with('-'), "{id}");
    assert_eq!(first.requested_metrics, Vec::<String>::new());
    assert_eq!(first.push_interval_ms, 300_000);
    assert_eq!(first.telemetry_max_bytes, 1_048_576);
    assert_eq!(first.accepted_compression_types, vec![4, 3, 1, 2]);
    assert!(first.delta_temporality);
    assert_eq!(first.subscription_id, strom::api::telemetry::subscription_id(&id));
    let hash = {
        let half = |b: &[u8]| b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
        let h = half(&id.0[..8]) ^ half(&id.0[8..]);
        ((h >> 32) as u32 ^ h as u32) as i32
    };
    assert_eq!(first.subscription_id ^ hash, 0xd4c7_5bde_u32 as i32, "CRC32C of \"[]300000\"");

    let again = get_subscriptions(&mut c, id).await;
    assert_eq!(again.error_code, THROTTLING_QUOTA_EXCEEDED);
    assert_eq!(again.client_instance_id, Uuid::ZERO, "an error response carries nothing else");

    let mut other = connect(&broker.addr).await;
    let echoed = get_subscriptions(&mut other, id).await;
    assert_eq!((echoed.error_code, echoed.client_instance_id), (0, id));
    assert_eq!(echoed.subscription_id, first.subscription_id);
    let second = get_subscriptions(&mut other, Uuid::ZERO).await;
    assert_ne!(second.client_instance_id, id, "every zero id gets a new instance");
    broker.stop().await;
}

/// ClientMetricsManager.processPushTelemetryRequest: a zero or reserved instance id is
/// INVALID_REQUEST; the first push after a Get is accepted (and discarded), an
/// immediate second one throttled; a wrong subscription id is UNKNOWN_SUBSCRIPTION_ID
/// (after which a Get is not throttled); an unknown compression type is
/// UNSUPPORTED_COMPRESSION_TYPE; metrics over 1 MiB are TELEMETRY_TOO_LARGE; a
/// terminating push is accepted even within the interval, and nothing after it.
#[tokio::test]
async fn push_telemetry_is_validated_and_discarded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    assert_eq!(push(&mut c, Uuid::ZERO, 0, false, 0, 10).await, INVALID_REQUEST);
    let reserved = Uuid([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(push(&mut c, reserved, 0, false, 0, 10).await, INVALID_REQUEST);

    let sub = get_subscriptions(&mut c, Uuid::ZERO).await;
    let (id, sid) = (sub.client_instance_id, sub.subscription_id);
    assert_eq!(push(&mut c, id, sid, false, 4, 100).await, 0);
    assert_eq!(push(&mut c, id, sid, false, 4, 100).await, THROTTLING_QUOTA_EXCEEDED);
    assert_eq!(push(&mut c, id, sid, true, 0, 0).await, 0, "a terminating push is never throttled");
    assert_eq!(push(&mut c, id, sid, true, 0, 0).await, INVALID_REQUEST, "nothing after terminating");

    // Each check on a fresh instance (a new connection starts one afresh).
    let mut c = connect(&broker.addr).await;
    let id = get_subscriptions(&mut c, Uuid::ZERO).await.client_instance_id;
    assert_eq!(push(&mut c, id, sid ^ 1, false, 0, 10).await, UNKNOWN_SUBSCRIPTION_ID);
    let retry = get_subscriptions(&mut c, id).await;
    assert_eq!(retry.error_code, 0, "a Get after UNKNOWN_SUBSCRIPTION_ID is not throttled");
    // That Get did not count as one (`maybeUpdateGetRequestTimestamp` refused it before
    // the error exemption applied), so a push right after it is still within the interval.
    assert_eq!(push(&mut c, id, retry.subscription_id, false, 0, 10).await, THROTTLING_QUOTA_EXCEEDED);
    let mut c = connect(&broker.addr).await;
    let sub = get_subscriptions(&mut c, Uuid::ZERO).await;
    assert_eq!(
        push(&mut c, sub.client_instance_id, sub.subscription_id, false, 5, 10).await,
        UNSUPPORTED_COMPRESSION_TYPE
    );
    assert_eq!(
        get_subscriptions(&mut c, sub.client_instance_id).await.error_code,
        0,
        "nor after UNSUPPORTED_COMPRESSION_TYPE"
    );
    let mut c = connect(&broker.addr).await;
    let sub = get_subscriptions(&mut c, Uuid::ZERO).await;
    assert_eq!(
        push(&mut c, sub.client_instance_id, sub.subscription_id, false, 0, 1_048_577).await,
        TELEMETRY_TOO_LARGE
    );
    let mut c = connect(&broker.addr).await;
    let sub = get_subscriptions(&mut c, Uuid::ZERO).await;
    assert_eq!(push(&mut c, sub.client_instance_id, sub.subscription_id, false, 1, 1_048_576).await, 0);
    // A push without a Get first (an instance this broker never saw) is checked the same way.
    let mut c = connect(&broker.addr).await;
    let stranger = Uuid([9; 16]);
    let sid = strom::api::telemetry::subscription_id(&stranger);
    assert_eq!(push(&mut c, stranger, sid, false, 2, 10).await, 0);
    broker.stop().await;
}
