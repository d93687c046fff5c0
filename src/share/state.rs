//! Durable share-partition state in `__share_group_state` (ADR 0016 step 4): one
//! snapshot record per share-partition write, keyed by (group, topic id, partition), in
//! a compacted topic, so the latest snapshot of every share-partition survives.
//!
//! The key and value follow the fields of Kafka's `ShareSnapshotKey` and
//! `ShareSnapshotValue` (key type 0; value version 0: snapshot epoch, state epoch, leader
//! epoch, start offset, create and write timestamps, state batches), in the flexible
//! encoding (compact strings and arrays, tagged-field sections). A null value is a
//! tombstone (the group was deleted). Bytes come from a log file: every path decodes
//! with bounds checks and answers an error, never a panic.

use bytes::Bytes;
use strom_protocol::{DecodeError, Reader, Uuid, Writer};

use super::partition::{Snapshot, StateBatch};

/// The internal topic's name (Kafka's).
pub const SHARE_STATE_TOPIC: &str = "__share_group_state";

/// Record key type of a snapshot (Kafka's `ShareSnapshotKey`).
const SNAPSHOT_KEY_TYPE: i16 = 0;

/// A share-partition: (group, topic id, partition).
pub type StateKey = (String, [u8; 16], i32);

/// A decoded snapshot value: the snapshot and its epochs and timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateValue {
    /// Bumped by every write of this share-partition, so a reader can tell the newest.
    pub snapshot_epoch: i32,
    /// Bumped when the share-partition is reset (AlterShareGroupOffsets); 0 until then.
    pub state_epoch: i32,
    /// The data partition's leader epoch at the write.
    pub leader_epoch: i32,
    pub create_timestamp: i64,
    pub write_timestamp: i64,
    pub snapshot: Snapshot,
}

/// The `__share_group_state` partition holding `key` (Kafka hashes
/// "group:topic id:partition" the same way it hashes group ids).
pub fn partition_for(key: &StateKey, partitions: i32) -> i32 {
    let id = Uuid(key.1);
    crate::coordinator::group::log::partition_for(&format!("{}:{}:{}", key.0, id, key.2), partitions)
}

/// Encodes a snapshot record's key.
pub fn encode_key(key: &StateKey) -> Bytes {
    let mut w = Writer::new();
    w.i16(SNAPSHOT_KEY_TYPE);
    // Lossless: group ids are bounded by the request size limits, far below i32::MAX.
    let _ = w.string(&key.0, true);
    w.uuid(Uuid(key.1));
    w.i32(key.2);
    w.uvarint(0);
    w.into_bytes()
}

/// Encodes a snapshot record's value (version 0).
pub fn encode_value(v: &StateValue) -> Bytes {
    let mut w = Writer::new();
    w.i16(0);
    w.i32(v.snapshot_epoch);
    w.i32(v.state_epoch);
    w.i32(v.leader_epoch);
    w.i64(v.snapshot.start_offset);
    w.i64(v.create_timestamp);
    w.i64(v.write_timestamp);
    let _ = w.array_len(v.snapshot.batches.len(), true);
    for b in &v.snapshot.batches {
        w.i64(b.first);
        w.i64(b.last);
        w.i8(b.state as i8);
        w.i16(b.delivery_count);
        w.uvarint(0);
    }
    w.uvarint(0);
    w.into_bytes()
}

/// Decodes a record key; `Ok(None)` for key types this broker does not write (Kafka's
/// `ShareUpdateKey`, type 1), which a reader skips.
pub fn decode_key(key: &Bytes) -> Result<Option<StateKey>, DecodeError> {
    let mut r = Reader::new(key.clone());
    if r.i16()? != SNAPSHOT_KEY_TYPE {
        return Ok(None);
    }
    let group = r.string(true)?;
    let topic = r.uuid()?;
    let partition = r.i32()?;
    Ok(Some((group, topic.0, partition)))
}

/// Decodes a snapshot value. Its consistency (order, states) is checked when the
/// share-partition is rebuilt from it (`SharePartition::from_snapshot`).
pub fn decode_value(value: &Bytes) -> Result<StateValue, DecodeError> {
    let mut r = Reader::new(value.clone());
    let version = r.i16()?;
    if version != 0 {
        return Err(r.invalid("share snapshot value version"));
    }
    let snapshot_epoch = r.i32()?;
    let state_epoch = r.i32()?;
    let leader_epoch = r.i32()?;
    let start_offset = r.i64()?;
    let create_timestamp = r.i64()?;
    let write_timestamp = r.i64()?;
    let n = r.array_len(true)?.unwrap_or(0);
    // Each batch takes at least 20 bytes: a count beyond what is left is corrupt, and
    // checking first keeps a hostile count from reserving memory.
    if n > r.remaining() / 20 {
        return Err(r.invalid("share snapshot batch count"));
    }
    let mut batches = Vec::with_capacity(n);
    for _ in 0..n {
        let first = r.i64()?;
        let last = r.i64()?;
        let state = r.i8()? as u8;
        let delivery_count = r.i16()?;
        skip_tags(&mut r)?;
        batches.push(StateBatch { first, last, state, delivery_count });
    }
    skip_tags(&mut r)?;
    Ok(StateValue {
        snapshot_epoch,
        state_epoch,
        leader_epoch,
        create_timestamp,
        write_timestamp,
        snapshot: Snapshot { start_offset, batches },
    })
}

/// Skips a tagged-field section (fields this version does not know).
fn skip_tags(r: &mut Reader) -> Result<(), DecodeError> {
    let n = r.uvarint()?;
    for _ in 0..n {
        let _tag = r.uvarint()?;
        let len = r.uvarint()? as usize;
        r.take(len)?;
    }
    Ok(())
}

/// Decodes one record of the topic: `Ok(None)` for records to skip.
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Result<Option<(StateKey, Option<StateValue>)>, DecodeError> {
    let Some(k) = decode_key(key)? else { return Ok(None) };
    let v = value.map(decode_value).transpose()?;
    Ok(Some((k, v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> StateValue {
        StateValue {
            snapshot_epoch: 7,
            state_epoch: 0,
            leader_epoch: 3,
            create_timestamp: 1_700_000_000_000,
            write_timestamp: 1_700_000_001_000,
            snapshot: Snapshot {
                start_offset: 10,
                batches: vec![
                    StateBatch { first: 10, last: 14, state: 0, delivery_count: 2 },
                    StateBatch { first: 15, last: 15, state: 2, delivery_count: 1 },
                    StateBatch { first: 16, last: 30, state: 4, delivery_count: 5 },
                ],
            },
        }
    }

    #[test]
    fn records_round_trip() {
        let key: StateKey = ("orders-workers".into(), [9; 16], 4);
        let k = encode_key(&key);
        let v = encode_value(&value());
        assert_eq!(decode(&k, Some(&v)).unwrap(), Some((key.clone(), Some(value()))));
        assert_eq!(decode(&k, None).unwrap(), Some((key, None)), "a tombstone");
    }

    #[test]
    fn other_key_types_are_skipped_and_damage_is_an_error() {
        let mut w = Writer::new();
        w.i16(1);
        assert_eq!(decode(&w.into_bytes(), None).unwrap(), None);
        let v = encode_value(&value());
        for cut in 0..v.len() {
            assert!(decode_value(&v.slice(..cut)).is_err(), "a value cut at {cut} decodes");
        }
        // A batch count far beyond the bytes present is refused before allocating.
        let mut w = Writer::new();
        w.i16(0);
        for _ in 0..3 {
            w.i32(0);
        }
        for _ in 0..3 {
            w.i64(0);
        }
        w.uvarint(u32::MAX);
        assert!(decode_value(&w.into_bytes()).is_err());
    }

    #[test]
    fn keys_spread_over_partitions_like_group_ids() {
        let p = |g: &str, part: i32| partition_for(&(g.to_string(), [1; 16], part), 50);
        assert!((0..50).contains(&p("a", 0)));
        assert_eq!(p("a", 0), p("a", 0));
        let distinct: std::collections::BTreeSet<i32> = (0..40).map(|i| p("g", i)).collect();
        assert!(distinct.len() > 10, "{distinct:?}");
    }
}
