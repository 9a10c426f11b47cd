//! Logs and metrics.
//!
//! Metrics names: `http_requests_total{method,route,status}`,
//! `http_request_duration_seconds{method,route}`, `issuer_issue_total{kind,outcome}`,
//! `issuer_stream_lag_entries`, `issuer_stream_lag_seconds`, `issuer_script_reloads_total`,
//! `issuer_meta_rebuilds_total`.

use std::{
    collections::{HashMap, HashSet},
    future::Future,
    pin::Pin,
    sync::{LazyLock, OnceLock, RwLock},
    task::{Context, Poll},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    response::Response,
};
use metrics_exporter_prometheus::PrometheusHandle;

/// Installs the process-wide metrics recorder once and returns its handle. The `metrics`
/// facade has one recorder per process, so several servers in one test process share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = issuance_core::telemetry::exporter()
                .install_recorder()
                .expect("the metrics recorder is installed once per process");
            let upkeep = handle.clone();
            std::thread::spawn(move || {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
            handle
        })
        .clone()
}

/// Initializes logging from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// Counts every routed request by route template and status, and times it (a route layer:
/// it sees the template the router matched).
///
/// The labels are `&'static str`s, so recording them allocates nothing: the method is one of
/// the standard ones (or `other`), and route templates and statuses are interned once each —
/// both are bounded sets (the router's templates, three-digit codes), whatever clients send.
/// A hand-written service, as [`crate::guard::GuardLayer`] and for the same reason.
#[derive(Clone, Copy)]
pub struct TrackLayer;

impl<S> tower_layer::Layer<S> for TrackLayer {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Tracked(inner)
    }
}

/// A route behind [`TrackLayer`].
#[derive(Clone)]
pub struct Tracked<S>(S);

impl<S> tower_service::Service<Request> for Tracked<S>
where
    S: tower_service::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let method = method_label(req.method());
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| intern(p.as_str()));
        TrackedFuture {
            inner: self.0.call(req),
            started,
            method,
            route,
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`Tracked`] route, counted when it is ready.
    pub struct TrackedFuture<F> {
        #[pin]
        inner: F,
        started: Instant,
        method: &'static str,
        route: &'static str,
    }
}

impl<F, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &answer {
            record(this.method, this.route, response.status(), *this.started);
        }
        Poll::Ready(answer)
    }
}

/// Counts and times one answer of `route` to `method`, for [`TrackLayer`].
fn record(method: &'static str, route: &'static str, status: axum::http::StatusCode, started: Instant) {
    let status = status_label(status);
    static DURATIONS: Handles<(Label, Label), metrics::Histogram> = Handles::new();
    static REQUESTS: Handles<(Label, Label, Label), metrics::Counter> = Handles::new();
    DURATIONS
        .get((addr(method), addr(route)), || durations(method, route))
        .record(started.elapsed().as_secs_f64());
    REQUESTS
        .get((addr(method), addr(route), addr(status)), || {
            requests(method, route, status)
        })
        .increment(1);
}

/// The series of a route's answer times.
fn durations(method: &'static str, route: &'static str) -> metrics::Histogram {
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
}

/// The series of a route's answers of one status.
fn requests(method: &'static str, route: &'static str, status: &'static str) -> metrics::Counter {
    metrics::counter!("http_requests_total", "method" => method, "route" => route, "status" => status)
}

/// The handles of one route's two series, for a route served without the router (see
/// [`crate::hot`]): each resolved on its first use, then recorded through directly, where
/// [`TrackLayer`] looks both up by their labels on every answer (about 150 instructions).
pub struct RouteMetrics {
    method: &'static str,
    route: &'static str,
    duration: OnceLock<metrics::Histogram>,
    /// The answers by status, 100..=999.
    requests: [OnceLock<metrics::Counter>; 900],
}

impl RouteMetrics {
    /// The handles of `route` (its template) answered to `method`.
    pub const fn new(method: &'static str, route: &'static str) -> Self {
        Self {
            method,
            route,
            duration: OnceLock::new(),
            requests: [const { OnceLock::new() }; 900],
        }
    }

    /// Counts and times one answer, as [`TrackLayer`] does.
    pub fn record(&self, status: axum::http::StatusCode, started: Instant) {
        let (method, route) = (self.method, self.route);
        self.duration
            .get_or_init(|| durations(method, route))
            .record(started.elapsed().as_secs_f64());
        // StatusCode holds 100..=999 only.
        self.requests[usize::from(status.as_u16()) - 100]
            .get_or_init(|| requests(method, route, status_label(status)))
            .increment(1);
    }
}

/// Metric handles by their labels, each resolved once: recording through a handle is an atomic
/// operation, where the macros build the key and look it up in the registry at every call.
/// Keyed by where the `&'static` labels are, so a lookup hashes a few words — with foldhash:
/// the keys are our own labels' addresses, never a client's input, so SipHash's resistance to
/// chosen keys buys nothing here, and it cost a `/health` request about a thousand instructions.
struct Handles<K, H>(LazyLock<RwLock<HashMap<K, H, foldhash::fast::RandomState>>>);

impl<K: Eq + std::hash::Hash, H: Clone> Handles<K, H> {
    const fn new() -> Self {
        Self(LazyLock::new(RwLock::default))
    }

    fn get(&self, key: K, make: impl FnOnce() -> H) -> H {
        if let Some(found) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return found.clone();
        }
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_insert_with(make)
            .clone()
    }
}

/// The address and length of a `&'static` label: one label, one key (two copies of a label
/// at two addresses only resolve the same series twice).
fn addr(label: &'static str) -> Label {
    (label.as_ptr() as usize, label.len())
}

type Label = (usize, usize);

fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A status code as a `&'static str` label, made once per code: a table lookup, no hashing.
fn status_label(status: axum::http::StatusCode) -> &'static str {
    static LABELS: [OnceLock<&'static str>; 900] = [const { OnceLock::new() }; 900];
    // StatusCode holds 100..=999 only.
    LABELS[usize::from(status.as_u16()) - 100].get_or_init(|| Box::leak(status.as_str().into()))
}

/// `label` as a `&'static str`, leaked the first time it is seen. Only for bounded sets (the
/// router's templates), so foldhash, as for [`Handles`].
fn intern(label: &str) -> &'static str {
    static INTERNED: LazyLock<RwLock<HashSet<&'static str, foldhash::fast::RandomState>>> =
        LazyLock::new(RwLock::default);
    if let Some(found) = INTERNED.read().unwrap_or_else(|e| e.into_inner()).get(label) {
        return found;
    }
    let mut interned = INTERNED.write().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = interned.get(label) {
        return found;
    }
    let leaked: &'static str = Box::leak(label.to_owned().into_boxed_str());
    interned.insert(leaked);
    leaked
}

/// The `outcome` of an issue answer in `issuer_issue_total{kind,outcome}`: the same words for
/// every scope kind. `fresh` says whether an answer that got something made a new issue (a
/// holder getting theirs back is `duplicate`).
pub fn issue_outcome<T>(
    result: &Result<T, issuance_core::Error>,
    fresh: impl Fn(&T) -> bool,
) -> &'static str {
    use issuance_core::Error as E;
    match result {
        Ok(t) if fresh(t) => "issued",
        Ok(_) => "duplicate",
        Err(E::Denied(_, denial)) => denial.label(),
        Err(E::NotFound(_)) => "not_found",
        Err(_) => "error",
    }
}

/// Counts one issue answer (or `rate_limited`) of a scope kind.
pub fn count_issue(kind: issuance_core::error::ScopeKind, outcome: &'static str) {
    static ISSUES: Handles<(Label, Label), metrics::Counter> = Handles::new();
    let kind = kind.as_str();
    ISSUES
        .get(
            (addr(kind), addr(outcome)),
            || metrics::counter!("issuer_issue_total", "kind" => kind, "outcome" => outcome),
        )
        .increment(1);
}
