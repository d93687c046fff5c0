//! The aborted-transaction index of a partition (ADR 0012): which offset ranges belong
//! to transactions that ended with an ABORT marker, so that Fetch can tell
//! `read_committed` consumers which records to drop.
//!
//! On disk: one file per partition, `aborted-transactions.txnindex`, a sequence of
//! fixed 34-byte big-endian entries in Kafka's `.txnindex` entry layout
//! (`i16 version 0 | i64 producer id | i64 first offset | i64 last offset | i64 LSO`),
//! ordered by last offset (the abort marker's offset). Kafka keeps one such file per
//! segment; one per partition is simpler (see the ADR) and the file is small: one entry
//! per aborted transaction. An entry is appended and fsync'd before the marker's append
//! returns, so an acknowledged abort is never forgotten; a torn tail is cut on open and
//! entries whose marker is beyond the recovered log end are dropped (the replay after the
//! producer-state snapshot adds back what the log still holds).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::Result;

/// File name of the index in the partition directory.
pub const TXN_INDEX_FILE: &str = "aborted-transactions.txnindex";
/// Version of an entry (Kafka's `AbortedTxn` version 0).
pub const TXN_INDEX_ENTRY_VERSION: i16 = 0;
const ENTRY_LEN: usize = 34;

/// One aborted transaction of one producer in this partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of the ABORT marker.
    pub last_offset: i64,
    /// The partition's last stable offset when the marker was written.
    pub last_stable_offset: i64,
}

impl AbortedTxn {
    fn encode(&self) -> [u8; ENTRY_LEN] {
        let mut out = [0u8; ENTRY_LEN];
        out[..2].copy_from_slice(&TXN_INDEX_ENTRY_VERSION.to_be_bytes());
        out[2..10].copy_from_slice(&self.producer_id.to_be_bytes());
        out[10..18].copy_from_slice(&self.first_offset.to_be_bytes());
        out[18..26].copy_from_slice(&self.last_offset.to_be_bytes());
        out[26..34].copy_from_slice(&self.last_stable_offset.to_be_bytes());
        out
    }

    fn decode(b: &[u8]) -> Option<AbortedTxn> {
        let i64_at = |at: usize| Some(i64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?));
        let version = i16::from_be_bytes(b.get(..2)?.try_into().ok()?);
        if version != TXN_INDEX_ENTRY_VERSION {
            return None;
        }
        Some(AbortedTxn {
            producer_id: i64_at(2)?,
            first_offset: i64_at(10)?,
            last_offset: i64_at(18)?,
            last_stable_offset: i64_at(26)?,
        })
    }
}

/// The index in memory, mirrored by its file.
#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    /// Ascending by `last_offset`.
    entries: Vec<AbortedTxn>,
}

impl TxnIndex {
    /// An empty index for `dir` that has not read its file (a placeholder until `open`).
    pub(crate) fn empty(dir: &Path) -> TxnIndex {
        TxnIndex { path: dir.join(TXN_INDEX_FILE), entries: Vec::new() }
    }

    /// Loads the index of `dir`, keeping the whole, valid entries whose marker lies in
    /// `[start, end)` (the log's offsets after recovery); rewrites the file if anything
    /// was dropped. A missing file is an empty index.
    pub fn open(dir: &Path, start: i64, end: i64) -> Result<TxnIndex> {
        let path = dir.join(TXN_INDEX_FILE);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::Io { op: "read txn index", path, source: e }),
        };
        let mut entries = Vec::with_capacity(data.len() / ENTRY_LEN);
        let mut clean = data.len() % ENTRY_LEN == 0;
        for chunk in data.chunks_exact(ENTRY_LEN) {
            match AbortedTxn::decode(chunk) {
                Some(e)
                    if e.last_offset >= start
                        && e.last_offset < end
                        && e.first_offset <= e.last_offset
                        && entries.last().is_none_or(|l: &AbortedTxn| l.last_offset < e.last_offset) =>
                {
                    entries.push(e)
                }
                _ => clean = false,
            }
        }
        let index = TxnIndex { path, entries };
        if !clean {
            tracing::info!(path = %index.path.display(), kept = index.entries.len(), "aborted-transaction index trimmed on open");
            index.rewrite()?;
        }
        Ok(index)
    }

    /// Records an aborted transaction (durably, before returning). An entry at or below
    /// the newest one's marker offset is already known (a replay after recovery) and
    /// skipped.
    pub fn add(&mut self, entry: AbortedTxn) -> Result<()> {
        if self.entries.last().is_some_and(|l| l.last_offset >= entry.last_offset) {
            return Ok(());
        }
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { op, path, source }
        };
        let mut f =
            fs::OpenOptions::new().create(true).append(true).open(&self.path).map_err(io("open", &self.path))?;
        f.write_all(&entry.encode()).map_err(io("write", &self.path))?;
        f.sync_data().map_err(io("fsync", &self.path))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Drops entries whose marker is below `start` (retention, DeleteRecords).
    pub fn remove_before(&mut self, start: i64) -> Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.last_offset >= start);
        if self.entries.len() != before {
            self.rewrite()?;
        }
        Ok(())
    }

    /// The aborted transactions that may hold records in `[from, upto)`: those ending at
    /// or after `from` and starting before `upto` (Kafka's `collectAbortedTxns`).
    pub fn collect(&self, from: i64, upto: i64) -> Vec<AbortedTxn> {
        let first = self.entries.partition_point(|e| e.last_offset < from);
        self.entries.get(first..).unwrap_or_default().iter().filter(|e| e.first_offset < upto).copied().collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn rewrite(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let bytes: Vec<u8> = self.entries.iter().flat_map(|e| e.encode()).collect();
        crate::log::write_file_durably(dir, TXN_INDEX_FILE, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txn(pid: i64, first: i64, last: i64) -> AbortedTxn {
        AbortedTxn { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: first }
    }

    #[test]
    fn entries_survive_a_reopen_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TxnIndex::open(dir.path(), 0, 100).unwrap();
        idx.add(txn(1, 0, 5)).unwrap();
        idx.add(txn(2, 3, 9)).unwrap();
        idx.add(txn(2, 3, 9)).unwrap(); // a replay: skipped
        let mut bytes = fs::read(dir.path().join(TXN_INDEX_FILE)).unwrap();
        assert_eq!(bytes.len(), 2 * ENTRY_LEN);
        bytes.extend_from_slice(&[0, 0, 1]);
        fs::write(dir.path().join(TXN_INDEX_FILE), &bytes).unwrap();
        let idx = TxnIndex::open(dir.path(), 0, 100).unwrap();
        assert_eq!(idx.collect(0, 100), vec![txn(1, 0, 5), txn(2, 3, 9)]);
        assert_eq!(fs::read(dir.path().join(TXN_INDEX_FILE)).unwrap().len(), 2 * ENTRY_LEN);
        // A marker beyond the recovered end is forgotten.
        let idx = TxnIndex::open(dir.path(), 0, 9).unwrap();
        assert_eq!(idx.collect(0, 100), vec![txn(1, 0, 5)]);
    }

    #[test]
    fn collect_returns_the_transactions_overlapping_a_range() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TxnIndex::open(dir.path(), 0, 1000).unwrap();
        for e in [txn(1, 0, 5), txn(2, 3, 9), txn(3, 20, 30)] {
            idx.add(e).unwrap();
        }
        assert_eq!(idx.collect(6, 20), vec![txn(2, 3, 9)]);
        assert_eq!(idx.collect(6, 21), vec![txn(2, 3, 9), txn(3, 20, 30)]);
        assert_eq!(idx.collect(31, 100), vec![]);
        idx.remove_before(6).unwrap();
        assert_eq!(TxnIndex::open(dir.path(), 0, 1000).unwrap().collect(0, 1000), vec![txn(2, 3, 9), txn(3, 20, 30)]);
    }
}
