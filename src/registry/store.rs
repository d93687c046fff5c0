//! The records of `_schemas`, in Confluent Schema Registry's own JSON format (ADR 0015):
//! keys `{"keytype":…,"subject":…,"version":…,"magic":…}`, values per key type, a null
//! value deleting what the key names. Keeping Confluent's format means a `_schemas` topic
//! copied from a Confluent deployment loads here, and ours reads with their tools.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Level, Mode, Reference, SchemaType};

/// A decoded `_schemas` record.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// One version of a subject; `None` = hard-deleted (a tombstone).
    Schema { subject: String, version: i32, value: Option<SchemaValue> },
    /// A compatibility level; `subject: None` = the global one; `level: None` = deleted.
    Config { subject: Option<String>, level: Option<Level> },
    /// A mode; same conventions as `Config`.
    Mode { subject: Option<String>, mode: Option<Mode> },
    /// Confluent's subject delete: every version up to `version` is soft-deleted.
    DeleteSubject { subject: String, version: i32 },
    /// Confluent's subject clear: every soft-deleted version is removed.
    ClearSubject { subject: String },
    /// Confluent's no-op (a new leader's write-and-read-back); Strom adds the highest
    /// id ever given out, so a hard delete compacted away never lets an id be reused.
    Noop { max_id: Option<i32> },
}

/// The value of a SCHEMA record (Confluent's `SchemaValue`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    /// Absent for Avro, as Confluent writes it.
    #[serde(rename = "schemaType", default, skip_serializing_if = "Option::is_none")]
    pub schema_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

impl SchemaValue {
    /// The schema type (Avro when absent).
    pub fn kind(&self) -> Option<SchemaType> {
        SchemaType::parse(self.schema_type.as_deref().unwrap_or("AVRO"))
    }
}

#[derive(Serialize, Deserialize)]
struct Key {
    keytype: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<i32>,
    magic: i32,
}

/// Encodes an entry as (key, value) bytes.
pub fn encode(entry: &Entry) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = |keytype: &str, subject: Option<&str>, version: Option<i32>, magic: i32| Key {
        keytype: keytype.to_string(),
        subject: subject.map(str::to_string),
        version,
        magic,
    };
    let json = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    let (k, v) = match entry {
        Entry::Schema { subject, version, value } => (
            key("SCHEMA", Some(subject), Some(*version), 1),
            value.as_ref().map(|v| serde_json::to_vec(v).unwrap_or_default()),
        ),
        Entry::Config { subject, level } => (
            key("CONFIG", subject.as_deref(), None, 0),
            level.map(|l| json(&serde_json::json!({ "compatibilityLevel": l.name() }))),
        ),
        Entry::Mode { subject, mode } => {
            (key("MODE", subject.as_deref(), None, 0), mode.map(|m| json(&serde_json::json!({ "mode": m.name() }))))
        }
        Entry::DeleteSubject { subject, version } => (
            key("DELETE_SUBJECT", Some(subject), None, 0),
            Some(json(&serde_json::json!({ "subject": subject, "version": version }))),
        ),
        Entry::ClearSubject { subject } => {
            (key("CLEAR_SUBJECT", Some(subject), None, 0), Some(json(&serde_json::json!({ "subject": subject }))))
        }
        Entry::Noop { max_id } => {
            (key("NOOP", None, None, 0), max_id.map(|id| json(&serde_json::json!({ "strom.max.id": id }))))
        }
    };
    (serde_json::to_vec(&k).unwrap_or_default(), v)
}

/// Decodes a record; `Ok(None)` for key types Strom does not use (Confluent's CONTEXT
/// and association keys), `Err` for bytes that are not a `_schemas` record.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Entry>, String> {
    let k: Key = serde_json::from_slice(key).map_err(|e| format!("key: {e}"))?;
    let val = |v: &[u8]| serde_json::from_slice::<Value>(v).map_err(|e| format!("value: {e}"));
    let subject = || k.subject.clone().ok_or_else(|| format!("{} key without a subject", k.keytype));
    Ok(Some(match k.keytype.as_str() {
        "SCHEMA" => Entry::Schema {
            subject: subject()?,
            version: k.version.ok_or("SCHEMA key without a version")?,
            value: value.map(|v| serde_json::from_slice(v).map_err(|e| format!("value: {e}"))).transpose()?,
        },
        "CONFIG" => {
            let level = match value {
                None => None,
                Some(v) => {
                    let v = val(v)?;
                    let name = v.get("compatibilityLevel").or_else(|| v.get("compatibility")).and_then(Value::as_str);
                    // A config with only other fields (normalize, …) leaves the level as it was.
                    match name {
                        Some(n) => Some(Level::parse(n).ok_or_else(|| format!("unknown level {n}"))?),
                        None => return Ok(None),
                    }
                }
            };
            Entry::Config { subject: k.subject, level }
        }
        "MODE" => {
            let mode = match value {
                None => None,
                Some(v) => {
                    let v = val(v)?;
                    let n = v.get("mode").and_then(Value::as_str).ok_or("MODE value without a mode")?;
                    Some(Mode::parse(n).ok_or_else(|| format!("unknown mode {n}"))?)
                }
            };
            Entry::Mode { subject: k.subject, mode }
        }
        "DELETE_SUBJECT" => {
            let Some(v) = value else { return Ok(None) };
            let v = val(v)?;
            let version = v.get("version").and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok());
            Entry::DeleteSubject { subject: subject()?, version: version.ok_or("DELETE_SUBJECT without a version")? }
        }
        "CLEAR_SUBJECT" => {
            if value.is_none() {
                return Ok(None);
            }
            Entry::ClearSubject { subject: subject()? }
        }
        "NOOP" => {
            let max_id = match value {
                Some(v) => val(v)?.get("strom.max.id").and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok()),
                None => None,
            };
            Entry::Noop { max_id }
        }
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_round_trips_and_keys_are_confluents() {
        let value = SchemaValue {
            subject: "t-value".into(),
            version: 2,
            id: 7,
            schema_type: Some("JSON".into()),
            references: vec![Reference { name: "a".into(), subject: "a".into(), version: 1 }],
            schema: "{}".into(),
            deleted: false,
        };
        let entries = [
            Entry::Schema { subject: "t-value".into(), version: 2, value: Some(value) },
            Entry::Schema { subject: "t-value".into(), version: 2, value: None },
            Entry::Config { subject: None, level: Some(Level::Full) },
            Entry::Config { subject: Some("s".into()), level: None },
            Entry::Mode { subject: Some("s".into()), mode: Some(Mode::ReadOnly) },
            Entry::DeleteSubject { subject: "s".into(), version: 3 },
            Entry::ClearSubject { subject: "s".into() },
            Entry::Noop { max_id: Some(9) },
        ];
        for e in entries {
            let (k, v) = encode(&e);
            assert_eq!(decode(&k, v.as_deref()).unwrap(), Some(e));
        }
        let (k, _) = encode(&Entry::Schema { subject: "t-value".into(), version: 1, value: None });
        assert_eq!(String::from_utf8(k).unwrap(), r#"{"keytype":"SCHEMA","subject":"t-value","version":1,"magic":1}"#);
    }

    #[test]
    fn confluent_written_records_load() {
        let key = br#"{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}"#;
        let value =
            br#"{"subject":"orders-value","version":1,"id":1,"schema":"\"string\"","deleted":false,"md5":"x","ts":1}"#;
        let Some(Entry::Schema { value: Some(v), .. }) = decode(key, Some(value)).unwrap() else { panic!() };
        assert_eq!((v.id, v.kind()), (1, Some(SchemaType::Avro)));
        let ctx = br#"{"keytype":"CONTEXT","magic":0}"#;
        assert_eq!(decode(ctx, Some(b"{}")).unwrap(), None);
        assert!(decode(b"not json", None).is_err());
        assert!(decode(br#"{"keytype":"SCHEMA","magic":1}"#, None).is_err());
    }
}
