//! `/health` (the process answers), `/ready` (the hot path works: Redis answers; the body also
//! says whether Postgres does), `/metrics`.

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use issuance_core::connect::Readiness;

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
