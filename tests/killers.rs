//! The network-level killers of `fuzz/corpus-killers/network/` sent to a live
//! in-process broker: each closes (or is answered on) its own connection, the broker
//! keeps serving, and its RSS stays flat (growth < 16 MiB after a warm-up round).

mod common;

use std::path::Path;
use std::time::Duration;

use common::{api_versions_ok, rss_kib, send_and_drain, start};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_killers_close_their_connection_and_leave_rss_flat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = start(dir.path(), &[]).await;
    let c = rskafka::client::ClientBuilder::new(vec![broker.addr.clone()]).build().await.expect("client");
    c.controller_client().expect("controller").create_topic("killers", 1, 1, 5_000).await.expect("create");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus-killers/network");
    let mut killers: Vec<(String, Vec<u8>)> = std::fs::read_dir(&corpus)
        .expect("corpus")
        .map(|e| e.expect("entry").path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).expect("read")))
        .collect();
    killers.sort();
    assert!(killers.len() >= 6, "network killers missing");
    // Warm-up round: allocator arenas, the topic's segment mapping, codec state.
    for (_, k) in &killers {
        send_and_drain(&broker.addr, k, Duration::from_secs(5)).await;
    }
    let before = rss_kib();
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        for (name, k) in &killers {
            let (got, closed) = send_and_drain(&broker.addr, k, Duration::from_secs(5)).await;
            // Produce killers that decode (bombs) get a response with CORRUPT_MESSAGE
            // and the connection stays open; everything else is closed by the broker.
            if !name.starts_with("produce-") || name.contains("count") {
                assert!(closed && got == 0, "{name}: round {round}: got {got} bytes, closed {closed}");
            }
        }
        assert!(api_versions_ok(&broker.addr).await, "broker stopped serving after round {round}");
    }
    let after = rss_kib();
    let growth = after.saturating_sub(before);
    println!(
        "network killers: {} kinds x {ROUNDS} rounds; RSS {before} KiB -> {after} KiB (growth {growth} KiB)",
        killers.len()
    );
    assert!(growth < 16 * 1024, "RSS grew {growth} KiB");
    broker.stop().await;
}
