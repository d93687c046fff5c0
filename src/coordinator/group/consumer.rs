//! The KIP-848 consumer-group protocol as a state machine.
//!
//! Members heartbeat with their subscription; the group epoch moves whenever membership,
//! subscriptions or the subscribed topics' partitions change, and a server-side assignor
//! computes the target assignment for that epoch. Each member converges on its target:
//! partitions it must give up are revoked first (its epoch stays until it confirms), and
//! partitions still owned by another member are handed over only once released, so no
//! partition ever has two owners in the same epoch.
//!
//! KIP-848 online migration: a consumer group may hold members that still speak the
//! classic protocol (JoinGroup/SyncGroup/Heartbeat) — the members of a classic group that
//! was converted when a consumer-protocol member joined it, and classic members joining
//! afterwards. They take part in the same server-side assignment: a JoinGroup reports
//! their subscription and owned partitions (the embedded ConsumerProtocolSubscription),
//! SyncGroup hands them their assignment (ConsumerProtocolAssignment), and Heartbeat tells
//! them to rejoin when they must revoke or can collect more, as Kafka's
//! GroupMetadataManager does (classicGroupJoinToConsumerGroup and friends).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use strom_protocol::{DecodeError, Reader, Uuid, Writer};

use super::assignor::{self, Assignment, MemberSpec, ASSIGNORS};
use super::classic::{Group, JoinRequest, JoinResult, Now, SyncResult};
use super::log::OffsetValue;
use super::GroupConfig;
use crate::error::ErrorCode;
use crate::metadata::Metadata;

/// The topics the assignor can see: name ↔ id and partition counts.
#[derive(Debug, Clone, Default)]
pub struct TopicsView {
    by_name: BTreeMap<String, (Uuid, i32)>,
    names: BTreeMap<Uuid, String>,
}

impl TopicsView {
    /// A snapshot of the cluster's non-internal topics.
    pub fn from_metadata(meta: &Metadata) -> TopicsView {
        let mut v = TopicsView::default();
        for t in meta.topics() {
            if t.name.starts_with("__") {
                continue;
            }
            v.by_name.insert(t.name.to_string(), (t.id, t.partitions.len() as i32));
            v.names.insert(t.id, t.name.to_string());
        }
        v
    }

    /// A view over explicit topics (tests).
    pub fn from_topics(topics: &[(&str, Uuid, i32)]) -> TopicsView {
        let mut v = TopicsView::default();
        for (n, id, p) in topics {
            v.by_name.insert(n.to_string(), (*id, *p));
            v.names.insert(*id, n.to_string());
        }
        v
    }

    /// The topic name for an id.
    pub fn name(&self, id: &Uuid) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }
}

/// One heartbeat, as the state machine needs it.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatRequest {
    pub version: i16,
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// What the member owns, when it says.
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
}

/// What the heartbeat answers.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatResult {
    pub member_id: String,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// Sent when it changed or the member is not yet in line with it.
    pub assignment: Option<Assignment>,
}

/// A member of a consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    previous_epoch: i32,
    pub subscribed_topics: Vec<String>,
    pub subscribed_regex: Option<String>,
    regex: Option<regex::Regex>,
    pub rebalance_timeout_ms: i32,
    /// What the member has been told it owns.
    pub assigned: Assignment,
    /// Partitions it was told to give up and has not confirmed releasing.
    pending_revocation: Assignment,
    revocation_deadline: Option<u64>,
    session_deadline: u64,
    /// The assignment last sent, to send only changes.
    last_sent: Option<Assignment>,
    /// Set for a member that uses the classic protocol inside this consumer group.
    pub classic: Option<ClassicMeta>,
}

/// The classic-protocol side of a consumer-group member (KIP-848 online migration).
#[derive(Debug, Clone)]
pub struct ClassicMeta {
    pub session_timeout_ms: i32,
    /// Supported protocols (client-side assignor names) with their metadata, preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// A JoinGroup was answered: SyncGroup must follow within the rebalance timeout
    /// (Kafka's consumer-group sync timeout).
    sync_deadline: Option<u64>,
    /// The member was told to rejoin: JoinGroup must follow within the rebalance timeout
    /// (Kafka's consumer-group join timeout).
    join_deadline: Option<u64>,
}

impl ClassicMeta {
    fn protocol_name(&self) -> Option<&str> {
        self.protocols.first().map(|(n, _)| n.as_str())
    }

    /// The ConsumerProtocol version the member speaks (its subscription's).
    fn version(&self) -> i16 {
        self.protocols.first().and_then(|(_, m)| decode_subscription(m).ok()).map_or(0, |s| s.version)
    }
}

/// A classic consumer's subscription (ConsumerProtocolSubscription v0–v3; later versions
/// are read as their v3 prefix, as Kafka reads them), as far as the coordinator needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// v1+: partitions the member owns.
    pub owned: Vec<(String, Vec<i32>)>,
    /// v3+.
    pub rack: Option<String>,
}

fn read_topic_partitions(r: &mut Reader) -> Result<Vec<(String, Vec<i32>)>, DecodeError> {
    let n = r.array_len(false)?.unwrap_or(0);
    let mut out = r.alloc_vec(n)?;
    for _ in 0..n {
        let topic = r.string(false)?;
        let m = r.array_len(false)?.unwrap_or(0);
        let mut partitions = r.alloc_vec(m)?;
        for _ in 0..m {
            partitions.push(r.i32()?);
        }
        out.push((topic, partitions));
    }
    Ok(out)
}

/// Decodes the metadata a classic consumer sends in JoinGroup.
pub fn decode_subscription(meta: &Bytes) -> Result<Subscription, DecodeError> {
    let mut r = Reader::new(meta.clone());
    let version = r.i16()?;
    if version < 0 {
        return Err(r.invalid("negative ConsumerProtocolSubscription version"));
    }
    let n = r.array_len(false)?.unwrap_or(0);
    let mut topics = r.alloc_vec(n)?;
    for _ in 0..n {
        topics.push(r.string(false)?);
    }
    let _user_data = r.nullable_bytes(false)?;
    let owned = if version >= 1 { read_topic_partitions(&mut r)? } else { Vec::new() };
    if version >= 2 {
        let _generation = r.i32()?;
    }
    let rack = if version >= 3 { r.nullable_string(false)? } else { None };
    Ok(Subscription { version, topics, owned, rack })
}

/// Decodes a ConsumerProtocolAssignment (one layout for v0–v3); an empty value (a member
/// never assigned anything) is an empty assignment.
pub fn decode_assignment(b: &Bytes) -> Result<Vec<(String, Vec<i32>)>, DecodeError> {
    if b.is_empty() {
        return Ok(Vec::new());
    }
    let mut r = Reader::new(b.clone());
    let version = r.i16()?;
    if version < 0 {
        return Err(r.invalid("negative ConsumerProtocolAssignment version"));
    }
    read_topic_partitions(&mut r)
}

/// Encodes a ConsumerProtocolAssignment at the member's protocol version (capped at 3, the
/// highest Kafka defines), without user data.
pub fn encode_assignment(version: i16, parts: &[(String, Vec<i32>)]) -> Bytes {
    let mut w = Writer::new();
    w.i16(version.clamp(0, 3));
    // Topic names and partition lists come from the broker's own metadata: the encodings
    // cannot fail (lengths are far below the format's limits).
    let _ = w.array_len(parts.len(), false);
    for (topic, partitions) in parts {
        let _ = w.string(topic, false);
        let _ = w.array_len(partitions.len(), false);
        for p in partitions {
            w.i32(*p);
        }
    }
    w.null_bytes(false);
    w.into_bytes()
}

impl ConsumerMember {
    fn deadlines(&self) -> impl Iterator<Item = u64> {
        let classic = self.classic.as_ref().map(|c| [c.sync_deadline, c.join_deadline]).unwrap_or_default();
        [Some(self.session_deadline), self.revocation_deadline].into_iter().chain(classic).flatten()
    }

    fn subscribes(&self, topic: &str) -> bool {
        self.subscribed_topics.iter().any(|t| t == topic) || self.regex.as_ref().is_some_and(|r| r.is_match(topic))
    }
}

/// One KIP-848 consumer group.
#[derive(Debug, Clone)]
pub struct ConsumerGroup {
    pub id: String,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// Subscribed topics and their partition counts when the target was computed.
    metadata_seen: BTreeMap<Uuid, i32>,
    pub state_timestamp: i64,
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter().all(|(t, ps)| b.get(t).is_some_and(|bs| ps.is_subset(bs)))
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, ps) in a {
        let rest: BTreeSet<i32> = match b.get(t) {
            Some(bs) => ps.difference(bs).copied().collect(),
            None => ps.clone(),
        };
        if !rest.is_empty() {
            out.insert(*t, rest);
        }
    }
    out
}

fn union_into(a: &mut Assignment, b: &Assignment) {
    for (t, ps) in b {
        a.entry(*t).or_default().extend(ps.iter().copied());
    }
}

fn is_empty(a: &Assignment) -> bool {
    a.values().all(BTreeSet::is_empty)
}

/// KIP-848 regexes are RE2 and must match the whole topic name.
fn compile_regex(re: &str) -> Result<regex::Regex, (ErrorCode, String)> {
    regex::Regex::new(&format!("^(?:{re})$"))
        .map_err(|e| (ErrorCode::InvalidRequest, format!("invalid subscribed topic regex: {e}")))
}

/// Whether a classic group's members subscribe to `topic` (consumer protocol metadata).
pub fn classic_subscribes(g: &Group, topic: &str) -> bool {
    if g.protocol_type.as_deref() != Some("consumer") {
        return false;
    }
    let proto = g.protocol_name.clone().unwrap_or_default();
    g.members.values().any(|m| {
        m.protocols
            .iter()
            .filter(|(p, _)| *p == proto)
            .any(|(_, meta)| subscription_topics(meta).iter().any(|t| t == topic))
    })
}

/// Topics of a ConsumerProtocolSubscription (`version i16, topics [string], …`).
fn subscription_topics(meta: &Bytes) -> Vec<String> {
    let mut r = Reader::new(meta.clone());
    let mut parse = || -> Result<Vec<String>, DecodeError> {
        let _version = r.i16()?;
        let n = r.array_len(false)?.unwrap_or(0);
        (0..n).map(|_| r.string(false)).collect()
    };
    parse().unwrap_or_default()
}

impl TopicsView {
    /// Partitions by topic name → by topic id; unknown topics and partitions are dropped.
    fn to_ids(&self, parts: &[(String, Vec<i32>)]) -> Assignment {
        let mut out = Assignment::new();
        for (topic, partitions) in parts {
            if let Some((id, n)) = self.by_name.get(topic) {
                let ps: BTreeSet<i32> = partitions.iter().copied().filter(|p| (0..*n).contains(p)).collect();
                if !ps.is_empty() {
                    out.entry(*id).or_default().extend(ps);
                }
            }
        }
        out
    }

    /// Partitions by topic id → by topic name.
    fn to_names(&self, a: &Assignment) -> Vec<(String, Vec<i32>)> {
        a.iter().filter_map(|(id, ps)| self.name(id).map(|n| (n.to_string(), ps.iter().copied().collect()))).collect()
    }
}

impl ConsumerGroup {
    /// A new, empty group.
    pub fn new(id: &str, now: Now) -> ConsumerGroup {
        ConsumerGroup {
            id: id.to_string(),
            group_epoch: 0,
            assignment_epoch: 0,
            assignor: ASSIGNORS[0].to_string(),
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            offsets: BTreeMap::new(),
            metadata_seen: BTreeMap::new(),
            state_timestamp: now.wall,
        }
    }

    /// Kafka's state names for consumer groups.
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.assignment_epoch < self.group_epoch {
            "Assigning"
        } else if self.members.values().any(|m| m.epoch != self.assignment_epoch || !is_empty(&m.pending_revocation)) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Whether any member subscribes to `topic`.
    pub fn subscribes(&self, topic: &str) -> bool {
        self.members.values().any(|m| m.subscribes(topic))
    }

    /// The earliest session, revocation, or (classic members) sync or join deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.members.values().flat_map(ConsumerMember::deadlines).min()
    }

    /// Offset commits must come from a current member at its current epoch.
    ///
    /// Kafka's ConsumerGroup.validateOffsetCommit: with a negative epoch and no members the
    /// commit is a standalone one (admin client, assign()-only consumer) and is accepted
    /// whatever member id it carries; otherwise the member must exist (UNKNOWN_MEMBER_ID)
    /// and the epoch match (STALE_MEMBER_EPOCH).
    pub fn validate_commit(&self, member_id: &str, epoch: i32) -> ErrorCode {
        if epoch < 0 && self.members.is_empty() {
            return ErrorCode::None;
        }
        match self.members.get(member_id) {
            None => ErrorCode::UnknownMemberId,
            // validateMemberEpoch: a classic member gives its generation (its epoch).
            Some(m) if m.epoch != epoch && m.classic.is_some() => ErrorCode::IllegalGeneration,
            Some(m) if m.epoch != epoch => ErrorCode::StaleMemberEpoch,
            Some(_) => ErrorCode::None,
        }
    }

    /// Kafka's ConsumerGroup.validateOffsetFetch: without a member id and with a negative
    /// epoch (admin client, standalone consumer) any fetch is allowed; a named member must
    /// exist and give its current epoch. An empty member id counts as none.
    pub fn validate_fetch(&self, member_id: &str, epoch: i32) -> ErrorCode {
        if member_id.is_empty() && epoch < 0 {
            return ErrorCode::None;
        }
        match self.members.get(member_id) {
            None => ErrorCode::UnknownMemberId,
            Some(m) if m.epoch != epoch && m.classic.is_some() => ErrorCode::IllegalGeneration,
            Some(m) if m.epoch != epoch => ErrorCode::StaleMemberEpoch,
            Some(_) => ErrorCode::None,
        }
    }

    fn bump(&mut self, now: Now) {
        self.group_epoch += 1;
        self.state_timestamp = now.wall;
    }

    fn remove(&mut self, id: &str, now: Now) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.bump(now);
        }
    }

    /// Removes members whose session or revocation time ran out.
    pub fn tick(&mut self, now: Now, _config: &GroupConfig) {
        let expired: Vec<String> =
            self.members.values().filter(|m| m.deadlines().any(|d| d <= now.mono)).map(|m| m.id.clone()).collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "consumer-group member expired");
            self.remove(&id, now);
        }
    }

    fn subscribed_metadata(&self, topics: &TopicsView) -> BTreeMap<Uuid, i32> {
        topics
            .by_name
            .iter()
            .filter(|(name, _)| self.members.values().any(|m| m.subscribes(name)))
            .map(|(_, (id, n))| (*id, *n))
            .collect()
    }

    fn recompute_target(&mut self, topics: &TopicsView) {
        let partitions = self.subscribed_metadata(topics);
        let specs: Vec<MemberSpec> = self
            .members
            .values()
            .map(|m| MemberSpec {
                id: m.id.clone(),
                topics: topics.by_name.iter().filter(|(n, _)| m.subscribes(n)).map(|(_, (id, _))| *id).collect(),
                current: m.assigned.clone(),
            })
            .collect();
        self.target = assignor::assign(&self.assignor, &specs, &partitions);
        self.metadata_seen = partitions;
        self.assignment_epoch = self.group_epoch;
    }

    /// Handles a ConsumerGroupHeartbeat.
    pub fn heartbeat(
        &mut self,
        req: HeartbeatRequest,
        topics: &TopicsView,
        config: &GroupConfig,
        now: Now,
    ) -> Result<HeartbeatResult, (ErrorCode, String)> {
        let session = config.consumer_session_timeout_ms.max(0) as u64;
        if let Some(a) = &req.server_assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err((ErrorCode::UnsupportedAssignor, format!("assignor {a} is not one of {ASSIGNORS:?}")));
            }
        }
        match req.member_epoch {
            0 => self.join(&req, now, session)?,
            -1 | -2 => {
                let id = req.member_id.clone();
                if !self.members.contains_key(&id) {
                    return Err((ErrorCode::UnknownMemberId, format!("member {id} is not in the group")));
                }
                self.remove(&id, now);
                return Ok(HeartbeatResult {
                    member_id: id,
                    member_epoch: req.member_epoch,
                    heartbeat_interval_ms: config.consumer_heartbeat_interval_ms,
                    assignment: None,
                });
            }
            epoch => {
                let Some(m) = self.members.get(&req.member_id) else {
                    return Err((ErrorCode::UnknownMemberId, format!("member {} is not in the group", req.member_id)));
                };
                if epoch != m.epoch && epoch != m.previous_epoch {
                    return Err((
                        ErrorCode::FencedMemberEpoch,
                        format!("epoch {epoch} is not the member's epoch {}", m.epoch),
                    ));
                }
                if req.instance_id.as_ref().is_some_and(|i| m.instance_id.as_ref() != Some(i)) {
                    return Err((ErrorCode::FencedInstanceId, "instance id does not match the member".into()));
                }
            }
        }
        let member_id = req.member_id.clone();
        let mut changed = false;
        if let Some(m) = self.members.get_mut(&member_id) {
            m.session_deadline = now.mono + session;
            if req.rebalance_timeout_ms >= 0 {
                m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            }
            if let Some(names) = &req.subscribed_topic_names {
                let mut sorted = names.clone();
                sorted.sort();
                sorted.dedup();
                if sorted != m.subscribed_topics {
                    m.subscribed_topics = sorted;
                    changed = true;
                }
            }
            if let Some(re) = &req.subscribed_topic_regex {
                let new = Some(re.clone()).filter(|r| !r.is_empty());
                if new != m.subscribed_regex {
                    m.regex = match &new {
                        Some(r) => Some(compile_regex(r)?),
                        None => None,
                    };
                    m.subscribed_regex = new;
                    changed = true;
                }
            }
            if let Some(r) = &req.rack_id {
                m.rack_id = Some(r.clone());
            }
            // The member reports what it owns: revocations it has completed are released.
            if let Some(owned) = &req.owned {
                if !is_empty(&m.pending_revocation) && minus(&m.pending_revocation, owned) == m.pending_revocation {
                    m.pending_revocation.clear();
                    m.revocation_deadline = None;
                }
            }
        }
        if let Some(a) = &req.server_assignor {
            if *a != self.assignor {
                self.assignor = a.clone();
                changed = true;
            }
        }
        if changed {
            self.bump(now);
        }
        // New topics or partitions matching a subscription also move the epoch.
        if self.subscribed_metadata(topics) != self.metadata_seen && self.group_epoch == self.assignment_epoch {
            self.bump(now);
        }
        if self.assignment_epoch < self.group_epoch {
            self.recompute_target(topics);
        }
        self.reconcile(&member_id, now);
        let m = self.members.get_mut(&member_id).ok_or((ErrorCode::UnknownMemberId, "member vanished".to_string()))?;
        let in_line = req.owned.as_ref().is_some_and(|o| *o == m.assigned);
        let send = m.last_sent.as_ref() != Some(&m.assigned) || !in_line && req.member_epoch != m.epoch;
        let assignment = if send {
            m.last_sent = Some(m.assigned.clone());
            Some(m.assigned.clone())
        } else {
            None
        };
        Ok(HeartbeatResult {
            member_id,
            member_epoch: m.epoch,
            heartbeat_interval_ms: config.consumer_heartbeat_interval_ms,
            assignment,
        })
    }

    fn join(&mut self, req: &HeartbeatRequest, now: Now, session: u64) -> Result<(), (ErrorCode, String)> {
        if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
            return Err((ErrorCode::InvalidRequest, "a joining member must give its subscription".into()));
        }
        if req.member_id.is_empty() {
            return Err((ErrorCode::InvalidRequest, "member id must be set (KIP-1082)".into()));
        }
        // A static member's instance id belongs to one live member at a time.
        if let Some(instance) = &req.instance_id {
            let holder =
                self.members.values().find(|m| m.instance_id.as_ref() == Some(instance) && m.id != req.member_id);
            if let Some(h) = holder {
                return Err((
                    ErrorCode::UnreleasedInstanceId,
                    format!("instance {instance} is still held by member {}", h.id),
                ));
            }
        }
        if let Some(existing) = self.members.get_mut(&req.member_id) {
            // Rejoining with epoch 0 (after a fence): start over from an empty assignment,
            // speaking the consumer protocol from now on.
            existing.classic = None;
            existing.epoch = 0;
            existing.previous_epoch = -1;
            existing.assigned.clear();
            existing.pending_revocation.clear();
            existing.last_sent = None;
            self.bump(now);
            return Ok(());
        }
        let regex = match &req.subscribed_topic_regex {
            Some(r) if !r.is_empty() => Some(compile_regex(r)?),
            _ => None,
        };
        let mut topics = req.subscribed_topic_names.clone().unwrap_or_default();
        topics.sort();
        topics.dedup();
        self.members.insert(
            req.member_id.clone(),
            ConsumerMember {
                id: req.member_id.clone(),
                instance_id: req.instance_id.clone(),
                rack_id: req.rack_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                epoch: 0,
                previous_epoch: -1,
                subscribed_topics: topics,
                subscribed_regex: req.subscribed_topic_regex.clone().filter(|r| !r.is_empty()),
                regex,
                rebalance_timeout_ms: req.rebalance_timeout_ms.max(0),
                assigned: Assignment::new(),
                pending_revocation: Assignment::new(),
                revocation_deadline: None,
                session_deadline: now.mono + session,
                last_sent: None,
                classic: None,
            },
        );
        self.bump(now);
        Ok(())
    }

    /// Moves one member toward its target assignment.
    fn reconcile(&mut self, member_id: &str, now: Now) {
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let mut owned_by_others = Assignment::new();
        for (id, m) in &self.members {
            if id != member_id {
                union_into(&mut owned_by_others, &m.assigned);
                union_into(&mut owned_by_others, &m.pending_revocation);
            }
        }
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(member_id) else { return };
        let revoke = minus(&m.assigned, &target);
        if !is_empty(&revoke) {
            m.assigned = minus(&m.assigned, &revoke);
            union_into(&mut m.pending_revocation, &revoke);
            m.revocation_deadline = Some(now.mono + m.rebalance_timeout_ms.max(0) as u64);
            return;
        }
        if !is_empty(&m.pending_revocation) {
            return;
        }
        let free = minus(&minus(&target, &m.assigned), &owned_by_others);
        union_into(&mut m.assigned, &free);
        if m.epoch != assignment_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        debug_assert!(is_subset(&m.assigned, &target));
    }
}

/// A classic-protocol member of a consumer group, as it becomes a member of the classic
/// group the consumer group turns into (online downgrade).
#[derive(Debug, Clone)]
pub struct Downgraded {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocols: Vec<(String, Bytes)>,
    /// Its target assignment, by topic name (Kafka's ClassicGroup.fromConsumerGroup).
    pub target: Vec<(String, Vec<i32>)>,
}

/// KIP-848 online migration: classic members inside a consumer group, and the conversions.
impl ConsumerGroup {
    /// Kafka's ConsumerGroup.fromClassicGroup: every classic member becomes a member at the
    /// classic generation with its last assignment as both current and target assignment,
    /// subscribed to what its metadata names; the group epoch is the generation. Fails
    /// when a member's embedded consumer protocol is malformed (Kafka then refuses the
    /// upgrade with GROUP_ID_NOT_FOUND).
    pub fn from_classic(g: &Group, topics: &TopicsView, now: Now) -> Result<ConsumerGroup, String> {
        let mut cg = ConsumerGroup::new(&g.id, now);
        cg.group_epoch = g.generation;
        cg.assignment_epoch = g.generation;
        cg.offsets = g.offsets.clone();
        let mut taken = Assignment::new();
        for m in g.members.values() {
            let meta = g
                .protocol_name
                .as_ref()
                .and_then(|p| m.protocols.iter().find(|(n, _)| n == p))
                .or(m.protocols.first())
                .map(|(_, b)| b.clone())
                .unwrap_or_default();
            let sub =
                decode_subscription(&meta).map_err(|e| format!("member {}: malformed subscription: {e}", m.id))?;
            let parts =
                decode_assignment(&m.assignment).map_err(|e| format!("member {}: malformed assignment: {e}", m.id))?;
            // One owner per partition, whatever the classic leader handed out.
            let assigned = minus(&topics.to_ids(&parts), &taken);
            union_into(&mut taken, &assigned);
            let mut subscribed = sub.topics;
            subscribed.sort();
            subscribed.dedup();
            cg.target.insert(m.id.clone(), assigned.clone());
            cg.members.insert(
                m.id.clone(),
                ConsumerMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: sub.rack,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    epoch: g.generation,
                    previous_epoch: g.generation,
                    subscribed_topics: subscribed,
                    subscribed_regex: None,
                    regex: None,
                    rebalance_timeout_ms: m.rebalance_timeout_ms.max(0),
                    assigned,
                    pending_revocation: Assignment::new(),
                    revocation_deadline: None,
                    session_deadline: now.mono + m.session_timeout_ms.max(0) as u64,
                    last_sent: None,
                    classic: Some(ClassicMeta {
                        session_timeout_ms: m.session_timeout_ms,
                        protocols: m.protocols.clone(),
                        sync_deadline: None,
                        join_deadline: None,
                    }),
                },
            );
        }
        cg.metadata_seen = cg.subscribed_metadata(topics);
        Ok(cg)
    }

    /// Kafka's ConsumerGroup.supportsClassicProtocols: protocol type `consumer`, and one
    /// protocol every classic member supports (any, while there is none).
    fn supports_classic(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type != "consumer" || protocols.is_empty() {
            return false;
        }
        let classic: Vec<&ClassicMeta> = self.members.values().filter_map(|m| m.classic.as_ref()).collect();
        protocols.iter().any(|(p, _)| classic.iter().all(|c| c.protocols.iter().any(|(q, _)| q == p)))
    }

    /// validateConsumerGroupMember for a classic request: the instance id (if any) must map
    /// to this member id, the member must exist and use the classic protocol.
    fn classic_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<&ConsumerMember, ErrorCode> {
        let m = match instance_id {
            Some(i) => {
                let m = self
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(i))
                    .ok_or(ErrorCode::UnknownMemberId)?;
                if m.id != member_id {
                    return Err(ErrorCode::FencedInstanceId);
                }
                m
            }
            None => self.members.get(member_id).ok_or(ErrorCode::UnknownMemberId)?,
        };
        if m.classic.is_none() {
            return Err(ErrorCode::UnknownMemberId);
        }
        Ok(m)
    }

    /// Whether a classic member must rejoin (Kafka's classicGroupHeartbeatToConsumerGroup):
    /// the group epoch moved past its epoch, it has partitions to revoke, or partitions it
    /// is waiting for have all been released.
    fn classic_must_rejoin(&self, m: &ConsumerMember) -> bool {
        if m.epoch < self.group_epoch || !is_empty(&m.pending_revocation) {
            return true;
        }
        let missing = minus(&self.target.get(&m.id).cloned().unwrap_or_default(), &m.assigned);
        if is_empty(&missing) {
            return false;
        }
        let mut held = Assignment::new();
        for (id, other) in &self.members {
            if *id != m.id {
                union_into(&mut held, &other.assigned);
                union_into(&mut held, &other.pending_revocation);
            }
        }
        minus(&missing, &held) == missing
    }

    /// JoinGroup from a classic member (Kafka's classicGroupJoinToConsumerGroup): answered at
    /// once, with the member's epoch as generation and no leader — the coordinator assigns.
    pub fn classic_join(
        &mut self,
        req: &JoinRequest,
        topics: &TopicsView,
        config: &GroupConfig,
        now: Now,
    ) -> JoinResult {
        let limits = &config.limits;
        if req.session_timeout_ms < limits.min_session_timeout_ms
            || req.session_timeout_ms > limits.max_session_timeout_ms
        {
            return JoinResult::error(ErrorCode::InvalidSessionTimeout, &req.member_id);
        }
        if !self.supports_classic(&req.protocol_type, &req.protocols) {
            return JoinResult::error(ErrorCode::InconsistentGroupProtocol, &req.member_id);
        }
        // Kafka reads the subscription from the first (preferred) protocol.
        let Some(sub) = req.protocols.first().and_then(|(_, m)| decode_subscription(m).ok()) else {
            return JoinResult::error(ErrorCode::InconsistentGroupProtocol, &req.member_id);
        };
        let static_holder = req
            .instance_id
            .as_ref()
            .and_then(|i| self.members.values().find(|m| m.instance_id.as_ref() == Some(i)))
            .map(|m| m.id.clone());
        let mut member_id = req.member_id.clone();
        if member_id.is_empty() {
            member_id = crate::metadata::random_uuid().to_string();
            if req.require_known_member_id && req.instance_id.is_none() {
                return JoinResult::error(ErrorCode::MemberIdRequired, &member_id);
            }
            // A static member restarting takes over its old member's place.
            if let Some(old) = static_holder {
                if let Some(mut m) = self.members.remove(&old) {
                    m.id = member_id.clone();
                    if let Some(t) = self.target.remove(&old) {
                        self.target.insert(member_id.clone(), t);
                    }
                    self.members.insert(member_id.clone(), m);
                }
            }
        } else if static_holder.as_ref().is_some_and(|h| *h != member_id) {
            return JoinResult::error(ErrorCode::FencedInstanceId, &member_id);
        }
        if self.members.get(&member_id).is_some_and(|m| m.classic.is_none()) {
            // A consumer-protocol member cannot switch to JoinGroup under the same id.
            return JoinResult::error(ErrorCode::UnknownMemberId, &member_id);
        }
        let mut subscribed = sub.topics.clone();
        subscribed.sort();
        subscribed.dedup();
        let session = now.mono + req.session_timeout_ms.max(0) as u64;
        let classic = ClassicMeta {
            session_timeout_ms: req.session_timeout_ms,
            protocols: req.protocols.clone(),
            sync_deadline: None,
            join_deadline: None,
        };
        let changed = match self.members.get_mut(&member_id) {
            Some(m) => {
                let changed = m.subscribed_topics != subscribed;
                m.subscribed_topics = subscribed;
                if sub.rack.is_some() {
                    m.rack_id = sub.rack.clone();
                }
                if req.rebalance_timeout_ms >= 0 {
                    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
                }
                m.client_id = req.client_id.clone();
                m.client_host = req.client_host.clone();
                m.session_deadline = session;
                m.classic = Some(classic);
                changed
            }
            None => {
                self.members.insert(
                    member_id.clone(),
                    ConsumerMember {
                        id: member_id.clone(),
                        instance_id: req.instance_id.clone(),
                        rack_id: sub.rack.clone(),
                        client_id: req.client_id.clone(),
                        client_host: req.client_host.clone(),
                        epoch: 0,
                        previous_epoch: -1,
                        subscribed_topics: subscribed,
                        subscribed_regex: None,
                        regex: None,
                        rebalance_timeout_ms: req.rebalance_timeout_ms.max(0),
                        assigned: Assignment::new(),
                        pending_revocation: Assignment::new(),
                        revocation_deadline: None,
                        session_deadline: session,
                        last_sent: None,
                        classic: Some(classic),
                    },
                );
                true
            }
        };
        if changed {
            self.bump(now);
        }
        if self.subscribed_metadata(topics) != self.metadata_seen && self.group_epoch == self.assignment_epoch {
            self.bump(now);
        }
        if self.assignment_epoch < self.group_epoch {
            self.recompute_target(topics);
        }
        // What the member reports owning confirms revocations it has completed.
        let owned = topics.to_ids(&sub.owned);
        if let Some(m) = self.members.get_mut(&member_id) {
            if !is_empty(&m.pending_revocation) && minus(&m.pending_revocation, &owned) == m.pending_revocation {
                m.pending_revocation.clear();
                m.revocation_deadline = None;
            }
        }
        self.reconcile(&member_id, now);
        let Some(m) = self.members.get_mut(&member_id) else {
            return JoinResult::error(ErrorCode::UnknownMemberId, &member_id);
        };
        let rebalance_timeout = m.rebalance_timeout_ms.max(0) as u64;
        if let Some(c) = m.classic.as_mut() {
            c.sync_deadline = Some(now.mono + rebalance_timeout);
        }
        JoinResult {
            error: ErrorCode::None,
            generation: m.epoch,
            protocol_type: Some("consumer".into()),
            protocol_name: req.protocols.first().map(|(n, _)| n.clone()),
            leader: String::new(),
            member_id,
            members: Vec::new(),
        }
    }

    /// SyncGroup from a classic member (Kafka's classicGroupSyncToConsumerGroup): its
    /// current assignment, encoded at its protocol version.
    #[allow(clippy::too_many_arguments)]
    pub fn classic_sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        topics: &TopicsView,
        now: Now,
    ) -> SyncResult {
        let m = match self.classic_member(member_id, instance_id) {
            Ok(m) => m,
            Err(e) => return SyncResult::error(e),
        };
        if generation != m.epoch {
            return SyncResult::error(ErrorCode::IllegalGeneration);
        }
        let classic = m.classic.as_ref();
        if protocol_type.is_some_and(|t| t != "consumer")
            || protocol_name.is_some_and(|n| classic.and_then(ClassicMeta::protocol_name) != Some(n))
        {
            return SyncResult::error(ErrorCode::InconsistentGroupProtocol);
        }
        // throwIfRebalanceInProgress: a newer epoch exists and the member is not revoking.
        let rejoin = self.group_epoch > m.epoch && is_empty(&m.pending_revocation);
        let assignment = encode_assignment(classic.map_or(0, ClassicMeta::version), &topics.to_names(&m.assigned));
        let id = m.id.clone();
        let Some(m) = self.members.get_mut(&id) else {
            return SyncResult::error(ErrorCode::UnknownMemberId);
        };
        let rebalance_timeout = m.rebalance_timeout_ms.max(0) as u64;
        let Some(c) = m.classic.as_mut() else {
            return SyncResult::error(ErrorCode::UnknownMemberId);
        };
        if rejoin {
            c.join_deadline.get_or_insert(now.mono + rebalance_timeout);
            return SyncResult::error(ErrorCode::RebalanceInProgress);
        }
        c.sync_deadline = None;
        m.session_deadline = now.mono + c.session_timeout_ms.max(0) as u64;
        SyncResult {
            error: ErrorCode::None,
            protocol_type: protocol_type.map(String::from),
            protocol_name: protocol_name.map(String::from),
            assignment,
        }
    }

    /// Heartbeat from a classic member (Kafka's classicGroupHeartbeatToConsumerGroup).
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Now,
    ) -> ErrorCode {
        let m = match self.classic_member(member_id, instance_id) {
            Ok(m) => m,
            Err(e) => return e,
        };
        if generation != m.epoch {
            return ErrorCode::IllegalGeneration;
        }
        let rejoin = self.classic_must_rejoin(m);
        let id = m.id.clone();
        let Some(m) = self.members.get_mut(&id) else { return ErrorCode::UnknownMemberId };
        let rebalance_timeout = m.rebalance_timeout_ms.max(0) as u64;
        let Some(c) = m.classic.as_mut() else { return ErrorCode::UnknownMemberId };
        m.session_deadline = now.mono + c.session_timeout_ms.max(0) as u64;
        if rejoin {
            c.join_deadline.get_or_insert(now.mono + rebalance_timeout);
            ErrorCode::RebalanceInProgress
        } else {
            ErrorCode::None
        }
    }

    /// One member of a LeaveGroup from classic members (Kafka's classicGroupLeaveToConsumerGroup).
    pub fn classic_leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Now) -> ErrorCode {
        let id = match instance_id {
            Some(i) => match self.members.values().find(|m| m.instance_id.as_deref() == Some(i)) {
                None => return ErrorCode::UnknownMemberId,
                Some(m) if !member_id.is_empty() && m.id != member_id => return ErrorCode::FencedInstanceId,
                Some(m) => m.id.clone(),
            },
            None => member_id.to_string(),
        };
        if !self.members.contains_key(&id) {
            return ErrorCode::UnknownMemberId;
        }
        self.remove(&id, now);
        ErrorCode::None
    }

    /// Whether the group should turn classic (Kafka's validateOnlineDowngradeWithFencedMember,
    /// checked after a consumer-protocol member left or was fenced): members remain, all of
    /// them classic, the policy allows it, and they fit a classic group.
    pub fn should_downgrade(&self, config: &GroupConfig) -> bool {
        config.migration_policy.downgrade()
            && !self.members.is_empty()
            && self.members.values().all(|m| m.classic.is_some())
            && self.members.len() <= config.limits.max_size
    }

    /// The members of the classic group this one turns into, with their target assignments.
    pub fn downgraded_members(&self, topics: &TopicsView) -> Vec<Downgraded> {
        self.members
            .values()
            .filter_map(|m| {
                let c = m.classic.as_ref()?;
                Some(Downgraded {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: c.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: c.protocols.clone(),
                    target: topics.to_names(&self.target.get(&m.id).cloned().unwrap_or_default()),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Uuid = Uuid([7; 16]);

    fn config() -> GroupConfig {
        GroupConfig {
            limits: super::super::classic::Limits {
                min_session_timeout_ms: 6000,
                max_session_timeout_ms: 1_800_000,
                initial_rebalance_delay_ms: 3000,
                max_size: usize::MAX,
            },
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            consumer_session_timeout_ms: 45_000,
            consumer_heartbeat_interval_ms: 5_000,
            migration_policy: super::super::MigrationPolicy::Bidirectional,
            share: crate::config::group::ShareConfig::default(),
        }
    }

    fn at(mono: u64) -> Now {
        Now { mono, wall: 1_700_000_000_000 + mono as i64 }
    }

    fn join(id: &str) -> HeartbeatRequest {
        HeartbeatRequest {
            version: 1,
            group_id: "g".into(),
            member_id: id.into(),
            member_epoch: 0,
            subscribed_topic_names: Some(vec!["t".into()]),
            rebalance_timeout_ms: 60_000,
            ..Default::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &Assignment) -> HeartbeatRequest {
        HeartbeatRequest { member_epoch: epoch, owned: Some(owned.clone()), subscribed_topic_names: None, ..join(id) }
    }

    fn parts(a: &Assignment) -> usize {
        a.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn first_member_gets_everything_at_epoch_one() {
        let topics = TopicsView::from_topics(&[("t", T, 6)]);
        let mut g = ConsumerGroup::new("g", at(0));
        let r = g.heartbeat(join("a"), &topics, &config(), at(0)).unwrap();
        assert_eq!(r.member_epoch, 1);
        assert_eq!(parts(r.assignment.as_ref().unwrap()), 6);
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn a_second_member_gets_partitions_only_after_the_first_revokes_them() {
        let topics = TopicsView::from_topics(&[("t", T, 6)]);
        let cfg = config();
        let mut g = ConsumerGroup::new("g", at(0));
        let a1 = g.heartbeat(join("a"), &topics, &cfg, at(0)).unwrap();
        let owned_a = a1.assignment.unwrap();
        // b joins: epoch 2; b is promised nothing yet because a still owns everything.
        let b1 = g.heartbeat(join("b"), &topics, &cfg, at(10)).unwrap();
        assert_eq!(b1.member_epoch, 2);
        assert_eq!(parts(b1.assignment.as_ref().unwrap_or(&Assignment::new())), 0);
        // a is told to keep three; its epoch stays until it confirms the revocation.
        let a2 = g.heartbeat(beat("a", 1, &owned_a), &topics, &cfg, at(20)).unwrap();
        let kept = a2.assignment.unwrap();
        assert_eq!(parts(&kept), 3);
        assert_eq!(a2.member_epoch, 1);
        assert_eq!(g.state_name(), "Reconciling");
        // a confirms: now at epoch 2.
        let a3 = g.heartbeat(beat("a", 1, &kept), &topics, &cfg, at(30)).unwrap();
        assert_eq!(a3.member_epoch, 2);
        // b now receives the released three; no partition has two owners.
        let b2 = g.heartbeat(beat("b", 2, &Assignment::new()), &topics, &cfg, at(40)).unwrap();
        let got_b = b2.assignment.unwrap();
        assert_eq!(parts(&got_b), 3);
        assert!(got_b[&T].is_disjoint(&kept[&T]));
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn wrong_epochs_are_fenced_and_unknown_members_rejected() {
        let topics = TopicsView::from_topics(&[("t", T, 2)]);
        let cfg = config();
        let mut g = ConsumerGroup::new("g", at(0));
        g.heartbeat(join("a"), &topics, &cfg, at(0)).unwrap();
        let err = g.heartbeat(beat("a", 7, &Assignment::new()), &topics, &cfg, at(1)).unwrap_err();
        assert_eq!(err.0, ErrorCode::FencedMemberEpoch);
        let err = g.heartbeat(beat("zz", 1, &Assignment::new()), &topics, &cfg, at(1)).unwrap_err();
        assert_eq!(err.0, ErrorCode::UnknownMemberId);
        assert_eq!(g.validate_commit("a", 0), ErrorCode::StaleMemberEpoch);
        assert_eq!(g.validate_commit("a", 1), ErrorCode::None);
    }

    /// Kafka's `ConsumerGroup.validateOffsetCommit`: epoch < 0 commits are accepted while
    /// the group has no members, whatever the member id (librdkafka ≥ 2.10 sends its
    /// KIP-1082 client-generated id with epoch -1 for an assign()-only consumer); with
    /// members, the id must be one of them and the epoch its current one.
    #[test]
    fn a_standalone_commit_with_a_client_generated_member_id_is_accepted_while_empty() {
        let topics = TopicsView::from_topics(&[("t", T, 2)]);
        let cfg = config();
        let mut g = ConsumerGroup::new("g", at(0));
        assert_eq!(g.validate_commit("", -1), ErrorCode::None);
        assert_eq!(g.validate_commit("0f4c0e2a-client-generated", -1), ErrorCode::None);
        g.heartbeat(join("a"), &topics, &cfg, at(0)).unwrap();
        assert_eq!(g.validate_commit("0f4c0e2a-client-generated", -1), ErrorCode::UnknownMemberId);
        assert_eq!(g.validate_commit("", -1), ErrorCode::UnknownMemberId);
        assert_eq!(g.validate_commit("a", -1), ErrorCode::StaleMemberEpoch);
        // OffsetFetch differs: without a member id anyone may read (validateOffsetFetch).
        assert_eq!(g.validate_fetch("", -1), ErrorCode::None);
        assert_eq!(g.validate_fetch("0f4c0e2a-client-generated", -1), ErrorCode::UnknownMemberId);
        assert_eq!(g.validate_fetch("a", 0), ErrorCode::StaleMemberEpoch);
        assert_eq!(g.validate_fetch("a", 1), ErrorCode::None);
        g.heartbeat(HeartbeatRequest { member_epoch: -1, ..join("a") }, &topics, &cfg, at(1)).unwrap();
        assert!(g.members.is_empty());
        assert_eq!(g.validate_commit("a", -1), ErrorCode::None, "the group is empty again");
    }

    #[test]
    fn unknown_assignors_and_held_instance_ids_are_refused() {
        let topics = TopicsView::from_topics(&[("t", T, 2)]);
        let cfg = config();
        let mut g = ConsumerGroup::new("g", at(0));
        let mut r = join("a");
        r.server_assignor = Some("sticky-magic".into());
        assert_eq!(g.heartbeat(r, &topics, &cfg, at(0)).unwrap_err().0, ErrorCode::UnsupportedAssignor);
        let mut a = join("a");
        a.instance_id = Some("i".into());
        g.heartbeat(a, &topics, &cfg, at(0)).unwrap();
        let mut b = join("b");
        b.instance_id = Some("i".into());
        assert_eq!(g.heartbeat(b, &topics, &cfg, at(1)).unwrap_err().0, ErrorCode::UnreleasedInstanceId);
    }

    #[test]
    fn regex_subscriptions_match_whole_names_and_follow_new_topics() {
        let u = Uuid([8; 16]);
        let cfg = config();
        let mut g = ConsumerGroup::new("g", at(0));
        let mut r = join("a");
        r.subscribed_topic_names = None;
        r.subscribed_topic_regex = Some("orders-.*".into());
        let topics = TopicsView::from_topics(&[("orders-eu", T, 1), ("x-orders-eu", u, 1)]);
        let first = g.heartbeat(r, &topics, &cfg, at(0)).unwrap();
        assert_eq!(first.assignment.unwrap().keys().copied().collect::<Vec<_>>(), vec![T]);
        let w = Uuid([9; 16]);
        let more = TopicsView::from_topics(&[("orders-eu", T, 1), ("x-orders-eu", u, 1), ("orders-us", w, 2)]);
        let owned = g.members["a"].assigned.clone();
        let next = g.heartbeat(beat("a", first.member_epoch, &owned), &more, &cfg, at(1)).unwrap();
        assert_eq!(next.member_epoch, 2, "a new matching topic moves the epoch");
        assert_eq!(parts(&next.assignment.unwrap()), 3);
    }

    #[test]
    fn silent_members_expire_and_their_partitions_move() {
        let topics = TopicsView::from_topics(&[("t", T, 4)]);
        let cfg = config();
        let mut g = ConsumerGroup::new("g", at(0));
        g.heartbeat(join("a"), &topics, &cfg, at(0)).unwrap();
        g.heartbeat(join("b"), &topics, &cfg, at(0)).unwrap();
        // Only b keeps heartbeating.
        let mut owned_b = Assignment::new();
        for t in (1..60).map(|s| s * 1000) {
            let r = g.heartbeat(beat("b", g.members["b"].epoch, &owned_b), &topics, &cfg, at(t)).unwrap();
            if let Some(a) = r.assignment {
                owned_b = a;
            }
            g.tick(at(t), &cfg);
        }
        assert!(!g.members.contains_key("a"));
        assert_eq!(parts(&owned_b), 4);
    }

    mod migration {
        use std::collections::BTreeSet;

        use bytes::Bytes;
        use strom_protocol::Writer;

        use super::super::super::classic::{Disposition, JoinRequest, State};
        use super::*;

        /// ConsumerProtocolSubscription at `version` (0: no owned partitions).
        fn sub(version: i16, owned: &[i32]) -> Bytes {
            let mut w = Writer::new();
            w.i16(version);
            w.array_len(1, false).unwrap();
            w.string("t", false).unwrap();
            w.null_bytes(false);
            if version >= 1 {
                w.array_len(1, false).unwrap();
                w.string("t", false).unwrap();
                w.array_len(owned.len(), false).unwrap();
                for p in owned {
                    w.i32(*p);
                }
            }
            w.into_bytes()
        }

        fn held(b: &Bytes) -> BTreeSet<i32> {
            decode_assignment(b).unwrap().into_iter().flat_map(|(_, ps)| ps).collect()
        }

        fn classic_req(id: &str, meta: Bytes) -> JoinRequest {
            JoinRequest {
                member_id: id.into(),
                instance_id: None,
                client_id: "classic".into(),
                client_host: "/127.0.0.1".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                protocol_type: "consumer".into(),
                protocols: vec![("cooperative-sticky".into(), meta)],
                require_known_member_id: false,
            }
        }

        /// A Stable classic group: A (subscription v1) owns t-0,1 and B (v0, eager) t-2,3.
        fn classic_pair() -> (Group, String, String) {
            let limits = config().limits;
            let mut g = Group::new("g", at(0));
            let Disposition::Parked(a) = g.join(classic_req("", sub(1, &[])), &limits, at(0)).0 else { panic!() };
            let Disposition::Parked(b) = g.join(classic_req("", sub(0, &[])), &limits, at(0)).0 else { panic!() };
            g.tick(at(3000));
            g.tick(at(6000));
            assert_eq!(g.state, State::CompletingRebalance);
            let leader = g.leader.clone().unwrap();
            let given = vec![
                (a.clone(), encode_assignment(1, &[("t".into(), vec![0, 1])])),
                (b.clone(), encode_assignment(0, &[("t".into(), vec![2, 3])])),
            ];
            g.sync(&leader, None, 1, None, None, given, at(6001));
            assert_eq!(g.state, State::Stable);
            (g, a, b)
        }

        #[test]
        fn an_upgraded_group_moves_partitions_to_a_kip848_member_without_two_owners() {
            let topics = TopicsView::from_topics(&[("t", T, 4)]);
            let cfg = config();
            let (classic, a, b) = classic_pair();
            let mut g = ConsumerGroup::from_classic(&classic, &topics, at(7000)).unwrap();
            assert_eq!((g.group_epoch, g.members[&a].epoch), (1, 1));
            assert_eq!(g.members[&b].assigned[&T], BTreeSet::from([2, 3]));
            assert!(g.members.values().all(|m| m.classic.is_some()));
            // What each client really holds, and its generation.
            let mut holding: BTreeMap<String, BTreeSet<i32>> =
                BTreeMap::from([(a.clone(), BTreeSet::from([0, 1])), (b.clone(), BTreeSet::from([2, 3]))]);
            let mut generation: BTreeMap<String, i32> = BTreeMap::from([(a.clone(), 1), (b.clone(), 1)]);
            let c1 = g.heartbeat(join("c"), &topics, &cfg, at(7000)).unwrap();
            assert!(c1.member_epoch >= 2);
            assert_eq!(c1.assignment.map(|x| parts(&x)).unwrap_or(0), 0, "everything is still held");
            holding.insert("c".into(), BTreeSet::new());
            let mut t = 7000;
            let mut settled = false;
            for _ in 0..20 {
                t += 100;
                for (id, v) in [(&a, 1i16), (&b, 0)] {
                    let code = g.classic_heartbeat(id, None, generation[id], at(t));
                    if code == ErrorCode::None {
                        continue;
                    }
                    assert!(matches!(code, ErrorCode::RebalanceInProgress | ErrorCode::IllegalGeneration), "{code:?}");
                    // Eager (v0) members give up everything before rejoining.
                    let owned: Vec<i32> = if v == 0 { Vec::new() } else { holding[id].iter().copied().collect() };
                    if v == 0 {
                        holding.get_mut(id).unwrap().clear();
                    }
                    let j = g.classic_join(&classic_req(id, sub(v, &owned)), &topics, &cfg, at(t));
                    assert_eq!((j.error, j.leader.as_str(), j.members.len()), (ErrorCode::None, "", 0));
                    let s = g.classic_sync(id, None, j.generation, Some("consumer"), None, &topics, at(t));
                    if s.error == ErrorCode::RebalanceInProgress {
                        continue;
                    }
                    assert_eq!(s.error, ErrorCode::None);
                    generation.insert(id.clone(), j.generation);
                    holding.insert(id.clone(), held(&s.assignment));
                }
                let owned_c: Assignment = BTreeMap::from([(T, holding["c"].clone())]);
                let r = g.heartbeat(beat("c", g.members["c"].epoch, &owned_c), &topics, &cfg, at(t)).unwrap();
                if let Some(x) = r.assignment {
                    holding.insert("c".into(), x.get(&T).cloned().unwrap_or_default());
                }
                // The invariant: no partition is held by two clients at any moment.
                let all: Vec<i32> = holding.values().flatten().copied().collect();
                let distinct: BTreeSet<i32> = all.iter().copied().collect();
                assert_eq!(all.len(), distinct.len(), "two owners at {t} ms: {holding:?}");
                if distinct.len() == 4 && holding.values().all(|h| !h.is_empty()) && g.state_name() == "Stable" {
                    settled = true;
                    break;
                }
            }
            assert!(settled, "{holding:?} {}", g.state_name());
            // The classic members' commits are checked against their generation.
            assert_eq!(g.validate_commit(&a, generation[&a]), ErrorCode::None);
            assert_eq!(g.validate_commit(&a, generation[&a] - 1), ErrorCode::IllegalGeneration);

            // The KIP-848 member leaves: only classic members remain, so the group may turn
            // classic, each member keeping its target assignment, and rebalances.
            g.heartbeat(HeartbeatRequest { member_epoch: -1, ..join("c") }, &topics, &cfg, at(t + 100)).unwrap();
            assert!(g.should_downgrade(&cfg));
            let upgrade_only = GroupConfig { migration_policy: super::super::super::MigrationPolicy::Upgrade, ..cfg };
            assert!(!g.should_downgrade(&upgrade_only));
            let members = g.downgraded_members(&topics);
            let (classic, out) =
                Group::from_consumer("g", g.group_epoch, members, g.offsets.clone(), &cfg.limits, at(t + 100)).unwrap();
            assert_eq!(classic.state, State::PreparingRebalance);
            assert_eq!(classic.generation, g.group_epoch);
            assert_eq!(classic.protocol_name.as_deref(), Some("cooperative-sticky"));
            assert!(matches!(
                out.records.as_slice(),
                [crate::coordinator::group::log::LogRecord::Group { value: Some(_), .. }]
            ));
            for id in [&a, &b] {
                assert_eq!(held(&classic.members[id].assignment), g.target[id][&T]);
            }
            // B speaks v0: its assignment is encoded at v0.
            assert_eq!(&classic.members[&b].assignment[..2], &[0, 0]);
        }

        #[test]
        fn a_classic_member_that_does_not_sync_in_time_is_removed() {
            let topics = TopicsView::from_topics(&[("t", T, 4)]);
            let cfg = config();
            let mut g = ConsumerGroup::new("g", at(0));
            g.heartbeat(join("c"), &topics, &cfg, at(0)).unwrap();
            let j = g.classic_join(&classic_req("x", sub(1, &[])), &topics, &cfg, at(100));
            assert_eq!(j.error, ErrorCode::None);
            // The rebalance timeout is 30 s; the session (10 s) is kept alive by heartbeats.
            for t in (1_000..30_100).step_by(5_000) {
                g.classic_heartbeat("x", None, j.generation, at(t));
                g.heartbeat(beat("c", g.members["c"].epoch, &g.members["c"].assigned.clone()), &topics, &cfg, at(t))
                    .unwrap();
                g.tick(at(t), &cfg);
            }
            assert!(g.members.contains_key("x"));
            g.tick(at(30_100), &cfg);
            assert!(!g.members.contains_key("x"), "no SyncGroup within the rebalance timeout");
        }

        #[test]
        fn classic_requests_are_validated_as_kafka_does() {
            let topics = TopicsView::from_topics(&[("t", T, 4)]);
            let cfg = config();
            let mut g = ConsumerGroup::new("g", at(0));
            g.heartbeat(join("c"), &topics, &cfg, at(0)).unwrap();
            let mut v4 = classic_req("", sub(1, &[]));
            v4.require_known_member_id = true;
            let r = g.classic_join(&v4, &topics, &cfg, at(1));
            assert_eq!(r.error, ErrorCode::MemberIdRequired);
            assert!(!r.member_id.is_empty() && !g.members.contains_key(&r.member_id));
            let mut other = classic_req("y", sub(1, &[]));
            other.protocol_type = "connect".into();
            assert_eq!(g.classic_join(&other, &topics, &cfg, at(1)).error, ErrorCode::InconsistentGroupProtocol);
            let mut garbage = classic_req("y", Bytes::from_static(&[0, 1, 0, 0]));
            garbage.protocols[0].1 = Bytes::from_static(&[0, 1, 0, 0]);
            assert_eq!(g.classic_join(&garbage, &topics, &cfg, at(1)).error, ErrorCode::InconsistentGroupProtocol);
            let j = g.classic_join(&classic_req("y", sub(1, &[])), &topics, &cfg, at(1));
            assert_eq!(j.error, ErrorCode::None);
            // Once a classic member is in, others must share one of its protocols.
            let mut range = classic_req("z", sub(1, &[]));
            range.protocols[0].0 = "range".into();
            assert_eq!(g.classic_join(&range, &topics, &cfg, at(2)).error, ErrorCode::InconsistentGroupProtocol);
            let sync = |g: &mut ConsumerGroup, gen, name| g.classic_sync("y", None, gen, None, name, &topics, at(3));
            assert_eq!(sync(&mut g, j.generation + 1, None).error, ErrorCode::IllegalGeneration);
            assert_eq!(sync(&mut g, j.generation, Some("range")).error, ErrorCode::InconsistentGroupProtocol);
            assert_eq!(sync(&mut g, j.generation, Some("cooperative-sticky")).error, ErrorCode::None);
            assert_eq!(g.classic_heartbeat("nobody", None, 1, at(4)), ErrorCode::UnknownMemberId);
            // A consumer-protocol member is not reachable through the classic APIs.
            assert_eq!(g.classic_heartbeat("c", None, g.members["c"].epoch, at(4)), ErrorCode::UnknownMemberId);
            assert_eq!(g.classic_leave("y", None, at(5)), ErrorCode::None);
            assert!(!g.members.contains_key("y"));
            // A malformed classic group refuses the upgrade rather than guessing.
            let (mut classic, a, _) = classic_pair();
            classic.members.get_mut(&a).unwrap().assignment = Bytes::from_static(&[0, 1, 0, 0, 0, 9]);
            assert!(ConsumerGroup::from_classic(&classic, &topics, at(0)).is_err());
        }
    }
}
