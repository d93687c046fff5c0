//! The `strom` admin CLI run as a real binary against an in-process broker, and the
//! HTTP admin endpoint scraped after a produce/consume run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use strom::config::Config;
use tokio::sync::oneshot;

struct Running {
    addr: String,
    http: String,
    _stop: oneshot::Sender<()>,
}

async fn start(dir: &Path) -> Running {
    let overrides: BTreeMap<String, String> = BTreeMap::from([
        ("listeners".to_string(), "PLAINTEXT://127.0.0.1:0".to_string()),
        ("log.dirs".to_string(), dir.display().to_string()),
        ("offsets.topic.num.partitions".to_string(), "3".to_string()),
        ("strom.http.listener".to_string(), "127.0.0.1:0".to_string()),
    ]);
    let config = Config::from_sources(None, &BTreeMap::new(), &overrides).expect("config");
    let broker = strom::Broker::bind(config).await.expect("bind");
    let addr = broker.local_addr().expect("addr").to_string();
    let http = broker.http_addr().expect("http addr").to_string();
    let node = broker.node.clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(broker.run(async move {
        let _ = rx.await;
    }));
    while !node.groups.is_loaded() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Running { addr, http, _stop: tx }
}

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `strom ARGS` against `addr` (blocking, off the runtime's workers).
async fn strom(addr: &str, args: &[&str], stdin: Option<String>) -> Out {
    let addr = addr.to_string();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(&args)
            .env("STROM_BOOTSTRAP", &addr)
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
        Out {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("join")
}

async fn ok(addr: &str, args: &[&str]) -> String {
    let out = strom(addr, args, None).await;
    assert!(out.ok, "strom {args:?} failed: {}{}", out.stdout, out.stderr);
    out.stdout
}

fn json(s: &str) -> Vec<serde_json::Value> {
    serde_json::from_str::<Vec<serde_json::Value>>(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cli_command_against_a_live_broker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = start(dir.path()).await;
    let a = b.addr.as_str();

    let out = ok(a, &["topic", "create", "orders", "--partitions", "3"]).await;
    assert!(out.contains("orders") && out.contains("created"), "{out}");
    let list = ok(a, &["topic", "list"]).await;
    assert!(list.lines().any(|l| l.starts_with("orders ") && l.contains(" 3 ")), "{list}");
    assert!(!list.contains("__consumer_offsets"), "internal topics are hidden by default: {list}");

    ok(a, &["topic", "alter", "orders", "--partitions", "4", "--config", "retention.ms=123456"]).await;
    let rows = json(&ok(a, &["topic", "describe", "orders", "--output", "json"]).await);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows.iter().all(|r| r["configs"].as_str().unwrap_or("").contains("retention.ms=123456")), "{rows:?}");
    assert_eq!(rows[3]["partition"], 3);
    assert_eq!(rows[0]["leader"], 1);

    // Produce 40 keyed records with a header from stdin.
    let input: String = (0..40).map(|i| format!("key-{i}:value-{i}\n")).collect();
    let out = strom(a, &["produce", "orders", "--key-separator", ":", "--header", "src=cli-test"], Some(input)).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stderr.contains("produced 40 records"), "progress summary: {}", out.stderr);
    let rows = json(&ok(a, &["topic", "describe", "orders", "-o", "json"]).await);
    let total: i64 = rows.iter().map(|r| r["log_end_offset"].as_i64().expect("leo")).sum();
    assert_eq!(total, 40);

    let out = ok(
        a,
        &[
            "consume",
            "orders",
            "--from-beginning",
            "--max-messages",
            "40",
            "--print-key",
            "--print-headers",
            "--separator",
            "|",
        ],
    )
    .await;
    let got: BTreeSet<String> = out.lines().map(String::from).collect();
    let want: BTreeSet<String> = (0..40).map(|i| format!("src:cli-test|key-{i}|value-{i}")).collect();
    assert_eq!(got, want);
    let out =
        ok(a, &["consume", "orders", "--partition", "0", "--offset", "0", "--max-messages", "1", "--format", "json"])
            .await;
    let rec: serde_json::Value = serde_json::from_str(out.trim()).expect("json record");
    assert_eq!((rec["partition"].as_i64(), rec["offset"].as_i64()), (Some(0), Some(0)));
    assert!(rec["value"].as_str().expect("value").starts_with("value-"));

    // A consumer reads 15 of the 40 records and commits: 25 remain as lag.
    ok(a, &["consume", "orders", "--from-beginning", "--max-messages", "15", "--group", "billing"]).await;
    let table = ok(a, &["group", "describe", "billing"]).await;
    let header = table.lines().next().expect("header");
    for col in
        ["GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID"]
    {
        assert!(header.contains(col), "{header}");
    }
    let rows = json(&ok(a, &["group", "describe", "billing", "-o", "json"]).await);
    assert_eq!(rows.len(), 4, "one row per partition: {rows:?}");
    let lag: i64 = rows.iter().map(|r| r["lag"].as_i64().expect("lag")).sum();
    let current: i64 = rows.iter().map(|r| r["current_offset"].as_i64().expect("current")).sum();
    assert_eq!((lag, current), (25, 15), "{rows:?}");
    for r in &rows {
        assert_eq!(
            r["lag"].as_i64().expect("lag"),
            r["log_end_offset"].as_i64().expect("leo") - r["current_offset"].as_i64().expect("cur")
        );
    }
    // Consuming again with the group resumes from the committed offsets.
    let out = ok(a, &["consume", "orders", "--max-messages", "25", "--group", "billing"]).await;
    assert_eq!(out.lines().count(), 25);
    let rows = json(&ok(a, &["group", "describe", "billing", "-o", "json"]).await);
    assert_eq!(rows.iter().map(|r| r["lag"].as_i64().expect("lag")).sum::<i64>(), 0);

    let list = ok(a, &["group", "list"]).await;
    assert!(list.lines().any(|l| l.starts_with("billing ")), "{list}");

    // Reset: a dry run changes nothing, --execute does.
    ok(a, &["group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest"]).await;
    let rows = json(&ok(a, &["group", "describe", "billing", "-o", "json"]).await);
    assert_eq!(rows.iter().map(|r| r["lag"].as_i64().expect("lag")).sum::<i64>(), 0);
    ok(a, &["group", "reset-offsets", "billing", "--topic", "orders", "--to-earliest", "--execute"]).await;
    let rows = json(&ok(a, &["group", "describe", "billing", "-o", "json"]).await);
    assert_eq!(rows.iter().map(|r| r["lag"].as_i64().expect("lag")).sum::<i64>(), 40);

    ok(a, &["group", "delete", "billing"]).await;
    let list = ok(a, &["group", "list"]).await;
    assert!(!list.contains("billing"), "{list}");

    let info = ok(a, &["cluster", "info"]).await;
    assert!(info.contains("Cluster id:") && info.contains("Produce") && info.contains("127.0.0.1"), "{info}");
    let info: serde_json::Value = serde_json::from_str(&ok(a, &["cluster", "info", "-o", "json"]).await).expect("json");
    assert_eq!(info["brokers"][0]["node_id"], 1);

    let health = strom(a, &["health"], None).await;
    assert!(health.ok && health.stdout.starts_with("ok"), "{}{}", health.stdout, health.stderr);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    };
    let down = strom(&closed, &["health", "--timeout-ms", "2000"], None).await;
    assert!(!down.ok, "health must fail against a closed port");
    assert!(down.stderr.contains("error:"), "{}", down.stderr);

    let bad = strom(a, &["topic", "describe", "missing"], None).await;
    assert!(!bad.ok && bad.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"), "{}", bad.stderr);

    ok(a, &["topic", "delete", "orders"]).await;
    let list = ok(a, &["topic", "list"]).await;
    assert!(!list.contains("orders"), "{list}");
}

/// `strom group describe` shows the members and assignments of a KIP-848
/// (consumer-protocol) group, which only ConsumerGroupDescribe describes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_describe_shows_consumer_protocol_members() {
    use strom_protocol::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
    let dir = tempfile::tempdir().expect("tempdir");
    let b = start(dir.path()).await;
    let a = b.addr.as_str();
    ok(a, &["topic", "create", "events", "--partitions", "2"]).await;
    let mut c = strom_client::Client::connect(a, std::time::Duration::from_secs(10)).await.expect("connect");
    let hb = ConsumerGroupHeartbeatRequest {
        group_id: "modern".into(),
        member_id: "member-one".into(),
        member_epoch: 0,
        rebalance_timeout_ms: 60_000,
        subscribed_topic_names: Some(vec!["events".into()]),
        ..Default::default()
    };
    let joined: ConsumerGroupHeartbeatResponse = c.call_at(1, &hb).await.expect("heartbeat");
    assert_eq!(joined.error_code, 0, "{joined:?}");
    let assigned =
        joined.assignment.as_ref().map_or(0, |a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum());
    assert_eq!(assigned, 2, "a lone member gets both partitions: {joined:?}");

    let rows = json(&ok(a, &["group", "describe", "modern", "-o", "json"]).await);
    assert_eq!(rows.len(), 2, "one row per assigned partition: {rows:?}");
    for r in &rows {
        assert_eq!(r["topic"], "events", "{rows:?}");
        assert_eq!(r["consumer_id"], "member-one", "{rows:?}");
    }
}

/// `strom group list` and `strom group describe` show a share group (KIP-932): its type,
/// and one row per member and assigned partition (two members share the one partition).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commands_show_share_groups() {
    use strom_protocol::{ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse};
    let dir = tempfile::tempdir().expect("tempdir");
    let b = start(dir.path()).await;
    let a = b.addr.as_str();
    ok(a, &["topic", "create", "jobs", "--partitions", "1"]).await;
    let mut c = strom_client::Client::connect(a, std::time::Duration::from_secs(10)).await.expect("connect");
    for member in ["worker-1", "worker-2"] {
        let hb = ShareGroupHeartbeatRequest {
            group_id: "queue".into(),
            member_id: member.into(),
            member_epoch: 0,
            subscribed_topic_names: Some(vec!["jobs".into()]),
            ..Default::default()
        };
        let joined: ShareGroupHeartbeatResponse = c.call_at(1, &hb).await.expect("heartbeat");
        assert_eq!(joined.error_code, 0, "{joined:?}");
    }
    let groups = json(&ok(a, &["group", "list", "-o", "json"]).await);
    let queue = groups.iter().find(|g| g["group"] == "queue").unwrap_or_else(|| panic!("{groups:?}"));
    assert_eq!((queue["type"].as_str(), queue["state"].as_str()), (Some("share"), Some("Stable")), "{groups:?}");
    let rows = json(&ok(a, &["group", "describe", "queue", "-o", "json"]).await);
    let members: Vec<&str> = rows.iter().filter_map(|r| r["consumer_id"].as_str()).collect();
    assert_eq!(members, ["worker-1", "worker-2"], "{rows:?}");
    assert!(rows.iter().all(|r| r["topic"] == "jobs" && r["partition"] == 0 && r["lag"].is_null()), "{rows:?}");
    // Five records; worker-1 takes them all and accepts two: the start offset moves to 2,
    // three are in flight, three are left to do.
    let input: String = (0..5).map(|i| format!("job-{i}\n")).collect();
    let out = strom(a, &["produce", "jobs"], Some(input)).await;
    assert!(out.ok, "{}", out.stderr);
    let md: strom_protocol::MetadataResponse =
        c.call_at(12, &strom_protocol::MetadataRequest { topics: None, ..Default::default() }).await.expect("metadata");
    let id = md.topics.iter().find(|t| t.name.as_deref() == Some("jobs")).map(|t| t.topic_id).expect("jobs");
    assert_eq!(common::set_group_configs(&mut c, "queue", &[("share.auto.offset.reset", "earliest")]).await.0, 0);
    let got: strom_protocol::ShareFetchResponse =
        c.call_at(1, &common::share_fetch("queue", "worker-1", 0, id, &[0], &[], 5000)).await.expect("fetch");
    assert_eq!(common::acquired(&got), [(0, 4, 1)]);
    let acked: strom_protocol::ShareFetchResponse =
        c.call_at(1, &common::share_fetch("queue", "worker-1", 1, id, &[0], &[(0, 1, 1)], 0)).await.expect("ack");
    assert_eq!(acked.responses[0].partitions[0].acknowledge_error_code, 0);
    let rows = json(&ok(a, &["group", "describe", "queue", "-o", "json"]).await);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in &rows {
        let cells = [&r["current_offset"], &r["log_end_offset"], &r["in_flight"], &r["lag"]].map(|v| v.as_i64());
        assert_eq!(cells, [Some(2), Some(5), Some(3), Some(3)], "{rows:?}");
    }
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect http");
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read");
    let status: u16 = resp.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

fn sample(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape.samples.iter().find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))).map(
        |s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_records_and_lag_after_a_produce_consume_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = start(dir.path()).await;
    let a = b.addr.as_str();
    ok(a, &["topic", "create", "metered", "--partitions", "2"]).await;
    let input: String = (0..30).map(|i| format!("k{i}:v{i}\n")).collect();
    let out = strom(a, &["produce", "metered", "--key-separator", ":"], Some(input)).await;
    assert!(out.ok, "{}", out.stderr);
    ok(a, &["consume", "metered", "--from-beginning", "--max-messages", "12", "--group", "scraped"]).await;
    let rows = json(&ok(a, &["group", "describe", "scraped", "-o", "json"]).await);

    let http = b.http.clone();
    let (status, body) = tokio::task::spawn_blocking(move || http_get(&http, "/metrics")).await.expect("join");
    assert_eq!(status, 200, "{body}");
    let scrape = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parse");

    assert_eq!(sample(&scrape, "strom_topic_records_in_total", &[("topic", "metered")]), Some(30.0), "{body}");
    let bytes_in = sample(&scrape, "strom_topic_bytes_in_total", &[("topic", "metered")]).expect("bytes in");
    assert!(bytes_in > 30.0 * 4.0, "{bytes_in}");
    let out = sample(&scrape, "strom_topic_records_out_total", &[("topic", "metered")]).expect("records out");
    assert!((12.0..=30.0).contains(&out), "records sent to the consumer: {out}");
    assert_eq!(sample(&scrape, "strom_partitions", &[]), Some(2.0 + 3.0), "metered + __consumer_offsets");
    assert_eq!(sample(&scrape, "strom_under_min_isr_partitions", &[]), Some(0.0));
    assert_eq!(sample(&scrape, "strom_storage_errors_total", &[]), Some(0.0));
    assert!(sample(&scrape, "strom_log_size_bytes", &[("topic", "metered"), ("partition", "0")]).expect("size") > 0.0);
    assert!(sample(&scrape, "strom_active_connections", &[]).is_some());
    assert!(sample(&scrape, "strom_requests_total", &[("api", "Produce")]).expect("produce requests") >= 1.0);
    assert!(
        sample(&scrape, "strom_request_latency_seconds_count", &[("api", "Fetch")]).expect("fetch latency") >= 1.0,
        "{body}"
    );

    // Lag per partition matches what `group describe` computed, and sums to the unconsumed 18.
    let mut total_lag = 0.0;
    for r in &rows {
        let p = r["partition"].as_i64().expect("partition").to_string();
        let lag = sample(
            &scrape,
            "strom_consumergroup_lag",
            &[("group", "scraped"), ("topic", "metered"), ("partition", &p)],
        )
        .expect("lag sample");
        assert_eq!(lag, r["lag"].as_i64().expect("lag") as f64);
        total_lag += lag;
    }
    assert_eq!(total_lag, 18.0);

    let http = b.http.clone();
    let probes = tokio::task::spawn_blocking(move || {
        (http_get(&http, "/livez").0, http_get(&http, "/readyz").0, http_get(&http, "/nope").0)
    })
    .await
    .expect("join");
    assert_eq!(probes, (200, 200, 404));
}
