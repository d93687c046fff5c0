//! The schema registry (issue 18) through its REST API on an in-process broker:
//! compatibility verdicts per schema type and level, Confluent's error codes for bad
//! input, deletes, state across a restart, and produce-side validation with dead letters.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use strom_client::Client;
use strom_protocol::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use strom_protocol::fetch_request::{FetchPartition, FetchTopic};
use strom_protocol::produce_request::{PartitionProduceData, TopicProduceData};
use strom_protocol::records::{decode_records, split_batches, BatchBuilder};
use strom_protocol::{
    CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse, InitProducerIdRequest,
    InitProducerIdResponse, ProduceRequest, ProduceResponse,
};

const LEVELS: [&str; 7] =
    ["NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"];

async fn start(dir: &std::path::Path) -> (common::Running, String) {
    let b = common::start(dir, &[("strom.schema.registry.listener", "127.0.0.1:0")]).await;
    let reg = registry_of(&b).await;
    (b, reg)
}

/// The registry address of a broker started by `common::start` (port 0): asked from
/// the broker's own log line is not possible in-process, so the test binds the port.
async fn registry_of(b: &common::Running) -> String {
    b.registry.clone().expect("registry enabled")
}

fn req(kind: &str, schema: &str) -> String {
    json!({ "schemaType": kind, "schema": schema }).to_string()
}

async fn call(reg: &str, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    common::http_json(reg, method, path, body).await
}

/// (type, case, v1, v2, BACKWARD ok, FORWARD ok): Confluent's documented verdicts.
fn cases() -> Vec<(&'static str, &'static str, String, String, bool, bool)> {
    let avro = |fields: &str| format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#);
    let a = r#"{"name":"a","type":"string"}"#;
    let json_obj = |props: &str, closed: bool| {
        format!(
            r#"{{"type":"object","properties":{{{props}}}{}}}"#,
            if closed { r#","additionalProperties":false"# } else { "" }
        )
    };
    let proto = |body: &str| format!("syntax = \"proto3\";\npackage t;\n{body}\n");
    vec![
        (
            "AVRO",
            "add a field with a default",
            avro(a),
            avro(&format!(r#"{a},{{"name":"b","type":"int","default":0}}"#)),
            true,
            true,
        ),
        (
            "AVRO",
            "add a field without a default",
            avro(a),
            avro(&format!(r#"{a},{{"name":"b","type":"int"}}"#)),
            false,
            true,
        ),
        (
            "AVRO",
            "remove a field without a default",
            avro(&format!(r#"{a},{{"name":"b","type":"int"}}"#)),
            avro(a),
            true,
            false,
        ),
        (
            "AVRO",
            "int to long",
            avro(r#"{"name":"n","type":"int"}"#),
            avro(r#"{"name":"n","type":"long"}"#),
            true,
            false,
        ),
        ("AVRO", "string to int", avro(a), avro(r#"{"name":"a","type":"int"}"#), false, false),
        (
            "JSON",
            "open model: add a typed property",
            json_obj(r#""a":{"type":"string"}"#, false),
            json_obj(r#""a":{"type":"string"},"b":{"type":"string"}"#, false),
            false,
            true,
        ),
        (
            "JSON",
            "closed model: add an optional property",
            json_obj(r#""a":{"type":"string"}"#, true),
            json_obj(r#""a":{"type":"string"},"b":{"type":"string"}"#, true),
            true,
            false,
        ),
        ("JSON", "integer to number", r#"{"type":"integer"}"#.into(), r#"{"type":"number"}"#.into(), true, false),
        ("JSON", "string to integer", r#"{"type":"string"}"#.into(), r#"{"type":"integer"}"#.into(), false, false),
        (
            "PROTOBUF",
            "add a field",
            proto("message M { int32 a = 1; }"),
            proto("message M { int32 a = 1; string b = 2; }"),
            true,
            true,
        ),
        (
            "PROTOBUF",
            "int32 to string",
            proto("message M { int32 a = 1; }"),
            proto("message M { string a = 1; }"),
            false,
            false,
        ),
        (
            "PROTOBUF",
            "add a message type",
            proto("message M { int32 a = 1; }"),
            proto("message M { int32 a = 1; }\nmessage N { int32 x = 1; }"),
            true,
            false,
        ),
        (
            "PROTOBUF",
            "remove a message type",
            proto("message M { int32 a = 1; }\nmessage N { int32 x = 1; }"),
            proto("message M { int32 a = 1; }"),
            false,
            true,
        ),
    ]
}

fn expected(level: &str, backward: bool, forward: bool) -> bool {
    match level {
        "NONE" => true,
        "BACKWARD" | "BACKWARD_TRANSITIVE" => backward,
        "FORWARD" | "FORWARD_TRANSITIVE" => forward,
        _ => backward && forward,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compatibility_verdicts_follow_confluents_rules_per_type_and_level() {
    let dir = tempfile::tempdir().unwrap();
    let (b, reg) = start(dir.path()).await;
    let mut wrong = Vec::new();
    for (n, (kind, case, v1, v2, backward, forward)) in cases().into_iter().enumerate() {
        for level in LEVELS {
            let subject = format!("c{n}-{level}");
            let (s, v) =
                call(&reg, "PUT", &format!("/config/{subject}"), Some(&json!({ "compatibility": level }).to_string()))
                    .await;
            assert_eq!((s, v["compatibility"].as_str()), (200, Some(level)), "{v}");
            let (s, v) = call(&reg, "POST", &format!("/subjects/{subject}/versions"), Some(&req(kind, &v1))).await;
            assert_eq!(s, 200, "{kind} {case}: v1 registers: {v}");
            let want = expected(level, backward, forward);
            let (_, v) = call(
                &reg,
                "POST",
                &format!("/compatibility/subjects/{subject}/versions/latest"),
                Some(&req(kind, &v2)),
            )
            .await;
            let checked = v["is_compatible"].as_bool();
            let (s, v) = call(&reg, "POST", &format!("/subjects/{subject}/versions"), Some(&req(kind, &v2))).await;
            let registered = match s {
                200 => Some(true),
                409 if v["error_code"] == 409 => Some(false),
                _ => None,
            };
            if checked != Some(want) || registered != Some(want) {
                wrong
                    .push(format!("{kind} {case} at {level}: check {checked:?}, register {registered:?}, want {want}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    b.stop().await;
}

/// Transitive levels compare with every live version: v3 is compatible with v2 but not
/// with v1, so BACKWARD takes it and BACKWARD_TRANSITIVE does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitive_levels_check_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let (b, reg) = start(dir.path()).await;
    let avro = |fields: &str| format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#);
    let proto = |body: &str| format!("syntax = \"proto3\";\npackage t;\nmessage M {{ {body} }}\n");
    let chains = [
        ("AVRO", avro(r#"{"name":"a","type":"string"}"#), avro(""), avro(r#"{"name":"a","type":"int","default":0}"#)),
        ("PROTOBUF", proto("int32 a = 1;"), proto(""), proto("string a = 1;")),
    ];
    for (kind, v1, v2, v3) in chains {
        for (level, want) in [("BACKWARD", true), ("BACKWARD_TRANSITIVE", false), ("NONE", true)] {
            let subject = format!("chain-{kind}-{level}");
            call(&reg, "PUT", &format!("/config/{subject}"), Some(r#"{"compatibility":"NONE"}"#)).await;
            for v in [&v1, &v2] {
                let (s, body) = call(&reg, "POST", &format!("/subjects/{subject}/versions"), Some(&req(kind, v))).await;
                assert_eq!(s, 200, "{body}");
            }
            call(&reg, "PUT", &format!("/config/{subject}"), Some(&json!({ "compatibility": level }).to_string()))
                .await;
            let (_, v) =
                call(&reg, "POST", &format!("/compatibility/subjects/{subject}/versions"), Some(&req(kind, &v3))).await;
            assert_eq!(v["is_compatible"].as_bool(), Some(want), "{kind} v3 at {level}: {v}");
        }
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_confluents_codes_and_the_registry_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::start(
        dir.path(),
        &[
            ("strom.schema.registry.listener", "127.0.0.1:0"),
            ("strom.schema.registry.max.body.bytes", "65536"),
            ("strom.schema.registry.max.connections", "4"),
        ],
    )
    .await;
    let reg = registry_of(&b).await;
    let r = |kind: &str, s: &str| req(kind, s);
    // (what, method, path, body, HTTP status, error_code)
    type Check = (&'static str, &'static str, String, Vec<u8>, u16, i64);
    let checks: Vec<Check> = vec![
        ("bad JSON", "POST", "/subjects/x/versions".into(), b"{nope".to_vec(), 400, 400),
        ("not an object", "POST", "/subjects/x/versions".into(), b"[1,2]".to_vec(), 422, 42201),
        ("no schema", "POST", "/subjects/x/versions".into(), b"{}".to_vec(), 422, 42201),
        ("unknown type", "POST", "/subjects/x/versions".into(), r("XML", "<a/>").into_bytes(), 422, 42201),
        (
            "invalid Avro",
            "POST",
            "/subjects/x/versions".into(),
            r("AVRO", r#"{"type":"record"}"#).into_bytes(),
            422,
            42201,
        ),
        (
            "invalid JSON Schema",
            "POST",
            "/subjects/x/versions".into(),
            r("JSON", r#"{"type":12}"#).into_bytes(),
            422,
            42201,
        ),
        (
            "invalid Protobuf",
            "POST",
            "/subjects/x/versions".into(),
            r("PROTOBUF", "message {").into_bytes(),
            422,
            42201,
        ),
        (
            "unresolvable reference",
            "POST",
            "/subjects/x/versions".into(),
            json!({"schema": r#"{"type":"record","name":"A","fields":[{"name":"b","type":"B"}]}"#,
                   "references": [{"name": "B", "subject": "nowhere", "version": 1}]})
            .to_string()
            .into_bytes(),
            422,
            42201,
        ),
        ("unknown subject", "GET", "/subjects/nope/versions".into(), vec![], 404, 40401),
        ("unknown version", "GET", "/subjects/nope/versions/7".into(), vec![], 404, 40401),
        ("invalid version", "GET", "/subjects/nope/versions/zero".into(), vec![], 404, 40401),
        ("unknown id", "GET", "/schemas/ids/77".into(), vec![], 404, 40403),
        ("non-numeric id", "GET", "/schemas/ids/x".into(), vec![], 404, 40403),
        ("invalid level", "PUT", "/config".into(), br#"{"compatibility":"SIDEWAYS"}"#.to_vec(), 422, 42203),
        ("invalid mode", "PUT", "/mode".into(), br#"{"mode":"SOMETIMES"}"#.to_vec(), 422, 42204),
        ("no subject config", "GET", "/config/nope".into(), vec![], 404, 40408),
        ("unknown route", "GET", "/nothing/here".into(), vec![], 404, 404),
        ("wrong method", "PATCH", "/subjects".into(), vec![], 405, 405),
        ("associations", "GET", "/associations/resources/-/t".into(), vec![], 404, 40410),
        ("body over the cap", "POST", "/subjects/x/versions".into(), vec![b' '; 70_000], 413, 413),
    ];
    for (what, method, path, body, status, code) in checks {
        let (s, raw) = common::http_raw(&reg, method, &path, &body).await;
        let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        assert_eq!((s, v["error_code"].as_i64()), (status, Some(code)), "{what}: {}", String::from_utf8_lossy(&raw));
    }
    // A version argument that is no number is 42202 once the subject exists.
    call(&reg, "POST", "/subjects/real/versions", Some(&req("AVRO", r#""string""#))).await;
    let (s, v) = call(&reg, "GET", "/subjects/real/versions/zero", None).await;
    assert_eq!((s, v["error_code"].as_i64()), (422, Some(42202)), "{v}");
    // Raw garbage, a head over 64 KiB, a chunked upload: refused, connection closed.
    let mut garbage = tokio::net::TcpStream::connect(&reg).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut garbage, b"\x00\x01\x02 GARBAGE\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut garbage, &mut out).await.unwrap();
    assert!(out.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&out));
    let huge_head = format!("GET / HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(70_000));
    let (s, _) = raw_exchange(&reg, huge_head.as_bytes()).await;
    assert_eq!(s, 431);
    let (s, _) = raw_exchange(
        &reg,
        b"POST /subjects/x/versions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(s, 411);
    // Beyond the connection cap: 503, and the registry serves again once they close.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(tokio::net::TcpStream::connect(&reg).await.unwrap());
    }
    // Connections are accepted in order: these four hold every slot before the next one.
    let (s, v) = call(&reg, "GET", "/subjects", None).await;
    assert_eq!((s, v["error_code"].as_i64()), (503, Some(50301)), "{v}");
    drop(held);
    let (s, v) = common_eventually(&reg).await;
    assert_eq!((s, v), (200, json!(["real"])));
    b.stop().await;
}

/// Retries `GET /subjects` until the connection slots are free again.
async fn common_eventually(reg: &str) -> (u16, Value) {
    for _ in 0..100 {
        let r = call(reg, "GET", "/subjects", None).await;
        if r.0 == 200 {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    call(reg, "GET", "/subjects", None).await
}

async fn raw_exchange(reg: &str, bytes: &[u8]) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(reg).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let status = String::from_utf8_lossy(&out).split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_follow_confluents_rules_and_survive_a_restart_without_reusing_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (b, reg) = start(dir.path()).await;
    let avro = |n: &str| req("AVRO", &format!(r#"{{"type":"record","name":"{n}","fields":[]}}"#));
    let (_, v) = call(&reg, "POST", "/subjects/a/versions", Some(&avro("A"))).await;
    assert_eq!(v["id"], 1);
    // The same content under another subject keeps its id; a reference pins it.
    let (_, v) = call(&reg, "POST", "/subjects/b/versions", Some(&avro("A"))).await;
    assert_eq!(v["id"], 1);
    let refd = json!({"schema": r#"{"type":"record","name":"U","fields":[{"name":"a","type":"A"}]}"#,
                      "references": [{"name": "A", "subject": "a", "version": 1}]});
    let (s, v) = call(&reg, "POST", "/subjects/user/versions", Some(&refd.to_string())).await;
    assert_eq!((s, v["id"].as_i64()), (200, Some(2)), "{v}");
    let (_, v) = call(&reg, "GET", "/subjects/a/versions/1/referencedby", None).await;
    assert_eq!(v, json!([2]));
    let (s, v) = call(&reg, "DELETE", "/subjects/a", None).await;
    assert_eq!((s, v["error_code"].as_i64()), (422, Some(42206)), "referenced: {v}");
    // Soft then hard delete, in Confluent's order.
    let (_, v) = call(&reg, "POST", "/subjects/c/versions", Some(&avro("C"))).await;
    assert_eq!(v["id"], 3);
    let (s, v) = call(&reg, "DELETE", "/subjects/c?permanent=true", None).await;
    assert_eq!((s, v["error_code"].as_i64()), (404, Some(40405)), "{v}");
    let (s, v) = call(&reg, "DELETE", "/subjects/c", None).await;
    assert_eq!((s, v), (200, json!([1])));
    let (s, v) = call(&reg, "DELETE", "/subjects/c", None).await;
    assert_eq!((s, v["error_code"].as_i64()), (404, Some(40404)), "{v}");
    let (s, _) = call(&reg, "GET", "/subjects/c/versions", None).await;
    assert_eq!(s, 404);
    let (_, v) = call(&reg, "GET", "/subjects/c/versions?deleted=true", None).await;
    assert_eq!(v, json!([1]));
    let (_, v) = call(&reg, "GET", "/schemas/ids/3", None).await;
    assert!(v["schema"].is_string(), "a soft-deleted schema stays resolvable: {v}");
    let (s, v) = call(&reg, "DELETE", "/subjects/c?permanent=True", None).await;
    assert_eq!((s, v), (200, json!([1])));
    let (s, _) = call(&reg, "GET", "/schemas/ids/3", None).await;
    assert_eq!(s, 404, "hard-deleted");
    // Read-only mode refuses writes.
    call(&reg, "PUT", "/mode/b", Some(r#"{"mode":"READONLY"}"#)).await;
    let (s, v) = call(&reg, "POST", "/subjects/b/versions", Some(&avro("B2"))).await;
    assert_eq!((s, v["error_code"].as_i64()), (422, Some(42205)), "{v}");
    b.stop().await;

    // After a restart: the same subjects, modes, and the next id is 4 (3 was given out
    // and hard-deleted: never reused).
    let b = common::start(dir.path(), &[("strom.schema.registry.listener", "127.0.0.1:0")]).await;
    let reg = registry_of(&b).await;
    let (_, v) = call(&reg, "GET", "/subjects", None).await;
    assert_eq!(v, json!(["a", "b", "user"]));
    let (_, v) = call(&reg, "GET", "/mode/b", None).await;
    assert_eq!(v, json!({"mode": "READONLY"}));
    let (_, v) = call(&reg, "POST", "/subjects/d/versions", Some(&avro("D"))).await;
    assert_eq!(v["id"], 4, "{v}");
    b.stop().await;
}

async fn create(c: &mut Client, name: &str, configs: &[(&str, &str)]) {
    let req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: 1,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig {
                    name: (*k).into(),
                    value: Some((*v).into()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: 5000,
        ..Default::default()
    };
    let (r, _): (CreateTopicsResponse, _) = c.call(i16::MAX, &req).await.expect("create");
    assert_eq!(r.topics[0].error_code, 0, "{name}: {:?}", r.topics[0].error_message);
}

/// Produces one batch of `values` (idempotent when `producer` is given); the partition's
/// (error code, base offset, record errors).
async fn produce(
    c: &mut Client,
    topic: &str,
    values: &[Vec<u8>],
    producer: Option<(i64, i16, i32)>,
) -> (i16, i64, usize) {
    let mut b = BatchBuilder::new(1_700_000_000_000);
    if let Some((pid, epoch, seq)) = producer {
        b = b.producer(pid, epoch, seq);
    }
    for v in values {
        b.add(None, Some(v));
    }
    let req = ProduceRequest {
        acks: -1,
        timeout_ms: 5000,
        topic_data: vec![TopicProduceData {
            name: topic.into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(b.build().freeze()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (r, _): (ProduceResponse, _) = c.call(12, &req).await.expect("produce");
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset, p.record_errors.len())
}

/// Every record of partition 0: (offset, value, headers).
async fn records(c: &mut Client, topic: &str) -> Vec<(i64, Vec<u8>, Vec<(String, Vec<u8>)>)> {
    let req = FetchRequest {
        replica_id: -1,
        max_bytes: 1 << 20,
        topics: vec![FetchTopic {
            topic: topic.into(),
            partitions: vec![FetchPartition { partition: 0, partition_max_bytes: 1 << 20, ..Default::default() }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let (r, _): (FetchResponse, _) = c.call(12, &req).await.expect("fetch");
    let data = r.responses[0].partitions[0].records.clone().unwrap_or_default();
    let mut out = Vec::new();
    for span in split_batches(&data) {
        let batch = data.slice(span.expect("batch"));
        let base = strom_protocol::records::BatchHeader::parse(&batch).unwrap().base_offset;
        for rec in decode_records(&batch).expect("records") {
            let headers =
                rec.headers.iter().map(|(k, v)| (k.clone(), v.clone().unwrap_or_default().to_vec())).collect();
            out.push((base + i64::from(rec.offset_delta), rec.value.unwrap_or_default().to_vec(), headers));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_refuses_bad_records_and_dead_letters_keep_an_idempotent_batch_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (b, reg) = start(dir.path()).await;
    let mut c = Client::connect(&b.addr, Duration::from_secs(5)).await.unwrap();
    create(&mut c, "plain", &[]).await;
    create(
        &mut c,
        "checked",
        &[("confluent.value.schema.validation", "true"), ("strom.value.schema.validation.payload", "true")],
    )
    .await;
    create(&mut c, "dlq", &[]).await;
    create(&mut c, "routed", &[("confluent.value.schema.validation", "true"), ("strom.dlq.topic", "dlq")]).await;
    let (_, v) = call(&reg, "POST", "/subjects/checked-value/versions", Some(&req("AVRO", r#""long""#))).await;
    let id = v["id"].as_i64().unwrap() as u32;
    call(&reg, "POST", "/subjects/routed-value/versions", Some(&req("AVRO", r#""long""#))).await;
    let (_, v) = call(&reg, "POST", "/subjects/elsewhere-value/versions", Some(&req("AVRO", r#""string""#))).await;
    let other = v["id"].as_i64().unwrap() as u32;
    let framed = |id: u32, payload: &[u8]| [&[0u8][..], &id.to_be_bytes(), payload].concat();
    // Unvalidated topics take anything.
    assert_eq!(produce(&mut c, "plain", &[b"raw".to_vec()], None).await.0, 0);
    // Each failure is INVALID_RECORD with a record error, and nothing is appended.
    for (what, value) in [
        ("no magic byte", b"raw".to_vec()),
        ("too short", vec![0, 0, 0]),
        ("unknown id", framed(999, &[2])),
        ("another subject's id", framed(other, &[2])),
        ("a payload that is not a long", framed(id, &[0xff])),
    ] {
        let (code, _, errors) = produce(&mut c, "checked", &[framed(id, &[2]), value], None).await;
        assert_eq!((code, errors), (87, 1), "{what}");
    }
    assert!(records(&mut c, "checked").await.is_empty());
    assert_eq!(produce(&mut c, "checked", &[framed(id, &[2]), framed(id, &[4])], None).await.0, 0);
    assert_eq!(records(&mut c, "checked").await.len(), 2);

    // Dead letters from an idempotent batch: the batch keeps its offsets and sequences,
    // so the producer's next batch follows on.
    let init = InitProducerIdRequest { transaction_timeout_ms: -1, ..Default::default() };
    let (r, _): (InitProducerIdResponse, _) = c.call(i16::MAX, &init).await.unwrap();
    let (pid, epoch) = (r.producer_id, r.producer_epoch);
    let batch = vec![framed(id, &[2]), b"bad-1".to_vec(), framed(id, &[4]), b"bad-2".to_vec()];
    let (code, base, _) = produce(&mut c, "routed", &batch, Some((pid, epoch, 0))).await;
    assert_eq!((code, base), (0, 0));
    let (code, base, _) = produce(&mut c, "routed", &[framed(id, &[6])], Some((pid, epoch, 4))).await;
    assert_eq!((code, base), (0, 4), "the next sequence is accepted after the gaps");
    let (code, base, _) = produce(&mut c, "routed", &batch, Some((pid, epoch, 0))).await;
    assert_eq!((code, base), (0, 0), "a retried batch is a duplicate, answered with its offsets");
    let kept: Vec<i64> = records(&mut c, "routed").await.iter().map(|r| r.0).collect();
    assert_eq!(kept, vec![0, 2, 4], "the invalid records' offsets are gaps");
    let dead = records(&mut c, "dlq").await;
    assert_eq!(dead.len(), 2, "each dead letter once, the retry routed none: {dead:?}");
    let (_, value, headers) = &dead[0];
    assert_eq!(value, b"bad-1");
    let h = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| String::from_utf8_lossy(v).into_owned());
    assert_eq!(h("strom.dlq.topic").as_deref(), Some("routed"));
    assert_eq!(h("strom.dlq.partition").as_deref(), Some("0"));
    assert!(h("strom.dlq.error").is_some_and(|e| e.contains("magic byte")), "{headers:?}");
    // What an operator sees.
    let (_, text) = common::http_raw(b.http.as_deref().expect("http"), "GET", "/metrics", b"").await;
    let text = String::from_utf8_lossy(&text);
    let metric =
        |line: &str| text.lines().find(|l| l.starts_with(line)).map(|l| l.rsplit(' ').next().unwrap_or("").to_string());
    assert_eq!(metric(r#"strom_schema_validation_failures_total{topic="checked"}"#).as_deref(), Some("5"), "{text}");
    assert_eq!(metric(r#"strom_dead_letter_records_total{topic="routed"}"#).as_deref(), Some("2"));
    assert_eq!(metric("strom_schema_registry_schemas ").as_deref(), Some("2"));
    assert!(metric(r#"strom_schema_registry_requests_total{outcome="ok"}"#).is_some_and(|n| n != "0"));
    b.stop().await;
}

/// Runs `strom schema ARGS -o json` against the registry at `reg`: (success, stdout).
fn strom_schema(reg: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .arg("schema")
        .args(args)
        .args(["--registry", &format!("http://{reg}"), "-o", "json"])
        .output()
        .expect("run strom");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strom_schema_registers_checks_lists_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let (b, reg) = start(dir.path()).await;
    let files = tempfile::tempdir().unwrap();
    let v1 = files.path().join("v1.avsc");
    let v2 = files.path().join("v2.avsc");
    let bad = files.path().join("bad.avsc");
    std::fs::write(&v1, r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#).unwrap();
    std::fs::write(
        &v2,
        r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"int","default":0}]}"#,
    )
    .unwrap();
    std::fs::write(&bad, r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#).unwrap();
    let rows = |s: &str| -> Vec<Value> { serde_json::from_str(s).expect("json rows") };
    let (ok, out) = strom_schema(&reg, &["register", "orders/v", v1.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert_eq!(rows(&out), vec![json!({"subject": "orders/v", "version": 1, "id": 1})]);
    let (ok, out) = strom_schema(&reg, &["check", "orders/v", v2.to_str().unwrap()]);
    assert!(ok && rows(&out)[0]["compatible"] == "true", "{out}");
    let (ok, out) = strom_schema(&reg, &["check", "orders/v", bad.to_str().unwrap()]);
    assert!(!ok && rows(&out)[0]["compatible"] == "false", "{out}");
    strom_schema(&reg, &["register", "orders/v", v2.to_str().unwrap()]);
    let (_, out) = strom_schema(&reg, &["list"]);
    assert_eq!(rows(&out), vec![json!({"subject": "orders/v", "version": 2, "id": 2, "type": "AVRO"})]);
    let (_, out) = strom_schema(&reg, &["get", "orders/v", "--version", "1"]);
    assert!(rows(&out)[0]["schema"].as_str().is_some_and(|s| s.contains(r#""name":"a""#)), "{out}");
    let (ok, out) = strom_schema(&reg, &["compatibility", "orders/v", "--set", "full"]);
    assert!(ok && rows(&out)[0]["compatibility"] == "FULL", "{out}");
    let (ok, out) = strom_schema(&reg, &["delete", "orders/v"]);
    assert!(ok && rows(&out)[0]["deleted_versions"] == "1,2", "{out}");
    let (_, out) = strom_schema(&reg, &["list"]);
    assert_eq!(rows(&out), Vec::<Value>::new());
    b.stop().await;
}
