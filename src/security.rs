//! Authentication on SASL listeners (issue 16): the per-connection SASL exchange
//! (SaslHandshake v1 then SaslAuthenticate, KIP-152; or SaslHandshake v0 then a bare
//! token) and the mechanisms behind it.
//!
//! Until a connection of a SASL listener has authenticated it may send only ApiVersions,
//! SaslHandshake and SaslAuthenticate (anything else closes it, as Kafka's
//! `SaslServerAuthenticator` does), and its frames are capped at
//! `sasl.server.max.receive.size`. A failed authentication is answered with
//! SASL_AUTHENTICATION_FAILED and the connection closed after
//! `connection.failed.authentication.delay.ms`, so guessing costs the guesser time.
//! Failures are logged with the client address and the user name, never the password.

use std::sync::atomic::Ordering;

pub mod acl;
pub mod oauth;
pub mod plain;
pub mod scram;

pub use plain::plain;

use strom_protocol::{
    Reader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse, Writer,
};

use crate::config::sasl::SaslListener;
use crate::error::ErrorCode;

/// API keys a connection may use before it has authenticated.
pub const SASL_HANDSHAKE: i16 = 17;
/// SaslAuthenticate's API key.
pub const SASL_AUTHENTICATE: i16 = 36;
const API_VERSIONS: i16 = 18;

/// Where one connection of a SASL listener is in its authentication. (No `Debug`: the
/// listener settings hold passwords.)
pub struct SaslSession {
    listener: SaslListener,
    /// The mechanism SaslHandshake chose.
    mechanism: Option<String>,
    /// `User:<name>` once authenticated.
    principal: Option<String>,
    /// The last SaslAuthenticate failed: the connection closes after its answer.
    pub failed: bool,
    /// SaslHandshake v0 was accepted: the next frame is a bare SASL token without a
    /// request header (the pre-KIP-152 exchange, which librdkafka before 2.1 and
    /// kafka-python 2.0 still use and Kafka 4 still serves).
    raw_token_next: bool,
    /// A SCRAM exchange between its first and final messages.
    scram: Option<scram::ServerFirst>,
    /// When the authenticated session ends (KIP-368; `None`: never).
    expires: Option<std::time::Instant>,
    /// The expiry of the OAUTHBEARER token just validated (ms since the epoch).
    token_expiry_ms: Option<u64>,
    /// The principal and mechanism of the session being re-authenticated (KIP-368): the
    /// new authentication must use the same mechanism and name the same principal.
    reauthenticating: Option<(String, String)>,
}

/// Finds a user's SCRAM credential for a mechanism (the metadata image's, ADR 0013).
pub type ScramLookup<'a> = &'a dyn Fn(&str, scram::Mechanism) -> Option<scram::Credential>;

/// What to do with a request on a connection that has not authenticated.
pub enum Step {
    /// Dispatch it as usual (ApiVersions; anything once authenticated).
    Dispatch,
    /// Answer with this body (the SASL exchange).
    Answer(Writer),
    /// Close the connection (a request the exchange does not allow).
    Close(String),
}

impl SaslSession {
    /// A new connection of a listener with these settings.
    pub fn new(listener: &SaslListener) -> SaslSession {
        SaslSession {
            listener: listener.clone(),
            mechanism: None,
            principal: None,
            failed: false,
            raw_token_next: false,
            scram: None,
            expires: None,
            token_expiry_ms: None,
            reauthenticating: None,
        }
    }

    /// How long the session just authenticated may last (KIP-368's
    /// `session_lifetime_ms`): `connections.max.reauth.ms`, shortened to the bearer
    /// token's expiry; 0 when sessions do not expire.
    fn session_lifetime_ms(&self) -> i64 {
        let now_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        let token_left = self.token_expiry_ms.map(|e| e.saturating_sub(now_ms).max(1));
        let lifetime = match (self.listener.reauth_ms, token_left) {
            (0, _) => 0,
            (r, Some(t)) => r.min(t),
            (r, None) => r,
        };
        i64::try_from(lifetime).unwrap_or(i64::MAX)
    }

    /// Whether the authenticated session has ended: every request but the SASL ones (a
    /// re-authentication) and ApiVersions closes the connection then, as in Kafka.
    pub fn expired(&self) -> bool {
        self.expires.is_some_and(|e| std::time::Instant::now() >= e)
    }

    /// Whether the next frame is a bare SASL token (after SaslHandshake v0).
    pub fn expects_raw_token(&self) -> bool {
        self.raw_token_next
    }

    /// The bare token after SaslHandshake v0: on success the answer is an empty token
    /// (a frame of size 0); on failure there is no answer (v0 has no error response),
    /// `failed` is set and the connection closes.
    pub fn raw_token(
        &mut self,
        token: &[u8],
        peer: std::net::SocketAddr,
        lookup: ScramLookup<'_>,
    ) -> Option<bytes::Bytes> {
        let challenge = self.authenticate(token, peer, lookup).ok()?;
        // SCRAM takes two round trips; the next frame is bare too until it is done.
        self.raw_token_next = self.principal.is_none();
        let mut frame = Vec::with_capacity(4 + challenge.len());
        frame.extend_from_slice(&(challenge.len() as u32).to_be_bytes());
        frame.extend_from_slice(&challenge);
        Some(bytes::Bytes::from(frame))
    }

    /// Takes one client token of the chosen mechanism: the challenge to answer with (empty
    /// for PLAIN; SCRAM's server-first, then server-final once the proof verified). The
    /// connection is authenticated when the exchange is complete; on failure `failed` is set.
    fn authenticate(
        &mut self,
        token: &[u8],
        peer: std::net::SocketAddr,
        lookup: ScramLookup<'_>,
    ) -> Result<Vec<u8>, ()> {
        let mechanism = self.mechanism.clone().unwrap_or_default();
        let outcome = match (mechanism.as_str(), scram::Mechanism::from_name(&mechanism)) {
            ("PLAIN", _) => {
                plain(&self.listener.plain_users, token).map(|u| (u, Vec::new())).map_err(|(u, w)| (u, w.to_string()))
            }
            ("OAUTHBEARER", _) => self.oauthbearer(token).map(|(u, exp)| {
                self.token_expiry_ms = exp;
                (u, Vec::new())
            }),
            (_, Some(m)) => match self.scram.take() {
                None => match scram::server_first(m, token, &scram::fresh_nonce(), |u| lookup(u, m)) {
                    Ok((state, first)) => {
                        self.scram = Some(state);
                        return Ok(first.into_bytes());
                    }
                    Err(e) => Err((String::new(), e.to_string())),
                },
                Some(state) => {
                    let user = state.user.clone();
                    state.finish(token).map(|last| (user.clone(), last.into_bytes())).map_err(|e| (user, e.to_string()))
                }
            },
            _ => Err((String::new(), "mechanism not served".to_string())),
        };
        match outcome {
            Ok((user, last)) => {
                let principal = format!("User:{user}");
                let reauthenticated = self.reauthenticating.take();
                if let Some((before, _)) = reauthenticated.as_ref().filter(|(b, _)| *b != principal) {
                    crate::metrics::SASL_AUTH_FAILED.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%peer, %before, after = %principal, "re-authentication as another principal refused");
                    self.failed = true;
                    return Err(());
                }
                crate::metrics::SASL_AUTH_SUCCEEDED.fetch_add(1, Ordering::Relaxed);
                if reauthenticated.is_some() {
                    crate::metrics::SASL_REAUTHENTICATIONS.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, user = %user, "re-authenticated");
                } else {
                    tracing::debug!(%peer, user = %user, "authenticated");
                }
                self.principal = Some(principal);
                let lifetime = self.session_lifetime_ms();
                self.expires = (lifetime > 0)
                    .then(|| std::time::Instant::now() + std::time::Duration::from_millis(lifetime as u64));
                Ok(last)
            }
            Err((user, why)) => {
                crate::metrics::SASL_AUTH_FAILED.fetch_add(1, Ordering::Relaxed);
                tracing::info!(%peer, user = %user, mechanism = ?self.mechanism, reason = %why, "authentication failed");
                self.failed = true;
                Err(())
            }
        }
    }

    /// OAUTHBEARER: the token of the client's initial response, validated by the
    /// listener's validator (Kafka's unsecured one); the principal is its subject.
    fn oauthbearer(&self, token: &[u8]) -> Result<(String, Option<u64>), (String, String)> {
        use oauth::TokenValidator;
        let settings = self.listener.oauth.clone().ok_or((String::new(), "OAUTHBEARER not configured".to_string()))?;
        let validator = oauth::Unsecured {
            principal_claim: settings.principal_claim,
            scope_claim: settings.scope_claim,
            required_scopes: settings.required_scopes,
            clock_skew_ms: settings.clock_skew_ms,
        };
        let (authzid, jwt) = oauth::initial_response(token).map_err(|e| (String::new(), e))?;
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis();
        let (user, expiry) = validator.validate(&jwt, now as u64).map_err(|e| (String::new(), e))?;
        if authzid.as_deref().is_some_and(|a| a != user) {
            return Err((user, "authorization id differs from the token's principal".to_string()));
        }
        Ok((user, expiry))
    }

    /// The authenticated principal (`User:<name>`).
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// Handles a request of a connection that has not authenticated yet.
    pub fn step(
        &mut self,
        api_key: i16,
        version: i16,
        r: &mut Reader,
        peer: std::net::SocketAddr,
        lookup: ScramLookup<'_>,
    ) -> Result<Step, strom_protocol::DecodeError> {
        if api_key == API_VERSIONS {
            return Ok(Step::Dispatch);
        }
        if let Some(principal) = self.principal.clone() {
            match api_key {
                // KIP-368: an authenticated client re-authenticates with the same
                // mechanism, through the same exchange, before its session ends.
                SASL_HANDSHAKE if version >= 1 && self.listener.reauth_ms > 0 => {
                    self.reauthenticating = Some((principal, self.mechanism.clone().unwrap_or_default()));
                    self.principal = None;
                    self.mechanism = None;
                    self.scram = None;
                    self.token_expiry_ms = None;
                }
                _ if self.expired() => {
                    return Ok(Step::Close(format!(
                        "the SASL session of {principal} expired (connections.max.reauth.ms) without re-authentication"
                    )))
                }
                _ => return Ok(Step::Dispatch),
            }
        }
        let encode = |body: &dyn Fn(&mut Writer) -> Result<(), strom_protocol::EncodeError>| -> Step {
            let mut w = Writer::new();
            match body(&mut w) {
                Ok(()) => Step::Answer(w),
                Err(e) => Step::Close(format!("could not encode the SASL answer: {e}")),
            }
        };
        match api_key {
            SASL_HANDSHAKE if self.mechanism.is_none() => {
                let req = SaslHandshakeRequest::decode(r, version)?;
                let offered = self.listener.mechanisms.clone();
                let chosen = req.mechanism.to_ascii_uppercase();
                if let Some((principal, before)) = &self.reauthenticating {
                    if *before != chosen {
                        // Kafka: "SASL mechanism changed during re-authentication".
                        return Ok(Step::Close(format!(
                            "{principal} re-authenticated with {chosen} after authenticating with {before}"
                        )));
                    }
                }
                let error_code = if offered.contains(&chosen) {
                    self.mechanism = Some(chosen);
                    self.raw_token_next = version == 0;
                    ErrorCode::None
                } else {
                    tracing::info!(%peer, mechanism = %req.mechanism, "SASL mechanism not enabled");
                    ErrorCode::UnsupportedSaslMechanism
                };
                let resp =
                    SaslHandshakeResponse { error_code: error_code.code(), mechanisms: offered, ..Default::default() };
                Ok(encode(&|w| resp.encode(w, version)))
            }
            SASL_AUTHENTICATE if self.mechanism.is_some() => {
                let req = SaslAuthenticateRequest::decode(r, version)?;
                let mut resp = SaslAuthenticateResponse::default();
                match self.authenticate(&req.auth_bytes, peer, lookup) {
                    Ok(challenge) => {
                        resp.auth_bytes = challenge.into();
                        if self.principal.is_some() {
                            resp.session_lifetime_ms = self.session_lifetime_ms();
                        }
                    }
                    Err(()) => {
                        resp.error_code = ErrorCode::SaslAuthenticationFailed.code();
                        // Kafka's messages: the same whatever went wrong.
                        resp.error_message = Some(match self.mechanism.as_deref() {
                            Some("PLAIN") => "Authentication failed: Invalid username or password".into(),
                            Some("OAUTHBEARER") => "Authentication failed: {\"status\":\"invalid_token\"}".into(),
                            m => format!(
                                "Authentication failed during authentication due to invalid credentials with SASL \
                                 mechanism {}",
                                m.unwrap_or("")
                            ),
                        });
                    }
                }
                Ok(encode(&|w| resp.encode(w, version)))
            }
            SASL_HANDSHAKE | SASL_AUTHENTICATE => {
                Ok(Step::Close(format!("SASL request (API key {api_key}) out of order")))
            }
            other => Ok(Step::Close(format!("request of API key {other} before SASL authentication"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_checks_user_password_and_authorization_id() {
        let users = [("alice".to_string(), "secret".to_string())].into_iter().collect();
        assert_eq!(plain(&users, b"\0alice\0secret").unwrap(), "alice");
        assert_eq!(plain(&users, b"alice\0alice\0secret").unwrap(), "alice");
        assert_eq!(plain(&users, b"\0alice\0wrong").unwrap_err().1, "wrong password");
        assert_eq!(plain(&users, b"\0alice\0secretx").unwrap_err().1, "wrong password");
        assert_eq!(plain(&users, b"\0bob\0secret").unwrap_err().1, "unknown user");
        assert_eq!(plain(&users, b"bob\0alice\0secret").unwrap_err().1, "authorization id differs from the user name");
        for bad in [&b""[..], b"alice", b"\0alice", b"\0alice\0secret\0more", b"\0\0secret"] {
            assert!(plain(&users, bad).is_err(), "{bad:?}");
        }
    }
}
