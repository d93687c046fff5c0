//! Storage microbenchmarks: segment append, offset-index lookup and fetch reads at the
//! head, middle and tail of a partition.
//!
//! `cargo bench --bench storage`; `STROM_BENCH_LOG_MIB` sizes the partition the read
//! benchmarks use (default 1024; the README's figure uses 10240 = 10 GiB).

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strom_protocol::records::{BatchBuilder, Compression};
use strom_storage::{Log, LogConfig};

fn batch(n: usize, size: usize) -> Bytes {
    let value = vec![b'x'; size];
    let mut b = BatchBuilder::new(1_700_000_000_000).compression(Compression::None);
    for _ in 0..n {
        b.add(None, Some(&value));
    }
    b.build().freeze()
}

fn append(c: &mut Criterion) {
    let mut g = c.benchmark_group("segment_append");
    for (n, size) in [(16, 1024), (160, 100)] {
        let b = batch(n, size);
        g.throughput(Throughput::Bytes(b.len() as u64));
        g.bench_function(BenchmarkId::new("batch", format!("{n}x{size}B")), |bench| {
            bench.iter_custom(|iters| {
                // A fresh log per sample, so the disk use stays bounded.
                let dir = tempfile::tempdir().expect("tempdir");
                let mut log = Log::open(dir.path(), LogConfig::default()).expect("open");
                let start = Instant::now();
                for _ in 0..iters {
                    log.append(black_box(&b), 0).expect("append");
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

fn reads(c: &mut Criterion) {
    let mib: u64 = std::env::var("STROM_BENCH_LOG_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(dir.path(), LogConfig::default()).expect("open");
    // 64 KiB batches of 64 records: `mib` MiB in 1 GiB segments.
    let b = batch(64, 1000);
    let target = mib << 20;
    while log.size_bytes() < target {
        log.append(&b, 0).expect("append");
    }
    let end = log.log_end_offset();
    eprintln!("partition for read benchmarks: {} MiB, {} records, {} segments", mib, end, log.segment_count());

    let mut g = c.benchmark_group(format!("fetch_read_{mib}MiB_log"));
    g.throughput(Throughput::Bytes(1 << 20));
    for (name, offset) in [("head", 0), ("middle", end / 2), ("tail", end - 2000)] {
        g.bench_function(BenchmarkId::new("1MiB_at", name), |bench| {
            bench.iter(|| log.read(black_box(offset), 1 << 20).expect("read").data.len())
        });
    }
    g.finish();

    // The index lookup alone: one batch at pseudo-random offsets.
    let mut g = c.benchmark_group(format!("index_lookup_{mib}MiB_log"));
    g.measurement_time(Duration::from_secs(3));
    let mut x: u64 = 88_172_645_463_325_252;
    g.bench_function("random_offset", |bench| {
        bench.iter(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            log.read(black_box((x % end as u64) as i64), 1).expect("read").data.len()
        })
    });
    g.finish();
}

criterion_group!(benches, append, reads);
criterion_main!(benches);
