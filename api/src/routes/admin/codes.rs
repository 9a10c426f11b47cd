//! A batch's codes: `GET /coupon-batches/{id}/codes` (a page) and
//! `GET /coupon-batches/{id}/codes/export` (every code as a streamed CSV, `code,status`).

use admin::codes;
use axum::{
    Json,
    body::Body,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use futures::TryStreamExt;
use issuance_core::{enums::CodeStatus, paging::Page};
use serde::{Deserialize, Serialize};
use store::coupon_codes::CodeRow;
use utoipa::{IntoParams, ToSchema};

use crate::params::paging;
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppPath, AppQuery},
    state::AppState,
};

/// Query of the page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CodeParams {
    code_status: Option<CodeStatus>,
    #[param(minimum = 0)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
}

/// Query of the export (every code, so no paging).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ExportParams {
    code_status: Option<CodeStatus>,
}

/// One code.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CodeView {
    seq: i32,
    code: String,
    code_status: CodeStatus,
}

impl From<CodeRow> for CodeView {
    fn from(c: CodeRow) -> Self {
        Self {
            seq: c.seq,
            code: c.code,
            code_status: c.status,
        }
    }
}

/// A page of codes by position, optionally of one status.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-batches/{batchId}/codes", tag = "admin", params(("batchId" = i64, Path, minimum = 1, description = "The batch"), CodeParams),
    responses(
        (status = 200, description = "OK", body = Page<CodeView>),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(batch_id): AppPath<i64>,
    AppQuery(q): AppQuery<CodeParams>,
) -> Result<Json<Page<CodeView>>, ApiError> {
    let page = codes::page(st.engine.db(), batch_id, q.code_status, paging(q.page, q.size)?).await?;
    Ok(Json(page.map(CodeView::from)))
}

/// Every code of the batch as CSV, streamed from Postgres in bounded memory.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-batches/{batchId}/codes/export", tag = "admin", params(("batchId" = i64, Path, minimum = 1, description = "The batch"), ExportParams),
    responses(
        (status = 200, description = "`code,status` lines", body = String, content_type = "text/csv"),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn export(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(batch_id): AppPath<i64>,
    AppQuery(q): AppQuery<ExportParams>,
) -> Result<Response, ApiError> {
    let stream = codes::export(st.engine.db(), batch_id, q.code_status).await?;
    let body = Body::from_stream(stream.inspect_err(|e| {
        // Headers are sent already: the connection is cut, so the client sees a broken file.
        tracing::error!(error = %e, "code export interrupted");
    }));
    let disposition = format!("attachment; filename=\"batch-{batch_id}-codes.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
