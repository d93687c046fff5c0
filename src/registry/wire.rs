//! Broker-side schema validation (Confluent Server's `confluent.{key,value}.schema.validation`):
//! a record's key or value must carry Confluent's wire format — magic byte 0, a 4-byte
//! schema id registered under the subject the naming strategy derives — and, with
//! `strom.{key,value}.schema.validation.payload`, a payload that decodes with that schema.

use super::{Image, Parsed};

/// Confluent's subject name strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `<topic>-key` / `<topic>-value` (the default).
    Topic,
    /// The record's fully-qualified name.
    Record,
    /// `<topic>-<record name>`.
    TopicRecord,
}

impl Strategy {
    /// Parses the strategy class name (Confluent's `io.confluent.kafka.serializers.subject.*`;
    /// the short names are accepted too). `None` for anything else.
    pub fn parse(class: &str) -> Option<Strategy> {
        match class.trim().rsplit('.').next().unwrap_or("") {
            "" | "TopicNameStrategy" => Some(Strategy::Topic),
            "RecordNameStrategy" => Some(Strategy::Record),
            "TopicRecordNameStrategy" => Some(Strategy::TopicRecord),
            _ => None,
        }
    }
}

/// What to check of one side (key or value) of a topic's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SideCheck {
    pub strategy: Strategy,
    /// Also decode the payload with the schema.
    pub payload: bool,
}

/// Why a record failed, and the schema id it carried (for dead-letter headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub reason: String,
    pub schema_id: Option<i32>,
}

fn invalid(reason: impl Into<String>, schema_id: Option<i32>) -> Invalid {
    Invalid { reason: reason.into(), schema_id }
}

impl Image {
    /// Checks one key or value of a record produced to `topic`.
    pub fn check(&self, topic: &str, is_key: bool, side: SideCheck, data: Option<&[u8]>) -> Result<(), Invalid> {
        // Tombstones and null keys carry no schema (Confluent lets them through).
        let Some(data) = data else { return Ok(()) };
        let what = if is_key { "key" } else { "value" };
        match data.first() {
            None => return Err(invalid(format!("empty {what} has no schema id"), None)),
            Some(0) => {}
            Some(m) => {
                return Err(invalid(
                    format!("Invalid record due to missing magic byte (found {m:#04x}) in the {what}"),
                    None,
                ))
            }
        }
        let Some(id) = data.get(1..5).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(i32::from_be_bytes) else {
            return Err(invalid(format!("{what} too short for a schema id"), None));
        };
        let Some(stored) = self.schema(id) else {
            return Err(invalid(format!("unknown schema id {id} in the {what}"), Some(id)));
        };
        let rest = data.get(5..).unwrap_or_default();
        let record_name = || -> Result<String, Invalid> {
            let name = match stored.parsed.as_deref() {
                Some(Parsed::Avro(s)) => s.record_name(),
                Some(Parsed::Json(s)) => s.record_name(),
                Some(Parsed::Protobuf(s)) => {
                    super::protobuf::read_message_indexes(rest).ok().and_then(|(ix, _)| s.message_name(&ix))
                }
                None => None,
            };
            name.ok_or_else(|| invalid(format!("schema {id} names no record for the record-name strategy"), Some(id)))
        };
        let subject = match side.strategy {
            Strategy::Topic => format!("{topic}-{what}"),
            Strategy::Record => record_name()?,
            Strategy::TopicRecord => format!("{topic}-{}", record_name()?),
        };
        if !self.id_in_subject(&subject, id) {
            return Err(invalid(format!("schema id {id} is not registered under subject {subject}"), Some(id)));
        }
        if side.payload {
            let outcome = match stored.parsed.as_deref() {
                Some(Parsed::Avro(s)) => s.validate(rest),
                Some(Parsed::Json(s)) => s.validate(rest),
                Some(Parsed::Protobuf(s)) => s.validate(rest).map(|_| ()),
                None => Err(format!("schema {id} cannot be used here")),
            };
            outcome.map_err(|e| invalid(format!("{what} does not match schema {id}: {e}"), Some(id)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_parse_from_class_names() {
        assert_eq!(Strategy::parse("io.confluent.kafka.serializers.subject.TopicNameStrategy"), Some(Strategy::Topic));
        assert_eq!(
            Strategy::parse("io.confluent.kafka.serializers.subject.RecordNameStrategy"),
            Some(Strategy::Record)
        );
        assert_eq!(Strategy::parse("TopicRecordNameStrategy"), Some(Strategy::TopicRecord));
        assert_eq!(Strategy::parse("com.example.Mine"), None);
    }
}
