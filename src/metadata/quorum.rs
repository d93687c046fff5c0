//! The metadata quorum (ADR 0007, ADR 0008): openraft orders metadata changes among the
//! controllers named by `controller.quorum.voters`; every node applies the committed
//! changes, in order, to the metadata image.
//!
//! - The Raft log is the metadata partition `__cluster_metadata-0` in `strom-storage`'s
//!   format: one batch per entry, one record whose value is the entry's metadata records
//!   (a blank leader entry is a `NoOp` record, a membership entry a `Membership` record),
//!   the batch's offset is the Raft index and its `partitionLeaderEpoch` the term. openraft
//!   runs with `single-term-leader`, so a log id is (term, index) as in KRaft.
//! - The vote, the committed log id and the last purged log id live in `quorum-state`
//!   beside it (JSON, written temp-fsync-rename).
//! - The state machine is the image; snapshots are the image's records plus the
//!   membership, in the `.checkpoint` files of ADR 0008.
//! - Controllers talk over the controller listener with [`Frame`]s: a length, a CRC32C and
//!   a JSON body naming the cluster and the sending node. Frames from another cluster or a
//!   node that is not a voter are refused and logged, never handed to Raft.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::io::Cursor;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use openraft::error::{
    ClientWriteError, InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::storage::{LogFlushed, RaftLogStorage, RaftStateMachine};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, LogState, Membership, RaftLogReader, RaftNetwork,
    RaftNetworkFactory, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError, StoredMembership,
    Vote,
};
use serde::{Deserialize, Serialize};
use strom_protocol::metadata_record::Record;
use strom_protocol::records::BatchBuilder;
use strom_storage::{Log, LogConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Mutex};

use super::image::Image;
use super::log::{
    applied, decode_records, encode_records, read_changes, snapshots, write_durably, DIR, SNAPSHOT_MAGIC,
};

/// A node id in the quorum (Kafka's `node.id`).
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft's types for the metadata quorum.
    pub MetaRaft:
        D = Change,
        R = Applied,
        NodeId = NodeId,
        Node = BasicNode,
        Entry = Entry<MetaRaft>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

type Raft = openraft::Raft<MetaRaft>;

/// One metadata change: records applied together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change(pub Vec<Record>);

impl Serialize for Change {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let bytes = encode_records(&self.0).map_err(serde::ser::Error::custom)?;
        s.serialize_bytes(&bytes)
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Change, D::Error> {
        let bytes: Vec<u8> = Deserialize::deserialize(d)?;
        decode_records(Bytes::from(bytes)).map(Change).map_err(|e| serde::de::Error::custom(format!("{e:#}")))
    }
}

/// What applying a committed change did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// The image changed (or the entry carried no change).
    Ok,
    /// The change contradicted the image when its turn came (say a second topic with a
    /// name taken by a change committed just before); every node refuses it alike.
    Refused(String),
}

/// Largest frame on the controller listener (snapshot chunks are far smaller).
const MAX_FRAME: usize = 64 << 20;
const STATE_FILE: &str = "quorum-state";

fn io_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::write(AnyError::error(e.to_string())).into()
}

fn read_err(e: impl std::fmt::Display) -> StorageError<NodeId> {
    StorageIOError::read(AnyError::error(e.to_string())).into()
}

fn log_id(term: i32, index: i64) -> LogId<NodeId> {
    LogId::new(openraft::CommittedLeaderId::new(term.max(0) as u64, 0), index.max(0) as u64)
}

/// The records an entry is stored as.
fn entry_records(e: &Entry<MetaRaft>) -> anyhow::Result<Vec<Record>> {
    Ok(match &e.payload {
        EntryPayload::Blank => vec![Record::NoOp],
        EntryPayload::Normal(c) => {
            anyhow::ensure!(!c.0.is_empty() && c.0 != [Record::NoOp], "an empty metadata change");
            c.0.clone()
        }
        EntryPayload::Membership(m) => vec![membership_record(m)?],
    })
}

fn membership_record(m: &Membership<NodeId, BasicNode>) -> anyhow::Result<Record> {
    // Joint configurations only exist while voters change (KIP-853), which the static
    // `controller.quorum.voters` quorum never does.
    let configs = m.get_joint_config();
    anyhow::ensure!(configs.len() == 1, "joint quorum configurations are not supported");
    let id = |n: &NodeId| i32::try_from(*n).context("node id out of range");
    Ok(Record::Membership {
        voters: configs[0].iter().map(id).collect::<anyhow::Result<_>>()?,
        learners: m.learner_ids().map(|n| id(&n)).collect::<anyhow::Result<_>>()?,
    })
}

/// Addresses of the quorum's nodes, from `controller.quorum.voters`.
#[derive(Debug, Clone)]
pub struct AddressBook(pub BTreeMap<NodeId, String>);

impl AddressBook {
    fn node(&self, id: NodeId) -> BasicNode {
        BasicNode::new(self.0.get(&id).cloned().unwrap_or_default())
    }

    fn membership(&self, voters: &[i32], learners: &[i32]) -> Membership<NodeId, BasicNode> {
        let v: BTreeSet<NodeId> = voters.iter().map(|&n| n as NodeId).collect();
        let nodes: BTreeMap<NodeId, BasicNode> =
            voters.iter().chain(learners).map(|&n| (n as NodeId, self.node(n as NodeId))).collect();
        Membership::new(vec![v], nodes)
    }

    fn entry(&self, term: i32, index: i64, records: Vec<Record>) -> Entry<MetaRaft> {
        let payload = match records.as_slice() {
            [Record::NoOp] => EntryPayload::Blank,
            [Record::Membership { voters, learners }] => EntryPayload::Membership(self.membership(voters, learners)),
            _ => EntryPayload::Normal(Change(records)),
        };
        Entry { log_id: log_id(term, index), payload }
    }
}

/// A producer-id block must start where the image's mark is: two brokers asking for a
/// block at once both propose the same start, and the second is refused (and retries),
/// so no id is handed out twice.
fn check_blocks(image: &Image, records: &[Record]) -> anyhow::Result<()> {
    for r in records {
        if let Record::ProducerIds { next_producer_id, broker_id, .. } = r {
            let want = image.next_producer_id + crate::metadata::PRODUCER_ID_BLOCK;
            anyhow::ensure!(
                *next_producer_id == want,
                "producer-id block for broker {broker_id} ends at {next_producer_id}, the next block ends at {want}"
            );
        }
    }
    Ok(())
}

/// What `quorum-state` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct QuorumState {
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    last_purged: Option<LogId<NodeId>>,
}

struct LogInner {
    dir: PathBuf,
    log: Log,
    state: QuorumState,
}

impl LogInner {
    fn save_state(&self) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&self.state)?;
        write_durably(&self.dir, STATE_FILE, &body)
    }

    fn entries(&self, book: &AddressBook, from: u64, to: u64) -> anyhow::Result<Vec<Entry<MetaRaft>>> {
        let start = self.log.log_start_offset().max(from as i64);
        let end = self.log.log_end_offset().min(to as i64);
        Ok(read_changes(&self.log, start, end)?.into_iter().map(|(o, t, r)| book.entry(t, o, r)).collect())
    }
}

/// openraft's log storage over the metadata partition.
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<LogInner>>,
    book: Arc<AddressBook>,
}

impl LogStore {
    fn open(data_dir: &Path, book: Arc<AddressBook>) -> anyhow::Result<LogStore> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = Log::open(&dir, LogConfig { segment_bytes: 64 << 20, ..LogConfig::default() })
            .with_context(|| format!("opening {}", dir.display()))?;
        let state = match std::fs::read(dir.join(STATE_FILE)) {
            Ok(b) => serde_json::from_slice(&b).with_context(|| format!("parsing {}/{STATE_FILE}", dir.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => QuorumState::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}/{STATE_FILE}", dir.display())),
        };
        Ok(LogStore { inner: Arc::new(Mutex::new(LogInner { dir, log, state })), book })
    }
}

impl RaftLogReader<MetaRaft> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<MetaRaft>>, StorageError<NodeId>> {
        use std::ops::Bound;
        let from = match range.start_bound() {
            Bound::Included(&n) => n,
            Bound::Excluded(&n) => n + 1,
            Bound::Unbounded => 0,
        };
        let to = match range.end_bound() {
            Bound::Included(&n) => n + 1,
            Bound::Excluded(&n) => n,
            Bound::Unbounded => u64::MAX >> 2,
        };
        self.inner.lock().await.entries(&self.book, from, to).map_err(|e| read_err(format!("{e:#}")))
    }
}

impl RaftLogStorage<MetaRaft> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<MetaRaft>, StorageError<NodeId>> {
        let inner = self.inner.lock().await;
        let (start, end) = (inner.log.log_start_offset(), inner.log.log_end_offset());
        let last_purged = inner.state.last_purged;
        let last = if end > start {
            let last = read_changes(&inner.log, end - 1, end).map_err(|e| read_err(format!("{e:#}")))?;
            last.last().map(|(o, t, _)| log_id(*t, *o)).or(last_purged)
        } else {
            last_purged
        };
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock().await;
        inner.state.vote = Some(*vote);
        inner.save_state().map_err(|e| io_err(format!("{e:#}")))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().await.state.vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock().await;
        inner.state.committed = committed;
        inner.save_state().map_err(|e| io_err(format!("{e:#}")))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.inner.lock().await.state.committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<MetaRaft>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<MetaRaft>> + Send,
        I::IntoIter: Send,
    {
        let mut inner = self.inner.lock().await;
        for e in entries {
            let (start, end) = (inner.log.log_start_offset(), inner.log.log_end_offset());
            let index = e.log_id.index as i64;
            if index > end && start == end {
                // Everything before was purged (a snapshot installed past our log): the
                // log starts again here.
                inner.log.reset_to(index).map_err(io_err)?;
            } else if index < end && index >= start {
                // openraft truncates conflicts before appending; an entry that lands on
                // existing ones replaces them and everything after (as a map insert
                // would), which keeps the log contiguous.
                inner.log.truncate_to(index).map_err(io_err)?;
            } else if index != end {
                return Err(io_err(format!("entry {} would leave a hole after the log end {end}", e.log_id)));
            }
            let records = entry_records(&e).map_err(|err| io_err(format!("{err:#}")))?;
            let value = encode_records(&records).map_err(|err| io_err(format!("{err:#}")))?;
            let mut b = BatchBuilder::new(strom_storage::now_ms());
            b.add(None, Some(&value));
            let term = i32::try_from(e.log_id.leader_id.term).map_err(io_err)?;
            inner.log.append(&b.build(), term).map_err(io_err)?;
        }
        let flushed = inner.log.flush().map_err(|e| std::io::Error::other(e.to_string()));
        callback.log_io_completed(flushed);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock().await;
        tracing::info!(from = log_id.index, "truncating the metadata log (entries not committed by the quorum)");
        inner.log.truncate_to(log_id.index as i64).map_err(io_err)?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut inner = self.inner.lock().await;
        // The purge point is durable before the entries go, so the log state never
        // claims entries that are no longer there.
        inner.state.last_purged = Some(log_id);
        inner.save_state().map_err(|e| io_err(format!("{e:#}")))?;
        let upto = log_id.index as i64 + 1;
        if upto > inner.log.log_end_offset() {
            // Purged past our last entry (a snapshot from the leader covers more than we
            // had): the log starts again after it.
            inner.log.reset_to(upto).map_err(io_err)?;
        } else {
            inner.log.delete_records_before(upto).map_err(io_err)?;
        }
        Ok(())
    }
}

/// What the state machine publishes after every apply: the image and the index of the
/// last change in it (-1 before the first).
#[derive(Debug, Clone)]
pub struct Published {
    /// The image.
    pub image: Arc<Image>,
    /// Raft index of the last applied entry.
    pub applied: i64,
}

/// The state machine: the image, rebuilt from the newest snapshot and the committed log.
pub struct StateMachine {
    dir: PathBuf,
    book: Arc<AddressBook>,
    image: Arc<Image>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    tx: watch::Sender<Published>,
}

/// A snapshot file's bytes: magic, the change encoding of the records, CRC32C.
fn snapshot_bytes(records: &[Record]) -> anyhow::Result<Vec<u8>> {
    let mut data = SNAPSHOT_MAGIC.to_vec();
    data.extend_from_slice(&encode_records(records)?);
    let crc = crc32c::crc32c(&data);
    data.extend_from_slice(&crc.to_be_bytes());
    Ok(data)
}

fn parse_snapshot(data: &[u8]) -> anyhow::Result<Vec<Record>> {
    let body_len = data.len().checked_sub(4).filter(|&n| n >= SNAPSHOT_MAGIC.len()).context("snapshot too short")?;
    let (body, crc) = data.split_at(body_len);
    let want = u32::from_be_bytes(crc.try_into().context("snapshot CRC")?);
    anyhow::ensure!(crc32c::crc32c(body) == want, "snapshot CRC mismatch");
    let content = body.strip_prefix(SNAPSHOT_MAGIC.as_slice()).context("not a metadata snapshot")?;
    decode_records(Bytes::copy_from_slice(content))
}

impl StateMachine {
    fn open(data_dir: &Path, book: Arc<AddressBook>) -> anyhow::Result<(StateMachine, watch::Receiver<Published>)> {
        let dir = data_dir.join(DIR);
        std::fs::create_dir_all(&dir)?;
        let mut sm = StateMachine {
            dir: dir.clone(),
            book,
            image: Arc::new(Image::default()),
            last_applied: None,
            membership: StoredMembership::default(),
            tx: watch::channel(Published { image: Arc::new(Image::default()), applied: -1 }).0,
        };
        for (offset, path) in snapshots(&dir)? {
            let loaded = std::fs::read(&path).map_err(anyhow::Error::from).and_then(|d| parse_snapshot(&d));
            let term = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.split('-').nth(1))
                .and_then(|t| t.parse::<i32>().ok());
            match (loaded, term) {
                (Ok(records), Some(term)) if offset > 0 => {
                    sm.load(records, Some(log_id(term, offset - 1)))?;
                    break;
                }
                (Err(e), _) => {
                    tracing::error!(snapshot = %path.display(), error = %format!("{e:#}"), "metadata snapshot unusable; set aside");
                    std::fs::rename(&path, path.with_extension("corrupt"))?;
                }
                _ => {}
            }
        }
        let rx = sm.tx.subscribe();
        sm.publish();
        Ok((sm, rx))
    }

    fn load(&mut self, records: Vec<Record>, last: Option<LogId<NodeId>>) -> anyhow::Result<()> {
        let image = applied(&Image::default(), &records)?;
        self.membership = StoredMembership::new(last, self.book.membership(&image.voters, &image.learners));
        self.image = Arc::new(image);
        self.last_applied = last;
        Ok(())
    }

    fn publish(&self) {
        let applied = self.last_applied.map_or(-1, |l| l.index as i64);
        self.tx.send_replace(Published { image: self.image.clone(), applied });
    }

    fn build(&self) -> anyhow::Result<Snapshot<MetaRaft>> {
        let last = self.last_applied;
        let records = self.image.to_records();
        let data = snapshot_bytes(&records)?;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.membership.clone(),
            snapshot_id: last.map_or_else(|| "empty".to_string(), |l| format!("{}-{}", l.index, l.leader_id.term)),
        };
        if let Some(l) = last {
            self.store(l, &data)?;
        }
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
    }

    /// Writes a snapshot file durably and drops the older ones.
    fn store(&self, last: LogId<NodeId>, data: &[u8]) -> anyhow::Result<()> {
        let offset = last.index as i64 + 1;
        let name = format!("{offset:020}-{:010}.checkpoint", last.leader_id.term);
        write_durably(&self.dir, &name, data)?;
        for (old, path) in snapshots(&self.dir)? {
            if old < offset {
                let _ = std::fs::remove_file(path);
            }
        }
        Ok(())
    }
}

/// The state machine's snapshot builder: a copy of it at the moment it was asked for.
pub struct Builder(Snapshot<MetaRaft>);

impl RaftSnapshotBuilder<MetaRaft> for Builder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<MetaRaft>, StorageError<NodeId>> {
        let data = self.0.snapshot.get_ref().clone();
        Ok(Snapshot { meta: self.0.meta.clone(), snapshot: Box::new(Cursor::new(data)) })
    }
}

impl RaftStateMachine<MetaRaft> for StateMachine {
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<MetaRaft>> + Send,
        I::IntoIter: Send,
    {
        let mut out = Vec::new();
        for e in entries {
            self.last_applied = Some(e.log_id);
            out.push(match e.payload {
                EntryPayload::Blank => Applied::Ok,
                EntryPayload::Normal(Change(records)) => match check_blocks(&self.image, &records)
                    .and_then(|()| applied(&self.image, &records))
                {
                    Ok(next) => {
                        self.image = Arc::new(next);
                        Applied::Ok
                    }
                    Err(err) => {
                        tracing::warn!(index = e.log_id.index, error = %format!("{err:#}"), "committed metadata change refused by the image");
                        Applied::Refused(format!("{err:#}"))
                    }
                },
                EntryPayload::Membership(m) => {
                    if let Ok(Record::Membership { voters, learners }) = membership_record(&m) {
                        let mut next = (*self.image).clone();
                        next.voters = voters;
                        next.learners = learners;
                        self.image = Arc::new(next);
                    }
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    Applied::Ok
                }
            });
        }
        self.publish();
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Builder {
        match self.build() {
            Ok(s) => Builder(s),
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "building a metadata snapshot failed");
                Builder(Snapshot { meta: SnapshotMeta::default(), snapshot: Box::new(Cursor::new(Vec::new())) })
            }
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let records = parse_snapshot(&data).map_err(|e| read_err(format!("snapshot from the leader: {e:#}")))?;
        let image = applied(&Image::default(), &records).map_err(|e| read_err(format!("{e:#}")))?;
        if let Some(last) = meta.last_log_id {
            self.store(last, &data).map_err(|e| io_err(format!("{e:#}")))?;
        }
        tracing::info!(snapshot = %meta.snapshot_id, "installed a metadata snapshot from the leader");
        self.image = Arc::new(image);
        self.last_applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<MetaRaft>>, StorageError<NodeId>> {
        let data_dir = self.dir.parent().map(Path::to_path_buf).unwrap_or_default();
        let current = current_snapshot(&data_dir, &self.book).map_err(|e| read_err(format!("{e:#}")))?;
        Ok(current.map(|(meta, data)| Snapshot { meta, snapshot: Box::new(Cursor::new(data)) }))
    }
}

/// A request between controllers.
#[derive(Debug, Serialize, Deserialize)]
pub enum Rpc {
    /// Raft AppendEntries.
    Append(AppendEntriesRequest<MetaRaft>),
    /// Raft RequestVote.
    Vote(VoteRequest<NodeId>),
    /// A snapshot chunk.
    Snapshot(InstallSnapshotRequest<MetaRaft>),
    /// A metadata change for the leader to commit (sent by a follower that was asked).
    Write(Change),
    /// A broker's heartbeat, to the leader.
    Heartbeat {
        /// The broker.
        broker: i32,
        /// Its registration epoch.
        epoch: i64,
    },
    /// An observer (broker-only node) asks for committed changes from this index on.
    Fetch {
        /// The first index it lacks.
        from: u64,
    },
}

/// An [`Rpc`]'s answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// To [`Rpc::Append`].
    Append(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Rpc::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// To [`Rpc::Snapshot`].
    Snapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    /// To [`Rpc::Write`]: applied at this Raft index, or why not (not the leader any
    /// more, say).
    Write(Result<(Applied, u64), String>),
    /// To [`Rpc::Heartbeat`]: recorded, or why not.
    Heartbeat(Result<(), String>),
    /// To [`Rpc::Fetch`].
    Fetch(Result<Fetched, String>),
    /// The request was refused before it reached Raft (unknown node, other cluster).
    Refused(String),
}

/// Who sends a request.
#[derive(Debug, Serialize, Deserialize)]
pub struct Frame {
    /// The sender's cluster id; another cluster's frames are refused.
    pub cluster_id: String,
    /// The sender's node id; it must be a voter.
    pub from: NodeId,
    /// The request.
    pub rpc: Rpc,
}

/// Reads one frame: u32 length (of what follows), u32 CRC32C of the body, JSON body.
async fn read_frame<T: serde::de::DeserializeOwned>(s: &mut TcpStream) -> anyhow::Result<Option<T>> {
    let mut head = [0u8; 8];
    match s.read_exact(&mut head[..4]).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    s.read_exact(&mut head[4..]).await?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    anyhow::ensure!((4..=MAX_FRAME).contains(&len), "controller frame of {len} bytes");
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await?;
    anyhow::ensure!(crc32c::crc32c(&body) == crc, "controller frame CRC mismatch");
    Ok(Some(serde_json::from_slice(&body).context("decoding a controller frame")?))
}

async fn write_frame<T: Serialize>(s: &mut TcpStream, v: &T) -> anyhow::Result<()> {
    let body = serde_json::to_vec(v)?;
    anyhow::ensure!(body.len() + 4 <= MAX_FRAME, "controller frame too large");
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    s.write_all(&out).await?;
    Ok(())
}

/// One connection to another controller, opened on first use and again after a failure.
pub struct Peer {
    target: NodeId,
    addr: String,
    me: NodeId,
    cluster_id: String,
    conn: Option<TcpStream>,
}

impl Peer {
    async fn call(&mut self, rpc: Rpc, ttl: Duration) -> Result<Reply, std::io::Error> {
        let frame = Frame { cluster_id: self.cluster_id.clone(), from: self.me, rpc };
        let r = tokio::time::timeout(ttl, async {
            if self.conn.is_none() {
                let s = TcpStream::connect(&self.addr).await?;
                s.set_nodelay(true)?;
                self.conn = Some(s);
            }
            let Some(conn) = self.conn.as_mut() else { return Err(std::io::Error::other("no connection")) };
            write_frame(conn, &frame).await.map_err(std::io::Error::other)?;
            match read_frame::<Reply>(conn).await {
                Ok(Some(r)) => Ok(r),
                Ok(None) => Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "controller closed")),
                Err(e) => Err(std::io::Error::other(e)),
            }
        })
        .await
        .unwrap_or_else(|_| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "controller RPC timed out")));
        if r.is_err() {
            self.conn = None;
        }
        r
    }
}

fn unexpected<E: std::error::Error>(r: Reply) -> RPCError<NodeId, BasicNode, E> {
    let msg = match r {
        Reply::Refused(m) => format!("refused: {m}"),
        other => format!("unexpected reply {other:?}"),
    };
    RPCError::Network(NetworkError::new(&std::io::Error::other(msg)))
}

impl RaftNetwork<MetaRaft> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<MetaRaft>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(Rpc::Append(rpc), option.hard_ttl()).await {
            Ok(Reply::Append(Ok(r))) => Ok(r),
            Ok(Reply::Append(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<MetaRaft>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>>
    {
        match self.call(Rpc::Snapshot(rpc), option.hard_ttl()).await {
            Ok(Reply::Snapshot(Ok(r))) => Ok(r),
            Ok(Reply::Snapshot(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self.call(Rpc::Vote(rpc), option.hard_ttl()).await {
            Ok(Reply::Vote(Ok(r))) => Ok(r),
            Ok(Reply::Vote(Err(e))) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(RPCError::Unreachable(Unreachable::new(&e))),
        }
    }
}

/// Makes [`Peer`]s.
pub struct Network {
    me: NodeId,
    cluster_id: String,
}

impl RaftNetworkFactory<MetaRaft> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer { target, addr: node.addr.clone(), me: self.me, cluster_id: self.cluster_id.clone(), conn: None }
    }
}

/// Settings of the quorum.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    /// This node's id.
    pub node_id: NodeId,
    /// Every voter and its controller address (`controller.quorum.voters`); empty for an
    /// observer configured with `controller.quorum.bootstrap.servers` only.
    pub voters: AddressBook,
    /// Controller addresses an observer may fetch from when it knows no leader: the
    /// voters' addresses, or `controller.quorum.bootstrap.servers`.
    pub seeds: Vec<String>,
    /// Where this node's controller listener binds; `None` for an observer (a
    /// broker-only node), which only ever calls out.
    pub bind: Option<String>,
    /// The cluster id every frame must carry.
    pub cluster_id: String,
}

/// How this node takes part in the quorum.
enum Engine {
    /// A voter (`process.roles` includes `controller`): runs Raft.
    Voter(Raft),
    /// An observer (`process.roles=broker`): fetches committed changes from the
    /// controllers into its own state machine, as KRaft's observers do; never votes.
    Observer {
        /// The leader as the last fetch reported it: (id, controller address).
        leader: std::sync::Mutex<Option<(NodeId, String)>>,
    },
}

/// A snapshot's metadata and its file's bytes.
pub type SnapshotBytes = (SnapshotMeta<NodeId, BasicNode>, Vec<u8>);

/// What a voter answers an observer's fetch with.
#[derive(Debug, Serialize, Deserialize)]
pub struct Fetched {
    /// The quorum leader as this voter knows it, with its controller address.
    pub leader: Option<(NodeId, String)>,
    /// The current term.
    pub term: u64,
    /// Committed entries from the index asked for.
    pub entries: Vec<Entry<MetaRaft>>,
    /// The newest snapshot, when the entries asked for were already purged.
    pub snapshot: Option<SnapshotBytes>,
}

/// The quorum as this node sees it, for DescribeQuorum, metrics and the CLI.
#[derive(Debug, Clone, Default)]
pub struct QuorumView {
    /// This node.
    pub id: NodeId,
    /// Whether this node is a voter.
    pub voter: bool,
    /// The current term (an observer: as last fetched).
    pub term: u64,
    /// The leader, if known.
    pub leader: Option<NodeId>,
    /// Index after the last entry in this node's log (an observer: after the last applied).
    pub log_end: i64,
    /// Index after the last entry applied to this node's image.
    pub applied_end: i64,
    /// The voters.
    pub voters: Vec<NodeId>,
    /// The voters' log ends, known on the leader only.
    pub voter_log_ends: Option<BTreeMap<NodeId, i64>>,
    /// Every voter's controller address.
    pub addresses: BTreeMap<NodeId, String>,
}

/// This node's member of the metadata quorum.
pub struct Quorum {
    engine: Engine,
    settings: QuorumSettings,
    published: watch::Receiver<Published>,
    /// Connections for calls this node makes outside Raft (forwarded writes,
    /// heartbeats, fetches), by address. Each has its own lock: a call to a peer that
    /// does not answer (paused, cut off) must not hold up calls to the others — a
    /// forward to the new leader or a heartbeat queued behind a timing-out call to the
    /// old one stalled every metadata write for as long as callers kept coming.
    peers: Mutex<BTreeMap<String, Arc<Mutex<Peer>>>>,
    liveness: Arc<super::controller::Liveness>,
    /// A voter's log, read to answer observers' fetches.
    store: Option<LogStore>,
    data_dir: PathBuf,
    /// The term an observer last heard of.
    observed_term: std::sync::Mutex<u64>,
}

impl std::fmt::Debug for Quorum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Quorum").field("node_id", &self.settings.node_id).finish_non_exhaustive()
    }
}

/// How long a metadata write waits for a leader before it gives up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one forwarded write may take before the leader is looked up again.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a voter holds an observer's fetch open waiting for a new change.
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// Entries per fetch answer.
const FETCH_MAX_ENTRIES: u64 = 500;

impl Quorum {
    /// Opens the metadata log, starts Raft and the controller listener, and joins the
    /// quorum (the first start of a node initialises it with the configured voters; every
    /// voter does the same, which openraft accepts). Without a controller listener
    /// (`bind` is `None`) the node is an observer instead.
    pub async fn start(data_dir: &Path, settings: QuorumSettings) -> anyhow::Result<Arc<Quorum>> {
        let book = Arc::new(settings.voters.clone());
        let Some(bind) = settings.bind.clone() else {
            let (sm, published) = StateMachine::open(data_dir, book)?;
            let quorum = Arc::new(Quorum {
                engine: Engine::Observer { leader: std::sync::Mutex::new(None) },
                settings,
                published,
                peers: Mutex::new(BTreeMap::new()),
                liveness: Arc::default(),
                store: None,
                data_dir: data_dir.to_path_buf(),
                observed_term: std::sync::Mutex::new(0),
            });
            tokio::spawn(observe(Arc::downgrade(&quorum), sm));
            tracing::info!(node_id = quorum.settings.node_id, controllers = ?quorum.settings.seeds, "observing the metadata quorum (broker only)");
            return Ok(quorum);
        };
        let mut store = LogStore::open(data_dir, book.clone())?;
        let (sm, published) = StateMachine::open(data_dir, book.clone())?;
        // Entries were purged behind a snapshot that is now missing or corrupt (set aside
        // by StateMachine::open): the image cannot be rebuilt from this node's files.
        // Refuse, rather than start with less metadata than the quorum committed.
        let purged = store.get_log_state().await.map_err(|e| anyhow::anyhow!("{e}"))?.last_purged_log_id;
        if let Some(p) = purged {
            if sm.last_applied.is_none_or(|a| a.index < p.index) {
                anyhow::bail!(
                    "the metadata log in {} was purged up to index {} but no usable snapshot covers it (missing, \
                     or set aside as *.corrupt); refusing to start with incomplete metadata. Restore the snapshot \
                     file; rebuilding a voter's metadata from the quorum (KIP-853) is not supported yet",
                    data_dir.join(DIR).display(),
                    p.index,
                );
            }
        }
        let config = openraft::Config {
            cluster_name: settings.cluster_id.clone(),
            heartbeat_interval: 100,
            election_timeout_min: 500,
            election_timeout_max: 1000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(1000),
            max_in_snapshot_log_to_keep: 100,
            ..Default::default()
        }
        .validate()
        .context("Raft settings")?;
        let listener =
            TcpListener::bind(&bind).await.with_context(|| format!("binding the controller listener on {bind}"))?;
        let network = Network { me: settings.node_id, cluster_id: settings.cluster_id.clone() };
        let raft =
            Raft::new(settings.node_id, Arc::new(config), network, store.clone(), sm).await.context("starting Raft")?;
        if !raft.is_initialized().await? {
            let members: BTreeMap<NodeId, BasicNode> = book.0.keys().map(|&id| (id, book.node(id))).collect();
            if let Err(e) = raft.initialize(members).await {
                tracing::info!(error = %e, "metadata quorum already initialised");
            }
        }
        let quorum = Arc::new(Quorum {
            engine: Engine::Voter(raft),
            settings,
            published,
            peers: Mutex::new(BTreeMap::new()),
            liveness: Arc::default(),
            store: Some(store),
            data_dir: data_dir.to_path_buf(),
            observed_term: std::sync::Mutex::new(0),
        });
        tokio::spawn(serve(listener, quorum.clone()));
        tracing::info!(node_id = quorum.settings.node_id, %bind, voters = ?quorum.settings.voters.0, "metadata quorum started");
        Ok(quorum)
    }

    /// The newest image and the index it reflects.
    pub fn published(&self) -> watch::Receiver<Published> {
        self.published.clone()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.settings.node_id
    }

    /// Whether this node votes (is a controller).
    pub fn is_voter(&self) -> bool {
        matches!(self.engine, Engine::Voter(_))
    }

    /// Heartbeats received while leading.
    pub fn liveness(&self) -> &Arc<super::controller::Liveness> {
        &self.liveness
    }

    /// Delivers a broker heartbeat to the leader (recorded here when this node leads).
    pub async fn send_heartbeat(&self, broker: i32, epoch: i64, ttl: Duration) -> anyhow::Result<()> {
        let leader = self.leader().context("no quorum leader")?;
        if leader == self.settings.node_id && self.is_voter() {
            let image = self.published.borrow().image.clone();
            return self.liveness.heartbeat(&image, broker, epoch).map_err(|e| anyhow::anyhow!(e));
        }
        let addr = self.leader_addr().context("leader address unknown")?;
        match self.call(&addr, Rpc::Heartbeat { broker, epoch }, ttl).await? {
            Reply::Heartbeat(r) => r.map_err(|e| anyhow::anyhow!("leader {leader}: {e}")),
            other => anyhow::bail!("leader {leader}: unexpected reply {other:?}"),
        }
    }

    /// The current leader, if one is known.
    pub fn leader(&self) -> Option<NodeId> {
        match &self.engine {
            Engine::Voter(raft) => raft.metrics().borrow().current_leader,
            Engine::Observer { leader } => leader.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|l| l.0),
        }
    }

    fn leader_addr(&self) -> Option<String> {
        match &self.engine {
            Engine::Voter(_) => self.leader().and_then(|l| self.settings.voters.0.get(&l).cloned()),
            Engine::Observer { leader } => {
                leader.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|l| l.1.clone())
            }
        }
    }

    /// The quorum as this node sees it.
    pub fn view(&self) -> QuorumView {
        let applied_end = self.published.borrow().applied + 1;
        match &self.engine {
            Engine::Voter(raft) => {
                let m = raft.metrics().borrow().clone();
                QuorumView {
                    id: m.id,
                    voter: true,
                    term: m.current_term,
                    leader: m.current_leader,
                    log_end: m.last_log_index.map_or(0, |i| i as i64 + 1),
                    applied_end: m.last_applied.map_or(0, |l| l.index as i64 + 1),
                    voters: m.membership_config.voter_ids().collect(),
                    voter_log_ends: m
                        .replication
                        .as_ref()
                        .map(|r| r.iter().map(|(id, l)| (*id, l.as_ref().map_or(0, |l| l.index as i64 + 1))).collect()),
                    addresses: m.membership_config.nodes().map(|(id, n)| (*id, n.addr.clone())).collect(),
                }
            }
            Engine::Observer { leader } => {
                let image = self.published.borrow().image.clone();
                QuorumView {
                    id: self.settings.node_id,
                    voter: false,
                    term: *self.observed_term.lock().unwrap_or_else(|p| p.into_inner()),
                    leader: leader.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|l| l.0),
                    log_end: applied_end,
                    applied_end,
                    voters: image.voters.iter().map(|&v| v as NodeId).collect(),
                    voter_log_ends: None,
                    addresses: self.settings.voters.0.clone(),
                }
            }
        }
    }

    /// Commits one change through the leader (this node or, forwarded, another) and
    /// waits until this node applied it; errors when no leader commits it within
    /// [`WRITE_TIMEOUT`].
    pub async fn write(&self, records: Vec<Record>) -> anyhow::Result<Applied> {
        self.write_indexed(records).await.map(|(a, _)| a)
    }

    /// [`Self::write`], also giving the Raft index the change got.
    async fn write_indexed(&self, records: Vec<Record>) -> anyhow::Result<(Applied, u64)> {
        let deadline = tokio::time::Instant::now() + WRITE_TIMEOUT;
        let mut attempt = 0usize;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            anyhow::ensure!(!left.is_zero(), "no metadata quorum leader committed the change within {WRITE_TIMEOUT:?}");
            attempt += 1;
            let raft = match &self.engine {
                Engine::Voter(raft) => raft,
                Engine::Observer { .. } => {
                    // One attempt is bounded by a few election timeouts: a leader that is
                    // paused or cut off is replaced by then, and we ask another.
                    let addr = self
                        .leader_addr()
                        .unwrap_or_else(|| self.settings.seeds[attempt % self.settings.seeds.len().max(1)].clone());
                    match self.forward(&addr, Change(records.clone()), left.min(FORWARD_TIMEOUT)).await {
                        Ok(r) => return Ok(r),
                        Err(e) => {
                            tracing::debug!(%addr, error = %format!("{e:#}"), "forwarding a metadata change failed; retrying");
                            let _ = tokio::time::timeout(
                                left.min(Duration::from_millis(200)),
                                std::future::pending::<()>(),
                            )
                            .await;
                            continue;
                        }
                    }
                }
            };
            match raft.client_write(Change(records.clone())).await {
                Ok(r) => {
                    self.await_applied(r.log_id.index as i64, left).await;
                    return Ok((r.data, r.log_id.index));
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => match f.leader_id {
                    Some(leader) if leader != self.settings.node_id => {
                        let addr = self.settings.voters.0.get(&leader).cloned().unwrap_or_default();
                        match self.forward(&addr, Change(records.clone()), left.min(FORWARD_TIMEOUT)).await {
                            Ok(r) => return Ok(r),
                            Err(e) => {
                                tracing::debug!(leader, error = %format!("{e:#}"), "forwarding a metadata change failed; retrying");
                                self.await_leader_change(Some(leader), left).await;
                            }
                        }
                    }
                    _ => self.await_leader_change(None, left).await,
                },
                Err(e) => return Err(anyhow::anyhow!("metadata quorum: {e}")),
            }
        }
    }

    /// Appends `records` only if this node still leads the quorum, with no forwarding and
    /// no retry: the controller's own decisions (fencing, elections, rebalancing) were
    /// computed from this leader's view, and a deposed leader's view is stale (it saw
    /// every broker fall silent because their heartbeats went to its successor). Such a
    /// change must die with the leadership, never reach the new leader (issue 14's
    /// nemesis found acknowledged records truncated that way).
    pub async fn write_as_leader(&self, records: Vec<Record>) -> anyhow::Result<Applied> {
        let Engine::Voter(raft) = &self.engine else { anyhow::bail!("not a voter") };
        let r = raft.client_write(Change(records)).await.map_err(|e| anyhow::anyhow!("metadata quorum: {e}"))?;
        self.await_applied(r.log_id.index as i64, WRITE_TIMEOUT).await;
        Ok(r.data)
    }

    async fn forward(&self, addr: &str, change: Change, ttl: Duration) -> anyhow::Result<(Applied, u64)> {
        match self.call(addr, Rpc::Write(change), ttl).await? {
            Reply::Write(Ok((applied, index))) => {
                // Answer once this node's image has the change too, as for local writes.
                self.await_applied(index as i64, ttl).await;
                Ok((applied, index))
            }
            Reply::Write(Err(e)) => anyhow::bail!("{addr}: {e}"),
            other => anyhow::bail!("{addr}: unexpected reply {other:?}"),
        }
    }

    async fn call(&self, addr: &str, rpc: Rpc, ttl: Duration) -> anyhow::Result<Reply> {
        let peer = {
            let mut peers = self.peers.lock().await;
            peers
                .entry(addr.to_string())
                .or_insert_with(|| {
                    Arc::new(Mutex::new(Peer {
                        target: 0,
                        addr: addr.to_string(),
                        me: self.settings.node_id,
                        cluster_id: self.settings.cluster_id.clone(),
                        conn: None,
                    }))
                })
                .clone()
        };
        // Calls to one peer share its connection, so they take turns; bounded by `ttl`.
        let mut peer = tokio::time::timeout(ttl, peer.lock())
            .await
            .map_err(|_| anyhow::anyhow!("{addr}: busy with earlier calls for {ttl:?}"))?;
        Ok(peer.call(rpc, ttl).await?)
    }

    /// Waits (bounded) until the leader is known and differs from `old`.
    async fn await_leader_change(&self, old: Option<NodeId>, left: Duration) {
        let Engine::Voter(raft) = &self.engine else { return };
        let mut m = raft.metrics();
        let _ = tokio::time::timeout(left.min(Duration::from_secs(2)), async {
            loop {
                let leader = m.borrow().current_leader;
                if leader.is_some() && leader != old {
                    return;
                }
                if m.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Waits (bounded) until this node's image includes index `index`.
    pub async fn await_applied(&self, index: i64, left: Duration) {
        let mut rx = self.published.clone();
        let _ = tokio::time::timeout(left, rx.wait_for(|p| p.applied >= index)).await;
    }

    /// Stops Raft.
    pub async fn shutdown(&self) {
        if let Engine::Voter(raft) = &self.engine {
            let _ = raft.shutdown().await;
        }
    }

    /// Answers an observer's fetch: committed entries from `from` (held up to
    /// [`FETCH_WAIT`] until there is one), or the newest snapshot when they were purged.
    async fn fetch(&self, from: u64) -> Result<Fetched, String> {
        let store = self.store.as_ref().ok_or("not a voter")?;
        let mut rx = self.published.clone();
        let _ = tokio::time::timeout(FETCH_WAIT, rx.wait_for(|p| p.applied >= from as i64)).await;
        let applied = rx.borrow().applied;
        let view = self.view();
        let leader = view.leader.and_then(|l| view.addresses.get(&l).map(|a| (l, a.clone())));
        let start = store.inner.lock().await.log.log_start_offset() as u64;
        if from < start {
            let snapshot = current_snapshot(&self.data_dir, &self.settings.voters).map_err(|e| format!("{e:#}"))?;
            return Ok(Fetched { leader, term: view.term, entries: Vec::new(), snapshot });
        }
        let to = ((applied + 1).max(0) as u64).min(from + FETCH_MAX_ENTRIES);
        let entries = if to > from {
            store.inner.lock().await.entries(&self.settings.voters, from, to).map_err(|e| format!("{e:#}"))?
        } else {
            Vec::new()
        };
        Ok(Fetched { leader, term: view.term, entries, snapshot: None })
    }

    async fn handle(&self, frame: Frame, peer: std::net::SocketAddr) -> Reply {
        if frame.cluster_id != self.settings.cluster_id {
            tracing::warn!(%peer, from = frame.from, cluster_id = %frame.cluster_id, "controller request from another cluster refused");
            return Reply::Refused(format!("this is cluster {}", self.settings.cluster_id));
        }
        let Engine::Voter(raft) = &self.engine else {
            return Reply::Refused("not a controller".into());
        };
        // Raft's own messages come only from voters; brokers (observers) may fetch, write
        // and heartbeat.
        let raft_message = matches!(frame.rpc, Rpc::Append(_) | Rpc::Vote(_) | Rpc::Snapshot(_));
        if frame.from == self.settings.node_id || (raft_message && !self.settings.voters.0.contains_key(&frame.from)) {
            tracing::warn!(%peer, from = frame.from, "controller request from a node that is not a voter refused");
            return Reply::Refused(format!("node {} is not a voter of this quorum", frame.from));
        }
        match frame.rpc {
            Rpc::Append(r) => Reply::Append(raft.append_entries(r).await),
            Rpc::Vote(r) => Reply::Vote(raft.vote(r).await),
            Rpc::Snapshot(r) => Reply::Snapshot(raft.install_snapshot(r).await),
            // A write for the quorum: committed here if this node leads, else forwarded.
            Rpc::Write(c) => Reply::Write(self.write_indexed(c.0).await.map_err(|e| format!("{e:#}"))),
            Rpc::Heartbeat { broker, epoch } => {
                if self.leader() != Some(self.settings.node_id) {
                    return Reply::Heartbeat(Err("not the quorum leader".into()));
                }
                let image = self.published.borrow().image.clone();
                let r = self.liveness.heartbeat(&image, broker, epoch);
                if let Err(e) = &r {
                    tracing::warn!(%peer, from = frame.from, broker, epoch, error = %e, "heartbeat refused");
                }
                Reply::Heartbeat(r)
            }
            Rpc::Fetch { from } => Reply::Fetch(self.fetch(from).await),
        }
    }
}

/// The newest snapshot in `data_dir`'s metadata directory, as (meta, bytes).
fn current_snapshot(data_dir: &Path, book: &AddressBook) -> anyhow::Result<Option<SnapshotBytes>> {
    let dir = data_dir.join(DIR);
    let Some((offset, path)) = snapshots(&dir)?.into_iter().next() else { return Ok(None) };
    let data = std::fs::read(&path)?;
    let image = applied(&Image::default(), &parse_snapshot(&data)?)?;
    let term = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.split('-').nth(1))
        .and_then(|t| t.parse::<i32>().ok())
        .unwrap_or(0);
    let last = (offset > 0).then(|| log_id(term, offset - 1));
    let meta = SnapshotMeta {
        last_log_id: last,
        last_membership: StoredMembership::new(last, book.membership(&image.voters, &image.learners)),
        snapshot_id: format!("{}-{term}", offset - 1),
    };
    Ok(Some((meta, data)))
}

/// An observer's loop: fetch committed changes from the leader (or, not knowing it, from
/// the controllers in turn) and apply them; snapshot every 1,000 changes so a restart
/// does not refetch everything. Ends when the quorum is dropped.
async fn observe(quorum: std::sync::Weak<Quorum>, mut sm: StateMachine) {
    let mut next = sm.last_applied.map_or(0, |l| l.index + 1);
    let mut since_snapshot = 0u64;
    let mut attempt = 0usize;
    loop {
        let Some(q) = quorum.upgrade() else { return };
        let addr = match q.leader_addr() {
            Some(a) => a,
            None => q.settings.seeds[attempt % q.settings.seeds.len().max(1)].clone(),
        };
        let reply = q.call(&addr, Rpc::Fetch { from: next }, FETCH_WAIT + FORWARD_TIMEOUT).await;
        let fetched = match reply {
            Ok(Reply::Fetch(Ok(f))) => f,
            other => {
                tracing::debug!(%addr, reply = ?other.map(|r| format!("{r:?}").chars().take(200).collect::<String>()), "metadata fetch failed; trying another controller");
                attempt += 1;
                if let Engine::Observer { leader } = &q.engine {
                    *leader.lock().unwrap_or_else(|p| p.into_inner()) = None;
                }
                drop(q);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Engine::Observer { leader } = &q.engine {
            *leader.lock().unwrap_or_else(|p| p.into_inner()) = fetched.leader.clone();
        }
        *q.observed_term.lock().unwrap_or_else(|p| p.into_inner()) = fetched.term;
        if let Some((meta, data)) = fetched.snapshot {
            match sm.install_snapshot(&meta, Box::new(Cursor::new(data))).await {
                Ok(()) => {
                    next = meta.last_log_id.map_or(0, |l| l.index + 1);
                    since_snapshot = 0;
                }
                Err(e) => tracing::error!(error = %e, "installing the controllers' metadata snapshot failed"),
            }
            continue;
        }
        // Entries must continue where we are; anything else is a bug or hostile input.
        let Some(first) = fetched.entries.first() else { continue };
        if first.log_id.index != next {
            tracing::warn!(
                expected = next,
                got = first.log_id.index,
                "metadata fetch answered the wrong entries; ignored"
            );
            continue;
        }
        let n = fetched.entries.len() as u64;
        if let Err(e) = sm.apply(fetched.entries).await {
            tracing::error!(error = %e, "applying fetched metadata failed");
            continue;
        }
        next += n;
        since_snapshot += n;
        if since_snapshot >= 1000 {
            if let Err(e) = sm.build() {
                tracing::warn!(error = %format!("{e:#}"), "writing a metadata snapshot failed");
            }
            since_snapshot = 0;
        }
    }
}

/// Serves the controller listener: one task per connection, requests answered in order.
async fn serve(listener: TcpListener, quorum: Arc<Quorum>) {
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "controller listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let quorum = quorum.clone();
        tokio::spawn(async move {
            loop {
                let frame = match read_frame::<Frame>(&mut stream).await {
                    Ok(Some(f)) => f,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(%peer, error = %format!("{e:#}"), "bad controller frame; closing the connection");
                        return;
                    }
                };
                let reply = quorum.handle(frame, peer).await;
                if write_frame(&mut stream, &reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::storage::RaftLogStorageExt;
    use strom_protocol::Uuid;

    fn lid(term: u64, index: u64) -> LogId<NodeId> {
        LogId::new(openraft::CommittedLeaderId::new(term, 0), index)
    }

    fn book() -> Arc<AddressBook> {
        Arc::new(AddressBook((1..=3).map(|i| (i, format!("127.0.0.1:{}", 9000 + i))).collect()))
    }

    fn topic(n: u8) -> Change {
        Change(vec![Record::Topic { name: format!("t{n}"), id: Uuid([n; 16]) }])
    }

    fn entries(from: u64, to: u64, term: u64) -> Vec<Entry<MetaRaft>> {
        (from..to)
            .map(|i| {
                let payload = if i == 0 {
                    EntryPayload::Membership(book().membership(&[1, 2, 3], &[]))
                } else if i % 3 == 0 {
                    EntryPayload::Blank
                } else {
                    EntryPayload::Normal(topic(i as u8))
                };
                Entry { log_id: lid(term, i), payload }
            })
            .collect()
    }

    async fn ids(store: &mut LogStore, from: u64, to: u64) -> Vec<(u64, u64)> {
        let got = store.try_get_log_entries(from..to).await.expect("read");
        got.iter().map(|e| (e.log_id.leader_id.term, e.log_id.index)).collect()
    }

    #[tokio::test]
    async fn the_log_store_appends_truncates_purges_and_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LogStore::open(dir.path(), book()).expect("open");
        assert_eq!(store.get_log_state().await.expect("state").last_log_id, None);
        store.blocking_append(entries(0, 6, 1)).await.expect("append");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(lid(1, 5)));
        let read = store.try_get_log_entries(0..6).await.expect("read");
        assert_eq!(read, entries(0, 6, 1), "entries read back as written, payloads included");
        // A new leader's entries replace a conflicting tail.
        store.truncate(lid(1, 4)).await.expect("truncate");
        store.blocking_append(entries(4, 8, 2)).await.expect("append");
        assert_eq!(ids(&mut store, 0, 100).await, vec![(1, 0), (1, 1), (1, 2), (1, 3), (2, 4), (2, 5), (2, 6), (2, 7)]);
        // A hole is refused.
        assert!(store.blocking_append(entries(10, 11, 2)).await.is_err());
        store.purge(lid(1, 2)).await.expect("purge");
        let vote = Vote::new_committed(2, 3);
        store.save_vote(&vote).await.expect("vote");
        store.save_committed(Some(lid(2, 6))).await.expect("committed");
        drop(store);

        let mut store = LogStore::open(dir.path(), book()).expect("reopen");
        let state = store.get_log_state().await.expect("state");
        assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(lid(1, 2)), Some(lid(2, 7))));
        assert_eq!(ids(&mut store, 0, 100).await, vec![(1, 3), (2, 4), (2, 5), (2, 6), (2, 7)]);
        assert_eq!(store.read_vote().await.expect("vote"), Some(vote));
        assert_eq!(store.read_committed().await.expect("committed"), Some(lid(2, 6)));
        // A snapshot beyond everything we hold: the log starts again after it.
        store.purge(lid(3, 20)).await.expect("purge past the end");
        let state = store.get_log_state().await.expect("state");
        assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(lid(3, 20)), Some(lid(3, 20))));
        store.blocking_append(entries(21, 23, 3)).await.expect("append after the snapshot");
        assert_eq!(ids(&mut store, 0, 100).await, vec![(3, 21), (3, 22)]);
    }

    #[tokio::test]
    async fn the_state_machine_applies_snapshots_and_installs_them_elsewhere() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut sm, rx) = StateMachine::open(dir.path(), book()).expect("open");
        let applied = sm.apply(entries(0, 6, 1)).await.expect("apply");
        assert_eq!(applied.len(), 6);
        // A change that contradicts the image is refused alike everywhere.
        let dup = vec![Entry { log_id: lid(1, 6), payload: EntryPayload::Normal(topic(1)) }];
        assert!(matches!(sm.apply(dup).await.expect("apply").as_slice(), [Applied::Refused(_)]));
        assert_eq!(rx.borrow().applied, 6);
        assert_eq!(rx.borrow().image.topics.len(), 4, "t1, t2, t4, t5 (0 is the membership, 3 blank)");
        let mut builder = sm.get_snapshot_builder().await;
        let snap = builder.build_snapshot().await.expect("snapshot");
        assert_eq!(snap.meta.last_log_id, Some(lid(1, 6)));
        let want = sm.image.clone();
        drop(sm);

        // Reopened: the snapshot file rebuilds the same image and applied id.
        let (mut again, _) = StateMachine::open(dir.path(), book()).expect("reopen");
        let (last, membership) = again.applied_state().await.expect("state");
        assert_eq!(last, Some(lid(1, 6)));
        assert_eq!(membership.membership().voter_ids().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(again.image, want);
        // Installed on another node.
        let other = tempfile::tempdir().expect("tempdir");
        let (mut fresh, rx) = StateMachine::open(other.path(), book()).expect("open");
        let current = again.get_current_snapshot().await.expect("current").expect("a snapshot");
        fresh.install_snapshot(&current.meta, current.snapshot).await.expect("install");
        assert_eq!(rx.borrow().image, want);
        // A damaged snapshot is refused, not installed as an empty image.
        let bad = Box::new(Cursor::new(b"STRMMETA garbage".to_vec()));
        assert!(fresh.install_snapshot(&current.meta, bad).await.is_err());
        assert_eq!(rx.borrow().image, want);
    }

    #[tokio::test]
    async fn a_voter_whose_snapshot_is_gone_after_a_purge_refuses_to_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path(), book()).expect("open");
            store.blocking_append(entries(0, 6, 1)).await.expect("append");
            let (mut sm, _) = StateMachine::open(dir.path(), book()).expect("sm");
            sm.apply(entries(0, 6, 1)).await.expect("apply");
            sm.get_snapshot_builder().await.build_snapshot().await.expect("snapshot");
            store.purge(lid(1, 4)).await.expect("purge");
        }
        // Damage the snapshot: it is set aside and the node refuses, naming the directory.
        let (_, path) = snapshots(&dir.path().join(DIR)).expect("list").remove(0);
        let mut bytes = std::fs::read(&path).expect("read");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&path, bytes).expect("write");
        let settings = QuorumSettings {
            node_id: 1,
            voters: (*book()).clone(),
            seeds: vec![],
            bind: Some("127.0.0.1:0".into()),
            cluster_id: "c".into(),
        };
        let err = Quorum::start(dir.path(), settings).await.expect_err("must refuse");
        assert!(format!("{err:#}").contains("no usable snapshot"), "{err:#}");
        assert!(path.with_extension("corrupt").exists());
    }

    #[test]
    fn producer_id_blocks_must_start_at_the_mark() {
        let img = Image { next_producer_id: 1000, ..Default::default() };
        let block = |next| vec![Record::ProducerIds { broker_id: 1, broker_epoch: 0, next_producer_id: next }];
        assert!(check_blocks(&img, &block(2000)).is_ok());
        assert!(check_blocks(&img, &block(3000)).is_err(), "skips a block");
        assert!(check_blocks(&img, &block(1500)).is_err(), "overlaps the last block");
    }
}
