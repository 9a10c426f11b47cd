//! The HTTP server: axum's router on hyper connections, with the bounds a public endpoint needs.
//!
//! `axum::serve` has no header-read timeout, no connection limit and no bound on its graceful
//! shutdown, so a few thousand clients that open connections and send nothing (or half a request
//! head, or a body one byte a second) would hold the process's memory and file descriptors, and a
//! deploy would wait on them forever. Here:
//!
//! * **Connections** are bounded by [`Limits::max_connections`]. One over the bound is answered a
//!   canned `503 SERVICE_UNAVAILABLE` with `Retry-After: 1` and closed at once, written with a
//!   single non-blocking write from the accept loop: refusing costs no task and no buffer.
//! * **A request head** must arrive within [`Limits::header_read_timeout`] of its first byte,
//!   or the connection is closed. Until that byte the connection is idle, under the idle limit
//!   below: clients open connections ahead of their requests (Go's pool when a dial races a
//!   freed connection, browsers' preconnects), and hyper's own header timeout, which runs from
//!   the connection's start and between requests, closed those and every kept-alive connection
//!   after 5 s: a waiting room's client lost its connection at each poll, and a request sent
//!   as the server closed it failed.
//! * **An idle connection** (no byte read or written) is closed after
//!   [`Limits::keep_alive_idle`]; the same rule drops a client that stops reading its answer.
//! * **Bodies and whole requests** are bounded by the middlewares in [`crate::guard`]: the
//!   body must arrive within [`Limits::body_timeout`] (`408`), the answer within
//!   [`Limits::request_timeout`] (`503`), and at most [`Limits::max_in_flight`] requests are
//!   handled at once (`503` + `Retry-After` beyond).
//! * **Shutdown** stops accepting, asks every connection to finish its request in flight and
//!   close, and after [`Limits::shutdown_grace`] closes whatever is still open.

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll, Waker},
    time::Duration,
};

use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    task::JoinSet,
    time::{Instant, Sleep},
};

use crate::timer::poll_timer;

/// The bounds of one api process (docs/security.md, Limits and timeouts).
#[derive(Clone, Debug)]
pub struct Limits {
    /// `HTTP_HEADER_READ_TIMEOUT_MS`: a request head must arrive within this of its first byte.
    pub header_read_timeout: Duration,
    /// `HTTP_BODY_TIMEOUT_MS`: a request body must arrive within this (`408`).
    pub body_timeout: Duration,
    /// `HTTP_REQUEST_TIMEOUT_MS`: an answer must be ready within this (`503`).
    pub request_timeout: Duration,
    /// `HTTP_KEEP_ALIVE_IDLE_MS`: a connection with no traffic this long is closed.
    pub keep_alive_idle: Duration,
    /// `HTTP_MAX_CONNECTIONS`: open connections at once; more are refused with `503`.
    pub max_connections: usize,
    /// `HTTP_MAX_IN_FLIGHT`: requests handled at once; more are refused with `503`.
    pub max_in_flight: usize,
    /// `HTTP_SHUTDOWN_GRACE_MS`: how long shutdown waits for open requests.
    pub shutdown_grace: Duration,
    /// `HTTP_LISTEN_BACKLOG`: connections the kernel holds until they are accepted (capped by
    /// `net.core.somaxconn`); an opening's crowd connects at once.
    pub listen_backlog: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(15),
            keep_alive_idle: Duration::from_secs(60),
            max_connections: 20_000,
            max_in_flight: 4_096,
            shutdown_grace: Duration::from_secs(10),
            listen_backlog: 4_096,
        }
    }
}

/// What a connection over the bound is told before it is closed.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 146\r\n\r\n\
{\"status\":503,\"statusCode\":503,\"error\":\"Service Unavailable\",\"code\":\"SERVICE_UNAVAILABLE\",\
\"message\":\"too many connections; retry later\",\"path\":\"\"}";

/// A listener on `addr` with `backlog` (tokio's own bind takes 1,024: in a load test of an
/// opening, connections made at once overflowed it and were dropped by the kernel, which the
/// clients saw as connections closed before an answer).
pub fn bind(addr: std::net::SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains within the grace period.
pub async fn serve(
    listener: TcpListener,
    app: crate::hot::App,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The head timeout is IdleTimeout's, which does not run between requests.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None);
    builder.http2().timer(TokioTimer::new());
    let service = TowerToHyperService::new(app);
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!("issuer_http_connections_refused_total").increment(1);
            let _ = tcp.try_write(REFUSAL);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let busy = Arc::new(AtomicBool::new(false));
        let io = TokioIo::new(IdleTimeout::new(tcp, limits, Arc::clone(&busy)));
        let served = Served {
            inner: service.clone(),
            busy,
        };
        let conn = builder.serve_connection_with_upgrades(io, served).into_owned();
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
    }
    connections.shutdown().await;
    Ok(())
}

/// A connection's service that marks the connection busy while a request it took is answered
/// (its head is complete): the head timer of [`IdleTimeout`] stops then.
#[derive(Clone)]
struct Served<S> {
    inner: S,
    busy: Arc<AtomicBool>,
}

impl<S, R> hyper::service::Service<R> for Served<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> Self::Future {
        self.busy.store(true, Ordering::Relaxed);
        self.inner.call(req)
    }
}

/// A TCP stream that fails with `TimedOut` once nothing was read or written for `idle`, or
/// once a request head has taken longer than `head` (from its first byte, read while no request
/// was being answered, until the service took the request).
///
/// Traffic only records the time (`last`); the timer is moved when it fires early or a head
/// starts, not on every read and write, so a busy connection costs no timer operations.
struct IdleTimeout {
    inner: TcpStream,
    idle: Duration,
    last: Instant,
    head: Duration,
    /// When the head being read must be complete (none between requests and while busy).
    head_due: Option<Instant>,
    /// The service took a request and has not begun answering it.
    busy: Arc<AtomicBool>,
    /// An HTTP/2 connection (its preface came first): it idles between streams with frames of
    /// its own, so only the idle limit applies.
    h2: bool,
    /// Nothing has been read yet.
    fresh: bool,
    deadline: Pin<Box<Sleep>>,
    /// The task that last polled `deadline` (see [`poll_timer`]).
    polled_by: Option<Waker>,
}

impl IdleTimeout {
    fn new(inner: TcpStream, limits: &Limits, busy: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            idle: limits.keep_alive_idle,
            last: Instant::now(),
            head: limits.header_read_timeout,
            head_due: None,
            busy,
            h2: false,
            fresh: true,
            deadline: Box::pin(tokio::time::sleep(limits.keep_alive_idle)),
            polled_by: None,
        }
    }

    /// `bytes` were read: the first of a head starts its timer.
    fn read_some(&mut self, bytes: &[u8]) {
        self.last = Instant::now();
        if std::mem::take(&mut self.fresh) && bytes.starts_with(b"PRI * HTTP/2.0") {
            self.h2 = true;
        }
        if self.h2 || self.busy.load(Ordering::Relaxed) {
            self.head_due = None;
        } else if self.head_due.is_none() {
            let due = self.last + self.head;
            self.head_due = Some(due);
            if due < self.deadline.deadline() {
                self.deadline.as_mut().reset(due);
                self.polled_by = None;
            }
        }
    }

    /// Bytes were written: an answer began, so the request is no longer waited on.
    fn wrote_some(&mut self) {
        self.last = Instant::now();
        self.head_due = None;
        self.busy.store(false, Ordering::Relaxed);
    }

    /// When the connection must be closed if nothing happens.
    fn due(&self) -> Instant {
        let idle = self.last + self.idle;
        match self.head_due {
            Some(head) if !self.busy.load(Ordering::Relaxed) => idle.min(head),
            _ => idle,
        }
    }

    /// After an operation that is not ready: an error if the connection has been idle, or a
    /// head pending, too long.
    fn pending_or_expired<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        loop {
            match poll_timer(self.deadline.as_mut(), &mut self.polled_by, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => {
                    let due = self.due();
                    if Instant::now() >= due {
                        return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                    }
                    // Traffic since the timer was set: wait out the rest.
                    self.deadline.as_mut().reset(due);
                    self.polled_by = None;
                }
            }
        }
    }
}

impl AsyncRead for IdleTimeout {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    let this = &mut *self;
                    this.read_some(&buf.filled()[before..]);
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.pending_or_expired(cx),
        }
    }
}

impl AsyncWrite for IdleTimeout {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.wrote_some();
                Poll::Ready(result)
            }
            Poll::Pending => self.pending_or_expired(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(result) => {
                self.wrote_some();
                Poll::Ready(result)
            }
            Poll::Pending => self.pending_or_expired(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["code"], "SERVICE_UNAVAILABLE");
    }

    #[tokio::test]
    async fn a_crowd_connecting_at_once_fits_in_the_backlog() {
        // 2,000 connections made before any is accepted: with tokio's default backlog (1,024)
        // the kernel drops the rest's SYNs, and they connect only at their retry, a second on.
        let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        if somaxconn < 2_048 {
            eprintln!(
                "net.core.somaxconn is {somaxconn}: the kernel caps the backlog below the test's crowd"
            );
            return;
        }
        let listener = bind("127.0.0.1:0".parse().unwrap(), 4_096).unwrap();
        let addr = listener.local_addr().unwrap();
        let started = std::time::Instant::now();
        let crowd = futures::future::join_all((0..2_000).map(|_| TcpStream::connect(addr)));
        let clients = tokio::time::timeout(Duration::from_secs(3), crowd)
            .await
            .expect("every connection made within 3 s");
        let took = started.elapsed();
        assert!(clients.iter().all(Result::is_ok));
        assert!(
            took < Duration::from_millis(900),
            "every connection made at once: {took:?}"
        );
        for _ in 0..2_000 {
            listener.accept().await.unwrap();
        }
    }

    #[test]
    fn a_head_is_required_within_ten_seconds_by_default() {
        assert!(Limits::default().header_read_timeout <= Duration::from_secs(10));
    }
}
