//! Confluent Schema Registry's REST API over a small HTTP/1.1 server on tokio
//! (`strom.schema.registry.listener`). Only what the API needs: requests with a
//! `Content-Length` body (no chunked uploads: Confluent's clients never send them),
//! keep-alive, a body cap, a connection cap and read/idle timeouts; every error is
//! Confluent's `{"error_code", "message"}` with its HTTP status.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use super::{Error, Flags, Registry, SchemaRequest};

/// Limits of the REST listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body (`strom.schema.registry.max.body.bytes`).
    pub max_body: usize,
    /// Connections served at once (`strom.schema.registry.max.connections`); more are
    /// answered 503 and closed.
    pub max_connections: usize,
    /// How long a request may take to arrive, and a kept-alive connection may idle.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_body: 16 << 20, max_connections: 1000, timeout: Duration::from_secs(30) }
    }
}

/// The largest request head (request line and headers).
const MAX_HEAD: usize = 64 << 10;
/// The header a broker adds when it forwards a write to the `_schemas` leader.
const FORWARDED: &str = "X-Strom-Forwarded";
const FORWARDED_LOWER: &str = "x-strom-forwarded";
/// The leader's answer to a forwarded request: the `_schemas` offset it has applied.
const APPLIED: &str = "X-Strom-Schemas-Applied";
/// How long a forwarded write may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// Confluent's content type.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Serves the REST API on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, limits: Limits) {
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (mut stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "schema registry accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let registry = registry.clone();
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Err(e) = connection(&mut stream, &registry, limits).await {
                        tracing::debug!(%peer, error = %e, "schema registry connection ended");
                    }
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let err = Error::new(503, 50301, "too many connections to the schema registry");
                    let _ = respond(&mut stream, &error_body(&err), err.status, true, false, None).await;
                });
            }
        }
    }
}

/// One parsed request.
#[derive(Debug)]
struct Request {
    method: String,
    target: String,
    body: Vec<u8>,
    close: bool,
    /// Sent by another broker forwarding a write (never forwarded again).
    forwarded: bool,
}

/// What reading a request gave.
enum Read {
    Request(Request),
    /// The peer closed (or idled out) between requests.
    Closed,
    /// A request that cannot be served: answer and close.
    Refuse(Error),
}

async fn connection(stream: &mut TcpStream, registry: &Registry, limits: Limits) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        let read = match tokio::time::timeout(limits.timeout, read_request(stream, &mut buf, limits)).await {
            Ok(r) => r?,
            Err(_) => Read::Closed,
        };
        match read {
            Read::Closed => return Ok(()),
            Read::Refuse(e) => {
                registry.count(e.status);
                return respond(stream, &error_body(&e), e.status, true, false, None).await;
            }
            Read::Request(req) => {
                let head = req.method == "HEAD";
                // One span per request (forwarding and the catch-up wait included).
                let span = tracing::info_span!("registry_request", method = %req.method, target = %req.target);
                let (status, body) = answer(registry, &req).instrument(span).await;
                registry.count(status);
                let applied = req.forwarded.then(|| registry.applied());
                respond(stream, &body, status, req.close, head, applied).await?;
                if req.close {
                    return Ok(());
                }
            }
        }
    }
}

/// Answers one request here, or through the `_schemas` leader's registry.
async fn answer(registry: &Registry, req: &Request) -> (u16, Vec<u8>) {
    let write = req.method != "GET" && req.method != "HEAD";
    let target = if req.forwarded { Ok(None) } else { registry.forward_target(write) };
    match target {
        Ok(Some(leader)) => {
            let (status, body, applied) = forward(&leader, req).await;
            if let Some(offset) = applied {
                registry.await_applied(offset).await;
            }
            (status, body)
        }
        Ok(None) => route(registry, req).await,
        Err(e) => (e.status, error_body(&e)),
    }
}

/// Reads one request into `buf` (which keeps bytes of the next one, if pipelined).
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>, limits: Limits) -> std::io::Result<Read> {
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Ok(Read::Refuse(Error::new(431, 431, "request header fields too large")));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Read::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    if head_end > MAX_HEAD {
        return Ok(Read::Refuse(Error::new(431, 431, "request header fields too large")));
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let (method, target, version) =
        (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string(), first.next().unwrap_or(""));
    if method.is_empty() || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Ok(Read::Refuse(Error::new(400, 400, "malformed request line")));
    }
    let mut close = version == "HTTP/1.0";
    let mut forwarded = false;
    let mut length = 0usize;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => match value.parse::<usize>() {
                Ok(n) => length = n,
                Err(_) => return Ok(Read::Refuse(Error::new(400, 400, "invalid Content-Length"))),
            },
            "transfer-encoding" if !value.eq_ignore_ascii_case("identity") => {
                return Ok(Read::Refuse(Error::new(411, 411, "chunked bodies are not accepted: send Content-Length")));
            }
            "connection" if value.eq_ignore_ascii_case("close") => close = true,
            "connection" if value.eq_ignore_ascii_case("keep-alive") => close = false,
            FORWARDED_LOWER => forwarded = true,
            _ => {}
        }
    }
    if length > limits.max_body {
        return Ok(Read::Refuse(Error::new(
            413,
            413,
            format!("request body of {length} bytes exceeds the limit of {}", limits.max_body),
        )));
    }
    buf.drain(..head_end);
    while buf.len() < length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Read::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body: Vec<u8> = buf.drain(..length).collect();
    Ok(Read::Request(Request { method, target, body, close, forwarded }))
}

/// Sends a write to the registry of the `_schemas` leader and relays its answer: every
/// write is decided by the one broker that appends to `_schemas`, so ids and versions
/// are allocated in one place.
async fn forward(leader: &str, req: &Request) -> (u16, Vec<u8>, Option<i64>) {
    let sent = request(leader, &req.method, &req.target, &req.body, &[(FORWARDED, "1")]);
    match tokio::time::timeout(FORWARD_TIMEOUT, sent).await {
        Ok(Ok((status, head, body))) => {
            let applied = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(APPLIED).then(|| v.trim().parse::<i64>().ok()).flatten()
            });
            (status, body, applied)
        }
        Ok(Err(e)) => forward_failed(leader, e.to_string()),
        Err(_) => forward_failed(leader, "timed out".into()),
    }
}

fn forward_failed(leader: &str, m: String) -> (u16, Vec<u8>, Option<i64>) {
    let e = Error::new(500, 50003, format!("Error while forwarding the request to the leader {leader}: {m}"));
    (e.status, error_body(&e), None)
}

/// One HTTP/1.1 request to a registry at `addr` (host:port) with `Connection: close`:
/// (status, response head, body). For forwarding and for `strom schema`.
pub async fn request(
    addr: &str,
    method: &str,
    target: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String, Vec<u8>)> {
    let mut s = TcpStream::connect(addr).await?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await?;
    s.write_all(body).await?;
    let mut out = Vec::new();
    (&mut s).take(64 << 20).read_to_end(&mut out).await?;
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = find(&out, b"\r\n\r\n").ok_or_else(|| bad("no response head"))?;
    let head = String::from_utf8_lossy(out.get(..end).unwrap_or_default()).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("malformed status line"))?;
    Ok((status, head, out.get(end + 4..).unwrap_or_default().to_vec()))
}

/// The `_schemas` offset the registry at `leader` has applied (a forwarded `GET /`).
pub async fn applied_at(leader: &str) -> Option<i64> {
    let req = Request { method: "GET".into(), target: "/".into(), body: Vec::new(), close: true, forwarded: false };
    forward(leader, &req).await.2
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// `applied`: the `_schemas` offset this broker has applied, for a forwarding broker.
async fn respond(
    stream: &mut TcpStream,
    body: &[u8],
    status: u16,
    close: bool,
    head: bool,
    applied: Option<i64>,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n{}{}\r\n",
        reason(status),
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
        applied.map(|o| format!("{APPLIED}: {o}\r\n")).unwrap_or_default()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body);
    }
    stream.write_all(&out).await?;
    if close {
        stream.shutdown().await?;
    }
    Ok(())
}

fn error_body(e: &Error) -> Vec<u8> {
    serde_json::to_vec(&json!({ "error_code": e.code, "message": e.message })).unwrap_or_default()
}

/// Percent-decodes a path segment or query component (`+` is a space in queries only).
fn decode(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|h| (*h as char).to_digit(16));
        match c {
            b'%' => match (hex(i + 1), hex(i + 2)) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(c),
            },
            b'+' if plus_is_space => out.push(b' '),
            _ => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request's query parameters.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (decode(k, true), decode(v, true))
                })
                .collect(),
        )
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// JAX-RS's `Boolean.valueOf`: "true" in any case (the Python client sends `True`).
    fn flag(&self, key: &str) -> bool {
        self.get(key).is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    fn flags(&self) -> Flags {
        Flags {
            deleted: self.flag("deleted"),
            deleted_only: self.flag("deletedOnly"),
            permanent: self.flag("permanent"),
            serialized: self.get("format") == Some("serialized"),
            verbose: self.flag("verbose"),
            default_to_global: self.flag("defaultToGlobal"),
            force: self.flag("force"),
        }
    }
}

fn ok(v: Value) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(&v).map_err(|e| Error::new(500, 50001, e.to_string()))
}

fn body_json(req: &Request) -> Result<Value, Error> {
    if req.body.is_empty() {
        return Err(Error::new(400, 400, "a JSON body is required"));
    }
    serde_json::from_slice(&req.body).map_err(|e| Error::new(400, 400, format!("Unrecognized JSON: {e}")))
}

fn schema_request(req: &Request) -> Result<SchemaRequest, Error> {
    let v = body_json(req)?;
    serde_json::from_value(v).map_err(|e| Error::new(422, 42201, format!("Invalid schema request: {e}")))
}

fn id_arg(s: &str) -> Result<i32, Error> {
    s.parse().map_err(|_| Error::new(404, 40403, format!("Schema {s} not found")))
}

/// Answers one request: (HTTP status, JSON body).
async fn route(registry: &Registry, req: &Request) -> (u16, Vec<u8>) {
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let q = Query::parse(query);
    let segs: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(|s| decode(s, false)).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let method = if req.method == "HEAD" { "GET" } else { req.method.as_str() };
    let f = q.flags();
    let result: Result<Vec<u8>, Error> = match (method, segs.as_slice()) {
        ("GET", []) => ok(json!({})),
        ("GET", ["schemas", "types"]) => ok(json!(["JSON", "PROTOBUF", "AVRO"])),
        ("GET", ["contexts"]) => ok(json!(["."])),
        ("GET", ["subjects"]) => ok(registry.subjects(q.get("subjectPrefix").unwrap_or(""), f)),
        ("GET", ["subjects", s, "versions"]) => registry.versions(s, f).and_then(ok),
        ("POST", ["subjects", s, "versions"]) => match schema_request(req) {
            Ok(r) => registry.register(s, r).await.and_then(ok),
            Err(e) => Err(e),
        },
        ("GET", ["subjects", s, "versions", v]) => registry.get_version(s, v, f).and_then(ok),
        ("GET", ["subjects", s, "versions", v, "schema"]) => registry
            .get_version(s, v, f)
            .map(|j| j.get("schema").and_then(Value::as_str).unwrap_or("").as_bytes().to_vec()),
        ("GET", ["subjects", s, "versions", v, "referencedby"]) => registry.referenced_by(s, v).and_then(ok),
        ("DELETE", ["subjects", s, "versions", v]) => registry.delete_version(s, v, f).await.and_then(ok),
        ("POST", ["subjects", s]) => schema_request(req).and_then(|r| registry.lookup(s, r, f)).and_then(ok),
        ("DELETE", ["subjects", s]) => registry.delete_subject(s, f).await.and_then(ok),
        ("GET", ["schemas", "ids", id]) => id_arg(id).and_then(|id| registry.schema_by_id(id, f)).and_then(ok),
        ("GET", ["schemas", "ids", id, "schema"]) => {
            id_arg(id).and_then(|id| registry.raw_schema_by_id(id, f)).map(String::into_bytes)
        }
        ("GET", ["schemas", "ids", id, "subjects"]) => {
            id_arg(id).and_then(|id| registry.versions_by_id(id, f, true)).and_then(ok)
        }
        ("GET", ["schemas", "ids", id, "versions"]) => {
            id_arg(id).and_then(|id| registry.versions_by_id(id, f, false)).and_then(ok)
        }
        ("POST", ["compatibility", "subjects", s, "versions"]) => {
            schema_request(req).and_then(|r| registry.check(s, None, r, f)).and_then(ok)
        }
        ("POST", ["compatibility", "subjects", s, "versions", v]) => {
            schema_request(req).and_then(|r| registry.check(s, Some(v), r, f)).and_then(ok)
        }
        ("GET", ["config"]) => registry.get_config(None, f).and_then(ok),
        ("GET", ["config", s]) => registry.get_config(Some(s), f).and_then(ok),
        ("PUT", ["config"]) => match body_json(req) {
            Ok(b) => registry.set_config(None, &b).await.and_then(ok),
            Err(e) => Err(e),
        },
        ("PUT", ["config", s]) => match body_json(req) {
            Ok(b) => registry.set_config(Some(s), &b).await.and_then(ok),
            Err(e) => Err(e),
        },
        ("DELETE", ["config"]) => registry.delete_config(None).await.and_then(ok),
        ("DELETE", ["config", s]) => registry.delete_config(Some(s)).await.and_then(ok),
        ("GET", ["mode"]) => registry.get_mode(None, f).and_then(ok),
        ("GET", ["mode", s]) => registry.get_mode(Some(s), f).and_then(ok),
        ("PUT", ["mode"]) => match body_json(req) {
            Ok(b) => registry.set_mode(None, &b, f).await.and_then(ok),
            Err(e) => Err(e),
        },
        ("PUT", ["mode", s]) => match body_json(req) {
            Ok(b) => registry.set_mode(Some(s), &b, f).await.and_then(ok),
            Err(e) => Err(e),
        },
        ("DELETE", ["mode", s]) => registry.delete_mode(s).await.and_then(ok),
        // Newer clients ask for a topic's associations first and fall back to the
        // topic-name strategy on a 404: there are none here.
        (_, ["associations", ..]) => Err(Error::new(404, 40410, "Association not found")),
        (
            _,
            ["schemas", "types"]
            | ["subjects", ..]
            | ["schemas", "ids", ..]
            | ["compatibility", ..]
            | ["config", ..]
            | ["mode", ..]
            | [],
        ) => Err(Error::new(405, 405, "HTTP 405 Method Not Allowed")),
        _ => Err(Error::new(404, 404, "HTTP 404 Not Found")),
    };
    match result {
        Ok(body) => (200, body),
        Err(e) => {
            if e.status >= 500 {
                tracing::warn!(method = %req.method, target = %req.target, error = %e.message, "schema registry error");
            }
            (e.status, error_body(&e))
        }
    }
}

impl Registry {
    fn count(&self, status: u16) {
        let c = match status {
            200..=299 => &self.stats.requests_ok,
            400..=499 => &self.stats.requests_client_error,
            _ => &self.stats.requests_server_error,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_keeps_slashes_inside_a_segment() {
        assert_eq!(decode("a%2Fb%3Ac", false), "a/b:c");
        assert_eq!(decode("a+b", false), "a+b");
        assert_eq!(decode("a+b", true), "a b");
        assert_eq!(decode("%zz%4", false), "%zz%4");
        let q = Query::parse("normalize=True&deleted=false&subjectPrefix=t%2D");
        assert!(q.flag("normalize") && !q.flag("deleted"));
        assert_eq!(q.get("subjectPrefix"), Some("t-"));
    }
}
