//! TLS settings of an SSL or SASL_SSL listener (issue 16), from Kafka's broker settings,
//! each of which may be given per listener as `listener.name.<listener>.ssl.…`:
//!
//! - the key and certificate chain: `ssl.keystore.type=PEM` with `ssl.keystore.location`
//!   (one file holding the private key and the chain, as Kafka's PEM keystore), or inline
//!   with `ssl.keystore.key` and `ssl.keystore.certificate.chain`;
//! - the CAs that client certificates must chain to: `ssl.truststore.type=PEM` with
//!   `ssl.truststore.location`, or inline `ssl.truststore.certificates`;
//! - `ssl.client.auth=none|requested|required` (mTLS), `ssl.principal.mapping.rules`,
//!   `ssl.enabled.protocols` (TLSv1.2 and TLSv1.3 only).
//!
//! Kafka's JKS and PKCS12 keystores and encrypted private keys are refused at start with
//! the command that converts them: Strom reads PEM only (documented deviation).

use std::path::PathBuf;

use anyhow::{bail, Context};

/// Where PEM text comes from: a file (watched for changes) or the setting itself.
/// `Debug` does not print inline text (it may be a private key).
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    /// `ssl.keystore.location` / `ssl.truststore.location`.
    File(PathBuf),
    /// `ssl.keystore.key` + `ssl.keystore.certificate.chain` / `ssl.truststore.certificates`.
    Inline(String),
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::File(p) => f.debug_tuple("File").field(p).finish(),
            Pem::Inline(s) => write!(f, "Inline({} bytes)", s.len()),
        }
    }
}

impl Pem {
    /// The PEM text (read from the file each time, so a reload sees the new one).
    pub fn read(&self) -> anyhow::Result<String> {
        match self {
            Pem::Inline(s) => Ok(s.clone()),
            Pem::File(p) => std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())),
        }
    }
}

/// `ssl.client.auth`: whether clients present a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate asked for.
    None,
    /// Asked for; a client without one connects as `User:ANONYMOUS`.
    Requested,
    /// Required: a client without a certificate chaining to the truststore is refused.
    Required,
}

/// One `ssl.principal.mapping.rules` rule.
#[derive(Debug, Clone)]
pub enum PrincipalRule {
    /// `DEFAULT`: the distinguished name as it is.
    Default,
    /// `RULE:pattern/replacement/[LU]`: applies when `pattern` matches the whole name.
    Rule {
        /// The pattern, anchored to match the whole name.
        whole: regex::Regex,
        /// The pattern as written (for the replacement).
        pattern: regex::Regex,
        /// The replacement, in the `regex` crate's syntax (`${1}`).
        replacement: String,
        /// `L` / `U`: lower- or upper-case the result.
        case: Option<char>,
    },
}

impl PartialEq for PrincipalRule {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (PrincipalRule::Default, PrincipalRule::Default) => true,
            (
                PrincipalRule::Rule { pattern: a, replacement: ra, case: ca, .. },
                PrincipalRule::Rule { pattern: b, replacement: rb, case: cb, .. },
            ) => a.as_str() == b.as_str() && ra == rb && ca == cb,
            _ => false,
        }
    }
}

impl Eq for PrincipalRule {}

/// The TLS side of one listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslListener {
    /// The private key (first) and certificate chain, PEM.
    pub keystore: Vec<Pem>,
    /// CA certificates client certificates are checked against (PEM), if any.
    pub truststore: Option<Pem>,
    /// `ssl.client.auth`.
    pub client_auth: ClientAuth,
    /// `ssl.principal.mapping.rules`.
    pub principal_rules: Vec<PrincipalRule>,
    /// Whether TLS 1.2 is enabled (TLS 1.3 always is unless `ssl.enabled.protocols` leaves it out).
    pub tls12: bool,
    /// Whether TLS 1.3 is enabled.
    pub tls13: bool,
}

/// The TLS settings Strom reads (each also as `listener.name.<l>.<key>`).
pub const SSL_KEYS: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.key",
    "ssl.keystore.certificate.chain",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.principal.mapping.rules",
    "ssl.enabled.protocols",
    "ssl.endpoint.identification.algorithm",
];

/// Kafka TLS settings accepted without effect, and why (logged once at start).
pub const SSL_NO_EFFECT: &[(&str, &str)] = &[
    ("ssl.keystore.password", "a PEM keystore has no store password"),
    ("ssl.truststore.password", "a PEM truststore has no store password"),
    ("ssl.key.password", "Strom reads unencrypted PEM keys (an encrypted key is refused at start)"),
    ("ssl.protocol", "rustls negotiates TLS 1.3 or 1.2; ssl.enabled.protocols narrows that"),
    ("ssl.cipher.suites", "rustls's default suites apply (all AEAD with forward secrecy)"),
];

/// The key without its `listener.name.<l>.` prefix, if it has one.
fn unprefixed(key: &str) -> &str {
    key.strip_prefix("listener.name.").and_then(|rest| rest.split_once('.')).map_or(key, |(_, k)| k)
}

/// Keys that configure one listener's TLS (`listener.name.<l>.ssl.…`).
pub fn is_listener_ssl_key(key: &str) -> bool {
    key.starts_with("listener.name.") && SSL_KEYS.contains(&unprefixed(key))
}

/// Why a TLS setting (or its per-listener form) has no effect, if it is one of those.
pub fn no_effect(key: &str) -> Option<&'static str> {
    let k = unprefixed(key);
    SSL_NO_EFFECT.iter().find(|(n, _)| *n == k).map(|(_, why)| *why)
}

/// The TLS settings of listener `name` (upper case); `sasl` for SASL_SSL listeners, where
/// Kafka applies `ssl.client.auth` only when it is given for the listener itself.
pub fn resolve(get: &dyn Fn(&str) -> String, name: &str, sasl: bool) -> anyhow::Result<SslListener> {
    let lower = name.to_ascii_lowercase();
    let own = |key: &str| get(&format!("listener.name.{lower}.{key}")).trim().to_string();
    let setting = |key: &str| {
        let v = own(key);
        if v.is_empty() {
            get(key).trim().to_string()
        } else {
            v
        }
    };
    let pem_type = |key: &str| -> anyhow::Result<()> {
        let t = setting(key);
        if !t.is_empty() && !t.eq_ignore_ascii_case("PEM") {
            bail!(
                "listener {name}: {key}={t} is not supported; Strom reads PEM (set {key}=PEM; convert with \
                 `openssl pkcs12 -in store.p12 -nodes` or `keytool -importkeystore -deststoretype PKCS12` first)"
            );
        }
        Ok(())
    };
    pem_type("ssl.keystore.type")?;
    pem_type("ssl.truststore.type")?;
    let keystore = match (
        setting("ssl.keystore.location"),
        setting("ssl.keystore.key"),
        setting("ssl.keystore.certificate.chain"),
    ) {
        (loc, key, chain) if !loc.is_empty() && key.is_empty() && chain.is_empty() => vec![Pem::File(loc.into())],
        (loc, key, chain) if loc.is_empty() && !key.is_empty() && !chain.is_empty() => {
            vec![Pem::Inline(key), Pem::Inline(chain)]
        }
        (loc, key, chain) if loc.is_empty() && key.is_empty() && chain.is_empty() => bail!(
            "listener {name} uses TLS but has no key: set ssl.keystore.location (a PEM file with the private key \
             and the certificate chain) or ssl.keystore.key and ssl.keystore.certificate.chain (or their \
             listener.name.{lower}. forms)"
        ),
        _ => bail!(
            "listener {name}: give either ssl.keystore.location or both ssl.keystore.key and \
             ssl.keystore.certificate.chain"
        ),
    };
    let truststore = match (setting("ssl.truststore.location"), setting("ssl.truststore.certificates")) {
        (loc, inline) if loc.is_empty() && inline.is_empty() => None,
        (loc, inline) if inline.is_empty() => Some(Pem::File(loc.into())),
        (loc, inline) if loc.is_empty() => Some(Pem::Inline(inline)),
        _ => bail!("listener {name}: give ssl.truststore.location or ssl.truststore.certificates, not both"),
    };
    // KIP-684: on SASL_SSL listeners only the listener's own ssl.client.auth applies.
    let auth = if sasl { own("ssl.client.auth") } else { setting("ssl.client.auth") };
    let client_auth = match auth.to_ascii_lowercase().as_str() {
        "" | "none" => ClientAuth::None,
        "requested" => ClientAuth::Requested,
        "required" => ClientAuth::Required,
        other => bail!("listener {name}: ssl.client.auth={other} (none, requested or required)"),
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        bail!(
            "listener {name}: ssl.client.auth={} needs a truststore (ssl.truststore.location or \
             ssl.truststore.certificates) to check client certificates against",
            auth.to_ascii_lowercase()
        );
    }
    let rules = setting("ssl.principal.mapping.rules");
    let principal_rules = parse_rules(if rules.is_empty() { "DEFAULT" } else { &rules })
        .with_context(|| format!("listener {name}: ssl.principal.mapping.rules"))?;
    let protocols = setting("ssl.enabled.protocols");
    let (mut tls12, mut tls13) = (protocols.is_empty(), protocols.is_empty());
    for p in protocols.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match p {
            "TLSv1.2" => tls12 = true,
            "TLSv1.3" => tls13 = true,
            other => {
                bail!("listener {name}: ssl.enabled.protocols names {other}; Strom serves TLSv1.2 and TLSv1.3 only")
            }
        }
    }
    if !tls12 && !tls13 {
        bail!("listener {name}: ssl.enabled.protocols enables no protocol");
    }
    Ok(SslListener { keystore, truststore, client_auth, principal_rules, tls12, tls13 })
}

/// Parses `ssl.principal.mapping.rules`: `DEFAULT` and `RULE:pattern/replacement/[LU]`
/// separated by commas; a pattern or replacement may contain commas and escaped slashes
/// (`\/`), as Kafka's parser allows.
pub fn parse_rules(text: &str) -> anyhow::Result<Vec<PrincipalRule>> {
    let mut rules = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("DEFAULT") {
            rules.push(PrincipalRule::Default);
            rest = after;
        } else if let Some(after) = rest.strip_prefix("RULE:") {
            let (pattern, after) = until_slash(after);
            let Some(after) = after.strip_prefix('/') else {
                bail!("RULE:{pattern} has no /replacement");
            };
            let (replacement, mut after) = until_slash(after);
            let mut case = None;
            if let Some(a) = after.strip_prefix('/') {
                after = a;
                if let Some(c) = after.chars().next().filter(|c| *c == 'L' || *c == 'U') {
                    case = Some(c);
                    after = &after[1..];
                }
            }
            let pattern_text = pattern.replace("\\/", "/");
            let whole = regex::Regex::new(&format!("^(?:{pattern_text})$"))
                .with_context(|| format!("pattern {pattern_text:?}"))?;
            let pattern = regex::Regex::new(&pattern_text).with_context(|| format!("pattern {pattern_text:?}"))?;
            rules.push(PrincipalRule::Rule {
                whole,
                pattern,
                replacement: java_replacement(&replacement.replace("\\/", "/")),
                case,
            });
            rest = after;
        } else {
            bail!("expected DEFAULT or RULE:pattern/replacement/ at {rest:?}");
        }
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.is_empty() {
            bail!("expected a comma before {rest:?}");
        }
    }
    if rules.is_empty() {
        bail!("no rule");
    }
    Ok(rules)
}

/// The text up to the first slash not escaped by a backslash, and the rest (from it).
fn until_slash(s: &str) -> (&str, &str) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'/' => return (&s[..i], &s[i..]),
            _ => i += 1,
        }
    }
    (s, "")
}

/// Java's `$1` group references as the `regex` crate's `${1}` (in Java `$1a` is group 1
/// then `a`; the `regex` crate would read a group named `1a`), `\$` as a literal dollar.
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The principal name for a certificate's distinguished name (RFC 2253 form), by the first
/// rule that applies; `None` when none does (Kafka refuses the connection then).
pub fn map_principal(rules: &[PrincipalRule], dn: &str) -> Option<String> {
    for rule in rules {
        match rule {
            PrincipalRule::Default => return Some(dn.to_string()),
            PrincipalRule::Rule { whole, pattern, replacement, case } => {
                if !whole.is_match(dn) {
                    continue;
                }
                let mapped = pattern.replace_all(dn, replacement.as_str()).into_owned();
                return Some(match case {
                    Some('L') => mapped.to_lowercase(),
                    Some('U') => mapped.to_uppercase(),
                    _ => mapped,
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_documented_mapping_rules_map_as_documented() {
        // The examples of Kafka's security documentation (ssl.principal.mapping.rules).
        let rules = parse_rules(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
             RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(rules.len(), 4);
        let map = |dn: &str| map_principal(&rules, dn);
        assert_eq!(
            map("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(),
            "serviceuser"
        );
        assert_eq!(map("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown").unwrap(), "adminuser@admin");
        assert_eq!(map("CN=Kafka-Broker.x,O=y").unwrap(), "kafka");
        assert_eq!(map("O=no common name").unwrap(), "O=no common name", "DEFAULT takes the rest");
        let upper = parse_rules("RULE:^CN=(.*)$/$1x/U").unwrap();
        assert_eq!(map_principal(&upper, "CN=bob").unwrap(), "BOBX", "$1 then a literal x, upper-cased");
        assert_eq!(map_principal(&upper, "OU=bob"), None, "no rule applies: refused");
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in ["", "RULE:", "RULE:^CN=(.*$/x/", "NOPE", "DEFAULT DEFAULT", "RULE:a/b/Q"] {
            assert!(parse_rules(bad).is_err(), "{bad:?}");
        }
        let escaped = parse_rules(r"RULE:^CN=a\/b$/ok/").unwrap();
        assert_eq!(map_principal(&escaped, "CN=a/b").unwrap(), "ok");
    }

    fn get_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> String {
        let m: std::collections::BTreeMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k: &str| m.get(k).cloned().unwrap_or_default()
    }

    #[test]
    fn listener_settings_override_the_broker_wide_ones_and_keystores_must_be_pem() {
        let get = get_from(&[
            ("ssl.keystore.location", "/a.pem"),
            ("listener.name.ext.ssl.keystore.location", "/ext.pem"),
            ("ssl.truststore.location", "/ca.pem"),
            ("ssl.client.auth", "required"),
        ]);
        let ext = resolve(&get, "EXT", false).unwrap();
        assert_eq!(ext.keystore, vec![Pem::File("/ext.pem".into())]);
        assert_eq!(ext.client_auth, ClientAuth::Required);
        assert!(ext.tls12 && ext.tls13);
        // On SASL_SSL the broker-wide ssl.client.auth does not apply (KIP-684).
        assert_eq!(resolve(&get, "EXT", true).unwrap().client_auth, ClientAuth::None);
        let jks = get_from(&[("ssl.keystore.type", "JKS"), ("ssl.keystore.location", "/k.jks")]);
        assert!(resolve(&jks, "SSL", false).unwrap_err().to_string().contains("PEM"));
        let none = get_from(&[]);
        assert!(resolve(&none, "SSL", false).unwrap_err().to_string().contains("no key"));
        let mtls_without_ca = get_from(&[("ssl.keystore.location", "/a.pem"), ("ssl.client.auth", "required")]);
        assert!(resolve(&mtls_without_ca, "SSL", false).unwrap_err().to_string().contains("truststore"));
        let old = get_from(&[("ssl.keystore.location", "/a.pem"), ("ssl.enabled.protocols", "TLSv1.1,TLSv1.2")]);
        assert!(resolve(&old, "SSL", false).unwrap_err().to_string().contains("TLSv1.1"));
        let only13 = get_from(&[("ssl.keystore.location", "/a.pem"), ("ssl.enabled.protocols", "TLSv1.3")]);
        let l = resolve(&only13, "SSL", false).unwrap();
        assert!(!l.tls12 && l.tls13);
        assert!(is_listener_ssl_key("listener.name.ext.ssl.keystore.location"));
        assert!(!is_listener_ssl_key("listener.name.ext.ssl.nonsense"));
    }
}
