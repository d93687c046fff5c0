//! Records of `__transaction_state`, in Kafka's formats (ADR 0012).
//!
//! FORMAT (big-endian, classic strings with int16 lengths):
//! - TransactionLogKey v0: `version i16 = 0, transactional_id string`
//! - TransactionLogValue v0: `version i16 = 0, producer_id i64, producer_epoch i16,
//!   transaction_timeout_ms i32, transaction_status i8, transaction_partitions
//!   nullable [topic string, partition_ids [i32]], transaction_last_update_timestamp_ms
//!   i64, transaction_start_timestamp_ms i64`
//!
//! A null value (tombstone) removes an expired transactional id. Versions above 0 of the
//! value (Kafka's flexible v1, transaction version 2) are refused when read: Strom
//! writes only version 0 while `transaction.version` is 1.

use std::collections::BTreeSet;

use bytes::Bytes;
use strom_protocol::{DecodeError, Reader, Writer};

/// Key version of transaction metadata.
pub const KEY_VERSION: i16 = 0;
/// Value version written.
pub const VALUE_VERSION: i16 = 0;

/// Kafka's transaction states, with their persisted ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl Status {
    /// The state of a persisted id.
    pub fn from_id(id: i8) -> Option<Status> {
        Some(match id {
            0 => Status::Empty,
            1 => Status::Ongoing,
            2 => Status::PrepareCommit,
            3 => Status::PrepareAbort,
            4 => Status::CompleteCommit,
            5 => Status::CompleteAbort,
            6 => Status::Dead,
            7 => Status::PrepareEpochFence,
            _ => return None,
        })
    }

    /// Kafka's name (DescribeTransactions, ListTransactions, the CLI).
    pub fn name(self) -> &'static str {
        match self {
            Status::Empty => "Empty",
            Status::Ongoing => "Ongoing",
            Status::PrepareCommit => "PrepareCommit",
            Status::PrepareAbort => "PrepareAbort",
            Status::CompleteCommit => "CompleteCommit",
            Status::CompleteAbort => "CompleteAbort",
            Status::Dead => "Dead",
            Status::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Whether markers are being written (a transition to Complete* follows).
    pub fn is_prepare(self) -> bool {
        matches!(self, Status::PrepareCommit | Status::PrepareAbort)
    }
}

/// One transactional id's state as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: Status,
    /// The partitions of the ongoing transaction, in (topic, partition) order.
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    /// When the ongoing transaction started (-1 when none).
    pub start_ms: i64,
}

/// Encodes a record: key, and value (`None` for a tombstone).
pub fn encode(transactional_id: &str, value: Option<&TxnValue>) -> (Bytes, Option<Bytes>) {
    let mut k = Writer::new();
    k.i16(KEY_VERSION);
    let _ = k.string(transactional_id, false);
    let value = value.map(|v| {
        let mut w = Writer::new();
        w.i16(VALUE_VERSION);
        w.i64(v.producer_id);
        w.i16(v.producer_epoch);
        w.i32(v.timeout_ms);
        w.i8(v.status as i8);
        // Kafka writes the partitions grouped by topic, null only when there are none
        // in Empty; an empty array is as good to its reader.
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (t, p) in &v.partitions {
            match topics.last_mut() {
                Some((last, ps)) if *last == t.as_str() => ps.push(*p),
                _ => topics.push((t.as_str(), vec![*p])),
            }
        }
        let _ = w.array_len(topics.len(), false);
        for (t, ps) in topics {
            let _ = w.string(t, false);
            let _ = w.array_len(ps.len(), false);
            for p in ps {
                w.i32(p);
            }
        }
        w.i64(v.last_update_ms);
        w.i64(v.start_ms);
        w.into_bytes()
    });
    (k.into_bytes(), value)
}

/// Decodes a record: the transactional id and its value (`None`: a tombstone). `Ok(None)`
/// for a key of another version (not Strom's to read).
#[allow(clippy::type_complexity)]
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Result<Option<(String, Option<TxnValue>)>, DecodeError> {
    let mut k = Reader::new(key.clone());
    if k.i16()? != KEY_VERSION {
        return Ok(None);
    }
    let id = k.string(false)?;
    let Some(v) = value else { return Ok(Some((id, None))) };
    let mut r = Reader::new(v.clone());
    let version = r.i16()?;
    if version != VALUE_VERSION {
        return Err(r.invalid("transaction log value version"));
    }
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let status = Status::from_id(r.i8()?).ok_or_else(|| r.invalid("transaction status"))?;
    let mut partitions = BTreeSet::new();
    if let Some(n) = r.array_len(false)? {
        for _ in 0..n {
            let topic = r.string(false)?;
            let m = r.array_len(false)?.unwrap_or(0);
            for _ in 0..m {
                partitions.insert((topic.clone(), r.i32()?));
            }
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Ok(Some((
        id,
        Some(TxnValue { producer_id, producer_epoch, timeout_ms, status, partitions, last_update_ms, start_ms }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_kafkas_layout() {
        let v = TxnValue {
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            status: Status::Ongoing,
            partitions: [("a".to_string(), 0), ("a".to_string(), 2), ("b".to_string(), 1)].into_iter().collect(),
            last_update_ms: 11,
            start_ms: 10,
        };
        let (k, val) = encode("tx", Some(&v));
        assert_eq!(&k[..], &[0, 0, 0, 2, b't', b'x']);
        let val = val.unwrap();
        // version, producer id, epoch, timeout, status, then 2 topics.
        assert_eq!(&val[..2], &[0, 0]);
        assert_eq!(val[16], 1);
        assert_eq!(&val[17..21], &[0, 0, 0, 2]);
        assert_eq!(decode(&k, Some(&val)).unwrap(), Some(("tx".to_string(), Some(v))));
        assert_eq!(decode(&k, None).unwrap(), Some(("tx".to_string(), None)));
        assert!(decode(&k, Some(&Bytes::from_static(&[0, 0, 1]))).is_err());
    }

    #[test]
    fn damaged_records_are_errors_never_panics() {
        // Records come from disk (a replica's copy of `__transaction_state`): truncations
        // and random bytes of a valid record, and random records, must decode or fail.
        let v = TxnValue {
            producer_id: 1,
            producer_epoch: 0,
            timeout_ms: 1000,
            status: Status::PrepareCommit,
            partitions: [("t".to_string(), 0), ("u".to_string(), 3)].into_iter().collect(),
            last_update_ms: 5,
            start_ms: 4,
        };
        let (k, val) = encode("id", Some(&v));
        let val = val.unwrap();
        for cut in 0..val.len() {
            assert!(decode(&k, Some(&val.slice(..cut))).is_err(), "a value cut at {cut} decoded");
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let mut bytes = val.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                bytes[at] = next() as u8;
            }
            let _ = decode(&k, Some(&Bytes::from(bytes)));
            let len = (next() % 64) as usize;
            let junk: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = decode(&Bytes::from(junk.clone()), Some(&Bytes::from(junk)));
        }
    }
}
