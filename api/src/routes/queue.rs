//! The waiting room of an event (`/events/{eventKey}/queue…`) and of a SELF coupon batch
//! (`/api/v1/coupons/{couponId}/queue…`): join, place, the seed, and the admin's
//! `POST …/queue/pause|resume|close`. The
//! settings travel with the event (`admission` on `POST`/`PATCH /events`, see
//! [`crate::routes::admission`]).

use axum::{Json, extract::State};
use engine::{
    admission::{Place, SEED_ALGORITHM, SeedReveal},
    scope::Scope,
};
use issuance_core::{admission::GateState, clock, error::ScopeKind, ids::UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{
    error::{ApiError, ErrorBody},
    extract::{Admin, AppJson, AppPath, AuthUser},
    routes::{
        admin::batches::BatchView,
        events::{EventView, path_key},
    },
    state::AppState,
    telemetry::count_issue,
};

/// `POST /events/{eventKey}/queue` body.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"userId": 7}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinBody {
    #[schema(minimum = 1)]
    user_id: i64,
}

/// A user's place in the room.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaceView {
    /// `PREQUEUE`, `WAITING`, `ADMITTED`, `SOLD_OUT` or `CLOSED`.
    state: &'static str,
    /// People ahead: while waiting; 0 once admitted; null before the draw at the start and
    /// once it is over.
    position: Option<i64>,
    /// Admitted so far.
    admitted: i64,
    /// Joined so far.
    joined: i64,
    /// The wait at the room's rate; null when not waiting or while paused.
    eta_seconds: Option<i64>,
    /// When to ask again (jittered; longer far from the front).
    poll_after_ms: i64,
    /// The pass, for `X-Admission-Pass` on the issue request, while admitted and valid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pass_expires_at: Option<String>,
}

impl From<Place> for PlaceView {
    fn from(p: Place) -> Self {
        Self {
            state: p.state.as_str(),
            position: p.position,
            admitted: p.admitted,
            joined: p.joined,
            eta_seconds: p.eta_seconds,
            poll_after_ms: p.poll_after_ms,
            pass: p.pass,
            pass_expires_at: p.pass_expires_at.map(clock::format_utc),
        }
    }
}

/// The shuffle's seed, revealed after the start.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeedView {
    /// 32 hex digits.
    seed: String,
    /// Joined before the start: the shuffled ones.
    prequeue_size: i64,
    /// How to recompute the order from the seed.
    algorithm: &'static str,
}

impl From<SeedReveal> for SeedView {
    fn from(s: SeedReveal) -> Self {
        Self {
            seed: s.seed,
            prequeue_size: s.prequeue_size,
            algorithm: SEED_ALGORITHM,
        }
    }
}

/// The user checks of a join or a poll: the user themself or an admin, within the rate limit.
fn user_checks(st: &AppState, auth: &AuthUser, user: i64, kind: ScopeKind) -> Result<UserId, ApiError> {
    let user = UserId::new(user)?;
    auth.act_for(user.get())?;
    if let Err(wait) = st.limits.check(user.get()) {
        count_issue(kind, "rate_limited");
        return Err(ApiError::RateLimited(wait));
    }
    Ok(user)
}

/// Joins the event's waiting room; joining again answers the same place.
#[utoipa::path(
    post, path = "/events/{eventKey}/queue", tag = "tickets", request_body = JoinBody,
    params(("eventKey" = String, Path, description = "The event's key")),
    responses(
        (status = 200, description = "The user's place", body = PlaceView),
        (status = 400, description = "`QUEUE_NOT_OPEN`: before `prequeueOpensAt`", body = ErrorBody),
        (status = 404, description = "`EVENT_NOT_FOUND`, `QUEUE_NOT_FOUND` (no waiting room)", body = ErrorBody),
        (status = 409, description = "`QUEUE_CLOSED`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn join(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(key): AppPath<String>,
    AppJson(body): AppJson<JoinBody>,
) -> Result<Json<PlaceView>, ApiError> {
    let user = user_checks(&st, &auth, body.user_id, ScopeKind::Ticket)?;
    let scope = Scope::Ticket(path_key(&key)?);
    Ok(Json(st.engine.join_queue(&scope, user).await?.into()))
}

/// A user's place in the event's waiting room (and their pass, once admitted).
#[utoipa::path(
    get, path = "/events/{eventKey}/queue/{userId}", tag = "tickets",
    params(
        ("eventKey" = String, Path, description = "The event's key"),
        ("userId" = i64, Path, minimum = 1, description = "The user"),
    ),
    responses(
        (status = 200, description = "The user's place", body = PlaceView),
        (status = 404, description = "`EVENT_NOT_FOUND`, `QUEUE_NOT_FOUND`, `QUEUE_PLACE_NOT_FOUND` (not joined)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn place(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath((key, user)): AppPath<(String, i64)>,
) -> Result<Json<PlaceView>, ApiError> {
    let user = user_checks(&st, &auth, user, ScopeKind::Ticket)?;
    let scope = Scope::Ticket(path_key(&key)?);
    Ok(Json(st.engine.queue_place(&scope, user).await?.into()))
}

/// The seed of the pre-queue's shuffle and how to recompute the order (anyone, after the start).
#[utoipa::path(
    get, path = "/events/{eventKey}/queue/seed", tag = "tickets", security(()),
    params(("eventKey" = String, Path, description = "The event's key")),
    responses(
        (status = 200, description = "The seed", body = SeedView),
        (status = 403, description = "`SEED_NOT_REVEALED`: before the event's start", body = ErrorBody),
        (status = 404, description = "`EVENT_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn seed(
    State(st): State<AppState>,
    AppPath(key): AppPath<String>,
) -> Result<Json<SeedView>, ApiError> {
    let scope = Scope::Ticket(path_key(&key)?);
    Ok(Json(st.engine.queue_seed(&scope).await?.into()))
}

async fn control(
    st: &AppState,
    admin: &Admin,
    key: &str,
    state: GateState,
) -> Result<Json<EventView>, ApiError> {
    let key = path_key(key)?;
    st.engine
        .set_gate_state(&Scope::Ticket(key.clone()), state, &admin.actor())
        .await?;
    Ok(Json(st.engine.event_status(&key).await?.into()))
}

/// Stops admitting (admin); joins and polls go on.
#[utoipa::path(
    post, path = "/events/{eventKey}/queue/pause", tag = "tickets",
    params(("eventKey" = String, Path, description = "The event's key")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "`EVENT_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn pause(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(key): AppPath<String>,
) -> Result<Json<EventView>, ApiError> {
    control(&st, &admin, &key, GateState::Paused).await
}

/// Admits again at the room's rate, from now (admin).
#[utoipa::path(
    post, path = "/events/{eventKey}/queue/resume", tag = "tickets",
    params(("eventKey" = String, Path, description = "The event's key")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "`EVENT_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn resume(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(key): AppPath<String>,
) -> Result<Json<EventView>, ApiError> {
    control(&st, &admin, &key, GateState::Running).await
}

/// Stops admitting and takes no new joins (admin); passes given stay valid.
#[utoipa::path(
    post, path = "/events/{eventKey}/queue/close", tag = "tickets",
    params(("eventKey" = String, Path, description = "The event's key")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "`EVENT_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn close(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(key): AppPath<String>,
) -> Result<Json<EventView>, ApiError> {
    control(&st, &admin, &key, GateState::Closed).await
}

/// A coupon path id: a positive number, else no such coupon.
fn coupon_scope(id: i64) -> Result<Scope, ApiError> {
    if id <= 0 {
        return Err(issuance_core::Error::NotFound(issuance_core::error::Missing::Coupon).into());
    }
    Ok(Scope::Coupon(id))
}

/// Joins a SELF coupon batch's waiting room; joining again answers the same place.
#[utoipa::path(
    post, path = "/api/v1/coupons/{couponId}/queue", tag = "coupons", request_body = JoinBody,
    params(("couponId" = i64, Path, minimum = 1, description = "The coupon (a SELF batch's id)")),
    responses(
        (status = 200, description = "The user's place", body = PlaceView),
        (status = 400, description = "`QUEUE_NOT_OPEN`: before `prequeueOpensAt`", body = ErrorBody),
        (status = 404, description = "`COUPON_NOT_FOUND`, `QUEUE_NOT_FOUND` (no waiting room)", body = ErrorBody),
        (status = 409, description = "`QUEUE_CLOSED`", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn coupon_join(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath(id): AppPath<i64>,
    AppJson(body): AppJson<JoinBody>,
) -> Result<Json<PlaceView>, ApiError> {
    let user = user_checks(&st, &auth, body.user_id, ScopeKind::Coupon)?;
    Ok(Json(st.engine.join_queue(&coupon_scope(id)?, user).await?.into()))
}

/// A user's place in a coupon batch's waiting room (and their pass, once admitted).
#[utoipa::path(
    get, path = "/api/v1/coupons/{couponId}/queue/{userId}", tag = "coupons",
    params(
        ("couponId" = i64, Path, minimum = 1, description = "The coupon (a SELF batch's id)"),
        ("userId" = i64, Path, minimum = 1, description = "The user"),
    ),
    responses(
        (status = 200, description = "The user's place", body = PlaceView),
        (status = 404, description = "`COUPON_NOT_FOUND`, `QUEUE_NOT_FOUND`, `QUEUE_PLACE_NOT_FOUND` (not joined)", body = ErrorBody),
        (status = 429, description = "`RATE_LIMITED` (with `Retry-After`)", body = ErrorBody),
    )
)]
pub async fn coupon_place(
    State(st): State<AppState>,
    auth: AuthUser,
    AppPath((id, user)): AppPath<(i64, i64)>,
) -> Result<Json<PlaceView>, ApiError> {
    let user = user_checks(&st, &auth, user, ScopeKind::Coupon)?;
    Ok(Json(
        st.engine.queue_place(&coupon_scope(id)?, user).await?.into(),
    ))
}

/// The seed of a coupon batch's pre-queue shuffle (anyone, after its `validFromAt`).
#[utoipa::path(
    get, path = "/api/v1/coupons/{couponId}/queue/seed", tag = "coupons", security(()),
    params(("couponId" = i64, Path, minimum = 1, description = "The coupon (a SELF batch's id)")),
    responses(
        (status = 200, description = "The seed", body = SeedView),
        (status = 403, description = "`SEED_NOT_REVEALED`: before the batch's `validFromAt`", body = ErrorBody),
        (status = 404, description = "`COUPON_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn coupon_seed(
    State(st): State<AppState>,
    AppPath(id): AppPath<i64>,
) -> Result<Json<SeedView>, ApiError> {
    Ok(Json(st.engine.queue_seed(&coupon_scope(id)?).await?.into()))
}

async fn coupon_control(
    st: &AppState,
    admin: &Admin,
    id: i64,
    state: GateState,
) -> Result<Json<BatchView>, ApiError> {
    st.engine
        .set_gate_state(&coupon_scope(id)?, state, &admin.actor())
        .await?;
    Ok(Json(admin::batches::find(&st.engine, id).await?.into()))
}

/// Stops admitting to a coupon batch (admin); joins and polls go on.
#[utoipa::path(
    post, path = "/api/v1/coupons/{couponId}/queue/pause", tag = "coupons",
    params(("couponId" = i64, Path, minimum = 1, description = "The coupon (a SELF batch's id)")),
    responses(
        (status = 200, description = "The batch", body = BatchView),
        (status = 404, description = "`COUPON_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn coupon_pause(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<BatchView>, ApiError> {
    coupon_control(&st, &admin, id, GateState::Paused).await
}

/// Admits to a coupon batch again at its room's rate, from now (admin).
#[utoipa::path(
    post, path = "/api/v1/coupons/{couponId}/queue/resume", tag = "coupons",
    params(("couponId" = i64, Path, minimum = 1, description = "The coupon (a SELF batch's id)")),
    responses(
        (status = 200, description = "The batch", body = BatchView),
        (status = 404, description = "`COUPON_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn coupon_resume(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<BatchView>, ApiError> {
    coupon_control(&st, &admin, id, GateState::Running).await
}

/// Stops admitting to a coupon batch and takes no new joins (admin).
#[utoipa::path(
    post, path = "/api/v1/coupons/{couponId}/queue/close", tag = "coupons",
    params(("couponId" = i64, Path, minimum = 1, description = "The coupon (a SELF batch's id)")),
    responses(
        (status = 200, description = "The batch", body = BatchView),
        (status = 404, description = "`COUPON_NOT_FOUND`, `QUEUE_NOT_FOUND`", body = ErrorBody),
    )
)]
pub async fn coupon_close(
    State(st): State<AppState>,
    admin: Admin,
    AppPath(id): AppPath<i64>,
) -> Result<Json<BatchView>, ApiError> {
    coupon_control(&st, &admin, id, GateState::Closed).await
}
