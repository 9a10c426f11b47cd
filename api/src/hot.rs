//! The two issue routes, served before the router.
//!
//! Nearly every request of an opening is `POST /events/{eventKey}/tickets` or
//! `POST /api/v1/coupons/{couponId}/issue`. Through axum's router each one paid for the path
//! match, the insertion of its parameters and its matched path into the request's extensions
//! (two allocations), the boxed route and the generic extractors (docs/request-cost.md).
//! [`App`] recognises these two paths itself with a few comparisons and answers them with the
//! same handler bodies, behind the same [`crate::guard`], with the same metrics, reading the
//! request with the same extractors in the handler's order (the user first: `401` before `400`).
//!
//! Every other request goes to the router, and so does either path spelled in a way the
//! router's extractors would decode or refuse (a `%` in the key, a coupon id that is not a
//! plain number): what a request is answered never depends on which way it went.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    Router,
    body::{Body, Bytes},
    http::{Method, Request, request::Parts},
    response::Response,
    routing::future::RouteFuture,
};
use issuance_core::text::every_byte;
use tower_layer::Layer;

use crate::{
    error::ApiError,
    extract::{AdmissionPass, AuthUser, UserBody, check_json_type, read_body},
    guard::{DeadlineBody, Guarded, GuardedFuture, WithUri},
    routes::{coupons, tickets},
    state::AppState,
    telemetry::RouteMetrics,
};

/// The application: the two issue routes served here, everything else by the router.
#[derive(Clone)]
pub struct App {
    router: Router,
    hot: Guarded<Hot>,
}

impl App {
    /// `router` with the issue routes answered ahead of it, from `state`, behind its guard.
    pub fn new(router: Router, state: AppState) -> Self {
        let hot = state.guard.layer().layer(Hot { state });
        Self { router, hot }
    }
}

impl<B> tower_service::Service<axum::http::Request<B>> for App
where
    B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = AppFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The router and the guard are always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        // The method first: every other request (`/health` among them) skips the path check.
        let served = match (req.method() == Method::POST).then(|| HotRoute::of(req.uri().path())) {
            Some(Some(HotRoute::Ticket(_))) => Some(Served::Ticket),
            Some(Some(HotRoute::Coupon(id))) => Some(Served::Coupon(id)),
            _ => None,
        };
        if let Some(served) = served {
            // The body as it came, under the guard's deadline: not boxed twice as the router's.
            AppFuture::Hot {
                inner: self.hot.run_with(
                    req,
                    DeadlineBody::new,
                    |hot, req, now| hot.serve(req, served, now.into_std()),
                    WithUri::new,
                ),
            }
        } else {
            AppFuture::Routed {
                inner: self.router.call(req.map(Body::new)),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of [`App`]: the router's, or an issue route's.
    #[project = AppProj]
    pub enum AppFuture {
        Routed { #[pin] inner: RouteFuture<Infallible> },
        Hot { #[pin] inner: GuardedFuture<WithUri<HotFuture>> },
    }
}

impl Future for AppFuture {
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            AppProj::Routed { inner } => inner.poll(cx),
            AppProj::Hot { inner } => inner.poll(cx),
        }
    }
}

type HotFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The issue routes' metrics, under the labels the router's [`crate::telemetry::TrackLayer`]
/// would give them.
static TICKET_METRICS: RouteMetrics = RouteMetrics::new("POST", HotRoute::TICKET);
static COUPON_METRICS: RouteMetrics = RouteMetrics::new("POST", HotRoute::COUPON);

/// The issue routes (behind the guard in [`App`]).
#[derive(Clone)]
pub struct Hot {
    state: AppState,
}

impl Hot {
    /// The answer to `req`, a request of the route `served` ([`App`] recognised it), timed
    /// from `started`.
    fn serve<B>(&mut self, req: Request<DeadlineBody<B>>, served: Served, started: Instant) -> HotFuture
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let st = self.state.clone();
        // The head is read before the answer's future is made, which keeps only what the rest
        // needs: a future of more than 1 KiB takes mimalloc's slow path (about 500 instructions
        // on every request).
        let (parts, body) = req.into_parts();
        let head = read_head(&st, &parts);
        let metrics = match served {
            Served::Ticket => &TICKET_METRICS,
            Served::Coupon(_) => &COUPON_METRICS,
        };
        // The path outlives the request's parts; [`App`] recognised the route from it.
        let path = parts
            .uri
            .into_parts()
            .path_and_query
            .expect("a recognised route has a path");
        Box::pin(async move {
            let answer = match served {
                Served::Ticket => match read_body_after(head, body).await {
                    Ok((auth, pass, body)) => {
                        let key = HotRoute::ticket_key(path.path());
                        tickets::issue_for(&st, auth, pass, key, body).await
                    }
                    Err(e) => Err(e),
                },
                Served::Coupon(id) => match read_body_after(head, body).await {
                    Ok((auth, pass, body)) => coupons::issue_for(&st, auth, pass, id, body).await,
                    Err(e) => Err(e),
                },
            };
            // The error body's path from the one at hand, not from a task-local (see
            // [`WithUri`]).
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => e.answer_at(path.path()),
            };
            metrics.record(answer.status(), started);
            Ok(answer)
        })
    }
}

/// An issue request's caller and waiting-room pass, read as the routed handler's extractors
/// read them and in their order, and its content type checked: `401` before `400`.
fn read_head(st: &AppState, parts: &Parts) -> Result<(AuthUser, Option<String>), ApiError> {
    let auth = AuthUser::from_headers(&parts.headers, st)?;
    let AdmissionPass(pass) = AdmissionPass::from_headers(&parts.headers);
    check_json_type(&parts.headers)?;
    Ok((auth, pass))
}

/// The body of a request whose head read as `head`, read only when the head was good.
async fn read_body_after<T, B>(
    head: Result<(AuthUser, Option<String>), ApiError>,
    body: B,
) -> Result<(AuthUser, Option<String>, T), ApiError>
where
    T: UserBody,
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    let (auth, pass) = head?;
    let body = T::parse(&read_body(body).await?)?;
    Ok((auth, pass, body))
}

/// An issue route as [`App`] recognised it, handed to [`Hot`] without its borrow of the path
/// (recognising a path again cost about 170 instructions of an issue request).
#[derive(Clone, Copy)]
enum Served {
    Ticket,
    Coupon(i64),
}

/// An issue route recognised from a request's path.
#[derive(Debug, PartialEq, Eq)]
enum HotRoute<'a> {
    /// `/events/{eventKey}/tickets`, with a key that needs no decoding.
    Ticket(&'a str),
    /// `/api/v1/coupons/{couponId}/issue`, with an id of plain digits.
    Coupon(i64),
}

impl<'a> HotRoute<'a> {
    const TICKET: &'static str = "/events/{eventKey}/tickets";
    const COUPON: &'static str = "/api/v1/coupons/{couponId}/issue";

    /// What stands for the key in a path of the ticket route's shape, unchecked.
    fn ticket_part(path: &str) -> Option<&str> {
        path.strip_prefix("/events/")?.strip_suffix("/tickets")
    }

    /// The event key of a path recognised as [`HotRoute::Ticket`].
    fn ticket_key(path: &str) -> &str {
        Self::ticket_part(path).expect("a path recognised as a ticket route")
    }

    /// The route `path` is, when it is one of the two and reads as the router would read it.
    fn of(path: &'a str) -> Option<Self> {
        if let Some(key) = Self::ticket_part(path) {
            let plain =
                !key.is_empty() && every_byte(key, |b| b.is_ascii_graphic() & (b != b'/') & (b != b'%'));
            return plain.then_some(HotRoute::Ticket(key));
        }
        let id = path.strip_prefix("/api/v1/coupons/")?.strip_suffix("/issue")?;
        // Up to 18 digits always fit an i64.
        if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        id.parse().ok().map(HotRoute::Coupon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_spellings_of_the_two_routes_are_recognised() {
        assert_eq!(HotRoute::of("/events/e-1/tickets"), Some(HotRoute::Ticket("e-1")));
        assert_eq!(
            HotRoute::of("/api/v1/coupons/42/issue"),
            Some(HotRoute::Coupon(42))
        );
        assert_eq!(
            HotRoute::of("/api/v1/coupons/007/issue"),
            Some(HotRoute::Coupon(7))
        );
        for routed in [
            "/events//tickets",
            "/events/a/b/tickets",
            "/events/e%2D1/tickets",
            "/events/e-1/tickets/",
            "/events/e-1",
            "/users/7/tickets",
            "/api/v1/coupons//issue",
            "/api/v1/coupons/-1/issue",
            "/api/v1/coupons/+1/issue",
            "/api/v1/coupons/1234567890123456789/issue",
            "/api/v1/coupons/4%32/issue",
            "/api/v1/coupons/42/issue/",
            "/health",
        ] {
            assert_eq!(HotRoute::of(routed), None, "{routed}");
        }
    }
}
