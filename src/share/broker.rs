//! A broker's share-partitions and share sessions (KIP-932, ADR 0016 step 3): the state
//! ShareFetch and ShareAcknowledge work on, beside the partitions this broker leads.
//!
//! One mutex guards every share-partition and the session cache: each request holds it
//! for a few map operations and zero-copy log reads, never across an await.
//!
//! Durability (ADR 0016 step 4, in progress): on a single node every change that must
//! survive a restart — a share-partition's start, every acknowledgement — is written to
//! `__share_group_state` (one snapshot record, [`super::state`]) before it takes effect
//! and before it is answered; the change is applied to a copy, and the copy replaces the
//! state only once the record is appended, so a failed write changes nothing. A restart
//! rebuilds each share-partition from its latest snapshot: acknowledged records are never
//! delivered again; records acquired but not acknowledged are (locks do not survive).
//! In a cluster the state stays in memory until the share coordinator RPCs exist
//! (Kafka's Read/WriteShareGroupState): a leader change starts the share-partition again
//! from `share.auto.offset.reset`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strom_protocol::records::{split_batches, BatchHeader};
use tokio::sync::Notify;

use super::group::{GroupError, SessionView, ShareSessions, TopicId, TopicPartition};
use super::partition::{AckSummary, Acquired, Limits, SharePartition, StateCounts};
use super::state::{self, StateValue, SHARE_STATE_TOPIC};
use crate::config::group::ShareConfig;
use crate::error::ErrorCode;
use crate::metadata::{Metadata, Partition};

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
    /// Records released by their consumer.
    pub released: u64,
    /// Records rejected, or archived at the delivery limit when released.
    pub archived: u64,
    /// Records whose lock ran out.
    pub lock_timeouts: u64,
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
    /// The latest snapshot of every share-partition in `__share_group_state` (durable
    /// mode), read on first use and kept current by every write; `None` until read.
    durable: Option<HashMap<Key, StateValue>>,
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
        }
    }

    /// Gives the state its metadata, for `__share_group_state`.
    pub fn attach(&self, meta: &Arc<Metadata>) {
        let _ = self.meta.set(Arc::downgrade(meta));
    }

    /// The metadata when share-partition state is durable here (a single node; see the
    /// module docs for clusters).
    fn store(&self) -> Option<Arc<Metadata>> {
        self.meta.get().and_then(Weak::upgrade).filter(|m| m.quorum().is_none())
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
        &self,
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
        for e in evicted {
            st.session_conn.remove(&(e.group_id.clone(), e.member_id.clone()));
            released += release(&mut st, &e.group_id, &e.member_id, Some(&e.partitions));
        }
        drop(st);
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
    pub fn connection_closed(&self, conn: SocketAddr) {
        let mut st = self.lock();
        let Some(opened) = st.conn_sessions.remove(&conn) else { return };
        let mut released = 0;
        for who in opened {
            if st.session_conn.get(&who) != Some(&conn) {
                continue;
            }
            st.session_conn.remove(&who);
            let partitions = st.sessions.as_mut().and_then(|s| s.remove_member(&who.0, &who.1));
            if let Some(partitions) = partitions {
                released += release(&mut st, &who.0, &who.1, Some(&partitions));
            }
        }
        drop(st);
        if released > 0 {
            tracing::debug!(%conn, released, "share sessions closed with their connection");
            self.released.notify_waiters();
        }
    }

    /// Applies a member's acknowledgements to one share-partition, all or nothing; in
    /// durable mode the new state is written to `__share_group_state` first.
    pub fn acknowledge(
        &self,
        key: &Key,
        member: &str,
        acks: &[(i64, i64, Vec<u8>)],
        now_ms: i64,
    ) -> Result<AckSummary, (ErrorCode, String)> {
        let store = self.store();
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(sp) = st.partitions.get_mut(key) else {
            // Nothing was ever acquired here since this broker started (or the state was
            // dropped with leadership): whatever the member claims to hold, it holds nothing.
            let first = acks.first().map_or(0, |a| a.0);
            let e = super::partition::AckError::NotAcquired(first);
            return Err((e.error_code(), e.to_string()));
        };
        // Locks that ran out are released before acknowledging, so an acknowledgement
        // after the deadline is refused even if the expiry task has not run yet.
        let expired = sp.expire(now_ms) as u64;
        st.totals.lock_timeouts += expired;
        let result = match &store {
            // Durable: the change goes to a copy, which replaces the state only once its
            // snapshot is appended.
            Some(meta) => {
                let mut next = sp.clone();
                next.acknowledge(member, now_ms, acks).map_err(|e| (e.error_code(), e.to_string())).and_then(
                    |summary| {
                        write(meta, st.durable.get_or_insert_with(|| load(meta)), key, &next, now_ms)?;
                        *sp = next;
                        Ok(summary)
                    },
                )
            }
            // In memory: `acknowledge` is all or nothing by itself, so no copy is needed.
            None => sp.acknowledge(member, now_ms, acks).map_err(|e| (e.error_code(), e.to_string())),
        };
        if let Ok(s) = &result {
            st.totals.accepted += s.accepted;
            st.totals.released += s.released;
            st.totals.archived += s.archived;
        }
        let notify = expired > 0 || result.as_ref().is_ok_and(|s| s.released > 0);
        drop(guard);
        if notify {
            self.released.notify_waiters();
        }
        result
    }

    /// Acquires records of `partition` for `member`: creates the share-partition at
    /// `start()` (from `share.auto.offset.reset`) on first use, then reads whole batches
    /// from the first AVAILABLE offset, at most `max_bytes` (at least one batch), and
    /// acquires up to `max_records` records of them.
    ///
    /// `read_committed` (the group's `share.isolation.level`): only records below the last
    /// stable offset are acquired, and those of aborted transactions never are (they are
    /// archived as the gaps they leave, like the transaction markers), as Kafka does.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &self,
        key: &Key,
        member: &str,
        partition: &Partition,
        limits: Limits,
        start: impl FnOnce() -> i64,
        read_committed: bool,
        max_records: usize,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<Grant, ErrorCode> {
        let store = self.store();
        let mut st = self.lock();
        let st = &mut *st;
        if !st.partitions.contains_key(key) {
            let sp = match &store {
                Some(meta) => open_durable(meta, st, key, limits, start, now_ms)?,
                None => {
                    let at = start();
                    tracing::info!(group = %key.0, partition = key.2, start = at, "share-partition initialized");
                    SharePartition::new(limits, at)
                }
            };
            st.partitions.insert(key.clone(), sp);
        }
        let Some(sp) = st.partitions.get_mut(key) else { return Ok(Grant::default()) };
        sp.set_limits(limits);
        let expired = sp.expire(now_ms) as u64;
        st.totals.lock_timeouts += expired;
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
        let acquired = sp.acquire(member, now_ms, &offsets, max_records);
        if acquired.is_empty() {
            return Ok(Grant::default());
        }
        st.totals.acquired += acquired.iter().map(|a| (a.last - a.first + 1).max(0) as u64).sum::<u64>();
        let wanted: Vec<std::ops::Range<usize>> = batches
            .into_iter()
            .filter(|(f, l, _)| acquired.iter().any(|a| a.first <= *l && *f <= a.last))
            .map(|(_, _, r)| r)
            .collect();
        self.timer.notify_one();
        Ok(Grant { records: concat(&data, &wanted), acquired })
    }

    /// Releases what `member` holds on `partitions` (all of the group's when `None`).
    pub fn release_member(&self, group: &str, member: &str, partitions: Option<&[TopicPartition]>) {
        let released = release(&mut self.lock(), group, member, partitions);
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

    /// DeleteGroups removed the (empty) group: its share-partitions go too (in durable
    /// mode with tombstones, so compaction drops their snapshots).
    pub fn group_deleted(&self, group: &str) {
        let store = self.store();
        let mut st = self.lock();
        st.partitions.retain(|k, _| k.0 != group);
        let Some(meta) = store else { return };
        // Read the topic first if no share-partition was used since the start: the
        // group's snapshots must get their tombstones all the same.
        let durable = st.durable.get_or_insert_with(|| load(&meta));
        let keys: Vec<Key> = durable.keys().filter(|k| k.0 == group).cloned().collect();
        for k in keys {
            durable.remove(&k);
            if let Err((_, e)) = append(&meta, &k, None) {
                tracing::warn!(group, error = %e, "could not delete share-partition state");
            }
        }
    }

    /// This broker stopped leading the partition (or it is gone): its in-memory state is
    /// dropped; the new leader starts from `share.auto.offset.reset` (ADR 0016 step 4
    /// makes it durable).
    pub fn forget(&self, key: &Key) {
        self.lock().partitions.remove(key);
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
        let n: u64 = st.partitions.values_mut().map(|sp| sp.expire(now_ms) as u64).sum();
        st.totals.lock_timeouts += n;
        n
    }

    fn next_deadline(&self) -> Option<i64> {
        self.lock().partitions.values().filter_map(SharePartition::next_deadline).min()
    }
}

/// Opens a share-partition in durable mode: from its latest snapshot, or new at
/// `start()` with that start written first, so that a restart does not move a `latest`
/// start past records produced in between.
fn open_durable(
    meta: &Metadata,
    st: &mut State,
    key: &Key,
    limits: Limits,
    start: impl FnOnce() -> i64,
    now_ms: i64,
) -> Result<SharePartition, ErrorCode> {
    let durable = st.durable.get_or_insert_with(|| load(meta));
    if let Some(v) = durable.get(key) {
        match SharePartition::from_snapshot(limits, &v.snapshot) {
            Ok(sp) => {
                tracing::info!(group = %key.0, partition = key.2, start = sp.start(), "share-partition loaded");
                return Ok(sp);
            }
            Err(e) => tracing::warn!(group = %key.0, partition = key.2, error = %e, "share-partition state unusable"),
        }
    }
    let at = start();
    let sp = SharePartition::new(limits, at);
    write(meta, durable, key, &sp, now_ms).map_err(|(code, _)| code)?;
    tracing::info!(group = %key.0, partition = key.2, start = at, "share-partition initialized");
    Ok(sp)
}

/// Every share-partition's latest snapshot in `__share_group_state` (empty if the topic
/// does not exist yet). Undecodable records are skipped with a warning: a share-partition
/// whose state is lost starts again from `share.auto.offset.reset`.
fn load(meta: &Metadata) -> HashMap<Key, StateValue> {
    let mut out = HashMap::new();
    let Some(topic) = meta.topic(SHARE_STATE_TOPIC) else { return out };
    for p in &topic.partitions {
        p.scan_batches(p.log_start_offset(), p.high_watermark(), |_, batch| {
            let Ok(records) = strom_protocol::records::decode_records(batch) else {
                tracing::warn!(partition = p.index, "skipping an undecodable batch in {SHARE_STATE_TOPIC}");
                return;
            };
            for rec in records {
                let Some(k) = rec.key else { continue };
                match state::decode(&k, rec.value.as_ref()) {
                    Ok(Some((key, Some(v)))) => {
                        out.insert(key, v);
                    }
                    Ok(Some((key, None))) => {
                        out.remove(&key);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "skipping an undecodable record in {SHARE_STATE_TOPIC}"),
                }
            }
        });
    }
    tracing::info!(share_partitions = out.len(), "loaded share-partition state");
    out
}

/// Writes `sp`'s snapshot as the next state of `key` and records it in `durable`.
fn write(
    meta: &Metadata,
    durable: &mut HashMap<Key, StateValue>,
    key: &Key,
    sp: &SharePartition,
    now_ms: i64,
) -> Result<(), (ErrorCode, String)> {
    let previous = durable.get(key);
    let value = StateValue {
        snapshot_epoch: previous.map_or(0, |v| v.snapshot_epoch.wrapping_add(1).max(0)),
        state_epoch: previous.map_or(0, |v| v.state_epoch),
        leader_epoch: 0,
        create_timestamp: previous.map_or(now_ms, |v| v.create_timestamp),
        write_timestamp: now_ms,
        snapshot: sp.snapshot(),
    };
    append(meta, key, Some(&value))?;
    durable.insert(key.clone(), value);
    Ok(())
}

/// Appends one record for `key` (`None`: a tombstone) to its `__share_group_state`
/// partition. On a single node the append is the write (the topic's flush settings
/// decide when it is fsync'd, as for every topic).
fn append(meta: &Metadata, key: &Key, value: Option<&StateValue>) -> Result<(), (ErrorCode, String)> {
    let unavailable = |m: &str| (ErrorCode::CoordinatorNotAvailable, m.to_string());
    let topic = meta.share_state_topic().ok_or_else(|| unavailable("cannot create __share_group_state"))?;
    let n = topic.partitions.len() as i32;
    let p = topic.partitions.get(state::partition_for(key, n) as usize).ok_or_else(|| unavailable("no partition"))?;
    let mut batch = strom_protocol::records::BatchBuilder::new(strom_storage::now_ms());
    let v = value.map(state::encode_value);
    batch.add(Some(&state::encode_key(key)), v.as_deref());
    p.append(&batch.build()).map(|_| ()).map_err(|(code, msg)| {
        tracing::error!(group = %key.0, partition = key.2, error = %msg, "could not write share-partition state");
        (code, msg)
    })
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

/// Releases `member`'s records on the group's share-partitions (those of `partitions`).
fn release(st: &mut State, group: &str, member: &str, partitions: Option<&[TopicPartition]>) -> usize {
    st.partitions
        .iter_mut()
        .filter(|(k, _)| k.0 == group && partitions.is_none_or(|ps| ps.contains(&(k.1, k.2))))
        .map(|(_, sp)| sp.release_member(member))
        .sum()
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
