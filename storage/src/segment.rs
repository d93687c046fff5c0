//! One segment: a log file of record batches plus its two indexes.
//!
//! FORMAT (version [`SEGMENT_FORMAT_VERSION`]): `{base_offset:020}.log`
//! holds v2 record batches exactly as received from producers (only
//! `baseOffset` and `partitionLeaderEpoch` patched by the log), back to
//! back, with no file header. Offsets increase strictly from batch to batch
//! and every batch's offsets lie in `[base_offset, base_offset + u32::MAX]`.
//! Index formats: see `index.rs`.
//!
//! I/O policy:
//! * Appends are positional writes (`pwrite`) at the logical size, so a
//!   full disk is an `ENOSPC` error, never a SIGBUS.
//! * Reads are zero-copy slices of a read-only shared mapping of the same
//!   file; the unified page cache makes written bytes visible to it at once.
//! * The ACTIVE segment's file is preallocated (sparse) to `segment_bytes`
//!   and mapped once at that length, so appends never remap; only bytes
//!   below the logical size are ever served. When the segment is sealed (on
//!   roll or clean close) the file is truncated to its logical size and
//!   remapped at that length; readers holding the old mapping keep working
//!   because the bytes they may touch are still backed by the file.
//! * Durability: `flush` does fdatasync of the log, then msync of the
//!   indexes (which recovery rebuilds anyway). Sealing fsyncs both.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::Mmap;
use strom_protocol::records::BatchHeader;

use crate::error::io_err;
use crate::index::{OffsetIndex, TimeIndex};
use crate::log::LogConfig;
use crate::mmap::{map_bytes, map_read};
use crate::recovery::scan;
use crate::{Error, Result};

/// Version of the `.log` file format described above.
pub const SEGMENT_FORMAT_VERSION: u32 = 1;

/// `{base_offset:020}.{ext}` inside `dir`.
pub(crate) fn segment_path(dir: &Path, base_offset: i64, ext: &str) -> PathBuf {
    dir.join(format!("{base_offset:020}.{ext}"))
}

/// Index state kept in step with the log bytes.
struct Indexes {
    offset: OffsetIndex,
    time: TimeIndex,
    base_offset: i64,
    interval: u64,
    bytes_since_entry: u64,
    /// One past the last offset in the segment.
    next_offset: i64,
    /// Largest batch max timestamp and the base offset of the first batch
    /// that reached it.
    max_timestamp: Option<(i64, i64)>,
}

impl Indexes {
    fn relative(&self, offset: i64) -> Option<u32> {
        u32::try_from(offset.checked_sub(self.base_offset)?).ok()
    }

    /// Records a batch appended (or recovered) at `position`.
    fn on_batch(&mut self, position: u64, h: &BatchHeader) {
        if self.max_timestamp.is_none_or(|(ts, _)| h.max_timestamp > ts) {
            self.max_timestamp = Some((h.max_timestamp, h.base_offset));
        }
        if self.bytes_since_entry > self.interval && self.offset.remaining() > 0 {
            if let (Some(rel), Ok(pos)) = (self.relative(h.base_offset), u32::try_from(position)) {
                if self.offset.push(rel, pos) {
                    self.bytes_since_entry = 0;
                    // Keep one time-index slot free for the entry added on seal.
                    if let Some((ts, off)) = self.max_timestamp {
                        if let (Some(rel), true) = (self.relative(off), self.time.remaining() > 1) {
                            self.time.maybe_push(ts, rel);
                        }
                    }
                }
            }
        }
        self.bytes_since_entry += h.total_len() as u64;
        self.next_offset = h.last_offset().saturating_add(1);
    }

    /// Final time-index entry so the last one is the segment maximum.
    fn add_final_time_entry(&mut self) {
        if let Some((ts, off)) = self.max_timestamp {
            if let Some(rel) = self.relative(off) {
                self.time.maybe_push(ts, rel);
            }
        }
    }
}

/// A log file and its indexes.
pub(crate) struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    file: File,
    /// Logical size: bytes of valid batches.
    size: u64,
    /// Read-only mapping of at least `size` bytes (`None` if nothing mapped).
    map: Option<Arc<Mmap>>,
    mapped_len: u64,
    /// Preallocated and writable; false once sealed.
    active: bool,
    idx: Indexes,
}

fn new_indexes(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Indexes> {
    Ok(Indexes {
        offset: OffsetIndex::create(&segment_path(dir, base_offset, "index"), config.segment_index_bytes)?,
        time: TimeIndex::create(&segment_path(dir, base_offset, "timeindex"), config.segment_index_bytes)?,
        base_offset,
        interval: config.index_interval_bytes,
        bytes_since_entry: 0,
        next_offset: base_offset,
        max_timestamp: None,
    })
}

fn map_opt(file: &File, len: u64, path: &Path) -> Result<Option<Arc<Mmap>>> {
    if len == 0 {
        return Ok(None);
    }
    map_read(file, len).map(Some).map_err(io_err("map log", path))
}

impl Segment {
    /// Creates a new, empty active segment (truncating any stray file).
    pub(crate) fn create(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Segment> {
        let log_path = segment_path(dir, base_offset, "log");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&log_path)
            .map_err(io_err("create log", &log_path))?;
        file.set_len(config.segment_bytes).map_err(io_err("preallocate log", &log_path))?;
        let map = map_opt(&file, config.segment_bytes, &log_path)?;
        Ok(Segment {
            base_offset,
            idx: new_indexes(dir, base_offset, config)?,
            log_path,
            file,
            size: 0,
            map,
            mapped_len: config.segment_bytes,
            active: true,
        })
    }

    /// Opens the last segment of a log: scans it, truncates the file at the
    /// first invalid batch, rebuilds both indexes and makes it active again.
    pub(crate) fn recover(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        verified_below: i64,
        clean_end: Option<i64>,
    ) -> Result<Segment> {
        if let Some(end) = clean_end {
            if let Some(segment) = Self::reactivate(dir, base_offset, config, end)? {
                return Ok(segment);
            }
            tracing::info!(dir = %dir.display(), base_offset, "indexes of a cleanly closed segment unusable: rebuilding");
        }
        let log_path = segment_path(dir, base_offset, "log");
        let file = OpenOptions::new().read(true).write(true).open(&log_path).map_err(io_err("open log", &log_path))?;
        let file_len = file.metadata().map_err(io_err("stat log", &log_path))?.len();
        let mut idx = new_indexes(dir, base_offset, config)?;
        let valid_len = match map_opt(&file, file_len, &log_path)? {
            None => 0,
            Some(map) => {
                let outcome = scan(&map, base_offset, verified_below, |pos, h| idx.on_batch(pos, h));
                if let Some((position, reason)) = &outcome.stop {
                    tracing::info!(
                        path = %log_path.display(),
                        position,
                        discarded = file_len - outcome.valid_len,
                        ?reason,
                        "truncating segment at first invalid batch"
                    );
                }
                outcome.valid_len
            }
        };
        // Shrink first so nothing beyond the valid prefix survives, then
        // preallocate again for appends.
        file.set_len(valid_len).map_err(io_err("truncate log", &log_path))?;
        let capacity = config.segment_bytes.max(valid_len);
        file.set_len(capacity).map_err(io_err("preallocate log", &log_path))?;
        let map = map_opt(&file, capacity, &log_path)?;
        Ok(Segment { base_offset, log_path, file, size: valid_len, map, mapped_len: capacity, active: true, idx })
    }

    /// After a clean shutdown the last segment is sealed (trimmed, indexes complete,
    /// fsync'd) and ends at the marker's `end`: reopen it for appends with its indexes
    /// instead of rescanning it, so startup does not read every active segment. Checked:
    /// both indexes consistent, and the batch headers after the last index entry end
    /// exactly at the file end and at offset `end`. `None` when anything disagrees.
    fn reactivate(dir: &Path, base_offset: i64, config: &LogConfig, end: i64) -> Result<Option<Segment>> {
        let log_path = segment_path(dir, base_offset, "log");
        let file = OpenOptions::new().read(true).write(true).open(&log_path).map_err(io_err("open log", &log_path))?;
        let size = file.metadata().map_err(io_err("stat log", &log_path))?.len();
        let Ok(span) = u64::try_from(end - base_offset) else { return Ok(None) };
        let offset =
            OffsetIndex::open_existing(&segment_path(dir, base_offset, "index"))?.filter(|i| i.is_consistent(size));
        let time = TimeIndex::open_existing(&segment_path(dir, base_offset, "timeindex"))?
            .filter(|t| t.is_consistent(span.max(1)) && (size == 0 || t.last().is_some()));
        let (Some(mut offset), Some(mut time)) = (offset, time) else { return Ok(None) };
        if let Some(map) = map_opt(&file, size, &log_path)? {
            let mut pos = offset.last_position().map_or(0, |p| p as usize);
            let mut next = None;
            while pos < map.len() {
                let Some(h) = map.get(pos..).and_then(|b| BatchHeader::parse(b).ok()) else { return Ok(None) };
                if h.total_len() == 0 {
                    return Ok(None);
                }
                next = Some(h.last_offset().saturating_add(1));
                pos += h.total_len();
            }
            if pos != map.len() || next != Some(end) {
                return Ok(None);
            }
        } else if end != base_offset {
            return Ok(None);
        }
        offset.extend(config.segment_index_bytes)?;
        time.extend(config.segment_index_bytes)?;
        let capacity = config.segment_bytes.max(size);
        file.set_len(capacity).map_err(io_err("preallocate log", &log_path))?;
        let map = map_opt(&file, capacity, &log_path)?;
        let idx = Indexes {
            max_timestamp: time.last().map(|(ts, rel)| (ts, base_offset + i64::from(rel))),
            offset,
            time,
            base_offset,
            interval: config.index_interval_bytes,
            bytes_since_entry: 0,
            next_offset: end,
        };
        Ok(Some(Segment { base_offset, log_path, file, size, map, mapped_len: capacity, active: true, idx }))
    }

    /// Opens a sealed (non-last) segment whose successor starts at
    /// `next_base`. Uses its index files if they are consistent, otherwise
    /// rebuilds them from a scan (without truncating the log).
    pub(crate) fn open_sealed(dir: &Path, base_offset: i64, next_base: i64, config: &LogConfig) -> Result<Segment> {
        let log_path = segment_path(dir, base_offset, "log");
        let file = OpenOptions::new().read(true).open(&log_path).map_err(io_err("open log", &log_path))?;
        let size = file.metadata().map_err(io_err("stat log", &log_path))?.len();
        let map = map_opt(&file, size, &log_path)?;
        let span = u64::try_from(next_base.saturating_sub(base_offset)).unwrap_or(0);
        let offset =
            OffsetIndex::open_existing(&segment_path(dir, base_offset, "index"))?.filter(|i| i.is_consistent(size));
        let time = TimeIndex::open_existing(&segment_path(dir, base_offset, "timeindex"))?
            .filter(|t| t.is_consistent(span) && (size == 0 || t.last().is_some()));
        let idx = match (offset, time) {
            (Some(offset), Some(time)) => Indexes {
                max_timestamp: time.last().map(|(ts, rel)| (ts, base_offset + i64::from(rel))),
                offset,
                time,
                base_offset,
                interval: config.index_interval_bytes,
                bytes_since_entry: 0,
                next_offset: next_base,
            },
            _ => {
                tracing::info!(path = %log_path.display(), "rebuilding segment indexes");
                let mut idx = new_indexes(dir, base_offset, config)?;
                if let Some(map) = &map {
                    let outcome = scan(map, base_offset, 0, |pos, h| idx.on_batch(pos, h));
                    if let Some((position, reason)) = outcome.stop {
                        tracing::warn!(
                            path = %log_path.display(),
                            position,
                            ?reason,
                            "sealed segment has an invalid batch; reads past it will fail"
                        );
                    }
                }
                idx.add_final_time_entry();
                idx.offset.trim()?;
                idx.time.trim()?;
                idx.next_offset = next_base;
                idx
            }
        };
        Ok(Segment { base_offset, log_path, file, size, map, mapped_len: size, active: false, idx })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn is_active(&self) -> bool {
        self.active
    }

    /// One past the last offset stored in this segment.
    pub(crate) fn next_offset(&self) -> i64 {
        self.idx.next_offset
    }

    /// `(max timestamp, base offset of the first batch holding it)`.
    pub(crate) fn max_timestamp(&self) -> Option<(i64, i64)> {
        self.idx.max_timestamp
    }

    /// Whether a batch of `len` bytes ending at `last_offset` must go to a
    /// new segment: this one is non-empty and the batch would exceed
    /// `segment_bytes`, overflow the 32-bit relative offset, or an index has
    /// no room left.
    pub(crate) fn should_roll(&self, len: u64, last_offset: i64, config: &LogConfig) -> bool {
        if self.size == 0 {
            return false;
        }
        self.size.saturating_add(len) > config.segment_bytes
            || self.idx.relative(last_offset).is_none()
            || self.idx.offset.remaining() == 0
            || self.idx.time.remaining() < 2
    }

    /// Writes a validated batch (already patched) at the end of the log.
    /// Writes one batch given as its (patched) head and the rest, in one positional
    /// vectored write: the producer's bytes go from the request buffer to the page cache.
    pub(crate) fn append(&mut self, head: &[u8], rest: &[u8], header: &BatchHeader) -> Result<()> {
        let position = self.size;
        let end = position + (head.len() + rest.len()) as u64;
        if end > self.mapped_len {
            // Only when a recovered segment is larger than the configured
            // preallocation: grow and remap once.
            self.file.set_len(end).map_err(io_err("extend log", &self.log_path))?;
            self.map = map_opt(&self.file, end, &self.log_path)?;
            self.mapped_len = end;
        }
        write_all_at_vectored(&self.file, head, rest, position).map_err(io_err("write log", &self.log_path))?;
        self.size = end;
        self.idx.on_batch(position, header);
        Ok(())
    }

    /// Trims the log and indexes to their contents, remaps the log at its
    /// exact size and fsyncs everything. Idempotent.
    /// Removes the segment's files. Reads handed out earlier keep their mapping alive:
    /// on Linux an unlinked file stays readable through existing maps.
    pub(crate) fn delete(self) -> Result<()> {
        let base = self.base_offset;
        let dir = self.log_path.parent().map(Path::to_path_buf).unwrap_or_default();
        drop(self);
        for ext in ["log", "index", "timeindex"] {
            let path = segment_path(&dir, base, ext);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::Error::Io { op: "delete segment", path, source: e }),
            }
        }
        Ok(())
    }

    pub(crate) fn seal(&mut self) -> Result<()> {
        if !self.active {
            return Ok(());
        }
        self.idx.add_final_time_entry();
        self.idx.offset.trim()?;
        self.idx.time.trim()?;
        self.map = None;
        self.file.set_len(self.size).map_err(io_err("trim log", &self.log_path))?;
        self.file.sync_all().map_err(io_err("fsync log", &self.log_path))?;
        self.map = map_opt(&self.file, self.size, &self.log_path)?;
        self.mapped_len = self.size;
        self.active = false;
        Ok(())
    }

    /// fdatasync the log (the active indexes are in memory: recovery rebuilds them).
    /// A second handle on the log file, so an fsync can run without the log's lock.
    pub(crate) fn file_handle(&self) -> Result<File> {
        self.file.try_clone().map_err(io_err("dup log file", &self.log_path))
    }

    pub(crate) fn flush(&self) -> Result<()> {
        self.file.sync_data().map_err(io_err("fsync log", &self.log_path))
    }

    fn corrupt(&self, position: usize, reason: &'static str) -> Error {
        Error::Corrupt { path: self.log_path.clone(), position: position as u64, reason }
    }

    /// The valid bytes of the log and their mapping.
    fn data(&self) -> Option<(&Arc<Mmap>, &[u8])> {
        let map = self.map.as_ref()?;
        let size = usize::try_from(self.size).ok()?;
        Some((map, map.get(..size)?))
    }

    /// Header of the batch at `pos`, checked to lie inside `data`.
    fn header_at(&self, data: &[u8], pos: usize) -> Result<BatchHeader> {
        let h = data
            .get(pos..)
            .and_then(|rest| BatchHeader::parse(rest).ok())
            .ok_or_else(|| self.corrupt(pos, "unreadable batch header"))?;
        if pos + h.total_len() > data.len() {
            return Err(self.corrupt(pos, "batch extends past the end of the segment"));
        }
        Ok(h)
    }

    /// Position of the first batch whose last offset is `>= offset`,
    /// starting from the offset index's floor entry.
    fn find(&self, data: &[u8], offset: i64) -> Result<Option<(usize, BatchHeader)>> {
        let rel = self.idx.relative(offset.max(self.base_offset)).unwrap_or(u32::MAX);
        let mut pos = self.idx.offset.lookup(rel) as usize;
        while pos < data.len() {
            let h = self.header_at(data, pos)?;
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_len();
        }
        Ok(None)
    }

    /// Byte position of the batch holding `offset` (or the first batch after it), `None`
    /// when no batch here reaches `offset`.
    pub(crate) fn position_of(&self, offset: i64) -> Result<Option<u64>> {
        let Some((_, data)) = self.data() else { return Ok(None) };
        Ok(self.find(data, offset)?.map(|(pos, _)| pos as u64))
    }

    /// Whole batches starting with the one containing `offset` (or the next
    /// one after it), at most `max_bytes` except that the first batch is
    /// always returned whole. Empty if no batch here reaches `offset`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes> {
        let Some((map, data)) = self.data() else {
            return Ok(Bytes::new());
        };
        // Strom never shrinks a file below bytes it serves; another process might. Touching
        // mapped pages past the end of the file would raise SIGBUS, so check first and
        // answer with an error instead (a truncation racing this check is not covered).
        let on_disk = self.file.metadata().map_err(io_err("stat log", &self.log_path))?.len();
        if on_disk < self.size {
            return Err(self.corrupt(on_disk as usize, "log file truncated by another process"));
        }
        let Some((start, first)) = self.find(data, offset)? else {
            return Ok(Bytes::new());
        };
        let mut end = start + first.total_len();
        while end < data.len() {
            let h = self.header_at(data, end)?;
            if end - start + h.total_len() > max_bytes {
                break;
            }
            end += h.total_len();
        }
        Ok(map_bytes(map, start, end))
    }

    /// `(base offset, max timestamp)` of the first batch whose max timestamp
    /// is `>= timestamp`.
    pub(crate) fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        if self.idx.max_timestamp.is_none_or(|(ts, _)| ts < timestamp) {
            return Ok(None);
        }
        let Some((_, data)) = self.data() else {
            return Ok(None);
        };
        let start = self.idx.time.lookup(timestamp).unwrap_or(0);
        let mut pos = self.idx.offset.lookup(start) as usize;
        while pos < data.len() {
            let h = self.header_at(data, pos)?;
            if h.max_timestamp >= timestamp {
                return Ok(Some((h.base_offset, h.max_timestamp)));
            }
            pos += h.total_len();
        }
        Ok(None)
    }
}

/// `pwritev` of `a` then `b` at `position`, retried until everything is written.
fn write_all_at_vectored(file: &File, mut a: &[u8], mut b: &[u8], mut position: u64) -> std::io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let written = if a.is_empty() {
            rustix::io::pwrite(file, b, position)
        } else {
            rustix::io::pwritev(file, &[std::io::IoSlice::new(a), std::io::IoSlice::new(b)], position)
        };
        let mut n = match written {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        position += n as u64;
        let from_a = n.min(a.len());
        a = &a[from_a..];
        n -= from_a;
        b = b.get(n..).unwrap_or_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use strom_protocol::records::BatchBuilder;

    use super::*;

    /// A sealed segment holding `n` batches from offset 0; returns its log end offset.
    fn sealed(dir: &Path, config: &LogConfig, n: i64) -> i64 {
        let mut s = Segment::create(dir, 0, config).unwrap();
        for i in 0..n {
            let mut b = BatchBuilder::new(1000 + i);
            b.add(None, Some(&[b'v'; 300]));
            let mut batch = b.build();
            strom_protocol::records::set_base_offset(&mut batch, i).unwrap();
            let h = BatchHeader::parse(&batch).unwrap();
            s.append(&batch[..16], &batch[16..], &h).unwrap();
        }
        s.seal().unwrap();
        n
    }

    #[test]
    fn a_cleanly_sealed_segment_is_reactivated_with_its_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { index_interval_bytes: 500, ..LogConfig::default() };
        let end = sealed(dir.path(), &config, 20);
        let s = Segment::reactivate(dir.path(), 0, &config, end).unwrap().expect("reactivated");
        assert!(s.is_active());
        assert_eq!(s.idx.next_offset, end);
        assert!(s.idx.offset.last_position().is_some(), "the index entries were kept");
        assert!(s.idx.offset.remaining() > 0 && s.idx.time.remaining() > 1, "room to append again");
    }

    #[test]
    fn a_segment_that_disagrees_with_the_marker_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { index_interval_bytes: 500, ..LogConfig::default() };
        let end = sealed(dir.path(), &config, 20);
        assert!(Segment::reactivate(dir.path(), 0, &config, end + 1).unwrap().is_none(), "wrong end offset");
        // A torn index (not a whole number of entries).
        let index = segment_path(dir.path(), 0, "index");
        let len = std::fs::metadata(&index).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&index).unwrap().set_len(len - 3).unwrap();
        assert!(Segment::reactivate(dir.path(), 0, &config, end).unwrap().is_none(), "torn index");
        let s = Segment::recover(dir.path(), 0, &config, end, Some(end)).unwrap();
        assert_eq!(s.idx.next_offset, end, "rebuilt from the log");
    }
}
