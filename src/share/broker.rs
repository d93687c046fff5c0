//! A broker's share-partitions and share sessions (KIP-932, ADR 0016 step 3): the state
//! ShareFetch and ShareAcknowledge work on, beside the partitions this broker leads.
//!
//! One mutex guards every share-partition and the session cache: each request holds it
//! for a few map operations and zero-copy log reads, never across an await. The state is
//! in memory only until step 4 of the ADR (`__share_group_state`): a restart or a
//! leadership move starts a share-partition again from `share.auto.offset.reset`, so
//! records may be delivered again (never lost: nothing is deleted by acknowledging).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strom_protocol::records::{split_batches, BatchHeader};
use tokio::sync::Notify;

use super::group::{GroupError, SessionView, ShareSessions, TopicId, TopicPartition};
use super::partition::{AckError, AckSummary, Acquired, Limits, SharePartition, StateCounts};
use crate::config::group::ShareConfig;
use crate::error::ErrorCode;
use crate::metadata::Partition;

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
        }
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

    /// Applies a member's acknowledgements to one share-partition, all or nothing.
    pub fn acknowledge(
        &self,
        key: &Key,
        member: &str,
        acks: &[(i64, i64, Vec<u8>)],
        now_ms: i64,
    ) -> Result<AckSummary, AckError> {
        let mut st = self.lock();
        let Some(sp) = st.partitions.get_mut(key) else {
            // Nothing was ever acquired here (or the state was dropped with leadership):
            // whatever the member claims to hold, it holds nothing.
            let first = acks.first().map_or(0, |a| a.0);
            return Err(AckError::NotAcquired(first));
        };
        // Locks that ran out are released before acknowledging, so an acknowledgement
        // after the deadline is refused even if the expiry task has not run yet.
        let expired = sp.expire(now_ms) as u64;
        let result = sp.acknowledge(member, now_ms, acks);
        st.totals.lock_timeouts += expired;
        if let Ok(s) = &result {
            st.totals.accepted += s.accepted;
            st.totals.released += s.released;
            st.totals.archived += s.archived;
        }
        let notify = expired > 0 || result.as_ref().is_ok_and(|s| s.released > 0);
        drop(st);
        if notify {
            self.released.notify_waiters();
        }
        result
    }

    /// Acquires records of `partition` for `member`: creates the share-partition at
    /// `start()` (from `share.auto.offset.reset`) on first use, then reads whole batches
    /// from the first AVAILABLE offset, at most `max_bytes` (at least one batch), and
    /// acquires up to `max_records` records of them.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &self,
        key: &Key,
        member: &str,
        partition: &Partition,
        limits: Limits,
        start: impl FnOnce() -> i64,
        max_records: usize,
        max_bytes: usize,
        now_ms: i64,
    ) -> Result<Grant, ErrorCode> {
        let mut st = self.lock();
        let st = &mut *st;
        let sp = st.partitions.entry(key.clone()).or_insert_with(|| {
            let at = start();
            tracing::info!(group = %key.0, partition = key.2, start = at, "share-partition initialized");
            SharePartition::new(limits, at)
        });
        sp.set_limits(limits);
        let expired = sp.expire(now_ms) as u64;
        st.totals.lock_timeouts += expired;
        sp.log_start_moved(partition.log_start_offset());
        let from = sp.next_fetch_offset();
        if from >= partition.high_watermark() || max_records == 0 {
            return Ok(Grant::default());
        }
        let data = partition.read(from, max_bytes.max(1))?;
        let mut batches: Vec<(i64, i64, std::ops::Range<usize>)> = Vec::new();
        for span in split_batches(&data) {
            let Some(range) = span.ok() else { break };
            let Some(h) = data.get(range.clone()).and_then(|b| BatchHeader::parse(b).ok()) else { break };
            if !h.is_control() {
                batches.push((h.base_offset, h.last_offset(), range));
            }
        }
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

    /// DeleteGroups removed the (empty) group: its share-partitions go too.
    pub fn group_deleted(&self, group: &str) {
        self.lock().partitions.retain(|k, _| k.0 != group);
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
