//! Replays the committed corpus of known killer inputs (`fuzz/corpus-killers/<target>/`)
//! through the same `harness` entry points the fuzz targets call, and checks that
//! decoding a request frame of N bytes never holds more than 16·N + 1 MiB of heap
//! (measured with a counting global allocator).
//!
//! `cargo test -p strom-protocol --test killers -- --ignored regenerate` rewrites the
//! corpus (network-level killers are replayed against a live broker by the broker's
//! own `tests/killers.rs`; storage ones by `storage/tests/killers.rs`).

// The counting allocator below is the only unsafe code: it forwards every call to the
// system allocator unchanged and only counts bytes.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use strom_protocol::compression::compress;
use strom_protocol::harness;
use strom_protocol::records::{BatchBuilder, Compression};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// Heap measurements are global: tests that measure run one at a time.
static MEASURE: Mutex<()> = Mutex::new(());

// SAFETY: every method forwards to `System` with the caller's arguments; the counters
// have no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(l.size(), Ordering::Relaxed) + l.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` was allocated by `System` with layout `l` (every allocation goes through it).
        unsafe { System.dealloc(p, l) };
        CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; `new` is the caller's size.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                let now = CURRENT.fetch_add(new - l.size(), Ordering::Relaxed) + new - l.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(l.size() - new, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak heap above the starting level while `f` runs.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    f();
    PEAK.load(Ordering::Relaxed).saturating_sub(base)
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus-killers")
}

fn files(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir().join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).expect("read")))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no killers for {target}");
    out
}

const MIB: usize = 1 << 20;

fn heap_bound(n: usize) -> usize {
    16 * n + MIB
}

#[test]
fn request_frame_killers_fail_cleanly_within_the_heap_bound() {
    let _g = MEASURE.lock().unwrap_or_else(|p| p.into_inner());
    for (name, data) in files("request_frame") {
        let n = data.len();
        let t = std::time::Instant::now();
        let peak = peak_during(|| {
            let _ = harness::decode_frame(Bytes::from(data.clone()), false);
        });
        println!("request_frame/{name}: {n} bytes, peak heap {peak} B, {:?}", t.elapsed());
        assert!(peak <= heap_bound(n), "{name}: peak heap {peak} > 16*{n} + 1 MiB");
        assert!(t.elapsed().as_secs() < 2, "{name} took {:?}", t.elapsed());
        let _ = harness::request_frame(&data);
    }
}

#[test]
fn request_body_killers_fail_cleanly_within_the_heap_bound() {
    let _g = MEASURE.lock().unwrap_or_else(|p| p.into_inner());
    for (name, data) in files("request_body") {
        let n = data.len();
        let peak = peak_during(|| {
            let body = Bytes::copy_from_slice(data.get(2..).unwrap_or_default());
            let _ = harness::body_with_selector(&data, body, false);
        });
        println!("request_body/{name}: {n} bytes, peak heap {peak} B");
        assert!(peak <= heap_bound(n), "{name}: peak heap {peak} > 16*{n} + 1 MiB");
        let _ = harness::request_body(&data);
    }
}

/// Mutations of every request killer and of random bytes, for every API and version:
/// the heap bound holds for each (a cheap in-`cargo test` complement to fuzzing).
#[test]
fn mutated_requests_stay_within_the_heap_bound() {
    let _g = MEASURE.lock().unwrap_or_else(|p| p.into_inner());
    let mut seeds: Vec<Vec<u8>> = files("request_body").into_iter().map(|f| f.1).collect();
    seeds.retain(|s| s.len() <= 64 * 1024);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut worst = (0usize, 0usize);
    for i in 0..20_000 {
        let mut data = if i % 2 == 0 && !seeds.is_empty() {
            seeds[(next() as usize) % seeds.len()].clone()
        } else {
            (0..(next() % 256) as usize).map(|_| next() as u8).collect()
        };
        data.truncate(data.len().max(2));
        if data.len() < 2 {
            data.resize(2, 0);
        }
        data[0] = (i % 251) as u8;
        data[1] = (i / 251) as u8;
        for _ in 0..(next() % 8) {
            if data.len() > 2 {
                let at = 2 + (next() as usize) % (data.len() - 2);
                data[at] = match next() % 4 {
                    0 => 0xff,
                    1 => 0x7f,
                    2 => 0,
                    _ => next() as u8,
                };
            }
        }
        let n = data.len();
        let peak = peak_during(|| {
            let _ = harness::body_with_selector(&data, Bytes::copy_from_slice(&data[2..]), false);
        });
        assert!(peak <= heap_bound(n), "input {data:02x?}: peak heap {peak} > 16*{n} + 1 MiB");
        if peak > worst.0 {
            worst = (peak, n);
        }
    }
    println!("20000 mutated bodies: largest peak heap {} B for a {}-byte input (bound 16 N + 1 MiB)", worst.0, worst.1);
}

#[test]
fn record_batch_and_codec_killers_are_refused_with_bounded_output() {
    // Not measured, but holds the lock so its allocations do not count against others.
    let _g = MEASURE.lock().unwrap_or_else(|p| p.into_inner());
    for (name, data) in files("record_batches") {
        let t = std::time::Instant::now();
        harness::record_batches(&data);
        println!("record_batches/{name}: {} bytes, {:?}", data.len(), t.elapsed());
    }
    for (name, data) in files("decompress") {
        let t = std::time::Instant::now();
        harness::decompress_any(&data);
        println!("decompress/{name}: {} bytes, {:?}", data.len(), t.elapsed());
    }
    for (_, data) in files("varints") {
        harness::varints(&data);
    }
}

// ---- the corpus generator ----------------------------------------------------------

fn header(key: i16, version: i16, flexible: bool) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(key.to_be_bytes());
    h.extend(version.to_be_bytes());
    h.extend(7i32.to_be_bytes());
    h.extend((-1i16).to_be_bytes()); // null client id
    if flexible {
        h.push(0); // no header tagged fields
    }
    h
}

fn uvarint(mut v: u32, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// (api index in API_SCHEMAS, version offset) selector for the request_body target.
fn selector(key: i16, version: i16) -> [u8; 2] {
    let i = strom_protocol::API_SCHEMAS.iter().position(|a| a.key == key).expect("api");
    let s = &strom_protocol::API_SCHEMAS[i];
    [i as u8, (version - s.min_version) as u8]
}

/// A Produce v3 request frame (no size prefix) carrying `batch` for topic `killers`.
pub fn produce_v3(batch: &[u8]) -> Vec<u8> {
    let mut f = header(0, 3, false);
    f.extend((-1i16).to_be_bytes()); // transactional id
    f.extend(1i16.to_be_bytes()); // acks
    f.extend(5000i32.to_be_bytes());
    f.extend(1i32.to_be_bytes());
    f.extend(7i16.to_be_bytes());
    f.extend(b"killers");
    f.extend(1i32.to_be_bytes());
    f.extend(0i32.to_be_bytes());
    f.extend((batch.len() as i32).to_be_bytes());
    f.extend(batch);
    f
}

fn bomb_batch(codec: Compression) -> Vec<u8> {
    let zeros = vec![0u8; 100 * MIB];
    let mut b = BatchBuilder::new(1_700_000_000_000).compression(codec);
    b.add(None, Some(&zeros));
    b.build().to_vec()
}

#[test]
#[ignore = "rewrites fuzz/corpus-killers; run by hand"]
fn regenerate_killer_corpus() {
    let root = corpus_dir();
    let write = |target: &str, name: &str, data: &[u8]| {
        let d = root.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), data).unwrap();
    };
    // Bodies: (name, key, version, body).
    let mut bodies: Vec<(&str, i16, i16, Vec<u8>)> = vec![
        // Kafka-protocol 0.18 abort: 12-byte Produce v3 body, topic count i32::MAX.
        ("produce-v3-topic-count-i32max", 0, 3, hex("ffff ffff 0000 7530 7fff ffff")),
        ("metadata-v0-topic-count-i32max", 3, 0, hex("7fff ffff")),
        ("metadata-v1-topic-count-0fffffff", 3, 1, hex("0fff ffff 0000")),
        ("fetch-v4-negative-counts", 1, 4, hex("ffff ffff 0000 01f4 0000 0001 0010 0000 00 ffff fffe")),
        ("createtopics-v5-compact-count-max", 19, 5, hex("ffff ffff 0f")),
    ];
    // Tagged-field flood in a flexible body: ascending tags, empty values.
    let mut flood = Vec::new();
    flood.push(1); // topics: compact null -> 0 means null; use empty array (1)
    flood.push(0); // allow_auto_topic_creation false
    flood.push(0); // include_topic_authorized_operations
    uvarint(100_000, &mut flood);
    for tag in 0..100_000u32 {
        uvarint(tag, &mut flood);
        flood.push(0);
    }
    bodies.push(("metadata-v12-tagged-field-flood", 3, 12, flood));
    // Array amplification: 18-byte elements (uuid, null name, no tags) x 30 000.
    let mut amp = Vec::new();
    uvarint(30_001, &mut amp);
    for _ in 0..30_000 {
        amp.extend([0u8; 16]);
        amp.push(0);
        amp.push(0);
    }
    amp.extend([0, 0, 0]);
    bodies.push(("metadata-v12-topic-amplification", 3, 12, amp));
    // Two-byte empty strings x 32 767 (24-byte String each).
    let mut names = (32_767i32).to_be_bytes().to_vec();
    names.extend(std::iter::repeat_n(0u8, 2 * 32_767));
    names.extend(5000i32.to_be_bytes());
    bodies.push(("deletetopics-v1-empty-name-flood", 20, 1, names));
    for (name, key, version, body) in &bodies {
        let flexible = strom_protocol::frame::is_flexible(*key, *version);
        let mut frame = header(*key, *version, flexible);
        frame.extend(body);
        write("request_frame", name, &frame);
        let mut sel = selector(*key, *version).to_vec();
        sel.extend(body);
        write("request_body", name, &sel);
    }
    // Header-level tagged-field flood (pre-authentication: ApiVersions v3 header v2).
    let mut h = header(18, 3, false);
    uvarint(100_000, &mut h);
    h.extend(std::iter::repeat_n(0u8, 200_000));
    write("request_frame", "apiversions-v3-header-tagged-flood", &h);
    let mut h = header(18, 3, false);
    uvarint(u32::MAX, &mut h);
    write("request_frame", "apiversions-v3-header-tagged-count-u32max", &h);
    write("request_frame", "unknown-api-key", &hex("7fff 0000 0000 0001 ffff"));
    write("request_frame", "empty", &[]);
    write("request_frame", "truncated-header", &hex("0000 0003"));

    // Codecs.
    let mut x = vec![1u8]; // snappy, xerial framing, chunk length 0x7fffffff
    x.extend(hex("8253 4e41 5050 5900 0000 0001 0000 0001 7fff ffff 0000"));
    write("decompress", "snappy-xerial-chunk-7fffffff", &x);
    let mut x = vec![1u8]; // raw snappy claiming 4 GiB
    x.extend(hex("ffff ffff 0f00"));
    write("decompress", "snappy-raw-length-4gib", &x);
    let zeros = vec![0u8; 100 * MIB];
    for (codec, tag, name) in
        [(Compression::Gzip, 0u8, "gzip"), (Compression::Lz4, 2, "lz4"), (Compression::Zstd, 3, "zstd")]
    {
        let mut x = vec![tag];
        x.extend(compress(codec, &zeros).unwrap());
        if x.len() < 512 * 1024 {
            write("decompress", &format!("{name}-bomb-100mib"), &x);
        }
        let batch = bomb_batch(codec);
        if batch.len() < 512 * 1024 {
            write("record_batches", &format!("{name}-bomb-batch"), &batch);
            write("network", &format!("produce-{name}-bomb"), &framed(&produce_v3(&batch)));
        }
    }
    let mut b = BatchBuilder::new(0);
    b.add(Some(b"k"), Some(b"v"));
    let mut batch = b.build().to_vec();
    batch[57..61].copy_from_slice(&i32::MAX.to_be_bytes()); // records count
    write("record_batches", "records-count-i32max", &batch);
    let mut batch2 = batch.clone();
    batch2[8..12].copy_from_slice(&i32::MAX.to_be_bytes()); // batch length
    write("record_batches", "batch-length-i32max", &batch2);
    write("varints", "eleven-ff", &[0xff; 11]);
    write("varints", "overlong-zero", &hex("8080 8080 8080 8080 8000"));

    // Network-level: bytes written to the broker's port as they are.
    let tls = hex(
        "1603 0100 c801 0000 c403 03ec 12dd 1764 a439 fd7e 8c85 46b8 4d1e a06e b3d7 a051 f03c b817 470d 4c54 c5df 7200 001c eaea c02b",
    );
    write("network", "tls-client-hello", &tls);
    write("network", "size-i32max", &hex("7fff ffff 0000"));
    write("network", "size-negative", &hex("ffff fffe 0000"));
    write("network", "http-get", b"GET / HTTP/1.1\r\nHost: strom\r\n\r\n");
    write(
        "network",
        "produce-v3-topic-count-i32max",
        &framed(&{
            let mut f = header(0, 3, false);
            f.extend(hex("ffff ffff 0000 7530 7fff ffff"));
            f
        }),
    );
    write("network", "apiversions-v3-header-tagged-flood", &framed(&h_flood()));
}

fn h_flood() -> Vec<u8> {
    let mut h = header(18, 3, false);
    uvarint(100_000, &mut h);
    h.extend(std::iter::repeat_n(0u8, 200_000));
    h
}

fn framed(f: &[u8]) -> Vec<u8> {
    let mut out = (f.len() as i32).to_be_bytes().to_vec();
    out.extend(f);
    out
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}
