//! Topic-level configuration keys: which ones exist, their defaults and broker synonyms,
//! and which ones Strom honours today. Unknown keys are rejected at topic creation with
//! INVALID_CONFIG, as Kafka does.

use std::collections::BTreeMap;

use crate::config::ConfigType;

/// How a broker synonym's value converts to the topic config's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Same unit as the topic config.
    Same,
    /// Minutes (→ milliseconds).
    Minutes,
    /// Hours (→ milliseconds).
    Hours,
}

/// A broker setting that provides a topic config's default (Kafka's
/// `ServerTopicConfigSynonyms`), tried in order: the first one set wins.
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    /// The broker key.
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// Kafka's default for the broker key; `None` where Kafka has none (null), so that
    /// DescribeConfigs lists it only when it is set.
    pub default: Option<&'static str>,
}

const fn syn(name: &'static str, default: &'static str) -> Synonym {
    Synonym { name, unit: Unit::Same, default: Some(default) }
}

const fn syn_null(name: &'static str, unit: Unit) -> Synonym {
    Synonym { name, unit, default: None }
}

const fn syn_unit(name: &'static str, unit: Unit, default: &'static str) -> Synonym {
    Synonym { name, unit, default: Some(default) }
}

/// A topic config key.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigKey {
    /// Kafka's name.
    pub name: &'static str,
    /// The broker settings it falls back to, in Kafka's order of precedence.
    pub synonyms: &'static [Synonym],
    /// Kafka's default value.
    pub default: &'static str,
    /// The value type.
    pub ty: ConfigType,
    /// Whether Strom acts on it yet (others are stored and reported, not enforced).
    pub honoured: bool,
}

const fn key(
    name: &'static str,
    synonyms: &'static [Synonym],
    default: &'static str,
    ty: ConfigType,
    honoured: bool,
) -> TopicConfigKey {
    TopicConfigKey { name, synonyms, default, ty, honoured }
}

const MAX_LONG: &str = "9223372036854775807";
/// Confluent's default subject name strategy.
const TOPIC_NAME_STRATEGY: &str = "io.confluent.kafka.serializers.subject.TopicNameStrategy";

/// Every topic config Kafka 4.x defines (`LogConfig`), with Kafka's defaults and broker
/// synonyms. `honoured: false` ones are accepted, stored and described, not acted on
/// (README lists them).
pub const TOPIC_CONFIGS: &[TopicConfigKey] = &[
    key("cleanup.policy", &[syn("log.cleanup.policy", "delete")], "delete", ConfigType::List, true),
    key("compression.gzip.level", &[syn("compression.gzip.level", "-1")], "-1", ConfigType::Int, false),
    key("compression.lz4.level", &[syn("compression.lz4.level", "9")], "9", ConfigType::Int, false),
    key("compression.type", &[syn("compression.type", "producer")], "producer", ConfigType::String, true),
    key("compression.zstd.level", &[syn("compression.zstd.level", "3")], "3", ConfigType::Int, false),
    // Confluent Server's broker-side schema validation (issue 18, ADR 0015).
    key("confluent.key.schema.validation", &[], "false", ConfigType::Boolean, true),
    key("confluent.key.subject.name.strategy", &[], TOPIC_NAME_STRATEGY, ConfigType::String, true),
    key("confluent.value.schema.validation", &[], "false", ConfigType::Boolean, true),
    key("confluent.value.subject.name.strategy", &[], TOPIC_NAME_STRATEGY, ConfigType::String, true),
    key(
        "delete.retention.ms",
        &[syn("log.cleaner.delete.retention.ms", "86400000")],
        "86400000",
        ConfigType::Long,
        true,
    ),
    key("file.delete.delay.ms", &[syn("log.segment.delete.delay.ms", "60000")], "60000", ConfigType::Long, false),
    key("flush.messages", &[syn("log.flush.interval.messages", MAX_LONG)], MAX_LONG, ConfigType::Long, true),
    key(
        "flush.ms",
        &[syn_null("log.flush.interval.ms", Unit::Same), syn("log.flush.scheduler.interval.ms", MAX_LONG)],
        MAX_LONG,
        ConfigType::Long,
        true,
    ),
    key("follower.replication.throttled.replicas", &[], "", ConfigType::List, false),
    key("index.interval.bytes", &[syn("log.index.interval.bytes", "4096")], "4096", ConfigType::Int, false),
    key("leader.replication.throttled.replicas", &[], "", ConfigType::List, false),
    key("local.retention.bytes", &[syn("log.local.retention.bytes", "-2")], "-2", ConfigType::Long, false),
    key("local.retention.ms", &[syn("log.local.retention.ms", "-2")], "-2", ConfigType::Long, false),
    key(
        "max.compaction.lag.ms",
        &[syn("log.cleaner.max.compaction.lag.ms", MAX_LONG)],
        MAX_LONG,
        ConfigType::Long,
        false,
    ),
    key("max.message.bytes", &[syn("message.max.bytes", "1048588")], "1048588", ConfigType::Int, true),
    key(
        "message.timestamp.after.max.ms",
        &[syn("log.message.timestamp.after.max.ms", "3600000")],
        "3600000",
        ConfigType::Long,
        true,
    ),
    key(
        "message.timestamp.before.max.ms",
        &[syn("log.message.timestamp.before.max.ms", MAX_LONG)],
        MAX_LONG,
        ConfigType::Long,
        true,
    ),
    key(
        "message.timestamp.type",
        &[syn("log.message.timestamp.type", "CreateTime")],
        "CreateTime",
        ConfigType::String,
        true,
    ),
    key(
        "min.cleanable.dirty.ratio",
        &[syn("log.cleaner.min.cleanable.ratio", "0.5")],
        "0.5",
        ConfigType::Double,
        false,
    ),
    key("min.compaction.lag.ms", &[syn("log.cleaner.min.compaction.lag.ms", "0")], "0", ConfigType::Long, false),
    key("min.insync.replicas", &[syn("min.insync.replicas", "1")], "1", ConfigType::Int, false),
    key("preallocate", &[syn("log.preallocate", "false")], "false", ConfigType::Boolean, false),
    key("remote.log.copy.disable", &[], "false", ConfigType::Boolean, false),
    key("remote.log.delete.on.disable", &[], "false", ConfigType::Boolean, false),
    key("remote.storage.enable", &[], "false", ConfigType::Boolean, false),
    key("retention.bytes", &[syn("log.retention.bytes", "-1")], "-1", ConfigType::Long, true),
    key(
        "retention.ms",
        &[
            syn_null("log.retention.ms", Unit::Same),
            syn_null("log.retention.minutes", Unit::Minutes),
            syn_unit("log.retention.hours", Unit::Hours, "168"),
        ],
        "604800000",
        ConfigType::Long,
        true,
    ),
    key("segment.bytes", &[syn("log.segment.bytes", "1073741824")], "1073741824", ConfigType::Int, true),
    key("segment.index.bytes", &[syn("log.index.size.max.bytes", "10485760")], "10485760", ConfigType::Int, false),
    key(
        "segment.jitter.ms",
        &[syn_null("log.roll.jitter.ms", Unit::Same), syn_unit("log.roll.jitter.hours", Unit::Hours, "0")],
        "0",
        ConfigType::Long,
        false,
    ),
    key(
        "segment.ms",
        &[syn_null("log.roll.ms", Unit::Same), syn_unit("log.roll.hours", Unit::Hours, "168")],
        "604800000",
        ConfigType::Long,
        true,
    ),
    // Strom's additions to schema validation: decode payloads too; dead-letter routing.
    key("strom.dlq.topic", &[], "", ConfigType::String, true),
    key("strom.key.schema.validation.payload", &[], "false", ConfigType::Boolean, true),
    key("strom.value.schema.validation.payload", &[], "false", ConfigType::Boolean, true),
    key(
        "unclean.leader.election.enable",
        &[syn("unclean.leader.election.enable", "false")],
        "false",
        ConfigType::Boolean,
        false,
    ),
];

/// `ConfigSource` codes of DescribeConfigs (KIP-226).
pub const SOURCE_TOPIC: i8 = 1;
/// A broker setting from the properties file, environment or flags.
pub const SOURCE_STATIC_BROKER: i8 = 4;
/// A default.
pub const SOURCE_DEFAULT: i8 = 5;

/// A topic config's value with where it came from, and its synonyms as DescribeConfigs
/// lists them: the topic override, then each broker synonym that is set, then each
/// broker synonym's default where Kafka has one (values in the synonym's own unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The effective value.
    pub value: String,
    /// Where it came from (`SOURCE_*`).
    pub source: i8,
    /// `(name, value, source)`, most important first.
    pub synonyms: Vec<(String, String, i8)>,
}

fn convert(value: &str, unit: Unit) -> Option<String> {
    let factor: i64 = match unit {
        Unit::Same => return Some(value.trim().to_string()),
        Unit::Minutes => 60_000,
        Unit::Hours => 3_600_000,
    };
    value.trim().parse::<i64>().ok().map(|v| v.saturating_mul(factor).to_string())
}

/// Resolves `key` for a topic with `overrides`, on a broker whose explicitly set
/// settings are `explicit` (Kafka's `LogConfig` + `ConfigHelper` rules).
pub fn resolve(
    key: &TopicConfigKey,
    overrides: &BTreeMap<String, String>,
    explicit: &BTreeMap<String, String>,
) -> Resolved {
    let mut synonyms = Vec::new();
    if let Some(v) = overrides.get(key.name) {
        synonyms.push((key.name.to_string(), v.clone(), SOURCE_TOPIC));
    }
    let mut from_broker = None;
    for s in key.synonyms {
        if let Some(v) = explicit.get(s.name) {
            synonyms.push((s.name.to_string(), v.clone(), SOURCE_STATIC_BROKER));
            if from_broker.is_none() {
                from_broker = convert(v, s.unit);
            }
        }
    }
    synonyms.extend(
        key.synonyms.iter().filter_map(|s| s.default.map(|d| (s.name.to_string(), d.to_string(), SOURCE_DEFAULT))),
    );
    let (value, source) = match (overrides.get(key.name), from_broker) {
        (Some(v), _) => (v.clone(), SOURCE_TOPIC),
        (None, Some(v)) => (v, SOURCE_STATIC_BROKER),
        (None, None) => (key.default.to_string(), SOURCE_DEFAULT),
    };
    Resolved { value, source, synonyms }
}

/// Every broker key that is a topic config's synonym, with Kafka's default ("" for none).
pub fn broker_synonym_keys() -> impl Iterator<Item = (&'static str, &'static str, ConfigType)> {
    TOPIC_CONFIGS.iter().flat_map(|k| k.synonyms.iter().map(move |s| (s.name, s.default.unwrap_or(""), k.ty)))
}

/// Values of `compression.type`.
pub const COMPRESSION_TYPES: &[&str] = &["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"];

/// The definition of `name`, if it is a topic config.
pub fn lookup(name: &str) -> Option<&'static TopicConfigKey> {
    TOPIC_CONFIGS.iter().find(|k| k.name == name)
}

/// Checks names and value types of topic overrides.
pub fn validate(configs: &BTreeMap<String, String>) -> Result<(), String> {
    for (name, value) in configs {
        let k = lookup(name).ok_or_else(|| format!("unknown topic config {name:?}"))?;
        let ok = match k.ty {
            ConfigType::Int => value.parse::<i32>().is_ok(),
            ConfigType::Short => value.parse::<i16>().is_ok(),
            ConfigType::Long => value.parse::<i64>().is_ok(),
            ConfigType::Double => value.parse::<f64>().is_ok_and(f64::is_finite),
            ConfigType::Boolean => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
            ConfigType::String | ConfigType::List => true,
        };
        if !ok {
            return Err(format!("invalid value {value:?} for topic config {name}"));
        }
        if name == "compression.type" && !COMPRESSION_TYPES.contains(&value.as_str()) {
            return Err(format!("compression.type must be one of {}", COMPRESSION_TYPES.join(", ")));
        }
        if name == "message.timestamp.type" && value != "CreateTime" && value != "LogAppendTime" {
            return Err("message.timestamp.type must be CreateTime or LogAppendTime".into());
        }
        if name.starts_with("message.timestamp.") && name.ends_with(".max.ms") && value.parse::<i64>().unwrap_or(-1) < 0
        {
            return Err(format!("{name} must be at least 0"));
        }
        if name.ends_with(".subject.name.strategy") && crate::registry::wire::Strategy::parse(value).is_none() {
            return Err(format!(
                "{name}: {value:?} is not TopicNameStrategy, RecordNameStrategy or TopicRecordNameStrategy"
            ));
        }
        if name == "segment.bytes" && value.parse::<i64>().unwrap_or(0) < 14 {
            return Err("segment.bytes must be at least 14".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let m = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(validate(&m("segment.bytes", "1048576")).is_ok());
        assert!(validate(&m("segment.bytes", "big")).is_err());
        assert!(validate(&m("no.such.key", "1")).is_err());
    }
}
