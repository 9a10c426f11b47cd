//! `/health` (the process answers), `/ready` (Redis and Postgres answer), `/metrics`.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
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

/// 200 when Redis and Postgres both answer, 503 otherwise, saying which.
#[utoipa::path(
    get, path = "/ready", tag = "ops", security(()),
    responses(
        (status = 200, description = "Both answer", body = Readiness),
        (status = 503, description = "One does not", body = Readiness),
    )
)]
pub async fn ready(State(st): State<AppState>) -> impl IntoResponse {
    let r = issuer::connect::probe(st.engine.redis(), st.engine.db()).await;
    let status = StatusCode::from_u16(r.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(r))
}

/// Prometheus text. Measured at scrape time: the stream lag, whether Redis and Postgres
/// answer, and the issued and remaining quantity of every event and coupon batch issuing now.
#[utoipa::path(
    get, path = "/metrics", tag = "ops", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    issuer::connect::probe(st.engine.redis(), st.engine.db()).await;
    if let Err(e) = issuer::telemetry::record_issuance(&st.engine).await {
        tracing::warn!(error = %e, "issuance gauges unavailable");
    }
    match issuer::stream::total_lag(st.engine.redis(), st.engine.keys()).await {
        Ok(lag) => issuer::telemetry::record_lag(&lag),
        Err(e) => tracing::warn!(error = %e, "stream lag unavailable"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        st.metrics.render(),
    )
}
