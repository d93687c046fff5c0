//! Group coordinator settings (Kafka's `group.*` and `offsets.*` keys), parsed with the
//! rest of the configuration so the coordinator needs nothing from this layer but them.

/// Coordinator-wide limits, from the broker configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: u64,
    pub max_size: usize,
}

/// Coordinator settings, with Kafka's names and defaults.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub limits: Limits,
    /// offsets.retention.minutes, in ms.
    pub offsets_retention_ms: i64,
    /// offsets.retention.check.interval.ms.
    pub retention_check_interval_ms: u64,
    /// offset.metadata.max.bytes.
    pub offset_metadata_max_bytes: usize,
    /// group.consumer.session.timeout.ms.
    pub consumer_session_timeout_ms: i32,
    /// group.consumer.heartbeat.interval.ms.
    pub consumer_heartbeat_interval_ms: i32,
    /// group.consumer.migration.policy.
    pub migration_policy: MigrationPolicy,
    /// The `group.share.*` settings (KIP-932 share groups).
    pub share: ShareConfig,
}

/// Broker-wide share-group settings, with Kafka's names and defaults; a group's own
/// configs (resource type GROUP, [`GROUP_CONFIGS`]) override some of them.
#[derive(Debug, Clone, Copy)]
pub struct ShareConfig {
    /// group.share.session.timeout.ms.
    pub session_timeout_ms: i32,
    /// group.share.heartbeat.interval.ms.
    pub heartbeat_interval_ms: i32,
    /// group.share.max.size.
    pub max_size: usize,
    /// group.share.record.lock.duration.ms.
    pub record_lock_duration_ms: i64,
    /// group.share.delivery.count.limit.
    pub delivery_count_limit: i16,
    /// group.share.partition.max.record.locks.
    pub partition_max_record_locks: i64,
    /// group.share.max.share.sessions.
    pub max_share_sessions: usize,
}

impl Default for ShareConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        ShareConfig {
            session_timeout_ms: 45_000,
            heartbeat_interval_ms: 5000,
            max_size: 200,
            record_lock_duration_ms: 30_000,
            delivery_count_limit: 5,
            partition_max_record_locks: 2000,
            max_share_sessions: 2000,
        }
    }
}

/// A group config (Kafka's `GroupConfig`, set with IncrementalAlterConfigs on resource
/// type GROUP): its name, the broker setting that gives its default, and its type.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfigKey {
    pub name: &'static str,
    /// The broker setting whose value is the default (`None`: a fixed default).
    pub broker_synonym: Option<&'static str>,
    /// The default when there is no broker synonym.
    pub default: &'static str,
    pub ty: crate::config::ConfigType,
}

/// The group configs Strom serves: those of share groups it implements. Kafka's other
/// group configs (`consumer.*`, `streams.*`) are refused with INVALID_CONFIG rather than
/// accepted and ignored.
pub const GROUP_CONFIGS: &[GroupConfigKey] = &[
    GroupConfigKey {
        name: "share.isolation.level",
        broker_synonym: None,
        default: "read_uncommitted",
        ty: crate::config::ConfigType::String,
    },
    GroupConfigKey {
        name: "share.auto.offset.reset",
        broker_synonym: None,
        default: "latest",
        ty: crate::config::ConfigType::String,
    },
    GroupConfigKey {
        name: "share.heartbeat.interval.ms",
        broker_synonym: Some("group.share.heartbeat.interval.ms"),
        default: "5000",
        ty: crate::config::ConfigType::Int,
    },
    GroupConfigKey {
        name: "share.record.lock.duration.ms",
        broker_synonym: Some("group.share.record.lock.duration.ms"),
        default: "30000",
        ty: crate::config::ConfigType::Int,
    },
    GroupConfigKey {
        name: "share.session.timeout.ms",
        broker_synonym: Some("group.share.session.timeout.ms"),
        default: "45000",
        ty: crate::config::ConfigType::Int,
    },
];

/// Checks a group's complete set of overrides; the message says what is wrong.
pub fn validate_group_configs(configs: &std::collections::BTreeMap<String, String>) -> Result<(), String> {
    for (k, v) in configs {
        let Some(key) = GROUP_CONFIGS.iter().find(|c| c.name == k) else {
            return Err(format!("unknown or unsupported group config {k}"));
        };
        match key.ty {
            crate::config::ConfigType::Int => match v.trim().parse::<i32>() {
                Ok(n) if n > 0 => {}
                _ => return Err(format!("{k}: {v:?} is not a positive integer")),
            },
            _ if key.name == "share.isolation.level" => {
                if !matches!(v.trim().to_ascii_lowercase().as_str(), "read_uncommitted" | "read_committed") {
                    return Err(format!("{k}: {v:?} is not read_uncommitted or read_committed"));
                }
            }
            _ => {
                if ShareAutoOffsetReset::parse(v).is_none() {
                    return Err(format!(
                        "{k}: {v:?} is not earliest, latest or by_duration:<ISO-8601 duration, not negative>"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Where a share-partition starts when its group has no state for it
/// (`share.auto.offset.reset`, Kafka's `ShareGroupAutoOffsetResetStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareAutoOffsetReset {
    /// The log start.
    Earliest,
    /// The high watermark.
    Latest,
    /// `by_duration:<ISO-8601 duration>` (KIP-1106): the first record at most this many
    /// milliseconds old when the share-partition starts (the high watermark if none is).
    ByDuration(i64),
}

impl ShareAutoOffsetReset {
    /// Case-insensitive, as Kafka parses it; a negative duration is refused, as in Kafka.
    pub fn parse(s: &str) -> Option<ShareAutoOffsetReset> {
        let s = s.trim().to_ascii_lowercase();
        match s.as_str() {
            "earliest" => Some(ShareAutoOffsetReset::Earliest),
            "latest" => Some(ShareAutoOffsetReset::Latest),
            _ => s.strip_prefix("by_duration:").and_then(iso_duration_ms).map(ShareAutoOffsetReset::ByDuration),
        }
    }
}

/// Milliseconds of a non-negative ISO-8601 duration as Java's `Duration.parse` reads it
/// (`P[nD][T[nH][nM][n[.f]S]]`, lower case here; at least one part), saturating.
fn iso_duration_ms(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('+').unwrap_or(s).strip_prefix('p')?;
    let (days, time) = match rest.split_once('t') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut ms: i64 = 0;
    let mut parts = 0;
    let number = |n: &str| -> Option<i64> {
        let n = n.strip_prefix('+').unwrap_or(n);
        (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then(|| n.parse::<i64>().ok()).flatten()
    };
    if !days.is_empty() {
        ms = ms.saturating_add(number(days.strip_suffix('d')?)?.saturating_mul(86_400_000));
        parts += 1;
    }
    if let Some(mut t) = time {
        if t.is_empty() {
            return None; // "PT" names no part
        }
        for (unit, scale) in [('h', 3_600_000i64), ('m', 60_000)] {
            if let Some((n, after)) = t.split_once(unit) {
                // Only a number may precede the unit: "1s" has no 'h' part.
                if let Some(n) = number(n) {
                    ms = ms.saturating_add(n.saturating_mul(scale));
                    parts += 1;
                    t = after;
                }
            }
        }
        if !t.is_empty() {
            let secs = t.strip_suffix('s')?;
            let (whole, frac) = secs.split_once(['.', ',']).unwrap_or((secs, ""));
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let frac_ms = format!("{frac:0<3}").get(..3).and_then(|f| f.parse::<i64>().ok()).unwrap_or(0);
            ms = ms.saturating_add(number(whole)?.saturating_mul(1000)).saturating_add(frac_ms);
            parts += 1;
        }
    }
    (parts > 0).then_some(ms)
}

/// Kafka's `group.consumer.migration.policy`: which online conversions of groups with
/// members between the classic and the KIP-848 protocol are allowed (KIP-848 "Online
/// migration"). Groups without members convert whatever the policy, as in Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationPolicy {
    Bidirectional,
    Upgrade,
    Downgrade,
    Disabled,
}

impl MigrationPolicy {
    /// Case-insensitive, as Kafka parses it.
    pub fn parse(s: &str) -> Option<MigrationPolicy> {
        match s.trim().to_ascii_lowercase().as_str() {
            "bidirectional" => Some(MigrationPolicy::Bidirectional),
            "upgrade" => Some(MigrationPolicy::Upgrade),
            "downgrade" => Some(MigrationPolicy::Downgrade),
            "disabled" => Some(MigrationPolicy::Disabled),
            _ => None,
        }
    }

    /// A classic group with members may become a consumer group.
    pub fn upgrade(self) -> bool {
        matches!(self, MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade)
    }

    /// A consumer group whose members all use the classic protocol may become classic.
    pub fn downgrade(self) -> bool {
        matches!(self, MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade)
    }
}

#[cfg(test)]
mod tests {
    use super::ShareAutoOffsetReset::{self, ByDuration, Earliest, Latest};

    #[test]
    fn share_auto_offset_reset_takes_kafkas_strategies() {
        let p = ShareAutoOffsetReset::parse;
        assert_eq!((p("earliest"), p(" LATEST ")), (Some(Earliest), Some(Latest)));
        for (s, ms) in [
            ("by_duration:PT1H", 3_600_000),
            ("by_duration:P1D", 86_400_000),
            ("by_duration:p1dt2h3m4.5s", 86_400_000 + 7_200_000 + 180_000 + 4_500),
            ("by_duration:PT0.001S", 1),
            ("by_duration:PT90M", 5_400_000),
            ("by_duration:+PT1S", 1000),
            ("by_duration:PT0S", 0),
        ] {
            assert_eq!(p(s), Some(ByDuration(ms)), "{s}");
        }
        for s in [
            "by_duration:",
            "by_duration:P",
            "by_duration:PT",
            "by_duration:P1DT",
            "by_duration:-PT1H",
            "by_duration:PT-1H",
            "by_duration:PT1M1H",
            "by_duration:PT1.0000000001S",
            "by_duration:1h",
            "by_duration:PT1X",
            "none",
        ] {
            assert_eq!(p(s), None, "{s}");
        }
    }
}
