//! The share coordinator (KIP-932's persister; ADR 0016 step 4): the broker leading a
//! partition of `__share_group_state` keeps the latest snapshot of every share-partition
//! whose key hashes to that partition, and is the only one writing them. Share-partition
//! leaders reach it with ReadShareGroupState (on opening a share-partition) and
//! WriteShareGroupState (before answering an acknowledgement) — in process when they
//! lead the state partition themselves, over the inter-broker listener otherwise — so the
//! state fails over with the data partition's leadership: the new leader reads what the
//! old one wrote.
//!
//! Fencing, after Kafka's: a write carries the data partition's leader epoch and the
//! share-partition's state epoch; one older than what the coordinator has seen is
//! refused (FENCED_LEADER_EPOCH, FENCED_STATE_EPOCH), so a deposed leader cannot
//! overwrite its successor's state, and a share-partition reset or deleted by an admin
//! (AlterShareGroupOffsets, DeleteShareGroupOffsets, DeleteGroups) is opened again by its
//! leader instead of being written back from memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::broker::Key;
use super::partition::Snapshot;
use super::state::{self, StateValue, SHARE_STATE_TOPIC};
use crate::error::ErrorCode;
use crate::metadata::{Metadata, Partition};

/// An error code and message for the caller.
pub type Refusal = (ErrorCode, String);

/// How long a write waits for `__share_group_state`'s in-sync replicas.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The snapshots of the `__share_group_state` partitions this broker leads.
#[derive(Default)]
pub struct Coordinator {
    loaded: Mutex<HashMap<i32, Loaded>>,
}

/// One state partition, read when this broker started leading it.
struct Loaded {
    /// The state partition's leader epoch at the read: another epoch means it was led
    /// elsewhere meanwhile, and is read again.
    epoch: i32,
    values: HashMap<Key, StateValue>,
    /// The highest data-partition leader epoch a reader opened each key with (not
    /// persisted: the opener writes a snapshot at once, which persists it).
    fences: HashMap<Key, i32>,
    /// Keys deleted since the read: a write to one is refused until it is read again.
    deleted: HashSet<Key>,
}

/// What a reader gets: the state epoch and snapshot, if the share-partition has state.
pub type ReadState = Option<(i32, Snapshot)>;

impl Coordinator {
    fn lock(&self) -> MutexGuard<'_, HashMap<i32, Loaded>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state partition of `key`, if this broker leads it.
    fn partition(meta: &Metadata, key: &Key) -> Result<Arc<Partition>, Refusal> {
        let topic = meta
            .share_state_topic()
            .ok_or_else(|| (ErrorCode::CoordinatorNotAvailable, format!("cannot create {SHARE_STATE_TOPIC}")))?;
        let n = topic.partitions.len() as i32;
        let p = topic
            .partitions
            .get(state::partition_for(key, n) as usize)
            .cloned()
            .ok_or_else(|| (ErrorCode::CoordinatorNotAvailable, "no state partition".to_string()))?;
        if !(p.is_leader() && meta.leads_partition(&p)) {
            return Err((ErrorCode::NotCoordinator, "this broker does not lead the key's state partition".into()));
        }
        Ok(p)
    }

    /// Runs `f` on the loaded state of `p`, reading the partition first if this broker
    /// just started leading it (to its log end: a leader's uncommitted tail is committed
    /// under it).
    fn with<R>(&self, p: &Partition, f: impl FnOnce(&mut Loaded) -> R) -> R {
        let mut all = self.lock();
        let epoch = p.leader_epoch();
        let stale = all.get(&p.index).is_none_or(|l| l.epoch != epoch);
        if stale {
            all.insert(p.index, Loaded { epoch, values: load(p), fences: HashMap::new(), deleted: HashSet::new() });
        }
        let Some(loaded) = all.get_mut(&p.index) else { unreachable!("inserted above") };
        f(loaded)
    }

    /// ReadShareGroupState: the state of `key`. `leader_epoch` ≥ 0 fences writers with an
    /// older one; -1 (an admin's read) fences nothing.
    pub fn read(&self, meta: &Metadata, key: &Key, leader_epoch: i32) -> Result<ReadState, Refusal> {
        let p = Self::partition(meta, key)?;
        self.with(&p, |l| {
            let stored = l.values.get(key).map_or(-1, |v| v.leader_epoch);
            let fence = l.fences.get(key).copied().unwrap_or(-1).max(stored);
            if leader_epoch >= 0 {
                if leader_epoch < fence {
                    return Err((ErrorCode::FencedLeaderEpoch, format!("leader epoch {leader_epoch} < {fence}")));
                }
                l.fences.insert(key.clone(), leader_epoch);
                l.deleted.remove(key);
            }
            Ok(l.values.get(key).map(|v| (v.state_epoch, v.snapshot.clone())))
        })
    }

    /// The state of every key of `group` this broker holds (DescribeShareGroupOffsets).
    pub fn group_states(&self, meta: &Metadata, group: &str) -> Vec<(Key, i32, i64)> {
        let Some(topic) = meta.topic(SHARE_STATE_TOPIC) else { return Vec::new() };
        let mut out = Vec::new();
        for p in &topic.partitions {
            if !(p.is_leader() && meta.leads_partition(p)) {
                continue;
            }
            self.with(p, |l| {
                for (k, v) in l.values.iter().filter(|(k, _)| k.0 == group) {
                    out.push((k.clone(), v.leader_epoch, v.snapshot.start_offset));
                }
            });
        }
        out
    }

    /// WriteShareGroupState: appends `snapshot` as the state of `key` and waits until the
    /// state partition's in-sync replicas have it.
    pub async fn write(
        &self,
        meta: &Metadata,
        key: &Key,
        state_epoch: i32,
        leader_epoch: i32,
        snapshot: Snapshot,
    ) -> Result<(), Refusal> {
        // A snapshot from another broker is outside input: one that could not be loaded
        // back is refused rather than stored.
        if let Err(e) = super::partition::SharePartition::from_snapshot(Default::default(), &snapshot) {
            return Err((ErrorCode::InvalidRequest, format!("inconsistent share-partition state: {e}")));
        }
        let p = Self::partition(meta, key)?;
        let offset = self.with(&p, |l| {
            if l.deleted.contains(key) {
                return Err((ErrorCode::FencedStateEpoch, "the share-partition's state was deleted".to_string()));
            }
            let previous = l.values.get(key);
            if let Some(v) = previous {
                if state_epoch < v.state_epoch {
                    return Err((
                        ErrorCode::FencedStateEpoch,
                        format!("state epoch {state_epoch} < {}", v.state_epoch),
                    ));
                }
            }
            let fence = l.fences.get(key).copied().unwrap_or(-1).max(previous.map_or(-1, |v| v.leader_epoch));
            if leader_epoch < fence {
                return Err((ErrorCode::FencedLeaderEpoch, format!("leader epoch {leader_epoch} < {fence}")));
            }
            let now = strom_storage::now_ms();
            let value = StateValue {
                snapshot_epoch: previous.map_or(0, |v| v.snapshot_epoch.wrapping_add(1).max(0)),
                state_epoch,
                leader_epoch,
                create_timestamp: previous.map_or(now, |v| v.create_timestamp),
                write_timestamp: now,
                snapshot,
            };
            let offset = append(&p, key, Some(&value))?;
            l.values.insert(key.clone(), value);
            Ok(offset)
        })?;
        commit(&p, key, offset).await
    }

    /// AlterShareGroupOffsets: starts `key` again at `start_offset` with the next state
    /// epoch, which fences its leader's in-memory state.
    pub async fn reset(&self, meta: &Metadata, key: &Key, start_offset: i64) -> Result<(), Refusal> {
        let p = Self::partition(meta, key)?;
        let offset = self.with(&p, |l| {
            let previous = l.values.get(key);
            let now = strom_storage::now_ms();
            let value = StateValue {
                snapshot_epoch: previous.map_or(0, |v| v.snapshot_epoch.wrapping_add(1).max(0)),
                state_epoch: previous.map_or(0, |v| v.state_epoch.wrapping_add(1).max(0)),
                leader_epoch: previous.map_or(-1, |v| v.leader_epoch),
                create_timestamp: now,
                write_timestamp: now,
                snapshot: Snapshot { start_offset, batches: Vec::new() },
            };
            let offset = append(&p, key, Some(&value))?;
            l.values.insert(key.clone(), value);
            l.deleted.remove(key);
            Ok(offset)
        })?;
        commit(&p, key, offset).await
    }

    /// DeleteShareGroupState: tombstones `key` if it has state (nothing to do otherwise).
    pub async fn delete(&self, meta: &Metadata, key: &Key) -> Result<(), Refusal> {
        let p = Self::partition(meta, key)?;
        let offset = self.with(&p, |l| {
            l.deleted.insert(key.clone());
            if l.values.remove(key).is_none() {
                return Ok(None);
            }
            append(&p, key, None).map(Some)
        })?;
        match offset {
            Some(o) => commit(&p, key, o).await,
            None => Ok(()),
        }
    }
}

/// The latest snapshot of every key in one state partition. Undecodable records are
/// skipped with a warning: a share-partition whose state is lost starts again from
/// `share.auto.offset.reset`.
fn load(p: &Partition) -> HashMap<Key, StateValue> {
    let mut out = HashMap::new();
    p.scan_batches(p.log_start_offset(), p.log_end_offset(), |_, batch| {
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
    tracing::info!(partition = p.index, share_partitions = out.len(), "loaded share-partition state");
    out
}

/// Appends one record for `key` (`None`: a tombstone); its offset.
fn append(p: &Partition, key: &Key, value: Option<&StateValue>) -> Result<i64, Refusal> {
    let mut batch = strom_protocol::records::BatchBuilder::new(strom_storage::now_ms());
    let v = value.map(state::encode_value);
    batch.add(Some(&state::encode_key(key)), v.as_deref());
    p.append(&batch.build()).map(|info| info.last_offset).map_err(|(code, msg)| {
        tracing::error!(group = %key.0, partition = key.2, error = %msg, "could not write share-partition state");
        (code, msg)
    })
}

/// Waits until `offset` is committed (at once on a single node).
async fn commit(p: &Partition, key: &Key, offset: i64) -> Result<(), Refusal> {
    let deadline = tokio::time::Instant::now() + COMMIT_TIMEOUT;
    p.wait_committed(offset + 1, deadline).await.map_err(|code| {
        tracing::warn!(group = %key.0, partition = key.2, ?code, "share-partition state not committed");
        (code, format!("the state write was not committed: {code:?}"))
    })
}
