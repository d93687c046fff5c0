//! The metadata image (ADR 0008): the state that committed metadata records describe,
//! rebuilt by applying them in log order. Applying is a pure function, so every broker
//! that applies the same records holds the same image; an image is never changed once
//! published (the owner applies to a copy and swaps an `Arc`).
//!
//! A record that contradicts the image (a partition of an unknown topic, a second topic
//! with a taken name) is refused with an error and changes nothing: such a record can
//! only come from a bug or a corrupt log, and applying it half would make brokers
//! disagree.

use std::collections::BTreeMap;

use strom_protocol::Uuid;

use strom_protocol::metadata_record::{Endpoint, Record, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC};

/// A partition as the image places it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    /// Broker ids holding a replica, the preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// Leader broker id, -1 for none.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change.
    pub partition_epoch: i32,
    /// Replicas being added by an ongoing reassignment (KIP-455, ADR 0011); in `replicas`.
    pub adding: Vec<i32>,
    /// Replicas an ongoing reassignment removes once the new ones are in sync; in `replicas`.
    pub removing: Vec<i32>,
}

impl PartitionImage {
    /// Whether a reassignment is in progress.
    pub fn reassigning(&self) -> bool {
        !self.adding.is_empty() || !self.removing.is_empty()
    }

    /// The replica set a reassignment moves to (the current one when none is in progress).
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.removing.contains(r)).collect()
    }

    /// The replica set before the ongoing reassignment began.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas.iter().copied().filter(|r| !self.adding.contains(r)).collect()
    }
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    /// Its name.
    pub name: String,
    /// Its id, never reused.
    pub id: Uuid,
    /// Partitions by index.
    pub partitions: BTreeMap<i32, PartitionImage>,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    /// Changes every time the process restarts.
    pub incarnation_id: Uuid,
    /// Assigned by the controller at registration.
    pub epoch: i64,
    /// Advertised listeners.
    pub endpoints: Vec<Endpoint>,
    /// `broker.rack`.
    pub rack: Option<String>,
    /// A fenced broker leads nothing and is not advertised to clients.
    pub fenced: bool,
    /// In a controlled shutdown.
    pub in_controlled_shutdown: bool,
}

/// Why a record could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The record names a topic the image does not have.
    #[error("unknown topic id {0}")]
    UnknownTopic(Uuid),
    /// The record names a partition the image does not have.
    #[error("unknown partition {1} of topic id {0}")]
    UnknownPartition(Uuid, i32),
    /// A topic with this name or id exists already.
    #[error("topic {0} exists already")]
    TopicExists(String),
    /// The record names a broker the image does not have, or an old epoch of it.
    #[error("unknown broker {0} at epoch {1}")]
    UnknownBroker(i32, i64),
    /// Producer ids may only move forward.
    #[error("producer-id block {0} is below the current mark {1}")]
    ProducerIdsBackwards(i64, i64),
    /// A config record for a resource type the image does not keep.
    #[error("config resource type {0} is not supported")]
    ConfigResource(i8),
    /// An ISR change from a leader whose view is out of date, or naming replicas that
    /// may not be in sync (Kafka's FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION /
    /// INELIGIBLE_REPLICA answers to AlterPartition).
    #[error("ISR change refused: {0}")]
    IsrChange(String),
    /// A SCRAM credential record for no user, an unknown mechanism, or a deletion of a
    /// credential that does not exist.
    #[error("SCRAM credential change refused: {0}")]
    ScramCredential(String),
    /// The deletion of an ACL binding that does not exist.
    #[error("ACL change refused: {0}")]
    Acl(String),
}

/// A user's SCRAM credential for one mechanism, as the metadata log keeps it (ADR 0013).
/// `Debug` shows the iterations only.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramImage {
    /// The salt.
    pub salt: bytes::Bytes,
    /// H(ClientKey).
    pub stored_key: bytes::Bytes,
    /// HMAC(SaltedPassword, "Server Key").
    pub server_key: bytes::Bytes,
    /// PBKDF2 iterations.
    pub iterations: i32,
}

/// Everything the metadata log describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Image {
    /// Topics by id.
    pub topics: BTreeMap<Uuid, TopicImage>,
    /// Topic ids by name.
    pub topic_ids: BTreeMap<String, Uuid>,
    /// Config overrides by (resource type, resource name), then key.
    pub configs: BTreeMap<(i8, String), BTreeMap<String, String>>,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// No producer id below this is ever handed out again.
    pub next_producer_id: i64,
    /// The quorum's voters and learners, once a membership record was applied.
    pub voters: Vec<i32>,
    /// Non-voting members.
    pub learners: Vec<i32>,
    /// SCRAM credentials by (user, mechanism code) (ADR 0013).
    pub scram: BTreeMap<(String, i8), ScramImage>,
    /// ACL bindings (ADR 0014).
    pub acls: std::collections::BTreeSet<strom_protocol::metadata_record::AclBinding>,
}

impl std::fmt::Debug for ScramImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScramImage").field("iterations", &self.iterations).finish_non_exhaustive()
    }
}

impl Image {
    /// The topic called `name`.
    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids.get(name).and_then(|id| self.topics.get(id))
    }

    /// Applies one committed record, or refuses it and changes nothing.
    pub fn apply(&mut self, record: &Record) -> Result<(), ApplyError> {
        match record {
            Record::Topic { name, id } => {
                if self.topic_ids.contains_key(name) || self.topics.contains_key(id) {
                    return Err(ApplyError::TopicExists(name.clone()));
                }
                self.topic_ids.insert(name.clone(), *id);
                self.topics.insert(*id, TopicImage { name: name.clone(), id: *id, partitions: BTreeMap::new() });
            }
            Record::Partition { topic_id, partition, replicas, isr, leader, leader_epoch, partition_epoch } => {
                let topic = self.topics.get_mut(topic_id).ok_or(ApplyError::UnknownTopic(*topic_id))?;
                topic.partitions.insert(
                    *partition,
                    PartitionImage {
                        replicas: replicas.clone(),
                        isr: isr.clone(),
                        leader: *leader,
                        leader_epoch: *leader_epoch,
                        partition_epoch: *partition_epoch,
                        adding: Vec::new(),
                        removing: Vec::new(),
                    },
                );
            }
            Record::PartitionChange { topic_id, partition, leader, isr, replicas } => {
                let topic = self.topics.get_mut(topic_id).ok_or(ApplyError::UnknownTopic(*topic_id))?;
                let p =
                    topic.partitions.get_mut(partition).ok_or(ApplyError::UnknownPartition(*topic_id, *partition))?;
                // A leader comes from the ISR it leads (ADR 0010): a change racing an ISR
                // shrink must not elect a replica that fell out of sync.
                if let Some(l) = leader.filter(|l| *l >= 0) {
                    if !isr.as_ref().unwrap_or(&p.isr).contains(&l) {
                        return Err(ApplyError::IsrChange(format!("leader {l} is not in the ISR")));
                    }
                }
                if let Some(l) = leader {
                    if *l != p.leader {
                        p.leader = *l;
                        p.leader_epoch += 1;
                    }
                }
                if let Some(isr) = isr {
                    p.isr = isr.clone();
                }
                if let Some(r) = replicas {
                    p.replicas = r.clone();
                }
                p.partition_epoch += 1;
            }
            Record::RemoveTopic { id } => {
                let topic = self.topics.remove(id).ok_or(ApplyError::UnknownTopic(*id))?;
                self.topic_ids.remove(&topic.name);
                self.configs.remove(&(RESOURCE_TOPIC, topic.name));
            }
            Record::Config { resource_type, resource_name, name, value } => {
                if ![RESOURCE_TOPIC, RESOURCE_BROKER, RESOURCE_GROUP].contains(resource_type) {
                    return Err(ApplyError::ConfigResource(*resource_type));
                }
                let key = (*resource_type, resource_name.clone());
                match value {
                    Some(v) => {
                        self.configs.entry(key).or_default().insert(name.clone(), v.clone());
                    }
                    None => {
                        if let Some(m) = self.configs.get_mut(&key) {
                            m.remove(name);
                            if m.is_empty() {
                                self.configs.remove(&key);
                            }
                        }
                    }
                }
            }
            Record::RegisterBroker { broker_id, incarnation_id, broker_epoch, endpoints, rack, fenced } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        incarnation_id: *incarnation_id,
                        epoch: *broker_epoch,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: *fenced,
                        in_controlled_shutdown: false,
                    },
                );
            }
            Record::BrokerRegistrationChange { broker_id, broker_epoch, fenced, in_controlled_shutdown } => {
                let b = self
                    .brokers
                    .get_mut(broker_id)
                    .filter(|b| b.epoch == *broker_epoch)
                    .ok_or(ApplyError::UnknownBroker(*broker_id, *broker_epoch))?;
                if let Some(f) = fenced {
                    b.fenced = *f;
                }
                b.in_controlled_shutdown = *in_controlled_shutdown;
            }
            Record::UnregisterBroker { broker_id, broker_epoch } => {
                if self.brokers.get(broker_id).is_none_or(|b| b.epoch != *broker_epoch) {
                    return Err(ApplyError::UnknownBroker(*broker_id, *broker_epoch));
                }
                self.brokers.remove(broker_id);
            }
            Record::ProducerIds { next_producer_id, .. } => {
                if *next_producer_id < self.next_producer_id {
                    return Err(ApplyError::ProducerIdsBackwards(*next_producer_id, self.next_producer_id));
                }
                self.next_producer_id = *next_producer_id;
            }
            Record::NoOp => {}
            Record::UserScramCredential { user, mechanism, salt, stored_key, server_key, iterations } => {
                if user.is_empty() || !matches!(mechanism, 1 | 2) {
                    return Err(ApplyError::ScramCredential(format!("user {user:?}, mechanism {mechanism}")));
                }
                self.scram.insert(
                    (user.clone(), *mechanism),
                    ScramImage {
                        salt: salt.clone(),
                        stored_key: stored_key.clone(),
                        server_key: server_key.clone(),
                        iterations: *iterations,
                    },
                );
            }
            Record::Acl(b) => {
                self.acls.insert(b.clone());
            }
            Record::RemoveAcl(b) => {
                if !self.acls.remove(b) {
                    return Err(ApplyError::Acl(format!("no such binding {b:?}")));
                }
            }
            Record::RemoveUserScramCredential { user, mechanism } => {
                if self.scram.remove(&(user.clone(), *mechanism)).is_none() {
                    return Err(ApplyError::ScramCredential(format!("no {mechanism} credential for {user:?}")));
                }
            }
            Record::Membership { voters, learners } => {
                self.voters = voters.clone();
                self.learners = learners.clone();
            }
            Record::AlterPartition { topic_id, partition, leader_epoch, partition_epoch, isr } => {
                let topic = self.topics.get(topic_id).ok_or(ApplyError::UnknownTopic(*topic_id))?;
                let p = topic.partitions.get(partition).ok_or(ApplyError::UnknownPartition(*topic_id, *partition))?;
                let refuse = |m: String| Err(ApplyError::IsrChange(m));
                if *leader_epoch != p.leader_epoch {
                    return refuse(format!("leader epoch {leader_epoch}, partition is at {}", p.leader_epoch));
                }
                if *partition_epoch != p.partition_epoch {
                    return refuse(format!("partition epoch {partition_epoch}, partition is at {}", p.partition_epoch));
                }
                if p.leader < 0 || !isr.contains(&p.leader) {
                    return refuse("the ISR must hold the leader".into());
                }
                for r in isr {
                    if !p.replicas.contains(r) {
                        return refuse(format!("broker {r} is not a replica"));
                    }
                    // A fenced broker may be shrunk away but never added (Kafka: INELIGIBLE_REPLICA).
                    if !p.isr.contains(r) && self.brokers.get(r).is_none_or(|b| b.fenced || b.in_controlled_shutdown) {
                        return refuse(format!("broker {r} is fenced or shutting down"));
                    }
                }
                let mut sorted = isr.clone();
                sorted.sort_unstable();
                sorted.dedup();
                if sorted.len() != isr.len() {
                    return refuse("duplicate ISR member".into());
                }
                let p = self
                    .topics
                    .get_mut(topic_id)
                    .and_then(|t| t.partitions.get_mut(partition))
                    .ok_or(ApplyError::UnknownPartition(*topic_id, *partition))?;
                p.isr = isr.clone();
                p.partition_epoch += 1;
            }
            Record::PartitionReassignment { topic_id, partition, partition_epoch, adding, removing } => {
                let topic = self.topics.get_mut(topic_id).ok_or(ApplyError::UnknownTopic(*topic_id))?;
                let p =
                    topic.partitions.get_mut(partition).ok_or(ApplyError::UnknownPartition(*topic_id, *partition))?;
                // Composed from the image at this epoch: a change that raced it (an ISR
                // change, an election) would make its replica and ISR sets stale.
                if *partition_epoch != p.partition_epoch {
                    return Err(ApplyError::IsrChange(format!(
                        "reassignment composed at partition epoch {partition_epoch}, partition is at {}",
                        p.partition_epoch
                    )));
                }
                p.adding = adding.clone();
                p.removing = removing.clone();
            }
        }
        Ok(())
    }

    /// The records that rebuild this image from nothing: what a snapshot holds.
    pub fn to_records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        if !self.voters.is_empty() || !self.learners.is_empty() {
            out.push(Record::Membership { voters: self.voters.clone(), learners: self.learners.clone() });
        }
        for (id, b) in &self.brokers {
            out.push(Record::RegisterBroker {
                broker_id: *id,
                incarnation_id: b.incarnation_id,
                broker_epoch: b.epoch,
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone(),
                fenced: b.fenced,
            });
            if b.in_controlled_shutdown {
                out.push(Record::BrokerRegistrationChange {
                    broker_id: *id,
                    broker_epoch: b.epoch,
                    fenced: None,
                    in_controlled_shutdown: true,
                });
            }
        }
        for t in self.topics.values() {
            out.push(Record::Topic { name: t.name.clone(), id: t.id });
            for (index, p) in &t.partitions {
                out.push(Record::Partition {
                    topic_id: t.id,
                    partition: *index,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                });
                if p.reassigning() {
                    out.push(Record::PartitionReassignment {
                        topic_id: t.id,
                        partition: *index,
                        partition_epoch: p.partition_epoch,
                        adding: p.adding.clone(),
                        removing: p.removing.clone(),
                    });
                }
            }
        }
        for ((resource_type, resource_name), kv) in &self.configs {
            for (name, value) in kv {
                out.push(Record::Config {
                    resource_type: *resource_type,
                    resource_name: resource_name.clone(),
                    name: name.clone(),
                    value: Some(value.clone()),
                });
            }
        }
        if self.next_producer_id > 0 {
            out.push(Record::ProducerIds { broker_id: -1, broker_epoch: -1, next_producer_id: self.next_producer_id });
        }
        for b in &self.acls {
            out.push(Record::Acl(b.clone()));
        }
        for ((user, mechanism), c) in &self.scram {
            out.push(Record::UserScramCredential {
                user: user.clone(),
                mechanism: *mechanism,
                salt: c.salt.clone(),
                stored_key: c.stored_key.clone(),
                server_key: c.server_key.clone(),
                iterations: c.iterations,
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(n: u8) -> Uuid {
        Uuid([n; 16])
    }

    fn partition(topic: u8, p: i32, leader: i32) -> Record {
        Record::Partition {
            topic_id: id(topic),
            partition: p,
            replicas: vec![leader],
            isr: vec![leader],
            leader,
            leader_epoch: 0,
            partition_epoch: 0,
        }
    }

    #[test]
    fn topics_partitions_and_configs_come_and_go() {
        let mut img = Image::default();
        img.apply(&Record::Topic { name: "a".into(), id: id(1) }).unwrap();
        img.apply(&partition(1, 0, 1)).unwrap();
        img.apply(&partition(1, 1, 1)).unwrap();
        let cfg = |v: Option<&str>| Record::Config {
            resource_type: RESOURCE_TOPIC,
            resource_name: "a".into(),
            name: "retention.ms".into(),
            value: v.map(Into::into),
        };
        img.apply(&cfg(Some("10"))).unwrap();
        assert_eq!(img.topic("a").map(|t| t.partitions.len()), Some(2));
        assert_eq!(img.configs[&(RESOURCE_TOPIC, "a".to_string())]["retention.ms"], "10");
        img.apply(&cfg(None)).unwrap();
        assert!(img.configs.is_empty(), "a removed last key leaves no entry");
        img.apply(&cfg(Some("20"))).unwrap();
        img.apply(&Record::RemoveTopic { id: id(1) }).unwrap();
        assert_eq!(img, Image::default(), "removing a topic removes its partitions and configs");
    }

    #[test]
    fn contradictions_are_refused_and_change_nothing() {
        let mut img = Image::default();
        img.apply(&Record::Topic { name: "a".into(), id: id(1) }).unwrap();
        let before = img.clone();
        assert_eq!(img.apply(&Record::Topic { name: "a".into(), id: id(2) }), Err(ApplyError::TopicExists("a".into())));
        assert_eq!(img.apply(&partition(9, 0, 1)), Err(ApplyError::UnknownTopic(id(9))));
        let change =
            Record::PartitionChange { topic_id: id(1), partition: 5, leader: Some(2), isr: None, replicas: None };
        assert_eq!(img.apply(&change), Err(ApplyError::UnknownPartition(id(1), 5)));
        let stale = Record::BrokerRegistrationChange {
            broker_id: 3,
            broker_epoch: 1,
            fenced: Some(true),
            in_controlled_shutdown: false,
        };
        assert_eq!(img.apply(&stale), Err(ApplyError::UnknownBroker(3, 1)));
        img.apply(&Record::ProducerIds { broker_id: 1, broker_epoch: 0, next_producer_id: 1000 }).unwrap();
        let back = Record::ProducerIds { broker_id: 1, broker_epoch: 0, next_producer_id: 10 };
        assert_eq!(img.apply(&back), Err(ApplyError::ProducerIdsBackwards(10, 1000)));
        assert_eq!(img.topics, before.topics);
    }

    #[test]
    fn a_leader_change_bumps_the_leader_epoch_and_every_change_the_partition_epoch() {
        let mut img = Image::default();
        img.apply(&Record::Topic { name: "a".into(), id: id(1) }).unwrap();
        img.apply(&partition(1, 0, 1)).unwrap();
        let change = |leader, isr: Option<Vec<i32>>| Record::PartitionChange {
            topic_id: id(1),
            partition: 0,
            leader,
            isr,
            replicas: None,
        };
        img.apply(&change(None, Some(vec![1, 2]))).unwrap();
        img.apply(&change(Some(2), None)).unwrap();
        img.apply(&change(Some(2), None)).unwrap();
        let p = &img.topics[&id(1)].partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch, p.isr.clone()), (2, 1, 3, vec![1, 2]));
    }

    fn arb_record() -> impl Strategy<Value = Record> {
        let topic = 1u8..4;
        prop_oneof![
            (topic.clone(), "[a-c]").prop_map(|(t, n)| Record::Topic { name: n, id: id(t) }),
            (topic.clone(), 0i32..3, 1i32..4).prop_map(|(t, p, l)| partition(t, p, l)),
            (topic.clone(), 0i32..3, proptest::option::of(1i32..4)).prop_map(|(t, p, l)| Record::PartitionChange {
                topic_id: id(t),
                partition: p,
                leader: l,
                isr: None,
                replicas: None
            }),
            topic.clone().prop_map(|t| Record::RemoveTopic { id: id(t) }),
            ("[a-c]", proptest::option::of("[0-9]{1,3}")).prop_map(|(n, v)| Record::Config {
                resource_type: RESOURCE_TOPIC,
                resource_name: n,
                name: "k".into(),
                value: v
            }),
            (0i64..5000).prop_map(|n| Record::ProducerIds { broker_id: 1, broker_epoch: 0, next_producer_id: n }),
        ]
    }

    proptest! {
        /// A snapshot (`to_records`) of any image rebuilds that image; and records that
        /// are refused leave the image as it was, so replaying a log in pieces or at
        /// once ends the same.
        #[test]
        fn snapshots_rebuild_the_image(records in proptest::collection::vec(arb_record(), 0..60), cut in 0usize..60) {
            let mut whole = Image::default();
            for r in &records {
                let before = whole.clone();
                if whole.apply(r).is_err() {
                    prop_assert_eq!(&whole, &before);
                }
            }
            let mut rebuilt = Image::default();
            for r in whole.to_records() {
                rebuilt.apply(&r).expect("a snapshot applies cleanly");
            }
            prop_assert_eq!(&rebuilt, &whole);

            // Snapshot after a prefix, then the rest.
            let cut = cut.min(records.len());
            let mut prefix = Image::default();
            for r in &records[..cut] {
                let _ = prefix.apply(r);
            }
            let mut resumed = Image::default();
            for r in prefix.to_records() {
                resumed.apply(&r).expect("a snapshot applies cleanly");
            }
            for r in &records[cut..] {
                let _ = resumed.apply(r);
            }
            prop_assert_eq!(&resumed, &whole);
        }
    }
}
