//! SaslHandshake (key 17) and SaslAuthenticate (key 36) as the dispatcher sees them:
//! on a SASL listener the exchange happens in the network layer before any request
//! reaches dispatch (`security.rs`), so a request that gets here came on a PLAINTEXT
//! listener or after authentication without re-authentication (KIP-368, offered when
//! `connections.max.reauth.ms` is set, is handled in the network layer too), and Kafka
//! answers it with ILLEGAL_SASL_STATE.

use strom_protocol::{SaslAuthenticateResponse, SaslHandshakeResponse};

use super::ApiRange;
use crate::error::ErrorCode;

/// SaslHandshake versions served. v0 is followed by a bare SASL token instead of
/// SaslAuthenticate; Kafka 4 still serves it (kafka-python 2.0 uses it, and librdkafka
/// before 2.1 enables SASL only if v0 is advertised).
pub const HANDSHAKE_API: ApiRange = ApiRange { key: 17, min: 0, max: 1, advertised_min: 0 };
/// SaslAuthenticate versions served.
pub const AUTHENTICATE_API: ApiRange = ApiRange { key: 36, min: 0, max: 2, advertised_min: 0 };

/// SaslHandshake outside the SASL exchange.
pub fn handshake(mechanisms: Vec<String>) -> SaslHandshakeResponse {
    SaslHandshakeResponse { error_code: ErrorCode::IllegalSaslState.code(), mechanisms, ..Default::default() }
}

/// SaslAuthenticate outside the SASL exchange.
pub fn authenticate() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse {
        error_code: ErrorCode::IllegalSaslState.code(),
        error_message: Some("SaslAuthenticate is not expected on this connection".into()),
        ..Default::default()
    }
}
