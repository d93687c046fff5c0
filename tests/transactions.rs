//! Transactions (issue 15, ADR 0012) over the wire with Strom's protocol client against
//! an in-process broker: the cases real clients cannot be steered into — a transaction
//! left open past its timeout, EndTxn retried or delivered late, a restart right after
//! the commit point, transactional offsets across a restart. Real clients' behaviour is
//! in the compat suite's `transactions` and `eos` scenarios.

mod common;

use std::time::Duration;

use strom_client::Client;
use strom_protocol::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use strom_protocol::create_topics_request::CreatableTopic;
use strom_protocol::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use strom_protocol::offset_fetch_request::OffsetFetchRequestTopic;
use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::records::{split_batches, BatchBuilder, BatchHeader};
use strom_protocol::txn_offset_commit_request::{TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic};
use strom_protocol::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    CreateTopicsRequest, CreateTopicsResponse, EndTxnRequest, EndTxnResponse, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest,
    ListOffsetsResponse, OffsetFetchRequest, OffsetFetchResponse, ProduceRequest, ProduceResponse,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};

const NONE: i16 = 0;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const INVALID_TXN_STATE: i16 = 48;
const CONCURRENT_TRANSACTIONS: i16 = 51;
const PRODUCER_FENCED: i16 = 90;
const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;

/// Errors a client retries (the coordinator is loading, or busy with markers).
fn retriable(code: i16) -> bool {
    matches!(code, CONCURRENT_TRANSACTIONS | NOT_COORDINATOR | COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE)
}

/// Calls `f` until it answers something other than a retriable error (bounded).
async fn retry<T>(mut f: impl AsyncFnMut() -> (i16, T)) -> (i16, T) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (code, v) = f().await;
        if !retriable(code) || tokio::time::Instant::now() > deadline {
            return (code, v);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn connect(addr: &str) -> Client {
    Client::connect(addr, Duration::from_secs(30)).await.expect("connect")
}

async fn create_topic(c: &mut Client, name: &str, partitions: i32) {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            ..Default::default()
        }],
        timeout_ms: 10_000,
        ..Default::default()
    };
    let resp: CreateTopicsResponse = c.call_at(5, &req).await.expect("create topics");
    assert_eq!(resp.topics[0].error_code, NONE);
}

/// FindCoordinator for a transactional id (creates `__transaction_state`), then
/// InitProducerId until the coordinator answers.
async fn init(c: &mut Client, tid: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let find = FindCoordinatorRequest { key: tid.into(), key_type: 1, ..Default::default() };
    let found: FindCoordinatorResponse = c.call_at(3, &find).await.expect("find coordinator");
    assert_eq!(found.error_code, NONE, "{:?}", found.error_message);
    let (code, (pid, epoch)) = retry(async || {
        let req = InitProducerIdRequest {
            transactional_id: Some(tid.into()),
            transaction_timeout_ms: timeout_ms,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let r: InitProducerIdResponse = c.call_at(4, &req).await.expect("init producer id");
        (r.error_code, (r.producer_id, r.producer_epoch))
    })
    .await;
    (code, pid, epoch)
}

async fn add_partition(c: &mut Client, tid: &str, pid: i64, epoch: i16, topic: &str, partition: i32) -> i16 {
    retry(async || {
        let req = AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: tid.into(),
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: vec![AddPartitionsToTxnTopic {
                name: topic.into(),
                partitions: vec![partition],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r: AddPartitionsToTxnResponse = c.call_at(3, &req).await.expect("add partitions");
        (r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code, ())
    })
    .await
    .0
}

/// Produces `n` transactional records starting at sequence `seq`; the partition error.
async fn produce_txn(c: &mut Client, tid: &str, pid: i64, epoch: i16, seq: i32, topic: &str, n: usize) -> i16 {
    let mut b = BatchBuilder::new(strom_storage::now_ms()).producer(pid, epoch, seq).transactional(true);
    for i in 0..n {
        b.add(None, Some(format!("v{i}").as_bytes()));
    }
    let req = ProduceRequest {
        transactional_id: Some(tid.into()),
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(b.build().freeze()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: ProduceResponse = c.call_at(9, &req).await.expect("produce");
    r.responses[0].partition_responses[0].error_code
}

async fn end_txn(c: &mut Client, tid: &str, pid: i64, epoch: i16, commit: bool) -> i16 {
    let req = EndTxnRequest {
        transactional_id: tid.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed: commit,
        ..Default::default()
    };
    let r: EndTxnResponse = c.call_at(3, &req).await.expect("end txn");
    r.error_code
}

/// (high watermark, last stable offset) of partition 0.
async fn offsets(c: &mut Client, topic: &str) -> (i64, i64) {
    let mut out = [0i64; 2];
    for (i, isolation_level) in [0i8, 1].into_iter().enumerate() {
        let req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level,
            topics: vec![ListOffsetsTopic {
                name: topic.into(),
                partitions: vec![ListOffsetsPartition { partition_index: 0, timestamp: -1, ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r: ListOffsetsResponse = c.call_at(5, &req).await.expect("list offsets");
        out[i] = r.topics[0].partitions[0].offset;
    }
    (out[0], out[1])
}

/// Waits (bounded) until the last stable offset of partition 0 reaches `target`.
async fn await_lso(c: &mut Client, topic: &str, target: i64) -> (i64, i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let o = offsets(c, topic).await;
        // The two offsets are read one after the other: a marker landing in between
        // gives an end offset from before it with an LSO from after it. Once the LSO is
        // there, read both again.
        if o.1 >= target {
            return offsets(c, topic).await;
        }
        if tokio::time::Instant::now() > deadline {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A read_committed fetch of partition 0 from offset 0: (data batch count, aborted
/// transactions as (producer id, first offset)).
async fn fetch_committed(c: &mut Client, topic: &str) -> (usize, Vec<(i64, i64)>) {
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 1 << 20,
        isolation_level: 1,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition {
                partition: 0,
                fetch_offset: 0,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: FetchResponse = c.call_at(11, &req).await.expect("fetch");
    let pd = &r.responses[0].partitions[0];
    assert_eq!(pd.error_code, NONE);
    let data = pd.records.clone().unwrap_or_default();
    let batches = split_batches(&data)
        .filter_map(|s| s.ok())
        .filter(|s| !BatchHeader::parse(&data[s.clone()]).unwrap().is_control())
        .count();
    let aborted = pd.aborted_transactions.clone().unwrap_or_default();
    (batches, aborted.iter().map(|a| (a.producer_id, a.first_offset)).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_open_past_its_timeout_is_aborted_and_its_producer_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[("transaction.abort.timed.out.transaction.cleanup.interval.ms", "100")]).await;
    let mut c = connect(&b.addr).await;
    create_topic(&mut c, "t", 1).await;
    let (code, pid, epoch) = init(&mut c, "slow", 500).await;
    assert_eq!(code, NONE);
    assert_eq!(add_partition(&mut c, "slow", pid, epoch, "t", 0).await, NONE);
    assert_eq!(produce_txn(&mut c, "slow", pid, epoch, 0, "t", 3).await, NONE);
    // The open transaction holds the last stable offset at its first offset.
    assert_eq!(offsets(&mut c, "t").await, (3, 0));
    assert_eq!(fetch_committed(&mut c, "t").await.0, 0);
    // The broker aborts it: an ABORT marker at offset 3, the LSO moves past it.
    assert_eq!(await_lso(&mut c, "t", 4).await, (4, 4));
    let (batches, aborted) = fetch_committed(&mut c, "t").await;
    assert_eq!((batches, aborted), (1, vec![(pid, 0)]), "the aborted records come with their abort listed");
    // The producer that let it run out is fenced (the abort bumped its epoch).
    assert_eq!(end_txn(&mut c, "slow", pid, epoch, true).await, PRODUCER_FENCED);
    assert_eq!(produce_txn(&mut c, "slow", pid, epoch, 3, "t", 1).await, INVALID_PRODUCER_EPOCH);
    // The aborted range is remembered across a restart (the aborted-transaction index).
    drop(c);
    b.stop().await;
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    assert_eq!(fetch_committed(&mut c, "t").await.1, vec![(pid, 0)]);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_txn_retried_or_late_never_ends_another_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    create_topic(&mut c, "t", 1).await;
    let (_, pid, epoch) = init(&mut c, "tx", 60_000).await;
    assert_eq!(add_partition(&mut c, "tx", pid, epoch, "t", 0).await, NONE);
    assert_eq!(produce_txn(&mut c, "tx", pid, epoch, 0, "t", 2).await, NONE);
    assert_eq!(end_txn(&mut c, "tx", pid, epoch, true).await, NONE);
    let (hw, lso) = await_lso(&mut c, "t", 3).await;
    assert_eq!((hw, lso), (3, 3));
    // The same EndTxn retried: answered as done, nothing written again.
    let (code, ()) = retry(async || (end_txn(&mut c, "tx", pid, epoch, true).await, ())).await;
    assert_eq!(code, NONE);
    assert_eq!(offsets(&mut c, "t").await, (3, 3));
    // The opposite outcome for a finished transaction is refused.
    assert_eq!(end_txn(&mut c, "tx", pid, epoch, false).await, INVALID_TXN_STATE);
    // The application restarts (a new epoch) and opens a transaction; an EndTxn of the
    // previous incarnation arriving now is fenced and leaves it open.
    let (_, pid2, epoch2) = init(&mut c, "tx", 60_000).await;
    assert_eq!((pid2, epoch2), (pid, epoch + 1));
    assert_eq!(add_partition(&mut c, "tx", pid2, epoch2, "t", 0).await, NONE);
    assert_eq!(produce_txn(&mut c, "tx", pid2, epoch2, 0, "t", 2).await, NONE);
    assert_eq!(end_txn(&mut c, "tx", pid, epoch, true).await, PRODUCER_FENCED);
    assert_eq!(end_txn(&mut c, "tx", pid, epoch, false).await, PRODUCER_FENCED);
    assert_eq!(offsets(&mut c, "t").await, (5, 3), "the new transaction is still open");
    assert_eq!(end_txn(&mut c, "tx", pid2, epoch2, false).await, NONE);
    assert_eq!(await_lso(&mut c, "t", 6).await, (6, 6));
    assert_eq!(fetch_committed(&mut c, "t").await, (2, vec![(pid, 3)]));
    // A produce of the fenced incarnation cannot reopen a transaction (KIP-890 part 1).
    assert_eq!(produce_txn(&mut c, "tx", pid, epoch, 2, "t", 1).await, INVALID_PRODUCER_EPOCH);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_produce_outside_the_transaction_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    create_topic(&mut c, "t", 1).await;
    let (_, pid, epoch) = init(&mut c, "late", 60_000).await;
    // No AddPartitionsToTxn: the coordinator does not know the partition.
    assert_eq!(produce_txn(&mut c, "late", pid, epoch, 0, "t", 1).await, INVALID_TXN_STATE);
    assert_eq!(offsets(&mut c, "t").await, (0, 0), "nothing was appended");
    b.stop().await;
}

/// AddOffsetsToTxn of group "g" (retried while the coordinator answers retriably).
async fn add_offsets(c: &mut Client, tid: &str, pid: i64, epoch: i16) -> i16 {
    let (code, ()) = retry(async || {
        let req = AddOffsetsToTxnRequest {
            transactional_id: tid.into(),
            producer_id: pid,
            producer_epoch: epoch,
            group_id: "g".into(),
            ..Default::default()
        };
        let r: AddOffsetsToTxnResponse = c.call_at(3, &req).await.expect("add offsets");
        (r.error_code, ())
    })
    .await;
    code
}

/// One transaction of producer `pid` on "t" partition 0 (2 records) with group "g"'s
/// offset `offset` in it, ended with `commit`; the EndTxn error.
async fn txn_with_offset(c: &mut Client, pid: i64, epoch: i16, seq: i32, offset: i64, commit: bool) -> i16 {
    assert_eq!(add_partition(c, "eos", pid, epoch, "t", 0).await, NONE);
    assert_eq!(produce_txn(c, "eos", pid, epoch, seq, "t", 2).await, NONE);
    assert_eq!(add_offsets(c, "eos", pid, epoch).await, NONE);
    let req = TxnOffsetCommitRequest {
        transactional_id: "eos".into(),
        group_id: "g".into(),
        producer_id: pid,
        producer_epoch: epoch,
        generation_id: -1,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![TxnOffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                committed_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: TxnOffsetCommitResponse = c.call_at(3, &req).await.expect("txn offset commit");
    assert_eq!(r.topics[0].partitions[0].error_code, NONE);
    end_txn(c, "eos", pid, epoch, commit).await
}

/// Waits (bounded) until group "g"'s committed offset of "t"/0 is `want`; returns the last seen.
async fn await_committed(c: &mut Client, want: i64) -> i64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = committed(c, "g", "t").await;
        if got == want || tokio::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_and_their_offsets_survive_a_restart_after_the_commit_point() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    create_topic(&mut c, "t", 1).await;
    let (_, pid, epoch) = init(&mut c, "eos", 60_000).await;
    assert_eq!(txn_with_offset(&mut c, pid, epoch, 0, 100, true).await, NONE);
    // Stopped right after the commit point: the markers may or may not be out; either
    // way the restarted broker finishes the commit (the coordinator resumes Prepare
    // transactions, the group replays the markers it finds).
    drop(c);
    b.stop().await;
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    assert_eq!(await_lso(&mut c, "t", 3).await, (3, 3));
    assert_eq!(await_committed(&mut c, 100).await, 100, "the transaction's offset is visible after the restart");
    assert_eq!(fetch_committed(&mut c, "t").await, (1, vec![]));
    // An aborted transaction's offset never shows, before or after a restart.
    let (code, ()) = retry(async || {
        let r = txn_with_offset(&mut c, pid, epoch, 2, 101, false).await;
        (r, ())
    })
    .await;
    assert_eq!(code, NONE);
    assert_eq!(await_lso(&mut c, "t", 6).await, (6, 6));
    assert_eq!(committed(&mut c, "g", "t").await, 100);
    drop(c);
    b.stop().await;
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    assert_eq!(await_lso(&mut c, "t", 6).await, (6, 6));
    assert_eq!(await_committed(&mut c, 100).await, 100);
    assert_eq!(fetch_committed(&mut c, "t").await, (2, vec![(pid, 3)]));
    b.stop().await;
}

/// The offset group `g` committed for partition 0 of `topic` (-1: none, -2: not answered yet).
async fn committed(c: &mut Client, group: &str, topic: &str) -> i64 {
    let req = OffsetFetchRequest {
        group_id: group.into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: topic.into(),
            partition_indexes: vec![0],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let r: OffsetFetchResponse = c.call_at(5, &req).await.expect("offset fetch");
    // -2 while the group coordinator is loading after a restart (the caller waits).
    r.topics.first().and_then(|t| t.partitions.first()).filter(|_| r.error_code == 0).map_or(-2, |p| p.committed_offset)
}

/// Runs `strom ARGS -o json` against `addr`; the rows printed.
async fn strom_json(addr: &str, args: &[&str]) -> Vec<serde_json::Value> {
    serde_json::from_str(&strom(addr, args).await).expect("json rows")
}

/// Runs `strom ARGS -o json` against `addr`; its standard output.
async fn strom(addr: &str, args: &[&str]) -> String {
    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args.extend(["-o".to_string(), "json".to_string(), "-b".to_string(), addr.to_string()]);
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_strom")).args(&args).env("STROM_LOG", "warn").output()
    })
    .await
    .unwrap()
    .expect("run strom");
    assert!(out.status.success(), "strom failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strom_txn_lists_describes_and_aborts_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    create_topic(&mut c, "t", 1).await;
    let (_, pid, epoch) = init(&mut c, "cli-tx", 60_000).await;
    assert_eq!(add_partition(&mut c, "cli-tx", pid, epoch, "t", 0).await, NONE);
    assert_eq!(produce_txn(&mut c, "cli-tx", pid, epoch, 0, "t", 2).await, NONE);

    let rows = strom_json(&b.addr, &["txn", "list"]).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["transactional_id"], "cli-tx");
    assert_eq!(rows[0]["state"], "Ongoing");
    assert_eq!(rows[0]["producer_id"], pid);
    assert!(strom_json(&b.addr, &["txn", "list", "--state", "CompleteCommit"]).await.is_empty());
    let rows = strom_json(&b.addr, &["txn", "describe", "--transactional-id", "cli-tx"]).await;
    assert_eq!(rows[0]["partitions"], "t-0");
    assert_eq!(rows[0]["epoch"], i64::from(epoch));
    // The coordinator knows this open transaction: it is not hanging, however old.
    assert!(strom_json(&b.addr, &["txn", "find-hanging", "--max-transaction-timeout-ms=-1"]).await.is_empty());

    // An operator aborts it in the partition: the LSO moves past the marker.
    let said = strom(&b.addr, &["txn", "abort", "--topic", "t", "--partition", "0", "--start-offset", "0"]).await;
    assert!(said.contains(&format!("producer {pid}")), "{said}");
    assert_eq!(offsets(&mut c, "t").await, (3, 3));
    assert_eq!(fetch_committed(&mut c, "t").await, (1, vec![(pid, 0)]));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_transactional_id_expires_and_comes_back_with_a_new_producer_id() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[
            ("transactional.id.expiration.ms", "300"),
            ("transaction.abort.timed.out.transaction.cleanup.interval.ms", "100"),
        ],
    )
    .await;
    let mut c = connect(&b.addr).await;
    create_topic(&mut c, "t", 1).await;
    let (_, pid, epoch) = init(&mut c, "idle", 60_000).await;
    assert_eq!(add_partition(&mut c, "idle", pid, epoch, "t", 0).await, NONE);
    assert_eq!(produce_txn(&mut c, "idle", pid, epoch, 0, "t", 1).await, NONE);
    assert_eq!(end_txn(&mut c, "idle", pid, epoch, true).await, NONE);
    // Listed until it has been idle past the expiration, then forgotten (a tombstone).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = strom_json(&b.addr, &["txn", "list"]).await;
        if rows.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still listed: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, pid2, epoch2) = init(&mut c, "idle", 60_000).await;
    assert_eq!(code, NONE);
    assert_ne!(pid2, pid, "an expired id starts over with a new producer id");
    assert_eq!(epoch2, 0);
    // The tombstone holds across a restart.
    drop(c);
    b.stop().await;
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    let (code, pid3, epoch3) = init(&mut c, "idle", 60_000).await;
    assert_eq!((code, pid3, epoch3), (NONE, pid2, 1));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_and_records_of_a_fenced_or_unverified_producer_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(dir.path(), &[]).await;
    let mut c = connect(&b.addr).await;
    create_topic(&mut c, "t", 1).await;
    let (_, pid, epoch) = init(&mut c, "z", 60_000).await;
    let commit_offset = |epoch: i16| TxnOffsetCommitRequest {
        transactional_id: "z".into(),
        group_id: "g".into(),
        producer_id: pid,
        producer_epoch: epoch,
        generation_id: -1,
        topics: vec![TxnOffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![TxnOffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: 7,
                committed_leader_epoch: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    // Without AddOffsetsToTxn the group's partition is not in the transaction.
    let r: TxnOffsetCommitResponse = c.call_at(3, &commit_offset(epoch)).await.expect("txn offset commit");
    assert_eq!(r.topics[0].partitions[0].error_code, INVALID_TXN_STATE);
    assert_eq!(add_offsets(&mut c, "z", pid, epoch).await, NONE);
    // A successor fences the producer: its offsets are refused, not held for the
    // successor's COMMIT to publish.
    // (It had a transaction open: the fencing abort bumped the epoch, then the retried
    // InitProducerId once more.)
    let (_, pid2, epoch2) = init(&mut c, "z", 60_000).await;
    assert_eq!((pid2, epoch2), (pid, epoch + 2));
    let r: TxnOffsetCommitResponse = c.call_at(3, &commit_offset(epoch)).await.expect("txn offset commit");
    assert_eq!(r.topics[0].partitions[0].error_code, PRODUCER_FENCED);
    assert_eq!(add_partition(&mut c, "z", pid2, epoch2, "t", 0).await, NONE);
    assert_eq!(produce_txn(&mut c, "z", pid2, epoch2, 0, "t", 1).await, NONE);
    assert_eq!(end_txn(&mut c, "z", pid2, epoch2, true).await, NONE);
    assert_eq!(await_lso(&mut c, "t", 2).await, (2, 2));
    assert_eq!(committed(&mut c, "g", "t").await, -1, "the fenced producer's offset was published");

    // A transactional batch in a produce request without a transactional id is refused.
    let mut batch = BatchBuilder::new(strom_storage::now_ms()).producer(pid2, epoch2, 1).transactional(true);
    batch.add(None, Some(b"x"));
    let req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 10_000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(batch.build().freeze()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let r: ProduceResponse = c.call_at(9, &req).await.expect("produce");
    assert_eq!(r.responses[0].partition_responses[0].error_code, INVALID_TXN_STATE);
    assert_eq!(offsets(&mut c, "t").await, (2, 2));
    b.stop().await;
}

/// Share groups read transactional data by their `share.isolation.level` (issue 19):
/// read_committed acquires nothing of an aborted transaction (nor the markers) and stops
/// at the last stable offset while a transaction is open; read_uncommitted acquires every
/// data record. Topic layout: aborted A (0-2), its marker (3), committed B (4-5), its
/// marker (6), then open C (7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_groups_read_transactional_data_by_their_isolation_level() {
    use strom_protocol::share_fetch_request::{FetchPartition as SharePartition, FetchTopic as ShareTopic};
    use strom_protocol::{ShareFetchRequest, ShareFetchResponse};

    let dir = tempfile::tempdir().expect("tempdir");
    let broker = common::start(dir.path(), &[("transaction.state.log.num.partitions", "1")]).await;
    let mut c = connect(&broker.addr).await;
    create_topic(&mut c, "jobs", 1).await;
    for (group, level) in [("committed", "read_committed"), ("uncommitted", "read_uncommitted")] {
        let configs = [("share.auto.offset.reset", "earliest"), ("share.isolation.level", level)];
        let (code, message) = common::set_group_configs(&mut c, group, &configs).await;
        assert_eq!(code, NONE, "{message:?}");
    }
    for (tid, n, commit) in [("a", 3, Some(false)), ("b", 2, Some(true)), ("c", 1, None)] {
        let (code, pid, epoch) = init(&mut c, tid, 60_000).await;
        assert_eq!(code, NONE);
        assert_eq!(add_partition(&mut c, tid, pid, epoch, "jobs", 0).await, NONE);
        assert_eq!(produce_txn(&mut c, tid, pid, epoch, 0, "jobs", n).await, NONE);
        if let Some(commit) = commit {
            assert_eq!(end_txn(&mut c, tid, pid, epoch, commit).await, NONE);
        }
    }
    assert_eq!(await_lso(&mut c, "jobs", 7).await, (8, 7), "C's record is at 7, open");
    let topic_id = {
        let md: strom_protocol::MetadataResponse = c
            .call_at(12, &strom_protocol::MetadataRequest { topics: None, ..Default::default() })
            .await
            .expect("metadata");
        md.topics.iter().find(|t| t.name.as_deref() == Some("jobs")).expect("topic").topic_id
    };
    let mut acquired = async |group: &str| {
        let req = ShareFetchRequest {
            group_id: Some(group.into()),
            member_id: Some("m".into()),
            share_session_epoch: 0,
            max_wait_ms: 0,
            min_bytes: 1,
            max_bytes: 1 << 20,
            max_records: 100,
            batch_size: 100,
            topics: vec![ShareTopic {
                topic_id,
                partitions: vec![SharePartition { partition_index: 0, ..Default::default() }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r: ShareFetchResponse = c.call_at(1, &req).await.expect("share fetch");
        assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
        r.responses
            .iter()
            .flat_map(|t| &t.partitions)
            .flat_map(|p| &p.acquired_records)
            .map(|a| (a.first_offset, a.last_offset))
            .collect::<Vec<_>>()
    };
    assert_eq!(acquired("committed").await, [(4, 5)], "B only: A aborted, C open");
    assert_eq!(acquired("uncommitted").await, [(0, 2), (4, 5), (7, 7)], "every data record");
    broker.stop().await;
}
