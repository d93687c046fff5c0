//! Request and response headers.
//!
//! Header versions are derived, never sent: a request uses header v2 when its API
//! version is flexible, else v1; a response uses v1 when flexible, else v0 — except
//! ApiVersions responses, which always use v0 so a client that does not yet know the
//! broker's versions can read them. The flexibility of a version above the schema's
//! range is still derived from `flexible_from`, so a too-new ApiVersions request can
//! be parsed and answered.

use bytes::Bytes;

use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use crate::{api_schema, API_SCHEMAS};

/// The ApiVersions API key.
pub const API_VERSIONS_KEY: i16 = 18;

/// A request header (v1 or v2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestHeader {
    /// The API key.
    pub api_key: i16,
    /// The API version of the body.
    pub api_version: i16,
    /// Echoed in the response.
    pub correlation_id: i32,
    /// The client's id; null is kept as `None`.
    pub client_id: Option<String>,
    /// Unknown header tagged fields (v2).
    pub unknown_tagged_fields: Vec<(u32, Bytes)>,
}

/// Whether `version` of API `key` is flexible (also for versions above the schema's maximum).
pub fn is_flexible(key: i16, version: i16) -> bool {
    api_schema(key).and_then(|a| a.flexible_from).is_some_and(|f| version >= f)
}

/// The response header version for `version` of API `key`.
pub fn response_header_version(key: i16, version: i16) -> i16 {
    if key != API_VERSIONS_KEY && is_flexible(key, version) {
        1
    } else {
        0
    }
}

impl RequestHeader {
    /// Decodes a request header. An API key with no schema fails with `UnknownApiKey`
    /// after the fixed part is read, so the caller can still log the correlation id.
    pub fn decode(r: &mut Reader) -> Result<RequestHeader, DecodeError> {
        let api_key = r.i16()?;
        let api_version = r.i16()?;
        let correlation_id = r.i32()?;
        if !API_SCHEMAS.iter().any(|a| a.key == api_key) {
            return Err(DecodeError::UnknownApiKey(api_key));
        }
        // client_id stays a classic int16-length string even in header v2.
        let client_id = r.nullable_string(false)?;
        let mut h =
            RequestHeader { api_key, api_version, correlation_id, client_id, unknown_tagged_fields: Vec::new() };
        if is_flexible(api_key, api_version) {
            let n = r.tagged_count()?;
            h.unknown_tagged_fields = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let tag = r.uvarint()?;
                let size = r.uvarint()? as usize;
                h.unknown_tagged_fields.push((tag, r.take(size)?));
            }
        }
        Ok(h)
    }

    /// Encodes the header (used by tests and the CLI's client side).
    pub fn encode(&self, w: &mut Writer) {
        w.i16(self.api_key);
        w.i16(self.api_version);
        w.i32(self.correlation_id);
        match &self.client_id {
            Some(c) => {
                // A client id longer than i16::MAX is truncated rather than refused.
                let s = &c.as_bytes()[..c.len().min(i16::MAX as usize)];
                w.i16(s.len() as i16);
                w.raw(s);
            }
            None => w.i16(-1),
        }
        if is_flexible(self.api_key, self.api_version) {
            // Header tagged fields are always written from the preserved set.
            let _ = w.tagged_fields(Vec::new(), &self.unknown_tagged_fields);
        }
    }
}

/// Writes a response header for a response to `version` of API `key`.
pub fn encode_response_header(w: &mut Writer, key: i16, version: i16, correlation_id: i32) {
    w.i32(correlation_id);
    if response_header_version(key, version) == 1 {
        w.uvarint(0);
    }
}
