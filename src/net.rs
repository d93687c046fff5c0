//! The network layer: accept loop, per-connection framing, dispatch, ordered responses.
//!
//! Each connection is one task that reads a size-prefixed frame, handles it, and writes
//! the response before reading the next, so responses leave in request order and two
//! produce requests on one connection are appended in the order they were sent — the
//! same one-request-at-a-time rule Kafka applies by muting a channel. Different
//! connections run in parallel on all cores.

use std::collections::HashMap;
use std::future::Future;
use std::io::IoSlice;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strom_protocol::frame::{encode_response_header, RequestHeader};
use strom_protocol::{DecodeError, Reader, Writer};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::api;
use crate::node::Node;

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The request could not be decoded.
    #[error("malformed request: {0}")]
    Decode(#[from] DecodeError),
    /// A request Kafka answers by closing the connection (unknown API, unsupported version).
    #[error("{0}")]
    Refused(String),
    /// A response could not be encoded (a broker bug; the connection cannot continue).
    #[error("could not encode response: {0}")]
    Encode(#[from] strom_protocol::EncodeError),
}

/// Frames are read through a buffer grown with the bytes that actually arrive, never
/// allocated up front from the announced size.
const READ_CHUNK: usize = 64 * 1024;

/// Each connection's socket buffer. Small, so that thousands of idle connections cost
/// little; a large frame body bypasses it and is read straight into the frame buffer.
const SOCKET_BUF: usize = 8 * 1024;

/// What bounds the reading of frames, shared by every connection of a listener.
#[derive(Debug, Clone)]
pub struct FrameLimits {
    /// `socket.request.max.bytes`: larger (or negative) sizes close the connection.
    pub max_frame: usize,
    /// `connections.max.idle.ms`: how long to wait for the first byte of a frame, and
    /// for a response write to make progress.
    pub idle: Duration,
    /// `strom.request.read.timeout.ms`: a frame must arrive whole this long after its
    /// first byte (time spent waiting for the in-flight budget included).
    pub frame_deadline: Duration,
    /// `strom.inflight.request.max.bytes` as semaphore permits, one per byte: acquired
    /// before each chunk of a frame's body is read and released once it is handled, so
    /// when the budget is used up the broker stops reading sockets instead of growing.
    pub inflight: Arc<Semaphore>,
    /// The budget's size (a frame larger than it takes the whole budget).
    pub inflight_total: u32,
}

impl FrameLimits {
    /// Limits from the broker configuration.
    pub fn from_config(c: &crate::config::Config) -> FrameLimits {
        let total = u32::try_from(c.inflight_request_max_bytes).unwrap_or(u32::MAX).max(1);
        FrameLimits {
            max_frame: c.socket_request_max_bytes,
            idle: Duration::from_millis(c.connections_max_idle_ms),
            frame_deadline: Duration::from_millis(c.request_read_timeout_ms),
            inflight: Arc::new(Semaphore::new(total as usize)),
            inflight_total: total,
        }
    }

    #[cfg(test)]
    fn for_test(max_frame: usize) -> FrameLimits {
        FrameLimits {
            max_frame,
            idle: Duration::from_secs(5),
            frame_deadline: Duration::from_secs(5),
            inflight: Arc::new(Semaphore::new(1 << 20)),
            inflight_total: 1 << 20,
        }
    }
}

/// A received frame and its share of the in-flight budget (returned on drop).
pub struct Frame {
    /// The frame, size prefix excluded.
    pub bytes: Bytes,
    _permit: Option<OwnedSemaphorePermit>,
}

fn timed_out(what: &'static str) -> ConnError {
    ConnError::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
///
/// Waiting for a frame's first byte is bounded by the idle timeout; from that byte on, the
/// size prefix and the body must arrive within the frame deadline. The size is checked
/// against `max_frame` before anything is allocated, and the frame's bytes are taken from
/// the in-flight budget as they are read.
async fn read_frame<R: AsyncBufRead + Unpin>(rd: &mut R, limits: &FrameLimits) -> Result<Option<Frame>, ConnError> {
    match tokio::time::timeout(limits.idle, rd.fill_buf()).await {
        Err(_) => return Err(timed_out("connection idle for connections.max.idle.ms")),
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok([])) => return Ok(None),
        Ok(Ok(_)) => {}
    }
    let deadline = tokio::time::Instant::now() + limits.frame_deadline;
    let mut size = [0u8; 4];
    match tokio::time::timeout_at(deadline, rd.read_exact(&mut size)).await {
        Err(_) => return Err(timed_out("frame size not received within strom.request.read.timeout.ms")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-size").into())
        }
        Ok(Err(e)) => return Err(e.into()),
        Ok(Ok(_)) => {}
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > limits.max_frame {
        return Err(DecodeError::FrameTooLarge { size: i64::from(size), max: limits.max_frame }.into());
    }
    let size = size as usize;
    // The budget is taken chunk by chunk as bytes are about to be read, so a frame
    // holds only what it has received (a slowloris that announced 100 MiB and sent 10
    // bytes holds 10 bytes' worth), and waiting for budget counts against the frame's
    // deadline: when the budget is spent, sockets stop being read until frames finish
    // or time out. A frame larger than the whole budget is capped at the budget.
    let body = async {
        let mut permit: Option<OwnedSemaphorePermit> = None;
        let mut held: u32 = 0;
        let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
        while buf.len() < size {
            let want = (size - buf.len()).min(READ_CHUNK);
            let more = u32::try_from(want).unwrap_or(u32::MAX).min(limits.inflight_total - held);
            if more > 0 {
                let p = limits
                    .inflight
                    .clone()
                    .acquire_many_owned(more)
                    .await
                    .map_err(|_| std::io::Error::other("broker is shutting down"))?;
                held += more;
                match &mut permit {
                    Some(all) => all.merge(p),
                    None => permit = Some(p),
                }
            }
            buf.reserve(want);
            let n = (&mut *rd).take(want as u64).read_buf(&mut buf).await?;
            if n == 0 {
                return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-frame"));
            }
        }
        Ok((buf.freeze(), permit))
    };
    match tokio::time::timeout_at(deadline, body).await {
        Err(_) => Err(timed_out("frame not received within strom.request.read.timeout.ms")),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok((bytes, permit))) => Ok(Some(Frame { bytes, _permit: permit })),
    }
}

/// Writes every chunk, continuing after partial vectored writes.
async fn write_chunks<W: AsyncWrite + Unpin>(wr: &mut W, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut idx = 0;
    let mut off = 0;
    while idx < chunks.len() {
        let slices: Vec<IoSlice<'_>> = std::iter::once(&chunks[idx][off..])
            .chain(chunks[idx + 1..].iter().map(|c| &c[..]))
            .take(64)
            .map(IoSlice::new)
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < chunks.len() {
            let left = chunks[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    wr.flush().await
}

/// Handles one frame; returns the response chunks (size prefix included), or `None` when
/// the request gets no response (Produce with acks=0).
async fn handle_frame(
    node: &Node,
    peer: SocketAddr,
    listener: usize,
    frame: Bytes,
    mut sasl: Option<&mut crate::security::SaslSession>,
    principal: &std::sync::Arc<str>,
) -> Result<Option<Vec<Bytes>>, ConnError> {
    if let Some(session) = sasl.as_deref_mut().filter(|s| s.expects_raw_token()) {
        // After SaslHandshake v0 the client sends its token bare, without a header.
        return Ok(session.raw_token(&frame, peer, &|u, m| scram_credential(node, u, m)).map(|answer| vec![answer]));
    }
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r)?;
    if let Some(session) = sasl.as_deref_mut() {
        match session.step(header.api_key, header.api_version, &mut r, peer, &|u, m| scram_credential(node, u, m))? {
            crate::security::Step::Dispatch => {}
            crate::security::Step::Close(why) => return Err(ConnError::Refused(why)),
            crate::security::Step::Answer(body) => {
                node.metrics.request(header.api_key, std::time::Duration::ZERO);
                return Ok(Some(response_chunks(&header, body)?));
            }
        }
    }
    let span = tracing::debug_span!(
        "request",
        api = header.api_key,
        version = header.api_version,
        correlation_id = header.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
    );
    let principal = match sasl.as_ref().and_then(|s| s.principal()) {
        Some(p) => std::sync::Arc::from(p),
        None => principal.clone(),
    };
    let ctx =
        api::RequestContext { peer, listener, client_id: header.client_id.clone().unwrap_or_default(), principal };
    let started = std::time::Instant::now();
    let outcome = api::dispatch(node, &ctx, &header, &mut r).instrument(span).await;
    node.metrics.request(header.api_key, started.elapsed());
    let Some(body) = outcome? else {
        return Ok(None);
    };
    Ok(Some(response_chunks(&header, body)?))
}

/// A user's SCRAM credential from the metadata image (ADR 0013).
fn scram_credential(
    node: &Node,
    user: &str,
    m: crate::security::scram::Mechanism,
) -> Option<crate::security::scram::Credential> {
    node.meta.scram_credential(user, m.code()).map(|c| crate::security::scram::Credential {
        salt: c.salt.to_vec(),
        iterations: u32::try_from(c.iterations).unwrap_or(0),
        stored_key: c.stored_key.to_vec(),
        server_key: c.server_key.to_vec(),
    })
}

/// A response frame for `header`'s request: size, response header, `body`.
fn response_chunks(header: &RequestHeader, body: Writer) -> Result<Vec<Bytes>, ConnError> {
    let mut head = Writer::new();
    head.i32(0); // size, patched below
    encode_response_header(&mut head, header.api_key, header.api_version, header.correlation_id);
    let total = head.len() - 4 + body.len();
    let size =
        i32::try_from(total).map_err(|_| ConnError::Refused(format!("response of {total} bytes is too large")))?;
    let mut head = head.into_bytes().to_vec();
    head[..4].copy_from_slice(&size.to_be_bytes());
    let mut chunks = vec![Bytes::from(head)];
    chunks.extend(body.into_chunks());
    Ok(chunks)
}

/// Serves one accepted connection: the TLS handshake first on TLS listeners (bounded by
/// `strom.request.read.timeout.ms`, so a client that stalls mid-handshake holds nothing for
/// long), then requests until the client leaves or the broker stops.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    listener: usize,
    tls: Option<Arc<crate::tls::TlsListener>>,
    node: Arc<Node>,
    limits: Arc<FrameLimits>,
    stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let _open = node.metrics.connection();
    let Some(tls) = tls else {
        let (rd, wr) = stream.into_split();
        return serve_io(rd, wr, peer, listener, "User:ANONYMOUS".into(), node, limits, stop).await;
    };
    let started = std::time::Instant::now();
    let handshake = tokio::time::timeout(limits.frame_deadline, tls.acceptor().accept(stream)).await;
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            crate::metrics::TLS_HANDSHAKE_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(%peer, listener = %tls.name, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            crate::metrics::TLS_HANDSHAKE_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(%peer, listener = %tls.name, "TLS handshake not completed within strom.request.read.timeout.ms");
            return;
        }
    };
    let principal: Arc<str> = match tls.identity(stream.get_ref().1) {
        Ok(crate::tls::PeerIdentity::Anonymous) => "User:ANONYMOUS".into(),
        Ok(crate::tls::PeerIdentity::User(name)) => format!("User:{name}").into(),
        Err(why) => {
            crate::metrics::TLS_HANDSHAKE_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(%peer, listener = %tls.name, reason = %why, "TLS client refused");
            return;
        }
    };
    crate::metrics::TLS_HANDSHAKES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tracing::debug!(%peer, listener = %tls.name, %principal, elapsed_us = started.elapsed().as_micros() as u64, "TLS handshake done");
    let (rd, wr) = tokio::io::split(stream);
    serve_io(rd, wr, peer, listener, principal, node, limits, stop).await
}

/// Serves requests on one connection's byte streams (plain TCP halves or TLS).
#[allow(clippy::too_many_arguments)]
async fn serve_io<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: R,
    mut wr: W,
    peer: SocketAddr,
    listener: usize,
    principal: Arc<str>,
    node: Arc<Node>,
    limits: Arc<FrameLimits>,
    mut stop: watch::Receiver<bool>,
) {
    let mut rd = BufReader::with_capacity(SOCKET_BUF, rd);
    // A SASL listener's connection authenticates first, with small frames until then.
    let sasl_listener = node.meta.config.listeners.get(listener).and_then(|l| l.sasl.as_ref());
    let mut sasl = sasl_listener.map(crate::security::SaslSession::new);
    let preauth =
        FrameLimits { max_frame: limits.max_frame.min(node.meta.config.sasl_max_receive_size), ..(*limits).clone() };
    loop {
        let unauthenticated = sasl.as_ref().is_some_and(|s| s.principal().is_none());
        let frame_limits = if unauthenticated { &preauth } else { &*limits };
        let frame = tokio::select! {
            f = read_frame(&mut rd, frame_limits) => f,
            _ = stop.changed() => break,
        };
        let result = match frame {
            Ok(None) => break,
            // The frame (and its in-flight budget) is released once handled, before the
            // response is written: a client that does not read its responses holds no
            // request bytes.
            Ok(Some(frame)) => handle_frame(&node, peer, listener, frame.bytes, sasl.as_mut(), &principal).await,
            Err(e) => Err(e),
        };
        let outcome = match result {
            Ok(Some(chunks)) => match tokio::time::timeout(limits.idle, write_chunks(&mut wr, &chunks)).await {
                Ok(r) => r.map_err(ConnError::from),
                Err(_) => Err(timed_out("response not read by the client within connections.max.idle.ms")),
            },
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if sasl.as_ref().is_some_and(|s| s.failed) {
            // Answered; the connection closes after the delay, which slows down guessing.
            let delay = Duration::from_millis(node.meta.config.failed_authentication_delay_ms);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.changed() => {}
            }
            break;
        }
        if let Err(e) = outcome {
            match &e {
                ConnError::Io(io)
                    if matches!(io.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) =>
                {
                    tracing::debug!(%peer, error = %e, "connection dropped by client")
                }
                ConnError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
                    tracing::debug!(%peer, error = %e, "closing connection")
                }
                _ => tracing::warn!(%peer, error = %e, "closing connection"),
            }
            break;
        }
    }
    node.shares.connection_closed(peer);
}

/// Open connections, in total and per client IP (`max.connections`,
/// `max.connections.per.ip`).
#[derive(Debug, Default)]
struct ConnCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A slot in `ConnCounts`, given back when the connection's task ends.
struct ConnSlot {
    counts: Arc<Mutex<ConnCounts>>,
    ip: IpAddr,
}

impl ConnSlot {
    fn take(counts: &Arc<Mutex<ConnCounts>>, ip: IpAddr, max: usize, max_per_ip: usize) -> Option<ConnSlot> {
        let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
        let mine = c.per_ip.get(&ip).copied().unwrap_or(0);
        if c.total >= max || mine >= max_per_ip {
            return None;
        }
        c.total += 1;
        *c.per_ip.entry(ip).or_insert(0) += 1;
        Some(ConnSlot { counts: counts.clone(), ip })
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                c.per_ip.remove(&self.ip);
            }
        }
    }
}

/// After the shutdown signal, how long requests still being handled may take to finish and
/// have their responses written: a Fetch parked for `max_wait_ms` (up to 30 s), a produce
/// waiting for its fsync, a response a slow client is still reading. Then their connections
/// are closed under them, as Kafka closes its sockets first when it stops. It must stay well
/// below the grace periods of process supervisors (10 s in the compat runner, 30 s in
/// Kubernetes): a request parked for a rebalance could otherwise hold the shutdown for
/// minutes (`max.poll.interval.ms`, 300 s by default, is a JoinGroup's rebalance timeout).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// Waits for a connection on any of `listeners`, starting the scan at a rotating
/// index so a busy listener cannot starve the others: (listener index, accept result).
async fn accept_any(
    listeners: &[(TcpListener, Option<Arc<crate::tls::TlsListener>>)],
    next: &mut usize,
) -> (usize, std::io::Result<(TcpStream, SocketAddr)>) {
    let n = listeners.len();
    let start = *next;
    let got = std::future::poll_fn(|cx| {
        for k in 0..n {
            let i = (start + k) % n;
            if let std::task::Poll::Ready(r) = listeners[i].0.poll_accept(cx) {
                return std::task::Poll::Ready((i, r));
            }
        }
        std::task::Poll::Pending
    })
    .await;
    *next = (got.0 + 1) % n.max(1);
    got
}

/// Re-reads each TLS listener's files every `strom.ssl.reload.interval.ms` until `stop`.
async fn reload_tls(listeners: Vec<Arc<crate::tls::TlsListener>>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        for l in &listeners {
            match l.reload() {
                Ok(true) => tracing::info!(listener = %l.name, "TLS key, certificate or truststore reloaded"),
                Ok(false) => {}
                Err(e) => {
                    crate::metrics::TLS_RELOAD_FAILURES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::warn!(listener = %l.name, error = format!("{e:#}"), "TLS files changed but cannot be loaded; still serving the previous ones");
                }
            }
        }
    }
}

/// Serves Kafka clients on `listeners` (`config.listeners` order, so a connection's
/// listener index names its advertised endpoint; each with its TLS configuration, if
/// any) until `shutdown` completes, then lets in-flight requests finish (within
/// [`SHUTDOWN_GRACE`]) and closes every log cleanly.
pub async fn run(
    listeners: Vec<(TcpListener, Option<Arc<crate::tls::TlsListener>>)>,
    node: Arc<Node>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    let limits = Arc::new(FrameLimits::from_config(&node.meta.config));
    let counts = Arc::new(Mutex::new(ConnCounts::default()));
    let (max_conns, max_per_ip) = (node.meta.config.max_connections, node.meta.config.max_connections_per_ip);
    let mut next = 0;
    let tls: Vec<_> = listeners.iter().filter_map(|(_, t)| t.clone()).collect();
    let reload_every = node.meta.config.ssl_reload_interval_ms;
    let reloader = (!tls.is_empty() && reload_every > 0)
        .then(|| tokio::spawn(reload_tls(tls, Duration::from_millis(reload_every), stop_rx.clone())));
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            (listener, accepted) = accept_any(&listeners, &mut next), if !listeners.is_empty() => match accepted {
                Ok((stream, peer)) => {
                    // Over max.connections or max.connections.per.ip: closed at once
                    // (dropping the stream), so a flood costs no task and no buffer.
                    let Some(slot) = ConnSlot::take(&counts, peer.ip(), max_conns, max_per_ip) else {
                        tracing::debug!(%peer, "connection refused: connection limit reached");
                        continue;
                    };
                    tracing::debug!(%peer, "accepted connection");
                    let tls = listeners[listener].1.clone();
                    let conn =
                        serve_connection(stream, peer, listener, tls, node.clone(), limits.clone(), stop_rx.clone());
                    conns.spawn(async move {
                        conn.await;
                        drop(slot);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a failing accept;
                    // connections already open keep being served by their own tasks.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    tracing::info!("shutting down: closing connections");
    // In a cluster, hand leadership back first, while the quorum can still be reached.
    node.meta.controlled_shutdown().await;
    let _ = stop_tx.send(true);
    if let Some(r) = reloader {
        r.abort();
    }
    // JoinGroup/SyncGroup requests parked for a rebalance are answered now rather than when
    // the rebalance ends (after a rebalance timeout, if a member died).
    node.groups.resign();
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::info!(connections = conns.len(), "closing connections with requests still in flight");
        conns.abort_all();
        // An aborted task stops at its next await; wait for that, so that no request is
        // still touching a log when the logs are closed below.
        while conns.join_next().await.is_some() {}
    }
    node.meta.shutdown();
    tracing::info!("shutdown complete");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_larger_than_the_limit_are_refused_before_reading_them() {
        let data = [0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_frame(&mut &data[..], &FrameLimits::for_test(1024)).await.err().unwrap();
        assert!(matches!(err, ConnError::Decode(DecodeError::FrameTooLarge { .. })), "{err}");
        let negative = [0xff, 0xff, 0xff, 0xfe];
        assert!(read_frame(&mut &negative[..], &FrameLimits::for_test(1024)).await.is_err());
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_an_error_and_a_clean_eof_is_not() {
        let data = [0, 0, 0, 10, 1, 2, 3];
        let limits = FrameLimits::for_test(1024);
        assert!(read_frame(&mut &data[..], &limits).await.is_err());
        assert!(read_frame(&mut &[][..], &limits).await.unwrap().is_none());
        let whole = [0, 0, 0, 2, 7, 8, 9];
        let f = read_frame(&mut &whole[..], &limits).await.unwrap().unwrap();
        assert_eq!(&f.bytes[..], &[7, 8]);
        assert_eq!(limits.inflight.available_permits(), (1 << 20) - 2, "a frame holds its bytes of the budget");
        drop(f);
        assert_eq!(limits.inflight.available_permits(), 1 << 20);
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_trickling_in_is_cut_by_the_deadline_and_silence_by_the_idle_timeout() {
        let limits = FrameLimits::for_test(1 << 20);
        let (mut client, server) = tokio::io::duplex(64);
        let mut rd = BufReader::new(server);
        client.write_all(&[0, 0, 0, 100, 1]).await.unwrap();
        let err = read_frame(&mut rd, &limits).await.err().unwrap();
        assert!(matches!(&err, ConnError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut), "{err}");
        assert_eq!(limits.inflight.available_permits(), 1 << 20, "a dropped frame returns its budget");
        let (_client, server) = tokio::io::duplex(64);
        let mut rd = BufReader::new(server);
        let err = read_frame(&mut rd, &limits).await.err().unwrap();
        assert!(matches!(&err, ConnError::Io(e) if e.kind() == std::io::ErrorKind::TimedOut), "{err}");
    }

    #[tokio::test]
    async fn a_used_up_budget_stops_reading_until_a_frame_is_released() {
        let mut limits = FrameLimits::for_test(1024);
        limits.inflight = Arc::new(Semaphore::new(10));
        limits.inflight_total = 10;
        let a = [0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        let first = read_frame(&mut &a[..], &limits).await.unwrap().unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(50), read_frame(&mut &a[..], &limits)).await;
        assert!(blocked.is_err(), "the second frame waits for budget");
        assert_eq!(limits.inflight.available_permits(), 2, "a frame waiting for budget holds none of it");
        drop(first);
        assert!(read_frame(&mut &a[..], &limits).await.unwrap().is_some());
        // A frame larger than the whole budget takes all of it rather than waiting forever.
        let big = [&[0u8, 0, 0, 20][..], &[0u8; 20][..]].concat();
        assert!(read_frame(&mut &big[..], &limits).await.unwrap().is_some());
    }

    #[test]
    fn connection_slots_are_limited_in_total_and_per_ip_and_given_back() {
        let counts = Arc::new(Mutex::new(ConnCounts::default()));
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let s1 = ConnSlot::take(&counts, a, 3, 2).unwrap();
        let _s2 = ConnSlot::take(&counts, a, 3, 2).unwrap();
        assert!(ConnSlot::take(&counts, a, 3, 2).is_none(), "per-ip limit");
        let _s3 = ConnSlot::take(&counts, b, 3, 2).unwrap();
        assert!(ConnSlot::take(&counts, b, 3, 2).is_none(), "total limit");
        drop(s1);
        assert!(ConnSlot::take(&counts, a, 3, 2).is_some());
    }

    #[tokio::test]
    async fn partial_vectored_writes_still_write_everything() {
        let chunks = vec![Bytes::from_static(b"abc"), Bytes::from(vec![9u8; 100_000]), Bytes::from_static(b"z")];
        let (mut a, mut b) = tokio::io::duplex(1000);
        let reader = tokio::spawn(async move {
            let mut v = Vec::new();
            b.read_to_end(&mut v).await.unwrap();
            v
        });
        write_chunks(&mut a, &chunks).await.unwrap();
        drop(a);
        let got = reader.await.unwrap();
        assert_eq!(got.len(), 100_004);
        assert_eq!(&got[..3], b"abc");
        assert_eq!(got[100_003], b'z');
    }
}
