//! Topic-level configuration keys: which ones exist, their defaults, and which ones
//! Strom honours today. Unknown keys are rejected at topic creation with INVALID_CONFIG,
//! as Kafka does.

use std::collections::BTreeMap;

use crate::config::ConfigType;

/// A topic config key.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigKey {
    /// Kafka's name.
    pub name: &'static str,
    /// The broker-wide setting it falls back to, if any.
    pub broker_key: Option<&'static str>,
    /// Kafka's default value.
    pub default: &'static str,
    /// The value type.
    pub ty: ConfigType,
    /// Whether Strom acts on it yet (others are stored and reported, not enforced).
    pub honoured: bool,
}

const fn key(
    name: &'static str,
    broker_key: Option<&'static str>,
    default: &'static str,
    ty: ConfigType,
    honoured: bool,
) -> TopicConfigKey {
    TopicConfigKey { name, broker_key, default, ty, honoured }
}

/// Every topic config key Strom accepts.
pub const TOPIC_CONFIGS: &[TopicConfigKey] = &[
    key("segment.bytes", Some("log.segment.bytes"), "1073741824", ConfigType::Int, true),
    key("cleanup.policy", None, "delete", ConfigType::List, true),
    key("compression.type", Some("compression.type"), "producer", ConfigType::String, true),
    key("retention.ms", Some("log.retention.ms"), "604800000", ConfigType::Long, true),
    key("retention.bytes", Some("log.retention.bytes"), "-1", ConfigType::Long, true),
    key("segment.ms", Some("log.roll.ms"), "604800000", ConfigType::Long, true),
    key("max.message.bytes", Some("message.max.bytes"), "1048588", ConfigType::Int, true),
    key("message.timestamp.type", Some("log.message.timestamp.type"), "CreateTime", ConfigType::String, true),
    key(
        "message.timestamp.before.max.ms",
        Some("log.message.timestamp.before.max.ms"),
        "9223372036854775807",
        ConfigType::Long,
        true,
    ),
    key(
        "message.timestamp.after.max.ms",
        Some("log.message.timestamp.after.max.ms"),
        "3600000",
        ConfigType::Long,
        true,
    ),
    key("min.insync.replicas", None, "1", ConfigType::Int, false),
    key("delete.retention.ms", Some("log.cleaner.delete.retention.ms"), "86400000", ConfigType::Long, true),
    key("flush.messages", Some("log.flush.interval.messages"), "9223372036854775807", ConfigType::Long, true),
    key("flush.ms", Some("log.flush.interval.ms"), "9223372036854775807", ConfigType::Long, true),
    key("index.interval.bytes", Some("log.index.interval.bytes"), "4096", ConfigType::Int, false),
    key("segment.index.bytes", Some("log.index.size.max.bytes"), "10485760", ConfigType::Int, false),
    key("unclean.leader.election.enable", None, "false", ConfigType::Boolean, false),
];

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
            ConfigType::Boolean => value == "true" || value == "false",
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
