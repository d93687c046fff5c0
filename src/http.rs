//! The HTTP admin endpoint (`/metrics`, `/livez`, `/readyz`).
//!
//! A deliberately tiny HTTP/1.1 responder on tokio: it answers three GET paths and
//! closes each connection, which keeps a full HTTP stack (hyper and its dependencies)
//! out of the broker for an endpoint that only scrapers and probes use.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::metrics::{CommittedSample, FollowerSample, PartitionSample, Scrape};
use crate::node::Node;

/// Reads the scrape-time gauges' inputs from the node.
pub fn scrape(node: &Node) -> Scrape {
    let mut s = Scrape::default();
    let now = strom_storage::now_ms();
    let cluster = node.meta.quorum().is_some();
    for topic in node.meta.topics() {
        // A single broker: every ISR has one replica.
        let min_isr: i64 = node.meta.topic_setting(&topic, "min.insync.replicas").parse().unwrap_or(1);
        if min_isr > 1 && !cluster {
            s.under_min_isr += topic.partitions.len() as i64;
        }
        for p in &topic.partitions {
            let leo = p.log_end_offset();
            s.partitions.push(PartitionSample {
                topic: topic.name.to_string(),
                partition: p.index,
                size_bytes: p.size_bytes(),
                log_end_offset: leo,
                log_start_offset: p.log_start_offset(),
                high_watermark: p.high_watermark(),
                last_stable_offset: p.last_stable_offset(),
            });
            // In a cluster the leader of each partition reports its replicas.
            let Some(v) = p.replication_view() else { continue };
            s.under_min_isr += i64::from(v.isr.len() < v.min_isr);
            s.under_replicated += i64::from(v.isr.len() < v.replicas.len());
            for (replica, f) in v.followers {
                s.followers.push(FollowerSample {
                    topic: topic.name.to_string(),
                    partition: p.index,
                    replica,
                    lag_records: (leo - f.leo.max(0)).max(0),
                    lag_ms: (now - f.last_caught_up_ms).max(0),
                });
            }
        }
    }
    if let Some(q) = node.meta.quorum() {
        let v = q.view();
        let image = node.meta.image();
        s.quorum = Some(crate::metrics::QuorumSample {
            is_leader: v.leader == Some(v.id) && v.voter,
            term: v.term as i64,
            applied_offset: v.applied_end,
            log_end_offset: v.log_end,
            lag: (v.log_end - v.applied_end).max(0),
            fenced_brokers: image.brokers.values().filter(|b| b.fenced).count() as i64,
            brokers: image.brokers.len() as i64,
            leaderless_partitions: image
                .topics
                .values()
                .flat_map(|t| t.partitions.values())
                .filter(|p| p.leader < 0)
                .count() as i64,
        });
    }
    let (ids, ongoing) = node.txns.counts();
    let st = &node.txns.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    s.transactions = crate::metrics::TxnSample {
        ids: ids as i64,
        ongoing: ongoing as i64,
        committed: load(&st.committed),
        aborted: load(&st.aborted),
        timed_out: load(&st.timed_out),
        markers: load(&st.markers),
        load_ms: load(&st.load_ms),
    };
    let reg = &node.registry;
    let (schemas, subjects) = reg.sizes();
    s.registry = crate::metrics::RegistrySample {
        ok: load(&reg.stats.requests_ok),
        client_errors: load(&reg.stats.requests_client_error),
        server_errors: load(&reg.stats.requests_server_error),
        schemas: schemas as i64,
        subjects: subjects as i64,
    };
    let (t, partitions, sessions) = node.shares.totals();
    s.share = crate::metrics::ShareSample {
        acquired: t.acquired,
        accepted: t.accepted,
        released: t.released,
        archived: t.archived,
        lock_timeouts: t.lock_timeouts,
        renewed: t.renewed,
        partitions: partitions as i64,
        sessions: sessions as i64,
    };
    let mut rows = Vec::new();
    node.groups.for_each_group(|name, g| {
        for ((topic, partition), v) in g.offsets() {
            rows.push((name.to_string(), topic.clone(), *partition, v.offset));
        }
    });
    for (group, topic, partition, offset) in rows {
        let Some(p) = node.meta.partition(&topic, partition) else { continue };
        s.committed.push(CommittedSample { group, topic, partition, offset, log_end_offset: p.high_watermark() });
    }
    s
}

/// Serves `/metrics`, `/livez` and `/readyz` on `listener` until the task is dropped.
pub async fn serve_http(listener: TcpListener, node: Arc<Node>) {
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "admin listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let node = node.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(&mut stream, &node)).await;
        });
    }
}

async fn answer(stream: &mut tokio::net::TcpStream, node: &Node) -> std::io::Result<()> {
    // Read the request head (bounded); the body of a GET is ignored.
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 16 * 1024 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let text = "text/plain; charset=utf-8";
    let (status, ctype, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            ("200 OK", "application/openmetrics-text; version=1.0.0; charset=utf-8", node.metrics.render(&scrape(node)))
        }
        ("GET" | "HEAD", "/livez") => ("200 OK", text, "ok\n".to_string()),
        ("GET" | "HEAD", "/readyz") => {
            if node.groups.is_loaded() {
                ("200 OK", text, "ok\n".to_string())
            } else {
                ("503 Service Unavailable", text, "loading __consumer_offsets\n".to_string())
            }
        }
        ("GET" | "HEAD", _) => ("404 Not Found", text, "not found\n".to_string()),
        _ => ("405 Method Not Allowed", text, "only GET\n".to_string()),
    };
    let mut resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        resp.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&resp).await?;
    stream.shutdown().await
}
