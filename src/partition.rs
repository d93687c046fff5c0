//! A partition as this broker holds it: its log, the offsets readers wait on (high
//! watermark, log start), the append notification that wakes parked fetches, and the
//! fsync bookkeeping behind `flush.messages`/`flush.ms`. Replication (ISR, follower
//! state) lands here next.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use strom_storage::{AppendInfo, Log, SequenceError};
use tokio::sync::Notify;

use crate::error::ErrorCode;

/// One partition: its log and the state readers wait on.
pub struct Partition {
    pub topic: Arc<str>,
    pub index: i32,
    /// Bumped when leadership changes (the metadata image's); a single node keeps 0.
    leader_epoch: std::sync::atomic::AtomicI32,
    log: Mutex<Log>,
    /// Mirrors of log state readable without the lock.
    high_watermark: AtomicI64,
    log_start_offset: AtomicI64,
    /// Woken on every append, so long-polling fetches need no timers to notice data.
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
        Partition {
            topic,
            index,
            leader_epoch: std::sync::atomic::AtomicI32::new(0),
            log: Mutex::new(log),
            high_watermark: AtomicI64::new(hw),
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
    /// The high watermark; on a single node every appended record is committed.
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    /// The first offset still in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset.load(Ordering::Acquire)
    }

    /// Runs `f` with the log locked. Storage calls are short (positional writes, mapped
    /// reads), so a plain mutex held for their duration is fine on async threads.
    pub fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let out = f(&mut log);
        self.high_watermark.store(log.log_end_offset(), Ordering::Release);
        self.log_start_offset.store(log.log_start_offset(), Ordering::Release);
        out
    }
}

impl Partition {
    /// Appends one producer batch (already validated, and rewritten if the topic asks
    /// for it, by the handler) and wakes waiting fetches. Storage runs the idempotent
    /// sequence check and patches the base offset and leader epoch in place; a retried
    /// duplicate comes back with its original offsets and `duplicate` set.
    pub fn append(&self, batch: &[u8]) -> Result<AppendInfo, (ErrorCode, String)> {
        if self.failed.load(Ordering::Acquire) {
            return Err((ErrorCode::KafkaStorageError, "an earlier fsync of this partition failed".into()));
        }
        let result = self.with_log(|log| log.append(batch, self.leader_epoch()));
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

    /// Whole batches from `offset`, up to `max_bytes` (at least one batch), zero-copy.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, ErrorCode> {
        self.with_log(|log| log.read(offset, max_bytes)).map(|r| r.data).map_err(|e| storage_error_code(&e))
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
        _ => {
            crate::metrics::STORAGE_ERRORS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ErrorCode::KafkaStorageError
        }
    }
}
