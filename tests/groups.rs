//! Group coordinator integration tests through the wire protocol: timers on the tokio
//! clock (paused), and thousands of committed offsets surviving a restart.

use std::collections::BTreeMap;
use std::path::Path;

use strom::config::Config;
use strom_protocol::frame::RequestHeader;
use strom_protocol::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use strom_protocol::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use strom_protocol::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

struct Conn {
    s: TcpStream,
    next: i32,
}

impl Conn {
    async fn open(addr: &str) -> Conn {
        Conn { s: TcpStream::connect(addr).await.expect("connect"), next: 0 }
    }

    async fn call<Req: Message, Resp: Message>(&mut self, version: i16, req: &Req) -> Resp {
        self.send(version, req).await;
        self.recv::<Req, Resp>(version).await
    }

    /// Sends a request without waiting for its response.
    async fn send<Req: Message>(&mut self, version: i16, req: &Req) {
        self.next += 1;
        let mut w = Writer::new();
        RequestHeader {
            api_key: Req::API_KEY,
            api_version: version,
            correlation_id: self.next,
            client_id: Some("groups-test".into()),
            ..Default::default()
        }
        .encode(&mut w);
        req.encode(&mut w, version).expect("encode");
        let body = w.into_bytes();
        self.s.write_all(&(body.len() as i32).to_be_bytes()).await.expect("write");
        self.s.write_all(&body).await.expect("write");
    }

    /// Reads the response to the last request sent.
    async fn recv<Req: Message, Resp: Message>(&mut self, version: i16) -> Resp {
        let mut size = [0u8; 4];
        self.s.read_exact(&mut size).await.expect("response size");
        let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
        self.s.read_exact(&mut buf).await.expect("response");
        let mut r = Reader::new(buf.into());
        assert_eq!(r.i32().expect("correlation"), self.next);
        if strom_protocol::frame::response_header_version(Req::API_KEY, version) == 1 {
            assert_eq!(r.uvarint().expect("header tags"), 0);
        }
        Resp::decode(&mut r, version).expect("decode response")
    }
}

async fn start(
    dir: &Path,
    extra: &[(&str, &str)],
) -> (String, std::sync::Arc<strom::node::Node>, oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let mut o: BTreeMap<String, String> = BTreeMap::from([
        ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
        ("log.dirs".into(), dir.display().to_string()),
        ("offsets.topic.num.partitions".into(), "5".into()),
        ("strom.http.listener".into(), "127.0.0.1:0".into()),
    ]);
    o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let broker =
        strom::Broker::bind(Config::from_sources(None, &BTreeMap::new(), &o).expect("config")).await.expect("bind");
    let addr = broker.local_addr().expect("addr").to_string();
    let node = broker.node.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    (addr, node, tx, task)
}

async fn wait_loaded(node: &strom::node::Node) {
    while !node.groups.is_loaded() {
        tokio::task::yield_now().await;
    }
}

fn join_req(member_id: &str) -> strom::coordinator::group::classic::JoinRequest {
    strom::coordinator::group::classic::JoinRequest {
        member_id: member_id.into(),
        instance_id: None,
        client_id: "paused".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 60_000,
        protocol_type: "consumer".into(),
        protocols: vec![("range".into(), bytes::Bytes::from_static(b"m"))],
        require_known_member_id: true,
    }
}

/// Drives the coordinator's async API (its timer task included) without sockets: with
/// paused time, the clock only moves when every task waits on a timer.
#[tokio::test(start_paused = true)]
async fn the_initial_rebalance_delay_runs_on_the_tokio_clock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_addr, node, stop, task) = start(dir.path(), &[]).await;
    wait_loaded(&node).await;
    let first = node.groups.join(&node.meta, "paused", join_req("")).await;
    assert_eq!(first.error, strom::error::ErrorCode::MemberIdRequired);
    let started = tokio::time::Instant::now();
    let joined = node.groups.join(&node.meta, "paused", join_req(&first.member_id)).await;
    let waited = started.elapsed();
    assert_eq!(
        (joined.error, joined.generation, joined.leader.as_str()),
        (strom::error::ErrorCode::None, 1, first.member_id.as_str())
    );
    assert!(
        waited >= std::time::Duration::from_millis(3000) && waited < std::time::Duration::from_millis(3100),
        "{waited:?}"
    );
    // Without heartbeats the member's 10 s session runs out, again on the tokio clock.
    tokio::time::sleep(std::time::Duration::from_secs(11)).await;
    let state = node.groups.with_group("paused", |g| g.state_name()).expect("group");
    assert_eq!(state, "Empty", "the silent member expired");
    let _ = stop.send(());
    task.await.expect("join").expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_committed_offsets_are_served_after_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, node, stop, task) = start(dir.path(), &[]).await;
    wait_loaded(&node).await;
    let mut c = Conn::open(&addr).await;
    let create = CreateTopicsRequest {
        topics: vec![strom_protocol::create_topics_request::CreatableTopic {
            name: "many".into(),
            num_partitions: 100,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let created: CreateTopicsResponse = c.call(5, &create).await;
    assert_eq!(created.topics[0].error_code, 0);
    let groups: Vec<String> = (0..30).map(|g| format!("group-{g}")).collect();
    for (gi, g) in groups.iter().enumerate() {
        // Standalone commits (generation -1, no member), as assign()-based consumers make.
        let commit = OffsetCommitRequest {
            group_id: g.clone(),
            generation_id_or_member_epoch: -1,
            topics: vec![OffsetCommitRequestTopic {
                name: "many".into(),
                partitions: (0..100)
                    .map(|p| OffsetCommitRequestPartition {
                        partition_index: p,
                        committed_offset: (gi as i64) * 1000 + i64::from(p),
                        committed_metadata: Some(format!("{g}/{p}")),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp: OffsetCommitResponse = c.call(8, &commit).await;
        assert!(resp.topics[0].partitions.iter().all(|p| p.error_code == 0), "{g}: {resp:?}");
    }
    let _ = stop.send(());
    task.await.expect("join").expect("run");

    let (addr, node, stop, task) = start(dir.path(), &[]).await;
    wait_loaded(&node).await;
    let mut c = Conn::open(&addr).await;
    let fetch = OffsetFetchRequest {
        groups: groups
            .iter()
            .map(|g| OffsetFetchRequestGroup {
                group_id: g.clone(),
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: "many".into(),
                    partition_indexes: (0..100).collect(),
                    ..Default::default()
                }]),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let resp: OffsetFetchResponse = c.call(8, &fetch).await;
    assert_eq!(resp.groups.len(), 30);
    let mut seen = 0;
    for (gi, g) in resp.groups.iter().enumerate() {
        assert_eq!(g.error_code, 0);
        for p in &g.topics[0].partitions {
            assert_eq!(p.committed_offset, (gi as i64) * 1000 + i64::from(p.partition_index));
            assert_eq!(p.metadata.as_deref(), Some(format!("group-{gi}/{}", p.partition_index).as_str()));
            seen += 1;
        }
    }
    assert_eq!(seen, 3000);
    // An unknown group reads as "no offset" rather than an error.
    let unknown: OffsetFetchResponse =
        c.call(5, &OffsetFetchRequest { group_id: "nobody".into(), topics: None, ..Default::default() }).await;
    assert_eq!((unknown.error_code, unknown.topics.len()), (0, 0));
    let _ = stop.send(());
    task.await.expect("join").expect("run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_of_empty_groups_expire_after_the_retention_and_stay_gone_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, node, stop, task) = start(dir.path(), &[("offsets.retention.minutes", "60")]).await;
    wait_loaded(&node).await;
    let mut c = Conn::open(&addr).await;
    let create = CreateTopicsRequest {
        topics: vec![strom_protocol::create_topics_request::CreatableTopic {
            name: "kept".into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let _: CreateTopicsResponse = c.call(5, &create).await;
    let commit = |group: &str| OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        topics: vec![OffsetCommitRequestTopic {
            name: "kept".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 7,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let _: OffsetCommitResponse = c.call(8, &commit("old")).await;
    let fetch = |node: &strom::node::Node, g: &str| node.groups.fetch_offsets(g, None).expect("fetch").len();
    assert_eq!(fetch(&node, "old"), 1);
    // 59 minutes later nothing expires; 61 minutes later the offset is gone.
    let now = node.groups.now();
    node.groups.expire_offsets(
        &node.meta,
        strom::coordinator::group::classic::Now { mono: now.mono, wall: now.wall + 59 * 60_000 },
    );
    assert_eq!(fetch(&node, "old"), 1);
    node.groups.expire_offsets(
        &node.meta,
        strom::coordinator::group::classic::Now { mono: now.mono, wall: now.wall + 61 * 60_000 },
    );
    assert_eq!(fetch(&node, "old"), 0);
    assert!(node.groups.with_group("old", |_| ()).is_none(), "a group left with nothing is forgotten");
    let _: OffsetCommitResponse = c.call(8, &commit("fresh")).await;
    let _ = stop.send(());
    task.await.expect("join").expect("run");

    // The tombstone is in the log: after a restart the expired offset stays gone.
    let (_addr, node, stop, task) = start(dir.path(), &[("offsets.retention.minutes", "60")]).await;
    wait_loaded(&node).await;
    assert_eq!(fetch(&node, "old"), 0);
    assert_eq!(fetch(&node, "fresh"), 1);
    let _ = stop.send(());
    task.await.expect("join").expect("run");
}

/// Issue 20 item 3, through the wire, as Kafka's OffsetMetadataManager.validateOffsetCommit
/// and Classic/ConsumerGroup.validateOffsetCommit answer: epoch -1 with a client-generated
/// member id (librdkafka ≥ 2.10, `group.protocol=consumer`, assign() only) is a standalone
/// commit while the group has no members, or when it does not exist yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standalone_commits_with_a_client_generated_member_id_are_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, node, stop, task) = start(dir.path(), &[]).await;
    wait_loaded(&node).await;
    let mut c = Conn::open(&addr).await;
    let create = CreateTopicsRequest {
        topics: vec![strom_protocol::create_topics_request::CreatableTopic {
            name: "solo".into(),
            num_partitions: 1,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let _: CreateTopicsResponse = c.call(5, &create).await;
    let commit = |group: &str, member: &str, epoch: i32, offset: i64| OffsetCommitRequest {
        group_id: group.into(),
        member_id: member.into(),
        generation_id_or_member_epoch: epoch,
        topics: vec![OffsetCommitRequestTopic {
            name: "solo".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let code = |r: &OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    let committed = |g: &str| {
        node.groups.fetch_offsets(g, None).expect("fetch").first().and_then(|(_, _, v)| v.clone()).map(|v| v.offset)
    };
    let member = "5f0c3a4e-9d1b-4c57-8f1e-client-generated";
    // A group that does not exist: created as a simple group, the commit is kept.
    let r: OffsetCommitResponse = c.call(9, &commit("kip1082", member, -1, 42)).await;
    assert_eq!(code(&r), 0);
    assert_eq!(committed("kip1082"), Some(42));
    // Again, now that the (empty) group exists.
    let r: OffsetCommitResponse = c.call(9, &commit("kip1082", member, -1, 43)).await;
    assert_eq!(code(&r), 0);
    assert_eq!(committed("kip1082"), Some(43));
    // A non-negative generation for a group that does not exist: GROUP_ID_NOT_FOUND from
    // v9, ILLEGAL_GENERATION before.
    let r: OffsetCommitResponse = c.call(9, &commit("ghost", member, 3, 1)).await;
    assert_eq!(code(&r), 69);
    let r: OffsetCommitResponse = c.call(8, &commit("ghost", member, 3, 1)).await;
    assert_eq!(code(&r), 22);
    assert!(node.groups.with_group("ghost", |_| ()).is_none());
    // A consumer-protocol group with a member: an unknown member id is refused even with
    // epoch -1; the member itself commits at its epoch (v9+ only, as in Kafka 4).
    let hb = ConsumerGroupHeartbeatRequest {
        group_id: "modern".into(),
        member_id: "m1".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(vec!["solo".into()]),
        ..Default::default()
    };
    let joined: ConsumerGroupHeartbeatResponse = c.call(1, &hb).await;
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let r: OffsetCommitResponse = c.call(9, &commit("modern", member, -1, 5)).await;
    assert_eq!(code(&r), 25);
    let r: OffsetCommitResponse = c.call(9, &commit("modern", "m1", joined.member_epoch, 5)).await;
    assert_eq!(code(&r), 0);
    let r: OffsetCommitResponse = c.call(8, &commit("modern", "m1", joined.member_epoch, 6)).await;
    assert_eq!(code(&r), 35);
    // Once the member left, the standalone commit is accepted again.
    let leave = ConsumerGroupHeartbeatRequest { member_epoch: -1, ..hb };
    let left: ConsumerGroupHeartbeatResponse = c.call(1, &leave).await;
    assert_eq!(left.error_code, 0);
    let r: OffsetCommitResponse = c.call(9, &commit("modern", member, -1, 7)).await;
    assert_eq!(code(&r), 0);
    assert_eq!(committed("modern"), Some(7));
    let _ = stop.send(());
    task.await.expect("join").expect("run");
}

/// Issue 20 item 7: SIGTERM did not stop the broker within the compat runner's 10 s grace when
/// a request was parked, because shutdown gave every connection 10 s to finish its request: a
/// JoinGroup waits for its rebalance (a member that died holds it for its rebalance timeout,
/// `max.poll.interval.ms`), a Fetch for data (up to 30 s). Now the parked join is answered
/// NOT_COORDINATOR at once, as Kafka's coordinator answers parked joins when it unloads its
/// groups, and whatever else is still in flight is cut after `SHUTDOWN_GRACE`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_a_parked_join_and_cuts_a_parked_fetch_short() {
    use std::time::{Duration, Instant};
    use strom_protocol::fetch_request::{FetchPartition, FetchTopic};
    use strom_protocol::join_group_request::JoinGroupRequestProtocol;

    let dir = tempfile::tempdir().expect("tempdir");
    // The first member's join waits for the initial rebalance delay: a minute here.
    let (addr, node, stop, task) = start(dir.path(), &[("group.initial.rebalance.delay.ms", "60000")]).await;
    wait_loaded(&node).await;
    node.meta.create_topic("idle", 1, BTreeMap::new(), false).expect("create topic");
    let join = |member: &str| JoinGroupRequest {
        group_id: "parked".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 300_000,
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinGroupRequestProtocol {
            name: "range".into(),
            metadata: bytes::Bytes::from_static(b"m"),
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut j = Conn::open(&addr).await;
    let first: JoinGroupResponse = j.call(5, &join("")).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    j.send(5, &join(&first.member_id)).await;
    // The join parks under the same lock that moves the group to PreparingRebalance.
    while node.groups.with_group("parked", |g| g.state_name()) != Some("PreparingRebalance") {
        tokio::task::yield_now().await;
    }
    // A fetch at the end of an empty partition waits for data.
    let mut parked_fetches = node.parked_fetches.subscribe();
    let mut f = Conn::open(&addr).await;
    let fetch = FetchRequest {
        max_wait_ms: 60_000,
        min_bytes: 1,
        topics: vec![FetchTopic {
            topic: "idle".into(),
            partitions: vec![FetchPartition { partition: 0, partition_max_bytes: 1 << 20, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    f.send(11, &fetch).await;
    parked_fetches.wait_for(|n| *n == 1).await.expect("the fetch parks");

    let stopping = Instant::now();
    let _ = stop.send(());
    let answered = tokio::time::timeout(Duration::from_secs(5), j.recv::<JoinGroupRequest, JoinGroupResponse>(5)).await;
    let answered = answered.expect("the parked JoinGroup is answered at shutdown");
    assert_eq!((answered.error_code, answered.member_id.as_str()), (16, first.member_id.as_str()), "NOT_COORDINATOR");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the broker stops within seconds")
        .expect("join")
        .expect("run");
    let took = stopping.elapsed();
    assert!(took < strom::net::SHUTDOWN_GRACE + Duration::from_secs(1), "shutdown took {took:?}");
    // The fetch was cut: its connection closes without a response.
    let mut buf = [0u8; 4];
    let n = f.s.read(&mut buf).await.unwrap_or(0);
    assert_eq!(n, 0, "no response to the parked fetch, the connection is closed");
}
