//! Per-request bounds (see [`crate::server`] for the per-connection ones).
//!
//! [`guard`] runs first on every request: it takes one of [`Guard::max_in_flight`] slots or
//! answers `503 SERVICE_UNAVAILABLE` with `Retry-After: 1` at once, gives the body a deadline
//! (a body still arriving then fails to read, and the extractor answers `408 REQUEST_TIMEOUT`),
//! and gives the whole answer a deadline (`503` when it passes; dropping the handler's future
//! cancels its Redis and Postgres calls and returns their connections to the pools). `/health`,
//! `/ready` and `/metrics` skip the slot, so a load balancer and Prometheus still see an
//! overloaded process.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};
use tokio::{
    sync::Semaphore,
    time::{Instant, Sleep},
};

use crate::error::{ApiError, BodyTimedOut};

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
}

/// The middleware (see the module doc).
pub async fn guard(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    let exempt = matches!(req.uri().path(), "/health" | "/ready" | "/metrics");
    let _slot = if exempt {
        None
    } else {
        match Arc::clone(&guard.slots).try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                metrics::counter!("issuer_http_requests_shed_total").increment(1);
                return ApiError::Overloaded.into_response();
            }
        }
    };
    let body_deadline = Instant::now() + guard.body_timeout;
    let req = req.map(|body| Body::new(DeadlineBody::new(body, body_deadline)));
    match tokio::time::timeout(guard.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("issuer_http_requests_timed_out_total").increment(1);
            ApiError::Timeout.into_response()
        }
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

/// A body that fails with [`BodyTimedOut`] when it is still incomplete at its deadline. The
/// timer is made only when the body is not ready at once (a small JSON body usually arrives
/// with the head), so most requests cost no timer.
struct DeadlineBody {
    inner: Body,
    deadline: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Body, deadline: Instant) -> Self {
        Self {
            inner,
            deadline,
            timer: None,
        }
    }
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(BodyTimedOut.into()))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
