//! SASL/OAUTHBEARER (RFC 7628, KIP-255) with Kafka's default server-side validation: an
//! *unsecured* JWT (`alg: none`, no signature) whose `sub` claim names the principal, as
//! Kafka's `OAuthBearerUnsecuredValidatorCallbackHandler` accepts it — for development,
//! never for production. A real validator plugs in through [`TokenValidator`] (verify a
//! signed JWT against a JWKS, call an introspection endpoint, …); the broker asks the
//! listener's validator for every token. Pure functions over outside bytes (fuzzed with
//! the other request entry points through SaslAuthenticate).

use base64::Engine;

/// The hook for validating bearer tokens: given the token, the principal name it
/// authenticates and when the token expires (ms since the epoch; a re-authenticating
/// session ends then, KIP-368), or why not. Implementations must not block for long (the
/// connection's task waits for the answer).
pub trait TokenValidator: Send + Sync + std::fmt::Debug {
    /// Validates `token` at `now_ms` (milliseconds since the epoch).
    fn validate(&self, token: &str, now_ms: u64) -> Result<(String, Option<u64>), String>;
}

/// Kafka's unsecured validator and its JAAS options
/// (`unsecuredValidatorPrincipalClaimName`, `…ScopeClaimName`, `…RequiredScope`,
/// `…AllowableClockSkewMs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsecured {
    /// The claim naming the principal (`sub`).
    pub principal_claim: String,
    /// The claim holding the scopes (`scope`).
    pub scope_claim: String,
    /// Scopes every token must have.
    pub required_scopes: Vec<String>,
    /// Clock skew tolerated on `exp` and `iat`.
    pub clock_skew_ms: u64,
}

impl Default for Unsecured {
    fn default() -> Self {
        Unsecured {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scopes: Vec::new(),
            clock_skew_ms: 0,
        }
    }
}

fn b64url(part: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("not base64url: {e}"))
}

/// A numeric date claim in milliseconds (JWT NumericDate: seconds, maybe fractional).
fn millis(v: &serde_json::Value) -> Option<f64> {
    v.as_f64().filter(|s| s.is_finite()).map(|s| s * 1000.0)
}

impl TokenValidator for Unsecured {
    fn validate(&self, token: &str, now_ms: u64) -> Result<(String, Option<u64>), String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWS compact serialization (three dot-separated parts)".into());
        };
        if !signature.is_empty() {
            return Err("an unsecured JWS has an empty signature".into());
        }
        let header: serde_json::Value =
            serde_json::from_slice(&b64url(header)?).map_err(|e| format!("JOSE header is not JSON: {e}"))?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("none") {
            return Err("the JOSE header's alg is not \"none\"".into());
        }
        let claims: serde_json::Value =
            serde_json::from_slice(&b64url(payload)?).map_err(|e| format!("claims are not JSON: {e}"))?;
        let now = now_ms as f64;
        let skew = self.clock_skew_ms as f64;
        let exp = claims.get("exp").and_then(millis).ok_or("no numeric exp claim")?;
        if now - skew >= exp {
            return Err("the token has expired".into());
        }
        if let Some(iat) = claims.get("iat") {
            let iat = millis(iat).ok_or("iat is not a number")?;
            if iat > now + skew {
                return Err("the token was issued in the future".into());
            }
        }
        let principal = claims
            .get(&self.principal_claim)
            .and_then(|p| p.as_str())
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| format!("no {} claim", self.principal_claim))?;
        if !self.required_scopes.is_empty() {
            let scopes: Vec<&str> = match claims.get(&self.scope_claim) {
                Some(serde_json::Value::String(s)) => s.split(' ').filter(|s| !s.is_empty()).collect(),
                Some(serde_json::Value::Array(a)) => a.iter().filter_map(|s| s.as_str()).collect(),
                _ => Vec::new(),
            };
            if let Some(missing) = self.required_scopes.iter().find(|r| !scopes.contains(&r.as_str())) {
                return Err(format!("the token lacks the required scope {missing}"));
            }
        }
        Ok((principal.to_string(), Some(exp as u64)))
    }
}

/// RFC 7628's client initial response: `gs2-header %x01 auth=Bearer <token> %x01 …
/// %x01 %x01`. Returns the authorization id (if any) and the token; key/value
/// extensions are accepted and ignored (as Kafka's unsecured handler leaves them
/// unvalidated).
pub fn initial_response(msg: &[u8]) -> Result<(Option<String>, String), String> {
    let text = std::str::from_utf8(msg).map_err(|_| "not UTF-8".to_string())?;
    let (flag, rest) = text.split_once(',').ok_or("no GS2 header")?;
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => return Err("channel binding is not supported".into()),
        _ => return Err("bad GS2 channel-binding flag".into()),
    }
    let (authzid, rest) = rest.split_once(',').ok_or("no GS2 header")?;
    let authzid = match authzid {
        "" => None,
        a => Some(a.strip_prefix("a=").ok_or("bad authorization id")?.to_string()),
    };
    let body = rest
        .strip_prefix('\u{1}')
        .and_then(|r| r.strip_suffix("\u{1}\u{1}"))
        .ok_or("key/value pairs are not framed by ^A")?;
    let mut token = None;
    for kv in body.split('\u{1}') {
        let (k, v) = kv.split_once('=').ok_or("a key/value pair without '='")?;
        if k == "auth" {
            let (scheme, t) = v.split_once(' ').ok_or("auth without a scheme")?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(format!("auth scheme {scheme} is not Bearer"));
            }
            let t = t.trim_start_matches(' ');
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
                return Err("the bearer token has characters a JWS cannot have".into());
            }
            token = Some(t.to_string());
        } else if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err("a malformed extension key".into());
        }
    }
    Ok((authzid, token.ok_or("no auth=Bearer pair")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(header: &str, claims: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.", e(header), e(claims))
    }

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn unsecured_tokens_are_checked_as_kafkas_default_handler_does() {
        let v = Unsecured::default();
        let ok = jwt(r#"{"alg":"none"}"#, r#"{"sub":"alice","exp":1800000060,"iat":1799999990}"#);
        assert_eq!(v.validate(&ok, NOW).unwrap(), ("alice".to_string(), Some(1_800_000_060_000)));
        let cases = [
            (jwt(r#"{"alg":"HS256"}"#, r#"{"sub":"a","exp":1800000060}"#), "alg"),
            (jwt(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1799999999}"#), "expired"),
            (jwt(r#"{"alg":"none"}"#, r#"{"sub":"a"}"#), "exp"),
            (jwt(r#"{"alg":"none"}"#, r#"{"sub":"","exp":1800000060}"#), "sub"),
            (jwt(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1800000060,"iat":1800000100}"#), "future"),
            (format!("{}sig", jwt(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1800000060}"#)), "signature"),
            ("a.b".to_string(), "three"),
            ("!!!.???.".to_string(), "base64url"),
        ];
        for (token, why) in cases {
            let err = v.validate(&token, NOW).unwrap_err();
            assert!(err.contains(why), "{token}: {err}");
        }
        let scoped = Unsecured { required_scopes: vec!["kafka".into()], clock_skew_ms: 5000, ..Unsecured::default() };
        let with = jwt(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1799999998,"scope":"read kafka"}"#);
        assert_eq!(scoped.validate(&with, NOW).unwrap().0, "a", "within the clock skew, with the scope");
        let without = jwt(r#"{"alg":"none"}"#, r#"{"sub":"a","exp":1800000060,"scope":["read"]}"#);
        assert!(scoped.validate(&without, NOW).unwrap_err().contains("scope kafka"));
    }

    #[test]
    fn the_client_initial_response_is_parsed_as_rfc_7628_frames_it() {
        let (authz, token) = initial_response(b"n,,\x01auth=Bearer abc.def.\x01\x01").unwrap();
        assert_eq!((authz, token.as_str()), (None, "abc.def."));
        let (authz, _) = initial_response(b"n,a=alice,\x01host=x\x01auth=bearer t.u.\x01port=9\x01\x01").unwrap();
        assert_eq!(authz.as_deref(), Some("alice"));
        for bad in [
            &b""[..],
            b"n,,auth=Bearer t",
            b"n,,\x01auth=Basic dXNlcg==\x01\x01",
            b"p=tls-unique,,\x01auth=Bearer t\x01\x01",
            b"n,,\x01host=x\x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
        ] {
            assert!(initial_response(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
