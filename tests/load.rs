//! Load tests (loopback only, bounded in count and time; `./scripts/test.sh load`).
//! Ignored by plain `cargo test`: run with
//! `cargo test --release --test load -- --ignored --nocapture --test-threads=1`.
//! Each prints its figures.

mod common;

use std::time::{Duration, Instant};

use common::{api_versions_frame, api_versions_ok, percentile, rss_kib, send_and_drain, start};
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Produce one record and fetch it back, `n` times; latencies of each round trip pair.
async fn produce_consume(addr: &str, topic: &str, n: usize) -> Vec<Duration> {
    let c = ClientBuilder::new(vec![addr.to_string()]).build().await.expect("client");
    let p = c.partition_client(topic, 0, UnknownTopicHandling::Retry).await.expect("partition");
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let rec = Record {
            key: None,
            value: Some(format!("v{i}").into_bytes()),
            headers: Default::default(),
            timestamp: chrono::Utc::now(),
        };
        let offs = p.produce(vec![rec], Compression::NoCompression).await.expect("produce");
        let (got, _) = p.fetch_records(offs[0], 1..1_000_000, 1_000).await.expect("fetch");
        assert!(!got.is_empty());
        lat.push(t.elapsed());
    }
    lat
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: ./scripts/test.sh load"]
async fn five_thousand_idle_connections_do_not_slow_a_producer_and_consumer() {
    const IDLE: usize = 5_000;
    const OPS: usize = 500;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = ClientBuilder::new(vec![broker.addr.clone()]).build().await.expect("client");
    c.controller_client().expect("controller").create_topic("load", 1, 1, 5_000).await.expect("create");
    produce_consume(&broker.addr, "load", 50).await; // warm-up
    let mut base = produce_consume(&broker.addr, "load", OPS).await;
    let rss0 = rss_kib();
    let t = Instant::now();
    let mut idle = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        idle.push(TcpStream::connect(&broker.addr).await.expect("idle connect"));
    }
    let open_time = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut loaded = produce_consume(&broker.addr, "load", OPS).await;
    let rss1 = rss_kib();
    assert!(api_versions_ok(&broker.addr).await);
    let (b50, b99) = (percentile(&mut base, 0.5), percentile(&mut base, 0.99));
    let (l50, l99) = (percentile(&mut loaded, 0.5), percentile(&mut loaded, 0.99));
    println!(
        "idle connections: {IDLE} opened in {open_time:?}; produce+fetch round trip ({OPS} ops) unloaded p50 {b50:?} p99 {b99:?}; with {IDLE} idle p50 {l50:?} p99 {l99:?}; RSS (broker + clients) {rss0} KiB -> {rss1} KiB (+{} KiB, {:.1} KiB per connection)",
        rss1.saturating_sub(rss0),
        rss1.saturating_sub(rss0) as f64 / IDLE as f64
    );
    // 2x, with 1 ms of slack for sub-millisecond timer noise on a shared 2-core box.
    assert!(l99 <= b99 * 2 + Duration::from_millis(1), "p99 {l99:?} vs unloaded {b99:?}");
    drop(idle);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: ./scripts/test.sh load"]
async fn five_hundred_slowloris_connections_are_closed_by_the_frame_deadline() {
    const N: usize = 500;
    const DEADLINE_MS: u64 = 4_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let deadline = DEADLINE_MS.to_string();
    let broker = start(dir.path(), &[("strom.request.read.timeout.ms", &deadline)]).await;
    let c = ClientBuilder::new(vec![broker.addr.clone()]).build().await.expect("client");
    c.controller_client().expect("controller").create_topic("load", 1, 1, 5_000).await.expect("create");
    produce_consume(&broker.addr, "load", 20).await;
    let mut base = produce_consume(&broker.addr, "load", 200).await;
    let rss0 = rss_kib();
    let start_t = Instant::now();
    let mut tasks = Vec::with_capacity(N);
    for _ in 0..N {
        let addr = broker.addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(&addr).await.expect("connect");
            // Announce 100 MiB (the largest allowed frame), then a byte every second.
            s.write_all(&(100 * 1024 * 1024i32).to_be_bytes()).await.expect("size");
            let t = Instant::now();
            let mut buf = [0u8; 1];
            loop {
                tokio::select! {
                    r = s.read(&mut buf) => { if matches!(r, Ok(0) | Err(_)) { return t.elapsed(); } }
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if s.write_all(&[0]).await.is_err() { return t.elapsed(); }
                    }
                }
                if t.elapsed() > Duration::from_secs(60) {
                    return t.elapsed();
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rss_mid = rss_kib();
    let mut during = produce_consume(&broker.addr, "load", 200).await;
    let mut closed_after = Vec::with_capacity(N);
    for t in tasks {
        closed_after.push(t.await.expect("slowloris task"));
    }
    let rss1 = rss_kib();
    let (b99, d99) = (percentile(&mut base, 0.99), percentile(&mut during, 0.99));
    let latest = percentile(&mut closed_after, 1.0);
    println!(
        "slowloris: {N} connections announcing 100 MiB, 1 byte/s; all closed after at most {latest:?} (deadline {DEADLINE_MS} ms), total {:?}; RSS {rss0} KiB -> {rss_mid} KiB while held -> {rss1} KiB; produce+fetch p99 {b99:?} unloaded, {d99:?} during",
        start_t.elapsed()
    );
    assert!(latest <= Duration::from_millis(DEADLINE_MS + 2_000), "a slowloris lived {latest:?}");
    assert!(rss_mid.saturating_sub(rss0) < 64 * 1024, "slowloris held {} KiB", rss_mid - rss0);
    assert!(api_versions_ok(&broker.addr).await);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: ./scripts/test.sh load"]
async fn ten_thousand_oversized_or_negative_frames_each_close_their_connection() {
    const N: usize = 10_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    for _ in 0..200 {
        send_and_drain(&broker.addr, &[0x7f, 0xff, 0xff, 0xff], Duration::from_secs(5)).await;
    }
    let rss0 = rss_kib();
    let t = Instant::now();
    let mut closed = 0usize;
    let mut rss_max = rss0;
    for chunk in 0..(N / 50) {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..50 {
            let addr = broker.addr.clone();
            let size: i32 = match (chunk * 50 + i) % 4 {
                0 => i32::MAX,
                1 => -1,
                2 => i32::MIN,
                _ => 100 * 1024 * 1024 + 1,
            };
            set.spawn(async move {
                let mut frame = size.to_be_bytes().to_vec();
                frame.extend(api_versions_frame(1));
                send_and_drain(&addr, &frame, Duration::from_secs(5)).await
            });
        }
        while let Some(r) = set.join_next().await {
            let (got, c) = r.expect("task");
            if c && got == 0 {
                closed += 1;
            }
        }
        rss_max = rss_max.max(rss_kib());
    }
    let rss1 = rss_kib();
    println!(
        "oversized/negative frames: {closed}/{N} connections closed with no reply in {:?}; RSS {rss0} KiB -> {rss1} KiB (max {rss_max} KiB)",
        t.elapsed()
    );
    assert_eq!(closed, N);
    assert!(rss_max.saturating_sub(rss0) < 8 * 1024, "RSS grew {} KiB", rss_max - rss0);
    assert!(api_versions_ok(&broker.addr).await);
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "load test: ./scripts/test.sh load"]
async fn a_consumer_that_stops_reading_does_not_stall_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = ClientBuilder::new(vec![broker.addr.clone()]).build().await.expect("client");
    c.controller_client().expect("controller").create_topic("load", 1, 1, 5_000).await.expect("create");
    let mut base = produce_consume(&broker.addr, "load", 200).await;
    // A client pipelining ApiVersions requests and never reading: its socket buffers fill.
    let mut greedy = TcpStream::connect(&broker.addr).await.expect("connect");
    let pipelined: Vec<u8> = (0..20_000).flat_map(api_versions_frame).collect();
    let _ = tokio::time::timeout(Duration::from_secs(3), greedy.write_all(&pipelined)).await;
    // The broker answers until the greedy client's socket buffers are full, then its
    // connection task waits on the write and costs nothing; measure from then on.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut during = produce_consume(&broker.addr, "load", 200).await;
    let (b99, d99) = (percentile(&mut base, 0.99), percentile(&mut during, 0.99));
    println!("slow reader: produce+fetch p99 {b99:?} alone, {d99:?} while another client stops reading");
    assert!(d99 <= b99 * 2 + Duration::from_millis(1));
    drop(greedy);
    broker.stop().await;
}
