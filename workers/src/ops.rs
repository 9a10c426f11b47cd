//! `/health`, `/ready` and `/metrics` of a workers process.

use axum::{Json, Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use fred::clients::Pool;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

/// What the endpoints read.
#[derive(Clone)]
pub struct OpsState {
    /// Redis, pinged by `/ready`.
    pub redis: Pool,
    /// Postgres, pinged by `/ready`.
    pub db: PgPool,
    /// The metrics recorder.
    pub metrics: PrometheusHandle,
}

/// The ops router.
pub fn router(state: OpsState) -> Router {
    Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn ready(State(st): State<OpsState>) -> impl IntoResponse {
    let r = issuance_core::connect::probe(&st.redis, &st.db).await;
    let status = StatusCode::from_u16(r.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(r))
}

/// Prometheus text; coupon jobs per status and live jobs' progress are measured now.
async fn metrics(State(st): State<OpsState>) -> impl IntoResponse {
    issuance_core::connect::probe(&st.redis, &st.db).await;
    if let Err(e) = admin::gauges::record_jobs(&st.db).await {
        tracing::warn!(error = %e, "job gauges unavailable");
    }
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}
