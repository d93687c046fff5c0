//! Integration tests: a real broker in-process on a free port, driven by a real Kafka
//! client library (`rskafka`) and by raw sockets for what no client would send.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use strom::config::Config;
use strom_protocol::frame::RequestHeader;
use strom_protocol::{Message, Reader, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

struct Running {
    addr: String,
    node: Arc<strom::node::Node>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("broker task panicked").expect("broker failed");
        }
    }
}

async fn start(dir: &Path, extra: &[(&str, &str)]) -> Running {
    let mut overrides: BTreeMap<String, String> = BTreeMap::from([
        ("listeners".to_string(), "PLAINTEXT://127.0.0.1:0".to_string()),
        ("log.dirs".to_string(), dir.display().to_string()),
        ("strom.http.listener".to_string(), "127.0.0.1:0".to_string()),
        ("strom.schema.registry.listener".to_string(), String::new()),
    ]);
    overrides.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_sources(None, &BTreeMap::new(), &overrides).expect("config");
    let broker = strom::Broker::bind(config).await.expect("bind");
    let addr = broker.local_addr().expect("addr").to_string();
    let node = broker.node.clone();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    Running { addr, node, stop: Some(tx), task: Some(task) }
}

async fn client(addr: &str) -> Client {
    ClientBuilder::new(vec![addr.to_string()]).build().await.expect("client")
}

/// Where a keyed record goes: a stable hash of the key, as a keyed producer would do.
fn partition_for(key: &[u8], partitions: i32) -> i32 {
    let h = key.iter().fold(2166136261u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(16777619));
    (h % partitions as u32) as i32
}

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().expect("timestamp")
}

const BASE_TS: i64 = 1_700_000_000_000;

fn expected_records(n: usize, partitions: i32) -> HashMap<i32, Vec<Record>> {
    let mut by_partition: HashMap<i32, Vec<Record>> = HashMap::new();
    for i in 0..n {
        let key = format!("key-{i}").into_bytes();
        let record = Record {
            value: Some(format!("value-{i}-{}", "x".repeat(i % 50)).into_bytes()),
            headers: BTreeMap::from([
                ("seq".to_string(), (i as u64).to_be_bytes().to_vec()),
                ("source".to_string(), b"integration-test".to_vec()),
            ]),
            timestamp: ts(BASE_TS + i as i64),
            key: Some(key.clone()),
        };
        by_partition.entry(partition_for(&key, partitions)).or_default().push(record);
    }
    by_partition
}

async fn read_all(client: &Client, topic: &str, partition: i32) -> Vec<(i64, Record)> {
    let pc = client.partition_client(topic, partition, UnknownTopicHandling::Error).await.expect("partition client");
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let (records, hw) = pc.fetch_records(offset, 1..1_000_000, 100).await.expect("fetch");
        for r in records {
            offset = r.offset + 1;
            out.push((r.offset, r.record));
        }
        if offset >= hw {
            return out;
        }
    }
}

async fn verify(client: &Client, topic: &str, expected: &HashMap<i32, Vec<Record>>) {
    for (p, want) in expected {
        let got = read_all(client, topic, *p).await;
        assert_eq!(got.len(), want.len(), "partition {p}: record count");
        for (i, ((offset, rec), want)) in got.iter().zip(want).enumerate() {
            assert_eq!(*offset, i as i64, "partition {p}: offsets are contiguous from 0");
            assert_eq!(rec, want, "partition {p} offset {offset}: record differs");
        }
        let pc = client.partition_client(topic, *p, UnknownTopicHandling::Error).await.expect("partition client");
        assert_eq!(pc.get_offset(OffsetAt::Earliest).await.expect("earliest"), 0);
        assert_eq!(pc.get_offset(OffsetAt::Latest).await.expect("latest"), want.len() as i64);
        // By timestamp: an exact timestamp finds its record; one just after finds the next.
        let mid = want.len() / 2;
        let mid_ts = want[mid].timestamp;
        assert_eq!(pc.get_offset(OffsetAt::Timestamp(mid_ts)).await.expect("by ts"), mid as i64);
        let between = mid_ts + chrono::Duration::milliseconds(1);
        assert_eq!(pc.get_offset(OffsetAt::Timestamp(between)).await.expect("by ts"), mid as i64 + 1);
        assert_eq!(pc.get_offset(OffsetAt::Timestamp(ts(BASE_TS - 1))).await.expect("by ts"), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_keyed_records_round_trip_across_three_partitions_and_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = client(&broker.addr).await;
    c.controller_client().expect("controller").create_topic("orders", 3, 1, 5_000).await.expect("create topic");
    let expected = expected_records(10_000, 3);
    for (p, records) in &expected {
        let pc = c.partition_client("orders", *p, UnknownTopicHandling::Error).await.expect("partition client");
        let mut next = 0i64;
        for chunk in records.chunks(250) {
            let offsets = pc.produce(chunk.to_vec(), Compression::NoCompression).await.expect("produce");
            assert_eq!(offsets, (next..next + chunk.len() as i64).collect::<Vec<_>>());
            next += chunk.len() as i64;
        }
    }
    verify(&c, "orders", &expected).await;
    broker.stop().await;

    // Same data directory, new process state: everything is served again, identically.
    let broker = start(dir.path(), &[]).await;
    let c = client(&broker.addr).await;
    let topics = c.list_topics().await.expect("list topics");
    let orders = topics.iter().find(|t| t.name == "orders").expect("topic survives restart");
    assert_eq!(orders.partitions.len(), 3);
    verify(&c, "orders", &expected).await;
    // Appends continue after the restored end.
    let pc = c.partition_client("orders", 0, UnknownTopicHandling::Error).await.expect("partition client");
    let next = pc.produce(vec![expected[&0][0].clone()], Compression::NoCompression).await.expect("produce");
    assert_eq!(next, vec![expected[&0].len() as i64]);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_segments_roll_and_reads_cross_segment_boundaries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[("log.segment.bytes", "20000")]).await;
    let c = client(&broker.addr).await;
    c.controller_client().expect("controller").create_topic("rolled", 1, 1, 5_000).await.expect("create");
    let expected = expected_records(3_000, 1);
    let pc = c.partition_client("rolled", 0, UnknownTopicHandling::Error).await.expect("pc");
    for chunk in expected[&0].chunks(40) {
        pc.produce(chunk.to_vec(), Compression::NoCompression).await.expect("produce");
    }
    let segments = std::fs::read_dir(dir.path().join("rolled-0"))
        .expect("partition dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log")))
        .count();
    assert!(segments > 3, "expected several segments, found {segments}");
    verify(&c, "rolled", &expected).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_fetch_is_woken_by_an_append() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = Arc::new(client(&broker.addr).await);
    c.controller_client().expect("controller").create_topic("wake", 1, 1, 5_000).await.expect("create");
    let pc = Arc::new(c.partition_client("wake", 0, UnknownTopicHandling::Error).await.expect("pc"));
    // The broker caps waits at 30 s; a fetch that was never woken would come back empty.
    let waiting = {
        let pc = pc.clone();
        tokio::spawn(async move { pc.fetch_records(0, 1..1_000_000, 30_000).await })
    };
    let record = Record { key: None, value: Some(b"hello".to_vec()), headers: BTreeMap::new(), timestamp: ts(BASE_TS) };
    // Produce only once the fetch is parked at the broker, so it is the append that wakes it.
    // The producer is a second client: like Kafka, the broker handles one request per
    // connection at a time, so a produce pipelined behind the fetch would wait for it.
    broker.node.parked_fetches.subscribe().wait_for(|n| *n >= 1).await.expect("watch");
    let producer = client(&broker.addr).await;
    let ppc = producer.partition_client("wake", 0, UnknownTopicHandling::Error).await.expect("pc");
    ppc.produce(vec![record.clone()], Compression::NoCompression).await.expect("produce");
    let (records, hw) = waiting.await.expect("join").expect("fetch");
    assert_eq!(hw, 1);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].record, record);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_auto_creates_topics_with_the_default_partition_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[("num.partitions", "2")]).await;
    let c = client(&broker.addr).await;
    let pc = c.partition_client("auto-made", 1, UnknownTopicHandling::Retry).await.expect("pc");
    let offsets = pc
        .produce(
            vec![Record { key: None, value: Some(vec![1]), headers: BTreeMap::new(), timestamp: ts(BASE_TS) }],
            Compression::NoCompression,
        )
        .await
        .expect("produce");
    assert_eq!(offsets, vec![0]);
    let topics = c.list_topics().await.expect("topics");
    assert_eq!(topics.iter().find(|t| t.name == "auto-made").map(|t| t.partitions.len()), Some(2));
    broker.stop().await;
}

// ---------------------------------------------------------------- raw protocol

async fn send_raw(stream: &mut TcpStream, frame: &[u8]) {
    stream.write_all(frame).await.expect("write");
}

fn request<M: Message>(api_version: i16, correlation_id: i32, body: &M) -> Vec<u8> {
    let mut w = Writer::new();
    RequestHeader {
        api_key: M::API_KEY,
        api_version,
        correlation_id,
        client_id: Some("raw-test".into()),
        ..Default::default()
    }
    .encode(&mut w);
    body.encode(&mut w, api_version).expect("encode");
    let body = w.into_bytes();
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

async fn read_response(stream: &mut TcpStream) -> Option<bytes::Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.ok()?;
    let mut buf = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut buf).await.ok()?;
    Some(buf.into())
}

/// True when the broker closed the connection (EOF or reset) rather than answering.
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(tokio::time::timeout(Duration::from_secs(10), stream.read(&mut b)).await, Ok(Ok(0)) | Ok(Err(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_closes_only_the_offending_connection() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[("socket.request.max.bytes", "1048576")]).await;
    let good = client(&broker.addr).await;
    good.controller_client().expect("controller").create_topic("steady", 1, 1, 5_000).await.expect("create");
    let pc = good.partition_client("steady", 0, UnknownTopicHandling::Error).await.expect("pc");

    let mut absurd_count = Vec::new();
    // Metadata v1 with a topic array count of i32::MAX and nothing behind it.
    let header = request(1, 7, &strom_protocol::MetadataRequest::default());
    let body_start = header.len() - 4; // the default body is an empty array: count only
    absurd_count.extend_from_slice(&header[..body_start]);
    absurd_count.extend_from_slice(&i32::MAX.to_be_bytes());

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("oversized frame", vec![0x40, 0, 0, 0]),
        ("negative size", vec![0xff, 0xff, 0xff, 0xf0]),
        ("truncated header", vec![0, 0, 0, 3, 0, 3, 0]),
        ("unknown api key", {
            let mut f = vec![0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
            f[3] = 10;
            f
        }),
        (
            "produce v2 (removed in Kafka 4)",
            request(3, 1, &strom_protocol::ProduceRequest::default())
                .into_iter()
                .enumerate()
                .map(|(i, b)| if i == 7 { 2 } else { b })
                .collect(),
        ),
        ("absurd array count", {
            let mut f = absurd_count.clone();
            let len = (f.len() - 4) as i32;
            f[..4].copy_from_slice(&len.to_be_bytes());
            f
        }),
        ("garbage", (0..200u32).map(|i| (i * 37 % 251) as u8).collect()),
    ];
    for (name, frame) in cases {
        let mut s = TcpStream::connect(&broker.addr).await.expect("connect");
        send_raw(&mut s, &frame).await;
        assert!(is_closed(&mut s).await, "{name}: connection should be closed");
        // Everyone else carries on.
        let before = pc.get_offset(OffsetAt::Latest).await.expect("latest");
        let record = Record {
            key: None,
            value: Some(name.as_bytes().to_vec()),
            headers: BTreeMap::new(),
            timestamp: ts(BASE_TS),
        };
        assert_eq!(
            pc.produce(vec![record], Compression::NoCompression).await.expect("produce"),
            vec![before],
            "{name}"
        );
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_new_api_versions_request_gets_the_v0_fallback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let mut s = TcpStream::connect(&broker.addr).await.expect("connect");
    // v5 with a v2 header and a body we do not parse.
    let mut frame = request(
        4,
        42,
        &strom_protocol::ApiVersionsRequest {
            client_software_name: "x".into(),
            client_software_version: "1".into(),
            ..Default::default()
        },
    );
    frame[7] = 5;
    send_raw(&mut s, &frame).await;
    let resp = read_response(&mut s).await.expect("response");
    let mut r = Reader::new(resp);
    assert_eq!(r.i32().expect("correlation id"), 42);
    let body = strom_protocol::ApiVersionsResponse::decode(&mut r, 0).expect("v0 body");
    assert_eq!(body.error_code, 35);
    assert_eq!(body.api_keys.len(), 1);
    assert_eq!((body.api_keys[0].api_key, body.api_keys[0].max_version), (18, 4));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_produce_gets_no_response_and_the_next_response_is_in_order() {
    use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = client(&broker.addr).await;
    c.controller_client().expect("controller").create_topic("fire", 1, 1, 5_000).await.expect("create");
    let mut batch = strom_protocol::records::BatchBuilder::new(BASE_TS);
    batch.add(Some(b"k"), Some(b"v"));
    let produce = strom_protocol::ProduceRequest {
        acks: 0,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "fire".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch.build().freeze()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut s = TcpStream::connect(&broker.addr).await.expect("connect");
    send_raw(&mut s, &request(9, 1, &produce)).await;
    send_raw(&mut s, &request(3, 2, &strom_protocol::ApiVersionsRequest::default())).await;
    let resp = read_response(&mut s).await.expect("response");
    assert_eq!(Reader::new(resp).i32().expect("correlation"), 2, "the acks=0 produce must not be answered");
    let pc = c.partition_client("fire", 0, UnknownTopicHandling::Error).await.expect("pc");
    assert_eq!(pc.get_offset(OffsetAt::Latest).await.expect("latest"), 1, "the acks=0 batch was appended");
    broker.stop().await;
}

// ---------------------------------------------------------------- produce validation

use strom_protocol::produce_response::PartitionProduceResponse;
use strom_protocol::records::{self as rec, BatchBuilder, BatchHeader as Header};

/// Sends one produce request (non-flexible v3–8, so the response header is the
/// correlation id alone) for partition 0 of `topic` and decodes its answer.
async fn produce_raw(
    addr: &str,
    version: i16,
    topic: &str,
    acks: i16,
    records: bytes::Bytes,
) -> PartitionProduceResponse {
    use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
    assert!((3..=8).contains(&version));
    let req = strom_protocol::ProduceRequest {
        acks,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData { index: 0, records: Some(records), ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let mut s = TcpStream::connect(addr).await.expect("connect");
    send_raw(&mut s, &request(version, 11, &req)).await;
    let mut r = Reader::new(read_response(&mut s).await.expect("response"));
    assert_eq!(r.i32().expect("correlation"), 11);
    let resp = strom_protocol::ProduceResponse::decode(&mut r, version).expect("produce response");
    resp.responses.into_iter().next().expect("topic").partition_responses.into_iter().next().expect("partition")
}

fn one_record_batch(ts: i64) -> BatchBuilder {
    let mut b = BatchBuilder::new(ts);
    b.add(Some(b"key"), Some(b"value"));
    b
}

/// Rewrites an i32 field at `at` and fixes the CRC, so only the intended rule fails.
fn with_i32(mut batch: bytes::BytesMut, at: usize, v: i32) -> bytes::Bytes {
    batch[at..at + 4].copy_from_slice(&v.to_be_bytes());
    rec::update_crc(&mut batch).expect("crc");
    batch.freeze()
}

fn now() -> i64 {
    strom_storage::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_produce_validation_rule_has_its_kafka_error_and_appends_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = client(&broker.addr).await;
    c.controller_client().expect("controller").create_topic("rules", 1, 1, 5_000).await.expect("create");
    let good = produce_raw(&broker.addr, 8, "rules", -1, one_record_batch(now()).build().freeze()).await;
    assert_eq!((good.error_code, good.base_offset), (0, 0));

    let valid = || one_record_batch(now()).build();
    let mut bad_crc = valid();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 1;
    let mut magic1 = valid();
    magic1[rec::MAGIC_OFFSET] = 1;
    let truncated = valid().freeze().slice(..40);
    let mut bad_codec = valid();
    bad_codec[rec::ATTRIBUTES_OFFSET + 1] |= 6;
    rec::update_crc(&mut bad_codec).expect("crc");
    let mut garbage_gzip = valid();
    garbage_gzip[rec::ATTRIBUTES_OFFSET + 1] |= 1;
    rec::update_crc(&mut garbage_gzip).expect("crc");
    let mut trailing = valid();
    trailing.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    let len = (trailing.len() - 12) as i32;
    let trailing = with_i32(trailing, rec::BATCH_LENGTH_OFFSET, len);
    let mut repeated_delta = BatchBuilder::new(now());
    for _ in 0..2 {
        repeated_delta.push(&rec::Record {
            offset_delta: 0,
            timestamp_delta: 0,
            key: None,
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: vec![],
        });
    }
    let repeated_delta = with_i32(repeated_delta.build(), rec::LAST_OFFSET_DELTA_OFFSET, 1);
    let mut future = BatchBuilder::new(now() + 2 * 3_600_000);
    future.add(None, Some(b"late")).add(None, Some(b"later"));
    let zstd = one_record_batch(now()).compression(rec::Compression::Zstd).build().freeze();
    let bomb = {
        // One record holding 80 MiB of zeros: ~300 KiB as LZ4, beyond the 64 MiB bound.
        let mut payload = Vec::with_capacity(80 << 20);
        let value_len = 80i32 << 20;
        let mut body = vec![0u8];
        rec::encode_varlong(0, &mut body);
        rec::encode_varint(0, &mut body);
        rec::encode_varint(-1, &mut body);
        rec::encode_varint(value_len, &mut body);
        let body_len = body.len() as i32 + value_len + 1;
        rec::encode_varint(body_len, &mut payload);
        payload.extend_from_slice(&body);
        payload.resize(payload.len() + (80 << 20), 0);
        rec::encode_varint(0, &mut payload);
        let h = Header::parse(&valid()).expect("header");
        rec::rebuild_batch(&h, &payload, rec::Compression::Lz4).expect("bomb").freeze()
    };

    // (name, produce version, acks, records, expected error, expected record-error indexes)
    type Case = (&'static str, i16, i16, bytes::Bytes, i16, Option<Vec<i32>>);
    let cases: Vec<Case> = vec![
        ("two batches", 8, -1, [valid(), valid()].concat().into(), 87, None),
        ("magic 1", 8, -1, magic1.freeze(), 87, None),
        ("truncated batch", 8, -1, truncated, 2, None),
        ("bad crc", 8, -1, bad_crc.freeze(), 2, None),
        ("unknown codec", 8, -1, bad_codec.freeze(), 2, None),
        ("gzip flag on plain records", 8, -1, garbage_gzip.freeze(), 2, None),
        ("count != lastOffsetDelta + 1", 8, -1, with_i32(valid(), rec::RECORDS_COUNT_OFFSET, 2), 87, None),
        ("zero records", 8, -1, with_i32(valid(), rec::RECORDS_COUNT_OFFSET, 0), 87, None),
        ("bytes after the last record", 8, -1, trailing, 87, None),
        ("offset deltas not 0,1,2…", 8, -1, repeated_delta, 87, Some(vec![1])),
        ("control batch", 8, -1, one_record_batch(now()).control(true).build().freeze(), 87, None),
        (
            "negative sequence with a producer id",
            8,
            -1,
            one_record_batch(now()).producer(3, 0, -5).build().freeze(),
            87,
            None,
        ),
        ("timestamps 2 h ahead", 8, -1, future.build().freeze(), 32, Some(vec![0, 1])),
        ("acks 2", 8, 2, valid().freeze(), 21, None),
        ("zstd before produce v7", 3, -1, zstd.clone(), 76, None),
        ("compression bomb", 8, -1, bomb, 2, None),
    ];
    for (name, version, acks, records, want, record_errors) in cases {
        let r = produce_raw(&broker.addr, version, "rules", acks, records).await;
        assert_eq!(r.error_code, want, "{name}: {:?}", r.error_message);
        assert_eq!(r.base_offset, -1, "{name}");
        if let Some(indexes) = record_errors {
            let got: Vec<i32> = r.record_errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(got, indexes, "{name}: record errors");
        }
        assert_eq!(broker.node.meta.partition("rules", 0).expect("partition").high_watermark(), 1, "{name}: appended");
    }
    // zstd itself is fine from v7.
    let ok = produce_raw(&broker.addr, 7, "rules", -1, zstd).await;
    assert_eq!((ok.error_code, ok.base_offset), (0, 1));
    // Fetch < v10 is refused for a topic whose compression.type is zstd (Kafka's rule);
    // on a `producer` topic the stored batches are served as they are.
    let configs = [("compression.type".to_string(), "zstd".to_string())].into_iter().collect();
    broker.node.meta.create_topic("zstd-topic", 1, configs, false).expect("create");
    let ok = produce_raw(&broker.addr, 7, "zstd-topic", -1, one_record_batch(now()).build().freeze()).await;
    assert_eq!(ok.error_code, 0);
    for (topic, version, want) in [("zstd-topic", 9, 76), ("zstd-topic", 10, 0), ("rules", 9, 0), ("rules", 10, 0)] {
        let fetch = strom_protocol::FetchRequest {
            max_wait_ms: 0,
            max_bytes: 1 << 20,
            topics: vec![strom_protocol::fetch_request::FetchTopic {
                topic: topic.into(),
                partitions: vec![strom_protocol::fetch_request::FetchPartition {
                    partition: 0,
                    fetch_offset: if topic == "rules" { 1 } else { 0 },
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut s = TcpStream::connect(&broker.addr).await.expect("connect");
        send_raw(&mut s, &request(version, 1, &fetch)).await;
        let mut r = Reader::new(read_response(&mut s).await.expect("response"));
        r.i32().expect("correlation");
        let resp = strom_protocol::FetchResponse::decode(&mut r, version).expect("fetch response");
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, want, "fetch v{version} of {topic}");
        assert_eq!(
            p.records.as_ref().is_some_and(|r| !r.is_empty()),
            want == 0,
            "fetch v{version} of {topic}: records"
        );
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_message_bytes_log_append_time_and_topic_codec_are_honoured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let configs = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    broker.node.meta.create_topic("small", 1, configs(&[("max.message.bytes", "100")]), false).expect("create");
    broker
        .node
        .meta
        .create_topic(
            "stamped",
            1,
            configs(&[("message.timestamp.type", "LogAppendTime"), ("compression.type", "gzip")]),
            false,
        )
        .expect("create");
    let big = one_record_batch(now()).build().freeze();
    let mut bigger = BatchBuilder::new(now());
    bigger.add(None, Some(&[7u8; 200]));
    let r = produce_raw(&broker.addr, 8, "small", -1, bigger.build().freeze()).await;
    assert_eq!(r.error_code, 10, "MESSAGE_TOO_LARGE");
    assert_eq!(produce_raw(&broker.addr, 8, "small", -1, big.clone()).await.error_code, 0);

    let old = 1_600_000_000_000;
    let before = now();
    let r = produce_raw(&broker.addr, 8, "stamped", -1, one_record_batch(old).build().freeze()).await;
    assert_eq!(r.error_code, 0);
    assert!(r.log_append_time_ms >= before, "log append time is returned");
    let stored = broker.node.meta.partition("stamped", 0).expect("p").read(0, 1 << 20).expect("read");
    let h = Header::parse(&stored).expect("header");
    assert_eq!(h.timestamp_type(), rec::TimestampType::LogAppendTime);
    assert_eq!(h.max_timestamp, r.log_append_time_ms);
    assert_eq!(h.compression(), Ok(rec::Compression::Gzip), "recompressed to the topic codec");
    rec::verify_crc(&stored).expect("crc recomputed");
    let records = rec::decode_records_bounded(&stored.slice(..h.total_len()), 1 << 20).expect("decode");
    assert_eq!(records[0].value.as_deref(), Some(&b"value"[..]));
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_sequences_are_checked_per_partition() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = client(&broker.addr).await;
    c.controller_client().expect("controller").create_topic("idem", 1, 1, 5_000).await.expect("create");
    let batch = |pid: i64, epoch: i16, seq: i32, n: usize| {
        let mut b = BatchBuilder::new(now()).producer(pid, epoch, seq);
        for i in 0..n {
            b.add(None, Some(format!("{seq}-{i}").as_bytes()));
        }
        b.build().freeze()
    };
    let p = |r: PartitionProduceResponse| (r.error_code, r.base_offset);
    let a = &broker.addr;
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 0, 0, 3)).await), (0, 0));
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 0, 3, 2)).await), (0, 3));
    // A retry of either batch: success with the original offsets, nothing appended.
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 0, 0, 3)).await), (0, 0));
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 0, 3, 2)).await), (0, 3));
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 0, 9, 1)).await), (45, -1), "gap");
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(2, 0, 4, 1)).await), (59, -1), "unknown producer");
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 1, 5, 1)).await), (45, -1), "new epoch not at 0");
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 1, 0, 1)).await), (0, 5), "new epoch at 0");
    assert_eq!(p(produce_raw(a, 8, "idem", -1, batch(1, 0, 5, 1)).await), (47, -1), "stale epoch");
    assert_eq!(broker.node.meta.partition("idem", 0).expect("p").high_watermark(), 6);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_producer_id_bumps_epochs_and_fences_by_version() {
    use strom_protocol::{InitProducerIdRequest, InitProducerIdResponse};
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let init = |version: i16, producer_id: i64, producer_epoch: i16| {
        let addr = broker.addr.clone();
        async move {
            let req = InitProducerIdRequest {
                transaction_timeout_ms: 60_000,
                producer_id,
                producer_epoch,
                ..Default::default()
            };
            let mut s = TcpStream::connect(&addr).await.expect("connect");
            send_raw(&mut s, &request(version, 5, &req)).await;
            let mut r = Reader::new(read_response(&mut s).await.expect("response"));
            assert_eq!(r.i32().expect("correlation"), 5);
            if version >= 2 {
                assert_eq!(r.uvarint().expect("tagged fields"), 0);
            }
            let resp = InitProducerIdResponse::decode(&mut r, version).expect("decode");
            (resp.error_code, resp.producer_id, resp.producer_epoch)
        }
    };
    let (e, pid, epoch) = init(4, -1, -1).await;
    assert_eq!((e, epoch), (0, 0));
    assert_eq!(init(4, pid, 0).await, (0, pid, 1), "bump");
    assert_eq!(init(4, pid, 0).await, (0, pid, 1), "a retried bump gets the same epoch");
    assert_eq!(init(4, pid, 1).await, (0, pid, 2));
    assert_eq!(init(4, pid, 0).await.0, 90, "PRODUCER_FENCED from v4");
    assert_eq!(init(3, pid, 0).await.0, 47, "INVALID_PRODUCER_EPOCH before v4");
    let (_, other, _) = init(1, -1, -1).await;
    assert_ne!(other, pid);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_segments_and_consumers_start_after_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let configs = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let small = [("retention.ms", "60000"), ("segment.bytes", "2048")];
    broker.node.meta.create_topic("aging", 1, configs(&small), false).expect("create");
    let mut compacted = small.to_vec();
    compacted.push(("cleanup.policy", "compact"));
    broker.node.meta.create_topic("kept", 1, configs(&compacted), false).expect("create");
    let c = client(&broker.addr).await;
    let hour_ago = Utc::now().timestamp_millis() - 3_600_000;
    for topic in ["aging", "kept"] {
        let pc = c.partition_client(topic, 0, UnknownTopicHandling::Error).await.expect("pc");
        for i in 0..40 {
            // 30 old records, then 10 fresh ones.
            let t = if i < 30 { hour_ago + i } else { Utc::now().timestamp_millis() };
            // Distinct keys: a compacted topic refuses keyless records and keeps one per key.
            let key = Some(format!("k{i}").into_bytes());
            let r = Record { key, value: Some(vec![i as u8; 200]), headers: BTreeMap::new(), timestamp: ts(t) };
            pc.produce(vec![r], Compression::NoCompression).await.expect("produce");
        }
    }
    broker.node.meta.apply_retention(Utc::now().timestamp_millis());
    let pc = c.partition_client("aging", 0, UnknownTopicHandling::Error).await.expect("pc");
    let earliest = pc.get_offset(OffsetAt::Earliest).await.expect("earliest");
    assert!(earliest > 0 && earliest <= 30, "old segments deleted, fresh records kept: earliest {earliest}");
    let (records, hw) = pc.fetch_records(earliest, 1..1_000_000, 100).await.expect("fetch");
    assert_eq!(hw, 40);
    assert_eq!(records.first().map(|r| r.offset), Some(earliest));
    let kept = c.partition_client("kept", 0, UnknownTopicHandling::Error).await.expect("pc");
    assert_eq!(kept.get_offset(OffsetAt::Earliest).await.expect("earliest"), 0, "compact-only topics are not deleted");
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_flush_messages_1_every_acknowledged_record_is_fsynced_first_and_producers_share_fsyncs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[("log.flush.interval.messages", "1")]).await;
    broker.node.meta.create_topic("durable", 1, BTreeMap::new(), false).expect("create");
    let p = broker.node.meta.partition("durable", 0).expect("partition");
    let producers = 8;
    let per_producer = 25;
    let mut tasks = Vec::new();
    for n in 0..producers {
        let addr = broker.addr.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            let c = client(&addr).await;
            let pc = c.partition_client("durable", 0, UnknownTopicHandling::Error).await.expect("pc");
            for i in 0..per_producer {
                let r = Record {
                    key: None,
                    value: Some(vec![n as u8, i as u8]),
                    headers: BTreeMap::new(),
                    timestamp: ts(BASE_TS),
                };
                let offsets = pc.produce(vec![r], Compression::NoCompression).await.expect("produce");
                // The acknowledgement came after the fsync that covers it.
                assert!(p.durable_offset() > offsets[0], "offset {} acknowledged before it was durable", offsets[0]);
            }
        }));
    }
    for t in tasks {
        t.await.expect("producer");
    }
    let requests = producers * per_producer;
    assert_eq!(p.high_watermark(), requests as i64);
    println!("group commit: {requests} acknowledged produce requests, {} fsyncs", p.fsync_count());
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_of_100k_updates_over_1000_keys_leaves_the_latest_value_per_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let configs: BTreeMap<String, String> = [("cleanup.policy", "compact"), ("segment.bytes", "262144")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    broker.node.meta.create_topic("latest", 1, configs, false).expect("create");
    let c = client(&broker.addr).await;
    let pc = c.partition_client("latest", 0, UnknownTopicHandling::Error).await.expect("pc");
    let mut want: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for chunk in (0..100_000u32).collect::<Vec<_>>().chunks(1000) {
        let records: Vec<Record> = chunk
            .iter()
            .map(|i| {
                let key = format!("key-{}", i % 1000).into_bytes();
                let value = format!("update-{i}").into_bytes();
                want.insert(key.clone(), value.clone());
                Record {
                    key: Some(key),
                    value: Some(value),
                    headers: BTreeMap::new(),
                    timestamp: ts(BASE_TS + i64::from(*i)),
                }
            })
            .collect();
        pc.produce(records, Compression::NoCompression).await.expect("produce");
    }
    let (before, after) = broker.node.meta.compact(Utc::now().timestamp_millis(), true);
    println!("compaction: {before} records in sealed segments, {after} kept");
    assert!(after < before / 10, "{before} → {after}");
    let got = read_all(&c, "latest", 0).await;
    let offsets: Vec<i64> = got.iter().map(|(o, _)| *o).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "offsets strictly increase");
    assert_eq!(pc.get_offset(OffsetAt::Latest).await.expect("latest"), 100_000, "nothing renumbered");
    let mut last: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    for (_, r) in &got {
        last.insert(r.key.clone().expect("key"), r.value.clone().expect("value"));
    }
    assert_eq!(last, want, "the latest value of every key survives");
    assert!(got.len() < 20_000, "{} records left", got.len());
    broker.stop().await;
}
