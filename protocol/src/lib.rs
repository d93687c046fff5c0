//! Strom's Kafka wire protocol codec.
//!
//! Messages are described once in `protocol/schema/*.schema`; `build.rs` generates one
//! module per request and response with version-aware `encode`/`decode`. This crate does
//! no I/O: the broker owns sockets and files.

pub mod codec;
pub mod compression;
pub mod error;
pub mod error_code;
pub mod frame;
pub mod harness;
pub mod metadata_record;
pub mod records;
#[cfg(feature = "testing")]
pub mod testing;

#[allow(missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
}

pub use codec::{Reader, Writer};
pub use error::{DecodeError, EncodeError};
pub use error_code::ErrorCode;
pub use generated::*;

/// A 16-byte UUID as used for topic ids; all zeros means "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The zero UUID.
    pub const ZERO: Uuid = Uuid([0; 16]);
}

impl std::fmt::Display for Uuid {
    /// URL-safe base64 without padding, the way Kafka prints topic ids.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut bits: u32 = 0;
        let mut nbits = 0;
        for &b in &self.0 {
            bits = (bits << 8) | u32::from(b);
            nbits += 8;
            while nbits >= 6 {
                nbits -= 6;
                f.write_str(char::from(ALPHABET[((bits >> nbits) & 63) as usize]).encode_utf8(&mut [0; 4]))?;
            }
        }
        if nbits > 0 {
            f.write_str(char::from(ALPHABET[((bits << (6 - nbits)) & 63) as usize]).encode_utf8(&mut [0; 4]))?;
        }
        Ok(())
    }
}

/// A top-level request or response message.
pub trait Message: Sized {
    /// The API key.
    const API_KEY: i16;
    /// Lowest version described.
    const MIN_VERSION: i16;
    /// Highest version described.
    const MAX_VERSION: i16;
    /// Encodes the message body at `version`.
    fn encode(&self, w: &mut Writer, version: i16) -> Result<(), EncodeError>;
    /// Decodes a message body at `version`.
    fn decode(r: &mut Reader, version: i16) -> Result<Self, DecodeError>;
}

/// One API as described by the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiSchema {
    /// The API key.
    pub key: i16,
    /// The API's name, e.g. `Produce`.
    pub name: &'static str,
    /// Lowest request version described.
    pub min_version: i16,
    /// Highest request version described.
    pub max_version: i16,
    /// First flexible version, if any.
    pub flexible_from: Option<i16>,
}

/// The schema row for `key`, if the API is described.
pub fn api_schema(key: i16) -> Option<&'static ApiSchema> {
    API_SCHEMAS.iter().find(|a| a.key == key)
}
