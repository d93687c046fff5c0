//! Partition replication, the moving parts (ADR 0010): one fetcher task per leader
//! broker copies the partitions this broker follows there, and a proposer task sends
//! the ISR changes the partitions this broker leads ask for. The rules (HW, ISR,
//! truncation) are in [`crate::partition::leader`]; this module only moves bytes and
//! metadata records.
//!
//! Followers speak Kafka's protocol to their leader: OffsetForLeaderEpoch (with their
//! replica id) to find where their log diverges after a leader change, then Fetch with
//! `replica_id` set, appending the batches unchanged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};
use std::time::Duration;

use strom_client::Client;
use strom_protocol::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::metadata_record::Record;
use strom_protocol::offset_for_leader_epoch_request::{OffsetForLeaderPartition, OffsetForLeaderTopic};
use strom_protocol::{
    FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse,
};
use tracing::Instrument;

use crate::error::ErrorCode;
use crate::metadata::{Metadata, Partition, Topic};
use crate::partition::leader::truncation_step;

/// How long a follower's fetch waits at the leader for new data.
const FETCH_WAIT_MS: i32 = 500;
/// Bytes per partition and per response of a follower fetch.
const PARTITION_MAX_BYTES: i32 = 4 << 20;
const RESPONSE_MAX_BYTES: i32 = 16 << 20;
/// Pause after a failed connection or request, so a dead leader costs little.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Starts the fetchers and the ISR proposer of a cluster broker (nothing on a single
/// node). Both end once `meta` is dropped.
pub fn start(meta: &Arc<Metadata>) {
    let Some(q) = meta.quorum() else { return };
    if !meta.serves_clients() {
        return;
    }
    tokio::spawn(supervise(Arc::downgrade(meta), q.published()));
    tokio::spawn(propose_isr_changes(Arc::downgrade(meta)));
}

/// The leaders this broker follows some partition of, from the image.
fn leaders_followed(meta: &Metadata) -> BTreeSet<i32> {
    let me = meta.config.node_id;
    let image = meta.image();
    image
        .topics
        .values()
        .flat_map(|t| t.partitions.values())
        .filter(|p| p.leader >= 0 && p.leader != me && p.replicas.contains(&me))
        .map(|p| p.leader)
        .collect()
}

/// Keeps one fetcher task per leader broker this broker follows.
async fn supervise(
    meta: Weak<Metadata>,
    mut published: tokio::sync::watch::Receiver<crate::metadata::quorum::Published>,
) {
    let mut running: HashMap<i32, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        let Some(m) = meta.upgrade() else { return };
        for leader in leaders_followed(&m) {
            if running.get(&leader).is_none_or(|h| h.is_finished()) {
                let span = tracing::info_span!("replica_fetcher", leader);
                running.insert(leader, tokio::spawn(fetch_from(meta.clone(), leader).instrument(span)));
            }
        }
        drop(m);
        if published.changed().await.is_err() {
            return;
        }
    }
}

/// One partition this broker follows from the fetcher's leader.
struct Followed {
    topic: Arc<Topic>,
    partition: Arc<Partition>,
    epoch: i32,
}

/// The partitions this broker follows from `leader` now (by their roles).
fn followed_from(meta: &Metadata, leader: i32) -> Vec<Followed> {
    let mut out = Vec::new();
    for topic in meta.topics() {
        for p in &topic.partitions {
            if let Some((l, epoch)) = p.following() {
                if l == leader {
                    out.push(Followed { topic: topic.clone(), partition: p.clone(), epoch });
                }
            }
        }
    }
    out
}

/// Copies every partition this broker follows from `leader`, forever (idle while
/// there are none; the task lives as long as the metadata).
async fn fetch_from(meta: Weak<Metadata>, leader: i32) {
    let mut client: Option<Client> = None;
    // The leader epoch each partition was last truncated for.
    let mut synced: HashMap<(Arc<str>, i32), i32> = HashMap::new();
    loop {
        let Some(m) = meta.upgrade() else { return };
        let parts = followed_from(&m, leader);
        if parts.is_empty() {
            client = None;
            let mut rx = match m.quorum() {
                Some(q) => q.published(),
                None => return,
            };
            drop(m);
            let _ = tokio::time::timeout(Duration::from_secs(1), rx.changed()).await;
            continue;
        }
        if client.is_none() {
            let Some(addr) = m.broker_address(leader) else {
                drop(m);
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            match Client::connect_with(&addr, Duration::from_secs(5), &m.config.inter_broker).await {
                Ok(c) => client = Some(c),
                Err(e) => {
                    tracing::debug!(%addr, error = %format!("{e:#}"), "cannot reach the leader");
                    drop(m);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            }
        }
        let Some(c) = client.as_mut() else { continue };
        let result = async {
            let pending: Vec<&Followed> = parts
                .iter()
                .filter(|f| synced.get(&(f.topic.name.clone(), f.partition.index)) != Some(&f.epoch))
                .collect();
            if !pending.is_empty() {
                for (f, done) in truncate(&m, c, &pending).await? {
                    if done {
                        synced.insert((f.topic.name.clone(), f.partition.index), f.epoch);
                    }
                }
            }
            let ready: Vec<&Followed> = parts
                .iter()
                .filter(|f| synced.get(&(f.topic.name.clone(), f.partition.index)) == Some(&f.epoch))
                .collect();
            if ready.is_empty() {
                return anyhow::Ok(());
            }
            for (f, code) in fetch(&m, c, &ready).await? {
                if code == ErrorCode::OffsetOutOfRange {
                    // Past the leader's end (truncate again) or before its start (start over there).
                    synced.remove(&(f.topic.name.clone(), f.partition.index));
                    reset_if_behind_start(&m, c, f).await?;
                }
            }
            anyhow::Ok(())
        };
        // The fetch itself waits at the leader; holding the metadata meanwhile is fine
        // (only a weak reference keeps the task alive across iterations).
        if let Err(e) = result.await {
            tracing::debug!(error = %format!("{e:#}"), "replica fetch failed; reconnecting");
            client = None;
            drop(m);
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

/// KIP-279 truncation for `parts` against the leader: asks OffsetForLeaderEpoch for each
/// one's latest epoch and cuts its log back, round after round, until the logs agree.
/// Returns each partition with whether it is done.
async fn truncate<'a>(
    meta: &Metadata,
    c: &mut Client,
    parts: &[&'a Followed],
) -> anyhow::Result<Vec<(&'a Followed, bool)>> {
    let mut out = Vec::new();
    for f in parts {
        let p = &f.partition;
        let mut done = false;
        // Each round lowers the epoch asked about, so this ends; the cap is a guard.
        for _ in 0..64 {
            let Some(asked) = p.latest_epoch() else {
                done = true; // an empty log has nothing to cut
                break;
            };
            let req = OffsetForLeaderEpochRequest {
                replica_id: meta.config.node_id,
                topics: vec![OffsetForLeaderTopic {
                    topic: f.topic.name.to_string(),
                    partitions: vec![OffsetForLeaderPartition {
                        partition: p.index,
                        current_leader_epoch: f.epoch,
                        leader_epoch: asked,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let (resp, _): (OffsetForLeaderEpochResponse, _) = c.call(4, &req).await?;
            let Some(r) = resp.topics.first().and_then(|t| t.partitions.first()) else { break };
            if r.error_code != 0 {
                tracing::debug!(partition = ?p, code = r.error_code, "OffsetForLeaderEpoch refused; waiting for metadata");
                break;
            }
            let answer = (r.leader_epoch >= 0 && r.end_offset >= 0).then_some((r.leader_epoch, r.end_offset));
            let (to, agreed) =
                truncation_step(asked, answer, |e| p.end_offset_for_epoch(e), p.log_end_offset(), p.log_start_offset());
            // Also when nothing is cut but the epochs disagree: the cache's entries from
            // `to` on (an empty leadership of this broker) must go, or the next round
            // asks about the same epoch again.
            if to < p.log_end_offset() || !agreed {
                tracing::info!(partition = ?p, asked, ?answer, from = p.log_end_offset(), to, "truncating to the leader");
                if p.truncate_follower(to, false, f.epoch).is_err() {
                    break;
                }
            }
            if agreed {
                done = true;
                break;
            }
        }
        out.push((*f, done));
    }
    Ok(out)
}

/// One follower fetch for `parts`; appends what came back and returns the partitions
/// whose answer was an error, with it.
async fn fetch<'a>(
    meta: &Metadata,
    c: &mut Client,
    parts: &[&'a Followed],
) -> anyhow::Result<Vec<(&'a Followed, ErrorCode)>> {
    let mut by_topic: Vec<(Arc<str>, Vec<&Followed>)> = Vec::new();
    for f in parts {
        match by_topic.iter_mut().find(|(t, _)| *t == f.topic.name) {
            Some((_, v)) => v.push(f),
            None => by_topic.push((f.topic.name.clone(), vec![f])),
        }
    }
    let req = FetchRequest {
        replica_id: meta.config.node_id,
        max_wait_ms: FETCH_WAIT_MS,
        min_bytes: 1,
        max_bytes: RESPONSE_MAX_BYTES,
        topics: by_topic
            .iter()
            .map(|(name, fs)| FetchTopic {
                topic: name.to_string(),
                topic_id: fs[0].topic.id,
                partitions: fs
                    .iter()
                    .map(|f| FetchPartition {
                        partition: f.partition.index,
                        current_leader_epoch: f.epoch,
                        fetch_offset: f.partition.log_end_offset(),
                        log_start_offset: f.partition.log_start_offset(),
                        partition_max_bytes: PARTITION_MAX_BYTES,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    // v12: topic names and the plain replica_id field; everything a follower needs.
    let (resp, _): (FetchResponse, _) = c.call(12, &req).await?;
    if resp.error_code != 0 {
        anyhow::bail!("fetch refused: {}", strom_client::error_name(resp.error_code));
    }
    let mut errors = Vec::new();
    for t in &resp.responses {
        let Some((_, fs)) = by_topic.iter().find(|(name, _)| **name == *t.topic) else { continue };
        for pd in &t.partitions {
            let Some(f) = fs.iter().find(|f| f.partition.index == pd.partition_index) else { continue };
            if pd.error_code != 0 {
                let code = ErrorCode::ALL
                    .iter()
                    .copied()
                    .find(|c| c.code() == pd.error_code)
                    .unwrap_or(ErrorCode::UnknownServerError);
                errors.push((*f, code));
                continue;
            }
            let data = pd.records.as_deref().unwrap_or_default();
            match f.partition.append_replicated(data, f.epoch, pd.high_watermark) {
                Ok(_) => {}
                Err(ErrorCode::NotLeaderOrFollower) => {} // the role changed meanwhile
                Err(code) => {
                    tracing::warn!(partition = ?f.partition, ?code, "could not append the leader's batches");
                    errors.push((*f, code));
                }
            }
            if pd.log_start_offset > f.partition.log_start_offset() && pd.log_start_offset <= pd.high_watermark {
                // DeleteRecords and retention on the leader move the followers' starts too.
                let _ = f.partition.delete_records(pd.log_start_offset.min(f.partition.high_watermark()));
            }
        }
    }
    Ok(errors)
}

/// After OFFSET_OUT_OF_RANGE: if the leader's log starts past this follower's end,
/// empty the follower's log to start there (Kafka's `truncateFullyAndStartAt`).
async fn reset_if_behind_start(meta: &Metadata, c: &mut Client, f: &Followed) -> anyhow::Result<()> {
    use strom_protocol::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let req = ListOffsetsRequest {
        replica_id: meta.config.node_id,
        topics: vec![ListOffsetsTopic {
            name: f.topic.name.to_string(),
            partitions: vec![ListOffsetsPartition {
                partition_index: f.partition.index,
                current_leader_epoch: f.epoch,
                timestamp: -2,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (resp, _): (ListOffsetsResponse, _) = c.call(7, &req).await?;
    let Some(r) = resp.topics.first().and_then(|t| t.partitions.first()) else { return Ok(()) };
    if r.error_code == 0 && r.offset > f.partition.log_end_offset() {
        tracing::info!(partition = ?f.partition, start = r.offset, "the leader's log starts past ours: starting over there");
        let _ = f.partition.truncate_follower(r.offset, true, f.epoch);
    }
    Ok(())
}

/// Every quarter of `replica.lag.time.max.ms` (at most every second), asks each partition
/// this broker leads whether its ISR should change, and writes the change through the
/// quorum (ADR 0010's AlterPartition record).
async fn propose_isr_changes(meta: Weak<Metadata>) {
    let lag_ms = {
        let Some(m) = meta.upgrade() else { return };
        m.config.values.get("replica.lag.time.max.ms").and_then(|v| v.parse::<i64>().ok()).unwrap_or(30_000).max(1)
    };
    let tick = Duration::from_millis((lag_ms as u64 / 4).clamp(10, 1000));
    loop {
        tokio::time::sleep(tick).await;
        let Some(m) = meta.upgrade() else { return };
        let Some(q) = m.quorum().cloned() else { return };
        let now = strom_storage::now_ms();
        let mut changes = Vec::new();
        for topic in m.topics() {
            for p in &topic.partitions {
                if let Some((isr, leader_epoch, partition_epoch)) = p.propose_isr(now, lag_ms) {
                    changes.push((
                        p.clone(),
                        Record::AlterPartition {
                            topic_id: topic.id,
                            partition: p.index,
                            leader_epoch,
                            partition_epoch,
                            isr,
                        },
                    ));
                }
            }
        }
        drop(m);
        for (p, record) in changes {
            tracing::info!(partition = ?p, ?record, "proposing an ISR change");
            match q.write(vec![record]).await {
                Ok(crate::metadata::quorum::Applied::Ok) => {
                    crate::metrics::ISR_CHANGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(crate::metadata::quorum::Applied::Refused(why)) => {
                    tracing::info!(partition = ?p, %why, "ISR change refused");
                    p.isr_refused();
                }
                Err(e) => {
                    tracing::warn!(partition = ?p, error = %format!("{e:#}"), "ISR change not committed");
                    p.isr_refused();
                }
            }
        }
    }
}
