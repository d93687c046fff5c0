//! ApiVersions (key 18): what this broker serves.

use strom_protocol::api_versions_response::ApiVersion;
use strom_protocol::frame::RequestHeader;
use strom_protocol::{ApiVersionsRequest, ApiVersionsResponse, Reader, Writer};

use super::{ApiRange, APIS};
use crate::error::ErrorCode;

/// Versions served.
pub const API: ApiRange = ApiRange { key: 18, min: 0, max: 4, advertised_min: 0 };

/// Kafka's rule for client software names and versions (KIP-511).
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.';
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() && b.iter().all(inner),
        _ => false,
    }
}

fn all_versions() -> Vec<ApiVersion> {
    APIS.iter()
        .map(|a| ApiVersion { api_key: a.key, min_version: a.advertised_min, max_version: a.max, ..Default::default() })
        .collect()
}

fn encode(resp: &ApiVersionsResponse, version: i16) -> Writer {
    let mut w = Writer::new();
    // The response is built from our own table, so encoding cannot fail; an empty body
    // would only make the client retry.
    if let Err(e) = resp.encode(&mut w, version) {
        tracing::error!(error = %e, "could not encode ApiVersions response");
    }
    w
}

/// Answers any version: a version above ours gets a v0 body with UNSUPPORTED_VERSION and
/// our ApiVersions range, so the client can retry with a version we know.
pub fn handle(h: &RequestHeader, r: &mut Reader) -> Writer {
    let v = h.api_version;
    if !(API.min..=API.max).contains(&v) {
        let resp = ApiVersionsResponse {
            error_code: ErrorCode::UnsupportedVersion.code(),
            api_keys: vec![ApiVersion {
                api_key: API.key,
                min_version: API.min,
                max_version: API.max,
                ..Default::default()
            }],
            ..Default::default()
        };
        return encode(&resp, 0);
    }
    let mut resp = ApiVersionsResponse { api_keys: all_versions(), ..Default::default() };
    match ApiVersionsRequest::decode(r, v) {
        Ok(req)
            if v >= 3
                && !(valid_software_field(&req.client_software_name)
                    && valid_software_field(&req.client_software_version)) =>
        {
            resp.error_code = ErrorCode::InvalidRequest.code();
            resp.api_keys.clear();
        }
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(error = %e, "malformed ApiVersions request");
            resp.error_code = ErrorCode::InvalidRequest.code();
            resp.api_keys.clear();
        }
    }
    encode(&resp, v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names_follow_kip_511() {
        assert!(valid_software_field("confluent-kafka-python"));
        assert!(valid_software_field("2.16.1-rdkafka-2.16.0"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-x"));
        assert!(!valid_software_field("a b"));
    }
}
