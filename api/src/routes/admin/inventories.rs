//! `/api/v1/admin/coupon-inventories`.

use admin::inventories::{self, DEFAULT_SORT, Inventory, SORT_FIELDS};
use axum::{Json, extract::State, http::StatusCode};
use issuance_core::{
    discount::Discount,
    enums::InventoryStatus,
    paging::{Page, Sort},
};
use serde::{Deserialize, Serialize};
use store::coupon_inventories::{InventoryFields, InventoryFilter};
use utoipa::{IntoParams, ToSchema};

use crate::params::{instant, keyword, kst, paging, period};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppJson, AppPath, AppQuery},
    state::AppState,
};

/// Create and update body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"eventId": 1, "inventoryName": "A쿠폰", "usableFromAt": "2026-06-21T09:00:00", "usableUntilAt": "2026-07-31T21:00:00", "totalCount": 10000, "inventoryStatus": "READY", "discount": {"type": "PERCENT", "value": 10, "maxDiscount": 3000}}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InventoryBody {
    event_id: i64,
    inventory_name: String,
    usable_from_at: String,
    usable_until_at: String,
    total_count: i64,
    #[serde(default)]
    inventory_status: Option<InventoryStatus>,
    #[serde(default)]
    discount: Option<Discount>,
}

impl InventoryBody {
    fn fields(self) -> Result<InventoryFields, ApiError> {
        Ok(InventoryFields {
            usable_from_at: instant("usableFromAt", &self.usable_from_at)?,
            usable_until_at: instant("usableUntilAt", &self.usable_until_at)?,
            event_id: self.event_id,
            inventory_name: self.inventory_name,
            total_count: self.total_count,
            inventory_status: self.inventory_status,
            discount: self.discount,
        })
    }
}

/// List query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    inventory_status: Option<InventoryStatus>,
    event_id: Option<i64>,
    keyword: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    #[param(minimum = 0)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
}

/// An inventory with its live issued count.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryView {
    inventory_id: i64,
    event_id: i64,
    inventory_name: String,
    total_count: i32,
    issued_count: i64,
    inventory_status: InventoryStatus,
    #[schema(format = DateTime)]
    usable_from_at: String,
    #[schema(format = DateTime)]
    usable_until_at: String,
    discount: Option<Discount>,
    created_by: String,
    #[schema(format = DateTime)]
    created_at: String,
    updated_by: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<Inventory> for InventoryView {
    fn from(i: Inventory) -> Self {
        let discount = i.row.discount();
        let r = i.row;
        Self {
            inventory_id: r.inventory_id,
            event_id: r.event_id,
            inventory_name: r.inventory_name,
            total_count: r.total_count,
            issued_count: i.issued_count,
            inventory_status: r.inventory_status,
            usable_from_at: kst(r.usable_from_at),
            usable_until_at: kst(r.usable_until_at),
            discount,
            created_by: r.created_by,
            created_at: kst(r.created_at),
            updated_by: r.updated_by,
            updated_at: kst(r.updated_at),
        }
    }
}

/// A deletion.
#[derive(Serialize, ToSchema)]
#[schema(as = DeletedInventoryView)]
#[serde(rename_all = "camelCase")]
pub struct DeletedView {
    inventory_id: i64,
    #[schema(format = DateTime)]
    deleted_at: String,
}

/// `POST /coupon-inventories` → 201.
#[utoipa::path(
    post, path = "/api/v1/admin/coupon-inventories", tag = "admin", request_body = InventoryBody,
    responses(
        (status = 201, description = "Created", body = InventoryView),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    admin: Admin,
    AppJson(body): AppJson<InventoryBody>,
) -> Result<(StatusCode, Json<InventoryView>), ApiError> {
    let created = inventories::create(&st.engine, &admin.actor(), body.fields()?).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// `PUT /coupon-inventories/{id}` (only while READY).
#[utoipa::path(
    put, path = "/api/v1/admin/coupon-inventories/{inventoryId}", tag = "admin", request_body = InventoryBody, params(("inventoryId" = i64, Path, minimum = 1, description = "The inventory")),
    responses(
        (status = 200, description = "OK", body = InventoryView),
        (status = 404, description = "`COUPON_INVENTORY_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn update(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<InventoryBody>,
) -> Result<Json<InventoryView>, ApiError> {
    let updated = inventories::update(&st.engine, &admin.actor(), id, body.fields()?).await?;
    Ok(Json(updated.into()))
}

/// `DELETE /coupon-inventories/{id}` (soft; only while READY and without batches).
#[utoipa::path(
    delete, path = "/api/v1/admin/coupon-inventories/{inventoryId}", tag = "admin", params(("inventoryId" = i64, Path, minimum = 1, description = "The inventory")),
    responses(
        (status = 200, description = "OK", body = DeletedView),
        (status = 404, description = "`COUPON_INVENTORY_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<DeletedView>, ApiError> {
    let at = inventories::delete(&st.engine, &admin.actor(), id).await?;
    Ok(Json(DeletedView {
        inventory_id: id,
        deleted_at: kst(at),
    }))
}

/// `GET /coupon-inventories/{id}`.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-inventories/{inventoryId}", tag = "admin", params(("inventoryId" = i64, Path, minimum = 1, description = "The inventory")),
    responses(
        (status = 200, description = "OK", body = InventoryView),
        (status = 404, description = "`COUPON_INVENTORY_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<InventoryView>, ApiError> {
    Ok(Json(inventories::find(&st.engine, id).await?.into()))
}

/// `GET /coupon-inventories` with filters, sort and paging.
#[utoipa::path(
    get, path = "/api/v1/admin/coupon-inventories", tag = "admin", params(ListParams),
    responses(
        (status = 200, description = "OK", body = Page<InventoryView>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<Json<Page<InventoryView>>, ApiError> {
    let filter = InventoryFilter {
        status: q.inventory_status,
        event_id: q.event_id,
        keyword: keyword(q.keyword),
        period: period(&q.from, &q.to)?,
        sort: Sort::parse(q.sort.as_deref(), SORT_FIELDS, DEFAULT_SORT)?,
        paging: paging(q.page, q.size)?,
    };
    Ok(Json(
        inventories::list(&st.engine, &filter)
            .await?
            .map(InventoryView::from),
    ))
}
