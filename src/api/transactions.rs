//! The transaction APIs (ADR 0012): AddPartitionsToTxn (24), AddOffsetsToTxn (25),
//! EndTxn (26), WriteTxnMarkers (27) and TxnOffsetCommit (28). The state machine is the
//! transaction coordinator's (`coordinator/txn.rs`); these handlers map requests and
//! answers, and pick Kafka's error per version: PRODUCER_FENCED exists from KIP-588's
//! versions on (AddPartitionsToTxn v2, AddOffsetsToTxn v2, EndTxn v2, TxnOffsetCommit v3),
//! older versions get INVALID_PRODUCER_EPOCH.

use strom_protocol::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use strom_protocol::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use strom_protocol::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use strom_protocol::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    EndTxnRequest, EndTxnResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse, WriteTxnMarkersRequest,
    WriteTxnMarkersResponse,
};

use super::authz::Authz;
use super::ApiRange;
use crate::coordinator::group::CommitEntry;
use crate::error::ErrorCode;
use crate::metadata::OFFSETS_TOPIC;
use crate::node::Node;
use crate::security::acl::{op, resource};

/// AddPartitionsToTxn versions served (v4+ carry batches of transactions, brokers' verify-only checks).
pub const ADD_PARTITIONS_API: ApiRange = ApiRange { key: 24, min: 0, max: 5, advertised_min: 0 };
/// AddOffsetsToTxn versions served.
pub const ADD_OFFSETS_API: ApiRange = ApiRange { key: 25, min: 0, max: 4, advertised_min: 0 };
/// EndTxn versions served (v5 answers the producer id and epoch, used with transaction
/// version 2; served like v4 while `transaction.version` is 1).
pub const END_TXN_API: ApiRange = ApiRange { key: 26, min: 0, max: 5, advertised_min: 0 };
/// WriteTxnMarkers versions served (Kafka 4 serves v1 only).
pub const WRITE_MARKERS_API: ApiRange = ApiRange { key: 27, min: 1, max: 1, advertised_min: 1 };
/// TxnOffsetCommit versions served.
pub const TXN_OFFSET_COMMIT_API: ApiRange = ApiRange { key: 28, min: 0, max: 5, advertised_min: 0 };

fn fenced(version: i16, since: i16) -> ErrorCode {
    if version >= since {
        ErrorCode::ProducerFenced
    } else {
        ErrorCode::InvalidProducerEpoch
    }
}

/// The partitions named, split into those that exist and those that do not.
fn known_partitions(node: &Node, topics: &[(String, Vec<i32>)]) -> (Vec<(String, i32)>, bool) {
    let mut all_known = true;
    let mut out = Vec::new();
    for (t, ps) in topics {
        let n = node.meta.topic(t).map_or(0, |t| t.partitions.len() as i32);
        for &p in ps {
            all_known &= p >= 0 && p < n;
            out.push((t.clone(), p));
        }
    }
    (out, all_known)
}

/// AddPartitionsToTxn: v0–3 from producers (one transaction), v4+ from brokers
/// (several, possibly `verify_only`).
pub async fn add_partitions(
    node: &Node,
    az: &Authz<'_>,
    version: i16,
    req: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let results = |topics: &[(String, Vec<i32>)], code: &dyn Fn(&str, i32) -> ErrorCode| {
        topics
            .iter()
            .map(|(t, ps)| AddPartitionsToTxnTopicResult {
                name: t.clone(),
                results_by_partition: ps
                    .iter()
                    .map(|&p| AddPartitionsToTxnPartitionResult {
                        partition_index: p,
                        partition_error_code: code(t, p).code(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    };
    let run = |tid: String, pid: i64, epoch: i16, verify: bool, topics: Vec<(String, Vec<i32>)>| async move {
        let (parts, all_known) = known_partitions(node, &topics);
        if !all_known {
            // Kafka: the unknown ones fail, the others are not attempted.
            let n = |t: &str| node.meta.topic(t).map_or(0, |t| t.partitions.len() as i32);
            return results(&topics, &|t, p| {
                if p >= 0 && p < n(t) {
                    ErrorCode::OperationNotAttempted
                } else {
                    ErrorCode::UnknownTopicOrPartition
                }
            });
        }
        if verify {
            return match node.txns.verify(&tid, pid, epoch, &parts) {
                Ok(codes) => {
                    let it = std::cell::RefCell::new(codes.into_iter());
                    results(&topics, &|_, _| it.borrow_mut().next().unwrap_or(ErrorCode::InvalidTxnState))
                }
                Err(code) => results(&topics, &|_, _| code),
            };
        }
        let code = node.txns.add_partitions(&tid, pid, epoch, &parts, fenced(version, 2)).await;
        results(&topics, &|_, _| code)
    };
    let topics_of = |ts: &[strom_protocol::add_partitions_to_txn_request::AddPartitionsToTxnTopic]| {
        ts.iter().map(|t| (t.name.clone(), t.partitions.clone())).collect::<Vec<_>>()
    };
    if version < 4 {
        let topics = topics_of(&req.v3_and_below_topics);
        // Kafka: WRITE on the transactional id (else every partition fails), then WRITE
        // on each topic (the others are not attempted).
        let denied = az.txn_id_error(op::WRITE, &req.v3_and_below_transactional_id);
        if denied != ErrorCode::None {
            return AddPartitionsToTxnResponse {
                results_by_topic_v3_and_below: results(&topics, &|_, _| denied),
                ..Default::default()
            };
        }
        let unwritable: Vec<&str> =
            topics.iter().map(|(t, _)| t.as_str()).filter(|t| !az.topic(op::WRITE, t)).collect();
        if !unwritable.is_empty() {
            let r = results(&topics, &|t, _| {
                if unwritable.contains(&t) {
                    ErrorCode::TopicAuthorizationFailed
                } else {
                    ErrorCode::OperationNotAttempted
                }
            });
            return AddPartitionsToTxnResponse { results_by_topic_v3_and_below: r, ..Default::default() };
        }
        let r = run(
            req.v3_and_below_transactional_id.clone(),
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            false,
            topics,
        )
        .await;
        return AddPartitionsToTxnResponse { results_by_topic_v3_and_below: r, ..Default::default() };
    }
    // v4+ comes from brokers only (KIP-890): CLUSTER_ACTION on the cluster.
    if !az.cluster_action() {
        return AddPartitionsToTxnResponse {
            error_code: ErrorCode::ClusterAuthorizationFailed.code(),
            ..Default::default()
        };
    }
    let mut out = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let r =
            run(t.transactional_id.clone(), t.producer_id, t.producer_epoch, t.verify_only, topics_of(&t.topics)).await;
        out.push(AddPartitionsToTxnResult {
            transactional_id: t.transactional_id.clone(),
            topic_results: r,
            ..Default::default()
        });
    }
    AddPartitionsToTxnResponse { results_by_transaction: out, ..Default::default() }
}

/// AddOffsetsToTxn: puts the group's `__consumer_offsets` partition in the transaction,
/// so its TxnOffsetCommit gets a marker there.
pub async fn add_offsets(
    node: &Node,
    az: &Authz<'_>,
    version: i16,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    // Kafka: WRITE on the transactional id, then READ on the group.
    let denied = match az.txn_id_error(op::WRITE, &req.transactional_id) {
        ErrorCode::None => az.group_error(op::READ, &req.group_id),
        denied => denied,
    };
    if denied != ErrorCode::None {
        return AddOffsetsToTxnResponse { error_code: denied.code(), ..Default::default() };
    }
    let code = match crate::coordinator::group::offsets_partition(&node.meta, &req.group_id) {
        None => ErrorCode::CoordinatorNotAvailable,
        Some(p) => {
            let parts = [(OFFSETS_TOPIC.to_string(), p.index)];
            node.txns
                .add_partitions(&req.transactional_id, req.producer_id, req.producer_epoch, &parts, fenced(version, 2))
                .await
        }
    };
    AddOffsetsToTxnResponse { error_code: code.code(), ..Default::default() }
}

/// EndTxn: commit or abort the ongoing transaction.
pub async fn end_txn(node: &Node, az: &Authz<'_>, version: i16, req: EndTxnRequest) -> EndTxnResponse {
    // Kafka: WRITE on the transactional id.
    let denied = az.txn_id_error(op::WRITE, &req.transactional_id);
    if denied != ErrorCode::None {
        return EndTxnResponse { error_code: denied.code(), producer_id: -1, producer_epoch: -1, ..Default::default() };
    }
    let r = node
        .txns
        .end_txn(&req.transactional_id, req.producer_id, req.producer_epoch, req.committed, fenced(version, 2))
        .await;
    match r {
        Ok((producer_id, producer_epoch)) => EndTxnResponse { producer_id, producer_epoch, ..Default::default() },
        Err(code) => {
            EndTxnResponse { error_code: code.code(), producer_id: -1, producer_epoch: -1, ..Default::default() }
        }
    }
}

/// WriteTxnMarkers: a transaction coordinator on another broker has this broker write
/// markers to partitions it leads.
pub async fn write_markers(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    // Kafka: CLUSTER_ACTION on the cluster (brokers only), else every partition fails.
    let denied = !az.cluster_action();
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in &req.markers {
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in &m.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for &p in &t.partition_indexes {
                if denied {
                    partitions.push(WritableTxnMarkerPartitionResult {
                        partition_index: p,
                        error_code: ErrorCode::ClusterAuthorizationFailed.code(),
                        ..Default::default()
                    });
                    continue;
                }
                let code = crate::coordinator::txn::write_marker(
                    &node.meta,
                    &node.groups,
                    &t.name,
                    p,
                    m.producer_id,
                    m.producer_epoch,
                    m.transaction_result,
                    m.coordinator_epoch,
                )
                .await;
                partitions.push(WritableTxnMarkerPartitionResult {
                    partition_index: p,
                    error_code: code.code(),
                    ..Default::default()
                });
            }
            topics.push(WritableTxnMarkerTopicResult { name: t.name.clone(), partitions, ..Default::default() });
        }
        markers.push(WritableTxnMarkerResult { producer_id: m.producer_id, topics, ..Default::default() });
    }
    WriteTxnMarkersResponse { markers, ..Default::default() }
}

/// TxnOffsetCommit: offsets committed inside the producer's transaction, visible with
/// its COMMIT marker.
pub async fn txn_offset_commit(
    node: &Node,
    az: &Authz<'_>,
    version: i16,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    // Kafka: WRITE on the transactional id and READ on the group (else every partition
    // fails), then READ on each topic (the others are committed).
    let denied = match az.txn_id_error(op::WRITE, &req.transactional_id) {
        ErrorCode::None => az.group_error(op::READ, &req.group_id),
        denied => denied,
    };
    if denied != ErrorCode::None {
        return txn_offset_commit_error(&req, denied, &[]);
    }
    let readable: Vec<bool> = req.topics.iter().map(|t| az.topic(op::READ, &t.name)).collect();
    let entries: Vec<CommitEntry> = req
        .topics
        .iter()
        .zip(&readable)
        .filter(|(_, ok)| **ok)
        .flat_map(|(t, _)| {
            t.partitions.iter().map(move |p| CommitEntry {
                topic: t.name.clone(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.clone(),
            })
        })
        .collect();
    // The producer must be the transactional id's current one, with the group's offsets
    // partition in its transaction (AddOffsetsToTxn): a fenced zombie's offsets never
    // reach the log, where the successor's COMMIT marker would publish them.
    if let Some(p) = crate::coordinator::group::offsets_partition(&node.meta, &req.group_id) {
        let parts = [(OFFSETS_TOPIC.to_string(), p.index)];
        let code = verify(node, &req.transactional_id, req.producer_id, req.producer_epoch, &parts)
            .await
            .into_iter()
            .next()
            .unwrap_or(ErrorCode::UnknownServerError);
        if code != ErrorCode::None {
            let code = match code {
                ErrorCode::InvalidProducerEpoch => fenced(version, 3),
                ErrorCode::NotEnoughReplicas => ErrorCode::CoordinatorNotAvailable,
                c => c,
            };
            return txn_offset_commit_error(&req, code, &readable);
        }
    }
    let (mut codes, pending) = node.groups.txn_commit(
        &node.meta,
        &req.group_id,
        req.producer_id,
        req.producer_epoch,
        &req.member_id,
        req.group_instance_id.as_deref(),
        req.generation_id,
        &entries,
    );
    if let Some(pending) = pending {
        if let Err(code) = super::offset_commit::wait_replicated(node, &req.group_id).await {
            node.groups.fail_txn_commit(pending);
            for c in codes.iter_mut().filter(|c| **c == ErrorCode::None) {
                *c = code;
            }
        }
    }
    // A stale epoch found by the partition's producer state reads as a fenced producer.
    let fenced = fenced(version, 3);
    let mut codes = codes.into_iter().map(|c| if c == ErrorCode::InvalidProducerEpoch { fenced } else { c });
    let topics = req
        .topics
        .iter()
        .zip(readable)
        .map(|(t, readable)| TxnOffsetCommitResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| TxnOffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: if readable {
                        codes.next().unwrap_or(ErrorCode::UnknownServerError).code()
                    } else {
                        ErrorCode::TopicAuthorizationFailed.code()
                    },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    TxnOffsetCommitResponse { topics, ..Default::default() }
}

/// TxnOffsetCommit answered with `code` for every partition, but TOPIC_AUTHORIZATION_FAILED
/// for those of topics `readable` says the principal may not read (Kafka reports them
/// whatever else fails).
fn txn_offset_commit_error(
    req: &TxnOffsetCommitRequest,
    code: ErrorCode,
    readable: &[bool],
) -> TxnOffsetCommitResponse {
    let topics = req
        .topics
        .iter()
        .enumerate()
        .map(|(i, t)| TxnOffsetCommitResponseTopic {
            name: t.name.clone(),
            partitions: t
                .partitions
                .iter()
                .map(|p| TxnOffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: if readable.get(i) == Some(&false) {
                        ErrorCode::TopicAuthorizationFailed.code()
                    } else {
                        code.code()
                    },
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    TxnOffsetCommitResponse { topics, ..Default::default() }
}

/// KIP-890 part 1 for a partition leader: asks the coordinator of `transactional_id`
/// (in process, or AddPartitionsToTxn v4 `verify_only` to the broker leading it) whether
/// each partition is in the producer's ongoing transaction; one code per partition.
pub async fn verify(
    node: &Node,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    parts: &[(String, i32)],
) -> Vec<ErrorCode> {
    let all = |code: ErrorCode| vec![code; parts.len()];
    let Some(coordinator) = node.txn_coordinator(transactional_id) else {
        return all(ErrorCode::NotEnoughReplicas);
    };
    if coordinator == node.meta.config.node_id {
        return node.txns.verify(transactional_id, producer_id, producer_epoch, parts).unwrap_or_else(|code| {
            // The coordinator moving is not the producer's fault: it retries.
            all(if matches!(code, ErrorCode::InvalidProducerEpoch | ErrorCode::InvalidProducerIdMapping) {
                code
            } else {
                ErrorCode::NotEnoughReplicas
            })
        });
    }
    match remote_verify(node, coordinator, transactional_id, producer_id, producer_epoch, parts).await {
        Ok(codes) => codes,
        Err(e) => {
            tracing::debug!(coordinator, error = %format!("{e:#}"), "transaction verification failed");
            all(ErrorCode::NotEnoughReplicas)
        }
    }
}

async fn remote_verify(
    node: &Node,
    coordinator: i32,
    transactional_id: &str,
    producer_id: i64,
    producer_epoch: i16,
    parts: &[(String, i32)],
) -> anyhow::Result<Vec<ErrorCode>> {
    use strom_protocol::add_partitions_to_txn_request::{AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction};
    let addr = node.meta.broker_address(coordinator).ok_or_else(|| anyhow::anyhow!("broker {coordinator} unknown"))?;
    let mut client =
        strom_client::Client::connect_with(&addr, std::time::Duration::from_secs(5), &node.meta.config.inter_broker)
            .await?;
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in parts {
        match topics.last_mut() {
            Some(last) if last.name == *t => last.partitions.push(*p),
            _ => topics.push(AddPartitionsToTxnTopic { name: t.clone(), partitions: vec![*p], ..Default::default() }),
        }
    }
    let req = AddPartitionsToTxnRequest {
        transactions: vec![AddPartitionsToTxnTransaction {
            transactional_id: transactional_id.to_string(),
            producer_id,
            producer_epoch,
            verify_only: true,
            topics,
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp: AddPartitionsToTxnResponse =
        tokio::time::timeout(std::time::Duration::from_secs(5), client.call_at(4, &req)).await??;
    let mut codes = std::collections::HashMap::new();
    for r in resp.results_by_transaction {
        for t in r.topic_results {
            for p in t.results_by_partition {
                codes.insert((t.name.clone(), p.partition_index), p.partition_error_code);
            }
        }
    }
    Ok(parts
        .iter()
        .map(|k| match codes.get(k) {
            Some(0) => ErrorCode::None,
            Some(c) => ErrorCode::ALL.iter().copied().find(|e| e.code() == *c).unwrap_or(ErrorCode::InvalidTxnState),
            None => ErrorCode::InvalidTxnState,
        })
        .collect())
}

/// DescribeTransactions versions served.
pub const DESCRIBE_TRANSACTIONS_API: ApiRange = ApiRange { key: 65, min: 0, max: 0, advertised_min: 0 };
/// ListTransactions versions served (v1 duration filter, v2 transactional id pattern).
pub const LIST_TRANSACTIONS_API: ApiRange = ApiRange { key: 66, min: 0, max: 2, advertised_min: 0 };
/// DescribeProducers versions served.
pub const DESCRIBE_PRODUCERS_API: ApiRange = ApiRange { key: 61, min: 0, max: 0, advertised_min: 0 };

/// The partitions of a transaction grouped by topic, as the admin APIs list them.
fn by_topic(parts: &std::collections::BTreeSet<(String, i32)>) -> Vec<(String, Vec<i32>)> {
    let mut out: Vec<(String, Vec<i32>)> = Vec::new();
    for (t, p) in parts {
        match out.last_mut() {
            Some((last, ps)) if last == t => ps.push(*p),
            _ => out.push((t.clone(), vec![*p])),
        }
    }
    out
}

/// DescribeTransactions: the state of transactional ids this broker coordinates.
pub fn describe_transactions(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: strom_protocol::DescribeTransactionsRequest,
) -> strom_protocol::DescribeTransactionsResponse {
    use strom_protocol::describe_transactions_response::{TopicData, TransactionState};
    let states = req
        .transactional_ids
        .iter()
        .map(|id| {
            let mut s = TransactionState {
                transactional_id: id.clone(),
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            };
            // Kafka: DESCRIBE on the transactional id; topics it may not describe are
            // left out of the transaction's partitions.
            if !az.txn_id(op::DESCRIBE, id) {
                s.error_code = ErrorCode::TransactionalIdAuthorizationFailed.code();
                return s;
            }
            match node.txns.describe(id) {
                Ok(Some(v)) => {
                    s.transaction_state = v.status.name().to_string();
                    s.transaction_timeout_ms = v.timeout_ms;
                    s.transaction_start_time_ms = v.start_ms;
                    s.producer_id = v.producer_id;
                    s.producer_epoch = v.producer_epoch;
                    s.topics = by_topic(&v.partitions)
                        .into_iter()
                        .filter(|(topic, _)| az.sees(op::DESCRIBE, resource::TOPIC, topic))
                        .map(|(topic, partitions)| TopicData { topic, partitions, ..Default::default() })
                        .collect();
                }
                Ok(None) => s.error_code = ErrorCode::TransactionalIdNotFound.code(),
                Err(code) => s.error_code = code.code(),
            }
            s
        })
        .collect();
    strom_protocol::DescribeTransactionsResponse { transaction_states: states, ..Default::default() }
}

/// ListTransactions: the transactional ids this broker coordinates, filtered by state,
/// producer id, duration (v1: ongoing at least this long) and id pattern (v2, a regular
/// expression as Kafka's RE2/J takes it).
pub fn list_transactions(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: strom_protocol::ListTransactionsRequest,
) -> strom_protocol::ListTransactionsResponse {
    use strom_protocol::list_transactions_response::TransactionState;
    const STATES: [&str; 8] = [
        "Empty",
        "Ongoing",
        "PrepareCommit",
        "PrepareAbort",
        "CompleteCommit",
        "CompleteAbort",
        "Dead",
        "PrepareEpochFence",
    ];
    let unknown: Vec<String> = req.state_filters.iter().filter(|s| !STATES.contains(&s.as_str())).cloned().collect();
    let pattern = match req.transactional_id_pattern.as_deref().filter(|p| !p.is_empty()).map(regex::Regex::new) {
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => {
            return strom_protocol::ListTransactionsResponse {
                error_code: ErrorCode::InvalidRegularExpression.code(),
                ..Default::default()
            }
        }
        None => None,
    };
    let now = strom_storage::now_ms();
    let states = node
        .txns
        .list()
        .into_iter()
        .filter(|t| req.state_filters.is_empty() || req.state_filters.iter().any(|s| s == t.value.status.name()))
        .filter(|t| req.producer_id_filters.is_empty() || req.producer_id_filters.contains(&t.value.producer_id))
        .filter(|t| {
            req.duration_filter < 0
                || (t.value.start_ms >= 0 && now.saturating_sub(t.value.start_ms) >= req.duration_filter)
        })
        .filter(|t| pattern.as_ref().is_none_or(|r| r.is_match(&t.transactional_id)))
        // Kafka lists the ids the principal may describe.
        .filter(|t| az.sees(op::DESCRIBE, resource::TRANSACTIONAL_ID, &t.transactional_id))
        .map(|t| TransactionState {
            transactional_id: t.transactional_id,
            producer_id: t.value.producer_id,
            transaction_state: t.value.status.name().to_string(),
            ..Default::default()
        })
        .collect();
    strom_protocol::ListTransactionsResponse {
        unknown_state_filters: unknown,
        transaction_states: states,
        ..Default::default()
    }
}

/// DescribeProducers: the producer state of partitions this broker leads (what
/// `kafka-transactions.sh find-hanging` and `abort` work from).
pub fn describe_producers(
    node: &Node,
    az: &Authz<'_>,
    _version: i16,
    req: strom_protocol::DescribeProducersRequest,
) -> strom_protocol::DescribeProducersResponse {
    use strom_protocol::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
    let now = strom_storage::now_ms();
    let topics = req
        .topics
        .iter()
        .map(|t| TopicResponse {
            name: t.name.clone(),
            partitions: t
                .partition_indexes
                .iter()
                .map(|&i| {
                    let mut r = PartitionResponse { partition_index: i, ..Default::default() };
                    // Kafka: READ on the topic.
                    if !az.topic(op::READ, &t.name) {
                        r.error_code = ErrorCode::TopicAuthorizationFailed.code();
                        return r;
                    }
                    match node.meta.partition(&t.name, i) {
                        None => r.error_code = ErrorCode::UnknownTopicOrPartition.code(),
                        Some(p) if !(p.is_leader() && node.meta.leads_partition(&p)) => {
                            r.error_code = ErrorCode::NotLeaderOrFollower.code()
                        }
                        Some(p) => {
                            r.active_producers = p.with_log(|l| {
                                let state = l.producer_state();
                                let mut v: Vec<ProducerState> = state
                                    .producers()
                                    .filter(|(id, _)| state.entry(*id, now).is_some())
                                    .map(|(id, e)| ProducerState {
                                        producer_id: id,
                                        producer_epoch: i32::from(e.epoch),
                                        last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                                        last_timestamp: e.last_timestamp,
                                        coordinator_epoch: e.coordinator_epoch,
                                        current_txn_start_offset: e.txn_first_offset.unwrap_or(-1),
                                        ..Default::default()
                                    })
                                    .collect();
                                v.sort_by_key(|s| s.producer_id);
                                v
                            });
                        }
                    }
                    r
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    strom_protocol::DescribeProducersResponse { topics, ..Default::default() }
}
