//! Codec and validation microbenchmarks: Produce and Fetch at their newest versions,
//! and produce-side batch validation with each codec.
//!
//! `cargo bench --bench codec` (figures: README, "Benchmarks").

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use strom::api::produce::{validate, Policy};
use strom_protocol::records::{BatchBuilder, Compression};
use strom_protocol::{fetch_response, produce_request, FetchResponse, Message, ProduceRequest, Reader, Uuid, Writer};

const NOW: i64 = 1_700_000_000_000;

/// A batch of `n` records of `size` bytes of uppercase letters (compressible like real text).
fn batch(n: usize, size: usize, codec: Compression) -> Bytes {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut b = BatchBuilder::new(NOW).compression(codec);
    for _ in 0..n {
        let value: Vec<u8> = (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'A' + (x % 26) as u8
            })
            .collect();
        b.add(None, Some(&value));
    }
    b.build().freeze()
}

/// Encodes to chunks, as the server writes them (vectored; record data by reference).
fn encode<M: Message>(m: &M, version: i16) -> Vec<Bytes> {
    let mut w = Writer::new();
    m.encode(&mut w, version).expect("encodable");
    w.into_chunks()
}

fn contiguous(chunks: Vec<Bytes>) -> Bytes {
    Bytes::from(chunks.concat())
}

fn produce(c: &mut Criterion) {
    let records = batch(16, 1024, Compression::None);
    let req = ProduceRequest {
        acks: 1,
        timeout_ms: 30_000,
        topic_data: vec![produce_request::TopicProduceData {
            name: "bench".into(),
            topic_id: Uuid([7; 16]),
            partition_data: vec![produce_request::PartitionProduceData {
                index: 0,
                records: Some(records.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let v = ProduceRequest::MAX_VERSION;
    let wire = contiguous(encode(&req, v));
    let mut g = c.benchmark_group(format!("produce_request_v{v}"));
    g.throughput(Throughput::Bytes(wire.len() as u64));
    g.bench_function("encode_16KiB", |b| b.iter(|| encode(black_box(&req), v)));
    g.bench_function("decode_16KiB", |b| {
        b.iter(|| ProduceRequest::decode(&mut Reader::new(black_box(wire.clone())), v).expect("decodes"))
    });
    g.finish();
}

fn fetch(c: &mut Criterion) {
    let one = batch(1024, 1024, Compression::None);
    let resp = FetchResponse {
        responses: vec![fetch_response::FetchableTopicResponse {
            topic: "bench".into(),
            topic_id: Uuid([7; 16]),
            partitions: (0..4)
                .map(|p| fetch_response::PartitionData {
                    partition_index: p,
                    high_watermark: 1 << 20,
                    last_stable_offset: 1 << 20,
                    log_start_offset: 0,
                    preferred_read_replica: -1,
                    records: Some(one.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let v = FetchResponse::MAX_VERSION;
    let wire = contiguous(encode(&resp, v));
    let mut g = c.benchmark_group(format!("fetch_response_v{v}"));
    g.throughput(Throughput::Bytes(wire.len() as u64));
    // Record data is shared, not copied, on both sides: cost is per partition, not per byte.
    g.bench_function("encode_4x1MiB", |b| b.iter(|| encode(black_box(&resp), v)));
    g.bench_function("decode_4x1MiB", |b| {
        b.iter(|| FetchResponse::decode(&mut Reader::new(black_box(wire.clone())), v).expect("decodes"))
    });
    g.finish();
}

fn validation(c: &mut Criterion) {
    let policy = Policy {
        max_bytes: 1 << 20,
        codec: None,
        log_append_time: false,
        before_ms: i64::MAX,
        after_ms: i64::MAX,
        flush_messages: i64::MAX,
        compacted: false,
        schema: None,
    };
    let mut g = c.benchmark_group("validate_batch_16x1KiB");
    g.throughput(Throughput::Bytes(16 * 1024));
    for codec in [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd] {
        let records = batch(16, 1024, codec);
        g.bench_with_input(BenchmarkId::from_parameter(codec.name()), &records, |b, r| {
            b.iter(|| validate(black_box(r), 12, &policy, NOW).expect("valid"))
        });
    }
    g.finish();
}

criterion_group!(benches, produce, fetch, validation);
criterion_main!(benches);
