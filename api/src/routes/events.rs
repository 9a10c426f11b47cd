//! Golden-ticket events: `POST /events`, `GET /events`, `GET /events/{eventKey}`,
//! `PATCH /events/{eventKey}`.

use axum::{Json, extract::State, http::StatusCode};
use engine::tickets::LiveEvent;
use issuance_core::{clock, ids::EventKey};
use serde::{Deserialize, Serialize};
use store::ticket_events::{EventChange, NewTicketEvent};
use utoipa::ToSchema;

use crate::params::instant;
use crate::routes::admission::{AdmissionBody, AdmissionView};
use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppJson, AppPath},
    state::AppState,
};

/// `POST /events` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"eventKey": "golden-2026-summer", "name": "2026 여름 골든티켓", "totalQuantity": 100, "dailyLimit": 10, "startAt": "2026-01-15T00:00:00Z", "endAt": "2026-12-31T23:59:59Z"}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateEvent {
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    event_key: String,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    #[schema(minimum = 1, maximum = 10_000_000)]
    total_quantity: i64,
    /// At most this many per KST day (at most `totalQuantity`); none for no limit.
    #[schema(minimum = 1)]
    daily_limit: Option<i64>,
    start_at: String,
    end_at: String,
    /// A waiting room in front of the issue endpoint; none: issuing is open to everyone.
    admission: Option<AdmissionBody>,
    /// Spread the event over this many buckets, each a Redis copy of its own (on its own
    /// cluster master when there are enough), leasing quantity from one pool: one event's issue
    /// rate is then no longer bounded by one Redis core. 1 (the default) keeps one copy. Set at
    /// creation only.
    #[schema(minimum = 1, maximum = 16, default = 1)]
    shards: Option<i64>,
}

/// `PATCH /events/{eventKey}` body: either field or both; an absent one stays as it is.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"active": false}))]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateEvent {
    /// Switch issuing on or off.
    active: Option<bool>,
    /// The new quantity, live: up, or down to what was issued already and no further
    /// (`QUANTITY_BELOW_ISSUED`); never below the event's `dailyLimit`.
    #[schema(minimum = 1, maximum = 10000000)]
    total_quantity: Option<i64>,
    /// The waiting room's settings, live (each absent field stays).
    admission: Option<AdmissionBody>,
}

/// An event with its live figures. Instants in UTC with `Z`, as the golden-ticket seed writes them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    event_key: String,
    name: String,
    total_quantity: i32,
    daily_limit: Option<i32>,
    remaining_quantity: i64,
    today_issued_count: i64,
    #[schema(format = DateTime)]
    start_at: String,
    #[schema(format = DateTime)]
    end_at: String,
    is_active: bool,
    #[schema(format = DateTime)]
    created_at: String,
    /// The waiting room.
    admission: AdmissionView,
    /// The buckets the event is spread over (1: one copy).
    shards: i16,
}

impl From<LiveEvent> for EventView {
    fn from(s: LiveEvent) -> Self {
        let remaining_quantity = s.remaining();
        let e = s.event;
        Self {
            admission: AdmissionView::from(&e.admission),
            shards: e.shards,
            event_key: e.event_key,
            name: e.name,
            total_quantity: e.total_quantity,
            daily_limit: e.daily_limit,
            remaining_quantity,
            today_issued_count: s.today,
            start_at: clock::format_utc(e.start_at),
            end_at: clock::format_utc(e.end_at),
            is_active: e.is_active,
            created_at: clock::format_utc(e.created_at),
        }
    }
}

/// Parses a path key; a key that breaks the format cannot exist, so it is a 404.
pub(crate) fn path_key(raw: &str) -> Result<EventKey, ApiError> {
    EventKey::parse(raw)
        .map_err(|_| issuance_core::Error::NotFound(issuance_core::error::Missing::TicketEvent).into())
}

/// Creates an event (admin).
#[utoipa::path(
    post, path = "/events", tag = "tickets", request_body = CreateEvent,
    responses(
        (status = 201, description = "Created", body = EventView),
        (status = 409, description = "`DUPLICATE_EVENT`", body = ErrorBody),
    )
)]
pub async fn create(
    State(st): State<AppState>,
    _admin: Admin,
    AppJson(body): AppJson<CreateEvent>,
) -> Result<(StatusCode, Json<EventView>), ApiError> {
    let new = NewTicketEvent::new(
        EventKey::parse(&body.event_key)?,
        body.name,
        body.total_quantity,
        body.daily_limit,
        instant("startAt", &body.start_at)?,
        instant("endAt", &body.end_at)?,
    )?;
    let new = match body.admission {
        Some(admission) => new.with_admission(admission.fields()?)?,
        None => new,
    };
    let new = new.with_shards(body.shards.unwrap_or(1))?;
    let created = st.engine.create_event(new).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Events running now (anyone).
#[utoipa::path(
    get, path = "/events", tag = "tickets", security(()),
    responses((status = 200, description = "Running events", body = Vec<EventView>))
)]
pub async fn list(State(st): State<AppState>) -> Result<Json<Vec<EventView>>, ApiError> {
    let events = st.engine.running_events().await?;
    Ok(Json(events.into_iter().map(EventView::from).collect()))
}

/// One event with its live figures (anyone).
#[utoipa::path(
    get, path = "/events/{eventKey}", tag = "tickets", security(()),
    params(("eventKey" = String, Path, description = "The event's key")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn show(
    State(st): State<AppState>,
    AppPath(key): AppPath<String>,
) -> Result<Json<EventView>, ApiError> {
    let status = st.engine.event_status(&path_key(&key)?).await?;
    Ok(Json(status.into()))
}

/// Switches an event on or off, changes its quantity while it runs, or its waiting room's
/// settings (admin).
#[utoipa::path(
    patch, path = "/events/{eventKey}", tag = "tickets", request_body = UpdateEvent,
    params(("eventKey" = String, Path, description = "The event's key")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 400, description = "`INVALID_REQUEST`: no field, a quantity out of range or below the daily limit, or a waiting room switched on without its settings", body = ErrorBody),
        (status = 404, description = "`EVENT_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`QUANTITY_BELOW_ISSUED`: more were issued already; nothing changed", body = ErrorBody),
    )
)]
pub async fn update(
    State(st): State<AppState>,
    _admin: Admin,
    AppPath(key): AppPath<String>,
    AppJson(body): AppJson<UpdateEvent>,
) -> Result<Json<EventView>, ApiError> {
    let key = path_key(&key)?;
    let admission = body.admission.map(AdmissionBody::fields).transpose()?;
    let change = EventChange::new(body.active, body.total_quantity, admission.unwrap_or_default())?;
    let status = st.engine.change_event(&key, change).await?;
    Ok(Json(status.into()))
}
