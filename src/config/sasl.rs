//! SASL settings of a listener (issue 16), from Kafka's broker settings:
//! `sasl.enabled.mechanisms` (or `listener.name.<listener>.sasl.enabled.mechanisms`) and,
//! for PLAIN, the users of `listener.name.<listener>.plain.sasl.jaas.config` — Kafka's
//! `PlainLoginModule required user_<name>="<password>" …;` form. A mechanism Strom does
//! not serve yet stops startup with an explanation rather than leaving clients unable to
//! log in.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

/// The PLAIN login module Kafka's JAAS configuration names.
const PLAIN_LOGIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";

/// How clients of one SASL listener authenticate. `Debug` leaves out the passwords.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslListener {
    /// Mechanisms offered in SaslHandshake, in configuration order.
    pub mechanisms: Vec<String>,
    /// PLAIN users and their passwords.
    pub plain_users: BTreeMap<String, String>,
    /// OAUTHBEARER's unsecured-token validation options, when enabled.
    pub oauth: Option<OAuthBearer>,
    /// `connections.max.reauth.ms` (or `listener.name.<l>.connections.max.reauth.ms`):
    /// sessions last this long and clients re-authenticate before (KIP-368); 0: forever.
    pub reauth_ms: u64,
}

impl std::fmt::Debug for SaslListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslListener")
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .field("oauth", &self.oauth)
            .field("reauth_ms", &self.reauth_ms)
            .finish()
    }
}

/// The options of Kafka's unsecured OAUTHBEARER validator, from the listener's
/// `oauthbearer.sasl.jaas.config` (OAuthBearerLoginModule `unsecuredValidator…` options).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthBearer {
    /// `unsecuredValidatorPrincipalClaimName` (sub).
    pub principal_claim: String,
    /// `unsecuredValidatorScopeClaimName` (scope).
    pub scope_claim: String,
    /// `unsecuredValidatorRequiredScope` (space-separated).
    pub required_scopes: Vec<String>,
    /// `unsecuredValidatorAllowableClockSkewMs` (0).
    pub clock_skew_ms: u64,
}

/// The OAUTHBEARER login module Kafka's JAAS configuration names.
const OAUTH_LOGIN_MODULE: &str = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// Keys that configure one listener's SASL (`listener.name.<l>.…`): accepted as broker
/// settings, with dynamic listener names.
pub fn is_listener_sasl_key(key: &str) -> bool {
    key.strip_prefix("listener.name.").is_some_and(|rest| {
        rest.ends_with(".sasl.jaas.config")
            || rest.ends_with(".sasl.enabled.mechanisms")
            || rest.ends_with(".sasl.server.callback.handler.class")
    })
}

/// The SASL settings of listener `name` (upper case) from the effective settings.
pub fn resolve(get: &dyn Fn(&str) -> String, name: &str) -> anyhow::Result<SaslListener> {
    let lower = name.to_ascii_lowercase();
    let own = get(&format!("listener.name.{lower}.sasl.enabled.mechanisms"));
    let text = if own.trim().is_empty() { get("sasl.enabled.mechanisms") } else { own };
    let mechanisms: Vec<String> =
        text.split(',').map(|m| m.trim().to_ascii_uppercase()).filter(|m| !m.is_empty()).collect();
    if mechanisms.is_empty() {
        bail!("listener {name}: sasl.enabled.mechanisms is empty");
    }
    let mut plain_users = BTreeMap::new();
    let mut oauth = None;
    for m in &mechanisms {
        match m.as_str() {
            "PLAIN" => {
                let key = format!("listener.name.{lower}.plain.sasl.jaas.config");
                let jaas = get(&key);
                if jaas.trim().is_empty() {
                    bail!(
                        "listener {name} enables PLAIN but {key} is not set (e.g. {PLAIN_LOGIN_MODULE} required \
                         user_alice=\"alice-secret\";)"
                    );
                }
                plain_users = plain_users_of(&jaas).with_context(|| key.clone())?;
            }
            // Credentials live in the metadata log (AlterUserScramCredentials, ADR 0013).
            "SCRAM-SHA-256" | "SCRAM-SHA-512" => {}
            "OAUTHBEARER" => {
                let handler = get(&format!("listener.name.{lower}.oauthbearer.sasl.server.callback.handler.class"));
                if !handler.trim().is_empty() {
                    bail!(
                        "listener {name}: oauthbearer.sasl.server.callback.handler.class={handler} is a Java class; \
                         Strom validates OAUTHBEARER tokens with Kafka's default unsecured validator (development \
                         only) or a TokenValidator compiled in (src/security/oauth.rs)"
                    );
                }
                let key = format!("listener.name.{lower}.oauthbearer.sasl.jaas.config");
                let jaas = get(&key);
                let options = if jaas.trim().is_empty() {
                    Vec::new()
                } else {
                    let (module, options) = jaas_entry(&jaas).with_context(|| key.clone())?;
                    if module != OAUTH_LOGIN_MODULE {
                        bail!("{key}: the login module is {module}, not {OAUTH_LOGIN_MODULE}");
                    }
                    options
                };
                let opt = |k: &str| options.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                oauth = Some(OAuthBearer {
                    principal_claim: opt("unsecuredValidatorPrincipalClaimName").unwrap_or_else(|| "sub".into()),
                    scope_claim: opt("unsecuredValidatorScopeClaimName").unwrap_or_else(|| "scope".into()),
                    required_scopes: opt("unsecuredValidatorRequiredScope")
                        .map(|s| s.split_whitespace().map(str::to_string).collect())
                        .unwrap_or_default(),
                    clock_skew_ms: match opt("unsecuredValidatorAllowableClockSkewMs") {
                        Some(v) => {
                            v.parse().with_context(|| format!("{key}: unsecuredValidatorAllowableClockSkewMs"))?
                        }
                        None => 0,
                    },
                });
            }
            other => bail!(
                "listener {name}: SASL mechanism {other} is not supported (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 \
                 and OAUTHBEARER are); set sasl.enabled.mechanisms accordingly"
            ),
        }
    }
    let own = get(&format!("listener.name.{lower}.connections.max.reauth.ms"));
    let reauth = if own.trim().is_empty() { get("connections.max.reauth.ms") } else { own };
    let reauth_ms = match reauth.trim() {
        "" => 0,
        v => v.parse().with_context(|| format!("listener {name}: connections.max.reauth.ms={v:?}"))?,
    };
    Ok(SaslListener { mechanisms, plain_users, oauth, reauth_ms })
}

/// The `user_<name>="<password>"` options of a PlainLoginModule JAAS entry.
pub fn plain_users_of(jaas: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let (module, options) = jaas_entry(jaas)?;
    if module != PLAIN_LOGIN_MODULE {
        bail!("the login module is {module}, not {PLAIN_LOGIN_MODULE}");
    }
    let users: BTreeMap<String, String> = options
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("user_").map(|u| (u.to_string(), v)))
        .filter(|(u, _)| !u.is_empty())
        .collect();
    if users.is_empty() {
        bail!("no user_<name>=\"<password>\" option: nobody could log in");
    }
    Ok(users)
}

/// Parses `<LoginModule class> <flag> key="value" …;` into the class and its options.
fn jaas_entry(text: &str) -> anyhow::Result<(String, Vec<(String, String)>)> {
    let text = text.trim();
    let body = text.strip_suffix(';').unwrap_or(text).trim();
    let mut chars = body.chars().peekable();
    let word = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut w = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' {
                break;
            }
            w.push(c);
            chars.next();
        }
        w
    };
    let module = word(&mut chars);
    let flag = word(&mut chars);
    if module.is_empty() || !matches!(flag.as_str(), "required" | "requisite" | "sufficient" | "optional") {
        bail!("expected `<LoginModule> required key=\"value\" …;`");
    }
    let mut options = Vec::new();
    loop {
        let key = word(&mut chars);
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            bail!("option {key}: expected key=\"value\"");
        }
        let value = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            loop {
                match chars.next() {
                    None => bail!("option {key}: unterminated quoted value"),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => v.push(c),
                        None => bail!("option {key}: unterminated quoted value"),
                    },
                    Some(c) => v.push(c),
                }
            }
            v
        } else {
            word(&mut chars)
        };
        options.push((key, value));
    }
    Ok((module, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_plain_jaas_entries_give_their_users() {
        let users = plain_users_of(
            "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" \
             password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"a \\\"quoted\\\" secret\";",
        )
        .unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users["admin"], "admin-secret");
        assert_eq!(users["alice"], "a \"quoted\" secret");
        assert!(plain_users_of("org.apache.kafka.common.security.plain.PlainLoginModule required;").is_err());
        assert!(plain_users_of("com.example.Other required user_a=\"b\";").is_err());
        assert!(plain_users_of("org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b").is_err());
        assert!(plain_users_of("").is_err());
    }

    #[test]
    fn unsupported_mechanisms_are_refused_with_a_reason() {
        let get = |k: &str| match k {
            "sasl.enabled.mechanisms" => "GSSAPI".to_string(),
            _ => String::new(),
        };
        let err = resolve(&get, "SASL_PLAINTEXT").unwrap_err().to_string();
        assert!(err.contains("GSSAPI is not supported"), "{err}");
        let get = |k: &str| match k {
            "sasl.enabled.mechanisms" => "PLAIN".to_string(),
            "listener.name.sasl_plaintext.plain.sasl.jaas.config" => {
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"pw\";".to_string()
            }
            _ => String::new(),
        };
        let s = resolve(&get, "SASL_PLAINTEXT").unwrap();
        assert_eq!(s.mechanisms, ["PLAIN"]);
        assert_eq!(s.plain_users["bob"], "pw");
    }
}
