//! Shared pieces of the scenarios: environment, verdicts, data sets (the same
//! shapes as compat-tests/lib/compat.py, from a seeded PRNG of our own), the
//! first-difference report and a broker of our own for restart scenarios.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const EXIT_PASS: i32 = 0;
pub const EXIT_FAIL: i32 = 1;
pub const EXIT_UNSUPPORTED: i32 = 3;

static START: OnceLock<Instant> = OnceLock::new();

pub fn start_clock() {
    START.get_or_init(Instant::now);
}

pub fn log(msg: impl AsRef<str>) {
    let t = START.get_or_init(Instant::now).elapsed().as_secs_f64();
    println!("[{t:7.2}s] {}", msg.as_ref());
    let _ = std::io::stdout().flush();
}

fn verdict(prefix: &str, msg: &str, code: i32) -> ! {
    stop_own_broker(code == EXIT_FAIL);
    println!("{prefix}: {msg}");
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // Never wait for client shutdown (librdkafka threads, rskafka tasks) once the verdict is known.
    std::process::exit(code)
}

pub fn fail(msg: impl AsRef<str>) -> ! {
    verdict("FAIL", msg.as_ref(), EXIT_FAIL)
}

pub fn passed(msg: impl AsRef<str>) -> ! {
    verdict("PASS", msg.as_ref(), EXIT_PASS)
}

pub fn unsupported(msg: impl AsRef<str>) -> ! {
    verdict("UNSUPPORTED", msg.as_ref(), EXIT_UNSUPPORTED)
}

/// `Result::unwrap_or_else(fail)` with context.
pub trait OrFail<T> {
    fn or_fail(self, what: impl AsRef<str>) -> T;
}

impl<T, E: std::fmt::Display> OrFail<T> for Result<T, E> {
    fn or_fail(self, what: impl AsRef<str>) -> T {
        match self {
            Ok(v) => v,
            Err(e) => fail(format!("{}: {e}", what.as_ref())),
        }
    }
}

pub fn bootstrap() -> String {
    std::env::var("STROM_BOOTSTRAP")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| fail("STROM_BOOTSTRAP is not set (run scenarios through compat-tests/run)"))
}

pub fn topic(suffix: &str) -> String {
    let base = std::env::var("COMPAT_TOPIC")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("compat-adhoc-{}-{}", std::process::id(), now_ms() / 1000));
    base + suffix
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub struct Deadline(Instant);

impl Deadline {
    pub fn new(secs: f64) -> Self {
        Deadline(Instant::now() + Duration::from_secs_f64(secs))
    }
    pub fn left(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
    pub fn expired(&self) -> bool {
        Instant::now() >= self.0
    }
}

// ---------------------------------------------------------------------------
// PRNG (splitmix64): deterministic data sets without a dependency.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in lo..=hi.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

// ---------------------------------------------------------------------------
// Data sets

pub type Header = (String, Option<Vec<u8>>);

/// A record to produce: what every client can express, plus optional extras.
#[derive(Clone, Debug, Default)]
pub struct Out {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub ts: Option<i64>,
    pub partition: Option<i32>,
}

impl Out {
    pub fn kv(key: Vec<u8>, value: Vec<u8>) -> Self {
        Out { key: Some(key), value: Some(value), ..Default::default() }
    }
}

pub fn n_messages() -> usize {
    std::env::var("COMPAT_MESSAGES").ok().and_then(|s| s.parse().ok()).unwrap_or(10_000)
}

/// produce-consume-auto: distinct keys `key-%06d`; index 0 all 256 byte values, index 1
/// empty (not null), ~10 KB random values at 2, 3, n/3, n/2, n-1, 0x00/0xff runs at
/// every 10th, otherwise 1..300 random bytes prefixed with the index.
pub fn auto_dataset(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rnd = Rng::new(20240601);
    let big = [2, 3, n / 2, n - 1, n / 3];
    (0..n)
        .map(|i| {
            let key = format!("key-{i:06}").into_bytes();
            let val = if i == 0 {
                (0..=255u8).collect()
            } else if i == 1 {
                Vec::new()
            } else if big.contains(&i) {
                let mut v = format!("big-{i:06}:").into_bytes();
                v.extend(rnd.bytes(10 * 1024));
                v
            } else if i % 10 == 0 {
                let (a, b) = (rnd.range(1, 50), rnd.range(1, 50));
                let mut v = vec![0u8; a];
                v.extend(std::iter::repeat_n(0xffu8, b));
                v
            } else {
                let mut v = format!("{i:06}:").into_bytes();
                let len = rnd.range(1, 300);
                v.extend(rnd.bytes(len));
                v
            };
            (key, val)
        })
        .collect()
}

/// produce-consume-explicit: keys `k%04d` repeating over `nkeys`, unique values `msg-%06d|<0..64 random bytes>`.
pub fn keyed_dataset(n: usize, nkeys: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rnd = Rng::new(4242);
    (0..n)
        .map(|i| {
            let key = format!("k{:04}", i % nkeys).into_bytes();
            let mut val = format!("msg-{i:06}|").into_bytes();
            let len = rnd.range(0, 64);
            val.extend(rnd.bytes(len));
            (key, val)
        })
        .collect()
}

/// headers-timestamps: 300 records; headers none / one / duplicates in order / empty and
/// binary values / non-ASCII names / eight numbered (+ a null value when allowed); explicit,
/// non-monotonic, distinct CreateTime timestamps.
pub fn headers_dataset(allow_null_header_value: bool) -> Vec<Out> {
    let n = 300usize;
    let base_ts = 1_600_000_000_000i64;
    let mut rnd = Rng::new(777);
    let h = |k: &str, v: &[u8]| (k.to_string(), Some(v.to_vec()));
    (0..n)
        .map(|i| {
            let headers: Vec<Header> = match i % 6 {
                0 => vec![],
                1 => vec![h("trace-id", format!("{:016x}{:016x}", rnd.next_u64(), rnd.next_u64()).as_bytes())],
                2 => vec![h("dup", b"first"), h("dup", b"second"), h("other", b"x"), h("dup", b"third")],
                3 => vec![h("empty", b""), h("bin", &(0..=255u8).collect::<Vec<_>>())],
                4 => vec![h("n\u{e4}me-\u{fc}nicode", "v\u{e4}lue".as_bytes()), h("i", i.to_string().as_bytes())],
                _ => {
                    let mut v: Vec<Header> = (1..9u8).map(|j| h(&format!("h{j}"), &vec![j; j as usize])).collect();
                    if allow_null_header_value {
                        v.push(("null-value".to_string(), None));
                    }
                    v
                }
            };
            let ts = base_ts + (((i * 7919) % n) as i64) * 1000 + i as i64;
            Out {
                key: Some(format!("hk-{i:04}").into_bytes()),
                value: Some(format!("hv-{i:04}").into_bytes()),
                headers,
                ts: Some(ts),
                partition: Some(0),
            }
        })
        .collect()
}

/// large-messages: 8 records `large-<i>`, values exactly 1 MiB of incompressible bytes.
pub fn large_dataset() -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut rnd = Rng::new(1_048_576);
    (0..8).map(|i| (format!("large-{i}").into_bytes(), rnd.bytes(1_048_576))).collect()
}

/// compression: 1,000 keyed compressible records `key-%06d` / a value repeating its index.
pub fn compressible_dataset() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..1000).map(|i| (format!("key-{i:06}").into_bytes(), format!("value-{i:06} ").repeat(20).into_bytes())).collect()
}

/// idempotent: 5,000 records `key-%04d` (i % 100) / `value-%06d`.
pub fn idempotent_dataset() -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..5000).map(|i| (format!("key-{:04}", i % 100).into_bytes(), format!("value-{i:06}").into_bytes())).collect()
}

/// seek-timestamp: T0 = now - 1 h, rounded down to the second (ms).
pub fn seek_t0() -> i64 {
    (now_ms() - 3_600_000) / 1000 * 1000
}

pub const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

// ---------------------------------------------------------------------------
// Comparison

/// One field of a compared row.
#[derive(Clone, PartialEq, Debug)]
pub enum F {
    Bytes(Option<Vec<u8>>),
    Int(i64),
    Headers(Vec<Header>),
}

pub fn b(v: &Option<Vec<u8>>) -> F {
    F::Bytes(v.clone())
}

pub fn short(b: Option<&[u8]>) -> String {
    let Some(b) = b else { return "None".to_string() };
    let mut s = String::from("b'");
    for &c in b.iter().take(64) {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\'' => s.push_str("\\'"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s.push('\'');
    if b.len() > 64 {
        let _ = write!(s, "...(+{} bytes)", b.len() - 64);
    }
    let _ = write!(s, " [len={}]", b.len());
    s
}

impl F {
    fn show(&self) -> String {
        match self {
            F::Bytes(v) => short(v.as_deref()),
            F::Int(i) => i.to_string(),
            F::Headers(h) => {
                let parts: Vec<String> = h.iter().map(|(k, v)| format!("({k:?}, {})", short(v.as_deref()))).collect();
                let s = format!("[{}]", parts.join(", "));
                if s.len() > 300 {
                    format!(
                        "{}... ({} headers)",
                        &s[..s.char_indices().nth(300).map(|(i, _)| i).unwrap_or(s.len())],
                        h.len()
                    )
                } else {
                    s
                }
            }
        }
    }
}

fn first_byte_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y).or(if a.len() != b.len() { Some(a.len().min(b.len())) } else { None })
}

fn show_row(names: &[&str], row: &[F]) -> String {
    let parts: Vec<String> = names.iter().zip(row).map(|(n, f)| format!("{n}={}", f.show())).collect();
    format!("({})", parts.join(", "))
}

/// None if equal, else the first difference: index, expected vs got (per differing field).
pub fn first_diff(expected: &[Vec<F>], got: &[Vec<F>], what: &str, names: &[&str]) -> Option<String> {
    let n = expected.len().min(got.len());
    for i in 0..n {
        if expected[i] != got[i] {
            let mut parts = Vec::new();
            for (j, (e, g)) in expected[i].iter().zip(&got[i]).enumerate() {
                if e != g {
                    let mut p = format!("{}: expected {}, got {}", names.get(j).unwrap_or(&"?"), e.show(), g.show());
                    if let (F::Bytes(Some(x)), F::Bytes(Some(y))) = (e, g) {
                        if let Some(k) = first_byte_diff(x, y) {
                            let _ = write!(p, " (first differing byte at {k})");
                        }
                    }
                    parts.push(p);
                }
            }
            return Some(format!(
                "first differing {what} at index {i} of {}/{}: {}",
                expected.len(),
                got.len(),
                parts.join("; ")
            ));
        }
    }
    if expected.len() != got.len() {
        return Some(if got.len() < expected.len() {
            format!(
                "got {} {what}s, expected {}; first missing at index {n}: {}",
                got.len(),
                expected.len(),
                show_row(names, &expected[n])
            )
        } else {
            format!(
                "got {} {what}s, expected {}; first extra at index {n}: {}",
                got.len(),
                expected.len(),
                show_row(names, &got[n])
            )
        });
    }
    None
}

pub fn check_offsets(what: &str, offsets: &[i64], from: i64) {
    let want: Vec<Vec<F>> = (0..offsets.len() as i64).map(|o| vec![F::Int(from + o)]).collect();
    let got: Vec<Vec<F>> = offsets.iter().map(|&o| vec![F::Int(o)]).collect();
    if let Some(d) = first_diff(&want, &got, "offset", &["offset"]) {
        fail(format!("{what} are not {from}..{}: {d}", from + offsets.len() as i64 - 1));
    }
}

/// A record as read back, in the client-neutral form the checks use.
#[derive(Clone, Debug)]
pub struct Got {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub ts: i64,
    /// True when the client reported CreateTime (None: the client does not say).
    pub create_time: Option<bool>,
    pub headers: Vec<Header>,
}

/// Records read back per partition, and (beginning, end) offsets per partition.
pub type ByPartition = BTreeMap<i32, Vec<Got>>;
pub type Watermarks = BTreeMap<i32, (i64, i64)>;

/// From produced records and their delivery reports (partition, offset):
/// {partition: [(offset, key, value)]}, checking each key stayed on one partition and
/// the keys spread over every partition.
pub fn expected_by_partition(
    data: &[(Vec<u8>, Vec<u8>)],
    reports: &[(i32, i64)],
    npart: i32,
) -> BTreeMap<i32, Vec<Vec<F>>> {
    let mut expected: BTreeMap<i32, Vec<Vec<F>>> = (0..npart).map(|q| (q, Vec::new())).collect();
    let mut key_part: BTreeMap<&[u8], i32> = BTreeMap::new();
    for ((k, v), &(part, off)) in data.iter().zip(reports) {
        let Some(list) = expected.get_mut(&part) else {
            fail(format!("message delivered to partition {part}, topic has {npart}"))
        };
        let first = *key_part.entry(k.as_slice()).or_insert(part);
        if first != part {
            fail(format!("key {} delivered to partitions {first} and {part}", short(Some(k))));
        }
        list.push(vec![F::Int(off), F::Bytes(Some(k.clone())), F::Bytes(Some(v.clone()))]);
    }
    let empty: Vec<i32> = expected.iter().filter(|(_, v)| v.is_empty()).map(|(q, _)| *q).collect();
    if !empty.is_empty() {
        fail(format!("keys did not spread: partitions {empty:?} got no messages"));
    }
    expected
}

/// `consumed` as read back must equal what was produced, offsets contiguous from 0, and
/// (beginning, end) offsets must match.
pub fn check_partitions(expected: &BTreeMap<i32, Vec<Vec<F>>>, consumed: &ByPartition, watermarks: &Watermarks) {
    for (q, want) in expected {
        let got: Vec<Vec<F>> = consumed
            .get(q)
            .map(|v| v.iter().map(|m| vec![F::Int(m.offset), b(&m.key), b(&m.value)]).collect())
            .unwrap_or_default();
        let what = format!("message (offset, key, value) of partition {q}");
        if let Some(d) = first_diff(want, &got, &what, &["offset", "key", "value"]) {
            fail(d);
        }
        let offs: Vec<i64> = want.iter().map(|r| if let F::Int(o) = r[0] { o } else { -1 }).collect();
        check_offsets(&format!("partition {q} delivery-report offsets"), &offs, 0);
        let wm = watermarks.get(q).copied();
        if wm != Some((0, want.len() as i64)) {
            fail(format!("partition {q} (beginning, end) offsets: expected (0, {}), got {wm:?}", want.len()));
        }
    }
    let extra: Vec<&i32> = consumed.keys().filter(|q| !expected.contains_key(q)).collect();
    if !extra.is_empty() {
        fail(format!("records from unexpected partitions {extra:?}"));
    }
}

/// Parses a ConsumerProtocol Assignment (version, [topic, [partition]], user data) into
/// (topic, partition) pairs.
pub fn parse_assignment(buf: &[u8]) -> Option<Vec<(String, i32)>> {
    let mut p = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = buf.get(p..p + n)?;
        p += n;
        Some(s)
    };
    let _version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    let ntopics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut out = Vec::new();
    for _ in 0..ntopics.max(0) {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let name = String::from_utf8(take(len.max(0) as usize)?.to_vec()).ok()?;
        let nparts = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..nparts.max(0) {
            out.push((name.clone(), i32::from_be_bytes(take(4)?.try_into().ok()?)));
        }
    }
    Some(out)
}

/// Kafka's default partitioner for keyed records (Java client murmur2, positive, mod n).
pub fn murmur2_partition(key: &[u8], n: i32) -> i32 {
    ((murmur2(key) as u32 & 0x7fff_ffff) % n as u32) as i32
}

/// Kafka's `Utils.murmur2`.
pub fn murmur2(key: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let len = key.len();
    let mut h: u32 = 0x9747_b28c ^ len as u32;
    let mut chunks = key.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

// ---------------------------------------------------------------------------
// A broker of our own (group-resume restarts it), like compat-tests/lib/broker.py.
// Its state lives in a global so that the verdict (which exits the process without
// running destructors) can stop it: its data dir is removed on PASS/UNSUPPORTED and kept
// on FAIL.

struct OwnState {
    binary: String,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    /// The listener's security protocol (PLAINTEXT unless `start_with` says otherwise).
    scheme: String,
    /// `--override key=value` settings (a secured listener's).
    overrides: Vec<(String, String)>,
}

static OWN: Mutex<Option<OwnState>> = Mutex::new(None);

pub struct OwnBroker {
    pub port: u16,
}

impl OwnBroker {
    pub fn start() -> OwnBroker {
        OwnBroker::start_with("PLAINTEXT", &[])
    }

    /// A broker whose one listener speaks `scheme` (`SASL_SSL`, ...), with `overrides`.
    pub fn start_with(scheme: &str, overrides: &[(&str, &str)]) -> OwnBroker {
        let binary = std::env::var("STROM_BIN")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| unsupported("needs its own broker (STROM_BIN), not available with --bootstrap"));
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).or_fail("free port").port();
        let dir = std::env::temp_dir().join(format!("strom-own-rust-{}-{}", std::process::id(), now_ms()));
        std::fs::create_dir_all(&dir).or_fail("own broker temp dir");
        let mut st = OwnState {
            binary,
            port,
            dir,
            child: None,
            scheme: scheme.to_string(),
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        st.spawn();
        *OWN.lock().unwrap() = Some(st);
        OwnBroker { port }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// SIGTERM, wait, start again on the same port and data dir.
    pub fn restart(&mut self) {
        // Not under the lock: a failing start exits through the verdict, which takes it.
        let mut st = OWN.lock().unwrap().take().unwrap_or_else(|| fail("own broker is not running"));
        st.stop();
        st.spawn();
        *OWN.lock().unwrap() = Some(st);
    }
}

impl OwnState {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("strom.log"))
            .or_fail("own broker log");
        let child = Command::new(&self.binary)
            .args(["serve", "--listeners", &format!("{}://127.0.0.1:{}", self.scheme, self.port), "--log-dirs"])
            .arg(self.dir.join("data"))
            .args(["--override", "strom.http.listener=127.0.0.1:0"])
            .args(self.overrides.iter().flat_map(|(k, v)| ["--override".to_string(), format!("{k}={v}")]))
            .stdin(Stdio::null())
            .stdout(log.try_clone().or_fail("own broker log"))
            .stderr(log)
            .spawn()
            .or_fail(format!("starting {}", self.binary));
        self.child = Some(child);
        let dl = Deadline::new(20.0);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                fail(format!("own broker exited with {status} during startup (log {})", self.dir.display()));
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if dl.expired() {
                fail(format!("own broker did not listen within 20s (log {})", self.dir.display()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (via kill(1): no libc dependency), SIGKILL after 15 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let dl = Deadline::new(15.0);
        while !dl.expired() {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Stops our own broker, if any; removes its data dir unless the scenario failed.
fn stop_own_broker(keep: bool) {
    let st = match OWN.try_lock() {
        Ok(mut g) => g.take(),
        Err(_) => None,
    };
    if let Some(mut st) = st {
        st.stop();
        if keep {
            println!("own broker data and log kept in {}", st.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&st.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Cases from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }

    #[test]
    fn assignment_parses() {
        let mut buf = vec![0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1];
        buf.extend([0xff, 0xff, 0xff, 0xff]);
        assert_eq!(parse_assignment(&buf), Some(vec![("t".into(), 0), ("t".into(), 1)]));
    }
}
