//! A partition's log: an ordered set of segments with one active segment.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use strom_protocol::records::{
    set_base_offset, set_partition_leader_epoch, verify_crc, BatchError, BatchHeader, BATCH_HEADER_LEN,
};

use crate::error::io_err;
use crate::segment::Segment;
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
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig { segment_bytes: 1 << 30, index_interval_bytes: 4096, segment_index_bytes: 10 << 20 }
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
    /// Size of the batch in bytes.
    pub bytes: usize,
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
    closed: bool,
}

/// Base offset from a `{base_offset:020}.log` file name.
fn parse_log_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
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
            if let Some(base) = entry.file_name().to_str().and_then(parse_log_name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
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
                segments.insert(last, Segment::recover(dir, last, &config)?);
            }
        }
        Ok(Log { dir: dir.to_path_buf(), config, segments, closed: false })
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
        self.segments.keys().next().copied().unwrap_or(0)
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
    pub fn append(&mut self, batch: &mut [u8], leader_epoch: i32) -> Result<AppendInfo> {
        let header = BatchHeader::parse(batch)?;
        if header.total_len() != batch.len() {
            return Err(BatchError::BadLength(header.batch_length).into());
        }
        verify_crc(batch)?;
        if header.last_offset_delta < 0 {
            return Err(BatchError::InvalidHeader("negative lastOffsetDelta").into());
        }
        let len = batch.len() as u64;
        if len > self.config.segment_bytes {
            return Err(Error::BatchTooLarge { size: batch.len(), max: self.config.segment_bytes });
        }
        let base_offset = self.log_end_offset();
        let last_offset = base_offset
            .checked_add(i64::from(header.last_offset_delta))
            .filter(|&last| last < i64::MAX)
            .ok_or(BatchError::InvalidHeader("offset overflow"))?;
        let must_roll = self.active().is_none_or(|s| !s.is_active() || s.should_roll(len, last_offset, &self.config));
        if must_roll {
            self.roll(base_offset)?;
        }
        set_base_offset(batch, base_offset)?;
        set_partition_leader_epoch(batch, leader_epoch)?;
        let patched = BatchHeader { base_offset, partition_leader_epoch: leader_epoch, ..header };
        let active = self.segments.values_mut().next_back().ok_or(Error::InvalidConfig("log has no segment"))?;
        active.append(batch, &patched)?;
        Ok(AppendInfo { base_offset, last_offset, max_timestamp: header.max_timestamp, bytes: batch.len() })
    }

    /// Seals the active segment and starts a new one at `base_offset`.
    fn roll(&mut self, base_offset: i64) -> Result<()> {
        if let Some(active) = self.segments.values_mut().next_back() {
            active.seal()?;
        }
        let segment = Segment::create(&self.dir, base_offset, &self.config)?;
        sync_dir(&self.dir)?;
        self.segments.insert(base_offset, segment);
        Ok(())
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

    /// fdatasync the active segment's log, then msync its indexes (sealed
    /// segments were fsync'd when sealed).
    pub fn flush(&mut self) -> Result<()> {
        match self.active() {
            Some(active) => active.flush(),
            None => Ok(()),
        }
    }

    /// Seals the active segment (trim to logical size, fsync). A reopen
    /// then only has to rescan the last segment, which is now exact-sized.
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        self.seal_active()
    }

    fn seal_active(&mut self) -> Result<()> {
        match self.segments.values_mut().next_back() {
            Some(active) => active.seal(),
            None => Ok(()),
        }
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
