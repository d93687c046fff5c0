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
