//! The HTTP listener. Each connection is bounded in time and the connections in number, so that
//! slow or idle clients cannot hold the server (slowloris): a request's headers must arrive within
//! `--header-read-timeout` of their first byte, a connection waiting for its next request closes
//! after `--keep-alive-timeout`, bodies must keep coming (`--body-read-timeout`, `api::router`),
//! and at most `--max-connections` are served at once; the rest wait in the listen queue.
//! (hyper's own header timeout runs from when it starts waiting for a request, idle time
//! included, so it cannot tell a slow client from an idle one: `Deadlines` does both.)
//!
//! hyper answers a request it cannot parse (bad request line or headers, an over-long URI, too
//! large headers) by itself, with an empty body; `EnvelopedParseErrors` gives those answers the
//! API's error envelope like every other.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::StatusCode;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, Sleep};

use crate::api::{ApiError, Scope};

#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
}

/// Serves `router` on `listener` until `stop` turns true, then lets requests in flight finish.
pub async fn serve(listener: TcpListener, router: axum::Router, limits: ConnectionLimits, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.header_read_timeout(None); // `Deadlines` keeps time instead
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, permit)) = accepted else { continue };
        let _ = stream.set_nodelay(true);
        let cycle = Arc::new(AtomicU8::new(WAITING));
        let io = TokioIo::new(EnvelopedParseErrors::new(Deadlines::new(stream, limits, cycle.clone())));
        let service = MarksRequests { inner: TowerToHyperService::new(router.clone()), cycle };
        let connection = graceful.watch(http1.serve_connection(io, service));
        tokio::spawn(async move {
            // A connection ends with an error when a client goes away or times out: nothing to do.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Raises this process's limit on open files to the most it may have (the soft limit is often far
/// below the hard one), and says so when that still leaves too few for `--max-connections` next
/// to the database and the outbound connections (`headroom`).
pub fn ensure_open_files(max_connections: usize, headroom: usize) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
        }
    };
    let needed = (max_connections + headroom) as libc::rlim_t;
    if !raised || limit.rlim_cur < needed {
        tracing::warn!(
            open_files = limit.rlim_cur,
            needed,
            "the limit on open files may not allow --max-connections; raise `ulimit -n` or lower --max-connections"
        );
    }
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

/// Where a connection is in its request cycle: waiting for a request (idle, or reading its
/// headers), serving one (hyper parsed its headers and called the router), or answered (the
/// router returned the answer, which is being written).
const WAITING: u8 = 0;
const SERVING: u8 = 1;
const ANSWERED: u8 = 2;

/// The router as hyper calls it, marking where the connection is in its cycle for `Deadlines`.
struct MarksRequests<S> {
    inner: S,
    cycle: Arc<AtomicU8>,
}

impl<S, R> hyper::service::Service<R> for MarksRequests<S>
where
    S: hyper::service::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn call(&self, request: R) -> Self::Future {
        self.cycle.store(SERVING, Ordering::Relaxed);
        let (answer, cycle) = (self.inner.call(request), self.cycle.clone());
        Box::pin(async move {
            let answer = answer.await;
            cycle.store(ANSWERED, Ordering::Relaxed);
            answer
        })
    }
}

/// A client connection that keeps time while the server waits for a request: once a request's
/// first byte is read, its headers have `header_read_timeout` to be complete (hyper then calls
/// the router); before that, an idle connection has `keep_alive_timeout`, counted from its start
/// or from the last byte of the previous answer. A read that runs out of time fails, and hyper
/// closes the connection. While a request is served there is no deadline here: bodies have
/// their own (`api::router`), handlers take what they take.
struct Deadlines<S> {
    inner: S,
    limits: ConnectionLimits,
    cycle: Arc<AtomicU8>,
    idle_since: Instant,
    head_started: Option<Instant>,
    timer: Pin<Box<Sleep>>,
}

impl<S> Deadlines<S> {
    fn new(inner: S, limits: ConnectionLimits, cycle: Arc<AtomicU8>) -> Self {
        let now = Instant::now();
        Self { inner, limits, cycle, idle_since: now, head_started: None, timer: Box::pin(tokio::time::sleep_until(now)) }
    }

    /// When the current wait for a request runs out; `None` while one is served.
    fn deadline(&self) -> Option<Instant> {
        match (self.cycle.load(Ordering::Relaxed), self.head_started) {
            (SERVING, _) => None,
            (_, Some(started)) => Some(started + self.limits.header_read_timeout),
            (_, None) => Some(self.idle_since + self.limits.keep_alive_timeout),
        }
    }

    /// Arms the timer for `deadline`: ready once it has passed, else wakes the task then.
    fn expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> Poll<()> {
        self.timer.as_mut().reset(deadline);
        self.timer.as_mut().poll(cx)
    }

    /// Runs a write; one that cannot go on because the client reads nothing of an answer for the
    /// keep-alive timeout (a slow-read attack) fails.
    fn unless_stalled(
        &mut self,
        cx: &mut Context<'_>,
        write: impl FnOnce(&mut S, &mut Context<'_>) -> Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match write(&mut self.inner, cx) {
            Poll::Pending if self.cycle.load(Ordering::Relaxed) == ANSWERED => {
                ready!(self.expired(self.idle_since + self.limits.keep_alive_timeout, cx));
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client read nothing of the answer for too long")))
            }
            done => done,
        }
    }

    /// Bytes of an answer went out: once the router has answered, the connection waits for its
    /// next request from here (written by hyper before the router answers, e.g. `100 Continue`,
    /// does not count). hyper's own parse-error answers end the connection anyway. The timer is
    /// armed here too: hyper may not poll a read again before the client sends something.
    fn answer_written(&mut self, written: usize, cx: &mut Context<'_>) {
        if written > 0 && self.cycle.load(Ordering::Relaxed) == ANSWERED {
            self.idle_since = Instant::now();
            self.head_started = None;
            let _ = self.expired(self.idle_since + self.limits.keep_alive_timeout, cx);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before && this.head_started.is_none() && this.cycle.load(Ordering::Relaxed) != SERVING {
                    this.head_started = Some(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.deadline() {
                Some(deadline) => {
                    ready!(this.expired(deadline, cx));
                    Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client was too slow or idle too long")))
                }
                None => Poll::Pending,
            },
            failed => failed,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(this.unless_stalled(cx, |inner, cx| Pin::new(inner).poll_write(cx, buf)))?;
        this.answer_written(written, cx);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(this.unless_stalled(cx, |inner, cx| Pin::new(inner).poll_write_vectored(cx, bufs)))?;
        this.answer_written(written, cx);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const SHORT: Duration = Duration::from_millis(50);
    /// Only a deadline that never fires reaches this.
    const PATIENCE: Duration = Duration::from_secs(30);

    /// A connection in the given phase of its cycle, and the client's end of it (a pipe that
    /// holds 64 bytes, so an answer nobody reads stalls).
    fn connection(phase: u8) -> (Deadlines<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (server, client) = tokio::io::duplex(64);
        let limits = ConnectionLimits { header_read_timeout: SHORT, keep_alive_timeout: SHORT, max_connections: 1 };
        (Deadlines::new(server, limits, Arc::new(AtomicU8::new(phase))), client)
    }

    #[tokio::test]
    async fn idle_and_half_sent_requests_run_out_of_time() {
        let (mut idle, _client) = connection(WAITING);
        let read = tokio::time::timeout(PATIENCE, idle.read(&mut [0; 16])).await.expect("the deadline fires");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
        let (mut half, mut client) = connection(ANSWERED);
        client.write_all(b"GET / HT").await.unwrap();
        assert_eq!(half.read(&mut [0; 16]).await.unwrap(), 8);
        let read = tokio::time::timeout(PATIENCE, half.read(&mut [0; 16])).await.expect("the deadline fires");
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn a_request_being_served_has_no_deadline_here() {
        let (mut serving, _client) = connection(SERVING);
        let read = tokio::time::timeout(SHORT * 4, serving.read(&mut [0; 16])).await;
        assert!(read.is_err(), "still waiting after four times the timeouts: {read:?}");
    }

    #[tokio::test]
    async fn an_answer_the_client_never_reads_runs_out_of_time() {
        let (mut answering, _client) = connection(ANSWERED);
        let stalled = tokio::time::timeout(PATIENCE, async {
            loop {
                if let Err(e) = answering.write(&[b'x'; 32]).await {
                    return e;
                }
            }
        });
        assert_eq!(stalled.await.expect("the deadline fires").kind(), io::ErrorKind::TimedOut);
    }

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_limit() {
        let open_files = || {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: getrlimit only writes the struct passed to it.
            assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
            limit
        };
        // Start below the hard limit (plenty for the other unit tests meanwhile), as shells often do.
        let lowered = libc::rlimit { rlim_cur: open_files().rlim_max.min(512), rlim_max: open_files().rlim_max };
        // SAFETY: setrlimit only reads the struct passed to it.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lowered) }, 0);
        ensure_open_files(1, 0);
        assert_eq!(open_files().rlim_cur, open_files().rlim_max);
    }

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
