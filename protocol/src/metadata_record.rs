//! Cluster metadata records (ADR 0008): what the metadata log carries, one record per
//! Raft entry. A record's value is `type: u16, version: u16, body`; bodies use
//! `strom-protocol`'s flexible encodings (varints, compact strings and arrays, UUIDs)
//! and end with a tagged-field section, so a later version can add fields that older
//! readers skip. Decoding goes through the bounded `Reader`: bytes from a log file or
//! from another node are untrusted, and a bad record is an error, never a panic.

use crate::{DecodeError, EncodeError, Reader, Uuid, Writer};
use bytes::Bytes;

/// Config resource types (Kafka's `ConfigResource.Type` codes).
pub const RESOURCE_TOPIC: i8 = 2;
/// A broker's configs.
pub const RESOURCE_BROKER: i8 = 4;
/// A group's configs (KIP-848 and KIP-932 group configs, e.g. `share.auto.offset.reset`).
pub const RESOURCE_GROUP: i8 = 32;

/// A listener a broker advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Listener name (`PLAINTEXT`, …).
    pub name: String,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: u16,
    /// Security protocol code (Kafka's `SecurityProtocol` ids; 0 = PLAINTEXT).
    pub security_protocol: i16,
}

/// One metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A topic was created.
    Topic { name: String, id: Uuid },
    /// A partition was created (or its whole state restated, in snapshots).
    Partition {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
    },
    /// A partition's leader, ISR or replicas changed; absent fields are unchanged.
    PartitionChange {
        topic_id: Uuid,
        partition: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        replicas: Option<Vec<i32>>,
    },
    /// A topic and all its partitions were deleted.
    RemoveTopic { id: Uuid },
    /// A config key was set (`Some`) or removed (`None`).
    Config { resource_type: i8, resource_name: String, name: String, value: Option<String> },
    /// A broker registered (or restated its registration).
    RegisterBroker {
        broker_id: i32,
        incarnation_id: Uuid,
        broker_epoch: i64,
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        fenced: bool,
    },
    /// A broker was fenced or unfenced, or began a controlled shutdown.
    BrokerRegistrationChange { broker_id: i32, broker_epoch: i64, fenced: Option<bool>, in_controlled_shutdown: bool },
    /// A broker left the cluster.
    UnregisterBroker { broker_id: i32, broker_epoch: i64 },
    /// A block of producer ids was handed to a broker; `next_producer_id` is the first
    /// id after it, so no id below it is ever handed out again.
    ProducerIds { broker_id: i32, broker_epoch: i64, next_producer_id: i64 },
    /// A new leader's first entry.
    NoOp,
    /// The quorum's voters and learners.
    Membership { voters: Vec<i32>, learners: Vec<i32> },
    /// A partition leader's ISR change (Kafka's AlterPartition, ADR 0010): applied only
    /// if the partition is still at these leader and partition epochs.
    AlterPartition { topic_id: Uuid, partition: i32, leader_epoch: i32, partition_epoch: i32, isr: Vec<i32> },
    /// A partition's ongoing reassignment (KIP-455, ADR 0011): the replicas being added
    /// and removed (both empty: none). Applied only if the partition is still at
    /// `partition_epoch`; it comes first in a change, before the `PartitionChange` that
    /// sets the replica set.
    PartitionReassignment { topic_id: Uuid, partition: i32, partition_epoch: i32, adding: Vec<i32>, removing: Vec<i32> },
    /// A user's SCRAM credential for one mechanism (1 = SHA-256, 2 = SHA-512) was set
    /// (ADR 0013): salted hashes, never the password.
    UserScramCredential {
        user: String,
        mechanism: i8,
        salt: Bytes,
        stored_key: Bytes,
        server_key: Bytes,
        iterations: i32,
    },
    /// A user's SCRAM credential for one mechanism was deleted (ADR 0013).
    RemoveUserScramCredential { user: String, mechanism: i8 },
    /// An ACL binding was created (ADR 0014).
    Acl(AclBinding),
    /// An ACL binding was deleted (ADR 0014).
    RemoveAcl(AclBinding),
}

/// An ACL binding as the metadata log keeps it (Kafka's codes for every enum).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// Resource type (2 topic, 3 group, 4 cluster, 5 transactional id, …).
    pub resource_type: i8,
    /// Resource name, `*`, or a prefix.
    pub resource_name: String,
    /// 3 literal, 4 prefixed.
    pub pattern_type: i8,
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// Host or `*`.
    pub host: String,
    /// Operation code.
    pub operation: i8,
    /// 2 deny, 3 allow.
    pub permission: i8,
}

impl AclBinding {
    fn encode(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.i8(self.resource_type);
        w.string(&self.resource_name, true)?;
        w.i8(self.pattern_type);
        w.string(&self.principal, true)?;
        w.string(&self.host, true)?;
        w.i8(self.operation);
        w.i8(self.permission);
        Ok(())
    }

    fn decode(r: &mut Reader) -> Result<AclBinding, DecodeError> {
        Ok(AclBinding {
            resource_type: r.i8()?,
            resource_name: r.string(true)?,
            pattern_type: r.i8()?,
            principal: r.string(true)?,
            host: r.string(true)?,
            operation: r.i8()?,
            permission: r.i8()?,
        })
    }
}

/// Changes (and snapshot record lists) are bounded: a corrupt count is refused before
/// anything is allocated for it.
const MAX_RECORDS_PER_CHANGE: usize = 1 << 24;

/// Encodes one metadata change (or a snapshot's content, ADR 0008): a count, then each
/// record's value length-prefixed.
pub fn encode_change(records: &[Record]) -> Result<Bytes, EncodeError> {
    let mut w = Writer::new();
    let n = u32::try_from(records.len()).map_err(|_| EncodeError::TooLong { len: records.len() })?;
    w.uvarint(n);
    for r in records {
        let v = r.encode()?;
        w.uvarint(u32::try_from(v.len()).map_err(|_| EncodeError::TooLong { len: v.len() })?);
        w.raw(&v);
    }
    Ok(w.into_bytes())
}

/// Decodes what [`encode_change`] wrote; a bad count, length, record or trailing bytes
/// is an error (bytes from disk or from another node are untrusted).
pub fn decode_change(value: Bytes) -> Result<Vec<Record>, DecodeError> {
    let mut r = Reader::new(value);
    let n = r.uvarint()? as usize;
    if n > MAX_RECORDS_PER_CHANGE || n > r.remaining() {
        return Err(r.invalid("metadata change record count exceeds its bytes"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.uvarint()? as usize;
        out.push(Record::decode(r.take(len)?)?);
    }
    if r.remaining() != 0 {
        return Err(r.invalid("trailing bytes after a metadata change"));
    }
    Ok(out)
}

/// The version each record type is written at.
const VERSION: u16 = 0;

impl Record {
    /// The record's type code (ADR 0008's table).
    pub fn type_code(&self) -> u16 {
        match self {
            Record::Topic { .. } => 1,
            Record::Partition { .. } => 2,
            Record::PartitionChange { .. } => 3,
            Record::RemoveTopic { .. } => 4,
            Record::Config { .. } => 5,
            Record::RegisterBroker { .. } => 6,
            Record::BrokerRegistrationChange { .. } => 7,
            Record::UnregisterBroker { .. } => 8,
            Record::ProducerIds { .. } => 9,
            Record::NoOp => 10,
            Record::Membership { .. } => 11,
            Record::AlterPartition { .. } => 12,
            Record::PartitionReassignment { .. } => 13,
            Record::UserScramCredential { .. } => 14,
            Record::RemoveUserScramCredential { .. } => 15,
            Record::Acl(_) => 16,
            Record::RemoveAcl(_) => 17,
        }
    }

    /// The record's value as stored in the metadata log.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let mut w = Writer::new();
        w.u16(self.type_code());
        w.u16(VERSION);
        match self {
            Record::Topic { name, id } => {
                w.string(name, true)?;
                w.uuid(*id);
            }
            Record::Partition { topic_id, partition, replicas, isr, leader, leader_epoch, partition_epoch } => {
                w.uuid(*topic_id);
                w.i32(*partition);
                ids(&mut w, replicas)?;
                ids(&mut w, isr)?;
                w.i32(*leader);
                w.i32(*leader_epoch);
                w.i32(*partition_epoch);
            }
            Record::PartitionChange { topic_id, partition, leader, isr, replicas } => {
                w.uuid(*topic_id);
                w.i32(*partition);
                w.bool(leader.is_some());
                w.i32(leader.unwrap_or(-1));
                opt_ids(&mut w, isr.as_deref())?;
                opt_ids(&mut w, replicas.as_deref())?;
            }
            Record::RemoveTopic { id } => w.uuid(*id),
            Record::Config { resource_type, resource_name, name, value } => {
                w.i8(*resource_type);
                w.string(resource_name, true)?;
                w.string(name, true)?;
                match value {
                    Some(v) => w.string(v, true)?,
                    None => w.null_string(true),
                }
            }
            Record::RegisterBroker { broker_id, incarnation_id, broker_epoch, endpoints, rack, fenced } => {
                w.i32(*broker_id);
                w.uuid(*incarnation_id);
                w.i64(*broker_epoch);
                w.array_len(endpoints.len(), true)?;
                for e in endpoints {
                    w.string(&e.name, true)?;
                    w.string(&e.host, true)?;
                    w.u16(e.port);
                    w.i16(e.security_protocol);
                }
                match rack {
                    Some(r) => w.string(r, true)?,
                    None => w.null_string(true),
                }
                w.bool(*fenced);
            }
            Record::BrokerRegistrationChange { broker_id, broker_epoch, fenced, in_controlled_shutdown } => {
                w.i32(*broker_id);
                w.i64(*broker_epoch);
                // -1: unchanged, 0: unfenced, 1: fenced.
                w.i8(fenced.map_or(-1, i8::from));
                w.bool(*in_controlled_shutdown);
            }
            Record::UnregisterBroker { broker_id, broker_epoch } => {
                w.i32(*broker_id);
                w.i64(*broker_epoch);
            }
            Record::ProducerIds { broker_id, broker_epoch, next_producer_id } => {
                w.i32(*broker_id);
                w.i64(*broker_epoch);
                w.i64(*next_producer_id);
            }
            Record::NoOp => {}
            Record::Membership { voters, learners } => {
                ids(&mut w, voters)?;
                ids(&mut w, learners)?;
            }
            Record::AlterPartition { topic_id, partition, leader_epoch, partition_epoch, isr } => {
                w.uuid(*topic_id);
                w.i32(*partition);
                w.i32(*leader_epoch);
                w.i32(*partition_epoch);
                ids(&mut w, isr)?;
            }
            Record::PartitionReassignment { topic_id, partition, partition_epoch, adding, removing } => {
                w.uuid(*topic_id);
                w.i32(*partition);
                w.i32(*partition_epoch);
                ids(&mut w, adding)?;
                ids(&mut w, removing)?;
            }
            Record::UserScramCredential { user, mechanism, salt, stored_key, server_key, iterations } => {
                w.string(user, true)?;
                w.i8(*mechanism);
                w.bytes(salt, true)?;
                w.bytes(stored_key, true)?;
                w.bytes(server_key, true)?;
                w.i32(*iterations);
            }
            Record::RemoveUserScramCredential { user, mechanism } => {
                w.string(user, true)?;
                w.i8(*mechanism);
            }
            Record::Acl(b) | Record::RemoveAcl(b) => b.encode(&mut w)?,
        }
        // Tagged fields: none yet.
        w.uvarint(0);
        Ok(w.into_bytes())
    }

    /// Decodes a record value; the whole value must be consumed.
    pub fn decode(value: Bytes) -> Result<Record, DecodeError> {
        let mut r = Reader::new(value);
        let ty = r.u16()?;
        let version = r.u16()?;
        if version > VERSION {
            return Err(r.invalid("metadata record version newer than this broker"));
        }
        let rec = match ty {
            1 => Record::Topic { name: r.string(true)?, id: r.uuid()? },
            2 => Record::Partition {
                topic_id: r.uuid()?,
                partition: r.i32()?,
                replicas: read_ids(&mut r)?,
                isr: read_ids(&mut r)?,
                leader: r.i32()?,
                leader_epoch: r.i32()?,
                partition_epoch: r.i32()?,
            },
            3 => {
                let topic_id = r.uuid()?;
                let partition = r.i32()?;
                let has_leader = r.bool()?;
                let leader = r.i32()?;
                Record::PartitionChange {
                    topic_id,
                    partition,
                    leader: has_leader.then_some(leader),
                    isr: read_opt_ids(&mut r)?,
                    replicas: read_opt_ids(&mut r)?,
                }
            }
            4 => Record::RemoveTopic { id: r.uuid()? },
            5 => Record::Config {
                resource_type: r.i8()?,
                resource_name: r.string(true)?,
                name: r.string(true)?,
                value: r.nullable_string(true)?,
            },
            6 => {
                let broker_id = r.i32()?;
                let incarnation_id = r.uuid()?;
                let broker_epoch = r.i64()?;
                let n = r.array_len(true)?.ok_or_else(|| r.invalid("null endpoint array"))?;
                let mut endpoints = r.alloc_vec(n)?;
                for _ in 0..n {
                    endpoints.push(Endpoint {
                        name: r.string(true)?,
                        host: r.string(true)?,
                        port: r.u16()?,
                        security_protocol: r.i16()?,
                    });
                }
                Record::RegisterBroker {
                    broker_id,
                    incarnation_id,
                    broker_epoch,
                    endpoints,
                    rack: r.nullable_string(true)?,
                    fenced: r.bool()?,
                }
            }
            7 => Record::BrokerRegistrationChange {
                broker_id: r.i32()?,
                broker_epoch: r.i64()?,
                fenced: match r.i8()? {
                    -1 => None,
                    0 => Some(false),
                    1 => Some(true),
                    _ => return Err(r.invalid("fenced flag")),
                },
                in_controlled_shutdown: r.bool()?,
            },
            8 => Record::UnregisterBroker { broker_id: r.i32()?, broker_epoch: r.i64()? },
            9 => Record::ProducerIds { broker_id: r.i32()?, broker_epoch: r.i64()?, next_producer_id: r.i64()? },
            10 => Record::NoOp,
            11 => Record::Membership { voters: read_ids(&mut r)?, learners: read_ids(&mut r)? },
            12 => Record::AlterPartition {
                topic_id: r.uuid()?,
                partition: r.i32()?,
                leader_epoch: r.i32()?,
                partition_epoch: r.i32()?,
                isr: read_ids(&mut r)?,
            },
            13 => Record::PartitionReassignment {
                topic_id: r.uuid()?,
                partition: r.i32()?,
                partition_epoch: r.i32()?,
                adding: read_ids(&mut r)?,
                removing: read_ids(&mut r)?,
            },
            14 => Record::UserScramCredential {
                user: r.string(true)?,
                mechanism: r.i8()?,
                salt: r.bytes(true)?,
                stored_key: r.bytes(true)?,
                server_key: r.bytes(true)?,
                iterations: r.i32()?,
            },
            15 => Record::RemoveUserScramCredential { user: r.string(true)?, mechanism: r.i8()? },
            16 => Record::Acl(AclBinding::decode(&mut r)?),
            17 => Record::RemoveAcl(AclBinding::decode(&mut r)?),
            _ => return Err(r.invalid("unknown metadata record type")),
        };
        // Tagged fields of later versions are skipped.
        let tags = r.tagged_count()?;
        for _ in 0..tags {
            r.uvarint()?;
            let len = r.uvarint()? as usize;
            r.take(len)?;
        }
        if r.remaining() != 0 {
            return Err(r.invalid("trailing bytes after a metadata record"));
        }
        Ok(rec)
    }
}

fn ids(w: &mut Writer, v: &[i32]) -> Result<(), EncodeError> {
    w.array_len(v.len(), true)?;
    for id in v {
        w.i32(*id);
    }
    Ok(())
}

fn opt_ids(w: &mut Writer, v: Option<&[i32]>) -> Result<(), EncodeError> {
    match v {
        Some(v) => ids(w, v),
        None => {
            w.null_array(true);
            Ok(())
        }
    }
}

fn read_opt_ids(r: &mut Reader) -> Result<Option<Vec<i32>>, DecodeError> {
    let Some(n) = r.array_len(true)? else { return Ok(None) };
    let mut v = r.alloc_vec(n)?;
    for _ in 0..n {
        v.push(r.i32()?);
    }
    Ok(Some(v))
}

fn read_ids(r: &mut Reader) -> Result<Vec<i32>, DecodeError> {
    read_opt_ids(r)?.ok_or_else(|| r.invalid("null id array"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Record> {
        let id = Uuid([7; 16]);
        vec![
            Record::Topic { name: "orders".into(), id },
            Record::Partition {
                topic_id: id,
                partition: 3,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2],
                leader: 1,
                leader_epoch: 4,
                partition_epoch: 9,
            },
            Record::PartitionChange {
                topic_id: id,
                partition: 3,
                leader: Some(2),
                isr: None,
                replicas: Some(vec![2, 3]),
            },
            Record::PartitionChange { topic_id: id, partition: 0, leader: None, isr: Some(vec![]), replicas: None },
            Record::RemoveTopic { id },
            Record::Config {
                resource_type: RESOURCE_TOPIC,
                resource_name: "orders".into(),
                name: "retention.ms".into(),
                value: Some("1000".into()),
            },
            Record::Config { resource_type: RESOURCE_BROKER, resource_name: "".into(), name: "x".into(), value: None },
            Record::RegisterBroker {
                broker_id: 2,
                incarnation_id: Uuid([1; 16]),
                broker_epoch: 17,
                endpoints: vec![Endpoint {
                    name: "PLAINTEXT".into(),
                    host: "127.0.0.2".into(),
                    port: 9092,
                    security_protocol: 0,
                }],
                rack: Some("eu-1a".into()),
                fenced: true,
            },
            Record::BrokerRegistrationChange {
                broker_id: 2,
                broker_epoch: 17,
                fenced: Some(false),
                in_controlled_shutdown: false,
            },
            Record::BrokerRegistrationChange {
                broker_id: 2,
                broker_epoch: 17,
                fenced: None,
                in_controlled_shutdown: true,
            },
            Record::UnregisterBroker { broker_id: 2, broker_epoch: 17 },
            Record::ProducerIds { broker_id: 1, broker_epoch: 3, next_producer_id: 2000 },
            Record::NoOp,
            Record::Membership { voters: vec![1, 2, 3], learners: vec![4] },
            Record::AlterPartition { topic_id: id, partition: 2, leader_epoch: 4, partition_epoch: 9, isr: vec![1, 3] },
            Record::PartitionReassignment {
                topic_id: id,
                partition: 2,
                partition_epoch: 9,
                adding: vec![4],
                removing: vec![1],
            },
            Record::UserScramCredential {
                user: "alice".into(),
                mechanism: 2,
                salt: Bytes::from_static(b"salt"),
                stored_key: Bytes::from(vec![1; 64]),
                server_key: Bytes::from(vec![2; 64]),
                iterations: 4096,
            },
            Record::RemoveUserScramCredential { user: "alice".into(), mechanism: 1 },
            Record::Acl(AclBinding {
                resource_type: 2,
                resource_name: "orders".into(),
                pattern_type: 4,
                principal: "User:alice".into(),
                host: "*".into(),
                operation: 3,
                permission: 3,
            }),
            Record::RemoveAcl(AclBinding {
                resource_type: 4,
                resource_name: "kafka-cluster".into(),
                pattern_type: 3,
                principal: "User:*".into(),
                host: "10.0.0.1".into(),
                operation: 7,
                permission: 2,
            }),
        ]
    }

    #[test]
    fn every_record_type_round_trips() {
        for rec in samples() {
            let bytes = rec.encode().expect("encode");
            assert_eq!(Record::decode(bytes).expect("decode"), rec);
        }
    }

    #[test]
    fn truncated_extended_and_unknown_records_are_errors_not_panics() {
        for rec in samples() {
            let bytes = rec.encode().expect("encode");
            for cut in 0..bytes.len() {
                assert!(Record::decode(bytes.slice(..cut)).is_err(), "{rec:?} cut at {cut}");
            }
            let mut longer = bytes.to_vec();
            longer.push(0);
            assert!(Record::decode(Bytes::from(longer)).is_err(), "{rec:?} with a trailing byte");
        }
        assert!(Record::decode(Bytes::from_static(&[0, 99, 0, 0, 0])).is_err(), "unknown type");
        assert!(Record::decode(Bytes::from_static(&[0, 10, 0, 1, 0])).is_err(), "newer version");
    }

    #[test]
    fn a_huge_array_count_fails_without_allocating_it() {
        // Membership with a varint count of 2^28 in a 9-byte value.
        let bytes = Bytes::from_static(&[0, 11, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x01]);
        assert!(Record::decode(bytes).is_err());
    }
}
