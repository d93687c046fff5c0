#![no_main]
//! The SASL exchanges of SASL listeners (issue 16) on outside bytes, with the broker's
//! own source files included as they are:
//! - PLAIN tokens checked against a listener's users (`src/security/plain.rs`);
//! - SCRAM-SHA-256/512 client-first then client-final messages, for a user with a
//!   credential and for unknown users (`src/security/scram.rs`); the input splits at its
//!   first NUL into the two messages;
//! - OAUTHBEARER initial responses and the unsecured-JWT validation of their token, and
//!   of the input itself as a token (`src/security/oauth.rs`).
//! The first input byte picks the entry point. None may panic.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/security/plain.rs"]
mod plain;

#[allow(dead_code)]
#[path = "../../src/security/scram.rs"]
mod scram;

#[allow(dead_code)]
#[path = "../../src/security/oauth.rs"]
mod oauth;

use oauth::TokenValidator;

/// alice's credential for `mechanism`, from a fixed salted password (PBKDF2 once per
/// process, not per input).
fn credential(mechanism: scram::Mechanism) -> scram::Credential {
    static CREDENTIALS: OnceLock<[scram::Credential; 2]> = OnceLock::new();
    let [sha256, sha512] = CREDENTIALS.get_or_init(|| {
        [scram::Mechanism::Sha256, scram::Mechanism::Sha512]
            .map(|m| scram::Credential::new(m, b"alice-secret", b"fuzz-salt", scram::MIN_ITERATIONS))
    });
    match mechanism {
        scram::Mechanism::Sha256 => sha256.clone(),
        scram::Mechanism::Sha512 => sha512.clone(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else { return };
    match pick % 4 {
        0 => {
            let users = BTreeMap::from([("alice".to_string(), "alice-secret".to_string())]);
            let _ = plain::plain(&users, rest);
        }
        1 | 2 => {
            let mechanism = if pick % 4 == 1 { scram::Mechanism::Sha256 } else { scram::Mechanism::Sha512 };
            let (first, last) = match rest.iter().position(|b| *b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &[][..]),
            };
            let lookup = |user: &str| (user == "alice").then(|| credential(mechanism));
            if let Ok((state, server_first)) = scram::server_first(mechanism, first, "fuzz-server-nonce", lookup) {
                assert!(server_first.starts_with("r="));
                let _ = state.finish(last);
            }
        }
        _ => {
            let validator = oauth::Unsecured::default();
            if let Ok((_, token)) = oauth::initial_response(rest) {
                let _ = validator.validate(&token, 1_700_000_000_000);
            }
            if let Ok(token) = std::str::from_utf8(rest) {
                let _ = validator.validate(token, 1_700_000_000_000);
            }
        }
    }
});
