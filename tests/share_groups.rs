//! Share groups (KIP-932, issue 19) over the wire against an in-process broker: group
//! configs (resource type GROUP), ShareGroupHeartbeat/Describe with ListGroups and the
//! group namespace, the share-session rules of ShareFetch/ShareAcknowledge, and lock
//! expiry waking a parked ShareFetch. confluent-kafka's ShareConsumer drives the same
//! paths in the compat scenario `share-group`.

mod common;

use common::{acquired, share_fetch};

use std::time::Duration;

use bytes::Bytes;
use strom_client::Client;
use strom_protocol::create_topics_request::CreatableTopic;
use strom_protocol::describe_configs_request::DescribeConfigsResource;
use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::records::BatchBuilder;
use strom_protocol::share_acknowledge_request::{
    AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch as AckBatch,
};
use strom_protocol::*;

const INVALID_REQUEST: i16 = 42;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const GROUP_ID_NOT_FOUND: i16 = 69;
const INVALID_CONFIG: i16 = 40;
const INVALID_RECORD_STATE: i16 = 121;
const SHARE_SESSION_NOT_FOUND: i16 = 122;
const INVALID_SHARE_SESSION_EPOCH: i16 = 123;
const ACCEPT: i8 = 1;
const GROUP: i8 = 32;

async fn connect(addr: &str) -> Client {
    Client::connect(addr, Duration::from_secs(30)).await.expect("connect")
}

/// Creates `name` and returns its id.
async fn create_topic(c: &mut Client, name: &str, partitions: i32) -> Uuid {
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
    resp.topics[0].topic_id
}

async fn produce(c: &mut Client, topic: &str, partition: i32, values: &[&[u8]]) {
    produce_at(c, topic, partition, strom_storage::now_ms(), values).await;
}

/// One batch of `values` with timestamp `ts`.
async fn produce_at(c: &mut Client, topic: &str, partition: i32, ts: i64, values: &[&[u8]]) {
    let mut b = BatchBuilder::new(ts);
    for v in values {
        b.add(None, Some(v));
    }
    let batch: Bytes = b.build().freeze();
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
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

/// The four share APIs are advertised from v1 (the stable version; v0 was early access),
/// ShareFetch and ShareAcknowledge up to v2 (Kafka 4.2).
#[tokio::test]
async fn the_share_apis_are_advertised_from_v1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let c = connect(&broker.addr).await;
    for (key, max) in [(76, 1), (77, 1), (78, 2), (79, 2)] {
        assert_eq!(c.api_versions().get(&key), Some(&(1, max)), "API {key}");
    }
    broker.stop().await;
}

/// `share.auto.offset.reset=by_duration:<ISO-8601 duration>` (KIP-1106): a new
/// share-partition starts at the first record no older than the duration, at the log end
/// if every record is older; negative or malformed durations are INVALID_CONFIG.
#[tokio::test]
async fn by_duration_starts_at_the_first_record_young_enough() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "aged", 1).await;
    let now = strom_storage::now_ms();
    produce_at(&mut c, "aged", 0, now - 3 * 3_600_000, &[b"old0", b"old1"]).await;
    produce_at(&mut c, "aged", 0, now - 30 * 60_000, &[b"recent2", b"recent3"]).await;
    produce_at(&mut c, "aged", 0, now, &[b"new4"]).await;
    for bad in ["by_duration:-PT1H", "by_duration:PT", "by_duration:1h", "by_duration:"] {
        let r = common::set_group_configs(&mut c, "hour", &[("share.auto.offset.reset", bad)]).await;
        assert_eq!(r.0, INVALID_CONFIG, "{bad}");
    }
    for (group, reset, want) in [
        ("hour", "by_duration:PT1H", vec![(2, 4, 1)]),
        ("day", "by_duration:P1D", vec![(0, 4, 1)]),
        ("none", "by_duration:PT0S", vec![]),
    ] {
        assert_eq!(common::set_group_configs(&mut c, group, &[("share.auto.offset.reset", reset)]).await.0, 0);
        let r: ShareFetchResponse = c.call_at(1, &share_fetch(group, "m", 0, topic, &[0], &[], 0)).await.unwrap();
        assert_eq!(acquired(&r), want, "{reset}");
    }
    // The group whose duration no record met started at the log end: it gets what comes next.
    produce(&mut c, "aged", 0, &[b"next5"]).await;
    let r: ShareFetchResponse = c.call_at(1, &share_fetch("none", "m", 1, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&r), [(5, 5, 1)]);
    broker.stop().await;
}

/// ShareFetch v2's record-limit acquire mode (KIP-1206): never more than `max_records`
/// records, a batch cut where the budget ends and its rest acquired by the next fetch;
/// the default batch-optimized mode takes whole batches past the budget. Unknown modes
/// are INVALID_REQUEST.
#[tokio::test]
async fn record_limit_mode_acquires_at_most_max_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "jobs", 1).await;
    assert_eq!(common::set_group_configs(&mut c, "l", &[("share.auto.offset.reset", "earliest")]).await.0, 0);
    let ten: Vec<Vec<u8>> = (0..10).map(|i| vec![b'0' + i]).collect();
    let ten: Vec<&[u8]> = ten.iter().map(Vec::as_slice).collect();
    produce(&mut c, "jobs", 0, &ten).await; // one batch, offsets 0..=9
    let fetch = |epoch: i32, mode: i8, max_records: i32| {
        let mut r = share_fetch("l", "m", epoch, topic, &[0], &[], 5000);
        (r.share_acquire_mode, r.max_records) = (mode, max_records);
        r
    };
    let bad: ShareFetchResponse = c.call_at(2, &fetch(0, 2, 4)).await.unwrap();
    assert_eq!(bad.error_code, INVALID_REQUEST, "unknown acquire mode");
    let r: ShareFetchResponse = c.call_at(2, &fetch(0, 1, 4)).await.unwrap();
    assert_eq!(acquired(&r), [(0, 3, 1)]);
    let records = &r.responses[0].partitions[0].records;
    assert!(records.as_ref().is_some_and(|r| !r.is_empty()), "the whole batch comes with them");
    let r: ShareFetchResponse = c.call_at(2, &fetch(1, 1, 4)).await.unwrap();
    assert_eq!(acquired(&r), [(4, 7, 1)], "the next fetch continues inside the batch");
    let r: ShareFetchResponse = c.call_at(2, &fetch(2, 0, 1)).await.unwrap();
    assert_eq!(acquired(&r), [(8, 9, 1)], "batch-optimized: the rest of the batch, past max_records");
    broker.stop().await;
}

/// RENEW acknowledgements (KIP-1222, ShareAcknowledge and ShareFetch v2 with IsRenewAck)
/// restart a lock: renewed records stay with their member when the first lock runs out,
/// while the others go to a peer parked on the partition, and the member accepts them
/// afterwards. RENEW needs v2 and IsRenewAck; a renewing ShareFetch must not ask for
/// records. Renewals are counted in `strom_share_records_total{outcome="renewed"}`.
#[tokio::test]
async fn renewed_locks_outlive_the_first_deadline() {
    const RENEW: i8 = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "jobs", 1).await;
    let configs = [("share.auto.offset.reset", "earliest"), ("share.record.lock.duration.ms", "3000")];
    assert_eq!(common::set_group_configs(&mut c, "r", &configs).await.0, 0);
    let ten: Vec<Vec<u8>> = (0..10).map(|i| vec![b'0' + i]).collect();
    let ten: Vec<&[u8]> = ten.iter().map(Vec::as_slice).collect();
    produce(&mut c, "jobs", 0, &ten).await;

    let first: ShareFetchResponse = c.call_at(2, &share_fetch("r", "one", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!((first.acquisition_lock_timeout_ms, acquired(&first)), (3000, vec![(0, 9, 1)]));
    // Renewals lock for a minute from now on, so what follows does not race the clock.
    assert_eq!(common::set_group_configs(&mut c, "r", &[("share.record.lock.duration.ms", "60000")]).await.0, 0);
    let mut renew = acknowledge("r", "one", 1, topic, &[(0, 4, RENEW)]);
    renew.is_renew_ack = true;
    let r: ShareAcknowledgeResponse = c.call_at(2, &renew).await.unwrap();
    assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0));
    assert_eq!(r.acquisition_lock_timeout_ms, 60_000, "v2 says how long the renewed lock lasts");
    // A renewing ShareFetch that also asks for records is refused, before the session moves.
    let mut asks = share_fetch("r", "one", 2, topic, &[0], &[(5, 5, RENEW)], 0);
    asks.is_renew_ack = true;
    let r: ShareFetchResponse = c.call_at(2, &asks).await.unwrap();
    assert_eq!(r.error_code, INVALID_REQUEST);
    (asks.max_wait_ms, asks.min_bytes, asks.max_bytes, asks.max_records) = (0, 0, 0, 0);
    let r: ShareFetchResponse = c.call_at(2, &asks).await.unwrap();
    assert_eq!(r.error_code, 0);
    assert_eq!(r.responses[0].partitions[0].acknowledge_error_code, 0);
    assert!(acquired(&r).is_empty(), "a renewing fetch only acknowledges");

    // Member two parks until the first locks run out and gets only what was not renewed.
    let mut c2 = connect(&broker.addr).await;
    let second: ShareFetchResponse =
        c2.call_at(1, &share_fetch("r", "two", 0, topic, &[0], &[], 20_000)).await.unwrap();
    assert_eq!(acquired(&second), [(6, 9, 2)]);
    let accept = acknowledge("r", "one", 3, topic, &[(0, 5, ACCEPT)]);
    let r: ShareAcknowledgeResponse = c.call_at(1, &accept).await.unwrap();
    assert_eq!(r.responses[0].partitions[0].error_code, 0, "renewed records are still member one's");

    // RENEW is refused in v1, and in v2 without IsRenewAck; nothing changes.
    let r: ShareAcknowledgeResponse =
        c2.call_at(1, &acknowledge("r", "two", 1, topic, &[(6, 6, RENEW)])).await.unwrap();
    assert_eq!(r.responses[0].partitions[0].error_code, INVALID_REQUEST);
    let r: ShareAcknowledgeResponse =
        c2.call_at(2, &acknowledge("r", "two", 2, topic, &[(6, 6, RENEW)])).await.unwrap();
    assert_eq!(r.responses[0].partitions[0].error_code, INVALID_REQUEST);
    let r: ShareAcknowledgeResponse =
        c2.call_at(2, &acknowledge("r", "two", 3, topic, &[(6, 9, ACCEPT)])).await.unwrap();
    assert_eq!(r.responses[0].partitions[0].error_code, 0);

    let (_, text) = common::http_raw(broker.http.as_deref().expect("http"), "GET", "/metrics", b"").await;
    let text = String::from_utf8_lossy(&text);
    let line = text.lines().find(|l| l.starts_with("strom_share_records_total{outcome=\"renewed\"}"));
    assert_eq!(line.and_then(|l| l.rsplit(' ').next()), Some("6"), "{text}");
    broker.stop().await;
}

/// Kafka's group configs: IncrementalAlterConfigs SET on a GROUP (before it has members),
/// DescribeConfigs reads it back as a dynamic group config (source 8) over the broker's
/// default, ListConfigResources lists the group; unknown keys and bad values are
/// INVALID_CONFIG, and the legacy AlterConfigs does not take groups.
#[tokio::test]
async fn group_configs_are_set_described_and_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[("group.share.record.lock.duration.ms", "20000")]).await;
    let mut c = connect(&broker.addr).await;
    assert_eq!(common::set_group_configs(&mut c, "q", &[("share.auto.offset.reset", "earliest")]).await.0, 0);
    assert_eq!(
        common::set_group_configs(&mut c, "q", &[("share.auto.offset.reset", "sideways")]).await.0,
        INVALID_CONFIG
    );
    assert_eq!(common::set_group_configs(&mut c, "q", &[("no.such.config", "1")]).await.0, INVALID_CONFIG);
    let req = DescribeConfigsRequest {
        resources: vec![DescribeConfigsResource {
            resource_type: GROUP,
            resource_name: "q".into(),
            configuration_keys: None,
            ..Default::default()
        }],
        include_synonyms: true,
        ..Default::default()
    };
    let resp: DescribeConfigsResponse = c.call_at(4, &req).await.expect("describe configs");
    let r = &resp.results[0];
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let get = |name: &str| r.configs.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} missing"));
    let reset = get("share.auto.offset.reset");
    assert_eq!((reset.value.as_deref(), reset.config_source), (Some("earliest"), 8));
    let lock = get("share.record.lock.duration.ms");
    assert_eq!((lock.value.as_deref(), lock.config_source), (Some("20000"), 4), "the broker's setting, static");
    let listed: ListConfigResourcesResponse = c
        .call_at(1, &ListConfigResourcesRequest { resource_types: vec![GROUP], ..Default::default() })
        .await
        .expect("list");
    let names: Vec<&str> = listed.config_resources.iter().map(|r| r.resource_name.as_str()).collect();
    assert_eq!(names, ["q"]);
    broker.stop().await;
}

/// ShareGroupHeartbeat joins with the simple assignor (two members of a 2-partition topic
/// get one partition each), ShareGroupDescribe and ListGroups (type "share") show the
/// group, the group id cannot be used by a consumer or classic group (nor take committed
/// offsets: OffsetCommit and OffsetFetch answer GROUP_ID_NOT_FOUND, "not a consumer group"
/// in Kafka), and an empty share group can be deleted.
#[tokio::test]
async fn share_groups_join_describe_list_and_keep_their_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "jobs", 2).await;
    let heartbeat = |member: &str, epoch: i32| ShareGroupHeartbeatRequest {
        group_id: "workers".into(),
        member_id: member.into(),
        member_epoch: epoch,
        subscribed_topic_names: (epoch == 0).then(|| vec!["jobs".to_string()]),
        ..Default::default()
    };
    let a: ShareGroupHeartbeatResponse = c.call_at(1, &heartbeat("member-a", 0)).await.expect("hb");
    assert_eq!(a.error_code, 0, "{:?}", a.error_message);
    let got = a.assignment.expect("assignment on join").topic_partitions;
    assert_eq!((got[0].topic_id, got[0].partitions.clone()), (topic, vec![0, 1]));
    let b: ShareGroupHeartbeatResponse = c.call_at(1, &heartbeat("member-b", 0)).await.expect("hb");
    assert_eq!(b.assignment.expect("assignment").topic_partitions[0].partitions, vec![1]);
    let a2: ShareGroupHeartbeatResponse = c.call_at(1, &heartbeat("member-a", a.member_epoch)).await.expect("hb");
    assert_eq!(a2.assignment.expect("a's assignment shrank").topic_partitions[0].partitions, vec![0]);

    let d: ShareGroupDescribeResponse = c
        .call_at(
            1,
            &ShareGroupDescribeRequest { group_ids: vec!["workers".into(), "none".into()], ..Default::default() },
        )
        .await
        .expect("describe");
    let g = &d.groups[0];
    assert_eq!((g.error_code, g.group_state.as_str(), g.assignor_name.as_str()), (0, "Stable", "simple"));
    let members: Vec<&str> = g.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(members, ["member-a", "member-b"]);
    assert_eq!(g.members[0].assignment.topic_partitions[0].topic_name, "jobs");
    assert_eq!(d.groups[1].error_code, GROUP_ID_NOT_FOUND);

    let listed: ListGroupsResponse = c
        .call_at(5, &ListGroupsRequest { types_filter: vec!["share".into()], ..Default::default() })
        .await
        .expect("list");
    let rows: Vec<(&str, &str, &str)> =
        listed.groups.iter().map(|g| (g.group_id.as_str(), g.group_type.as_str(), g.group_state.as_str())).collect();
    assert_eq!(rows, [("workers", "share", "Stable")]);

    // The namespace is shared: a KIP-848 or classic member cannot use the id.
    let cg: ConsumerGroupHeartbeatResponse = c
        .call_at(
            1,
            &ConsumerGroupHeartbeatRequest {
                group_id: "workers".into(),
                member_id: "x".into(),
                member_epoch: 0,
                rebalance_timeout_ms: 30_000,
                subscribed_topic_names: Some(vec!["jobs".into()]),
                topic_partitions: Some(Vec::new()),
                ..Default::default()
            },
        )
        .await
        .expect("consumer heartbeat");
    assert_eq!(cg.error_code, GROUP_ID_NOT_FOUND);
    let join: JoinGroupResponse = c
        .call_at(
            5,
            &JoinGroupRequest {
                group_id: "workers".into(),
                session_timeout_ms: 30_000,
                rebalance_timeout_ms: 30_000,
                protocol_type: "consumer".into(),
                protocols: vec![join_group_request::JoinGroupRequestProtocol {
                    name: "range".into(),
                    metadata: Bytes::new(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .await
        .expect("join");
    assert_eq!(join.error_code, INCONSISTENT_GROUP_PROTOCOL);
    // A standalone commit (generation -1) would otherwise create a classic group of the id.
    let r: OffsetCommitResponse = c.call_at(9, &common::standalone_commit("workers", "jobs", 1)).await.expect("commit");
    assert_eq!(r.topics[0].partitions[0].error_code, GROUP_ID_NOT_FOUND);
    let fetch = OffsetFetchRequest {
        groups: vec![offset_fetch_request::OffsetFetchRequestGroup {
            group_id: "workers".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: OffsetFetchResponse = c.call_at(9, &fetch).await.expect("offset fetch");
    assert_eq!(r.groups[0].error_code, GROUP_ID_NOT_FOUND);

    // Both leave; the empty group can then be deleted.
    for (m, e) in [("member-a", a2.member_epoch), ("member-b", b.member_epoch)] {
        let _ = e;
        let left: ShareGroupHeartbeatResponse = c.call_at(1, &heartbeat(m, -1)).await.expect("leave");
        assert_eq!((left.error_code, left.member_epoch), (0, -1));
    }
    let del: DeleteGroupsResponse = c
        .call_at(2, &DeleteGroupsRequest { groups_names: vec!["workers".into()], ..Default::default() })
        .await
        .expect("delete");
    assert_eq!(del.results[0].error_code, 0);
    broker.stop().await;
}

/// The share-session rules: acknowledgements cannot open a session (INVALID_REQUEST,
/// before the session is touched), a continuing epoch needs a session
/// (SHARE_SESSION_NOT_FOUND), an epoch out of step is INVALID_SHARE_SESSION_EPOCH, and
/// ShareAcknowledge cannot carry epoch 0.
#[tokio::test]
async fn share_sessions_follow_kafkas_epoch_rules() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "t", 1).await;
    let r: ShareFetchResponse =
        c.call_at(1, &share_fetch("g", "m", 0, topic, &[0], &[(0, 0, ACCEPT)], 0)).await.unwrap();
    assert_eq!(r.error_code, INVALID_REQUEST);
    let r: ShareFetchResponse = c.call_at(1, &share_fetch("g", "m", 3, topic, &[0], &[], 0)).await.unwrap();
    assert_eq!(r.error_code, SHARE_SESSION_NOT_FOUND);
    let r: ShareFetchResponse = c.call_at(1, &share_fetch("g", "m", 0, topic, &[0], &[], 0)).await.unwrap();
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    let r: ShareFetchResponse = c.call_at(1, &share_fetch("g", "m", 2, topic, &[], &[], 0)).await.unwrap();
    assert_eq!(r.error_code, INVALID_SHARE_SESSION_EPOCH);
    let ack = ShareAcknowledgeRequest {
        group_id: Some("g".into()),
        member_id: Some("m".into()),
        share_session_epoch: 0,
        ..Default::default()
    };
    let r: ShareAcknowledgeResponse = c.call_at(1, &ack).await.unwrap();
    assert_eq!(r.error_code, INVALID_SHARE_SESSION_EPOCH);
    broker.stop().await;
}

/// Records whose lock runs out go to the next fetcher: a ShareFetch parked on an empty
/// share-partition (everything locked by another member) is woken by the expiry, gets the
/// records with delivery count 2, and the first member's late acknowledgement is refused
/// with INVALID_RECORD_STATE. The second member's acceptance finishes them.
#[tokio::test]
async fn an_expired_lock_wakes_a_parked_share_fetch_and_refuses_the_late_ack() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "work", 1).await;
    let configs = [("share.auto.offset.reset", "earliest"), ("share.record.lock.duration.ms", "1000")];
    assert_eq!(common::set_group_configs(&mut c, "g", &configs).await.0, 0);
    produce(&mut c, "work", 0, &[b"a", b"b", b"c"]).await;

    let first: ShareFetchResponse = c.call_at(1, &share_fetch("g", "one", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(first.error_code, 0);
    assert_eq!(first.acquisition_lock_timeout_ms, 1000);
    assert_eq!(acquired(&first), [(0, 2, 1)]);

    // Later acquisitions lock for a minute (a config change applies to new locks only),
    // so nothing below depends on how fast this machine is.
    assert_eq!(common::set_group_configs(&mut c, "g", &[("share.record.lock.duration.ms", "60000")]).await.0, 0);
    // Member two parks (nothing AVAILABLE) until the lock runs out, then gets them.
    let mut c2 = connect(&broker.addr).await;
    let second: ShareFetchResponse =
        c2.call_at(1, &share_fetch("g", "two", 0, topic, &[0], &[], 20_000)).await.unwrap();
    assert_eq!(acquired(&second), [(0, 2, 2)], "redelivered after the lock expired");
    let records = &second.responses[0].partitions[0].records;
    assert!(records.as_ref().is_some_and(|r| !r.is_empty()), "the batch comes with them");

    let late: ShareFetchResponse =
        c.call_at(1, &share_fetch("g", "one", 1, topic, &[0], &[(0, 2, ACCEPT)], 0)).await.unwrap();
    assert_eq!(late.responses[0].partitions[0].acknowledge_error_code, INVALID_RECORD_STATE);

    let ack = acknowledge("g", "two", 1, topic, &[(0, 2, ACCEPT)]);
    let r: ShareAcknowledgeResponse = c2.call_at(1, &ack).await.unwrap();
    assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0));
    // Nothing is left to deliver.
    let after: ShareFetchResponse = c2.call_at(1, &share_fetch("g", "two", 2, topic, &[], &[], 0)).await.unwrap();
    assert!(acquired(&after).is_empty());
    // What an operator sees: 6 acquisitions (3 records twice), 3 lock timeouts, 3 accepted.
    let (_, text) = common::http_raw(broker.http.as_deref().expect("http"), "GET", "/metrics", b"").await;
    let text = String::from_utf8_lossy(&text);
    let metric =
        |line: &str| text.lines().find(|l| l.starts_with(line)).map(|l| l.rsplit(' ').next().unwrap_or("").to_string());
    let outcome = |o: &str| metric(&format!("strom_share_records_total{{outcome=\"{o}\"}}"));
    assert_eq!(outcome("acquired").as_deref(), Some("6"), "{text}");
    assert_eq!(outcome("lock_timeout").as_deref(), Some("3"));
    assert_eq!(outcome("accepted").as_deref(), Some("3"));
    assert_eq!(metric("strom_share_partitions ").as_deref(), Some("1"));
    assert_eq!(metric("strom_share_sessions ").as_deref(), Some("2"));
    broker.stop().await;
}

/// A consumer that disconnects gives its records back at once (Kafka closes the share
/// session with the connection): a ShareFetch parked by another member gets them with
/// delivery count 2 long before their one-minute lock would run out.
#[tokio::test]
async fn a_closed_connection_releases_its_members_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "work", 1).await;
    let configs = [("share.auto.offset.reset", "earliest"), ("share.record.lock.duration.ms", "60000")];
    assert_eq!(common::set_group_configs(&mut c, "g", &configs).await.0, 0);
    produce(&mut c, "work", 0, &[b"a", b"b"]).await;
    let mut doomed = connect(&broker.addr).await;
    let first: ShareFetchResponse =
        doomed.call_at(1, &share_fetch("g", "one", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&first), [(0, 1, 1)]);
    let addr = broker.addr.clone();
    let waiter = tokio::spawn(async move {
        let mut c2 = connect(&addr).await;
        let r: ShareFetchResponse = c2.call_at(1, &share_fetch("g", "two", 0, topic, &[0], &[], 30_000)).await.unwrap();
        acquired(&r)
    });
    drop(doomed);
    let got = tokio::time::timeout(Duration::from_secs(25), waiter).await.expect("released before the lock ran out");
    assert_eq!(got.expect("join"), [(0, 1, 2)]);
    broker.stop().await;
}

fn acknowledge(
    group: &str,
    member: &str,
    epoch: i32,
    topic: Uuid,
    batches: &[(i64, i64, i8)],
) -> ShareAcknowledgeRequest {
    ShareAcknowledgeRequest {
        group_id: Some(group.into()),
        member_id: Some(member.into()),
        share_session_epoch: epoch,
        topics: vec![AcknowledgeTopic {
            topic_id: topic,
            partitions: vec![AcknowledgePartition {
                partition_index: 0,
                acknowledgement_batches: batches
                    .iter()
                    .map(|&(first_offset, last_offset, t)| AckBatch {
                        first_offset,
                        last_offset,
                        acknowledge_types: vec![t],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// Share-partition state survives a restart (`__share_group_state`, ADR 0016 step 4):
/// accepted and rejected records are never delivered again; a released record and the
/// records acquired but not acknowledged are, with their delivery counts; and a `latest`
/// start is kept, so records produced after it but before the restart are not skipped.
#[tokio::test]
async fn share_partition_state_survives_a_restart() {
    const REJECT: i8 = 3;
    const RELEASE: i8 = 2;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "durable", 1).await;
    assert_eq!(common::set_group_configs(&mut c, "g", &[("share.auto.offset.reset", "earliest")]).await.0, 0);
    let values: Vec<Vec<u8>> = (0..10).map(|i| format!("v{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    produce(&mut c, "durable", 0, &refs).await;
    let got: ShareFetchResponse = c.call_at(1, &share_fetch("g", "m", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&got), [(0, 9, 1)]);
    let acks = [(0, 3, ACCEPT), (4, 4, REJECT), (5, 5, RELEASE)];
    let r: ShareAcknowledgeResponse = c.call_at(1, &acknowledge("g", "m", 1, topic, &acks)).await.unwrap();
    assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0));
    // A second group starts at the end (latest) before three more records arrive.
    let late: ShareFetchResponse = c.call_at(1, &share_fetch("late", "m", 0, topic, &[0], &[], 0)).await.unwrap();
    assert!(acquired(&late).is_empty());
    produce(&mut c, "durable", 0, &[b"x", b"y", b"z"]).await;
    drop(c);
    broker.stop().await;

    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let again: ShareFetchResponse = c.call_at(1, &share_fetch("g", "m2", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&again), [(5, 9, 2), (10, 12, 1)], "0-4 finished; 5-9 delivered again");
    let late: ShareFetchResponse = c.call_at(1, &share_fetch("late", "m", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&late), [(10, 12, 1)], "the latest start (10) was kept");
    broker.stop().await;
}

/// DescribeShareGroupOffsets v0 of `topics` (None: every share-partition with state):
/// the group's error and (topic, partition, start offset) rows.
async fn share_offsets(
    c: &mut Client,
    group: &str,
    topics: Option<Vec<(&str, Vec<i32>)>>,
) -> (i16, Vec<(String, i32, i64)>) {
    let (code, rows) = share_offsets_at(c, 0, group, topics).await;
    (code, rows.into_iter().map(|(t, p, start, _)| (t, p, start)).collect())
}

/// [`share_offsets`] at `version`, with each row's lag (v1+; -1 in v0).
async fn share_offsets_at(
    c: &mut Client,
    version: i16,
    group: &str,
    topics: Option<Vec<(&str, Vec<i32>)>>,
) -> (i16, Vec<(String, i32, i64, i64)>) {
    use strom_protocol::describe_share_group_offsets_request::*;
    let req = DescribeShareGroupOffsetsRequest {
        groups: vec![DescribeShareGroupOffsetsRequestGroup {
            group_id: group.into(),
            topics: topics.map(|ts| {
                ts.into_iter()
                    .map(|(t, ps)| DescribeShareGroupOffsetsRequestTopic {
                        topic_name: t.into(),
                        partitions: ps,
                        ..Default::default()
                    })
                    .collect()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: DescribeShareGroupOffsetsResponse = c.call_at(version, &req).await.expect("describe offsets");
    let g = &r.groups[0];
    let rows = g
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| (t.topic_name.clone(), p.partition_index, p.start_offset, p.lag))
        })
        .collect();
    (g.error_code, rows)
}

/// The share-group offset admin APIs (KIP-932): DescribeShareGroupOffsets reports each
/// share-partition's start offset (-1 for one without state) and from v1 its lag
/// (KIP-1226: not yet acknowledged or archived records up to the high watermark);
/// AlterShareGroupOffsets moves
/// it, refused while the group has members (NON_EMPTY_GROUP); DeleteShareGroupOffsets drops
/// a topic's state, so the next consumer starts from `share.auto.offset.reset`; both refuse
/// a consumer group's id (GROUP_ID_NOT_FOUND).
#[tokio::test]
async fn share_group_offsets_are_described_altered_and_deleted() {
    const REJECT: i8 = 3;
    const NON_EMPTY_GROUP: i16 = 68;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "admin", 2).await;
    assert_eq!(common::set_group_configs(&mut c, "g", &[("share.auto.offset.reset", "earliest")]).await.0, 0);
    let values: Vec<Vec<u8>> = (0..10).map(|i| format!("v{i}").into_bytes()).collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    produce(&mut c, "admin", 0, &refs).await;
    assert_eq!(share_offsets(&mut c, "g", None).await, (0, vec![]), "no state yet");
    let got: ShareFetchResponse = c.call_at(1, &share_fetch("g", "m", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&got), [(0, 9, 1)]);
    let acks = [(0, 3, ACCEPT), (4, 4, REJECT), (6, 6, ACCEPT)];
    let r: ShareAcknowledgeResponse = c.call_at(1, &acknowledge("g", "m", 1, topic, &acks)).await.unwrap();
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    // Accepted 0-3 and rejected 4 are done: the start offset moved to 5.
    assert_eq!(share_offsets(&mut c, "g", None).await, (0, vec![("admin".into(), 0, 5)]));
    let asked = Some(vec![("admin", vec![0, 1, 7])]);
    let (code, rows) = share_offsets(&mut c, "g", asked.clone()).await;
    assert_eq!(code, 0);
    assert_eq!(rows, [("admin".into(), 0, 5), ("admin".into(), 1, -1), ("admin".into(), 7, -1)]);
    // v1: of 5..=9 below the high watermark (10), 6 is done: a lag of 4. No state: -1.
    let (code, rows) = share_offsets_at(&mut c, 1, "g", asked).await;
    assert_eq!(code, 0);
    assert_eq!(rows, [("admin".into(), 0, 5, 4), ("admin".into(), 1, -1, -1), ("admin".into(), 7, -1, -1)]);

    let alter = |group: &str, offset: i64| AlterShareGroupOffsetsRequest {
        group_id: group.into(),
        topics: vec![alter_share_group_offsets_request::AlterShareGroupOffsetsRequestTopic {
            topic_name: "admin".into(),
            partitions: vec![alter_share_group_offsets_request::AlterShareGroupOffsetsRequestPartition {
                partition_index: 0,
                start_offset: offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    // A member in the group: refused.
    let hb = ShareGroupHeartbeatRequest {
        group_id: "g".into(),
        member_id: "m".into(),
        member_epoch: 0,
        subscribed_topic_names: Some(vec!["admin".into()]),
        ..Default::default()
    };
    let joined: ShareGroupHeartbeatResponse = c.call_at(1, &hb).await.expect("heartbeat");
    assert_eq!(joined.error_code, 0);
    let r: AlterShareGroupOffsetsResponse = c.call_at(0, &alter("g", 8)).await.expect("alter");
    assert_eq!(r.error_code, NON_EMPTY_GROUP);
    let leave = ShareGroupHeartbeatRequest { member_epoch: -1, subscribed_topic_names: None, ..hb };
    let left: ShareGroupHeartbeatResponse = c.call_at(1, &leave).await.expect("leave");
    assert_eq!(left.error_code, 0);
    let r: AlterShareGroupOffsetsResponse = c.call_at(0, &alter("g", 8)).await.expect("alter");
    assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0), "{r:?}");
    assert_eq!(share_offsets(&mut c, "g", None).await, (0, vec![("admin".into(), 0, 8)]));
    // The next consumer starts at 8: the records 5-7 still held by "m" are gone with the reset.
    let mut c2 = connect(&broker.addr).await;
    let got: ShareFetchResponse = c2.call_at(1, &share_fetch("g", "m2", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&got), [(8, 9, 1)]);
    drop(c2);

    let delete = |group: &str| DeleteShareGroupOffsetsRequest {
        group_id: group.into(),
        topics: vec![delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic {
            topic_name: "admin".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: DeleteShareGroupOffsetsResponse = c.call_at(0, &delete("g")).await.expect("delete");
    assert_eq!((r.error_code, r.responses[0].error_code), (0, 0), "{r:?}");
    assert_eq!(share_offsets(&mut c, "g", None).await, (0, vec![]), "the state is gone");
    let mut c3 = connect(&broker.addr).await;
    let got: ShareFetchResponse = c3.call_at(1, &share_fetch("g", "m3", 0, topic, &[0], &[], 5000)).await.unwrap();
    assert_eq!(acquired(&got), [(0, 9, 1)], "started again from share.auto.offset.reset (earliest)");

    // A consumer group's id is not a share group's.
    let _: OffsetCommitResponse =
        c.call_at(8, &common::standalone_commit("classic", "admin", 1)).await.expect("commit");
    let r: DeleteShareGroupOffsetsResponse = c.call_at(0, &delete("classic")).await.expect("delete");
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND);
    let r: AlterShareGroupOffsetsResponse = c.call_at(0, &alter("classic", 0)).await.expect("alter");
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND);
    broker.stop().await;
}

/// A consumer that crashes on a record every time (its connection closes while it holds
/// it, and it is the group's only one) still drives the record to the delivery limit:
/// the share-partition is written before the idle group's state is dropped, with the
/// delivery counts of its acquisitions, and then archived instead of delivered forever.
#[tokio::test]
async fn a_crash_looping_consumer_still_reaches_the_delivery_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[("group.share.delivery.count.limit", "3")]).await;
    let mut c = connect(&broker.addr).await;
    let topic = create_topic(&mut c, "poison", 1).await;
    assert_eq!(common::set_group_configs(&mut c, "g", &[("share.auto.offset.reset", "earliest")]).await.0, 0);
    produce(&mut c, "poison", 0, &[b"boom"]).await;
    for attempt in 1..=3 {
        let mut doomed = connect(&broker.addr).await;
        let member = format!("crash-{attempt}");
        let got: ShareFetchResponse =
            doomed.call_at(1, &share_fetch("g", &member, 0, topic, &[0], &[], 10_000)).await.unwrap();
        assert_eq!(acquired(&got), [(0, 0, attempt)], "delivery {attempt}");
        drop(doomed);
    }
    // The third delivery was the last: the record is archived when its holder goes, and
    // nothing is delivered any more.
    let http = broker.http.clone().expect("http");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, text) = common::http_raw(&http, "GET", "/metrics", b"").await;
        let text = String::from_utf8_lossy(&text).to_string();
        if text.lines().any(|l| l == "strom_share_records_total{outcome=\"archived\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not archived: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got: ShareFetchResponse = c.call_at(1, &share_fetch("g", "survivor", 0, topic, &[0], &[], 0)).await.unwrap();
    assert!(acquired(&got).is_empty(), "{:?}", acquired(&got));
    broker.stop().await;
}
