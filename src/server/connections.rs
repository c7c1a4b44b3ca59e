//! The HTTP listener. Each connection is bounded in time and the connections in number, so that
//! slow or idle clients cannot hold the server (slowloris): a request's headers must arrive within
//! `--header-read-timeout` (hyper counts it from when it waits for them, so it also closes idle
//! keep-alive connections), bodies within `--body-read-timeout` (`api::router`), and at most
//! `--max-connections` are served at once; the rest wait in the listen queue.
//!
//! hyper answers a request it cannot parse (bad request line or headers, an over-long URI, too
//! large headers) by itself, with an empty body; `EnvelopedParseErrors` gives those answers the
//! API's error envelope like every other.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::api::{ApiError, Scope};

#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `stop` turns true, then lets requests in flight finish.
pub async fn serve(listener: TcpListener, router: axum::Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, permit)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(EnvelopedParseErrors::new(stream));
        let connection = graceful.watch(http1.serve_connection(io, TowerToHyperService::new(router.clone())));
        tokio::spawn(async move {
            // A connection ends with an error when a client goes away or times out: nothing to do.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Waits for a free connection slot, then for a client. `None` after an accept error, which is
/// the listener's or the process's (out of file descriptors): wait a moment before the next try.
async fn accept(listener: &TcpListener, permits: &Arc<Semaphore>) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(error) => {
            tracing::warn!(%error, "accepting a connection failed");
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}

/// A client connection whose writes are watched for hyper's own answers to requests it could not
/// parse: `HTTP/1.1 400|414|431 …` with `content-length: 0`, which the API never sends itself
/// (its errors always carry the envelope). Such a head is written as the same status with the
/// envelope; anything else passes through untouched.
struct EnvelopedParseErrors<S> {
    inner: S,
    /// The replacement being written, how much of it is written, and the length of the head it
    /// stands for (reported as written once the replacement is).
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<S> EnvelopedParseErrors<S> {
    fn new(inner: S) -> Self {
        Self { inner, replacing: None }
    }
}

/// The envelope answer for one of hyper's bodiless parse-error heads; `None` for anything else.
fn envelope_for(head: &[u8]) -> Option<Vec<u8>> {
    const BODILESS: &[u8] = b"\r\ncontent-length: 0\r\n";
    if !head.ends_with(b"\r\n\r\n") || !head.windows(BODILESS.len()).any(|w| w == BODILESS) {
        return None;
    }
    let (status, reason, message) = match head.get(..13)? {
        b"HTTP/1.1 400 " => (StatusCode::BAD_REQUEST, "bad_request", "the request line or headers could not be parsed"),
        b"HTTP/1.1 414 " => (StatusCode::URI_TOO_LONG, "uri_too_long", "the request URI is too long"),
        b"HTTP/1.1 431 " => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "the request headers are too large"),
        _ => return None,
    };
    let body = ApiError::new(status, Scope::Api, reason, message).body_bytes();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<S: AsyncWrite + Unpin> EnvelopedParseErrors<S> {
    /// Writes the rest of a replacement, if one is under way; `Ready(Some(n))` once it is whole,
    /// with `n` the length of the head it replaced.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        let Some((answer, written, replaced)) = &mut self.replacing else { return Poll::Ready(Ok(None)) };
        while *written < answer.len() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*written..]))? {
                0 => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                n => *written += n,
            }
        }
        let replaced = *replaced;
        self.replacing = None;
        Poll::Ready(Ok(Some(replaced)))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for EnvelopedParseErrors<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EnvelopedParseErrors<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            match envelope_for(buf) {
                Some(answer) => this.replacing = Some((answer, 0, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        this.poll_replacement(cx).map_ok(|replaced| replaced.unwrap_or(0))
    }

    /// hyper writes a head as the first of its buffers: that is where a parse-error answer is.
    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match bufs.iter().find(|b| !b.is_empty()) {
            Some(first) if this.replacing.is_some() || envelope_for(first).is_some() => Pin::new(this).poll_write(cx, first),
            _ => Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_heads_get_the_envelope() {
        let head = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Wed, 02 Dec 2026 16:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(envelope_for(head).expect("replaced")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n") && head.contains("connection: close"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["code"], "api.uri_too_long");
        assert_eq!(body["ok"], false);
    }

    #[test]
    fn other_answers_pass_untouched() {
        let envelope_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 80\r\n\r\n";
        let empty_200 = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        let with_body = b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n{}";
        for head in [&envelope_400[..], empty_200, with_body, b"HTTP/1.1 4"] {
            assert_eq!(envelope_for(head), None, "{}", String::from_utf8_lossy(head));
        }
    }
}
