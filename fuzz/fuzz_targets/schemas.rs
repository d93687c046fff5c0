#![no_main]
//! The schema registry's decoders of outside bytes (issue 18), on the broker's own source
//! files: schema texts as REST clients register them (Avro JSON, JSON Schema, `.proto`
//! text or base64 descriptors) and record payloads as producers send them to validated
//! topics. The first byte picks the schema type; the rest splits at its first NUL into a
//! schema and a payload. A schema that parses is also canonicalised, named, validated
//! against the payload and compared with itself and with a fixed schema of its type, in
//! both directions. None may panic.

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/registry/avro.rs"]
mod avro;

#[allow(dead_code)]
#[path = "../../src/registry/json.rs"]
mod json;

#[allow(dead_code)]
#[path = "../../src/registry/protobuf.rs"]
mod protobuf;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    let (text, payload) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    match kind % 3 {
        0 => {
            let fixed = avro::AvroSchema::parse(r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#, &[]);
            if let (Ok(s), Ok(fixed)) = (avro::AvroSchema::parse(text, &[]), fixed) {
                let _ = (s.canonical(), s.record_name(), s.validate(payload));
                let _ = (avro::incompatibilities(&s, &s), avro::incompatibilities(&s, &fixed), avro::incompatibilities(&fixed, &s));
            }
        }
        1 => {
            let fixed = json::JsonSchema::parse(r#"{"type":"object","properties":{"a":{"type":"string"}}}"#, &[]);
            if let (Ok(s), Ok(fixed)) = (json::JsonSchema::parse(text, &[]), fixed) {
                let _ = (s.canonical(), s.record_name(), s.validate(payload));
                let _ = (json::incompatibilities(&s, &s), json::incompatibilities(&s, &fixed), json::incompatibilities(&fixed, &s));
            }
        }
        _ => {
            let fixed = protobuf::ProtoSchema::parse("syntax = \"proto3\";\nmessage M { int32 a = 1; }\n", &[]);
            let _ = protobuf::read_message_indexes(payload);
            if let (Ok(s), Ok(fixed)) = (protobuf::ProtoSchema::parse(text, &[]), fixed) {
                let _ = (s.canonical(), s.serialized(), s.message_name(&[0, 1]), s.validate(payload));
                let _ = (
                    protobuf::incompatibilities(&s, &s),
                    protobuf::incompatibilities(&s, &fixed),
                    protobuf::incompatibilities(&fixed, &s),
                );
            }
        }
    }
});
