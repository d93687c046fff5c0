//! The group coordinator: classic and KIP-848 consumer groups, and committed offsets
//! kept in `__consumer_offsets` (ADR 0004).
//!
//! The state machines in `classic` and `consumer` decide; this module carries their
//! decisions out: it appends their records, wakes parked JoinGroup/SyncGroup requests,
//! runs the timers, and loads the groups back from the log at startup.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod log;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use strom_protocol::records::{decode_records, BatchBuilder};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use self::classic::{Disposition, Group, JoinRequest, JoinResult, Now, Outcome, Reply, State, SyncResult};
use self::consumer::ConsumerGroup;
use self::log::{partition_for, LogRecord, OffsetValue};
use crate::error::ErrorCode;
use crate::metadata::{Metadata, Partition};

/// The internal topic holding offsets and group metadata.
pub use crate::config::group::{GroupConfig, MigrationPolicy};
pub use crate::metadata::OFFSETS_TOPIC;

/// A group of either protocol; they share one namespace, as in Kafka.
#[derive(Debug)]
pub enum AnyGroup {
    Classic(Group),
    Consumer(ConsumerGroup),
}

impl AnyGroup {
    /// Committed offsets of the group.
    pub fn offsets(&self) -> &std::collections::BTreeMap<(String, i32), OffsetValue> {
        match self {
            AnyGroup::Classic(g) => &g.offsets,
            AnyGroup::Consumer(g) => &g.offsets,
        }
    }

    fn offsets_mut(&mut self) -> &mut std::collections::BTreeMap<(String, i32), OffsetValue> {
        match self {
            AnyGroup::Classic(g) => &mut g.offsets,
            AnyGroup::Consumer(g) => &mut g.offsets,
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        match self {
            AnyGroup::Classic(g) => g.next_deadline(),
            AnyGroup::Consumer(g) => g.next_deadline(),
        }
    }

    /// `classic` or `consumer`, as ListGroups v5 reports.
    pub fn group_type(&self) -> &'static str {
        match self {
            AnyGroup::Classic(_) => "classic",
            AnyGroup::Consumer(_) => "consumer",
        }
    }

    /// The state name as Kafka reports it.
    pub fn state_name(&self) -> &'static str {
        match self {
            AnyGroup::Classic(g) => g.state.name(),
            AnyGroup::Consumer(g) => g.state_name(),
        }
    }

    /// Whether the group has no members.
    pub fn is_empty(&self) -> bool {
        match self {
            AnyGroup::Classic(g) => g.members.is_empty(),
            AnyGroup::Consumer(g) => g.members.is_empty(),
        }
    }
}

enum Waiter {
    Join(oneshot::Sender<JoinResult>),
    Sync(oneshot::Sender<SyncResult>),
}

#[derive(Default)]
struct Inner {
    groups: HashMap<String, AnyGroup>,
    waiters: HashMap<(String, String), Waiter>,
    /// Per `__consumer_offsets` partition, bumped whenever its groups are loaded or
    /// handed over: a pending commit to it from before is not applied (the reloaded
    /// state came from the log itself). Per partition, because a takeover of another
    /// partition reloads nothing of this one: a global count dropped acknowledged
    /// commits from memory when a failover moved an unrelated partition here (nemesis
    /// `commits-back`).
    loads: HashMap<i32, u64>,
    /// Per (group, topic, partition), the `__consumer_offsets` end offset of the commit
    /// whose value is in memory: replicated commits may finish waiting out of order.
    applied_at: HashMap<(String, String, i32), i64>,
    /// The broker is shutting down: JoinGroup and SyncGroup no longer park.
    resigned: bool,
    /// Share groups (KIP-932, ADR 0016). They share the group namespace with the groups
    /// above but are kept apart: they have no committed offsets and, until step 4 of the
    /// ADR, no records in `__consumer_offsets` (membership is soft state: after a
    /// coordinator restart or move, members get UNKNOWN_MEMBER_ID and rejoin).
    shares: HashMap<String, crate::share::group::ShareGroup>,
    /// Offsets committed inside transactions (TxnOffsetCommit), per producer id and
    /// `__consumer_offsets` partition, invisible until the transaction's COMMIT marker
    /// lands in that partition (dropped on ABORT), as Kafka keeps them pending.
    txn_pending: HashMap<(i64, i32), Vec<TxnOffset>>,
}

impl Inner {
    /// How many times the groups of `__consumer_offsets` partition `partition` were
    /// loaded or handed over.
    fn load_count(&self, partition: i32) -> u64 {
        self.loads.get(&partition).copied().unwrap_or(0)
    }
}

/// An offset committed in a transaction: (group, topic, partition, value).
type TxnOffset = (String, String, i32, OffsetValue);

/// A TxnOffsetCommit appended to `__consumer_offsets` and held pending; given back with
/// [`Coordinator::fail_txn_commit`] if its append does not reach the in-sync replicas.
#[derive(Debug)]
pub struct PendingTxnCommit {
    producer_id: i64,
    partition: i32,
    /// `Inner::loads` of `partition` when it was appended.
    loads: u64,
    values: Vec<TxnOffset>,
}

/// A commit appended to `__consumer_offsets` but not yet visible (see
/// [`Coordinator::apply_commit`]).
#[derive(Debug)]
pub struct PendingCommit {
    group: String,
    /// The `__consumer_offsets` partition written.
    partition: i32,
    /// The partition's end offset after the commit's batch.
    end: i64,
    /// `Inner::loads` of `partition` when it was appended.
    loads: u64,
    values: Vec<(String, i32, OffsetValue)>,
}

/// The coordinator for every group on this broker.
pub struct Coordinator {
    pub config: GroupConfig,
    inner: Mutex<Inner>,
    /// Deadlines changed: the timer task recomputes its sleep.
    wake: Arc<Notify>,
    loaded: AtomicBool,
    /// In a cluster: the `__consumer_offsets` partitions whose groups are in memory
    /// (those this broker leads, loaded when it took them over).
    partitions: Mutex<std::collections::HashSet<i32>>,
    epoch: Instant,
    /// The metadata, once started: which groups this node coordinates.
    meta: std::sync::OnceLock<std::sync::Weak<Metadata>>,
    /// This broker's share-partitions, told when a share-group member departs so its
    /// acquired records are released at once rather than at their lock deadline.
    shares: std::sync::OnceLock<std::sync::Weak<crate::share::broker::ShareState>>,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").field("loaded", &self.loaded.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

/// A committed offset as requested.
#[derive(Debug, Clone)]
pub struct CommitEntry {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

impl Coordinator {
    /// A coordinator that has not loaded its log yet.
    pub fn new(config: GroupConfig) -> Coordinator {
        Coordinator {
            config,
            inner: Mutex::new(Inner::default()),
            wake: Arc::new(Notify::new()),
            loaded: AtomicBool::new(false),
            partitions: Mutex::new(std::collections::HashSet::new()),
            epoch: Instant::now(),
            meta: std::sync::OnceLock::new(),
            shares: std::sync::OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current time on both clocks.
    pub fn now(&self) -> Now {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Now { mono: self.epoch.elapsed().as_millis() as u64, wall }
    }

    /// Whether the log has been replayed (group APIs answer COORDINATOR_LOAD_IN_PROGRESS before).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Whether this node coordinates `group`: always on a single node; in a cluster, when
    /// it leads the group's `__consumer_offsets` partition (Kafka's rule). Others answer
    /// NOT_COORDINATOR and clients look the coordinator up again.
    pub fn owns(&self, group: &str) -> bool {
        let Some(meta) = self.meta.get().and_then(std::sync::Weak::upgrade) else { return true };
        if meta.quorum().is_none() {
            return true;
        }
        let Some(offsets) = meta.topic(crate::metadata::OFFSETS_TOPIC) else { return false };
        let partition = log::partition_for(group, offsets.partitions.len() as i32);
        meta.leads(&offsets, partition) && self.loaded_partitions().contains(&partition)
    }

    fn loaded_partitions(&self) -> MutexGuard<'_, std::collections::HashSet<i32>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Brings the groups in memory in line with this broker's leadership of the
    /// `__consumer_offsets` partitions (a cluster's coordinator moves with them, as
    /// Kafka's does): partitions it now leads are replayed from their log, the groups of
    /// partitions it no longer leads are dropped (their parked requests answered
    /// NOT_COORDINATOR), so a later takeover starts from the log again.
    pub fn follow_leadership(&self, meta: &Metadata) {
        let Some(topic) = meta.topic(OFFSETS_TOPIC) else { return };
        let n = topic.partitions.len() as i32;
        for p in &topic.partitions {
            let leads = meta.leads(&topic, p.index) && p.is_leader();
            let loaded = self.loaded_partitions().contains(&p.index);
            if leads != loaded {
                *self.lock().loads.entry(p.index).or_default() += 1;
            }
            if leads && !loaded {
                let now = self.now();
                let records = self.replay_partition(p, now);
                self.lock().groups.retain(|_, g| !matches!(g, AnyGroup::Classic(c) if c.state == State::Dead));
                self.loaded_partitions().insert(p.index);
                tracing::info!(partition = p.index, records, "took over the groups of a {OFFSETS_TOPIC} partition");
            } else if !leads && loaded {
                self.loaded_partitions().remove(&p.index);
                let mut inner = self.lock();
                let gone: Vec<String> =
                    inner.groups.keys().filter(|g| partition_for(g, n) == p.index).cloned().collect();
                for g in &gone {
                    inner.groups.remove(g);
                }
                inner.shares.retain(|g, _| partition_for(g, n) != p.index);
                inner.txn_pending.retain(|(_, part), _| *part != p.index);
                let parked: Vec<(String, String)> =
                    inner.waiters.keys().filter(|(g, _)| partition_for(g, n) == p.index).cloned().collect();
                for key in parked {
                    match inner.waiters.remove(&key) {
                        Some(Waiter::Join(tx)) => {
                            let _ = tx.send(JoinResult::error(ErrorCode::NotCoordinator, &key.1));
                        }
                        Some(Waiter::Sync(tx)) => {
                            let _ = tx.send(SyncResult {
                                error: ErrorCode::NotCoordinator,
                                protocol_type: None,
                                protocol_name: None,
                                assignment: Bytes::new(),
                            });
                        }
                        None => {}
                    }
                }
                tracing::info!(
                    partition = p.index,
                    groups = gone.len(),
                    "handed over the groups of a {OFFSETS_TOPIC} partition"
                );
            }
        }
    }

    /// Appends records to the group's `__consumer_offsets` partition as one batch.
    /// Appends to the group's `__consumer_offsets` partition; returns the end offset
    /// after the batch (-1 for nothing).
    fn append(meta: &Metadata, group: &str, records: &[LogRecord], now: Now) -> Result<i64, ErrorCode> {
        if records.is_empty() {
            return Ok(-1);
        }
        let topic = meta.topic(OFFSETS_TOPIC).ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let n = topic.partitions.len() as i32;
        let p = topic.partitions.get(partition_for(group, n) as usize).ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let mut batch = BatchBuilder::new(now.wall);
        for r in records {
            let (k, v) = r.encode();
            batch.add(Some(&k), v.as_deref());
        }
        p.append(&batch.build()).map(|info| info.last_offset + 1).map_err(|(code, msg)| {
            tracing::error!(group, error = %msg, "could not append to {OFFSETS_TOPIC}");
            if code == ErrorCode::KafkaStorageError {
                ErrorCode::CoordinatorNotAvailable
            } else {
                code
            }
        })
    }

    /// Appends an outcome's records, then answers parked requests. If the records cannot
    /// be written, parked syncs fail rather than publish an assignment that was not stored.
    fn carry_out(inner: &mut Inner, meta: &Metadata, group: &str, out: Outcome, now: Now) {
        let persisted = Self::append(meta, group, &out.records, now);
        for reply in out.replies {
            // A reply only ever takes a waiter of its own kind: a join's reply must not consume
            // the member's parked sync, nor the other way round.
            match reply {
                Reply::Join { member_id, result } => {
                    let key = (group.to_string(), member_id);
                    if matches!(inner.waiters.get(&key), Some(Waiter::Join(_))) {
                        if let Some(Waiter::Join(tx)) = inner.waiters.remove(&key) {
                            let _ = tx.send(result);
                        }
                    }
                }
                Reply::Sync { member_id, mut result } => {
                    if let Err(code) = persisted {
                        result = SyncResult {
                            error: code,
                            protocol_type: None,
                            protocol_name: None,
                            assignment: Bytes::new(),
                        };
                    }
                    let key = (group.to_string(), member_id);
                    if matches!(inner.waiters.get(&key), Some(Waiter::Sync(_))) {
                        if let Some(Waiter::Sync(tx)) = inner.waiters.remove(&key) {
                            let _ = tx.send(result);
                        }
                    }
                }
            }
        }
    }

    /// JoinGroup: answers at once or when the rebalance completes.
    pub async fn join(&self, meta: &Metadata, group_id: &str, req: JoinRequest) -> JoinResult {
        let member = req.member_id.clone();
        let fail = |e: ErrorCode| JoinResult {
            error: e,
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id: member.clone(),
            members: Vec::new(),
        };
        if !self.is_loaded() {
            return fail(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return fail(ErrorCode::NotCoordinator);
        }
        if group_id.is_empty() {
            return fail(ErrorCode::InvalidGroupId);
        }
        let now = self.now();
        let rx = {
            let mut inner = self.lock();
            if inner.resigned {
                return fail(ErrorCode::NotCoordinator);
            }
            // Kafka: a classic member cannot join a share group of the same id.
            if inner.shares.contains_key(group_id) {
                return fail(ErrorCode::InconsistentGroupProtocol);
            }
            // A classic member joining a consumer group (Kafka's classicGroupJoin): a group
            // without members turns classic whatever the migration policy
            // (maybeDeleteEmptyConsumerGroup), one with members takes the member in through
            // the classic protocol (classicGroupJoinToConsumerGroup), answering at once.
            if let Some(AnyGroup::Consumer(cg)) = inner.groups.get_mut(group_id) {
                if !cg.members.is_empty() {
                    let topics = consumer::TopicsView::from_metadata(meta);
                    let r = cg.classic_join(&req, &topics, &self.config, now);
                    drop(inner);
                    self.wake.notify_one();
                    return r;
                }
                let offsets = std::mem::take(&mut cg.offsets);
                let records = [LogRecord::ConsumerGroup { group: group_id.to_string(), epoch: None }];
                if let Err(code) = Self::append(meta, group_id, &records, now) {
                    cg.offsets = offsets;
                    return fail(code);
                }
                let mut g = Group::new(group_id, now);
                g.offsets = offsets;
                inner.groups.insert(group_id.to_string(), AnyGroup::Classic(g));
            }
            let group = inner
                .groups
                .entry(group_id.to_string())
                .or_insert_with(|| AnyGroup::Classic(Group::new(group_id, now)));
            let AnyGroup::Classic(g) = group else {
                return fail(ErrorCode::InconsistentGroupProtocol);
            };
            if g.state == State::Dead {
                *g = Group::new(group_id, now);
            }
            let (disp, out) = g.join(req, &self.config.limits, now);
            match disp {
                Disposition::Now(r) => {
                    Self::carry_out(&mut inner, meta, group_id, out, now);
                    self.wake.notify_one();
                    return r;
                }
                Disposition::Parked(id) => {
                    // The replies go out before this join's waiter takes the member's place: a
                    // member parked in SyncGroup that rejoins (from another connection, its
                    // client having given up on the first) gets its SyncGroup answered
                    // REBALANCE_IN_PROGRESS by the rebalance the join starts, as in Kafka
                    // (prepareRebalance → resetAndPropagateAssignmentWithError), and the
                    // JoinGroup waits for the next generation. Before, the join's waiter
                    // displaced the sync's and the sync's reply then consumed the join's: both
                    // requests were answered COORDINATOR_NOT_AVAILABLE (issue 20 item 6).
                    let mut out = out;
                    let own = out
                        .replies
                        .iter()
                        .position(|r| matches!(r, Reply::Join { member_id, .. } if *member_id == id))
                        .map(|i| out.replies.remove(i));
                    Self::carry_out(&mut inner, meta, group_id, out, now);
                    let (tx, rx) = oneshot::channel();
                    if let Some(Reply::Join { result, .. }) = own {
                        // The join phase completed with this request.
                        let _ = tx.send(result);
                    } else {
                        match inner.waiters.insert((group_id.to_string(), id.clone()), Waiter::Join(tx)) {
                            // A duplicate join from the same member supersedes the earlier one.
                            Some(Waiter::Join(old)) => {
                                let _ = old.send(fail(ErrorCode::UnknownMemberId));
                            }
                            Some(Waiter::Sync(old)) => {
                                let _ = old.send(SyncResult {
                                    error: ErrorCode::RebalanceInProgress,
                                    protocol_type: None,
                                    protocol_name: None,
                                    assignment: Bytes::new(),
                                });
                            }
                            None => {}
                        }
                    }
                    rx
                }
            }
        };
        self.wake.notify_one();
        rx.await.unwrap_or_else(|_| fail(ErrorCode::CoordinatorNotAvailable))
    }

    /// SyncGroup: answers at once or when the leader's assignment arrives.
    #[allow(clippy::too_many_arguments)]
    pub async fn sync(
        &self,
        meta: &Metadata,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncResult {
        let fail = |e| SyncResult { error: e, protocol_type: None, protocol_name: None, assignment: Bytes::new() };
        if !self.is_loaded() {
            return fail(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return fail(ErrorCode::NotCoordinator);
        }
        let now = self.now();
        let rx = {
            let mut inner = self.lock();
            if inner.resigned {
                return fail(ErrorCode::NotCoordinator);
            }
            if let Some(AnyGroup::Consumer(cg)) = inner.groups.get_mut(group_id) {
                // A classic member of a consumer group collects its assignment.
                let topics = consumer::TopicsView::from_metadata(meta);
                let r = cg.classic_sync(member_id, instance_id, generation, protocol_type, protocol_name, &topics, now);
                drop(inner);
                self.wake.notify_one();
                return r;
            }
            let Some(AnyGroup::Classic(g)) = inner.groups.get_mut(group_id) else {
                return fail(ErrorCode::UnknownMemberId);
            };
            let (disp, out) =
                g.sync(member_id, instance_id, generation, protocol_type, protocol_name, assignments, now);
            let rx = match disp {
                Disposition::Now(r) => {
                    Self::carry_out(&mut inner, meta, group_id, out, now);
                    return r;
                }
                Disposition::Parked(id) => {
                    let (tx, rx) = oneshot::channel();
                    inner.waiters.insert((group_id.to_string(), id), Waiter::Sync(tx));
                    rx
                }
            };
            Self::carry_out(&mut inner, meta, group_id, out, now);
            rx
        };
        self.wake.notify_one();
        rx.await.unwrap_or_else(|_| fail(ErrorCode::CoordinatorNotAvailable))
    }

    /// Broker shutdown: answers every parked JoinGroup and SyncGroup with NOT_COORDINATOR, and
    /// later ones at once, instead of parking them for a rebalance that will not complete (a
    /// member that died holds it until its rebalance timeout, 300 s with Java's defaults).
    /// Kafka's coordinator answers them the same way when it unloads its groups
    /// (`GroupMetadataManager.onUnloaded`); the members look for the coordinator again.
    pub fn resign(&self) {
        let mut inner = self.lock();
        inner.resigned = true;
        for ((_, member_id), waiter) in inner.waiters.drain() {
            match waiter {
                Waiter::Join(tx) => {
                    let _ = tx.send(JoinResult {
                        error: ErrorCode::NotCoordinator,
                        generation: -1,
                        protocol_type: None,
                        protocol_name: None,
                        leader: String::new(),
                        member_id,
                        members: Vec::new(),
                    });
                }
                Waiter::Sync(tx) => {
                    let _ = tx.send(SyncResult {
                        error: ErrorCode::NotCoordinator,
                        protocol_type: None,
                        protocol_name: None,
                        assignment: Bytes::new(),
                    });
                }
            }
        }
    }

    /// Heartbeat.
    pub fn heartbeat(&self, group_id: &str, member_id: &str, instance_id: Option<&str>, generation: i32) -> ErrorCode {
        if !self.is_loaded() {
            return ErrorCode::CoordinatorLoadInProgress;
        }
        if !self.owns(group_id) {
            return ErrorCode::NotCoordinator;
        }
        let now = self.now();
        let mut inner = self.lock();
        let code = match inner.groups.get_mut(group_id) {
            Some(AnyGroup::Classic(g)) => g.heartbeat(member_id, instance_id, generation, now),
            Some(AnyGroup::Consumer(g)) => g.classic_heartbeat(member_id, instance_id, generation, now),
            None => ErrorCode::UnknownMemberId,
        };
        drop(inner);
        self.wake.notify_one();
        code
    }

    /// LeaveGroup: one error per (member id, instance id).
    pub fn leave(
        &self,
        meta: &Metadata,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        if !self.is_loaded() {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        let now = self.now();
        let mut inner = self.lock();
        if let Some(AnyGroup::Consumer(cg)) = inner.groups.get_mut(group_id) {
            let codes = members.iter().map(|(m, i)| cg.classic_leave(m, i.as_deref(), now)).collect();
            self.maybe_downgrade(&mut inner, meta, group_id, now);
            drop(inner);
            self.wake.notify_one();
            return Ok(codes);
        }
        let Some(AnyGroup::Classic(g)) = inner.groups.get_mut(group_id) else {
            return Err(ErrorCode::UnknownMemberId);
        };
        let mut out = Outcome::default();
        let codes = members.iter().map(|(m, i)| g.leave(m, i.as_deref(), now, &mut out)).collect();
        Self::carry_out(&mut inner, meta, group_id, out, now);
        drop(inner);
        self.wake.notify_one();
        Ok(codes)
    }

    /// OffsetCommit. `generation` is the classic generation or the KIP-848 member epoch;
    /// `version` is the request's (some answers depend on it, as in Kafka).
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &self,
        meta: &Metadata,
        version: i16,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        entries: &[CommitEntry],
    ) -> (Vec<ErrorCode>, Option<PendingCommit>) {
        let all = |code: ErrorCode| (vec![code; entries.len()], None);
        if !self.is_loaded() {
            return all(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return all(ErrorCode::NotCoordinator);
        }
        if group_id.is_empty() {
            return all(ErrorCode::InvalidGroupId);
        }
        let now = self.now();
        let mut inner = self.lock();
        // A share group has no committed offsets (Kafka: "not a consumer group"); a commit
        // must not create a classic group beside it either.
        if inner.shares.contains_key(group_id) {
            return all(ErrorCode::GroupIdNotFound);
        }
        // Kafka's OffsetMetadataManager.validateOffsetCommit: a commit with a negative
        // generation for a group that does not exist creates a simple (classic, empty)
        // group, whatever the member id; otherwise the group must exist — GROUP_ID_NOT_FOUND
        // from v9, ILLEGAL_GENERATION before.
        let check = match inner.groups.get(group_id) {
            None if generation < 0 => ErrorCode::None,
            None if version >= 9 => ErrorCode::GroupIdNotFound,
            None => ErrorCode::IllegalGeneration,
            Some(AnyGroup::Classic(g)) => g.validate_commit(member_id, instance_id, generation),
            // Members of a consumer-protocol group must use OffsetCommit v9+ (Kafka 4 checks
            // this before the epoch); classic members of a consumer group need not.
            Some(AnyGroup::Consumer(g))
                if version < 9 && g.members.get(member_id).is_some_and(|m| m.classic.is_none()) =>
            {
                ErrorCode::UnsupportedVersion
            }
            Some(AnyGroup::Consumer(g)) => g.validate_commit(member_id, generation),
        };
        if check != ErrorCode::None {
            return all(check);
        }
        let (codes, values) = self.offset_values(meta, entries, now);
        let records: Vec<LogRecord> = values
            .iter()
            .map(|(topic, partition, v)| LogRecord::Offset {
                group: group_id.to_string(),
                topic: topic.clone(),
                partition: *partition,
                value: Some(v.clone()),
            })
            .collect();
        let end = match Self::append(meta, group_id, &records, now) {
            Ok(end) => end,
            Err(code) => {
                return (codes.into_iter().map(|c| if c == ErrorCode::None { code } else { c }).collect(), None);
            }
        };
        inner.groups.entry(group_id.to_string()).or_insert_with(|| AnyGroup::Classic(Group::new(group_id, now)));
        let partition = meta.topic(OFFSETS_TOPIC).map_or(0, |t| partition_for(group_id, t.partitions.len() as i32));
        let loads = inner.load_count(partition);
        let pending = PendingCommit { group: group_id.to_string(), partition, end, loads, values };
        if meta.quorum().is_none() {
            // One copy: written is committed.
            Self::apply_locked(&mut inner, pending);
            return (codes, None);
        }
        (codes, Some(pending))
    }

    /// The offsets of a commit (OffsetCommit or TxnOffsetCommit) that may be stored, and
    /// one code per entry: UNKNOWN_TOPIC_OR_PARTITION, OFFSET_METADATA_TOO_LARGE, or NONE
    /// for those returned.
    fn offset_values(
        &self,
        meta: &Metadata,
        entries: &[CommitEntry],
        now: Now,
    ) -> (Vec<ErrorCode>, Vec<(String, i32, OffsetValue)>) {
        let mut codes = Vec::with_capacity(entries.len());
        let mut values = Vec::new();
        for e in entries {
            let known =
                meta.topic(&e.topic).is_some_and(|t| e.partition >= 0 && (e.partition as usize) < t.partitions.len());
            let metadata = e.metadata.clone().unwrap_or_default();
            let code = if !known {
                ErrorCode::UnknownTopicOrPartition
            } else if metadata.len() > self.config.offset_metadata_max_bytes {
                ErrorCode::OffsetMetadataTooLarge
            } else {
                let v = OffsetValue {
                    offset: e.offset,
                    leader_epoch: e.leader_epoch,
                    metadata,
                    commit_timestamp: now.wall,
                };
                values.push((e.topic.clone(), e.partition, v));
                ErrorCode::None
            };
            codes.push(code);
        }
        (codes, values)
    }

    /// Makes a commit visible to OffsetFetch once it is on every in-sync replica (Kafka
    /// keeps such commits pending until their append completes): until then a
    /// coordinator cut off from its followers never shows offsets a failover could take
    /// back. Skipped if the groups were reloaded or handed over meanwhile, and per
    /// partition if a later commit is already visible.
    pub fn apply_commit(&self, pending: PendingCommit) {
        let mut inner = self.lock();
        if inner.load_count(pending.partition) == pending.loads {
            Self::apply_locked(&mut inner, pending);
        }
    }

    fn apply_locked(inner: &mut Inner, pending: PendingCommit) {
        let PendingCommit { group, end, values, .. } = pending;
        for (topic, partition, v) in values {
            let key = (group.clone(), topic, partition);
            if inner.applied_at.get(&key).is_some_and(|at| *at > end) {
                continue;
            }
            let Some(g) = inner.groups.get_mut(&group) else { return };
            g.offsets_mut().insert((key.1.clone(), partition), v);
            inner.applied_at.insert(key, end);
        }
    }

    /// TxnOffsetCommit: appends the offsets to the group's `__consumer_offsets`
    /// partition as a transactional batch of the producer (no sequence, as Kafka writes
    /// it); they become visible with the transaction's COMMIT marker. A member id or
    /// generation given is checked as OffsetCommit checks it.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit(
        &self,
        meta: &Metadata,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        entries: &[CommitEntry],
    ) -> (Vec<ErrorCode>, Option<PendingTxnCommit>) {
        let all = |code: ErrorCode| (vec![code; entries.len()], None);
        if !self.is_loaded() {
            return all(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return all(ErrorCode::NotCoordinator);
        }
        if group_id.is_empty() {
            return all(ErrorCode::InvalidGroupId);
        }
        let now = self.now();
        let inner = self.lock();
        if inner.shares.contains_key(group_id) {
            return all(ErrorCode::GroupIdNotFound); // not a consumer group, as in OffsetCommit
        }
        // Kafka validates the member only when the producer names one (KIP-447).
        if generation >= 0 || !member_id.is_empty() {
            let check = match inner.groups.get(group_id) {
                None => ErrorCode::IllegalGeneration,
                Some(AnyGroup::Classic(g)) => g.validate_commit(member_id, instance_id, generation),
                Some(AnyGroup::Consumer(g)) => g.validate_commit(member_id, generation),
            };
            if check != ErrorCode::None {
                return all(check);
            }
        }
        let (codes, offsets) = self.offset_values(meta, entries, now);
        let mut batch = BatchBuilder::new(now.wall).producer(producer_id, producer_epoch, -1).transactional(true);
        let mut values = Vec::with_capacity(offsets.len());
        for (topic, partition, v) in offsets {
            let (k, val) = LogRecord::Offset {
                group: group_id.to_string(),
                topic: topic.clone(),
                partition,
                value: Some(v.clone()),
            }
            .encode();
            batch.add(Some(&k), val.as_deref());
            values.push((group_id.to_string(), topic, partition, v));
        }
        if values.is_empty() {
            return (codes, None);
        }
        let Some(p) = offsets_partition(meta, group_id) else { return all(ErrorCode::CoordinatorNotAvailable) };
        if let Err((code, msg)) = p.append(&batch.build()) {
            tracing::warn!(group = group_id, producer_id, error = %msg, "transactional offset commit not appended");
            let code = match code {
                ErrorCode::KafkaStorageError | ErrorCode::NotLeaderOrFollower => ErrorCode::NotCoordinator,
                c => c,
            };
            return (codes.into_iter().map(|c| if c == ErrorCode::None { code } else { c }).collect(), None);
        }
        // Held from the append on (as Kafka's prepareTxnOffsetCommit): a marker may land
        // any time after the client's answer, and a replay finds the batch in the log.
        let mut inner = inner;
        inner.txn_pending.entry((producer_id, p.index)).or_default().extend(values.iter().cloned());
        let loads = inner.load_count(p.index);
        let pending = PendingTxnCommit { producer_id, partition: p.index, loads, values };
        (codes, Some(pending))
    }

    /// A TxnOffsetCommit whose append was not replicated (the client is told it failed):
    /// its offsets are no longer held, so a later COMMIT marker does not publish them.
    pub fn fail_txn_commit(&self, pending: PendingTxnCommit) {
        let mut inner = self.lock();
        if inner.load_count(pending.partition) != pending.loads {
            return;
        }
        if let Some(held) = inner.txn_pending.get_mut(&(pending.producer_id, pending.partition)) {
            for v in &pending.values {
                if let Some(i) = held.iter().rposition(|h| h == v) {
                    held.remove(i);
                }
            }
        }
    }

    /// A transaction marker landed in `__consumer_offsets` partition `partition`: the
    /// producer's pending offsets there become visible (COMMIT) or go (ABORT).
    pub fn complete_txn(&self, producer_id: i64, partition: i32, commit: bool) {
        let now = self.now();
        let mut inner = self.lock();
        Self::complete_txn_locked(&mut inner, producer_id, partition, commit, now);
    }

    fn complete_txn_locked(inner: &mut Inner, producer_id: i64, partition: i32, commit: bool, now: Now) {
        let Some(values) = inner.txn_pending.remove(&(producer_id, partition)) else { return };
        if !commit {
            return;
        }
        for (group, topic, p, v) in values {
            let g = inner.groups.entry(group.clone()).or_insert_with(|| AnyGroup::Classic(Group::new(&group, now)));
            g.offsets_mut().insert((topic.clone(), p), v);
            // A later plain commit of the same partition may now apply over it.
            inner.applied_at.remove(&(group, topic, p));
        }
    }

    /// Producers with offsets pending in a transaction, per group (DescribeProducers and
    /// `strom txn` show them).
    pub fn pending_txn_offsets(&self) -> usize {
        self.lock().txn_pending.values().map(Vec::len).sum()
    }

    /// Committed offsets of `group_id` for the given partitions (all when `None`).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<(String, i32, Option<OffsetValue>)>, ErrorCode> {
        if !self.is_loaded() {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        let inner = self.lock();
        if inner.shares.contains_key(group_id) {
            return Err(ErrorCode::GroupIdNotFound); // a share group: not a consumer group
        }
        let offsets = inner.groups.get(group_id).map(|g| g.offsets());
        Ok(match partitions {
            Some(list) => list
                .iter()
                .map(|(t, p)| (t.clone(), *p, offsets.and_then(|o| o.get(&(t.clone(), *p)).cloned())))
                .collect(),
            None => offsets
                .map(|o| o.iter().map(|((t, p), v)| (t.clone(), *p, Some(v.clone()))).collect())
                .unwrap_or_default(),
        })
    }

    /// Runs `f` over the group, if it exists (for describe/list).
    pub fn with_group<T>(&self, group_id: &str, f: impl FnOnce(&AnyGroup) -> T) -> Option<T> {
        self.lock().groups.get(group_id).map(f)
    }

    /// Runs `f` over every group (for ListGroups and metrics).
    pub fn for_each_group(&self, mut f: impl FnMut(&str, &AnyGroup)) {
        for (id, g) in &self.lock().groups {
            f(id, g);
        }
    }

    /// DeleteGroups: only groups without members can go.
    pub fn delete_group(&self, meta: &Metadata, group_id: &str) -> ErrorCode {
        if !self.is_loaded() {
            return ErrorCode::CoordinatorLoadInProgress;
        }
        if !self.owns(group_id) {
            return ErrorCode::NotCoordinator;
        }
        let now = self.now();
        let mut inner = self.lock();
        if let Some(share) = inner.shares.get(group_id) {
            if !share.is_empty() {
                return ErrorCode::NonEmptyGroup;
            }
            inner.shares.remove(group_id);
            drop(inner);
            if let Some(state) = self.shares.get().and_then(std::sync::Weak::upgrade) {
                state.group_deleted(group_id);
            }
            return ErrorCode::None;
        }
        let Some(group) = inner.groups.get(group_id) else {
            return ErrorCode::GroupIdNotFound;
        };
        if matches!(group, AnyGroup::Classic(g) if g.state == State::Dead) {
            return ErrorCode::GroupIdNotFound;
        }
        if !group.is_empty() {
            return ErrorCode::NonEmptyGroup;
        }
        let mut records: Vec<LogRecord> = group
            .offsets()
            .keys()
            .map(|(t, p)| LogRecord::Offset {
                group: group_id.to_string(),
                topic: t.clone(),
                partition: *p,
                value: None,
            })
            .collect();
        if matches!(group, AnyGroup::Consumer(_)) {
            records.push(LogRecord::ConsumerGroup { group: group_id.to_string(), epoch: None });
        }
        records.push(LogRecord::Group { group: group_id.to_string(), value: None });
        if let Err(code) = Self::append(meta, group_id, &records, now) {
            return code;
        }
        inner.groups.remove(group_id);
        ErrorCode::None
    }

    /// OffsetDelete: a group may drop offsets of topics it is not subscribed to.
    pub fn delete_offsets(
        &self,
        meta: &Metadata,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        if !self.is_loaded() {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        let now = self.now();
        let mut inner = self.lock();
        let Some(group) = inner.groups.get_mut(group_id) else {
            return Err(ErrorCode::GroupIdNotFound);
        };
        let subscribed = |topic: &str| match &*group {
            AnyGroup::Classic(g) => g.state != State::Empty && consumer::classic_subscribes(g, topic),
            AnyGroup::Consumer(g) => g.subscribes(topic),
        };
        let codes: Vec<ErrorCode> = partitions
            .iter()
            .map(|(t, _)| if subscribed(t) { ErrorCode::GroupSubscribedToTopic } else { ErrorCode::None })
            .collect();
        let records: Vec<LogRecord> = partitions
            .iter()
            .zip(&codes)
            .filter(|(_, c)| **c == ErrorCode::None)
            .filter(|((t, p), _)| group.offsets().contains_key(&(t.clone(), *p)))
            .map(|((t, p), _)| LogRecord::Offset {
                group: group_id.to_string(),
                topic: t.clone(),
                partition: *p,
                value: None,
            })
            .collect();
        Self::append(meta, group_id, &records, now)?;
        for r in &records {
            if let LogRecord::Offset { topic, partition, .. } = r {
                group.offsets_mut().remove(&(topic.clone(), *partition));
            }
        }
        Ok(codes)
    }

    /// KIP-848 heartbeat.
    pub fn consumer_heartbeat(
        &self,
        meta: &Metadata,
        req: consumer::HeartbeatRequest,
    ) -> Result<consumer::HeartbeatResult, (ErrorCode, String)> {
        if !self.is_loaded() {
            return Err((ErrorCode::CoordinatorLoadInProgress, "loading".into()));
        }
        if !self.owns(&req.group_id) {
            return Err((ErrorCode::NotCoordinator, "not the coordinator of this group".into()));
        }
        if req.group_id.is_empty() {
            return Err((ErrorCode::InvalidGroupId, "empty group id".into()));
        }
        let now = self.now();
        let topics = consumer::TopicsView::from_metadata(meta);
        let mut inner = self.lock();
        let gid = req.group_id.clone();
        if inner.shares.contains_key(&gid) {
            return Err((ErrorCode::GroupIdNotFound, format!("Group {gid} is not a consumer group.")));
        }
        if let Some(AnyGroup::Consumer(g)) = inner.groups.get_mut(&gid) {
            let result = g.heartbeat(req, &topics, &self.config, now);
            // The last consumer-protocol member may have left (online downgrade).
            self.maybe_downgrade(&mut inner, meta, &gid, now);
            drop(inner);
            self.wake.notify_one();
            return result;
        }
        // Kafka's getOrMaybeCreateConsumerGroup: a new group; a classic group without
        // members, whatever the policy (maybeDeleteEmptyClassicGroup); or a classic group
        // with members when the policy allows an online upgrade (validateOnlineUpgrade,
        // convertToConsumerGroup). The conversion is tried on a copy and kept only if the
        // heartbeat succeeds and its records are stored: a GroupMetadata tombstone for the
        // classic group and a ConsumerGroupMetadata record (the group's type on replay).
        let mut records = Vec::new();
        let mut aborted = Vec::new();
        let mut g = match inner.groups.get(&gid) {
            None => ConsumerGroup::new(&gid, now),
            Some(AnyGroup::Consumer(_)) => return Err((ErrorCode::UnknownServerError, "unreachable".into())),
            Some(AnyGroup::Classic(c)) if c.members.is_empty() => {
                records.push(LogRecord::Group { group: gid.clone(), value: None });
                let mut cg = ConsumerGroup::new(&gid, now);
                cg.offsets = c.offsets.clone();
                cg
            }
            Some(AnyGroup::Classic(c)) => {
                if !self.config.migration_policy.upgrade() {
                    return Err((
                        ErrorCode::GroupIdNotFound,
                        format!("group {gid} is a classic group and online upgrade is disabled"),
                    ));
                }
                if c.protocol_type.as_deref() != Some("consumer") {
                    return Err((
                        ErrorCode::GroupIdNotFound,
                        format!("group {gid} is a classic group that does not use the consumer protocol"),
                    ));
                }
                let cg = ConsumerGroup::from_classic(c, &topics, now).map_err(|e| {
                    (ErrorCode::GroupIdNotFound, format!("cannot upgrade classic group {gid} to a consumer group: {e}"))
                })?;
                records.push(LogRecord::Group { group: gid.clone(), value: None });
                cg
            }
        };
        let result = g.heartbeat(req, &topics, &self.config, now)?;
        records.push(LogRecord::ConsumerGroup { group: gid.clone(), epoch: Some(g.group_epoch) });
        Self::append(meta, &gid, &records, now).map_err(|code| (code, "could not store the group".to_string()))?;
        if let Some(AnyGroup::Classic(c)) = inner.groups.get_mut(&gid) {
            // Members parked in JoinGroup/SyncGroup rejoin the converted group.
            aborted = c.abort_parked(ErrorCode::RebalanceInProgress);
        }
        inner.groups.insert(gid.clone(), AnyGroup::Consumer(g));
        Self::carry_out(&mut inner, meta, &gid, Outcome { records: Vec::new(), replies: aborted }, now);
        drop(inner);
        self.wake.notify_one();
        Ok(result)
    }

    /// Kafka's convertToClassicGroup (online downgrade): once only classic-protocol members
    /// remain in a consumer group and the policy allows it, the group turns classic —
    /// records: a ConsumerGroupMetadata tombstone and the classic generation — and
    /// rebalances at once. If the records cannot be stored the group stays as it is.
    fn maybe_downgrade(&self, inner: &mut Inner, meta: &Metadata, group_id: &str, now: Now) {
        let Some(AnyGroup::Consumer(cg)) = inner.groups.get(group_id) else { return };
        if !cg.should_downgrade(&self.config) {
            return;
        }
        let topics = consumer::TopicsView::from_metadata(meta);
        let members = cg.downgraded_members(&topics);
        let Some((g, out)) =
            Group::from_consumer(group_id, cg.group_epoch, members, cg.offsets.clone(), &self.config.limits, now)
        else {
            return;
        };
        let mut records = vec![LogRecord::ConsumerGroup { group: group_id.to_string(), epoch: None }];
        records.extend(out.records);
        if let Err(code) = Self::append(meta, group_id, &records, now) {
            tracing::warn!(group = group_id, ?code, "online downgrade to a classic group not stored; not converted");
            return;
        }
        tracing::info!(group = group_id, "consumer group converted to a classic group (online downgrade)");
        inner.groups.insert(group_id.to_string(), AnyGroup::Classic(g));
        Self::carry_out(inner, meta, group_id, Outcome { records: Vec::new(), replies: out.replies }, now);
    }

    /// Replays `__consumer_offsets` into memory; group APIs answer once this is done. In
    /// a cluster only the partitions this broker leads (see [`Self::follow_leadership`]).
    pub fn load(&self, meta: &Metadata) {
        let started = std::time::Instant::now();
        let now = self.now();
        let mut records = 0usize;
        if meta.quorum().is_some() {
            self.follow_leadership(meta);
        } else if let Some(topic) = meta.topic(OFFSETS_TOPIC) {
            for p in &topic.partitions {
                records += self.replay_partition(p, now);
            }
        }
        {
            let mut inner = self.lock();
            inner.groups.retain(|_, g| !matches!(g, AnyGroup::Classic(c) if c.state == State::Dead));
        }
        self.loaded.store(true, Ordering::Release);
        self.wake.notify_one();
        tracing::info!(records, elapsed_ms = started.elapsed().as_millis() as u64, "loaded consumer groups");
    }

    /// Replays one `__consumer_offsets` partition, all of it (a new leader's records past
    /// its high watermark are committed as soon as its followers catch up; it never
    /// truncates them). Returns the records replayed.
    fn replay_partition(&self, p: &Partition, now: Now) -> usize {
        let mut records = 0usize;
        p.scan_batches(p.log_start_offset(), p.log_end_offset(), |header, batch| {
            if header.is_control() {
                // A transaction marker: the producer's pending offsets here end.
                if let Ok(Some(m)) = strom_protocol::records::TxnMarker::parse(batch) {
                    let mut inner = self.lock();
                    Self::complete_txn_locked(&mut inner, header.producer_id, p.index, m.commit, now);
                }
                return;
            }
            let Ok(recs) = decode_records(batch) else {
                tracing::warn!(
                    partition = p.index,
                    offset = header.base_offset,
                    "skipping undecodable batch in {OFFSETS_TOPIC}"
                );
                return;
            };
            for rec in recs {
                let Some(key) = rec.key else { continue };
                match LogRecord::decode(&key, rec.value.as_ref()) {
                    Ok(Some(LogRecord::Offset { group, topic, partition, value: Some(v) }))
                        if header.is_transactional() =>
                    {
                        records += 1;
                        let mut inner = self.lock();
                        let held = inner.txn_pending.entry((header.producer_id, p.index)).or_default();
                        held.push((group, topic, partition, v));
                    }
                    Ok(Some(r)) => {
                        records += 1;
                        self.replay(&r, now);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "skipping undecodable record in {OFFSETS_TOPIC}"),
                }
            }
        });
        records
    }

    fn replay(&self, r: &LogRecord, now: Now) {
        let group_id = r.group().to_string();
        let mut inner = self.lock();
        let g = inner.groups.entry(group_id.clone()).or_insert_with(|| AnyGroup::Classic(Group::new(&group_id, now)));
        // The group's type follows the records (KIP-848 migration): a ConsumerGroupMetadata
        // record makes it a consumer group (membership is not persisted, so without
        // members), its tombstone or a later classic GroupMetadata record a classic one.
        // Committed offsets stay with the group whatever its type.
        match r {
            LogRecord::ConsumerGroup { epoch: Some(epoch), .. } => {
                let mut cg = ConsumerGroup::new(&group_id, now);
                cg.group_epoch = *epoch;
                cg.assignment_epoch = *epoch;
                cg.offsets = std::mem::take(g.offsets_mut());
                *g = AnyGroup::Consumer(cg);
                return;
            }
            LogRecord::ConsumerGroup { epoch: None, .. } => {
                if let AnyGroup::Consumer(c) = g {
                    let mut classic = Group::new(&group_id, now);
                    classic.offsets = std::mem::take(&mut c.offsets);
                    *g = AnyGroup::Classic(classic);
                }
                return;
            }
            LogRecord::Group { .. } if matches!(g, AnyGroup::Consumer(_)) => {
                let mut classic = Group::new(&group_id, now);
                classic.offsets = std::mem::take(g.offsets_mut());
                classic.apply(r, now);
                *g = AnyGroup::Classic(classic);
                return;
            }
            _ => {}
        }
        match (g, r) {
            (AnyGroup::Classic(c), LogRecord::Group { value: Some(_), .. }) if c.state == State::Dead => {
                let mut fresh = Group::new(&group_id, now);
                fresh.apply(r, now);
                *c = fresh;
            }
            (AnyGroup::Classic(c), _) => {
                if c.state == State::Dead && matches!(r, LogRecord::Offset { value: Some(_), .. }) {
                    *c = Group::new(&group_id, now);
                }
                c.apply(r, now);
            }
            (AnyGroup::Consumer(c), LogRecord::Offset { topic, partition, value, .. }) => match value {
                Some(v) => {
                    c.offsets.insert((topic.clone(), *partition), v.clone());
                }
                None => {
                    c.offsets.remove(&(topic.clone(), *partition));
                }
            },
            (AnyGroup::Consumer(_), LogRecord::Group { .. } | LogRecord::ConsumerGroup { .. }) => {}
        }
    }

    /// Drops offsets of member-less groups older than `offsets.retention.minutes` as of
    /// `now` (tombstones first), and forgets groups left with nothing. The timer task runs
    /// this every `offsets.retention.check.interval.ms`.
    pub fn expire_offsets(&self, meta: &Metadata, now: Now) {
        let retention = self.config.offsets_retention_ms;
        let mut inner = self.lock();
        let mut by_group: Vec<(String, Vec<LogRecord>)> = Vec::new();
        for (id, g) in &inner.groups {
            let empty_since = match g {
                AnyGroup::Classic(c) if c.members.is_empty() => Some(c.state_timestamp),
                AnyGroup::Consumer(c) if c.members.is_empty() => Some(c.state_timestamp),
                _ => None,
            };
            let Some(since) = empty_since else { continue };
            let expired: Vec<LogRecord> = g
                .offsets()
                .iter()
                .filter(|(_, v)| since.max(v.commit_timestamp) + retention <= now.wall)
                .map(|((t, p), _)| LogRecord::Offset {
                    group: id.clone(),
                    topic: t.clone(),
                    partition: *p,
                    value: None,
                })
                .collect();
            if !expired.is_empty() {
                by_group.push((id.clone(), expired));
            }
        }
        for (id, records) in by_group {
            if Self::append(meta, &id, &records, now).is_err() {
                continue;
            }
            tracing::info!(group = %id, offsets = records.len(), "expired committed offsets");
            if let Some(g) = inner.groups.get_mut(&id) {
                for r in &records {
                    if let LogRecord::Offset { topic, partition, .. } = r {
                        g.offsets_mut().remove(&(topic.clone(), *partition));
                    }
                }
            }
        }
        // A consumer group left with nothing is deleted in the log too, so it does not come
        // back as an empty consumer group on the next start.
        let gone: Vec<String> = inner
            .groups
            .iter()
            .filter(|(_, g)| matches!(g, AnyGroup::Consumer(_)) && g.is_empty() && g.offsets().is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            let tombstone = [LogRecord::ConsumerGroup { group: id.clone(), epoch: None }];
            if Self::append(meta, &id, &tombstone, now).is_ok() {
                inner.groups.remove(&id);
            }
        }
        inner.groups.retain(|_, g| matches!(g, AnyGroup::Consumer(_)) || !(g.is_empty() && g.offsets().is_empty()));
    }

    /// Runs timers until the broker is dropped: session expiry, join deadlines, retention.
    pub async fn run_timers(coord: std::sync::Weak<Coordinator>, meta: std::sync::Weak<Metadata>) {
        let mut next_retention = Instant::now();
        loop {
            let (Some(coord), Some(c)) = (coord.upgrade(), meta.upgrade()) else { return };
            let now = coord.now();
            if coord.is_loaded() {
                let mut inner = coord.lock();
                let ids: Vec<String> = inner.groups.keys().cloned().collect();
                for id in ids {
                    let out = match inner.groups.get_mut(&id) {
                        Some(AnyGroup::Classic(g)) if g.next_deadline().is_some_and(|d| d <= now.mono) => g.tick(now),
                        Some(AnyGroup::Consumer(g)) => {
                            g.tick(now, &coord.config);
                            // A fenced consumer-protocol member may leave only classic ones.
                            coord.maybe_downgrade(&mut inner, &c, &id, now);
                            Outcome::default()
                        }
                        _ => continue,
                    };
                    Self::carry_out(&mut inner, &c, &id, out, now);
                }
                let departed = Self::expire_share_groups(&mut inner, now);
                drop(inner);
                coord.share_members_departed(departed);
                if Instant::now() >= next_retention {
                    coord.expire_offsets(&c, now);
                    next_retention = Instant::now() + Duration::from_millis(coord.config.retention_check_interval_ms);
                }
            }
            let next = {
                let inner = coord.lock();
                let shares = inner.shares.values().filter_map(|g| g.next_deadline()).map(|d| d.max(0) as u64);
                inner.groups.values().filter_map(AnyGroup::next_deadline).chain(shares).min()
            };
            let sleep_until = match next {
                Some(d) => coord.epoch + Duration::from_millis(d),
                None => Instant::now() + Duration::from_secs(60),
            }
            .min(next_retention);
            let wake = coord.wake.clone();
            drop(c);
            drop(coord);
            tokio::select! {
                _ = tokio::time::sleep_until(sleep_until) => {}
                _ = wake.notified() => {}
            }
        }
    }
}

impl Coordinator {
    /// Lets departing share-group members' records be released on this broker.
    pub fn attach_shares(&self, shares: &Arc<crate::share::broker::ShareState>) {
        let _ = self.shares.set(Arc::downgrade(shares));
    }

    /// ShareGroupHeartbeat (KIP-932): join, stay or leave a share group. The group's own
    /// configs (`share.session.timeout.ms`, `share.heartbeat.interval.ms`) override the
    /// broker's `group.share.*` settings.
    pub fn share_heartbeat(
        &self,
        meta: &Metadata,
        group_id: &str,
        req: crate::share::group::Heartbeat,
    ) -> Result<crate::share::group::HeartbeatAnswer, (ErrorCode, String)> {
        if !self.is_loaded() {
            return Err((ErrorCode::CoordinatorLoadInProgress, "loading".into()));
        }
        if !self.owns(group_id) {
            return Err((ErrorCode::NotCoordinator, "not the coordinator of this group".into()));
        }
        if group_id.is_empty() {
            return Err((ErrorCode::InvalidGroupId, "empty group id".into()));
        }
        let config = self.share_group_config(meta, group_id);
        let topics: crate::share::group::Topics = meta
            .topics()
            .into_iter()
            .filter(|t| !t.name.starts_with("__"))
            .map(|t| (t.name.to_string(), (t.id.0, t.partitions.len() as i32)))
            .collect();
        let now = self.now();
        let mut inner = self.lock();
        if inner.groups.get(group_id).is_some_and(|g| !matches!(g, AnyGroup::Classic(c) if c.state == State::Dead)) {
            return Err((ErrorCode::GroupIdNotFound, format!("Group {group_id} is not a share group.")));
        }
        let group =
            inner.shares.entry(group_id.to_string()).or_insert_with(|| crate::share::group::ShareGroup::new(config));
        group.set_config(config);
        let result =
            group.heartbeat(req, &topics, now.mono as i64).map_err(|e| (e.error_code(), e.message().to_string()));
        // A member that leaves keeps its records until it closes its share sessions (its
        // final ShareFetch or ShareAcknowledge, which librdkafka sends after the leave,
        // with the acknowledgements of what it processed): releasing them here would
        // redeliver records about to be accepted. Only expiry releases (below).
        group.take_departed();
        drop(inner);
        self.wake.notify_one();
        result
    }

    /// ShareGroupDescribe: the group, or why not (NOT_COORDINATOR, GROUP_ID_NOT_FOUND).
    pub fn describe_share_group(&self, group_id: &str) -> Result<crate::share::group::GroupDescription, ErrorCode> {
        if !self.is_loaded() {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        self.lock().shares.get(group_id).map(|g| g.describe()).ok_or(ErrorCode::GroupIdNotFound)
    }

    /// Whether an admin may read (`alter` false) or alter and delete the share-group
    /// offsets of `group_id` here (Kafka's rules): this broker coordinates it, it is not
    /// a classic or consumer group (GROUP_ID_NOT_FOUND, as Kafka answers for the wrong
    /// type) and, to alter, it has no members (NON_EMPTY_GROUP). A share group not known
    /// since the start has none.
    pub fn share_offsets_admin(&self, group_id: &str, alter: bool) -> Result<(), ErrorCode> {
        if !self.is_loaded() {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(group_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        let inner = self.lock();
        if inner.groups.contains_key(group_id) {
            return Err(ErrorCode::GroupIdNotFound);
        }
        match inner.shares.get(group_id) {
            Some(g) if alter && !g.is_empty() => Err(ErrorCode::NonEmptyGroup),
            _ => Ok(()),
        }
    }

    /// Runs `f` over every share group with its state name (ListGroups, metrics).
    pub fn for_each_share_group(&self, mut f: impl FnMut(&str, &'static str)) {
        for (id, g) in &self.lock().shares {
            f(id, g.describe().state);
        }
    }

    fn share_group_config(&self, meta: &Metadata, group_id: &str) -> crate::share::group::ShareGroupConfig {
        let s = &self.config.share;
        let overrides = meta.group_configs(group_id);
        let get = |k: &str, default: i32| overrides.get(k).and_then(|v| v.trim().parse().ok()).unwrap_or(default);
        crate::share::group::ShareGroupConfig {
            heartbeat_interval_ms: get("share.heartbeat.interval.ms", s.heartbeat_interval_ms),
            session_timeout_ms: get("share.session.timeout.ms", s.session_timeout_ms),
            max_size: s.max_size,
        }
    }

    /// Removes share-group members whose session timed out; returns (group, member).
    fn expire_share_groups(inner: &mut Inner, now: Now) -> Vec<(String, String)> {
        let mut departed = Vec::new();
        for (id, g) in inner.shares.iter_mut() {
            if g.next_deadline().is_some_and(|d| d <= now.mono as i64) {
                for m in g.expire(now.mono as i64) {
                    tracing::info!(group = %id, member = %m, "share-group member expired");
                }
            }
            departed.extend(g.take_departed().into_iter().map(|m| (id.clone(), m)));
        }
        departed
    }

    fn share_members_departed(&self, departed: Vec<(String, String)>) {
        if departed.is_empty() {
            return;
        }
        if let Some(state) = self.shares.get().and_then(std::sync::Weak::upgrade) {
            for (group, member) in departed {
                state.member_departed(&group, &member);
            }
        }
    }
}

/// Spawns the loader and the timer task for a freshly opened meta.
pub fn start(groups: &Arc<Coordinator>, meta: &Arc<Metadata>) {
    let _ = groups.meta.set(Arc::downgrade(meta));
    let (g, m) = (groups.clone(), meta.clone());
    tokio::task::spawn_blocking(move || g.load(&m));
    tokio::spawn(Coordinator::run_timers(Arc::downgrade(groups), Arc::downgrade(meta)));
    if let Some(q) = meta.quorum() {
        // Leadership of __consumer_offsets partitions moves with the metadata.
        let (g, m, mut rx) = (Arc::downgrade(groups), Arc::downgrade(meta), q.published());
        tokio::spawn(async move {
            loop {
                // Also every half second: the partitions take their new roles in another
                // task, possibly just after this one saw the change.
                if let Ok(Err(_)) = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await {
                    return;
                }
                let (Some(g), Some(m)) = (g.upgrade(), m.upgrade()) else { return };
                if g.is_loaded() {
                    let _ = tokio::task::spawn_blocking(move || g.follow_leadership(&m)).await;
                }
            }
        });
    }
}

/// The `__consumer_offsets` partition holding `group`'s records.
pub fn offsets_partition(meta: &Metadata, group: &str) -> Option<Arc<Partition>> {
    let topic = meta.topic(OFFSETS_TOPIC)?;
    topic.partitions.get(partition_for(group, topic.partitions.len() as i32) as usize).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> Coordinator {
        let config =
            crate::config::Config::from_sources(None, &Default::default(), &Default::default()).expect("defaults");
        Coordinator::new(config.group)
    }

    fn pending(c: &Coordinator, partition: i32, offset: i64) -> PendingCommit {
        let now = c.now();
        let mut inner = c.lock();
        inner.groups.entry("g".into()).or_insert_with(|| AnyGroup::Classic(Group::new("g", now)));
        let loads = inner.load_count(partition);
        let value = OffsetValue { offset, leader_epoch: -1, metadata: String::new(), commit_timestamp: now.wall };
        PendingCommit { group: "g".into(), partition, end: offset, loads, values: vec![("t".into(), 0, value)] }
    }

    fn visible(c: &Coordinator) -> Option<i64> {
        c.lock().groups.get("g").and_then(|g| g.offsets().get(&("t".to_string(), 0)).map(|v| v.offset))
    }

    /// The nemesis run that found it: a failover moved another `__consumer_offsets`
    /// partition to the coordinator while a commit waited for its followers; the
    /// acknowledged commit never became visible and OffsetFetch went back.
    #[test]
    fn a_commit_survives_the_takeover_of_another_offsets_partition() {
        let c = coordinator();
        let p = pending(&c, 3, 10);
        *c.lock().loads.entry(5).or_default() += 1;
        c.apply_commit(p);
        assert_eq!(visible(&c), Some(10));
    }

    /// A reload of the commit's own partition replayed it from the log: the pending
    /// value must not overwrite what the replay found.
    #[test]
    fn a_commit_is_not_applied_over_a_reload_of_its_partition() {
        let c = coordinator();
        let p = pending(&c, 3, 10);
        *c.lock().loads.entry(3).or_default() += 1;
        c.apply_commit(p);
        assert_eq!(visible(&c), None);
    }
}
