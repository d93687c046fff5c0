//! Kafka behaviours that client libraries' own test suites rely on (issue 20), checked
//! over the wire with Strom's protocol client against an in-process broker. Each test
//! names the Kafka rule it matches.

mod common;

use bytes::Bytes;
use std::time::Duration;
use strom_client::Client;
use strom_protocol::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use strom_protocol::describe_configs_request::DescribeConfigsResource;
use strom_protocol::describe_configs_response::DescribeConfigsResourceResult;
use strom_protocol::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::join_group_request::JoinGroupRequestProtocol;
use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::produce_response::PartitionProduceResponse;
use strom_protocol::records::{split_batches, BatchBuilder};
use strom_protocol::sync_group_request::SyncGroupRequestAssignment;
use strom_protocol::{
    CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse, FetchRequest,
    FetchResponse, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, ProduceRequest,
    ProduceResponse, SyncGroupRequest, SyncGroupResponse,
};

const INVALID_RECORD: i16 = 87;
const INVALID_CONFIG: i16 = 40;
const MEMBER_ID_REQUIRED: i16 = 79;
const REBALANCE_IN_PROGRESS: i16 = 27;

async fn connect(addr: &str) -> Client {
    Client::connect(addr, Duration::from_secs(30)).await.expect("connect")
}

async fn create_topic(
    c: &mut Client,
    version: i16,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> CreateTopicsResponse {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: k.to_string(),
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    c.call_at(version, &req).await.expect("create topics")
}

async fn produce(c: &mut Client, topic: &str, partition: i32, batch: Bytes) -> PartitionProduceResponse {
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData { index: partition, records: Some(batch), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp: ProduceResponse = c.call_at(9, &req).await.expect("produce");
    resp.responses.into_iter().next().expect("topic").partition_responses.into_iter().next().expect("partition")
}

fn now_ms() -> i64 {
    strom_storage::now_ms()
}

fn records(entries: &[(Option<&[u8]>, &[u8])]) -> Bytes {
    let mut b = BatchBuilder::new(now_ms());
    for (k, v) in entries {
        b.add(*k, Some(v));
    }
    b.build().freeze()
}

async fn fetch(
    c: &mut Client,
    topic: &str,
    partitions: &[i32],
    max_bytes: i32,
    partition_max_bytes: i32,
) -> FetchResponse {
    let req = FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: partitions
                .iter()
                .map(|&p| FetchPartition { partition: p, fetch_offset: 0, partition_max_bytes, ..Default::default() })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    c.call_at(11, &req).await.expect("fetch")
}

/// Kafka's `LogValidator.validateKey`: a compacted topic refuses records without a key,
/// INVALID_RECORD with one record error per keyless record, and appends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_records_are_refused_on_compacted_topics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    for (topic, policy) in [("compacted", "compact"), ("both", "compact,delete")] {
        let r = create_topic(&mut c, 5, topic, 1, &[("cleanup.policy", policy)]).await;
        assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
        let p =
            produce(&mut c, topic, 0, records(&[(Some(b"k1"), b"a"), (None, b"b"), (Some(b"k2"), b"c"), (None, b"d")]))
                .await;
        assert_eq!(p.error_code, INVALID_RECORD, "{topic}: {p:?}");
        assert_eq!(p.record_errors.iter().map(|e| e.batch_index).collect::<Vec<_>>(), vec![1, 3]);
        let msg = p.record_errors[0].batch_index_error_message.as_deref().unwrap_or_default();
        assert!(msg.contains("Compacted topic cannot accept message without key"), "{msg}");
        let p = produce(&mut c, topic, 0, records(&[(Some(b"k1"), b"a")])).await;
        assert_eq!((p.error_code, p.base_offset), (0, 0), "the refused batch appended nothing");
    }
    // A delete-only topic takes keyless records.
    create_topic(&mut c, 5, "plain", 1, &[]).await;
    assert_eq!(produce(&mut c, "plain", 0, records(&[(None, b"x")])).await.error_code, 0);
    broker.stop().await;
}

/// KIP-74: only the first partition with data may go past the response limit; later
/// partitions get at most what is left of `max_bytes`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_max_bytes_is_exceeded_only_by_the_first_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    create_topic(&mut c, 5, "large", 2, &[("max.message.bytes", "4194304")]).await;
    let value = vec![7u8; 900_000];
    for p in [0, 1] {
        for _ in 0..2 {
            assert_eq!(produce(&mut c, "large", p, records(&[(Some(b"k"), &value)])).await.error_code, 0);
        }
    }
    let batches = |resp: &FetchResponse| -> Vec<usize> {
        resp.responses[0]
            .partitions
            .iter()
            .map(|p| split_batches(p.records.as_deref().unwrap_or_default()).filter(Result::is_ok).count())
            .collect()
    };
    let size = |resp: &FetchResponse| -> usize {
        resp.responses[0].partitions.iter().map(|p| p.records.as_ref().map_or(0, |r| r.len())).sum()
    };
    // librdkafka's defaults: fetch.max.bytes 1,000,000 (its ~52 MB default clamped by the
    // test), max.partition.fetch.bytes 1 MiB.
    let r = fetch(&mut c, "large", &[0, 1], 1_000_000, 1 << 20).await;
    assert_eq!(batches(&r), vec![1, 0], "one whole batch for the first partition, none for the second");
    assert!(size(&r) < 1_000_000 + 1000, "response of {} bytes", size(&r));
    // Room for a second batch in the response, but not within partition 0's own limit.
    let r = fetch(&mut c, "large", &[0, 1], 2_000_000, 1 << 20).await;
    assert_eq!(batches(&r), vec![1, 1]);
    // Nothing fits anywhere: the first partition still gets one batch, so consumers progress.
    let r = fetch(&mut c, "large", &[1, 0], 10, 10).await;
    assert_eq!(batches(&r), vec![1, 0]);
    assert_eq!(r.responses[0].partitions[0].partition_index, 1);
    broker.stop().await;
}

async fn describe_topic(c: &mut Client, topic: &str) -> Vec<DescribeConfigsResourceResult> {
    let req = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: 2,
            resource_name: topic.into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: true,
        ..Default::default()
    };
    let resp: DescribeConfigsResponse = c.call_at(4, &req).await.expect("describe configs");
    assert_eq!(resp.results[0].error_code, 0);
    assert_eq!(resp.results[0].error_message, None);
    resp.results.into_iter().next().expect("result").configs
}

fn entry<'a>(configs: &'a [DescribeConfigsResourceResult], name: &str) -> &'a DescribeConfigsResourceResult {
    configs.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("{name} is not described"))
}

fn synonyms(e: &DescribeConfigsResourceResult) -> Vec<(String, String, i8)> {
    e.synonyms.iter().map(|s| (s.name.clone(), s.value.clone().unwrap_or_default(), s.source)).collect()
}

/// Every topic config Kafka 4 defines is accepted, stored and described with Kafka's
/// default, source and synonyms (`ServerTopicConfigSynonyms`, `ConfigHelper`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topic_config_catalogue_is_kafkas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker =
        common::start(dir.path(), &[("log.retention.hours", "2"), ("log.cleaner.min.cleanable.ratio", "0.3")]).await;
    let mut c = connect(&broker.addr).await;
    let set = [
        ("file.delete.delay.ms", "1000"),
        ("min.compaction.lag.ms", "5000"),
        ("max.compaction.lag.ms", "600000"),
        ("preallocate", "true"),
        ("segment.jitter.ms", "10"),
        ("leader.replication.throttled.replicas", "0:1"),
        ("local.retention.ms", "-2"),
        ("remote.storage.enable", "false"),
        ("compression.zstd.level", "5"),
    ];
    let r = create_topic(&mut c, 5, "configured", 1, &set).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    // Item 5: no error is a null message, not "".
    assert_eq!(r.topics[0].error_message, None);
    let bad = create_topic(&mut c, 5, "bad", 1, &[("min.cleanable.dirty.ratio", "half")]).await;
    assert_eq!(bad.topics[0].error_code, INVALID_CONFIG);
    assert!(bad.topics[0].error_message.is_some());

    let configs = describe_topic(&mut c, "configured").await;
    for (k, v) in set {
        let e = entry(&configs, k);
        assert_eq!((e.value.as_deref(), e.config_source), (Some(v), 1), "{k}");
    }
    // Defaults Kafka reports, with their broker synonyms.
    let e = entry(&configs, "min.cleanable.dirty.ratio");
    assert_eq!((e.value.as_deref(), e.config_source), (Some("0.3"), 4));
    assert_eq!(
        synonyms(e),
        vec![
            ("log.cleaner.min.cleanable.ratio".into(), "0.3".into(), 4),
            ("log.cleaner.min.cleanable.ratio".into(), "0.5".into(), 5)
        ]
    );
    // log.retention.ms and .minutes have no default in Kafka: only log.retention.hours is listed.
    let e = entry(&configs, "retention.ms");
    assert_eq!((e.value.as_deref(), e.config_source), (Some("7200000"), 4));
    assert_eq!(
        synonyms(e),
        vec![("log.retention.hours".into(), "2".into(), 4), ("log.retention.hours".into(), "168".into(), 5)]
    );
    let e = entry(&configs, "segment.ms");
    assert_eq!((e.value.as_deref(), e.config_source), (Some("604800000"), 5));
    assert_eq!(synonyms(e), vec![("log.roll.hours".into(), "168".into(), 5)]);
    let e = entry(&configs, "remote.storage.enable");
    assert_eq!(synonyms(e), vec![("remote.storage.enable".into(), "false".into(), 1)]);
    for name in [
        "local.retention.bytes",
        "follower.replication.throttled.replicas",
        "compression.gzip.level",
        "unclean.leader.election.enable",
    ] {
        entry(&configs, name);
    }
    broker.stop().await;
}

fn join_group(member: &str, metadata: &'static [u8]) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: "rejoin-while-syncing".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 60_000,
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: Bytes::from_static(metadata),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn sync_group(member: &str, generation: i32, assignments: &[&str]) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: "rejoin-while-syncing".into(),
        generation_id: generation,
        member_id: member.into(),
        assignments: assignments
            .iter()
            .map(|m| SyncGroupRequestAssignment {
                member_id: m.to_string(),
                assignment: Bytes::from_static(b"x"),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// A member id, from the MEMBER_ID_REQUIRED answer to a JoinGroup without one.
/// Retried while the coordinator is still loading its `__consumer_offsets` partitions
/// after the broker started (COORDINATOR_LOAD_IN_PROGRESS, which clients retry).
async fn member_id(c: &mut Client, metadata: &'static [u8]) -> String {
    const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r: JoinGroupResponse = c.call_at(5, &join_group("", metadata)).await.expect("join");
        if r.error_code == COORDINATOR_LOAD_IN_PROGRESS && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        assert_eq!(r.error_code, MEMBER_ID_REQUIRED);
        return r.member_id;
    }
}

/// Kafka's classic group coordinator, for a member parked in SyncGroup that sends JoinGroup
/// with new metadata (from another connection: its client gave up on the first): the
/// rebalance this starts answers the parked SyncGroup with REBALANCE_IN_PROGRESS
/// (`prepareRebalance` → `resetAndPropagateAssignmentWithError`) and the JoinGroup waits for
/// the next generation like any other. Strom answered both COORDINATOR_NOT_AVAILABLE: the
/// join's waiter displaced the sync's, and the sync's reply then consumed the join's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_rejoining_while_parked_in_sync_group_gets_kafkas_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[("group.initial.rebalance.delay.ms", "0")]).await;
    // Generation 1: the leader alone.
    let mut leader = connect(&broker.addr).await;
    let a = member_id(&mut leader, b"a").await;
    let r: JoinGroupResponse = leader.call_at(5, &join_group(&a, b"a")).await.expect("join");
    assert_eq!((r.error_code, r.generation_id, r.leader.as_str()), (0, 1, a.as_str()));
    let s: SyncGroupResponse = leader.call_at(3, &sync_group(&a, 1, &[&a])).await.expect("sync");
    assert_eq!(s.error_code, 0);
    // Generation 2: a follower joins, the leader rejoins.
    let mut follower = connect(&broker.addr).await;
    let b = member_id(&mut follower, b"b").await;
    let b2 = b.clone();
    let joining = tokio::spawn(async move {
        let r: JoinGroupResponse = follower.call_at(5, &join_group(&b2, b"b")).await.expect("join");
        (follower, r)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r: JoinGroupResponse = leader.call_at(5, &join_group(&a, b"a")).await.expect("join");
    assert_eq!((r.error_code, r.generation_id), (0, 2));
    let (mut follower, r) = joining.await.expect("join task");
    assert_eq!((r.error_code, r.generation_id), (0, 2));
    // The follower waits in SyncGroup for the leader's assignment...
    let syncing = tokio::spawn(async move {
        let s: SyncGroupResponse = follower.call_at(3, &sync_group(&b, 2, &[])).await.expect("sync");
        s
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!syncing.is_finished(), "the follower's SyncGroup waits for the leader");
    // ...and rejoins from a new connection with a new subscription.
    let mut again = connect(&broker.addr).await;
    let b3 = r.member_id.clone();
    let rejoining = tokio::spawn(async move {
        let r: JoinGroupResponse = again.call_at(5, &join_group(&b3, b"b, changed")).await.expect("join");
        r
    });
    let s = tokio::time::timeout(Duration::from_secs(5), syncing).await.expect("the sync is answered").expect("task");
    assert_eq!(s.error_code, REBALANCE_IN_PROGRESS, "the parked SyncGroup learns of the rebalance");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!rejoining.is_finished(), "the JoinGroup waits for the leader to rejoin");
    let h: HeartbeatResponse = leader
        .call_at(
            1,
            &HeartbeatRequest {
                group_id: "rejoin-while-syncing".into(),
                generation_id: 2,
                member_id: a.clone(),
                ..Default::default()
            },
        )
        .await
        .expect("heartbeat");
    assert_eq!(h.error_code, REBALANCE_IN_PROGRESS);
    let r: JoinGroupResponse = leader.call_at(5, &join_group(&a, b"a")).await.expect("join");
    assert_eq!((r.error_code, r.generation_id, r.members.len()), (0, 3, 2));
    let r = tokio::time::timeout(Duration::from_secs(5), rejoining).await.expect("answered").expect("task");
    assert_eq!((r.error_code, r.generation_id), (0, 3), "the rejoin is answered with generation 3");
    broker.stop().await;
}
