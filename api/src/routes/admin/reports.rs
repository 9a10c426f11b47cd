//! Outbox and best-products operations: `GET /outbox?status=&orderId=&page=&size=`,
//! `GET /outbox/{id}`, `POST /outbox/{id}/retry` (a DEAD record), `POST /outbox/retry-dead`
//! (all of them), and `POST /best-products` (compute today's KST snapshot now).

use axum::{Json, extract::State};
use chrono::Utc;
use issuance_core::{enums::OutboxStatus, error::Missing, paging::Page};
use serde::{Deserialize, Serialize};
use shop::{best_products, outbox};
use store::outbox::{self as outbox_rows, OutboxRecord};
use utoipa::{IntoParams, ToSchema};

use crate::params::{kst, paging};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppPath, AppQuery},
    routes::best_products::BestView,
    state::AppState,
};

/// An outbox record.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxView {
    outbox_id: i64,
    event_type: String,
    order_id: i64,
    status: OutboxStatus,
    attempts: i32,
    #[schema(format = DateTime)]
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    delivered_at: Option<String>,
    payload: serde_json::Value,
}

impl From<OutboxRecord> for OutboxView {
    fn from(r: OutboxRecord) -> Self {
        Self {
            next_attempt_at: (r.status == OutboxStatus::Pending).then(|| kst(r.next_attempt_at)),
            outbox_id: r.outbox_id,
            event_type: r.event_type,
            order_id: r.order_id,
            status: r.status,
            attempts: r.attempts,
            last_error: r.last_error,
            created_at: kst(r.created_at),
            delivered_at: r.delivered_at.map(kst),
            payload: r.payload,
        }
    }
}

/// List query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct OutboxQuery {
    status: Option<OutboxStatus>,
    order_id: Option<i64>,
    #[param(minimum = 0)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
}

/// `{retried}`.
#[derive(Serialize, ToSchema)]
pub struct Retried {
    retried: u64,
}

/// An outbox id from the path; one that is not a number cannot exist.
fn outbox_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| issuance_core::Error::NotFound(Missing::OutboxRecord).into())
}

/// `GET /outbox`, newest first.
#[utoipa::path(
    get, path = "/api/v1/admin/outbox", tag = "admin", params(OutboxQuery),
    responses(
        (status = 200, description = "OK", body = Page<OutboxView>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    AppQuery(q): AppQuery<OutboxQuery>,
) -> Result<Json<Page<OutboxView>>, ApiError> {
    let page = outbox_rows::list(st.engine.db(), q.status, q.order_id, paging(q.page, q.size)?).await?;
    Ok(Json(page.map(OutboxView::from)))
}

/// `GET /outbox/{id}`.
#[utoipa::path(
    get, path = "/api/v1/admin/outbox/{outboxId}", tag = "admin", params(("outboxId" = String, Path, description = "The outbox record")),
    responses(
        (status = 200, description = "OK", body = OutboxView),
        (status = 404, description = "`OUTBOX_EVENT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(raw): AppPath<String>,
) -> Result<Json<OutboxView>, ApiError> {
    let record = outbox::find(st.engine.db(), outbox_id(&raw)?).await?;
    Ok(Json(record.into()))
}

/// `POST /outbox/{id}/retry`: a DEAD record is due again, attempts counted afresh.
#[utoipa::path(
    post, path = "/api/v1/admin/outbox/{outboxId}/retry", tag = "admin", params(("outboxId" = String, Path, description = "The outbox record")),
    responses(
        (status = 200, description = "OK", body = OutboxView),
        (status = 404, description = "`OUTBOX_EVENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`OUTBOX_NOT_DEAD`", body = ErrorBody),
    )
)]
pub async fn retry(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(raw): AppPath<String>,
) -> Result<Json<OutboxView>, ApiError> {
    Ok(Json(
        outbox::retry(st.engine.db(), outbox_id(&raw)?).await?.into(),
    ))
}

/// `POST /outbox/retry-dead`: every DEAD record is due again.
#[utoipa::path(
    post, path = "/api/v1/admin/outbox/retry-dead", tag = "admin",
    responses(
        (status = 200, description = "OK", body = Retried),
    )
)]
pub async fn retry_dead(State(st): State<AppState>, _admin: Admin) -> Result<Json<Retried>, ApiError> {
    Ok(Json(Retried {
        retried: outbox_rows::revive_all(st.engine.db()).await?,
    }))
}

/// `POST /best-products`: computes today's (KST) snapshot now, as the nightly job would.
#[utoipa::path(
    post, path = "/api/v1/admin/best-products", tag = "admin",
    responses(
        (status = 200, description = "OK", body = BestView),
    )
)]
pub async fn compute_best(State(st): State<AppState>, _admin: Admin) -> Result<Json<BestView>, ApiError> {
    let day = issuance_core::clock::kst_date(Utc::now());
    Ok(Json(
        Some(best_products::compute(st.engine.db(), day).await?).into(),
    ))
}
