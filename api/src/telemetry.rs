//! Logs and metrics.
//!
//! Metrics names: `http_requests_total{method,route,status}`,
//! `http_request_duration_seconds{method,route}`, `issuer_issue_total{kind,outcome}`,
//! `issuer_stream_lag_entries`, `issuer_stream_lag_seconds`, `issuer_script_reloads_total`,
//! `issuer_meta_rebuilds_total`.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
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

/// Counts every routed request by route template and status, and times it.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("http_request_duration_seconds", "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!("http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
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
    metrics::counter!("issuer_issue_total", "kind" => kind.as_str(), "outcome" => outcome).increment(1);
}
