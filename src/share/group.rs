//! Pure state machines behind KIP-932 share groups: [`ShareGroup`] is one group's membership as
//! the group coordinator sees it (ShareGroupHeartbeat, API 76 v1), and [`ShareSessions`] is a
//! broker's cache of share sessions (the session epochs of ShareFetch 78 and ShareAcknowledge 79).
//!
//! Nothing here does I/O or reads a clock: the caller passes `now_ms`, and hands the group a
//! snapshot of topic metadata on every heartbeat, so assignments follow topic creation, deletion
//! and partition growth without this module watching anything. Member ids, epochs, topic names
//! and partition lists come from the network: every path answers them with a [`GroupError`] or
//! ignores them, and none panics.
//!
//! Records a departed member still holds are not this module's business, but it says who
//! departed: [`ShareGroup::take_departed`], [`SessionView::closed`] and
//! [`ShareSessions::take_evicted`] tell the caller whose acquired records to release.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::error::ErrorCode;

/// A topic id (Kafka's 16-byte UUID).
pub type TopicId = [u8; 16];
/// A topic metadata snapshot: topic name → (topic id, partition count).
pub type Topics = BTreeMap<String, (TopicId, i32)>;
/// A member's partitions: topic id → partition indexes, ascending and distinct.
pub type Assignment = BTreeMap<TopicId, Vec<i32>>;
/// One share-partition of a share session: (topic id, partition index).
pub type TopicPartition = (TopicId, i32);

/// Member epoch of a ShareGroupHeartbeat that joins, or rejoins, the group.
pub const JOIN_EPOCH: i32 = 0;
/// Member epoch of a ShareGroupHeartbeat that leaves the group, and of the answer to it.
pub const LEAVE_EPOCH: i32 = -1;
/// Share session epoch that opens a session (ShareFetch only).
pub const INITIAL_SESSION_EPOCH: i32 = 0;
/// Share session epoch that closes a session.
pub const FINAL_SESSION_EPOCH: i32 = -1;
/// The only assignor, named as ShareGroupDescribe reports it.
pub const ASSIGNOR_NAME: &str = "simple";
/// Kafka's default `group.share.max.share.sessions` (per broker).
pub const DEFAULT_MAX_SHARE_SESSIONS: usize = 2000;

/// Why a request was refused. [`GroupError::code`] is the Kafka error code to answer with and
/// [`GroupError::message`] the error message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupError {
    /// UNKNOWN_MEMBER_ID: no such member (it left, expired or never joined); the client rejoins.
    UnknownMemberId(String),
    /// FENCED_MEMBER_EPOCH: neither the member's current nor its previous epoch; it must rejoin.
    FencedMemberEpoch(String),
    /// INVALID_REQUEST: the request is malformed.
    InvalidRequest(String),
    /// GROUP_MAX_SIZE_REACHED: admitting a new member would exceed `group.share.max.size`.
    GroupMaxSizeReached(String),
    /// SHARE_SESSION_NOT_FOUND: no share session exists for (group, member).
    ShareSessionNotFound(String),
    /// INVALID_SHARE_SESSION_EPOCH: the session epoch is not the one the session expects.
    InvalidShareSessionEpoch(String),
    /// SHARE_SESSION_LIMIT_REACHED: the cache is full and no session is idle enough to evict.
    ShareSessionLimitReached(String),
}

impl GroupError {
    /// The Kafka error code to answer with.
    pub fn error_code(&self) -> ErrorCode {
        self.parts().0
    }

    /// The error code's number on the wire.
    pub fn code(&self) -> i16 {
        self.parts().0.code()
    }

    /// Human-readable reason, for the response's error message and for logs.
    pub fn message(&self) -> &str {
        self.parts().1
    }

    fn parts(&self) -> (ErrorCode, &str) {
        match self {
            GroupError::UnknownMemberId(m) => (ErrorCode::UnknownMemberId, m),
            GroupError::InvalidRequest(m) => (ErrorCode::InvalidRequest, m),
            GroupError::GroupMaxSizeReached(m) => (ErrorCode::GroupMaxSizeReached, m),
            GroupError::FencedMemberEpoch(m) => (ErrorCode::FencedMemberEpoch, m),
            GroupError::ShareSessionNotFound(m) => (ErrorCode::ShareSessionNotFound, m),
            GroupError::InvalidShareSessionEpoch(m) => (ErrorCode::InvalidShareSessionEpoch, m),
            GroupError::ShareSessionLimitReached(m) => (ErrorCode::ShareSessionLimitReached, m),
        }
    }
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (error code {})", self.message(), self.code())
    }
}

impl std::error::Error for GroupError {}

/// The epoch after `epoch`. Group, member and session epochs only ever grow, so one past
/// `i32::MAX` wraps to 1 (as Kafka's share session epochs do) rather than overflowing into the
/// reserved values 0 (join / open) and -1 (leave / close).
fn next_epoch(epoch: i32) -> i32 {
    if (1..i32::MAX).contains(&epoch) {
        epoch + 1
    } else {
        1
    }
}

/// Share group tunables (Kafka's broker-level `group.share.*` configs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShareGroupConfig {
    /// `group.share.heartbeat.interval.ms`: how often members are told to heartbeat.
    pub heartbeat_interval_ms: i32,
    /// `group.share.session.timeout.ms`: a member silent for longer is removed by [`ShareGroup::expire`].
    pub session_timeout_ms: i32,
    /// `group.share.max.size`: the most members one group admits.
    pub max_size: usize,
}

impl Default for ShareGroupConfig {
    /// Kafka's defaults: 5 s heartbeats, 45 s session timeout, 200 members.
    fn default() -> Self {
        ShareGroupConfig { heartbeat_interval_ms: 5000, session_timeout_ms: 45_000, max_size: 200 }
    }
}

impl ShareGroupConfig {
    /// Nonsense values would expire every member at once or admit nobody; Kafka's config
    /// validation forbids them, so they are raised to the smallest meaningful value.
    fn sanitized(self) -> Self {
        ShareGroupConfig {
            heartbeat_interval_ms: self.heartbeat_interval_ms.max(1),
            session_timeout_ms: self.session_timeout_ms.max(1),
            max_size: self.max_size.max(1),
        }
    }
}

/// A decoded ShareGroupHeartbeat request, plus the connection facts Kafka records per member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// The member id; since v1 the client generates it (a UUID string) and keeps it for life.
    pub member_id: String,
    /// 0 to join or rejoin, -1 to leave, otherwise the member's current (or previous) epoch.
    pub member_epoch: i32,
    /// The client's rack; `None` means unchanged.
    pub rack_id: Option<String>,
    /// The subscription; `None` means unchanged. Required, and non-empty, on join.
    pub subscribed_topic_names: Option<Vec<String>>,
    /// The request header's client id.
    pub client_id: String,
    /// The client's address, as ShareGroupDescribe reports it.
    pub client_host: String,
}

/// The success answer to a ShareGroupHeartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatAnswer {
    /// The member id, echoed.
    pub member_id: String,
    /// The member's epoch from now on; -1 after a leave.
    pub member_epoch: i32,
    /// When to heartbeat next.
    pub heartbeat_interval_ms: i32,
    /// The member's whole assignment, present on join and whenever it differs from the last one
    /// sent to this member; `None` means "keep what you have".
    pub assignment: Option<Assignment>,
}

/// A group as ShareGroupDescribe reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDescription {
    /// "Empty" without members, "Stable" otherwise: share groups have no rebalancing states.
    pub state: &'static str,
    /// Bumped by every membership, subscription or subscribed-metadata change.
    pub group_epoch: i32,
    /// Group epoch the target assignment was computed at; it lags `group_epoch` only between a
    /// member's expiry and the next heartbeat, which recomputes the assignment.
    pub assignment_epoch: i32,
    /// Always [`ASSIGNOR_NAME`].
    pub assignor_name: &'static str,
    /// Members ordered by id.
    pub members: Vec<MemberDescription>,
}

/// One member as ShareGroupDescribe reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDescription {
    /// The member id.
    pub member_id: String,
    /// The rack the client declared, if any.
    pub rack_id: Option<String>,
    /// The member's epoch.
    pub member_epoch: i32,
    /// The client id of its last heartbeat.
    pub client_id: String,
    /// The client address of its last heartbeat.
    pub client_host: String,
    /// The subscription, sorted and without duplicates.
    pub subscribed_topic_names: Vec<String>,
    /// The assignment last sent to the member.
    pub assignment: Assignment,
}

/// One member's state inside the coordinator; a new member starts at epoch 0.
#[derive(Clone, Debug, Default)]
struct Member {
    epoch: i32,
    /// Also accepted in heartbeats: the answer that moved the member to `epoch` may be lost.
    /// Its initial 0 is harmless: epoch 0 always means a join and never reaches the check.
    previous_epoch: i32,
    rack_id: Option<String>,
    client_id: String,
    client_host: String,
    subscribed: BTreeSet<String>,
    /// The assignment last sent to the member, i.e. what it believes it owns.
    assigned: Assignment,
    last_heartbeat_ms: i64,
}

/// Membership and target assignment of one share group.
#[derive(Clone, Debug, Default)]
pub struct ShareGroup {
    config: ShareGroupConfig,
    group_epoch: i32,
    assignment_epoch: i32,
    members: BTreeMap<String, Member>,
    /// Target assignment per member, computed at `assignment_epoch`.
    target: BTreeMap<String, Assignment>,
    /// Metadata of the subscribed topics that existed when `target` was computed. A difference
    /// from the current snapshot means a topic was created, deleted, recreated or grew.
    assigned_from: Topics,
    /// Members that left or expired since the last [`ShareGroup::take_departed`].
    departed: Vec<String>,
}

impl ShareGroup {
    /// An empty group at epoch 0 (Kafka creates the group on the first join).
    pub fn new(config: ShareGroupConfig) -> Self {
        ShareGroup { config: config.sanitized(), ..ShareGroup::default() }
    }

    /// Replaces the group's tunables (its group configs changed); members' deadlines follow
    /// the new session timeout from their next heartbeat or expiry check.
    pub fn set_config(&mut self, config: ShareGroupConfig) {
        self.config = config.sanitized();
    }

    /// Handles a ShareGroupHeartbeat: join (epoch 0), leave (-1) or stay (the current epoch).
    /// `topics` is the current metadata snapshot; any change to the subscribed topics in it bumps
    /// the group epoch, as does any membership or subscription change, and a bump recomputes the
    /// target assignment. Share groups have no revocation phase (a partition may be shared), so
    /// the heartbeating member moves straight to the group epoch and its new target.
    pub fn heartbeat(&mut self, req: Heartbeat, topics: &Topics, now_ms: i64) -> Result<HeartbeatAnswer, GroupError> {
        validate(&req)?;
        let Heartbeat { member_id, member_epoch, rack_id, subscribed_topic_names, client_id, client_host } = req;
        if member_epoch == LEAVE_EPOCH {
            return self.leave(member_id, topics);
        }
        let joining = member_epoch == JOIN_EPOCH;
        let mut changed = false;
        if joining && !self.members.contains_key(&member_id) {
            if self.members.len() >= self.config.max_size {
                let msg =
                    format!("The share group has reached its maximum capacity of {} members.", self.config.max_size);
                return Err(GroupError::GroupMaxSizeReached(msg));
            }
            self.members.insert(member_id.clone(), Member::default());
            changed = true;
        }
        let member = self.members.get_mut(&member_id).ok_or_else(|| unknown_member(&member_id))?;
        if !joining {
            check_member_epoch(member, &member_id, member_epoch)?;
        }
        // A rejoin with the same id keeps the member (Kafka does too): only a different
        // subscription changes the group, so a client restarting with its id causes no rebalance.
        if let Some(names) = subscribed_topic_names {
            let names: BTreeSet<String> = names.into_iter().collect();
            if names != member.subscribed {
                member.subscribed = names;
                changed = true;
            }
        }
        if rack_id.is_some() {
            member.rack_id = rack_id;
        }
        member.client_id = client_id;
        member.client_host = client_host;
        member.last_heartbeat_ms = now_ms;

        self.refresh(topics, changed);

        let target = self.target.get(&member_id).cloned().unwrap_or_default();
        let group_epoch = self.group_epoch;
        let member = self.members.get_mut(&member_id).ok_or_else(|| unknown_member(&member_id))?;
        if member.epoch != group_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = group_epoch;
        }
        let assignment = (joining || target != member.assigned).then(|| target.clone());
        member.assigned = target;
        Ok(HeartbeatAnswer {
            member_id,
            member_epoch: group_epoch,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            assignment,
        })
    }

    /// Removes members silent for longer than the session timeout, bumping the group epoch; the
    /// next heartbeat recomputes the assignment (it brings the metadata). Returns their ids,
    /// which also go to [`ShareGroup::take_departed`]: release records in one place only.
    pub fn expire(&mut self, now_ms: i64) -> Vec<String> {
        let timeout = i64::from(self.config.session_timeout_ms);
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| now_ms.saturating_sub(m.last_heartbeat_ms) > timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.remove(id);
        }
        expired
    }

    /// The earliest time at which [`ShareGroup::expire`] would remove a member, to schedule it.
    pub fn next_deadline(&self) -> Option<i64> {
        let timeout = i64::from(self.config.session_timeout_ms);
        self.members.values().map(|m| m.last_heartbeat_ms.saturating_add(timeout).saturating_add(1)).min()
    }

    /// Drains the ids of members that left or expired: the caller releases the records they had
    /// acquired and closes their share sessions ([`ShareSessions::remove_member`]).
    pub fn take_departed(&mut self) -> Vec<String> {
        std::mem::take(&mut self.departed)
    }

    /// Whether `member` was sent an assignment containing (topic, partition). Kafka's ShareFetch
    /// does not check this (the share-partition leader is not the group coordinator), so it is
    /// for callers that choose a stricter policy; it uses the assignment the member was last sent,
    /// because that is what a well-behaved client fetches from.
    pub fn is_assigned(&self, member: &str, topic_id: TopicId, partition: i32) -> bool {
        self.members
            .get(member)
            .and_then(|m| m.assigned.get(&topic_id))
            .is_some_and(|parts| parts.binary_search(&partition).is_ok())
    }

    /// The current group epoch.
    pub fn group_epoch(&self) -> i32 {
        self.group_epoch
    }

    /// Whether the group has no members (the caller may then forget it, or keep its epoch).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The group as ShareGroupDescribe reports it.
    pub fn describe(&self) -> GroupDescription {
        let members = self
            .members
            .iter()
            .map(|(id, m)| MemberDescription {
                member_id: id.clone(),
                rack_id: m.rack_id.clone(),
                member_epoch: m.epoch,
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                subscribed_topic_names: m.subscribed.iter().cloned().collect(),
                assignment: m.assigned.clone(),
            })
            .collect();
        GroupDescription {
            state: if self.members.is_empty() { "Empty" } else { "Stable" },
            group_epoch: self.group_epoch,
            assignment_epoch: self.assignment_epoch,
            assignor_name: ASSIGNOR_NAME,
            members,
        }
    }

    fn leave(&mut self, member_id: String, topics: &Topics) -> Result<HeartbeatAnswer, GroupError> {
        if !self.members.contains_key(&member_id) {
            return Err(unknown_member(&member_id));
        }
        self.remove(&member_id);
        self.refresh(topics, false);
        Ok(HeartbeatAnswer {
            member_id,
            member_epoch: LEAVE_EPOCH,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            assignment: None,
        })
    }

    /// Removes a member and bumps the group epoch. Recomputing the assignment needs metadata, so
    /// it waits for the next heartbeat, except that an empty group has nothing to compute.
    fn remove(&mut self, member_id: &str) {
        if self.members.remove(member_id).is_none() {
            return;
        }
        self.target.remove(member_id);
        self.departed.push(member_id.to_string());
        self.group_epoch = next_epoch(self.group_epoch);
        if self.members.is_empty() {
            self.target.clear();
            self.assigned_from.clear();
            self.assignment_epoch = self.group_epoch;
        }
    }

    /// Bumps the group epoch if membership changed or the subscribed topics' metadata differs
    /// from what the target was computed from, then recomputes the target if it is behind.
    fn refresh(&mut self, topics: &Topics, membership_changed: bool) {
        let names: BTreeSet<&String> = self.members.values().flat_map(|m| m.subscribed.iter()).collect();
        let current: Topics = names
            .into_iter()
            .filter_map(|n| topics.get(n).map(|&(id, count)| (n.clone(), (id, count.max(0)))))
            .collect();
        // A recomputation already pending (after an expiry) absorbs further changes: one bump.
        let pending = self.assignment_epoch != self.group_epoch;
        if !pending && (membership_changed || current != self.assigned_from) {
            self.group_epoch = next_epoch(self.group_epoch);
        }
        if self.assignment_epoch != self.group_epoch {
            self.target = simple_assign(&self.members, &current);
            self.assigned_from = current;
            self.assignment_epoch = self.group_epoch;
        }
    }
}

fn unknown_member(member_id: &str) -> GroupError {
    GroupError::UnknownMemberId(format!("Member {member_id} is not a member of the share group."))
}

/// The request checks Kafka makes before touching the group.
fn validate(req: &Heartbeat) -> Result<(), GroupError> {
    let invalid = |msg: &str| Err(GroupError::InvalidRequest(msg.to_string()));
    if req.member_id.is_empty() {
        return invalid("MemberId can't be empty.");
    }
    if req.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    if req.member_epoch == JOIN_EPOCH && req.subscribed_topic_names.as_ref().is_none_or(|names| names.is_empty()) {
        return invalid("SubscribedTopicNames must be set in first request.");
    }
    if req.member_epoch < LEAVE_EPOCH {
        return invalid("MemberEpoch is invalid.");
    }
    Ok(())
}

/// Accepts the member's current epoch, and its previous one because the answer carrying the
/// current one may have been lost (Kafka accepts it too, and answers with the current epoch).
fn check_member_epoch(member: &Member, member_id: &str, epoch: i32) -> Result<(), GroupError> {
    if epoch == member.epoch || epoch == member.previous_epoch {
        return Ok(());
    }
    let relation = if epoch > member.epoch { "greater" } else { "smaller" };
    Err(GroupError::FencedMemberEpoch(format!(
        "Member {member_id} has a {relation} member epoch ({epoch}) than the one known by the group coordinator ({}). \
         The member must abandon all its partitions and rejoin.",
        member.epoch
    )))
}

/// The simple assignor: for each subscribed topic that exists (in name order), the members
/// subscribed to it in id order deal its partitions round-robin. With `m` members and `p`
/// partitions there are `max(m, p)` deals: deal `k` gives partition `k % p` to member
/// `(start + k) % m`. So with `m <= p` every partition goes to exactly one member and member
/// loads differ by at most one; with `m > p` every member gets exactly one partition and every
/// partition is shared by `m / p` or `m / p + 1` members. `start` carries on from topic to topic
/// so that many small topics do not all land on the first member. Deterministic and stateless:
/// the same members and metadata always give the same assignment.
fn simple_assign(members: &BTreeMap<String, Member>, topics: &Topics) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members.keys().map(|id| (id.clone(), Assignment::new())).collect();
    let mut start = 0usize;
    for (name, &(topic_id, count)) in topics {
        let subscribers: Vec<&String> =
            members.iter().filter(|(_, m)| m.subscribed.contains(name)).map(|(id, _)| id).collect();
        let partitions = usize::try_from(count).unwrap_or(0);
        if subscribers.is_empty() || partitions == 0 {
            continue;
        }
        let deals = subscribers.len().max(partitions);
        for k in 0..deals {
            let member = subscribers[(start + k) % subscribers.len()];
            // Lossless: below `count`. A member's deals come in ascending `k`, one partition each
            // when `m > p`, so each list comes out ascending and distinct without sorting.
            let partition = (k % partitions) as i32;
            if let Some(assignment) = out.get_mut(member) {
                assignment.entry(topic_id).or_default().push(partition);
            }
        }
        start = (start + deals) % subscribers.len();
    }
    out
}

/// A share session after a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionView {
    /// The session's partitions, ascending; after a close, those it had when it closed.
    pub partitions: Vec<TopicPartition>,
    /// The request closed and removed the session: the caller releases the member's acquired
    /// records on `partitions` once the request's acknowledgements are applied.
    pub closed: bool,
}

/// A session removed without its member asking (evicted to make room), so that the caller can
/// release the member's acquired records on its partitions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedSession {
    /// The share group.
    pub group_id: String,
    /// The member that owned the session.
    pub member_id: String,
    /// The session's partitions, ascending.
    pub partitions: Vec<TopicPartition>,
}

#[derive(Clone, Debug)]
struct Session {
    /// The epoch the next ShareFetch or ShareAcknowledge must carry.
    next_epoch: i32,
    partitions: BTreeSet<TopicPartition>,
    last_used_ms: i64,
}

impl Session {
    fn view(&self, closed: bool) -> SessionView {
        SessionView { partitions: self.partitions.iter().copied().collect(), closed }
    }
}

/// A broker's share sessions, keyed by (group id, member id).
///
/// Kafka removes a share session when its client's connection closes and otherwise never evicts
/// one. This module knows no connections, so it evicts instead: opening a session in a full cache
/// evicts the least recently used session idle for at least `idle_ms`, and reports it through
/// [`ShareSessions::take_evicted`]. A good `idle_ms` is the group session timeout: a member idle
/// that long has been expired from its group anyway.
#[derive(Clone, Debug)]
pub struct ShareSessions {
    max_sessions: usize,
    idle_ms: i64,
    sessions: BTreeMap<(String, String), Session>,
    evicted: Vec<ClosedSession>,
}

impl ShareSessions {
    /// An empty cache holding at most `max_sessions` sessions (`group.share.max.share.sessions`,
    /// at least 1) and evicting sessions idle for `idle_ms` (at least 0) when full.
    pub fn new(max_sessions: usize, idle_ms: i64) -> Self {
        ShareSessions {
            max_sessions: max_sessions.max(1),
            idle_ms: idle_ms.max(0),
            sessions: BTreeMap::new(),
            evicted: Vec::new(),
        }
    }

    /// Applies a ShareFetch's session fields. Epoch 0 opens a session on `add`, replacing any
    /// session of the same member; the next epoch expected is 1. Epoch -1 closes the session (it
    /// may only acknowledge, so `add` must be empty). Any other epoch must equal the session's
    /// expected epoch: `add` joins the session, then `forget` leaves it. Negative partition
    /// indexes name no partition and are left out. The caller refuses acknowledgements in an
    /// epoch-0 request (Kafka answers INVALID_REQUEST) before calling this.
    pub fn fetch(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        add: &[TopicPartition],
        forget: &[TopicPartition],
        now_ms: i64,
    ) -> Result<SessionView, GroupError> {
        let key = (group.to_string(), member.to_string());
        let valid = |tps: &[TopicPartition]| tps.iter().copied().filter(|&(_, p)| p >= 0).collect::<Vec<_>>();
        match epoch {
            INITIAL_SESSION_EPOCH => {
                // Kafka drops the old session first, so a member reopening never needs a free slot.
                self.sessions.remove(&key);
                if self.sessions.len() >= self.max_sessions && !self.evict_one(now_ms) {
                    let msg = format!("The limit of {} share sessions has been reached.", self.max_sessions);
                    return Err(GroupError::ShareSessionLimitReached(msg));
                }
                let session = Session {
                    next_epoch: next_epoch(epoch),
                    partitions: valid(add).into_iter().collect(),
                    last_used_ms: now_ms,
                };
                let view = session.view(false);
                self.sessions.insert(key, session);
                Ok(view)
            }
            FINAL_SESSION_EPOCH => {
                if !add.is_empty() {
                    let msg = "A ShareFetch with the final session epoch may not fetch partitions.";
                    return Err(GroupError::InvalidRequest(msg.to_string()));
                }
                self.close(&key)
            }
            _ => {
                let session = self.advance(&key, epoch, now_ms)?;
                session.partitions.extend(valid(add));
                for tp in forget {
                    session.partitions.remove(tp);
                }
                Ok(session.view(false))
            }
        }
    }

    /// Applies a ShareAcknowledge's session fields: the same epoch rules as ShareFetch, without
    /// changing the partitions; epoch 0 is refused because acknowledging cannot open a session.
    pub fn acknowledge(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        now_ms: i64,
    ) -> Result<SessionView, GroupError> {
        let key = (group.to_string(), member.to_string());
        match epoch {
            INITIAL_SESSION_EPOCH => {
                let msg = "A ShareAcknowledge cannot carry the initial share session epoch 0.";
                Err(GroupError::InvalidShareSessionEpoch(msg.to_string()))
            }
            FINAL_SESSION_EPOCH => self.close(&key),
            _ => Ok(self.advance(&key, epoch, now_ms)?.view(false)),
        }
    }

    /// Removes the session of a member that left or expired; returns its partitions, if any.
    pub fn remove_member(&mut self, group: &str, member: &str) -> Option<Vec<TopicPartition>> {
        let session = self.sessions.remove(&(group.to_string(), member.to_string()))?;
        Some(session.partitions.into_iter().collect())
    }

    /// Drains the sessions evicted to make room for new ones.
    pub fn take_evicted(&mut self) -> Vec<ClosedSession> {
        std::mem::take(&mut self.evicted)
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Checks a continuing epoch and moves the session to the next one.
    fn advance(&mut self, key: &(String, String), epoch: i32, now_ms: i64) -> Result<&mut Session, GroupError> {
        let session = self.sessions.get_mut(key).ok_or_else(|| session_not_found(key))?;
        if epoch != session.next_epoch {
            return Err(GroupError::InvalidShareSessionEpoch(format!(
                "Share session of member {} in group {}: expected epoch {}, got {epoch}.",
                key.1, key.0, session.next_epoch
            )));
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        Ok(session)
    }

    fn close(&mut self, key: &(String, String)) -> Result<SessionView, GroupError> {
        let session = self.sessions.remove(key).ok_or_else(|| session_not_found(key))?;
        Ok(session.view(true))
    }

    /// Evicts the least recently used session idle for at least `idle_ms`, if there is one.
    fn evict_one(&mut self, now_ms: i64) -> bool {
        let victim = self
            .sessions
            .iter()
            .filter(|(_, s)| now_ms.saturating_sub(s.last_used_ms) >= self.idle_ms)
            .min_by_key(|(_, s)| s.last_used_ms)
            .map(|(key, _)| key.clone());
        let Some(key) = victim else { return false };
        if let Some(session) = self.sessions.remove(&key) {
            let ((group_id, member_id), partitions) = (key, session.partitions.into_iter().collect());
            self.evicted.push(ClosedSession { group_id, member_id, partitions });
        }
        true
    }
}

fn session_not_found(key: &(String, String)) -> GroupError {
    GroupError::ShareSessionNotFound(format!("No share session for member {} in group {}.", key.1, key.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOO: TopicId = [1; 16];
    const BAR: TopicId = [2; 16];

    fn topics(list: &[(&str, TopicId, i32)]) -> Topics {
        list.iter().map(|&(name, id, count)| (name.to_string(), (id, count))).collect()
    }

    fn hb(id: &str, epoch: i32, subs: Option<&[&str]>) -> Heartbeat {
        let subscribed_topic_names = subs.map(|s| s.iter().map(|n| n.to_string()).collect());
        let (client_id, client_host) = ("cli".into(), "/10.0.0.1".into());
        Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            subscribed_topic_names,
            client_id,
            client_host,
            rack_id: None,
        }
    }

    fn join(g: &mut ShareGroup, id: &str, subs: &[&str], t: &Topics) -> HeartbeatAnswer {
        g.heartbeat(hb(id, 0, Some(subs)), t, 0).unwrap()
    }

    /// Heartbeats at the member's current epoch without changing anything.
    fn beat(g: &mut ShareGroup, id: &str, t: &Topics, now: i64) -> HeartbeatAnswer {
        let epoch = g.describe().members.iter().find(|m| m.member_id == id).map_or(-2, |m| m.member_epoch);
        g.heartbeat(hb(id, epoch, None), t, now).unwrap()
    }

    /// Brings every member to the group epoch; returns each member's partitions of `topic`.
    fn settle(g: &mut ShareGroup, t: &Topics, topic: TopicId) -> BTreeMap<String, Vec<i32>> {
        for m in g.describe().members {
            beat(g, &m.member_id, t, 0);
        }
        let d = g.describe();
        assert!(d.members.iter().all(|m| m.member_epoch == d.group_epoch));
        d.members.into_iter().map(|m| (m.member_id, m.assignment.get(&topic).cloned().unwrap_or_default())).collect()
    }

    fn one(topic: TopicId, parts: &[i32]) -> Option<Assignment> {
        Some(BTreeMap::from([(topic, parts.to_vec())]))
    }

    #[test]
    fn simple_assignor_covers_every_partition_and_member() {
        for (members, partitions) in [(2, 5), (3, 3), (5, 2), (1, 1), (7, 3), (4, 9)] {
            let t = topics(&[("foo", FOO, partitions)]);
            let mut g = ShareGroup::default();
            for i in 0..members {
                join(&mut g, &format!("m{i}"), &["foo"], &t);
            }
            let got = settle(&mut g, &t, FOO);
            let mut sharers = vec![0; partitions as usize];
            got.values().flatten().for_each(|&p| sharers[p as usize] += 1);
            let (lo, hi) = (members / partitions, (members + partitions - 1) / partitions);
            assert!(sharers.iter().all(|&n| n >= lo.max(1) && n <= hi), "{got:?}");
            let (least, most) = (got.values().map(Vec::len).min(), got.values().map(Vec::len).max());
            assert!(least >= Some(1) && most <= least.map(|n| n + 1), "{got:?}");
        }
        // Fewer members than partitions: partition p goes to member p % m, in member id order.
        let t = topics(&[("foo", FOO, 5)]);
        let mut g = ShareGroup::default();
        join(&mut g, "a", &["foo"], &t);
        join(&mut g, "b", &["foo"], &t);
        let got = settle(&mut g, &t, FOO);
        assert_eq!((got["a"].as_slice(), got["b"].as_slice()), (&[0, 2, 4][..], &[1, 3][..]));
    }

    #[test]
    fn join_bumps_epoch_and_members_move_to_it_with_their_new_assignment() {
        let t = topics(&[("foo", FOO, 4)]);
        let mut g = ShareGroup::default();
        let a = join(&mut g, "a", &["foo"], &t);
        assert_eq!((a.member_epoch, a.heartbeat_interval_ms, a.assignment), (1, 5000, one(FOO, &[0, 1, 2, 3])));
        let b = join(&mut g, "b", &["foo"], &t);
        assert_eq!((b.member_epoch, b.assignment), (2, one(FOO, &[1, 3])));
        // No revocation phase: `a` moves straight from epoch 1 to 2 and its smaller share.
        let a = g.heartbeat(hb("a", 1, None), &t, 10).unwrap();
        assert_eq!((a.member_epoch, a.assignment), (2, one(FOO, &[0, 2])));
        // Unchanged assignments are not resent.
        assert_eq!((beat(&mut g, "a", &t, 20).assignment, beat(&mut g, "b", &t, 20).assignment), (None, None));
        assert_eq!(g.group_epoch(), 2);
    }

    #[test]
    fn leave_answers_minus_one_and_departed_drains() {
        let t = topics(&[("foo", FOO, 2)]);
        let mut g = ShareGroup::default();
        join(&mut g, "a", &["foo"], &t);
        join(&mut g, "b", &["foo"], &t);
        let left = g.heartbeat(hb("b", LEAVE_EPOCH, None), &t, 5).unwrap();
        assert_eq!((left.member_id.as_str(), left.member_epoch, left.assignment), ("b", -1, None));
        assert_eq!((g.take_departed(), g.take_departed()), (vec!["b".to_string()], vec![]));
        assert_eq!(g.group_epoch(), 3);
        // `a` never heard of `b`: its new target equals what it was last sent, so nothing is resent.
        let a = g.heartbeat(hb("a", 1, None), &t, 6).unwrap();
        assert_eq!((a.member_epoch, a.assignment), (3, None));
        assert_eq!(g.heartbeat(hb("b", LEAVE_EPOCH, None), &t, 7).unwrap_err().code(), 25);
    }

    #[test]
    fn subscription_changes_bump_and_none_keeps_it() {
        let t = topics(&[("foo", FOO, 1), ("bar", BAR, 2)]);
        let mut g = ShareGroup::default();
        join(&mut g, "a", &["foo"], &t);
        assert_eq!(g.heartbeat(hb("a", 1, None), &t, 1).unwrap().member_epoch, 1);
        assert_eq!(g.heartbeat(hb("a", 1, Some(&["foo", "foo"])), &t, 2).unwrap().member_epoch, 1);
        let a = g.heartbeat(hb("a", 1, Some(&["bar", "foo"])), &t, 3).unwrap();
        assert_eq!((a.member_epoch, a.assignment), (2, Some(BTreeMap::from([(FOO, vec![0]), (BAR, vec![0, 1])]))));
        let a = g.heartbeat(hb("a", 2, Some(&[])), &t, 4).unwrap();
        assert_eq!((a.member_epoch, a.assignment), (3, Some(Assignment::new())));
    }

    #[test]
    fn topic_creation_growth_deletion_and_recreation_bump() {
        let mut t = topics(&[("foo", FOO, 2)]);
        let mut g = ShareGroup::default();
        // `ghost` does not exist yet: the assignor ignores it.
        assert_eq!(join(&mut g, "a", &["foo", "ghost"], &t).assignment, one(FOO, &[0, 1]));
        t.insert("unrelated".into(), ([9; 16], 3));
        assert_eq!(beat(&mut g, "a", &t, 1).member_epoch, 1);
        t.insert("ghost".into(), (BAR, 1));
        let a = beat(&mut g, "a", &t, 2);
        assert_eq!((a.member_epoch, a.assignment), (2, Some(BTreeMap::from([(FOO, vec![0, 1]), (BAR, vec![0])]))));
        t.insert("foo".into(), (FOO, 3));
        let a = beat(&mut g, "a", &t, 3);
        assert_eq!((a.member_epoch, a.assignment), (3, Some(BTreeMap::from([(FOO, vec![0, 1, 2]), (BAR, vec![0])]))));
        t.remove("foo");
        let a = beat(&mut g, "a", &t, 4);
        assert_eq!((a.member_epoch, a.assignment), (4, one(BAR, &[0])));
        t.insert("ghost".into(), ([7; 16], 1));
        assert_eq!(beat(&mut g, "a", &t, 5).assignment, one([7; 16], &[0]));
        assert_eq!(beat(&mut g, "a", &t, 6).assignment, None);
    }

    #[test]
    fn unknown_members_and_fenced_epochs_are_refused() {
        let t = topics(&[("foo", FOO, 2)]);
        let mut g = ShareGroup::default();
        assert_eq!(g.heartbeat(hb("nobody", 3, None), &t, 0).unwrap_err().code(), 25);
        join(&mut g, "a", &["foo"], &t);
        join(&mut g, "b", &["foo"], &t);
        let err = g.heartbeat(hb("a", 7, None), &t, 0).unwrap_err();
        assert_eq!((err.code(), &err), (110, &GroupError::FencedMemberEpoch(err.message().into())));
        assert_eq!(g.heartbeat(hb("a", 1, None), &t, 0).unwrap().member_epoch, 2);
        // The previous epoch is still accepted: the answer carrying 2 may have been lost.
        assert_eq!(g.heartbeat(hb("a", 1, None), &t, 0).unwrap().member_epoch, 2);
        join(&mut g, "c", &["foo"], &t);
        assert_eq!(g.heartbeat(hb("a", 2, None), &t, 0).unwrap().member_epoch, 3);
        assert_eq!(g.heartbeat(hb("a", 1, None), &t, 0).unwrap_err().code(), 110);
    }

    #[test]
    fn malformed_heartbeats_are_invalid_requests() {
        let t = topics(&[("foo", FOO, 2)]);
        let mut g = ShareGroup::default();
        let mut empty_rack = hb("a", 0, Some(&["foo"]));
        empty_rack.rack_id = Some(String::new());
        for req in [hb("", 0, Some(&["foo"])), hb("a", 0, None), hb("a", 0, Some(&[])), hb("a", -2, None), empty_rack] {
            assert_eq!(g.heartbeat(req, &t, 0).unwrap_err().code(), 42);
        }
        assert!(g.is_empty() && g.group_epoch() == 0);
    }

    #[test]
    fn max_size_refuses_new_members_and_rejoins_keep_the_member() {
        let t = topics(&[("foo", FOO, 2), ("bar", BAR, 1)]);
        let mut g = ShareGroup::new(ShareGroupConfig { max_size: 2, ..ShareGroupConfig::default() });
        join(&mut g, "a", &["foo"], &t);
        join(&mut g, "b", &["foo"], &t);
        assert_eq!(g.heartbeat(hb("c", 0, Some(&["foo"])), &t, 0).unwrap_err().code(), 81);
        // Same id, same subscription: no bump, but the assignment is always sent on a join.
        let again = join(&mut g, "a", &["foo"], &t);
        assert_eq!((again.member_epoch, again.assignment), (2, one(FOO, &[0])));
        assert_eq!((join(&mut g, "a", &["bar"], &t).assignment, g.group_epoch()), (one(BAR, &[0]), 3));
        assert!(g.take_departed().is_empty());
    }

    #[test]
    fn silent_members_expire() {
        let t = topics(&[("foo", FOO, 2)]);
        let mut g = ShareGroup::default();
        join(&mut g, "a", &["foo"], &t);
        join(&mut g, "b", &["foo"], &t);
        beat(&mut g, "b", &t, 40_000);
        assert_eq!(g.next_deadline(), Some(45_001));
        assert!(g.expire(45_000).is_empty());
        assert_eq!((g.expire(45_001), g.take_departed()), (vec!["a".to_string()], vec!["a".to_string()]));
        let d = g.describe();
        assert_eq!((d.group_epoch, d.assignment_epoch), (3, 2));
        let b = beat(&mut g, "b", &t, 45_002);
        assert_eq!((b.member_epoch, b.assignment, g.describe().assignment_epoch), (3, one(FOO, &[0, 1]), 3));
        assert_eq!(g.expire(i64::MAX), vec!["b".to_string()]);
        let d = g.describe();
        assert_eq!((d.state, d.group_epoch, d.assignment_epoch, d.members.len()), ("Empty", 4, 4, 0));
        assert_eq!(g.next_deadline(), None);
    }

    #[test]
    fn describe_reports_state_epochs_and_members() {
        let t = topics(&[("foo", FOO, 1)]);
        let mut g = ShareGroup::default();
        let d = g.describe();
        assert_eq!((d.state, d.group_epoch, d.assignment_epoch, d.assignor_name), ("Empty", 0, 0, "simple"));
        let mut req = hb("a", 0, Some(&["foo", "ghost"]));
        req.rack_id = Some("r1".into());
        g.heartbeat(req, &t, 0).unwrap();
        let d = g.describe();
        assert_eq!((d.state, d.group_epoch, d.assignment_epoch, d.members.len()), ("Stable", 1, 1, 1));
        let m = &d.members[0];
        assert_eq!((m.member_id.as_str(), m.rack_id.as_deref(), m.member_epoch), ("a", Some("r1"), 1));
        assert_eq!((m.client_id.as_str(), m.client_host.as_str()), ("cli", "/10.0.0.1"));
        assert_eq!(
            (m.subscribed_topic_names.clone(), Some(m.assignment.clone())),
            (vec!["foo".into(), "ghost".into()], one(FOO, &[0]))
        );
    }

    #[test]
    fn is_assigned_follows_the_assignment_sent() {
        let t = topics(&[("foo", FOO, 2)]);
        let mut g = ShareGroup::default();
        join(&mut g, "a", &["foo"], &t);
        join(&mut g, "b", &["foo"], &t);
        assert!(g.is_assigned("a", FOO, 1), "a was not told yet");
        beat(&mut g, "a", &t, 1);
        assert!(g.is_assigned("a", FOO, 0) && !g.is_assigned("a", FOO, 1) && g.is_assigned("b", FOO, 1));
        assert!(!g.is_assigned("a", FOO, -1) && !g.is_assigned("a", BAR, 0) && !g.is_assigned("zed", FOO, 0));
    }

    #[test]
    fn hostile_heartbeats_never_panic() {
        let t = topics(&[("foo", FOO, -5), ("bar", BAR, 0), ("", [3; 16], 1)]);
        let mut g = ShareGroup::default();
        let a = join(&mut g, "ü\u{0}💥", &["foo", "foo", "", "bar"], &t);
        assert_eq!(a.assignment, one([3; 16], &[0]));
        for epoch in [i32::MAX, i32::MIN, -2, 2] {
            assert!(g.heartbeat(hb("ü\u{0}💥", epoch, None), &t, i64::MIN).is_err());
        }
        assert!(g.heartbeat(hb("x", i32::MAX, Some(&["foo"])), &t, i64::MAX).is_err());
        assert_eq!(g.expire(i64::MIN), Vec::<String>::new());
        assert_eq!((next_epoch(i32::MAX), next_epoch(0), next_epoch(41), next_epoch(-7)), (1, 1, 42, 1));
    }

    #[test]
    fn error_codes_match_kafka() {
        use GroupError::*;
        let m = || "m".to_string();
        let group = [UnknownMemberId(m()), InvalidRequest(m()), GroupMaxSizeReached(m()), FencedMemberEpoch(m())];
        let sessions = [ShareSessionNotFound(m()), InvalidShareSessionEpoch(m()), ShareSessionLimitReached(m())];
        assert_eq!((group.map(|e| e.code()), sessions.map(|e| e.code())), ([25, 42, 81, 110], [122, 123, 133]));
        assert_eq!(InvalidRequest("bad".into()).to_string(), "bad (error code 42)");
    }

    #[test]
    fn sessions_open_continue_add_forget_and_close() {
        let mut s = ShareSessions::new(DEFAULT_MAX_SHARE_SESSIONS, 1000);
        assert_eq!(s.fetch("g", "m", FINAL_SESSION_EPOCH, &[], &[], 0).unwrap_err().code(), 122);
        let v = s.fetch("g", "m", 0, &[(FOO, 1), (FOO, 0)], &[], 0).unwrap();
        assert_eq!(v, SessionView { partitions: vec![(FOO, 0), (FOO, 1)], closed: false });
        let v = s.fetch("g", "m", 1, &[(BAR, 0)], &[(FOO, 0), (BAR, 9)], 1).unwrap();
        assert_eq!(v.partitions, vec![(FOO, 1), (BAR, 0)]);
        assert_eq!(s.fetch("g", "m", 2, &[], &[], 2).unwrap().partitions, v.partitions);
        // The final epoch may only acknowledge.
        assert_eq!(s.fetch("g", "m", FINAL_SESSION_EPOCH, &[(FOO, 0)], &[], 3).unwrap_err().code(), 42);
        let closed = s.fetch("g", "m", FINAL_SESSION_EPOCH, &[], &[(FOO, 1)], 3).unwrap();
        assert_eq!(closed, SessionView { partitions: vec![(FOO, 1), (BAR, 0)], closed: true });
        assert!(s.is_empty());
        assert_eq!(s.fetch("g", "m", 3, &[], &[], 4).unwrap_err().code(), 122);
    }

    #[test]
    fn session_epochs_must_match() {
        let mut s = ShareSessions::new(10, 1000);
        assert_eq!(s.fetch("g", "m", 1, &[], &[], 0).unwrap_err().code(), 122);
        s.fetch("g", "m", 0, &[(FOO, 0)], &[], 0).unwrap();
        for wrong in [2, i32::MAX, i32::MIN, -2] {
            assert_eq!(s.fetch("g", "m", wrong, &[(BAR, 0)], &[], 0).unwrap_err().code(), 123);
        }
        s.fetch("g", "m", 1, &[], &[], 0).unwrap();
        assert_eq!(s.fetch("g", "m", 1, &[], &[], 0).unwrap_err().code(), 123);
        assert_eq!(s.fetch("other", "m", 2, &[], &[], 0).unwrap_err().code(), 122);
        assert_eq!(s.fetch("g", "m", 2, &[], &[], 0).unwrap().partitions, vec![(FOO, 0)]);
    }

    #[test]
    fn reopening_with_epoch_zero_replaces_the_session() {
        let mut s = ShareSessions::new(1, 1_000_000);
        s.fetch("g", "m", 0, &[(FOO, 0)], &[], 0).unwrap();
        s.fetch("g", "m", 1, &[], &[], 0).unwrap();
        assert_eq!(s.fetch("g", "m", 0, &[(BAR, 3)], &[], 1).unwrap().partitions, vec![(BAR, 3)]);
        assert_eq!(s.fetch("g", "m", 2, &[], &[], 2).unwrap_err().code(), 123);
        assert!(s.fetch("g", "m", 1, &[], &[], 2).is_ok());
        assert!(s.take_evicted().is_empty() && s.len() == 1);
    }

    #[test]
    fn full_cache_evicts_the_least_recently_used_idle_session() {
        let mut s = ShareSessions::new(2, 1000);
        s.fetch("g", "m1", 0, &[(FOO, 0)], &[], 0).unwrap();
        s.fetch("g", "m2", 0, &[], &[], 0).unwrap();
        s.fetch("g", "m2", 1, &[], &[], 600).unwrap();
        assert_eq!(s.fetch("g", "m3", 0, &[], &[], 999).unwrap_err().code(), 133);
        assert!(s.take_evicted().is_empty());
        s.fetch("g", "m3", 0, &[], &[], 1000).unwrap();
        let evicted = ClosedSession { group_id: "g".into(), member_id: "m1".into(), partitions: vec![(FOO, 0)] };
        assert_eq!(s.take_evicted(), vec![evicted]);
        assert_eq!(s.fetch("g", "m1", 1, &[], &[], 1001).unwrap_err().code(), 122);
        assert_eq!(s.fetch("g", "m4", 0, &[], &[], 1001).unwrap_err().code(), 133);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn share_acknowledge_epoch_rules() {
        let mut s = ShareSessions::new(10, 1000);
        assert_eq!(s.acknowledge("g", "m", 1, 0).unwrap_err().code(), 122);
        s.fetch("g", "m", 0, &[(FOO, 0)], &[], 0).unwrap();
        assert_eq!(s.acknowledge("g", "m", 0, 0).unwrap_err().code(), 123);
        assert_eq!(s.acknowledge("g", "m", 1, 0).unwrap().partitions, vec![(FOO, 0)]);
        assert_eq!(s.acknowledge("g", "m", 1, 0).unwrap_err().code(), 123);
        s.fetch("g", "m", 2, &[(FOO, 1)], &[], 0).unwrap();
        assert_eq!(s.acknowledge("g", "m", 3, 0).unwrap().partitions, vec![(FOO, 0), (FOO, 1)]);
        let closed = s.acknowledge("g", "m", FINAL_SESSION_EPOCH, 0).unwrap();
        assert_eq!(closed, SessionView { partitions: vec![(FOO, 0), (FOO, 1)], closed: true });
        assert_eq!(s.acknowledge("g", "m", FINAL_SESSION_EPOCH, 0).unwrap_err().code(), 122);
    }

    #[test]
    fn hostile_session_inputs_never_panic() {
        let mut s = ShareSessions::new(0, -5);
        let junk = [(FOO, -1), (FOO, i32::MIN), (FOO, 3), (FOO, 3), (FOO, i32::MAX)];
        let v = s.fetch("", "", 0, &junk, &junk, i64::MIN).unwrap();
        assert_eq!(v.partitions, vec![(FOO, 3), (FOO, i32::MAX)]);
        // One slot (0 is raised to 1), and every session is idle enough to evict.
        s.fetch("g", "m", 0, &junk, &[], i64::MAX).unwrap();
        assert_eq!(s.take_evicted().len(), 1);
        assert_eq!(s.fetch("g", "m", 1, &[], &junk, i64::MIN).unwrap().partitions, vec![]);
        assert_eq!((s.remove_member("g", "m"), s.remove_member("g", "m")), (Some(vec![]), None));
    }
}
