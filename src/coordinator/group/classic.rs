//! The classic consumer-group protocol as a state machine (ADR 0004).
//!
//! Empty → PreparingRebalance → CompletingRebalance → Stable, and Dead once deleted.
//! Methods take the current time and return what the coordinator must do: records to
//! append to `__consumer_offsets` and replies for members whose JoinGroup or SyncGroup
//! requests are parked until the rebalance reaches them. Nothing here does I/O or reads a
//! clock, so tests drive it with explicit times.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;

use super::log::{GroupValue, LogRecord, MemberValue, OffsetValue};
use crate::error::ErrorCode;

/// Monotonic milliseconds (deadlines) and wall-clock milliseconds (persisted timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: u64,
    pub wall: i64,
}

pub use crate::config::group::Limits;

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    /// The name Kafka reports in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// A member of the group.
#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    awaiting_join: bool,
    awaiting_sync: bool,
    /// When the member is considered gone without a heartbeat.
    deadline: u64,
    /// Join order, for choosing a leader deterministically.
    joined_seq: u64,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }
}

/// A JoinGroup request as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: new members must first be given an id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

/// What a JoinGroup answers.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinResult {
    pub error: ErrorCode,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, instance id, metadata) — only for the leader.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    /// An error answer.
    pub fn error(error: ErrorCode, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// What a SyncGroup answers.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncResult {
    pub error: ErrorCode,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    /// An error answer.
    pub fn error(error: ErrorCode) -> SyncResult {
        SyncResult { error, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

/// A reply to a parked request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Join { member_id: String, result: JoinResult },
    Sync { member_id: String, result: SyncResult },
}

/// Side effects of a state change.
#[derive(Debug, Default)]
pub struct Outcome {
    pub records: Vec<LogRecord>,
    pub replies: Vec<Reply>,
}

/// How a JoinGroup or SyncGroup request is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Disposition<T> {
    /// Answer now.
    Now(T),
    /// The answer comes later as a [`Reply`] for this member id.
    Parked(String),
}

/// One classic group.
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with their expiry.
    pending: HashMap<String, u64>,
    /// group.instance.id → member id.
    statics: HashMap<String, String>,
    /// (topic, partition) → committed offset.
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
    /// When the join phase ends at the latest.
    rebalance_deadline: Option<u64>,
    /// Members of the current generation that have not sent SyncGroup yet, and when they
    /// are removed for it (Kafka's pending-sync timeout: the rebalance timeout).
    pending_sync: BTreeSet<String>,
    sync_deadline: Option<u64>,
    /// While the initial delay runs: how much longer it may be extended.
    initial_delay_budget: Option<u64>,
    joined_during_delay: bool,
    /// Wall-clock time of the last state change (persisted; drives offset retention).
    pub state_timestamp: i64,
    next_seq: u64,
    /// group.initial.rebalance.delay.ms, as of the last join.
    limits_initial_delay: u64,
}

fn random_suffix() -> String {
    let u = crate::metadata::random_uuid();
    let h: String = u.0.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

impl Group {
    /// A new, empty group.
    pub fn new(id: &str, now: Now) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            statics: HashMap::new(),
            offsets: BTreeMap::new(),
            rebalance_deadline: None,
            pending_sync: BTreeSet::new(),
            sync_deadline: None,
            initial_delay_budget: None,
            joined_during_delay: false,
            state_timestamp: now.wall,
            next_seq: 0,
            limits_initial_delay: 0,
        }
    }

    fn set_state(&mut self, state: State, now: Now) {
        self.state = state;
        self.state_timestamp = now.wall;
    }

    /// The earliest time at which [`Group::tick`] has work to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let members = self.members.values().filter(|m| !m.awaiting_join && !m.awaiting_sync).map(|m| m.deadline);
        members.chain(self.pending.values().copied()).chain(self.rebalance_deadline).chain(self.sync_deadline).min()
    }

    fn member_by_instance(&self, instance: &str) -> Option<&Member> {
        self.statics.get(instance).and_then(|id| self.members.get(id))
    }

    /// Static membership fencing: an instance id bound to a different member id.
    fn fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        instance_id.is_some_and(|i| self.statics.get(i).is_some_and(|m| m != member_id))
    }

    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(p, _)| self.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == p)))
    }

    /// The protocol every member supports that most members prefer.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().min_by_key(|m| m.joined_seq)?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(p, _)| p)
            .filter(|p| self.members.values().all(|m| m.protocols.iter().any(|(q, _)| q == *p)))
            .collect();
        let mut votes: HashMap<&String, usize> = HashMap::new();
        for m in self.members.values() {
            if let Some((p, _)) = m.protocols.iter().find(|(p, _)| candidates.contains(&p)) {
                *votes.entry(p).or_default() += 1;
            }
        }
        // Most votes wins; ties go to the oldest member's preference order.
        candidates
            .iter()
            .max_by_key(|p| {
                (votes.get(*p).copied().unwrap_or(0), std::cmp::Reverse(candidates.iter().position(|c| c == *p)))
            })
            .map(|p| (*p).clone())
    }

    fn join_result_for(&self, member_id: &str) -> JoinResult {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone();
        let members = if leader == member_id {
            let p = protocol.clone().unwrap_or_default();
            let mut ms: Vec<&Member> = self.members.values().collect();
            ms.sort_by_key(|m| m.joined_seq);
            ms.iter().map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&p))).collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: ErrorCode::None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: protocol,
            leader,
            member_id: member_id.to_string(),
            members,
        }
    }

    fn add_member(&mut self, id: String, req: &JoinRequest, now: Now) {
        if let Some(i) = &req.instance_id {
            self.statics.insert(i.clone(), id.clone());
        }
        self.next_seq += 1;
        let m = Member {
            id: id.clone(),
            instance_id: req.instance_id.clone(),
            client_id: req.client_id.clone(),
            client_host: req.client_host.clone(),
            session_timeout_ms: req.session_timeout_ms,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            protocol_type: req.protocol_type.clone(),
            protocols: req.protocols.clone(),
            assignment: Bytes::new(),
            awaiting_join: true,
            awaiting_sync: false,
            deadline: now.mono + req.session_timeout_ms.max(0) as u64,
            joined_seq: self.next_seq,
        };
        self.members.insert(id, m);
        if self.protocol_type.is_none() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if self.initial_delay_budget.is_some() {
            self.joined_during_delay = true;
        }
    }

    fn max_rebalance_timeout(&self) -> u64 {
        self.members.values().map(|m| m.rebalance_timeout_ms.max(m.session_timeout_ms).max(0) as u64).max().unwrap_or(0)
    }

    /// Moves to PreparingRebalance; parked syncs learn the generation is over.
    fn prepare_rebalance(&mut self, now: Now, out: &mut Outcome) {
        if self.state == State::PreparingRebalance {
            return;
        }
        self.pending_sync.clear();
        self.sync_deadline = None;
        for m in self.members.values_mut() {
            if m.awaiting_sync {
                m.awaiting_sync = false;
                m.deadline = now.mono + m.session_timeout_ms.max(0) as u64;
                out.replies.push(Reply::Sync {
                    member_id: m.id.clone(),
                    result: SyncResult::error(ErrorCode::RebalanceInProgress),
                });
            }
        }
        if self.state == State::Empty {
            // Kafka's initial delay: give the rest of a starting fleet a moment to join.
            self.rebalance_deadline = Some(now.mono + self.initial_delay());
            self.initial_delay_budget = Some(self.max_rebalance_timeout().saturating_sub(self.initial_delay()));
            self.joined_during_delay = false;
        } else {
            self.rebalance_deadline = Some(now.mono + self.max_rebalance_timeout());
            self.initial_delay_budget = None;
        }
        self.set_state(State::PreparingRebalance, now);
    }

    fn initial_delay(&self) -> u64 {
        self.limits_initial_delay
    }

    fn maybe_complete_join(&mut self, now: Now, out: &mut Outcome) {
        if self.state == State::PreparingRebalance
            && self.initial_delay_budget.is_none()
            && self.pending.is_empty()
            && self.members.values().all(|m| m.awaiting_join)
        {
            self.complete_join(now, out);
        }
    }

    fn complete_join(&mut self, now: Now, out: &mut Outcome) {
        self.rebalance_deadline = None;
        self.initial_delay_budget = None;
        // Members that did not rejoin in time are out.
        let gone: Vec<String> = self.members.values().filter(|m| !m.awaiting_join).map(|m| m.id.clone()).collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.pending.clear();
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.leader = None;
            self.set_state(State::Empty, now);
            out.records.push(self.metadata_record());
            return;
        }
        self.protocol_name = self.select_protocol();
        if self.leader.as_ref().is_none_or(|l| !self.members.contains_key(l)) {
            self.leader = self.members.values().min_by_key(|m| m.joined_seq).map(|m| m.id.clone());
        }
        self.set_state(State::CompletingRebalance, now);
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(now.mono + self.max_rebalance_timeout());
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.join_result_for(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.awaiting_join = false;
                m.deadline = now.mono + m.session_timeout_ms.max(0) as u64;
            }
            out.replies.push(Reply::Join { member_id: id, result });
        }
    }

    fn remove_member(&mut self, id: &str) -> Option<Member> {
        let m = self.members.remove(id)?;
        if let Some(i) = &m.instance_id {
            if self.statics.get(i).is_some_and(|x| x == id) {
                self.statics.remove(i);
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        self.pending_sync.remove(id);
        Some(m)
    }

    /// After members leave or expire: rebalance, finish the join phase, or go empty.
    fn after_removal(&mut self, now: Now, out: &mut Outcome) {
        match self.state {
            State::Stable | State::CompletingRebalance => {
                self.prepare_rebalance(now, out);
                self.maybe_complete_join(now, out);
            }
            State::PreparingRebalance => self.maybe_complete_join(now, out),
            State::Empty | State::Dead => {}
        }
    }

    /// The persisted form of the current generation.
    pub fn metadata_record(&self) -> LogRecord {
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.joined_seq);
        let protocol = self.protocol_name.clone().unwrap_or_default();
        LogRecord::Group {
            group: self.id.clone(),
            value: Some(GroupValue {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation: self.generation,
                protocol: self.protocol_name.clone(),
                leader: self.leader.clone(),
                current_state_timestamp: self.state_timestamp,
                members: members
                    .iter()
                    .map(|m| MemberValue {
                        member_id: m.id.clone(),
                        group_instance_id: m.instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        rebalance_timeout: m.rebalance_timeout_ms,
                        session_timeout: m.session_timeout_ms,
                        subscription: m.metadata_for(&protocol),
                        assignment: m.assignment.clone(),
                    })
                    .collect(),
            }),
        }
    }

    /// Handles a JoinGroup.
    pub fn join(&mut self, req: JoinRequest, limits: &Limits, now: Now) -> (Disposition<JoinResult>, Outcome) {
        self.limits_initial_delay = limits.initial_rebalance_delay_ms;
        let mut out = Outcome::default();
        let err = |e: ErrorCode| (Disposition::Now(JoinResult::error(e, &req.member_id)), Outcome::default());
        if req.session_timeout_ms < limits.min_session_timeout_ms
            || req.session_timeout_ms > limits.max_session_timeout_ms
        {
            return err(ErrorCode::InvalidSessionTimeout);
        }
        if self.state == State::Dead {
            return err(ErrorCode::CoordinatorNotAvailable);
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return err(ErrorCode::InconsistentGroupProtocol);
        }
        if req.member_id.is_empty() {
            // A static member coming back under a new member id takes over its old place.
            if let Some(instance) = req.instance_id.as_deref() {
                if let Some(old) = self.member_by_instance(instance).map(|m| m.id.clone()) {
                    let new_id = format!("{}-{}", req.client_id, random_suffix());
                    return self.replace_static_member(&old, new_id, req, now);
                }
            } else if req.require_known_member_id {
                let new_id = format!("{}-{}", req.client_id, random_suffix());
                self.pending.insert(new_id.clone(), now.mono + req.session_timeout_ms.max(0) as u64);
                return (Disposition::Now(JoinResult::error(ErrorCode::MemberIdRequired, &new_id)), out);
            }
            if self.members.len() >= limits.max_size {
                return err(ErrorCode::GroupMaxSizeReached);
            }
            let new_id = format!("{}-{}", req.client_id, random_suffix());
            self.add_member(new_id.clone(), &req, now);
            self.begin_or_continue_rebalance(now, &mut out);
            return (Disposition::Parked(new_id), out);
        }
        if self.pending.remove(&req.member_id).is_some() {
            if self.members.len() >= limits.max_size {
                return err(ErrorCode::GroupMaxSizeReached);
            }
            let id = req.member_id.clone();
            self.add_member(id.clone(), &req, now);
            self.begin_or_continue_rebalance(now, &mut out);
            return (Disposition::Parked(id), out);
        }
        if self.fenced(&req.member_id, req.instance_id.as_deref()) {
            return err(ErrorCode::FencedInstanceId);
        }
        let Some(m) = self.members.get_mut(&req.member_id) else {
            return err(ErrorCode::UnknownMemberId);
        };
        let changed = m.protocols != req.protocols;
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        // A follower rejoining with unchanged protocols gets the current generation back;
        // a change, or the leader rejoining a stable group, means a new rebalance.
        let rejoin_without_rebalance = !changed
            && match self.state {
                State::CompletingRebalance => true,
                State::Stable => self.leader.as_deref() != Some(req.member_id.as_str()),
                _ => false,
            };
        match self.state {
            State::PreparingRebalance => {
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.awaiting_join = true;
                }
                self.maybe_complete_join(now, &mut out);
                (Disposition::Parked(req.member_id), out)
            }
            State::CompletingRebalance | State::Stable if rejoin_without_rebalance => {
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.deadline = now.mono + m.session_timeout_ms.max(0) as u64;
                }
                (Disposition::Now(self.join_result_for(&req.member_id)), out)
            }
            _ => {
                if let Some(m) = self.members.get_mut(&req.member_id) {
                    m.awaiting_join = true;
                }
                self.prepare_rebalance(now, &mut out);
                self.maybe_complete_join(now, &mut out);
                (Disposition::Parked(req.member_id), out)
            }
        }
    }

    fn begin_or_continue_rebalance(&mut self, now: Now, out: &mut Outcome) {
        match self.state {
            State::PreparingRebalance => self.maybe_complete_join(now, out),
            _ => {
                self.prepare_rebalance(now, out);
                self.maybe_complete_join(now, out);
            }
        }
    }

    /// KIP-345: a static member that restarts keeps its assignment; in a stable group with
    /// unchanged protocols no rebalance happens at all.
    fn replace_static_member(
        &mut self,
        old: &str,
        new_id: String,
        req: JoinRequest,
        now: Now,
    ) -> (Disposition<JoinResult>, Outcome) {
        let mut out = Outcome::default();
        let Some(mut m) = self.members.remove(old) else {
            return (Disposition::Now(JoinResult::error(ErrorCode::UnknownMemberId, "")), out);
        };
        self.pending_sync.remove(old);
        if m.awaiting_join {
            out.replies.push(Reply::Join {
                member_id: old.to_string(),
                result: JoinResult::error(ErrorCode::FencedInstanceId, old),
            });
        }
        if m.awaiting_sync {
            out.replies.push(Reply::Sync {
                member_id: old.to_string(),
                result: SyncResult::error(ErrorCode::FencedInstanceId),
            });
        }
        let changed = m.protocols != req.protocols;
        m.id = new_id.clone();
        m.protocols = req.protocols.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.awaiting_sync = false;
        m.awaiting_join = false;
        m.deadline = now.mono + req.session_timeout_ms.max(0) as u64;
        if let Some(i) = &req.instance_id {
            self.statics.insert(i.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), m);
        if self.state == State::Stable && !changed {
            out.records.push(self.metadata_record());
            return (Disposition::Now(self.join_result_for(&new_id)), out);
        }
        if let Some(m) = self.members.get_mut(&new_id) {
            m.awaiting_join = true;
        }
        self.begin_or_continue_rebalance(now, &mut out);
        (Disposition::Parked(new_id), out)
    }

    /// Handles a SyncGroup.
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Now,
    ) -> (Disposition<SyncResult>, Outcome) {
        let mut out = Outcome::default();
        let err = |e| (Disposition::Now(SyncResult::error(e)), Outcome::default());
        if self.state == State::Dead {
            return err(ErrorCode::CoordinatorNotAvailable);
        }
        if self.fenced(member_id, instance_id) {
            return err(ErrorCode::FencedInstanceId);
        }
        if !self.members.contains_key(member_id) {
            return err(ErrorCode::UnknownMemberId);
        }
        if generation != self.generation {
            return err(ErrorCode::IllegalGeneration);
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol_name.as_deref())
        {
            return err(ErrorCode::InconsistentGroupProtocol);
        }
        if matches!(self.state, State::CompletingRebalance | State::Stable) {
            self.pending_sync.remove(member_id);
            if self.pending_sync.is_empty() {
                self.sync_deadline = None;
            }
        }
        match self.state {
            State::Empty => err(ErrorCode::UnknownMemberId),
            State::PreparingRebalance => err(ErrorCode::RebalanceInProgress),
            State::Stable => {
                let assignment = self.members.get(member_id).map(|m| m.assignment.clone()).unwrap_or_default();
                (Disposition::Now(self.sync_ok(assignment)), out)
            }
            State::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.awaiting_sync = true;
                    m.deadline = now.mono + m.session_timeout_ms.max(0) as u64;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.set_state(State::Stable, now);
                    out.records.push(self.metadata_record());
                    let waiting: Vec<(String, Bytes)> = self
                        .members
                        .values()
                        .filter(|m| m.awaiting_sync)
                        .map(|m| (m.id.clone(), m.assignment.clone()))
                        .collect();
                    for (id, assignment) in waiting {
                        if let Some(m) = self.members.get_mut(&id) {
                            m.awaiting_sync = false;
                            m.deadline = now.mono + m.session_timeout_ms.max(0) as u64;
                        }
                        out.replies.push(Reply::Sync { member_id: id, result: self.sync_ok(assignment) });
                    }
                }
                (Disposition::Parked(member_id.to_string()), out)
            }
            State::Dead => err(ErrorCode::CoordinatorNotAvailable),
        }
    }

    fn sync_ok(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: ErrorCode::None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// Handles a Heartbeat.
    pub fn heartbeat(&mut self, member_id: &str, instance_id: Option<&str>, generation: i32, now: Now) -> ErrorCode {
        if self.state == State::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        if self.fenced(member_id, instance_id) {
            return ErrorCode::FencedInstanceId;
        }
        let current = self.generation;
        let state = self.state;
        let Some(m) = self.members.get_mut(member_id) else {
            return ErrorCode::UnknownMemberId;
        };
        if generation != current {
            return ErrorCode::IllegalGeneration;
        }
        m.deadline = now.mono + m.session_timeout_ms.max(0) as u64;
        match state {
            State::PreparingRebalance => ErrorCode::RebalanceInProgress,
            State::Empty => ErrorCode::UnknownMemberId,
            _ => ErrorCode::None,
        }
    }

    /// Handles one member of a LeaveGroup; the caller collects per-member errors.
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Now, out: &mut Outcome) -> ErrorCode {
        let id = match instance_id {
            Some(i) => match self.member_by_instance(i) {
                None => return ErrorCode::UnknownMemberId,
                Some(m) if !member_id.is_empty() && m.id != member_id => return ErrorCode::FencedInstanceId,
                Some(m) => m.id.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            // As on expiry: the join phase may have been waiting for this id only.
            self.maybe_complete_join(now, out);
            return ErrorCode::None;
        }
        let Some(m) = self.remove_member(&id) else {
            return ErrorCode::UnknownMemberId;
        };
        if m.awaiting_join {
            out.replies.push(Reply::Join {
                member_id: id.clone(),
                result: JoinResult::error(ErrorCode::UnknownMemberId, &id),
            });
        }
        if m.awaiting_sync {
            out.replies
                .push(Reply::Sync { member_id: id.clone(), result: SyncResult::error(ErrorCode::UnknownMemberId) });
        }
        self.after_removal(now, out);
        ErrorCode::None
    }

    /// Expires members and pending ids, and ends join phases whose time is up.
    pub fn tick(&mut self, now: Now) -> Outcome {
        let mut out = Outcome::default();
        let pending = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now.mono);
        if self.pending.len() < pending {
            // Kafka's removePendingMemberAndUpdateClassicGroup: a MEMBER_ID_REQUIRED id that
            // was never used may be all the join phase was waiting for. Without this the
            // group sat in PreparingRebalance until the rebalance timeout (issue 20 item 6).
            self.maybe_complete_join(now, &mut out);
        }
        let expired: Vec<String> = self
            .members
            .values()
            // Kafka's hasSatisfiedHeartbeat: members awaiting their JoinGroup or SyncGroup
            // answer cannot heartbeat (the connection waits) and do not expire meanwhile.
            .filter(|m| !m.awaiting_join && !m.awaiting_sync && m.deadline <= now.mono)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            if let Some(m) = self.remove_member(&id) {
                if m.awaiting_sync {
                    out.replies.push(Reply::Sync {
                        member_id: id.clone(),
                        result: SyncResult::error(ErrorCode::UnknownMemberId),
                    });
                }
            }
            self.after_removal(now, &mut out);
        }
        if matches!(self.state, State::CompletingRebalance | State::Stable)
            && self.sync_deadline.is_some_and(|d| d <= now.mono)
        {
            // Kafka's expirePendingSync: members that did not send SyncGroup within the
            // rebalance timeout are removed, and the rest rebalance. Otherwise a leader that
            // heartbeats but never syncs would hold the followers forever.
            self.sync_deadline = None;
            let late: Vec<String> = std::mem::take(&mut self.pending_sync).into_iter().collect();
            if !late.is_empty() {
                tracing::info!(group = %self.id, members = ?late, "members did not sync within the rebalance timeout");
                for id in &late {
                    if let Some(m) = self.remove_member(id) {
                        if m.awaiting_sync {
                            out.replies.push(Reply::Sync {
                                member_id: id.clone(),
                                result: SyncResult::error(ErrorCode::UnknownMemberId),
                            });
                        }
                    }
                }
                self.after_removal(now, &mut out);
            }
        }
        if self.state == State::PreparingRebalance && self.rebalance_deadline.is_some_and(|d| d <= now.mono) {
            match self.initial_delay_budget {
                // More members arrived during the delay: wait a little longer, within budget.
                Some(budget) if self.joined_during_delay && budget > 0 => {
                    let step = self.initial_delay().min(budget);
                    self.initial_delay_budget = Some(budget - step);
                    self.joined_during_delay = false;
                    self.rebalance_deadline = Some(now.mono + step);
                }
                _ => self.complete_join(now, &mut out),
            }
        }
        out
    }

    /// Whether a commit from this member, at this generation, may be applied now.
    pub fn validate_commit(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> ErrorCode {
        if self.state == State::Dead {
            return ErrorCode::CoordinatorNotAvailable;
        }
        // Kafka's ClassicGroup.validateOffsetCommit: a negative generation while the group
        // is Empty comes from the admin client or a standalone (assign()) consumer and is
        // accepted whatever member id it carries — librdkafka ≥ 2.10 in KIP-848 mode sends
        // a client-generated id (KIP-1082) with epoch -1.
        if generation < 0 && self.state == State::Empty {
            return ErrorCode::None;
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            // validateMember: the instance id must map to this member id, which must exist.
            if let Some(i) = instance_id {
                match self.statics.get(i) {
                    None => return ErrorCode::UnknownMemberId,
                    Some(m) if m != member_id => return ErrorCode::FencedInstanceId,
                    Some(_) => {}
                }
            }
            if !self.members.contains_key(member_id) {
                return ErrorCode::UnknownMemberId;
            }
            if generation != self.generation {
                return ErrorCode::IllegalGeneration;
            }
        } else {
            // No member id and no generation (version 0 style) while the group has members.
            return ErrorCode::UnknownMemberId;
        }
        // Kafka refuses only while the new assignment is being handed out; during
        // PreparingRebalance members commit what they processed before rejoining (the
        // revocation commit every client makes), with their still-valid generation.
        match self.state {
            State::CompletingRebalance => ErrorCode::RebalanceInProgress,
            _ => ErrorCode::None,
        }
    }

    /// Answers every parked JoinGroup and SyncGroup with `error` (the group is being
    /// converted to a consumer group: Kafka's completeAllJoinFutures/completeAllSyncFutures
    /// with REBALANCE_IN_PROGRESS, so the members rejoin the converted group).
    pub fn abort_parked(&mut self, error: ErrorCode) -> Vec<Reply> {
        let mut replies = Vec::new();
        for m in self.members.values_mut() {
            if m.awaiting_join {
                m.awaiting_join = false;
                replies.push(Reply::Join { member_id: m.id.clone(), result: JoinResult::error(error, &m.id) });
            }
            if m.awaiting_sync {
                m.awaiting_sync = false;
                replies.push(Reply::Sync { member_id: m.id.clone(), result: SyncResult::error(error) });
            }
        }
        replies
    }

    /// Kafka's ClassicGroup.fromConsumerGroup (online downgrade): the classic members of a
    /// consumer group form a classic group at the group epoch, each keeping its target
    /// assignment (encoded at its protocol version); the generation is persisted and a
    /// rebalance starts at once, so the members rejoin. `None` when the members share no
    /// protocol.
    pub fn from_consumer(
        id: &str,
        generation: i32,
        members: Vec<super::consumer::Downgraded>,
        offsets: BTreeMap<(String, i32), OffsetValue>,
        limits: &Limits,
        now: Now,
    ) -> Option<(Group, Outcome)> {
        let mut g = Group::new(id, now);
        g.limits_initial_delay = limits.initial_rebalance_delay_ms;
        g.generation = generation;
        g.offsets = offsets;
        g.protocol_type = Some("consumer".into());
        let mut targets = HashMap::new();
        for d in members {
            if let Some(i) = &d.instance_id {
                g.statics.insert(i.clone(), d.id.clone());
            }
            g.next_seq += 1;
            targets.insert(d.id.clone(), d.target);
            g.members.insert(
                d.id.clone(),
                Member {
                    id: d.id,
                    instance_id: d.instance_id,
                    client_id: d.client_id,
                    client_host: d.client_host,
                    session_timeout_ms: d.session_timeout_ms,
                    rebalance_timeout_ms: d.rebalance_timeout_ms,
                    protocol_type: "consumer".into(),
                    protocols: d.protocols,
                    assignment: Bytes::new(),
                    awaiting_join: false,
                    awaiting_sync: false,
                    deadline: now.mono + d.session_timeout_ms.max(0) as u64,
                    joined_seq: g.next_seq,
                },
            );
        }
        let protocol = g.select_protocol()?;
        for m in g.members.values_mut() {
            let version = super::consumer::decode_subscription(&m.metadata_for(&protocol)).map_or(0, |s| s.version);
            m.assignment = super::consumer::encode_assignment(version, targets.get(&m.id).map_or(&[][..], |t| t));
        }
        g.protocol_name = Some(protocol);
        g.leader = g.members.values().min_by_key(|m| m.joined_seq).map(|m| m.id.clone());
        g.set_state(State::Stable, now);
        let mut out = Outcome::default();
        out.records.push(g.metadata_record());
        g.prepare_rebalance(now, &mut out);
        Some((g, out))
    }

    /// Applies a replayed or freshly appended record.
    pub fn apply(&mut self, record: &LogRecord, now: Now) {
        match record {
            LogRecord::Offset { topic, partition, value, .. } => match value {
                Some(v) => {
                    self.offsets.insert((topic.clone(), *partition), v.clone());
                }
                None => {
                    self.offsets.remove(&(topic.clone(), *partition));
                }
            },
            // Group type records are the coordinator's business (see `Coordinator::replay`).
            LogRecord::ConsumerGroup { .. } => {}
            LogRecord::Group { value: None, .. } => {
                self.members.clear();
                self.statics.clear();
                self.set_state(State::Dead, now);
            }
            LogRecord::Group { value: Some(g), .. } => {
                // Group records are only applied on replay: the latest one is the truth.
                self.members.clear();
                self.statics.clear();
                self.generation = g.generation;
                self.protocol_type = Some(g.protocol_type.clone()).filter(|t| !t.is_empty());
                self.protocol_name = g.protocol.clone();
                self.leader = g.leader.clone();
                self.state_timestamp = g.current_state_timestamp;
                for m in &g.members {
                    self.next_seq += 1;
                    if let Some(i) = &m.group_instance_id {
                        self.statics.insert(i.clone(), m.member_id.clone());
                    }
                    let proto = g.protocol.clone().unwrap_or_default();
                    self.members.insert(
                        m.member_id.clone(),
                        Member {
                            id: m.member_id.clone(),
                            instance_id: m.group_instance_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                            session_timeout_ms: m.session_timeout,
                            rebalance_timeout_ms: m.rebalance_timeout,
                            protocol_type: g.protocol_type.clone(),
                            protocols: vec![(proto, m.subscription.clone())],
                            assignment: m.assignment.clone(),
                            awaiting_join: false,
                            awaiting_sync: false,
                            deadline: now.mono + m.session_timeout.max(0) as u64,
                            joined_seq: self.next_seq,
                        },
                    );
                }
                self.state = if self.members.is_empty() { State::Empty } else { State::Stable };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        min_session_timeout_ms: 6000,
        max_session_timeout_ms: 1_800_000,
        initial_rebalance_delay_ms: 3000,
        max_size: 100,
    };

    fn at(mono: u64) -> Now {
        Now { mono, wall: 1_700_000_000_000 + mono as i64 }
    }

    fn req(member_id: &str, client: &str) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            instance_id: None,
            client_id: client.into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"meta"))],
            require_known_member_id: true,
        }
    }

    /// Runs the two-step join (MEMBER_ID_REQUIRED, then join with the id) and returns the id.
    fn join_parked(g: &mut Group, client: &str, now: Now) -> (String, Outcome) {
        let (first, _) = g.join(req("", client), &LIMITS, now);
        let Disposition::Now(r) = first else { panic!("first join must answer at once") };
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
        let (second, out) = g.join(req(&r.member_id, client), &LIMITS, now);
        assert_eq!(second, Disposition::Parked(r.member_id.clone()));
        (r.member_id, out)
    }

    fn joins(out: &Outcome) -> Vec<&JoinResult> {
        out.replies
            .iter()
            .filter_map(|r| if let Reply::Join { result, .. } = r { Some(result) } else { None })
            .collect()
    }

    fn syncs(out: &Outcome) -> Vec<(&String, &SyncResult)> {
        out.replies
            .iter()
            .filter_map(|r| if let Reply::Sync { member_id, result } = r { Some((member_id, result)) } else { None })
            .collect()
    }

    /// Brings a group with `n` members to Stable; returns their ids (leader first).
    fn stable_group(n: usize) -> (Group, Vec<String>) {
        let mut g = Group::new("g", at(0));
        let ids: Vec<String> = (0..n).map(|i| join_parked(&mut g, &format!("c{i}"), at(10)).0).collect();
        let mut out = g.tick(at(3010));
        if n > 1 {
            // Members joined during the initial delay, so it is extended once (as Kafka does).
            assert!(out.replies.is_empty());
            out = g.tick(at(6010));
        }
        assert_eq!(joins(&out).len(), n);
        assert_eq!(g.state, State::CompletingRebalance);
        let leader = g.leader.clone().unwrap();
        let assignments = ids.iter().map(|id| (id.clone(), Bytes::from(format!("asg-{id}")))).collect();
        let (d, out) = g.sync(&leader, None, g.generation, Some("consumer"), Some("range"), assignments, at(3020));
        assert_eq!(d, Disposition::Parked(leader.clone()));
        assert_eq!(g.state, State::Stable);
        assert!(matches!(out.records[0], LogRecord::Group { value: Some(_), .. }), "the generation is persisted");
        let mut ordered = vec![leader.clone()];
        ordered.extend(ids.into_iter().filter(|i| *i != leader));
        (g, ordered)
    }

    #[test]
    fn a_lone_member_is_assigned_after_the_initial_delay() {
        let mut g = Group::new("g", at(0));
        let (id, out) = join_parked(&mut g, "c", at(100));
        assert!(out.replies.is_empty(), "the join waits for the initial delay");
        assert_eq!(g.next_deadline(), Some(3100));
        assert!(g.tick(at(3099)).replies.is_empty());
        let out = g.tick(at(3100));
        let r = joins(&out)[0];
        assert_eq!((r.generation, r.leader.as_str(), r.members.len()), (1, id.as_str(), 1));
        assert_eq!(r.protocol_name.as_deref(), Some("range"));
        let (d, _) = g.sync(&id, None, 1, None, None, vec![(id.clone(), Bytes::from_static(b"all"))], at(3200));
        assert_eq!(d, Disposition::Parked(id.clone()));
        assert_eq!(g.heartbeat(&id, None, 1, at(3300)), ErrorCode::None);
    }

    #[test]
    fn three_members_each_get_their_own_assignment() {
        let (mut g, ids) = stable_group(3);
        for id in &ids[1..] {
            let (d, _) = g.sync(id, None, g.generation, None, None, vec![], at(6030));
            assert_eq!(
                d,
                Disposition::Now(SyncResult {
                    error: ErrorCode::None,
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some("range".into()),
                    assignment: Bytes::from(format!("asg-{id}")),
                })
            );
        }
    }

    #[test]
    fn followers_parked_in_sync_are_answered_when_the_leader_syncs() {
        let mut g = Group::new("g", at(0));
        let a = join_parked(&mut g, "a", at(0)).0;
        let b = join_parked(&mut g, "b", at(0)).0;
        g.tick(at(3000));
        g.tick(at(6000));
        let follower = if g.leader.as_deref() == Some(&a) { b.clone() } else { a.clone() };
        let leader = g.leader.clone().unwrap();
        let (d, out) = g.sync(&follower, None, 1, None, None, vec![], at(6001));
        assert_eq!(d, Disposition::Parked(follower.clone()));
        assert!(out.replies.is_empty());
        let (_, out) =
            g.sync(&leader, None, 1, None, None, vec![(follower.clone(), Bytes::from_static(b"x"))], at(6002));
        let s = syncs(&out);
        assert_eq!(s.len(), 2);
        assert!(s.iter().any(|(m, r)| **m == follower && r.assignment == Bytes::from_static(b"x")));
    }

    #[test]
    fn a_silent_member_expires_and_the_rest_rebalance() {
        let (mut g, ids) = stable_group(2);
        // Only ids[0] heartbeats; ids[1]'s 10 s session runs out.
        assert_eq!(g.heartbeat(&ids[0], None, 1, at(12_000)), ErrorCode::None);
        g.tick(at(16_020));
        assert!(!g.members.contains_key(&ids[1]));
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(g.heartbeat(&ids[0], None, 1, at(16_100)), ErrorCode::RebalanceInProgress);
        let (d, out) = g.join(req(&ids[0], "c0"), &LIMITS, at(16_200));
        assert_eq!(d, Disposition::Parked(ids[0].clone()));
        assert_eq!(joins(&out)[0].generation, 2, "the remaining member alone completes the join");
    }

    #[test]
    fn leaving_triggers_a_rebalance_that_completes_when_the_rest_rejoin() {
        let (mut g, ids) = stable_group(3);
        let mut out = Outcome::default();
        assert_eq!(g.leave(&ids[2], None, at(7000), &mut out), ErrorCode::None);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(g.leave("nobody", None, at(7000), &mut out), ErrorCode::UnknownMemberId);
        g.join(req(&ids[0], "c0"), &LIMITS, at(7100));
        let (_, out) = g.join(req(&ids[1], "c1"), &LIMITS, at(7200));
        let results = joins(&out);
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(|r| r.generation == 2));
    }

    #[test]
    fn a_commit_while_completing_a_rebalance_and_a_stale_generation_are_refused() {
        let (mut g, ids) = stable_group(2);
        assert_eq!(g.validate_commit(&ids[0], None, 1), ErrorCode::None);
        assert_eq!(g.validate_commit(&ids[0], None, 0), ErrorCode::IllegalGeneration);
        assert_eq!(g.validate_commit("ghost", None, 1), ErrorCode::UnknownMemberId);
        let mut out = Outcome::default();
        g.leave(&ids[1], None, at(7000), &mut out);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(g.validate_commit(&ids[0], None, 1), ErrorCode::None, "revocation commits are kept");
        // The remaining member rejoins: the group waits for its SyncGroup.
        g.join(req(&ids[0], "c"), &LIMITS, at(7001));
        assert_eq!(g.state, State::CompletingRebalance, "every member rejoined");
        assert_eq!(g.validate_commit(&ids[0], None, 2), ErrorCode::RebalanceInProgress);
        // A standalone (generation -1) commit is refused while the group has members.
        assert_eq!(g.validate_commit("", None, -1), ErrorCode::UnknownMemberId);
        assert_eq!(Group::new("h", at(0)).validate_commit("", None, -1), ErrorCode::None);
    }

    /// Kafka's `ClassicGroup.validateOffsetCommit`: a negative generation on an Empty group
    /// is a standalone commit, accepted whatever the member id (librdkafka ≥ 2.10 sends a
    /// client-generated one, KIP-1082) or instance id; once the group has members, the
    /// committer must be one of them.
    #[test]
    fn a_standalone_commit_is_accepted_on_an_empty_group_whatever_its_member_id() {
        let (mut g, ids) = stable_group(2);
        let mut out = Outcome::default();
        for id in &ids {
            g.leave(id, None, at(7000), &mut out);
        }
        assert_eq!(g.state, State::Empty);
        assert_eq!(g.validate_commit("", None, -1), ErrorCode::None);
        assert_eq!(g.validate_commit("rdkafka-5b1c-client-generated", None, -1), ErrorCode::None);
        assert_eq!(g.validate_commit(&ids[0], None, -1), ErrorCode::None, "a departed member's id too");
        assert_eq!(g.validate_commit("x", Some("instance"), -1), ErrorCode::None);
        // A non-negative generation on an empty group names a member that is not there.
        assert_eq!(g.validate_commit("x", None, 1), ErrorCode::UnknownMemberId);
        // With members, a negative generation does not bypass the membership check.
        let (g, ids) = stable_group(2);
        assert_eq!(g.validate_commit("rdkafka-5b1c-client-generated", None, -1), ErrorCode::UnknownMemberId);
        assert_eq!(g.validate_commit("", None, -1), ErrorCode::UnknownMemberId);
        assert_eq!(g.validate_commit(&ids[0], None, -1), ErrorCode::IllegalGeneration);
    }

    #[test]
    fn a_static_member_restarting_keeps_its_assignment_without_a_rebalance() {
        let mut g = Group::new("g", at(0));
        let mut r = req("", "c");
        r.instance_id = Some("instance-1".into());
        let (d, _) = g.join(r.clone(), &LIMITS, at(0));
        let Disposition::Parked(old) = d else { panic!("static members join without MEMBER_ID_REQUIRED") };
        g.tick(at(3000));
        g.sync(&old, Some("instance-1"), 1, None, None, vec![(old.clone(), Bytes::from_static(b"mine"))], at(3001));
        assert_eq!(g.state, State::Stable);
        // The process restarts: same instance id, no member id.
        let (d, out) = g.join(r, &LIMITS, at(5000));
        let Disposition::Now(res) = d else { panic!("no rebalance for an unchanged static member") };
        assert_eq!((res.error, res.generation), (ErrorCode::None, 1));
        assert_ne!(res.member_id, old);
        assert_eq!(g.state, State::Stable);
        assert_eq!(out.records.len(), 1, "the new member id is persisted");
        // The old incarnation is fenced.
        assert_eq!(g.heartbeat(&old, Some("instance-1"), 1, at(5001)), ErrorCode::FencedInstanceId);
        let (d, _) = g.sync(&res.member_id, Some("instance-1"), 1, None, None, vec![], at(5002));
        assert_eq!(
            d,
            Disposition::Now(SyncResult {
                error: ErrorCode::None,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                assignment: Bytes::from_static(b"mine"),
            })
        );
    }

    #[test]
    fn inconsistent_protocols_and_bad_session_timeouts_are_refused() {
        let (mut g, _) = stable_group(1);
        let mut r = req("", "x");
        r.protocols = vec![("roundrobin".into(), Bytes::new())];
        assert_eq!(
            g.join(r, &LIMITS, at(5000)).0,
            Disposition::Now(JoinResult::error(ErrorCode::InconsistentGroupProtocol, ""))
        );
        let mut r = req("", "x");
        r.session_timeout_ms = 10;
        assert_eq!(
            g.join(r, &LIMITS, at(5000)).0,
            Disposition::Now(JoinResult::error(ErrorCode::InvalidSessionTimeout, ""))
        );
    }

    #[test]
    fn the_persisted_generation_replays_into_an_equal_group() {
        let (g, ids) = stable_group(2);
        let record = g.metadata_record();
        let mut replayed = Group::new("g", at(0));
        replayed.apply(&record, at(10));
        assert_eq!(replayed.state, State::Stable);
        assert_eq!(replayed.generation, g.generation);
        assert_eq!(replayed.leader, g.leader);
        assert_eq!(replayed.members[&ids[1]].assignment, g.members[&ids[1]].assignment);
        // A later record without members wins.
        let mut empty = g.clone();
        let mut out = Outcome::default();
        for id in &ids {
            empty.leave(id, None, at(20), &mut out);
        }
        replayed.apply(&empty.metadata_record(), at(30));
        assert_eq!(replayed.state, State::Empty);
        assert!(replayed.members.is_empty());
    }

    /// A rebalance where every member has rejoined but one MEMBER_ID_REQUIRED id was handed
    /// out and never used (the client's answer was discarded, or it went away).
    fn waiting_only_for_a_pending_id() -> (Group, Vec<String>, String) {
        let (mut g, ids) = stable_group(2);
        let (first, _) = g.join(req("", "newcomer"), &LIMITS, at(7000));
        let Disposition::Now(r) = first else { panic!("MEMBER_ID_REQUIRED is answered at once") };
        assert_eq!(r.error, ErrorCode::MemberIdRequired);
        let mut changed = req(&ids[1], "c1");
        changed.protocols = vec![("range".into(), Bytes::from_static(b"new subscription"))];
        let (d, _) = g.join(changed, &LIMITS, at(7100));
        assert_eq!(d, Disposition::Parked(ids[1].clone()));
        let (_, out) = g.join(req(&ids[0], "c0"), &LIMITS, at(7200));
        assert!(out.replies.is_empty(), "the pending id holds the join phase, as in Kafka");
        assert_eq!(g.state, State::PreparingRebalance);
        (g, ids, r.member_id)
    }

    /// Kafka's removePendingMemberAndUpdateClassicGroup on session expiry of a pending id.
    #[test]
    fn an_unused_member_id_expiring_completes_the_join_phase_it_held_up() {
        let (mut g, ids, _) = waiting_only_for_a_pending_id();
        // The id was handed out at 7000 with a 10 s session timeout.
        assert_eq!(g.next_deadline(), Some(17_000));
        let out = g.tick(at(17_000));
        let results = joins(&out);
        assert_eq!(results.len(), 2, "both parked members are answered at the pending id's expiry");
        assert!(results.iter().all(|r| r.error == ErrorCode::None && r.generation == 2));
        assert_eq!(g.state, State::CompletingRebalance);
        assert_eq!(g.members.len(), ids.len());
    }

    /// The same when the pending id leaves with LeaveGroup.
    #[test]
    fn an_unused_member_id_leaving_completes_the_join_phase_it_held_up() {
        let (mut g, _, pending) = waiting_only_for_a_pending_id();
        let mut out = Outcome::default();
        assert_eq!(g.leave(&pending, None, at(7300), &mut out), ErrorCode::None);
        assert_eq!(joins(&out).len(), 2);
        assert_eq!(g.state, State::CompletingRebalance);
    }

    /// A generation being handed out: of `stable_group(3)`, ids[2] left, ids[0] (the
    /// leader) and ids[1] rejoined at 7200 ms; ids[1] waits in SyncGroup since 7300 ms.
    fn follower_waiting_for_the_leader() -> (Group, Vec<String>) {
        let (mut g, ids) = stable_group(3);
        let mut out = Outcome::default();
        g.leave(&ids[2], None, at(7000), &mut out);
        g.join(req(&ids[0], "c0"), &LIMITS, at(7100));
        let (_, out) = g.join(req(&ids[1], "c1"), &LIMITS, at(7200));
        assert_eq!(joins(&out).len(), 2);
        assert_eq!(g.state, State::CompletingRebalance);
        let (d, _) = g.sync(&ids[1], None, 2, None, None, vec![], at(7300));
        assert_eq!(d, Disposition::Parked(ids[1].clone()));
        (g, ids)
    }

    /// Kafka's ClassicGroupMember.hasSatisfiedHeartbeat: a member awaiting its SyncGroup
    /// answer cannot heartbeat (its connection waits) and is not expired for it.
    #[test]
    fn a_member_waiting_in_sync_group_outlives_its_session_timeout() {
        let (mut g, ids) = follower_waiting_for_the_leader();
        // The leader keeps heartbeating but takes 12 s to send its assignment.
        for t in [12_000, 16_000, 19_000] {
            assert_eq!(g.heartbeat(&ids[0], None, 2, at(t)), ErrorCode::None);
            let out = g.tick(at(t));
            assert!(out.replies.is_empty(), "nothing expires at {t} ms: {:?}", out.replies);
        }
        assert!(g.members.contains_key(&ids[1]), "10 s session, 12 s in SyncGroup");
        let given = vec![(ids[1].clone(), Bytes::from_static(b"late"))];
        let (_, out) = g.sync(&ids[0], None, 2, None, None, given, at(19_300));
        assert!(syncs(&out).iter().any(|(m, r)| **m == ids[1] && r.assignment == Bytes::from_static(b"late")));
        // From its answer on, the follower's session counts again.
        assert_eq!(g.members[&ids[1]].deadline, 29_300);
        assert_eq!(g.next_deadline(), Some(29_300));
    }

    /// Kafka's expirePendingSync: members that have not sent SyncGroup within the
    /// rebalance timeout are removed and the group rebalances; those waiting are told.
    #[test]
    fn members_that_never_send_sync_group_are_removed_after_the_rebalance_timeout() {
        let (mut g, ids) = follower_waiting_for_the_leader();
        // The leader heartbeats but never syncs; the rebalance timeout is 30 s.
        for t in (8_000..37_200).step_by(4_000) {
            assert_eq!(g.heartbeat(&ids[0], None, 2, at(t)), ErrorCode::None);
            assert!(g.tick(at(t)).replies.is_empty());
        }
        assert_eq!(g.next_deadline(), Some(37_200));
        let out = g.tick(at(37_200));
        assert!(!g.members.contains_key(&ids[0]), "the leader never synced");
        assert_eq!(syncs(&out), vec![(&ids[1], &SyncResult::error(ErrorCode::RebalanceInProgress))]);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(g.heartbeat(&ids[0], None, 2, at(37_300)), ErrorCode::UnknownMemberId);
        let (d, out) = g.join(req(&ids[1], "c1"), &LIMITS, at(37_400));
        assert_eq!(d, Disposition::Parked(ids[1].clone()));
        assert_eq!(joins(&out)[0].leader, ids[1], "the survivor leads generation 3");
    }

    /// Issue 20 item 6: a cooperative-sticky fleet driven through the state machine the way
    /// librdkafka drives it (tests/0113-cooperative_rebalance `u_multiple_subscription_changes`:
    /// 8 consumers, two 16-partition topics, a playbook of rapid subscribe() calls).
    mod cooperative {
        use std::collections::{BTreeMap, BTreeSet, VecDeque};

        use super::*;

        const TOPICS: [(&str, i32); 2] = [("t1", 16), ("t2", 16)];
        const SESSION_MS: i32 = 10_000;
        const REBALANCE_MS: i32 = 300_000;

        type Tp = (String, i32);
        type Assignments = Vec<(String, Bytes)>;

        #[derive(Debug, Clone, Copy, PartialEq)]
        enum Phase {
            /// Must send a JoinGroup at the next step.
            Idle,
            /// Got MEMBER_ID_REQUIRED; the retry goes out at the next step unless a
            /// subscribe() discards the response first (librdkafka: "discarding outdated
            /// request").
            IdRequired,
            Joining,
            Syncing,
            Stable,
        }

        #[derive(Debug)]
        struct Client {
            name: String,
            id: String,
            topics: Vec<String>,
            owned: BTreeSet<Tp>,
            generation: i32,
            phase: Phase,
            /// subscribe() was called while a request was in flight: rejoin once it ends.
            resubscribe: bool,
            next_heartbeat: u64,
        }

        fn encode_tps(tps: &BTreeSet<Tp>) -> String {
            tps.iter().map(|(t, p)| format!("{t}:{p}")).collect::<Vec<_>>().join(",")
        }

        fn decode_tps(s: &str) -> BTreeSet<Tp> {
            s.split(',')
                .filter(|x| !x.is_empty())
                .map(|x| {
                    let (t, p) = x.split_once(':').unwrap();
                    (t.to_string(), p.parse().unwrap())
                })
                .collect()
        }

        /// The subscription metadata: topics and owned partitions (ConsumerProtocol v1+).
        fn metadata(c: &Client) -> Bytes {
            Bytes::from(format!("{}|{}", c.topics.join(","), encode_tps(&c.owned)))
        }

        /// A cooperative-sticky assignor, as the leader runs it: balanced per topic, owners
        /// keep what fits their quota, and a partition another member still claims is
        /// withheld until that member has revoked it and rejoined.
        fn assign(members: &[(String, Option<String>, Bytes)]) -> Vec<(String, Bytes)> {
            let parsed: Vec<(String, Vec<String>, BTreeSet<Tp>)> = members
                .iter()
                .map(|(id, _, m)| {
                    let s = std::str::from_utf8(m).unwrap();
                    let (topics, owned) = s.split_once('|').unwrap();
                    let topics = topics.split(',').filter(|t| !t.is_empty()).map(String::from).collect();
                    (id.clone(), topics, decode_tps(owned))
                })
                .collect();
            let mut out: BTreeMap<String, BTreeSet<Tp>> =
                parsed.iter().map(|(id, ..)| (id.clone(), BTreeSet::new())).collect();
            for (topic, n) in TOPICS {
                let mut subs: Vec<&String> =
                    parsed.iter().filter(|(_, ts, _)| ts.iter().any(|t| t == topic)).map(|(id, ..)| id).collect();
                subs.sort();
                if subs.is_empty() {
                    continue;
                }
                let quota = |i: usize| n as usize / subs.len() + usize::from(i < n as usize % subs.len());
                let mut taken = BTreeSet::new();
                for (i, id) in subs.iter().enumerate() {
                    let owned = &parsed.iter().find(|(m, ..)| m == *id).unwrap().2;
                    for tp in owned.iter().filter(|(t, _)| t == topic).take(quota(i)) {
                        out.get_mut(*id).unwrap().insert(tp.clone());
                        taken.insert(tp.1);
                    }
                }
                let mut free = (0..n).filter(|p| !taken.contains(p));
                for (i, id) in subs.iter().enumerate() {
                    let have = out[*id].iter().filter(|(t, _)| t == topic).count();
                    for p in free.by_ref().take(quota(i).saturating_sub(have)) {
                        out.get_mut(*id).unwrap().insert((topic.to_string(), p));
                    }
                }
            }
            // Cooperative: nothing moves to a new owner in the generation that revokes it.
            for (id, tps) in out.iter_mut() {
                tps.retain(|tp| !parsed.iter().any(|(other, _, owned)| other != id && owned.contains(tp)));
            }
            out.into_iter().map(|(id, tps)| (id, Bytes::from(encode_tps(&tps)))).collect()
        }

        struct Sim {
            g: Group,
            clients: Vec<Client>,
            now: u64,
            replies: VecDeque<Reply>,
            /// Requests to send at the current instant: (client, sync assignments or join).
            work: VecDeque<(usize, Option<Assignments>)>,
        }

        impl Sim {
            fn new(n: usize) -> Sim {
                let clients = (0..n)
                    .map(|i| Client {
                        name: format!("C_{i}"),
                        id: String::new(),
                        topics: Vec::new(),
                        owned: BTreeSet::new(),
                        generation: -1,
                        phase: Phase::Stable,
                        resubscribe: false,
                        next_heartbeat: u64::MAX,
                    })
                    .collect();
                Sim { g: Group::new("0113u", at(0)), clients, now: 0, replies: VecDeque::new(), work: VecDeque::new() }
            }

            fn join(&mut self, i: usize) {
                let c = &mut self.clients[i];
                c.phase = Phase::Joining;
                let mut r = req(&c.id, &c.name);
                r.protocols = vec![("cooperative-sticky".into(), metadata(c))];
                r.session_timeout_ms = SESSION_MS;
                r.rebalance_timeout_ms = REBALANCE_MS;
                let (d, out) = self.g.join(r, &LIMITS, at(self.now));
                self.replies.extend(out.replies);
                match d {
                    Disposition::Now(res) => self.on_join(i, res),
                    Disposition::Parked(id) => self.clients[i].id = id,
                }
            }

            fn on_join(&mut self, i: usize, res: JoinResult) {
                let c = &mut self.clients[i];
                match res.error {
                    ErrorCode::MemberIdRequired => {
                        c.id = res.member_id;
                        c.phase = Phase::IdRequired;
                    }
                    ErrorCode::None if c.resubscribe => {
                        c.resubscribe = false;
                        c.phase = Phase::Idle;
                    }
                    ErrorCode::None => {
                        c.generation = res.generation;
                        c.phase = Phase::Syncing;
                        let assignments = if res.leader == c.id { assign(&res.members) } else { Vec::new() };
                        self.work.push_back((i, Some(assignments)));
                    }
                    ErrorCode::UnknownMemberId => {
                        c.id.clear();
                        c.phase = Phase::Idle;
                    }
                    _ => c.phase = Phase::Idle,
                }
            }

            fn sync(&mut self, i: usize, assignments: Vec<(String, Bytes)>) {
                let c = &self.clients[i];
                let (d, out) = self.g.sync(&c.id.clone(), None, c.generation, None, None, assignments, at(self.now));
                self.replies.extend(out.replies);
                if let Disposition::Now(res) = d {
                    self.on_sync(i, res);
                }
            }

            fn on_sync(&mut self, i: usize, res: SyncResult) {
                let now = self.now;
                let c = &mut self.clients[i];
                match res.error {
                    ErrorCode::None => {
                        let assigned = decode_tps(std::str::from_utf8(&res.assignment).unwrap());
                        let revoked = c.owned.difference(&assigned).count() > 0;
                        c.owned = assigned;
                        // Cooperative: after revoking, the member rejoins at once.
                        if revoked || c.resubscribe {
                            c.resubscribe = false;
                            c.phase = Phase::Idle;
                        } else {
                            c.phase = Phase::Stable;
                            c.next_heartbeat = now + 1000;
                        }
                    }
                    ErrorCode::UnknownMemberId => {
                        c.id.clear();
                        c.phase = Phase::Idle;
                    }
                    _ => c.phase = Phase::Idle,
                }
            }

            /// subscribe(): cooperative clients revoke unsubscribed topics and rejoin.
            fn subscribe(&mut self, i: usize, topics: &[&str]) {
                let c = &mut self.clients[i];
                c.topics = topics.iter().map(|t| t.to_string()).collect();
                let topics = c.topics.clone();
                c.owned.retain(|(t, _)| topics.contains(t));
                match c.phase {
                    // The MEMBER_ID_REQUIRED answer is discarded: the next JoinGroup goes out
                    // without a member id again and the handed-out id is never used.
                    Phase::IdRequired => {
                        c.id.clear();
                        c.phase = Phase::Idle;
                    }
                    Phase::Joining | Phase::Syncing => c.resubscribe = true,
                    Phase::Idle | Phase::Stable => c.phase = Phase::Idle,
                }
            }

            /// Sends everything due now and delivers every answer, until quiet.
            fn settle(&mut self) {
                loop {
                    if let Some(r) = self.replies.pop_front() {
                        match r {
                            Reply::Join { member_id, result } => {
                                let i =
                                    self.clients.iter().position(|c| c.id == member_id && c.phase == Phase::Joining);
                                if let Some(i) = i {
                                    self.on_join(i, result);
                                }
                            }
                            Reply::Sync { member_id, result } => {
                                let i =
                                    self.clients.iter().position(|c| c.id == member_id && c.phase == Phase::Syncing);
                                if let Some(i) = i {
                                    self.on_sync(i, result);
                                }
                            }
                        }
                        continue;
                    }
                    if let Some((i, sync)) = self.work.pop_front() {
                        match sync {
                            Some(assignments) => self.sync(i, assignments),
                            None => self.join(i),
                        }
                        continue;
                    }
                    break;
                }
            }

            /// One 100 ms step: timers, retries, joins and heartbeats.
            fn step(&mut self) {
                self.now += 100;
                if self.g.next_deadline().is_some_and(|d| d <= self.now) {
                    let out = self.g.tick(at(self.now));
                    self.replies.extend(out.replies);
                    self.settle();
                }
                for i in 0..self.clients.len() {
                    match self.clients[i].phase {
                        Phase::Idle | Phase::IdRequired => self.work.push_back((i, None)),
                        Phase::Stable if self.now >= self.clients[i].next_heartbeat => {
                            let c = &mut self.clients[i];
                            c.next_heartbeat = self.now + 1000;
                            match self.g.heartbeat(&c.id.clone(), None, c.generation, at(self.now)) {
                                ErrorCode::None => {}
                                ErrorCode::UnknownMemberId => {
                                    c.id.clear();
                                    c.phase = Phase::Idle;
                                }
                                _ => c.phase = Phase::Idle,
                            }
                        }
                        _ => {}
                    }
                    self.settle();
                }
            }

            /// Whether every subscribed partition has exactly one owner, shares are even,
            /// and nobody waits for a rebalance.
            fn balanced(&self) -> bool {
                if self.g.state != State::Stable || self.clients.iter().any(|c| c.phase != Phase::Stable) {
                    return false;
                }
                TOPICS.iter().all(|(topic, n)| {
                    let subs: Vec<&Client> =
                        self.clients.iter().filter(|c| c.topics.iter().any(|t| t == topic)).collect();
                    let counts: Vec<usize> =
                        subs.iter().map(|c| c.owned.iter().filter(|(t, _)| t == topic).count()).collect();
                    let owners: usize =
                        self.clients.iter().map(|c| c.owned.iter().filter(|(t, _)| t == topic).count()).sum();
                    subs.is_empty()
                        || owners == *n as usize
                            && counts
                                .iter()
                                .all(|k| *k == *n as usize / subs.len() || *k == (*n as usize).div_ceil(subs.len()))
                })
            }

            fn holdings(&self) -> Vec<(String, Vec<String>, usize, Phase)> {
                self.clients.iter().map(|c| (c.name.clone(), c.topics.clone(), c.owned.len(), c.phase)).collect()
            }
        }

        #[test]
        fn rapid_subscription_changes_settle_well_before_the_rebalance_timeout() {
            let (s1, s2): (&[&str], &[&str]) = (&["t1"], &["t2"]);
            // librdkafka's playbook (subscription variation 1): (ms, consumer, topics).
            let playbook: [(u64, usize, &[&str]); 27] = [
                (0, 0, s1),
                (4000, 1, s1),
                (4000, 1, s1),
                (4000, 1, s1),
                (4000, 2, s1),
                (6000, 3, s1),
                (6000, 4, s1),
                (6000, 5, s1),
                (6000, 6, s1),
                (6000, 7, s2),
                (6000, 1, s1),
                (6000, 1, s2),
                (6000, 1, s1),
                (6000, 2, s2),
                (7000, 2, s1),
                (7000, 1, s2),
                (8000, 0, s2),
                (8000, 1, s1),
                (8000, 0, s1),
                (13000, 2, s1),
                (13000, 1, s2),
                (13000, 5, s2),
                (14000, 6, s2),
                (15000, 7, s1),
                (15000, 1, s1),
                (15000, 5, s1),
                (15000, 6, s1),
            ];
            let mut sim = Sim::new(8);
            let mut next = 0;
            // 30 s after the last subscribe() — a tenth of the rebalance timeout, three
            // session timeouts — the group must have settled.
            while sim.now < 45_000 {
                // One subscribe() per 100 ms step: calls at the same playbook time land while
                // the previous call's JoinGroup answer is still unread.
                if next < playbook.len() && playbook[next].0 <= sim.now {
                    let (_, i, topics) = playbook[next];
                    sim.subscribe(i, topics);
                    next += 1;
                }
                sim.step();
                if next == playbook.len() && sim.balanced() {
                    break;
                }
            }
            assert!(
                sim.balanced(),
                "at {} ms the group is {:?} at generation {} ({} MEMBER_ID_REQUIRED ids outstanding); \
                 clients (name, topics, partitions, phase): {:?}",
                sim.now,
                sim.g.state,
                sim.g.generation,
                sim.g.pending.len(),
                sim.holdings()
            );
        }
    }
}
