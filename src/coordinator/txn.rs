//! The transaction coordinator (ADR 0012): one state machine per transactional id,
//! persisted in `__transaction_state` and run by the leader of the id's partition there,
//! as Kafka's `TransactionCoordinator` is.
//!
//! Every transition is written first and applied in memory only once the record is on
//! every in-sync replica; while one is being written, other requests for the id answer
//! CONCURRENT_TRANSACTIONS (clients retry it). EndTxn's Prepare record is the commit
//! point: from there a task writes the markers to every partition of the transaction
//! (in process for partitions led here, WriteTxnMarkers to other leaders), retrying
//! until all are written, then records Complete. A coordinator that takes over a
//! partition resumes the markers of every Prepare transaction it finds there.

pub mod log;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use strom_protocol::records::{decode_records, BatchBuilder, TxnMarker};
use strom_protocol::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
use strom_protocol::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};

use self::log::{Status, TxnValue};
use super::group;
use crate::error::ErrorCode;
use crate::metadata::{Metadata, Partition, OFFSETS_TOPIC, TXN_TOPIC};

/// How long a transition waits for the `__transaction_state` replicas.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a marker waits for the partition's replicas.
const MARKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of the coordinator (Kafka's names).
#[derive(Debug, Clone, Copy)]
pub struct TxnSettings {
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i64,
    /// `transactional.id.expiration.ms`.
    pub expiration_ms: i64,
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`.
    pub abort_interval_ms: u64,
}

impl TxnSettings {
    /// The settings from the broker configuration.
    pub fn from_config(values: &BTreeMap<String, String>) -> TxnSettings {
        let int = |k: &str, d: i64| values.get(k).and_then(|v| v.trim().parse::<i64>().ok()).unwrap_or(d);
        TxnSettings {
            max_timeout_ms: int("transaction.max.timeout.ms", 900_000),
            expiration_ms: int("transactional.id.expiration.ms", 604_800_000),
            abort_interval_ms: int("transaction.abort.timed.out.transaction.cleanup.interval.ms", 10_000).max(10)
                as u64,
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// `None` only while the first record of a new id is being written.
    value: Option<TxnValue>,
    /// A transition is being written.
    busy: bool,
}

#[derive(Debug, Default)]
struct Inner {
    txns: HashMap<String, Entry>,
    /// Per `__transaction_state` partition, bumped whenever its ids are reloaded or
    /// handed over: a write that started before must not apply its result (the reload
    /// replaced the entry, busy flag included, with what the log says).
    loads: HashMap<i32, u64>,
}

impl Inner {
    fn loads_of(&self, partition: i32) -> u64 {
        self.loads.get(&partition).copied().unwrap_or(0)
    }

    fn bump_loads(&mut self, partition: i32) {
        *self.loads.entry(partition).or_insert(0) += 1;
    }
}

/// What a request decides, looking at the current state.
enum Step<T> {
    /// Answer without writing.
    Answer(T),
    /// Write this state, then answer.
    Write(TxnValue, T),
}

/// One transactional id as DescribeTransactions and `strom txn` show it.
#[derive(Debug, Clone)]
pub struct TxnView {
    pub transactional_id: String,
    pub value: TxnValue,
}

/// The transaction coordinator of this broker.
pub struct TxnCoordinator {
    settings: TxnSettings,
    inner: Mutex<Inner>,
    /// The `__transaction_state` partitions whose ids are in memory (a cluster: those led
    /// here), with the leader epoch they were loaded at (a new epoch means another leader
    /// may have written in between: reload).
    partitions: Mutex<HashMap<i32, i32>>,
    loaded: AtomicBool,
    meta: OnceLock<Weak<Metadata>>,
    groups: Arc<group::Coordinator>,
    /// Metrics: markers written, transactions committed/aborted/timed out, load time.
    pub stats: TxnStats,
}

/// Counters an operator asks for.
#[derive(Debug, Default)]
pub struct TxnStats {
    pub committed: std::sync::atomic::AtomicU64,
    pub aborted: std::sync::atomic::AtomicU64,
    pub timed_out: std::sync::atomic::AtomicU64,
    pub markers: std::sync::atomic::AtomicU64,
    pub load_ms: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TxnCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxnCoordinator").field("loaded", &self.loaded.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    strom_storage::now_ms()
}

/// The `__transaction_state` partition of `transactional_id` (Kafka's hash).
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    group::log::partition_for(transactional_id, partitions)
}

/// The partition holding `transactional_id`'s state, if the topic exists.
pub fn state_partition(meta: &Metadata, transactional_id: &str) -> Option<Arc<Partition>> {
    let topic = meta.topic(TXN_TOPIC)?;
    topic.partitions.get(partition_for(transactional_id, topic.partitions.len() as i32) as usize).cloned()
}

impl TxnCoordinator {
    /// A coordinator that has not loaded anything yet.
    pub fn new(settings: TxnSettings, groups: Arc<group::Coordinator>) -> TxnCoordinator {
        TxnCoordinator {
            settings,
            inner: Mutex::new(Inner::default()),
            partitions: Mutex::new(HashMap::new()),
            loaded: AtomicBool::new(false),
            meta: OnceLock::new(),
            groups,
            stats: TxnStats::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn loaded_partitions(&self) -> MutexGuard<'_, HashMap<i32, i32>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn meta(&self) -> Option<Arc<Metadata>> {
        self.meta.get().and_then(Weak::upgrade)
    }

    /// Whether this broker coordinates `transactional_id`: it leads the id's
    /// `__transaction_state` partition and has loaded it.
    pub fn owns(&self, meta: &Metadata, transactional_id: &str) -> bool {
        let Some(topic) = meta.topic(TXN_TOPIC) else { return false };
        let p = partition_for(transactional_id, topic.partitions.len() as i32);
        (meta.quorum().is_none() || meta.leads(&topic, p)) && self.loaded_partitions().contains_key(&p)
    }

    /// Number of transactional ids in memory, and of those with an ongoing transaction.
    pub fn counts(&self) -> (usize, usize) {
        let inner = self.lock();
        let ongoing = inner
            .txns
            .values()
            .filter(|e| e.value.as_ref().is_some_and(|v| v.status != Status::Empty && !is_complete(v.status)))
            .count();
        (inner.txns.len(), ongoing)
    }

    /// Every transactional id coordinated here, with its state.
    pub fn list(&self) -> Vec<TxnView> {
        let inner = self.lock();
        let mut out: Vec<TxnView> = inner
            .txns
            .iter()
            .filter_map(|(id, e)| Some(TxnView { transactional_id: id.clone(), value: e.value.clone()? }))
            .collect();
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        out
    }

    /// One id's state (`Err` when this broker is not its coordinator).
    pub fn describe(&self, transactional_id: &str) -> Result<Option<TxnValue>, ErrorCode> {
        let meta = self.meta().ok_or(ErrorCode::CoordinatorNotAvailable)?;
        if !self.loaded.load(Ordering::Acquire) {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(&meta, transactional_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        Ok(self.lock().txns.get(transactional_id).and_then(|e| e.value.clone()))
    }

    /// Appends `value` for `transactional_id` and waits until it is on every in-sync
    /// replica (a single node: written is done).
    async fn persist(
        &self,
        meta: &Metadata,
        transactional_id: &str,
        value: Option<&TxnValue>,
    ) -> Result<(), ErrorCode> {
        let p = state_partition(meta, transactional_id).ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let (k, v) = log::encode(transactional_id, value);
        let mut batch = BatchBuilder::new(now_ms());
        batch.add(Some(&k), v.as_deref());
        let map = |code: ErrorCode| match code {
            ErrorCode::NotLeaderOrFollower => ErrorCode::NotCoordinator,
            _ => ErrorCode::CoordinatorNotAvailable,
        };
        let info = p.append(&batch.build()).map_err(|(code, msg)| {
            tracing::warn!(transactional_id, error = %msg, "could not write to {TXN_TOPIC}");
            map(code)
        })?;
        if meta.quorum().is_some() {
            let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
            p.wait_committed(info.last_offset + 1, deadline).await.map_err(map)?;
        }
        Ok(())
    }

    /// Runs one request against the id's state: `decide` looks at it and either answers
    /// or names the state to write; the answer goes out once the write is replicated.
    async fn transition<T>(
        &self,
        transactional_id: &str,
        decide: impl FnOnce(Option<&TxnValue>) -> Result<Step<T>, ErrorCode>,
    ) -> Result<T, ErrorCode> {
        let meta = self.meta().ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let partition = state_partition(&meta, transactional_id).ok_or(ErrorCode::CoordinatorNotAvailable)?.index;
        let (value, answer, loads) = {
            let mut inner = self.lock();
            if !self.loaded.load(Ordering::Acquire) {
                return Err(ErrorCode::CoordinatorLoadInProgress);
            }
            if !self.owns(&meta, transactional_id) {
                return Err(ErrorCode::NotCoordinator);
            }
            let entry = inner.txns.get(transactional_id);
            if entry.is_some_and(|e| e.busy) {
                return Err(ErrorCode::ConcurrentTransactions);
            }
            match decide(entry.and_then(|e| e.value.as_ref()))? {
                Step::Answer(t) => return Ok(t),
                Step::Write(v, t) => {
                    inner.txns.entry(transactional_id.to_string()).or_insert(Entry { value: None, busy: false }).busy =
                        true;
                    (v, t, inner.loads_of(partition))
                }
            }
        };
        let written = self.persist(&meta, transactional_id, Some(&value)).await;
        let mut inner = self.lock();
        if inner.loads_of(partition) != loads {
            return Err(ErrorCode::NotCoordinator);
        }
        let Some(entry) = inner.txns.get_mut(transactional_id) else { return Err(ErrorCode::NotCoordinator) };
        entry.busy = false;
        match written {
            Ok(()) => {
                entry.value = Some(value);
                Ok(answer)
            }
            Err(code) => {
                if entry.value.is_none() {
                    inner.txns.remove(transactional_id);
                }
                Err(code)
            }
        }
    }

    /// InitProducerId with a transactional id: a new producer id at epoch 0 for a new
    /// id, else the next epoch (which fences the previous incarnation). An ongoing
    /// transaction of the previous incarnation is aborted first: the answer is
    /// CONCURRENT_TRANSACTIONS until its markers are written, and the client retries.
    pub async fn init_producer_id(
        self: &Arc<Self>,
        transactional_id: &str,
        timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16), ErrorCode> {
        if timeout_ms <= 0 || i64::from(timeout_ms) > self.settings.max_timeout_ms {
            return Err(ErrorCode::InvalidTransactionTimeout);
        }
        let meta = self.meta().ok_or(ErrorCode::CoordinatorNotAvailable)?;
        let now = now_ms();
        // A new producer id (a new transactional id, or an exhausted epoch) comes from the
        // metadata, which may have to write to the quorum: taken before the coordinator's
        // lock, never under it. Losing a race with another request wastes one id.
        let needs_id = {
            let inner = self.lock();
            inner
                .txns
                .get(transactional_id)
                .and_then(|e| e.value.as_ref())
                .is_none_or(|v| v.producer_epoch >= i16::MAX - 1)
        };
        let preallocated = if needs_id { Some(meta.init_producer(-1, -1)?) } else { None };
        let fresh = || preallocated.ok_or(ErrorCode::ConcurrentTransactions);
        let out = self
            .transition(transactional_id, |cur| {
                let Some(cur) = cur else {
                    let (pid, epoch) = fresh()?;
                    let v = TxnValue {
                        producer_id: pid,
                        producer_epoch: epoch,
                        timeout_ms,
                        status: Status::Empty,
                        partitions: BTreeSet::new(),
                        last_update_ms: now,
                        start_ms: -1,
                    };
                    return Ok(Step::Write(v, (pid, epoch, false)));
                };
                // KIP-360: a producer naming an id and epoch must name the current ones.
                let current = producer_id == cur.producer_id && producer_epoch == cur.producer_epoch;
                // A retry of a bump that was answered but not received names the epoch before.
                let retried =
                    producer_id == cur.producer_id && producer_epoch.checked_add(1) == Some(cur.producer_epoch);
                if producer_id >= 0 && !current && !retried {
                    return Err(ErrorCode::ProducerFenced);
                }
                match cur.status {
                    Status::PrepareCommit | Status::PrepareAbort | Status::PrepareEpochFence => {
                        Err(ErrorCode::ConcurrentTransactions)
                    }
                    Status::Ongoing => {
                        // Fence the old incarnation: abort its transaction at a new epoch
                        // of the same id (markers must reach the id that wrote the data);
                        // an exhausted epoch aborts at the current one, and the retry that
                        // follows gets a new id.
                        let (pid, epoch) = fence_epoch(cur);
                        let v = TxnValue {
                            producer_id: pid,
                            producer_epoch: epoch,
                            status: Status::PrepareAbort,
                            last_update_ms: now,
                            ..cur.clone()
                        };
                        Ok(Step::Write(v, (pid, epoch, true)))
                    }
                    _ => {
                        let (pid, epoch) = bump(cur, &fresh)?;
                        let v = TxnValue {
                            producer_id: pid,
                            producer_epoch: epoch,
                            timeout_ms,
                            status: Status::Empty,
                            partitions: BTreeSet::new(),
                            last_update_ms: now,
                            start_ms: -1,
                        };
                        Ok(Step::Write(v, (pid, epoch, false)))
                    }
                }
            })
            .await?;
        let (pid, epoch, aborting) = out;
        if aborting {
            tracing::info!(
                transactional_id,
                producer_id = pid,
                epoch,
                "fenced a previous producer: aborting its transaction"
            );
            self.stats.aborted.fetch_add(1, Ordering::Relaxed);
            self.spawn_completion(transactional_id);
            return Err(ErrorCode::ConcurrentTransactions);
        }
        Ok((pid, epoch))
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds partitions to the producer's
    /// transaction, starting it if none is ongoing. `v2_fenced` answers PRODUCER_FENCED
    /// (else INVALID_PRODUCER_EPOCH, for request versions before KIP-588).
    pub async fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
        fenced: ErrorCode,
    ) -> ErrorCode {
        let now = now_ms();
        let r = self
            .transition(transactional_id, |cur| {
                let cur = check_producer(cur, producer_id, producer_epoch, fenced)?;
                if cur.status.is_prepare() || cur.status == Status::PrepareEpochFence {
                    return Err(ErrorCode::ConcurrentTransactions);
                }
                if cur.status == Status::Ongoing && partitions.iter().all(|p| cur.partitions.contains(p)) {
                    return Ok(Step::Answer(()));
                }
                let mut v = cur.clone();
                if v.status != Status::Ongoing {
                    v.partitions.clear();
                    v.start_ms = now;
                }
                v.status = Status::Ongoing;
                v.partitions.extend(partitions.iter().cloned());
                v.last_update_ms = now;
                Ok(Step::Write(v, ()))
            })
            .await;
        r.err().unwrap_or(ErrorCode::None)
    }

    /// AddPartitionsToTxn v4+ `verify_only` (KIP-890 part 1), asked by a partition leader
    /// before it appends a transactional batch: whether each partition is in the
    /// producer's ongoing transaction.
    pub fn verify(
        &self,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<Vec<ErrorCode>, ErrorCode> {
        let meta = self.meta().ok_or(ErrorCode::CoordinatorNotAvailable)?;
        if !self.loaded.load(Ordering::Acquire) {
            return Err(ErrorCode::CoordinatorLoadInProgress);
        }
        if !self.owns(&meta, transactional_id) {
            return Err(ErrorCode::NotCoordinator);
        }
        let inner = self.lock();
        let entry = inner.txns.get(transactional_id);
        // A transition being written (EndTxn's Prepare, say) decides nothing yet.
        if entry.is_some_and(|e| e.busy) {
            return Err(ErrorCode::ConcurrentTransactions);
        }
        let cur = check_producer(
            entry.and_then(|e| e.value.as_ref()),
            producer_id,
            producer_epoch,
            ErrorCode::InvalidProducerEpoch,
        )?;
        Ok(partitions
            .iter()
            .map(|p| {
                if cur.status == Status::Ongoing && cur.partitions.contains(p) {
                    ErrorCode::None
                } else {
                    ErrorCode::InvalidTxnState
                }
            })
            .collect())
    }

    /// EndTxn: moves the ongoing transaction to PrepareCommit/PrepareAbort (the commit
    /// point) and starts writing its markers. A retry of an EndTxn already done (the
    /// transaction Complete with the same result, or still writing markers) is answered
    /// success / CONCURRENT_TRANSACTIONS; any other state is INVALID_TXN_STATE.
    pub async fn end_txn(
        self: &Arc<Self>,
        transactional_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        fenced: ErrorCode,
    ) -> Result<(i64, i16), ErrorCode> {
        let now = now_ms();
        let (prepare, complete) = if commit {
            (Status::PrepareCommit, Status::CompleteCommit)
        } else {
            (Status::PrepareAbort, Status::CompleteAbort)
        };
        let (ids, wrote) = self
            .transition(transactional_id, |cur| {
                let cur = check_producer(cur, producer_id, producer_epoch, fenced)?;
                let ids = (cur.producer_id, cur.producer_epoch);
                match cur.status {
                    Status::Ongoing => {
                        let v = TxnValue { status: prepare, last_update_ms: now, ..cur.clone() };
                        Ok(Step::Write(v, (ids, true)))
                    }
                    s if s == complete => Ok(Step::Answer((ids, false))),
                    s if s == prepare => Err(ErrorCode::ConcurrentTransactions),
                    _ => Err(ErrorCode::InvalidTxnState),
                }
            })
            .await?;
        if wrote {
            let counter = if commit { &self.stats.committed } else { &self.stats.aborted };
            counter.fetch_add(1, Ordering::Relaxed);
            self.spawn_completion(transactional_id);
        }
        Ok(ids)
    }

    /// Starts writing the markers of `transactional_id`'s Prepare transaction.
    fn spawn_completion(self: &Arc<Self>, transactional_id: &str) {
        let (me, id) = (self.clone(), transactional_id.to_string());
        tokio::spawn(async move { me.complete(id).await });
    }

    /// Writes the markers of a Prepare transaction until every partition has one, then
    /// records Complete. Gives up when the id is no longer coordinated here (the new
    /// coordinator resumes from the Prepare record).
    async fn complete(self: Arc<Self>, transactional_id: String) {
        let span = tracing::info_span!("txn_markers", transactional_id = %transactional_id);
        let _e = span.enter();
        let mut pause = Duration::from_millis(50);
        let mut remaining: Option<BTreeSet<(String, i32)>> = None;
        loop {
            let Some(meta) = self.meta() else { return };
            let current = {
                let inner = self.lock();
                inner.txns.get(&transactional_id).filter(|e| !e.busy).and_then(|e| e.value.clone())
            };
            let Some(v) = current.filter(|v| v.status.is_prepare()) else { return };
            if !self.owns(&meta, &transactional_id) {
                return;
            }
            let commit = v.status == Status::PrepareCommit;
            let coordinator_epoch = state_partition(&meta, &transactional_id).map_or(0, |p| p.leader_epoch());
            let todo = remaining.take().unwrap_or_else(|| v.partitions.clone());
            let left =
                send_markers(&meta, &self.groups, v.producer_id, v.producer_epoch, commit, coordinator_epoch, &todo)
                    .await;
            self.stats.markers.fetch_add((todo.len() - left.len()) as u64, Ordering::Relaxed);
            if left.is_empty() {
                let done = TxnValue {
                    status: if commit { Status::CompleteCommit } else { Status::CompleteAbort },
                    partitions: BTreeSet::new(),
                    last_update_ms: now_ms(),
                    ..v.clone()
                };
                let r = self
                    .transition(&transactional_id, |cur| {
                        Ok(if cur == Some(&v) { Step::Write(done, ()) } else { Step::Answer(()) })
                    })
                    .await;
                match r {
                    Ok(()) => {
                        tracing::debug!(commit, "transaction complete");
                        return;
                    }
                    Err(ErrorCode::NotCoordinator) => return,
                    Err(code) => tracing::debug!(?code, "could not record the transaction's completion; retrying"),
                }
            } else {
                tracing::debug!(left = left.len(), "markers not written yet; retrying");
                remaining = Some(left);
            }
            drop(meta);
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// Aborts transactions open longer than their timeout (with an epoch bump, so the
    /// producer that let it run out is fenced, as Kafka does) and forgets ids idle for
    /// `transactional.id.expiration.ms` (a tombstone).
    pub async fn expire(self: &Arc<Self>) {
        let now = now_ms();
        let (timed_out, expired): (Vec<String>, Vec<String>) = {
            let inner = self.lock();
            let mut t = Vec::new();
            let mut x = Vec::new();
            for (id, e) in &inner.txns {
                let Some(v) = e.value.as_ref().filter(|_| !e.busy) else { continue };
                if v.status == Status::Ongoing && v.start_ms + i64::from(v.timeout_ms) < now {
                    t.push(id.clone());
                } else if (v.status == Status::Empty || is_complete(v.status))
                    && v.last_update_ms.saturating_add(self.settings.expiration_ms) < now
                {
                    x.push(id.clone());
                }
            }
            (t, x)
        };
        for id in timed_out {
            let r = self
                .transition(&id, |cur| {
                    let Some(cur) = cur.filter(|c| c.status == Status::Ongoing) else { return Ok(Step::Answer(false)) };
                    if cur.start_ms + i64::from(cur.timeout_ms) >= now {
                        return Ok(Step::Answer(false));
                    }
                    let (pid, epoch) = fence_epoch(cur);
                    let v = TxnValue {
                        producer_id: pid,
                        producer_epoch: epoch,
                        status: Status::PrepareAbort,
                        last_update_ms: now,
                        ..cur.clone()
                    };
                    Ok(Step::Write(v, true))
                })
                .await;
            if r == Ok(true) {
                tracing::info!(transactional_id = %id, "aborting a transaction open past its timeout");
                self.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                self.stats.aborted.fetch_add(1, Ordering::Relaxed);
                self.spawn_completion(&id);
            }
        }
        for id in expired {
            let Some(meta) = self.meta() else { return };
            let Some(partition) = state_partition(&meta, &id).map(|p| p.index) else { continue };
            let loads = {
                let mut inner = self.lock();
                let Some(e) = inner.txns.get_mut(&id).filter(|e| !e.busy) else { continue };
                e.busy = true;
                inner.loads_of(partition)
            };
            let r = self.persist(&meta, &id, None).await;
            let mut inner = self.lock();
            if inner.loads_of(partition) != loads {
                continue;
            }
            if r.is_ok() {
                inner.txns.remove(&id);
                tracing::info!(transactional_id = %id, "transactional id expired");
            } else if let Some(e) = inner.txns.get_mut(&id) {
                e.busy = false;
            }
        }
    }

    /// Brings the ids in memory in line with this broker's leadership of the
    /// `__transaction_state` partitions: replays partitions it now leads (resuming the
    /// markers of Prepare transactions), drops those it no longer leads.
    pub fn follow_leadership(self: &Arc<Self>, meta: &Metadata) {
        let Some(topic) = meta.topic(TXN_TOPIC) else {
            self.loaded.store(true, Ordering::Release);
            return;
        };
        let n = topic.partitions.len() as i32;
        let single = meta.quorum().is_none();
        for p in &topic.partitions {
            let leads = single || (meta.leads(&topic, p.index) && p.is_leader());
            let loaded_at = self.loaded_partitions().get(&p.index).copied();
            if leads && loaded_at.is_some_and(|e| e != p.leader_epoch()) {
                // Led again at a newer epoch: another leader may have written meanwhile.
                self.loaded_partitions().remove(&p.index);
                let mut inner = self.lock();
                inner.bump_loads(p.index);
                inner.txns.retain(|id, _| partition_for(id, n) != p.index);
            }
            let loaded = self.loaded_partitions().contains_key(&p.index);
            if leads && !loaded {
                let started = std::time::Instant::now();
                let replayed = self.replay(p);
                let resume: Vec<String> = {
                    let mut inner = self.lock();
                    inner.bump_loads(p.index);
                    for (id, v) in replayed {
                        inner.txns.insert(id, Entry { value: Some(v), busy: false });
                    }
                    inner
                        .txns
                        .iter()
                        .filter(|(id, e)| {
                            partition_for(id, n) == p.index && e.value.as_ref().is_some_and(|v| v.status.is_prepare())
                        })
                        .map(|(id, _)| id.clone())
                        .collect()
                };
                self.loaded_partitions().insert(p.index, p.leader_epoch());
                let ms = started.elapsed().as_millis() as u64;
                self.stats.load_ms.fetch_add(ms, Ordering::Relaxed);
                tracing::info!(
                    partition = p.index,
                    resumed = resume.len(),
                    elapsed_ms = ms,
                    "loaded transactions of a {TXN_TOPIC} partition"
                );
                for id in resume {
                    self.spawn_completion(&id);
                }
            } else if !leads && loaded {
                self.loaded_partitions().remove(&p.index);
                let mut inner = self.lock();
                inner.bump_loads(p.index);
                inner.txns.retain(|id, _| partition_for(id, n) != p.index);
                tracing::info!(partition = p.index, "handed over the transactions of a {TXN_TOPIC} partition");
            }
        }
        self.loaded.store(true, Ordering::Release);
    }

    /// The latest state of every id in one `__transaction_state` partition.
    fn replay(&self, p: &Partition) -> HashMap<String, TxnValue> {
        let mut out = HashMap::new();
        p.scan_batches(p.log_start_offset(), p.log_end_offset(), |header, batch| {
            let Ok(recs) = decode_records(batch) else {
                tracing::warn!(
                    partition = p.index,
                    offset = header.base_offset,
                    "skipping undecodable batch in {TXN_TOPIC}"
                );
                return;
            };
            for rec in recs {
                let Some(key) = rec.key else { continue };
                match log::decode(&key, rec.value.as_ref()) {
                    Ok(Some((id, Some(v)))) => {
                        out.insert(id, v);
                    }
                    Ok(Some((id, None))) => {
                        out.remove(&id);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "skipping undecodable record in {TXN_TOPIC}"),
                }
            }
        });
        out
    }
}

fn is_complete(s: Status) -> bool {
    matches!(s, Status::CompleteCommit | Status::CompleteAbort)
}

/// The epoch an ongoing transaction is aborted at when its producer is fenced: the next
/// one of the same producer id, or the current one when none is left.
fn fence_epoch(cur: &TxnValue) -> (i64, i16) {
    (cur.producer_id, if cur.producer_epoch < i16::MAX - 1 { cur.producer_epoch + 1 } else { cur.producer_epoch })
}

/// The next epoch of the id's producer, or a new producer id when the epoch is exhausted.
fn bump(cur: &TxnValue, fresh: &impl Fn() -> Result<(i64, i16), ErrorCode>) -> Result<(i64, i16), ErrorCode> {
    if cur.producer_epoch < i16::MAX - 1 {
        Ok((cur.producer_id, cur.producer_epoch + 1))
    } else {
        fresh()
    }
}

/// The id's state if the request's producer is its current one.
fn check_producer(
    cur: Option<&TxnValue>,
    producer_id: i64,
    producer_epoch: i16,
    fenced: ErrorCode,
) -> Result<&TxnValue, ErrorCode> {
    let cur = cur.ok_or(ErrorCode::InvalidProducerIdMapping)?;
    if cur.producer_id != producer_id {
        return Err(ErrorCode::InvalidProducerIdMapping);
    }
    if cur.producer_epoch != producer_epoch {
        return Err(fenced);
    }
    Ok(cur)
}

/// Writes one marker to a partition this broker leads, as WriteTxnMarkers does: the
/// control batch is appended, waits for the in-sync replicas, and a `__consumer_offsets`
/// partition's pending transactional offsets become visible or go.
#[allow(clippy::too_many_arguments)]
pub async fn write_marker(
    meta: &Metadata,
    groups: &group::Coordinator,
    topic: &str,
    partition: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
) -> ErrorCode {
    let Some(p) = meta.partition(topic, partition) else { return ErrorCode::UnknownTopicOrPartition };
    if !(p.is_leader() && meta.leads_partition(&p)) {
        return ErrorCode::NotLeaderOrFollower;
    }
    let batch = TxnMarker { commit, coordinator_epoch }.batch(producer_id, producer_epoch, now_ms());
    let info = match p.append(&batch) {
        Ok(info) => info,
        Err((code, msg)) => {
            tracing::warn!(topic, partition, producer_id, error = %msg, "marker refused");
            return code;
        }
    };
    if meta.quorum().is_some() {
        let deadline = tokio::time::Instant::now() + MARKER_TIMEOUT;
        if let Err(code) = p.wait_committed(info.last_offset + 1, deadline).await {
            return code;
        }
    }
    if topic == OFFSETS_TOPIC {
        groups.complete_txn(producer_id, partition, commit);
    }
    ErrorCode::None
}

/// Writes the markers of one transaction to `partitions`; returns those still to do.
/// A partition that no longer exists needs none; a refused marker (a newer producer
/// epoch or coordinator wrote there) is not retried.
async fn send_markers(
    meta: &Metadata,
    groups: &group::Coordinator,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    partitions: &BTreeSet<(String, i32)>,
) -> BTreeSet<(String, i32)> {
    let me = meta.config.node_id;
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    let mut left = BTreeSet::new();
    for (t, p) in partitions {
        let Some(topic) = meta.topic(t) else { continue };
        let leader = if meta.quorum().is_none() { me } else { meta.leader_of(&topic, *p) };
        if leader < 0 {
            left.insert((t.clone(), *p));
            continue;
        }
        by_leader.entry(leader).or_default().push((t.clone(), *p));
    }
    let done = |code: ErrorCode, t: &str, p: i32| match code {
        ErrorCode::None | ErrorCode::UnknownTopicOrPartition => true,
        ErrorCode::InvalidProducerEpoch | ErrorCode::TransactionCoordinatorFenced => {
            tracing::warn!(
                topic = t,
                partition = p,
                producer_id,
                ?code,
                "marker refused by the partition; not retried"
            );
            true
        }
        _ => false,
    };
    for (leader, parts) in by_leader {
        if leader == me {
            for (t, p) in parts {
                let code =
                    write_marker(meta, groups, &t, p, producer_id, producer_epoch, commit, coordinator_epoch).await;
                if !done(code, &t, p) {
                    left.insert((t, p));
                }
            }
            continue;
        }
        match remote_markers(meta, leader, producer_id, producer_epoch, commit, coordinator_epoch, &parts).await {
            Ok(codes) => {
                for ((t, p), code) in parts.into_iter().zip(codes) {
                    if !done(code, &t, p) {
                        left.insert((t, p));
                    }
                }
            }
            Err(e) => {
                tracing::debug!(leader, error = %format!("{e:#}"), "WriteTxnMarkers failed");
                left.extend(parts);
            }
        }
    }
    left
}

/// WriteTxnMarkers to another broker; one code per partition, in order.
async fn remote_markers(
    meta: &Metadata,
    leader: i32,
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    parts: &[(String, i32)],
) -> anyhow::Result<Vec<ErrorCode>> {
    let addr = meta.broker_address(leader).ok_or_else(|| anyhow::anyhow!("broker {leader} unknown"))?;
    let mut client =
        strom_client::Client::connect_with(&addr, Duration::from_secs(5), &meta.config.inter_broker).await?;
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (t, p) in parts {
        match topics.last_mut() {
            Some(last) if last.name == *t => last.partition_indexes.push(*p),
            _ => topics.push(WritableTxnMarkerTopic {
                name: t.clone(),
                partition_indexes: vec![*p],
                ..Default::default()
            }),
        }
    }
    let req = WriteTxnMarkersRequest {
        markers: vec![WritableTxnMarker {
            producer_id,
            producer_epoch,
            transaction_result: commit,
            topics,
            coordinator_epoch,
            ..Default::default()
        }],
        ..Default::default()
    };
    let (resp, _): (WriteTxnMarkersResponse, i16) =
        tokio::time::timeout(MARKER_TIMEOUT + Duration::from_secs(2), client.call(1, &req)).await??;
    let mut codes: HashMap<(String, i32), i16> = HashMap::new();
    for m in resp.markers {
        for t in m.topics {
            for p in t.partitions {
                codes.insert((t.name.clone(), p.partition_index), p.error_code);
            }
        }
    }
    Ok(parts
        .iter()
        .map(|k| {
            codes
                .get(k)
                .and_then(|c| ErrorCode::ALL.iter().copied().find(|e| e.code() == *c))
                .unwrap_or(ErrorCode::UnknownServerError)
        })
        .collect())
}

/// Spawns the loader, the leadership follower and the timeout task.
pub fn start(txns: &Arc<TxnCoordinator>, meta: &Arc<Metadata>) {
    let _ = txns.meta.set(Arc::downgrade(meta));
    let (t, m) = (txns.clone(), meta.clone());
    tokio::spawn(async move {
        let _ = tokio::task::spawn_blocking({
            let (t, m) = (t.clone(), m.clone());
            move || t.follow_leadership(&m)
        })
        .await;
        drop(m);
        let (weak, every) = (Arc::downgrade(&t), Duration::from_millis(t.settings.abort_interval_ms));
        drop(t);
        loop {
            tokio::time::sleep(every).await;
            let Some(t) = weak.upgrade() else { return };
            t.expire().await;
        }
    });
    // Leadership of __transaction_state partitions moves with the metadata (and the
    // topic appears on first use).
    let (t, m) = (Arc::downgrade(txns), Arc::downgrade(meta));
    let mut rx = meta.quorum().map(|q| q.published());
    tokio::spawn(async move {
        loop {
            match rx.as_mut() {
                Some(rx) => {
                    if let Ok(Err(_)) = tokio::time::timeout(Duration::from_millis(500), rx.changed()).await {
                        return;
                    }
                }
                None => tokio::time::sleep(Duration::from_millis(500)).await,
            }
            let (Some(t), Some(m)) = (t.upgrade(), m.upgrade()) else { return };
            if t.loaded.load(Ordering::Acquire) {
                let _ = tokio::task::spawn_blocking(move || t.follow_leadership(&m)).await;
            }
        }
    });
}
