//! Tests of the `strom` executable itself: startup, graceful stop on SIGTERM, and
//! restart after `kill -9` with every acknowledged record intact.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use chrono::{TimeZone, Utc};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;

struct Strom {
    child: Child,
    addr: String,
    log: std::sync::mpsc::Receiver<String>,
}

impl Drop for Strom {
    /// A failing test must not leave a broker running (or a mount busy).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary on a free port and waits for its "serving" log line.
fn spawn(dir: &Path) -> Strom {
    spawn_with(dir, &[])
}

/// [`spawn`] with more command-line arguments.
fn spawn_with(dir: &Path, extra: &[&str]) -> Strom {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["serve", "--listeners", "PLAINTEXT://127.0.0.1:0", "--override", "strom.http.listener=127.0.0.1:0"])
        .args(["--override", "strom.schema.registry.listener="])
        .arg("--log-dirs")
        .arg(dir)
        .args(extra)
        .env("STROM_LOG", "info")
        .env("STROM_STROM_HTTP_LISTENER", "127.0.0.1:0")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn strom");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let addr = loop {
        let line = rx.recv().expect("strom exited before serving");
        if line.contains("strom is serving") {
            let addr = line.split("addr=").nth(1).and_then(|s| s.split_whitespace().next()).expect("addr in log line");
            break addr.to_string();
        }
    };
    Strom { child, addr, log: rx }
}

fn record(i: usize) -> Record {
    Record {
        key: Some(format!("k{i}").into_bytes()),
        value: Some(vec![(i % 251) as u8; 100 + i % 300]),
        headers: BTreeMap::new(),
        timestamp: Utc.timestamp_millis_opt(1_700_000_000_000 + i as i64).single().expect("ts"),
    }
}

async fn produce(addr: &str, topic: &str, from: usize, n: usize) {
    let client = ClientBuilder::new(vec![addr.to_string()]).build().await.expect("client");
    let pc = client.partition_client(topic, 0, UnknownTopicHandling::Retry).await.expect("pc");
    for chunk in (from..from + n).collect::<Vec<_>>().chunks(50) {
        pc.produce(chunk.iter().map(|i| record(*i)).collect(), Compression::NoCompression).await.expect("produce");
    }
}

async fn read_back(addr: &str, topic: &str) -> Vec<Record> {
    let client = ClientBuilder::new(vec![addr.to_string()]).build().await.expect("client");
    let pc = client.partition_client(topic, 0, UnknownTopicHandling::Error).await.expect("pc");
    let end = pc.get_offset(OffsetAt::Latest).await.expect("latest");
    let mut out = Vec::new();
    while (out.len() as i64) < end {
        let (recs, _) = pc.fetch_records(out.len() as i64, 1..1_000_000, 100).await.expect("fetch");
        out.extend(recs.into_iter().map(|r| r.record));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_broker_cleanly_and_data_survives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut strom = spawn(dir.path());
    produce(&strom.addr, "graceful", 0, 500).await;
    let status = Command::new("kill").args(["-TERM", &strom.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let exit = strom.child.wait().expect("wait");
    assert!(exit.success(), "graceful stop exits 0, got {exit:?}");
    assert!(strom.log.iter().any(|l| l.contains("shutdown complete")), "shutdown is logged");

    let mut strom = spawn(dir.path());
    let got = read_back(&strom.addr, "graceful").await;
    assert_eq!(got, (0..500).map(record).collect::<Vec<_>>());
    strom.child.kill().expect("kill");
    strom.child.wait().expect("wait");
}

/// Sends one request frame (non-flexible versions only) without waiting for the response.
async fn send_request<Req: strom_protocol::Message>(s: &mut tokio::net::TcpStream, version: i16, req: &Req) {
    use tokio::io::AsyncWriteExt;
    let mut w = strom_protocol::Writer::new();
    strom_protocol::frame::RequestHeader {
        api_key: Req::API_KEY,
        api_version: version,
        correlation_id: 1,
        client_id: Some("t".into()),
        ..Default::default()
    }
    .encode(&mut w);
    req.encode(&mut w, version).expect("encode");
    let body = w.into_bytes();
    s.write_all(&(body.len() as i32).to_be_bytes()).await.expect("write");
    s.write_all(&body).await.expect("write");
}

/// Reads one response frame (non-flexible versions only).
async fn read_response<Resp: strom_protocol::Message>(s: &mut tokio::net::TcpStream, version: i16) -> Resp {
    use tokio::io::AsyncReadExt;
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.expect("response size");
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut buf).await.expect("response");
    let mut r = strom_protocol::Reader::new(buf.into());
    r.i32().expect("correlation");
    Resp::decode(&mut r, version).expect("decode")
}

/// Issue 20 item 7: the compat runner once had to SIGKILL the broker, 10 s after its SIGTERM.
/// A JoinGroup parked for a rebalance (here the initial rebalance delay; after a client dies,
/// its rebalance timeout) held its connection, and shutdown waited 10 s for it. Now the
/// parked join is answered NOT_COORDINATOR and the broker is gone within a second or two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_for_a_parked_join_group() {
    use strom_protocol::join_group_request::JoinGroupRequestProtocol;
    use strom_protocol::{DescribeGroupsRequest, DescribeGroupsResponse, JoinGroupRequest, JoinGroupResponse};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut strom = spawn_with(dir.path(), &["--override", "group.initial.rebalance.delay.ms=300000"]);
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
    let mut member = tokio::net::TcpStream::connect(&strom.addr).await.expect("connect");
    // The coordinator loads its log in the background; until then joins are refused.
    let id = loop {
        send_request(&mut member, 5, &join("")).await;
        let r: JoinGroupResponse = read_response(&mut member, 5).await;
        // MEMBER_ID_REQUIRED, or COORDINATOR_LOAD_IN_PROGRESS.
        match r.error_code {
            79 => break r.member_id,
            14 => tokio::task::yield_now().await,
            e => panic!("first join: error {e}"),
        }
    };
    send_request(&mut member, 5, &join(&id)).await;
    // Parked once the group shows PreparingRebalance (the join parks under the same lock).
    let mut admin = tokio::net::TcpStream::connect(&strom.addr).await.expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        send_request(&mut admin, 4, &DescribeGroupsRequest { groups: vec!["parked".into()], ..Default::default() })
            .await;
        let d: DescribeGroupsResponse = read_response(&mut admin, 4).await;
        if d.groups[0].group_state == "PreparingRebalance" {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let answer = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                read_response::<JoinGroupResponse>(&mut member, 5),
            )
            .await;
            panic!(
                "the join never parked: group state {:?}, the join's answer {answer:?}, broker log {:?}",
                d.groups[0].group_state,
                strom.log.try_iter().collect::<Vec<_>>()
            );
        }
    }

    let stopping = std::time::Instant::now();
    let status = Command::new("kill").args(["-TERM", &strom.child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let answer =
        tokio::time::timeout(std::time::Duration::from_secs(5), read_response::<JoinGroupResponse>(&mut member, 5))
            .await
            .expect("the parked JoinGroup is answered at shutdown");
    assert_eq!(answer.error_code, 16, "NOT_COORDINATOR");
    // stderr closes when the process exits.
    let mut complete = false;
    loop {
        match strom.log.recv_timeout(std::time::Duration::from_secs(5)) {
            Ok(line) => complete |= line.contains("shutdown complete"),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("still running {:?} after SIGTERM", stopping.elapsed())
            }
        }
    }
    let exit = strom.child.wait().expect("wait");
    let took = stopping.elapsed();
    assert!(exit.success() && complete, "graceful stop: {exit:?}, shutdown complete logged: {complete}");
    assert!(took < std::time::Duration::from_secs(3), "SIGTERM to exit took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_kill_9() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked = 0;
    for round in 0..3 {
        let mut strom = spawn(dir.path());
        let got = read_back(&strom.addr, "crashy").await;
        assert_eq!(got.len(), acked, "round {round}: every acknowledged record is back");
        assert!(got.iter().zip(0..).all(|(r, i)| *r == record(i)), "round {round}: records identical and in order");
        produce(&strom.addr, "crashy", acked, 300).await;
        acked += 300;
        // SIGKILL: no shutdown path runs; the active segment keeps its preallocated tail.
        strom.child.kill().expect("kill -9");
        strom.child.wait().expect("wait");
    }
    let mut strom = spawn(dir.path());
    assert_eq!(read_back(&strom.addr, "crashy").await.len(), acked);
    strom.child.kill().expect("kill");
    strom.child.wait().expect("wait");
}

/// Produce v8 of one batch to partition 0 of `topic`: (error code, base offset).
async fn produce_batch(addr: &str, topic: &str, batch: bytes::Bytes) -> (i16, i64) {
    use strom_protocol::frame::RequestHeader;
    use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
    use strom_protocol::{Reader, Writer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let req = strom_protocol::ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData { index: 0, records: Some(batch), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut w = Writer::new();
    RequestHeader { api_key: 0, api_version: 8, correlation_id: 1, client_id: Some("t".into()), ..Default::default() }
        .encode(&mut w);
    req.encode(&mut w, 8).expect("encode");
    let body = w.into_bytes();
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&(body.len() as i32).to_be_bytes()).await.expect("write");
    s.write_all(&body).await.expect("write");
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.expect("read");
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut buf).await.expect("read");
    let mut r = Reader::new(buf.into());
    r.i32().expect("correlation");
    let resp = strom_protocol::ProduceResponse::decode(&mut r, 8).expect("decode");
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_kill_9_is_not_stored_twice() {
    use strom_protocol::records::BatchBuilder;
    let dir = tempfile::tempdir().expect("tempdir");
    let batch = |seq: i32| {
        let mut b = BatchBuilder::new(strom_storage::now_ms()).producer(42, 0, seq);
        for i in 0..10 {
            b.add(None, Some(format!("{seq}-{i}").as_bytes()));
        }
        b.build().freeze()
    };
    let mut strom = spawn(dir.path());
    produce(&strom.addr, "retry", 0, 5).await; // creates the topic; offsets 0..5
    assert_eq!(produce_batch(&strom.addr, "retry", batch(0)).await, (0, 5));
    let in_flight = batch(10);
    assert_eq!(produce_batch(&strom.addr, "retry", in_flight.clone()).await, (0, 15));
    // The broker dies before the client saw the response; the client retries.
    strom.child.kill().expect("kill -9");
    strom.child.wait().expect("wait");

    let mut strom = spawn(dir.path());
    assert_eq!(produce_batch(&strom.addr, "retry", in_flight).await, (0, 15), "original offsets");
    assert_eq!(produce_batch(&strom.addr, "retry", batch(20)).await, (0, 25), "sequence continues");
    assert_eq!(read_back(&strom.addr, "retry").await.len(), 35, "no duplicate stored");
    strom.child.kill().expect("kill");
    strom.child.wait().expect("wait");
}

/// Produces one batch of `value` with acks=1 over a raw connection; returns the error code.
async fn produce_raw(addr: &str, topic: &str, value: &[u8]) -> (i16, i64) {
    use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
    use strom_protocol::{frame::RequestHeader, Reader, Writer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut b = strom_protocol::records::BatchBuilder::new(strom_storage::now_ms());
    b.add(None, Some(value));
    let req = strom_protocol::ProduceRequest {
        acks: 1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(b.build().freeze()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut w = Writer::new();
    RequestHeader {
        api_key: 0,
        api_version: 9,
        correlation_id: 1,
        client_id: Some("enospc".into()),
        ..Default::default()
    }
    .encode(&mut w);
    req.encode(&mut w, 9).expect("encode");
    let body = w.into_bytes();
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(&(body.len() as i32).to_be_bytes()).await.expect("write");
    s.write_all(&body).await.expect("write");
    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.expect("size");
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    s.read_exact(&mut buf).await.expect("body");
    let mut r = Reader::new(buf.into());
    r.i32().expect("correlation");
    r.uvarint().expect("header tags");
    let resp = strom_protocol::ProduceResponse::decode(&mut r, 9).expect("response");
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// Needs root to mount a size-limited tmpfs (CI runs as root on the same machine kind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).expect("mkdir");
    let mounted =
        Command::new("mount").args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"]).arg(&mnt).status().expect("mount");
    assert!(mounted.success(), "mounting a tmpfs failed: this test needs root");
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    // A filler file to delete later, standing for "space freed by an operator".
    std::fs::write(mnt.join("filler"), vec![0u8; 2 << 20]).expect("filler");
    let data = mnt.join("data");
    let spawn_small = |data: &Path| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(["serve", "--listeners", "PLAINTEXT://127.0.0.1:0", "--override", "strom.http.listener=127.0.0.1:0"])
            .args(["--override", "strom.schema.registry.listener="])
            .arg("--log-dirs")
            .arg(data)
            .args(["--override", "offsets.topic.num.partitions=1", "--override", "log.segment.bytes=1048576"])
            .args(["--override", "log.index.size.max.bytes=65536"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let addr = loop {
            let line = rx.recv().expect("strom exited before serving");
            if let Some(rest) = line.split("addr=").nth(1) {
                break rest.split_whitespace().next().expect("addr").to_string();
            }
        };
        Strom { child, addr, log: rx }
    };
    let mut strom = spawn_small(&data);
    // Metadata auto-creates the topic (produce alone does not).
    let client = ClientBuilder::new(vec![strom.addr.clone()]).build().await.expect("client");
    client.partition_client("fill", 0, UnknownTopicHandling::Retry).await.expect("auto-create");
    let value = vec![42u8; 16 * 1024];
    let mut acked = 0i64;
    let mut refused = false;
    for _ in 0..2000 {
        match produce_raw(&strom.addr, "fill", &value).await {
            (0, offset) => {
                assert_eq!(offset, acked, "acknowledged offsets are contiguous");
                acked += 1;
            }
            (56, _) => {
                refused = true;
                break;
            }
            (code, _) => panic!("unexpected error {code} while filling the disk"),
        }
    }
    assert!(refused, "the disk never filled after {acked} records");
    assert!(strom.child.try_wait().expect("wait").is_none(), "the broker keeps running on a full disk");
    // Reads keep working.
    assert_eq!(read_back_raw(&strom.addr, "fill").await, acked);
    // Space comes back; after a restart everything acknowledged is there.
    std::fs::remove_file(mnt.join("filler")).expect("free space");
    strom.child.kill().expect("kill");
    strom.child.wait().expect("wait");
    let mut strom = spawn_small(&data);
    assert_eq!(read_back_raw(&strom.addr, "fill").await, acked);
    assert_eq!(produce_raw(&strom.addr, "fill", b"after").await, (0, acked), "writes work again");
    println!("full disk: {acked} records acknowledged before KAFKA_STORAGE_ERROR; all read back after restart");
    strom.child.kill().expect("kill");
    strom.child.wait().expect("wait");
}

/// Counts the records of partition 0 via rskafka (reads only).
async fn read_back_raw(addr: &str, topic: &str) -> i64 {
    let client = ClientBuilder::new(vec![addr.to_string()]).build().await.expect("client");
    let pc = client.partition_client(topic, 0, UnknownTopicHandling::Error).await.expect("pc");
    let end = pc.get_offset(OffsetAt::Latest).await.expect("latest");
    let mut next = 0;
    while next < end {
        let (recs, _) = pc.fetch_records(next, 1..4_000_000, 100).await.expect("fetch");
        for r in recs {
            assert_eq!(r.offset, next, "contiguous");
            next += 1;
        }
    }
    end
}

/// Share groups under kill -9 (issue 19, ADR 0016 step 4): in each of four rounds a
/// share consumer acquires records, accepts every other one it got, and the broker is
/// killed right after the acknowledgement was answered. A record accepted (answered
/// without error) must never be delivered again; at the end, a last consumer drains the
/// rest, and every produced record was accepted exactly once: none lost, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_share_records_survive_kill_9() {
    use std::collections::BTreeSet;
    use std::time::Duration;
    use strom_protocol::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    use strom_protocol::share_acknowledge_request::{AcknowledgePartition, AcknowledgeTopic, AcknowledgementBatch};
    use strom_protocol::share_fetch_request::{FetchPartition, FetchTopic};
    use strom_protocol::*;

    const N: usize = 400;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut strom = spawn(dir.path());
    produce(&strom.addr, "queue", 0, N).await;
    let mut c = strom_client::Client::connect(&strom.addr, Duration::from_secs(30)).await.expect("connect");
    let topic = {
        let md: MetadataResponse =
            c.call_at(12, &MetadataRequest { topics: None, ..Default::default() }).await.unwrap();
        md.topics.iter().find(|t| t.name.as_deref() == Some("queue")).expect("topic").topic_id
    };
    let set = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 32,
            resource_name: "g".into(),
            configs: vec![AlterableConfig {
                name: "share.auto.offset.reset".into(),
                config_operation: 0,
                value: Some("earliest".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: IncrementalAlterConfigsResponse = c.call_at(1, &set).await.unwrap();
    assert_eq!(r.responses[0].error_code, 0);
    drop(c);

    let fetch = |member: &str| ShareFetchRequest {
        group_id: Some("g".into()),
        member_id: Some(member.into()),
        share_session_epoch: 0,
        max_wait_ms: 5000,
        min_bytes: 1,
        max_bytes: 1 << 20,
        max_records: 60,
        batch_size: 60,
        topics: vec![FetchTopic {
            topic_id: topic,
            partitions: vec![FetchPartition { partition_index: 0, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let accept = |member: &str, offsets: &[i64]| ShareAcknowledgeRequest {
        group_id: Some("g".into()),
        member_id: Some(member.into()),
        share_session_epoch: 1,
        topics: vec![AcknowledgeTopic {
            topic_id: topic,
            partitions: vec![AcknowledgePartition {
                partition_index: 0,
                acknowledgement_batches: offsets
                    .iter()
                    .map(|&o| AcknowledgementBatch {
                        first_offset: o,
                        last_offset: o,
                        acknowledge_types: vec![1],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let offsets_of = |r: &ShareFetchResponse| -> Vec<i64> {
        r.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .flat_map(|p| &p.acquired_records)
            .flat_map(|a| a.first_offset..=a.last_offset)
            .collect()
    };
    let mut accepted: BTreeSet<i64> = BTreeSet::new();
    let mut redelivered_after_accept: Vec<i64> = Vec::new();
    for round in 0..4 {
        let member = format!("m{round}");
        let mut c = strom_client::Client::connect(&strom.addr, Duration::from_secs(30)).await.expect("connect");
        let got: ShareFetchResponse = c.call_at(1, &fetch(&member)).await.unwrap();
        let offsets = offsets_of(&got);
        assert!(!offsets.is_empty(), "round {round}: nothing delivered");
        redelivered_after_accept.extend(offsets.iter().filter(|o| accepted.contains(o)));
        let mine: Vec<i64> = offsets.iter().copied().step_by(2).collect();
        let r: ShareAcknowledgeResponse = c.call_at(1, &accept(&member, &mine)).await.unwrap();
        assert_eq!((r.error_code, r.responses[0].partitions[0].error_code), (0, 0), "round {round}");
        accepted.extend(&mine);
        // The acknowledgement was answered: now kill -9, no shutdown path runs.
        strom.child.kill().expect("kill -9");
        strom.child.wait().expect("wait");
        strom = spawn(dir.path());
    }
    let before_kills = accepted.len();
    // Drain: everything not accepted yet is delivered (again) and accepted now.
    let mut c = strom_client::Client::connect(&strom.addr, Duration::from_secs(30)).await.expect("connect");
    let mut twice = 0;
    for i in 0.. {
        let member = format!("drain{i}");
        let got: ShareFetchResponse =
            c.call_at(1, &ShareFetchRequest { max_wait_ms: 0, ..fetch(&member) }).await.unwrap();
        let offsets = offsets_of(&got);
        if offsets.is_empty() {
            break;
        }
        redelivered_after_accept.extend(offsets.iter().filter(|o| accepted.contains(o)));
        let r: ShareAcknowledgeResponse = c.call_at(1, &accept(&member, &offsets)).await.unwrap();
        assert_eq!(r.responses[0].partitions[0].error_code, 0);
        twice += offsets.iter().filter(|o| !accepted.insert(**o)).count();
        assert!(i < N, "the drain does not end");
    }
    let lost = (0..N as i64).filter(|o| !accepted.contains(o)).count();
    println!(
        "share kill -9: {N} records, {} accepted before the kills, lost {lost}, accepted twice {twice}, \
         redelivered after acceptance {}",
        before_kills,
        redelivered_after_accept.len()
    );
    assert_eq!((lost, twice), (0, 0));
    assert!(redelivered_after_accept.is_empty(), "accepted records came back: {redelivered_after_accept:?}");
    strom.child.kill().expect("kill");
    strom.child.wait().expect("wait");
}
