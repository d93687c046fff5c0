//! The network layer: accept loop, per-connection framing, dispatch, ordered responses.
//!
//! Each connection is one task that reads a size-prefixed frame, handles it, and writes
//! the response before reading the next, so responses leave in request order and two
//! produce requests on one connection are appended in the order they were sent — the
//! same one-request-at-a-time rule Kafka applies by muting a channel. Different
//! connections run in parallel on all cores.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use strom_protocol::frame::{encode_response_header, RequestHeader};
use strom_protocol::{DecodeError, Reader, Writer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::cluster::Cluster;
use crate::handler;

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

/// Reads one frame; `Ok(None)` on a clean end of stream between frames.
async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, max: usize) -> Result<Option<Bytes>, ConnError> {
    let mut size = [0u8; 4];
    match rd.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > max {
        return Err(DecodeError::FrameTooLarge { size: i64::from(size), max }.into());
    }
    let size = size as usize;
    let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
    while buf.len() < size {
        let want = (size - buf.len()).min(READ_CHUNK);
        buf.reserve(want);
        let n = (&mut *rd).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed mid-frame").into());
        }
    }
    Ok(Some(buf.freeze()))
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
async fn handle_frame(cluster: &Cluster, peer: SocketAddr, frame: Bytes) -> Result<Option<Vec<Bytes>>, ConnError> {
    let mut r = Reader::new(frame);
    let header = RequestHeader::decode(&mut r)?;
    let span = tracing::debug_span!(
        "request",
        api = header.api_key,
        version = header.api_version,
        correlation_id = header.correlation_id,
        client_id = header.client_id.as_deref().unwrap_or(""),
    );
    let ctx = handler::RequestContext { peer, client_id: header.client_id.clone().unwrap_or_default() };
    let started = std::time::Instant::now();
    let outcome = handler::dispatch(cluster, &ctx, &header, &mut r).instrument(span).await;
    cluster.metrics.request(header.api_key, started.elapsed());
    let Some(body) = outcome? else {
        return Ok(None);
    };
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
    Ok(Some(chunks))
}

async fn serve_connection(stream: TcpStream, peer: SocketAddr, cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let _open = cluster.metrics.connection();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::with_capacity(READ_CHUNK, rd);
    let max = cluster.config.socket_request_max_bytes;
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut rd, max) => f,
            _ = stop.changed() => break,
        };
        let result = match frame {
            Ok(None) => break,
            Ok(Some(frame)) => handle_frame(&cluster, peer, frame).await,
            Err(e) => Err(e),
        };
        let outcome = match result {
            Ok(Some(chunks)) => write_chunks(&mut wr, &chunks).await.map_err(ConnError::from),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            match &e {
                ConnError::Io(io)
                    if matches!(io.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) =>
                {
                    tracing::debug!(%peer, error = %e, "connection dropped by client")
                }
                _ => tracing::warn!(%peer, error = %e, "closing connection"),
            }
            break;
        }
    }
}

/// Serves Kafka clients on `listener` until `shutdown` completes, then lets in-flight
/// requests finish (bounded) and closes every log cleanly.
pub async fn run(
    listener: TcpListener,
    cluster: Arc<Cluster>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::debug!(%peer, "accepted connection");
                    conns.spawn(serve_connection(stream, peer, cluster.clone(), stop_rx.clone()));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning on a failing accept.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    tracing::info!("shutting down: closing connections");
    let _ = stop_tx.send(true);
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(10), drain).await.is_err() {
        conns.abort_all();
    }
    cluster.shutdown();
    tracing::info!("shutdown complete");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_larger_than_the_limit_are_refused_before_reading_them() {
        let data = [0x7f, 0xff, 0xff, 0xff, 1, 2, 3];
        let err = read_frame(&mut &data[..], 1024).await.unwrap_err();
        assert!(matches!(err, ConnError::Decode(DecodeError::FrameTooLarge { .. })), "{err}");
        let negative = [0xff, 0xff, 0xff, 0xfe];
        assert!(read_frame(&mut &negative[..], 1024).await.is_err());
    }

    #[tokio::test]
    async fn a_frame_cut_short_is_an_error_and_a_clean_eof_is_not() {
        let data = [0, 0, 0, 10, 1, 2, 3];
        assert!(read_frame(&mut &data[..], 1024).await.is_err());
        assert!(read_frame(&mut &[][..], 1024).await.unwrap().is_none());
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
