//! Entry points over arbitrary bytes for the on-disk parsers, shared by the fuzz
//! targets (`fuzz/`) and the killer-corpus replay, so both run the same code. Each must
//! return for any input without panicking.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::log::{Log, LogConfig};
use crate::producer_state::ProducerStateManager;
use crate::recovery::scan;

/// The recovery scan of a segment's bytes (header, length, CRC, offsets per batch).
pub fn segment_scan(data: &[u8]) {
    let out = scan(data, 0, 0, |_, _| {});
    assert!(out.valid_len <= data.len() as u64, "valid prefix beyond the data");
}

/// A producer-state snapshot file (ADR 0003).
pub fn producer_snapshot(data: &[u8]) {
    let _ = ProducerStateManager::decode_snapshot(data, i64::MAX);
}

/// Base offset of the second (active) segment written by [`log_dir`].
const ACTIVE_BASE: i64 = 100;

fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let (len, rest) = match data {
        [a, b, rest @ ..] => (usize::from(u16::from_be_bytes([*a, *b])), rest),
        _ => (0, &[][..]),
    };
    let n = len.min(rest.len());
    let (head, tail) = rest.split_at(n);
    *data = tail;
    head
}

/// A whole partition directory made from `data`: a sealed segment with its offset and
/// time indexes, an active segment and a producer-state snapshot (each piece prefixed by
/// a big-endian u16 length; the active segment takes the rest). The log is opened
/// (recovery, index checks, snapshot load) and read at every offset it claims and by
/// timestamp, then removed.
pub fn log_dir(data: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("strom-fuzz-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let mut rest = data;
    let sealed = take(&mut rest);
    let index = take(&mut rest);
    let timeindex = take(&mut rest);
    let snapshot = take(&mut rest);
    let active = rest;
    let files: [(String, &[u8]); 5] = [
        (format!("{:020}.log", 0), sealed),
        (format!("{:020}.index", 0), index),
        (format!("{:020}.timeindex", 0), timeindex),
        (format!("{ACTIVE_BASE:020}.snapshot"), snapshot),
        (format!("{ACTIVE_BASE:020}.log"), active),
    ];
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    for (name, bytes) in &files {
        if std::fs::write(dir.join(name), bytes).is_err() {
            let _ = std::fs::remove_dir_all(&dir);
            return;
        }
    }
    let config = LogConfig { segment_bytes: 1 << 20, segment_index_bytes: 4096, ..LogConfig::default() };
    if let Ok(log) = Log::open(&dir, config) {
        let (start, end) = (log.log_start_offset(), log.log_end_offset());
        let mut off = start;
        while off <= end && off < start.saturating_add(256) {
            if let Ok(r) = log.read(off, 1 << 16) {
                let _ = r;
            }
            off += 1;
        }
        for ts in [i64::MIN, -1, 0, 1, 1_700_000_000_000, i64::MAX] {
            let _ = log.offset_for_timestamp(ts);
        }
        drop(log);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// An aborted-transaction index file (ADR 0012) beside a small valid log: the log is
/// opened (the index trimmed to whole, ordered entries inside the log) and the index
/// queried over several ranges.
pub fn txn_index(data: &[u8]) {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "strom-fuzz-txn-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let config = LogConfig { segment_bytes: 1 << 20, segment_index_bytes: 4096, ..LogConfig::default() };
    if let Ok(mut log) = Log::open(&dir, config.clone()) {
        for _ in 0..8 {
            let mut b = strom_protocol::records::BatchBuilder::new(0);
            b.add(None, Some(b"v"));
            let _ = log.append(&b.build(), 0);
        }
        let _ = log.close();
    }
    if std::fs::write(dir.join(crate::txn_index::TXN_INDEX_FILE), data).is_ok() {
        if let Ok(log) = Log::open(&dir, config) {
            for (from, upto) in [(0, i64::MAX), (i64::MIN, 0), (3, 5), (i64::MAX, i64::MIN)] {
                for a in log.aborted_transactions(from, upto) {
                    assert!(a.first_offset <= a.last_offset && a.last_offset < log.log_end_offset());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
