//! `/api/v1/admin/coupon-batches`.

use admin::batches::{self, Batch, DEFAULT_SORT, SORT_FIELDS};
use axum::{Json, extract::State, http::StatusCode};
use issuance_core::{
    admission::AdmissionFields,
    enums::{BatchStatus, IssueType},
    paging::{Page, Sort},
};
use serde::{Deserialize, Serialize};
use store::coupon_batches::{BatchFields, BatchFilter};
use utoipa::{IntoParams, ToSchema};

use crate::params::{instant, keyword, kst, paging, period};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppJson, AppPath, AppQuery},
    routes::admission::{AdmissionBody, AdmissionView},
    state::AppState,
};

/// Create body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"inventoryId": 1, "batchName": "A쿠폰 1회차", "issueCount": 1000, "issueType": "SELF", "validFromAt": "2026-06-21T09:00:00", "validUntilAt": "2026-06-30T21:00:00", "dailyLimit": 100}))]
#[schema(as = CreateBatchBody)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    inventory_id: i64,
    batch_name: String,
    issue_count: i64,
    issue_type: IssueType,
    valid_from_at: String,
    valid_until_at: String,
    #[serde(default)]
    batch_status: Option<BatchStatus>,
    #[serde(default)]
    daily_limit: Option<i64>,
    /// A waiting room in front of the batch's issue endpoint (SELF batches).
    #[serde(default)]
    admission: Option<AdmissionBody>,
    /// Spread a SELF batch over this many Redis copies (buckets), each on its own cluster
    /// master when there are enough, so its first-come rate is no longer bounded by one Redis
    /// core. 1 (the default) keeps one copy. Set at creation only.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 16, default = 1)]
    shards: Option<i64>,
}

impl CreateBody {
    /// The inventory, and the fields an update can change too. (Written out rather than
    /// `#[serde(flatten)]`, which cannot refuse unknown fields.)
    fn split(self) -> (i64, BatchBody, Option<AdmissionBody>, Option<i64>) {
        let fields = BatchBody {
            batch_name: self.batch_name,
            issue_count: self.issue_count,
            issue_type: self.issue_type,
            valid_from_at: self.valid_from_at,
            valid_until_at: self.valid_until_at,
            batch_status: self.batch_status,
            daily_limit: self.daily_limit,
        };
        (self.inventory_id, fields, self.admission, self.shards)
    }
}

/// Update body (a batch stays in its inventory).
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"batchName": "A쿠폰 1회차", "issueCount": 1000, "issueType": "SELF", "validFromAt": "2026-06-21T09:00:00", "validUntilAt": "2026-06-30T21:00:00", "dailyLimit": 100}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BatchBody {
    batch_name: String,
    issue_count: i64,
    issue_type: IssueType,
    valid_from_at: String,
    valid_until_at: String,
    #[serde(default)]
    batch_status: Option<BatchStatus>,
    #[serde(default)]
    daily_limit: Option<i64>,
}

impl BatchBody {
    fn fields(self) -> Result<BatchFields, ApiError> {
        Ok(BatchFields {
            valid_from_at: instant("validFromAt", &self.valid_from_at)?,
            valid_until_at: instant("validUntilAt", &self.valid_until_at)?,
            batch_name: self.batch_name,
            issue_count: self.issue_count,
            issue_type: self.issue_type,
            batch_status: self.batch_status,
            daily_limit: self.daily_limit,
            admission: AdmissionFields::default(),
            shards: None,
        })
    }
}

/// List query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    batch_status: Option<BatchStatus>,
    inventory_id: Option<i64>,
    issue_type: Option<IssueType>,
    keyword: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    #[param(minimum = 0)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
}

/// A batch with its live issued count and its usable code count.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BatchView {
    batch_id: i64,
    inventory_id: i64,
    batch_name: String,
    batch_number: i32,
    issue_count: i32,
    issue_type: IssueType,
    daily_limit: Option<i32>,
    #[schema(format = DateTime)]
    valid_from_at: String,
    #[schema(format = DateTime)]
    valid_until_at: String,
    batch_status: BatchStatus,
    issued_count: i64,
    code_count: i32,
    created_by: String,
    #[schema(format = DateTime)]
    created_at: String,
    updated_by: String,
    #[schema(format = DateTime)]
    updated_at: String,
    /// The waiting room (SELF batches).
    admission: AdmissionView,
    /// The buckets the batch is spread over (1: one copy).
    shards: i16,
}

impl From<Batch> for BatchView {
    fn from(b: Batch) -> Self {
        let r = b.row;
        Self {
            admission: AdmissionView::from(&r.admission),
            shards: r.shards,
            batch_id: r.batch_id,
            inventory_id: r.inventory_id,
            batch_name: r.batch_name,
            batch_number: r.batch_number,
            issue_count: r.issue_count,
            issue_type: r.issue_type,
            daily_limit: r.daily_limit,
            valid_from_at: kst(r.valid_from_at),
            valid_until_at: kst(r.valid_until_at),
            batch_status: r.batch_status,
            issued_count: b.issued_count,
            code_count: r.code_count,
            created_by: r.created_by,
            created_at: kst(r.created_at),
            updated_by: r.updated_by,
            updated_at: kst(r.updated_at),
        }
    }
}

/// A deletion.
#[derive(Serialize, ToSchema)]
#[schema(as = DeletedBatchView)]
#[serde(rename_all = "camelCase")]
pub struct DeletedView {
    batch_id: i64,
    #[schema(format = DateTime)]
    deleted_at: String,
}

/// `POST /coupon-batches` → 201.
#[utoipa::path(
    post, path = "/api/v1/admin/coupon-batches", tag = "admin", request_body = CreateBody,
    responses(
        (status = 201, description = "Created", body = BatchView),
        (status = 404, description = "`INVENTORY_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    admin: Admin,
    AppJson(body): AppJson<CreateBody>,
) -> Result<(StatusCode, Json<BatchView>), ApiError> {
    let (inventory_id, fields, admission, shards) = body.split();
    let mut fields = fields.fields()?;
    fields.shards = shards;
    if let Some(admission) = admission {
        fields.admission = admission.fields()?;
    }
    let created = batches::create(&st.engine, &admin.actor(), inventory_id, fields).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// `PUT /coupon-batches/{id}` (only while PENDING and untouched by jobs).
#[utoipa::path(
    put, path = "/api/v1/admin/coupon-batches/{batchId}", tag = "admin", request_body = BatchBody, params(("batchId" = i64, Path, minimum = 1, description = "The batch")),
    responses(
        (status = 200, description = "OK", body = BatchView),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn update(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<BatchBody>,
) -> Result<Json<BatchView>, ApiError> {
    let updated = batches::update(&st.engine, &admin.actor(), id, body.fields()?).await?;
    Ok(Json(updated.into()))
}

/// `PATCH /coupon-batches/{id}` body: a SELF batch's quantity and waiting room, live; either
/// or both.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"issueCount": 1500}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuantityBody {
    /// Up within the inventory's `totalCount`, or down to what was issued already and no
    /// further; never below the batch's `dailyLimit`.
    #[schema(minimum = 1, maximum = 10000000)]
    issue_count: Option<i64>,
    /// The waiting room's settings (each absent field stays).
    admission: Option<AdmissionBody>,
}

/// `PATCH /coupon-batches/{id}`: changes a SELF batch's quantity or waiting room while it
/// issues (PENDING or READY).
#[utoipa::path(
    patch, path = "/api/v1/admin/coupon-batches/{batchId}", tag = "admin", request_body = QuantityBody, params(("batchId" = i64, Path, minimum = 1, description = "The batch")),
    responses(
        (status = 200, description = "OK", body = BatchView),
        (status = 400, description = "`INVALID_REQUEST` (out of range, below the daily limit); `CANNOT_MODIFY_COUPON_BATCH` (MAPPED, DISABLED, or a job running); `MAX_COUPON_LIMIT_EXCEEDED`", body = ErrorBody),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`QUANTITY_BELOW_ISSUED`: more were issued already; nothing changed", body = ErrorBody),
    )
)]
pub async fn set_issue_count(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<QuantityBody>,
) -> Result<Json<BatchView>, ApiError> {
    let admission = body.admission.map(AdmissionBody::fields).transpose()?;
    let changed = batches::change(
        &st.engine,
        &admin.actor(),
        id,
        body.issue_count,
        admission.unwrap_or_default(),
    )
    .await?;
    Ok(Json(changed.into()))
}

/// `DELETE /coupon-batches/{id}` (soft; same rule).
#[utoipa::path(
    delete, path = "/api/v1/admin/coupon-batches/{batchId}", tag = "admin", params(("batchId" = i64, Path, minimum = 1, description = "The batch")),
    responses(
        (status = 200, description = "OK", body = DeletedView),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<DeletedView>, ApiError> {
    let at = batches::delete(&st.engine, &admin.actor(), id).await?;
    Ok(Json(DeletedView {
        batch_id: id,
        deleted_at: kst(at),
    }))
}

/// `GET /coupon-batches/{id}`.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-batches/{batchId}", tag = "admin", params(("batchId" = i64, Path, minimum = 1, description = "The batch")),
    responses(
        (status = 200, description = "OK", body = BatchView),
        (status = 404, description = "`COUPON_BATCH_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<BatchView>, ApiError> {
    Ok(Json(batches::find(&st.engine, id).await?.into()))
}

/// `GET /coupon-batches` with filters, sort and paging.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-batches", tag = "admin", params(ListParams),
    responses(
        (status = 200, description = "OK", body = Page<BatchView>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<Json<Page<BatchView>>, ApiError> {
    let filter = BatchFilter {
        status: q.batch_status,
        inventory_id: q.inventory_id,
        issue_type: q.issue_type,
        keyword: keyword(q.keyword),
        period: period(&q.from, &q.to)?,
        sort: Sort::parse(q.sort.as_deref(), SORT_FIELDS, DEFAULT_SORT)?,
        paging: paging(q.page, q.size)?,
    };
    Ok(Json(
        batches::list(&st.engine, &filter).await?.map(BatchView::from),
    ))
}
