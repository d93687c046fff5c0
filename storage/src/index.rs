//! Fixed-width, memory-mapped segment indexes.
//!
//! FORMAT (version [`INDEX_FORMAT_VERSION`]); all integers big-endian, no
//! file header, the file is a plain array of entries:
//!
//! * `{base_offset:020}.index` — 8-byte entries `(relative_offset u32,
//!   position u32)`: the batch whose base offset is `base_offset +
//!   relative_offset` starts at byte `position` of the `.log` file. One
//!   entry is added when at least `index_interval_bytes` of log were
//!   written since the previous entry (the first batch of a segment is
//!   never indexed: position 0 is implicit). Both columns strictly increase.
//! * `{base_offset:020}.timeindex` — 12-byte entries `(timestamp i64,
//!   relative_offset u32)`: `timestamp` is the largest batch
//!   `maxTimestamp` seen so far in the segment and `relative_offset` the
//!   base offset of the first batch that reached it. Every batch before that
//!   batch has a smaller max timestamp. Added at offset-index points when
//!   the maximum grew, and once more when the segment is sealed, so the last
//!   entry of a sealed segment is its maximum timestamp. Both columns
//!   strictly increase.
//!
//! Crash behaviour: the active segment's indexes live in memory (at most
//! `segment_index_bytes` each) and are written, fsync'd, when the segment is
//! sealed (roll or clean close); a file of the active segment's base offset left
//! from before is removed when the segment is created. Recovery always rebuilds
//! the last segment's indexes from its log (after a clean shutdown it reloads
//! them instead, see `Segment::reactivate`), and rebuilds any other segment's
//! index that fails [`OffsetIndex::is_consistent`] / [`TimeIndex::is_consistent`].
//!
//! Thread-safety: indexes are owned by their segment; mutation takes
//! `&mut self`, so the log's caller-side lock serializes everything.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use memmap2::Mmap;

use crate::error::io_err;
use crate::mmap::map_read;
use crate::Result;

/// Version of the index file formats described above.
pub const INDEX_FORMAT_VERSION: u32 = 1;

const OFFSET_ENTRY_LEN: usize = 8;
const TIME_ENTRY_LEN: usize = 12;

/// Where an index's entries live.
enum Store {
    /// A sealed segment's index: the trimmed file, mapped read-only. No descriptor is
    /// kept: the mapping stays valid on its own.
    Mapped(Option<Arc<Mmap>>),
    /// The active segment's index, in memory until the segment is sealed. Recovery
    /// rebuilds the last segment's indexes from its log anyway, so they need not be on
    /// disk before then, and an active partition holds one descriptor (its log), not
    /// three: 10,000 partitions fit in a 20,000 open-files limit.
    Memory(Vec<u8>),
}

/// An array of fixed-width entries.
struct IndexFile {
    path: PathBuf,
    store: Store,
    entry_len: usize,
    entries: usize,
    capacity: usize,
}

impl IndexFile {
    /// A new, empty in-memory index with room for `max_bytes / entry_len` entries. A
    /// stray file at `path` (from a segment that once had this base offset) is removed.
    fn create(path: &Path, entry_len: usize, max_bytes: u64) -> Result<IndexFile> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove stale index", path)(e)),
        }
        let capacity = usize::try_from(max_bytes).unwrap_or(usize::MAX) / entry_len;
        Ok(IndexFile { path: path.to_path_buf(), store: Store::Memory(Vec::new()), entry_len, entries: 0, capacity })
    }

    /// Opens an existing, trimmed index file. `Ok(None)` if it is missing or
    /// its length is not a whole number of entries.
    fn open_existing(path: &Path, entry_len: usize) -> Result<Option<IndexFile>> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("open index", path)(e)),
        };
        let len = file.metadata().map_err(io_err("stat index", path))?.len();
        if len % entry_len as u64 != 0 {
            return Ok(None);
        }
        let Ok(entries) = usize::try_from(len / entry_len as u64) else {
            return Ok(None);
        };
        let map = if len > 0 { Some(map_read(&file, len).map_err(io_err("map index", path))?) } else { None };
        Ok(Some(IndexFile {
            path: path.to_path_buf(),
            store: Store::Mapped(map),
            entry_len,
            entries,
            capacity: entries,
        }))
    }

    /// Takes a sealed index back into memory with room for `max_bytes / entry_len`
    /// entries, so a segment reopened after a clean shutdown takes appends again.
    fn extend(&mut self, max_bytes: u64) -> Result<()> {
        if let Store::Mapped(map) = &self.store {
            let bytes =
                map.as_ref().map_or_else(Vec::new, |m| m.get(..self.entries * self.entry_len).unwrap_or(&[]).to_vec());
            self.store = Store::Memory(bytes);
        }
        self.capacity = (usize::try_from(max_bytes).unwrap_or(usize::MAX) / self.entry_len).max(self.entries);
        Ok(())
    }

    fn entry(&self, i: usize) -> Option<&[u8]> {
        if i >= self.entries {
            return None;
        }
        let start = i * self.entry_len;
        match &self.store {
            Store::Mapped(map) => map.as_ref()?.get(start..start + self.entry_len),
            Store::Memory(buf) => buf.get(start..start + self.entry_len),
        }
    }

    /// Appends an entry; false (and nothing added) if the index is full or sealed.
    fn push(&mut self, bytes: &[u8]) -> bool {
        let Store::Memory(buf) = &mut self.store else { return false };
        if self.entries >= self.capacity || bytes.len() != self.entry_len {
            return false;
        }
        buf.extend_from_slice(bytes);
        self.entries += 1;
        true
    }

    fn remaining(&self) -> usize {
        self.capacity - self.entries
    }

    /// Seals the index: writes the in-memory entries to the file (temp-free: the file is
    /// only trusted once its segment is sealed, see `Segment::open_sealed`), fsyncs it and
    /// maps it read-only. Idempotent.
    fn trim(&mut self) -> Result<()> {
        let Store::Memory(buf) = &self.store else { return Ok(()) };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.path)
            .map_err(io_err("create index", &self.path))?;
        file.write_all(buf).map_err(io_err("write index", &self.path))?;
        file.sync_data().map_err(io_err("fsync index", &self.path))?;
        let len = buf.len() as u64;
        let map = if len > 0 { Some(map_read(&file, len).map_err(io_err("map index", &self.path))?) } else { None };
        self.store = Store::Mapped(map);
        self.capacity = self.entries;
        Ok(())
    }

    /// Greatest `i` with `key(i) <= target`, by binary search; `keys` must be
    /// increasing.
    fn floor<K: Ord>(&self, target: K, key: impl Fn(&[u8]) -> Option<K>) -> Option<usize> {
        let (mut lo, mut hi) = (0usize, self.entries); // answer in [lo, hi)
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid).and_then(&key) {
                Some(k) if k <= target => lo = mid + 1,
                _ => hi = mid,
            }
        }
        lo.checked_sub(1)
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be_i64(b: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Relative offset → log file position.
pub(crate) struct OffsetIndex(IndexFile);

impl OffsetIndex {
    pub(crate) fn create(path: &Path, max_bytes: u64) -> Result<OffsetIndex> {
        IndexFile::create(path, OFFSET_ENTRY_LEN, max_bytes).map(OffsetIndex)
    }

    pub(crate) fn open_existing(path: &Path) -> Result<Option<OffsetIndex>> {
        Ok(IndexFile::open_existing(path, OFFSET_ENTRY_LEN)?.map(OffsetIndex))
    }

    fn get(&self, i: usize) -> Option<(u32, u32)> {
        let e = self.0.entry(i)?;
        Some((be_u32(e, 0)?, be_u32(e, 4)?))
    }

    /// Adds an entry; false if full.
    pub(crate) fn push(&mut self, relative_offset: u32, position: u32) -> bool {
        let mut e = [0u8; OFFSET_ENTRY_LEN];
        e[..4].copy_from_slice(&relative_offset.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.0.push(&e)
    }

    /// Position of the last indexed batch whose relative offset is
    /// `<= relative_offset`, or 0.
    pub(crate) fn lookup(&self, relative_offset: u32) -> u32 {
        self.0.floor(relative_offset, |e| be_u32(e, 0)).and_then(|i| self.get(i)).map_or(0, |(_, pos)| pos)
    }

    /// The log position of the last entry.
    pub(crate) fn last_position(&self) -> Option<u32> {
        self.get(self.0.entries.checked_sub(1)?).map(|(_, pos)| pos)
    }

    /// See `IndexFile::extend`.
    pub(crate) fn extend(&mut self, max_bytes: u64) -> Result<()> {
        self.0.extend(max_bytes)
    }

    /// Both columns strictly increase and positions lie inside the log.
    pub(crate) fn is_consistent(&self, log_size: u64) -> bool {
        strictly_increasing((0..self.0.entries).map(|i| self.get(i)), |_, pos| u64::from(*pos) < log_size)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.0.remaining()
    }

    pub(crate) fn trim(&mut self) -> Result<()> {
        self.0.trim()
    }
}

/// True when every entry is readable, within bounds, and both columns strictly increase.
fn strictly_increasing<A: PartialOrd, B: PartialOrd>(
    entries: impl Iterator<Item = Option<(A, B)>>,
    in_bounds: impl Fn(&A, &B) -> bool,
) -> bool {
    let mut prev: Option<(A, B)> = None;
    for entry in entries {
        let Some((a, b)) = entry else { return false };
        if !in_bounds(&a, &b) || prev.as_ref().is_some_and(|(pa, pb)| a <= *pa || b <= *pb) {
            return false;
        }
        prev = Some((a, b));
    }
    true
}

/// Max timestamp so far → relative offset of the first batch reaching it.
pub(crate) struct TimeIndex(IndexFile);

impl TimeIndex {
    pub(crate) fn create(path: &Path, max_bytes: u64) -> Result<TimeIndex> {
        IndexFile::create(path, TIME_ENTRY_LEN, max_bytes).map(TimeIndex)
    }

    pub(crate) fn open_existing(path: &Path) -> Result<Option<TimeIndex>> {
        Ok(IndexFile::open_existing(path, TIME_ENTRY_LEN)?.map(TimeIndex))
    }

    fn get(&self, i: usize) -> Option<(i64, u32)> {
        let e = self.0.entry(i)?;
        Some((be_i64(e, 0)?, be_u32(e, 8)?))
    }

    /// The last entry: for a sealed segment, its maximum timestamp.
    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        self.get(self.0.entries.checked_sub(1)?)
    }

    /// Adds an entry if `timestamp` exceeds the last one; false if that was
    /// needed but the index is full.
    pub(crate) fn maybe_push(&mut self, timestamp: i64, relative_offset: u32) -> bool {
        if self.last().is_some_and(|(ts, _)| ts >= timestamp) {
            return true;
        }
        let mut e = [0u8; TIME_ENTRY_LEN];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&relative_offset.to_be_bytes());
        self.0.push(&e)
    }

    /// Relative offset of the last entry with timestamp `<= timestamp`.
    pub(crate) fn lookup(&self, timestamp: i64) -> Option<u32> {
        let i = self.0.floor(timestamp, |e| be_i64(e, 0))?;
        self.get(i).map(|(_, off)| off)
    }

    /// See `IndexFile::extend`.
    pub(crate) fn extend(&mut self, max_bytes: u64) -> Result<()> {
        self.0.extend(max_bytes)
    }

    /// Both columns strictly increase and offsets stay below `max_relative`.
    pub(crate) fn is_consistent(&self, max_relative: u64) -> bool {
        strictly_increasing((0..self.0.entries).map(|i| self.get(i)), |_, off| u64::from(*off) < max_relative)
    }

    pub(crate) fn remaining(&self) -> usize {
        self.0.remaining()
    }

    pub(crate) fn trim(&mut self) -> Result<()> {
        self.0.trim()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_lookup_returns_the_floor_entry_or_zero() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = OffsetIndex::create(&dir.path().join("a.index"), 80).unwrap();
        assert_eq!(idx.lookup(5), 0);
        for (off, pos) in [(10, 100), (20, 200), (30, 300)] {
            assert!(idx.push(off, pos));
        }
        assert_eq!(idx.lookup(9), 0);
        assert_eq!(idx.lookup(10), 100);
        assert_eq!(idx.lookup(25), 200);
        assert_eq!(idx.lookup(u32::MAX), 300);
        assert!(idx.is_consistent(301));
        assert!(!idx.is_consistent(300));
    }

    #[test]
    fn a_full_index_refuses_entries_and_trim_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.index");
        let mut idx = OffsetIndex::create(&path, 17).unwrap();
        assert!(idx.push(1, 1) && idx.push(2, 2));
        assert_eq!(idx.remaining(), 0);
        assert!(!idx.push(3, 3));
        idx.trim().unwrap();
        drop(idx);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        let idx = OffsetIndex::open_existing(&path).unwrap().unwrap();
        assert_eq!(idx.lookup(2), 2);
    }

    #[test]
    fn an_active_index_reaches_the_disk_only_when_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.timeindex");
        std::fs::write(&path, [1u8; 24]).unwrap(); // a stale file of an earlier segment
        let mut idx = TimeIndex::create(&path, 120).unwrap();
        assert!(!path.exists(), "the stale file is removed");
        assert!(idx.maybe_push(5, 1));
        assert!(idx.maybe_push(5, 2)); // not larger: skipped
        assert!(idx.maybe_push(9, 3));
        assert!(TimeIndex::open_existing(&path).unwrap().is_none());
        idx.trim().unwrap();
        let reopened = TimeIndex::open_existing(&path).unwrap().unwrap();
        assert_eq!(reopened.last(), Some((9, 3)));
        assert!(reopened.is_consistent(100));
    }

    #[test]
    fn a_zero_filled_tail_is_inconsistent() {
        // What a preallocated file left by a crash looks like.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.timeindex");
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&5i64.to_be_bytes());
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&[0u8; 24]);
        std::fs::write(&path, bytes).unwrap();
        let idx = TimeIndex::open_existing(&path).unwrap().unwrap();
        assert!(!idx.is_consistent(100));
    }

    #[test]
    fn time_lookup_finds_the_last_entry_not_after_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::create(&dir.path().join("a.timeindex"), 120).unwrap();
        for (ts, off) in [(100, 0), (200, 5), (300, 9)] {
            assert!(idx.maybe_push(ts, off));
        }
        assert_eq!(idx.lookup(99), None);
        assert_eq!(idx.lookup(200), Some(5));
        assert_eq!(idx.lookup(299), Some(5));
        assert_eq!(idx.last(), Some((300, 9)));
        assert!(idx.is_consistent(10));
        assert!(!idx.is_consistent(9));
    }
}
