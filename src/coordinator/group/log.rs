//! Records of `__consumer_offsets`, in Kafka's formats so tools that read the topic
//! understand them (ADR 0004).
//!
//! FORMAT (all big-endian, classic strings with int16 lengths, bytes with int32):
//! - OffsetCommitKey v1: `version i16 = 1, group string, topic string, partition i32`
//! - OffsetCommitValue v3: `version i16 = 3, offset i64, leader_epoch i32,
//!   metadata string, commit_timestamp i64`
//! - GroupMetadataKey v2: `version i16 = 2, group string`
//! - GroupMetadataValue v3: `version i16 = 3, protocol_type string, generation i32,
//!   protocol nullable string, leader nullable string, current_state_timestamp i64,
//!   members [member_id string, group_instance_id nullable string, client_id string,
//!   client_host string, rebalance_timeout i32, session_timeout i32,
//!   subscription bytes, assignment bytes]`
//! - ConsumerGroupMetadataKey (record type 3): `type i16 = 3, group string`
//! - ConsumerGroupMetadataValue v0 (flexible): `version i16 = 0, epoch i32, tagged fields`
//!
//! A null value (tombstone) deletes the key. Strom writes the ConsumerGroupMetadata record
//! only to mark a group as a KIP-848 consumer group (when one is created or converted from
//! a classic group) and its tombstone when the group turns classic or is deleted; Kafka's
//! member, assignment and subscription records are not written (KIP-848 membership is not
//! persisted, ADR 0004).

use bytes::Bytes;
use strom_protocol::{DecodeError, Reader, Writer};

/// Key version of offset commits.
pub const OFFSET_KEY_VERSION: i16 = 1;
/// Value version of offset commits.
pub const OFFSET_VALUE_VERSION: i16 = 3;
/// Key version of group metadata.
pub const GROUP_KEY_VERSION: i16 = 2;
/// Value version of group metadata.
pub const GROUP_VALUE_VERSION: i16 = 3;
/// Record type (key version) of KIP-848 consumer-group metadata.
pub const CONSUMER_GROUP_KEY_TYPE: i16 = 3;

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// A member as persisted with its group's generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// A group's generation as persisted after each completed rebalance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberValue>,
}

/// A decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogRecord {
    /// An offset commit, or its deletion (`None`).
    Offset { group: String, topic: String, partition: i32, value: Option<OffsetValue> },
    /// A group's metadata, or its deletion (`None`).
    Group { group: String, value: Option<GroupValue> },
    /// A KIP-848 consumer group and its epoch, or the end of it (`None`): the group
    /// became classic again or was deleted.
    ConsumerGroup { group: String, epoch: Option<i32> },
}

fn string(w: &mut Writer, s: &str) {
    // Group ids, topics and metadata are bounded by request limits; longer strings are
    // refused before they get here (offset.metadata.max.bytes), so this cannot fail.
    let _ = w.string(s, false);
}

fn nullable_string(w: &mut Writer, s: Option<&str>) {
    match s {
        Some(s) => string(w, s),
        None => w.null_string(false),
    }
}

impl LogRecord {
    /// Encodes the record as (key, value).
    pub fn encode(&self) -> (Bytes, Option<Bytes>) {
        let mut k = Writer::new();
        match self {
            LogRecord::Offset { group, topic, partition, value } => {
                k.i16(OFFSET_KEY_VERSION);
                string(&mut k, group);
                string(&mut k, topic);
                k.i32(*partition);
                let v = value.as_ref().map(|v| {
                    let mut w = Writer::new();
                    w.i16(OFFSET_VALUE_VERSION);
                    w.i64(v.offset);
                    w.i32(v.leader_epoch);
                    string(&mut w, &v.metadata);
                    w.i64(v.commit_timestamp);
                    w.into_bytes()
                });
                (k.into_bytes(), v)
            }
            LogRecord::Group { group, value } => {
                k.i16(GROUP_KEY_VERSION);
                string(&mut k, group);
                let v = value.as_ref().map(|g| {
                    let mut w = Writer::new();
                    w.i16(GROUP_VALUE_VERSION);
                    string(&mut w, &g.protocol_type);
                    w.i32(g.generation);
                    nullable_string(&mut w, g.protocol.as_deref());
                    nullable_string(&mut w, g.leader.as_deref());
                    w.i64(g.current_state_timestamp);
                    w.i32(g.members.len() as i32);
                    for m in &g.members {
                        string(&mut w, &m.member_id);
                        nullable_string(&mut w, m.group_instance_id.as_deref());
                        string(&mut w, &m.client_id);
                        string(&mut w, &m.client_host);
                        w.i32(m.rebalance_timeout);
                        w.i32(m.session_timeout);
                        let _ = w.bytes(&m.subscription, false);
                        let _ = w.bytes(&m.assignment, false);
                    }
                    w.into_bytes()
                });
                (k.into_bytes(), v)
            }
            LogRecord::ConsumerGroup { group, epoch } => {
                k.i16(CONSUMER_GROUP_KEY_TYPE);
                string(&mut k, group);
                let v = epoch.map(|e| {
                    let mut w = Writer::new();
                    w.i16(0);
                    w.i32(e);
                    w.uvarint(0);
                    w.into_bytes()
                });
                (k.into_bytes(), v)
            }
        }
    }

    /// The group the record belongs to.
    pub fn group(&self) -> &str {
        match self {
            LogRecord::Offset { group, .. }
            | LogRecord::Group { group, .. }
            | LogRecord::ConsumerGroup { group, .. } => group,
        }
    }

    /// Decodes a record; `Ok(None)` for key versions this broker does not use (e.g.
    /// KIP-848 or transaction records written by another broker), which are skipped.
    pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Result<Option<LogRecord>, DecodeError> {
        let mut k = Reader::new(key.clone());
        match k.i16()? {
            0 | 1 => {
                let group = k.string(false)?;
                let topic = k.string(false)?;
                let partition = k.i32()?;
                let value = match value {
                    None => None,
                    Some(v) => {
                        let mut r = Reader::new(v.clone());
                        let version = r.i16()?;
                        let offset = r.i64()?;
                        let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
                        let metadata = r.string(false)?;
                        let commit_timestamp = r.i64()?;
                        Some(OffsetValue { offset, leader_epoch, metadata, commit_timestamp })
                    }
                };
                Ok(Some(LogRecord::Offset { group, topic, partition, value }))
            }
            2 => {
                let group = k.string(false)?;
                let value = match value {
                    None => None,
                    Some(v) => Some(decode_group_value(v)?),
                };
                Ok(Some(LogRecord::Group { group, value }))
            }
            CONSUMER_GROUP_KEY_TYPE => {
                let group = k.string(false)?;
                let epoch = match value {
                    None => None,
                    // Version 0 (flexible): the epoch, then tagged fields Strom does not need.
                    Some(v) => {
                        let mut r = Reader::new(v.clone());
                        let _version = r.i16()?;
                        Some(r.i32()?)
                    }
                };
                Ok(Some(LogRecord::ConsumerGroup { group, epoch }))
            }
            _ => Ok(None),
        }
    }
}

fn decode_group_value(v: &Bytes) -> Result<GroupValue, DecodeError> {
    let mut r = Reader::new(v.clone());
    let version = r.i16()?;
    let protocol_type = r.string(false)?;
    let generation = r.i32()?;
    let protocol = r.nullable_string(false)?;
    let leader = r.nullable_string(false)?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let n = r.array_len(false)?.unwrap_or(0);
    let mut members = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let member_id = r.string(false)?;
        let group_instance_id = if version >= 3 { r.nullable_string(false)? } else { None };
        let client_id = r.string(false)?;
        let client_host = r.string(false)?;
        let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout = r.i32()?;
        let subscription = r.bytes(false)?;
        let assignment = r.bytes(false)?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout,
            session_timeout,
            subscription,
            assignment,
        });
    }
    Ok(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp, members })
}

/// Java's `String.hashCode`, which Kafka uses to place a group on a partition.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition that holds `group`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    // Kafka: Utils.abs(hashCode) % n, where abs(MIN_VALUE) is 0.
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_records_round_trip() {
        let r = LogRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(OffsetValue { offset: 42, leader_epoch: 0, metadata: "meta".into(), commit_timestamp: 7 }),
        };
        let (k, v) = r.encode();
        assert_eq!(LogRecord::decode(&k, v.as_ref()).unwrap(), Some(r));
    }

    #[test]
    fn group_records_and_tombstones_round_trip() {
        let r = LogRecord::Group {
            group: "g".into(),
            value: Some(GroupValue {
                protocol_type: "consumer".into(),
                generation: 5,
                protocol: Some("range".into()),
                leader: Some("m1".into()),
                current_state_timestamp: 99,
                members: vec![MemberValue {
                    member_id: "m1".into(),
                    group_instance_id: Some("i1".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout: 300000,
                    session_timeout: 45000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                }],
            }),
        };
        let (k, v) = r.encode();
        assert_eq!(LogRecord::decode(&k, v.as_ref()).unwrap(), Some(r));
        let tomb = LogRecord::Group { group: "g".into(), value: None };
        let (k, v) = tomb.encode();
        assert_eq!(LogRecord::decode(&k, v.as_ref()).unwrap(), Some(tomb));
    }

    #[test]
    fn consumer_group_records_and_tombstones_round_trip_in_kafkas_format() {
        let r = LogRecord::ConsumerGroup { group: "g".into(), epoch: Some(7) };
        let (k, v) = r.encode();
        // Kafka's ConsumerGroupMetadataKey (type 3) and ConsumerGroupMetadataValue v0.
        assert_eq!(&k[..], &[0, 3, 0, 1, b'g']);
        assert_eq!(v.as_deref(), Some(&[0, 0, 0, 0, 0, 7, 0][..]));
        assert_eq!(LogRecord::decode(&k, v.as_ref()).unwrap(), Some(r));
        // A value with Kafka 4.1's tagged MetadataHash still reads.
        let tagged = Bytes::from_static(&[0, 0, 0, 0, 0, 9, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            LogRecord::decode(&k, Some(&tagged)).unwrap(),
            Some(LogRecord::ConsumerGroup { group: "g".into(), epoch: Some(9) })
        );
        let tomb = LogRecord::ConsumerGroup { group: "g".into(), epoch: None };
        let (k, v) = tomb.encode();
        assert_eq!(LogRecord::decode(&k, v.as_ref()).unwrap(), Some(tomb));
        assert!(LogRecord::decode(&k, Some(&Bytes::from_static(&[0, 0, 1]))).is_err());
    }

    #[test]
    fn group_placement_matches_kafka() {
        // Java: "test-group".hashCode() == 627841412 → 627841412 % 50 == 12.
        assert_eq!(java_string_hash("test-group"), 627841412);
        assert_eq!(partition_for("test-group", 50), 12);
        // Overflowing and negative hashes: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("", 50), 0);
    }

    #[test]
    fn garbage_keys_are_errors_not_panics() {
        assert!(LogRecord::decode(&Bytes::from_static(&[0, 1, 0xff]), None).is_err());
        assert_eq!(LogRecord::decode(&Bytes::from_static(&[0, 9]), None).unwrap(), None);
    }
}
