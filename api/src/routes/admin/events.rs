//! `/api/v1/admin/events`: marketing events and their lifecycle.

use admin::events::{self, DEFAULT_SORT, SORT_FIELDS};
use axum::{Json, extract::State, http::StatusCode};
use issuance_core::{
    enums::EventStatus,
    paging::{Page, Sort},
};
use serde::{Deserialize, Serialize};
use store::events::{AdminEvent, EventFields, EventFilter};
use utoipa::{IntoParams, ToSchema};

use crate::params::{instant, keyword, kst, paging, period};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppJson, AppPath, AppQuery},
    state::AppState,
};

/// Create and update body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"eventName": "여름 프로모션", "description": "다른 회사와 협업", "fromAt": "2026-06-21T09:00:00", "untilAt": "2026-06-30T21:00:00", "eventStatus": "READY"}))]
#[schema(as = AdminEventBody)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventBody {
    event_name: String,
    #[serde(default)]
    description: Option<String>,
    from_at: String,
    until_at: String,
    #[serde(default)]
    event_status: Option<EventStatus>,
}

impl EventBody {
    fn fields(self) -> Result<EventFields, ApiError> {
        Ok(EventFields {
            from_at: instant("fromAt", &self.from_at)?,
            until_at: instant("untilAt", &self.until_at)?,
            event_name: self.event_name,
            description: self.description.unwrap_or_default(),
            event_status: self.event_status,
        })
    }
}

/// Status change body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"eventStatus": "ONGOING"}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StatusBody {
    event_status: EventStatus,
}

/// List query.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    event_status: Option<EventStatus>,
    keyword: Option<String>,
    from: Option<String>,
    to: Option<String>,
    sort: Option<String>,
    #[param(minimum = 0)]
    page: Option<i64>,
    #[param(minimum = 1, maximum = 100)]
    size: Option<i64>,
}

/// An event.
#[derive(Serialize, ToSchema)]
#[schema(as = AdminEventView)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    event_id: i64,
    event_name: String,
    description: String,
    #[schema(format = DateTime)]
    from_at: String,
    #[schema(format = DateTime)]
    until_at: String,
    event_status: EventStatus,
    created_by: String,
    #[schema(format = DateTime)]
    created_at: String,
    updated_by: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

impl From<AdminEvent> for EventView {
    fn from(e: AdminEvent) -> Self {
        Self {
            event_id: e.event_id,
            event_name: e.event_name,
            description: e.description,
            from_at: kst(e.from_at),
            until_at: kst(e.until_at),
            event_status: e.event_status,
            created_by: e.created_by,
            created_at: kst(e.created_at),
            updated_by: e.updated_by,
            updated_at: kst(e.updated_at),
        }
    }
}

/// A status change.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    event_id: i64,
    previous_status: EventStatus,
    updated_status: EventStatus,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A deletion.
#[derive(Serialize, ToSchema)]
#[schema(as = DeletedEventView)]
#[serde(rename_all = "camelCase")]
pub struct DeletedView {
    event_id: i64,
    #[schema(format = DateTime)]
    deleted_at: String,
}

/// `POST /events` → 201.
#[utoipa::path(
    post, path = "/api/v1/admin/events", tag = "admin", request_body = EventBody,
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 409, description = "`DUPLICATE_EVENT` (same name running)", body = ErrorBody),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    admin: Admin,
    AppJson(body): AppJson<EventBody>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let created = events::create(st.engine.db(), &admin.actor(), body.fields()?).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// `PUT /events/{id}`.
#[utoipa::path(
    put, path = "/api/v1/admin/events/{eventId}", tag = "admin", request_body = EventBody, params(("eventId" = i64, Path, minimum = 1, description = "The event")),
    responses(
        (status = 200, description = "OK", body = EventView),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`DUPLICATE_EVENT`", body = ErrorBody),
    )
)]
pub async fn update(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<EventBody>,
) -> Result<Json<EventView>, ApiError> {
    let updated = events::update(st.engine.db(), &admin.actor(), id, body.fields()?).await?;
    Ok(Json(updated.into()))
}

/// `PUT /events/{id}/status`.
#[utoipa::path(
    put, path = "/api/v1/admin/events/{eventId}/status", tag = "admin", request_body = StatusBody, params(("eventId" = i64, Path, minimum = 1, description = "The event")),
    responses(
        (status = 200, description = "OK", body = StatusView),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn change_status(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<StatusBody>,
) -> Result<Json<StatusView>, ApiError> {
    let change = events::change_status(st.engine.db(), &admin.actor(), id, body.event_status).await?;
    Ok(Json(StatusView {
        event_id: id,
        previous_status: change.previous,
        updated_status: change.updated,
        updated_at: kst(change.updated_at),
    }))
}

/// `DELETE /events/{id}` (soft).
#[utoipa::path(
    delete, path = "/api/v1/admin/events/{eventId}", tag = "admin", params(("eventId" = i64, Path, minimum = 1, description = "The event")),
    responses(
        (status = 200, description = "OK", body = DeletedView),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn delete(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<DeletedView>, ApiError> {
    let at = events::delete(st.engine.db(), &admin.actor(), id).await?;
    Ok(Json(DeletedView {
        event_id: id,
        deleted_at: kst(at),
    }))
}

/// `GET /events/{id}`.
#[utoipa::path(
    get, path = "/api/v1/admin/events/{eventId}", tag = "admin", params(("eventId" = i64, Path, minimum = 1, description = "The event")),
    responses(
        (status = 200, description = "OK", body = EventView),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<EventView>, ApiError> {
    Ok(Json(events::find(st.engine.db(), id).await?.into()))
}

/// `GET /events` with filters, sort and paging.
#[utoipa::path(
    get, path = "/api/v1/admin/events", tag = "admin", params(ListParams),
    responses(
        (status = 200, description = "OK", body = Page<EventView>),
    )
)]
pub async fn list(
    State(st): State<AppState>,
    _admin: Admin,
    AppQuery(q): AppQuery<ListParams>,
) -> Result<Json<Page<EventView>>, ApiError> {
    let filter = EventFilter {
        status: q.event_status,
        keyword: keyword(q.keyword),
        period: period(&q.from, &q.to)?,
        sort: Sort::parse(q.sort.as_deref(), SORT_FIELDS, DEFAULT_SORT)?,
        paging: paging(q.page, q.size)?,
    };
    Ok(Json(
        store::events::list(st.engine.db(), &filter)
            .await?
            .map(EventView::from),
    ))
}
