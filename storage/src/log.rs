//! A partition's log: an ordered set of segments with one active segment.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use strom_protocol::records;
use strom_protocol::records::{
    set_base_offset, set_partition_leader_epoch, split_batches, verify_crc, BatchError, BatchHeader, TxnMarker,
    BATCH_HEADER_LEN,
};

use crate::epochs::{LeaderEpochCache, CHECKPOINT_FILE as EPOCH_CHECKPOINT_FILE};
use crate::error::io_err;
use crate::producer_state::{CompletedTxn, ProducerStateManager, SequenceCheck};
use crate::segment::Segment;
use crate::txn_index::{AbortedTxn, TxnIndex, TXN_INDEX_FILE};
use crate::{Error, Result};

/// Tunables of one log (Kafka names in parentheses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Maximum size of a segment file (`segment.bytes`); also the size the
    /// active segment is preallocated to. Default 1 GiB.
    pub segment_bytes: u64,
    /// Log bytes between offset-index entries (`index.interval.bytes`).
    /// Default 4096.
    pub index_interval_bytes: u64,
    /// Size each index file is preallocated to (`segment.index.bytes`).
    /// Default 10 MiB.
    pub segment_index_bytes: u64,
    /// How long an idempotent producer's state is kept after its last batch
    /// (`producer.id.expiration.ms`). Default 1 day.
    pub producer_id_expiration_ms: i64,
    /// Roll the active segment once it has been open this long (`segment.ms`);
    /// non-positive disables. Default 7 days.
    pub segment_ms: i64,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            segment_index_bytes: 10 << 20,
            producer_id_expiration_ms: 86_400_000,
            segment_ms: 7 * 24 * 3_600_000,
        }
    }
}

impl LogConfig {
    fn validate(&self) -> Result<()> {
        let max = i32::MAX as u64;
        if self.segment_bytes < BATCH_HEADER_LEN as u64 || self.segment_bytes > max {
            return Err(Error::InvalidConfig("segment_bytes must be in [61, 2^31-1]"));
        }
        if self.segment_index_bytes < 24 || self.segment_index_bytes > max {
            return Err(Error::InvalidConfig("segment_index_bytes must be in [24, 2^31-1]"));
        }
        Ok(())
    }
}

/// What `append` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: i64,
    /// Offset of the last record (`base_offset + lastOffsetDelta`).
    pub last_offset: i64,
    /// The batch's `maxTimestamp` field.
    pub max_timestamp: i64,
    /// Size of the batch in bytes (0 for a duplicate).
    pub bytes: usize,
    /// The batch was a retry of one already in the log: nothing was
    /// appended and the offsets are the original ones.
    pub duplicate: bool,
}

/// What `read` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// Whole batches, zero-copy from the segment mapping (one segment).
    pub data: Bytes,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

/// One partition's log. Not internally synchronized: wrap it in a mutex.
/// `read` takes `&self` and returns `Bytes` sharing the segment mapping, so
/// the lock can be dropped before the data is sent.
pub struct Log {
    dir: PathBuf,
    config: LogConfig,
    /// Keyed by base offset; the last one is the active segment.
    segments: BTreeMap<i64, Segment>,
    /// Idempotent-producer state (ADR 0003), checked and updated by `append`.
    producers: ProducerStateManager,
    closed: bool,
    /// Log start offset moved by DeleteRecords; may lie inside the first segment.
    start_offset: i64,
    /// When the active segment became active (for `segment.ms`), in ms since the epoch.
    active_since_ms: i64,
    /// The last recovery point written to disk.
    recovery_point: i64,
    /// Whether the clean-shutdown marker is on disk (any append removes it first).
    clean_marker: bool,
    /// Whether the last open trusted a clean-shutdown marker.
    opened_clean: bool,
    /// Which leader epoch wrote which offsets (`epochs.rs`); mirrored durably in
    /// `leader-epoch-checkpoint`, which is written before any batch that extends it.
    epochs: LeaderEpochCache,
    /// Aborted transactions (ADR 0012), for `read_committed` fetches.
    aborted: TxnIndex,
    /// An abort could not be indexed after its marker was written: the log takes no more
    /// writes (a later snapshot would make the loss permanent) until it is reopened,
    /// when the replay indexes the marker again.
    index_failed: bool,
}

/// FORMAT v1 of the log start offset checkpoint (ADR 0005): the file
/// `log-start-offset` holds `1 <offset>` in ASCII decimal. Written via temp file, fsync,
/// rename and directory fsync; absent means "the first segment's base offset".
const START_OFFSET_FILE: &str = "log-start-offset";
const START_OFFSET_FORMAT_VERSION: u32 = 1;

/// FORMAT v1 (same shape as the start offset checkpoint): `recovery-point` holds an
/// offset below which every batch is known to be on disk (fsync'd), so an unclean start
/// need not re-verify their CRCs; `clean-shutdown` holds the log end offset at a clean
/// close, after which nothing needs re-verifying. The marker is deleted as soon as the
/// log is opened, so only the start right after a clean close trusts it.
const RECOVERY_POINT_FILE: &str = "recovery-point";
const CLEAN_SHUTDOWN_FILE: &str = "clean-shutdown";
/// The prefix of a batch the log rewrites on append: baseOffset (0..8), batchLength and
/// partitionLeaderEpoch (12..16).
const PATCHED_HEAD: usize = 16;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The transaction marker of a control batch (ADR 0012); `None` for other batches. A
/// control batch that does not parse as a marker is not one (it was validated when it
/// was appended; a leader's batch is kept as the leader wrote it).
fn txn_marker(header: &BatchHeader, batch: &[u8]) -> Option<TxnMarker> {
    if !header.is_control() {
        return None;
    }
    TxnMarker::parse(&Bytes::copy_from_slice(batch)).ok().flatten()
}

/// Base offset from a `{offset:020}.snapshot` file name.
fn parse_snapshot_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".snapshot")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// How many producer-state snapshots are kept per partition.
const SNAPSHOTS_TO_KEEP: usize = 2;

/// Base offset from a `{base_offset:020}.log` file name.
fn parse_log_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// What compaction reads: the partition directory and (base, next base, bytes) of every
/// segment, the active one last.
pub struct CompactionInput {
    dir: PathBuf,
    segments: Vec<(i64, i64, Bytes)>,
    /// Aborted transactions: their records are removed, never a key's latest value.
    aborted: Vec<AbortedTxn>,
    /// First offset of the earliest open transaction: nothing from there on is cleaned
    /// or counts as a key's latest value (the transaction may still abort), as Kafka
    /// cleans only below the last stable offset.
    first_unstable: Option<i64>,
}

impl CompactionInput {
    /// Whether the batch `h` belongs to an aborted transaction.
    fn is_aborted(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.aborted.iter().any(|a| {
                a.producer_id == h.producer_id && a.first_offset <= h.base_offset && h.base_offset < a.last_offset
            })
    }

    /// Whether the batch `h` lies at or after the first open transaction.
    fn is_unstable(&self, h: &BatchHeader) -> bool {
        self.first_unstable.is_some_and(|u| h.base_offset >= u)
    }
}

/// A rewritten segment waiting to be swapped in.
pub struct CleanedSegment {
    base: i64,
    next: i64,
    original_size: u64,
    path: PathBuf,
}

/// Compaction, step 2 (no lock held): keeps, for each key, only the record with the
/// highest offset in the whole log (the active segment included, which itself is never
/// rewritten). Offsets never change: batches keep their base offset, `lastOffsetDelta`
/// and producer fields, and surviving records keep their offset deltas. Tombstones (null
/// values) that are the latest for their key go once their batch is older than
/// `delete_retention_ms`. A batch left empty is dropped, unless it belongs to an
/// idempotent producer, whose last sequence must survive (kept with no records). Records
/// without a key are kept. Each changed segment is written to `{base}.log.cleaned` and
/// fsync'd; `install_cleaned` renames it over the original (`open` deletes leftovers).
/// Returns the cleaned segments and (records before, records after).
pub fn compact_offline(
    input: &CompactionInput,
    now_ms: i64,
    delete_retention_ms: i64,
) -> Result<(Vec<CleanedSegment>, (u64, u64))> {
    const LIMIT: usize = 64 << 20;
    let batches = |data: &Bytes| -> Vec<Bytes> {
        records::split_batches(data).map_while(|r| r.ok()).map(|r| data.slice(r)).collect()
    };
    let mut latest: std::collections::HashMap<Bytes, i64> = std::collections::HashMap::new();
    for (_, _, data) in &input.segments {
        for batch in batches(data) {
            let header = BatchHeader::parse(&batch)?;
            if header.is_control() || input.is_aborted(&header) || input.is_unstable(&header) {
                continue;
            }
            for r in records::decode_records_bounded(&batch, LIMIT)? {
                if let Some(k) = r.key {
                    latest.insert(k, header.base_offset + i64::from(r.offset_delta));
                }
            }
        }
    }
    let (mut before, mut after) = (0u64, 0u64);
    let horizon = now_ms.saturating_sub(delete_retention_ms.max(0));
    let mut cleaned = Vec::new();
    let sealed = input.segments.len().saturating_sub(1);
    for (base, next, data) in input.segments.iter().take(sealed) {
        let mut out: Vec<u8> = Vec::with_capacity(data.len());
        let mut changed = false;
        for batch in batches(data) {
            let header = BatchHeader::parse(&batch)?;
            // Markers stay (Kafka drops them only once their transaction's data is gone;
            // keeping them costs one record per transaction and partition).
            if header.is_control() || input.is_unstable(&header) {
                out.extend_from_slice(&batch);
                continue;
            }
            let aborted = input.is_aborted(&header);
            let recs = records::decode_records_bounded(&batch, LIMIT)?;
            before += recs.len() as u64;
            let kept: Vec<&records::Record> = recs
                .iter()
                .filter(|_| !aborted)
                .filter(|r| match &r.key {
                    None => true,
                    Some(k) => {
                        let offset = header.base_offset + i64::from(r.offset_delta);
                        latest.get(k) == Some(&offset) && !(r.value.is_none() && header.max_timestamp < horizon)
                    }
                })
                .collect();
            after += kept.len() as u64;
            if kept.len() == recs.len() {
                out.extend_from_slice(&batch);
                continue;
            }
            changed = true;
            if kept.is_empty() && header.producer_id < 0 {
                continue;
            }
            out.extend_from_slice(&rewrite_batch(&header, &kept)?);
        }
        if !changed {
            continue;
        }
        let path = input.dir.join(format!("{base:020}.log.cleaned"));
        fs::write(&path, &out).map_err(io_err("write cleaned segment", &path))?;
        fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io_err("fsync cleaned segment", &path))?;
        cleaned.push(CleanedSegment { base: *base, next: *next, original_size: data.len() as u64, path });
    }
    Ok((cleaned, (before, after)))
}

/// A batch with only `kept` of its records, everything else in its header preserved
/// (base offset, last offset delta, timestamps, producer fields, codec), CRC recomputed.
fn rewrite_batch(header: &BatchHeader, kept: &[&records::Record]) -> Result<Vec<u8>> {
    let codec = header.compression()?;
    let mut b = records::BatchBuilder::new(header.base_timestamp)
        .producer(header.producer_id, header.producer_epoch, header.base_sequence)
        .compression(codec);
    for r in kept {
        b.push(r);
    }
    let mut out = b.build().to_vec();
    records::set_base_offset(&mut out, header.base_offset)?;
    records::set_partition_leader_epoch(&mut out, header.partition_leader_epoch)?;
    let put = |out: &mut Vec<u8>, at: usize, bytes: &[u8]| {
        if let Some(slot) = out.get_mut(at..at + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
    };
    put(&mut out, records::ATTRIBUTES_OFFSET, &header.attributes.to_be_bytes());
    put(&mut out, records::LAST_OFFSET_DELTA_OFFSET, &header.last_offset_delta.to_be_bytes());
    put(&mut out, records::MAX_TIMESTAMP_OFFSET, &header.max_timestamp.to_be_bytes());
    records::update_crc(&mut out)?;
    Ok(out)
}

/// An offset checkpoint file (`"<version> <offset>"`), if present and readable.
fn read_offset_file(dir: &Path, name: &str) -> Option<i64> {
    let text = fs::read_to_string(dir.join(name)).ok()?;
    let mut parts = text.split_whitespace();
    match (parts.next()?.parse::<u32>().ok()?, parts.next()?.parse::<i64>().ok()?) {
        (1, offset) if offset >= 0 => Some(offset),
        _ => None,
    }
}

/// Whether `name` is a temporary file the log itself writes: a producer-state snapshot's
/// or one of [`write_file_durably`]'s checkpoint files'.
fn is_own_temp_file(name: &str) -> bool {
    name.strip_suffix(".tmp").is_some_and(|stem| {
        stem.ends_with(".snapshot")
            || [START_OFFSET_FILE, RECOVERY_POINT_FILE, CLEAN_SHUTDOWN_FILE, EPOCH_CHECKPOINT_FILE, TXN_INDEX_FILE]
                .contains(&stem)
    })
}

/// Writes an offset checkpoint durably: temp file, fsync, rename, directory fsync.
fn write_offset_file(dir: &Path, name: &str, offset: i64) -> Result<()> {
    write_file_durably(dir, name, format!("1 {offset}\n").as_bytes())
}

/// Replaces `dir/name` with `contents` so that a crash leaves either the old or the new
/// file, never a torn one: temp file (`open` deletes leftovers), fsync, rename, directory
/// fsync.
pub(crate) fn write_file_durably(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    fs::write(&tmp, contents).map_err(io_err("write", &tmp))?;
    fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err("fsync", &tmp))?;
    fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
    sync_dir(dir)
}

/// Writes the leader-epoch checkpoint (`epochs.rs` has the format).
fn write_epoch_checkpoint(dir: &Path, cache: &LeaderEpochCache) -> Result<()> {
    write_file_durably(dir, EPOCH_CHECKPOINT_FILE, cache.encode().as_bytes())
}

/// The leader-epoch checkpoint: `Ok(None)` if there is none, `Err(reason)` if it
/// cannot be used.
fn read_epoch_checkpoint(dir: &Path) -> std::result::Result<Option<LeaderEpochCache>, String> {
    match fs::read_to_string(dir.join(EPOCH_CHECKPOINT_FILE)) {
        Ok(text) => LeaderEpochCache::decode(&text).map(Some).map_err(str::to_string),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// The checkpointed log start offset, or 0 when absent or unreadable (then the first
/// segment's base offset rules).
fn read_start_offset(dir: &Path) -> i64 {
    let Ok(text) = fs::read_to_string(dir.join(START_OFFSET_FILE)) else { return 0 };
    let mut parts = text.split_whitespace();
    match (parts.next().and_then(|v| v.parse::<u32>().ok()), parts.next().and_then(|o| o.parse::<i64>().ok())) {
        (Some(START_OFFSET_FORMAT_VERSION), Some(offset)) if offset >= 0 => offset,
        _ => {
            tracing::warn!(dir = %dir.display(), "ignoring unreadable {START_OFFSET_FILE}");
            0
        }
    }
}

/// The checks every append makes on a batch before anything is written: a v2 header,
/// `batchLength` matching the buffer, the CRC, a non-negative `lastOffsetDelta`.
fn validate_batch(batch: &[u8]) -> Result<BatchHeader> {
    let header = BatchHeader::parse(batch)?;
    if header.total_len() != batch.len() {
        return Err(BatchError::BadLength(header.batch_length).into());
    }
    verify_crc(batch)?;
    if header.last_offset_delta < 0 {
        return Err(BatchError::InvalidHeader("negative lastOffsetDelta").into());
    }
    Ok(header)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync dir", dir))
}

impl Log {
    /// Opens (creating if needed) the log in `dir`. Sealed segments are
    /// opened as they are (indexes rebuilt only if missing or inconsistent);
    /// the last segment is scanned and truncated at its first invalid batch
    /// (see `recovery.rs`). Files other than `{20 digits}.log|.index|.timeindex`
    /// are ignored.
    pub fn open(dir: &Path, config: LogConfig) -> Result<Log> {
        config.validate()?;
        fs::create_dir_all(dir).map_err(io_err("create dir", dir))?;
        let mut bases = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("list dir", dir))? {
            let entry = entry.map_err(io_err("list dir", dir))?;
            // Leftovers of an interrupted compaction or checkpoint write: the originals
            // are intact (the swap is a rename), so the temporary files just go. Only the
            // log's own: others may share the directory (the metadata quorum writes its
            // `.checkpoint.tmp` files there, concurrently with a `reset_to` that reopens
            // the log; deleting one of those under its writer failed the snapshot install).
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".log.cleaned") || is_own_temp_file(&name) {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if let Some(base) = entry.file_name().to_str().and_then(parse_log_name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let recovery_point = read_offset_file(dir, RECOVERY_POINT_FILE).unwrap_or(0);
        // The marker stays until the first append (which removes it durably before
        // writing): until then the log is exactly what was shut down cleanly, so a crash
        // before any write may trust it again. Removing it here cost every partition a
        // directory fsync at startup (ADR 0002, amendment 2).
        let clean = read_offset_file(dir, CLEAN_SHUTDOWN_FILE);
        let verified_below = clean.unwrap_or(0).max(recovery_point);
        let mut segments = BTreeMap::new();
        match bases.split_last() {
            None => {
                segments.insert(0, Segment::create(dir, 0, &config)?);
                sync_dir(dir)?;
            }
            Some((&last, sealed)) => {
                for (i, &base) in sealed.iter().enumerate() {
                    let next = bases.get(i + 1).copied().unwrap_or(last);
                    segments.insert(base, Segment::open_sealed(dir, base, next, &config)?);
                }
                segments.insert(last, Segment::recover(dir, last, &config, verified_below, clean)?);
            }
        }
        let producers = ProducerStateManager::new(config.producer_id_expiration_ms);
        let start_offset = read_start_offset(dir);
        let mut log = Log {
            dir: dir.to_path_buf(),
            config,
            segments,
            producers,
            closed: false,
            start_offset,
            active_since_ms: now_ms(),
            recovery_point,
            clean_marker: clean.is_some(),
            opened_clean: clean.is_some(),
            epochs: LeaderEpochCache::default(),
            aborted: TxnIndex::empty(dir),
            index_failed: false,
        };
        if log.opened_clean {
            tracing::debug!(dir = %dir.display(), "clean shutdown: CRCs of the last segment not re-verified");
        }
        // A checkpoint beyond a recovered (shorter) log is clamped to its end.
        log.start_offset = log.start_offset.min(log.log_end_offset());
        log.aborted = TxnIndex::open(dir, log.log_start_offset(), log.log_end_offset())?;
        log.recover_producer_state();
        log.load_epochs()?;
        Ok(log)
    }

    /// Loads the leader-epoch cache from its checkpoint, or rebuilds it from the batch
    /// headers when the checkpoint is missing (a data directory from before the cache
    /// existed: a one-time full scan) or unusable, and writes the rebuilt one. Entries
    /// starting beyond the log end go (the checkpoint is written before the data, so a
    /// crash in between, or a torn tail cut by recovery, leaves them behind).
    fn load_epochs(&mut self) -> Result<()> {
        let end = self.log_end_offset();
        match read_epoch_checkpoint(&self.dir) {
            Ok(Some(mut cache)) => {
                if cache.drop_beyond(end) {
                    tracing::info!(dir = %self.dir.display(), end, "dropped leader epochs beyond the log end");
                    write_epoch_checkpoint(&self.dir, &cache)?;
                }
                self.epochs = cache;
                return Ok(());
            }
            Ok(None) => {}
            Err(reason) => {
                tracing::warn!(dir = %self.dir.display(), %reason, "unreadable {EPOCH_CHECKPOINT_FILE}: rebuilding it from the log");
            }
        }
        let mut cache = LeaderEpochCache::default();
        self.for_each_batch_header(self.log_start_offset(), "leader-epoch rebuild", |h, _| {
            cache.assign(h.partition_leader_epoch, h.base_offset);
        });
        write_epoch_checkpoint(&self.dir, &cache)?;
        self.epochs = cache;
        Ok(())
    }

    /// Calls `f` with the header of every batch from the one holding `from` to the log
    /// end, in offset order. Never fails: a read error stops the walk with a warning
    /// naming `what` (what is rebuilt from the headers is then rebuilt from a prefix,
    /// which the recovery that just ran makes unlikely to matter).
    fn for_each_batch_header(&self, from: i64, what: &str, mut f: impl FnMut(&BatchHeader, &[u8])) {
        let end = self.log_end_offset();
        let mut offset = from;
        while offset < end {
            let data = match self.read(offset, 8 << 20) {
                Ok(r) if !r.data.is_empty() => r.data,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), offset, error = %e, "{what} stopped");
                    break;
                }
            };
            let before = offset;
            for span in split_batches(&data) {
                let Some((h, b)) =
                    span.ok().and_then(|r| data.get(r)).and_then(|b| Some((BatchHeader::parse(b).ok()?, b)))
                else {
                    break;
                };
                if h.last_offset() >= offset {
                    f(&h, b);
                    offset = h.last_offset() + 1;
                }
            }
            if offset == before {
                break;
            }
        }
    }

    /// Offsets of the producer-state snapshot files, ascending.
    fn snapshot_offsets(&self) -> Vec<i64> {
        let mut v: Vec<i64> = fs::read_dir(&self.dir)
            .map(|it| it.flatten().filter_map(|e| e.file_name().to_str().and_then(parse_snapshot_name)).collect())
            .unwrap_or_default();
        v.sort_unstable();
        v
    }

    fn snapshot_path(&self, offset: i64) -> PathBuf {
        self.dir.join(format!("{offset:020}.snapshot"))
    }

    /// Rebuilds producer state (ADR 0003): newest usable snapshot at or below
    /// the log end offset, then a replay of the batch headers after it.
    /// Snapshots beyond the log end (data lost with a torn tail) or damaged
    /// are deleted. Never fails: a read error stops the replay with a warning.
    fn recover_producer_state(&mut self) {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let mut from = start;
        for offset in self.snapshot_offsets().into_iter().rev() {
            let path = self.snapshot_path(offset);
            if offset > end || offset < start {
                let _ = fs::remove_file(&path);
                continue;
            }
            let loaded = fs::read(&path)
                .map_err(|_| "unreadable")
                .and_then(|b| ProducerStateManager::decode_snapshot(&b, self.config.producer_id_expiration_ms));
            match loaded {
                Ok((o, state)) if o == offset => {
                    self.producers = state;
                    from = offset;
                    break;
                }
                Ok(_) | Err(_) => {
                    tracing::warn!(path = %path.display(), "discarding unusable producer-state snapshot");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        let now = now_ms();
        // Taken out for the replay, which reads the log through `&self`.
        let mut producers = std::mem::replace(&mut self.producers, ProducerStateManager::new(0));
        let mut ended = Vec::new();
        self.for_each_batch_header(from, "producer-state replay", |h, b| {
            if let Some(done) = producers.update(h, txn_marker(h, b), now) {
                ended.push((done, producers.first_unstable_offset()));
            }
        });
        producers.remove_expired(now);
        self.producers = producers;
        // Aborts whose index entry a crash lost (it is written after the marker).
        for (done, unstable) in ended {
            if let Err(e) = self.index_abort(done, unstable) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not re-index an aborted transaction");
            }
        }
    }

    /// Writes the producer state as of the log end offset to
    /// `{leo:020}.snapshot` (temp file, fsync, rename, dir fsync) and keeps
    /// only the newest snapshots.
    pub fn snapshot_producer_state(&mut self) -> Result<()> {
        if self.index_failed {
            // A snapshot past the marker whose abort is not indexed would lose it for good.
            return Ok(());
        }
        let offset = self.log_end_offset();
        self.producers.remove_expired(now_ms());
        let path = self.snapshot_path(offset);
        let tmp = path.with_extension("snapshot.tmp");
        let data = self.producers.encode_snapshot(offset);
        {
            use std::io::Write as _;
            let mut f = fs::File::create(&tmp).map_err(io_err("create snapshot", &tmp))?;
            f.write_all(&data).map_err(io_err("write snapshot", &tmp))?;
            f.sync_all().map_err(io_err("fsync snapshot", &tmp))?;
        }
        fs::rename(&tmp, &path).map_err(io_err("rename snapshot", &path))?;
        sync_dir(&self.dir)?;
        let all = self.snapshot_offsets();
        for old in all.iter().take(all.len().saturating_sub(SNAPSHOTS_TO_KEEP)) {
            let _ = fs::remove_file(self.snapshot_path(*old));
        }
        Ok(())
    }

    /// Adds an aborted transaction to the index (a committed one needs no entry).
    fn index_abort(&mut self, done: CompletedTxn, first_unstable: Option<i64>) -> Result<()> {
        if done.commit {
            return Ok(());
        }
        self.aborted.add(AbortedTxn {
            producer_id: done.producer_id,
            first_offset: done.first_offset,
            last_offset: done.last_offset,
            last_stable_offset: first_unstable.unwrap_or(done.last_offset + 1),
        })
    }

    /// The aborted transactions that may hold records in `[from, upto)` (Fetch with
    /// `read_committed` lists them so that clients drop those records).
    pub fn aborted_transactions(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        self.aborted.collect(from, upto)
    }

    /// The idempotent-producer state.
    pub fn producer_state(&self) -> &ProducerStateManager {
        &self.producers
    }

    /// The partition directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn active(&self) -> Option<&Segment> {
        self.segments.values().next_back()
    }

    /// First offset in the log.
    pub fn log_start_offset(&self) -> i64 {
        self.segments.keys().next().copied().unwrap_or(0).max(self.start_offset)
    }

    /// Applies new settings (e.g. a changed `segment.bytes`); they govern later appends
    /// and rolls. A segment already larger than a new, smaller size rolls on its next append.
    pub fn set_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Time/size retention (`retention.ms`, `retention.bytes`; negative disables each):
    /// deletes the oldest *sealed* segments whose newest record is older than
    /// `now_ms - retention_ms`, or while the log without them still exceeds
    /// `retention_bytes`. The active segment is never deleted, so retention takes effect
    /// as segments roll (by size or `segment.ms`), as in Kafka. Returns segments deleted.
    pub fn apply_retention(&mut self, now_ms: i64, retention_ms: i64, retention_bytes: i64) -> Result<usize> {
        let mut deleted = 0;
        let mut size = self.size_bytes();
        loop {
            let mut keys = self.segments.keys().copied();
            let (Some(first), Some(_next)) = (keys.next(), keys.next()) else { break };
            let Some(seg) = self.segments.get(&first) else { break };
            let expired_by_time = retention_ms >= 0
                && seg.max_timestamp().is_some_and(|(ts, _)| ts < now_ms.saturating_sub(retention_ms));
            let too_big = retention_bytes >= 0 && size.saturating_sub(seg.size()) >= retention_bytes as u64;
            if !(expired_by_time || too_big) {
                break;
            }
            size = size.saturating_sub(seg.size());
            if let Some(seg) = self.segments.remove(&first) {
                seg.delete()?;
            }
            deleted += 1;
        }
        if deleted > 0 {
            self.aborted.remove_before(self.log_start_offset())?;
        }
        Ok(deleted)
    }

    /// Compaction, step 1 (under the caller's lock, cheap): zero-copy views of every
    /// segment for [`compact_offline`]; the last one is the active segment.
    pub fn compaction_input(&self) -> Result<CompactionInput> {
        let mut segments = Vec::with_capacity(self.segments.len());
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for (i, base) in bases.iter().enumerate() {
            let Some(seg) = self.segments.get(base) else { continue };
            let next = bases.get(i + 1).copied().unwrap_or_else(|| self.log_end_offset());
            segments.push((*base, next, seg.read(*base, usize::MAX)?));
        }
        Ok(CompactionInput {
            dir: self.dir.clone(),
            segments,
            aborted: self.aborted.collect(0, i64::MAX),
            first_unstable: self.producers.first_unstable_offset(),
        })
    }

    /// Compaction, step 3 (under the caller's lock): swaps each cleaned file in, if its
    /// segment is still there unchanged (retention may have deleted it meanwhile).
    pub fn install_cleaned(&mut self, cleaned: Vec<CleanedSegment>) -> Result<()> {
        for c in cleaned {
            let still_there = self.segments.get(&c.base).is_some_and(|s| s.size() == c.original_size && !s.is_active());
            if !still_there {
                let _ = fs::remove_file(&c.path);
                continue;
            }
            for ext in ["index", "timeindex"] {
                let _ = fs::remove_file(crate::segment::segment_path(&self.dir, c.base, ext));
            }
            let target = crate::segment::segment_path(&self.dir, c.base, "log");
            fs::rename(&c.path, &target).map_err(io_err("swap cleaned segment", &target))?;
            sync_dir(&self.dir)?;
            let reopened = Segment::open_sealed(&self.dir, c.base, c.next, &self.config)?;
            self.segments.insert(c.base, reopened);
        }
        Ok(())
    }

    /// All three compaction steps at once (holding `&mut self` throughout; for tests and
    /// small logs). Returns (records before, records after).
    pub fn compact(&mut self, now_ms: i64, delete_retention_ms: i64) -> Result<(u64, u64)> {
        let input = self.compaction_input()?;
        let (cleaned, stats) = compact_offline(&input, now_ms, delete_retention_ms)?;
        self.install_cleaned(cleaned)?;
        Ok(stats)
    }

    /// DeleteRecords: makes `offset` the log start offset (durably, before returning) and
    /// deletes sealed segments that lie wholly below it. Returns the new start offset.
    /// `offset` beyond the log end is `OffsetOutOfRange`; below the current start it is
    /// a no-op, as in Kafka.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset > end || offset < 0 {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        if offset <= start {
            return Ok(start);
        }
        let path = self.dir.join(START_OFFSET_FILE);
        let tmp = self.dir.join(format!("{START_OFFSET_FILE}.tmp"));
        fs::write(&tmp, format!("{START_OFFSET_FORMAT_VERSION} {offset}\n")).map_err(io_err("write", &tmp))?;
        fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io_err("fsync", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_err("rename", &path))?;
        sync_dir(&self.dir)?;
        self.start_offset = offset;
        // Whole segments below the new start go; the active segment always stays.
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for pair in bases.windows(2) {
            let (base, next) = (pair[0], pair[1]);
            if next <= offset {
                if let Some(seg) = self.segments.remove(&base) {
                    seg.delete()?;
                }
            }
        }
        self.aborted.remove_before(offset)?;
        Ok(offset)
    }

    /// Removes every batch from the one holding `offset` on (a Raft follower dropping
    /// entries that conflict with its leader; later, a replica truncating after a leader
    /// change). Whole batches go, as Kafka's `truncateTo` does, so the new log end may be
    /// below `offset`; it is returned. Below the log start offset is an error: those
    /// records were deleted, there is nothing to truncate to.
    ///
    /// Rare, so simple: the files are cut on disk (later segments deleted, the segment
    /// holding `offset` shortened, the clean marker removed, the recovery point clamped,
    /// leader epochs starting at or after the new end dropped from the checkpoint) and
    /// the log is reopened, which rebuilds the last segment's indexes and drops
    /// producer-state snapshots beyond the new end.
    pub fn truncate_to(&mut self, offset: i64) -> Result<i64> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset >= end {
            // No batch to cut, but an epoch entry at the end (a leadership that wrote
            // nothing) disagrees with the leader that told us to stop here: it goes, as
            // Kafka's truncateFromEnd drops it, or the follower would ask about that
            // epoch forever.
            if offset == end {
                let mut epochs = self.epochs.clone();
                if epochs.truncate_from_end(end) {
                    write_epoch_checkpoint(&self.dir, &epochs)?;
                    sync_dir(&self.dir)?;
                    self.epochs = epochs;
                }
            }
            return Ok(end);
        }
        if offset < start {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        let Some((&base, seg)) = self.segments.range(..=offset).next_back() else {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        };
        let position = seg.position_of(offset)?.unwrap_or_else(|| seg.size());
        // Where the log will end: the batch holding `offset` goes whole. An epoch starting
        // there has lost all its batches, so it goes too — unlike on open, where an entry
        // at the end is a leader's epoch with nothing written yet.
        let cut = match self.read(offset, 0) {
            Ok(r) => split_batches(&r.data)
                .next()
                .and_then(|span| span.ok())
                .and_then(|range| r.data.get(range))
                .and_then(|b| BatchHeader::parse(b).ok())
                .map_or(offset, |h| h.base_offset.min(offset)),
            Err(_) => offset,
        };
        self.flush()?;
        // Nothing of the old state is sealed or snapshotted on drop: the files change now.
        self.closed = true;
        let later: Vec<i64> = self.segments.range(base + 1..).map(|(&b, _)| b).collect();
        for b in later {
            if let Some(s) = self.segments.remove(&b) {
                s.delete()?;
            }
        }
        self.segments.clear();
        let log_path = crate::segment::segment_path(&self.dir, base, "log");
        let file = fs::OpenOptions::new().write(true).open(&log_path).map_err(io_err("open log", &log_path))?;
        file.set_len(position).map_err(io_err("truncate log", &log_path))?;
        file.sync_all().map_err(io_err("fsync log", &log_path))?;
        for ext in ["index", "timeindex"] {
            let _ = fs::remove_file(crate::segment::segment_path(&self.dir, base, ext));
        }
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        if marker.exists() {
            fs::remove_file(&marker).map_err(io_err("remove", &marker))?;
        }
        if self.recovery_point > offset {
            write_offset_file(&self.dir, RECOVERY_POINT_FILE, base)?;
        }
        // After the data is cut, as Kafka does: a crash in between leaves entries at or
        // past the new end, which open drops (beyond) or which the next epoch's entry at
        // the same start replaces (at) — never data of an epoch the cache lacks.
        let mut epochs = self.epochs.clone();
        if epochs.truncate_from_end(cut) {
            write_epoch_checkpoint(&self.dir, &epochs)?;
        }
        sync_dir(&self.dir)?;
        *self = Log::open(&self.dir.clone(), self.config.clone())?;
        tracing::info!(dir = %self.dir.display(), offset, end = self.log_end_offset(), "log truncated");
        Ok(self.log_end_offset())
    }

    /// Empties the log and starts it again at `offset` (Kafka's `truncateFullyAndStartAt`):
    /// every segment, producer snapshot and leader epoch goes, the next append gets
    /// `offset`. For a replica that installs a snapshot beyond everything it holds (a
    /// Raft follower far behind; a replica whose leader's log starts past its end).
    pub fn reset_to(&mut self, offset: i64) -> Result<()> {
        if offset < 0 {
            let (start, end) = (self.log_start_offset(), self.log_end_offset());
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        self.closed = true;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for b in bases {
            if let Some(s) = self.segments.remove(&b) {
                s.delete()?;
            }
        }
        for o in self.snapshot_offsets() {
            let _ = fs::remove_file(self.snapshot_path(o));
        }
        // The leader-epoch checkpoint goes with the data it describes: the reopened, empty
        // log rebuilds an empty cache.
        for name in [CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_FILE, EPOCH_CHECKPOINT_FILE, TXN_INDEX_FILE] {
            let path = self.dir.join(name);
            if path.exists() {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
        let log_path = crate::segment::segment_path(&self.dir, offset, "log");
        fs::File::create(&log_path).and_then(|f| f.sync_all()).map_err(io_err("create log", &log_path))?;
        write_offset_file(&self.dir, START_OFFSET_FILE, offset)?;
        sync_dir(&self.dir)?;
        *self = Log::open(&self.dir.clone(), self.config.clone())?;
        tracing::info!(dir = %self.dir.display(), offset, "log emptied and restarted");
        Ok(())
    }

    /// Offset the next appended record will get (LEO).
    pub fn log_end_offset(&self) -> i64 {
        self.active().map_or(0, Segment::next_offset)
    }

    /// Bytes of valid batches in all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }

    /// Number of segments (the active one included).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Appends exactly one v2 batch as received from a producer. Checks
    /// that `batchLength` matches `batch.len()`, magic 2, the CRC and a
    /// non-negative `lastOffsetDelta`; then patches `baseOffset` to the log
    /// end offset and `partitionLeaderEpoch` to `leader_epoch` (both outside
    /// the CRC) and writes it, rolling to a new segment first if needed.
    ///
    /// Batches with a producer id first pass the sequence check
    /// (`producer_state.rs`): a retried duplicate is not written and its
    /// original offsets are returned with `duplicate: true`; a sequence error
    /// is `Error::Sequence` and nothing is written.
    ///
    /// A `leader_epoch` newer than the leader-epoch cache's latest is recorded there
    /// (durably, before the batch is written) as starting at the batch's base offset.
    pub fn append(&mut self, batch: &[u8], leader_epoch: i32) -> Result<AppendInfo> {
        self.append_at(batch, leader_epoch, now_ms())
    }

    /// [`Self::append`] with the current time given (for producer expiry).
    pub fn append_at(&mut self, batch: &[u8], leader_epoch: i32, now_ms: i64) -> Result<AppendInfo> {
        let header = validate_batch(batch)?;
        if let Some(marker) = txn_marker(&header, batch) {
            self.producers.check_marker(header.producer_id, header.producer_epoch, marker)?;
        }
        if let SequenceCheck::Duplicate(meta) = self.producers.check(&header, now_ms)? {
            return Ok(AppendInfo {
                base_offset: meta.base_offset,
                last_offset: meta.last_offset(),
                max_timestamp: header.max_timestamp,
                bytes: 0,
                duplicate: true,
            });
        }
        self.check_fits(batch)?;
        let base_offset = self.log_end_offset();
        let patched = BatchHeader { base_offset, partition_leader_epoch: leader_epoch, ..header };
        self.write_batch(batch, &patched, now_ms)
    }

    /// Appends one batch exactly as the partition's leader wrote it (a follower's
    /// append, ADR 0010): the same bytes, base offset and `partitionLeaderEpoch`. The
    /// batch is checked as [`Self::append_at`] checks it, and its base offset must be the
    /// log end offset (else `Error::UnexpectedBaseOffset`, nothing written): a replica's
    /// log is a prefix of its leader's, never a log with holes or overlaps.
    ///
    /// No sequence check: the leader did it, and its log is the truth a follower copies
    /// even where a check here would disagree (e.g. after producer-state expiry at a
    /// different time). The producer state is still updated, so that a follower elected
    /// leader deduplicates retries of batches it only replicated.
    pub fn append_replicated(&mut self, batch: &[u8], now_ms: i64) -> Result<AppendInfo> {
        let header = validate_batch(batch)?;
        self.check_fits(batch)?;
        let log_end_offset = self.log_end_offset();
        if header.base_offset != log_end_offset {
            return Err(Error::UnexpectedBaseOffset { base_offset: header.base_offset, log_end_offset });
        }
        self.write_batch(batch, &header, now_ms)
    }

    /// Appends the whole batches of `data` (the records of a Fetch response from the
    /// leader) with [`Self::append_replicated`]. A trailing partial batch, normal at the
    /// end of a Fetch response, is ignored; batches wholly below the log end offset are
    /// skipped (this replica already has them). Returns the number of batches appended
    /// and the new log end offset. On an error the batches before the failing one stay
    /// appended (the log end offset says how far it got).
    pub fn append_replicated_batches(&mut self, data: &[u8], now_ms: i64) -> Result<(usize, i64)> {
        let mut appended = 0;
        for span in split_batches(data) {
            let range = match span {
                Ok(range) => range,
                Err(e) if e.is_truncated() => break,
                Err(e) => return Err(e.into()),
            };
            let batch = data.get(range).ok_or(BatchError::InvalidHeader("batch outside the data"))?;
            if BatchHeader::parse(batch)?.last_offset() < self.log_end_offset() {
                continue;
            }
            self.append_replicated(batch, now_ms)?;
            appended += 1;
        }
        Ok((appended, self.log_end_offset()))
    }

    /// Refuses a batch that no segment could hold.
    fn check_fits(&self, batch: &[u8]) -> Result<()> {
        if batch.len() as u64 > self.config.segment_bytes {
            return Err(Error::BatchTooLarge { size: batch.len(), max: self.config.segment_bytes });
        }
        Ok(())
    }

    /// The part of an append shared by leaders and followers, once the batch is accepted:
    /// writes `batch` with its first 16 bytes patched to `header`'s base offset and
    /// partition leader epoch (both outside the CRC; a no-op patch for a replicated
    /// batch), rolling first if needed, and updates the producer state and the
    /// leader-epoch cache. `header` is the batch's header as it will be on disk.
    fn write_batch(&mut self, batch: &[u8], header: &BatchHeader, now_ms: i64) -> Result<AppendInfo> {
        if self.index_failed {
            let path = self.dir.join(TXN_INDEX_FILE);
            return Err(Error::Io {
                op: "append after a failed txn index write",
                path,
                source: std::io::Error::other("the aborted-transaction index could not be written"),
            });
        }
        let base_offset = header.base_offset;
        let last_offset = base_offset
            .checked_add(i64::from(header.last_offset_delta))
            .filter(|&last| last < i64::MAX)
            .ok_or(BatchError::InvalidHeader("offset overflow"))?;
        if self.clean_marker {
            // The log changes after a clean close: the marker would lie. Its removal must
            // be durable before the write, or a crash could resurrect it over a torn tail.
            let path = self.dir.join(CLEAN_SHUTDOWN_FILE);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::Io { op: "remove", path, source: e }),
            }
            sync_dir(&self.dir)?;
            self.clean_marker = false;
        }
        let len = batch.len() as u64;
        let aged = self.config.segment_ms > 0 && now_ms.saturating_sub(self.active_since_ms) >= self.config.segment_ms;
        let must_roll = self
            .active()
            .is_none_or(|s| !s.is_active() || s.should_roll(len, last_offset, &self.config) || (aged && s.size() > 0));
        if must_roll {
            self.roll(base_offset)?;
        }
        // The first batch of a newer epoch: the checkpoint must be durable before the
        // batch is, or a crash could leave data of an epoch the cache does not know (the
        // reverse, an entry without data, is what a new leader's entry looks like anyway).
        self.record_epoch(header.partition_leader_epoch, base_offset)?;
        // The caller's bytes are written as they are, after a patched copy of the first
        // 16 bytes (baseOffset and partitionLeaderEpoch, both outside the CRC).
        let mut head = [0u8; PATCHED_HEAD];
        head.copy_from_slice(
            batch.get(..PATCHED_HEAD).ok_or(BatchError::Truncated { need: PATCHED_HEAD, have: batch.len() })?,
        );
        set_base_offset(&mut head, base_offset)?;
        set_partition_leader_epoch(&mut head, header.partition_leader_epoch)?;
        let rest = batch.get(PATCHED_HEAD..).ok_or(BatchError::Truncated { need: PATCHED_HEAD, have: batch.len() })?;
        let active = self.segments.values_mut().next_back().ok_or(Error::InvalidConfig("log has no segment"))?;
        active.append(&head, rest, header)?;
        if let Some(done) = self.producers.update(header, txn_marker(header, batch), now_ms) {
            let unstable = self.producers.first_unstable_offset();
            if let Err(e) = self.index_abort(done, unstable) {
                self.index_failed = true;
                return Err(e);
            }
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
            bytes: batch.len(),
            duplicate: false,
        })
    }

    /// Adds `(epoch, start_offset)` to the leader-epoch cache if `epoch` is newer than
    /// its latest, persisting the checkpoint before the cache changes in memory: if the
    /// write fails, the next append tries again instead of finding the epoch known.
    fn record_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if !self.epochs.is_newer(epoch) {
            return Ok(());
        }
        let mut next = self.epochs.clone();
        if next.assign(epoch, start_offset) {
            write_epoch_checkpoint(&self.dir, &next)?;
            tracing::debug!(dir = %self.dir.display(), epoch, start_offset, "new leader epoch");
            self.epochs = next;
        }
        Ok(())
    }

    /// A new leader records that its epoch starts at `start_offset` (its log end offset)
    /// before it appends anything (Kafka's `assign` on becoming leader), so that
    /// followers asking for an older epoch learn where it ended even if no batch of the
    /// new epoch is ever written. An epoch not newer than the latest cached one changes
    /// nothing; a latest entry starting at the same offset is replaced (it covers no
    /// offset any more). The checkpoint is written durably before returning.
    /// `start_offset` must be in `[0, log end offset]`, `epoch` non-negative.
    pub fn assign_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        if epoch < 0 {
            return Err(Error::InvalidLeaderEpoch(epoch));
        }
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if !(0..=end).contains(&start_offset) {
            return Err(Error::OffsetOutOfRange { offset: start_offset, start, end });
        }
        self.record_epoch(epoch, start_offset)
    }

    /// The newest leader epoch in the cache.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest_epoch()
    }

    /// OffsetForLeaderEpoch (Kafka's `endOffsetFor`): the largest cached epoch `<= epoch`
    /// and the offset where it ends — the next cached epoch's start offset, or the log
    /// end offset if it is the latest. `None` if the cache is empty or `epoch` is older
    /// than its first entry; the caller then answers UNDEFINED (-1, -1).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader-epoch cache as `(epoch, start_offset)`, oldest first.
    ///
    /// Entries below the log start offset stay when retention or DeleteRecords moves it
    /// (Kafka trims them): a lookup of such an old epoch answers an end offset below the
    /// log start, and a follower truncating there then fetches below the start, which
    /// sends it to the log start anyway. Keeping them saves a checkpoint write per
    /// deletion.
    pub fn epoch_entries(&self) -> Vec<(i32, i64)> {
        self.epochs.entries().to_vec()
    }

    /// Seals the active segment and starts a new one at `base_offset`.
    fn roll(&mut self, base_offset: i64) -> Result<()> {
        if let Some(active) = self.segments.values_mut().next_back() {
            active.seal()?;
        }
        let segment = Segment::create(&self.dir, base_offset, &self.config)?;
        sync_dir(&self.dir)?;
        self.segments.insert(base_offset, segment);
        self.active_since_ms = now_ms();
        // Everything before the new segment was fsync'd when its segment was sealed.
        self.checkpoint_recovery_point(base_offset)?;
        // The sealed segments are durable: record the producer state they imply.
        self.snapshot_producer_state()
    }

    /// Reads whole batches starting with the one containing `offset`, from
    /// a single segment, totalling at most `max_bytes` — except that the
    /// first batch is returned whole even if larger (KIP-74). `offset ==`
    /// log end offset gives empty data; outside `[start, end]` is
    /// `OffsetOutOfRange`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if offset < start || offset > end {
            return Err(Error::OffsetOutOfRange { offset, start, end });
        }
        let mut data = Bytes::new();
        if offset < end {
            let from = self.segments.range(..=offset).next_back().map_or(start, |(&base, _)| base);
            for segment in self.segments.range(from..).map(|(_, s)| s) {
                data = segment.read(offset, max_bytes)?;
                if !data.is_empty() {
                    break;
                }
            }
        }
        Ok(ReadResult { data, log_start_offset: start, log_end_offset: end })
    }

    /// `(offset, timestamp)` of the first batch (in offset order) whose
    /// `maxTimestamp >= timestamp`: its base offset and max timestamp. This
    /// is ListOffsets at batch granularity; the broker may decode that batch
    /// to find the exact record. `None` if no batch qualifies.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        for segment in self.segments.values() {
            if let Some(found) = segment.offset_for_timestamp(timestamp)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// `(max timestamp, base offset of the first batch holding it)` over the
    /// whole log, for ListOffsets MAX_TIMESTAMP. `None` if empty.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let mut best: Option<(i64, i64)> = None;
        for (ts, offset) in self.segments.values().filter_map(Segment::max_timestamp) {
            if best.is_none_or(|(b, _)| ts > b) {
                best = Some((ts, offset));
            }
        }
        best
    }

    /// fdatasync the active segment's log (sealed segments were fsync'd when sealed;
    /// the active segment's indexes are rebuilt from the log after a crash).
    pub fn flush(&mut self) -> Result<()> {
        match self.active() {
            Some(active) => active.flush(),
            None => Ok(()),
        }
    }

    /// For group commit: a handle on the active segment's file and the log end offset it
    /// covers. Sealed segments were fsync'd when sealed, so after `sync_data()` on this
    /// handle every offset below the returned one is durable. The caller syncs outside
    /// the log's lock so appends carry on meanwhile.
    pub fn sync_handle(&self) -> Result<Option<(fs::File, i64)>> {
        match self.active() {
            Some(active) => Ok(Some((active.file_handle()?, self.log_end_offset()))),
            None => Ok(None),
        }
    }

    /// Records that every offset below `offset` is on disk (after an fsync), so an
    /// unclean start re-verifies only what comes after. Writes only when it moved.
    pub fn checkpoint_recovery_point(&mut self, offset: i64) -> Result<()> {
        if offset <= self.recovery_point {
            return Ok(());
        }
        write_offset_file(&self.dir, RECOVERY_POINT_FILE, offset)?;
        self.recovery_point = offset;
        Ok(())
    }

    /// A clean stop: seals the active segment (trim, fsync, producer-state snapshot) and
    /// writes the clean-shutdown marker, so the next start skips CRC verification.
    pub fn shutdown(&mut self) -> Result<()> {
        self.seal_active()?;
        self.closed = true;
        if self.dir.exists() {
            write_offset_file(&self.dir, CLEAN_SHUTDOWN_FILE, self.log_end_offset())?;
            self.clean_marker = true;
        }
        Ok(())
    }

    /// The partition is being deleted and its directory removed: nothing is sealed,
    /// indexed or snapshotted when this log is dropped, since there is nowhere to put it.
    pub fn mark_deleted(&mut self) {
        self.closed = true;
    }

    /// Whether this log was opened right after a clean shutdown.
    pub fn opened_clean(&self) -> bool {
        self.opened_clean
    }

    /// Seals the active segment (trim to logical size, fsync). A reopen
    /// then only has to rescan the last segment, which is now exact-sized.
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.seal_active()
    }

    fn seal_active(&mut self) -> Result<()> {
        match self.segments.values_mut().next_back() {
            Some(active) => active.seal()?,
            None => return Ok(()),
        }
        if !self.dir.exists() {
            // The partition was deleted under us: nothing to snapshot for.
            return Ok(());
        }
        self.snapshot_producer_state()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if !self.closed {
            if let Err(e) = self.seal_active() {
                tracing::warn!(dir = %self.dir.display(), error = %e, "closing log failed");
            }
        }
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("dir", &self.dir)
            .field("log_start_offset", &self.log_start_offset())
            .field("log_end_offset", &self.log_end_offset())
            .field("segments", &self.segments.len())
            .finish()
    }
}
