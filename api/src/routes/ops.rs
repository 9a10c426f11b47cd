//! `/health` (the process answers), `/ready` (the hot path works: Redis answers; the body also
//! says whether Postgres does), `/metrics`.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use std::time::{Duration, Instant};

use issuer::connect::Readiness;

use crate::state::AppState;

/// Always 200 while the process serves.
#[utoipa::path(
    get, path = "/health", tag = "ops", security(()),
    responses((status = 200, description = "The process serves", body = String, content_type = "text/plain"))
)]
pub async fn health() -> &'static str {
    "ok"
}

/// 200 while Redis answers (the hot path works; the body says whether Postgres does too), 503
/// when it does not. Probed at most every 500 ms however often it is asked.
#[utoipa::path(
    get, path = "/ready", tag = "ops", security(()),
    responses(
        (status = 200, description = "Issuing works (Redis answers); the body says whether Postgres answers", body = Readiness),
        (status = 503, description = "Redis does not answer", body = Readiness),
    )
)]
pub async fn ready(State(st): State<AppState>) -> impl IntoResponse {
    let r = st.ops.readiness(&st.engine).await;
    let status = StatusCode::from_u16(r.issuing_http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(r))
}

/// What `/ready` and `/metrics` measure, at most once per interval: both are public, and a
/// flood of them must not become a flood of Postgres queries.
#[derive(Default)]
pub struct OpsMemo {
    ready: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
    gauges: tokio::sync::Mutex<Option<Instant>>,
}

/// How long a readiness probe is reused.
const READY_EVERY: Duration = Duration::from_millis(500);
/// How often the scrape-time gauges are measured.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

impl OpsMemo {
    async fn readiness(&self, engine: &issuer::Engine) -> Readiness {
        let mut last = self.ready.lock().await;
        if let Some((at, r)) = *last
            && at.elapsed() < READY_EVERY
        {
            return r;
        }
        let r = issuer::connect::probe(engine.redis(), engine.db()).await;
        *last = Some((Instant::now(), r));
        r
    }

    /// Measures the gauges unless they were measured within the interval (or are being
    /// measured now).
    async fn refresh_gauges(&self, engine: &issuer::Engine) {
        let Ok(mut last) = self.gauges.try_lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < GAUGES_EVERY) {
            return;
        }
        self.readiness(engine).await;
        if let Err(e) = issuer::telemetry::record_issuance(engine).await {
            tracing::warn!(error = %e, "issuance gauges unavailable");
        }
        match issuer::stream::total_lag(engine.redis(), engine.keys()).await {
            Ok(lag) => issuer::telemetry::record_lag(&lag),
            Err(e) => tracing::warn!(error = %e, "stream lag unavailable"),
        }
        *last = Some(Instant::now());
    }
}

/// Prometheus text. Measured at scrape time: the stream lag, whether Redis and Postgres
/// answer, and the issued and remaining quantity of every event and coupon batch issuing now.
#[utoipa::path(
    get, path = "/metrics", tag = "ops", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    st.ops.refresh_gauges(&st.engine).await;
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}
