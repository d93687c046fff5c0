//! `strom bench`: a producer/consumer load generator for Strom or any Kafka-compatible
//! broker, and the `--raw-sink` baseline it measures first in the same run.
//!
//! Producers pipeline Produce requests (`--in-flight` per connection, as clients do with
//! `max.in.flight.requests.per.connection`), one record batch per request, partitions in
//! turn. Every batch's first record value carries a run nonce and the send time, so
//! consumers in the same process measure end-to-end latency. Latency runs from the
//! moment a request is written. With `--rate`, batches are due on a fixed schedule and
//! the summary reports how far behind it the generator fell (`schedule lag`): a broker
//! that stalls fills the in-flight window and shows up there rather than being hidden
//! (coordinated omission). Lag below the timer's 1 ms resolution is normal.
//!
//! The raw sink (`strom raw-sink`, a child process) reads the same request frames,
//! appends them to a file and answers each with a bare 8-byte response frame: the
//! fastest anything could accept these bytes on this machine, through the same
//! generator.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use clap::{Args, ValueEnum};
use hdrhistogram::Histogram;
use serde_json::json;
use strom_protocol::records::{self, BatchBuilder, BatchHeader, Compression, RecordIter};
use strom_protocol::{
    add_partitions_to_txn_request, create_topics_request, delete_topics_request, fetch_request, produce_request,
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, EndTxnRequest, EndTxnResponse, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest,
    ProduceResponse,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::cli::{list_offsets, topic_infos};
use strom_client::{check, decode_response, encode_request, error_name, read_frame, response_correlation_id, Client};

/// Bytes at the start of a value that identify the run and carry the send time.
const STAMP_LEN: usize = 16;
/// How long consumers may take, after the producers stop, to read what was produced.
const DRAIN_GRACE: Duration = Duration::from_secs(15);

/// `strom bench` options.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Broker to load (any Kafka-compatible broker).
    #[arg(long, short = 'b', default_value = "localhost:9092", env = "STROM_BOOTSTRAP")]
    pub bootstrap_server: String,
    /// Client properties file (`security.protocol`, `ssl.*`, `sasl.*`), as Kafka's tools
    /// take: every connection of the run uses TLS and SASL as it says.
    #[arg(long, env = "STROM_COMMAND_CONFIG", value_name = "FILE")]
    pub command_config: Option<PathBuf>,
    /// The settings `command_config` holds (loaded when the run starts).
    #[arg(skip)]
    pub security: strom_client::Security,
    /// Topic; created with `--partitions` if missing (and deleted afterwards unless `--keep-topic`).
    #[arg(long, default_value = "strom-bench")]
    pub topic: String,
    /// Partitions of a topic the bench creates.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,
    /// Replication factor of a topic the bench creates (-1: the broker's default).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub replication_factor: i16,
    /// Producer connections.
    #[arg(long, default_value_t = 1)]
    pub producers: usize,
    /// Consumer connections (partitions are split among them).
    #[arg(long, default_value_t = 1)]
    pub consumers: usize,
    /// Record value size in bytes (no key; ≥ 16 for end-to-end latency).
    #[arg(long, default_value_t = 1024)]
    pub record_size: usize,
    /// Batch size in bytes (records per batch = max(1, batch size / record size)), as `batch.size`.
    #[arg(long, default_value_t = 16384)]
    pub batch_size: usize,
    /// acks: 0, 1 or -1 (all).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub acks: i16,
    /// Batch compression.
    #[arg(long, value_enum, default_value_t = Codec::None)]
    pub compression: Codec,
    /// Target rate in records/s over all producers (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long producers run, in seconds (consumers alone: the longest they read).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Produce requests in flight per producer connection.
    #[arg(long, default_value_t = 5)]
    pub in_flight: usize,
    /// Where consumers start: at the log end (records of this run) or the log start (the backlog).
    #[arg(long, value_enum, default_value_t = StartAt::Latest)]
    pub from: StartAt,
    /// `fetch.max.bytes` of each Fetch request.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    pub fetch_max_bytes: i32,
    /// `max.partition.fetch.bytes`.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub partition_fetch_bytes: i32,
    /// First measure the same produce load against a raw TCP sink that appends the request
    /// bytes to a file, and report the broker's throughput as a fraction of it.
    #[arg(long)]
    pub raw_sink: bool,
    /// Directory for the raw sink's files [default: the system temp dir]; they are removed after.
    #[arg(long)]
    pub sink_dir: Option<PathBuf>,
    /// Keep a topic the bench created.
    #[arg(long)]
    pub keep_topic: bool,
    /// Generator threads [default: one per connection, at most the CPU count].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Idempotent producers (a producer id, sequence numbers; needs --acks -1).
    #[arg(long)]
    pub idempotent: bool,
    /// Transactional producers committing every N ms (needs --acks -1): first an
    /// idempotent phase as the baseline, then the transactional one; reports the
    /// throughput ratio and the commit latency.
    #[arg(long, default_value_t = 0)]
    pub transaction_ms: u64,
    /// First measure the same load through this bootstrap server without
    /// `--command-config` (e.g. the broker's PLAINTEXT listener), then through
    /// `--bootstrap-server` with it, and report the throughput as a fraction of the
    /// baseline: what TLS (or SASL) costs, in one run.
    #[arg(long, value_name = "HOST:PORT")]
    pub baseline_bootstrap: Option<String>,
    /// First measure the same load on this topic (created like `--topic` if missing),
    /// then on `--topic`, and report the throughput as a fraction of the baseline: what
    /// a topic setting (schema validation, say) costs, in one run.
    #[arg(long, value_name = "TOPIC", conflicts_with = "baseline_bootstrap")]
    pub baseline_topic: Option<String>,
    /// Frame every record value in Confluent's wire format with this schema id: magic
    /// byte 0, the id, then the payload as one Avro `bytes` datum (valid for the schema
    /// `"bytes"`), for schema-validated topics. Records then carry no send time.
    #[arg(long, value_name = "ID")]
    pub schema_id: Option<u32>,
}

/// How a phase's producers identify themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    Idempotent,
    /// Transactional, committing every this many ms.
    Transactional(u64),
}

/// Codec names as Kafka's `compression.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    fn compression(self) -> Compression {
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Snappy => Compression::Snappy,
            Codec::Lz4 => Compression::Lz4,
            Codec::Zstd => Compression::Zstd,
        }
    }
}

/// Where consumers start reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartAt {
    Latest,
    Earliest,
}

/// `strom raw-sink` options (started by `strom bench --raw-sink`).
#[derive(Args, Debug, Clone)]
pub struct SinkArgs {
    /// Address to listen on; the bound address is printed as the first line on stdout.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// Directory for the files (one per connection).
    #[arg(long)]
    pub dir: PathBuf,
    /// Answer nothing (for acks=0 loads).
    #[arg(long)]
    pub no_reply: bool,
}

fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    BASE.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn wall_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The partitions of `a.topic`, creating it (`a.partitions`, `a.replication_factor`) if
/// it does not exist; whether it was created.
async fn topic_partitions(admin: &mut Client, a: &BenchArgs) -> anyhow::Result<(Vec<i32>, bool)> {
    let existing = topic_infos(admin, Some(std::slice::from_ref(&a.topic))).await;
    if let Ok(infos) = &existing {
        if let Some(info) = infos.first().filter(|i| !i.partitions.is_empty()) {
            return Ok((info.partitions.iter().map(|p| p.0).collect(), false));
        }
    }
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: a.topic.clone(),
            num_partitions: a.partitions,
            replication_factor: a.replication_factor,
            ..Default::default()
        }],
        timeout_ms: 30_000,
        ..Default::default()
    };
    let (resp, _): (CreateTopicsResponse, _) = admin.call(7, &req).await?;
    for t in &resp.topics {
        check(t.error_code, &format!("creating {}", t.name), t.error_message.as_deref())?;
    }
    Ok(((0..a.partitions).collect(), true))
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs .. 1 h, 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// `value` as `0x00 | id | Avro bytes datum` of the same total length (the datum's
/// zigzag length prefix takes the first bytes after the 5-byte header).
fn framed(id: u32, value: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8];
    out.extend_from_slice(&id.to_be_bytes());
    let room = value.len().saturating_sub(5);
    // The longest datum that fits: n bytes after a varint of zigzag(n).
    let mut n = room;
    while n > 0 && n + varint_len((n as u64) << 1) > room {
        n -= 1;
    }
    let mut z = (n as u64) << 1;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(value.get(..n).unwrap_or_default());
    out
}

fn varint_len(mut z: u64) -> usize {
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

/// Builds the batches one producer sends: the same random uppercase payload every time
/// (compressible about as much as `kafka-producer-perf-test`'s), stamped per batch.
struct BatchMaker {
    codec: Compression,
    per_batch: usize,
    record_size: usize,
    nonce: u64,
    payload: Vec<u8>,
    /// `--schema-id`: values framed in Confluent's wire format.
    schema_id: Option<u32>,
    /// Uncompressed batches are built once and patched: the stamp's position in it.
    template: Option<(BytesMut, usize)>,
}

impl BatchMaker {
    fn new(a: &BenchArgs, nonce: u64, seed: u64) -> BatchMaker {
        let per_batch = (a.batch_size / a.record_size.max(1)).max(1);
        let mut x = seed | 1;
        let payload: Vec<u8> = (0..a.record_size * per_batch)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'A' + (x % 26) as u8
            })
            .collect();
        let mut m = BatchMaker {
            codec: a.compression.compression(),
            per_batch,
            record_size: a.record_size,
            nonce,
            payload,
            schema_id: a.schema_id,
            template: None,
        };
        if m.codec == Compression::None {
            // A stamp no header field holds, searched for after the 61-byte batch header.
            let marker = u64::from_be_bytes(*b"STROM-TS");
            let batch = m.build(marker);
            let pos = (m.record_size >= STAMP_LEN)
                .then(|| batch.get(61..)?.windows(8).position(|w| w == marker.to_be_bytes()))
                .flatten()
                .map_or(usize::MAX, |p| p + 61);
            m.template = Some((batch, pos));
        }
        m
    }

    fn build(&self, stamp: u64) -> BytesMut {
        let mut b = BatchBuilder::new(wall_ms()).compression(self.codec);
        for (i, value) in self.payload.chunks(self.record_size.max(1)).enumerate() {
            if let Some(id) = self.schema_id {
                b.add(None, Some(&framed(id, value)));
            } else if i == 0 && value.len() >= STAMP_LEN {
                let mut first = value.to_vec();
                first[..8].copy_from_slice(&self.nonce.to_be_bytes());
                first[8..16].copy_from_slice(&stamp.to_be_bytes());
                b.add(None, Some(&first));
            } else {
                b.add(None, Some(value));
            }
        }
        b.build()
    }

    /// A batch stamped with `stamp` (ns on this process's clock).
    /// `ids`: the producer id, epoch, base sequence and whether the batch is
    /// transactional, for idempotent and transactional producers.
    fn batch(&self, stamp: u64, ids: Option<(i64, i16, i32, bool)>) -> anyhow::Result<Bytes> {
        let mut b = match &self.template {
            None => self.build(stamp),
            Some((template, pos)) => {
                let mut b = template.clone();
                if let Some(slot) = b.get_mut(*pos..*pos + 8) {
                    slot.copy_from_slice(&stamp.to_be_bytes());
                }
                let now = wall_ms().to_be_bytes();
                // baseTimestamp and maxTimestamp (one timestamp for the whole batch).
                b[27..35].copy_from_slice(&now);
                b[35..43].copy_from_slice(&now);
                b
            }
        };
        if let Some((pid, epoch, seq, transactional)) = ids {
            // attributes (transactional bit), producerId, producerEpoch, baseSequence.
            if transactional {
                b[22] |= 0x10;
            }
            b[43..51].copy_from_slice(&pid.to_be_bytes());
            b[51..53].copy_from_slice(&epoch.to_be_bytes());
            b[53..57].copy_from_slice(&seq.to_be_bytes());
        }
        records::update_crc(&mut b).map_err(|e| anyhow!("{e}"))?;
        Ok(b.freeze())
    }
}

/// Counters shared by the generator tasks and the progress line.
#[derive(Default)]
struct Counters {
    produced: AtomicU64,
    produced_bytes: AtomicU64,
    consumed: AtomicU64,
    consumed_bytes: AtomicU64,
    errors: AtomicU64,
    first_error: std::sync::Mutex<Option<String>>,
    /// With `--rate`: the most a batch was sent after it was due.
    max_lag_ns: AtomicU64,
    /// Transactional mode: EndTxn (commit) latencies, µs, and transactions committed.
    commits: std::sync::Mutex<Option<Histogram<u64>>>,
}

impl Counters {
    fn commit_took(&self, us: u64) {
        let mut h = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        let _ = h.get_or_insert_with(histogram).record(us.max(1));
    }

    fn error(&self, e: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(e);
    }
}

/// What a phase is pointed at.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Broker,
    Sink,
}

struct Plan {
    args: BenchArgs,
    produce_version: i16,
    fetch_version: i16,
    partitions: Vec<i32>,
    /// Each partition's leader ("host:port"): producers and consumers talk to leaders,
    /// one connection per leader, as Kafka clients do.
    leaders: BTreeMap<i32, String>,
    nonce: u64,
}

impl Plan {
    /// `parts` grouped by the broker to send them to: their leaders, or all to `addr` (the raw sink).
    fn by_leader(&self, parts: &[i32], target: Target, addr: &str) -> Vec<(String, Vec<i32>)> {
        let mut groups: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for &p in parts {
            let to = match target {
                Target::Broker => self.leaders.get(&p).cloned().unwrap_or_else(|| addr.to_string()),
                Target::Sink => addr.to_string(),
            };
            groups.entry(to).or_default().push(p);
        }
        groups.into_iter().collect()
    }
}

/// Writes all chunks of a request frame with vectored writes.
async fn write_chunks(w: &mut (impl AsyncWriteExt + Unpin), chunks: &[Bytes]) -> std::io::Result<()> {
    let mut idx = 0;
    let mut off = 0;
    while idx < chunks.len() {
        let slices: Vec<std::io::IoSlice<'_>> = std::iter::once(&chunks[idx][off..])
            .chain(chunks[idx + 1..].iter().map(|c| &c[..]))
            .map(std::io::IoSlice::new)
            .collect();
        let mut n = w.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while idx < chunks.len() && n >= chunks[idx].len() - off {
            n -= chunks[idx].len() - off;
            idx += 1;
            off = 0;
        }
        off += n;
    }
    Ok(())
}

/// Errors a transactional client retries: coordinator loading, moving or busy.
fn txn_retriable(code: i16) -> bool {
    matches!(code, 14..=16 | 51)
}

/// A producer's identity: its id and epoch, and in transactional mode its
/// transactional id and a connection to its transaction coordinator.
struct Identity {
    pid: i64,
    epoch: i16,
    txn: Option<(String, Client)>,
}

impl Identity {
    /// InitProducerId (after FindCoordinator for a transactional id), retried while the
    /// coordinator is not ready.
    async fn new(a: &BenchArgs, transactional_id: Option<String>) -> anyhow::Result<Identity> {
        let mut c = Client::connect_with(&a.bootstrap_server, Duration::from_secs(30), &a.security).await?;
        let until = Instant::now() + Duration::from_secs(30);
        if let Some(tid) = &transactional_id {
            loop {
                let req = FindCoordinatorRequest { key: tid.clone(), key_type: 1, ..Default::default() };
                let (r, _): (FindCoordinatorResponse, _) = c.call(3, &req).await?;
                if r.error_code == 0 {
                    c = Client::connect_with(&format!("{}:{}", r.host, r.port), Duration::from_secs(30), &a.security)
                        .await?;
                    break;
                }
                if !txn_retriable(r.error_code) || Instant::now() > until {
                    check(r.error_code, "finding the transaction coordinator", r.error_message.as_deref())?;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        loop {
            let req = InitProducerIdRequest {
                transactional_id: transactional_id.clone(),
                transaction_timeout_ms: 60_000,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            };
            let (r, _): (InitProducerIdResponse, _) = c.call(4, &req).await?;
            if r.error_code == 0 {
                return Ok(Identity {
                    pid: r.producer_id,
                    epoch: r.producer_epoch,
                    txn: transactional_id.map(|t| (t, c)),
                });
            }
            if !txn_retriable(r.error_code) || Instant::now() > until {
                check(r.error_code, "InitProducerId", None)?;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// AddPartitionsToTxn for `parts` (retried while the previous transaction's markers
    /// are written, as clients do).
    async fn begin(&mut self, topic: &str, parts: &[i32]) -> anyhow::Result<()> {
        let (pid, epoch) = (self.pid, self.epoch);
        let Some((tid, c)) = self.txn.as_mut() else { return Ok(()) };
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let req = AddPartitionsToTxnRequest {
                v3_and_below_transactional_id: tid.clone(),
                v3_and_below_producer_id: pid,
                v3_and_below_producer_epoch: epoch,
                v3_and_below_topics: vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic {
                    name: topic.to_string(),
                    partitions: parts.to_vec(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let (r, _): (AddPartitionsToTxnResponse, _) = c.call(3, &req).await?;
            let code = r
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| t.results_by_partition.iter())
                .map(|p| p.partition_error_code)
                .find(|c| *c != 0)
                .unwrap_or(0);
            if code == 0 {
                return Ok(());
            }
            if !txn_retriable(code) || Instant::now() > until {
                check(code, "AddPartitionsToTxn", None)?;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// EndTxn (commit).
    async fn commit(&mut self) -> anyhow::Result<()> {
        let (pid, epoch) = (self.pid, self.epoch);
        let Some((tid, c)) = self.txn.as_mut() else { return Ok(()) };
        let req = EndTxnRequest {
            transactional_id: tid.clone(),
            producer_id: pid,
            producer_epoch: epoch,
            committed: true,
            ..Default::default()
        };
        let (r, _): (EndTxnResponse, _) = c.call(3, &req).await?;
        check(r.error_code, "EndTxn", None)
    }
}

/// One producer connection, to `addr` for `parts` (starting at the `id`-th), carrying
/// `share` of the target rate: returns its produce-latency histogram (µs).
#[allow(clippy::too_many_arguments)]
async fn producer(
    plan: Arc<Plan>,
    addr: String,
    target: Target,
    mode: Mode,
    id: usize,
    parts: Vec<i32>,
    share: f64,
    counters: Arc<Counters>,
    deadline: Instant,
) -> anyhow::Result<Histogram<u64>> {
    let a = &plan.args;
    let mut identity = match mode {
        Mode::Plain => None,
        Mode::Idempotent => Some(Identity::new(a, None).await?),
        Mode::Transactional(_) => {
            let tid = format!("strom-bench-{:016x}-{id}-{addr}", plan.nonce);
            Some(Identity::new(a, Some(tid)).await?)
        }
    };
    let mut sequences: BTreeMap<i32, i32> = BTreeMap::new();
    let stream = a.security.open(&addr, Duration::from_secs(30)).await?;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let maker = BatchMaker::new(a, plan.nonce, 0x9E37_79B9_7F4A_7C15 ^ id as u64);
    let records_per_batch = maker.per_batch as u64;
    let payload_bytes = records_per_batch * a.record_size as u64;
    let mine: Vec<i32> = parts.iter().copied().cycle().skip(id % parts.len().max(1)).take(parts.len()).collect();
    let interval = (a.rate > 0).then(|| Duration::from_secs_f64(records_per_batch as f64 / (a.rate as f64 * share)));
    let version = plan.produce_version;
    let acks = a.acks;
    let permits = Arc::new(Semaphore::new(a.in_flight.max(1)));
    let (tx, mut rx) = mpsc::unbounded_channel::<(i32, u64, tokio::sync::OwnedSemaphorePermit)>();
    let reader_counters = counters.clone();
    let reader = tokio::spawn(async move {
        let mut hist = histogram();
        while let Some((corr, started, permit)) = rx.recv().await {
            let frame = read_frame(&mut rd).await?;
            let done = now_ns();
            drop(permit);
            if target == Target::Sink {
                if response_correlation_id(&frame) != Some(corr) {
                    bail!("raw sink answered out of order");
                }
            } else {
                let resp: ProduceResponse = decode_response(frame, version, corr)?;
                let mut failed = false;
                for t in &resp.responses {
                    for p in &t.partition_responses {
                        if p.error_code != 0 {
                            failed = true;
                            reader_counters.error(format!(
                                "produce to {}-{}: {}{}",
                                t.name,
                                p.index,
                                error_name(p.error_code),
                                p.error_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
                            ));
                        }
                    }
                }
                if failed {
                    continue;
                }
            }
            let _ = hist.record(((done.saturating_sub(started)) / 1000).max(1));
            reader_counters.produced.fetch_add(records_per_batch, Ordering::Relaxed);
            reader_counters.produced_bytes.fetch_add(payload_bytes, Ordering::Relaxed);
        }
        Ok(hist)
    });

    let start = Instant::now();
    let mut correlation = 0i32;
    let period = match mode {
        Mode::Transactional(ms) => Some(Duration::from_millis(ms.max(1))),
        _ => None,
    };
    let mut txn_until = None;
    if let (Some(idn), Some(p)) = (identity.as_mut(), period) {
        idn.begin(&a.topic, &mine).await?;
        txn_until = Some(Instant::now() + p);
    }
    let in_flight = u32::try_from(a.in_flight.max(1)).unwrap_or(u32::MAX);
    for k in 0u64.. {
        if let (Some(until), Some(idn), Some(p)) = (txn_until, identity.as_mut(), period) {
            if Instant::now() >= until && Instant::now() < deadline {
                // commit_transaction(): everything sent is acknowledged, then EndTxn.
                let t0 = Instant::now();
                drop(permits.acquire_many(in_flight).await?);
                idn.commit().await?;
                counters.commit_took(t0.elapsed().as_micros() as u64);
                idn.begin(&a.topic, &mine).await?;
                txn_until = Some(Instant::now() + p);
            }
        }
        let intended = match interval {
            Some(iv) => {
                let at = start + iv.mul_f64(k as f64);
                if at >= deadline {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                now_ns().saturating_sub(at.elapsed().as_nanos() as u64)
            }
            None => {
                if Instant::now() >= deadline {
                    break;
                }
                now_ns()
            }
        };
        let permit = if acks == 0 { None } else { Some(permits.clone().acquire_owned().await?) };
        let partition = mine[k as usize % mine.len().max(1)];
        let sent = now_ns();
        if interval.is_some() {
            counters.max_lag_ns.fetch_max(sent.saturating_sub(intended), Ordering::Relaxed);
        }
        let ids = identity.as_ref().map(|idn| {
            let seq = sequences.entry(partition).or_insert(0);
            let base = *seq;
            *seq = seq.wrapping_add(records_per_batch as i32) & i32::MAX;
            (idn.pid, idn.epoch, base, idn.txn.is_some())
        });
        let batch = maker.batch(sent, ids)?;
        let req = ProduceRequest {
            transactional_id: identity.as_ref().and_then(|i| i.txn.as_ref().map(|(t, _)| t.clone())),
            acks,
            timeout_ms: 30_000,
            topic_data: vec![produce_request::TopicProduceData {
                name: a.topic.clone(),
                partition_data: vec![produce_request::PartitionProduceData {
                    index: partition,
                    records: Some(batch),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        correlation = correlation.wrapping_add(1);
        let chunks = encode_request(&req, version, correlation, "strom-bench")?;
        write_chunks(&mut wr, &chunks).await.with_context(|| format!("writing to {addr}"))?;
        match permit {
            Some(permit) => {
                if tx.send((correlation, sent, permit)).is_err() {
                    break; // the reader failed; its error is returned below
                }
            }
            None => {
                counters.produced.fetch_add(records_per_batch, Ordering::Relaxed);
                counters.produced_bytes.fetch_add(payload_bytes, Ordering::Relaxed);
            }
        }
    }
    if let Some(idn) = identity.as_mut().filter(|i| i.txn.is_some()) {
        let t0 = Instant::now();
        drop(permits.acquire_many(in_flight).await?);
        idn.commit().await?;
        counters.commit_took(t0.elapsed().as_micros() as u64);
    }
    drop(tx);
    let hist = reader.await.map_err(|e| anyhow!("producer {id}: {e}"))??;
    wr.shutdown().await.ok();
    Ok(hist)
}

/// One consumer connection, to `addr` over `partitions`: returns its end-to-end latency
/// histogram (µs).
async fn consumer(
    plan: Arc<Plan>,
    addr: String,
    partitions: Vec<i32>,
    start: BTreeMap<i32, i64>,
    mut ends: watch::Receiver<Option<BTreeMap<i32, i64>>>,
    counters: Arc<Counters>,
    hard_stop: Instant,
) -> anyhow::Result<Histogram<u64>> {
    let a = &plan.args;
    let mut client = Client::connect_with(&addr, Duration::from_secs(30), &a.security).await?;
    let mut hist = histogram();
    let mut position: BTreeMap<i32, i64> =
        partitions.iter().map(|p| (*p, start.get(p).copied().unwrap_or(0))).collect();
    let mut topic_id = strom_protocol::Uuid::default();
    if plan.fetch_version >= 13 {
        let info = topic_infos(&mut client, Some(std::slice::from_ref(&a.topic))).await?;
        topic_id = info.first().map(|i| i.id).unwrap_or_default();
    }
    loop {
        if Instant::now() >= hard_stop {
            break;
        }
        if let Some(ends) = ends.borrow_and_update().as_ref() {
            if position.iter().all(|(p, o)| *o >= ends.get(p).copied().unwrap_or(0)) {
                break;
            }
        }
        let req = FetchRequest {
            replica_id: -1,
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: a.fetch_max_bytes,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            topics: vec![fetch_request::FetchTopic {
                topic: a.topic.clone(),
                topic_id,
                partitions: position
                    .iter()
                    .map(|(p, o)| fetch_request::FetchPartition {
                        partition: *p,
                        current_leader_epoch: -1,
                        fetch_offset: *o,
                        last_fetched_epoch: -1,
                        log_start_offset: -1,
                        partition_max_bytes: a.partition_fetch_bytes,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let resp: FetchResponse = client.call_at(plan.fetch_version, &req).await?;
        check(resp.error_code, "fetch", None)?;
        let now = now_ns();
        for t in resp.responses {
            for p in t.partitions {
                if p.error_code != 0 {
                    counters.error(format!("fetch {}-{}: {}", a.topic, p.partition_index, error_name(p.error_code)));
                    continue;
                }
                let Some(pos) = position.get_mut(&p.partition_index) else { continue };
                let Some(data) = p.records else { continue };
                for range in records::split_batches(&data) {
                    let Ok(range) = range else { break };
                    let batch = data.slice(range);
                    let Ok(header) = BatchHeader::parse(&batch) else { break };
                    let last = header.last_offset();
                    if last < *pos {
                        continue;
                    }
                    let fresh = (last + 1 - (*pos).max(header.base_offset)) as u64;
                    *pos = last + 1;
                    counters.consumed.fetch_add(fresh, Ordering::Relaxed);
                    counters.consumed_bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if let Some(stamp) = first_stamp(&batch, &header, plan.nonce) {
                        let _ = hist.record((now.saturating_sub(stamp) / 1000).max(1));
                    }
                }
            }
        }
    }
    Ok(hist)
}

/// The send time stamped in a batch's first record by this run, if it is one of ours.
fn first_stamp(batch: &Bytes, header: &BatchHeader, nonce: u64) -> Option<u64> {
    let payload = records::records_payload(batch, 256 << 20).ok()?;
    let first = RecordIter::new(payload, header.records_count).ok()?.next()?.ok()?;
    let value = first.value?;
    let stamp = value.get(..STAMP_LEN)?;
    if stamp[..8] != nonce.to_be_bytes() {
        return None;
    }
    Some(u64::from_be_bytes(stamp[8..16].try_into().ok()?))
}

/// Figures of one side (produce or consume) of a phase.
#[derive(Debug, Clone)]
struct Side {
    records: u64,
    bytes: u64,
    secs: f64,
    latency: Histogram<u64>,
    /// With `--rate`, producers only: the most a batch was sent after it was due.
    schedule_lag_ms: Option<f64>,
}

impl Side {
    fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.secs.max(1e-9)
    }
    fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs.max(1e-9)
    }
    fn ms(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return f64::NAN;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
    fn max_ms(&self) -> f64 {
        if self.latency.is_empty() {
            return f64::NAN;
        }
        self.latency.max() as f64 / 1000.0
    }
    fn line(&self, what: &str, latency: &str) -> String {
        let lag = self.schedule_lag_ms.map(|l| format!("; schedule lag max {l:.3} ms")).unwrap_or_default();
        if self.latency.is_empty() {
            return format!(
                "{what:<16} {:>12} records in {:>6.2} s = {:>11.0} records/s {:>9.1} MB/s   (no {latency} latency samples){lag}",
                self.records,
                self.secs,
                self.records_per_sec(),
                self.mb_per_sec()
            );
        }
        format!(
            "{what:<16} {:>12} records in {:>6.2} s = {:>11.0} records/s {:>9.1} MB/s   {latency} p50 {:.3} p99 {:.3} p99.9 {:.3} max {:.3} ms{lag}",
            self.records,
            self.secs,
            self.records_per_sec(),
            self.mb_per_sec(),
            self.ms(0.5),
            self.ms(0.99),
            self.ms(0.999),
            self.max_ms()
        )
    }
    fn json(&self) -> serde_json::Value {
        let num = |v: f64| if v.is_finite() { json!(v) } else { serde_json::Value::Null };
        json!({
            "records": self.records,
            "bytes": self.bytes,
            "seconds": self.secs,
            "records_per_sec": self.records_per_sec(),
            "mb_per_sec": self.mb_per_sec(),
            "schedule_lag_max_ms": self.schedule_lag_ms,
            "latency_ms": {
                "p50": num(self.ms(0.5)),
                "p99": num(self.ms(0.99)),
                "p99_9": num(self.ms(0.999)),
                "max": num(self.max_ms()),
                "samples": self.latency.len(),
            },
        })
    }
}

/// Prints a progress line every second until `done` is set.
async fn progress(label: &'static str, counters: Arc<Counters>, done: Arc<AtomicBool>) {
    let started = Instant::now();
    let mut last = (0u64, 0u64, 0u64, 0u64);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tick.tick().await;
        if done.load(Ordering::Relaxed) {
            return;
        }
        let now = (
            counters.produced.load(Ordering::Relaxed),
            counters.produced_bytes.load(Ordering::Relaxed),
            counters.consumed.load(Ordering::Relaxed),
            counters.consumed_bytes.load(Ordering::Relaxed),
        );
        eprintln!(
            "[{label} {:>4.0}s] produce {:>10} rec/s {:>8.1} MB/s | consume {:>10} rec/s {:>8.1} MB/s | errors {}",
            started.elapsed().as_secs_f64(),
            now.0 - last.0,
            (now.1 - last.1) as f64 / 1e6,
            now.2 - last.2,
            (now.3 - last.3) as f64 / 1e6,
            counters.errors.load(Ordering::Relaxed)
        );
        last = now;
    }
}

/// One measured run: producers (and consumers, against the broker) for `--duration`.
#[allow(clippy::type_complexity)]
async fn phase(
    plan: Arc<Plan>,
    addr: String,
    target: Target,
    mode: Mode,
    label: &'static str,
) -> anyhow::Result<(Option<Side>, Option<Side>, u64, Option<String>, Option<Histogram<u64>>)> {
    let a = &plan.args;
    let counters = Arc::new(Counters::default());
    let consumers = if target == Target::Broker { a.consumers } else { 0 };
    let duration = Duration::from_secs_f64(a.duration.max(0.0));

    // Consumers first, positioned before anything is produced.
    let (ends_tx, ends_rx) = watch::channel(None);
    let mut consumer_tasks = Vec::new();
    let mut setup = None;
    if consumers > 0 {
        let mut client = Client::connect_with(&a.bootstrap_server, Duration::from_secs(30), &a.security).await?;
        let parts: Vec<(String, i32)> = plan.partitions.iter().map(|p| (a.topic.clone(), *p)).collect();
        let ts = if a.from == StartAt::Earliest { -2 } else { -1 };
        let start: BTreeMap<i32, i64> =
            list_offsets(&mut client, &parts, ts).await?.into_iter().map(|((_, p), o)| (p, o)).collect();
        setup = Some((client, parts));
        let started = Instant::now();
        let hard_stop = started + duration + if a.producers > 0 { DRAIN_GRACE } else { Duration::ZERO };
        for c in 0..consumers {
            let mine: Vec<i32> = plan.partitions.iter().copied().filter(|p| *p as usize % consumers == c).collect();
            for (leader, parts) in plan.by_leader(&mine, target, &addr) {
                consumer_tasks.push(tokio::spawn(consumer(
                    plan.clone(),
                    leader,
                    parts,
                    start.clone(),
                    ends_rx.clone(),
                    counters.clone(),
                    hard_stop,
                )));
            }
        }
    }
    if a.producers == 0 {
        // Backlog read: stop at the log end as of now.
        if let Some((client, parts)) = setup.as_mut() {
            let ends = list_offsets(client, parts, -1).await?.into_iter().map(|((_, p), o)| (p, o)).collect();
            let _ = ends_tx.send(Some(ends));
        }
    }

    let done = Arc::new(AtomicBool::new(false));
    let ticker = tokio::spawn(progress(label, counters.clone(), done.clone()));
    let started = Instant::now();
    let deadline = started + duration;
    let groups = plan.by_leader(&plan.partitions, target, &addr);
    let total = plan.partitions.len().max(1) as f64;
    let mut producer_tasks = Vec::new();
    for id in 0..a.producers {
        for (to, parts) in &groups {
            let share = parts.len() as f64 / total / a.producers as f64;
            producer_tasks.push(tokio::spawn(producer(
                plan.clone(),
                to.clone(),
                target,
                mode,
                id,
                parts.clone(),
                share,
                counters.clone(),
                deadline,
            )));
        }
    }
    let mut produce_hist = histogram();
    let mut failure = None;
    for t in producer_tasks {
        match t.await {
            Ok(Ok(h)) => produce_hist.add(h).map_err(|e| anyhow!("{e}"))?,
            Ok(Err(e)) => failure = failure.or(Some(format!("{e:#}"))),
            Err(e) => failure = failure.or(Some(e.to_string())),
        }
    }
    let produce_secs = started.elapsed().as_secs_f64();
    let produce = (a.producers > 0).then(|| Side {
        records: counters.produced.load(Ordering::Relaxed),
        bytes: counters.produced_bytes.load(Ordering::Relaxed),
        secs: produce_secs,
        latency: produce_hist,
        schedule_lag_ms: (a.rate > 0).then(|| counters.max_lag_ns.load(Ordering::Relaxed) as f64 / 1e6),
    });
    if a.producers > 0 {
        if let Some((client, parts)) = setup.as_mut() {
            let ends = list_offsets(client, parts, -1).await?.into_iter().map(|((_, p), o)| (p, o)).collect();
            let _ = ends_tx.send(Some(ends));
        }
    }
    let mut e2e = histogram();
    for t in consumer_tasks {
        match t.await {
            Ok(Ok(h)) => e2e.add(h).map_err(|e| anyhow!("{e}"))?,
            Ok(Err(e)) => failure = failure.or(Some(format!("{e:#}"))),
            Err(e) => failure = failure.or(Some(e.to_string())),
        }
    }
    let consume = (consumers > 0).then(|| Side {
        records: counters.consumed.load(Ordering::Relaxed),
        bytes: counters.consumed_bytes.load(Ordering::Relaxed),
        secs: started.elapsed().as_secs_f64(),
        latency: e2e,
        schedule_lag_ms: None,
    });
    done.store(true, Ordering::Relaxed);
    ticker.abort();
    let errors = counters.errors.load(Ordering::Relaxed);
    let first = counters.first_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let commits = counters.commits.lock().unwrap_or_else(|p| p.into_inner()).take();
    Ok((produce, consume, errors, failure.or(first), commits))
}

/// The raw sink as a child process: (child, address).
fn spawn_sink(a: &BenchArgs, dir: &std::path::Path) -> anyhow::Result<(std::process::Child, String)> {
    let exe = std::env::current_exe().context("locating the strom binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("raw-sink").arg("--dir").arg(dir);
    if a.acks == 0 {
        cmd.arg("--no-reply");
    }
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn().context("starting the raw sink")?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow!("raw sink has no stdout"))?;
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let addr = line.trim().strip_prefix("listening on ").map(str::to_string);
    match addr {
        Some(addr) => Ok((child, addr)),
        None => {
            let _ = child.kill();
            bail!("raw sink did not report its address (got {line:?})")
        }
    }
}

/// Each of `partitions`' leader address, waiting (up to 30 s) until all have one and
/// every leader itself knows it leads them: a topic just created in a cluster reaches
/// brokers' metadata one after the other.
async fn partition_leaders(
    admin: &mut Client,
    topic: &str,
    partitions: &[i32],
) -> anyhow::Result<BTreeMap<i32, String>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let topics = [topic.to_string()];
    let view = |md: &strom_protocol::MetadataResponse| -> (BTreeMap<i32, String>, BTreeMap<i32, i32>) {
        let addr: BTreeMap<i32, String> =
            md.brokers.iter().map(|b| (b.node_id, format!("{}:{}", b.host, b.port))).collect();
        let leader: BTreeMap<i32, i32> = md
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .filter(|p| p.error_code == 0 && p.leader_id >= 0)
            .map(|p| (p.partition_index, p.leader_id))
            .collect();
        (addr, leader)
    };
    loop {
        let (addr, leader) = view(&crate::cli::metadata(admin, Some(&topics)).await?);
        let leaders: BTreeMap<i32, String> =
            leader.iter().filter_map(|(p, id)| Some((*p, addr.get(id)?.clone()))).collect();
        let mut agreed = partitions.iter().all(|p| leaders.contains_key(p));
        if agreed {
            let mut checked = std::collections::BTreeSet::new();
            for (p, to) in &leaders {
                if !checked.insert(to.clone()) {
                    continue;
                }
                let mut c = Client::connect_with(to, Duration::from_secs(10), &admin.security().clone()).await?;
                let (_, theirs) = view(&crate::cli::metadata(&mut c, Some(&topics)).await?);
                agreed &= leaders.keys().all(|q| leaders[q] != *to || theirs.get(q) == leader.get(q));
                agreed &= theirs.get(p) == leader.get(p);
            }
        }
        if agreed {
            return Ok(leaders);
        }
        if Instant::now() >= deadline {
            bail!("{topic}: not every partition has a leader that knows it after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `strom bench`.
pub async fn bench(mut a: BenchArgs) -> anyhow::Result<()> {
    a.security = crate::cli::load_security(a.command_config.as_deref())?;
    if a.producers == 0 && a.consumers == 0 {
        bail!("nothing to do: --producers and --consumers are both 0");
    }
    if !matches!(a.acks, -1..=1) {
        bail!("--acks must be 0, 1 or -1");
    }
    if (a.idempotent || a.transaction_ms > 0) && a.acks != -1 {
        bail!("idempotent and transactional producers need --acks -1 (as Kafka's enable.idempotence)");
    }
    if a.record_size < STAMP_LEN && a.consumers > 0 {
        eprintln!("note: records under {STAMP_LEN} bytes carry no send time: no end-to-end latency");
    }
    let mut admin = Client::connect_with(&a.bootstrap_server, Duration::from_secs(30), &a.security).await?;
    let produce_version = admin.version::<ProduceRequest>(12)?;
    let fetch_version = admin.version::<FetchRequest>(12)?;
    let (partitions, created) = topic_partitions(&mut admin, &a).await?;
    let threads = a.threads.unwrap_or(a.producers + a.consumers);
    let nonce = getrandom::u64().unwrap_or(0x5EED_0F57_A000);
    let leaders = partition_leaders(&mut admin, &a.topic, &partitions).await?;
    let plan = Arc::new(Plan { args: a.clone(), produce_version, fetch_version, partitions, leaders, nonce });
    let per_batch = (a.batch_size / a.record_size.max(1)).max(1);
    eprintln!(
        "strom bench: {} on {} ({} partitions); {} producers, {} consumers; {} B records, {per_batch} per batch; \
         acks={}; compression {:?}; rate {}; {} s; produce v{produce_version}, fetch v{fetch_version}",
        a.topic,
        a.bootstrap_server,
        plan.partitions.len(),
        a.producers,
        a.consumers,
        a.record_size,
        a.acks,
        a.compression,
        if a.rate == 0 { "unlimited".to_string() } else { format!("{} records/s", a.rate) },
        a.duration
    );

    let mut sink = None;
    if a.raw_sink && a.producers > 0 {
        let base = a.sink_dir.clone().unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("strom-raw-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (mut child, addr) = spawn_sink(&a, &dir)?;
        let result = phase(plan.clone(), addr, Target::Sink, Mode::Plain, "raw sink").await;
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        let (produce, _, errors, failure, _) = result?;
        if let Some(f) = failure {
            bail!("raw sink phase: {f}");
        }
        if errors > 0 {
            bail!("raw sink phase: {errors} errors");
        }
        sink = produce;
    }
    let mode = match (a.transaction_ms, a.idempotent) {
        (0, false) => Mode::Plain,
        (0, true) => Mode::Idempotent,
        (ms, _) => Mode::Transactional(ms),
    };
    // Transactions are measured against idempotent producers on the same broker, topic
    // and load, in the same run.
    let mut idempotent = None;
    if matches!(mode, Mode::Transactional(_)) && a.producers > 0 {
        let (p, _, errors, failure, _) =
            phase(plan.clone(), a.bootstrap_server.clone(), Target::Broker, Mode::Idempotent, "idempotent").await?;
        if let Some(f) = failure {
            bail!("idempotent phase: {f}");
        }
        if errors > 0 {
            bail!("idempotent phase: {errors} errors");
        }
        idempotent = p;
    }
    // The same load without --command-config first, through the baseline listener (whose
    // Metadata advertises its own addresses for the partitions' leaders).
    let mut baseline = None;
    if let Some(base) = a.baseline_bootstrap.clone().filter(|_| a.producers > 0) {
        let mut args = a.clone();
        args.bootstrap_server = base.clone();
        args.security = strom_client::Security::plaintext();
        let mut base_admin = Client::connect_with(&base, Duration::from_secs(30), &args.security).await?;
        let leaders = partition_leaders(&mut base_admin, &a.topic, &plan.partitions).await?;
        let base_plan = Arc::new(Plan {
            args,
            produce_version,
            fetch_version,
            partitions: plan.partitions.clone(),
            leaders,
            nonce,
        });
        let (p, _, errors, failure, _) = phase(base_plan, base, Target::Broker, mode, "baseline").await?;
        if let Some(f) = failure {
            bail!("baseline phase: {f}");
        }
        if errors > 0 {
            bail!("baseline phase: {errors} errors");
        }
        baseline = p;
    }
    if let Some(base) = a.baseline_topic.clone().filter(|_| a.producers > 0) {
        let mut args = a.clone();
        args.topic = base.clone();
        let partitions = topic_partitions(&mut admin, &args).await?.0;
        let leaders = partition_leaders(&mut admin, &base, &partitions).await?;
        let base_plan = Arc::new(Plan { args, produce_version, fetch_version, partitions, leaders, nonce });
        let (p, _, errors, failure, _) =
            phase(base_plan, a.bootstrap_server.clone(), Target::Broker, mode, "baseline").await?;
        if let Some(f) = failure {
            bail!("baseline phase: {f}");
        }
        if errors > 0 {
            bail!("baseline phase: {errors} errors");
        }
        baseline = p;
    }
    let (produce, consume, errors, failure, commits) =
        phase(plan.clone(), a.bootstrap_server.clone(), Target::Broker, mode, "broker").await?;
    let baseline_ratio = match (&produce, &baseline) {
        (Some(p), Some(b)) if b.bytes > 0 => Some(p.mb_per_sec() / b.mb_per_sec()),
        _ => None,
    };
    let commit_ms = |q: f64| commits.as_ref().filter(|h| !h.is_empty()).map(|h| h.value_at_quantile(q) as f64 / 1000.0);
    let txn_ratio = match (&produce, &idempotent) {
        (Some(p), Some(i)) if i.bytes > 0 => Some(p.mb_per_sec() / i.mb_per_sec()),
        _ => None,
    };
    if created && !a.keep_topic {
        let req = DeleteTopicsRequest {
            topic_names: vec![a.topic.clone()],
            topics: vec![delete_topics_request::DeleteTopicState { name: Some(a.topic.clone()), ..Default::default() }],
            timeout_ms: 30_000,
            ..Default::default()
        };
        if let Err(e) = admin.call::<_, DeleteTopicsResponse>(6, &req).await {
            eprintln!("warning: deleting topic {}: {e:#}", a.topic);
        }
    }
    let ratio = match (&produce, &sink) {
        (Some(p), Some(s)) if s.bytes > 0 => Some(p.mb_per_sec() / s.mb_per_sec()),
        _ => None,
    };
    if a.json {
        let summary = json!({
            "bootstrap": a.bootstrap_server,
            "topic": a.topic,
            "partitions": plan.partitions.len(),
            "producers": a.producers,
            "consumers": a.consumers,
            "record_size": a.record_size,
            "records_per_batch": per_batch,
            "acks": a.acks,
            "compression": format!("{:?}", a.compression).to_lowercase(),
            "rate": a.rate,
            "duration_s": a.duration,
            "threads": threads,
            "raw_sink": sink.as_ref().map(Side::json),
            "produce": produce.as_ref().map(Side::json),
            "consume": consume.as_ref().map(Side::json),
            "produce_vs_raw_sink": ratio,
            "idempotent": idempotent.as_ref().map(Side::json),
            "transaction_ms": a.transaction_ms,
            "transactions": commits.as_ref().map(|h| h.len()),
            "commit_latency_ms": commits.as_ref().map(|_| json!({"p50": commit_ms(0.5), "p99": commit_ms(0.99), "max": commit_ms(1.0)})),
            "transactional_vs_idempotent": txn_ratio,
            "security_protocol": a.security.protocol(),
            "baseline": baseline.as_ref().map(Side::json),
            "produce_vs_baseline": baseline_ratio,
            "errors": errors,
            "first_error": failure,
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!(
            "records are {} B values; MB = 10^6 bytes (produce: record values; consume: batches read)",
            a.record_size
        );
        if let Some(s) = &sink {
            println!("{}", s.line("raw-sink produce", "latency"));
        }
        if let Some(i) = &idempotent {
            println!("{}", i.line("idempotent", "latency"));
        }
        if let Some(b) = &baseline {
            println!("{}", b.line("baseline produce", "latency"));
        }
        if let Some(p) = &produce {
            let what = if a.transaction_ms > 0 { "transactional" } else { "produce" };
            println!("{}", p.line(what, "latency"));
        }
        if let (Some(h), Some(p50), Some(p99)) = (&commits, commit_ms(0.5), commit_ms(0.99)) {
            println!(
                "transactions: {} committed every {} ms; commit (flush + EndTxn) p50 {p50:.3} p99 {p99:.3} ms",
                h.len(),
                a.transaction_ms
            );
        }
        if let Some(r) = txn_ratio {
            println!("transactional throughput = {:.1}% of idempotent", r * 100.0);
        }
        if let Some(r) = ratio {
            println!("produce throughput = {:.1}% of the raw sink", r * 100.0);
        }
        match (baseline_ratio, &a.baseline_topic) {
            (Some(r), Some(base)) => {
                println!("produce throughput on {} = {:.1}% of the baseline (topic {base})", a.topic, r * 100.0)
            }
            (Some(r), None) => println!(
                "produce throughput over {} = {:.1}% of the baseline ({} without --command-config)",
                a.security.protocol(),
                r * 100.0,
                a.baseline_bootstrap.as_deref().unwrap_or("")
            ),
            _ => {}
        }
        if let Some(c) = &consume {
            println!("{}", c.line("consume", "end-to-end"));
        }
        println!("errors: {errors}{}", failure.as_deref().map(|f| format!(" (first: {f})")).unwrap_or_default());
    }
    if let Some(f) = failure {
        bail!("{f}");
    }
    Ok(())
}

/// `strom raw-sink`: appends every request frame to a file (one per connection) and
/// answers each with an 8-byte frame holding its correlation id.
pub fn raw_sink(a: SinkArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&a.listen).with_context(|| format!("binding {}", a.listen))?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let counter = AtomicU64::new(0);
    std::thread::scope(|s| {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let path = a.dir.join(format!("sink-{n}.bin"));
            let no_reply = a.no_reply;
            s.spawn(move || -> std::io::Result<()> {
                let _ = stream.set_nodelay(true);
                let mut file = std::fs::File::create(&path)?;
                let mut reader = std::io::BufReader::with_capacity(1 << 20, stream.try_clone()?);
                let mut frame = Vec::new();
                loop {
                    let mut size = [0u8; 4];
                    if reader.read_exact(&mut size).is_err() {
                        return Ok(());
                    }
                    let len = i32::from_be_bytes(size).max(0) as usize;
                    frame.clear();
                    frame.extend_from_slice(&size);
                    frame.resize(4 + len, 0);
                    reader.read_exact(&mut frame[4..])?;
                    file.write_all(&frame)?;
                    if !no_reply {
                        // Response: size 4, then the request's correlation id (bytes 4..8 of the header).
                        let mut resp = [0u8, 0, 0, 4, 0, 0, 0, 0];
                        if let Some(corr) = frame.get(8..12) {
                            resp[4..].copy_from_slice(corr);
                        }
                        stream.write_all(&resp)?;
                    }
                }
            });
        }
    });
    Ok(())
}
