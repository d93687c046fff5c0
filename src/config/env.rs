//! Settings from the environment: `STROM_*` variables (`log.dirs` → `STROM_LOG_DIRS`)
//! and the variables the `apache/kafka` container image is configured with, so that a
//! compose file written for Apache Kafka runs Strom by changing the image name:
//!
//! - `KAFKA_FOO_BAR` → `foo.bar`, with the image's rules: `_` → `.`, `__` → `_`,
//!   `___` → `-`, lower-cased (`KAFKA_LOG_DIRS` → `log.dirs`,
//!   `KAFKA_LISTENER_NAME_X_Y___Z` → `listener.name.x.y-z`);
//! - `CLUSTER_ID` → `cluster.id`;
//! - when `KAFKA_ADVERTISED_LISTENERS` is set and no listeners are (neither
//!   `KAFKA_LISTENERS` nor `STROM_LISTENERS`), the listeners are the advertised ones on
//!   `0.0.0.0`, as the image's `configure` script derives them;
//! - the image's JVM and log4j variables (`KAFKA_HEAP_OPTS`, `KAFKA_OPTS`, ...) are not
//!   broker settings: they are reported as ignored (`KAFKA_LOG4J_ROOT_LOGLEVEL` sets the
//!   log level when `STROM_LOG` is unset; `main.rs` reads it).

use std::collections::BTreeMap;

use super::Ignored;

/// Variables of the apache/kafka image that configure the JVM, logging or the image
/// itself rather than the broker, with what Strom does about each.
pub const KAFKA_IMAGE_VARS: &[(&str, &str)] = &[
    ("KAFKA_VERSION", "image metadata"),
    ("KAFKA_HEAP_OPTS", "a JVM option; Strom has no JVM"),
    ("KAFKA_OPTS", "a JVM option; Strom has no JVM"),
    ("KAFKA_JVM_PERFORMANCE_OPTS", "a JVM option; Strom has no JVM"),
    ("KAFKA_GC_LOG_OPTS", "a JVM option; Strom has no JVM"),
    ("KAFKA_DEBUG", "a JVM option; Strom has no JVM"),
    ("KAFKA_JMX_OPTS", "JMX; Strom serves Prometheus metrics on strom.http.listener (/metrics)"),
    ("KAFKA_JMX_PORT", "JMX; Strom serves Prometheus metrics on strom.http.listener (/metrics)"),
    ("KAFKA_JMX_HOSTNAME", "JMX; Strom serves Prometheus metrics on strom.http.listener (/metrics)"),
    ("KAFKA_LOG4J_OPTS", "log4j; Strom's logging is set with STROM_LOG"),
    ("KAFKA_LOG4J_LOGGERS", "log4j; Strom's logging is set with STROM_LOG (tracing EnvFilter directives)"),
    ("KAFKA_TOOLS_LOG4J_LOGLEVEL", "log4j of Kafka's command-line tools"),
    ("KAFKA_LOG4J_ROOT_LOGLEVEL", "used as the log level when STROM_LOG is unset"),
];

/// The environment variable for a Kafka key: `log.dirs` → `STROM_LOG_DIRS`.
pub fn strom_name(key: &str) -> String {
    format!("STROM_{}", key.replace(['.', '-'], "_").to_uppercase())
}

/// The property an apache/kafka image variable sets: `KAFKA_LOG_DIRS` → `log.dirs`.
/// `None` for other variables and for names the rules leave undefined (leading,
/// trailing or four and more underscores).
pub fn kafka_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("KAFKA_")?;
    if rest.is_empty() || rest.starts_with('_') || rest.ends_with('_') {
        return None;
    }
    let mut key = String::with_capacity(rest.len());
    let mut underscores = 0;
    for c in rest.chars() {
        if c == '_' {
            underscores += 1;
            continue;
        }
        match underscores {
            0 => {}
            1 => key.push('.'),
            2 => key.push('_'),
            3 => key.push('-'),
            _ => return None,
        }
        underscores = 0;
        key.extend(c.to_lowercase());
    }
    Some(key)
}

/// One setting read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSetting {
    /// The Kafka key it sets.
    pub key: String,
    /// Its value.
    pub value: String,
    /// The variable it came from (for messages).
    pub var: String,
}

/// The settings given by apache/kafka image variables (`KAFKA_*`, `CLUSTER_ID`), in
/// key order; image variables that are not settings are added to `notes`.
pub fn kafka_settings(env: &BTreeMap<String, String>, notes: &mut Vec<Ignored>) -> Vec<EnvSetting> {
    let mut out: BTreeMap<String, EnvSetting> = BTreeMap::new();
    for (var, value) in env {
        if let Some((_, why)) = KAFKA_IMAGE_VARS.iter().find(|(v, _)| v == var) {
            notes.push(Ignored::info(var.clone(), *why));
            continue;
        }
        let key = if var == "CLUSTER_ID" {
            "cluster.id".to_string()
        } else if let Some(key) = kafka_key(var) {
            key
        } else {
            if var.starts_with("KAFKA_") {
                notes.push(Ignored::warn(var.clone(), "not a KAFKA_* name the apache/kafka image rules can map"));
            }
            continue;
        };
        out.insert(key.clone(), EnvSetting { key, value: value.clone(), var: var.clone() });
    }
    // The image's `configure` script: listeners default to the advertised listeners
    // with every host replaced by 0.0.0.0.
    let listeners_given = out.contains_key("listeners") || env.contains_key(&strom_name("listeners"));
    if !listeners_given {
        if let Some(adv) = out.get("advertised.listeners") {
            let derived = adv
                .value
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(|e| match e.split_once("://") {
                    Some((name, addr)) => {
                        let port = addr.rsplit_once(':').map_or(addr, |(_, p)| p);
                        format!("{name}://0.0.0.0:{port}")
                    }
                    None => e.to_string(),
                })
                .collect::<Vec<_>>()
                .join(",");
            let var = format!("{} (listeners derived from it, as the apache/kafka image does)", adv.var);
            out.insert("listeners".into(), EnvSetting { key: "listeners".into(), value: derived, var });
        }
    }
    out.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_variable_names_map_with_the_apache_kafka_image_rules() {
        assert_eq!(kafka_key("KAFKA_LOG_DIRS").as_deref(), Some("log.dirs"));
        assert_eq!(kafka_key("KAFKA_NODE_ID").as_deref(), Some("node.id"));
        assert_eq!(
            kafka_key("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR").as_deref(),
            Some("offsets.topic.replication.factor")
        );
        assert_eq!(kafka_key("KAFKA_ABC__DEF").as_deref(), Some("abc_def"));
        assert_eq!(kafka_key("KAFKA_ABC___DEF").as_deref(), Some("abc-def"));
        assert_eq!(
            kafka_key("KAFKA_LISTENER_NAME_INTERNAL_SSL_KEYSTORE___TYPE").as_deref(),
            Some("listener.name.internal.ssl.keystore-type")
        );
        for bad in ["KAFKA_", "KAFKA__X", "KAFKA_X_", "KAFKA_A____B", "STROM_LOG_DIRS", "KAFKALOG"] {
            assert_eq!(kafka_key(bad), None, "{bad}");
        }
        assert_eq!(strom_name("log.dirs"), "STROM_LOG_DIRS");
        assert_eq!(strom_name("strom.http.listener"), "STROM_STROM_HTTP_LISTENER");
    }

    #[test]
    fn advertised_listeners_alone_give_the_listeners_as_the_image_script_does() {
        let env: BTreeMap<String, String> = [
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://broker:19092,PLAINTEXT_HOST://localhost:9092"),
            ("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw"),
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("PATH", "/usr/bin"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut notes = Vec::new();
        let got = kafka_settings(&env, &mut notes);
        let pairs: Vec<(&str, &str)> = got.iter().map(|s| (s.key.as_str(), s.value.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("advertised.listeners", "PLAINTEXT://broker:19092,PLAINTEXT_HOST://localhost:9092"),
                ("cluster.id", "4L6g3nShT-eMCtK--X86sw"),
                ("listeners", "PLAINTEXT://0.0.0.0:19092,PLAINTEXT_HOST://0.0.0.0:9092"),
            ]
        );
        assert_eq!(notes, [Ignored::info("KAFKA_HEAP_OPTS", "a JVM option; Strom has no JVM")]);
        // Given listeners are never replaced.
        let mut env = env;
        env.insert("STROM_LISTENERS".into(), "PLAINTEXT://:9092".into());
        assert!(kafka_settings(&env, &mut notes).iter().all(|s| s.key != "listeners"));
    }
}
