//! `GET /api/v1/admin/dashboard`, cached for a few seconds in Redis.

use admin::dashboard::{self, Dashboard};
use axum::{Json, extract::State};

use crate::{error::ApiError, extract::Admin, state::AppState};

/// Events by status, live issuance, jobs in flight.
#[utoipa::path(
    get, path = "/api/v1/admin/dashboard", tag = "admin",
    responses(
        (status = 200, description = "OK", body = Dashboard),
    )
)]
pub async fn show(State(st): State<AppState>, _admin: Admin) -> Result<Json<Dashboard>, ApiError> {
    Ok(Json(dashboard::dashboard(&st.engine, st.dashboard).await?))
}
