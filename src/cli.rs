//! The admin and console commands of `strom` (`topic`, `group`, `produce`, `consume`,
//! `cluster`, `health`, `txn`, `user`, `acl`). They speak only the Kafka protocol through [`strom_client`],
//! so they work against Strom or any Kafka broker.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use clap::{Args, Subcommand, ValueEnum};
use strom_protocol::records::{self, BatchBuilder, BatchHeader, Record};
use strom_protocol::*;

use strom_client::{check, partition_for_key, Client};

mod acl;
mod schema;
mod txn;
mod user;
pub use acl::{acl, AclCmd};
pub use schema::{schema, SchemaCmd};
pub use txn::{txn, TxnCmd};
pub use user::{user, ScramCmd, UserCmd};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

/// Options every client command takes.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Broker to connect to (host:port).
    #[arg(long, short = 'b', env = "STROM_BOOTSTRAP", default_value = "localhost:9092", global = true)]
    pub bootstrap_server: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table, global = true)]
    pub output: Output,
    /// Request timeout in milliseconds.
    #[arg(long, default_value_t = 10_000, global = true)]
    pub timeout_ms: u64,
    /// Client properties file, as Kafka's tools take: `security.protocol`,
    /// `ssl.truststore.location`, `ssl.keystore.location` (PEM), `sasl.mechanism`,
    /// `sasl.jaas.config`.
    #[arg(long, env = "STROM_COMMAND_CONFIG", global = true, value_name = "FILE")]
    pub command_config: Option<std::path::PathBuf>,
}

impl Common {
    /// How to connect, from `--command-config` (PLAINTEXT without it).
    pub fn security(&self) -> anyhow::Result<strom_client::Security> {
        load_security(self.command_config.as_deref())
    }
}

/// The client security settings of a `--command-config` file (PLAINTEXT for `None`).
pub fn load_security(path: Option<&std::path::Path>) -> anyhow::Result<strom_client::Security> {
    let Some(path) = path else { return Ok(strom_client::Security::plaintext()) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    strom_client::Security::from_properties(&text).with_context(|| format!("{}", path.display()))
}

/// `strom topic ...`
#[derive(Subcommand, Debug)]
pub enum TopicCmd {
    /// Create a topic.
    Create {
        name: String,
        #[arg(long, short = 'p', default_value_t = 1)]
        partitions: i32,
        #[arg(long, short = 'r', default_value_t = 1)]
        replication_factor: i16,
        /// Topic setting KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics.
    List {
        /// Include internal topics (`__consumer_offsets`).
        #[arg(long)]
        internal: bool,
    },
    /// Partitions, leaders, offsets and settings of topics.
    Describe { names: Vec<String> },
    /// Add partitions or change settings.
    Alter {
        name: String,
        /// New total partition count (can only grow).
        #[arg(long, short = 'p')]
        partitions: Option<i32>,
        /// Set KEY=VALUE (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Remove a setting, back to its default (repeatable).
        #[arg(long = "delete-config", value_name = "KEY")]
        delete_configs: Vec<String>,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Move a partition's replicas to other brokers or change its replication factor
    /// (AlterPartitionReassignments, as `kafka-reassign-partitions.sh --execute`); the move
    /// finishes in the background once the new replicas are in sync.
    Reassign {
        name: String,
        #[arg(long, short = 'p')]
        partition: i32,
        /// The new replica set, the preferred leader first, e.g. `2,3,1`.
        #[arg(long, value_delimiter = ',', required_unless_present = "cancel", conflicts_with = "cancel")]
        replicas: Vec<i32>,
        /// Cancel the partition's reassignment in progress (back to its original replicas).
        #[arg(long)]
        cancel: bool,
    },
    /// Reassignments in progress: replicas, and those being added and removed.
    Reassignments { names: Vec<String> },
}

/// `strom group ...`
#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// List consumer groups.
    List,
    /// Members and per-partition committed offsets and lag of groups.
    Describe {
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move a group's committed offsets (the group must have no active members).
    ResetOffsets {
        group: String,
        /// Topic to reset (every partition).
        #[arg(long, required = true)]
        topic: String,
        #[arg(long, group = "to")]
        to_earliest: bool,
        #[arg(long, group = "to")]
        to_latest: bool,
        #[arg(long, group = "to")]
        to_offset: Option<i64>,
        /// Commit the new offsets (without it, only shows them).
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups (they must have no active members).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

/// `strom cluster ...`
#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Cluster id, controller, brokers and API versions.
    Info,
}

/// `strom produce`
#[derive(Args, Debug)]
pub struct ProduceArgs {
    /// Topic to write to.
    pub topic: String,
    /// Split each line into key and value at the first occurrence of this separator.
    #[arg(long)]
    pub key_separator: Option<String>,
    /// Header KEY=VALUE added to every record (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Write every record to this partition (default: key hash, or round-robin per batch).
    #[arg(long)]
    pub partition: Option<i32>,
    /// Input format: one value per line, or one JSON object per line with `key`, `value`, `headers`.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Records per batch.
    #[arg(long, default_value_t = 1000)]
    pub batch_size: usize,
    /// acks: 0, 1 or -1 (all).
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    pub acks: i16,
    /// Compression: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
}

/// `strom consume`
#[derive(Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to read.
    pub topic: String,
    /// Start at the earliest offset (default: the latest, or the group's committed offset).
    #[arg(long)]
    pub from_beginning: bool,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// Start at this offset (with --partition).
    #[arg(long)]
    pub offset: Option<i64>,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no record arrives for this long (milliseconds).
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Commit consumed offsets to this group (a standalone consumer: the group must have no members).
    #[arg(long)]
    pub group: Option<String>,
    /// Print keys (text format).
    #[arg(long)]
    pub print_key: bool,
    /// Print headers (text format).
    #[arg(long)]
    pub print_headers: bool,
    /// Print partition and offset (text format).
    #[arg(long)]
    pub print_offset: bool,
    /// Separator between printed fields (text format).
    #[arg(long, default_value = "\t")]
    pub separator: String,
    /// Output format: values as text, or one JSON object per record.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Record format for produce/consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// A result table: printed as aligned columns or as a JSON array of objects.
pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(headers: &[&'static str]) -> Table {
        Table { headers: headers.to_vec(), rows: Vec::new() }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn print(&self, output: Output) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        match output {
            Output::Json => {
                let arr: Vec<serde_json::Value> = self
                    .rows
                    .iter()
                    .map(|r| {
                        let obj: serde_json::Map<String, serde_json::Value> = self
                            .headers
                            .iter()
                            .zip(r)
                            .map(|(h, c)| {
                                let key = h.to_lowercase().replace('-', "_");
                                let val = match c.parse::<i64>() {
                                    Ok(n) => serde_json::Value::from(n),
                                    Err(_) if c == "-" => serde_json::Value::Null,
                                    Err(_) => serde_json::Value::from(c.as_str()),
                                };
                                (key, val)
                            })
                            .collect();
                        serde_json::Value::Object(obj)
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&arr)?)?;
            }
            Output::Table => {
                let mut widths: Vec<usize> = self.headers.iter().map(|h| h.len()).collect();
                for r in &self.rows {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let line = |cells: Vec<&str>| {
                    let mut s = String::new();
                    for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                        if i + 1 == cells.len() {
                            s.push_str(c);
                        } else {
                            s.push_str(&format!("{c:<w$}  "));
                        }
                    }
                    s.trim_end().to_string()
                };
                writeln!(out, "{}", line(self.headers.clone()))?;
                for r in &self.rows {
                    writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
                }
            }
        }
        Ok(())
    }
}

async fn connect(c: &Common) -> anyhow::Result<Client> {
    Client::connect_with(&c.bootstrap_server, Duration::from_millis(c.timeout_ms), &c.security()?).await
}

fn key_value(s: &str, what: &str) -> anyhow::Result<(String, String)> {
    let (k, v) = s.split_once('=').ok_or_else(|| anyhow!("{what} {s:?}: expected KEY=VALUE"))?;
    Ok((k.trim().to_string(), v.to_string()))
}

/// Topic metadata: name → partitions (index, leader, replicas, isr).
pub(crate) struct TopicInfo {
    pub(crate) name: String,
    pub(crate) id: Uuid,
    pub(crate) internal: bool,
    pub(crate) partitions: Vec<(i32, i32, Vec<i32>, Vec<i32>)>,
    /// Replicas on fenced (offline) brokers, by partition.
    pub(crate) offline: BTreeMap<i32, Vec<i32>>,
}

/// A Metadata request for `topics` (all when `None`), never creating topics.
pub(crate) async fn metadata(client: &mut Client, topics: Option<&[String]>) -> anyhow::Result<MetadataResponse> {
    let req = MetadataRequest {
        topics: topics.map(|t| {
            t.iter()
                .map(|n| metadata_request::MetadataRequestTopic { name: Some(n.clone()), ..Default::default() })
                .collect()
        }),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    let (resp, _) = client.call(12, &req).await?;
    Ok(resp)
}

pub(crate) async fn topic_infos(client: &mut Client, topics: Option<&[String]>) -> anyhow::Result<Vec<TopicInfo>> {
    let resp = metadata(client, topics).await?;
    let mut out = Vec::new();
    for t in resp.topics {
        let name = t.name.clone().unwrap_or_default();
        check(t.error_code, &format!("topic {name}"), None)?;
        let mut partitions: Vec<_> = t
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.leader_id, p.replica_nodes.clone(), p.isr_nodes.clone()))
            .collect();
        partitions.sort_by_key(|p| p.0);
        let offline = t.partitions.iter().map(|p| (p.partition_index, p.offline_replicas.clone())).collect();
        out.push(TopicInfo { name, id: t.topic_id, internal: t.is_internal, partitions, offline });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Connections to the leaders of one topic's partitions: in a cluster a partition is
/// produced to and fetched from its leader (the others answer NOT_LEADER_OR_FOLLOWER); on
/// a single node the bootstrap connection leads them all.
struct Leaders {
    topic: String,
    /// Partition → leader id (-1: none known).
    leader: BTreeMap<i32, i32>,
    /// Broker id → address; empty on a single node.
    addrs: BTreeMap<i32, String>,
    clients: BTreeMap<i32, Client>,
}

impl Leaders {
    /// The leaders as `bootstrap` reports them.
    async fn new(bootstrap: &mut Client, topic: &str) -> anyhow::Result<Leaders> {
        let mut l = Leaders {
            topic: topic.to_string(),
            leader: BTreeMap::new(),
            addrs: BTreeMap::new(),
            clients: BTreeMap::new(),
        };
        l.refresh(bootstrap).await?;
        Ok(l)
    }

    /// Reads the leaders again (after NOT_LEADER_OR_FOLLOWER: leadership moved).
    async fn refresh(&mut self, bootstrap: &mut Client) -> anyhow::Result<()> {
        let md = metadata(bootstrap, Some(std::slice::from_ref(&self.topic))).await?;
        self.addrs.clear();
        if md.brokers.len() > 1 {
            self.addrs = md.brokers.iter().map(|b| (b.node_id, format!("{}:{}", b.host, b.port))).collect();
        }
        self.leader = md
            .topics
            .iter()
            .filter(|t| t.name.as_deref() == Some(self.topic.as_str()))
            .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.leader_id)))
            .collect();
        Ok(())
    }

    /// The leader of `partition` (0, standing for the bootstrap broker, on a single node).
    fn of(&self, partition: i32) -> i32 {
        if self.addrs.is_empty() {
            0
        } else {
            self.leader.get(&partition).copied().unwrap_or(-1)
        }
    }

    /// Groups `items` by the leader of their partition.
    fn split<T>(&self, items: impl IntoIterator<Item = (i32, T)>) -> BTreeMap<i32, BTreeMap<i32, T>> {
        let mut out: BTreeMap<i32, BTreeMap<i32, T>> = BTreeMap::new();
        for (p, t) in items {
            out.entry(self.of(p)).or_default().insert(p, t);
        }
        out
    }

    /// The connection to broker `id` (the bootstrap one on a single node).
    async fn client<'a>(&'a mut self, bootstrap: &'a mut Client, id: i32) -> anyhow::Result<&'a mut Client> {
        if self.addrs.is_empty() {
            return Ok(bootstrap);
        }
        let addr = self.addrs.get(&id).with_context(|| format!("no leader known for a partition of {}", self.topic))?;
        match self.clients.entry(id) {
            std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
            std::collections::btree_map::Entry::Vacant(e) => {
                let security = bootstrap.security().clone();
                Ok(e.insert(Client::connect_with(addr, Duration::from_secs(10), &security).await?))
            }
        }
    }
}

/// ListOffsets at `timestamp` (-1 latest, -2 earliest) for every (topic, partition),
/// each asked of its leader (in a cluster only the leader answers; the others say
/// NOT_LEADER_OR_FOLLOWER).
pub(crate) async fn list_offsets(
    client: &mut Client,
    parts: &[(String, i32)],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let md = metadata(client, None).await?;
    if md.brokers.len() <= 1 {
        return list_offsets_at(client, parts, timestamp).await;
    }
    let leader_of: BTreeMap<(String, i32), i32> = md
        .topics
        .iter()
        .flat_map(|t| {
            let name = t.name.clone().unwrap_or_default();
            t.partitions.iter().map(move |p| ((name.clone(), p.partition_index), p.leader_id))
        })
        .collect();
    let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    for part in parts {
        by_leader.entry(leader_of.get(part).copied().unwrap_or(-1)).or_default().push(part.clone());
    }
    let mut out = BTreeMap::new();
    for (leader, ps) in by_leader {
        let b = md.brokers.iter().find(|b| b.node_id == leader).with_context(|| {
            format!("no leader for {}", ps.iter().map(|(t, p)| format!("{t}-{p}")).collect::<Vec<_>>().join(", "))
        })?;
        let addr = format!("{}:{}", b.host, b.port);
        let mut c = Client::connect_with(&addr, Duration::from_secs(10), &client.security().clone()).await?;
        out.extend(list_offsets_at(&mut c, &ps, timestamp).await?);
    }
    Ok(out)
}

/// ListOffsets at `timestamp` for `parts`, all asked of `client`'s broker.
async fn list_offsets_at(
    client: &mut Client,
    parts: &[(String, i32)],
    timestamp: i64,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in parts {
        by_topic.entry(t).or_default().push(*p);
    }
    let req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: by_topic
            .iter()
            .map(|(t, ps)| list_offsets_request::ListOffsetsTopic {
                name: t.to_string(),
                partitions: ps
                    .iter()
                    .map(|&p| list_offsets_request::ListOffsetsPartition {
                        partition_index: p,
                        current_leader_epoch: -1,
                        timestamp,
                        max_num_offsets: 1,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let (resp, _): (ListOffsetsResponse, _) = client.call(8, &req).await?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            check(p.error_code, &format!("offsets of {}-{}", t.name, p.partition_index), None)?;
            let off = if p.offset >= 0 { p.offset } else { p.old_style_offsets.first().copied().unwrap_or(-1) };
            out.insert((t.name.clone(), p.partition_index), off);
        }
    }
    Ok(out)
}

fn nodes(v: &[i32]) -> String {
    v.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(",")
}

/// `strom topic ...`
pub async fn topic(cmd: TopicCmd, c: &Common) -> anyhow::Result<()> {
    let mut client = connect(c).await?;
    match cmd {
        TopicCmd::Create { name, partitions, replication_factor, configs } => {
            let configs = configs
                .iter()
                .map(|s| {
                    key_value(s, "--config").map(|(k, v)| create_topics_request::CreatableTopicConfig {
                        name: k,
                        value: Some(v),
                        ..Default::default()
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let req = CreateTopicsRequest {
                topics: vec![create_topics_request::CreatableTopic {
                    name: name.clone(),
                    num_partitions: partitions,
                    replication_factor,
                    configs,
                    ..Default::default()
                }],
                timeout_ms: c.timeout_ms as i32,
                validate_only: false,
                ..Default::default()
            };
            let (resp, _): (CreateTopicsResponse, _) = client.call(7, &req).await?;
            let mut t = Table::new(&["TOPIC", "PARTITIONS", "STATUS"]);
            for r in resp.topics {
                check(r.error_code, &format!("creating {}", r.name), r.error_message.as_deref())?;
                t.row(vec![r.name, partitions.to_string(), "created".into()]);
            }
            t.print(c.output)
        }
        TopicCmd::List { internal } => {
            let infos = topic_infos(&mut client, None).await?;
            let mut t = Table::new(&["TOPIC", "PARTITIONS", "TOPIC-ID"]);
            for i in infos.into_iter().filter(|i| internal || !i.internal) {
                t.row(vec![i.name, i.partitions.len().to_string(), i.id.to_string()]);
            }
            t.print(c.output)
        }
        TopicCmd::Describe { names } => {
            let infos = topic_infos(&mut client, if names.is_empty() { None } else { Some(&names) }).await?;
            let parts: Vec<(String, i32)> =
                infos.iter().flat_map(|i| i.partitions.iter().map(|p| (i.name.clone(), p.0))).collect();
            let start = list_offsets(&mut client, &parts, -2).await?;
            let end = list_offsets(&mut client, &parts, -1).await?;
            let configs = topic_configs(&mut client, &infos.iter().map(|i| i.name.clone()).collect::<Vec<_>>()).await?;
            let mut t = Table::new(&[
                "TOPIC",
                "PARTITION",
                "LEADER",
                "REPLICAS",
                "ISR",
                "OFFLINE",
                "LOG-START-OFFSET",
                "LOG-END-OFFSET",
                "CONFIGS",
            ]);
            for i in &infos {
                let cfg = configs.get(&i.name).cloned().unwrap_or_default();
                for (p, leader, replicas, isr) in &i.partitions {
                    let k = (i.name.clone(), *p);
                    t.row(vec![
                        i.name.clone(),
                        p.to_string(),
                        leader.to_string(),
                        nodes(replicas),
                        nodes(isr),
                        i.offline.get(p).filter(|o| !o.is_empty()).map_or("-".into(), |o| nodes(o)),
                        start.get(&k).map_or("-".into(), |o| o.to_string()),
                        end.get(&k).map_or("-".into(), |o| o.to_string()),
                        if cfg.is_empty() { "-".into() } else { cfg.clone() },
                    ]);
                }
            }
            t.print(c.output)
        }
        TopicCmd::Alter { name, partitions, configs, delete_configs } => {
            if partitions.is_none() && configs.is_empty() && delete_configs.is_empty() {
                bail!("nothing to alter: give --partitions, --config or --delete-config");
            }
            let mut t = Table::new(&["TOPIC", "CHANGE", "STATUS"]);
            if let Some(count) = partitions {
                let req = CreatePartitionsRequest {
                    topics: vec![create_partitions_request::CreatePartitionsTopic {
                        name: name.clone(),
                        count,
                        assignments: None,
                        ..Default::default()
                    }],
                    timeout_ms: c.timeout_ms as i32,
                    validate_only: false,
                    ..Default::default()
                };
                let (resp, _): (CreatePartitionsResponse, _) = client.call(3, &req).await?;
                for r in resp.results {
                    check(r.error_code, &format!("adding partitions to {}", r.name), r.error_message.as_deref())?;
                }
                t.row(vec![name.clone(), format!("partitions={count}"), "ok".into()]);
            }
            if !configs.is_empty() || !delete_configs.is_empty() {
                let mut ops = Vec::new();
                for s in &configs {
                    let (k, v) = key_value(s, "--config")?;
                    ops.push(incremental_alter_configs_request::AlterableConfig {
                        name: k,
                        config_operation: 0,
                        value: Some(v),
                        ..Default::default()
                    });
                }
                for k in &delete_configs {
                    ops.push(incremental_alter_configs_request::AlterableConfig {
                        name: k.clone(),
                        config_operation: 1,
                        value: None,
                        ..Default::default()
                    });
                }
                let req = IncrementalAlterConfigsRequest {
                    resources: vec![incremental_alter_configs_request::AlterConfigsResource {
                        resource_type: 2,
                        resource_name: name.clone(),
                        configs: ops,
                        ..Default::default()
                    }],
                    validate_only: false,
                    ..Default::default()
                };
                let (resp, _): (IncrementalAlterConfigsResponse, _) = client.call(1, &req).await?;
                for r in resp.responses {
                    check(r.error_code, &format!("altering {}", r.resource_name), r.error_message.as_deref())?;
                }
                for s in &configs {
                    t.row(vec![name.clone(), s.clone(), "ok".into()]);
                }
                for k in &delete_configs {
                    t.row(vec![name.clone(), format!("{k} (deleted)"), "ok".into()]);
                }
            }
            t.print(c.output)
        }
        TopicCmd::Reassign { name, partition, replicas, cancel } => {
            let req = AlterPartitionReassignmentsRequest {
                timeout_ms: c.timeout_ms as i32,
                allow_replication_factor_change: true,
                topics: vec![alter_partition_reassignments_request::ReassignableTopic {
                    name: name.clone(),
                    partitions: vec![alter_partition_reassignments_request::ReassignablePartition {
                        partition_index: partition,
                        replicas: (!cancel).then(|| replicas.clone()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let (resp, _): (AlterPartitionReassignmentsResponse, _) = client.call(1, &req).await?;
            check(resp.error_code, "reassigning", resp.error_message.as_deref())?;
            let mut t = Table::new(&["TOPIC", "PARTITION", "STATUS"]);
            for r in resp.responses {
                for p in r.partitions {
                    check(p.error_code, &format!("{}-{}", r.name, p.partition_index), p.error_message.as_deref())?;
                    let status = if cancel { "cancelled" } else { "reassigning" };
                    t.row(vec![r.name.clone(), p.partition_index.to_string(), status.into()]);
                }
            }
            t.print(c.output)
        }
        TopicCmd::Reassignments { names } => {
            let req = ListPartitionReassignmentsRequest {
                timeout_ms: c.timeout_ms as i32,
                topics: None,
                ..Default::default()
            };
            let (resp, _): (ListPartitionReassignmentsResponse, _) = client.call(0, &req).await?;
            check(resp.error_code, "listing reassignments", resp.error_message.as_deref())?;
            let ids = |v: &[i32]| v.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(",");
            let mut t = Table::new(&["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"]);
            for r in resp.topics.iter().filter(|r| names.is_empty() || names.contains(&r.name)) {
                for p in &r.partitions {
                    t.row(vec![
                        r.name.clone(),
                        p.partition_index.to_string(),
                        ids(&p.replicas),
                        ids(&p.adding_replicas),
                        ids(&p.removing_replicas),
                    ]);
                }
            }
            t.print(c.output)
        }
        TopicCmd::Delete { names } => {
            let req = DeleteTopicsRequest {
                topics: names
                    .iter()
                    .map(|n| delete_topics_request::DeleteTopicState { name: Some(n.clone()), ..Default::default() })
                    .collect(),
                topic_names: names.clone(),
                timeout_ms: c.timeout_ms as i32,
                ..Default::default()
            };
            let (resp, _): (DeleteTopicsResponse, _) = client.call(6, &req).await?;
            let mut t = Table::new(&["TOPIC", "STATUS"]);
            for r in resp.responses {
                let n = r.name.clone().unwrap_or_else(|| r.topic_id.to_string());
                check(r.error_code, &format!("deleting {n}"), r.error_message.as_deref())?;
                t.row(vec![n, "deleted".into()]);
            }
            t.print(c.output)
        }
    }
}

/// Non-default settings of topics as `k=v,k=v`.
async fn topic_configs(client: &mut Client, names: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let req = DescribeConfigsRequest {
        resources: names
            .iter()
            .map(|n| describe_configs_request::DescribeConfigsResource {
                resource_type: 2,
                resource_name: n.clone(),
                configuration_keys: None,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let (resp, _): (DescribeConfigsResponse, _) = client.call(4, &req).await?;
    let mut out = BTreeMap::new();
    for r in resp.results {
        if r.error_code != 0 {
            continue;
        }
        // Source 1 = topic config (DYNAMIC_TOPIC_CONFIG).
        let set: Vec<String> = r
            .configs
            .iter()
            .filter(|c| c.config_source == 1 || (!c.is_default && c.config_source < 0))
            .map(|c| format!("{}={}", c.name, c.value.as_deref().unwrap_or("")))
            .collect();
        out.insert(r.resource_name, set.join(","));
    }
    Ok(out)
}

/// Committed offsets of `group` (all topics).
async fn committed(client: &mut Client, group: &str) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let req = OffsetFetchRequest {
        group_id: group.to_string(),
        topics: None,
        groups: vec![offset_fetch_request::OffsetFetchRequestGroup {
            group_id: group.to_string(),
            member_id: None,
            member_epoch: -1,
            topics: None,
            ..Default::default()
        }],
        require_stable: false,
        ..Default::default()
    };
    let (resp, v): (OffsetFetchResponse, _) = client.call(9, &req).await?;
    let mut out = BTreeMap::new();
    if v >= 8 {
        for g in resp.groups {
            check(g.error_code, &format!("offsets of group {}", g.group_id), None)?;
            for t in g.topics {
                for p in t.partitions {
                    if p.error_code == 0 && p.committed_offset >= 0 {
                        out.insert((t.name.clone(), p.partition_index), p.committed_offset);
                    }
                }
            }
        }
    } else {
        check(resp.error_code, &format!("offsets of group {group}"), None)?;
        for t in resp.topics {
            for p in t.partitions {
                if p.error_code == 0 && p.committed_offset >= 0 {
                    out.insert((t.name.clone(), p.partition_index), p.committed_offset);
                }
            }
        }
    }
    Ok(out)
}

/// A group member: id, host, client id, assigned partitions.
struct MemberInfo {
    id: String,
    host: String,
    client_id: String,
    assigned: Vec<(String, i32)>,
}

/// Decodes a classic consumer-protocol assignment (version, [topic [partition]], user data).
fn decode_assignment(b: &Bytes) -> Vec<(String, i32)> {
    let mut r = Reader::new(b.clone());
    let mut out = Vec::new();
    let parse = |r: &mut Reader, out: &mut Vec<(String, i32)>| -> Result<(), DecodeError> {
        r.i16()?;
        let n = r.i32()?;
        for _ in 0..n.max(0) {
            let t = r.nullable_string(false)?.unwrap_or_default();
            let m = r.i32()?;
            for _ in 0..m.max(0) {
                out.push((t.clone(), r.i32()?));
            }
        }
        Ok(())
    };
    let _ = parse(&mut r, &mut out);
    out
}

/// A member of a KIP-848 consumer group or a share group, from its describe answer.
fn member_info<'a>(
    id: String,
    host: String,
    client_id: String,
    assignment: impl Iterator<Item = (&'a String, &'a Vec<i32>)>,
) -> MemberInfo {
    let assigned = assignment.flat_map(|(topic, ps)| ps.iter().map(move |p| (topic.clone(), *p))).collect();
    MemberInfo { id, host, client_id, assigned }
}

/// A share group's state and members (ShareGroupDescribe), or `None` if `group` is not a
/// share group or the broker has no share groups.
async fn describe_share_group(client: &mut Client, group: &str) -> anyhow::Result<Option<(String, Vec<MemberInfo>)>> {
    if !client.api_versions().contains_key(&ShareGroupDescribeRequest::API_KEY) {
        return Ok(None);
    }
    let req = ShareGroupDescribeRequest { group_ids: vec![group.to_string()], ..Default::default() };
    let (resp, _): (ShareGroupDescribeResponse, _) = client.call(1, &req).await?;
    let Some(d) = resp.groups.into_iter().next().filter(|d| d.error_code == 0) else { return Ok(None) };
    let members = d
        .members
        .into_iter()
        .map(|m| {
            let tps = m.assignment.topic_partitions.iter().map(|tp| (&tp.topic_name, &tp.partitions));
            member_info(m.member_id, m.client_host, m.client_id, tps)
        })
        .collect();
    Ok(Some((d.group_state, members)))
}

/// A share-partition as its share coordinator last wrote it: the start offset (SPSO),
/// records in flight above it (delivered, not yet acknowledged or archived) and records
/// done above it (acknowledged or archived); the counts are `None` when the share
/// coordinator could not be asked (looking it up needs CLUSTER_ACTION).
struct ShareOffsets {
    start: i64,
    in_flight: Option<i64>,
    done: Option<i64>,
}

/// Connections to the coordinators of `keys` (FindCoordinator, batched): key → client
/// index into the returned list, or the key's error.
async fn coordinators(
    c: &Common,
    client: &mut Client,
    key_type: i8,
    keys: &[String],
) -> anyhow::Result<(Vec<Client>, BTreeMap<String, usize>)> {
    let req = FindCoordinatorRequest { key_type, coordinator_keys: keys.to_vec(), ..Default::default() };
    let (resp, _): (FindCoordinatorResponse, _) = client.call(6, &req).await?;
    let mut clients = Vec::new();
    let mut by_node: BTreeMap<i32, usize> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for co in resp.coordinators {
        check(co.error_code, &format!("finding the coordinator of {}", co.key), co.error_message.as_deref())?;
        let at = match by_node.get(&co.node_id) {
            Some(&i) => i,
            None => {
                let addr = format!("{}:{}", co.host, co.port);
                clients.push(Client::connect_with(&addr, Duration::from_millis(c.timeout_ms), &c.security()?).await?);
                by_node.insert(co.node_id, clients.len() - 1);
                clients.len() - 1
            }
        };
        out.insert(co.key, at);
    }
    Ok((clients, out))
}

/// The share-partitions of `group` with state (DescribeShareGroupOffsets at the group's
/// coordinator), with their in-flight counts (ReadShareGroupState at each share
/// coordinator, when allowed).
async fn share_offsets(
    c: &Common,
    client: &mut Client,
    group: &str,
) -> anyhow::Result<BTreeMap<(String, i32), ShareOffsets>> {
    let mut out = BTreeMap::new();
    if !client.api_versions().contains_key(&DescribeShareGroupOffsetsRequest::API_KEY) {
        return Ok(out);
    }
    let (mut at, _) = coordinators(c, client, 0, &[group.to_string()]).await?;
    let Some(gc) = at.first_mut() else { return Ok(out) };
    let req = DescribeShareGroupOffsetsRequest {
        groups: vec![describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup {
            group_id: group.to_string(),
            topics: None,
            ..Default::default()
        }],
        ..Default::default()
    };
    let (resp, _): (DescribeShareGroupOffsetsResponse, _) = gc.call(0, &req).await?;
    let mut ids: BTreeMap<String, (String, Uuid, i32)> = BTreeMap::new();
    for g in resp.groups {
        check(g.error_code, &format!("describing the offsets of share group {group}"), g.error_message.as_deref())?;
        for t in g.topics {
            for p in t.partitions.into_iter().filter(|p| p.error_code == 0 && p.start_offset >= 0) {
                out.insert(
                    (t.topic_name.clone(), p.partition_index),
                    ShareOffsets { start: p.start_offset, in_flight: None, done: None },
                );
                ids.insert(
                    format!("{group}:{}:{}", t.topic_id, p.partition_index),
                    (t.topic_name.clone(), t.topic_id, p.partition_index),
                );
            }
        }
    }
    let keys: Vec<String> = ids.keys().cloned().collect();
    if keys.is_empty() {
        return Ok(out);
    }
    // The counts are extra: without the right to look share coordinators up, or on a
    // broker without key type 2, the table shows "-".
    let Ok((mut clients, placed)) = coordinators(c, client, 2, &keys).await else { return Ok(out) };
    for (i, sc) in clients.iter_mut().enumerate() {
        let mut topics: Vec<read_share_group_state_request::ReadStateData> = Vec::new();
        for (_, id, p) in ids.iter().filter(|(k, _)| placed.get(*k) == Some(&i)).map(|(_, v)| v) {
            let part =
                read_share_group_state_request::PartitionData { partition: *p, leader_epoch: -1, ..Default::default() };
            match topics.iter_mut().find(|t| t.topic_id == *id) {
                Some(t) => t.partitions.push(part),
                None => topics.push(read_share_group_state_request::ReadStateData {
                    topic_id: *id,
                    partitions: vec![part],
                    ..Default::default()
                }),
            }
        }
        let req = ReadShareGroupStateRequest { group_id: group.to_string(), topics, ..Default::default() };
        let Ok((resp, _)) = sc.call::<_, ReadShareGroupStateResponse>(0, &req).await else { continue };
        for r in resp.results {
            let Some(name) = ids.values().find(|v| v.1 == r.topic_id).map(|v| v.0.clone()) else { continue };
            for p in r.partitions.into_iter().filter(|p| p.error_code == 0 && p.start_offset >= 0) {
                let Some(o) = out.get_mut(&(name.clone(), p.partition)) else { continue };
                let count = |states: &[i8]| -> i64 {
                    p.state_batches
                        .iter()
                        .filter(|b| states.contains(&b.delivery_state))
                        .map(|b| (b.last_offset.min(i64::MAX - 1) - b.first_offset.max(p.start_offset) + 1).max(0))
                        .sum()
                };
                o.start = p.start_offset;
                o.in_flight = Some(count(&[0]));
                o.done = Some(count(&[2, 4]));
            }
        }
    }
    Ok(out)
}

async fn describe_group(client: &mut Client, group: &str) -> anyhow::Result<(String, Vec<MemberInfo>)> {
    let req = DescribeGroupsRequest { groups: vec![group.to_string()], ..Default::default() };
    let (resp, _): (DescribeGroupsResponse, _) = client.call(5, &req).await?;
    let g = resp.groups.into_iter().next().ok_or_else(|| anyhow!("no answer for group {group}"))?;
    // A KIP-848 group is described by ConsumerGroupDescribe: classic DescribeGroups
    // answers it with GROUP_ID_NOT_FOUND (v6+) or, before v6, with protocol type
    // "consumer" (or none) and no members. An empty classic group looks the same; then
    // ConsumerGroupDescribe says GROUP_ID_NOT_FOUND and the classic answer stands.
    let consumer_protocol = g.error_code == 69
        || (g.error_code == 0 && g.members.is_empty() && matches!(g.protocol_type.as_str(), "" | "consumer"));
    if consumer_protocol && client.api_versions().contains_key(&ConsumerGroupDescribeRequest::API_KEY) {
        let req = ConsumerGroupDescribeRequest { group_ids: vec![group.to_string()], ..Default::default() };
        let (resp, _): (ConsumerGroupDescribeResponse, _) = client.call(1, &req).await?;
        if let Some(d) = resp.groups.into_iter().next() {
            if d.error_code == 0 {
                let members = d
                    .members
                    .into_iter()
                    .map(|m| {
                        let tps = m.assignment.topic_partitions.iter().map(|tp| (&tp.topic_name, &tp.partitions));
                        member_info(m.member_id, m.client_host, m.client_id, tps)
                    })
                    .collect();
                return Ok((d.group_state, members));
            }
        }
    }
    if g.error_code == 69 {
        return Ok(("Dead".into(), Vec::new()));
    }
    check(g.error_code, &format!("describing group {group}"), g.error_message.as_deref())?;
    let members = g
        .members
        .iter()
        .map(|m| MemberInfo {
            id: m.member_id.clone(),
            host: m.client_host.clone(),
            client_id: m.client_id.clone(),
            assigned: if g.protocol_type == "consumer" { decode_assignment(&m.member_assignment) } else { Vec::new() },
        })
        .collect();
    Ok((g.group_state, members))
}

/// `strom group ...`
pub async fn group(cmd: GroupCmd, c: &Common) -> anyhow::Result<()> {
    let mut client = connect(c).await?;
    match cmd {
        GroupCmd::List => {
            let (resp, _): (ListGroupsResponse, _) = client.call(5, &ListGroupsRequest::default()).await?;
            check(resp.error_code, "listing groups", None)?;
            let mut groups = resp.groups;
            groups.sort_by(|a, b| a.group_id.cmp(&b.group_id));
            let mut t = Table::new(&["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"]);
            for g in groups {
                let state = if g.group_state.is_empty() { "-".into() } else { g.group_state };
                let ty = if g.group_type.is_empty() { "-".into() } else { g.group_type };
                t.row(vec![
                    g.group_id,
                    state,
                    ty,
                    if g.protocol_type.is_empty() { "-".into() } else { g.protocol_type },
                ]);
            }
            t.print(c.output)
        }
        GroupCmd::Describe { groups } => {
            let mut t = Table::new(&[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "IN-FLIGHT",
                "LAG",
                "CONSUMER-ID",
                "HOST",
                "CLIENT-ID",
            ]);
            for group in &groups {
                // A share group has no committed offsets: its share-partitions' start
                // offsets stand in for them (CURRENT-OFFSET), with the records in flight
                // above them, and the lag counts what is not yet done. Its members share
                // partitions: one row per share-partition and member assigned it.
                // A share group's state outlives its members (and a broker restart, which
                // forgets the group until a member comes back).
                // ShareGroupDescribe goes to the group's coordinator (any broker of a cluster
                // may be the bootstrap one).
                let mut coordinator = match coordinators(c, &mut client, 0, std::slice::from_ref(group)).await {
                    Ok((mut at, _)) if !at.is_empty() => Some(at.swap_remove(0)),
                    _ => None,
                };
                let described = describe_share_group(coordinator.as_mut().unwrap_or(&mut client), group).await?;
                let offsets = match described {
                    Some(_) => share_offsets(c, &mut client, group).await?,
                    None => share_offsets(c, &mut client, group).await.unwrap_or_default(),
                };
                if described.is_some() || !offsets.is_empty() {
                    let members = described.map(|d| d.1).unwrap_or_default();
                    let mut parts: Vec<(String, i32)> = offsets.keys().cloned().collect();
                    parts.extend(members.iter().flat_map(|m| m.assigned.iter().cloned()));
                    parts.sort();
                    parts.dedup();
                    let ends = list_offsets(&mut client, &parts, -1).await.unwrap_or_default();
                    for tp in &parts {
                        let o = offsets.get(tp);
                        let end = ends.get(tp);
                        let lag = match (o, end) {
                            (Some(o), Some(e)) => (e - o.start - o.done.unwrap_or(0)).max(0).to_string(),
                            _ => "-".into(),
                        };
                        let cells = |id: &str, host: &str, cid: &str| {
                            vec![
                                group.clone(),
                                tp.0.clone(),
                                tp.1.to_string(),
                                o.map_or("-".into(), |o| o.start.to_string()),
                                end.map_or("-".into(), |e| e.to_string()),
                                o.and_then(|o| o.in_flight).map_or("-".into(), |n| n.to_string()),
                                lag.clone(),
                                id.to_string(),
                                host.to_string(),
                                cid.to_string(),
                            ]
                        };
                        let holders: Vec<&MemberInfo> = members.iter().filter(|m| m.assigned.contains(tp)).collect();
                        if holders.is_empty() {
                            t.row(cells("-", "-", "-"));
                        }
                        for m in holders {
                            t.row(cells(&m.id, &m.host, &m.client_id));
                        }
                    }
                    continue;
                }
                let gc = coordinator.as_mut().unwrap_or(&mut client);
                let (_state, members) = describe_group(gc, group).await?;
                let offsets = committed(gc, group).await?;
                let mut owner: BTreeMap<(String, i32), &MemberInfo> = BTreeMap::new();
                for m in &members {
                    for tp in &m.assigned {
                        owner.insert(tp.clone(), m);
                    }
                }
                let mut parts: Vec<(String, i32)> = offsets.keys().cloned().collect();
                for tp in owner.keys() {
                    if !offsets.contains_key(tp) {
                        parts.push(tp.clone());
                    }
                }
                parts.sort();
                let ends = list_offsets(&mut client, &parts, -1).await.unwrap_or_default();
                for tp in &parts {
                    let cur = offsets.get(tp);
                    let end = ends.get(tp);
                    let lag = match (cur, end) {
                        (Some(c), Some(e)) => (e - c).max(0).to_string(),
                        _ => "-".into(),
                    };
                    let (id, host, cid) = match owner.get(tp) {
                        Some(m) => (m.id.clone(), m.host.clone(), m.client_id.clone()),
                        None => ("-".into(), "-".into(), "-".into()),
                    };
                    t.row(vec![
                        group.clone(),
                        tp.0.clone(),
                        tp.1.to_string(),
                        cur.map_or("-".into(), |o| o.to_string()),
                        end.map_or("-".into(), |o| o.to_string()),
                        "-".into(),
                        lag,
                        id,
                        host,
                        cid,
                    ]);
                }
                for m in members.iter().filter(|m| m.assigned.is_empty()) {
                    t.row(vec![
                        group.clone(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        "-".into(),
                        m.id.clone(),
                        m.host.clone(),
                        m.client_id.clone(),
                    ]);
                }
            }
            t.print(c.output)
        }
        GroupCmd::ResetOffsets { group, topic, to_earliest, to_latest, to_offset, execute } => {
            let info = topic_infos(&mut client, Some(std::slice::from_ref(&topic))).await?;
            let info = info.into_iter().next().ok_or_else(|| anyhow!("topic {topic} not found"))?;
            let parts: Vec<(String, i32)> = info.partitions.iter().map(|p| (topic.clone(), p.0)).collect();
            let start = list_offsets(&mut client, &parts, -2).await?;
            let end = list_offsets(&mut client, &parts, -1).await?;
            let target: BTreeMap<(String, i32), i64> = parts
                .iter()
                .map(|tp| {
                    let (s, e) = (start[tp], end[tp]);
                    let o = if to_earliest {
                        s
                    } else if to_latest {
                        e
                    } else {
                        to_offset.unwrap_or(e).clamp(s, e)
                    };
                    (tp.clone(), o)
                })
                .collect();
            if !(to_earliest || to_latest || to_offset.is_some()) {
                bail!("give one of --to-earliest, --to-latest, --to-offset N");
            }
            if execute {
                commit(&mut group_client(c, &mut client, &group).await?, &group, &target).await?;
            }
            let mut t = Table::new(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"]);
            for (tp, o) in &target {
                t.row(vec![group.clone(), tp.0.clone(), tp.1.to_string(), o.to_string()]);
            }
            t.print(c.output)?;
            if !execute && c.output == Output::Table {
                eprintln!("(dry run: add --execute to commit these offsets)");
            }
            Ok(())
        }
        GroupCmd::Delete { groups } => {
            let mut t = Table::new(&["GROUP", "STATUS"]);
            for group in groups {
                let req = DeleteGroupsRequest { groups_names: vec![group.clone()], ..Default::default() };
                let (resp, _): (DeleteGroupsResponse, _) =
                    group_client(c, &mut client, &group).await?.call(2, &req).await?;
                for r in resp.results {
                    check(r.error_code, &format!("deleting group {}", r.group_id), None)?;
                    t.row(vec![r.group_id, "deleted".into()]);
                }
            }
            t.print(c.output)
        }
    }
}

/// A connection to `group`'s coordinator (in a cluster, the leader of the group's
/// `__consumer_offsets` partition; the bootstrap broker itself on a single node).
async fn group_client(c: &Common, client: &mut Client, group: &str) -> anyhow::Result<Client> {
    let (mut at, _) = coordinators(c, client, 0, &[group.to_string()]).await?;
    at.pop().with_context(|| format!("no coordinator for group {group}"))
}

/// Commits offsets as a standalone consumer (generation -1, no member id).
async fn commit(client: &mut Client, group: &str, offsets: &BTreeMap<(String, i32), i64>) -> anyhow::Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for ((t, p), o) in offsets {
        by_topic.entry(t).or_default().push((*p, *o));
    }
    let req = OffsetCommitRequest {
        group_id: group.to_string(),
        generation_id_or_member_epoch: -1,
        member_id: String::new(),
        group_instance_id: None,
        retention_time_ms: -1,
        topics: by_topic
            .iter()
            .map(|(t, ps)| offset_commit_request::OffsetCommitRequestTopic {
                name: t.to_string(),
                partitions: ps
                    .iter()
                    .map(|&(p, o)| offset_commit_request::OffsetCommitRequestPartition {
                        partition_index: p,
                        committed_offset: o,
                        committed_leader_epoch: -1,
                        commit_timestamp: -1,
                        committed_metadata: None,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    // v9 is the last version committing by topic name.
    let (resp, _): (OffsetCommitResponse, _) = client.call(9, &req).await?;
    for t in resp.topics {
        for p in t.partitions {
            check(p.error_code, &format!("committing {}-{} for group {group}", t.name, p.partition_index), None)?;
        }
    }
    Ok(())
}

/// `strom cluster ...`
pub async fn cluster(cmd: ClusterCmd, c: &Common) -> anyhow::Result<()> {
    let ClusterCmd::Info = cmd;
    let mut client = connect(c).await?;
    let resp = metadata(&mut client, Some(&[])).await?;
    let all = topic_infos(&mut client, None).await?;
    let partitions: usize = all.iter().map(|t| t.partitions.len()).sum();
    // Every registered broker, fenced ones too (DescribeCluster v2), and what each leads.
    let described: strom_protocol::DescribeClusterResponse = client
        .call(2, &strom_protocol::DescribeClusterRequest { include_fenced_brokers: true, ..Default::default() })
        .await
        .map(|(r, _)| r)
        .unwrap_or_default();
    let mut leads: std::collections::BTreeMap<i32, usize> = std::collections::BTreeMap::new();
    let mut leaderless = 0usize;
    for t in &all {
        for (_, leader, ..) in &t.partitions {
            if *leader >= 0 {
                *leads.entry(*leader).or_default() += 1;
            } else {
                leaderless += 1;
            }
        }
    }
    let brokers: Vec<(i32, String, i32, Option<String>, bool)> = if described.brokers.is_empty() {
        resp.brokers.iter().map(|b| (b.node_id, b.host.clone(), b.port, b.rack.clone(), false)).collect()
    } else {
        described.brokers.iter().map(|b| (b.broker_id, b.host.clone(), b.port, b.rack.clone(), b.is_fenced)).collect()
    };
    let quorum = describe_quorum(&mut client).await.ok();
    match c.output {
        Output::Json => {
            let v = serde_json::json!({
                "cluster_id": resp.cluster_id,
                "controller_id": resp.controller_id,
                "brokers": brokers.iter().map(|(id, host, port, rack, fenced)| serde_json::json!({
                    "node_id": id, "host": host, "port": port, "rack": rack, "fenced": fenced,
                    "leader_partitions": leads.get(id).copied().unwrap_or(0),
                })).collect::<Vec<_>>(),
                "leaderless_partitions": leaderless,
                "quorum": quorum.as_ref().map(|q| serde_json::json!({
                    "leader_id": q.leader_id, "leader_epoch": q.leader_epoch, "high_watermark": q.high_watermark,
                    "voters": q.current_voters.iter().map(|v| serde_json::json!({
                        "node_id": v.replica_id, "log_end_offset": v.log_end_offset,
                        "lag": if v.log_end_offset >= 0 { q.high_watermark - v.log_end_offset } else { -1 },
                    })).collect::<Vec<_>>(),
                })),
                "topics": all.len(),
                "partitions": partitions,
                "api_versions": client.api_versions().iter().map(|(k, (lo, hi))| {
                    (api_name(*k), serde_json::json!([lo, hi]))
                }).collect::<serde_json::Map<_, _>>(),
            });
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Output::Table => {
            println!("Cluster id:  {}", resp.cluster_id.as_deref().unwrap_or("-"));
            println!("Controller:  {}", resp.controller_id);
            println!("Topics:      {}", all.len());
            println!("Partitions:  {partitions} ({leaderless} without a leader)");
            println!();
            let mut t = Table::new(&["NODE", "HOST", "PORT", "RACK", "FENCED", "LEADS"]);
            for (id, host, port, rack, fenced) in &brokers {
                t.row(vec![
                    id.to_string(),
                    host.clone(),
                    port.to_string(),
                    rack.clone().unwrap_or("-".into()),
                    if *fenced { "yes".into() } else { "no".into() },
                    leads.get(id).copied().unwrap_or(0).to_string(),
                ]);
            }
            t.print(Output::Table)?;
            if let Some(q) = &quorum {
                println!();
                println!(
                    "Metadata quorum: leader {}, epoch {}, high watermark {}",
                    q.leader_id, q.leader_epoch, q.high_watermark
                );
                let mut t = Table::new(&["VOTER", "LOG-END", "LAG"]);
                for v in &q.current_voters {
                    let (end, lag) = if v.log_end_offset >= 0 {
                        (v.log_end_offset.to_string(), (q.high_watermark - v.log_end_offset).to_string())
                    } else {
                        ("?".into(), "?".into())
                    };
                    t.row(vec![v.replica_id.to_string(), end, lag]);
                }
                t.print(Output::Table)?;
            }
            println!();
            let mut keys: Vec<_> = client.api_versions().iter().map(|(k, v)| (*k, *v)).collect();
            keys.sort();
            let mut t = Table::new(&["API", "KEY", "MIN", "MAX"]);
            for (k, (lo, hi)) in keys {
                t.row(vec![api_name(k), k.to_string(), lo.to_string(), hi.to_string()]);
            }
            t.print(Output::Table)?;
        }
    }
    Ok(())
}

/// The metadata quorum's partition as DescribeQuorum reports it.
async fn describe_quorum(
    client: &mut Client,
) -> anyhow::Result<strom_protocol::describe_quorum_response::PartitionData> {
    use strom_protocol::describe_quorum_request::{PartitionData, TopicData};
    let req = strom_protocol::DescribeQuorumRequest {
        topics: vec![TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![PartitionData { partition_index: 0, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (resp, _): (strom_protocol::DescribeQuorumResponse, _) = client.call(2, &req).await?;
    resp.topics
        .into_iter()
        .next()
        .and_then(|t| t.partitions.into_iter().next())
        .context("DescribeQuorum answered no partition")
}

fn api_name(key: i16) -> String {
    api_schema(key).map_or_else(|| format!("api-{key}"), |s| s.name.to_string())
}

/// `strom health`: ApiVersions and Metadata answered. Exit status 0 when healthy.
pub async fn health(c: &Common) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut client = connect(c).await?;
    let resp = metadata(&mut client, Some(&[])).await?;
    if resp.brokers.is_empty() {
        bail!("the broker reports no brokers");
    }
    let ms = started.elapsed().as_millis();
    match c.output {
        Output::Json => println!(
            "{}",
            serde_json::json!({"status": "ok", "broker": client.addr, "cluster_id": resp.cluster_id, "latency_ms": ms as u64})
        ),
        Output::Table => println!("ok: {} answered in {ms} ms", client.addr),
    }
    Ok(())
}

fn compression(name: &str) -> anyhow::Result<records::Compression> {
    Ok(match name {
        "none" => records::Compression::None,
        "gzip" => records::Compression::Gzip,
        "snappy" => records::Compression::Snappy,
        "lz4" => records::Compression::Lz4,
        "zstd" => records::Compression::Zstd,
        other => bail!("unknown compression {other:?}"),
    })
}

/// A progress line on stderr at most once a second, only when stderr is a terminal.
struct Progress {
    started: Instant,
    last: Instant,
    tty: bool,
}

impl Progress {
    fn new() -> Progress {
        let now = Instant::now();
        Progress { started: now, last: now, tty: std::io::IsTerminal::is_terminal(&std::io::stderr()) }
    }

    fn tick(&mut self, verb: &str, records: u64, bytes: u64) {
        if self.tty && self.last.elapsed() >= Duration::from_secs(1) {
            self.last = Instant::now();
            eprint!("\r{}", self.line(verb, records, bytes));
        }
    }

    fn line(&self, verb: &str, records: u64, bytes: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{verb} {records} records ({:.1} KiB) in {secs:.1} s: {:.0} records/s, {:.1} KiB/s",
            bytes as f64 / 1024.0,
            records as f64 / secs,
            bytes as f64 / 1024.0 / secs
        )
    }

    fn done(&self, verb: &str, records: u64, bytes: u64) {
        if self.tty {
            eprint!("\r");
        }
        eprintln!("{}", self.line(verb, records, bytes));
    }
}

/// `strom produce`: records from stdin, one per line.
pub async fn produce(a: ProduceArgs, c: &Common) -> anyhow::Result<()> {
    let mut client = connect(c).await?;
    let info = topic_infos(&mut client, Some(std::slice::from_ref(&a.topic))).await?;
    let n_partitions = info.first().map_or(0, |i| i.partitions.len() as i32);
    if n_partitions == 0 {
        bail!("topic {} not found", a.topic);
    }
    let mut leaders = Leaders::new(&mut client, &a.topic).await?;
    let codec = compression(&a.compression)?;
    let fixed_headers: Vec<(String, Option<Bytes>)> = a
        .headers
        .iter()
        .map(|h| key_value(h, "--header").map(|(k, v)| (k, Some(Bytes::from(v)))))
        .collect::<anyhow::Result<_>>()?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut progress = Progress::new();
    let (mut total, mut bytes) = (0u64, 0u64);
    let mut round_robin = 0i32;
    loop {
        // Read one batch worth of lines, grouped by partition.
        let mut pending: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        let mut n = 0;
        let mut eof = false;
        while n < a.batch_size.max(1) {
            let Some(line) = lines.next() else {
                eof = true;
                break;
            };
            let line = line.context("reading stdin")?;
            let (key, value, mut headers) = parse_input(&line, &a)?;
            headers.extend(fixed_headers.iter().cloned());
            let p = match (a.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, n_partitions),
                (None, None) => round_robin % n_partitions,
            };
            bytes += (key.as_ref().map_or(0, |k| k.len()) + value.as_ref().map_or(0, |v| v.len())) as u64;
            let list = pending.entry(p).or_default();
            list.push(Record { offset_delta: list.len() as i32, timestamp_delta: 0, key, value, headers });
            n += 1;
        }
        round_robin = round_robin.wrapping_add(1);
        if n > 0 {
            send_to_leaders(&mut client, &mut leaders, &a, codec, pending).await?;
            total += n as u64;
            progress.tick("produced", total, bytes);
        }
        if eof {
            break;
        }
    }
    progress.done("produced", total, bytes);
    Ok(())
}

type Parsed = (Option<Bytes>, Option<Bytes>, Vec<(String, Option<Bytes>)>);

fn parse_input(line: &str, a: &ProduceArgs) -> anyhow::Result<Parsed> {
    match a.format {
        Format::Text => Ok(match &a.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_string())), Some(Bytes::from(v.to_string())), Vec::new()),
                None => (None, Some(Bytes::from(line.to_string())), Vec::new()),
            },
            None => (None, Some(Bytes::from(line.to_string())), Vec::new()),
        }),
        Format::Json => {
            let v: serde_json::Value = serde_json::from_str(line).with_context(|| format!("input line {line:?}"))?;
            let as_bytes = |v: Option<&serde_json::Value>| match v {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(Bytes::from(s.clone())),
                Some(other) => Some(Bytes::from(other.to_string())),
            };
            let headers = match v.get("headers") {
                Some(serde_json::Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), as_bytes(Some(v)))).collect(),
                _ => Vec::new(),
            };
            Ok((as_bytes(v.get("key")), as_bytes(v.get("value")), headers))
        }
    }
}

/// Sends each partition's records to its leader; a partition whose leader moved meanwhile
/// (NOT_LEADER_OR_FOLLOWER) is sent again to the new one, a few times at most.
async fn send_to_leaders(
    bootstrap: &mut Client,
    leaders: &mut Leaders,
    a: &ProduceArgs,
    codec: records::Compression,
    mut pending: BTreeMap<i32, Vec<Record>>,
) -> anyhow::Result<()> {
    for attempt in 0..5 {
        let mut moved = BTreeMap::new();
        for (leader, part) in leaders.split(std::mem::take(&mut pending)) {
            if leader < 0 {
                // No leader known yet (a new topic, an election): ask again below.
                moved.extend(part);
                continue;
            }
            let client = leaders.client(bootstrap, leader).await?;
            for p in send_batches(client, a, codec, part.clone()).await? {
                if let Some(recs) = part.get(&p) {
                    moved.insert(p, recs.clone());
                }
            }
        }
        if moved.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        leaders.refresh(bootstrap).await?;
        pending = moved;
    }
    let parts: Vec<String> = pending.keys().map(|p| format!("{}-{p}", a.topic)).collect();
    bail!("producing to {}: NOT_LEADER_OR_FOLLOWER after 5 attempts", parts.join(", "))
}

/// Sends one Produce request of `pending` to `client`; the partitions it does not lead
/// (NOT_LEADER_OR_FOLLOWER), any other error being fatal.
async fn send_batches(
    client: &mut Client,
    a: &ProduceArgs,
    codec: records::Compression,
    pending: BTreeMap<i32, Vec<Record>>,
) -> anyhow::Result<Vec<i32>> {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let partition_data = pending
        .into_iter()
        .map(|(p, recs)| {
            let mut b = BatchBuilder::new(now).compression(codec);
            for r in &recs {
                b.push(r);
            }
            produce_request::PartitionProduceData { index: p, records: Some(b.build().freeze()), ..Default::default() }
        })
        .collect();
    let req = ProduceRequest {
        transactional_id: None,
        acks: a.acks,
        timeout_ms: 30_000,
        topic_data: vec![produce_request::TopicProduceData {
            name: a.topic.clone(),
            partition_data,
            ..Default::default()
        }],
        ..Default::default()
    };
    if a.acks == 0 {
        // No response comes back: write the request and move on.
        bail!("--acks 0 is not supported by the CLI (it waits for every response)");
    }
    // v12 is the last version addressing topics by name.
    let (resp, _): (ProduceResponse, _) = client.call(12, &req).await?;
    let mut moved = Vec::new();
    for t in resp.responses {
        for p in t.partition_responses {
            if p.error_code == ErrorCode::NotLeaderOrFollower.code() {
                moved.push(p.index);
                continue;
            }
            check(p.error_code, &format!("producing to {}-{}", t.name, p.index), p.error_message.as_deref())?;
        }
    }
    Ok(moved)
}

/// `strom consume`: prints records to stdout.
pub async fn consume(a: ConsumeArgs, c: &Common) -> anyhow::Result<()> {
    let mut client = connect(c).await?;
    let info = topic_infos(&mut client, Some(std::slice::from_ref(&a.topic))).await?;
    let info = info.into_iter().next().ok_or_else(|| anyhow!("topic {} not found", a.topic))?;
    let parts: Vec<(String, i32)> = info
        .partitions
        .iter()
        .map(|p| (a.topic.clone(), p.0))
        .filter(|(_, p)| a.partition.is_none_or(|want| want == *p))
        .collect();
    if parts.is_empty() {
        bail!("topic {} has no partition {:?}", a.topic, a.partition);
    }
    let earliest = list_offsets(&mut client, &parts, -2).await?;
    let latest = list_offsets(&mut client, &parts, -1).await?;
    // Offsets are the group coordinator's business, records the partition leaders'.
    let mut coordinator = match &a.group {
        Some(g) => Some(group_client(c, &mut client, g).await?),
        None => None,
    };
    let group_offsets = match (&a.group, coordinator.as_mut()) {
        (Some(g), Some(gc)) => committed(gc, g).await?,
        _ => BTreeMap::new(),
    };
    let mut leaders = Leaders::new(&mut client, &a.topic).await?;
    let mut position: BTreeMap<(String, i32), i64> = parts
        .iter()
        .map(|tp| {
            let o = if let Some(o) = a.offset {
                o
            } else if let Some(o) = group_offsets.get(tp) {
                *o
            } else if a.from_beginning {
                earliest[tp]
            } else {
                latest[tp]
            };
            (tp.clone(), o)
        })
        .collect();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut progress = Progress::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut last_record = Instant::now();
    let max = a.max_messages.unwrap_or(u64::MAX);
    'outer: while count < max {
        if let Some(idle) = a.idle_timeout_ms {
            if last_record.elapsed() >= Duration::from_millis(idle) {
                break;
            }
        }
        // One fetch per leader; together they wait about as long as one would.
        let by_leader = leaders.split(position.iter().map(|((_, p), o)| (*p, *o)));
        let wait = 500 / by_leader.len().max(1) as i32;
        let mut moved = false;
        for (leader, parts) in by_leader {
            if leader < 0 {
                moved = true;
                continue;
            }
            let req = FetchRequest {
                replica_id: -1,
                max_wait_ms: wait,
                min_bytes: 1,
                max_bytes: 16 * 1024 * 1024,
                isolation_level: 0,
                session_id: 0,
                session_epoch: -1,
                topics: vec![fetch_request::FetchTopic {
                    topic: a.topic.clone(),
                    topic_id: info.id,
                    partitions: parts
                        .iter()
                        .map(|(p, o)| fetch_request::FetchPartition {
                            partition: *p,
                            current_leader_epoch: -1,
                            fetch_offset: *o,
                            last_fetched_epoch: -1,
                            log_start_offset: -1,
                            partition_max_bytes: 1024 * 1024,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            // v12 is the last version addressing topics by name.
            let (resp, _): (FetchResponse, _) = leaders.client(&mut client, leader).await?.call(12, &req).await?;
            check(resp.error_code, "fetch", None)?;
            for t in resp.responses {
                for p in t.partitions {
                    let tp = (a.topic.clone(), p.partition_index);
                    if p.error_code == ErrorCode::NotLeaderOrFollower.code() {
                        moved = true;
                        continue;
                    }
                    if p.error_code == 1 {
                        // OFFSET_OUT_OF_RANGE: restart at the log start.
                        let fresh = list_offsets(&mut client, std::slice::from_ref(&tp), -2).await?;
                        position.insert(tp.clone(), fresh[&tp]);
                        continue;
                    }
                    check(p.error_code, &format!("fetching {}-{}", a.topic, p.partition_index), None)?;
                    let Some(data) = p.records else { continue };
                    for range in records::split_batches(&data) {
                        let Ok(range) = range else { break };
                        let batch = data.slice(range);
                        let header = BatchHeader::parse(&batch).map_err(|e| anyhow!("batch: {e}"))?;
                        let Some(pos) = position.get_mut(&tp) else { break };
                        if header.is_control() {
                            *pos = (*pos).max(header.last_offset() + 1);
                            continue;
                        }
                        let recs = records::decode_records_bounded(&batch, 256 * 1024 * 1024)
                            .map_err(|e| anyhow!("decoding batch at {}: {e}", header.base_offset))?;
                        for r in recs {
                            let offset = header.base_offset + i64::from(r.offset_delta);
                            if offset < *pos {
                                continue;
                            }
                            *pos = offset + 1;
                            let ts = header.base_timestamp + r.timestamp_delta;
                            bytes += (r.key.as_ref().map_or(0, |k| k.len()) + r.value.as_ref().map_or(0, |v| v.len()))
                                as u64;
                            print_record(&mut out, &a, p.partition_index, offset, ts, &r)?;
                            count += 1;
                            last_record = Instant::now();
                            if count >= max {
                                break 'outer;
                            }
                        }
                        *pos = (*pos).max(header.last_offset() + 1);
                    }
                }
            }
        }
        if moved {
            tokio::time::sleep(Duration::from_millis(100)).await;
            leaders.refresh(&mut client).await?;
        }
        out.flush()?;
        progress.tick("consumed", count, bytes);
        if let (Some(g), Some(gc)) = (&a.group, coordinator.as_mut()) {
            commit(gc, g, &position).await?;
        }
    }
    out.flush()?;
    if let (Some(g), Some(gc)) = (&a.group, coordinator.as_mut()) {
        commit(gc, g, &position).await?;
    }
    if c.output == Output::Table {
        progress.done("consumed", count, bytes);
    }
    Ok(())
}

fn lossy(b: &Option<Bytes>) -> String {
    b.as_ref().map_or_else(|| "null".to_string(), |b| String::from_utf8_lossy(b).into_owned())
}

fn print_record(
    out: &mut impl Write,
    a: &ConsumeArgs,
    partition: i32,
    offset: i64,
    timestamp: i64,
    r: &Record,
) -> anyhow::Result<()> {
    match a.format {
        Format::Json => {
            let headers: serde_json::Map<String, serde_json::Value> = r
                .headers
                .iter()
                .map(|(k, v)| {
                    (k.clone(), v.as_ref().map_or(serde_json::Value::Null, |v| String::from_utf8_lossy(v).into()))
                })
                .collect();
            let v = serde_json::json!({
                "topic": a.topic,
                "partition": partition,
                "offset": offset,
                "timestamp": timestamp,
                "key": r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
                "value": r.value.as_ref().map(|v| String::from_utf8_lossy(v).into_owned()),
                "headers": headers,
            });
            writeln!(out, "{v}")?;
        }
        Format::Text => {
            let mut fields = Vec::new();
            if a.print_offset {
                fields.push(format!("{partition}:{offset}"));
            }
            if a.print_headers {
                let h: Vec<String> = r.headers.iter().map(|(k, v)| format!("{k}:{}", lossy(v))).collect();
                fields.push(if h.is_empty() { "NO_HEADERS".into() } else { h.join(",") });
            }
            if a.print_key {
                fields.push(lossy(&r.key));
            }
            fields.push(lossy(&r.value));
            writeln!(out, "{}", fields.join(&a.separator))?;
        }
    }
    Ok(())
}
