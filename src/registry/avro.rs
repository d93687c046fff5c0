//! Avro schemas through the `apache-avro` crate: parsing (with references), Confluent's
//! compatibility (Avro's reader/writer resolution) and payload validation.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

/// The most a single Avro string, bytes or block may claim. Set once, process-wide (the
/// crate keeps it in a global): a payload is at most a record, and a record at most a
/// request, so nothing valid needs more, and a forged length cannot make us allocate more.
const MAX_ALLOCATION: usize = 32 << 20;

/// A parsed Avro schema.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    schema: Schema,
    /// The referenced named schemas, for schemas that use them.
    refs: Vec<Schema>,
    canonical: String,
}

impl AvroSchema {
    /// Parses `text`; `refs` are the referenced schemas' texts (named types the schema
    /// uses by name).
    pub fn parse(text: &str, refs: &[(String, String)]) -> Result<AvroSchema, String> {
        apache_avro::util::max_allocation_bytes(MAX_ALLOCATION);
        // The JSON is parsed first (serde_json's recursion limit bounds nesting) and its
        // compact, key-sorted form is the canonical text: the same schema written with
        // other whitespace or key order is the same schema, as Confluent treats it;
        // docs, defaults and aliases still count (they change what readers do).
        let json: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("Invalid schema: {e}"))?;
        let canonical = serde_json::to_string(&json).map_err(|e| e.to_string())?;
        let (schema, refs) = if refs.is_empty() {
            (Schema::parse_str(text).map_err(|e| format!("Invalid schema: {e}"))?, Vec::new())
        } else {
            Schema::parse_str_with_list(text, refs.iter().map(|(_, t)| t.as_str()))
                .map_err(|e| format!("Invalid schema: {e}"))?
        };
        Ok(AvroSchema { schema, refs, canonical })
    }

    /// The key-sorted compact JSON text (decides "same schema").
    pub fn canonical(&self) -> String {
        self.canonical.clone()
    }

    /// The full name of a record, enum or fixed schema (RecordNameStrategy).
    pub fn record_name(&self) -> Option<String> {
        match &self.schema {
            Schema::Record(r) => Some(r.name.fullname(None)),
            Schema::Enum(e) => Some(e.name.fullname(None)),
            Schema::Fixed(f) => Some(f.name.fullname(None)),
            _ => None,
        }
    }

    /// Decodes `payload` (the bytes after the 5-byte prefix) as one datum of this schema;
    /// every byte must be used.
    pub fn validate(&self, payload: &[u8]) -> Result<(), String> {
        let mut cursor = payload;
        let decoded = if self.refs.is_empty() {
            apache_avro::from_avro_datum(&self.schema, &mut cursor, None)
        } else {
            apache_avro::from_avro_datum_schemata(&self.schema, self.refs.iter().collect(), &mut cursor, None)
        };
        decoded.map_err(|e| format!("not a datum of the schema: {e}"))?;
        if !cursor.is_empty() {
            return Err(format!("{} byte(s) after the datum", cursor.len()));
        }
        Ok(())
    }
}

/// Why a reader using `update` cannot read data written with `original` (empty: it can),
/// by Avro's schema resolution rules, as Confluent's AvroSchema checks compatibility.
pub fn incompatibilities(original: &AvroSchema, update: &AvroSchema) -> Vec<String> {
    match SchemaCompatibility::can_read(&original.schema, &update.schema) {
        Ok(()) => Vec::new(),
        Err(e) => vec![format!("{e}")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &str) -> AvroSchema {
        AvroSchema::parse(&format!(r#"{{"type":"record","name":"User","namespace":"ex","fields":[{fields}]}}"#), &[])
            .unwrap()
    }

    /// Confluent's documented verdicts: (v1 fields, v2 fields, BACKWARD ok, FORWARD ok).
    #[test]
    fn evolution_verdicts_match_confluents_rules() {
        let name = r#"{"name":"name","type":"string"}"#;
        let cases: &[(&str, &str, &str, bool, bool)] = &[
            (
                "add field with default",
                name,
                &format!(r#"{name},{{"name":"age","type":"int","default":0}}"#),
                true,
                true,
            ),
            ("add field without default", name, &format!(r#"{name},{{"name":"age","type":"int"}}"#), false, true),
            (
                "remove field with default",
                &format!(r#"{name},{{"name":"age","type":"int","default":0}}"#),
                name,
                true,
                true,
            ),
            ("remove field without default", &format!(r#"{name},{{"name":"age","type":"int"}}"#), name, true, false),
            ("int to long", r#"{"name":"n","type":"int"}"#, r#"{"name":"n","type":"long"}"#, true, false),
            ("long to int", r#"{"name":"n","type":"long"}"#, r#"{"name":"n","type":"int"}"#, false, true),
            ("float to double", r#"{"name":"n","type":"float"}"#, r#"{"name":"n","type":"double"}"#, true, false),
            ("string to bytes", r#"{"name":"n","type":"string"}"#, r#"{"name":"n","type":"bytes"}"#, true, true),
            ("string to int", r#"{"name":"n","type":"string"}"#, r#"{"name":"n","type":"int"}"#, false, false),
            (
                "enum symbol added",
                r#"{"name":"c","type":{"type":"enum","name":"C","symbols":["A","B"]}}"#,
                r#"{"name":"c","type":{"type":"enum","name":"C","symbols":["A","B","D"]}}"#,
                true,
                false,
            ),
            (
                "enum symbol removed",
                r#"{"name":"c","type":{"type":"enum","name":"C","symbols":["A","B","D"]}}"#,
                r#"{"name":"c","type":{"type":"enum","name":"C","symbols":["A","B"]}}"#,
                false,
                true,
            ),
            (
                "T to nullable T",
                r#"{"name":"n","type":"string"}"#,
                r#"{"name":"n","type":["null","string"]}"#,
                true,
                false,
            ),
            (
                "union branch added",
                r#"{"name":"n","type":["null","string"]}"#,
                r#"{"name":"n","type":["null","string","int"]}"#,
                true,
                false,
            ),
            (
                "renamed field with an alias",
                r#"{"name":"old","type":"string"}"#,
                r#"{"name":"new","type":"string","aliases":["old"]}"#,
                true,
                false,
            ),
            (
                "default changed",
                r#"{"name":"n","type":"int","default":1}"#,
                r#"{"name":"n","type":"int","default":2}"#,
                true,
                true,
            ),
            (
                "fields reordered",
                &format!(r#"{name},{{"name":"age","type":"int"}}"#),
                &format!(r#"{{"name":"age","type":"int"}},{name}"#),
                true,
                true,
            ),
        ];
        let mut wrong = Vec::new();
        for (what, v1, v2, backward, forward) in cases {
            let (a, b) = (record(v1), record(v2));
            let got = (incompatibilities(&a, &b).is_empty(), incompatibilities(&b, &a).is_empty());
            if got != (*backward, *forward) {
                wrong.push(format!("{what}: got {got:?}, want {:?}", (backward, forward)));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        // A renamed record (no alias) can read nothing of the old one.
        let other = AvroSchema::parse(r#"{"type":"record","name":"Person","fields":[]}"#, &[]).unwrap();
        assert!(!incompatibilities(&record(name), &other).is_empty());
    }

    #[test]
    fn canonical_ignores_layout_and_payloads_are_checked() {
        let a = AvroSchema::parse(r#"{"type": "record", "name": "R", "fields": [{"name":"a","type":"int"}]}"#, &[]);
        let b = AvroSchema::parse(r#"{"fields":[{"type":"int","name":"a"}],"name":"R","type":"record"}"#, &[]);
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.record_name().as_deref(), Some("R"));
        assert!(a.validate(&[0x54]).is_ok()); // zigzag 42
        assert!(a.validate(&[0x54, 0x00]).is_err(), "trailing bytes");
        assert!(a.validate(&[0xff]).is_err(), "truncated varint");
        let s = AvroSchema::parse(r#""string""#, &[]).unwrap();
        assert!(s.validate(&[0xfe, 0xff, 0xff, 0xff, 0x0f]).is_err(), "a forged length allocates nothing");
        assert!(AvroSchema::parse("{", &[]).is_err());
        assert!(AvroSchema::parse(r#"{"type":"record"}"#, &[]).is_err());
        assert!(AvroSchema::parse(&"[".repeat(10_000), &[]).is_err(), "nesting is bounded");
    }

    #[test]
    fn references_resolve_named_types() {
        let addr = r#"{"type":"record","name":"Address","namespace":"ex","fields":[{"name":"city","type":"string"}]}"#;
        let user = r#"{"type":"record","name":"User","namespace":"ex","fields":[{"name":"home","type":"ex.Address"}]}"#;
        let s = AvroSchema::parse(user, &[("ex.Address".into(), addr.into())]).unwrap();
        assert!(s.validate(&[0x04, b'o', b'k']).is_ok());
        assert!(AvroSchema::parse(user, &[]).is_err(), "unresolved reference");
    }
}
