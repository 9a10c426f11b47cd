//! Coupon jobs: `POST /coupon-batches/{id}/generate-coupons`, `POST
//! /coupon-batches/{id}/partner-codes` (a `text/csv` body), `GET /coupon-jobs`,
//! `GET /coupon-jobs/{jobId}`, `POST /coupon-jobs/{jobId}/cancel`.

use admin::jobs;
use axum::{
    Json,
    body::Bytes,
    extract::{State, rejection::BytesRejection},
    http::{HeaderMap, StatusCode, header},
};
use issuance_core::{
    enums::{JobStatus, JobType},
    paging::Page,
};
use serde::{Deserialize, Serialize};
use store::coupon_jobs::{Job, JobFilter};
use utoipa::{IntoParams, ToSchema};

use crate::params::{kst, paging};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppPath, AppQuery},
    state::AppState,
};

/// The 202 answer of a job request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    job_id: String,
    job_type: JobType,
    job_status: JobStatus,
    message: String,
}

impl From<Job> for Accepted {
    fn from(j: Job) -> Self {
        Self {
            job_id: j.job_id.to_string(),
            job_type: j.job_type,
            job_status: j.job_status,
            message: j.message,
        }
    }
}

/// `processed` of `total`.
#[derive(Serialize, ToSchema)]
pub struct Progress {
    processed: i32,
    total: i32,
    percent: f64,
}

/// A job.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    job_id: String,
    job_type: JobType,
    job_status: JobStatus,
    batch_id: i64,
    progress: Progress,
    message: String,
    result: Option<serde_json::Value>,
    attempts: i32,
    requested_by: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime)]
    started_at: Option<String>,
    #[schema(format = DateTime)]
    finished_at: Option<String>,
}

impl From<Job> for JobView {
    fn from(j: Job) -> Self {
        Self {
            progress: Progress {
                processed: j.processed,
                total: j.total,
                percent: j.percent(),
            },
            job_id: j.job_id.to_string(),
            job_type: j.job_type,
            job_status: j.job_status,
            batch_id: j.batch_id,
            message: j.message,
            result: j.result,
            attempts: j.attempts,
            requested_by: j.requested_by,
            created_at: kst(j.created_at),
            updated_at: kst(j.updated_at),
            started_at: j.started_at.map(kst),
            finished_at: j.finished_at.map(kst),
        }
    }
}

/// List query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    job_status: Option<JobStatus>,
    job_type: Option<JobType>,
    batch_id: Option<i64>,
    #[param(minimum = 0)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
}

/// A job id from the path; one that is not a number cannot exist.
fn job_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| issuance_core::Error::NotFound(issuance_core::error::Missing::Job).into())
}

/// Starts generating a batch's codes → 202.
#[utoipa::path(
    post, path = "/api/v1/admin/coupon-batches/{batchId}/generate-coupons", tag = "admin", params(("batchId" = i64, Path, minimum = 1, description = "The batch")),
    responses(
        (status = 202, description = "Accepted; follow it at /coupon-jobs/{jobId}", body = Accepted),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`DUPLICATE_BATCH_JOB_REQUEST`, `COUPONS_ALREADY_GENERATED`", body = ErrorBody),
    )
)]
pub async fn generate(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(batch_id): AppPath<i64>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let job = jobs::request_generation(st.engine.db(), &admin.actor(), batch_id).await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// Accepts a partner CSV (`Content-Type: text/csv`) for a MAPPED batch → 202.
#[utoipa::path(
    post, path = "/api/v1/admin/coupon-batches/{batchId}/partner-codes", tag = "admin", request_body(content = String, content_type = "text/csv", description = "One code per line"), params(("batchId" = i64, Path, minimum = 1, description = "The batch")),
    responses(
        (status = 202, description = "Accepted; follow it at /coupon-jobs/{jobId}", body = Accepted),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`DUPLICATE_BATCH_JOB_REQUEST`, `COUPONS_ALREADY_GENERATED`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`", body = ErrorBody),
    )
)]
pub async fn upload(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(batch_id): AppPath<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if !matches!(media.as_deref(), Some("text/csv" | "text/plain")) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = body?;
    let job = jobs::request_upload(st.engine.db(), &admin.actor(), batch_id, &body).await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// `GET /coupon-jobs/{jobId}` with its progress.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-jobs/{jobId}", tag = "admin", params(("jobId" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "OK", body = JobView),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(raw): AppPath<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(jobs::find(st.engine.db(), job_id(&raw)?).await?.into()))
}

/// `POST /coupon-jobs/{jobId}/cancel`.
#[utoipa::path(
    post, path = "/api/v1/admin/coupon-jobs/{jobId}/cancel", tag = "admin", params(("jobId" = String, Path, description = "The job")),
    responses(
        (status = 200, description = "OK", body = JobView),
        (status = 404, description = "`JOB_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CANNOT_CANCEL_JOB`", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(raw): AppPath<String>,
) -> Result<Json<JobView>, ApiError> {
    Ok(Json(jobs::cancel(st.engine.db(), job_id(&raw)?).await?.into()))
}

/// `GET /coupon-jobs`, newest first.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-jobs", tag = "admin", params(ListParams),
    responses(
        (status = 200, description = "OK", body = Page<JobView>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<Json<Page<JobView>>, ApiError> {
    let filter = JobFilter {
        status: q.job_status,
        job_type: q.job_type,
        batch_id: q.batch_id,
        paging: paging(q.page, q.size)?,
    };
    Ok(Json(
        store::coupon_jobs::list(st.engine.db(), &filter)
            .await?
            .map(JobView::from),
    ))
}
