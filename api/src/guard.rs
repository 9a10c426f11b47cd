//! Per-request bounds (see [`crate::server`] for the per-connection ones).
//!
//! [`GuardLayer`] is the front of every request. It
//! * runs a routed request with its URI at hand for [`ApiError::into_response`] (a task-local:
//!   see [`crate::error`]; the issue routes, which answer their errors with the path they hold,
//!   skip it: [`WithUri`]), and gives the router's own `405` (which no handler made) the error
//!   body;
//! * takes one of [`Guard::new`]'s `max_in_flight` slots or answers `503 SERVICE_UNAVAILABLE`
//!   with `Retry-After: 1` at once (`/health`, `/ready` and `/metrics` skip the slot, so a load
//!   balancer and Prometheus still see an overloaded process);
//! * gives the body a deadline (a body still arriving then fails to read, and the extractor
//!   answers `408 REQUEST_TIMEOUT`), and the whole answer one (`503` when it passes; dropping
//!   the handler's future cancels its Redis and Postgres calls and returns their connections to
//!   the pools). One timer serves both: it fires first at the earlier deadline, when the
//!   answer is polled again so that a body still waited on fails ([`DeadlineBody`] has no timer
//!   of its own), and is then moved on to the answer's.
//!
//! It is a hand-written service rather than `axum::middleware::from_fn`s: those clone the inner
//! service and box two futures per request each, and two of them cost every request (`/health`
//! too) more than all the bounds they carried. The timer is made only when the answer is not
//! ready at once, so `/health` registers none; an issue request, whose body hyper hands over
//! after the first poll, registers one (a second one, the body's own, cost it about 600
//! instructions).

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    task::futures::TaskLocalFuture,
    time::{Instant, Sleep},
};

use crate::{
    error::{self, ApiError, BodyTimedOut},
    timer::poll_timer,
};

/// The shared per-request bounds.
#[derive(Clone)]
pub struct Guard {
    slots: Arc<Semaphore>,
    body_timeout: Duration,
    request_timeout: Duration,
}

impl Guard {
    /// Bounds for a process.
    pub fn new(max_in_flight: usize, body_timeout: Duration, request_timeout: Duration) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max_in_flight)),
            body_timeout,
            request_timeout,
        }
    }

    /// The layer that applies these bounds (see the module doc).
    pub fn layer(&self) -> GuardLayer {
        GuardLayer(self.clone())
    }
}

/// The front of every request (see the module doc).
#[derive(Clone)]
pub struct GuardLayer(Guard);

impl<S> tower_layer::Layer<S> for GuardLayer {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guarded {
            inner,
            guard: self.0.clone(),
        }
    }
}

/// A service behind [`GuardLayer`].
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    guard: Guard,
}

impl<S> tower_service::Service<Request> for Guarded<S>
where
    S: tower_service::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = GuardedFuture<TaskLocalFuture<Uri, S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        self.run_with(
            req,
            |body, deadline| Body::new(DeadlineBody::new(body, deadline)),
            |inner, req, _| inner.call(req),
            error::with_uri,
        )
    }
}

impl<S> Guarded<S> {
    /// [`Guarded`]'s answer to `req`: its body given to the inner service as `deadlined` makes
    /// it of the body and its deadline (boxed again for the router, which takes only axum's
    /// `Body`; as it is for the issue routes, [`crate::hot`], which read any body), and the
    /// inner service asked through `call`, which also gets the instant the guard took the
    /// request (the issue routes time their answer from it); its answer is kept with the URI
    /// by `keep` (for the guard's own answers, and the task-local of a routed request).
    pub(crate) fn run_with<B, D, F, W>(
        &mut self,
        req: axum::http::Request<B>,
        deadlined: impl FnOnce(B, Instant) -> D,
        call: impl FnOnce(&mut S, axum::http::Request<D>, Instant) -> F,
        keep: impl FnOnce(Uri, F) -> W,
    ) -> GuardedFuture<W>
    where
        W: KeepsUri,
    {
        let uri = req.uri().clone();
        let exempt = matches!(uri.path(), "/health" | "/ready" | "/metrics");
        let slot = if exempt {
            None
        } else {
            match Arc::clone(&self.guard.slots).try_acquire_owned() {
                Ok(slot) => Some(slot),
                Err(_) => {
                    metrics::counter!("issuer_http_requests_shed_total").increment(1);
                    return GuardedFuture::Answered {
                        response: Some(ApiError::Overloaded.answer_at(uri.path())),
                    };
                }
            }
        };
        let now = Instant::now();
        let body_deadline = now + self.guard.body_timeout;
        let req = req.map(|body| deadlined(body, body_deadline));
        GuardedFuture::Running {
            inner: keep(uri, call(&mut self.inner, req, now)),
            timer: None,
            timer_polled_by: None,
            body_deadline,
            deadline: now + self.guard.request_timeout,
            _slot: slot,
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`Guarded`] service.
    #[project = GuardedProj]
    pub enum GuardedFuture<F> {
        /// Answered before the inner service was called (no slot free).
        Answered { response: Option<Response> },
        /// The inner service's answer, under the deadline.
        Running {
            #[pin]
            inner: F,
            #[pin]
            timer: Option<Sleep>,
            timer_polled_by: Option<Waker>,
            body_deadline: Instant,
            deadline: Instant,
            _slot: Option<OwnedSemaphorePermit>,
        },
    }
}

impl<F> Future for GuardedFuture<F>
where
    F: KeepsUri<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GuardedProj::Answered { response } => Poll::Ready(Ok(response
                .take()
                .expect("a guarded future is not polled after it answered"))),
            GuardedProj::Running {
                mut inner,
                mut timer,
                timer_polled_by,
                body_deadline,
                deadline,
                ..
            } => {
                if let Poll::Ready(Ok(response)) = inner.as_mut().poll(cx) {
                    if response.status() == StatusCode::METHOD_NOT_ALLOWED
                        && !response.headers().contains_key(header::CONTENT_TYPE)
                        && let Some(uri) = inner.take_uri()
                    {
                        return Poll::Ready(Ok(ApiError::MethodNotAllowed.answer_at(uri.path())));
                    }
                    return Poll::Ready(Ok(response));
                }
                if timer.is_none() {
                    timer.set(Some(tokio::time::sleep_until((*body_deadline).min(*deadline))));
                }
                let Some(mut timer) = timer.as_pin_mut() else {
                    unreachable!("the timer was set above")
                };
                let expired = loop {
                    if poll_timer(timer.as_mut(), timer_polled_by, cx).is_pending() {
                        break false;
                    }
                    if timer.deadline() >= *deadline {
                        break true;
                    }
                    // The body's deadline passed: the timer moves on to the answer's, and the
                    // answer is polled once more, now past it (a body still waited on fails).
                    timer.as_mut().reset(*deadline);
                    *timer_polled_by = None;
                    cx.waker().wake_by_ref();
                };
                if !expired {
                    return Poll::Pending;
                }
                metrics::counter!("issuer_http_requests_timed_out_total").increment(1);
                let response = match inner.take_uri() {
                    Some(uri) => ApiError::Timeout.answer_at(uri.path()),
                    None => ApiError::Timeout.into_response(),
                };
                Poll::Ready(Ok(response))
            }
        }
    }
}

/// A guarded answer that keeps its request's URI for the guard's own answers (`405`, `503`).
pub trait KeepsUri: Future {
    /// The request's URI, the first time.
    fn take_uri(self: Pin<&mut Self>) -> Option<Uri>;
}

impl<F: Future> KeepsUri for TaskLocalFuture<Uri, F> {
    fn take_uri(self: Pin<&mut Self>) -> Option<Uri> {
        self.take_value()
    }
}

pin_project_lite::pin_project! {
    /// An answer beside its request's URI, for a future that answers its own errors with the
    /// path it holds (the issue routes, [`crate::hot`]): entering and leaving the task-local
    /// of [`error::with_uri`] on each of its polls cost an issue request about 450
    /// instructions.
    pub struct WithUri<F> {
        #[pin]
        inner: F,
        uri: Option<Uri>,
    }
}

impl<F> WithUri<F> {
    /// `inner`, kept with `uri`.
    pub fn new(uri: Uri, inner: F) -> Self {
        Self {
            inner,
            uri: Some(uri),
        }
    }
}

impl<F: Future> Future for WithUri<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<F: Future> KeepsUri for WithUri<F> {
    fn take_uri(self: Pin<&mut Self>) -> Option<Uri> {
        self.project().uri.take()
    }
}

/// Middleware of the routes that need Postgres: `503` at once while it is known to be down
/// (see [`engine::Engine::db_down`]), rather than every request waiting out the pool's
/// connection attempts.
pub async fn require_db(State(engine): State<engine::Engine>, req: Request, next: Next) -> Response {
    if engine.db_down() {
        return ApiError::Issuer(issuance_core::Error::DbDown).into_response();
    }
    next.run(req).await
}

/// A body that fails with [`BodyTimedOut`] when it is waited on past its deadline. It has no
/// timer: [`GuardedFuture`]'s wakes the answer at that deadline, and the body, polled then,
/// fails.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Instant,
}

impl<B> DeadlineBody<B> {
    /// `inner`, failing when it is still incomplete at `deadline`.
    pub fn new(inner: B, deadline: Instant) -> Self {
        Self { inner, deadline }
    }
}

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if Instant::now() >= self.deadline {
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
