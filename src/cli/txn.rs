//! `strom txn ...`: Kafka's `kafka-transactions.sh` (list, describe, abort,
//! find-hanging) over the transaction admin APIs.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use strom_client::{check, Client};
use strom_protocol::*;

use super::{connect, metadata, Common, Table};

/// `strom txn ...`
#[derive(Subcommand, Debug)]
pub enum TxnCmd {
    /// Transactional ids and their state, from every broker's coordinator.
    List {
        /// Only these states (Ongoing, PrepareCommit, CompleteCommit, …; repeatable).
        #[arg(long = "state")]
        states: Vec<String>,
    },
    /// One transactional id: producer, epoch, state, timeout and partitions.
    Describe {
        #[arg(long = "transactional-id", required = true)]
        transactional_id: String,
    },
    /// Producers with a transaction open in partitions for longer than the largest
    /// transaction timeout that their coordinator does not know of (hanging
    /// transactions, which hold back read_committed consumers).
    FindHanging {
        /// Only this topic's partitions (default: every topic).
        #[arg(long)]
        topic: Option<String>,
        /// Open longer than this is suspicious (Kafka's transaction.max.timeout.ms).
        #[arg(long, default_value_t = 900_000)]
        max_transaction_timeout_ms: i64,
    },
    /// Aborts a hanging transaction in one partition by writing an ABORT marker for the
    /// producer whose transaction starts at `--start-offset` (as kafka-transactions.sh abort).
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        #[arg(long)]
        start_offset: i64,
    },
}

/// Every broker's address, from Metadata.
async fn brokers(client: &mut Client) -> anyhow::Result<BTreeMap<i32, String>> {
    let md = metadata(client, Some(&[])).await?;
    Ok(md.brokers.iter().map(|b| (b.node_id, format!("{}:{}", b.host, b.port))).collect())
}

async fn connect_to(addr: &str, c: &Common) -> anyhow::Result<Client> {
    Client::connect_with(addr, Duration::from_millis(c.timeout_ms), &c.security()?).await
}

/// The producer states of `(topic, partition)` at its leader.
async fn producers(
    c: &Common,
    addrs: &BTreeMap<i32, String>,
    leader: i32,
    topic: &str,
    partition: i32,
) -> anyhow::Result<Vec<describe_producers_response::ProducerState>> {
    let addr = addrs.get(&leader).ok_or_else(|| anyhow!("leader {leader} of {topic}-{partition} unknown"))?;
    let mut client = connect_to(addr, c).await?;
    let req = DescribeProducersRequest {
        topics: vec![describe_producers_request::TopicRequest {
            name: topic.to_string(),
            partition_indexes: vec![partition],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (resp, _): (DescribeProducersResponse, _) = client.call(0, &req).await?;
    let p = resp
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .next()
        .ok_or_else(|| anyhow!("no answer for {topic}-{partition}"))?;
    check(p.error_code, &format!("describing producers of {topic}-{partition}"), p.error_message.as_deref())?;
    Ok(p.active_producers)
}

/// `strom txn ...`
pub async fn txn(cmd: TxnCmd, c: &Common) -> anyhow::Result<()> {
    let mut client = connect(c).await?;
    match cmd {
        TxnCmd::List { states } => {
            let mut t = Table::new(&["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"]);
            for (id, addr) in brokers(&mut client).await? {
                let mut b = connect_to(&addr, c).await?;
                let req = ListTransactionsRequest {
                    state_filters: states.clone(),
                    duration_filter: -1,
                    ..Default::default()
                };
                let (resp, _): (ListTransactionsResponse, _) = b.call(1, &req).await?;
                check(resp.error_code, &format!("listing transactions at broker {id}"), None)?;
                for s in resp.transaction_states {
                    t.row(vec![s.transactional_id, id.to_string(), s.producer_id.to_string(), s.transaction_state]);
                }
            }
            t.print(c.output)
        }
        TxnCmd::Describe { transactional_id } => {
            let find = FindCoordinatorRequest { key: transactional_id.clone(), key_type: 1, ..Default::default() };
            let (found, _): (FindCoordinatorResponse, _) = client.call(3, &find).await?;
            check(found.error_code, "finding the transaction coordinator", found.error_message.as_deref())?;
            let mut coord = connect_to(&format!("{}:{}", found.host, found.port), c).await?;
            let req =
                DescribeTransactionsRequest { transactional_ids: vec![transactional_id.clone()], ..Default::default() };
            let (resp, _): (DescribeTransactionsResponse, _) = coord.call(0, &req).await?;
            let s = resp.transaction_states.into_iter().next().ok_or_else(|| anyhow!("no answer"))?;
            check(s.error_code, &format!("describing {transactional_id}"), None)?;
            let mut t = Table::new(&[
                "TRANSACTIONAL-ID",
                "COORDINATOR",
                "PRODUCER-ID",
                "EPOCH",
                "STATE",
                "TIMEOUT-MS",
                "START-MS",
                "PARTITIONS",
            ]);
            let parts: Vec<String> =
                s.topics.iter().flat_map(|tp| tp.partitions.iter().map(move |p| format!("{}-{p}", tp.topic))).collect();
            t.row(vec![
                s.transactional_id,
                found.node_id.to_string(),
                s.producer_id.to_string(),
                s.producer_epoch.to_string(),
                s.transaction_state,
                s.transaction_timeout_ms.to_string(),
                s.transaction_start_time_ms.to_string(),
                if parts.is_empty() { "-".into() } else { parts.join(",") },
            ]);
            t.print(c.output)
        }
        TxnCmd::FindHanging { topic, max_transaction_timeout_ms } => {
            let addrs = brokers(&mut client).await?;
            let topics = topic.map(|t| vec![t]);
            let md = metadata(&mut client, topics.as_deref()).await?;
            // What the coordinators know: producer id → the partitions of its ongoing transaction.
            let mut known: BTreeMap<i64, BTreeSet<(String, i32)>> = BTreeMap::new();
            for addr in addrs.values() {
                let mut b = connect_to(addr, c).await?;
                let req = ListTransactionsRequest { duration_filter: -1, ..Default::default() };
                let (resp, _): (ListTransactionsResponse, _) = b.call(1, &req).await?;
                for s in resp.transaction_states {
                    let req = DescribeTransactionsRequest {
                        transactional_ids: vec![s.transactional_id.clone()],
                        ..Default::default()
                    };
                    let (d, _): (DescribeTransactionsResponse, _) = b.call(0, &req).await?;
                    for st in d.transaction_states.into_iter().filter(|st| st.error_code == 0) {
                        let e = known.entry(st.producer_id).or_default();
                        for tp in st.topics {
                            e.extend(tp.partitions.iter().map(|p| (tp.topic.clone(), *p)));
                        }
                    }
                }
            }
            let now = strom_storage::now_ms();
            let mut t = Table::new(&[
                "TOPIC",
                "PARTITION",
                "PRODUCER-ID",
                "EPOCH",
                "COORDINATOR-EPOCH",
                "START-OFFSET",
                "LAST-TIMESTAMP",
                "AGE-MS",
            ]);
            for tm in md.topics.iter().filter(|t| !t.is_internal) {
                let name = tm.name.clone().unwrap_or_default();
                for p in &tm.partitions {
                    for s in producers(c, &addrs, p.leader_id, &name, p.partition_index).await? {
                        if s.current_txn_start_offset < 0 {
                            continue;
                        }
                        let age = now.saturating_sub(s.last_timestamp);
                        let coordinator_knows =
                            known.get(&s.producer_id).is_some_and(|ps| ps.contains(&(name.clone(), p.partition_index)));
                        if age > max_transaction_timeout_ms && !coordinator_knows {
                            t.row(vec![
                                name.clone(),
                                p.partition_index.to_string(),
                                s.producer_id.to_string(),
                                s.producer_epoch.to_string(),
                                s.coordinator_epoch.to_string(),
                                s.current_txn_start_offset.to_string(),
                                s.last_timestamp.to_string(),
                                age.to_string(),
                            ]);
                        }
                    }
                }
            }
            t.print(c.output)
        }
        TxnCmd::Abort { topic, partition, start_offset } => {
            let addrs = brokers(&mut client).await?;
            let md = metadata(&mut client, Some(std::slice::from_ref(&topic))).await?;
            let leader = md
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == partition)
                .map(|p| p.leader_id)
                .ok_or_else(|| anyhow!("{topic}-{partition} not found"))?;
            let states = producers(c, &addrs, leader, &topic, partition).await?;
            let Some(s) = states.into_iter().find(|s| s.current_txn_start_offset == start_offset) else {
                bail!("no producer has a transaction starting at offset {start_offset} in {topic}-{partition}");
            };
            let epoch =
                i16::try_from(s.producer_epoch).map_err(|_| anyhow!("epoch {} out of range", s.producer_epoch))?;
            let req = WriteTxnMarkersRequest {
                markers: vec![write_txn_markers_request::WritableTxnMarker {
                    producer_id: s.producer_id,
                    producer_epoch: epoch,
                    transaction_result: false,
                    topics: vec![write_txn_markers_request::WritableTxnMarkerTopic {
                        name: topic.clone(),
                        partition_indexes: vec![partition],
                        ..Default::default()
                    }],
                    coordinator_epoch: s.coordinator_epoch.max(0),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let addr = addrs.get(&leader).ok_or_else(|| anyhow!("leader {leader} unknown"))?;
            let mut b = connect_to(addr, c).await?;
            let (resp, _): (WriteTxnMarkersResponse, _) = b.call(1, &req).await?;
            for m in resp.markers {
                for tp in m.topics {
                    for p in tp.partitions {
                        check(p.error_code, &format!("aborting in {}-{}", tp.name, p.partition_index), None)?;
                    }
                }
            }
            println!(
                "aborted the transaction of producer {} (epoch {epoch}) starting at offset {start_offset} in {topic}-{partition}",
                s.producer_id
            );
            Ok(())
        }
    }
}
