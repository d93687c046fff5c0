//! `strom-client`: a small async Kafka client (the `strom` CLI, `strom bench`, tests, and
//! next broker-to-broker calls): one connection, ApiVersions
//! negotiation, request/response with correlation ids, all through the generated codec.
//!
//! It speaks only the wire protocol, so it works against Strom or any Kafka broker.
//! Single-node oriented: every request goes to the bootstrap broker (for a multi-broker
//! Kafka cluster, partition-level requests should go to each partition's leader; the
//! commands that need that say so in their errors).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use strom_protocol::frame::{response_header_version, RequestHeader};
use strom_protocol::{ApiVersionsRequest, ApiVersionsResponse, Message, Reader, Writer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub mod security;
pub use security::{Security, Stream};

use strom_protocol::ErrorCode;

/// Largest response accepted (a fetch of many partitions stays far below).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// One connection to a broker with negotiated API versions.
pub struct Client {
    stream: Stream,
    security: Security,
    next: i32,
    client_id: String,
    /// The broker's (min, max) per API key.
    versions: HashMap<i16, (i16, i16)>,
    /// The address connected to.
    pub addr: String,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// The symbolic name of a Kafka error code (`UNKNOWN_TOPIC_OR_PARTITION`-style).
pub fn error_name(code: i16) -> String {
    match ErrorCode::ALL.iter().find(|c| c.code() == code) {
        Some(c) => {
            let camel = format!("{c:?}");
            let mut out = String::new();
            for (i, ch) in camel.chars().enumerate() {
                if ch.is_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(ch.to_ascii_uppercase());
            }
            out
        }
        None => format!("ERROR_{code}"),
    }
}

/// Fails with the error's name (and message) unless `code` is 0.
pub fn check(code: i16, what: &str, message: Option<&str>) -> anyhow::Result<()> {
    if code == 0 {
        return Ok(());
    }
    match message {
        Some(m) if !m.is_empty() => bail!("{what}: {} ({m})", error_name(code)),
        _ => bail!("{what}: {}", error_name(code)),
    }
}

impl Client {
    /// Connects over PLAINTEXT and negotiates versions with ApiVersions.
    pub async fn connect(addr: &str, timeout: Duration) -> anyhow::Result<Client> {
        Client::connect_with(addr, timeout, &Security::plaintext()).await
    }

    /// Connects with `security` (TLS, SASL) and negotiates versions with ApiVersions.
    pub async fn connect_with(addr: &str, timeout: Duration, security: &Security) -> anyhow::Result<Client> {
        let stream = security.open(addr, timeout).await?;
        let mut c = Client {
            stream,
            security: security.clone(),
            next: 0,
            client_id: "strom-cli".into(),
            versions: HashMap::new(),
            addr: addr.to_string(),
            timeout,
        };
        // v3 first (flexible, tells our name); a broker that does not know v3 answers
        // UNSUPPORTED_VERSION in a v0 body, so fall back to v0.
        let req = ApiVersionsRequest {
            client_software_name: "strom-cli".into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        let resp: ApiVersionsResponse = match c.call_at::<_, ApiVersionsResponse>(3, &req).await {
            Ok(r) if r.error_code == 0 => r,
            _ => {
                // The connection may be in an unknown state: reconnect for v0.
                c.stream = c.security.open(addr, timeout).await?;
                c.call_at(0, &req).await?
            }
        };
        check(resp.error_code, "ApiVersions", None)?;
        c.versions = resp.api_keys.iter().map(|k| (k.api_key, (k.min_version, k.max_version))).collect();
        Ok(c)
    }

    /// How this client connects (to reach other brokers the same way).
    pub fn security(&self) -> &Security {
        &self.security
    }

    /// The broker's advertised (min, max) per API key.
    pub fn api_versions(&self) -> &HashMap<i16, (i16, i16)> {
        &self.versions
    }

    /// The version to use for `Req`: min(ours, theirs, `cap`), refused when below both minimums.
    pub fn version<Req: Message>(&self, cap: i16) -> anyhow::Result<i16> {
        let name = strom_protocol::api_schema(Req::API_KEY).map_or("?", |s| s.name);
        let &(their_min, their_max) =
            self.versions.get(&Req::API_KEY).ok_or_else(|| anyhow!("the broker does not support the {name} API"))?;
        let v = Req::MAX_VERSION.min(their_max).min(cap);
        if v < Req::MIN_VERSION.max(their_min) {
            bail!("no common version of the {name} API (broker {their_min}..={their_max})");
        }
        Ok(v)
    }

    /// Sends `req` at the negotiated version (at most `cap`); returns the response and the version used.
    pub async fn call<Req: Message, Resp: Message>(&mut self, cap: i16, req: &Req) -> anyhow::Result<(Resp, i16)> {
        let v = self.version::<Req>(cap)?;
        Ok((self.call_at(v, req).await?, v))
    }

    /// Sends `req` at exactly `version`.
    pub async fn call_at<Req: Message, Resp: Message>(&mut self, version: i16, req: &Req) -> anyhow::Result<Resp> {
        debug_assert_eq!(Req::API_KEY, Resp::API_KEY);
        self.next = self.next.wrapping_add(1);
        let correlation_id = self.next;
        let frame = encode_request(req, version, correlation_id, &self.client_id)?.concat();
        let timeout = self.timeout;
        let buf = tokio::time::timeout(timeout, async {
            self.stream.write_all(&frame).await?;
            read_frame(&mut self.stream).await
        })
        .await
        .map_err(|_| anyhow!("request to {} timed out after {timeout:?}", self.addr))?
        .with_context(|| format!("talking to {}", self.addr))?;
        decode_response::<Resp>(buf, version, correlation_id)
    }
}

/// A request frame (size prefix, header, body) as chunks for a vectored write; large
/// byte fields (record batches) stay shared rather than copied.
pub fn encode_request<Req: Message>(
    req: &Req,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> anyhow::Result<Vec<Bytes>> {
    let mut w = Writer::new();
    RequestHeader {
        api_key: Req::API_KEY,
        api_version: version,
        correlation_id,
        client_id: Some(client_id.to_string()),
        ..Default::default()
    }
    .encode(&mut w);
    req.encode(&mut w, version).map_err(|e| anyhow!("encoding request: {e}"))?;
    let size = i32::try_from(w.len()).map_err(|_| anyhow!("request of {} bytes is too large", w.len()))?;
    let mut chunks = vec![Bytes::copy_from_slice(&size.to_be_bytes())];
    chunks.extend(w.into_chunks());
    Ok(chunks)
}

/// Reads one size-prefixed response frame (without the size).
pub async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin)) -> std::io::Result<Bytes> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = i32::from_be_bytes(size);
    if size < 4 || size as usize > MAX_RESPONSE {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad response size {size}")));
    }
    let mut buf = vec![0u8; size as usize];
    stream.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

/// The correlation id of a response frame.
pub fn response_correlation_id(frame: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(frame.get(..4)?.try_into().ok()?))
}

/// Checks the header of a response frame and decodes its body.
pub fn decode_response<Resp: Message>(frame: Bytes, version: i16, correlation_id: i32) -> anyhow::Result<Resp> {
    let mut r = Reader::new(frame);
    let got = r.i32().map_err(|e| anyhow!("response header: {e}"))?;
    if got != correlation_id {
        bail!("response correlation id {got}, expected {correlation_id}");
    }
    if response_header_version(Resp::API_KEY, version) == 1 {
        let n = r.uvarint().map_err(|e| anyhow!("response header: {e}"))?;
        for _ in 0..n {
            r.uvarint().map_err(|e| anyhow!("response header: {e}"))?;
            let len = r.uvarint().map_err(|e| anyhow!("response header: {e}"))? as usize;
            r.take(len).map_err(|e| anyhow!("response header: {e}"))?;
        }
    }
    Resp::decode(&mut r, version).map_err(|e| anyhow!("decoding response: {e}"))
}

/// Kafka's default partitioner hash (murmur2), so keyed records land where a Java
/// producer would put them.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h = SEED ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition Kafka's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32, -58897971);
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }

    #[test]
    fn error_names_are_kafka_style() {
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(0), "NONE");
    }
}
