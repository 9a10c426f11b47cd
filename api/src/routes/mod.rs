//! The whole route list: [`router`] serves it and documents it in one go.
//!
//! | method, path | handler |
//! |---|---|
//! | `POST /events`, `GET /events` | [`events::create`], [`events::list`] |
//! | `GET /events/{eventKey}`, `PATCH /events/{eventKey}` | [`events::show`], [`events::update`] |
//! | `POST /events/{eventKey}/tickets` | [`tickets::issue`] |
//! | `POST /events/{eventKey}/queue`, `GET /events/{eventKey}/queue/{userId}`, `GET /events/{eventKey}/queue/seed` | [`queue::join`], [`queue::place`], [`queue::seed`] |
//! | `POST /events/{eventKey}/queue/pause`, `…/resume`, `…/close` | [`queue::pause`], [`queue::resume`], [`queue::close`] |
//! | `GET /users/{userId}/tickets` | [`tickets::list_for_user`] |
//! | `POST /api/v1/coupons/{couponId}/issue` | [`coupons::issue`] |
//! | `POST /api/v1/coupons/{couponId}/queue`, `GET …/queue/{userId}`, `GET …/queue/seed`, `POST …/queue/pause`, `…/resume`, `…/close` | [`queue::coupon_join`], [`queue::coupon_place`], [`queue::coupon_seed`], [`queue::coupon_pause`], [`queue::coupon_resume`], [`queue::coupon_close`] |
//! | `GET /api/v1/users/{userId}/coupons`, `GET /api/v1/coupons?userId=` | [`coupons::list_for_user`], [`coupons::list_by_query`] |
//! | `POST /api/v1/points/{userId}`, `POST /api/v1/wallets/{userId}/charge` | [`points::charge`] |
//! | `GET /api/v1/points/{userId}`, `GET /api/v1/wallets/{userId}` | [`points::balance`] |
//! | `GET /api/v1/points/{userId}/history` | [`points::history`] |
//! | `GET /api/v1/products`, `GET /api/v1/products/{productId}` | [`products::list`], [`products::show`] |
//! | `GET /api/v1/products/best`, `GET /api/v1/products/top` | [`best_products::show`] |
//! | `POST /api/v1/orders`, `POST /api/v1/orders/checkout`, `POST /api/v1/payments` | [`orders::create`], [`orders::checkout`], [`orders::pay`] |
//! | `GET /api/v1/orders/{orderId}`, `GET /api/v1/users/{userId}/orders` | [`orders::show`], [`orders::list_for_user`] |
//! | `/api/v1/admin/…` | [`admin`] (its own table) |
//! | `/api/events…`, `/api/jobs/{jobId}/status` | [`campaigns`] (marketing campaigns) |
//! | `GET /campaigns/…` | the owner's web page ([`crate::web`]) |
//! | `GET /health`, `GET /ready`, `GET /metrics` | [`ops`] |
//! | `GET /openapi.json`, `GET /docs` | [`openapi::document`], [`openapi::docs`] |
//!
//! The admin routes' handlers are in [`admin`]; the time and paging parameters all routes read
//! are in [`crate::params`].

pub mod admin;
pub mod admission;
pub mod best_products;
pub mod campaigns;
pub mod coupons;
pub mod events;
pub mod ops;
pub mod orders;
pub mod points;
pub mod products;
pub mod queue;
pub mod tickets;

use std::sync::Arc;

use axum::{Extension, Router, extract::DefaultBodyLimit, middleware, routing::get, routing::post};
use utoipa::OpenApi;
use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use crate::{
    error::route_not_found,
    extract::require_admin,
    guard,
    openapi::{self, Alias, ApiDoc},
    state::AppState,
    telemetry,
};

/// The seeds' other spellings of three paths: served by the same handlers (in [`shop`]) and
/// documented as copies of the operations they alias.
pub const ALIASES: [Alias; 3] = [
    Alias::get("/api/v1/points/{userId}", "/api/v1/wallets/{userId}"),
    Alias::post("/api/v1/points/{userId}", "/api/v1/wallets/{userId}/charge"),
    Alias::get("/api/v1/products/best", "/api/v1/products/top"),
];

/// The application's router, and the OpenAPI document of exactly the routes it serves: each
/// handler is registered with `routes!`, which takes its method and path from the handler's
/// `#[utoipa::path]` annotation, so the list below is the only route list.
///
/// Routes that cannot answer without Postgres sit behind [`guard::require_db`]: while Postgres
/// is known to be down they answer `503` at once instead of waiting on the pool. The hot path
/// (issuing tickets and coupons, the public event reads) and the ops routes do not: they work
/// from Redis and the cached rules through an outage.
pub fn router(state: AppState) -> Router {
    let db = || middleware::from_fn_with_state(state.engine.clone(), guard::require_db);
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(events::create).layer(db()))
        .routes(routes!(events::list))
        .routes(routes!(events::show))
        .routes(routes!(events::update).layer(db()))
        .routes(routes!(tickets::issue))
        .routes(routes!(queue::join))
        .routes(routes!(queue::place))
        .routes(routes!(queue::seed))
        .routes(routes!(queue::pause).layer(db()))
        .routes(routes!(queue::resume).layer(db()))
        .routes(routes!(queue::close).layer(db()))
        .routes(routes!(queue::coupon_join))
        .routes(routes!(queue::coupon_place))
        .routes(routes!(queue::coupon_seed))
        .routes(routes!(queue::coupon_pause).layer(db()))
        .routes(routes!(queue::coupon_resume).layer(db()))
        .routes(routes!(queue::coupon_close).layer(db()))
        .routes(routes!(tickets::list_for_user).layer(db()))
        .routes(routes!(coupons::issue))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::document))
        .merge(shop().route_layer(db()))
        .merge(marketing().route_layer(db()))
        // The role is checked before any path, query or body is looked at (403 before 400).
        .merge(
            admin(state.upload_limit)
                .route_layer(db())
                .route_layer(middleware::from_fn_with_state(state.clone(), require_admin)),
        )
        .split_for_parts();
    router
        .merge(openapi::docs())
        .merge(crate::web::router())
        .layer(Extension(Arc::new(openapi::finish(doc, &ALIASES))))
        .route_layer(telemetry::TrackLayer)
        .fallback(route_not_found)
        .layer(state.guard.layer())
        .with_state(state)
}

/// Marketing campaigns (the event-marketing seed) under `/api/events…` and `/api/jobs/…`.
fn marketing() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(campaigns::dashboard))
        .routes(routes!(campaigns::create_draft))
        .routes(routes!(campaigns::request_recommendations))
        .routes(routes!(campaigns::job_status))
        .routes(routes!(campaigns::choose))
        .routes(routes!(campaigns::request_images))
        .routes(routes!(campaigns::save_content))
        .routes(routes!(campaigns::image))
        .routes(routes!(campaigns::publish))
        .routes(routes!(campaigns::detail))
        .routes(routes!(campaigns::list))
}

/// The commerce API under `/api/v1` (but coupon issuing, on the hot path), with the seeds'
/// alternative spellings ([`ALIASES`]).
fn shop() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(coupons::list_by_query))
        .routes(routes!(coupons::list_for_user))
        .routes(routes!(points::charge, points::balance))
        .routes(routes!(points::history))
        .route("/api/v1/wallets/{userId}", get(points::balance))
        .route("/api/v1/wallets/{userId}/charge", post(points::charge))
        .routes(routes!(orders::create))
        .routes(routes!(orders::checkout))
        .routes(routes!(orders::show))
        .routes(routes!(orders::list_for_user))
        .routes(routes!(orders::pay))
        .routes(routes!(products::list))
        .routes(routes!(best_products::show))
        .route("/api/v1/products/top", get(best_products::show))
        .routes(routes!(products::show))
}

/// The admin API under `/api/v1/admin` (SPEC §3, the admin seed); every route needs an admin
/// token.
fn admin(upload_limit: usize) -> OpenApiRouter<AppState> {
    use self::admin::{batches, catalog, codes, dashboard, events, inventories, jobs, reports};
    OpenApiRouter::new()
        .routes(routes!(events::create, events::list))
        .routes(routes!(events::show, events::update, events::delete))
        .routes(routes!(events::change_status))
        .routes(routes!(inventories::create, inventories::list))
        .routes(routes!(
            inventories::show,
            inventories::update,
            inventories::delete
        ))
        .routes(routes!(batches::create, batches::list))
        .routes(routes!(
            batches::show,
            batches::update,
            batches::set_issue_count,
            batches::delete
        ))
        .routes(routes!(jobs::generate))
        .routes(routes!(jobs::upload).layer(DefaultBodyLimit::max(upload_limit)))
        .routes(routes!(codes::list))
        .routes(routes!(codes::export))
        .routes(routes!(jobs::list))
        .routes(routes!(jobs::show))
        .routes(routes!(jobs::cancel))
        .routes(routes!(catalog::create_user, catalog::list_users))
        .routes(routes!(catalog::show_user))
        .routes(routes!(catalog::create_product, catalog::list_products))
        .routes(routes!(catalog::show_product))
        .routes(routes!(dashboard::show))
        .routes(routes!(reports::list))
        .routes(routes!(reports::retry_dead))
        .routes(routes!(reports::show))
        .routes(routes!(reports::retry))
        .routes(routes!(reports::compute_best))
}
