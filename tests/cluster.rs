//! A cluster of three `strom` processes on loopback (issue 13): the metadata quorum,
//! brokers that register and are fenced, partitions spread over the brokers and served by
//! their leaders, group coordinators on the leader of the group's offsets partition,
//! failover of the controller and a full restart after `kill -9`.
//!
//! Real clients: `rskafka` produces and consumes (it routes by the leaders Metadata
//! reports); `strom-client` sends the raw requests no client library would (a produce to
//! the wrong broker, DescribeQuorum). The Python clients, kcat and kafkajs run against the
//! same cluster in `scripts/cluster_test.py`.
//!
//! To see why a test failed: `CLUSTER_TEST_LOGS=/some/dir` writes each node's log there
//! when a test panics; `CLUSTER_TEST_LOG_LEVEL` sets the nodes' `STROM_LOG` (default info).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rskafka::client::partition::{Compression, OffsetAt, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use strom_client::Client;
use strom_protocol::*;

/// Settings that make fencing quick enough for a test (Kafka's defaults are 9 s / 2 s).
const SESSION_MS: u64 = 5000;

/// One cluster at a time: each test runs three to six broker processes, and several at
/// once on two cores starve their heartbeats (a busy machine, not a fault under test).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Node {
    id: i32,
    dir: PathBuf,
    port: u16,
    ctrl_port: u16,
    roles: String,
    child: Option<Child>,
    log: Arc<Mutex<Vec<String>>>,
}

struct Cluster {
    _tmp: tempfile::TempDir,
    nodes: Vec<Node>,
    voters: String,
    /// `--override`s every node gets besides the common ones.
    extra: Vec<String>,
    /// The client (and inter-broker) listener's security protocol.
    scheme: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(dir) = std::env::var("CLUSTER_TEST_LOGS") {
                for n in &self.nodes {
                    let lines = n.log.lock().map(|l| l.join("\n")).unwrap_or_default();
                    let _ = std::fs::write(format!("{dir}/node-{}.log", n.id), lines);
                }
            }
        }
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Ports the OS hands out now (released at once: a small race with other processes).
fn free_ports(n: usize) -> Vec<u16> {
    let ls: Vec<_> = (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    ls.iter().map(|l| l.local_addr().expect("addr").port()).collect()
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        Cluster::start_with(&vec!["broker,controller"; n])
    }

    /// Nodes 1..=n with the given `process.roles`; the controllers are the voters.
    fn start_with(roles: &[&str]) -> Cluster {
        Cluster::start_configured(roles, &[])
    }

    /// [`Cluster::start_with`], every node also given the `extra` overrides.
    fn start_configured(roles: &[&str], extra: &[&str]) -> Cluster {
        let n = roles.len();
        let tmp = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(2 * n);
        let voters = (0..n)
            .filter(|&i| roles[i].contains("controller"))
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[2 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        let nodes = (0..n)
            .map(|i| Node {
                id: i as i32 + 1,
                dir: tmp.path().join(format!("node{}", i + 1)),
                port: ports[2 * i],
                ctrl_port: ports[2 * i + 1],
                roles: roles[i].to_string(),
                child: None,
                log: Arc::default(),
            })
            .collect();
        let mut c = Cluster {
            _tmp: tmp,
            nodes,
            voters,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            scheme: "PLAINTEXT".into(),
        };
        if let Some(scheme) = extra.iter().find_map(|e| e.strip_prefix("test.scheme=")) {
            c.scheme = scheme.to_string();
            c.extra.retain(|e| !e.starts_with("test.scheme="));
        }
        // All at once: the first ones wait for a quorum, as Kafka brokers wait for theirs.
        for i in 0..n {
            c.spawn(i);
        }
        for i in 0..n {
            c.await_serving(i);
        }
        c
    }

    /// Adds a broker-only node (the voters stay as they are) and starts it; its index.
    fn add_broker(&mut self) -> usize {
        let ports = free_ports(2);
        let i = self.nodes.len();
        self.nodes.push(Node {
            id: i as i32 + 1,
            dir: self._tmp.path().join(format!("node{}", i + 1)),
            port: ports[0],
            ctrl_port: ports[1],
            roles: "broker".into(),
            child: None,
            log: Arc::default(),
        });
        self.spawn(i);
        i
    }

    fn spawn(&mut self, i: usize) {
        let voters = self.voters.clone();
        let extra = self.extra.clone();
        let scheme = self.scheme.clone();
        let node = &mut self.nodes[i];
        node.log.lock().expect("log").clear();
        let mut listeners = Vec::new();
        if node.roles.contains("broker") {
            listeners.push(format!("{scheme}://127.0.0.1:{}", node.port));
        }
        if node.roles.contains("controller") {
            listeners.push(format!("CONTROLLER://127.0.0.1:{}", node.ctrl_port));
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .arg("serve")
            .args(["--node-id", &node.id.to_string()])
            .arg("--log-dirs")
            .arg(&node.dir)
            .args(["--listeners", &listeners.join(",")])
            .args(["--override", &format!("process.roles={}", node.roles)])
            .args(["--override", "controller.listener.names=CONTROLLER"])
            .args(["--override", &format!("controller.quorum.voters={voters}")])
            .args(["--override", "strom.http.listener="])
            .args(["--override", "strom.schema.registry.listener="])
            .args(["--override", &format!("broker.session.timeout.ms={SESSION_MS}")])
            .args(["--override", "broker.heartbeat.interval.ms=300"])
            .args(["--override", "offsets.topic.num.partitions=12"])
            .args(extra.iter().flat_map(|e| ["--override".to_string(), e.clone()]))
            .env("STROM_LOG", std::env::var("CLUSTER_TEST_LOG_LEVEL").unwrap_or_else(|_| "info".into()))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn strom");
        let stderr = child.stderr.take().expect("stderr");
        let log = node.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().expect("log").push(line);
            }
        });
        node.child = Some(child);
    }

    /// Waits (up to 60 s) for node `i`'s "strom is serving" line.
    fn await_serving(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.nodes[i].log.lock().expect("log").iter().any(|l| l.contains("strom is serving")) {
                return;
            }
            if let Some(Ok(Some(status))) = self.nodes[i].child.as_mut().map(|c| c.try_wait()) {
                panic!("node {} exited with {status}: {:#?}", i + 1, self.nodes[i].log.lock().expect("log"));
            }
            assert!(Instant::now() < deadline, "node {} not serving after 60 s", i + 1);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            c.kill().expect("kill -9");
            c.wait().expect("wait");
        }
    }

    fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.nodes[i].port)
    }
}

async fn client(addr: &str) -> Client {
    Client::connect(addr, Duration::from_secs(10)).await.expect("connect")
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn metadata(addr: &str) -> Option<MetadataResponse> {
    let mut c = Client::connect(addr, Duration::from_secs(2)).await.ok()?;
    c.call::<_, MetadataResponse>(12, &MetadataRequest { topics: None, ..Default::default() }).await.ok().map(|r| r.0)
}

/// (broker ids, leader of every partition by topic name) as one broker reports them.
fn view(m: &MetadataResponse) -> (Vec<i32>, Vec<(String, i32, i32)>) {
    let mut brokers: Vec<i32> = m.brokers.iter().map(|b| b.node_id).collect();
    brokers.sort();
    let mut leaders: Vec<(String, i32, i32)> = m
        .topics
        .iter()
        .flat_map(|t| {
            let name = t.name.clone().unwrap_or_default();
            t.partitions.iter().map(move |p| (name.clone(), p.partition_index, p.leader_id))
        })
        .collect();
    leaders.sort();
    (brokers, leaders)
}

async fn create_topic(addr: &str, name: &str, partitions: i32) -> i16 {
    let mut c = match Client::connect(addr, Duration::from_secs(10)).await {
        Ok(c) => c,
        Err(e) => {
            println!("CreateTopics {name} at {addr}: {e:#}");
            return -1;
        }
    };
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: 1,
            configs: vec![create_topics_request::CreatableTopicConfig {
                name: "retention.ms".into(),
                value: Some("123456789".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    match c.call::<_, CreateTopicsResponse>(7, &req).await {
        Ok((r, _)) => r.topics.first().map_or(-1, |t| {
            if t.error_code != 0 {
                println!("CreateTopics {name} at {addr}: {} {:?}", t.error_code, t.error_message);
            }
            t.error_code
        }),
        Err(e) => {
            println!("CreateTopics {name} at {addr}: {e:#}");
            -1
        }
    }
}

async fn quorum(addr: &str) -> Option<describe_quorum_response::PartitionData> {
    let mut c = Client::connect(addr, Duration::from_secs(2)).await.ok()?;
    let req = DescribeQuorumRequest {
        topics: vec![describe_quorum_request::TopicData {
            topic_name: "__cluster_metadata".into(),
            partitions: vec![describe_quorum_request::PartitionData { partition_index: 0, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (r, _): (DescribeQuorumResponse, _) = c.call(2, &req).await.ok()?;
    r.topics.into_iter().next()?.partitions.into_iter().next()
}

async fn fenced(addr: &str) -> Option<Vec<(i32, bool)>> {
    let mut c = Client::connect(addr, Duration::from_secs(2)).await.ok()?;
    let req = DescribeClusterRequest { include_fenced_brokers: true, endpoint_type: 1, ..Default::default() };
    let (r, _): (DescribeClusterResponse, _) = c.call(2, &req).await.ok()?;
    Some(r.brokers.iter().map(|b| (b.broker_id, b.is_fenced)).collect())
}

async fn produce_and_count(bootstrap: &str, topic: &str, partition: i32, n: usize) -> usize {
    let c = ClientBuilder::new(vec![bootstrap.to_string()]).build().await.expect("rskafka");
    let pc = c.partition_client(topic, partition, UnknownTopicHandling::Retry).await.expect("partition client");
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(format!("p{partition}-{i}").into_bytes()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        })
        .collect();
    pc.produce(records, Compression::NoCompression).await.expect("produce");
    let end = pc.get_offset(OffsetAt::Latest).await.expect("latest");
    end as usize
}

async fn consume_all(bootstrap: &str, topic: &str, partition: i32) -> Vec<String> {
    let c = ClientBuilder::new(vec![bootstrap.to_string()]).build().await.expect("rskafka");
    let pc = c.partition_client(topic, partition, UnknownTopicHandling::Retry).await.expect("partition client");
    let end = pc.get_offset(OffsetAt::Latest).await.expect("latest");
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < end {
        let (records, _) = pc.fetch_records(offset, 1..1_000_000, 1_000).await.expect("fetch");
        for r in records {
            offset = r.offset + 1;
            out.push(String::from_utf8(r.record.value.unwrap_or_default()).expect("utf8"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_brokers_agree_spread_partitions_and_serve_them_from_their_leaders() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::start(3);
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    // Every broker reports the same three brokers and the same leaders.
    let first = eventually(Duration::from_secs(30), "three brokers everywhere", || async {
        let views: Vec<_> = futures_views(&addrs).await?;
        (views.iter().all(|v| v == &views[0]) && views[0].0 == vec![1, 2, 3]).then(|| views[0].clone())
    })
    .await;
    assert!(first.1.iter().any(|(t, ..)| t == "__consumer_offsets"));

    // A topic of six partitions, created through broker 2, is spread over all three.
    assert_eq!(create_topic(&addrs[1], "six", 6).await, 0);
    let leaders = eventually(Duration::from_secs(10), "six everywhere", || async {
        let views = futures_views(&addrs).await?;
        let six: Vec<i32> = views[0].1.iter().filter(|(t, ..)| t == "six").map(|(_, _, l)| *l).collect();
        (six.len() == 6 && views.iter().all(|v| v == &views[0])).then_some(six)
    })
    .await;
    for b in 1..=3 {
        assert_eq!(leaders.iter().filter(|&&l| l == b).count(), 2, "two partitions each: {leaders:?}");
    }

    // rskafka produces through broker 3 and consumes through broker 1; each partition is
    // served by its leader.
    for p in 0..6 {
        assert_eq!(produce_and_count(&addrs[2], "six", p, 25).await, 25);
    }
    for p in 0..6 {
        let got = consume_all(&addrs[0], "six", p).await;
        assert_eq!(got.len(), 25);
        assert!(got.iter().all(|v| v.starts_with(&format!("p{p}-"))));
    }

    // A broker that does not lead a partition says so.
    let (p, leader) = leaders.iter().enumerate().map(|(p, l)| (p as i32, *l)).next().expect("a partition");
    let other = if leader == 1 { 2 } else { 1 };
    let mut raw = client(&addrs[other as usize - 1]).await;
    let req = ListOffsetsRequest {
        replica_id: -1,
        topics: vec![list_offsets_request::ListOffsetsTopic {
            name: "six".into(),
            partitions: vec![list_offsets_request::ListOffsetsPartition {
                partition_index: p,
                timestamp: -1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (r, _): (ListOffsetsResponse, _) = raw.call(7, &req).await.expect("list offsets");
    assert_eq!(r.topics[0].partitions[0].error_code, ErrorCode::NotLeaderOrFollower.code());

    // A group whose coordinator is not the bootstrap broker: FindCoordinator names the
    // leader of its offsets partition, other brokers refuse its commits, it commits there
    // and the offset reads back.
    let offsets_leaders: Vec<i32> =
        first.1.iter().filter(|(t, ..)| t == "__consumer_offsets").map(|(_, _, l)| *l).collect();
    let group = (0..1000)
        .map(|i| format!("g{i}"))
        .find(|g| offsets_leaders[strom::coordinator::group::log::partition_for(g, 12) as usize] != 1)
        .expect("a group coordinated elsewhere");
    let want = offsets_leaders[strom::coordinator::group::log::partition_for(&group, 12) as usize];
    let mut b1 = client(&addrs[0]).await;
    let (fc, _): (FindCoordinatorResponse, _) = b1
        .call(6, &FindCoordinatorRequest { key_type: 0, coordinator_keys: vec![group.clone()], ..Default::default() })
        .await
        .expect("find coordinator");
    assert_eq!(fc.coordinators[0].node_id, want);
    assert_eq!(commit_standalone(&addrs[0], &group, "six", 7).await, ErrorCode::NotCoordinator.code());
    assert_eq!(commit_standalone(&addrs[want as usize - 1], &group, "six", 7).await, 0);
    assert_eq!(committed_in(&addrs[want as usize - 1], &group, "six").await, Some(7));
}

async fn futures_views(addrs: &[String]) -> Option<Vec<(Vec<i32>, Vec<(String, i32, i32)>)>> {
    let mut out = Vec::new();
    for a in addrs {
        out.push(view(&metadata(a).await?));
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_fails_over_and_silent_brokers_are_fenced() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3);
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    assert_eq!(create_topic(&addrs[0], "spread", 3).await, 0);
    let leader = eventually(Duration::from_secs(10), "a quorum leader", || async {
        quorum(&addrs[0]).await.map(|q| q.leader_id).filter(|&l| l > 0)
    })
    .await;
    let li = leader as usize - 1;
    let survivor = (li + 1) % 3;

    // kill -9 the active controller: a new one is elected and topics can be created again.
    let killed = Instant::now();
    c.kill9(li);
    let mut n = 0;
    eventually(Duration::from_secs(20), "topic creation after controller failover", || {
        n += 1;
        let (a, name) = (addrs[survivor].clone(), format!("after-failover-{n}"));
        async move { (create_topic(&a, &name, 1).await == 0).then_some(()) }
    })
    .await;
    println!("controller failover: topic creation succeeded {:?} after kill -9 of the leader", killed.elapsed());
    let new_leader = quorum(&addrs[survivor]).await.expect("quorum").leader_id;
    assert!(new_leader > 0 && new_leader != leader);
    // Within the session timeout the dead broker is fenced and leads nothing.
    let fenced_list = eventually(Duration::from_millis(3 * SESSION_MS), "fencing", || async {
        fenced(&addrs[survivor]).await.filter(|b| b.contains(&(leader, true)))
    })
    .await;
    assert_eq!(fenced_list.iter().filter(|(_, f)| !*f).count(), 2);
    let m = metadata(&addrs[survivor]).await.expect("metadata");
    for t in &m.topics {
        for p in &t.partitions {
            assert_ne!(p.leader_id, leader, "{:?} {p:?}", t.name);
            if p.leader_id < 0 {
                assert_eq!(p.error_code, ErrorCode::LeaderNotAvailable.code());
            }
        }
    }
    // The others keep serving their partitions.
    let spread = m.topics.iter().find(|t| t.name.as_deref() == Some("spread")).expect("spread");
    for p in spread.partitions.iter().filter(|p| p.leader_id > 0) {
        assert_eq!(produce_and_count(&addrs[survivor], "spread", p.partition_index, 5).await, 5);
    }

    // Restarted, it catches up from the log, registers again, is unfenced and leads its
    // partitions again.
    let restarted = Instant::now();
    c.spawn(li);
    c.await_serving(li);
    eventually(Duration::from_secs(20), "rejoined", || async {
        let q = quorum(&addrs[li]).await?;
        let b = fenced(&addrs[li]).await?;
        let all_in = b.len() == 3 && b.iter().all(|(_, f)| !f);
        let m = metadata(&addrs[li]).await?;
        let led = m.topics.iter().flat_map(|t| &t.partitions).all(|p| p.leader_id > 0);
        (all_in && led && q.high_watermark > 0).then_some(())
    })
    .await;
    println!("a restarted broker was serving every partition it leads {:?} after it started", restarted.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_and_committed_offsets_survive_kill9_of_the_whole_cluster() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3);
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    assert_eq!(create_topic(&addrs[2], "six", 6).await, 0);
    let before = eventually(Duration::from_secs(10), "six everywhere", || async {
        let m = metadata(&addrs[0]).await?;
        let t = m.topics.iter().find(|t| t.name.as_deref() == Some("six"))?.clone();
        (t.partitions.len() == 6).then_some(t.topic_id)
    })
    .await;
    for p in 0..6 {
        produce_and_count(&addrs[0], "six", p, 10).await;
    }
    let group = "survivor";
    let coordinator = eventually(Duration::from_secs(10), "coordinator", || async {
        let mut cl = Client::connect(&addrs[0], Duration::from_secs(2)).await.ok()?;
        let (fc, _): (FindCoordinatorResponse, _) = cl
            .call(6, &FindCoordinatorRequest { coordinator_keys: vec![group.into()], ..Default::default() })
            .await
            .ok()?;
        let id = fc.coordinators.first()?.node_id;
        (id > 0).then_some(id as usize - 1)
    })
    .await;
    let mut cl = client(&addrs[coordinator]).await;
    let (r, _): (OffsetCommitResponse, _) =
        cl.call(9, &common::standalone_commit(group, "six", 4)).await.expect("commit");
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    for i in 0..3 {
        c.kill9(i);
    }
    for i in 0..3 {
        c.spawn(i);
    }
    for i in 0..3 {
        c.await_serving(i);
    }
    // Same topic id and config, the records and the committed offset.
    let after = eventually(Duration::from_secs(20), "six after restart", || async {
        let m = metadata(&addrs[1]).await?;
        let t = m.topics.iter().find(|t| t.name.as_deref() == Some("six"))?.clone();
        t.partitions.iter().all(|p| p.leader_id > 0).then_some(t.topic_id)
    })
    .await;
    assert_eq!(after, before);
    for p in 0..6 {
        assert_eq!(consume_all(&addrs[1], "six", p).await.len(), 10);
    }
    let mut cl = client(&addrs[1]).await;
    let (r, _): (DescribeConfigsResponse, _) = cl
        .call(
            4,
            &DescribeConfigsRequest {
                resources: vec![describe_configs_request::DescribeConfigsResource {
                    resource_type: 2,
                    resource_name: "six".into(),
                    configuration_keys: Some(vec!["retention.ms".into()]),
                    ..Default::default()
                }],
                ..Default::default()
            },
        )
        .await
        .expect("describe configs");
    assert_eq!(r.results[0].configs[0].value.as_deref(), Some("123456789"));
    let off = eventually(Duration::from_secs(20), "committed offset", || async {
        committed_in(&addrs[coordinator], group, "six").await
    })
    .await;
    assert_eq!(off, 4);
}

/// One controller frame: length, CRC32C of the body, the body.
fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    out.extend_from_slice(body);
    out
}

async fn exchange(addr: &str, bytes: &[u8]) -> Option<serde_json::Value> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(bytes).await.ok()?;
    let mut head = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut head)).await.ok()?.ok()?;
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).await.ok()?;
    serde_json::from_slice(&body).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_controller_frames_are_refused_and_change_nothing() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::start(3);
    let ctrl = c.voters.split(',').next().and_then(|v| v.split('@').nth(1)).expect("voter 1").to_string();
    let a0 = c.addr(0);
    let m = eventually(Duration::from_secs(10), "metadata", || metadata(&a0)).await;
    let cluster_id = m.cluster_id.clone().expect("cluster id");
    let before = view(&m);

    // Raft messages from a node that is not a voter, and anything from another cluster:
    // refused before Raft. A heartbeat for a broker that is not registered: refused.
    use strom::metadata::quorum::{Frame, Rpc};
    let vote = openraft::raft::VoteRequest::new(openraft::Vote::new(99, 99), None);
    let stranger = Frame { cluster_id: cluster_id.clone(), from: 99, rpc: Rpc::Vote(vote) };
    let reply = exchange(&ctrl, &frame(&serde_json::to_vec(&stranger).expect("json"))).await.expect("a reply");
    assert!(reply.get("Refused").is_some(), "{reply}");
    let other = Frame { cluster_id: "another".into(), from: 2, rpc: Rpc::Heartbeat { broker: 2, epoch: 0 } };
    let reply = exchange(&ctrl, &frame(&serde_json::to_vec(&other).expect("json"))).await.expect("a reply");
    assert!(reply.get("Refused").is_some(), "{reply}");
    let ghost = Frame { cluster_id: cluster_id.clone(), from: 99, rpc: Rpc::Heartbeat { broker: 99, epoch: 0 } };
    let reply = exchange(&ctrl, &frame(&serde_json::to_vec(&ghost).expect("json"))).await.expect("a reply");
    assert!(reply["Heartbeat"].get("Err").is_some(), "{reply}");
    // Garbage: a bad CRC, a frame far too large, JSON that is no request. Each closes
    // its connection without an answer.
    let mut bad_crc = frame(b"{}");
    bad_crc[5] ^= 0xff;
    assert!(exchange(&ctrl, &bad_crc).await.is_none());
    assert!(exchange(&ctrl, &[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]).await.is_none());
    assert!(exchange(&ctrl, &frame(b"[1,2,3]")).await.is_none());

    // The cluster is unchanged and still works.
    let after = view(&metadata(&c.addr(0)).await.expect("metadata"));
    assert_eq!(after, before);
    assert_eq!(create_topic(&c.addr(1), "still-works", 3).await, 0);
    let log = c.nodes[0].log.lock().expect("log").join("\n");
    assert!(log.contains("not a voter refused"), "the refusal is logged");
    assert!(log.contains("another cluster refused"), "the refusal is logged");
}

async fn retention_ms(addr: &str, topic: &str) -> Option<String> {
    let mut c = Client::connect(addr, Duration::from_secs(2)).await.ok()?;
    let req = DescribeConfigsRequest {
        resources: vec![describe_configs_request::DescribeConfigsResource {
            resource_type: 2,
            resource_name: topic.into(),
            configuration_keys: Some(vec!["retention.ms".into()]),
            ..Default::default()
        }],
        ..Default::default()
    };
    let (r, _): (DescribeConfigsResponse, _) = c.call(4, &req).await.ok()?;
    r.results.first()?.configs.first()?.value.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_more_than_a_snapshot_catches_up_from_the_leaders_snapshot() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3);
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    assert_eq!(create_topic(&addrs[0], "conf", 1).await, 0);
    c.kill9(2);
    // More changes than a snapshot interval (1,000) plus what the leader keeps behind it
    // (100): the leader purges the entries node 3 would need.
    let mut cl = client(&addrs[0]).await;
    let changes = 1_250;
    for i in 0..changes {
        let req = AlterConfigsRequest {
            resources: vec![alter_configs_request::AlterConfigsResource {
                resource_type: 2,
                resource_name: "conf".into(),
                configs: vec![alter_configs_request::AlterableConfig {
                    name: "retention.ms".into(),
                    value: Some((100_000 + i).to_string()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let (r, _): (AlterConfigsResponse, _) = cl.call(2, &req).await.expect("alter configs");
        assert_eq!(r.responses[0].error_code, 0);
    }
    let want = (100_000 + changes - 1).to_string();
    let leader = quorum(&addrs[0]).await.expect("quorum");
    assert!(leader.high_watermark > 1_100, "{leader:?}");
    c.spawn(2);
    c.await_serving(2);
    eventually(Duration::from_secs(30), "node 3 caught up", || async {
        let q = quorum(&addrs[2]).await?;
        let v = retention_ms(&addrs[2], "conf").await?;
        (v == want && q.high_watermark >= leader.high_watermark).then_some(())
    })
    .await;
    let log = c.nodes[2].log.lock().expect("log").join("\n");
    assert!(log.contains("installed a metadata snapshot from the leader"), "caught up from a snapshot");
}

fn signal(c: &Cluster, i: usize, sig: &str) {
    let pid = c.nodes[i].child.as_ref().expect("running").id();
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill").success();
    assert!(ok, "kill {sig} {pid}");
}

/// Topic name → id as broker `addr` reports them.
async fn topic_ids(addr: &str) -> Option<std::collections::BTreeMap<String, Uuid>> {
    let m = metadata(addr).await?;
    Some(m.topics.iter().map(|t| (t.name.clone().unwrap_or_default(), t.topic_id)).collect())
}

/// Topics are created through every broker in turn while the quorum leader is paused
/// (SIGSTOP) and resumed, then killed with -9 and restarted. Checker: every topic whose
/// creation was acknowledged exists on every broker with one id everywhere (none lost,
/// none inconsistent); a creation that failed may or may not have happened, but never
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_metadata_survives_a_paused_and_a_killed_leader() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3);
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    let mut acked = Vec::new();
    let mut failed = 0;
    let mut n = 0;
    let mut create_round = |c: &Cluster, rounds: usize| {
        let mut names = Vec::new();
        for _ in 0..rounds {
            n += 1;
            names.push((format!("chk-{n}"), c.addr(n % 3)));
        }
        names
    };
    for phase in 0..3 {
        let leader = eventually(Duration::from_secs(20), "a leader", || async {
            for a in &addrs {
                if let Some(q) = quorum(a).await {
                    if q.leader_id > 0 {
                        return Some(q.leader_id as usize - 1);
                    }
                }
            }
            None
        })
        .await;
        match phase {
            0 => {}
            1 => signal(&c, leader, "-STOP"),
            _ => c.kill9(leader),
        }
        for (name, addr) in create_round(&c, 30) {
            if c.nodes
                .iter()
                .position(|nd| format!("127.0.0.1:{}", nd.port) == addr)
                .is_some_and(|i| i == leader && phase > 0)
            {
                continue; // that broker cannot answer now
            }
            if create_topic(&addr, &name, 1).await == 0 {
                acked.push(name);
            } else {
                failed += 1;
            }
        }
        match phase {
            0 => {}
            1 => signal(&c, leader, "-CONT"),
            _ => {
                c.spawn(leader);
                c.await_serving(leader);
            }
        }
    }
    // Every broker converges on the same topics and ids.
    let views = eventually(Duration::from_secs(30), "convergence", || async {
        let mut v = Vec::new();
        for a in &addrs {
            v.push(topic_ids(a).await?);
        }
        (v[0] == v[1] && v[1] == v[2] && acked.iter().all(|t| v[0].contains_key(t))).then_some(v)
    })
    .await;
    let lost = acked.iter().filter(|t| !views[0].contains_key(*t)).count();
    let mut ids: Vec<&Uuid> = views[0].values().collect();
    ids.sort_by_key(|u| u.0);
    let before = ids.len();
    ids.dedup();
    let duplicated = before - ids.len();
    println!(
        "metadata under faults: {} acknowledged, {failed} failed (may or may not exist), lost {lost}, duplicated ids {duplicated}, inconsistent brokers 0",
        acked.len()
    );
    assert_eq!((lost, duplicated), (0, 0));
    assert!(acked.len() >= 60, "most creations succeed: {}", acked.len());
}

/// Three controller-only nodes form the quorum; two broker-only nodes observe it, register,
/// lead every partition between them and serve clients; a controller killed -9 changes
/// nothing for the brokers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separate_controllers_and_brokers_make_one_cluster() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start_with(&["controller", "controller", "controller", "broker", "broker"]);
    let brokers = [c.addr(3), c.addr(4)];
    // Broker-only nodes give more brokers 10 s to register before placing __consumer_offsets.
    let first = eventually(Duration::from_secs(45), "two brokers everywhere", || async {
        let a = view(&metadata(&brokers[0]).await?);
        let b = view(&metadata(&brokers[1]).await?);
        (a == b && a.0 == vec![4, 5] && !a.1.is_empty()).then_some(a)
    })
    .await;
    assert!(first.1.iter().all(|(_, _, l)| *l == 4 || *l == 5), "only brokers lead: {:?}", first.1);
    assert_eq!(create_topic(&brokers[1], "split", 4).await, 0);
    eventually(Duration::from_secs(10), "split at both brokers", || async {
        let m = metadata(&brokers[0]).await?;
        m.topics.iter().find(|t| t.name.as_deref() == Some("split")).filter(|t| t.partitions.len() == 4).map(|_| ())
    })
    .await;
    for p in 0..4 {
        assert_eq!(produce_and_count(&brokers[0], "split", p, 10).await, 10);
        assert_eq!(consume_all(&brokers[1], "split", p).await.len(), 10);
    }
    // The brokers are observers: DescribeQuorum at a broker lists the three voters and
    // the broker itself as an observer.
    let q = quorum(&brokers[0]).await.expect("quorum");
    let mut voters: Vec<i32> = q.current_voters.iter().map(|v| v.replica_id).collect();
    voters.sort();
    assert_eq!(voters, vec![1, 2, 3]);
    assert_eq!(q.observers.iter().map(|o| o.replica_id).collect::<Vec<_>>(), vec![4]);
    // Kill -9 the leader controller: the brokers keep serving and topics can be created.
    let leader = q.leader_id as usize - 1;
    assert!(leader < 3);
    c.kill9(leader);
    // A try that timed out may have created it: TOPIC_ALREADY_EXISTS then counts.
    let mut tries = 0;
    eventually(Duration::from_secs(20), "create after controller failover", || {
        tries += 1;
        let (a, first) = (brokers[0].clone(), tries == 1);
        async move {
            let code = create_topic(&a, "after", 1).await;
            (code == 0 || (!first && code == ErrorCode::TopicAlreadyExists.code())).then_some(())
        }
    })
    .await;
    assert_eq!(produce_and_count(&brokers[1], "split", 0, 5).await, 15);

    // A new broker joins: from its start until every broker lists it and it leads the
    // partitions of a topic created for it.
    let started = Instant::now();
    let new = c.add_broker();
    c.await_serving(new);
    let new_addr = c.addr(new);
    eventually(Duration::from_secs(20), "the new broker listed everywhere", || async {
        let a = view(&metadata(&brokers[0]).await?);
        let b = view(&metadata(&new_addr).await?);
        (a.0 == vec![4, 5, 6] && b.0 == a.0).then_some(())
    })
    .await;
    let joined = started.elapsed();
    let only = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: "on-six".into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: vec![create_topics_request::CreatableReplicaAssignment {
                partition_index: 0,
                broker_ids: vec![6],
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let (r, _): (CreateTopicsResponse, _) = client(&brokers[0]).await.call(7, &only).await.expect("create on 6");
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0].error_message);
    assert_eq!(produce_and_count(&brokers[0], "on-six", 0, 7).await, 7);
    println!(
        "a new broker joined in {joined:?} and served a partition placed on it {:?} after it started",
        started.elapsed()
    );
}

/// Creates `name` with `partitions` partitions of `rf` replicas; its error code.
async fn create_replicated(addr: &str, name: &str, partitions: i32, rf: i16) -> i16 {
    let mut c = client(addr).await;
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: rf,
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let (r, _): (CreateTopicsResponse, _) = c.call(7, &req).await.expect("CreateTopics");
    r.topics.first().map_or(-1, |t| t.error_code)
}

/// (leader, ISR) of every partition of `topic` as `addr` reports them.
async fn placement(addr: &str, topic: &str) -> Option<Vec<(i32, Vec<i32>)>> {
    let m = metadata(addr).await?;
    let t = m.topics.iter().find(|t| t.name.as_deref() == Some(topic))?;
    let mut ps: Vec<_> = t.partitions.iter().map(|p| (p.partition_index, p.leader_id, p.isr_nodes.clone())).collect();
    ps.sort();
    Some(ps.into_iter().map(|(_, l, isr)| (l, isr)).collect())
}

/// One raw produce of `values` to `topic`/`partition` at `addr` with `acks`; the
/// partition's error code and base offset.
async fn produce_raw(addr: &str, topic: &str, partition: i32, acks: i16, values: &[String]) -> (i16, i64) {
    let mut b = strom_protocol::records::BatchBuilder::new(chrono::Utc::now().timestamp_millis());
    for v in values {
        b.add(None, Some(v.as_bytes()));
    }
    let req = ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topic_data: vec![produce_request::TopicProduceData {
            name: topic.into(),
            partition_data: vec![produce_request::PartitionProduceData {
                index: partition,
                records: Some(b.build().freeze()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let Ok(mut c) = Client::connect(addr, Duration::from_secs(15)).await else { return (-1, -1) };
    match c.call::<_, ProduceResponse>(9, &req).await {
        Ok((r, _)) => r
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .map_or((-1, -1), |p| (p.error_code, p.base_offset)),
        Err(_) => (-1, -1),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_partitions_keep_every_acknowledged_record_when_their_leader_dies() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start_configured(
        &["broker,controller"; 3],
        &["min.insync.replicas=2", "replica.lag.time.max.ms=3000"],
    );
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    assert_eq!(create_replicated(&addrs[0], "replicated", 3, 3).await, 0);
    // Every partition gets its three replicas in sync.
    let placed = eventually(Duration::from_secs(30), "three in-sync replicas everywhere", || async {
        let p = placement(&addrs[1], "replicated").await?;
        (p.len() == 3 && p.iter().all(|(l, isr)| *l > 0 && isr.len() == 3)).then_some(p)
    })
    .await;
    // acks=all through a real client (rskafka sends acks=-1), from any broker.
    let mut acked = Vec::new();
    for round in 0..5 {
        let values: Vec<String> = (0..20).map(|i| format!("r{round}-{i}")).collect();
        let client = ClientBuilder::new(vec![addrs[2].clone()]).build().await.expect("rskafka");
        let pc = client.partition_client("replicated", 0, UnknownTopicHandling::Retry).await.expect("partition");
        let records: Vec<Record> = values
            .iter()
            .map(|v| Record {
                key: None,
                value: Some(v.clone().into_bytes()),
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            })
            .collect();
        pc.produce(records, Compression::NoCompression).await.expect("acks=all produce");
        acked.extend(values);
    }
    // Kill the leader of partition 0 with -9: a follower in the ISR takes over.
    let old_leader = placed[0].0;
    let victim = (old_leader - 1) as usize;
    // A group that broker coordinates commits an offset first (__consumer_offsets has
    // three replicas in a three-broker cluster; the commit is acknowledged once all
    // in-sync replicas have it).
    let offsets = placement(&addrs[1], "__consumer_offsets").await.expect("offsets placement");
    assert!(offsets.iter().all(|(_, isr)| isr.len() == 3), "__consumer_offsets replicated: {offsets:?}");
    let group = (0..1000)
        .map(|i| format!("fg{i}"))
        .find(|g| offsets[strom::coordinator::group::log::partition_for(g, 12) as usize].0 == old_leader)
        .expect("a group coordinated by the victim");
    assert_eq!(commit_standalone(&addrs[victim], &group, "replicated", 42).await, 0);
    let killed_at = Instant::now();
    c.kill9(victim);
    let survivor = addrs[(victim + 1) % 3].clone();
    let new_leader = eventually(Duration::from_secs(30), "a new leader for partition 0", || async {
        let p = placement(&survivor, "replicated").await?;
        let (l, _) = &p[0];
        (*l > 0 && *l != old_leader).then_some(*l)
    })
    .await;
    println!("partition 0: leader {old_leader} killed, {new_leader} leads after {:?}", killed_at.elapsed());
    // The group's coordinator moved with its offsets partition, and has the commit.
    let coordinator = eventually(Duration::from_secs(30), "a new coordinator for the group", || {
        let (a, g) = (survivor.clone(), group.clone());
        async move {
            let mut c = Client::connect(&a, Duration::from_secs(2)).await.ok()?;
            let req = FindCoordinatorRequest { coordinator_keys: vec![g], ..Default::default() };
            let (r, _): (FindCoordinatorResponse, _) = c.call(6, &req).await.ok()?;
            let co = r.coordinators.first()?;
            (co.error_code == 0 && co.node_id > 0 && co.node_id != old_leader).then_some(co.node_id)
        }
    })
    .await;
    let at = addrs[(coordinator - 1) as usize].clone();
    let offset = eventually(Duration::from_secs(15), "the commit read back from the new coordinator", || {
        let (a, g) = (at.clone(), group.clone());
        async move { committed_in(&a, &g, "replicated").await }
    })
    .await;
    assert_eq!(offset, 42, "the committed offset survived its coordinator's death");
    // Two replicas are left: still enough for min.insync.replicas=2 once the ISR shrank.
    let more: Vec<String> = (0..10).map(|i| format!("after-{i}")).collect();
    let leader_addr = addrs[(new_leader - 1) as usize].clone();
    let (code, _) = eventually(Duration::from_secs(30), "acks=all accepted by the new leader", || {
        let (a, m) = (leader_addr.clone(), more.clone());
        async move {
            let (code, base) = produce_raw(&a, "replicated", 0, -1, &m).await;
            (code == 0).then_some((code, base))
        }
    })
    .await;
    assert_eq!(code, 0);
    acked.extend(more);
    // Every acknowledged record is there exactly once, in order; nothing else.
    let read = consume_all(&survivor, "replicated", 0).await;
    assert_eq!(read, acked, "the records after failover are exactly the acknowledged ones");
    // The killed broker comes back, truncates if it must, catches up and rejoins the ISR.
    c.spawn(victim);
    c.await_serving(victim);
    eventually(Duration::from_secs(60), "the restarted broker back in the ISR", || async {
        let p = placement(&survivor, "replicated").await?;
        p.iter().all(|(_, isr)| isr.len() == 3).then_some(())
    })
    .await;
    // ElectLeaders (preferred): the restarted broker is partition 0's first replica and
    // in sync again, so it takes leadership back; asked again, nothing is needed.
    let elect = |addr: String| async move {
        let mut c = client(&addr).await;
        let req = ElectLeadersRequest {
            election_type: 0,
            topic_partitions: Some(vec![elect_leaders_request::TopicPartitions {
                topic: "replicated".into(),
                partitions: vec![0],
                ..Default::default()
            }]),
            timeout_ms: 5000,
            ..Default::default()
        };
        let (r, _): (ElectLeadersResponse, _) = c.call(2, &req).await.expect("ElectLeaders");
        r.replica_election_results[0].partition_result[0].error_code
    };
    assert_eq!(elect(survivor.clone()).await, 0);
    eventually(Duration::from_secs(15), "the preferred replica leads partition 0 again", || async {
        (placement(&survivor, "replicated").await?[0].0 == old_leader).then_some(())
    })
    .await;
    assert_eq!(elect(survivor.clone()).await, ErrorCode::ElectionNotNeeded.code());
    // Now kill both other replicas of partition 0's leader: once the ISR shrinks to the
    // leader alone, acks=all is refused with NOT_ENOUGH_REPLICAS and nothing is committed.
    let p = placement(&survivor, "replicated").await.expect("placement");
    let leader = p[0].0;
    for i in 0..3 {
        if i as i32 + 1 != leader {
            c.kill9(i);
        }
    }
    let leader_addr = addrs[(leader - 1) as usize].clone();
    // With two of three voters gone the quorum cannot shrink the ISR: the partition keeps
    // its ISR and the leader waits for followers that never come (REQUEST_TIMED_OUT or
    // NOT_ENOUGH_REPLICAS_AFTER_APPEND) — either way the record is not acknowledged.
    let (code, _) = produce_raw(&leader_addr, "replicated", 0, -1, &["unacked".to_string()]).await;
    assert!([7, 19, 20].contains(&code), "acks=all without followers answered {code}");
}

/// A standalone commit (generation -1) of `offset` for partition 0 of `topic`.
async fn commit_standalone(addr: &str, group: &str, topic: &str, offset: i64) -> i16 {
    let mut c = client(addr).await;
    let req = OffsetCommitRequest {
        group_id: group.into(),
        generation_id_or_member_epoch: -1,
        topics: vec![offset_commit_request::OffsetCommitRequestTopic {
            name: topic.into(),
            partitions: vec![offset_commit_request::OffsetCommitRequestPartition {
                partition_index: 0,
                committed_offset: offset,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (r, _): (OffsetCommitResponse, _) = c.call(9, &req).await.expect("commit");
    r.topics[0].partitions[0].error_code
}

/// The offset `group` committed for partition 0 of `topic`, as `addr` answers it.
async fn committed_in(addr: &str, group: &str, topic: &str) -> Option<i64> {
    let mut c = Client::connect(addr, Duration::from_secs(2)).await.ok()?;
    let req = OffsetFetchRequest {
        group_id: group.into(),
        topics: Some(vec![offset_fetch_request::OffsetFetchRequestTopic {
            name: topic.into(),
            partition_indexes: vec![0],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let (r, _): (OffsetFetchResponse, _) = c.call(7, &req).await.ok()?;
    let p = r.topics.first()?.partitions.first()?;
    (p.error_code == 0 && r.error_code == 0 && p.committed_offset >= 0).then_some(p.committed_offset)
}

/// The coordinator of transactional id `tid` as `addr` names it: (node id, address).
async fn txn_coordinator(addr: &str, tid: &str) -> Option<(i32, String)> {
    let mut c = Client::connect(addr, Duration::from_secs(2)).await.ok()?;
    let req = FindCoordinatorRequest { key: tid.into(), key_type: 1, ..Default::default() };
    let r: FindCoordinatorResponse = c.call_at(3, &req).await.ok()?;
    (r.error_code == 0).then(|| (r.node_id, format!("{}:{}", r.host, r.port)))
}

/// A transaction request's error code at `addr` (-1 when it could not be asked).
async fn txn_request<Req: Message, Resp: Message>(
    addr: &str,
    version: i16,
    req: &Req,
    code: impl Fn(&Resp) -> i16,
) -> i16 {
    let Ok(mut c) = Client::connect(addr, Duration::from_secs(2)).await else { return -1 };
    match c.call_at::<Req, Resp>(version, req).await {
        Ok(r) => code(&r),
        Err(_) => -1,
    }
}

fn end_txn_request(tid: &str, pid: i64, epoch: i16) -> EndTxnRequest {
    EndTxnRequest {
        transactional_id: tid.into(),
        producer_id: pid,
        producer_epoch: epoch,
        committed: true,
        ..Default::default()
    }
}

/// Opens a transaction of `tid` over partitions 0..3 of `topic` and writes two records to
/// each at its leader; returns the producer id and epoch.
async fn open_transaction(c: &Cluster, via: usize, tid: &str, topic: &str, seq: i32) -> (i64, i16) {
    let at = c.addr(via);
    let (pid, epoch) = eventually(Duration::from_secs(60), "InitProducerId", || async {
        let (_, addr) = txn_coordinator(&at, tid).await?;
        let mut cl = Client::connect(&addr, Duration::from_secs(2)).await.ok()?;
        let req = InitProducerIdRequest {
            transactional_id: Some(tid.into()),
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        };
        let r: InitProducerIdResponse = cl.call_at(4, &req).await.ok()?;
        (r.error_code == 0).then_some((r.producer_id, r.producer_epoch))
    })
    .await;
    let add = AddPartitionsToTxnRequest {
        v3_and_below_transactional_id: tid.into(),
        v3_and_below_producer_id: pid,
        v3_and_below_producer_epoch: epoch,
        v3_and_below_topics: vec![add_partitions_to_txn_request::AddPartitionsToTxnTopic {
            name: topic.into(),
            partitions: vec![0, 1, 2],
            ..Default::default()
        }],
        ..Default::default()
    };
    eventually(Duration::from_secs(30), "AddPartitionsToTxn", || async {
        let (_, addr) = txn_coordinator(&at, tid).await?;
        let code = txn_request(&addr, 3, &add, |r: &AddPartitionsToTxnResponse| {
            r.results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| t.results_by_partition.iter())
                .map(|p| p.partition_error_code)
                .find(|c| *c != 0)
                .unwrap_or(0)
        })
        .await;
        (code == 0).then_some(())
    })
    .await;
    for p in 0..3 {
        eventually(Duration::from_secs(30), "transactional produce", || async {
            let leader = placement(&at, topic).await?.get(p as usize)?.0;
            let mut b = strom_protocol::records::BatchBuilder::new(chrono::Utc::now().timestamp_millis())
                .producer(pid, epoch, seq)
                .transactional(true);
            b.add(None, Some(b"a"));
            b.add(None, Some(b"b"));
            let req = ProduceRequest {
                transactional_id: Some(tid.into()),
                acks: -1,
                timeout_ms: 10_000,
                topic_data: vec![produce_request::TopicProduceData {
                    name: topic.into(),
                    partition_data: vec![produce_request::PartitionProduceData {
                        index: p,
                        records: Some(b.build().freeze()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            let code = txn_request(&c.addr(leader as usize - 1), 9, &req, |r: &ProduceResponse| {
                r.responses[0].partition_responses[0].error_code
            })
            .await;
            (code == 0).then_some(())
        })
        .await;
    }
    (pid, epoch)
}

/// Waits until every partition 0..3 of `topic` has its last stable offset at its high
/// watermark, at `end` or past it, at its leader (asked through node `via`). Past it: a
/// coordinator killed after writing some markers has them written again by its
/// successor, which resumes from the Prepare record (Kafka's markers repeat the same
/// way); the duplicate changes nothing but takes an offset.
async fn await_stable(c: &Cluster, via: usize, topic: &str, end: i64) {
    for p in 0..3i32 {
        eventually(Duration::from_secs(60), "the transaction's markers", || async {
            let leader = placement(&c.addr(via), topic).await?.get(p as usize)?.0;
            let mut cl = Client::connect(&c.addr(leader as usize - 1), Duration::from_secs(2)).await.ok()?;
            let mut got = [0i64; 2];
            for (i, isolation_level) in [0i8, 1].into_iter().enumerate() {
                let req = ListOffsetsRequest {
                    replica_id: -1,
                    isolation_level,
                    topics: vec![list_offsets_request::ListOffsetsTopic {
                        name: topic.into(),
                        partitions: vec![list_offsets_request::ListOffsetsPartition {
                            partition_index: p,
                            timestamp: -1,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let r: ListOffsetsResponse = cl.call_at(5, &req).await.ok()?;
                let part = &r.topics.first()?.partitions.first()?;
                if part.error_code != 0 {
                    return None;
                }
                got[i] = part.offset;
            }
            (got[0] == got[1] && got[0] >= end).then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_outlive_their_coordinator() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start(3);
    assert_eq!(create_replicated(&c.addr(0), "txn", 3, 3).await, 0);
    eventually(Duration::from_secs(30), "replicated partitions", || async {
        placement(&c.addr(0), "txn").await.filter(|ps| ps.iter().all(|(l, isr)| *l > 0 && isr.len() == 3))
    })
    .await;

    // 1. The coordinator dies with the transaction open; the producer ends it at the new one.
    let (pid, epoch) = open_transaction(&c, 0, "tx", "txn", 0).await;
    let (first, _) = txn_coordinator(&c.addr(0), "tx").await.expect("coordinator");
    c.kill9(first as usize - 1);
    let live = (0..3).find(|&i| i != first as usize - 1).expect("a live node");
    let end = end_txn_request("tx", pid, epoch);
    let second = eventually(Duration::from_secs(60), "EndTxn at a new coordinator", || async {
        let (id, addr) = txn_coordinator(&c.addr(live), "tx").await?;
        if id == first {
            return None;
        }
        let code = txn_request(&addr, 3, &end, |r: &EndTxnResponse| r.error_code).await;
        eprintln!("EndTxn at {id}: {code}");
        (code == 0).then_some(id)
    })
    .await;
    assert_ne!(second, first);
    // Two records and a COMMIT marker in every partition, all stable.
    await_stable(&c, live, "txn", 3).await;

    // 2. The coordinator dies right after the commit point: its successor writes the markers.
    c.spawn(first as usize - 1);
    c.await_serving(first as usize - 1);
    eventually(Duration::from_secs(60), "every replica back in sync", || async {
        placement(&c.addr(live), "txn").await.filter(|ps| ps.iter().all(|(_, isr)| isr.len() == 3))
    })
    .await;
    // InitProducerId bumped the epoch: sequences start again at 0.
    let (pid, epoch) = open_transaction(&c, live, "tx", "txn", 0).await;
    let (coord, addr) = txn_coordinator(&c.addr(live), "tx").await.expect("coordinator");
    let end = end_txn_request("tx", pid, epoch);
    assert_eq!(txn_request(&addr, 3, &end, |r: &EndTxnResponse| r.error_code).await, 0);
    c.kill9(coord as usize - 1);
    let live = (0..3).find(|&i| i != coord as usize - 1).expect("a live node");
    await_stable(&c, live, "txn", 6).await;
}

const BROKER_JAAS: &str = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"broker\" \
                           password=\"broker-secret\" user_broker=\"broker-secret\" user_alice=\"alice-secret\";";

/// A connection logged in with SASL/PLAIN.
async fn login(addr: &str, user: &str, password: &str) -> anyhow::Result<Client> {
    let security = strom_client::Security::from_properties(&format!(
        "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.username={user}\nsasl.password={password}\n"
    ))?;
    Client::connect_with(addr, Duration::from_secs(5), &security).await
}

/// Brokers whose only listener is SASL_PLAINTEXT log in to each other as `User:broker`
/// (`sasl.mechanism.inter.broker.protocol`, the username and password of the listener's
/// JAAS line) with ACLs enforced: a partition with three replicas and
/// min.insync.replicas=3 takes acks=all writes only if both followers fetch from its
/// leader over authenticated connections. A client without CLUSTER_ACTION cannot fetch
/// as a follower (TOPIC_AUTHORIZATION_FAILED, no record), nor read as a consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brokers_authenticate_each_other_and_clients_cannot_pose_as_followers() {
    let jaas = format!("listener.name.sasl_plaintext.plain.sasl.jaas.config={BROKER_JAAS}");
    let c = Cluster::start_configured(
        &["broker,controller"; 3],
        &[
            "test.scheme=SASL_PLAINTEXT",
            "listener.security.protocol.map=SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            "sasl.enabled.mechanisms=PLAIN",
            "sasl.mechanism.inter.broker.protocol=PLAIN",
            &jaas,
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users=User:broker",
        ],
    );
    let addr = c.addr(0);
    let code = eventually(Duration::from_secs(30), "CreateTopics as User:broker", || async {
        let mut admin = login(&addr, "broker", "broker-secret").await.ok()?;
        let req = CreateTopicsRequest {
            topics: vec![create_topics_request::CreatableTopic {
                name: "secured".into(),
                num_partitions: 1,
                replication_factor: 3,
                configs: vec![create_topics_request::CreatableTopicConfig {
                    name: "min.insync.replicas".into(),
                    value: Some("3".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            timeout_ms: 5000,
            ..Default::default()
        };
        let (r, _): (CreateTopicsResponse, _) = admin.call(7, &req).await.ok()?;
        let code = r.topics.first()?.error_code;
        (code != 15 && code != 7).then_some(code)
    })
    .await;
    assert_eq!(code, 0);

    // acks=all with min.insync.replicas=3: acknowledged only once both followers have
    // fetched the batch, which they do only over the authenticated listener.
    let (leader, base) = eventually(Duration::from_secs(30), "an acks=all produce to three in-sync replicas", || {
        let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
        async move {
            let mut b = strom_protocol::records::BatchBuilder::new(chrono::Utc::now().timestamp_millis());
            b.add(None, Some(b"secret"));
            let req = ProduceRequest {
                acks: -1,
                timeout_ms: 10_000,
                topic_data: vec![produce_request::TopicProduceData {
                    name: "secured".into(),
                    partition_data: vec![produce_request::PartitionProduceData {
                        index: 0,
                        records: Some(b.build().freeze()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            };
            for (i, a) in addrs.iter().enumerate() {
                let Ok(mut admin) = login(a, "broker", "broker-secret").await else { continue };
                let Ok((r, _)) = admin.call::<_, ProduceResponse>(9, &req).await else { continue };
                let p = r.responses.first()?.partition_responses.first()?;
                if p.error_code == 0 {
                    return Some((i, p.base_offset));
                }
            }
            None
        }
    })
    .await;
    assert_eq!(base, 0);

    // alice may log in but holds no ACL: a follower's fetch (replica id 2) and a
    // consumer's are both refused and carry no record.
    let mut alice = login(&c.addr(leader), "alice", "alice-secret").await.expect("alice logs in");
    for replica_id in [2, -1] {
        let req = FetchRequest {
            replica_id,
            max_wait_ms: 0,
            min_bytes: 0,
            topics: vec![fetch_request::FetchTopic {
                topic: "secured".into(),
                partitions: vec![fetch_request::FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let r: FetchResponse = alice.call_at(12, &req).await.expect("fetch");
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 29, "replica id {replica_id}: TOPIC_AUTHORIZATION_FAILED");
        assert!(p.records.as_ref().is_none_or(|b| b.is_empty()), "replica id {replica_id}: records handed out");
    }
    // The brokers really fetched as User:broker: no follower was refused.
    for n in &c.nodes {
        let log = n.log.lock().expect("log");
        assert!(
            !log.iter().any(|l| l.contains("strom::authorizer") && l.contains("User:broker")),
            "node {}: a broker was denied",
            n.id
        );
    }
}

/// The schema registry address node `i` logged ("strom is serving … schema_registry=…").
fn registry_addr(c: &Cluster, i: usize) -> String {
    let log = c.nodes[i].log.lock().expect("log");
    let line = log.iter().rev().find(|l| l.contains("strom is serving")).expect("serving line");
    let addr = line.split("schema_registry=").nth(1).and_then(|r| r.split_whitespace().next()).expect("registry addr");
    addr.to_string()
}

fn avro_record(name: &str, fields: &[&str]) -> String {
    let fields: Vec<String> =
        fields.iter().map(|f| format!(r#"{{"name":"{f}","type":"string","default":""}}"#)).collect();
    let schema = format!(r#"{{"type":"record","name":"{name}","fields":[{}]}}"#, fields.join(","));
    serde_json::json!({ "schema": schema }).to_string()
}

/// Issue 18: every broker serves the registry; writes on any broker are decided by the
/// leader of `_schemas` (forwarded), reads see them at once on the broker written to,
/// and after the leader is killed the survivors keep every subject and never reuse an id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_registry_is_one_registry_across_brokers_and_survives_its_leader() {
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start_configured(
        &["broker,controller"; 3],
        &["strom.schema.registry.listener=127.0.0.1:0", "default.replication.factor=3"],
    );
    let regs: Vec<String> = (0..3).map(|i| registry_addr(&c, i)).collect();
    eventually(Duration::from_secs(20), "three brokers registered", || async {
        metadata(&c.addr(0)).await.filter(|m| m.brokers.len() == 3).map(|_| ())
    })
    .await;
    // One subject registered through each broker; ids are allocated in one place.
    let mut ids = Vec::new();
    for (i, reg) in regs.iter().enumerate() {
        let body = avro_record(&format!("R{i}"), &["a"]);
        let (status, v) = common::http_json(reg, "POST", &format!("/subjects/s{i}/versions"), Some(&body)).await;
        assert_eq!(status, 200, "register through broker {}: {v}", i + 1);
        ids.push(v["id"].as_i64().expect("id"));
        // Read-your-write on the broker written to, even when it forwarded the write.
        let (status, v) = common::http_json(reg, "GET", &format!("/subjects/s{i}/versions/latest"), None).await;
        assert_eq!((status, v["id"].as_i64()), (200, ids.last().copied()), "read back through broker {}", i + 1);
    }
    assert_eq!(ids, vec![1, 2, 3], "one allocator");
    // A compatible evolution and a refused one, through a broker that forwards.
    let (status, v) =
        common::http_json(&regs[1], "POST", "/subjects/s0/versions", Some(&avro_record("R0", &["a", "b"]))).await;
    assert_eq!((status, v["id"].as_i64()), (200, Some(4)), "{v}");
    let bad = serde_json::json!({ "schema": r#"{"type":"record","name":"R0","fields":[{"name":"a","type":"int"}]}"# });
    let (status, v) = common::http_json(&regs[2], "POST", "/subjects/s0/versions", Some(&bad.to_string())).await;
    assert_eq!((status, v["error_code"].as_i64()), (409, Some(409)), "{v}");
    for reg in &regs {
        let reg = reg.clone();
        eventually(Duration::from_secs(10), "every broker sees every subject", || {
            let reg = reg.clone();
            async move {
                let (_, v) = common::http_json(&reg, "GET", "/subjects", None).await;
                (v == serde_json::json!(["s0", "s1", "s2"])).then_some(())
            }
        })
        .await;
    }
    // Validation on every partition leader right after a registration: leaders that
    // follow _schemas catch up before they judge a record (none is refused for an id the
    // registry had already acknowledged).
    let mut admin = client(&c.addr(0)).await;
    let req = CreateTopicsRequest {
        topics: vec![create_topics_request::CreatableTopic {
            name: "validated".into(),
            num_partitions: 3,
            replication_factor: 3,
            configs: vec![create_topics_request::CreatableTopicConfig {
                name: "confluent.value.schema.validation".into(),
                value: Some("true".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let (r, _): (CreateTopicsResponse, _) = admin.call(7, &req).await.expect("CreateTopics");
    assert_eq!(r.topics.first().map(|t| t.error_code), Some(0));
    let leaders = eventually(Duration::from_secs(10), "validated has leaders everywhere", || async {
        placement(&c.addr(0), "validated").await.filter(|p| p.len() == 3 && p.iter().all(|(l, _)| *l > 0))
    })
    .await;
    for (round, via) in regs.iter().enumerate() {
        let body = avro_record("V", &["a", "b", "c"][..=round]);
        let (status, v) = common::http_json(via, "POST", "/subjects/validated-value/versions", Some(&body)).await;
        assert_eq!(status, 200, "{v}");
        let id = u32::try_from(v["id"].as_i64().expect("id")).expect("id");
        let mut framed = vec![0u8];
        framed.extend_from_slice(&id.to_be_bytes());
        framed.push(0); // the Avro record: one empty string
        let framed = String::from_utf8(framed).expect("ASCII");
        for (partition, (leader, _)) in leaders.iter().enumerate() {
            let addr = c.addr((*leader - 1) as usize);
            let (code, _) = produce_raw(&addr, "validated", partition as i32, -1, std::slice::from_ref(&framed)).await;
            assert_eq!(code, 0, "id {id} on partition {partition} (leader {leader})");
            let (code, _) = produce_raw(&addr, "validated", partition as i32, -1, &["unframed".to_string()]).await;
            assert_eq!(code, 87, "an unframed record on partition {partition}: INVALID_RECORD");
        }
    }
    // Kill the leader of _schemas.
    let leader = eventually(Duration::from_secs(10), "a _schemas leader", || async {
        placement(&c.addr(0), "_schemas").await.and_then(|p| p.first().map(|(l, _)| *l)).filter(|&l| l > 0)
    })
    .await;
    let dead = (leader - 1) as usize;
    c.kill9(dead);
    let survivor = regs[(dead + 1) % 3].clone();
    let other = regs[(dead + 2) % 3].clone();
    // A new schema registers once a survivor leads, with the next id: none reused.
    let id = eventually(Duration::from_secs(30), "a registration after the failover", || {
        let survivor = survivor.clone();
        async move {
            let (status, v) =
                common::http_json(&survivor, "POST", "/subjects/after/versions", Some(&avro_record("After", &["x"])))
                    .await;
            (status == 200).then(|| v["id"].as_i64()).flatten()
        }
    })
    .await;
    assert_eq!(id, 8, "the id after the last one given out before the failover");
    for reg in [&survivor, &other] {
        let (_, v) = common::http_json(reg, "GET", "/subjects/s0/versions", None).await;
        assert_eq!(v, serde_json::json!([1, 2]), "s0 on a survivor");
        let (_, v) = common::http_json(reg, "GET", "/schemas/ids/3", None).await;
        assert!(v["schema"].as_str().is_some_and(|s| s.contains("R2")), "id 3 on a survivor: {v}");
    }
}

/// Share-partition state fails over with its partition (issue 19, ADR 0016 step 4): the
/// records a share consumer accepted before its partition's leader is killed with -9 are
/// never delivered again by the new leader, and those it held without acknowledging
/// are, as a second delivery. The share coordinator (the `__share_group_state` leader)
/// may die with it: the new leader reads the state from whichever broker leads it next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_partition_state_fails_over_with_its_partition() {
    const ACCEPT: i8 = 1;
    let _serial = SERIAL.lock().await;
    let mut c = Cluster::start_configured(
        &["broker,controller"; 3],
        &["min.insync.replicas=2", "replica.lag.time.max.ms=3000"],
    );
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    assert_eq!(create_replicated(&addrs[0], "queue", 1, 3).await, 0);
    let leader = eventually(Duration::from_secs(30), "three in-sync replicas", || async {
        let p = placement(&addrs[1], "queue").await?;
        (p[0].0 > 0 && p[0].1.len() == 3).then_some(p[0].0)
    })
    .await;
    let topic_id = metadata(&addrs[0])
        .await
        .and_then(|m| m.topics.into_iter().find(|t| t.name.as_deref() == Some("queue")))
        .map(|t| t.topic_id)
        .expect("topic id");
    let leader_addr = addrs[(leader - 1) as usize].clone();
    let mut consumer = client(&leader_addr).await;
    // The first fetch opens the share-partition at the log end (offset 0: nothing yet).
    let r: ShareFetchResponse =
        consumer.call_at(1, &common::share_fetch("workers", "m1", 0, topic_id, &[0], &[], 0)).await.expect("fetch");
    assert_eq!(r.responses[0].partitions[0].error_code, 0);
    let values: Vec<String> = (0..20).map(|i| format!("job-{i}")).collect();
    assert_eq!(produce_raw(&leader_addr, "queue", 0, -1, &values).await.0, 0);
    let r: ShareFetchResponse =
        consumer.call_at(1, &common::share_fetch("workers", "m1", 1, topic_id, &[0], &[], 5000)).await.expect("fetch");
    assert_eq!(common::acquired(&r), [(0, 19, 1)]);
    // Accept the first ten (the answer comes once the state write is committed) and
    // hold the other ten.
    let r: ShareFetchResponse = consumer
        .call_at(1, &common::share_fetch("workers", "m1", 2, topic_id, &[0], &[(0, 9, ACCEPT)], 0))
        .await
        .expect("acknowledge");
    assert_eq!(r.responses[0].partitions[0].acknowledge_error_code, 0);
    drop(consumer);
    c.kill9((leader - 1) as usize);
    let survivor = addrs[(leader % 3) as usize].clone();
    let new_leader = eventually(Duration::from_secs(30), "a new leader", || async {
        let p = placement(&survivor, "queue").await?;
        (p[0].0 > 0 && p[0].0 != leader).then_some(p[0].0)
    })
    .await;
    let at = addrs[(new_leader - 1) as usize].clone();
    let mut attempt = 0;
    let (mut consumer, got) = eventually(Duration::from_secs(30), "records from the new leader", || {
        attempt += 1;
        let (a, member) = (at.clone(), format!("m2-{attempt}"));
        async move {
            let mut c = Client::connect(&a, Duration::from_secs(2)).await.ok()?;
            let req = common::share_fetch("workers", &member, 0, topic_id, &[0], &[], 2000);
            let r: ShareFetchResponse = c.call_at(1, &req).await.ok()?;
            let got = common::acquired(&r);
            (!got.is_empty()).then_some((c, (member, got)))
        }
    })
    .await;
    let (member, acquired) = got;
    assert_eq!(acquired, [(10, 19, 2)], "only the unacknowledged records, delivered a second time");
    let r: ShareFetchResponse = consumer
        .call_at(1, &common::share_fetch("workers", &member, 1, topic_id, &[0], &[(10, 19, ACCEPT)], 0))
        .await
        .expect("acknowledge");
    assert_eq!(r.responses[0].partitions[0].acknowledge_error_code, 0);
    assert!(common::acquired(&r).is_empty(), "nothing is left to deliver");
    // DescribeShareGroupOffsets v1 at the group's coordinator: start 20 and no lag, the
    // high watermark read from the partition's leader wherever the coordinator is.
    let offsets = eventually(Duration::from_secs(30), "share-group offsets with a lag", || async {
        use strom_protocol::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
        let mut cl = Client::connect(&at, Duration::from_secs(2)).await.ok()?;
        let fc = FindCoordinatorRequest { coordinator_keys: vec!["workers".into()], ..Default::default() };
        let (fc, _): (FindCoordinatorResponse, _) = cl.call(6, &fc).await.ok()?;
        let id = fc.coordinators.first().filter(|c| c.error_code == 0)?.node_id;
        let mut cl = Client::connect(&addrs[(id - 1) as usize], Duration::from_secs(2)).await.ok()?;
        let req = DescribeShareGroupOffsetsRequest {
            // Null topics: every share-partition of the group with state.
            groups: vec![DescribeShareGroupOffsetsRequestGroup {
                group_id: "workers".into(),
                topics: None,
                ..Default::default()
            }],
            ..Default::default()
        };
        let r: DescribeShareGroupOffsetsResponse = cl.call_at(1, &req).await.ok()?;
        let p = r.groups.first()?.topics.first()?.partitions.first()?.clone();
        (p.error_code == 0 && p.lag >= 0).then_some((p.start_offset, p.lag))
    })
    .await;
    assert_eq!(offsets, (20, 0));
}

/// Runs the `strom` CLI with `STROM_BOOTSTRAP=addr`; (success, stdout, stderr).
fn strom_cli(addr: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(args)
        .env("STROM_BOOTSTRAP", addr)
        .env("STROM_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strom");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(s) = stdin {
        input.write_all(s.as_bytes()).expect("write stdin");
    }
    drop(input);
    let out = child.wait_with_output().expect("wait");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The CLI against a cluster: `strom produce` and `strom consume` reach every partition
/// through its leader, whichever broker they bootstrap from, and the group commands
/// reach the group's coordinator (`consume --group` commits there; `group describe`
/// reads the commits back with no lag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_produces_to_and_consumes_from_every_partitions_leader() {
    let _serial = SERIAL.lock().await;
    let c = Cluster::start(3);
    let addrs: Vec<String> = (0..3).map(|i| c.addr(i)).collect();
    assert_eq!(create_replicated(&addrs[0], "cli", 6, 1).await, 0);
    let leaders = eventually(Duration::from_secs(30), "every partition led", || async {
        let p = placement(&addrs[2], "cli").await?;
        (p.len() == 6 && p.iter().all(|(l, _)| *l > 0)).then_some(p)
    })
    .await;
    let distinct: std::collections::BTreeSet<i32> = leaders.iter().map(|(l, _)| *l).collect();
    assert!(distinct.len() > 1, "the partitions are spread over the brokers: {leaders:?}");
    let input: String = (0..300).map(|i| format!("k{i}:v{i}\n")).collect();
    let (ok, _, err) = strom_cli(&addrs[1], &["produce", "cli", "--key-separator", ":"], Some(&input));
    assert!(ok, "produce: {err}");
    let args =
        ["consume", "cli", "--from-beginning", "--max-messages", "300", "--group", "readers", "--format", "json"];
    let (ok, out, err) = strom_cli(&addrs[2], &args, None);
    assert!(ok, "consume: {err}");
    let mut values: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["value"].as_str().map(str::to_string))
        .collect();
    values.sort();
    let mut expected: Vec<String> = (0..300).map(|i| format!("v{i}")).collect();
    expected.sort();
    assert_eq!(values, expected, "every record once, from every partition");
    let (ok, out, err) = strom_cli(&addrs[0], &["group", "describe", "readers", "-o", "json"], None);
    assert!(ok, "describe: {err}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert!(rows.iter().all(|r| r["lag"].as_i64() == Some(0)), "{rows:?}");
}
