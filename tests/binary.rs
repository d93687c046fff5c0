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

/// Starts the binary on a free port and waits for its "serving" log line.
fn spawn(dir: &Path) -> Strom {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["serve", "--listeners", "PLAINTEXT://127.0.0.1:0", "--log-dirs"])
        .arg(dir)
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
