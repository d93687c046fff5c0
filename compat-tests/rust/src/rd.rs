//! The `rdkafka` column: the rdkafka crate (librdkafka binding), dynamically linked
//! against the system librdkafka. Consumers outside the group scenarios use assign()
//! only, with a dummy group.id (librdkafka requires one) that never commits.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigResource, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::{ClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as RdHeader, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

use crate::common::*;

pub type Owners = Arc<Mutex<BTreeMap<String, BTreeSet<(String, i32)>>>>;

/// Follows a group member's assignment from its rebalance callbacks.
#[derive(Clone)]
pub struct Tracker {
    name: String,
    owners: Owners,
    /// Incremental (cooperative) protocol: an assignment adds to what the member owns.
    incremental: bool,
    /// Fail when a partition is assigned while another member still owns it.
    check_overlap: Option<String>,
    first_assign: Arc<Mutex<Option<Instant>>>,
}

impl Tracker {
    fn new(name: &str, owners: &Owners) -> Tracker {
        owners.lock().unwrap().insert(name.to_string(), BTreeSet::new());
        Tracker {
            name: name.to_string(),
            owners: owners.clone(),
            incremental: true,
            check_overlap: None,
            first_assign: Arc::new(Mutex::new(None)),
        }
    }
}

/// One context for every client: librdkafka warnings and errors go to stderr (like
/// confluent-kafka's default logger); consumers may track their assignment.
#[derive(Clone, Default)]
pub struct Ctx {
    tracker: Option<Tracker>,
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            eprintln!("librdkafka {level:?} {fac}: {log_message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        eprintln!("librdkafka error: {error}: {reason}");
    }
}

fn tpl_set(tpl: &TopicPartitionList) -> BTreeSet<(String, i32)> {
    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect()
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, rebalance: &Rebalance<'_>) {
        let Some(t) = &self.tracker else { return };
        let mut owners = t.owners.lock().unwrap();
        match rebalance {
            Rebalance::Assign(tpl) => {
                let got = tpl_set(tpl);
                if let Some(label) = &t.check_overlap {
                    for (other, owned) in owners.iter() {
                        if other != &t.name && !owned.is_disjoint(&got) {
                            fail(format!(
                                "{label}: {} assigned {:?} while {other} still owns {:?}",
                                t.name, got, owned
                            ));
                        }
                    }
                }
                let entry = owners.entry(t.name.clone()).or_default();
                if t.incremental {
                    entry.extend(got);
                } else {
                    *entry = got;
                }
                t.first_assign.lock().unwrap().get_or_insert_with(Instant::now);
            }
            Rebalance::Revoke(tpl) => {
                let gone = tpl_set(tpl);
                if let Some(owned) = owners.get_mut(&t.name) {
                    owned.retain(|tp| !gone.contains(tp));
                }
            }
            Rebalance::Error(e) => eprintln!("{}: rebalance error: {e}", t.name),
        }
    }
}

fn config(extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap());
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

fn create<T: FromClientConfigAndContext<Ctx>>(what: &str, extra: &[(&str, &str)], ctx: Ctx) -> T {
    config(extra).create_with_context(ctx).or_fail(format!("creating {what}"))
}

pub fn producer(extra: &[(&str, &str)]) -> FutureProducer<Ctx> {
    let mut cfg = vec![("linger.ms", "5")];
    cfg.extend_from_slice(extra);
    create("producer", &cfg, Ctx::default())
}

pub fn admin() -> AdminClient<Ctx> {
    create("admin client", &[], Ctx::default())
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))).request_timeout(Some(Duration::from_secs(30)))
}

/// A consumer that only assign()s: dummy group.id (required by librdkafka), never commits.
pub fn plain_consumer() -> BaseConsumer<Ctx> {
    plain_consumer_as(&[])
}

/// [`plain_consumer`] with more settings (a secured listener's).
fn plain_consumer_as(extra: &[(&str, &str)]) -> BaseConsumer<Ctx> {
    let mut cfg = vec![
        ("group.id", "strom-compat-unused"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "true"),
        ("auto.offset.reset", "earliest"),
    ];
    cfg.extend_from_slice(extra);
    create("consumer", &cfg, Ctx::default())
}

/// Produces every record, returns the delivery reports (partition, offset) in produce
/// order; fails the scenario on any delivery error.
pub async fn produce_all(p: &FutureProducer<Ctx>, topic: &str, recs: &[Out]) -> Vec<(i32, i64)> {
    let dl = Deadline::new(120.0);
    let mut futures = Vec::with_capacity(recs.len());
    for (i, r) in recs.iter().enumerate() {
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
        if let Some(k) = &r.key {
            fr = fr.key(k.as_slice());
        }
        if let Some(v) = &r.value {
            fr = fr.payload(v.as_slice());
        }
        if let Some(ts) = r.ts {
            fr = fr.timestamp(ts);
        }
        if let Some(part) = r.partition {
            fr = fr.partition(part);
        }
        if !r.headers.is_empty() {
            let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                h = h.insert(RdHeader { key: k, value: v.as_deref() });
            }
            fr = fr.headers(h);
        }
        loop {
            match p.send_result(fr) {
                Ok(f) => {
                    futures.push(f);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if dl.expired() {
                        fail(format!("producer queue stayed full; timed out at message {i}"));
                    }
                    fr = back;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err((e, _)) => fail(format!("produce() of message {i} refused: {e}")),
            }
        }
    }
    let mut reports = Vec::with_capacity(recs.len());
    for (i, f) in futures.into_iter().enumerate() {
        match tokio::time::timeout(dl.left().max(Duration::from_secs(1)), f).await {
            Ok(Ok(Ok((part, off)))) => reports.push((part, off)),
            Ok(Ok(Err((e, _)))) => fail(format!("delivery failed; first: index {i}: {e}")),
            Ok(Err(_)) => fail(format!("delivery report of message {i} cancelled")),
            Err(_) => fail(format!("no delivery report for message {i} before the timeout")),
        }
    }
    reports
}

pub fn to_got(m: &impl Message<Headers = rdkafka::message::BorrowedHeaders>) -> Got {
    let (ts, create_time) = match m.timestamp() {
        Timestamp::CreateTime(t) => (t, Some(true)),
        Timestamp::LogAppendTime(t) => (t, Some(false)),
        Timestamp::NotAvailable => (-1, Some(false)),
    };
    Got {
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        ts,
        create_time,
        headers: m
            .headers()
            .map(|h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default(),
    }
}

/// Reads `partitions` of `topic` from `start` (assign, no group) until `expected_total`
/// records arrived and every partition reported EOF, or the timeout; then the
/// (beginning, end) watermarks.
pub fn consume_all(
    topic: &str,
    partitions: &[i32],
    start: Offset,
    expected_total: usize,
    timeout: f64,
) -> (ByPartition, Watermarks) {
    consume_all_as(topic, partitions, start, expected_total, timeout, &[])
}

/// [`consume_all`] with more consumer settings (a secured listener's).
fn consume_all_as(
    topic: &str,
    partitions: &[i32],
    start: Offset,
    expected_total: usize,
    timeout: f64,
    extra: &[(&str, &str)],
) -> (ByPartition, Watermarks) {
    let c = plain_consumer_as(extra);
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        tpl.add_partition_offset(topic, p, start).or_fail("building the assignment");
    }
    c.assign(&tpl).or_fail("assign");
    let mut got: BTreeMap<i32, Vec<Got>> = partitions.iter().map(|&p| (p, Vec::new())).collect();
    let mut eof = BTreeSet::new();
    let mut total = 0;
    let dl = Deadline::new(timeout);
    let mut last_err = String::new();
    loop {
        if total >= expected_total && partitions.iter().all(|p| eof.contains(p)) {
            break;
        }
        if dl.expired() {
            log(format!("consume timed out after {timeout}s with {total}/{expected_total} messages, EOF on {eof:?}"));
            break;
        }
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) if e.to_string() != last_err => {
                log(format!("consumer error (non-fatal, continuing): {e}"));
                last_err = e.to_string();
            }
            Some(Err(_)) => {}
            Some(Ok(m)) => {
                eof.remove(&m.partition());
                got.entry(m.partition()).or_default().push(to_got(&m));
                total += 1;
            }
        }
    }
    let mut wm = BTreeMap::new();
    for &p in partitions {
        let w =
            c.fetch_watermarks(topic, p, Duration::from_secs(10)).or_fail(format!("fetch_watermarks({topic}, {p})"));
        wm.insert(p, w);
    }
    (got, wm)
}

pub async fn create_topic(a: &AdminClient<Ctx>, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut nt = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        nt = nt.set(k, v);
    }
    let res = a.create_topics(&[nt], &opts()).await.or_fail("create_topics");
    if let Some(Err((name, code))) = res.first() {
        fail(format!("create_topics({name}, {partitions} partitions) failed: {code:?}"));
    }
    wait_partitions(a.inner(), topic, partitions);
}

/// Waits until metadata shows `topic` with exactly n partitions, each led by a listed broker.
pub fn wait_partitions<C: ClientContext>(client: &Client<C>, topic: &str, n: i32) {
    let dl = Deadline::new(30.0);
    let mut seen = String::from("nothing");
    while !dl.expired() {
        match client.fetch_metadata(Some(topic), Duration::from_secs(5)) {
            Err(e) => seen = format!("fetch_metadata error {e}"),
            Ok(md) => {
                let brokers: BTreeSet<i32> = md.brokers().iter().map(|b| b.id()).collect();
                match md.topics().iter().find(|t| t.name() == topic) {
                    None => seen = "topic not in metadata".into(),
                    Some(t) if t.error().is_some() => seen = format!("topic error {:?}", t.error()),
                    Some(t) if t.partitions().len() != n as usize => {
                        seen = format!("{} partitions", t.partitions().len())
                    }
                    Some(t) => {
                        let bad: Vec<String> = t
                            .partitions()
                            .iter()
                            .filter(|p| p.error().is_some() || !brokers.contains(&p.leader()))
                            .map(|p| format!("{}: leader {} error {:?}", p.id(), p.leader(), p.error()))
                            .collect();
                        if bad.is_empty() {
                            return;
                        }
                        seen = format!("partitions without a listed leader ({brokers:?}): {bad:?}");
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    fail(format!("metadata for {topic}: expected {n} partitions with leaders, last saw: {seen}"))
}

fn kv_outs(data: &[(Vec<u8>, Vec<u8>)]) -> Vec<Out> {
    data.iter().map(|(k, v)| Out::kv(k.clone(), v.clone())).collect()
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
        "idempotent" => idempotent().await,
        "transactions" => transactions().await,
        "security-sasl-ssl" => security_sasl_ssl().await,
        "metadata" => metadata().await,
        "admin" => admin_scenario().await,
        "admin-ops" => admin_ops().await,
        "group-rebalance" => group_rebalance().await,
        "group-resume" => group_resume().await,
        "group-assignors" => group_assignors().await,
        "group-admin" => group_admin().await,
        "group-regex" => group_regex().await,
        "cli-lag" => unsupported("cli-lag checks strom's own CLI; the confluent_kafka column drives it"),
        other => fail(format!("unknown scenario {other:?}")),
    }
}

async fn produce_consume_auto() {
    let topic = topic("");
    let data = auto_dataset(n_messages());
    log(format!("producing {} messages to new topic {topic} (auto-create)", data.len()));
    let p = producer(&[]);
    let reports = produce_all(&p, &topic, &kv_outs(&data)).await;
    let parts: BTreeSet<i32> = reports.iter().map(|r| r.0).collect();
    if parts != BTreeSet::from([0]) {
        fail(format!(
            "expected every message on partition 0 of the auto-created topic, delivery reports say {parts:?}"
        ));
    }
    check_offsets("delivery-report offsets", &reports.iter().map(|r| r.1).collect::<Vec<_>>(), 0);
    wait_partitions(p.client(), &topic, 1);
    let (got, wm) = consume_all(&topic, &[0], Offset::Beginning, data.len(), 120.0);
    let msgs = &got[&0];
    let want: Vec<Vec<F>> =
        data.iter().map(|(k, v)| vec![F::Bytes(Some(k.clone())), F::Bytes(Some(v.clone()))]).collect();
    let have: Vec<Vec<F>> = msgs.iter().map(|m| vec![b(&m.key), b(&m.value)]).collect();
    if let Some(d) = first_diff(&want, &have, "message", &["key", "value"]) {
        fail(d);
    }
    check_offsets("consumed offsets", &msgs.iter().map(|m| m.offset).collect::<Vec<_>>(), 0);
    if wm.get(&0) != Some(&(0, data.len() as i64)) {
        fail(format!(
            "watermarks (ListOffsets earliest, latest) of partition 0: expected (0, {}), got {:?}",
            data.len(),
            wm.get(&0)
        ));
    }
    passed(format!("{} messages byte-identical, offsets contiguous, watermarks ok", data.len()))
}

async fn produce_consume_explicit() {
    const NPART: i32 = 4;
    let topic = topic("");
    let data = keyed_dataset(n_messages(), 1000);
    log(format!("creating {topic} with {NPART} partitions"));
    let a = admin();
    create_topic(&a, &topic, NPART, &[]).await;
    let p = producer(&[]);
    log(format!("producing {} keyed messages", data.len()));
    let reports = produce_all(&p, &topic, &kv_outs(&data)).await;
    let expected = expected_by_partition(&data, &reports, NPART);
    let parts: Vec<i32> = (0..NPART).collect();
    let (got, wm) = consume_all(&topic, &parts, Offset::Beginning, data.len(), 120.0);
    check_partitions(&expected, &got, &wm);
    wait_partitions(p.client(), &topic, NPART);
    let spread: Vec<String> = expected.values().map(|v| v.len().to_string()).collect();
    passed(format!("{} messages over {NPART} partitions ({}), exactly once, in order", data.len(), spread.join(", ")))
}

fn header_rows(recs: &[Out]) -> Vec<Vec<F>> {
    recs.iter()
        .map(|r| vec![b(&r.key), b(&r.value), F::Int(r.ts.unwrap_or(-1)), F::Headers(r.headers.clone())])
        .collect()
}

async fn headers_timestamps() {
    let topic = topic("");
    let recs = headers_dataset(true);
    log(format!("producing {} records with headers/timestamps to {topic} (partition 0)", recs.len()));
    let p = producer(&[]);
    produce_all(&p, &topic, &recs).await;
    wait_partitions(p.client(), &topic, 1);
    let (got, _) = consume_all(&topic, &[0], Offset::Beginning, recs.len(), 120.0);
    let msgs = &got[&0];
    if let Some(m) = msgs.iter().find(|m| m.create_time != Some(true)) {
        fail(format!("offset {}: timestamp type is not CreateTime", m.offset));
    }
    let have: Vec<Vec<F>> =
        msgs.iter().map(|m| vec![b(&m.key), b(&m.value), F::Int(m.ts), F::Headers(m.headers.clone())]).collect();
    if let Some(d) = first_diff(
        &header_rows(&recs),
        &have,
        "record (key, value, timestamp, headers)",
        &["key", "value", "timestamp", "headers"],
    ) {
        fail(d);
    }
    passed(format!("{} records: headers (incl. a null value) and CreateTime timestamps identical", recs.len()))
}

async fn large_messages() {
    let topic = topic("");
    let a = admin();
    log(format!("creating {topic} with max.message.bytes=4194304"));
    create_topic(&a, &topic, 1, &[("max.message.bytes", "4194304")]).await;
    let data = large_dataset();
    let p = producer(&[("message.max.bytes", "4194304")]);
    let reports = produce_all(&p, &topic, &kv_outs(&data)).await;
    check_offsets("delivery-report offsets", &reports.iter().map(|r| r.1).collect::<Vec<_>>(), 0);
    // Default fetch sizes: max.partition.fetch.bytes 1 MiB < one record batch (KIP-74).
    let (got, wm) = consume_all(&topic, &[0], Offset::Beginning, data.len(), 120.0);
    let msgs = &got[&0];
    let want: Vec<Vec<F>> = data
        .iter()
        .enumerate()
        .map(|(i, (k, v))| vec![F::Int(i as i64), F::Bytes(Some(k.clone())), F::Bytes(Some(v.clone()))])
        .collect();
    let have: Vec<Vec<F>> = msgs.iter().map(|m| vec![F::Int(m.offset), b(&m.key), b(&m.value)]).collect();
    if let Some(d) = first_diff(&want, &have, "record (offset, key, value)", &["offset", "key", "value"]) {
        fail(d);
    }
    if wm.get(&0) != Some(&(0, 8)) {
        fail(format!("watermarks: expected (0, 8), got {:?}", wm.get(&0)));
    }
    passed("8 x 1 MiB records byte-identical at offsets 0..7 (message.max.bytes 4 MiB, default fetch sizes)")
}

async fn compression() {
    let a = admin();
    let data = compressible_dataset();
    let mut done = Vec::new();
    for codec in CODECS {
        let topic = topic(&format!("-{codec}"));
        create_topic(&a, &topic, 1, &[]).await;
        let p: FutureProducer<Ctx> =
            match config(&[("linger.ms", "5"), ("compression.codec", codec)]).create_with_context(Ctx::default()) {
                Ok(p) => p,
                Err(e) => {
                    log(format!("{codec}: librdkafka refuses the codec ({e}); skipped"));
                    continue;
                }
            };
        let reports = produce_all(&p, &topic, &kv_outs(&data)).await;
        check_offsets(
            &format!("{codec}: delivery-report offsets"),
            &reports.iter().map(|r| r.1).collect::<Vec<_>>(),
            0,
        );
        let (got, _) = consume_all(&topic, &[0], Offset::Beginning, data.len(), 60.0);
        let want: Vec<Vec<F>> = data
            .iter()
            .enumerate()
            .map(|(i, (k, v))| vec![F::Int(i as i64), F::Bytes(Some(k.clone())), F::Bytes(Some(v.clone()))])
            .collect();
        let have: Vec<Vec<F>> = got[&0].iter().map(|m| vec![F::Int(m.offset), b(&m.key), b(&m.value)]).collect();
        if let Some(d) =
            first_diff(&want, &have, &format!("{codec} record (offset, key, value)"), &["offset", "key", "value"])
        {
            fail(d);
        }
        log(format!("{codec}: 1000 records round-tripped"));
        done.push(codec);
    }
    if done.is_empty() {
        fail("no codec could be run");
    }
    passed(format!("1000 records each with codecs {}", done.join(", ")))
}

async fn seek_timestamp() {
    let topic = topic("");
    let a = admin();
    create_topic(&a, &topic, 1, &[]).await;
    let t0 = seek_t0();
    let recs: Vec<Out> = (0..100)
        .map(|i| Out {
            key: Some(format!("ts-{i:03}").into_bytes()),
            value: Some(format!("value-{i:03}").into_bytes()),
            ts: Some(t0 + 1000 * i),
            partition: Some(0),
            ..Default::default()
        })
        .collect();
    let p = producer(&[]);
    produce_all(&p, &topic, &recs).await;
    let c = plain_consumer();
    let lookup = |ts: i64| -> Offset {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(ts)).or_fail("tpl");
        let res = c.offsets_for_times(tpl, Duration::from_secs(10)).or_fail(format!("offsets_for_times({ts})"));
        let e = res.find_partition(&topic, 0).unwrap_or_else(|| fail("offsets_for_times: partition 0 missing"));
        e.error().or_fail(format!("offsets_for_times({ts}) partition error"));
        e.offset()
    };
    for (what, ts) in [("T0+42000-500", t0 + 42_000 - 500), ("T0+42000", t0 + 42_000)] {
        let off = lookup(ts);
        if off != Offset::Offset(42) {
            fail(format!("offsets_for_times({what}) gave {off:?}, expected Offset(42)"));
        }
    }
    let after = lookup(t0 + 1000 * 99 + 1);
    if !matches!(after, Offset::End | Offset::Invalid | Offset::Offset(-1) | Offset::Offset(100)) {
        fail(format!("offsets_for_times(after the last record) gave {after:?}, expected none (-1/End)"));
    }
    // Seek there: assign() at the looked-up offset.
    let (got, _) = consume_all(&topic, &[0], lookup(t0 + 42_000 - 500), 58, 60.0);
    let want: Vec<Vec<F>> = (42..100).map(|i| vec![F::Int(i), F::Int(t0 + 1000 * i)]).collect();
    let have: Vec<Vec<F>> = got[&0].iter().map(|m| vec![F::Int(m.offset), F::Int(m.ts)]).collect();
    if let Some(d) = first_diff(&want, &have, "record (offset, timestamp) after the seek", &["offset", "timestamp"]) {
        fail(d);
    }
    passed(format!(
        "offsets_for_times T0+41.5s and T0+42s -> 42; read 42..99 with exact timestamps; after the end -> {after:?}"
    ))
}

async fn idempotent() {
    const NPART: i32 = 3;
    let topic = topic("");
    let a = admin();
    create_topic(&a, &topic, NPART, &[]).await;
    let data = idempotent_dataset();
    let p = producer(&[("enable.idempotence", "true"), ("acks", "all")]);
    log(format!("producing {} records with enable.idempotence=true", data.len()));
    let reports = produce_all(&p, &topic, &kv_outs(&data)).await;
    let expected = expected_by_partition(&data, &reports, NPART);
    let (got, wm) = consume_all(&topic, &[0, 1, 2], Offset::Beginning, data.len(), 120.0);
    check_partitions(&expected, &got, &wm);
    let spread: Vec<String> = expected.values().map(|v| v.len().to_string()).collect();
    passed(format!(
        "{} idempotent records over {NPART} partitions ({}): exactly once, in send order, HW = count",
        data.len(),
        spread.join(", ")
    ))
}

/// Every record value of `topic`'s partitions `0..n`, read from the start with
/// `isolation.level` until end of partition everywhere (bounded), per partition.
fn read_values(topic: &str, n: i32, isolation: &str) -> BTreeMap<i32, Vec<String>> {
    let c: BaseConsumer<Ctx> = create(
        "consumer",
        &[
            ("group.id", "strom-compat-unused"),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            ("auto.offset.reset", "earliest"),
            ("isolation.level", isolation),
        ],
        Ctx::default(),
    );
    let mut tpl = TopicPartitionList::new();
    for p in 0..n {
        tpl.add_partition_offset(topic, p, Offset::Beginning).or_fail("building the assignment");
    }
    c.assign(&tpl).or_fail("assign");
    let mut got: BTreeMap<i32, Vec<String>> = (0..n).map(|p| (p, Vec::new())).collect();
    let mut eof = BTreeSet::new();
    let dl = Deadline::new(60.0);
    while eof.len() < n as usize {
        if dl.expired() {
            fail(format!("{isolation} read of {topic}: no end of partition on all within 60 s ({eof:?})"));
        }
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                got.entry(m.partition()).or_default().push(v);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                eof.insert(p);
            }
            Some(Err(e)) => log(format!("consumer: {e}")),
            None => {}
        }
    }
    got
}

/// A committed transaction A (20 records), an aborted B (15), a committed C (10) over two
/// partitions; read_committed sees A and C, read_uncommitted all three, never a marker.
/// Offsets committed inside a transaction show only when it commits; a second producer
/// with the same transactional.id fences the first.
async fn transactions() {
    const NPART: i32 = 2;
    let topic = topic("");
    let a = admin();
    create_topic(&a, &topic, NPART, &[]).await;
    let tid = format!("{topic}-txn");
    let txn_producer = |tid: &str| producer(&[("transactional.id", tid), ("acks", "all")]);
    let t = Duration::from_secs(30);
    let p = txn_producer(&tid);
    p.init_transactions(t).or_fail("init_transactions");
    for (name, n, commit) in [("A", 20, true), ("B", 15, false), ("C", 10, true)] {
        p.begin_transaction().or_fail("begin_transaction");
        let recs: Vec<Out> = (0..n)
            .map(|i| {
                let mut o = Out::kv(format!("key-{name}-{i}").into_bytes(), format!("{name}-{i}").into_bytes());
                o.partition = Some(i % NPART);
                o
            })
            .collect();
        produce_all(&p, &topic, &recs).await;
        if commit {
            p.commit_transaction(t).or_fail(format!("commit_transaction {name}"));
        } else {
            p.abort_transaction(t).or_fail(format!("abort_transaction {name}"));
        }
        log(format!("transaction {name}: {n} records, {}", if commit { "committed" } else { "aborted" }));
    }
    let expect = |names: &[&str]| -> BTreeMap<i32, Vec<String>> {
        let mut m: BTreeMap<i32, Vec<String>> = (0..NPART).map(|p| (p, Vec::new())).collect();
        for (name, n) in [("A", 20), ("B", 15), ("C", 10)] {
            if names.contains(&name) {
                for i in 0..n {
                    m.entry(i % NPART).or_default().push(format!("{name}-{i}"));
                }
            }
        }
        m
    };
    let committed = read_values(&topic, NPART, "read_committed");
    if committed != expect(&["A", "C"]) {
        fail(format!("read_committed got {committed:?}"));
    }
    let all = read_values(&topic, NPART, "read_uncommitted");
    if all != expect(&["A", "B", "C"]) {
        fail(format!("read_uncommitted got {all:?}"));
    }
    log("read_committed: A and C in order; read_uncommitted: A, B and C, no control records");

    // Offsets in transactions: visible with a commit, never with an abort.
    let group = format!("{topic}-G");
    let g: BaseConsumer<Ctx> =
        create("consumer", &[("group.id", group.as_str()), ("enable.auto.commit", "false")], Ctx::default());
    let meta = g.group_metadata().unwrap_or_else(|| fail("no consumer group metadata"));
    let offsets = |o: i64| {
        let mut tpl = TopicPartitionList::new();
        for q in 0..NPART {
            tpl.add_partition_offset(&topic, q, Offset::Offset(o)).or_fail("offsets");
        }
        tpl
    };
    let committed_offsets = || -> Vec<i64> {
        let res = g.committed_offsets(offsets(0), t).or_fail("committed offsets");
        res.elements().iter().map(|e| e.offset().to_raw().unwrap_or(-1)).collect()
    };
    for (o, commit) in [(10i64, true), (15, false)] {
        p.begin_transaction().or_fail("begin_transaction");
        produce_all(&p, &topic, &[Out::kv(b"k".to_vec(), format!("offsets-{o}").into_bytes())]).await;
        p.send_offsets_to_transaction(&offsets(o), &meta, t).or_fail("send_offsets_to_transaction");
        if commit {
            p.commit_transaction(t).or_fail("commit_transaction");
        } else {
            p.abort_transaction(t).or_fail("abort_transaction");
        }
        let dl = Deadline::new(15.0);
        while committed_offsets() != vec![10; NPART as usize] {
            if dl.expired() {
                fail(format!(
                    "group offsets after the {} transaction: {:?}",
                    if commit { "committed" } else { "aborted" },
                    committed_offsets()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    log("offsets committed in a transaction: 10 visible after commit, still 10 after an aborted 15");

    // Zombie fencing.
    let fence_topic = format!("{topic}-fence");
    create_topic(&a, &fence_topic, 1, &[]).await;
    let zombie_id = format!("{topic}-zombie");
    let p1 = txn_producer(&zombie_id);
    p1.init_transactions(t).or_fail("init_transactions (P1)");
    p1.begin_transaction().or_fail("begin_transaction (P1)");
    produce_all(&p1, &fence_topic, &[Out::kv(b"z".to_vec(), b"zombie".to_vec())]).await;
    let p2 = txn_producer(&zombie_id);
    p2.init_transactions(t).or_fail("init_transactions (P2)");
    let fenced = match p1.commit_transaction(t) {
        Ok(()) => fail("P1's commit succeeded after P2 took its transactional.id"),
        Err(e) => e.to_string(),
    };
    p2.begin_transaction().or_fail("begin_transaction (P2)");
    produce_all(&p2, &fence_topic, &[Out::kv(b"s".to_vec(), b"successor".to_vec())]).await;
    p2.commit_transaction(t).or_fail("commit_transaction (P2)");
    let seen = read_values(&fence_topic, 1, "read_committed");
    if seen.get(&0).map(Vec::as_slice) != Some(&["successor".to_string()][..]) {
        fail(format!("read_committed after fencing: {seen:?}"));
    }
    passed(format!(
        "A/B/C: read_committed 30 records, read_uncommitted 45; offsets in a committed transaction visible, aborted not; zombie fenced ({fenced})"
    ))
}

async fn metadata() {
    let topic = topic("-created");
    let auto_topic = topic_auto();
    let a = admin();
    log(format!("creating {topic} with 3 partitions"));
    create_topic(&a, &topic, 3, &[]).await;
    let md = a.inner().fetch_metadata(None, Duration::from_secs(10)).or_fail("all-topics metadata");
    if md.brokers().is_empty() {
        fail("metadata lists no brokers");
    }
    for br in md.brokers() {
        if br.host().is_empty() || br.port() <= 0 {
            fail(format!("broker {} has bad address {}:{}", br.id(), br.host(), br.port()));
        }
    }
    match md.topics().iter().find(|t| t.name() == topic) {
        None => fail(format!("all-topics metadata does not list {topic} ({} topics)", md.topics().len())),
        Some(t) if t.partitions().len() != 3 => {
            fail(format!("all-topics metadata: {topic} has {} partitions, expected 3", t.partitions().len()))
        }
        Some(_) => {}
    }
    let p = producer(&[]);
    produce_all(&p, &auto_topic, &[Out::kv(b"k".to_vec(), b"v".to_vec())]).await;
    wait_partitions(p.client(), &auto_topic, 1);
    let md = a.inner().fetch_metadata(None, Duration::from_secs(10)).or_fail("all-topics metadata");
    if !md.topics().iter().any(|t| t.name() == auto_topic) {
        fail(format!("all-topics metadata does not list auto-created {auto_topic}"));
    }
    let brokers: Vec<String> = md.brokers().iter().map(|b| format!("{}={}:{}", b.id(), b.host(), b.port())).collect();
    passed(format!("created topic has 3 partitions, auto-created topic 1, brokers {brokers:?}"))
}

fn topic_auto() -> String {
    topic("-auto")
}

async fn describe_topic(a: &AdminClient<Ctx>, topic: &str) -> ConfigResource {
    let res = a.describe_configs(&[ResourceSpecifier::Topic(topic)], &opts()).await.or_fail("describe_configs");
    match res.into_iter().next() {
        Some(Ok(r)) => r,
        Some(Err(code)) => fail(format!("describe_configs({topic}) failed: {code:?}")),
        None => fail("describe_configs returned no resource"),
    }
}

fn value_of(r: &ConfigResource, name: &str) -> Option<String> {
    r.get(name).and_then(|e| e.value.clone())
}

async fn admin_scenario() {
    let topic = topic("-admin");
    let a = admin();
    log(format!("creating {topic} with segment.bytes=1048576, retention.ms=3600000"));
    create_topic(&a, &topic, 2, &[("segment.bytes", "1048576"), ("retention.ms", "3600000")]).await;
    let configs = describe_topic(&a, &topic).await;
    match configs.get("segment.bytes") {
        Some(e) if e.value.as_deref() == Some("1048576") && e.source == ConfigSource::DynamicTopic => {}
        other => {
            fail(format!("describe_configs: segment.bytes is {other:?}, expected '1048576' from DYNAMIC_TOPIC_CONFIG"))
        }
    }
    if value_of(&configs, "retention.ms").as_deref() != Some("3600000") {
        fail("describe_configs: retention.ms not reported as set");
    }
    match configs.get("cleanup.policy") {
        Some(e) if e.value.as_deref() == Some("delete") && e.is_default => {}
        other => fail(format!("describe_configs: cleanup.policy should be the default 'delete', got {other:?}")),
    }
    let md = a.inner().fetch_metadata(None, Duration::from_secs(10)).or_fail("metadata");
    let broker_id = md.brokers().first().map(|b| b.id()).unwrap_or_else(|| fail("no brokers in metadata"));
    let res =
        a.describe_configs(&[ResourceSpecifier::Broker(broker_id)], &opts()).await.or_fail("describe_configs broker");
    let broker_cfg = match res.into_iter().next() {
        Some(Ok(r)) => r,
        other => fail(format!("broker describe_configs failed: {other:?}")),
    };
    if value_of(&broker_cfg, "num.partitions").as_deref() != Some("1") {
        fail(format!(
            "broker describe_configs: num.partitions missing or not 1: {:?}",
            broker_cfg.get("num.partitions")
        ));
    }
    let cluster_id = a.inner().fetch_cluster_id(Duration::from_secs(10)).filter(|s| !s.is_empty());
    let Some(cluster_id) = cluster_id else { fail("fetch_cluster_id returned no cluster id") };

    let bad = crate::common::topic("-badcfg");
    let nt = NewTopic::new(&bad, 1, TopicReplication::Fixed(1)).set("no.such.config", "1");
    match a.create_topics(&[nt], &opts()).await.or_fail("create_topics").first() {
        Some(Err((_, RDKafkaErrorCode::InvalidConfig))) => {}
        other => fail(format!("unknown config gave {other:?}, expected INVALID_CONFIG")),
    }

    log(format!("deleting {topic}"));
    match a.delete_topics(&[&topic], &opts()).await.or_fail("delete_topics").first() {
        Some(Ok(_)) => {}
        other => fail(format!("delete_topics gave {other:?}")),
    }
    let md = a.inner().fetch_metadata(None, Duration::from_secs(10)).or_fail("metadata");
    if md.topics().iter().any(|t| t.name() == topic) {
        fail(format!("deleted topic {topic} is still listed"));
    }
    create_topic(&a, &topic, 1, &[]).await;
    let p = producer(&[]);
    let reports = produce_all(&p, &topic, &[Out::kv(b"k".to_vec(), b"fresh".to_vec())]).await;
    if reports != [(0, 0)] {
        fail(format!("re-created topic should start at offset 0, delivery reports {reports:?}"));
    }
    passed(format!(
        "configs described (topic + broker {broker_id}), cluster id {cluster_id}, unknown config refused, delete + re-create ok"
    ))
}

async fn admin_ops() {
    let topic = topic("-ops");
    let a = admin();
    create_topic(&a, &topic, 1, &[]).await;
    let recs: Vec<Out> = (0..10)
        .map(|i| Out { value: Some(format!("v{i}").into_bytes()), partition: Some(0), ..Default::default() })
        .collect();
    produce_all(&producer(&[]), &topic, &recs).await;

    let res = a.create_partitions(&[NewPartitions::new(&topic, 3)], &opts()).await.or_fail("create_partitions");
    if let Some(Err(e)) = res.first() {
        fail(format!("create_partitions to 3 failed: {e:?}"));
    }
    wait_partitions(a.inner(), &topic, 3);
    match a.create_partitions(&[NewPartitions::new(&topic, 2)], &opts()).await.or_fail("create_partitions").first() {
        Some(Err((_, RDKafkaErrorCode::InvalidPartitions))) => {}
        other => fail(format!("shrinking to 2 partitions gave {other:?}, expected INVALID_PARTITIONS")),
    }

    // rdkafka 0.33 has AlterConfigs (replaces the topic's whole dynamic config), not
    // IncrementalAlterConfigs: SET is "alter with the entry", DELETE is "alter without it".
    let set = AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("retention.ms", "1000");
    match a.alter_configs(&[set], &opts()).await.or_fail("alter_configs").first() {
        Some(Ok(_)) => {}
        other => fail(format!("alter_configs(retention.ms=1000) gave {other:?}")),
    }
    let cfg = describe_topic(&a, &topic).await;
    match cfg.get("retention.ms") {
        Some(e) if e.value.as_deref() == Some("1000") && e.source == ConfigSource::DynamicTopic => {}
        other => fail(format!("after AlterConfigs SET retention.ms is {other:?}")),
    }
    let clear = AlterConfig::new(ResourceSpecifier::Topic(&topic));
    match a.alter_configs(&[clear], &opts()).await.or_fail("alter_configs").first() {
        Some(Ok(_)) => {}
        other => fail(format!("alter_configs(no entries) gave {other:?}")),
    }
    let cfg = describe_topic(&a, &topic).await;
    match cfg.get("retention.ms") {
        Some(e) if e.value.as_deref() == Some("604800000") && e.source != ConfigSource::DynamicTopic => {}
        other => {
            fail(format!("after AlterConfigs without retention.ms it is {other:?}, expected the default 604800000"))
        }
    }
    let c = plain_consumer();
    let wm = c.fetch_watermarks(&topic, 0, Duration::from_secs(10)).or_fail("fetch_watermarks");
    if wm != (0, 10) {
        fail(format!("watermarks of partition 0: {wm:?}, expected (0, 10)"));
    }
    passed("create_partitions 1->3 (shrink refused), AlterConfigs set then reset to default; DeleteRecords not in rdkafka 0.33's AdminClient")
}

// ---------------------------------------------------------------------------
// Groups

fn member(group: &str, name: &str, tracker: Tracker, extra: &[(&str, &str)]) -> BaseConsumer<Ctx> {
    let mut cfg = vec![
        ("group.id", group),
        ("client.id", name),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
    ];
    cfg.extend_from_slice(extra);
    create(&format!("consumer {name}"), &cfg, Ctx { tracker: Some(tracker) })
}

fn owned(owners: &Owners, name: &str) -> BTreeSet<(String, i32)> {
    owners.lock().unwrap().get(name).cloned().unwrap_or_default()
}

fn loads(owners: &Owners) -> BTreeMap<String, Vec<i32>> {
    owners.lock().unwrap().iter().map(|(n, s)| (n.clone(), s.iter().map(|t| t.1).collect())).collect()
}

async fn group_rebalance() {
    let topic = topic("-grp");
    let group = crate::common::topic("-group");
    let a = admin();
    create_topic(&a, &topic, 6, &[]).await;
    let p = producer(&[]);
    let batch = |tag: &str| -> Vec<Out> {
        (0..600)
            .map(|i| Out {
                key: Some(format!("k{i}").into_bytes()),
                value: Some(format!("{tag}-{i}").into_bytes()),
                partition: Some(i % 6),
                ..Default::default()
            })
            .collect()
    };
    produce_all(&p, &topic, &batch("first")).await;

    let owners: Owners = Default::default();
    let mk = |name: &str| {
        let mut t = Tracker::new(name, &owners);
        t.incremental = false;
        let c = member(&group, name, t, &[("session.timeout.ms", "10000"), ("heartbeat.interval.ms", "500")]);
        c.subscribe(&[&topic]).or_fail("subscribe");
        (name.to_string(), c)
    };
    let mut consumers: Vec<(String, BaseConsumer<Ctx>)> = vec![mk("m1"), mk("m2"), mk("m3")];
    let mut delivered: BTreeMap<(i32, i64), String> = BTreeMap::new();
    // Records whose commit failed because a rebalance began may be delivered again.
    let mut uncommitted: BTreeSet<(i32, i64)> = BTreeSet::new();
    let mut redelivered = 0;

    let mut pump = |consumers: &[(String, BaseConsumer<Ctx>)], want_total: usize, want_each: usize, what: &str| {
        let dl = Deadline::new(90.0);
        while !dl.expired() {
            for (name, c) in consumers {
                let Some(Ok(m)) = c.poll(Duration::from_millis(50)) else { continue };
                let key = (m.partition(), m.offset());
                let mine = owned(&owners, name);
                if !mine.contains(&(topic.clone(), m.partition())) {
                    fail(format!("{name} got a record of partition {} it does not own (owns {mine:?})", m.partition()));
                }
                if let Some(prev) = delivered.get(&key) {
                    if !uncommitted.remove(&key) {
                        fail(format!("committed record {key:?} delivered to {prev} and again to {name}"));
                    }
                    redelivered += 1;
                }
                delivered.insert(key, name.clone());
                if let Err(e) = c.commit_message(&m, CommitMode::Sync) {
                    match e.rdkafka_error_code() {
                        Some(RDKafkaErrorCode::RebalanceInProgress | RDKafkaErrorCode::IllegalGeneration) => {
                            uncommitted.insert(key);
                        }
                        _ => fail(format!("{name}: commit failed: {e}")),
                    }
                }
            }
            let l = loads(&owners);
            if delivered.len() == want_total && l.values().all(|v| v.len() == want_each) {
                return;
            }
        }
        fail(format!("timed out waiting for {what}; owners {:?}, delivered {}", loads(&owners), delivered.len()))
    };

    let t0 = Instant::now();
    pump(&consumers, 600, 2, "3 members with 2 partitions each and all 600 records");
    log(format!("3 members: {:?} after {:.1}s", loads(&owners), t0.elapsed().as_secs_f64()));
    let all: BTreeSet<i32> = loads(&owners).values().flatten().copied().collect();
    if all != (0..6).collect() {
        fail(format!("assignment does not cover all partitions: {:?}", loads(&owners)));
    }
    log("m3 leaves");
    drop(consumers.pop());
    owners.lock().unwrap().remove("m3");
    produce_all(&p, &topic, &batch("second")).await;
    pump(&consumers, 1200, 3, "2 members with 3 partitions each and all 1200 records");
    let fin = loads(&owners);
    drop(consumers);
    let (m1, m2): (BTreeSet<i32>, BTreeSet<i32>) =
        (fin["m1"].iter().copied().collect(), fin["m2"].iter().copied().collect());
    if !m1.is_disjoint(&m2) || m1.union(&m2).count() != 6 {
        fail(format!("final assignment overlaps or misses partitions: {fin:?}"));
    }
    passed(format!(
        "classic protocol: 2+2+2 then 3+3 {fin:?}; 1200 records, no committed record delivered twice ({redelivered} redelivered after a commit lost to a rebalance)"
    ))
}

fn take(c: &BaseConsumer<Ctx>, n: usize, timeout: f64) -> Vec<Got> {
    let mut got = Vec::new();
    let dl = Deadline::new(timeout);
    while got.len() < n && !dl.expired() {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            got.push(to_got(&m));
        }
    }
    got
}

/// SASL/PLAIN over TLS (issue 16), as `security-sasl-ssl` of the script clients: a broker
/// of our own with one SASL_SSL listener (certificates from lib/certs.py, users alice and
/// bob in the listener's JAAS line); alice creates a topic, produces 20 records (record i
/// to partition i % 2), a group member reads them and commits, the commit is read back;
/// a producer with a wrong password is refused (no record of its appended); the topic
/// holds exactly alice's records.
async fn security_sasl_ssl() {
    let lib = std::env::var("PYTHONPATH")
        .ok()
        .and_then(|p| p.split(':').next().map(str::to_string))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| fail("PYTHONPATH does not name compat-tests/lib (run through compat-tests/run)"));
    let tls = std::env::temp_dir().join(format!("strom-rust-tls-{}-{}", std::process::id(), now_ms()));
    let out = std::process::Command::new("python3")
        .arg(format!("{lib}/certs.py"))
        .arg(&tls)
        .output()
        .or_fail("running lib/certs.py");
    if !out.status.success() {
        fail(format!("lib/certs.py: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let path = |f: &str| tls.join(f).display().to_string();
    let (ca, keystore) = (path("ca.pem"), path("broker.pem"));
    let jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\" \
                user_bob=\"bob-secret\";";
    let own = OwnBroker::start_with(
        "SASL_SSL",
        &[
            ("listener.security.protocol.map", "SASL_SSL:SASL_SSL"),
            ("ssl.keystore.type", "PEM"),
            ("ssl.keystore.location", &keystore),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_ssl.plain.sasl.jaas.config", jaas),
        ],
    );
    std::env::set_var("STROM_BOOTSTRAP", own.bootstrap());
    log(format!("own broker (SASL_SSL, PLAIN) on {}", own.bootstrap()));
    let login = |user: &'static str, password: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "SASL_SSL".to_string()),
            ("sasl.mechanisms", "PLAIN".to_string()),
            ("sasl.username", user.to_string()),
            ("sasl.password", password.to_string()),
            ("ssl.ca.location", ca.clone()),
        ]
    };
    let alice = login("alice", "alice-secret");
    let topic = topic("");
    let group = crate::common::topic("-group");

    let a: AdminClient<Ctx> = create("admin client", &as_refs(&alice), Ctx::default());
    create_topic(&a, &topic, 2, &[]).await;
    let p = producer(&as_refs(&alice));
    for i in 0..20 {
        let (key, value) = (format!("k{i}"), format!("alice-{i}"));
        let rec = FutureRecord::to(&topic).partition(i % 2).key(&key).payload(&value);
        p.send(rec, Duration::from_secs(30)).await.map_err(|(e, _)| e).or_fail("alice's produce");
    }
    log("alice produced 20 records over SASL_SSL");

    let c = member(&group, "alice", Tracker::new("alice", &Default::default()), &as_refs(&alice));
    c.subscribe(&[&topic]).or_fail("subscribe");
    let got = take(&c, 20, 60.0);
    if got.len() != 20 {
        fail(format!("alice's group member read {} of 20 records", got.len()));
    }
    c.commit_consumer_state(CommitMode::Sync).or_fail("commit");
    let mut q = TopicPartitionList::new();
    q.add_partition(&topic, 0);
    q.add_partition(&topic, 1);
    let committed = c.committed_offsets(q, Duration::from_secs(10)).or_fail("committed_offsets");
    let offsets: Vec<Option<Offset>> =
        (0..2).map(|p| committed.find_partition(&topic, p).map(|e| e.offset())).collect();
    if offsets != [Some(Offset::Offset(10)), Some(Offset::Offset(10))] {
        fail(format!("alice's committed offsets {offsets:?}, expected 10 on each partition"));
    }
    drop(c);

    // A wrong password: the login is refused, nothing is appended.
    let wrong = login("alice", "not-alice-secret");
    let mut cfg = as_refs(&wrong);
    cfg.push(("message.timeout.ms", "5000"));
    let intruder = producer(&cfg);
    let rec = FutureRecord::to(&topic).partition(0).key("x").payload("intruder");
    if intruder.send(rec, Duration::from_secs(10)).await.is_ok() {
        fail("a producer with a wrong password had a record delivered");
    }
    drop(intruder);

    let (read, _) = consume_all_as(&topic, &[0, 1], Offset::Beginning, 20, 60.0, &as_refs(&alice));
    let mut values: Vec<String> = read
        .values()
        .flatten()
        .map(|m| String::from_utf8_lossy(m.value.as_deref().unwrap_or_default()).into())
        .collect();
    values.sort();
    let mut want: Vec<String> = (0..20).map(|i| format!("alice-{i}")).collect();
    want.sort();
    if values != want {
        fail(format!(
            "the topic holds {} records, expected alice's 20: {:?}",
            values.len(),
            &values[..values.len().min(3)]
        ));
    }
    let _ = std::fs::remove_dir_all(&tls);
    passed(
        "SASL_SSL (PLAIN, server certificate checked against the test CA): CreateTopics, 20 records produced, \
            group read and commit {0: 10, 1: 10} read back; a wrong password delivered nothing; the topic holds \
            exactly alice's 20 records",
    )
}

/// Settings with owned values as the `(&str, &str)` pairs [`create`] takes.
fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

async fn group_resume() {
    let mut own = OwnBroker::start();
    std::env::set_var("STROM_BOOTSTRAP", own.bootstrap());
    let topic = topic("-resume");
    let group = crate::common::topic("-resume-group");
    let a = admin();
    create_topic(&a, &topic, 1, &[]).await;
    let recs: Vec<Out> =
        (0..100).map(|i| Out::kv(format!("k{i}").into_bytes(), format!("v{i}").into_bytes())).collect();
    produce_all(&producer(&[]), &topic, &recs).await;

    let owners: Owners = Default::default();
    let join = |name: &str| {
        let t = Tracker::new(name, &owners);
        let first = t.first_assign.clone();
        let c = member(&group, name, t, &[]);
        let started = Instant::now();
        c.subscribe(&[&topic]).or_fail("subscribe");
        (c, first, started)
    };
    let (c, first_assign, started) = join("first");
    let first = take(&c, 60, 60.0);
    check_offsets("first member's offsets", &first.iter().map(|m| m.offset).collect::<Vec<_>>(), 0);
    if first.len() != 60 {
        fail(format!("first member read {} of 60 records", first.len()));
    }
    let join_s = first_assign.lock().unwrap().map(|t| t.duration_since(started).as_secs_f64()).unwrap_or(f64::NAN);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(first[59].offset + 1)).or_fail("tpl");
    c.commit(&tpl, CommitMode::Sync).or_fail("commit after 60 records");
    let mut q = TopicPartitionList::new();
    q.add_partition(&topic, 0);
    let committed = c.committed_offsets(q, Duration::from_secs(10)).or_fail("committed_offsets");
    let off = committed.find_partition(&topic, 0).map(|e| e.offset());
    if off != Some(Offset::Offset(60)) {
        fail(format!("committed offset is {off:?}, expected 60"));
    }
    drop(c);

    log("restarting the broker");
    own.restart();
    let (c, _, _) = join("second");
    let rest = take(&c, 40, 60.0);
    let extra = take(&c, 1, 2.0);
    drop(c);
    let offsets: Vec<i64> = rest.iter().map(|m| m.offset).collect();
    if offsets != (60..100).collect::<Vec<_>>() || !extra.is_empty() {
        fail(format!(
            "after restart got offsets {:?}{}, expected 60..99",
            &offsets[..offsets.len().min(5)],
            if extra.is_empty() { "" } else { " and more" }
        ));
    }
    if join_s > 3.0 + 5.0 {
        fail(format!("first assignment took {join_s:.2}s, far beyond the 3 s initial rebalance delay"));
    }
    passed(format!(
        "classic: resumed at offset 60 after restart; subscribe->assignment {join_s:.2}s (initial delay 3 s)"
    ))
}

async fn group_assignors() {
    let a = admin();
    let mut results = Vec::new();
    for strategy in ["range", "roundrobin", "cooperative-sticky"] {
        let topic = topic(&format!("-{strategy}"));
        let group = crate::common::topic(&format!("-{strategy}-group"));
        create_topic(&a, &topic, 4, &[]).await;
        let owners: Owners = Default::default();
        let mk = |name: &str| {
            let mut t = Tracker::new(name, &owners);
            t.incremental = strategy == "cooperative-sticky";
            t.check_overlap = Some(strategy.to_string());
            let c = member(
                &group,
                name,
                t,
                &[
                    ("partition.assignment.strategy", strategy),
                    ("session.timeout.ms", "10000"),
                    ("heartbeat.interval.ms", "500"),
                ],
            );
            c.subscribe(&[&topic]).or_fail("subscribe");
            c
        };
        let settle = |consumers: &[&BaseConsumer<Ctx>], want: &[usize]| {
            let dl = Deadline::new(60.0);
            while !dl.expired() {
                for c in consumers {
                    let _ = c.poll(Duration::from_millis(50));
                }
                if loads(&owners).values().map(Vec::len).collect::<Vec<_>>() == want {
                    return;
                }
            }
            fail(format!("{strategy}: expected loads {want:?}, owners {:?}", loads(&owners)))
        };
        let t0 = Instant::now();
        let ca = mk("a");
        settle(&[&ca], &[4]);
        let cb = mk("b");
        settle(&[&ca, &cb], &[2, 2]);
        let (oa, ob) = (owned(&owners, "a"), owned(&owners, "b"));
        if !oa.is_disjoint(&ob) || oa.union(&ob).count() != 4 {
            fail(format!("{strategy}: final assignment {:?}", loads(&owners)));
        }
        let l = loads(&owners);
        log(format!("{strategy}: {l:?} in {:.1}s", t0.elapsed().as_secs_f64()));
        results.push(format!("{strategy} {:?}/{:?}", l["a"], l["b"]));
        drop(ca);
        drop(cb);
    }
    passed(results.join("; "))
}

async fn group_admin() {
    let topic = topic("-gadmin");
    let group = crate::common::topic("-gadmin-group");
    let a = admin();
    create_topic(&a, &topic, 2, &[]).await;
    let recs: Vec<Out> = (0..10)
        .map(|i| Out {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(b"v".to_vec()),
            partition: Some(i % 2),
            ..Default::default()
        })
        .collect();
    produce_all(&producer(&[]), &topic, &recs).await;

    let owners: Owners = Default::default();
    let c = member(&group, "admin-probe", Tracker::new("admin-probe", &owners), &[]);
    c.subscribe(&[&topic]).or_fail("subscribe");
    let got = take(&c, 10, 60.0);
    if got.len() < 10 {
        fail(format!("consumed only {} of 10 records", got.len()));
    }
    c.commit_consumer_state(CommitMode::Sync).or_fail("commit");

    // ListGroups + DescribeGroups (rd_kafka_list_groups): no state filter in this API.
    let list = c.fetch_group_list(None, Duration::from_secs(10)).or_fail("fetch_group_list");
    let Some(g) = list.groups().iter().find(|g| g.name() == group) else {
        let names: Vec<&str> = list.groups().iter().map(|g| g.name()).collect();
        fail(format!("fetch_group_list does not show {group}: {names:?}"))
    };
    if g.state() != "Stable" {
        fail(format!("listed group state {:?}, expected Stable", g.state()));
    }
    let desc = c.fetch_group_list(Some(&group), Duration::from_secs(10)).or_fail("describe group");
    let Some(d) = desc.groups().first() else { fail("describing the group returned nothing") };
    let members: Vec<(&str, &str)> = d.members().iter().map(|m| (m.id(), m.client_id())).collect();
    if members.len() != 1 || members[0].1 != "admin-probe" {
        fail(format!("describe: expected one member 'admin-probe', got {members:?}"));
    }
    let assignment = d.members()[0].assignment().and_then(parse_assignment);
    let parts: Vec<i32> = assignment.iter().flatten().filter(|(t, _)| t == &topic).map(|(_, p)| *p).collect();
    if parts != [0, 1] {
        fail(format!("describe: member assignment {assignment:?}, expected {topic} [0, 1]"));
    }
    log(format!("described: state {}, protocol {:?}, member {}", d.state(), d.protocol(), members[0].0));

    // Committed offsets as seen from outside the group: OffsetFetch by a non-member.
    let outsider: BaseConsumer<Ctx> = create("offset reader", &[("group.id", &group)], Ctx::default());
    let mut q = TopicPartitionList::new();
    q.add_partition(&topic, 0);
    q.add_partition(&topic, 1);
    let offs = outsider.committed_offsets(q, Duration::from_secs(10)).or_fail("committed_offsets");
    let offsets: Vec<(i32, Offset)> = offs.elements().iter().map(|e| (e.partition(), e.offset())).collect();
    if offsets != [(0, Offset::Offset(5)), (1, Offset::Offset(5))] {
        fail(format!("committed offsets {offsets:?}, expected 5 and 5"));
    }
    drop(outsider);

    match a.delete_groups(&[&group], &opts()).await.or_fail("delete_groups").first() {
        Some(Err((_, RDKafkaErrorCode::NonEmptyGroup))) => {}
        other => fail(format!("delete of a live group gave {other:?}, expected NON_EMPTY_GROUP")),
    }
    drop(c);
    match a.delete_groups(&[&group], &opts()).await.or_fail("delete_groups").first() {
        Some(Ok(_)) => {}
        other => fail(format!("delete of the empty group gave {other:?}")),
    }
    let list = a.inner().fetch_group_list(None, Duration::from_secs(10)).or_fail("fetch_group_list");
    if list.groups().iter().any(|g| g.name() == group) {
        fail(format!("deleted group {group} is still listed"));
    }
    passed("group listed (Stable), described (member, client id, assignment), offsets {0: 5, 1: 5}, delete refused while live then done")
}

async fn group_regex() {
    let prefix = topic("-rx");
    let a = admin();
    for s in ["a", "b", "other"] {
        create_topic(&a, &format!("{prefix}-{s}"), 2, &[]).await;
    }
    let owners: Owners = Default::default();
    let c = member(
        &format!("{prefix}-group"),
        "rx",
        Tracker::new("rx", &owners),
        &[("topic.metadata.refresh.interval.ms", "1000")],
    );
    let pattern = format!("^{}-(a|b|c)$", prefix.replace('.', "\\."));
    c.subscribe(&[&pattern]).or_fail("subscribe");
    let wait_for = |want: &BTreeSet<(String, i32)>| {
        let dl = Deadline::new(60.0);
        while !dl.expired() {
            let _ = c.poll(Duration::from_millis(100));
            if &owned(&owners, "rx") == want {
                return;
            }
        }
        fail(format!("expected {want:?}, own {:?}", owned(&owners, "rx")))
    };
    let mut want: BTreeSet<(String, i32)> =
        ["a", "b"].iter().flat_map(|t| [0, 1].map(|p| (format!("{prefix}-{t}"), p))).collect();
    wait_for(&want);
    create_topic(&a, &format!("{prefix}-c"), 2, &[]).await;
    want.extend([0, 1].map(|p| (format!("{prefix}-c"), p)));
    wait_for(&want);
    passed("classic: regex matched a and b (not other), then picked up c created later")
}
