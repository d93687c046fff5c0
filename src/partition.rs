//! A partition as this broker holds it: its log, its replication role (ADR 0010), the
//! offsets readers wait on (high watermark, log end, log start), the notification that
//! wakes parked fetches and `acks=all` producers, and the fsync bookkeeping behind
//! `flush.messages`/`flush.ms`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strom_protocol::records::BatchHeader;
use strom_storage::{AppendInfo, Log, SequenceError};
use tokio::sync::Notify;

use crate::error::ErrorCode;
use leader::LeaderState;

pub mod leader;

/// What this broker is for a partition.
#[derive(Debug)]
pub enum Role {
    /// The only copy (a single node): everything appended is committed at once.
    Solo,
    /// The leader of a replicated partition: the HW follows the ISR.
    Leader(Box<LeaderState>),
    /// A follower of `leader` at `epoch`: its log is a copy of the leader's.
    Follower {
        /// The leader's broker id (-1 while there is none).
        leader: i32,
        /// The leader epoch it follows.
        epoch: i32,
    },
    /// Not a replica of this partition (its local log stays empty).
    Outside,
}

/// What a leader knows of its replicas (metrics, `strom topic describe`).
#[derive(Debug, Clone)]
pub struct ReplicationView {
    /// All replicas, preferred leader first.
    pub replicas: Vec<i32>,
    /// The committed ISR.
    pub isr: Vec<i32>,
    /// `min.insync.replicas`.
    pub min_isr: usize,
    /// Each follower's progress.
    pub followers: Vec<(i32, leader::Progress)>,
}

/// The log and the role, under one lock: appends, truncation and role changes never
/// interleave.
struct Inner {
    log: Log,
    role: Role,
}

/// One partition: its log and the state readers wait on.
pub struct Partition {
    pub topic: Arc<str>,
    pub index: i32,
    /// Bumped when leadership changes (the metadata image's); a single node keeps 0.
    leader_epoch: std::sync::atomic::AtomicI32,
    inner: Mutex<Inner>,
    /// Mirrors of log state readable without the lock.
    high_watermark: AtomicI64,
    log_end: AtomicI64,
    log_start_offset: AtomicI64,
    /// First offset of the earliest open transaction (`i64::MAX`: none).
    first_unstable: AtomicI64,
    /// Woken on every append and high-watermark or ISR change, so long-polling fetches
    /// and `acks=all` producers need no timers to notice.
    pub appended: Notify,
    /// Every offset below this is known to be on disk (fsync'd).
    synced: AtomicI64,
    /// Records appended since the last fsync (`flush.messages`).
    unflushed: AtomicI64,
    /// When the last fsync completed (`flush.ms`), in ms since the epoch.
    last_sync_ms: AtomicI64,
    /// Serialises fsyncs; waiters whose data a finished fsync covered return at once.
    sync_lock: tokio::sync::Mutex<()>,
    /// Segment count when the cleaner last compacted this partition.
    pub(crate) compacted_at_segments: std::sync::atomic::AtomicUsize,
    /// fsyncs performed (each may cover many producers' appends).
    fsyncs: std::sync::atomic::AtomicU64,
    /// Set when an fsync failed: the partition refuses writes (KAFKA_STORAGE_ERROR), as
    /// Kafka takes a failed log directory offline, but keeps serving reads.
    failed: std::sync::atomic::AtomicBool,
}

impl Partition {
    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Takes the leader epoch the metadata image gives this partition.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    /// A partition over an opened log, led by this broker at epoch 0.
    pub fn new(topic: Arc<str>, index: i32, log: Log) -> Partition {
        let (hw, start) = (log.log_end_offset(), log.log_start_offset());
        let first_unstable = log.producer_state().first_unstable_offset().unwrap_or(i64::MAX);
        Partition {
            topic,
            index,
            leader_epoch: std::sync::atomic::AtomicI32::new(0),
            inner: Mutex::new(Inner { log, role: Role::Solo }),
            high_watermark: AtomicI64::new(hw),
            log_end: AtomicI64::new(hw),
            first_unstable: AtomicI64::new(first_unstable),
            log_start_offset: AtomicI64::new(start),
            appended: Notify::new(),
            synced: AtomicI64::new(0),
            unflushed: AtomicI64::new(0),
            last_sync_ms: AtomicI64::new(strom_storage::now_ms()),
            sync_lock: tokio::sync::Mutex::new(()),
            failed: std::sync::atomic::AtomicBool::new(false),
            fsyncs: std::sync::atomic::AtomicU64::new(0),
            compacted_at_segments: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Debug for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Partition({}-{})", self.topic, self.index)
    }
}

impl Partition {
    /// The high watermark: everything below it is committed (on a single node,
    /// everything appended).
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The log end offset: the offset the next record gets.
    pub fn log_end_offset(&self) -> i64 {
        self.log_end.load(Ordering::Acquire)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// Runs `f` with the log locked. Storage calls are short (positional writes, mapped
    /// reads), so a plain mutex held for their duration is fine on async threads.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        self.with_inner(|inner| f(&mut inner.log))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the log and role, then brings the mirrors (and the leader's HW) up to
    /// date, waking waiters if the HW moved.
    fn with_inner<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.lock();
        let out = f(&mut inner);
        let moved = self.mirror(&mut inner);
        drop(inner);
        if moved {
            self.appended.notify_waiters();
        }
        out
    }

    /// Updates the lock-free mirrors; returns whether the high watermark moved.
    fn mirror(&self, inner: &mut Inner) -> bool {
        let leo = inner.log.log_end_offset();
        self.log_end.store(leo, Ordering::Release);
        let first_unstable = inner.log.producer_state().first_unstable_offset().unwrap_or(i64::MAX);
        self.first_unstable.store(first_unstable, Ordering::Release);
        self.log_start_offset.store(inner.log.log_start_offset(), Ordering::Release);
        let hw = match &mut inner.role {
            Role::Solo => leo,
            Role::Leader(s) => {
                s.appended(leo);
                s.hw()
            }
            // A follower learns its HW from the leader; a truncation may lower its end.
            // A replica removed from the partition (Outside) keeps what it knew: raising
            // it to the log end acknowledged `acks=all` batches still waiting on a leader
            // removed by a reassignment, which its followers did not have (found by
            // scripts/cluster_test.py: the next batch was out of sequence at the new leader).
            Role::Follower { .. } | Role::Outside => self.high_watermark.load(Ordering::Acquire).min(leo),
        };
        self.high_watermark.swap(hw, Ordering::AcqRel) != hw
    }
}

impl Partition {
    /// Appends one producer batch (already validated, and rewritten if the topic asks
    /// for it, by the handler) and wakes waiting fetches. Storage runs the idempotent
    /// sequence check and patches the base offset and leader epoch in place; a retried
    /// duplicate comes back with its original offsets and `duplicate` set.
    pub fn append(&self, batch: &[u8]) -> Result<AppendInfo, (ErrorCode, String)> {
        self.append_guarded(batch, None)
    }

    /// [`Self::append`] of a transactional batch verified with its coordinator
    /// (KIP-890): `guard` is the producer id and the count of its markers seen before
    /// the verification; if a marker came since, the transaction the verification
    /// vouched for is over and the batch is refused (INVALID_TXN_STATE) instead of
    /// opening a transaction no marker will end.
    pub fn append_guarded(&self, batch: &[u8], guard: Option<(i64, u64)>) -> Result<AppendInfo, (ErrorCode, String)> {
        if self.failed.load(Ordering::Acquire) {
            return Err((ErrorCode::KafkaStorageError, "an earlier fsync of this partition failed".into()));
        }
        let result = self.with_inner(|inner| {
            // Only a leader writes its own batches; a follower's log is its leader's copy.
            if !matches!(inner.role, Role::Solo | Role::Leader(_)) {
                return Ok(None);
            }
            if let Some((producer_id, markers)) = guard {
                if inner.log.producer_state().markers_seen(producer_id) != markers {
                    return Ok(Some(Err(())));
                }
            }
            inner.log.append(batch, self.leader_epoch()).map(|info| Some(Ok(info)))
        });
        let result = match result {
            Ok(None) => return Err((ErrorCode::NotLeaderOrFollower, "this broker does not lead the partition".into())),
            Ok(Some(Err(()))) => {
                return Err((
                    ErrorCode::InvalidTxnState,
                    "the producer's transaction ended since the batch was verified".into(),
                ))
            }
            Ok(Some(Ok(info))) => Ok(info),
            Err(e) => Err(e),
        };
        match result {
            Ok(info) => {
                if !info.duplicate {
                    self.appended.notify_waiters();
                }
                Ok(info)
            }
            Err(e) => {
                let code = storage_error_code(&e);
                if code == ErrorCode::KafkaStorageError {
                    // ENOSPC, EIO and friends: the operator needs to see this one.
                    tracing::error!(partition = ?self, error = %e, full = e.is_storage_full(), "write failed");
                }
                Err((code, e.to_string()))
            }
        }
    }

    /// The last stable offset: the high watermark, or the first offset of the earliest
    /// open transaction below it (ADR 0012). `read_committed` consumers read below it.
    pub fn last_stable_offset(&self) -> i64 {
        // A lock-free mirror, as the high watermark: read on every fetch.
        self.high_watermark().min(self.first_unstable.load(Ordering::Acquire))
    }

    /// Whole committed batches (below the high watermark) from `offset`, up to
    /// `max_bytes` (at least one batch), zero-copy: what consumers may see.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, ErrorCode> {
        self.read_below(offset, max_bytes, self.high_watermark())
    }

    /// [`Self::read`] for `read_committed` consumers: below the last stable offset.
    pub fn read_committed(&self, offset: i64, max_bytes: usize) -> Result<Bytes, ErrorCode> {
        self.read_below(offset, max_bytes, self.last_stable_offset())
    }

    /// The aborted transactions (producer id, first offset) that may hold records in
    /// `[from, upto)`: a `read_committed` fetch lists them so the client drops those
    /// records (ADR 0012).
    pub fn aborted_transactions(&self, from: i64, upto: i64) -> Vec<(i64, i64)> {
        self.with_log(|log| log.aborted_transactions(from, upto))
            .into_iter()
            .map(|a| (a.producer_id, a.first_offset))
            .collect()
    }

    /// Whole batches from `offset` that start below `hw`, a batch boundary (the high
    /// watermark and the first offset of a transaction both are).
    fn read_below(&self, offset: i64, max_bytes: usize, hw: i64) -> Result<Bytes, ErrorCode> {
        let data = self.read_to_end(offset, max_bytes)?;
        if self.log_end_offset() <= hw {
            return Ok(data);
        }
        // The HW is always a batch boundary (followers copy whole batches), so committed
        // data is a prefix of whole batches.
        let mut end = 0;
        for span in strom_protocol::records::split_batches(&data) {
            let Ok(r) = span else { break };
            match data.get(r.clone()).and_then(|b| strom_protocol::records::BatchHeader::parse(b).ok()) {
                Some(h) if h.base_offset < hw => end = r.end,
                _ => break,
            }
        }
        Ok(data.slice(..end))
    }

    /// Whole batches from `offset` up to the log end (a follower's fetch), zero-copy.
    pub fn read_to_end(&self, offset: i64, max_bytes: usize) -> Result<Bytes, ErrorCode> {
        self.with_log(|log| log.read(offset, max_bytes)).map(|r| r.data).map_err(|e| storage_error_code(&e))
    }

    /// Walks the log's batches from `from` (raised to the log start) that begin below
    /// `below`, calling `f` with each batch's header and bytes; returns the offset after
    /// the last batch walked. How the internal topics' readers (the group and transaction
    /// coordinators' loaders, the schema registry) replay their state. It stops at the
    /// first unreadable or unparsable data rather than skip it, and never loops without
    /// progress, whatever the log holds.
    pub fn scan_batches(&self, from: i64, below: i64, mut f: impl FnMut(&BatchHeader, &Bytes)) -> i64 {
        let mut offset = from.max(self.log_start_offset());
        while offset < below {
            let Ok(data) = self.read_to_end(offset, 1 << 20) else { break };
            let before = offset;
            for range in strom_protocol::records::split_batches(&data) {
                let Ok(range) = range else { break };
                let batch = data.slice(range);
                let Ok(header) = BatchHeader::parse(&batch) else { break };
                if header.base_offset >= below {
                    return offset;
                }
                offset = header.last_offset().saturating_add(1);
                f(&header, &batch);
            }
            if offset <= before {
                break;
            }
        }
        offset
    }

    /// The largest timestamp in the log and the base offset of the batch holding it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.with_log(|log| log.max_timestamp())
    }

    /// The base offset of the first batch with a timestamp at or after `ts`.
    pub fn batch_for_timestamp(&self, ts: i64) -> Result<Option<i64>, ErrorCode> {
        self.with_log(|log| log.offset_for_timestamp(ts))
            .map(|o| o.map(|(offset, _)| offset))
            .map_err(|e| storage_error_code(&e))
    }
}

impl Partition {
    /// Every offset below this has been fsync'd.
    pub fn durable_offset(&self) -> i64 {
        self.synced.load(Ordering::Acquire)
    }

    /// How many fsyncs this partition has done.
    pub fn fsync_count(&self) -> u64 {
        self.fsyncs.load(Ordering::Relaxed)
    }

    /// Adds `records` to the unflushed count and returns the new count.
    pub fn count_unflushed(&self, records: i64) -> i64 {
        self.unflushed.fetch_add(records, Ordering::AcqRel) + records
    }

    /// Makes every offset below `target` durable. Concurrent callers share fsyncs (group
    /// commit): whoever holds the lock syncs everything appended so far, and those who
    /// waited find their data already covered. A failed fsync is never followed by an
    /// acknowledgement: the caller gets KAFKA_STORAGE_ERROR and the partition refuses
    /// further writes.
    pub async fn sync_through(&self, target: i64) -> Result<(), ErrorCode> {
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let _turn = self.sync_lock.lock().await;
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        if self.failed.load(Ordering::Acquire) {
            return Err(ErrorCode::KafkaStorageError);
        }
        let handle = self.with_log(|log| log.sync_handle()).map_err(|e| storage_error_code(&e))?;
        let Some((file, upto)) = handle else { return Ok(()) };
        let unflushed_before = self.unflushed.load(Ordering::Acquire);
        match tokio::task::spawn_blocking(move || file.sync_data()).await {
            Ok(Ok(())) => {
                self.fsyncs.fetch_add(1, Ordering::Relaxed);
                self.synced.fetch_max(upto, Ordering::AcqRel);
                self.unflushed.fetch_sub(unflushed_before, Ordering::AcqRel);
                self.last_sync_ms.store(strom_storage::now_ms(), Ordering::Release);
                Ok(())
            }
            outcome => {
                self.failed.store(true, Ordering::Release);
                tracing::error!(partition = ?self, outcome = ?outcome.map(|r| r.err()), "fsync failed: partition is now read-only");
                Err(ErrorCode::KafkaStorageError)
            }
        }
    }

    /// `flush.ms`: fsyncs if there is unflushed data older than `interval_ms`.
    pub async fn sync_if_older_than(&self, interval_ms: i64, now_ms: i64) {
        if self.unflushed.load(Ordering::Acquire) > 0
            && now_ms - self.last_sync_ms.load(Ordering::Acquire) >= interval_ms
        {
            let _ = self.sync_through(self.high_watermark()).await;
        }
    }

    /// Bytes of the partition's log on disk.
    pub fn size_bytes(&self) -> u64 {
        self.with_log(|log| log.size_bytes())
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1: the high watermark).
    pub fn delete_records(&self, offset: i64) -> Result<i64, ErrorCode> {
        let target = if offset == -1 { self.high_watermark() } else { offset };
        if target > self.high_watermark() || target < -1 {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        self.with_log(|log| log.delete_records_before(target)).map_err(|e| storage_error_code(&e))
    }
}

/// Replication (ADR 0010): role changes from the metadata image, the leader's side of
/// follower fetches, the follower's side of copying, and `acks=all`.
impl Partition {
    /// Takes leadership at `leader_epoch` (or, at the same epoch, a newer placement).
    /// A new epoch is recorded in the log's epoch cache at the current log end, so
    /// followers asking about older epochs learn where they ended.
    #[allow(clippy::too_many_arguments)]
    pub fn become_leader(
        &self,
        me: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        min_isr: usize,
        now_ms: i64,
    ) {
        self.with_inner(|inner| {
            // Under the lock, so no append slips in with the old epoch.
            self.set_leader_epoch(leader_epoch);
            let leo = inner.log.log_end_offset();
            match &mut inner.role {
                Role::Leader(s) if s.leader_epoch == leader_epoch => {
                    s.update(partition_epoch, replicas, isr, min_isr, leo, now_ms);
                }
                _ => {
                    self.forget_unreplicated_hw(inner);
                    if let Err(e) = inner.log.assign_epoch(leader_epoch, leo) {
                        tracing::error!(partition = ?self, error = %e, "could not record the new leader epoch");
                    }
                    let hw = self.high_watermark.load(Ordering::Acquire);
                    let s =
                        LeaderState::new(me, leader_epoch, partition_epoch, replicas, isr, hw, leo, min_isr, now_ms);
                    tracing::info!(partition = ?self, leader_epoch, hw, leo, "leading");
                    inner.role = Role::Leader(Box::new(s));
                }
            }
        });
        // Producers waiting on `acks=all` re-check the ISR.
        self.appended.notify_waiters();
    }

    /// Follows `leader` at `epoch` (-1: no leader yet). Returns whether this is a change
    /// (the fetcher then truncates before it fetches).
    pub fn become_follower(&self, leader: i32, epoch: i32) -> bool {
        let changed = self.with_inner(|inner| match inner.role {
            Role::Follower { leader: l, epoch: e } if l == leader && e == epoch => false,
            _ => {
                self.set_leader_epoch(epoch);
                self.forget_unreplicated_hw(inner);
                if matches!(inner.role, Role::Leader(_)) {
                    tracing::info!(partition = ?self, leader, epoch, "following");
                }
                inner.role = Role::Follower { leader, epoch };
                true
            }
        });
        self.appended.notify_waiters();
        changed
    }

    /// A log opened at start (`Solo`) or kept while this broker was no replica
    /// (`Outside`) has no high watermark it can vouch for: its end may hold records that
    /// were never committed. Kafka starts from its high-watermark checkpoint; Strom keeps
    /// none and starts from the log start, the one offset known committed (ADR 0010): a
    /// follower then learns the HW from its leader, a leader from its ISR's fetches.
    fn forget_unreplicated_hw(&self, inner: &Inner) {
        if matches!(inner.role, Role::Solo | Role::Outside) {
            self.high_watermark.store(inner.log.log_start_offset(), Ordering::Release);
        }
    }

    /// Not a replica here (any more).
    pub fn become_outside(&self) {
        self.with_inner(|inner| inner.role = Role::Outside);
        self.appended.notify_waiters();
    }

    /// Whether this broker holds a copy of the partition (leader, follower or only copy).
    pub fn is_replica(&self) -> bool {
        !matches!(self.lock().role, Role::Outside)
    }

    /// Whether this broker is the partition's leader (or its only copy).
    pub fn is_leader(&self) -> bool {
        matches!(self.lock().role, Role::Solo | Role::Leader(_))
    }

    /// The leader and epoch this broker follows, if it is a follower.
    pub fn following(&self) -> Option<(i32, i32)> {
        match self.lock().role {
            Role::Follower { leader, epoch } => Some((leader, epoch)),
            _ => None,
        }
    }

    /// A follower fetch at `fetch_offset`, claiming `current_leader_epoch` (-1: any).
    /// Checked like Kafka: not the leader is NOT_LEADER_OR_FOLLOWER, an older epoch
    /// FENCED_LEADER_EPOCH, a newer one UNKNOWN_LEADER_EPOCH, a non-replica
    /// NOT_LEADER_OR_FOLLOWER, an offset past the end OFFSET_OUT_OF_RANGE.
    pub fn follower_fetched(
        &self,
        replica: i32,
        fetch_offset: i64,
        current_leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(), ErrorCode> {
        self.with_inner(|inner| {
            let leo = inner.log.log_end_offset();
            let Role::Leader(s) = &mut inner.role else { return Err(ErrorCode::NotLeaderOrFollower) };
            if current_leader_epoch >= 0 && current_leader_epoch < s.leader_epoch {
                return Err(ErrorCode::FencedLeaderEpoch);
            }
            if current_leader_epoch > s.leader_epoch {
                return Err(ErrorCode::UnknownLeaderEpoch);
            }
            if !s.is_follower(replica) {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
            if fetch_offset > leo || fetch_offset < inner.log.log_start_offset() {
                return Err(ErrorCode::OffsetOutOfRange);
            }
            s.fetched(replica, fetch_offset, leo, now_ms);
            Ok(())
        })
    }

    /// A follower appends what its leader at `epoch` sent (whole batches as the leader
    /// wrote them) and takes `min(leader_hw, own end)` as its HW. Refused if this broker
    /// no longer follows at that epoch (a role change raced the fetch).
    pub fn append_replicated(&self, data: &[u8], epoch: i32, leader_hw: i64) -> Result<usize, ErrorCode> {
        let out = self.with_inner(|inner| {
            if !matches!(inner.role, Role::Follower { epoch: e, .. } if e == epoch) {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
            let (batches, leo) = inner
                .log
                .append_replicated_batches(data, strom_storage::now_ms())
                .map_err(|e| storage_error_code(&e))?;
            let hw = leader_hw.min(leo);
            let moved = self.high_watermark.fetch_max(hw, Ordering::AcqRel) < hw;
            Ok((batches, moved))
        });
        // Waiters for the high watermark (a registry answering read-your-write, consumers
        // reading committed data) wake when it moves, also when a fetch brought no records.
        if matches!(out, Ok((n, moved)) if n > 0 || moved) {
            self.appended.notify_waiters();
        }
        out.map(|(n, _)| n)
    }

    /// A follower cuts its log back to `offset` (after OffsetForLeaderEpoch), or, with
    /// `reset`, empties it to start at `offset` (its leader's log starts past its end).
    /// Returns the new log end.
    pub fn truncate_follower(&self, offset: i64, reset: bool, epoch: i32) -> Result<i64, ErrorCode> {
        self.with_inner(|inner| {
            if !matches!(inner.role, Role::Follower { epoch: e, .. } if e == epoch) {
                return Err(ErrorCode::NotLeaderOrFollower);
            }
            let r = if reset { inner.log.reset_to(offset).map(|_| offset) } else { inner.log.truncate_to(offset) };
            let leo = r.map_err(|e| storage_error_code(&e))?;
            if reset {
                self.high_watermark.store(offset, Ordering::Release);
            }
            Ok(leo)
        })
    }

    /// The largest epoch at or below `epoch` in this log and where it ends (Kafka's
    /// OffsetForLeaderEpoch answer); `None` if the log has nothing that old.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.lock().log.end_offset_for_epoch(epoch)
    }

    /// The latest leader epoch this log holds records of (or was assigned).
    pub fn latest_epoch(&self) -> Option<i32> {
        self.lock().log.latest_epoch()
    }

    /// The ISR change to propose now as `(isr, leader_epoch, partition_epoch)`, if this
    /// broker leads and one is due (ADR 0010).
    pub fn propose_isr(&self, now_ms: i64, lag_ms: i64) -> Option<(Vec<i32>, i32, i32)> {
        match &mut self.lock().role {
            Role::Leader(s) => s.propose(now_ms, lag_ms).map(|isr| (isr, s.leader_epoch, s.partition_epoch)),
            _ => None,
        }
    }

    /// The controller refused (or never committed) the proposal in flight.
    pub fn isr_refused(&self) {
        if let Role::Leader(s) = &mut self.lock().role {
            s.refused();
        }
    }

    /// Whether `acks=all` may append: the ISR has `min.insync.replicas` members. A
    /// single node keeps its old behaviour (always).
    pub fn enough_replicas(&self) -> bool {
        match &self.lock().role {
            Role::Solo => true,
            Role::Leader(s) => s.enough_replicas(),
            _ => false,
        }
    }

    /// The leader's view of its replicas; `None` unless this broker leads a
    /// replicated partition.
    pub fn replication_view(&self) -> Option<ReplicationView> {
        match &self.lock().role {
            Role::Leader(s) => Some(ReplicationView {
                replicas: s.replicas.clone(),
                isr: s.isr().to_vec(),
                min_isr: s.min_isr(),
                followers: s.followers().map(|(id, p)| (id, *p)).collect(),
            }),
            _ => None,
        }
    }

    /// Waits until the high watermark reaches `offset` in any role (a follower's moves
    /// with its fetches); `false` at `deadline`. Readers of a replica use it to see a
    /// write the leader has committed.
    pub async fn await_high_watermark(&self, offset: i64, deadline: tokio::time::Instant) -> bool {
        loop {
            let notified = self.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.high_watermark() >= offset {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return false;
            }
        }
    }

    /// `acks=all`: waits until everything below `offset` is committed. Answers
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR falls below `min.insync.replicas`
    /// meanwhile, NOT_LEADER_OR_FOLLOWER if leadership moves, REQUEST_TIMED_OUT at
    /// `deadline`.
    pub async fn wait_committed(&self, offset: i64, deadline: tokio::time::Instant) -> Result<(), ErrorCode> {
        loop {
            let notified = self.appended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.high_watermark() >= offset {
                return Ok(());
            }
            match &self.lock().role {
                Role::Solo => return Ok(()),
                Role::Leader(s) if !s.enough_replicas() => return Err(ErrorCode::NotEnoughReplicasAfterAppend),
                Role::Leader(_) => {}
                _ => return Err(ErrorCode::NotLeaderOrFollower),
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(ErrorCode::RequestTimedOut);
            }
        }
    }
}

/// Kafka's error code for a storage failure.
pub fn storage_error_code(e: &strom_storage::Error) -> ErrorCode {
    match e {
        strom_storage::Error::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        strom_storage::Error::InvalidBatch(_) => ErrorCode::CorruptMessage,
        strom_storage::Error::Sequence(s) => match s {
            SequenceError::StaleEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            SequenceError::OutOfOrder { .. } => ErrorCode::OutOfOrderSequenceNumber,
            SequenceError::UnknownProducer { .. } => ErrorCode::UnknownProducerId,
            SequenceError::InvalidSequence { .. } => ErrorCode::InvalidRecord,
        },
        strom_storage::Error::Marker(m) => match m {
            strom_storage::producer_state::MarkerError::StaleEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            strom_storage::producer_state::MarkerError::StaleCoordinator { .. } => {
                ErrorCode::TransactionCoordinatorFenced
            }
        },
        _ => {
            crate::metrics::STORAGE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ErrorCode::KafkaStorageError
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_protocol::records::{split_batches, BatchBuilder, BatchHeader, TxnMarker};

    fn base_offsets(data: &Bytes) -> Vec<i64> {
        split_batches(data)
            .map_while(|r| r.ok())
            .filter_map(|r| data.get(r).and_then(|b| BatchHeader::parse(b).ok()))
            .map(|h| h.base_offset)
            .collect()
    }

    #[test]
    fn read_committed_stops_at_the_first_open_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
        let mut plain = BatchBuilder::new(1_000);
        plain.add(None, Some(b"a")).add(None, Some(b"b"));
        log.append(&plain.build(), 0).unwrap(); // 0-1
        let mut txn = BatchBuilder::new(1_000).producer(3, 0, 0).transactional(true);
        txn.add(None, Some(b"t"));
        log.append(&txn.build(), 0).unwrap(); // 2
        log.append(&plain.build(), 0).unwrap(); // 3-4
        let p = Partition::new("t".into(), 0, log);
        assert_eq!((p.high_watermark(), p.last_stable_offset()), (5, 2));
        assert_eq!(base_offsets(&p.read(0, 1 << 20).unwrap()), vec![0, 2, 3]);
        assert_eq!(base_offsets(&p.read_committed(0, 1 << 20).unwrap()), vec![0]);
        assert!(p.read_committed(2, 1 << 20).unwrap().is_empty());

        let marker = TxnMarker { commit: true, coordinator_epoch: 0 }.batch(3, 0, 2_000);
        p.with_log(|log| log.append(&marker, 0)).unwrap(); // 5 (on a single node, committed at once)
        assert_eq!(p.last_stable_offset(), 6, "no open transaction: the high watermark");
        assert_eq!(base_offsets(&p.read_committed(0, 1 << 20).unwrap()), vec![0, 2, 3, 5]);
    }

    #[test]
    fn scan_batches_walks_whole_batches_below_a_bound_and_always_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
        for n in [2, 1, 3] {
            let mut b = BatchBuilder::new(1_000);
            for _ in 0..n {
                b.add(None, Some(b"v"));
            }
            log.append(&b.build(), 0).unwrap(); // 0-1, 2, 3-5
        }
        let p = Partition::new("t".into(), 0, log);
        let walk = |from, below| {
            let mut seen = Vec::new();
            let end = p.scan_batches(from, below, |h, batch| seen.push((h.base_offset, h.last_offset(), batch.len())));
            (seen.iter().map(|&(b, l, _)| (b, l)).collect::<Vec<_>>(), end)
        };
        assert_eq!(walk(0, 6), (vec![(0, 1), (2, 2), (3, 5)], 6));
        assert_eq!(walk(0, 3), (vec![(0, 1), (2, 2)], 3), "a batch starting at the bound is not walked");
        assert_eq!(walk(1, 3), (vec![(0, 1), (2, 2)], 3), "the batch holding `from` is walked whole");
        assert_eq!(walk(6, 100), (vec![], 6), "past the log end: nothing, and no endless loop");
        assert_eq!(walk(-5, 1), (vec![(0, 1)], 2), "below the log start: from the log start");
    }

    #[tokio::test]
    async fn a_leader_removed_from_the_replicas_does_not_acknowledge_what_followers_lack() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), strom_storage::LogConfig::default()).unwrap();
        let p = Partition::new("t".into(), 0, log);
        p.become_leader(1, 1, 1, vec![1, 2], vec![1, 2], 2, 0);
        let mut b = BatchBuilder::new(1_000);
        b.add(None, Some(b"v"));
        let info = p.append(&b.build()).unwrap();
        assert_eq!(p.high_watermark(), 0, "follower 2 has not fetched it");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        let waiting = p.wait_committed(info.last_offset + 1, deadline);
        p.become_outside();
        assert_eq!(waiting.await, Err(ErrorCode::NotLeaderOrFollower));
        assert_eq!(p.high_watermark(), 0);
    }
}
