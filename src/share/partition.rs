//! In-memory state machine of one KIP-932 share-partition: the (share group, topic, partition)
//! whose records many consumers of the group acquire, one consumer per record at a time, and
//! acknowledge individually.
//!
//! Everything below `start` (the share-partition start offset, SPSO) is finished; `[start, end)`
//! is the in-flight window; everything at or past `end` has never been delivered and is
//! implicitly AVAILABLE with delivery count 0. The window is stored as contiguous runs of offsets
//! sharing one state, keyed by first offset, so memory and work scale with the number of fetched
//! batches and acknowledgement boundaries, never with the number of offsets: offsets and ranges
//! come from the network and may be anything.
//!
//! The module does no I/O and reads no clock: the caller passes `now_ms`, reads the log, persists
//! [`Snapshot`]s and schedules [`SharePartition::expire`] at [`SharePartition::next_deadline`].

use std::collections::BTreeMap;
use std::fmt;

use crate::error::ErrorCode;

/// Acknowledge type GAP: the offset holds no record (e.g. compacted away); it is archived.
pub const ACK_GAP: u8 = 0;
/// Acknowledge type ACCEPT: the record was processed; it becomes ACKNOWLEDGED.
pub const ACK_ACCEPT: u8 = 1;
/// Acknowledge type RELEASE: redeliver the record (it is archived at the delivery limit).
pub const ACK_RELEASE: u8 = 2;
/// Acknowledge type REJECT: the record is unprocessable; it is archived.
pub const ACK_REJECT: u8 = 3;
/// Acknowledge type RENEW (KIP-1222, ShareFetch/ShareAcknowledge v2): the consumer is still
/// working on the record; its lock starts over and it stays acquired by the same member.
pub const ACK_RENEW: u8 = 4;
/// Persisted state code of AVAILABLE runs, and of ACQUIRED ones: locks do not survive restarts.
pub const STATE_AVAILABLE: u8 = 0;
/// Persisted state code of ACKNOWLEDGED runs.
pub const STATE_ACKNOWLEDGED: u8 = 2;
/// Persisted state code of ARCHIVED runs.
pub const STATE_ARCHIVED: u8 = 4;

/// Per-share-group tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long an acquired record stays locked (`group.share.record.lock.duration.ms`).
    pub lock_duration_ms: i64,
    /// Deliveries after which a record is archived (`group.share.delivery.count.limit`).
    pub delivery_limit: i16,
    /// Soft cap on `end - start` (`group.share.partition.max.record.locks`).
    pub max_in_flight: i64,
}

impl Default for Limits {
    /// Kafka's defaults.
    fn default() -> Self {
        Limits::new(30_000, 5, 2000)
    }
}

impl Limits {
    /// Builds limits from `group.share.record.lock.duration.ms`,
    /// `group.share.delivery.count.limit` and `group.share.partition.max.record.locks`.
    pub fn new(lock_duration_ms: i64, delivery_limit: i16, max_in_flight: i64) -> Self {
        Limits { lock_duration_ms, delivery_limit, max_in_flight }
    }

    /// Nonsense values would make every record unacquirable or the window permanently full, so
    /// they are raised to the smallest meaningful value rather than trusted.
    fn sanitized(self) -> Self {
        let l = self;
        Limits::new(l.lock_duration_ms.max(0), l.delivery_limit.max(1), l.max_in_flight.max(1))
    }
}

/// State of one in-flight offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordState {
    /// Deliverable to the next fetch.
    Available,
    /// Locked to one member until its deadline.
    Acquired {
        /// Member id of the consumer holding the lock.
        member: String,
        /// The lock is valid while `now_ms < deadline_ms`.
        deadline_ms: i64,
    },
    /// Accepted by a consumer: finished.
    Acknowledged,
    /// Rejected, a gap, or out of deliveries: finished.
    Archived,
}

impl RecordState {
    fn is_finished(&self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }

    /// Holder and lock deadline of an ACQUIRED state.
    fn holder(&self) -> Option<(&str, i64)> {
        match self {
            RecordState::Acquired { member, deadline_ms } => Some((member, *deadline_ms)),
            _ => None,
        }
    }
}

/// A stretch `[key, last]` of offsets with one state and delivery count.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Run {
    last: i64,
    state: RecordState,
    delivery_count: i16,
}

impl Run {
    fn new(last: i64, state: RecordState, delivery_count: i16) -> Self {
        Run { last, state, delivery_count }
    }
}

/// One range handed to a consumer by [`SharePartition::acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Acquired {
    /// First acquired offset.
    pub first: i64,
    /// Last acquired offset (inclusive).
    pub last: i64,
    /// Delivery count of every offset in the range, this delivery included.
    pub delivery_count: i16,
}

/// Records per outcome of one successful acknowledgement, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckSummary {
    /// ACCEPT: now ACKNOWLEDGED.
    pub accepted: u64,
    /// RELEASE: AVAILABLE again.
    pub released: u64,
    /// REJECT, or RELEASE of a record at its delivery limit: now ARCHIVED.
    pub archived: u64,
    /// GAP: archived, but not a rejected record.
    pub gaps: u64,
    /// RENEW: still acquired, with a new lock deadline.
    pub renewed: u64,
}

impl AckSummary {
    /// Whether the acknowledgement changed durable state (a RENEW only moves a lock
    /// deadline, and locks are not persisted).
    pub fn changes_state(&self) -> bool {
        self.accepted + self.released + self.archived + self.gaps > 0
    }
}

/// Records per state in the window, for operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts {
    /// Locked to some member.
    pub acquired: u64,
    /// Waiting for redelivery.
    pub available: u64,
    /// Accepted, but behind an unfinished record so not yet below `start`.
    pub acknowledged: u64,
    /// Archived, but behind an unfinished record so not yet below `start`.
    pub archived: u64,
}

/// Why an acknowledgement request was refused, with the first offset of the offending range (or
/// the offending offset). Every variant is `INVALID_RECORD_STATE` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckError {
    /// `first > last`.
    ReversedRange(i64),
    /// The range reaches below `start` or at/after `end`: those offsets are not in flight.
    OutsideWindow(i64),
    /// `types` has neither exactly one element nor one per offset.
    BadTypesLength(i64),
    /// An acknowledge type outside 0..=4.
    BadType(i64),
    /// The range overlaps another range of the same request.
    Overlapping(i64),
    /// The offset is not acquired by this member under a live lock.
    NotAcquired(i64),
}

impl AckError {
    /// Kafka error code to answer with: always `INVALID_RECORD_STATE`.
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidRecordState
    }
}

impl fmt::Display for AckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid record state: {self:?}")
    }
}

impl std::error::Error for AckError {}

/// One persisted run, Kafka's `ShareSnapshot` state batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateBatch {
    /// First offset.
    pub first: i64,
    /// Last offset (inclusive).
    pub last: i64,
    /// [`STATE_AVAILABLE`], [`STATE_ACKNOWLEDGED`] or [`STATE_ARCHIVED`].
    pub state: u8,
    /// Deliveries so far.
    pub delivery_count: i16,
}

/// Durable state of a share-partition, as written to `__share_group_state`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The share-partition start offset.
    pub start_offset: i64,
    /// In-flight runs, sorted and non-overlapping, all at or after `start_offset`.
    pub batches: Vec<StateBatch>,
}

/// Why a persisted snapshot was refused as corrupt, with the index of the offending batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotError {
    /// The start offset is negative.
    NegativeStartOffset,
    /// `first > last`.
    ReversedBatch(usize),
    /// The batch starts below the start offset, or overlaps or precedes the previous batch.
    OutOfOrder(usize),
    /// The batch ends at `i64::MAX`, so the end offset would not be representable.
    OffsetOverflow(usize),
    /// A state code other than 0, 2 or 4.
    BadState(usize),
    /// A negative delivery count.
    NegativeDeliveryCount(usize),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "corrupt share-partition snapshot: {self:?}")
    }
}

impl std::error::Error for SnapshotError {}

/// Number of offsets in `first..=last`, without overflow; 0 when reversed.
fn span(first: i64, last: i64) -> u64 {
    if last < first {
        0
    } else {
        last.abs_diff(first).saturating_add(1)
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// What one `acquire` call hands out, shared by its helpers.
struct Grant<'a> {
    member: &'a str,
    deadline_ms: i64,
    budget: u64,
    /// KIP-1206's record-limit mode: new batches are cut at the budget too.
    strict: bool,
    out: Vec<Acquired>,
}

impl Grant<'_> {
    fn state(&self) -> RecordState {
        let member = self.member.to_string();
        RecordState::Acquired { member, deadline_ms: self.deadline_ms }
    }

    /// Records a grant, extending the previous range when contiguous with the same count.
    fn push(&mut self, first: i64, last: i64, delivery_count: i16) {
        self.budget = self.budget.saturating_sub(span(first, last));
        if let Some(prev) = self.out.last_mut() {
            if prev.last.checked_add(1) == Some(first) && prev.delivery_count == delivery_count {
                prev.last = last;
                return;
            }
        }
        self.out.push(Acquired { first, last, delivery_count });
    }
}

/// The state machine of one share-partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharePartition {
    limits: Limits,
    start: i64,
    end: i64,
    /// Invariant: contiguous runs covering exactly `[start, end)`, the first one unfinished
    /// (finished prefixes are dropped as `start` moves past them), and
    /// `0 <= start <= end <= i64::MAX`, so every run's `last + 1` is representable.
    runs: BTreeMap<i64, Run>,
    /// Records archived at the delivery limit by a release or a lock timeout, not yet
    /// taken by [`Self::take_archived`] (for metrics; not part of the state).
    archived_at_limit: u64,
}

impl SharePartition {
    /// Creates an empty share-partition at `start`. Negative values are not offsets (Kafka uses
    /// -1 for "unknown"), so they are clamped to 0.
    pub fn new(limits: Limits, start: i64) -> Self {
        let start = start.max(0);
        let limits = limits.sanitized();
        SharePartition { limits, start, end: start, runs: BTreeMap::new(), archived_at_limit: 0 }
    }

    /// Acquires records for `member` from the log `batches` read from `start`, in offset order:
    /// AVAILABLE in-flight offsets covered by a batch (split at `max_records`), then new offsets
    /// from `end`, whole batch by whole batch, while the window has room. Offsets the read
    /// skipped (before the first batch or between batches) hold no record and are archived.
    /// Locks past their deadline are only redelivered once [`Self::expire`] has released them.
    ///
    /// New batches are acquired whole even when that passes `max_records` (KIP-1206's
    /// batch-optimized mode, the default); [`Self::acquire_at_most`] never passes it.
    pub fn acquire(&mut self, member: &str, now_ms: i64, batches: &[(i64, i64)], max_records: usize) -> Vec<Acquired> {
        self.acquire_in_mode(member, now_ms, batches, max_records, false)
    }

    /// [`Self::acquire`] in KIP-1206's record-limit mode: at most `max_records` records, a
    /// new batch cut where the budget ends (its other records stay AVAILABLE; the consumer
    /// gets the whole batch's bytes and keeps only the acquired offsets).
    pub fn acquire_at_most(
        &mut self,
        member: &str,
        now_ms: i64,
        batches: &[(i64, i64)],
        max_records: usize,
    ) -> Vec<Acquired> {
        self.acquire_in_mode(member, now_ms, batches, max_records, true)
    }

    fn acquire_in_mode(
        &mut self,
        member: &str,
        now_ms: i64,
        batches: &[(i64, i64)],
        max_records: usize,
        strict: bool,
    ) -> Vec<Acquired> {
        let deadline_ms = now_ms.saturating_add(self.limits.lock_duration_ms);
        let budget = u64::try_from(max_records).unwrap_or(u64::MAX);
        let mut g = Grant { member, deadline_ms, budget, strict, out: Vec::new() };
        // The log was read from `start`, so nothing lies between `cursor` and the next batch.
        let mut cursor = self.start;
        for &(batch_first, last) in batches {
            if g.budget == 0 {
                break;
            }
            let first = batch_first.max(self.start);
            if first > last {
                continue; // reversed, or entirely below start
            }
            if first > cursor {
                self.archive_skipped(cursor, first - 1);
            }
            cursor = cursor.max(last.saturating_add(1));
            if first < self.end {
                self.redeliver(first, last.min(self.end - 1), &mut g);
            }
            let room = self.end - self.start < self.limits.max_in_flight;
            if g.budget > 0 && last >= self.end && room {
                self.acquire_new(first, last, &mut g);
            }
        }
        self.advance_start();
        g.out
    }

    /// Archives the AVAILABLE in-flight offsets of `[first, last]`: the log has no record there,
    /// and leaving them AVAILABLE would pin `start` forever.
    fn archive_skipped(&mut self, first: i64, last: i64) {
        let last = last.min(self.end - 1);
        if first > last {
            return;
        }
        let targets: Vec<(i64, i64)> = self
            .overlapping(first, last)
            .filter(|(_, run)| run.state == RecordState::Available)
            .map(|(key, run)| (key.max(first), run.last.min(last)))
            .collect();
        for (a, b) in targets {
            self.update(a, b, |_, run| run.state = RecordState::Archived);
        }
    }

    /// Re-acquires the AVAILABLE offsets of `[lo, hi]` (inside the window), within the budget.
    fn redeliver(&mut self, lo: i64, hi: i64, g: &mut Grant) {
        let limit = self.limits.delivery_limit;
        let mut left = g.budget;
        let mut targets = Vec::new();
        for (key, run) in self.overlapping(lo, hi) {
            if left == 0 {
                break;
            }
            if run.state != RecordState::Available || run.delivery_count >= limit {
                continue;
            }
            let a = key.max(lo);
            let mut b = run.last.min(hi);
            if span(a, b) > left {
                b = a.saturating_add(i64::try_from(left - 1).unwrap_or(i64::MAX));
            }
            left -= span(a, b);
            targets.push((a, b));
        }
        for (a, b) in targets {
            self.update(a, b, |offset, run| {
                run.state = g.state();
                run.delivery_count = run.delivery_count.saturating_add(1);
                g.push(offset, run.last, run.delivery_count);
            });
        }
    }

    /// Acquires the part of batch `[first, last]` at or after `end` as one new run.
    fn acquire_new(&mut self, first: i64, last: i64, g: &mut Grant) {
        // Offset i64::MAX can never be in flight: `end` would not be representable.
        let mut last = last.min(i64::MAX - 1);
        let first = first.max(self.end);
        if first > last {
            return;
        }
        if g.strict && span(first, last) > g.budget {
            // The budget is > 0 here, so the cut leaves at least one record.
            last = first.saturating_add(i64::try_from(g.budget.saturating_sub(1)).unwrap_or(i64::MAX));
        }
        if first > self.end {
            let gap = Run::new(first - 1, RecordState::Archived, 0);
            self.runs.insert(self.end, gap);
        }
        self.runs.insert(first, Run::new(last, g.state(), 1));
        g.push(first, last, 1);
        self.end = last + 1;
    }

    /// Applies a member's acknowledgements `(first, last, types)`, all or nothing: each range must
    /// lie in the window, be entirely ACQUIRED by `member` with `now_ms < deadline`, overlap no
    /// other range, and carry either one type or one type per offset, each in 0..=4 (whether
    /// RENEW is allowed is the protocol layer's decision: it needs v2 and `IsRenewAck`).
    pub fn acknowledge(
        &mut self,
        member: &str,
        now_ms: i64,
        acks: &[(i64, i64, Vec<u8>)],
    ) -> Result<AckSummary, AckError> {
        // Shape checks first. Being inside the window also caps every range at `in_flight()`
        // offsets, so a hostile `last = i64::MAX` is refused before any walk.
        for (first, last, types) in acks {
            let (first, last) = (*first, *last);
            if first > last {
                return Err(AckError::ReversedRange(first));
            }
            if first < self.start || last >= self.end {
                return Err(AckError::OutsideWindow(first));
            }
            if types.len() != 1 && u64::try_from(types.len()).ok() != Some(span(first, last)) {
                return Err(AckError::BadTypesLength(first));
            }
            if types.iter().any(|&t| t > ACK_RENEW) {
                return Err(AckError::BadType(first));
            }
        }
        // Refusing overlaps before walking runs bounds the walk by the window size (not ranges
        // times window) and makes the apply phase independent of order.
        let mut ranges: Vec<(i64, i64)> = acks.iter().map(|(f, l, _)| (*f, *l)).collect();
        ranges.sort_unstable();
        for pair in ranges.windows(2) {
            if let [(_, prev_last), (first, _)] = pair {
                if first <= prev_last {
                    return Err(AckError::Overlapping(*first));
                }
            }
        }
        for &(first, last) in &ranges {
            let live = |run: &Run| {
                let holder = run.state.holder();
                holder.is_some_and(|(m, deadline)| m == member && deadline > now_ms)
            };
            if let Some((key, _)) = self.overlapping(first, last).find(|(_, r)| !live(r)) {
                return Err(AckError::NotAcquired(key.max(first)));
            }
        }
        let mut summary = AckSummary::default();
        let renewed = RecordState::Acquired {
            member: member.to_string(),
            deadline_ms: now_ms.saturating_add(self.limits.lock_duration_ms),
        };
        for (first, last, types) in acks {
            match types.as_slice() {
                [ack_type] => self.apply_ack(*first, *last, *ack_type, &renewed, &mut summary),
                per_offset => self.apply_types(*first, per_offset, &renewed, &mut summary),
            }
        }
        self.advance_start();
        Ok(summary)
    }

    /// Applies one type per offset from `first`, one range per stretch of equal types, so runs
    /// are only split where the type changes.
    fn apply_types(&mut self, first: i64, types: &[u8], renewed: &RecordState, summary: &mut AckSummary) {
        let (mut from, mut offset) = (first, first);
        let mut iter = types.iter().peekable();
        while let Some(&ack_type) = iter.next() {
            if iter.peek() != Some(&&ack_type) {
                self.apply_ack(from, offset, ack_type, renewed, summary);
                from = offset.saturating_add(1);
            }
            offset = offset.saturating_add(1);
        }
    }

    /// Applies one validated acknowledge type to `[first, last]`; `renewed` is the state a
    /// RENEW leaves (the same member, a new deadline).
    fn apply_ack(&mut self, first: i64, last: i64, ack_type: u8, renewed: &RecordState, summary: &mut AckSummary) {
        let limit = self.limits.delivery_limit;
        self.update(first, last, |offset, run| {
            let n = span(offset, run.last);
            let (counter, state) = match ack_type {
                ACK_ACCEPT => (&mut summary.accepted, RecordState::Acknowledged),
                ACK_RELEASE if run.delivery_count < limit => (&mut summary.released, RecordState::Available),
                ACK_GAP => (&mut summary.gaps, RecordState::Archived),
                ACK_RENEW => (&mut summary.renewed, renewed.clone()),
                _ => (&mut summary.archived, RecordState::Archived),
            };
            *counter = counter.saturating_add(n);
            run.state = state;
        });
    }

    /// Releases every lock whose deadline is `<= now_ms` (archiving records at the delivery
    /// limit); returns how many records were released.
    pub fn expire(&mut self, now_ms: i64) -> usize {
        self.release_where(|(_, deadline)| deadline <= now_ms)
    }

    /// Earliest lock deadline, so the caller can sleep until then; `None` if nothing is acquired.
    pub fn next_deadline(&self) -> Option<i64> {
        let holders = self.runs.values().filter_map(|run| run.state.holder());
        holders.map(|(_, deadline)| deadline).min()
    }

    /// Releases the records of a member that left or was fenced, keeping delivery counts (and
    /// archiving records at the delivery limit); returns how many records were released.
    pub fn release_member(&mut self, member: &str) -> usize {
        self.release_where(|(m, _)| m == member)
    }

    /// How many records releases and lock timeouts archived at the delivery limit since
    /// the last call.
    pub fn take_archived(&mut self) -> u64 {
        std::mem::take(&mut self.archived_at_limit)
    }

    /// Releases the ACQUIRED runs whose (holder, deadline) match `pred`.
    fn release_where(&mut self, pred: impl Fn((&str, i64)) -> bool) -> usize {
        let limit = self.limits.delivery_limit;
        let mut released = 0u64;
        for (&first, run) in self.runs.iter_mut() {
            if run.state.holder().is_some_and(&pred) {
                released = released.saturating_add(span(first, run.last));
                run.state = if run.delivery_count >= limit {
                    self.archived_at_limit = self.archived_at_limit.saturating_add(span(first, run.last));
                    RecordState::Archived
                } else {
                    RecordState::Available
                };
            }
        }
        self.advance_start();
        to_usize(released)
    }

    /// Retention or DeleteRecords moved the log start to `log_start`: records below it are gone,
    /// so the window is trimmed and `start` (and `end` if needed) move up to it.
    pub fn log_start_moved(&mut self, log_start: i64) {
        if log_start <= self.start {
            return;
        }
        self.split_at(log_start);
        self.runs = self.runs.split_off(&log_start);
        self.start = log_start;
        self.end = self.end.max(log_start);
        self.advance_start();
    }

    /// Forgets all in-flight state and restarts at `start` (AlterShareGroupOffsets, or the
    /// `share.auto.offset.reset` initialisation). Negative values are clamped to 0.
    pub fn reset(&mut self, start: i64) {
        self.runs.clear();
        self.start = start.max(0);
        self.end = self.start;
    }

    /// Durable state to persist. ACQUIRED runs are written as AVAILABLE with their count, as a
    /// lock does not survive a restart; adjacent runs that persist identically are merged.
    pub fn snapshot(&self) -> Snapshot {
        let mut batches: Vec<StateBatch> = Vec::new();
        for (&first, run) in &self.runs {
            let state = match run.state {
                RecordState::Acknowledged => STATE_ACKNOWLEDGED,
                RecordState::Archived => STATE_ARCHIVED,
                RecordState::Available | RecordState::Acquired { .. } => STATE_AVAILABLE,
            };
            let delivery_count = run.delivery_count;
            if let Some(prev) = batches.last_mut() {
                let same = prev.state == state && prev.delivery_count == delivery_count;
                if same && prev.last.checked_add(1) == Some(first) {
                    prev.last = run.last;
                    continue;
                }
            }
            batches.push(StateBatch { first, last: run.last, state, delivery_count });
        }
        Snapshot { start_offset: self.start, batches }
    }

    /// Rebuilds a share-partition from persisted state, refusing anything malformed (the bytes
    /// come from disk). Offsets between batches were never recorded, so they are AVAILABLE with
    /// count 0; AVAILABLE runs already at the delivery limit are archived.
    pub fn from_snapshot(limits: Limits, snapshot: &Snapshot) -> Result<Self, SnapshotError> {
        if snapshot.start_offset < 0 {
            return Err(SnapshotError::NegativeStartOffset);
        }
        let mut sp = SharePartition::new(limits, snapshot.start_offset);
        let limit = sp.limits.delivery_limit;
        let mut next = sp.start;
        for (i, b) in snapshot.batches.iter().enumerate() {
            if b.first > b.last {
                return Err(SnapshotError::ReversedBatch(i));
            }
            if b.first < next {
                return Err(SnapshotError::OutOfOrder(i));
            }
            if b.last == i64::MAX {
                return Err(SnapshotError::OffsetOverflow(i));
            }
            if b.delivery_count < 0 {
                return Err(SnapshotError::NegativeDeliveryCount(i));
            }
            let state = match b.state {
                STATE_AVAILABLE if b.delivery_count >= limit => RecordState::Archived,
                STATE_AVAILABLE => RecordState::Available,
                STATE_ACKNOWLEDGED => RecordState::Acknowledged,
                STATE_ARCHIVED => RecordState::Archived,
                _ => return Err(SnapshotError::BadState(i)),
            };
            if b.first > next {
                let gap = Run::new(b.first - 1, RecordState::Available, 0);
                sp.runs.insert(next, gap);
            }
            sp.runs.insert(b.first, Run::new(b.last, state, b.delivery_count));
            next = b.last + 1;
        }
        sp.end = next;
        sp.advance_start();
        Ok(sp)
    }

    /// The effective limits (after raising nonsense values).
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Share-partition start offset (SPSO): every offset below it is finished.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Share-partition end offset (SPEO): one past the highest offset ever acquired.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Applies changed limits (the group's configs changed): new acquisitions get the new
    /// lock duration; locks already taken keep their deadlines.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits.sanitized();
    }

    /// Where the next acquisition should read the log from: the first AVAILABLE in-flight
    /// offset, else `end`. Reading from `start` instead would make a partition shared by
    /// many consumers re-read (and skip) everything its peers hold locked.
    /// [`Self::acquire`] accepts batches read from here: nothing between `start` and this
    /// offset is AVAILABLE, so nothing there is taken for a gap.
    pub fn next_fetch_offset(&self) -> i64 {
        self.runs.iter().find(|(_, run)| run.state == RecordState::Available).map_or(self.end, |(&k, _)| k)
    }

    /// Number of offsets in the window, `end - start`.
    pub fn in_flight(&self) -> i64 {
        self.end - self.start
    }

    /// Records per state in the window.
    pub fn counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for (&first, run) in &self.runs {
            let slot = match run.state {
                RecordState::Available => &mut c.available,
                RecordState::Acquired { .. } => &mut c.acquired,
                RecordState::Acknowledged => &mut c.acknowledged,
                RecordState::Archived => &mut c.archived,
            };
            *slot = slot.saturating_add(span(first, run.last));
        }
        c
    }

    /// Number of records currently locked to `member`.
    pub fn acquired_by(&self, member: &str) -> usize {
        let mut n = 0u64;
        for (&first, run) in &self.runs {
            if run.state.holder().is_some_and(|(m, _)| m == member) {
                n = n.saturating_add(span(first, run.last));
            }
        }
        to_usize(n)
    }

    /// State and delivery count of `offset`: `None` below `start` (finished and forgotten),
    /// AVAILABLE with count 0 at or after `end` (never delivered).
    pub fn state_at(&self, offset: i64) -> Option<(RecordState, i16)> {
        if offset < self.start {
            return None;
        }
        if offset >= self.end {
            return Some((RecordState::Available, 0));
        }
        let (_, run) = self.runs.range(..=offset).next_back()?;
        Some((run.state.clone(), run.delivery_count))
    }

    /// Runs overlapping `[first, last]` (requires `first <= last`), in offset order.
    fn overlapping(&self, first: i64, last: i64) -> impl Iterator<Item = (i64, &Run)> + '_ {
        let from = self.runs.range(..=first).next_back().map_or(first, |(&k, _)| k);
        let runs = self.runs.range(from..=last.max(from));
        runs.map(|(&k, run)| (k, run)).filter(move |(_, run)| run.last >= first)
    }

    /// Makes `at` the first offset of a run if it falls strictly inside one.
    fn split_at(&mut self, at: i64) {
        let Some((_, run)) = self.runs.range_mut(..at).next_back() else {
            return;
        };
        if run.last >= at {
            let upper = run.clone();
            run.last = at - 1;
            self.runs.insert(at, upper);
        }
    }

    /// Applies `f` to every run inside `[first, last]` after splitting the runs straddling its
    /// edges, so the change affects exactly that range.
    fn update(&mut self, first: i64, last: i64, mut f: impl FnMut(i64, &mut Run)) {
        if first > last {
            return;
        }
        self.split_at(first);
        if let Some(next) = last.checked_add(1) {
            self.split_at(next);
        }
        for (&offset, run) in self.runs.range_mut(first..=last) {
            f(offset, run);
        }
    }

    /// Drops the finished prefix of the window and moves `start` past it.
    fn advance_start(&mut self) {
        while let Some(entry) = self.runs.first_entry() {
            if !entry.get().state.is_finished() {
                self.start = *entry.key();
                return;
            }
            entry.remove();
        }
        self.start = self.end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Rng;
    use std::collections::BTreeSet;
    use RecordState::{Acknowledged as Acked, Archived, Available};

    fn sp(max_in_flight: i64, start: i64) -> SharePartition {
        SharePartition::new(Limits::new(1000, 3, max_in_flight), start)
    }

    fn acq(first: i64, last: i64, delivery_count: i16) -> Acquired {
        Acquired { first, last, delivery_count }
    }

    fn held(member: &str, deadline_ms: i64) -> RecordState {
        RecordState::Acquired { member: member.into(), deadline_ms }
    }

    fn at(sp: &SharePartition, offset: i64) -> Option<RecordState> {
        sp.state_at(offset).map(|(s, _)| s)
    }

    fn ack(first: i64, last: i64, types: &[u8]) -> (i64, i64, Vec<u8>) {
        (first, last, types.to_vec())
    }

    /// Acknowledges, which must succeed; returns (accepted, released, archived, gaps).
    fn ok(sp: &mut SharePartition, m: &str, now: i64, acks: &[(i64, i64, Vec<u8>)]) -> [u64; 4] {
        let s = sp.acknowledge(m, now, acks).unwrap();
        [s.accepted, s.released, s.archived, s.gaps]
    }

    #[test]
    fn acquires_whole_batches_from_start() {
        let mut p = sp(100, 0);
        // 5 < 7 after the first batch, so the second is taken whole; then the budget is spent.
        assert_eq!(p.acquire("a", 0, &[(0, 4), (5, 9), (10, 14)], 7), [acq(0, 9, 1)]);
        assert_eq!((p.start(), p.end(), p.in_flight(), p.acquired_by("a")), (0, 10, 10, 10));
        assert_eq!(at(&p, 9), Some(held("a", 1000)));
        assert!(p.acquire("a", 0, &[(10, 14)], 0).is_empty());
        // A batch partly below start only counts from start.
        let mut p = sp(100, 5);
        assert_eq!(p.acquire("a", 0, &[(0, 9)], 100), [acq(5, 9, 1)]);
        assert_eq!((at(&p, 4), p.acquire("a", 0, &[(0, 3)], 9)), (None, vec![]));
    }

    #[test]
    fn skipped_offsets_hold_no_record_and_are_archived() {
        let mut p = sp(100, 0);
        let got = p.acquire("a", 0, &[(2, 3), (6, 7)], 100);
        assert_eq!((got, p.start(), p.end()), (vec![acq(2, 3, 1), acq(6, 7, 1)], 2, 8));
        assert_eq!(at(&p, 4), Some(Archived));
        ok(&mut p, "a", 1, &[ack(2, 3, &[1])]);
        assert_eq!(p.start(), 6, "start skips the archived gap");
        // Released records that were compacted away are archived by the next read.
        ok(&mut p, "a", 1, &[ack(6, 7, &[2])]);
        assert_eq!(p.acquire("b", 2, &[(7, 9)], 100), [acq(7, 7, 2), acq(8, 9, 1)]);
        assert_eq!((p.start(), at(&p, 6)), (7, None));
    }

    #[test]
    fn window_limit_full_window_and_overshoot() {
        let mut p = sp(10, 0);
        let log = [(0, 7), (8, 15), (16, 20)];
        // (8, 15) starts with room (8 < 10) and is taken whole; (16, 20) finds the window full.
        assert_eq!(p.acquire("a", 0, &log, 100), [acq(0, 15, 1)]);
        assert!(p.acquire("b", 0, &log, 100).is_empty());
        ok(&mut p, "a", 1, &[ack(0, 3, &[1])]);
        assert_eq!(p.in_flight(), 12);
        assert!(p.acquire("b", 1, &log, 100).is_empty(), "still full");
        // Released records inside a full window are still delivered.
        ok(&mut p, "a", 1, &[ack(4, 5, &[2])]);
        assert_eq!(p.acquire("b", 2, &log, 100), [acq(4, 5, 2)]);
        ok(&mut p, "a", 3, &[ack(6, 15, &[1])]);
        ok(&mut p, "b", 3, &[ack(4, 5, &[1])]);
        assert_eq!((p.start(), p.end()), (16, 16));
        assert_eq!(p.acquire("b", 4, &log, 100), [acq(16, 20, 1)]);
    }

    #[test]
    fn accept_reject_gap_and_release() {
        let mut p = sp(100, 0);
        p.acquire("a", 0, &[(0, 4), (5, 9)], 100);
        assert_eq!(ok(&mut p, "a", 1, &[ack(0, 4, &[1])]), [5, 0, 0, 0]);
        assert_eq!(p.start(), 5, "accept advances start");
        assert_eq!(ok(&mut p, "a", 1, &[ack(7, 9, &[3])]), [0, 0, 3, 0]);
        assert_eq!((at(&p, 8), p.start()), (Some(Archived), 5));
        assert_eq!(ok(&mut p, "a", 1, &[ack(5, 5, &[0])]), [0, 0, 0, 1]);
        assert_eq!(ok(&mut p, "a", 1, &[ack(6, 6, &[2])]), [0, 1, 0, 0]);
        assert_eq!(p.state_at(6), Some((Available, 1)));
        // Redelivered to another member with count 2.
        let log = [(5, 9), (10, 11)];
        assert_eq!(p.acquire("c", 2, &log, 100), [acq(6, 6, 2), acq(10, 11, 1)]);
        assert!(p.acknowledge("a", 3, &[ack(6, 6, &[1])]).is_err());
        ok(&mut p, "c", 3, &[ack(6, 6, &[2]), ack(10, 11, &[2])]);
        // Redelivered runs may be split at max_records.
        assert_eq!(p.acquire("b", 5, &log, 2), [acq(6, 6, 3), acq(10, 10, 2)]);
        assert_eq!((at(&p, 6), p.state_at(11)), (Some(held("b", 1005)), Some((Available, 1))));
    }

    #[test]
    fn delivery_limit_archives_and_start_moves_past() {
        let mut p = sp(100, 0); // delivery limit 3
        p.acquire("a", 0, &[(0, 1)], 100);
        ok(&mut p, "a", 1, &[ack(0, 1, &[2])]);
        assert_eq!(p.acquire("b", 1, &[(0, 1)], 100), [acq(0, 1, 2)]);
        assert_eq!(p.expire(1001), 2);
        assert_eq!(p.acquire("a", 2000, &[(0, 1)], 100), [acq(0, 1, 3)]);
        ok(&mut p, "a", 2001, &[ack(1, 1, &[1])]);
        // The third release hits the limit.
        assert_eq!(ok(&mut p, "a", 2001, &[ack(0, 0, &[2])]), [0, 0, 1, 0]);
        assert_eq!((p.start(), p.end()), (2, 2));
        assert!(p.acquire("b", 3000, &[(0, 1)], 100).is_empty());
        // An expiry at the limit archives too.
        for t in [3000, 5000, 7000] {
            p.expire(t);
            p.acquire("a", t, &[(2, 2)], 1);
        }
        assert_eq!(p.state_at(2), Some((held("a", 8000), 3)));
        assert_eq!((p.expire(8000), p.start(), p.end()), (1, 3, 3));
    }

    #[test]
    fn lock_expiry_next_deadline_and_release_member() {
        let mut p = sp(100, 0);
        assert_eq!(p.next_deadline(), None);
        p.acquire("a", 0, &[(0, 1)], 100);
        p.acquire("b", 500, &[(2, 5)], 100);
        assert_eq!((p.next_deadline(), p.expire(999)), (Some(1000), 0));
        assert_eq!((p.expire(1000), p.next_deadline()), (2, Some(1500)));
        assert_eq!(p.state_at(0), Some((Available, 1)));
        // A lock past its deadline no longer allows acknowledging, even before `expire` runs.
        let before = p.clone();
        assert!(p.acknowledge("b", 1500, &[ack(2, 5, &[1])]).is_err());
        assert_eq!(p, before);
        ok(&mut p, "b", 1499, &[ack(2, 3, &[1])]);
        p.acquire("a", 1499, &[(0, 1)], 100);
        assert_eq!((p.release_member("b"), p.release_member("b")), (2, 0));
        assert_eq!((p.acquired_by("a"), p.acquired_by("b")), (2, 0));
        assert_eq!(p.state_at(4), Some((Available, 1)));
        let c = p.counts();
        assert_eq!([c.acquired, c.available, c.acknowledged, c.archived], [2, 2, 2, 0]);
    }

    #[test]
    fn renew_restarts_the_lock_and_keeps_the_record() {
        let mut p = sp(100, 0);
        p.acquire("a", 0, &[(0, 3)], 100);
        // Renewing 1..=2 at 900 moves their deadline to 1900; 0 and 3 keep 1000.
        let s = p.acknowledge("a", 900, &[ack(1, 2, &[ACK_RENEW])]).unwrap();
        assert_eq!((s.renewed, s.changes_state()), (2, false));
        assert_eq!(p.state_at(1), Some((held("a", 1900), 1)), "same member, same delivery count");
        assert_eq!(p.expire(1000), 2, "only the records not renewed time out");
        assert_eq!(p.next_deadline(), Some(1900));
        // Another member cannot renew what it does not hold; the holder can still finish it.
        assert_eq!(p.acknowledge("b", 1000, &[ack(1, 1, &[ACK_RENEW])]), Err(AckError::NotAcquired(1)));
        assert_eq!(ok(&mut p, "a", 1899, &[ack(1, 2, &[1])]), [2, 0, 0, 0]);
        // A renewal after the lock ran out is refused like any late acknowledgement.
        p.acquire("a", 2000, &[(0, 3)], 100);
        assert!(p.acknowledge("a", 3000, &[ack(0, 0, &[ACK_RENEW])]).is_err());
        assert!(p.acknowledge("a", 2000, &[ack(0, 0, &[ACK_RENEW + 1])]).is_err());
    }

    #[test]
    fn record_limit_mode_cuts_a_batch_at_max_records() {
        let mut p = sp(100, 0);
        assert_eq!(p.acquire_at_most("a", 0, &[(0, 9)], 4), vec![acq(0, 3, 1)]);
        assert_eq!((p.end(), p.state_at(4)), (4, Some((Available, 0))), "the rest is not in flight");
        // The next read starts at 4, inside the batch; the rest of it goes to the next fetch.
        assert_eq!(p.next_fetch_offset(), 4);
        assert_eq!(p.acquire_at_most("b", 0, &[(0, 9), (10, 19)], 8), vec![acq(4, 11, 1)]);
        // Batch-optimized mode takes the whole batch past the budget.
        assert_eq!(p.acquire("c", 0, &[(10, 19)], 1), vec![acq(12, 19, 1)]);
        // Redeliveries are cut at the budget in both modes.
        p.acknowledge("a", 1, &[ack(0, 3, &[ACK_RELEASE])]).unwrap();
        assert_eq!(p.acquire_at_most("a", 2, &[(0, 9)], 3), vec![acq(0, 2, 2)]);
    }

    #[test]
    fn per_offset_types_split_a_run() {
        let mut p = sp(100, 10);
        p.acquire("a", 0, &[(10, 14)], 100);
        assert_eq!(ok(&mut p, "a", 1, &[ack(10, 14, &[1, 1, 1, 2, 3])]), [3, 1, 1, 0]);
        assert_eq!((p.start(), p.end(), p.runs.len()), (13, 15, 2));
        assert_eq!((p.state_at(13), at(&p, 14)), (Some((Available, 1)), Some(Archived)));
        assert_eq!(p.acquire("b", 2, &[(10, 14)], 100), [acq(13, 13, 2)]);
        ok(&mut p, "b", 3, &[ack(13, 13, &[1])]);
        assert_eq!((p.start(), p.end()), (15, 15));
        // Finishing a tail does not move start while an earlier record is unfinished.
        let mut p = sp(100, 10);
        p.acquire("a", 0, &[(10, 14)], 100);
        ok(&mut p, "a", 1, &[ack(12, 14, &[1, 3, 3])]);
        assert_eq!(p.runs.len(), 3, "split only where the type changes");
        assert_eq!((p.start(), at(&p, 12), at(&p, 11)), (10, Some(Acked), Some(held("a", 1000))));
        ok(&mut p, "a", 1, &[ack(11, 11, &[1]), ack(10, 10, &[3])]);
        assert_eq!(p.start(), 15);
    }

    #[test]
    fn invalid_acknowledgements_change_nothing() {
        let mut p = sp(100, 10);
        p.acquire("a", 0, &[(10, 14), (15, 19)], 100);
        ok(&mut p, "a", 1, &[ack(10, 10, &[1]), ack(16, 16, &[1]), ack(15, 15, &[2])]);
        let mut check = |member: &str, now: i64, acks: &[(i64, i64, Vec<u8>)], expected: AckError| {
            let before = p.clone();
            assert_eq!(p.acknowledge(member, now, acks), Err(expected), "{acks:?}");
            assert_eq!((p == before, expected.error_code()), (true, ErrorCode::InvalidRecordState));
        };
        use AckError::*;
        check("b", 1, &[ack(11, 11, &[1])], NotAcquired(11)); // another member's
        check("a", 1, &[ack(14, 15, &[1])], NotAcquired(15)); // available
        check("a", 1, &[ack(16, 16, &[1])], NotAcquired(16)); // acknowledged
        check("a", 1000, &[ack(11, 11, &[1])], NotAcquired(11)); // lock expired
        check("a", 1, &[ack(12, 11, &[1])], ReversedRange(12));
        check("a", 1, &[ack(11, 11, &[5])], BadType(11));
        check("a", 1, &[ack(11, 12, &[1, 255])], BadType(11));
        check("a", 1, &[ack(11, 13, &[1, 1])], BadTypesLength(11));
        check("a", 1, &[ack(11, 13, &[])], BadTypesLength(11));
        check("a", 1, &[ack(11, 11, &[1, 1])], BadTypesLength(11));
        check("a", 1, &[ack(9, 11, &[1])], OutsideWindow(9)); // below start
        check("a", 1, &[ack(18, 20, &[1])], OutsideWindow(18)); // beyond end
        check("a", 1, &[ack(11, i64::MAX, &[1])], OutsideWindow(11)); // huge
        check("a", 1, &[ack(i64::MIN, i64::MAX, &[1])], OutsideWindow(i64::MIN));
        check("a", 1, &[ack(11, 12, &[1]), ack(12, 13, &[1])], Overlapping(12));
        check("a", 1, &[ack(13, 14, &[1]), ack(11, 13, &[1])], Overlapping(13));
        // A valid range followed by an invalid one: nothing is applied.
        check("a", 1, &[ack(11, 11, &[1]), ack(15, 15, &[1])], NotAcquired(15));
        ok(&mut p, "a", 1, &[ack(11, 14, &[1]), ack(17, 19, &[1])]);
        assert_eq!(p.start(), 15);
    }

    #[test]
    fn hostile_acquire_input_is_harmless() {
        let mut p = sp(100, 0);
        assert!(p.acquire("a", i64::MAX, &[(5, 1), (-9, -1)], usize::MAX).is_empty());
        assert_eq!((p.start(), p.end()), (0, 0));
        let got = p.acquire("a", i64::MAX, &[(i64::MAX - 2, i64::MAX)], usize::MAX);
        assert_eq!(got, [acq(i64::MAX - 2, i64::MAX - 1, 1)]);
        assert_eq!((p.end(), p.next_deadline()), (i64::MAX, Some(i64::MAX)));
        assert!(p.acknowledge("a", 0, &[ack(i64::MAX - 2, i64::MAX, &[1])]).is_err());
        ok(&mut p, "a", 0, &[ack(i64::MAX - 2, i64::MAX - 1, &[1])]);
        assert_eq!((p.start(), p.in_flight()), (i64::MAX, 0));
        let l = SharePartition::new(Limits::new(-5, -1, 0), -7).limits();
        assert_eq!(l, Limits::new(0, 1, 1));
    }

    #[test]
    fn log_start_moved_and_reset() {
        let mut p = sp(100, 0);
        p.acquire("a", 0, &[(0, 9)], 100);
        p.log_start_moved(-3);
        assert_eq!(p.start(), 0);
        p.log_start_moved(4);
        assert_eq!((p.start(), p.end(), p.acquired_by("a")), (4, 10, 6));
        assert!(p.acknowledge("a", 1, &[ack(3, 4, &[1])]).is_err());
        ok(&mut p, "a", 1, &[ack(4, 4, &[1])]);
        p.log_start_moved(20);
        assert_eq!((p.start(), p.end(), p.counts()), (20, 20, StateCounts::default()));
        assert_eq!(p.acquire("a", 1, &[(18, 25)], 100), [acq(20, 25, 1)]);
        p.reset(3);
        assert_eq!((p.start(), p.end(), p.acquired_by("a"), p.next_deadline()), (3, 3, 0, None));
        p.reset(-1);
        assert_eq!((p.start(), p.acquire("a", 0, &[(0, 9)], 100)), (0, vec![acq(0, 9, 1)]));
    }

    fn b(first: i64, last: i64, state: u8, delivery_count: i16) -> StateBatch {
        StateBatch { first, last, state, delivery_count }
    }

    #[test]
    fn snapshot_round_trip() {
        let mut p = sp(100, 0);
        let log = [(0, 4), (5, 9), (12, 13)];
        p.acquire("a", 0, &log, 100);
        ok(&mut p, "a", 1, &[ack(2, 3, &[1, 3]), ack(5, 6, &[2])]);
        let snap = p.snapshot();
        let expected = vec![
            b(0, 1, STATE_AVAILABLE, 1), // acquired, persisted as available
            b(2, 2, STATE_ACKNOWLEDGED, 1),
            b(3, 3, STATE_ARCHIVED, 1),
            b(4, 9, STATE_AVAILABLE, 1), // acquired and released persist alike
            b(10, 11, STATE_ARCHIVED, 0),
            b(12, 13, STATE_AVAILABLE, 1),
        ];
        assert_eq!(snap, Snapshot { start_offset: 0, batches: expected });
        let mut back = SharePartition::from_snapshot(p.limits(), &snap).unwrap();
        assert_eq!((back.snapshot(), back.end(), back.counts().acquired), (snap, 14, 0));
        let got = back.acquire("b", 0, &log, 100);
        assert_eq!(got, [acq(0, 1, 2), acq(4, 9, 2), acq(12, 13, 2)]);
        // Gaps between batches are available; a finished prefix moves start; available records
        // at the delivery limit come back archived.
        let batches = vec![b(5, 6, 2, 1), b(9, 9, 0, 3), b(10, 10, 0, 2)];
        let p = SharePartition::from_snapshot(p.limits(), &Snapshot { start_offset: 5, batches });
        let p = p.unwrap();
        assert_eq!((p.start(), p.end(), p.state_at(8)), (7, 11, Some((Available, 0))));
        assert_eq!(at(&p, 9), Some(Archived));
        let empty = Snapshot { start_offset: 42, batches: vec![] };
        let p = SharePartition::from_snapshot(p.limits(), &empty).unwrap();
        assert_eq!((p.start(), p.end(), p.snapshot()), (42, 42, empty));
    }

    #[test]
    fn corrupt_snapshots_are_refused() {
        use SnapshotError::*;
        let cases = [
            (-1, vec![], NegativeStartOffset),
            (0, vec![b(3, 2, 0, 1)], ReversedBatch(0)),
            (5, vec![b(3, 6, 0, 1)], OutOfOrder(0)),
            (0, vec![b(0, 4, 0, 1), b(4, 6, 0, 1)], OutOfOrder(1)),
            (0, vec![b(5, 6, 0, 1), b(0, 1, 0, 1)], OutOfOrder(1)),
            (0, vec![b(0, i64::MAX, 0, 1)], OffsetOverflow(0)),
            (0, vec![b(0, 1, 0, 1), b(2, 2, 1, 1)], BadState(1)),
            (0, vec![b(0, 1, 3, 1)], BadState(0)),
            (0, vec![b(0, 1, 0, -1)], NegativeDeliveryCount(0)),
        ];
        for (start_offset, batches, err) in cases {
            let snap = Snapshot { start_offset, batches };
            assert_eq!(SharePartition::from_snapshot(Limits::default(), &snap), Err(err));
        }
    }

    /// Naive reference implementation: one entry per in-flight offset.
    struct Model {
        lim: Limits,
        start: i64,
        end: i64,
        recs: BTreeMap<i64, (RecordState, i16)>,
    }

    impl Model {
        fn view(&self, o: i64) -> Option<(RecordState, i16)> {
            match o {
                o if o < self.start => None,
                o if o >= self.end => Some((Available, 0)),
                o => self.recs.get(&o).cloned(),
            }
        }

        fn advance(&mut self) {
            while self.start < self.end && self.recs[&self.start].0.is_finished() {
                self.recs.remove(&self.start);
                self.start += 1;
            }
        }

        fn release(&mut self, o: i64) {
            let r = self.recs.get_mut(&o).unwrap();
            r.0 = if r.1 >= self.lim.delivery_limit { Archived } else { Available };
        }

        fn acquire(&mut self, m: &str, now: i64, log: &[(i64, i64)], max: u64, strict: bool) -> Vec<(i64, i16)> {
            let (mut got, mut budget, mut cursor) = (vec![], max, self.start);
            let lock = held(m, now + self.lim.lock_duration_ms);
            for &(first, last) in log {
                let first = first.max(self.start);
                if budget == 0 || first > last {
                    continue;
                }
                for o in cursor..first.min(self.end) {
                    let r = self.recs.get_mut(&o).unwrap();
                    r.0 = if r.0 == Available { Archived } else { r.0.clone() };
                }
                cursor = cursor.max(last + 1);
                for o in first..=last.min(self.end - 1) {
                    let r = self.recs.get_mut(&o).unwrap();
                    if budget > 0 && r.0 == Available && r.1 < self.lim.delivery_limit {
                        *r = (lock.clone(), r.1 + 1);
                        got.push((o, r.1));
                        budget -= 1;
                    }
                }
                if budget > 0 && last >= self.end && self.end - self.start < self.lim.max_in_flight {
                    let last = if strict { last.min(first.max(self.end) + budget as i64 - 1) } else { last };
                    for o in self.end..=last {
                        let state = if o < first { (Archived, 0) } else { (lock.clone(), 1) };
                        if o >= first {
                            got.push((o, 1));
                            budget = budget.saturating_sub(1);
                        }
                        self.recs.insert(o, state);
                    }
                    self.end = last + 1;
                }
            }
            self.advance();
            got
        }

        fn ack(&mut self, m: &str, now: i64, acks: &[(i64, i64, Vec<u8>)]) -> bool {
            let mut seen = BTreeSet::new();
            for (f, l, types) in acks {
                let len_ok = types.len() == 1 || types.len() as i64 == l - f + 1;
                if f > l || !len_ok || types.iter().any(|&t| t > 4) {
                    return false;
                }
                for o in *f..=*l {
                    let v = self.view(o).filter(|_| o < self.end);
                    let mine = v.is_some_and(|(s, _)| s.holder().is_some_and(|(h, d)| h == m && d > now));
                    if !mine || !seen.insert(o) {
                        return false;
                    }
                }
            }
            for (f, l, types) in acks {
                for (i, o) in (*f..=*l).enumerate() {
                    let t = types[if types.len() == 1 { 0 } else { i }];
                    let renewed = held(m, now + self.lim.lock_duration_ms);
                    self.recs.get_mut(&o).unwrap().0 =
                        [Archived, Acked, Available, Archived, renewed][t as usize].clone();
                    if t == 2 {
                        self.release(o);
                    }
                }
            }
            self.advance();
            true
        }

        fn release_if(&mut self, pred: impl Fn((&str, i64)) -> bool) -> usize {
            let hit: Vec<i64> =
                self.recs.iter().filter(|(_, r)| r.0.holder().is_some_and(&pred)).map(|(o, _)| *o).collect();
            hit.iter().for_each(|&o| self.release(o));
            self.advance();
            hit.len()
        }
    }

    #[test]
    fn random_operations_match_a_per_offset_model() {
        random_run(0x9E37_79B9_7F4A_7C15, Limits::new(200, 3, 16));
        random_run(0x0123_4567_89AB_CDEF, Limits::new(60, 1, 4)); // every release archives
    }

    /// Runs random operations from 3 members against `SharePartition` and `Model` in lockstep.
    fn random_run(seed: u64, l: Limits) {
        let mut rng = Rng(seed);
        // A log of batches of 1..=4 records with occasional gaps (compaction).
        let (mut log, mut o) = (Vec::new(), 0);
        while o < 50_000 {
            o += if rng.below(6) == 0 { 1 + rng.below(2) as i64 } else { 0 };
            let len = 1 + rng.below(4) as i64;
            log.push((o, o + len - 1));
            o += len;
        }
        let mut p = SharePartition::new(l, 0);
        let mut m = Model { lim: l, start: 0, end: 0, recs: BTreeMap::new() };
        let members = ["m0", "m1", "m2"];
        let (mut now, mut acked) = (0, 0);
        for step in 0..6000 {
            now += rng.below(15) as i64;
            let who = members[rng.below(3) as usize];
            match rng.below(100) {
                0..=34 => {
                    let i = log.partition_point(|&(_, last)| last < p.start());
                    let k = rng.below(6) as usize;
                    let (batches, max) = (&log[i..(i + k).min(log.len())], rng.below(12));
                    let before = p.clone();
                    let mut flat = Vec::new();
                    let strict = rng.below(3) == 0;
                    let got = if strict {
                        p.acquire_at_most(who, now, batches, max as usize)
                    } else {
                        p.acquire(who, now, batches, max as usize)
                    };
                    for a in got {
                        for o in a.first..=a.last {
                            let prev = before.state_at(o).unwrap().0;
                            assert!(prev.holder().is_none(), "{o} acquired twice at once");
                            flat.push((o, a.delivery_count));
                        }
                    }
                    assert_eq!(flat, m.acquire(who, now, batches, max, strict), "step {step}");
                }
                35..=69 => {
                    // Mostly acknowledge as a member that holds something, so many requests succeed.
                    let who = match m.recs.values().filter_map(|r| r.0.holder()).nth(rng.below(8) as usize) {
                        Some((h, _)) if rng.below(4) != 0 => members.into_iter().find(|w| *w == h).unwrap(),
                        _ => who,
                    };
                    let mine: Vec<i64> =
                        (m.start..m.end).filter(|o| m.recs[o].0.holder().is_some_and(|(h, _)| h == who)).collect();
                    let mut acks = Vec::new();
                    for _ in 0..1 + rng.below(2) {
                        let (f, mut l) = match mine.get(rng.below(mine.len() as u64 + 1) as usize) {
                            Some(&f) if rng.below(8) != 0 => (f, f),
                            _ => (m.start - 3 + rng.below(10) as i64, m.start + rng.below(8) as i64),
                        };
                        while rng.below(4) != 0 && mine.contains(&(l + 1)) {
                            l += 1;
                        }
                        let n = if rng.below(2) == 0 { 1 } else { (l - f + 1).max(0) as u64 + rng.below(12) / 11 };
                        acks.push((f, l, (0..n).map(|_| (rng.below(81) / 16) as u8).collect::<Vec<_>>()));
                    }
                    let done = p.acknowledge(who, now, &acks).is_ok();
                    assert_eq!(done, m.ack(who, now, &acks), "step {step}: {acks:?}");
                    acked += done as u32;
                }
                70..=81 => assert_eq!(p.expire(now), m.release_if(|(_, d)| d <= now)),
                82..=87 => assert_eq!(p.release_member(who), m.release_if(|(h, _)| h == who)),
                88..=91 => {
                    let to = p.start() + rng.below(4) as i64;
                    p.log_start_moved(to);
                    if to > m.start {
                        m.recs.retain(|&o, _| o >= to);
                        (m.start, m.end) = (to, m.end.max(to));
                        m.advance();
                    }
                }
                92..=97 => {
                    p = SharePartition::from_snapshot(l, &p.snapshot()).unwrap();
                    m.release_if(|_| true); // locks do not survive a restart
                }
                98 => {
                    // Compaction removes a batch: its offsets become a gap in later reads.
                    let i = log.partition_point(|&(_, last)| last < p.start()) + rng.below(4) as usize;
                    log.remove(i.min(log.len() - 1));
                }
                _ => {
                    let to = p.start() + rng.below(6) as i64;
                    p.reset(to);
                    (m.start, m.end) = (to, to);
                    m.recs.clear();
                }
            }
            assert_eq!((p.start(), p.end()), (m.start, m.end), "step {step}");
            let mut c = [0u64; 4];
            for o in (m.start - 2)..(m.end + 2) {
                assert_eq!(p.state_at(o), m.view(o), "step {step} offset {o}");
                match m.view(o).filter(|_| o < m.end).map(|(s, _)| s) {
                    Some(Available) => c[0] += 1,
                    Some(RecordState::Acquired { .. }) => c[1] += 1,
                    Some(Acked) => c[2] += 1,
                    Some(Archived) => c[3] += 1,
                    None => {}
                }
            }
            let pc = p.counts();
            assert_eq!([pc.available, pc.acquired, pc.acknowledged, pc.archived], c, "step {step}");
            let by_member: usize = members.iter().map(|w| p.acquired_by(w)).sum();
            assert_eq!(by_member as u64, pc.acquired);
        }
        assert!(acked > 200 && m.start > 1000, "too little progress: {acked} acks, {}", m.start);
    }

    #[test]
    fn the_next_fetch_skips_what_peers_hold() {
        let mut sp = SharePartition::new(Limits::default(), 0);
        assert_eq!(sp.next_fetch_offset(), 0);
        assert_eq!(sp.acquire("a", 0, &[(0, 9)], 100).len(), 1);
        assert_eq!(sp.next_fetch_offset(), 10, "all in flight is locked: read from the end");
        // b reads from 10 and gets the next batch, not a's.
        let got = sp.acquire("b", 0, &[(10, 19)], 100);
        assert_eq!(got, vec![Acquired { first: 10, last: 19, delivery_count: 1 }]);
        sp.acknowledge("a", 1, &[(3, 4, vec![ACK_RELEASE])]).unwrap();
        assert_eq!(sp.next_fetch_offset(), 3, "released records are read again first");
        let got = sp.acquire("c", 2, &[(0, 9), (10, 19)], 100);
        assert_eq!(got, vec![Acquired { first: 3, last: 4, delivery_count: 2 }]);
    }
}
