//! Codec errors. Decoding never panics: every failure is one of these.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended before a value was complete.
    #[error("truncated input: needed {need} bytes, {have} left")]
    Truncated { need: usize, have: usize },
    /// A value was present but not acceptable (negative length, bad UTF-8, …).
    #[error("invalid input at byte {offset}: {what}")]
    Invalid { offset: usize, what: &'static str },
    /// The message has no schema at this version.
    #[error("unsupported version {version} of API {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    /// No schema for this API key.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A size prefix announced more than the configured maximum.
    #[error("frame of {size} bytes exceeds the limit of {max}")]
    FrameTooLarge { size: i64, max: usize },
}

/// Why a value could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The message has no schema at this version.
    #[error("unsupported version {version} of API {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    /// A null value in a field that is not nullable at this version.
    #[error("field {field} is not nullable at this version")]
    NullNotAllowed { field: &'static str },
    /// A string, byte array or array longer than its length prefix can express.
    #[error("value too long for its length prefix ({len})")]
    TooLong { len: usize },
}
