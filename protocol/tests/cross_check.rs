//! Byte-level cross-checks of the generated codec against the `kafka-protocol` crate.
//!
//! For every request and response our schema describes, at every version in
//! (our range ∩ kafka-protocol's range), for random values:
//!
//! 1. ours → theirs: encode a random value with our codec (bytes A), decode A with
//!    kafka-protocol (must succeed and consume everything), re-encode it (bytes B), and
//!    require A == B.
//! 2. theirs → ours: decode B with our codec (must consume everything), require the
//!    value to equal the original, re-encode it and require B again.
//!
//! Equal bytes can still hide a semantic mismatch (two same-typed fields swapped, a wrong
//! default for a field absent at that version), so the two decoded values are also
//! compared field by field, by name, through their `Debug` output (`value_diff`).
//! Random values also carry unknown top-level tagged fields in flexible versions.
//!
//! Alongside, our decoder must never panic: every truncation of a valid encoding is an
//! error, and random byte flips give `Ok` or `Err`.
//!
//! To add an API, add one line to the `apis!` table at the bottom. `every_api_is_covered`
//! fails until a newly added schema is listed there.

use std::fmt::Debug;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages as kp;
use kafka_protocol::protocol::{Decodable, Encodable, Message as _};
use proptest::prelude::*;
use strom_protocol as ours;
use strom_protocol::testing::Rng;
use strom_protocol::{Reader, Writer};

/// Versions our schema describes that kafka-protocol 0.18 (Kafka 4.1) cannot check, with
/// the reason. `every_api_is_covered` requires every version outside the intersection of
/// the two ranges to be listed here, and every entry here to be really uncovered.
const UNCHECKED: &[(&str, i16, &str)] = &[
    ("ListOffsetsRequest", 11, "kafka-protocol 0.18 stops at ListOffsets v10"),
    ("ListOffsetsResponse", 11, "kafka-protocol 0.18 stops at ListOffsets v10"),
    ("OffsetCommitRequest", 10, "kafka-protocol 0.18 bounds OffsetCommit at v9 (v10 was unstable in Kafka 4.1)"),
    ("OffsetFetchRequest", 10, "kafka-protocol 0.18 bounds OffsetFetch at v9 (v10 was unstable in Kafka 4.1)"),
    ("DescribeLogDirsRequest", 5, "DescribeLogDirs v5 is Kafka 4.3; kafka-protocol 0.18 tracks 4.1"),
    ("DescribeLogDirsResponse", 5, "DescribeLogDirs v5 is Kafka 4.3; kafka-protocol 0.18 tracks 4.1"),
    (
        "DescribeShareGroupOffsetsRequest",
        1,
        "DescribeShareGroupOffsets v1 (KIP-1226) is Kafka 4.2; kafka-protocol 0.18 tracks 4.1",
    ),
    (
        "DescribeShareGroupOffsetsResponse",
        1,
        "DescribeShareGroupOffsets v1 (KIP-1226) is Kafka 4.2; kafka-protocol 0.18 tracks 4.1",
    ),
    ("ShareFetchRequest", 2, "ShareFetch v2 (KIP-1206/1222) is Kafka 4.2; kafka-protocol 0.18 tracks 4.1"),
    ("ShareFetchResponse", 2, "ShareFetch v2 (KIP-1206/1222) is Kafka 4.2; kafka-protocol 0.18 tracks 4.1"),
    ("ShareAcknowledgeRequest", 2, "ShareAcknowledge v2 (KIP-1222) is Kafka 4.2; kafka-protocol 0.18 tracks 4.1"),
    ("ShareAcknowledgeResponse", 2, "ShareAcknowledge v2 (KIP-1222) is Kafka 4.2; kafka-protocol 0.18 tracks 4.1"),
];

/// Random values of our generated types (`random` is inherent, not a trait method).
trait Random: Sized {
    fn random(rng: &mut Rng, version: i16) -> Self;
}

/// Top-level tagged fields neither codec knows, some longer than 127 bytes so their size
/// takes a multi-byte varint: both sides must carry them through verbatim. Tags start at
/// 100, above every tag either side knows.
fn unknown_tagged_fields(rng: &mut Rng) -> Vec<(u32, Bytes)> {
    let mut tag = 99;
    (0..rng.below(4))
        .map(|_| {
            tag += 1 + rng.below(200) as u32;
            let len = if rng.bool() { rng.below(8) } else { 100 + rng.below(200) };
            (tag, (0..len).map(|_| rng.next_u64() as u8).collect::<Vec<u8>>().into())
        })
        .collect()
}

/// One row of the table: a message of ours paired with kafka-protocol's.
struct Case {
    name: &'static str,
    api_key: i16,
    ours: (i16, i16),
    theirs: (i16, i16),
}

impl Case {
    fn versions(&self) -> std::ops::RangeInclusive<i16> {
        self.ours.0.max(self.theirs.0)..=self.ours.1.min(self.theirs.1)
    }
}

fn encode_ours<O: ours::Message>(x: &O, v: i16) -> Result<Bytes, String> {
    let mut w = Writer::new();
    x.encode(&mut w, v).map_err(|e| format!("our encode failed: {e}"))?;
    Ok(w.into_bytes())
}

/// The two-way check for one random value at one version.
fn cross_check<O, T>(name: &str, seed: u64, v: i16) -> Result<(), TestCaseError>
where
    O: ours::Message + Random + Debug + PartialEq,
    T: Encodable + Decodable + Debug,
{
    let ctx = |what: &str| format!("{name} v{v} seed {seed}: {what}");
    let x = O::random(&mut Rng::new(seed), v);
    let a = encode_ours(&x, v).map_err(|e| TestCaseError::fail(ctx(&e)))?;

    // ours → theirs
    let mut buf = a.clone();
    let theirs = T::decode(&mut buf, v).map_err(|e| {
        TestCaseError::fail(ctx(&format!("kafka-protocol decode failed: {e:#}\nvalue: {x:?}\nbytes: {a:02x?}")))
    })?;
    prop_assert_eq!(
        buf.remaining(),
        0,
        "{}",
        ctx(&format!("kafka-protocol left bytes\nvalue: {x:?}\ntheirs: {theirs:?}"))
    );
    let mut out = BytesMut::new();
    theirs
        .encode(&mut out, v)
        .map_err(|e| TestCaseError::fail(ctx(&format!("kafka-protocol encode failed: {e:#}"))))?;
    let b = out.freeze();
    prop_assert_eq!(
        &a,
        &b,
        "{}",
        ctx(&format!("bytes differ after kafka-protocol round trip\nvalue: {x:?}\ntheirs: {theirs:?}"))
    );
    // Equal bytes can still mean different things (two same-typed fields swapped, a wrong
    // default for a field absent at `v`), so compare the decoded values field by field.
    let diffs = value_diff(&Value::parse(&format!("{x:?}")), &Value::parse(&format!("{theirs:?}")), name);
    prop_assert!(
        diffs.is_empty(),
        "{}",
        ctx(&format!("decoded values differ:\n  {}\nours: {x:?}\ntheirs: {theirs:?}", diffs.join("\n  ")))
    );

    // theirs → ours
    let mut r = Reader::new(b.clone());
    let y = O::decode(&mut r, v).map_err(|e| TestCaseError::fail(ctx(&format!("our decode failed: {e}"))))?;
    prop_assert_eq!(r.remaining(), 0, "{}", ctx("our decoder left bytes"));
    prop_assert_eq!(&y, &x, "{}", ctx("value differs after decoding kafka-protocol's bytes"));
    let c = encode_ours(&y, v).map_err(|e| TestCaseError::fail(ctx(&e)))?;
    prop_assert_eq!(&c, &b, "{}", ctx("re-encoding differs"));
    Ok(())
}

/// A value as printed by `{:?}`, to compare our structs with kafka-protocol's, whose
/// types differ (`StrBytes`, newtypes, `uuid::Uuid`, a map of unknown tagged fields)
/// but whose field names and `Debug` output agree once normalised.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// A struct, by field name (the struct's own name is not compared).
    Struct(Vec<(String, Value)>),
    /// A sequence, a tuple, or a map's entries as `(key, value)` tuples.
    Seq(Vec<Value>),
    /// `Some(x)` and other one-argument tuple structs are `Tagged(name, x)`.
    Tagged(String, Box<Value>),
    /// Anything else, as printed (numbers, strings, byte strings, `None`, bools, UUIDs).
    Atom(String),
}

impl Value {
    fn parse(s: &str) -> Value {
        let mut p = DebugParser { s: s.as_bytes(), i: 0 };
        let v = p.value();
        assert_eq!(p.i, s.len(), "unparsed Debug output: {s}");
        v
    }
}

struct DebugParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl DebugParser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }
    fn peek(&mut self) -> u8 {
        self.ws();
        self.s.get(self.i).copied().unwrap_or(0)
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == c {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) {
        assert!(self.eat(c), "expected {:?} at {} in {}", c as char, self.i, String::from_utf8_lossy(self.s));
    }
    fn list(&mut self, close: u8) -> Vec<Value> {
        let mut out = Vec::new();
        while !self.eat(close) {
            out.push(self.value());
            if !self.eat(b',') {
                self.expect(close);
                break;
            }
        }
        out
    }
    fn token(&mut self) -> String {
        let start = self.i;
        if matches!(self.s.get(self.i), Some(b'"')) || self.s[self.i..].starts_with(b"b\"") {
            self.i += if self.s[self.i] == b'b' { 2 } else { 1 };
            while self.s[self.i] != b'"' {
                self.i += if self.s[self.i] == b'\\' { 2 } else { 1 };
            }
            self.i += 1;
        } else {
            while self.i < self.s.len() && (self.s[self.i].is_ascii_alphanumeric() || b"_-.".contains(&self.s[self.i]))
            {
                self.i += 1;
            }
        }
        assert!(self.i > start, "unexpected {:?} at {}", String::from_utf8_lossy(&self.s[self.i..]), self.i);
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn value(&mut self) -> Value {
        match self.peek() {
            b'[' => {
                self.i += 1;
                Value::Seq(self.list(b']'))
            }
            b'(' => {
                self.i += 1;
                Value::Seq(self.list(b')'))
            }
            b'{' => {
                // A map: entries become (key, value) tuples.
                self.i += 1;
                let mut out = Vec::new();
                while !self.eat(b'}') {
                    let k = self.value();
                    self.expect(b':');
                    out.push(Value::Seq(vec![k, self.value()]));
                    if !self.eat(b',') {
                        self.expect(b'}');
                        break;
                    }
                }
                Value::Seq(out)
            }
            _ => {
                let t = self.token();
                if self.eat(b'{') {
                    let mut fields = Vec::new();
                    while !self.eat(b'}') {
                        let name = self.token();
                        self.expect(b':');
                        fields.push((name, self.value()));
                        if !self.eat(b',') {
                            self.expect(b'}');
                            break;
                        }
                    }
                    Value::Struct(fields)
                } else if self.eat(b'(') {
                    let mut args = self.list(b')');
                    match (t.as_str(), args.as_slice()) {
                        // Our UUID prints its bytes; kafka-protocol's prints the hyphenated form.
                        ("Uuid", [Value::Seq(bytes)]) => {
                            let hex: String = bytes
                                .iter()
                                .map(|b| match b {
                                    Value::Atom(n) => format!("{:02x}", n.parse::<u8>().expect("uuid byte")),
                                    _ => panic!("uuid byte"),
                                })
                                .collect();
                            Value::Atom(format!(
                                "{}-{}-{}-{}-{}",
                                &hex[..8],
                                &hex[8..12],
                                &hex[12..16],
                                &hex[16..20],
                                &hex[20..]
                            ))
                        }
                        (_, [_]) => Value::Tagged(t, Box::new(args.remove(0))),
                        _ => Value::Tagged(t, Box::new(Value::Seq(args))),
                    }
                } else {
                    Value::Atom(t)
                }
            }
        }
    }
}

/// Our field names that kafka-protocol spells differently: (ours, theirs).
const RENAMED: &[(&str, &str)] = &[("enable2_pc", "enable_2_pc")];

/// Fields only one side has, by path (`Message.field.field`, no indices), with the
/// evidence. A listed field is skipped only when it is missing on one side.
const ONE_SIDED: &[(&str, &str)] = &[
    // Version-0-only fields of Kafka's schema. We describe these APIs from v1 (and
    // kafka-protocol from v1 too), so they never reach the wire; our schema keeps them
    // as transcribed, kafka-protocol drops fields with no supported version.
    ("DescribeConfigsResponse.results.configs.is_default", "v0 only; both describe v1+"),
    ("ListOffsetsRequest.topics.partitions.max_num_offsets", "v0 only; both describe v1+"),
    ("ListOffsetsResponse.topics.partitions.old_style_offsets", "v0 only; both describe v1+"),
    ("OffsetCommitRequest.topics.partitions.commit_timestamp", "v1 only; both describe v2+"),
    ("DescribeLogDirsResponse.results.is_cordoned", "v5 only (Kafka 4.3); kafka-protocol tracks 4.1"),
    ("ShareFetchRequest.topics.partitions.partition_max_bytes", "v0 only (4.0 early access); both describe v1"),
    (
        "DescribeShareGroupOffsetsResponse.groups.topics.partitions.lag",
        "v1+ (Kafka 4.2, KIP-1226); kafka-protocol tracks 4.1",
    ),
    ("ShareFetchRequest.share_acquire_mode", "v2+ (Kafka 4.2, KIP-1206); kafka-protocol tracks 4.1"),
    ("ShareFetchRequest.is_renew_ack", "v2+ (Kafka 4.2, KIP-1222); kafka-protocol tracks 4.1"),
    ("ShareAcknowledgeRequest.is_renew_ack", "v2+ (Kafka 4.2, KIP-1222); kafka-protocol tracks 4.1"),
    ("ShareAcknowledgeResponse.acquisition_lock_timeout_ms", "v2+ (Kafka 4.2, KIP-1222); kafka-protocol tracks 4.1"),
];

/// Differences between our value `a` and kafka-protocol's `b`, as `path: detail` lines.
fn value_diff(a: &Value, b: &Value, path: &str) -> Vec<String> {
    let mut out = Vec::new();
    match (a, b) {
        (Value::Struct(fa), Value::Struct(fb)) => {
            let theirs_name = |n: &str| RENAMED.iter().find(|r| r.0 == n).map_or(n.to_string(), |r| r.1.to_string());
            let bare: String = path.split('[').map(|p| p.split_once(']').map_or(p, |(_, rest)| rest)).collect();
            let excused = |n: &str| ONE_SIDED.iter().any(|&(f, _)| f == format!("{bare}.{n}"));
            for (n, va) in fa {
                let tn = theirs_name(n);
                match fb.iter().find(|(m, _)| *m == tn) {
                    Some((_, vb)) => out.extend(value_diff(va, vb, &format!("{path}.{n}"))),
                    None if excused(n) => {}
                    // Messages with no flexible version have no tagged-field map in
                    // kafka-protocol; the byte comparison already covers the wire.
                    None if n == "unknown_tagged_fields" => {}
                    None => out.push(format!("{path}.{n}: kafka-protocol has no such field")),
                }
            }
            for (n, _) in fb {
                if !fa.iter().any(|(m, _)| theirs_name(m) == *n) && !excused(n) {
                    out.push(format!("{path}.{n}: only kafka-protocol has this field"));
                }
            }
        }
        (Value::Seq(sa), Value::Seq(sb)) if sa.len() == sb.len() => {
            for (i, (va, vb)) in sa.iter().zip(sb).enumerate() {
                out.extend(value_diff(va, vb, &format!("{path}[{i}]")));
            }
        }
        (Value::Tagged(ta, va), Value::Tagged(tb, vb)) if ta == tb => out.extend(value_diff(va, vb, path)),
        // Atoms (kafka-protocol's newtypes print transparently, so they compare as atoms).
        _ if a == b => {}
        _ => out.push(format!("{path}: ours {a:?}, kafka-protocol {b:?}")),
    }
    out
}

/// Our decoder on damaged input: truncations must fail, byte flips must not panic.
fn robustness<O>(name: &str, seed: u64, v: i16) -> Result<(), TestCaseError>
where
    O: ours::Message + Random + Debug,
{
    let mut rng = Rng::new(seed);
    let x = O::random(&mut rng, v);
    let a = encode_ours(&x, v).map_err(TestCaseError::fail)?;
    for len in 0..a.len() {
        let r = O::decode(&mut Reader::new(a.slice(..len)), v);
        prop_assert!(r.is_err(), "{name} v{v} seed {seed}: truncation to {len} of {} bytes decoded: {r:?}", a.len());
    }
    if a.is_empty() {
        return Ok(());
    }
    for _ in 0..32 {
        let mut m = a.to_vec();
        for _ in 0..=rng.below(3) {
            let i = rng.below(m.len() as u64) as usize;
            m[i] ^= (rng.below(255) + 1) as u8;
        }
        let _ = O::decode(&mut Reader::new(Bytes::from(m)), v);
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, failure_persistence: None, max_shrink_iters: 0, ..ProptestConfig::default() }
}

macro_rules! apis {
    ($( $api:ident: $req:ident => $treq:ty, $resp:ident => $tresp:ty; )*) => {
        $(
            impl Random for ours::$req {
                fn random(rng: &mut Rng, version: i16) -> Self {
                    let mut x = ours::$req::random(rng, version);
                    if ours::$req::is_flexible(version) {
                        x.unknown_tagged_fields = unknown_tagged_fields(rng);
                    }
                    x
                }
            }
            impl Random for ours::$resp {
                fn random(rng: &mut Rng, version: i16) -> Self {
                    let mut x = ours::$resp::random(rng, version);
                    if ours::$resp::is_flexible(version) {
                        x.unknown_tagged_fields = unknown_tagged_fields(rng);
                    }
                    x
                }
            }

            mod $api {
                use super::*;

                proptest! {
                    #![proptest_config(config())]

                    #[test]
                    fn request_matches_kafka_protocol(seed: u64) {
                        for v in case_of(stringify!($req)).versions() {
                            cross_check::<ours::$req, $treq>(stringify!($req), seed, v)?;
                        }
                    }

                    #[test]
                    fn response_matches_kafka_protocol(seed: u64) {
                        for v in case_of(stringify!($resp)).versions() {
                            cross_check::<ours::$resp, $tresp>(stringify!($resp), seed, v)?;
                        }
                    }

                    #[test]
                    fn request_decoder_survives_damage(seed: u64) {
                        for v in ours::$req::MIN_VERSION..=ours::$req::MAX_VERSION {
                            robustness::<ours::$req>(stringify!($req), seed, v)?;
                        }
                    }

                    #[test]
                    fn response_decoder_survives_damage(seed: u64) {
                        for v in ours::$resp::MIN_VERSION..=ours::$resp::MAX_VERSION {
                            robustness::<ours::$resp>(stringify!($resp), seed, v)?;
                        }
                    }
                }
            }
        )*

        /// Every message in the table.
        fn cases() -> Vec<Case> {
            vec![$(
                Case {
                    name: stringify!($req),
                    api_key: ours::$req::API_KEY,
                    ours: (ours::$req::MIN_VERSION, ours::$req::MAX_VERSION),
                    theirs: (<$treq>::VERSIONS.min, <$treq>::VERSIONS.max),
                },
                Case {
                    name: stringify!($resp),
                    api_key: ours::$resp::API_KEY,
                    ours: (ours::$resp::MIN_VERSION, ours::$resp::MAX_VERSION),
                    theirs: (<$tresp>::VERSIONS.min, <$tresp>::VERSIONS.max),
                },
            )*]
        }
    };
}

fn case_of(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).expect("listed")
}

/// Every API in the schema has its request and response in the table, and every
/// version we describe is checked unless `UNCHECKED` says why not.
#[test]
fn every_api_is_covered() {
    let cases = cases();
    let mut problems = Vec::new();
    for api in ours::API_SCHEMAS {
        for kind in ["Request", "Response"] {
            let name = format!("{}{kind}", api.name);
            match cases.iter().find(|c| c.name == name) {
                None => problems.push(format!("{name} (key {}) is missing from the apis! table", api.key)),
                Some(c) => {
                    assert_eq!(c.api_key, api.key, "{name}");
                    for v in c.ours.0..=c.ours.1 {
                        let unchecked = UNCHECKED.iter().any(|&(n, uv, _)| n == name && uv == v);
                        if !c.versions().contains(&v) && !unchecked {
                            problems.push(format!(
                                "{name} v{v} is outside kafka-protocol's range {:?} and not in UNCHECKED",
                                c.theirs
                            ));
                        }
                    }
                }
            }
        }
    }
    for &(name, v, _) in UNCHECKED {
        let c = cases.iter().find(|c| c.name == name);
        if c.is_none_or(|c| c.versions().contains(&v) || !(c.ours.0..=c.ours.1).contains(&v)) {
            problems.push(format!("UNCHECKED lists {name} v{v}, which is checked or not described"));
        }
    }
    for c in &cases {
        if !ours::API_SCHEMAS.iter().any(|a| a.key == c.api_key) {
            problems.push(format!("{} is in the table but not in API_SCHEMAS", c.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

apis! {
    produce: ProduceRequest => kp::ProduceRequest, ProduceResponse => kp::ProduceResponse;
    fetch: FetchRequest => kp::FetchRequest, FetchResponse => kp::FetchResponse;
    list_offsets: ListOffsetsRequest => kp::ListOffsetsRequest, ListOffsetsResponse => kp::ListOffsetsResponse;
    metadata: MetadataRequest => kp::MetadataRequest, MetadataResponse => kp::MetadataResponse;
    api_versions: ApiVersionsRequest => kp::ApiVersionsRequest, ApiVersionsResponse => kp::ApiVersionsResponse;
    create_topics: CreateTopicsRequest => kp::CreateTopicsRequest, CreateTopicsResponse => kp::CreateTopicsResponse;
    delete_topics: DeleteTopicsRequest => kp::DeleteTopicsRequest, DeleteTopicsResponse => kp::DeleteTopicsResponse;
    describe_cluster: DescribeClusterRequest => kp::DescribeClusterRequest, DescribeClusterResponse => kp::DescribeClusterResponse;
    describe_configs: DescribeConfigsRequest => kp::DescribeConfigsRequest, DescribeConfigsResponse => kp::DescribeConfigsResponse;
    init_producer_id: InitProducerIdRequest => kp::InitProducerIdRequest, InitProducerIdResponse => kp::InitProducerIdResponse;
    add_partitions_to_txn: AddPartitionsToTxnRequest => kp::AddPartitionsToTxnRequest, AddPartitionsToTxnResponse => kp::AddPartitionsToTxnResponse;
    add_offsets_to_txn: AddOffsetsToTxnRequest => kp::AddOffsetsToTxnRequest, AddOffsetsToTxnResponse => kp::AddOffsetsToTxnResponse;
    end_txn: EndTxnRequest => kp::EndTxnRequest, EndTxnResponse => kp::EndTxnResponse;
    write_txn_markers: WriteTxnMarkersRequest => kp::WriteTxnMarkersRequest, WriteTxnMarkersResponse => kp::WriteTxnMarkersResponse;
    txn_offset_commit: TxnOffsetCommitRequest => kp::TxnOffsetCommitRequest, TxnOffsetCommitResponse => kp::TxnOffsetCommitResponse;
    describe_producers: DescribeProducersRequest => kp::DescribeProducersRequest, DescribeProducersResponse => kp::DescribeProducersResponse;
    describe_transactions: DescribeTransactionsRequest => kp::DescribeTransactionsRequest, DescribeTransactionsResponse => kp::DescribeTransactionsResponse;
    list_transactions: ListTransactionsRequest => kp::ListTransactionsRequest, ListTransactionsResponse => kp::ListTransactionsResponse;
    sasl_handshake: SaslHandshakeRequest => kp::SaslHandshakeRequest, SaslHandshakeResponse => kp::SaslHandshakeResponse;
    sasl_authenticate: SaslAuthenticateRequest => kp::SaslAuthenticateRequest, SaslAuthenticateResponse => kp::SaslAuthenticateResponse;
    create_acls: CreateAclsRequest => kp::CreateAclsRequest, CreateAclsResponse => kp::CreateAclsResponse;
    describe_acls: DescribeAclsRequest => kp::DescribeAclsRequest, DescribeAclsResponse => kp::DescribeAclsResponse;
    delete_acls: DeleteAclsRequest => kp::DeleteAclsRequest, DeleteAclsResponse => kp::DeleteAclsResponse;
    describe_user_scram_credentials: DescribeUserScramCredentialsRequest => kp::DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse => kp::DescribeUserScramCredentialsResponse;
    alter_user_scram_credentials: AlterUserScramCredentialsRequest => kp::AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse => kp::AlterUserScramCredentialsResponse;
    find_coordinator: FindCoordinatorRequest => kp::FindCoordinatorRequest, FindCoordinatorResponse => kp::FindCoordinatorResponse;
    join_group: JoinGroupRequest => kp::JoinGroupRequest, JoinGroupResponse => kp::JoinGroupResponse;
    heartbeat: HeartbeatRequest => kp::HeartbeatRequest, HeartbeatResponse => kp::HeartbeatResponse;
    leave_group: LeaveGroupRequest => kp::LeaveGroupRequest, LeaveGroupResponse => kp::LeaveGroupResponse;
    sync_group: SyncGroupRequest => kp::SyncGroupRequest, SyncGroupResponse => kp::SyncGroupResponse;
    describe_groups: DescribeGroupsRequest => kp::DescribeGroupsRequest, DescribeGroupsResponse => kp::DescribeGroupsResponse;
    list_groups: ListGroupsRequest => kp::ListGroupsRequest, ListGroupsResponse => kp::ListGroupsResponse;
    offset_commit: OffsetCommitRequest => kp::OffsetCommitRequest, OffsetCommitResponse => kp::OffsetCommitResponse;
    offset_fetch: OffsetFetchRequest => kp::OffsetFetchRequest, OffsetFetchResponse => kp::OffsetFetchResponse;
    delete_groups: DeleteGroupsRequest => kp::DeleteGroupsRequest, DeleteGroupsResponse => kp::DeleteGroupsResponse;
    offset_delete: OffsetDeleteRequest => kp::OffsetDeleteRequest, OffsetDeleteResponse => kp::OffsetDeleteResponse;
    consumer_group_heartbeat: ConsumerGroupHeartbeatRequest => kp::ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse => kp::ConsumerGroupHeartbeatResponse;
    consumer_group_describe: ConsumerGroupDescribeRequest => kp::ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse => kp::ConsumerGroupDescribeResponse;
    create_partitions: CreatePartitionsRequest => kp::CreatePartitionsRequest, CreatePartitionsResponse => kp::CreatePartitionsResponse;
    alter_configs: AlterConfigsRequest => kp::AlterConfigsRequest, AlterConfigsResponse => kp::AlterConfigsResponse;
    incremental_alter_configs: IncrementalAlterConfigsRequest => kp::IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse => kp::IncrementalAlterConfigsResponse;
    describe_topic_partitions: DescribeTopicPartitionsRequest => kp::DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse => kp::DescribeTopicPartitionsResponse;
    describe_log_dirs: DescribeLogDirsRequest => kp::DescribeLogDirsRequest, DescribeLogDirsResponse => kp::DescribeLogDirsResponse;
    delete_records: DeleteRecordsRequest => kp::DeleteRecordsRequest, DeleteRecordsResponse => kp::DeleteRecordsResponse;
    elect_leaders: ElectLeadersRequest => kp::ElectLeadersRequest, ElectLeadersResponse => kp::ElectLeadersResponse;
    alter_partition_reassignments: AlterPartitionReassignmentsRequest => kp::AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse => kp::AlterPartitionReassignmentsResponse;
    list_partition_reassignments: ListPartitionReassignmentsRequest => kp::ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse => kp::ListPartitionReassignmentsResponse;
    offset_for_leader_epoch: OffsetForLeaderEpochRequest => kp::OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse => kp::OffsetForLeaderEpochResponse;
    alter_replica_log_dirs: AlterReplicaLogDirsRequest => kp::AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse => kp::AlterReplicaLogDirsResponse;
    describe_quorum: DescribeQuorumRequest => kp::DescribeQuorumRequest, DescribeQuorumResponse => kp::DescribeQuorumResponse;
    get_telemetry_subscriptions: GetTelemetrySubscriptionsRequest => kp::GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse => kp::GetTelemetrySubscriptionsResponse;
    push_telemetry: PushTelemetryRequest => kp::PushTelemetryRequest, PushTelemetryResponse => kp::PushTelemetryResponse;
    list_config_resources: ListConfigResourcesRequest => kp::ListConfigResourcesRequest, ListConfigResourcesResponse => kp::ListConfigResourcesResponse;
    share_group_heartbeat: ShareGroupHeartbeatRequest => kp::ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse => kp::ShareGroupHeartbeatResponse;
    share_group_describe: ShareGroupDescribeRequest => kp::ShareGroupDescribeRequest, ShareGroupDescribeResponse => kp::ShareGroupDescribeResponse;
    share_fetch: ShareFetchRequest => kp::ShareFetchRequest, ShareFetchResponse => kp::ShareFetchResponse;
    share_acknowledge: ShareAcknowledgeRequest => kp::ShareAcknowledgeRequest, ShareAcknowledgeResponse => kp::ShareAcknowledgeResponse;
    read_share_group_state: ReadShareGroupStateRequest => kp::ReadShareGroupStateRequest, ReadShareGroupStateResponse => kp::ReadShareGroupStateResponse;
    write_share_group_state: WriteShareGroupStateRequest => kp::WriteShareGroupStateRequest, WriteShareGroupStateResponse => kp::WriteShareGroupStateResponse;
    delete_share_group_state: DeleteShareGroupStateRequest => kp::DeleteShareGroupStateRequest, DeleteShareGroupStateResponse => kp::DeleteShareGroupStateResponse;
    describe_share_group_offsets: DescribeShareGroupOffsetsRequest => kp::DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse => kp::DescribeShareGroupOffsetsResponse;
    alter_share_group_offsets: AlterShareGroupOffsetsRequest => kp::AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse => kp::AlterShareGroupOffsetsResponse;
    delete_share_group_offsets: DeleteShareGroupOffsetsRequest => kp::DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse => kp::DeleteShareGroupOffsetsResponse;
}
