//! A broker's share-partitions and share sessions (KIP-932, ADR 0016 step 3): the state
//! ShareFetch and ShareAcknowledge work on, beside the partitions this broker leads.
//!
//! One mutex guards every share-partition and the session cache: each request holds it
//! for a few map operations and zero-copy log reads, never across an await.
//!
//! Durability (ADR 0016 step 4): a share-partition is opened from the state its share
//! coordinator holds ([`super::coordinator`]: the leader of its `__share_group_state`
//! partition, this broker or another), with a first write that fences any earlier leader;
//! every acknowledgement is applied, then written there, and answered only once the
//! write is committed. So a restart or a leader change neither loses acknowledgements
//! nor delivers acknowledged records again; records acquired but not acknowledged are
//! delivered again (locks do not survive). Writes of one share-partition are serialized
//! and coalesced: a writer that finds its change already written by the one before it
//! writes nothing.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strom_protocol::records::{split_batches, BatchHeader};
use tokio::sync::Notify;
use tracing::Instrument;

use super::coordinator::{Coordinator, ReadState, Refusal};
use super::group::{GroupError, SessionView, ShareSessions, TopicId, TopicPartition};
use super::partition::Snapshot;
use super::partition::{AckSummary, Acquired, Limits, SharePartition, StateCounts};
use super::state::{self, SHARE_STATE_TOPIC};
use crate::config::group::ShareConfig;
use crate::error::ErrorCode;
use crate::metadata::{Metadata, Partition};
use strom_protocol::Message;

/// A share-partition: (share group, topic id, partition index).
pub type Key = (String, TopicId, i32);

/// What one acquisition handed a member: the batches holding its records and the ranges
/// it now holds.
#[derive(Debug, Default)]
pub struct Grant {
    /// Whole batches overlapping `acquired` (the client drops records outside them).
    pub records: Bytes,
    /// The acquired ranges with their delivery counts.
    pub acquired: Vec<Acquired>,
}

/// Totals since start, for metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Records acquired by ShareFetch (redeliveries included).
    pub acquired: u64,
    /// Records accepted.
    pub accepted: u64,
    /// Records released by their consumer, or given back when it left.
    pub released: u64,
    /// Records rejected, or archived at the delivery limit when released or timed out.
    pub archived: u64,
    /// Records whose lock ran out.
    pub lock_timeouts: u64,
    /// Records whose lock was renewed (KIP-1222 RENEW acknowledgements).
    pub renewed: u64,
}

/// How a ShareFetch acquires records.
#[derive(Debug, Default, Clone, Copy)]
pub struct AcquireMode {
    /// The group's `share.isolation.level` is `read_committed`.
    pub read_committed: bool,
    /// KIP-1206's record-limit mode (ShareFetch v2, `ShareAcquireMode` 1): never more than
    /// `max_records` records, cutting a batch if need be; otherwise whole batches.
    pub record_limit: bool,
}

#[derive(Default)]
struct State {
    partitions: HashMap<Key, SharePartition>,
    sessions: Option<ShareSessions>,
    totals: Totals,
    /// The connection (client address) each open share session was opened on, and the
    /// sessions per connection: Kafka closes a member's share session, releasing its
    /// records, when that connection closes.
    session_conn: HashMap<(String, String), SocketAddr>,
    conn_sessions: HashMap<SocketAddr, Vec<(String, String)>>,
    /// How each share-partition here was opened, and its writes.
    opened: HashMap<Key, Opened>,
    /// Serializes the opening and the state writes of each share-partition.
    writers: HashMap<Key, Arc<tokio::sync::Mutex<()>>>,
}

/// A share-partition's place in its durable history.
#[derive(Debug, Clone, Copy)]
struct Opened {
    /// The data partition's leader epoch when this broker opened it: another epoch means
    /// leadership moved (and maybe came back), so the state here is stale.
    leader_epoch: i32,
    /// The coordinator's state epoch (bumped by AlterShareGroupOffsets).
    state_epoch: i32,
    /// Changes applied so far, and how many of them are written.
    version: u64,
    persisted: u64,
}

/// Every share-partition and share session of this broker.
pub struct ShareState {
    config: ShareConfig,
    inner: Mutex<State>,
    /// Records became AVAILABLE again (a lock ran out, a member released or left):
    /// parked ShareFetches look again.
    pub released: Notify,
    /// A lock was taken whose deadline may be the earliest: the expiry task recomputes
    /// its sleep.
    timer: Notify,
    /// Where `__share_group_state` is; set when the node is assembled.
    meta: OnceLock<Weak<Metadata>>,
    /// The share coordinator: the state partitions this broker leads.
    pub coordinator: Coordinator,
    /// One inter-broker connection per share coordinator elsewhere, reused.
    clients: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<Option<strom_client::Client>>>>>,
}

impl std::fmt::Debug for ShareState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareState").finish_non_exhaustive()
    }
}

impl ShareState {
    /// An empty state with the broker's `group.share.*` settings.
    pub fn new(config: ShareConfig) -> ShareState {
        let sessions = ShareSessions::new(config.max_share_sessions, i64::from(config.session_timeout_ms));
        ShareState {
            config,
            inner: Mutex::new(State { sessions: Some(sessions), ..State::default() }),
            released: Notify::new(),
            timer: Notify::new(),
            meta: OnceLock::new(),
            coordinator: Coordinator::default(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Gives the state its metadata, for `__share_group_state`.
    pub fn attach(&self, meta: &Arc<Metadata>) {
        let _ = self.meta.set(Arc::downgrade(meta));
    }

    /// The metadata, once attached: share-partition state is durable then (unit tests
    /// of this module run without).
    fn store(&self) -> Option<Arc<Metadata>> {
        self.meta.get().and_then(Weak::upgrade)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limits of a group's share-partitions: the group's `share.record.lock.duration.ms`
    /// over the broker's.
    pub fn limits(&self, group_configs: &std::collections::BTreeMap<String, String>) -> Limits {
        let lock_ms = group_configs
            .get("share.record.lock.duration.ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(self.config.record_lock_duration_ms);
        Limits::new(lock_ms, self.config.delivery_count_limit, self.config.partition_max_record_locks)
    }

    /// Applies a ShareFetch's session fields (see [`ShareSessions::fetch`]) for a client on
    /// connection `conn`; an evicted session's member gives up its records on its partitions.
    #[allow(clippy::too_many_arguments)]
    pub fn session_fetch(
        self: &Arc<Self>,
        conn: SocketAddr,
        group: &str,
        member: &str,
        epoch: i32,
        add: &[TopicPartition],
        forget: &[TopicPartition],
        now_ms: i64,
    ) -> Result<SessionView, GroupError> {
        let mut st = self.lock();
        let sessions = st.sessions.get_or_insert_with(|| ShareSessions::new(1, 0));
        let view = sessions.fetch(group, member, epoch, add, forget, now_ms);
        let evicted = sessions.take_evicted();
        let who = (group.to_string(), member.to_string());
        match &view {
            Ok(v) if v.closed => {
                st.session_conn.remove(&who);
            }
            Ok(_) if epoch == super::group::INITIAL_SESSION_EPOCH => {
                st.session_conn.insert(who.clone(), conn);
                let on_conn = st.conn_sessions.entry(conn).or_default();
                if !on_conn.contains(&who) {
                    on_conn.push(who);
                }
            }
            _ => {}
        }
        let mut released = 0;
        let mut idle = Vec::new();
        for e in evicted {
            st.session_conn.remove(&(e.group_id.clone(), e.member_id.clone()));
            released += release(&mut st, &e.group_id, &e.member_id, Some(&e.partitions));
            idle.push((e.group_id.clone(), idle_keys(&st, &e.group_id)));
        }
        drop(st);
        for (group, keys) in idle {
            self.retire(group, keys);
        }
        if released > 0 {
            self.released.notify_waiters();
        }
        view
    }

    /// Applies a ShareAcknowledge's session fields (see [`ShareSessions::acknowledge`]).
    pub fn session_acknowledge(
        &self,
        group: &str,
        member: &str,
        epoch: i32,
        now_ms: i64,
    ) -> Result<SessionView, GroupError> {
        let mut st = self.lock();
        let sessions = st.sessions.get_or_insert_with(|| ShareSessions::new(1, 0));
        let view = sessions.acknowledge(group, member, epoch, now_ms);
        if view.as_ref().is_ok_and(|v| v.closed) {
            st.session_conn.remove(&(group.to_string(), member.to_string()));
        }
        view
    }

    /// A client connection closed: the share sessions opened on it (and not reopened on
    /// another connection since) close, and their members' records on their partitions
    /// go back at once, as Kafka does, instead of at their lock deadlines.
    pub fn connection_closed(self: &Arc<Self>, conn: SocketAddr) {
        let mut st = self.lock();
        let Some(opened) = st.conn_sessions.remove(&conn) else { return };
        let mut released = 0;
        let mut idle = Vec::new();
        for who in opened {
            if st.session_conn.get(&who) != Some(&conn) {
                continue;
            }
            st.session_conn.remove(&who);
            let partitions = st.sessions.as_mut().and_then(|s| s.remove_member(&who.0, &who.1));
            if let Some(partitions) = partitions {
                released += release(&mut st, &who.0, &who.1, Some(&partitions));
            }
            idle.push((who.0.clone(), idle_keys(&st, &who.0)));
        }
        drop(st);
        for (group, keys) in idle {
            self.retire(group, keys);
        }
        if released > 0 {
            tracing::debug!(%conn, released, "share sessions closed with their connection");
            self.released.notify_waiters();
        }
    }

    /// Opens the share-partition `key` of `partition` (led here at `partition`'s leader
    /// epoch) if it is not open at that epoch: from the state its share coordinator holds,
    /// or new at `start()` (from `share.auto.offset.reset`); either way its state is
    /// written back first, which fences the previous leader and keeps a `latest` start
    /// from moving past records produced before a restart.
    pub async fn open(
        &self,
        key: &Key,
        partition: &Partition,
        limits: Limits,
        start: impl FnOnce() -> i64,
    ) -> Result<(), Refusal> {
        let epoch = partition.leader_epoch();
        let is_open = |st: &State| st.opened.get(key).is_some_and(|o| o.leader_epoch == epoch);
        let Some(meta) = self.store() else {
            let mut st = self.lock();
            if !is_open(&st) {
                st.partitions.insert(key.clone(), SharePartition::new(limits, start()));
                st.opened.insert(key.clone(), Opened { leader_epoch: epoch, state_epoch: 0, version: 0, persisted: 0 });
            }
            return Ok(());
        };
        let writer = {
            let mut st = self.lock();
            if is_open(&st) {
                return Ok(());
            }
            st.writers.entry(key.clone()).or_default().clone()
        };
        let _serial = writer.lock().await;
        if is_open(&self.lock()) {
            return Ok(());
        }
        let span = tracing::info_span!("share_partition_open", group = %key.0, partition = key.2, epoch);
        async {
            let (state_epoch, sp) = match self.read_state(&meta, key, epoch).await? {
                Some((state_epoch, snapshot)) => match SharePartition::from_snapshot(limits, &snapshot) {
                    Ok(sp) => (state_epoch, sp),
                    Err(e) => {
                        tracing::warn!(error = %e, "share-partition state unusable; starting again");
                        (state_epoch, SharePartition::new(limits, start()))
                    }
                },
                None => (0, SharePartition::new(limits, start())),
            };
            self.write_state(&meta, key, state_epoch, epoch, sp.snapshot()).await?;
            tracing::info!(start = sp.start(), "share-partition opened");
            let mut st = self.lock();
            st.partitions.insert(key.clone(), sp);
            st.opened.insert(key.clone(), Opened { leader_epoch: epoch, state_epoch, version: 0, persisted: 0 });
            Ok(())
        }
        .instrument(span)
        .await
    }

    /// Applies a member's acknowledgements to one share-partition (all or nothing), then
    /// writes its state and answers once the write is committed. `leader_epoch`: the
    /// partition's, which the share-partition must have been opened at.
    pub async fn acknowledge(
        &self,
        key: &Key,
        member: &str,
        acks: &[(i64, i64, Vec<u8>)],
        now_ms: i64,
        (limits, leader_epoch): (Limits, i32),
    ) -> Result<AckSummary, Refusal> {
        let result = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let current = st.opened.get(key).is_some_and(|o| o.leader_epoch == leader_epoch);
            let Some(sp) = st.partitions.get_mut(key).filter(|_| current) else {
                // Nothing was acquired here at this leader epoch: whatever the member
                // claims to hold, it holds nothing.
                let first = acks.first().map_or(0, |a| a.0);
                let e = super::partition::AckError::NotAcquired(first);
                return Err((e.error_code(), e.to_string()));
            };
            // The group's current lock duration: a RENEW locks for that long.
            sp.set_limits(limits);
            // Locks that ran out are released before acknowledging, so an acknowledgement
            // after the deadline is refused even if the expiry task has not run yet.
            let expired = sp.expire(now_ms) as u64;
            st.totals.lock_timeouts += expired;
            st.totals.archived += sp.take_archived();
            let result = sp.acknowledge(member, now_ms, acks).map_err(|e| (e.error_code(), e.to_string()));
            if let Ok(s) = &result {
                st.totals.accepted += s.accepted;
                st.totals.released += s.released;
                st.totals.archived += s.archived;
                st.totals.renewed += s.renewed;
                // A renewal alone changes no durable state: nothing to write for it.
                if let Some(o) = st.opened.get_mut(key).filter(|_| s.changes_state()) {
                    o.version += 1;
                }
            }
            let notify = expired > 0 || result.as_ref().is_ok_and(|s| s.released > 0);
            drop(guard);
            if notify {
                self.released.notify_waiters();
            }
            result
        };
        let summary = result?;
        self.persist(key).await?;
        Ok(summary)
    }

    /// Writes the share-partition's state if changes are not written yet. Writers queue
    /// per share-partition; each writes the state as it is when its turn comes, so one
    /// write covers every change before it.
    async fn persist(&self, key: &Key) -> Result<(), Refusal> {
        let Some(meta) = self.store() else { return Ok(()) };
        let Some(writer) = self.lock().writers.get(key).cloned() else { return Ok(()) };
        let _serial = writer.lock().await;
        let gone = || (ErrorCode::NotLeaderOrFollower, "the share-partition moved meanwhile".to_string());
        let (version, opened, snapshot) = {
            let st = self.lock();
            let (Some(o), Some(sp)) = (st.opened.get(key), st.partitions.get(key)) else { return Err(gone()) };
            if o.persisted >= o.version {
                return Ok(());
            }
            (o.version, *o, sp.snapshot())
        };
        match self.write_state(&meta, key, opened.state_epoch, opened.leader_epoch, snapshot).await {
            Ok(()) => {
                if let Some(o) = self.lock().opened.get_mut(key).filter(|o| o.leader_epoch == opened.leader_epoch) {
                    o.persisted = o.persisted.max(version);
                }
                Ok(())
            }
            Err((code @ (ErrorCode::FencedLeaderEpoch | ErrorCode::FencedStateEpoch), msg)) => {
                // Another leader took over, or an admin reset or deleted the state: what
                // is here is stale, and the next ShareFetch opens it again.
                tracing::info!(group = %key.0, partition = key.2, ?code, "share-partition state fenced");
                self.forget(key);
                Err((code, msg))
            }
            Err(e) => Err(e),
        }
    }

    /// Acquires records of `partition` for `member` from its share-partition (opened by
    /// [`ShareState::open`]; nothing otherwise): reads whole batches
    /// from the first AVAILABLE offset, at most `max_bytes` (at least one batch), and
    /// acquires up to `max_records` records of them.
    ///
    /// `mode.read_committed` (the group's `share.isolation.level`): only records below the
    /// last stable offset are acquired, and those of aborted transactions never are (they
    /// are archived as the gaps they leave, like the transaction markers), as Kafka does.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &self,
        key: &Key,
        member: &str,
        partition: &Partition,
        limits: Limits,
        mode: AcquireMode,
        max_records: usize,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<Grant, ErrorCode> {
        let read_committed = mode.read_committed;
        let mut st = self.lock();
        let st = &mut *st;
        let current = st.opened.get(key).is_some_and(|o| o.leader_epoch == partition.leader_epoch());
        if !current {
            return Ok(Grant::default());
        }
        let Some(sp) = st.partitions.get_mut(key) else { return Ok(Grant::default()) };
        sp.set_limits(limits);
        let expired = sp.expire(now_ms) as u64;
        st.totals.lock_timeouts += expired;
        st.totals.archived += sp.take_archived();
        sp.log_start_moved(partition.log_start_offset());
        let from = sp.next_fetch_offset();
        let bound = if read_committed { partition.last_stable_offset() } else { partition.high_watermark() };
        if from >= bound || max_records == 0 {
            return Ok(Grant::default());
        }
        let data = if read_committed {
            partition.read_committed(from, max_bytes.max(1))?
        } else {
            partition.read(from, max_bytes.max(1))?
        };
        let mut headers: Vec<(BatchHeader, std::ops::Range<usize>)> = Vec::new();
        for span in split_batches(&data) {
            let Some(range) = span.ok() else { break };
            let Some(h) = data.get(range.clone()).and_then(|b| BatchHeader::parse(b).ok()) else { break };
            headers.push((h, range));
        }
        let aborted = match (read_committed, headers.last()) {
            (true, Some((last, _))) => partition.aborted_transactions(from, last.last_offset().saturating_add(1)),
            _ => Vec::new(),
        };
        let batches = deliverable(headers, aborted);
        let offsets: Vec<(i64, i64)> = batches.iter().map(|(f, l, _)| (*f, *l)).collect();
        let acquired = if mode.record_limit {
            sp.acquire_at_most(member, now_ms, &offsets, max_records)
        } else {
            sp.acquire(member, now_ms, &offsets, max_records)
        };
        if acquired.is_empty() {
            return Ok(Grant::default());
        }
        st.totals.acquired += acquired.iter().map(|a| (a.last - a.first + 1).max(0) as u64).sum::<u64>();
        // Delivery counts changed: written with the next acknowledgement, or when the
        // group's last session here closes.
        if let Some(o) = st.opened.get_mut(key) {
            o.version += 1;
        }
        let wanted: Vec<std::ops::Range<usize>> = batches
            .into_iter()
            .filter(|(f, l, _)| acquired.iter().any(|a| a.first <= *l && *f <= a.last))
            .map(|(_, _, r)| r)
            .collect();
        self.timer.notify_one();
        Ok(Grant { records: concat(&data, &wanted), acquired })
    }

    /// Releases what a closing member holds on `partitions` (all of the group's when
    /// `None`); the group's share-partitions go if it was the last session here.
    pub fn release_member(self: &Arc<Self>, group: &str, member: &str, partitions: Option<&[TopicPartition]>) {
        let (released, idle) = {
            let mut st = self.lock();
            let released = release(&mut st, group, member, partitions);
            (released, idle_keys(&st, group))
        };
        self.retire(group.to_string(), idle);
        if released > 0 {
            self.released.notify_waiters();
        }
    }

    /// A member's group session expired (it stopped heartbeating): its records go back
    /// at once instead of at their lock deadlines. Its share session stays until it is
    /// closed or evicted, as Kafka's does until the connection closes.
    pub fn member_departed(&self, group: &str, member: &str) {
        let released = release(&mut self.lock(), group, member, None);
        tracing::debug!(group, member, released, "share-group member departed");
        if released > 0 {
            self.released.notify_waiters();
        }
    }

    /// DeleteGroups removed the (empty) group: its share-partitions here go, and the
    /// share coordinators delete its state (tombstones, so compaction drops the
    /// snapshots), which also fences the group's share-partitions on other leaders. The
    /// deletion runs in the background: the group is gone already.
    pub fn group_deleted(self: &Arc<Self>, group: &str) {
        self.lock().partitions.retain(|k, _| k.0 != group);
        let Some(meta) = self.store() else { return };
        // Kafka lists the share-partitions the group initialized; Strom does not keep that
        // list, so every partition of every topic is named and the coordinators delete
        // the keys they hold.
        let keys: Vec<Key> = meta
            .topics()
            .iter()
            .filter(|t| &*t.name != SHARE_STATE_TOPIC)
            .flat_map(|t| (0..t.partitions.len() as i32).map(|i| (group.to_string(), t.id.0, i)).collect::<Vec<_>>())
            .collect();
        let state = Arc::clone(self);
        let group = group.to_string();
        tokio::spawn(async move {
            for (key, e) in state.delete_state(&meta, keys).await {
                tracing::warn!(group, partition = key.2, error = %e.1, "could not delete share-partition state");
            }
        });
    }

    /// The last share session of a group closed here: its share-partitions are written
    /// (with the delivery counts of records acquired since the last acknowledgement, so a
    /// consumer that keeps crashing on a record still reaches the delivery limit) and
    /// then dropped, unless a session of the group came back meanwhile. The next
    /// ShareFetch opens them again from their coordinator — after an admin reset or
    /// delete of their state (AlterShareGroupOffsets, DeleteShareGroupOffsets: the group
    /// must be empty), from the new state rather than a stale copy.
    fn retire(self: &Arc<Self>, group: String, keys: Vec<Key>) {
        if keys.is_empty() || self.store().is_none() {
            return;
        }
        let state = Arc::clone(self);
        tokio::spawn(async move {
            for key in &keys {
                if let Err((code, msg)) = state.persist(key).await {
                    tracing::debug!(group = %key.0, partition = key.2, ?code, error = %msg, "idle share-partition not written");
                }
            }
            let mut st = state.lock();
            if st.session_conn.keys().any(|(g, _)| *g == group) {
                return;
            }
            for key in &keys {
                st.partitions.remove(key);
                st.opened.remove(key);
                st.writers.remove(key);
            }
        });
    }

    /// This broker stopped leading the partition, or its state was fenced: the
    /// share-partition is dropped here, and opened again from its coordinator's state if
    /// it is led here again.
    pub fn forget(&self, key: &Key) {
        let mut st = self.lock();
        st.partitions.remove(key);
        st.opened.remove(key);
    }

    /// The start offset and state counts of one share-partition, if it exists here.
    pub fn describe(&self, key: &Key) -> Option<(i64, StateCounts)> {
        self.lock().partitions.get(key).map(|sp| (sp.start(), sp.counts()))
    }

    /// Totals since start, share-partitions and open sessions.
    pub fn totals(&self) -> (Totals, usize, usize) {
        let st = self.lock();
        (st.totals, st.partitions.len(), st.sessions.as_ref().map_or(0, ShareSessions::len))
    }

    /// Releases locks past their deadline; returns how many records went back.
    fn expire(&self, now_ms: i64) -> u64 {
        let mut st = self.lock();
        let (mut n, mut archived) = (0u64, 0u64);
        for sp in st.partitions.values_mut() {
            n += sp.expire(now_ms) as u64;
            archived += sp.take_archived();
        }
        st.totals.lock_timeouts += n;
        st.totals.archived += archived;
        n
    }

    fn next_deadline(&self) -> Option<i64> {
        self.lock().partitions.values().filter_map(SharePartition::next_deadline).min()
    }
}

/// Where a key's share coordinator is.
enum Route {
    Here,
    Broker(i32),
}

/// Codes worth trying again after a moment: the coordinator is moving or catching up.
fn retriable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotCoordinator
            | ErrorCode::CoordinatorNotAvailable
            | ErrorCode::CoordinatorLoadInProgress
            | ErrorCode::NotLeaderOrFollower
            | ErrorCode::NotEnoughReplicas
            | ErrorCode::NotEnoughReplicasAfterAppend
            | ErrorCode::RequestTimedOut
    )
}

/// Runs `op` until it succeeds, fails for good, or `ATTEMPTS` tries went by (about five
/// seconds: a coordinator election takes less).
async fn retrying<T, F: Future<Output = Result<T, Refusal>>>(mut op: impl FnMut() -> F) -> Result<T, Refusal> {
    const ATTEMPTS: u64 = 12;
    let mut attempt = 1;
    loop {
        match op().await {
            Err((code, msg)) if retriable(code) && attempt < ATTEMPTS => {
                tracing::debug!(?code, error = %msg, attempt, "share coordinator not reachable yet");
                tokio::time::sleep(Duration::from_millis((100 * attempt).min(600))).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// One partition of a ReadShareGroupState answer: its state, `None` without any.
fn read_result(p: strom_protocol::read_share_group_state_response::PartitionResult) -> Result<ReadState, Refusal> {
    refusal(p.error_code, p.error_message)?;
    Ok((p.start_offset >= 0).then(|| {
        let batches = p
            .state_batches
            .iter()
            .map(|b| super::partition::StateBatch {
                first: b.first_offset,
                last: b.last_offset,
                state: b.delivery_state as u8,
                delivery_count: b.delivery_count,
            })
            .collect();
        (p.state_epoch, Snapshot { start_offset: p.start_offset, batches })
    }))
}

/// The first error of a per-partition answer, as a refusal.
fn refusal(code: i16, msg: Option<String>) -> Result<(), Refusal> {
    if code == 0 {
        return Ok(());
    }
    let c = ErrorCode::ALL.iter().copied().find(|c| c.code() == code).unwrap_or(ErrorCode::UnknownServerError);
    Err((c, msg.unwrap_or_else(|| format!("{c:?} ({code})"))))
}

impl ShareState {
    /// Where the share coordinator of `key` is.
    fn route(&self, meta: &Metadata, key: &Key) -> Result<Route, Refusal> {
        let unavailable = |m: &str| (ErrorCode::CoordinatorNotAvailable, m.to_string());
        let topic = meta.share_state_topic().ok_or_else(|| unavailable("cannot create __share_group_state"))?;
        let leader = meta.leader_of(&topic, state::partition_for(key, topic.partitions.len() as i32));
        if meta.quorum().is_none() || leader == meta.config.node_id {
            Ok(Route::Here)
        } else if leader < 0 {
            Err(unavailable("the state partition has no leader"))
        } else {
            Ok(Route::Broker(leader))
        }
    }

    /// Sends `req` (v0) to broker `id` over the inter-broker listener, on a reused connection.
    async fn call<Req: Message, Resp: Message>(&self, meta: &Metadata, id: i32, req: &Req) -> Result<Resp, Refusal> {
        self.call_at(meta, id, 0, req).await
    }

    /// [`Self::call`] at `version`.
    async fn call_at<Req: Message, Resp: Message>(
        &self,
        meta: &Metadata,
        id: i32,
        version: i16,
        req: &Req,
    ) -> Result<Resp, Refusal> {
        let unavailable = |e: String| (ErrorCode::CoordinatorNotAvailable, e);
        let slot = self.clients.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().clone();
        let mut client = slot.lock().await;
        if client.is_none() {
            let addr = meta.broker_address(id).ok_or_else(|| unavailable(format!("broker {id} unknown")))?;
            let c = strom_client::Client::connect_with(&addr, Duration::from_secs(5), &meta.config.inter_broker)
                .await
                .map_err(|e| unavailable(format!("{e:#}")))?;
            *client = Some(c);
        }
        let Some(c) = client.as_mut() else { return Err(unavailable("no connection".into())) };
        match tokio::time::timeout(Duration::from_secs(15), c.call_at::<Req, Resp>(version, req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => {
                *client = None;
                Err(unavailable(format!("{e:#}")))
            }
            Err(_) => {
                *client = None;
                Err(unavailable("the share coordinator did not answer".into()))
            }
        }
    }

    /// The high watermarks of `parts` (topic, partition): this broker's own where it leads
    /// the partition, else its leader's (ListOffsets, latest); left out when unknown.
    pub async fn high_watermarks(&self, meta: &Metadata, parts: &[(String, i32)]) -> HashMap<(String, i32), i64> {
        use strom_protocol::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
        use strom_protocol::{ListOffsetsRequest, ListOffsetsResponse};
        let mut out = HashMap::new();
        let mut remote: HashMap<i32, Vec<(String, i32)>> = HashMap::new();
        for (name, index) in parts {
            let Some(topic) = meta.topic(name) else { continue };
            let local = usize::try_from(*index).ok().and_then(|i| topic.partitions.get(i));
            match local {
                Some(p) if p.is_leader() && meta.leads_partition(p) => {
                    out.insert((name.clone(), *index), p.high_watermark());
                }
                _ => {
                    let leader = meta.leader_of(&topic, *index);
                    if leader >= 0 && leader != meta.config.node_id {
                        remote.entry(leader).or_default().push((name.clone(), *index));
                    }
                }
            }
        }
        for (id, parts) in remote {
            let mut topics: Vec<ListOffsetsTopic> = Vec::new();
            for (name, index) in parts {
                // -1: the latest offset, the high watermark at read_uncommitted.
                let p = ListOffsetsPartition { partition_index: index, timestamp: -1, ..Default::default() };
                match topics.iter_mut().find(|t| t.name == name) {
                    Some(t) => t.partitions.push(p),
                    None => topics.push(ListOffsetsTopic { name, partitions: vec![p], ..Default::default() }),
                }
            }
            let req = ListOffsetsRequest { replica_id: -1, topics, ..Default::default() };
            // v5: the oldest version with leader epochs and isolation levels that every
            // Strom broker serves.
            let Ok(resp) = self.call_at::<_, ListOffsetsResponse>(meta, id, 5, &req).await else { continue };
            for t in resp.topics {
                for p in t.partitions.into_iter().filter(|p| p.error_code == 0 && p.offset >= 0) {
                    out.insert((t.name.clone(), p.partition_index), p.offset);
                }
            }
        }
        out
    }

    /// ReadShareGroupState for one share-partition, here or at its coordinator.
    pub async fn read_state(&self, meta: &Metadata, key: &Key, leader_epoch: i32) -> Result<ReadState, Refusal> {
        use strom_protocol::read_share_group_state_request::{PartitionData, ReadStateData};
        use strom_protocol::{ReadShareGroupStateRequest, ReadShareGroupStateResponse};
        retrying(|| async {
            match self.route(meta, key)? {
                Route::Here => self.coordinator.read(meta, key, leader_epoch),
                Route::Broker(id) => {
                    let req = ReadShareGroupStateRequest {
                        group_id: key.0.clone(),
                        topics: vec![ReadStateData {
                            topic_id: strom_protocol::Uuid(key.1),
                            partitions: vec![PartitionData { partition: key.2, leader_epoch, ..Default::default() }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let resp: ReadShareGroupStateResponse = self.call(meta, id, &req).await?;
                    let Some(p) = resp.results.into_iter().flat_map(|r| r.partitions).next() else {
                        return Err((ErrorCode::CoordinatorNotAvailable, "an empty answer".into()));
                    };
                    read_result(p)
                }
            }
        })
        .await
    }

    /// The state of many share-partitions without fencing anyone (an admin's read:
    /// DescribeShareGroupOffsets): one ReadShareGroupState per coordinator broker.
    pub async fn read_states(&self, meta: &Metadata, keys: Vec<Key>) -> Vec<(Key, Result<ReadState, Refusal>)> {
        use strom_protocol::read_share_group_state_request::{PartitionData, ReadStateData};
        use strom_protocol::{ReadShareGroupStateRequest, ReadShareGroupStateResponse};
        let mut out = Vec::with_capacity(keys.len());
        let mut remote: HashMap<i32, Vec<Key>> = HashMap::new();
        for key in keys {
            match self.route(meta, &key) {
                Ok(Route::Here) => {
                    let r = self.coordinator.read(meta, &key, -1);
                    out.push((key, r));
                }
                Ok(Route::Broker(id)) => remote.entry(id).or_default().push(key),
                Err(e) => out.push((key, Err(e))),
            }
        }
        for (id, keys) in remote {
            let Some(group) = keys.first().map(|k| k.0.clone()) else { continue };
            let mut topics: Vec<ReadStateData> = Vec::new();
            for k in &keys {
                let part = PartitionData { partition: k.2, leader_epoch: -1, ..Default::default() };
                match topics.iter_mut().find(|t| t.topic_id.0 == k.1) {
                    Some(t) => t.partitions.push(part),
                    None => topics.push(ReadStateData {
                        topic_id: strom_protocol::Uuid(k.1),
                        partitions: vec![part],
                        ..Default::default()
                    }),
                }
            }
            let req = ReadShareGroupStateRequest { group_id: group.clone(), topics, ..Default::default() };
            match retrying(|| self.call::<_, ReadShareGroupStateResponse>(meta, id, &req)).await {
                Ok(resp) => {
                    for r in resp.results {
                        for p in r.partitions {
                            out.push(((group.clone(), r.topic_id.0, p.partition), read_result(p)));
                        }
                    }
                }
                Err(e) => out.extend(keys.into_iter().map(|k| (k, Err(e.clone())))),
            }
        }
        out
    }

    /// WriteShareGroupState for one share-partition, here or at its coordinator; returns
    /// once the write is committed. `leader_epoch` -1 is an admin's reset to
    /// `snapshot.start_offset` (AlterShareGroupOffsets), which bumps the state epoch.
    pub async fn write_state(
        &self,
        meta: &Metadata,
        key: &Key,
        state_epoch: i32,
        leader_epoch: i32,
        snapshot: Snapshot,
    ) -> Result<(), Refusal> {
        use strom_protocol::write_share_group_state_request::{PartitionData, StateBatch, WriteStateData};
        use strom_protocol::{WriteShareGroupStateRequest, WriteShareGroupStateResponse};
        retrying(|| async {
            match self.route(meta, key)? {
                Route::Here if leader_epoch < 0 => self.coordinator.reset(meta, key, snapshot.start_offset).await,
                Route::Here => self.coordinator.write(meta, key, state_epoch, leader_epoch, snapshot.clone()).await,
                Route::Broker(id) => {
                    let state_batches = snapshot
                        .batches
                        .iter()
                        .map(|b| StateBatch {
                            first_offset: b.first,
                            last_offset: b.last,
                            delivery_state: b.state as i8,
                            delivery_count: b.delivery_count,
                            ..Default::default()
                        })
                        .collect();
                    let req = WriteShareGroupStateRequest {
                        group_id: key.0.clone(),
                        topics: vec![WriteStateData {
                            topic_id: strom_protocol::Uuid(key.1),
                            partitions: vec![PartitionData {
                                partition: key.2,
                                state_epoch,
                                leader_epoch,
                                start_offset: snapshot.start_offset,
                                state_batches,
                                ..Default::default()
                            }],
                            ..Default::default()
                        }],
                        ..Default::default()
                    };
                    let resp: WriteShareGroupStateResponse = self.call(meta, id, &req).await?;
                    let Some(p) = resp.results.into_iter().flat_map(|r| r.partitions).next() else {
                        return Err((ErrorCode::CoordinatorNotAvailable, "an empty answer".into()));
                    };
                    refusal(p.error_code, p.error_message)
                }
            }
        })
        .await
    }

    /// DeleteShareGroupState for `keys` (all of one group), grouped by coordinator; the
    /// keys that could not be deleted, with why.
    pub async fn delete_state(&self, meta: &Metadata, keys: Vec<Key>) -> Vec<(Key, Refusal)> {
        use strom_protocol::delete_share_group_state_request::{DeleteStateData, PartitionData};
        use strom_protocol::{DeleteShareGroupStateRequest, DeleteShareGroupStateResponse};
        let mut failed = Vec::new();
        let mut remote: HashMap<i32, Vec<Key>> = HashMap::new();
        for key in keys {
            match self.route(meta, &key) {
                Ok(Route::Here) => {
                    if let Err(e) = retrying(|| self.coordinator.delete(meta, &key)).await {
                        failed.push((key, e));
                    }
                }
                Ok(Route::Broker(id)) => remote.entry(id).or_default().push(key),
                Err(e) => failed.push((key, e)),
            }
        }
        for (id, keys) in remote {
            let Some(group) = keys.first().map(|k| k.0.clone()) else { continue };
            let mut topics: Vec<DeleteStateData> = Vec::new();
            for k in &keys {
                let part = PartitionData { partition: k.2, ..Default::default() };
                match topics.iter_mut().find(|t| t.topic_id.0 == k.1) {
                    Some(t) => t.partitions.push(part),
                    None => topics.push(DeleteStateData {
                        topic_id: strom_protocol::Uuid(k.1),
                        partitions: vec![part],
                        ..Default::default()
                    }),
                }
            }
            let req = DeleteShareGroupStateRequest { group_id: group.clone(), topics, ..Default::default() };
            match retrying(|| self.call::<_, DeleteShareGroupStateResponse>(meta, id, &req)).await {
                Ok(resp) => {
                    for r in resp.results {
                        for p in r.partitions {
                            if let Err(e) = refusal(p.error_code, p.error_message) {
                                failed.push(((group.clone(), r.topic_id.0, p.partition), e));
                            }
                        }
                    }
                }
                Err(e) => failed.extend(keys.into_iter().map(|k| (k, e.clone()))),
            }
        }
        failed
    }
}

/// The data batches a share consumer may get, as (first, last, byte range): control
/// batches never, and with `aborted` (read_committed: (producer id, first offset) of the
/// aborted transactions overlapping the read) none of an aborted transaction's batches —
/// Kafka's consumer-side rule: a producer's batches are aborted from its transaction's
/// first offset until its next control batch (the ABORT marker).
fn deliverable(
    headers: Vec<(BatchHeader, std::ops::Range<usize>)>,
    mut aborted: Vec<(i64, i64)>,
) -> Vec<(i64, i64, std::ops::Range<usize>)> {
    aborted.sort_by_key(|a| a.1);
    let mut pending = aborted.into_iter().peekable();
    let mut open: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(headers.len());
    for (h, range) in headers {
        while let Some(&(pid, _)) = pending.peek().filter(|a| a.1 <= h.last_offset()) {
            open.insert(pid);
            pending.next();
        }
        if h.is_control() {
            open.remove(&h.producer_id);
        } else if !(h.is_transactional() && open.contains(&h.producer_id)) {
            out.push((h.base_offset, h.last_offset(), range));
        }
    }
    out
}

/// The share-partitions of `group` if no share session of it is left here.
fn idle_keys(st: &State, group: &str) -> Vec<Key> {
    if st.session_conn.keys().any(|(g, _)| g == group) {
        return Vec::new();
    }
    st.partitions.keys().filter(|k| k.0 == group).cloned().collect()
}

/// Releases `member`'s records on the group's share-partitions (those of `partitions`).
fn release(st: &mut State, group: &str, member: &str, partitions: Option<&[TopicPartition]>) -> usize {
    let (mut released, mut archived) = (0, 0);
    for (_, sp) in
        st.partitions.iter_mut().filter(|(k, _)| k.0 == group && partitions.is_none_or(|ps| ps.contains(&(k.1, k.2))))
    {
        released += sp.release_member(member);
        archived += sp.take_archived();
    }
    st.totals.released += (released as u64).saturating_sub(archived);
    st.totals.archived += archived;
    released
}

/// The batches at `ranges` of `data` (ascending, disjoint) as one buffer: a zero-copy
/// slice when they are contiguous (the usual case), else one copy.
fn concat(data: &Bytes, ranges: &[std::ops::Range<usize>]) -> Bytes {
    let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else { return Bytes::new() };
    let contiguous = ranges.windows(2).all(|w| w[0].end == w[1].start);
    if contiguous {
        return data.slice(first.start..last.end);
    }
    let mut out = BytesMut::with_capacity(ranges.iter().map(|r| r.len()).sum());
    for r in ranges {
        out.extend_from_slice(&data[r.clone()]);
    }
    out.freeze()
}

/// Releases locks as they run out, so that parked ShareFetches see redeliveries without
/// waiting for new records. Ends once the state is dropped.
pub async fn run_expiry(state: Weak<ShareState>) {
    loop {
        let Some(s) = state.upgrade() else { return };
        let now = strom_storage::now_ms();
        if s.expire(now) > 0 {
            s.released.notify_waiters();
        }
        // At most a minute between looks, so the task notices the state is gone.
        let wait = s.next_deadline().map_or(60_000, |d| d.saturating_sub(now).clamp(1, 60_000));
        // Holding the state while waiting keeps it alive at most a minute longer.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
            _ = s.timer.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contiguous_batches_are_sliced_and_others_copied_once() {
        let data = Bytes::from_static(b"aaabbbccc");
        assert_eq!(concat(&data, &[0..3, 3..6]), Bytes::from_static(b"aaabbb"));
        assert_eq!(concat(&data, &[0..3, 6..9]), Bytes::from_static(b"aaaccc"));
        assert!(concat(&data, &[]).is_empty());
    }
}
