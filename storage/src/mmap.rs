//! Memory maps of segment and index files — the only module with `unsafe`.
//!
//! Invariants the rest of the crate upholds (and the SAFETY comments rely on):
//! * the partition directory belongs to this process; no other process
//!   writes, truncates or deletes its files while they are mapped;
//! * bytes of a log file below its logical size are never modified after
//!   they were written, so slices handed out to readers never change;
//! * a log file is only truncated to its logical size, so every byte a
//!   reader may touch stays backed by the file (no SIGBUS).
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::Arc;

use bytes::Bytes;
use memmap2::{Mmap, MmapOptions};

fn to_usize(len: u64) -> io::Result<usize> {
    usize::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "map too large"))
}

/// Maps the first `len` bytes of `file` read-only (`len > 0`).
pub(crate) fn map_read(file: &File, len: u64) -> io::Result<Arc<Mmap>> {
    let len = to_usize(len)?;
    // SAFETY: the file is owned by this log (module invariants). Readers only
    // dereference bytes below the logical size, which are immutable once
    // written and always backed by the file; bytes above it may still be
    // written via pwrite, but no slice over them is ever handed out.
    let map = unsafe { MmapOptions::new().len(len).map(file)? };
    Ok(Arc::new(map))
}

/// A byte range of a shared read-only mapping, the owner behind a
/// zero-copy `Bytes`.
struct MapRange {
    map: Arc<Mmap>,
    start: usize,
    end: usize,
}

impl AsRef<[u8]> for MapRange {
    fn as_ref(&self) -> &[u8] {
        self.map.get(self.start..self.end).unwrap_or(&[])
    }
}

/// `Bytes` over `map[start..end]` without copying; keeps the mapping alive.
pub(crate) fn map_bytes(map: &Arc<Mmap>, start: usize, end: usize) -> Bytes {
    Bytes::from_owner(MapRange { map: Arc::clone(map), start, end })
}
