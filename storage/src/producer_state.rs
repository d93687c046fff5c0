//! Idempotent-producer state of one partition: per producer id, its epoch and
//! the metadata of its last [`BATCHES_TO_RETAIN`] batches (ADR 0003).
//!
//! The rules are Kafka's (`ProducerAppendInfo`):
//! * a batch without a producer id (`producerId < 0`) is not checked;
//! * a batch with a producer id but a negative base sequence is invalid;
//! * a batch matching a cached batch of the same producer and epoch (same
//!   first and last sequence) is a duplicate: answered with the cached
//!   offsets, not appended;
//! * an epoch older than the producer's is refused (stale producer);
//! * a newer epoch must start at sequence 0 (the producer was re-initialised);
//! * the same epoch must continue at `lastSeq + 1`, where `i32::MAX` is
//!   followed by 0;
//! * a producer id with no state must start at sequence 0.
//!
//! Entries expire `producer.id.expiration.ms` after the producer's last append,
//! by the broker's clock (not the batch timestamps, which a producer may set to
//! any time in the past); batches replayed on recovery count as seen at
//! recovery time. The state is rebuilt on open from the newest snapshot plus a replay of
//! the batch headers after it, through [`ProducerStateManager::update`], the
//! same function appends use.
//!
//! Transactions (ADR 0012): a transactional data batch of a producer without an open
//! transaction opens one at its base offset; a marker (control batch) closes it and is
//! reported as a [`CompletedTxn`]. The first offset of the earliest open transaction
//! bounds the last stable offset. Producers with an open transaction never expire.
//!
//! SNAPSHOT FORMAT (version [`SNAPSHOT_FORMAT_VERSION`]), file
//! `{offset:020}.snapshot`, big-endian:
//! `b"STPS" | u16 version | u32 crc32c(everything after it) | i64 offset |
//! u32 entries | entries…`, an entry being `i64 producerId | i16 epoch |
//! i64 lastTimestamp | i64 txnFirstOffset (-1: none) | i32 coordinatorEpoch |
//! u8 batches (≤ 5) | batches…`, a batch being
//! `i32 firstSeq | i32 lastSeq | i64 baseOffset | i32 lastOffsetDelta`.
//! Version 1 (before transactions) lacks `txnFirstOffset` and `coordinatorEpoch` and
//! still loads: it cannot describe an open transaction.

use std::collections::{BTreeMap, HashMap, VecDeque};

use strom_protocol::records::{BatchHeader, TxnMarker};

/// Batches remembered per producer for duplicate detection (Kafka's value).
pub const BATCHES_TO_RETAIN: usize = 5;
/// Version of the snapshot format described above.
pub const SNAPSHOT_FORMAT_VERSION: u16 = 2;
const SNAPSHOT_MAGIC: [u8; 4] = *b"STPS";
const SNAPSHOT_HEADER_LEN: usize = 4 + 2 + 4;
const ENTRY_LEN_V1: usize = 8 + 2 + 8 + 1;
const ENTRY_LEN: usize = ENTRY_LEN_V1 + 8 + 4;
const BATCH_META_LEN: usize = 4 + 4 + 8 + 4;

/// What is remembered of an appended idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset_delta: i32,
}

impl BatchMetadata {
    /// Offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(i64::from(self.last_offset_delta))
    }
}

/// One producer's state in a partition. Equality ignores [`ProducerEntry::markers`],
/// which is not persisted.
#[derive(Debug, Clone, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Broker time (ms) of the producer's last append (drives expiration).
    pub last_timestamp: i64,
    /// Oldest first; at most [`BATCHES_TO_RETAIN`].
    pub batches: VecDeque<BatchMetadata>,
    /// First offset of the producer's open transaction in this partition.
    pub txn_first_offset: Option<i64>,
    /// Coordinator epoch of the last marker written for this producer (-1: none).
    pub coordinator_epoch: i32,
    /// Markers appended for this producer since the state was loaded (in memory only): a
    /// partition leader that verified a transactional batch with the coordinator appends
    /// it only if no marker came in between (KIP-890's verification guard).
    pub markers: u64,
}

impl PartialEq for ProducerEntry {
    fn eq(&self, o: &Self) -> bool {
        (self.epoch, self.last_timestamp, &self.batches, self.txn_first_offset, self.coordinator_epoch)
            == (o.epoch, o.last_timestamp, &o.batches, o.txn_first_offset, o.coordinator_epoch)
    }
}

impl Eq for ProducerEntry {}

/// A transaction of one producer that a marker ended in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    pub commit: bool,
}

/// Why a transaction marker was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    /// The marker's producer epoch is older than the producer's.
    #[error("marker for producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    StaleEpoch { producer_id: i64, epoch: i16, current: i16 },
    /// A deposed transaction coordinator: its epoch is older than the last marker's.
    #[error("marker for producer {producer_id} from coordinator epoch {epoch}, older than {current}")]
    StaleCoordinator { producer_id: i64, epoch: i32, current: i32 },
}

/// Why an idempotent batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SequenceError {
    /// The batch's epoch is older than the producer's current epoch.
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    StaleEpoch { producer_id: i64, epoch: i16, current: i16 },
    /// A gap or reordering: the batch does not continue the sequence.
    #[error("producer {producer_id} epoch {epoch}: sequence {got} does not follow {last:?}")]
    OutOfOrder { producer_id: i64, epoch: i16, got: i32, last: Option<i32> },
    /// No state for this producer and the batch does not start at 0.
    #[error("no state for producer {producer_id}; its batch starts at sequence {got}, not 0")]
    UnknownProducer { producer_id: i64, got: i32 },
    /// A producer id with a negative base sequence.
    #[error("producer {producer_id} sent base sequence {got}")]
    InvalidSequence { producer_id: i64, got: i32 },
}

/// Outcome of a successful check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append the batch.
    Append,
    /// A retry of a batch already in the log at these offsets.
    Duplicate(BatchMetadata),
}

/// `baseSequence + lastOffsetDelta` with Kafka's wrap-around at `i32::MAX`.
pub fn last_sequence(base: i32, last_offset_delta: i32) -> i32 {
    if base > i32::MAX - last_offset_delta {
        last_offset_delta - (i32::MAX - base) - 1
    } else {
        base + last_offset_delta
    }
}

fn in_sequence(last: i32, next: i32) -> bool {
    (next == last.wrapping_add(1) && next != i32::MIN) || (next == 0 && last == i32::MAX)
}

/// Per-partition producer state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: first offset → producer id.
    ongoing: BTreeMap<i64, i64>,
    expiration_ms: i64,
}

impl ProducerStateManager {
    /// Empty state; entries expire after `expiration_ms` without a batch.
    pub fn new(expiration_ms: i64) -> ProducerStateManager {
        ProducerStateManager { producers: HashMap::new(), ongoing: BTreeMap::new(), expiration_ms }
    }

    /// First offset of the earliest open transaction: the last stable offset is the
    /// smaller of this and the high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Open transactions, oldest first: (first offset, producer id).
    pub fn ongoing_transactions(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(&o, &p)| (o, p))
    }

    /// The live entry of `producer_id`.
    pub fn entry(&self, producer_id: i64, now_ms: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id).filter(|e| !self.expired(e, now_ms))
    }

    /// Markers appended for `producer_id` since the state was loaded (see
    /// [`ProducerEntry::markers`]).
    pub fn markers_seen(&self, producer_id: i64) -> u64 {
        self.producers.get(&producer_id).map_or(0, |e| e.markers)
    }

    /// Every producer with state here, by id (DescribeProducers).
    pub fn producers(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> + '_ {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    /// Number of producers with state (expired ones included until removed).
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Whether no producer has state.
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    fn expired(&self, e: &ProducerEntry, now_ms: i64) -> bool {
        e.txn_first_offset.is_none() && now_ms.saturating_sub(e.last_timestamp) >= self.expiration_ms
    }

    /// Drops entries whose last append is `producer.id.expiration.ms` old, unless their
    /// transaction is still open (it must end with a marker first, as in Kafka).
    pub fn remove_expired(&mut self, now_ms: i64) {
        let exp = self.expiration_ms;
        self.producers.retain(|_, e| e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < exp);
    }

    /// Decides whether a marker for `producer_id` at `epoch` may be appended: not from a
    /// producer epoch or a coordinator epoch older than the last seen (Kafka's
    /// `appendEndTxnMarker` checks).
    pub fn check_marker(&self, producer_id: i64, epoch: i16, marker: TxnMarker) -> Result<(), MarkerError> {
        let Some(e) = self.producers.get(&producer_id) else { return Ok(()) };
        if epoch < e.epoch {
            return Err(MarkerError::StaleEpoch { producer_id, epoch, current: e.epoch });
        }
        if marker.coordinator_epoch < e.coordinator_epoch {
            return Err(MarkerError::StaleCoordinator {
                producer_id,
                epoch: marker.coordinator_epoch,
                current: e.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Decides what to do with a batch before it is appended.
    pub fn check(&self, h: &BatchHeader, now_ms: i64) -> Result<SequenceCheck, SequenceError> {
        let (producer_id, epoch, first) = (h.producer_id, h.producer_epoch, h.base_sequence);
        // Markers carry no sequence; their checks are `check_marker`'s.
        if producer_id < 0 || h.is_control() {
            return Ok(SequenceCheck::Append);
        }
        // A coordinator's own transactional batches (TxnOffsetCommit's offsets in
        // `__consumer_offsets`) carry no sequence, as Kafka writes them; clients' batches
        // without one are refused before they get here.
        if first < 0 && h.is_transactional() {
            // No sequence to check, but a fenced producer's epoch is still refused.
            return match self.entry(producer_id, now_ms) {
                Some(e) if epoch < e.epoch => Err(SequenceError::StaleEpoch { producer_id, epoch, current: e.epoch }),
                _ => Ok(SequenceCheck::Append),
            };
        }
        if first < 0 {
            return Err(SequenceError::InvalidSequence { producer_id, got: first });
        }
        let Some(e) = self.entry(producer_id, now_ms) else {
            return if first == 0 {
                Ok(SequenceCheck::Append)
            } else {
                Err(SequenceError::UnknownProducer { producer_id, got: first })
            };
        };
        if epoch < e.epoch {
            return Err(SequenceError::StaleEpoch { producer_id, epoch, current: e.epoch });
        }
        let last = last_sequence(first, h.last_offset_delta.max(0));
        if epoch == e.epoch {
            if let Some(dup) = e.batches.iter().find(|b| b.first_seq == first && b.last_seq == last) {
                return Ok(SequenceCheck::Duplicate(*dup));
            }
        }
        let ok = match e.batches.back() {
            _ if epoch != e.epoch => first == 0,
            Some(prev) => in_sequence(prev.last_seq, first),
            None => true,
        };
        if ok {
            Ok(SequenceCheck::Append)
        } else {
            let last = if epoch == e.epoch { e.batches.back().map(|b| b.last_seq) } else { None };
            Err(SequenceError::OutOfOrder { producer_id, epoch, got: first, last })
        }
    }

    /// Records a batch that is now in the log (`h.base_offset` assigned),
    /// appended (or replayed) at broker time `seen_ms`; `marker` is the batch's
    /// transaction marker when it is a control batch ([`TxnMarker::parse`]). Returns the
    /// transaction a marker ended.
    pub fn update(&mut self, h: &BatchHeader, marker: Option<TxnMarker>, seen_ms: i64) -> Option<CompletedTxn> {
        if h.producer_id < 0 {
            return None;
        }
        if h.is_control() {
            let marker = marker?;
            let e = self.entry_for(h, seen_ms);
            e.coordinator_epoch = e.coordinator_epoch.max(marker.coordinator_epoch);
            e.markers += 1;
            let first = e.txn_first_offset.take()?;
            self.ongoing.remove(&first);
            return Some(CompletedTxn {
                producer_id: h.producer_id,
                first_offset: first,
                last_offset: h.base_offset,
                commit: marker.commit,
            });
        }
        if h.base_sequence < 0 && !h.is_transactional() {
            return None;
        }
        let e = self.entry_for(h, seen_ms);
        if h.is_transactional() && e.txn_first_offset.is_none() {
            e.txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, h.producer_id);
        }
        if h.base_sequence < 0 {
            return None;
        }
        let e = self.producers.get_mut(&h.producer_id)?;
        e.batches.push_back(BatchMetadata {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h.base_sequence, h.last_offset_delta.max(0)),
            base_offset: h.base_offset,
            last_offset_delta: h.last_offset_delta,
        });
        while e.batches.len() > BATCHES_TO_RETAIN {
            e.batches.pop_front();
        }
        None
    }

    /// The entry of `h`'s producer, created if new, moved to `h`'s epoch (a new epoch
    /// forgets the old one's batches) and stamped `seen_ms`.
    fn entry_for(&mut self, h: &BatchHeader, seen_ms: i64) -> &mut ProducerEntry {
        let e = self.producers.entry(h.producer_id).or_insert_with(|| ProducerEntry {
            epoch: h.producer_epoch,
            last_timestamp: seen_ms,
            batches: VecDeque::new(),
            txn_first_offset: None,
            coordinator_epoch: -1,
            markers: 0,
        });
        if e.epoch != h.producer_epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        e.last_timestamp = seen_ms;
        e
    }

    /// Encodes the state as covering the log up to (excluding) `offset`.
    pub fn encode_snapshot(&self, offset: i64) -> Vec<u8> {
        let mut body = Vec::with_capacity(12 + self.producers.len() * (ENTRY_LEN + 2 * BATCH_META_LEN));
        body.extend_from_slice(&offset.to_be_bytes());
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(e) = self.producers.get(&id) else { continue };
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.push(e.batches.len().min(BATCHES_TO_RETAIN) as u8);
            for b in e.batches.iter().take(BATCHES_TO_RETAIN) {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.base_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset_delta.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + body.len());
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot: the offset it covers up to and the state.
    pub fn decode_snapshot(data: &[u8], expiration_ms: i64) -> Result<(i64, ProducerStateManager), &'static str> {
        let mut r = Reader { data, pos: 0 };
        if r.take(4)? != SNAPSHOT_MAGIC {
            return Err("bad magic");
        }
        let version = r.u16()?;
        if version != 1 && version != SNAPSHOT_FORMAT_VERSION {
            return Err("unknown snapshot version");
        }
        let crc = r.u32()?;
        if crc32c::crc32c(data.get(SNAPSHOT_HEADER_LEN..).unwrap_or(&[])) != crc {
            return Err("crc mismatch");
        }
        let offset = r.i64()?;
        let count = r.u32()? as usize;
        let entry_len = if version == 1 { ENTRY_LEN_V1 } else { ENTRY_LEN };
        if count > r.remaining() / entry_len {
            return Err("entry count exceeds file size");
        }
        let mut producers = HashMap::with_capacity(count);
        let mut ongoing = BTreeMap::new();
        for _ in 0..count {
            let id = r.i64()?;
            let epoch = r.u16()? as i16;
            let last_timestamp = r.i64()?;
            let (txn_first_offset, coordinator_epoch) = if version == 1 {
                (None, -1)
            } else {
                let first = r.i64()?;
                (Some(first).filter(|&o| o >= 0), r.u32()? as i32)
            };
            if let Some(first) = txn_first_offset {
                if ongoing.insert(first, id).is_some() {
                    return Err("two open transactions at one offset");
                }
            }
            let n = usize::from(r.take(1)?.first().copied().unwrap_or(0));
            if n > BATCHES_TO_RETAIN {
                return Err("too many batches in an entry");
            }
            let mut batches = VecDeque::with_capacity(n);
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: r.u32()? as i32,
                    last_seq: r.u32()? as i32,
                    base_offset: r.i64()?,
                    last_offset_delta: r.u32()? as i32,
                });
            }
            producers.insert(
                id,
                ProducerEntry { epoch, last_timestamp, batches, txn_first_offset, coordinator_epoch, markers: 0 },
            );
        }
        if r.remaining() != 0 {
            return Err("trailing bytes");
        }
        Ok((offset, ProducerStateManager { producers, ongoing, expiration_ms }))
    }
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        let s = self.data.get(self.pos..self.pos + n).ok_or("truncated snapshot")?;
        self.pos += n;
        Ok(s)
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        self.take(2).and_then(|s| s.try_into().map_err(|_| "truncated snapshot")).map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        self.take(4).and_then(|s| s.try_into().map_err(|_| "truncated snapshot")).map(u32::from_be_bytes)
    }

    fn i64(&mut self) -> Result<i64, &'static str> {
        self.take(8).and_then(|s| s.try_into().map_err(|_| "truncated snapshot")).map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;
    const DAY: i64 = 86_400_000;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 49,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: NOW,
            max_timestamp: NOW,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: records,
        }
    }

    /// Checks and, if accepted, "appends" at `*leo`.
    fn produce(s: &mut ProducerStateManager, leo: &mut i64, h: BatchHeader) -> Result<SequenceCheck, SequenceError> {
        let r = s.check(&h, NOW)?;
        if r == SequenceCheck::Append {
            let h = BatchHeader { base_offset: *leo, ..h };
            s.update(&h, None, NOW);
            *leo = h.last_offset() + 1;
        }
        Ok(r)
    }

    #[test]
    fn in_order_batches_are_appended_and_retries_get_their_original_offsets() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0);
        for i in 0..8 {
            assert_eq!(produce(&mut s, &mut leo, header(1, 0, i * 10, 10)), Ok(SequenceCheck::Append));
        }
        assert_eq!(leo, 80);
        // The last 5 batches (sequences 30..80) are cached: a retry of each is a duplicate.
        for i in 3..8 {
            let dup = produce(&mut s, &mut leo, header(1, 0, i * 10, 10)).unwrap();
            let SequenceCheck::Duplicate(meta) = dup else { panic!("batch {i} not a duplicate: {dup:?}") };
            assert_eq!((meta.base_offset, meta.last_offset()), (i64::from(i) * 10, i64::from(i) * 10 + 9));
        }
        assert_eq!(leo, 80, "duplicates append nothing");
        // Older than the cache: out of order, as Kafka answers.
        assert!(matches!(produce(&mut s, &mut leo, header(1, 0, 20, 10)), Err(SequenceError::OutOfOrder { .. })));
        // Same first sequence, different length: not a duplicate, and not in order either.
        assert!(matches!(produce(&mut s, &mut leo, header(1, 0, 70, 5)), Err(SequenceError::OutOfOrder { .. })));
    }

    #[test]
    fn gaps_are_out_of_order() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0);
        produce(&mut s, &mut leo, header(1, 0, 0, 5)).unwrap();
        let err = produce(&mut s, &mut leo, header(1, 0, 6, 1)).unwrap_err();
        assert_eq!(err, SequenceError::OutOfOrder { producer_id: 1, epoch: 0, got: 6, last: Some(4) });
        assert_eq!(leo, 5);
    }

    #[test]
    fn unknown_producers_must_start_at_zero() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0);
        assert_eq!(
            produce(&mut s, &mut leo, header(9, 0, 3, 1)),
            Err(SequenceError::UnknownProducer { producer_id: 9, got: 3 })
        );
        assert_eq!(produce(&mut s, &mut leo, header(9, 0, 0, 1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn epochs_fence_old_producers_and_new_epochs_restart_at_zero() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0);
        produce(&mut s, &mut leo, header(1, 3, 0, 2)).unwrap();
        assert!(matches!(produce(&mut s, &mut leo, header(1, 2, 2, 1)), Err(SequenceError::StaleEpoch { .. })));
        assert!(matches!(produce(&mut s, &mut leo, header(1, 4, 2, 1)), Err(SequenceError::OutOfOrder { .. })));
        assert_eq!(produce(&mut s, &mut leo, header(1, 4, 0, 1)), Ok(SequenceCheck::Append));
        // The old epoch's cache is gone; a retry under the old epoch is now stale.
        assert!(matches!(produce(&mut s, &mut leo, header(1, 3, 0, 2)), Err(SequenceError::StaleEpoch { .. })));
    }

    #[test]
    fn sequences_wrap_from_i32_max_to_zero() {
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        let mut s = ProducerStateManager::new(DAY);
        let start = BatchHeader { base_offset: 0, ..header(1, 0, i32::MAX - 4, 3) };
        // Seed state as if the producer had got this far (sequence is i32::MAX - 2 next).
        s.update(&start, None, NOW);
        let mut leo = 3;
        assert_eq!(produce(&mut s, &mut leo, header(1, 0, i32::MAX - 1, 4)), Ok(SequenceCheck::Append));
        // That batch covered MAX-1, MAX, 0, 1: the next starts at 2.
        assert_eq!(produce(&mut s, &mut leo, header(1, 0, 2, 1)), Ok(SequenceCheck::Append));
        let mut s2 = ProducerStateManager::new(DAY);
        s2.update(&header(1, 0, i32::MAX, 1), None, NOW);
        assert_eq!(s2.check(&header(1, 0, 0, 1), NOW), Ok(SequenceCheck::Append));
        assert!(s2.check(&header(1, 0, i32::MIN, 1), NOW).is_err());
    }

    #[test]
    fn non_idempotent_batches_are_not_checked_and_negative_sequences_are_invalid() {
        let s = ProducerStateManager::new(DAY);
        assert_eq!(s.check(&header(-1, -1, -1, 3), NOW), Ok(SequenceCheck::Append));
        assert!(matches!(s.check(&header(5, 0, -1, 3), NOW), Err(SequenceError::InvalidSequence { .. })));
    }

    #[test]
    fn expired_producers_are_unknown() {
        let (mut s, mut leo) = (ProducerStateManager::new(1000), 0);
        produce(&mut s, &mut leo, header(1, 0, 0, 1)).unwrap();
        assert!(s.entry(1, NOW + 999).is_some());
        assert!(matches!(s.check(&header(1, 0, 1, 1), NOW + 1000), Err(SequenceError::UnknownProducer { .. })));
        s.remove_expired(NOW + 1000);
        assert!(s.is_empty());
        // Expiry follows the broker's clock, not batch timestamps: a producer writing
        // records stamped years ago keeps its state.
        let mut s = ProducerStateManager::new(1000);
        s.update(&BatchHeader { max_timestamp: 0, base_timestamp: 0, ..header(1, 0, 0, 1) }, None, NOW);
        assert_eq!(s.check(&header(1, 0, 1, 1), NOW + 500), Ok(SequenceCheck::Append));
    }

    #[test]
    fn snapshots_round_trip_and_reject_damage() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0);
        for pid in 0..20i64 {
            for i in 0..(pid as i32 % 8) {
                produce(&mut s, &mut leo, header(pid, (pid % 3) as i16, i * 2, 2)).unwrap();
            }
        }
        let bytes = s.encode_snapshot(leo);
        let (offset, back) = ProducerStateManager::decode_snapshot(&bytes, DAY).unwrap();
        assert_eq!((offset, &back), (leo, &s));
        for cut in 0..bytes.len() {
            assert!(ProducerStateManager::decode_snapshot(&bytes[..cut], DAY).is_err(), "cut {cut}");
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(ProducerStateManager::decode_snapshot(&b, DAY).is_err(), "flip {i}");
        }
    }

    fn txn(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader { attributes: 0x10, ..header(pid, epoch, seq, records) }
    }

    /// Appends a marker for `pid` at `*leo`; returns what it completed.
    fn mark(s: &mut ProducerStateManager, leo: &mut i64, pid: i64, epoch: i16, commit: bool) -> Option<CompletedTxn> {
        let h = BatchHeader { attributes: 0x30, base_offset: *leo, ..header(pid, epoch, -1, 1) };
        let m = TxnMarker { commit, coordinator_epoch: 3 };
        s.check_marker(pid, epoch, m).unwrap();
        assert_eq!(s.check(&h, NOW), Ok(SequenceCheck::Append), "markers are not sequenced");
        *leo += 1;
        s.update(&h, Some(m), NOW)
    }

    #[test]
    fn transactions_open_at_their_first_batch_and_close_at_their_marker() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0i64);
        produce(&mut s, &mut leo, header(9, 0, 0, 2)).unwrap(); // not transactional: 0-1
        assert_eq!(s.first_unstable_offset(), None);
        produce(&mut s, &mut leo, txn(1, 0, 0, 3)).unwrap(); // 2-4
        produce(&mut s, &mut leo, txn(2, 0, 0, 1)).unwrap(); // 5
        produce(&mut s, &mut leo, txn(1, 0, 3, 1)).unwrap(); // 6: same transaction
        assert_eq!(s.first_unstable_offset(), Some(2));
        assert_eq!(s.ongoing_transactions().collect::<Vec<_>>(), vec![(2, 1), (5, 2)]);
        let done = mark(&mut s, &mut leo, 1, 0, false); // 7
        assert_eq!(done, Some(CompletedTxn { producer_id: 1, first_offset: 2, last_offset: 7, commit: false }));
        assert_eq!(s.first_unstable_offset(), Some(5));
        // A retried marker, or one for a producer without an open transaction, ends nothing.
        assert_eq!(mark(&mut s, &mut leo, 1, 0, false), None);
        assert_eq!(mark(&mut s, &mut leo, 9, 0, true), None);
        assert_eq!(mark(&mut s, &mut leo, 2, 0, true).map(|t| (t.first_offset, t.commit)), Some((5, true)));
        assert_eq!(s.first_unstable_offset(), None);
        // The next transaction of producer 1 opens at its own first batch, sequences go on.
        produce(&mut s, &mut leo, txn(1, 0, 4, 1)).unwrap();
        assert_eq!(s.first_unstable_offset(), Some(leo - 1));
    }

    #[test]
    fn stale_markers_are_refused_and_markers_move_the_epoch() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0i64);
        produce(&mut s, &mut leo, txn(1, 4, 0, 1)).unwrap();
        let m = |coordinator_epoch| TxnMarker { commit: false, coordinator_epoch };
        assert!(matches!(s.check_marker(1, 3, m(3)), Err(MarkerError::StaleEpoch { .. })));
        // The coordinator fences the producer: abort marker at a bumped epoch.
        assert!(mark(&mut s, &mut leo, 1, 5, false).is_some());
        assert!(matches!(s.check_marker(1, 5, m(2)), Err(MarkerError::StaleCoordinator { current: 3, .. })));
        assert!(matches!(s.check(&txn(1, 4, 1, 1), NOW), Err(SequenceError::StaleEpoch { current: 5, .. })));
        assert_eq!(s.check(&txn(1, 5, 0, 1), NOW), Ok(SequenceCheck::Append));
    }

    #[test]
    fn producers_with_an_open_transaction_do_not_expire() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0i64);
        produce(&mut s, &mut leo, txn(1, 0, 0, 1)).unwrap();
        produce(&mut s, &mut leo, header(2, 0, 0, 1)).unwrap();
        s.remove_expired(NOW + 2 * DAY);
        assert!(s.entry(1, NOW + 2 * DAY).is_some());
        assert!(s.entry(2, NOW).is_none());
        assert_eq!(s.first_unstable_offset(), Some(0));
    }

    #[test]
    fn snapshots_keep_open_transactions_and_version_1_still_loads() {
        let (mut s, mut leo) = (ProducerStateManager::new(DAY), 0i64);
        produce(&mut s, &mut leo, txn(1, 0, 0, 2)).unwrap();
        produce(&mut s, &mut leo, txn(2, 1, 0, 1)).unwrap();
        mark(&mut s, &mut leo, 2, 1, true);
        let (offset, back) = ProducerStateManager::decode_snapshot(&s.encode_snapshot(leo), DAY).unwrap();
        assert_eq!((offset, &back), (leo, &s));
        assert_eq!(back.first_unstable_offset(), Some(0));
        assert_eq!(back.entry(2, NOW).map(|e| e.coordinator_epoch), Some(3));

        // A version-1 file: magic, version, crc, offset 5, one producer (id 7, epoch 2,
        // one batch 0-4 at offset 0).
        let mut body = Vec::new();
        body.extend_from_slice(&5i64.to_be_bytes());
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&7i64.to_be_bytes());
        body.extend_from_slice(&2i16.to_be_bytes());
        body.extend_from_slice(&NOW.to_be_bytes());
        body.push(1);
        for v in [0i32, 4] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        body.extend_from_slice(&0i64.to_be_bytes());
        body.extend_from_slice(&4i32.to_be_bytes());
        let mut v1 = b"STPS".to_vec();
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        v1.extend_from_slice(&body);
        let (offset, old) = ProducerStateManager::decode_snapshot(&v1, DAY).unwrap();
        assert_eq!(offset, 5);
        let e = old.entry(7, NOW).unwrap();
        assert_eq!((e.epoch, e.txn_first_offset, e.coordinator_epoch, e.batches.len()), (2, None, -1, 1));
        assert_eq!(old.check(&header(7, 2, 5, 1), NOW), Ok(SequenceCheck::Append));
    }
}
