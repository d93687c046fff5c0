//! Produce (key 0): validate each partition's batch as Kafka does and append it.
//!
//! v0–2 are advertised (see [`super::ApiRange::advertised_min`]) but refused, as Kafka 4
//! does. On a single node every appended batch is immediately committed, so acks=1 and
//! acks=-1 answer at the same point; in a cluster acks=-1 waits for the ISR (ADR 0010).
//! acks=0 gets no response at all.
//!
//! Validation, in Kafka's order (`ProduceRequest.validateRecords`, then `LogValidator`);
//! the first failing rule decides the partition's error and nothing is appended:
//!
//! | rule | error |
//! |---|---|
//! | records present, magic 2, exactly one batch | INVALID_RECORD |
//! | batch length matches the bytes sent | CORRUPT_MESSAGE |
//! | size ≤ `max.message.bytes` | MESSAGE_TOO_LARGE |
//! | CRC-32C over attributes..end; known codec bits | CORRUPT_MESSAGE |
//! | zstd only from Produce v7 | UNSUPPORTED_COMPRESSION_TYPE |
//! | not a control batch; `recordsCount == lastOffsetDelta + 1 > 0`; base sequence ≥ 0 with a producer id | INVALID_RECORD |
//! | a transactional batch that opens a transaction here is in the producer's transaction at its coordinator (KIP-890 part 1, ADR 0012) | INVALID_TXN_STATE |
//! | records decompress within the bound | CORRUPT_MESSAGE |
//! | every record parses, the count matches, offset delta of record i is i | INVALID_RECORD (+ record errors, v8+) |
//! | a key on every record of a compacted topic | INVALID_RECORD (+ record errors) |
//! | CreateTime timestamps within `message.timestamp.before/after.max.ms` of now | INVALID_TIMESTAMP (+ record errors) |
//! | idempotent sequence (storage, ADR 0003) | OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH, UNKNOWN_PRODUCER_ID |
//!
//! Batches are stored as produced (the request buffer's bytes, not a copy). Three things
//! rewrite them: `message.timestamp.type = LogAppendTime` (maxTimestamp := now,
//! timestamp-type bit set, CRC recomputed), a `compression.type` naming a codec other
//! than the batch's (records recompressed), and a maxTimestamp that is not the largest
//! record timestamp (set to it, as Kafka's LogValidator does; Sarama sends -1).

use bytes::{Bytes, BytesMut};
use strom_protocol::produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse};
use strom_protocol::records::{
    rebuild_batch, records_payload, set_max_timestamp, split_batches, verify_crc, BatchBuilder, BatchError,
    BatchHeader, Compression, Record, RecordIter, TimestampType, MAGIC_OFFSET, MAGIC_V2,
};
use strom_protocol::{ProduceRequest, ProduceResponse, Uuid};

use super::authz::Authz;
use super::ApiRange;
use crate::error::ErrorCode;
use crate::metadata::{Partition, Topic};
use crate::node::Node;
use crate::registry::wire::{Invalid, SideCheck, Strategy};
use crate::registry::Registry;
use crate::security::acl::op;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 0, min: 3, max: 13, advertised_min: 0 };

/// Decompressed records are bounded by `max(this, DECOMPRESSION_RATIO × max.message.bytes)`:
/// a compression bomb is refused (CORRUPT_MESSAGE) after at most that many bytes.
pub const DECOMPRESSED_LIMIT_FLOOR: usize = 64 << 20;
/// See [`DECOMPRESSED_LIMIT_FLOOR`].
pub const DECOMPRESSION_RATIO: usize = 16;
/// Record errors reported per partition at most (the first ones).
const MAX_RECORD_ERRORS: usize = 100;

/// A topic's settings that shape validation, resolved once per request.
#[derive(Debug, Clone)]
pub struct Policy {
    pub max_bytes: usize,
    /// `None` = `producer` (keep the batch's codec).
    pub codec: Option<Compression>,
    pub log_append_time: bool,
    pub before_ms: i64,
    pub after_ms: i64,
    /// `flush.messages`: fsync once this many records are unflushed (1 = before every
    /// acknowledgement, with group commit).
    pub flush_messages: i64,
    /// `cleanup.policy` includes `compact`: every record must have a key.
    pub compacted: bool,
    /// Schema validation (`confluent.{key,value}.schema.validation`), when the topic asks.
    pub schema: Option<SchemaPolicy>,
}

/// A topic's schema validation settings (ADR 0015).
#[derive(Debug, Clone)]
pub struct SchemaPolicy {
    pub topic: String,
    pub key: Option<SideCheck>,
    pub value: Option<SideCheck>,
    /// `strom.dlq.topic`: invalid records go there instead of failing the batch.
    pub dlq: Option<String>,
    pub registry: std::sync::Arc<Registry>,
}

impl SchemaPolicy {
    /// The topic's settings; `None` when neither side is validated. Only topic-level
    /// overrides can turn validation on, so topics without them pay two map lookups.
    fn of(node: &Node, topic: &Topic) -> Option<SchemaPolicy> {
        let on = |k: &str| topic.configs.get(k).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let (key_on, value_on) = (on("confluent.key.schema.validation"), on("confluent.value.schema.validation"));
        if !key_on && !value_on {
            return None;
        }
        let side = |enabled: bool, strategy: &str, payload: &str| {
            enabled.then(|| SideCheck {
                strategy: topic.configs.get(strategy).and_then(|c| Strategy::parse(c)).unwrap_or(Strategy::Topic),
                payload: on(payload),
            })
        };
        Some(SchemaPolicy {
            topic: topic.name.to_string(),
            key: side(key_on, "confluent.key.subject.name.strategy", "strom.key.schema.validation.payload"),
            value: side(value_on, "confluent.value.subject.name.strategy", "strom.value.schema.validation.payload"),
            dlq: topic.configs.get("strom.dlq.topic").map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            registry: node.registry.clone(),
        })
    }
}

/// A record routed to the dead-letter topic instead of the log, and why.
#[derive(Debug, Clone)]
pub struct Dead {
    pub record: Record,
    pub why: Invalid,
    /// The batch's base timestamp (the record's timestamp is relative to it).
    pub base_timestamp: i64,
}

impl Policy {
    /// The policy of `topic` on `node`.
    pub fn of(node: &Node, topic: &Topic) -> Policy {
        let get = |k: &str| node.meta.topic_setting(topic, k);
        let codec = match get("compression.type").as_str() {
            "uncompressed" => Some(Compression::None),
            "gzip" => Some(Compression::Gzip),
            "snappy" => Some(Compression::Snappy),
            "lz4" => Some(Compression::Lz4),
            "zstd" => Some(Compression::Zstd),
            _ => None,
        };
        Policy {
            max_bytes: get("max.message.bytes").parse().unwrap_or(node.meta.config.message_max_bytes),
            codec,
            log_append_time: get("message.timestamp.type") == "LogAppendTime",
            before_ms: get("message.timestamp.before.max.ms").parse().unwrap_or(i64::MAX),
            after_ms: get("message.timestamp.after.max.ms").parse().unwrap_or(i64::MAX),
            flush_messages: get("flush.messages").parse().unwrap_or(i64::MAX),
            compacted: get("cleanup.policy").split(',').any(|p| p.trim() == "compact"),
            schema: SchemaPolicy::of(node, topic),
        }
    }

    fn decompressed_limit(&self) -> usize {
        DECOMPRESSED_LIMIT_FLOOR.max(self.max_bytes.saturating_mul(DECOMPRESSION_RATIO))
    }
}

/// Why a partition's batch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    /// (index of the record in the batch, what is wrong with it).
    pub record_errors: Vec<(i32, String)>,
}

fn reject(code: ErrorCode, message: impl Into<String>) -> Rejection {
    Rejection { code, message: message.into(), record_errors: Vec::new() }
}

fn corrupt(e: BatchError) -> Rejection {
    reject(ErrorCode::CorruptMessage, e.to_string())
}

/// Validates one partition's records and returns the batch to append: the producer's
/// bytes, or a rewrite when the topic asks for LogAppendTime or another codec.
pub fn validate(records: &Bytes, version: i16, policy: &Policy, now_ms: i64) -> Result<Bytes, Rejection> {
    validate_routed(records, version, policy, now_ms).map(|(batch, _)| batch)
}

/// [`validate`], for a topic with a dead-letter topic: also returns the records that
/// failed schema validation, which the returned batch leaves out (it keeps the original
/// offset and sequence range, with gaps where they were, as compaction leaves them).
pub fn validate_routed(
    records: &Bytes,
    version: i16,
    policy: &Policy,
    now_ms: i64,
) -> Result<(Bytes, Vec<Dead>), Rejection> {
    if records.is_empty() {
        return Err(reject(ErrorCode::InvalidRecord, "no record batch"));
    }
    if let Some(&magic) = records.get(MAGIC_OFFSET) {
        if magic as i8 != MAGIC_V2 {
            return Err(reject(ErrorCode::InvalidRecord, format!("record batch magic {magic} is not 2")));
        }
    }
    let mut batches = split_batches(records);
    let span = match batches.next() {
        Some(Ok(span)) => span,
        Some(Err(e)) => return Err(corrupt(e)),
        None => return Err(reject(ErrorCode::InvalidRecord, "no record batch")),
    };
    if batches.next().is_some() {
        return Err(reject(ErrorCode::InvalidRecord, "produce v3+ carries exactly one record batch per partition"));
    }
    let batch = records.slice(span);
    let len = batch.len();
    if len > policy.max_bytes {
        return Err(reject(ErrorCode::MessageTooLarge, format!("batch of {len} bytes exceeds {}", policy.max_bytes)));
    }
    let header = BatchHeader::parse(&batch).map_err(corrupt)?;
    verify_crc(&batch).map_err(corrupt)?;
    let codec = header.compression().map_err(corrupt)?;
    if codec == Compression::Zstd && version < 7 {
        return Err(reject(ErrorCode::UnsupportedCompressionType, "zstd needs produce v7 or later"));
    }
    if header.is_control() {
        return Err(reject(ErrorCode::InvalidRecord, "clients may not send control batches"));
    }
    if header.records_count <= 0 || i64::from(header.last_offset_delta) + 1 != i64::from(header.records_count) {
        return Err(reject(
            ErrorCode::InvalidRecord,
            format!(
                "inconsistent batch: {} records but lastOffsetDelta {}",
                header.records_count, header.last_offset_delta
            ),
        ));
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(reject(ErrorCode::InvalidRecord, format!("invalid base sequence {}", header.base_sequence)));
    }
    if header.is_transactional() && header.producer_id < 0 {
        return Err(reject(ErrorCode::InvalidRecord, "transactional batch without a producer id"));
    }

    let payload = records_payload(&batch, policy.decompressed_limit()).map_err(corrupt)?;
    let (max_record_ts, dead) = check_records(&header, payload.clone(), policy, now_ms)?;
    // Kafka sets a batch's maxTimestamp itself (LogValidator): LogAppendTime, or the
    // largest record timestamp. Some producers send -1 or the last record's time there;
    // kept as sent, it would break ListOffsets by time and time-based retention.
    let stamp = if policy.log_append_time {
        Some((TimestampType::LogAppendTime, now_ms))
    } else {
        max_record_ts
            .filter(|&ts| ts != header.max_timestamp || header.timestamp_type() != TimestampType::CreateTime)
            .map(|ts| (TimestampType::CreateTime, ts))
    };

    // The producer's bytes are appended as they arrived (a slice of the request buffer);
    // only a rewrite needs a buffer of its own.
    let mut out = match policy.codec {
        _ if !dead.is_empty() => without(&header, &payload, &dead, policy.codec.unwrap_or(codec))?,
        Some(target) if target != codec => rebuild_batch(&header, &payload, target)
            .map_err(|e| reject(ErrorCode::UnknownServerError, e.to_string()))?,
        _ if stamp.is_some() => BytesMut::from(&batch[..]),
        _ => return Ok((batch, dead)),
    };
    if let Some((kind, ts)) = stamp {
        set_max_timestamp(&mut out, kind, ts).map_err(corrupt)?;
    }
    Ok((out.freeze(), dead))
}

/// The batch without the `dead` records: same header (producer, sequence, attributes,
/// base timestamp, lastOffsetDelta), the surviving records with their own deltas.
fn without(header: &BatchHeader, payload: &Bytes, dead: &[Dead], codec: Compression) -> Result<BytesMut, Rejection> {
    let mut b = BatchBuilder::new(header.base_timestamp)
        .producer(header.producer_id, header.producer_epoch, header.base_sequence)
        .transactional(header.is_transactional())
        .compression(codec)
        .last_offset_delta(header.last_offset_delta);
    let iter = RecordIter::new(payload.clone(), header.records_count).map_err(corrupt)?;
    for r in iter {
        let r = r.map_err(corrupt)?;
        if !dead.iter().any(|d| d.record.offset_delta == r.offset_delta) {
            b.push(&r);
        }
    }
    Ok(b.build())
}

/// Record-level rules: each record parses, the count is right, offset deltas run
/// 0, 1, 2, …, records of a compacted topic have keys, and (CreateTime) timestamps are
/// within bounds. Returns the largest record timestamp.
///
/// As Kafka's `LogValidator.validateRecord`, each record gets at most one error, the key
/// check first; any timestamp error makes the batch INVALID_TIMESTAMP, other record
/// errors INVALID_RECORD, and every failing record is listed (up to a bound).
fn check_records(
    header: &BatchHeader,
    payload: Bytes,
    policy: &Policy,
    now_ms: i64,
) -> Result<(Option<i64>, Vec<Dead>), Rejection> {
    let iter =
        RecordIter::new(payload, header.records_count).map_err(|e| reject(ErrorCode::InvalidRecord, e.to_string()))?;
    // Schema validation reads the registry once per batch.
    let image = policy.schema.as_ref().map(|s| (s, s.registry.read()));
    let mut dead = Vec::new();
    let mut record_errors = Vec::new();
    let (mut failed, mut bad_timestamps) = (0usize, 0usize);
    let mut max_ts = None::<i64>;
    let earliest = now_ms.saturating_sub(policy.before_ms);
    let latest = now_ms.saturating_add(policy.after_ms);
    for (i, record) in iter.enumerate() {
        let index = i32::try_from(i).unwrap_or(i32::MAX);
        let record = record.map_err(|e| Rejection {
            code: ErrorCode::InvalidRecord,
            message: format!("record {index}: {e}"),
            record_errors: vec![(index, e.to_string())],
        })?;
        if record.offset_delta != index {
            let msg = format!("offset delta {} where {index} was expected", record.offset_delta);
            return Err(Rejection {
                code: ErrorCode::InvalidRecord,
                message: format!("record {index}: {msg}"),
                record_errors: vec![(index, msg)],
            });
        }
        let ts = header.base_timestamp.saturating_add(record.timestamp_delta);
        max_ts = Some(max_ts.map_or(ts, |m| m.max(ts)));
        let error = if policy.compacted && record.key.is_none() {
            Some("Compacted topic cannot accept message without key".to_string())
        } else if !policy.log_append_time && (ts < earliest || ts > latest) {
            bad_timestamps += 1;
            Some(format!("timestamp {ts} is outside [{earliest}, {latest}]"))
        } else if let Some((sp, img)) = &image {
            let key = sp.key.map_or(Ok(()), |c| img.check(&sp.topic, true, c, record.key.as_deref()));
            match key
                .and_then(|()| sp.value.map_or(Ok(()), |c| img.check(&sp.topic, false, c, record.value.as_deref())))
            {
                Ok(()) => None,
                Err(why) if sp.dlq.is_some() => {
                    dead.push(Dead { record, why, base_timestamp: header.base_timestamp });
                    None
                }
                Err(why) => Some(why.reason),
            }
        } else {
            None
        };
        if let Some(e) = error {
            failed += 1;
            if record_errors.len() < MAX_RECORD_ERRORS {
                record_errors.push((index, e));
            }
        }
    }
    if bad_timestamps > 0 {
        return Err(Rejection {
            code: ErrorCode::InvalidTimestamp,
            message: format!("{bad_timestamps} record(s) with a timestamp out of range"),
            record_errors,
        });
    }
    if failed > 0 {
        return Err(Rejection {
            code: ErrorCode::InvalidRecord,
            message: format!("One or more records have been rejected due to {failed} record errors in total"),
            record_errors,
        });
    }
    Ok((max_ts, dead))
}

/// What every partition of one request shares.
#[derive(Debug, Clone, Copy)]
struct Call {
    version: i16,
    now_ms: i64,
    /// Set schema failures aside for a second look (see `handle`) instead of answering.
    defer: bool,
}

/// A partition set aside by `defer`: (topic index, partition index, partition, policy, guard).
type Deferred = (usize, usize, std::sync::Arc<Partition>, Policy, Option<(i64, u64)>);

/// A partition and the offset (exclusive) that must be committed before acks=all answers.
type Committed = (std::sync::Arc<Partition>, i64);

/// Appends one partition's batch; also returns the offset (exclusive) that must be durable
/// before the response may go out, when `flush.messages` asks for an fsync.
fn append(
    node: &Node,
    p: &Partition,
    records: Option<&Bytes>,
    call: Call,
    policy: &Policy,
    guard: Option<(i64, u64)>,
) -> Option<(PartitionProduceResponse, Option<i64>, Option<Committed>)> {
    let Call { version, now_ms, defer } = call;
    let mut sync = None;
    let mut dlq_commit = None;
    let mut resp = PartitionProduceResponse { index: p.index, base_offset: -1, ..Default::default() };
    let validated = records
        .ok_or_else(|| reject(ErrorCode::InvalidRecord, "null records"))
        .and_then(|r| validate_routed(r, version, policy, now_ms));
    if defer && policy.schema.is_some() {
        // This broker's copy of the registry may trail its leader: a record failing
        // validation is looked at again once it has caught up (see `handle`).
        match &validated {
            Err(r) if r.code == ErrorCode::InvalidRecord => return None,
            Ok((_, dead)) if !dead.is_empty() => return None,
            _ => {}
        }
    }
    let outcome = validated.and_then(|(batch, dead)| {
        if let Some(sp) = policy.schema.as_ref().filter(|_| !dead.is_empty() && !is_duplicate(p, &batch, now_ms)) {
            // The dead letters are written first: once the producer hears success,
            // every record of its batch is in one topic or the other.
            dlq_commit = Some(route_dead(node, p, sp, &dead)?);
        }
        p.append_guarded(&batch, guard).map_err(|(code, message)| reject(code, message))
    });
    match outcome {
        Ok(info) => {
            resp.base_offset = info.base_offset;
            if !info.duplicate {
                let records = (info.last_offset - info.base_offset + 1).max(0);
                node.metrics.produced(&p.topic, records as u64, info.bytes as u64);
                if p.count_unflushed(records) >= policy.flush_messages {
                    sync = Some(info.last_offset + 1);
                }
            }
            if policy.log_append_time {
                resp.log_append_time_ms = if info.duplicate { info.max_timestamp } else { now_ms };
            }
            if info.duplicate {
                tracing::debug!(partition = ?p, base_offset = info.base_offset, "duplicate batch answered with its original offsets");
            }
        }
        Err(r) => {
            tracing::debug!(partition = ?p, error = %r.message, "produce rejected");
            if r.code == ErrorCode::InvalidRecord && policy.schema.is_some() {
                node.metrics.schema_rejected(&p.topic);
            }
            resp.error_code = r.code.code();
            resp.error_message = Some(r.message);
            resp.record_errors = r
                .record_errors
                .into_iter()
                .map(|(batch_index, msg)| BatchIndexAndErrorMessage {
                    batch_index,
                    batch_index_error_message: Some(msg),
                    ..Default::default()
                })
                .collect();
        }
    }
    resp.log_start_offset = p.log_start_offset();
    let ok = resp.error_code == 0;
    Some((resp, sync, dlq_commit.filter(|_| ok)))
}

/// Whether an idempotent batch is a retry of one already appended (its dead letters
/// were routed then; the append answers with the original offsets).
fn is_duplicate(p: &Partition, batch: &[u8], now_ms: i64) -> bool {
    use strom_storage::producer_state::SequenceCheck;
    let Ok(h) = BatchHeader::parse(batch) else { return false };
    h.producer_id >= 0
        && p.with_log(|log| matches!(log.producer_state().check(&h, now_ms), Ok(SequenceCheck::Duplicate(_))))
}

/// Appends the records that failed schema validation to the topic's dead-letter topic,
/// with headers saying why; returns the DLQ partition and the offset to wait for under
/// acks=all. The DLQ partition is the source partition's index modulo the DLQ's count
/// (another led here if that one is not: the broker can only append where it leads).
fn route_dead(node: &Node, p: &Partition, sp: &SchemaPolicy, dead: &[Dead]) -> Result<Committed, Rejection> {
    let name = sp.dlq.as_deref().unwrap_or_default();
    let refuse = |why: String| {
        let errors = dead.iter().map(|d| (d.record.offset_delta, d.why.reason.clone())).collect();
        Rejection { code: ErrorCode::InvalidRecord, message: why, record_errors: errors }
    };
    let topic = node.meta.topic(name).ok_or_else(|| refuse(format!("dead-letter topic {name} does not exist")))?;
    let n = topic.partitions.len().max(1);
    let first = usize::try_from(p.index).unwrap_or(0) % n;
    let target = (0..n)
        .map(|i| (first + i) % n)
        .filter_map(|i| topic.partitions.get(i))
        .find(|dp| node.meta.leads(&topic, dp.index))
        .ok_or_else(|| refuse(format!("no partition of dead-letter topic {name} is led by this broker")))?;
    let base = dead.first().map_or(0, |d| d.base_timestamp.saturating_add(d.record.timestamp_delta));
    let mut batch = BatchBuilder::new(base);
    for (i, d) in dead.iter().enumerate() {
        let mut headers = d.record.headers.clone();
        let h = |k: &str, v: String| (k.to_string(), Some(Bytes::from(v)));
        headers.push(h("strom.dlq.error", d.why.reason.clone()));
        headers.push(h("strom.dlq.topic", p.topic.to_string()));
        headers.push(h("strom.dlq.partition", p.index.to_string()));
        if let Some(id) = d.why.schema_id {
            headers.push(h("strom.dlq.schema.id", id.to_string()));
        }
        batch.push(&Record {
            offset_delta: i32::try_from(i).unwrap_or(i32::MAX),
            timestamp_delta: d.base_timestamp.saturating_add(d.record.timestamp_delta).saturating_sub(base),
            key: d.record.key.clone(),
            value: d.record.value.clone(),
            headers,
        });
    }
    let info = target.append(&batch.build()).map_err(|(_, m)| refuse(format!("dead-letter topic {name}: {m}")))?;
    node.metrics.dead_lettered(&p.topic, dead.len() as u64);
    node.metrics.produced(&target.topic, dead.len() as u64, info.bytes as u64);
    tracing::debug!(topic = %p.topic, dlq = name, records = dead.len(), "records routed to the dead-letter topic");
    Ok((target.clone(), info.last_offset + 1))
}

/// Appends every partition's batch; `None` when acks=0.
pub async fn handle(node: &Node, az: &Authz<'_>, version: i16, req: ProduceRequest) -> Option<ProduceResponse> {
    let acks_ok = matches!(req.acks, -1..=1);
    // Kafka: WRITE on the transactional id (all partitions fail without it), then WRITE
    // on each topic, checked before the topic's existence.
    let txn_denied =
        req.transactional_id.as_deref().filter(|t| !t.is_empty()).is_some_and(|t| !az.txn_id(op::WRITE, t));
    let now_ms = strom_storage::now_ms();
    let mut syncs: Vec<(usize, usize, std::sync::Arc<Partition>, i64)> = Vec::new();
    let mut commits: Vec<(usize, usize, std::sync::Arc<Partition>, i64)> = Vec::new();
    // KIP-890 part 1: a transactional batch that would open a transaction in a partition
    // is appended only if the coordinator has the partition in the producer's ongoing
    // transaction, so a late or zombie produce cannot leave a transaction no marker ends.
    let (unverified, guards) = verify_transactional(node, version, &req, now_ms).await;
    // Records of validated topics that fail against a registry copy that may be behind
    // its leader are set aside and checked again after catching up.
    let defer = node.registry.may_lag();
    let mut deferred: Vec<Deferred> = Vec::new();
    let call = Call { version, now_ms, defer };
    let mut responses: Vec<TopicProduceResponse> = req
        .topic_data
        .iter()
        .enumerate()
        .map(|(ti, td)| {
            let topic: Option<std::sync::Arc<Topic>> =
                if version >= 13 { node.meta.topic_by_id(&td.topic_id) } else { node.meta.topic(&td.name) };
            let policy = topic.as_ref().map(|t| Policy::of(node, t));
            let missing = if version >= 13 { ErrorCode::UnknownTopicId } else { ErrorCode::UnknownTopicOrPartition };
            let denied = if txn_denied {
                Some(ErrorCode::TransactionalIdAuthorizationFailed)
            } else {
                let name = topic.as_ref().map_or(td.name.as_str(), |t| &t.name);
                let named = version < 13 || topic.is_some();
                (named && !az.topic(op::WRITE, name)).then_some(ErrorCode::TopicAuthorizationFailed)
            };
            let partition_responses = td
                .partition_data
                .iter()
                .enumerate()
                .map(|(pi, pd)| {
                    let err = |code: ErrorCode| PartitionProduceResponse {
                        index: pd.index,
                        error_code: code.code(),
                        base_offset: -1,
                        ..Default::default()
                    };
                    if !acks_ok {
                        return err(ErrorCode::InvalidRequiredAcks);
                    }
                    if let Some(code) = denied {
                        return err(code);
                    }
                    let (Some(t), Some(policy)) = (&topic, &policy) else { return err(missing) };
                    let Some(p) = usize::try_from(pd.index).ok().and_then(|i| t.partitions.get(i)) else {
                        return err(ErrorCode::UnknownTopicOrPartition);
                    };
                    if !node.meta.leads(t, pd.index) {
                        return err(ErrorCode::NotLeaderOrFollower);
                    }
                    // acks=all needs min.insync.replicas in the ISR before anything is written.
                    if req.acks == -1 && !p.enough_replicas() {
                        return err(ErrorCode::NotEnoughReplicas);
                    }
                    if let Some((_, _, code)) = unverified.iter().find(|(t, i, _)| *t == ti && *i == pi) {
                        return err(*code);
                    }
                    let guard = guards.iter().find(|(t, i, _)| *t == ti && *i == pi).map(|(_, _, g)| *g);
                    let records = pd.records.as_ref();
                    match append(node, p, records, call, policy, guard) {
                        Some(done) => settle(done, ti, pi, p, &mut syncs, &mut commits),
                        None => {
                            deferred.push((ti, pi, p.clone(), policy.clone(), guard));
                            err(ErrorCode::UnknownServerError) // replaced below
                        }
                    }
                })
                .collect();
            TopicProduceResponse {
                name: td.name.clone(),
                topic_id: topic.as_ref().map(|t| t.id).unwrap_or(Uuid::ZERO),
                partition_responses,
                ..Default::default()
            }
        })
        .collect();
    if !deferred.is_empty() {
        node.registry.refresh().await;
        for (ti, pi, p, policy, guard) in deferred {
            let Some(pd) = req.topic_data.get(ti).and_then(|t| t.partition_data.get(pi)) else { continue };
            let done = append(node, &p, pd.records.as_ref(), Call { defer: false, ..call }, &policy, guard);
            if let Some(done) = done {
                let resp = settle(done, ti, pi, &p, &mut syncs, &mut commits);
                if let Some(r) = responses.get_mut(ti).and_then(|t| t.partition_responses.get_mut(pi)) {
                    *r = resp;
                }
            }
        }
    }
    // Group commit: every partition that must be durable before the acknowledgement
    // waits for an fsync, shared with whatever else was appended meanwhile.
    for (ti, pi, p, target) in syncs {
        if let Err(code) = p.sync_through(target).await {
            if let Some(r) = responses.get_mut(ti).and_then(|t| t.partition_responses.get_mut(pi)) {
                r.error_code = code.code();
                r.base_offset = -1;
                r.error_message = Some("the write could not be made durable".into());
            }
        }
    }
    // acks=all: wait for the ISR (ADR 0010). On a single node the HW is the log end, so
    // this returns at once.
    let timeout = std::time::Duration::from_millis(u64::try_from(req.timeout_ms).unwrap_or(0).min(300_000));
    let deadline = tokio::time::Instant::now() + timeout;
    for (ti, pi, p, target) in commits.into_iter().filter(|_| req.acks == -1) {
        if let Err(code) = p.wait_committed(target, deadline).await {
            if let Some(r) = responses.get_mut(ti).and_then(|t| t.partition_responses.get_mut(pi)) {
                if r.error_code == 0 {
                    r.error_code = code.code();
                    if code != ErrorCode::NotEnoughReplicasAfterAppend {
                        r.base_offset = -1;
                    }
                }
            }
        }
    }
    if req.acks == 0 {
        return None;
    }
    Some(ProduceResponse { responses, ..Default::default() })
}

/// Files an appended partition's fsync and acks=all waits; its response.
fn settle(
    (resp, sync, dlq): (PartitionProduceResponse, Option<i64>, Option<Committed>),
    ti: usize,
    pi: usize,
    p: &std::sync::Arc<Partition>,
    syncs: &mut Vec<(usize, usize, std::sync::Arc<Partition>, i64)>,
    commits: &mut Vec<(usize, usize, std::sync::Arc<Partition>, i64)>,
) -> PartitionProduceResponse {
    if let Some(target) = sync {
        syncs.push((ti, pi, p.clone(), target));
    }
    if let Some((dp, target)) = dlq {
        // The dead letters are part of the acknowledgement too (acks=all waits for them).
        commits.push((ti, pi, dp, target));
    }
    if resp.error_code == 0 {
        // Everything up to the log end as of now (this batch, or the original of a
        // retried duplicate) must be committed before an acks=all answer.
        commits.push((ti, pi, p.clone(), p.log_end_offset()));
    }
    resp
}

/// A partition (topic index, partition index) that is not appended, with its error.
type Refused = (usize, usize, ErrorCode);
/// A verified partition and its guard: the producer id and its markers seen before the
/// verification (see [`Partition::append_guarded`]).
type Guard = (usize, usize, (i64, u64));

/// A partition to verify: topic and partition indexes, name and number, markers seen.
type ToVerify = (usize, usize, String, i32, u64);

/// KIP-890 part 1: every transactional batch of `req` that would open a transaction in
/// its partition is checked with the producer's coordinator (per producer id and epoch);
/// returns the partitions refused and the guards of those verified. A transactional
/// batch in a request without a transactional id cannot be verified: refused.
async fn verify_transactional(
    node: &Node,
    version: i16,
    req: &ProduceRequest,
    now_ms: i64,
) -> (Vec<Refused>, Vec<Guard>) {
    let tid = req.transactional_id.as_deref().filter(|t| !t.is_empty());
    let mut refused = Vec::new();
    // (producer id, epoch) → the partitions to verify with their markers-seen counts.
    let mut ask: std::collections::BTreeMap<(i64, i16), Vec<ToVerify>> = Default::default();
    for (ti, td) in req.topic_data.iter().enumerate() {
        let topic = if version >= 13 { node.meta.topic_by_id(&td.topic_id) } else { node.meta.topic(&td.name) };
        let Some(topic) = topic else { continue };
        for (pi, pd) in td.partition_data.iter().enumerate() {
            let Some(h) = pd.records.as_ref().and_then(|r| BatchHeader::parse(r).ok()) else { continue };
            if !h.is_transactional() || h.producer_id < 0 {
                continue;
            }
            if tid.is_none() {
                refused.push((ti, pi, ErrorCode::InvalidTxnState));
                continue;
            }
            let Some(p) = usize::try_from(pd.index).ok().and_then(|i| topic.partitions.get(i)) else { continue };
            let (open, markers) = p.with_log(|l| {
                let state = l.producer_state();
                let open = state
                    .entry(h.producer_id, now_ms)
                    .is_some_and(|e| e.epoch == h.producer_epoch && e.txn_first_offset.is_some());
                (open, state.markers_seen(h.producer_id))
            });
            if !open {
                ask.entry((h.producer_id, h.producer_epoch)).or_default().push((
                    ti,
                    pi,
                    topic.name.to_string(),
                    pd.index,
                    markers,
                ));
            }
        }
    }
    let mut guards = Vec::new();
    let Some(tid) = tid else { return (refused, guards) };
    for ((pid, epoch), parts) in ask {
        let names: Vec<(String, i32)> = parts.iter().map(|(_, _, t, p, _)| (t.clone(), *p)).collect();
        let codes = super::transactions::verify(node, tid, pid, epoch, &names).await;
        for ((ti, pi, _, _, markers), code) in parts.into_iter().zip(codes) {
            if code == ErrorCode::None {
                guards.push((ti, pi, (pid, markers)));
            } else {
                refused.push((ti, pi, code));
            }
        }
    }
    (refused, guards)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::records::BatchBuilder;

    const NOW: i64 = 1_700_000_000_000;

    fn policy() -> Policy {
        Policy {
            max_bytes: 1 << 20,
            codec: None,
            log_append_time: false,
            before_ms: i64::MAX,
            after_ms: 3_600_000,
            flush_messages: i64::MAX,
            compacted: false,
            schema: None,
        }
    }

    fn batch() -> Bytes {
        let mut b = BatchBuilder::new(NOW);
        b.add(Some(b"k"), Some(b"v"));
        b.build().freeze()
    }

    fn code(r: Result<Bytes, Rejection>) -> ErrorCode {
        r.map(|_| ErrorCode::None).unwrap_or_else(|e| e.code)
    }

    #[test]
    fn one_valid_batch_is_stored_as_produced() {
        // Not a copy: the very bytes of the request buffer go on to the log.
        let request = batch();
        let out = validate(&request, 9, &policy(), NOW).unwrap();
        assert_eq!(out, request);
        assert_eq!(out.as_ptr(), request.as_ptr());
    }

    #[test]
    fn a_wrong_max_timestamp_is_set_to_the_largest_record_timestamp() {
        let mut b = BatchBuilder::new(NOW - 5000);
        b.add(None, Some(b"a"));
        b.push(&strom_protocol::records::Record {
            offset_delta: 1,
            timestamp_delta: 3000,
            key: None,
            value: None,
            headers: Vec::new(),
        });
        b.push(&strom_protocol::records::Record {
            offset_delta: 2,
            timestamp_delta: 1000,
            key: None,
            value: None,
            headers: Vec::new(),
        });
        let mut sent = b.build();
        // What Sarama 1.22 sends: -1 (kafkajs sends the last record's timestamp).
        set_max_timestamp(&mut sent, TimestampType::CreateTime, -1).unwrap();
        let out = validate(&sent.freeze(), 9, &policy(), NOW).unwrap();
        let h = BatchHeader::parse(&out).unwrap();
        assert_eq!(h.max_timestamp, NOW - 2000);
        assert_eq!(h.timestamp_type(), TimestampType::CreateTime);
        verify_crc(&out).unwrap();
    }

    #[test]
    fn two_batches_are_an_invalid_record() {
        let two = Bytes::from([batch(), batch()].concat());
        assert_eq!(code(validate(&two, 9, &policy(), NOW)), ErrorCode::InvalidRecord);
    }

    #[test]
    fn oversized_batches_are_message_too_large() {
        let p = Policy { max_bytes: 10, ..policy() };
        assert_eq!(code(validate(&batch(), 9, &p, NOW)), ErrorCode::MessageTooLarge);
    }

    #[test]
    fn garbage_is_corrupt() {
        assert_eq!(code(validate(&Bytes::from_static(&[1, 2, 3]), 9, &policy(), NOW)), ErrorCode::CorruptMessage);
        assert_eq!(code(validate(&Bytes::new(), 9, &policy(), NOW)), ErrorCode::InvalidRecord);
    }

    #[test]
    fn log_append_time_rewrites_max_timestamp_and_crc() {
        let p = Policy { log_append_time: true, ..policy() };
        let out = validate(&batch(), 9, &p, NOW + 5).unwrap();
        let h = BatchHeader::parse(&out).unwrap();
        assert_eq!((h.timestamp_type(), h.max_timestamp), (TimestampType::LogAppendTime, NOW + 5));
        verify_crc(&out).unwrap();
    }

    #[test]
    fn a_different_topic_codec_recompresses() {
        let p = Policy { codec: Some(Compression::Gzip), ..policy() };
        let out = validate(&batch(), 9, &p, NOW).unwrap();
        assert_eq!(BatchHeader::parse(&out).unwrap().compression(), Ok(Compression::Gzip));
        verify_crc(&out).unwrap();
        // Same codec as the topic: stored as produced.
        assert_eq!(validate(&out, 9, &p, NOW).unwrap(), out.to_vec());
    }

    #[test]
    fn keyless_records_on_a_compacted_topic_are_invalid_with_record_errors() {
        let p = Policy { compacted: true, ..policy() };
        assert_eq!(code(validate(&batch(), 9, &p, NOW)), ErrorCode::None, "keyed records are fine");
        let mut b = BatchBuilder::new(NOW);
        b.add(Some(b"k"), Some(b"v"));
        b.add(None, Some(b"v"));
        b.add(Some(b"k"), None);
        b.add(None, None);
        let r = validate(&b.build().freeze(), 9, &p, NOW).unwrap_err();
        assert_eq!(r.code, ErrorCode::InvalidRecord);
        assert_eq!(r.record_errors.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 3]);
        assert!(r.record_errors[0].1.contains("without key"), "{r:?}");
    }

    #[test]
    fn future_timestamps_are_invalid_with_record_errors() {
        let mut b = BatchBuilder::new(NOW + 7_200_000);
        b.add(None, Some(b"v"));
        let r = validate(&b.build().freeze(), 9, &policy(), NOW).unwrap_err();
        assert_eq!(r.code, ErrorCode::InvalidTimestamp);
        assert_eq!(r.record_errors.len(), 1);
        assert_eq!(r.record_errors[0].0, 0);
    }
}
