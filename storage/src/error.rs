//! Storage errors. Each variant carries the data needed to act on it.

use std::io;
use std::path::{Path, PathBuf};

use strom_protocol::records::BatchError;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call on `path` failed while doing `op`.
    #[error("{op} {path}: {source}", path = path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// File content that was accepted earlier no longer parses (only
    /// possible for segments recovery did not scan, or external damage).
    #[error("corrupt data in {path} at byte {position}: {reason}", path = path.display())]
    Corrupt { path: PathBuf, position: u64, reason: &'static str },
    /// The batch given to `append` is malformed.
    #[error("invalid batch: {0}")]
    InvalidBatch(#[from] BatchError),
    /// The batch is larger than a segment may be.
    #[error("batch of {size} bytes exceeds segment size {max}")]
    BatchTooLarge { size: usize, max: u64 },
    /// `offset` is outside `[start, end]`.
    #[error("offset {offset} out of range [{start}, {end}]")]
    OffsetOutOfRange { offset: i64, start: i64, end: i64 },
    /// An idempotent batch failed the sequence check; nothing was written.
    #[error("{0}")]
    Sequence(#[from] crate::producer_state::SequenceError),
    /// A transaction marker from a stale producer or coordinator epoch; nothing was written.
    #[error("{0}")]
    Marker(#[from] crate::producer_state::MarkerError),
    /// A replicated batch does not start at the log end offset (a follower's fetch
    /// and its log disagree); nothing was written.
    #[error("replicated batch starts at offset {base_offset}, the log ends at {log_end_offset}")]
    UnexpectedBaseOffset { base_offset: i64, log_end_offset: i64 },
    /// A leader epoch given to the log is negative.
    #[error("invalid leader epoch {0}")]
    InvalidLeaderEpoch(i32),
    /// A `LogConfig` value is outside its allowed range.
    #[error("invalid log config: {0}")]
    InvalidConfig(&'static str),
}

impl Error {
    /// True when the OS reported that the disk is full (ENOSPC/EDQUOT).
    pub fn is_storage_full(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                matches!(source.kind(), io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded)
            }
            _ => false,
        }
    }
}

/// Adapter for `map_err`: wraps an `io::Error` with the operation and path.
pub(crate) fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io { op, path: path.to_path_buf(), source }
}
