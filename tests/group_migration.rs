//! KIP-848 online migration through the wire (issue 20 item 8): a consumer-protocol member
//! joining a group that classic members created converts it to a consumer group in which
//! the classic members keep working through JoinGroup/SyncGroup/Heartbeat, and the group
//! goes back to classic when the last consumer-protocol member leaves
//! (`group.consumer.migration.policy`). Committed offsets and the group's type survive
//! restarts through `__consumer_offsets`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use strom::config::Config;
use strom_protocol::frame::RequestHeader;
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
        self.next += 1;
        let mut w = Writer::new();
        RequestHeader {
            api_key: Req::API_KEY,
            api_version: version,
            correlation_id: self.next,
            client_id: Some("migration-test".into()),
            ..Default::default()
        }
        .encode(&mut w);
        req.encode(&mut w, version).expect("encode");
        let body = w.into_bytes();
        self.s.write_all(&(body.len() as i32).to_be_bytes()).await.expect("write");
        self.s.write_all(&body).await.expect("write");
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

type Running =
    (String, std::sync::Arc<strom::node::Node>, oneshot::Sender<()>, tokio::task::JoinHandle<std::io::Result<()>>);

async fn start(dir: &Path, extra: &[(&str, &str)]) -> Running {
    let mut o: BTreeMap<String, String> = BTreeMap::from([
        ("listeners".into(), "PLAINTEXT://127.0.0.1:0".into()),
        ("log.dirs".into(), dir.display().to_string()),
        ("offsets.topic.num.partitions".into(), "3".into()),
        ("strom.http.listener".into(), "127.0.0.1:0".into()),
        ("group.initial.rebalance.delay.ms".into(), "0".into()),
    ]);
    o.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let broker =
        strom::Broker::bind(Config::from_sources(None, &BTreeMap::new(), &o).expect("config")).await.expect("bind");
    let addr = broker.local_addr().expect("addr").to_string();
    let node = broker.node.clone();
    while !node.groups.is_loaded() {
        tokio::task::yield_now().await;
    }
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    (addr, node, tx, task)
}

async fn stop(running: Running) {
    let (_, _, tx, task) = running;
    let _ = tx.send(());
    task.await.expect("join").expect("run");
}

/// ConsumerProtocolSubscription v1: topics, no user data, owned partitions.
fn subscription(topics: &[&str], owned: &[(&str, &[i32])]) -> Bytes {
    let mut w = Writer::new();
    w.i16(1);
    w.array_len(topics.len(), false).unwrap();
    for t in topics {
        w.string(t, false).unwrap();
    }
    w.null_bytes(false);
    w.array_len(owned.len(), false).unwrap();
    for (t, ps) in owned {
        w.string(t, false).unwrap();
        w.array_len(ps.len(), false).unwrap();
        for p in *ps {
            w.i32(*p);
        }
    }
    w.into_bytes()
}

/// ConsumerProtocolAssignment v1.
fn assignment(parts: &[(&str, &[i32])]) -> Bytes {
    let mut w = Writer::new();
    w.i16(1);
    w.array_len(parts.len(), false).unwrap();
    for (t, ps) in parts {
        w.string(t, false).unwrap();
        w.array_len(ps.len(), false).unwrap();
        for p in *ps {
            w.i32(*p);
        }
    }
    w.null_bytes(false);
    w.into_bytes()
}

fn decode_assignment(b: &Bytes) -> BTreeSet<(String, i32)> {
    let mut out = BTreeSet::new();
    if b.is_empty() {
        return out;
    }
    let mut r = Reader::new(b.clone());
    r.i16().unwrap();
    for _ in 0..r.array_len(false).unwrap().unwrap() {
        let t = r.string(false).unwrap();
        for _ in 0..r.array_len(false).unwrap().unwrap() {
            out.insert((t.clone(), r.i32().unwrap()));
        }
    }
    out
}

fn join(group: &str, member: &str, meta: Bytes) -> JoinGroupRequest {
    JoinGroupRequest {
        group_id: group.into(),
        session_timeout_ms: 30_000,
        rebalance_timeout_ms: 60_000,
        member_id: member.into(),
        protocol_type: "consumer".into(),
        protocols: vec![join_group_request::JoinGroupRequestProtocol {
            name: "cooperative-sticky".into(),
            metadata: meta,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn sync(group: &str, member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncGroupRequest {
    SyncGroupRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        protocol_type: Some("consumer".into()),
        protocol_name: Some("cooperative-sticky".into()),
        assignments: assignments
            .into_iter()
            .map(|(member_id, assignment)| sync_group_request::SyncGroupRequestAssignment {
                member_id,
                assignment,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

fn heartbeat(group: &str, member: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest {
        group_id: group.into(),
        generation_id: generation,
        member_id: member.into(),
        ..Default::default()
    }
}

fn kip848(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: epoch,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: if epoch == 0 { Some(vec!["mig".into()]) } else { None },
        topic_partitions: if epoch == 0 { Some(Vec::new()) } else { None },
        ..Default::default()
    }
}

fn commit(group: &str, member: &str, generation: i32, partition: i32, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: generation,
        member_id: member.into(),
        topics: vec![offset_commit_request::OffsetCommitRequestTopic {
            name: "mig".into(),
            partitions: vec![offset_commit_request::OffsetCommitRequestPartition {
                partition_index: partition,
                committed_offset: offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

async fn group_type(c: &mut Conn, group: &str) -> Option<(String, String)> {
    let listed: ListGroupsResponse = c.call(5, &ListGroupsRequest::default()).await;
    listed.groups.iter().find(|g| g.group_id == group).map(|g| (g.group_type.clone(), g.group_state.clone()))
}

fn committed(node: &strom::node::Node, group: &str, partition: i32) -> Option<i64> {
    let rows = node.groups.fetch_offsets(group, Some(&[("mig".to_string(), partition)])).expect("fetch");
    rows.first().and_then(|(_, _, v)| v.as_ref().map(|v| v.offset))
}

async fn create_topic(c: &mut Conn) {
    let create = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: "mig".into(),
            num_partitions: 4,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let r: CreateTopicsResponse = c.call(5, &create).await;
    assert_eq!(r.topics[0].error_code, 0);
}

/// A classic member alone in "g" owning all four partitions at generation 1.
async fn classic_group_of_one(c: &mut Conn) -> String {
    let first: JoinGroupResponse = c.call(5, &join("g", "", subscription(&["mig"], &[]))).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
    let a = first.member_id;
    let joined: JoinGroupResponse = c.call(5, &join("g", &a, subscription(&["mig"], &[]))).await;
    assert_eq!((joined.error_code, joined.generation_id, joined.leader.as_str()), (0, 1, a.as_str()));
    let all = assignment(&[("mig", &[0, 1, 2, 3])]);
    let synced: SyncGroupResponse = c.call(5, &sync("g", &a, 1, vec![(a.clone(), all.clone())])).await;
    assert_eq!((synced.error_code, synced.assignment), (0, all));
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_protocol_member_upgrades_a_classic_group_and_its_leaving_downgrades_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), &[]).await;
    let (addr, node) = (running.0.clone(), running.1.clone());
    let mut c = Conn::open(&addr).await;
    create_topic(&mut c).await;
    let a = classic_group_of_one(&mut c).await;
    let r: OffsetCommitResponse = c.call(8, &commit("g", &a, 1, 0, 17)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // The KIP-848 member joins the classic group: Kafka converts it online.
    let b1: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", 0)).await;
    assert_eq!(b1.error_code, 0, "{b1:?}");
    assert!(b1.member_epoch >= 2, "the group epoch moved past the classic generation: {b1:?}");
    let given = b1.assignment.map(|a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum::<usize>());
    assert_eq!(given.unwrap_or(0), 0, "everything is still owned by the classic member");
    assert_eq!(group_type(&mut c, "g").await.map(|t| t.0), Some("consumer".into()));
    assert_eq!(committed(&node, "g", 0), Some(17), "committed offsets are kept");
    let described: ConsumerGroupDescribeResponse =
        c.call(1, &ConsumerGroupDescribeRequest { group_ids: vec!["g".into()], ..Default::default() }).await;
    let types: BTreeMap<String, i8> =
        described.groups[0].members.iter().map(|m| (m.member_id.clone(), m.member_type)).collect();
    assert_eq!(types, BTreeMap::from([(a.clone(), 0), ("b".to_string(), 1)]), "KIP-1099 member types");

    // The classic member is told to rejoin; it keeps committing at its generation meanwhile.
    let hb: HeartbeatResponse = c.call(4, &heartbeat("g", &a, 1)).await;
    assert_eq!(hb.error_code, 27, "REBALANCE_IN_PROGRESS");
    let r: OffsetCommitResponse = c.call(8, &commit("g", &a, 1, 1, 5)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    // Rejoining with what it owns, it is asked to give up half (same generation: it has
    // not revoked yet).
    let owned_all: &[(&str, &[i32])] = &[("mig", &[0, 1, 2, 3])];
    let j: JoinGroupResponse = c.call(5, &join("g", &a, subscription(&["mig"], owned_all))).await;
    assert_eq!((j.error_code, j.generation_id, j.protocol_name.as_deref()), (0, 1, Some("cooperative-sticky")));
    assert!(j.members.is_empty() && j.leader != a, "the coordinator assigns; the member is no leader");
    let s: SyncGroupResponse = c.call(5, &sync("g", &a, j.generation_id, vec![])).await;
    assert_eq!(s.error_code, 0);
    let kept = decode_assignment(&s.assignment);
    assert_eq!(kept.len(), 2, "{kept:?}");
    // It revokes the other two and rejoins: now at the group's epoch.
    let kept_parts: Vec<i32> = kept.iter().map(|(_, p)| *p).collect();
    let owned_now: &[(&str, &[i32])] = &[("mig", &kept_parts)];
    let j: JoinGroupResponse = c.call(5, &join("g", &a, subscription(&["mig"], owned_now))).await;
    assert_eq!(j.error_code, 0);
    assert!(j.generation_id >= b1.member_epoch, "{j:?}");
    let s: SyncGroupResponse = c.call(5, &sync("g", &a, j.generation_id, vec![])).await;
    assert_eq!(decode_assignment(&s.assignment), kept);
    let hb: HeartbeatResponse = c.call(4, &heartbeat("g", &a, j.generation_id)).await;
    assert_eq!(hb.error_code, 0);

    // The KIP-848 member now receives the released partitions: no partition has two owners.
    let b2: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", b1.member_epoch)).await;
    assert_eq!(b2.error_code, 0, "{b2:?}");
    let got: BTreeSet<i32> =
        b2.assignment.expect("assignment").topic_partitions.iter().flat_map(|t| t.partitions.clone()).collect();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|p| !kept_parts.contains(p)));
    // A classic member at the wrong generation is told so.
    let hb: HeartbeatResponse = c.call(4, &heartbeat("g", &a, 1)).await;
    assert_eq!(hb.error_code, 22, "ILLEGAL_GENERATION");

    // The last KIP-848 member leaves: only classic members remain, so the group goes back
    // to classic and rebalances; the classic member rejoins and leads it.
    let left: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", -1)).await;
    assert_eq!(left.error_code, 0);
    assert_eq!(group_type(&mut c, "g").await, Some(("classic".into(), "PreparingRebalance".into())));
    let hb: HeartbeatResponse = c.call(4, &heartbeat("g", &a, j.generation_id)).await;
    assert!(hb.error_code == 27 || hb.error_code == 22, "{hb:?}");
    let rejoined: JoinGroupResponse = c.call(5, &join("g", &a, subscription(&["mig"], owned_now))).await;
    assert_eq!((rejoined.error_code, rejoined.leader.as_str()), (0, a.as_str()));
    assert_eq!(rejoined.members.len(), 1);
    let s: SyncGroupResponse =
        c.call(5, &sync("g", &a, rejoined.generation_id, vec![(a.clone(), assignment(owned_all))])).await;
    assert_eq!(s.error_code, 0);
    assert_eq!(group_type(&mut c, "g").await, Some(("classic".into(), "Stable".into())));
    stop(running).await;

    // After a restart: a classic group, its offsets intact.
    let running = start(dir.path(), &[]).await;
    let mut c = Conn::open(&running.0).await;
    assert_eq!(group_type(&mut c, "g").await.map(|t| t.0), Some("classic".into()));
    assert_eq!(committed(&running.1, "g", 0), Some(17));
    assert_eq!(committed(&running.1, "g", 1), Some(5));
    stop(running).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_migration_policy_decides_whether_a_group_with_members_converts() {
    let dir = tempfile::tempdir().expect("tempdir");
    // disabled: Kafka's answer before online migration existed.
    let running = start(dir.path(), &[("group.consumer.migration.policy", "disabled")]).await;
    let mut c = Conn::open(&running.0).await;
    create_topic(&mut c).await;
    let _a = classic_group_of_one(&mut c).await;
    let b: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", 0)).await;
    assert_eq!(b.error_code, 69, "GROUP_ID_NOT_FOUND");
    assert_eq!(group_type(&mut c, "g").await.map(|t| t.0), Some("classic".into()));
    stop(running).await;

    // upgrade: converts, but the last KIP-848 member leaving does not convert back.
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), &[("group.consumer.migration.policy", "Upgrade")]).await;
    let mut c = Conn::open(&running.0).await;
    create_topic(&mut c).await;
    let a = classic_group_of_one(&mut c).await;
    let b: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", 0)).await;
    assert_eq!(b.error_code, 0);
    let left: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", -1)).await;
    assert_eq!(left.error_code, 0);
    assert_eq!(group_type(&mut c, "g").await.map(|t| t.0), Some("consumer".into()));
    let hb: HeartbeatResponse = c.call(4, &heartbeat("g", &a, 1)).await;
    assert_eq!(hb.error_code, 27, "the classic member stays in the consumer group and rejoins");
    stop(running).await;
}

/// Groups without members convert whatever the policy (Kafka's maybeDeleteEmptyClassicGroup
/// and maybeDeleteEmptyConsumerGroup); their committed offsets, and their type, survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_groups_convert_both_ways_with_their_offsets_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let running = start(dir.path(), &[("group.consumer.migration.policy", "disabled")]).await;
    let mut c = Conn::open(&running.0).await;
    create_topic(&mut c).await;
    // A classic group that emptied out, with a committed offset.
    let a = classic_group_of_one(&mut c).await;
    let r: OffsetCommitResponse = c.call(8, &commit("g", &a, 1, 2, 99)).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    let leave = LeaveGroupRequest { group_id: "g".into(), member_id: a.clone(), ..Default::default() };
    let l: LeaveGroupResponse = c.call(0, &leave).await;
    assert_eq!(l.error_code, 0);
    assert_eq!(group_type(&mut c, "g").await, Some(("classic".into(), "Empty".into())));
    let b: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", 0)).await;
    assert_eq!(b.error_code, 0, "{b:?}");
    let left: ConsumerGroupHeartbeatResponse = c.call(1, &kip848("g", "b", -1)).await;
    assert_eq!(left.error_code, 0);
    assert_eq!(group_type(&mut c, "g").await, Some(("consumer".into(), "Empty".into())));
    stop(running).await;

    // The type is in __consumer_offsets: still a consumer group after a restart.
    let running = start(dir.path(), &[("group.consumer.migration.policy", "disabled")]).await;
    let mut c = Conn::open(&running.0).await;
    assert_eq!(group_type(&mut c, "g").await, Some(("consumer".into(), "Empty".into())));
    assert_eq!(committed(&running.1, "g", 2), Some(99));
    // A classic member joining the empty consumer group turns it back into a classic group.
    let first: JoinGroupResponse = c.call(5, &join("g", "", subscription(&["mig"], &[]))).await;
    assert_eq!(first.error_code, 79);
    let joined: JoinGroupResponse = c.call(5, &join("g", &first.member_id, subscription(&["mig"], &[]))).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(group_type(&mut c, "g").await.map(|t| t.0), Some("classic".into()));
    stop(running).await;

    let running = start(dir.path(), &[]).await;
    let mut c = Conn::open(&running.0).await;
    assert_eq!(group_type(&mut c, "g").await.map(|t| t.0), Some("classic".into()));
    assert_eq!(committed(&running.1, "g", 2), Some(99));
    stop(running).await;
}
