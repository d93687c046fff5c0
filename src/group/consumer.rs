//! The KIP-848 consumer-group protocol as a state machine.
//!
//! Members heartbeat with their subscription; the group epoch moves whenever membership,
//! subscriptions or the subscribed topics' partitions change, and a server-side assignor
//! computes the target assignment for that epoch. Each member converges on its target:
//! partitions it must give up are revoked first (its epoch stays until it confirms), and
//! partitions still owned by another member are handed over only once released, so no
//! partition ever has two owners in the same epoch.

use std::collections::{BTreeMap, BTreeSet};

use strom_protocol::Uuid;

use super::assignor::{self, Assignment, MemberSpec, ASSIGNORS};
use super::classic::{Group, Now};
use super::log::OffsetValue;
use super::GroupConfig;
use crate::cluster::Cluster;
use crate::error::ErrorCode;

/// The topics the assignor can see: name ↔ id and partition counts.
#[derive(Debug, Clone, Default)]
pub struct TopicsView {
    by_name: BTreeMap<String, (Uuid, i32)>,
    names: BTreeMap<Uuid, String>,
}

impl TopicsView {
    /// A snapshot of the cluster's non-internal topics.
    pub fn from_cluster(cluster: &Cluster) -> TopicsView {
        let mut v = TopicsView::default();
        for t in cluster.topics() {
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
}

impl ConsumerMember {
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
fn subscription_topics(meta: &bytes::Bytes) -> Vec<String> {
    let mut r = strom_protocol::Reader::new(meta.clone());
    let mut parse = || -> Result<Vec<String>, strom_protocol::DecodeError> {
        let _version = r.i16()?;
        let n = r.array_len(false)?.unwrap_or(0);
        (0..n).map(|_| r.string(false)).collect()
    };
    parse().unwrap_or_default()
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

    /// The earliest session or revocation deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        self.members.values().flat_map(|m| [Some(m.session_deadline), m.revocation_deadline]).flatten().min()
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
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| m.session_deadline <= now.mono || m.revocation_deadline.is_some_and(|d| d <= now.mono))
            .map(|m| m.id.clone())
            .collect();
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
            // Rejoining with epoch 0 (after a fence): start over from an empty assignment.
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
}
