//! Strom's partition log: segment files, mmap'd indexes and crash recovery.
//!
//! A [`Log`] is one partition's ordered set of segments. It knows offsets,
//! record batches (via `strom_protocol::records`) and files — nothing about
//! Kafka APIs. Callers serialize access (e.g. a `Mutex<Log>`); reads return
//! zero-copy [`bytes::Bytes`] that stay valid after the lock is released.
//!
//! See `segment.rs` and `index.rs` for the on-disk formats and `recovery.rs`
//! for what happens after an unclean stop.

mod epochs;
mod error;
pub mod harness;
mod index;
mod log;
mod mmap;
pub mod producer_state;
mod recovery;
mod segment;
pub mod txn_index;

pub use epochs::CHECKPOINT_FORMAT_VERSION as LEADER_EPOCH_CHECKPOINT_FORMAT_VERSION;
pub use error::Error;
pub use index::INDEX_FORMAT_VERSION;
pub use log::{compact_offline, now_ms, AppendInfo, CleanedSegment, CompactionInput, Log, LogConfig, ReadResult};
pub use producer_state::{ProducerStateManager, SequenceError};
pub use segment::SEGMENT_FORMAT_VERSION;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
