//! The `rskafka` column: the pure-Rust rskafka crate. It has a cluster-level client
//! (metadata, CreateTopics/DeleteTopics without configs) and per-partition clients
//! (Produce, Fetch, ListOffsets, DeleteRecords); no partitioner, no consumer groups, no
//! idempotent producer, no config APIs. Topic configs it cannot set come from rdkafka's
//! AdminClient (the README allows another admin client for setup).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rskafka::chrono::{DateTime, TimeZone, Utc};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use rskafka::BackoffConfig;

use crate::common::*;

const NO_GROUPS: &str = "rskafka 0.6.0 has no consumer groups (no FindCoordinator/JoinGroup/OffsetCommit API)";
/// The StreamConsumer's defaults (rskafka copies librdkafka's): fetch.max.bytes, fetch.wait.max.ms.
const FETCH_MAX_BYTES: i32 = 52_428_800;
const FETCH_MAX_WAIT_MS: i32 = 500;
/// Records per produce request are capped by size: the broker's default max.message.bytes
/// is 1,048,588 per batch and rskafka sends exactly one batch per produce() call.
const BATCH_BYTES: usize = 256 * 1024;

pub async fn client() -> Client {
    ClientBuilder::new(vec![bootstrap()])
        .client_id("compat-rskafka")
        // Retry transient errors (LeaderNotAvailable, UnknownTopicOrPartition with Retry)
        // for at most 30 s instead of forever.
        .backoff_config(BackoffConfig { deadline: Some(Duration::from_secs(30)), ..Default::default() })
        .build()
        .await
        .or_fail("building the rskafka client")
}

pub async fn partition(c: &Client, topic: &str, p: i32) -> Arc<PartitionClient> {
    Arc::new(
        c.partition_client(topic, p, UnknownTopicHandling::Retry)
            .await
            .or_fail(format!("partition client for {topic}/{p}")),
    )
}

pub async fn create_topic(c: &Client, topic: &str, partitions: i32) {
    c.controller_client()
        .or_fail("controller client")
        .create_topic(topic, partitions, 1, 30_000)
        .await
        .or_fail(format!("create_topic({topic}, {partitions})"));
    wait_partitions(c, topic, partitions).await;
}

/// Waits until the all-topics metadata lists `topic` with partitions 0..n and a partition
/// client finds a leader (among the brokers in the metadata) for each of them.
pub async fn wait_partitions(c: &Client, topic: &str, n: i32) {
    let dl = Deadline::new(30.0);
    let want: BTreeSet<i32> = (0..n).collect();
    let mut seen = String::from("nothing");
    while !dl.expired() {
        match c.list_topics().await {
            Err(e) => seen = format!("list_topics error {e}"),
            Ok(topics) => match topics.iter().find(|t| t.name == topic) {
                None => seen = "topic not listed".into(),
                Some(t) if t.partitions != want => seen = format!("partitions {:?}", t.partitions),
                Some(_) => {
                    for p in 0..n {
                        c.partition_client(topic, p, UnknownTopicHandling::Error)
                            .await
                            .or_fail(format!("leader of {topic}/{p}"));
                    }
                    return;
                }
            },
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    fail(format!("metadata for {topic}: expected partitions 0..{n}, last saw: {seen}"))
}

fn ts(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_else(|| fail(format!("bad timestamp {ms}")))
}

/// rskafka headers are a map: unique names, sorted, no null values.
fn to_record(o: &Out, now: i64) -> Record {
    Record {
        key: o.key.clone(),
        value: o.value.clone(),
        headers: o.headers.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect(),
        timestamp: ts(o.ts.unwrap_or(now)),
    }
}

/// Produces `recs` in order to one partition, one batch per produce() call (batches cut at
/// BATCH_BYTES or `max_records`); returns the offsets.
pub async fn produce(pc: &PartitionClient, recs: &[Out], codec: Compression, max_records: usize) -> Vec<i64> {
    let now = now_ms();
    let mut offsets = Vec::with_capacity(recs.len());
    let mut batch: Vec<Record> = Vec::new();
    let mut size = 0;
    for (i, o) in recs.iter().enumerate() {
        let r = to_record(o, now);
        size += r.approximate_size() + 32;
        batch.push(r);
        if size >= BATCH_BYTES || batch.len() >= max_records || i + 1 == recs.len() {
            let n = batch.len();
            let got = pc.produce(std::mem::take(&mut batch), codec).await.or_fail(format!(
                "produce of records {}..{} to {}/{}",
                i + 1 - n,
                i,
                pc.topic(),
                pc.partition()
            ));
            if got.len() != n {
                fail(format!("produce returned {} offsets for {n} records", got.len()));
            }
            offsets.extend(got);
            size = 0;
        }
    }
    offsets
}

fn to_got(r: rskafka::record::RecordAndOffset) -> Got {
    Got {
        offset: r.offset,
        key: r.record.key,
        value: r.record.value,
        ts: r.record.timestamp.timestamp_millis(),
        create_time: None,
        headers: r.record.headers.into_iter().map(|(k, v)| (k, Some(v))).collect(),
    }
}

/// Fetches from `start` until the high watermark is reached and at least `expected` records
/// arrived (or the timeout).
pub async fn fetch_all(pc: &PartitionClient, start: i64, expected: usize, timeout: f64) -> Vec<Got> {
    let dl = Deadline::new(timeout);
    let mut out = Vec::new();
    let mut offset = start;
    loop {
        let (recs, hwm) = pc.fetch_records(offset, 1..FETCH_MAX_BYTES, FETCH_MAX_WAIT_MS).await.or_fail(format!(
            "fetch_records({}/{}, offset {offset})",
            pc.topic(),
            pc.partition()
        ));
        for r in recs {
            if r.offset < offset {
                continue;
            }
            offset = r.offset + 1;
            out.push(to_got(r));
        }
        if out.len() >= expected && offset >= hwm {
            return out;
        }
        if dl.expired() {
            log(format!("fetch timed out with {}/{expected} records, next offset {offset}, HW {hwm}", out.len()));
            return out;
        }
    }
}

async fn watermarks(pc: &PartitionClient) -> (i64, i64) {
    let lo = pc.get_offset(OffsetAt::Earliest).await.or_fail("ListOffsets earliest");
    let hi = pc.get_offset(OffsetAt::Latest).await.or_fail("ListOffsets latest");
    (lo, hi)
}

fn kv_outs(data: &[(Vec<u8>, Vec<u8>)]) -> Vec<Out> {
    data.iter().map(|(k, v)| Out::kv(k.clone(), v.clone())).collect()
}

fn okv_rows(data: &[(Vec<u8>, Vec<u8>)]) -> Vec<Vec<F>> {
    data.iter()
        .enumerate()
        .map(|(i, (k, v))| vec![F::Int(i as i64), F::Bytes(Some(k.clone())), F::Bytes(Some(v.clone()))])
        .collect()
}

fn got_okv(got: &[Got]) -> Vec<Vec<F>> {
    got.iter().map(|m| vec![F::Int(m.offset), b(&m.key), b(&m.value)]).collect()
}

// ---------------------------------------------------------------------------

pub async fn run(scenario: &str) {
    match scenario {
        "produce-consume-auto" => produce_consume_auto().await,
        "produce-consume-explicit" => produce_consume_explicit().await,
        "headers-timestamps" => headers_timestamps().await,
        "large-messages" => large_messages().await,
        "compression" => compression().await,
        "seek-timestamp" => seek_timestamp().await,
        "idempotent" => unsupported(
            "rskafka 0.6.0 has no idempotent producer (no InitProducerId; batches carry producer id -1, no sequences)",
        ),
        "metadata" => metadata().await,
        "admin" => unsupported(
            "rskafka 0.6.0 cannot set topic configs on CreateTopics and has no DescribeConfigs (its admin API is create_topic/delete_topic only)",
        ),
        "admin-ops" => admin_ops().await,
        "group-rebalance" | "group-resume" | "group-assignors" | "group-admin" | "group-regex" => {
            unsupported(NO_GROUPS)
        }
        "cli-lag" => unsupported("cli-lag checks strom's own CLI; the confluent_kafka column drives it"),
        other => fail(format!("unknown scenario {other:?}")),
    }
}

async fn produce_consume_auto() {
    let topic = topic("");
    let data = auto_dataset(n_messages());
    let c = client().await;
    log(format!("producing {} messages to new topic {topic} (auto-created by the Metadata request)", data.len()));
    let pc = partition(&c, &topic, 0).await;
    let offsets = produce(&pc, &kv_outs(&data), Compression::NoCompression, usize::MAX).await;
    check_offsets("produce-reported offsets", &offsets, 0);
    wait_partitions(&c, &topic, 1).await;
    let got = fetch_all(&pc, 0, data.len(), 120.0).await;
    let want: Vec<Vec<F>> =
        data.iter().map(|(k, v)| vec![F::Bytes(Some(k.clone())), F::Bytes(Some(v.clone()))]).collect();
    let have: Vec<Vec<F>> = got.iter().map(|m| vec![b(&m.key), b(&m.value)]).collect();
    if let Some(d) = first_diff(&want, &have, "message", &["key", "value"]) {
        fail(d);
    }
    check_offsets("consumed offsets", &got.iter().map(|m| m.offset).collect::<Vec<_>>(), 0);
    let wm = watermarks(&pc).await;
    if wm != (0, data.len() as i64) {
        fail(format!("watermarks (ListOffsets earliest, latest): expected (0, {}), got {wm:?}", data.len()));
    }
    passed(format!("{} messages byte-identical, offsets contiguous, watermarks ok", data.len()))
}

async fn produce_consume_explicit() {
    const NPART: i32 = 4;
    let topic = topic("");
    let data = keyed_dataset(n_messages(), 1000);
    let c = client().await;
    log(format!("creating {topic} with {NPART} partitions"));
    create_topic(&c, &topic, NPART).await;
    // rskafka has no partitioner: keys are mapped with Kafka's default (murmur2), and each
    // partition's records are produced in order.
    let parts: Vec<i32> = data.iter().map(|(k, _)| murmur2_partition(k, NPART)).collect();
    let mut reports = vec![(0, 0); data.len()];
    let mut pcs = BTreeMap::new();
    for q in 0..NPART {
        let idx: Vec<usize> = (0..data.len()).filter(|&i| parts[i] == q).collect();
        let recs: Vec<Out> = idx.iter().map(|&i| Out::kv(data[i].0.clone(), data[i].1.clone())).collect();
        let pc = partition(&c, &topic, q).await;
        let offs = produce(&pc, &recs, Compression::NoCompression, usize::MAX).await;
        for (&i, o) in idx.iter().zip(offs) {
            reports[i] = (q, o);
        }
        pcs.insert(q, pc);
    }
    let expected = expected_by_partition(&data, &reports, NPART);
    let mut consumed = BTreeMap::new();
    let mut wm = BTreeMap::new();
    for (q, pc) in &pcs {
        consumed.insert(*q, fetch_all(pc, 0, expected[q].len(), 60.0).await);
        wm.insert(*q, watermarks(pc).await);
    }
    check_partitions(&expected, &consumed, &wm);
    wait_partitions(&c, &topic, NPART).await;
    let spread: Vec<String> = expected.values().map(|v| v.len().to_string()).collect();
    passed(format!(
        "{} messages over {NPART} partitions ({}; murmur2 by the scenario), exactly once, in order",
        data.len(),
        spread.join(", ")
    ))
}

async fn headers_timestamps() {
    let topic = topic("");
    let c = client().await;
    let recs = headers_dataset(false);
    // rskafka's Record.headers is a BTreeMap<String, Vec<u8>>: duplicate names collapse to
    // the last value and headers go out sorted by name. Expected = that map.
    let as_map = |h: &[Header]| -> Vec<Header> {
        let m: BTreeMap<String, Option<Vec<u8>>> = h.iter().cloned().collect();
        m.into_iter().collect()
    };
    log(format!("producing {} records with headers/timestamps to {topic} (partition 0, one batch)", recs.len()));
    let pc = partition(&c, &topic, 0).await;
    let offsets = produce(&pc, &recs, Compression::NoCompression, usize::MAX).await;
    check_offsets("produce-reported offsets", &offsets, 0);
    let got = fetch_all(&pc, 0, recs.len(), 60.0).await;
    let want: Vec<Vec<F>> = recs
        .iter()
        .map(|r| vec![b(&r.key), b(&r.value), F::Int(r.ts.unwrap_or(-1)), F::Headers(as_map(&r.headers))])
        .collect();
    let have: Vec<Vec<F>> =
        got.iter().map(|m| vec![b(&m.key), b(&m.value), F::Int(m.ts), F::Headers(m.headers.clone())]).collect();
    if let Some(d) =
        first_diff(&want, &have, "record (key, value, timestamp, headers)", &["key", "value", "timestamp", "headers"])
    {
        fail(d);
    }
    passed(format!(
        "{} records: headers (as rskafka's map: unique names, no null values) and timestamps identical",
        recs.len()
    ))
}

async fn large_messages() {
    let topic = topic("");
    log(format!("creating {topic} with max.message.bytes=4194304 (rdkafka AdminClient: rskafka cannot set configs)"));
    crate::rd::create_topic(&crate::rd::admin(), &topic, 1, &[("max.message.bytes", "4194304")]).await;
    let c = client().await;
    wait_partitions(&c, &topic, 1).await;
    let data = large_dataset();
    let pc = partition(&c, &topic, 0).await;
    // One record per produce request; rskafka has no request-size limit to raise.
    let offsets = produce(&pc, &kv_outs(&data), Compression::NoCompression, 1).await;
    check_offsets("produce-reported offsets", &offsets, 0);
    let got = fetch_all(&pc, 0, data.len(), 120.0).await;
    if let Some(d) =
        first_diff(&okv_rows(&data), &got_okv(&got), "record (offset, key, value)", &["offset", "key", "value"])
    {
        fail(d);
    }
    let wm = watermarks(&pc).await;
    if wm != (0, 8) {
        fail(format!("watermarks: expected (0, 8), got {wm:?}"));
    }
    passed("8 x 1 MiB records byte-identical at offsets 0..7 (one record per produce, fetch max 50 MiB)")
}

async fn compression() {
    let c = client().await;
    let data = compressible_dataset();
    let mut done = Vec::new();
    for (name, codec) in [
        ("none", Compression::NoCompression),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ] {
        let topic = topic(&format!("-{name}"));
        create_topic(&c, &topic, 1).await;
        let pc = partition(&c, &topic, 0).await;
        // 10 batches of 100 records.
        let offsets = produce(&pc, &kv_outs(&data), codec, 100).await;
        check_offsets(&format!("{name}: produce-reported offsets"), &offsets, 0);
        let got = fetch_all(&pc, 0, data.len(), 60.0).await;
        if let Some(d) = first_diff(
            &okv_rows(&data),
            &got_okv(&got),
            &format!("{name} record (offset, key, value)"),
            &["offset", "key", "value"],
        ) {
            fail(d);
        }
        log(format!("{name}: 1000 records round-tripped"));
        done.push(name);
    }
    passed(format!("1000 records each with codecs {}", done.join(", ")))
}

async fn seek_timestamp() {
    let topic = topic("");
    let c = client().await;
    create_topic(&c, &topic, 1).await;
    let t0 = seek_t0();
    let recs: Vec<Out> = (0..100)
        .map(|i| Out {
            key: Some(format!("ts-{i:03}").into_bytes()),
            value: Some(format!("value-{i:03}").into_bytes()),
            ts: Some(t0 + 1000 * i),
            ..Default::default()
        })
        .collect();
    let pc = partition(&c, &topic, 0).await;
    produce(&pc, &recs, Compression::NoCompression, 25).await;
    for (what, at) in [("T0+42000-500", t0 + 42_000 - 500), ("T0+42000", t0 + 42_000)] {
        let off = pc.get_offset(OffsetAt::Timestamp(ts(at))).await.or_fail(format!("get_offset(Timestamp {what})"));
        if off != 42 {
            fail(format!("get_offset(Timestamp {what}) gave {off}, expected 42"));
        }
    }
    let after = pc
        .get_offset(OffsetAt::Timestamp(ts(t0 + 1000 * 99 + 1)))
        .await
        .or_fail("get_offset(Timestamp after the last record)");
    if after != -1 && after != 100 {
        fail(format!("get_offset(Timestamp after the last record) gave {after}, expected -1 (none)"));
    }
    let got = fetch_all(&pc, 42, 58, 60.0).await;
    let want: Vec<Vec<F>> = (42..100).map(|i| vec![F::Int(i), F::Int(t0 + 1000 * i)]).collect();
    let have: Vec<Vec<F>> = got.iter().map(|m| vec![F::Int(m.offset), F::Int(m.ts)]).collect();
    if let Some(d) = first_diff(&want, &have, "record (offset, timestamp) after the seek", &["offset", "timestamp"]) {
        fail(d);
    }
    passed(format!("ListOffsets by timestamp T0+41.5s and T0+42s -> 42; fetched 42..99 with exact timestamps; after the end -> {after}"))
}

async fn metadata() {
    let topic = topic("-created");
    let auto_topic = topic_auto();
    let c = client().await;
    log(format!("creating {topic} with 3 partitions"));
    create_topic(&c, &topic, 3).await;
    let pc = partition(&c, &auto_topic, 0).await;
    let offs = produce(&pc, &[Out::kv(b"k".to_vec(), b"v".to_vec())], Compression::NoCompression, 1).await;
    if offs != [0] {
        fail(format!("first record of the auto-created topic at offset {offs:?}, expected [0]"));
    }
    wait_partitions(&c, &auto_topic, 1).await;
    let topics = c.list_topics().await.or_fail("list_topics");
    let find = |name: &str| topics.iter().find(|t| t.name == name).map(|t| t.partitions.clone());
    if find(&topic) != Some((0..3).collect()) {
        fail(format!("all-topics metadata: {topic} has partitions {:?}, expected 0..3", find(&topic)));
    }
    if find(&auto_topic) != Some(BTreeSet::from([0])) {
        fail(format!("all-topics metadata: auto-created {auto_topic} has partitions {:?}", find(&auto_topic)));
    }
    passed("created topic has 3 partitions, auto-created topic 1, every leader reachable (rskafka does not expose the broker list)")
}

fn topic_auto() -> String {
    topic("-auto")
}

async fn admin_ops() {
    let topic = topic("-ops");
    let c = client().await;
    create_topic(&c, &topic, 1).await;
    let pc = partition(&c, &topic, 0).await;
    let recs: Vec<Out> =
        (0..10).map(|i| Out { value: Some(format!("v{i}").into_bytes()), ..Default::default() }).collect();
    produce(&pc, &recs, Compression::NoCompression, usize::MAX).await;
    pc.delete_records(6, 30_000).await.or_fail("delete_records(6)");
    let wm = watermarks(&pc).await;
    if wm != (6, 10) {
        fail(format!("watermarks after delete_records: {wm:?}, expected (6, 10)"));
    }
    let got = fetch_all(&pc, 6, 4, 30.0).await;
    let have: Vec<Vec<F>> = got.iter().map(|m| vec![F::Int(m.offset), b(&m.value)]).collect();
    let want: Vec<Vec<F>> = (6..10).map(|i| vec![F::Int(i), F::Bytes(Some(format!("v{i}").into_bytes()))]).collect();
    if let Some(d) = first_diff(&want, &have, "record (offset, value)", &["offset", "value"]) {
        fail(d);
    }
    passed("delete_records: watermarks 6..10, offsets 6..9 still readable (rskafka 0.6.0 has no CreatePartitions or AlterConfigs)")
}
