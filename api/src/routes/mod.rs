//! The whole route list.
//!
//! | method, path | handler |
//! |---|---|
//! | `POST /events`, `GET /events` | [`events::create`], [`events::list`] |
//! | `GET /events/{eventKey}`, `PATCH /events/{eventKey}` | [`events::show`], [`events::update`] |
//! | `POST /events/{eventKey}/tickets` | [`tickets::issue`] |
//! | `GET /users/{userId}/tickets` | [`tickets::list_for_user`] |
//! | `POST /api/v1/coupons/{couponId}/issue` | [`coupons::issue`] |
//! | `GET /api/v1/users/{userId}/coupons`, `GET /api/v1/coupons?userId=` | [`coupons::list_for_user`], [`coupons::list_by_query`] |
//! | `POST /api/v1/points/{userId}`, `POST /api/v1/wallets/{userId}/charge` | [`points::charge`] |
//! | `GET /api/v1/points/{userId}`, `GET /api/v1/wallets/{userId}` | [`points::balance`] |
//! | `GET /api/v1/points/{userId}/history` | [`points::history`] |
//! | `GET /api/v1/products`, `GET /api/v1/products/{productId}` | [`products::list`], [`products::show`] |
//! | `GET /api/v1/products/best`, `GET /api/v1/products/top` | [`best_products::show`] |
//! | `POST /api/v1/orders`, `POST /api/v1/orders/checkout`, `POST /api/v1/payments` | [`orders::create`], [`orders::checkout`], [`orders::pay`] |
//! | `GET /api/v1/orders/{orderId}`, `GET /api/v1/users/{userId}/orders` | [`orders::show`], [`orders::list_for_user`] |
//! | `/api/v1/admin/…` | [`admin`] (its own table) |
//! | `GET /health`, `GET /ready`, `GET /metrics` | [`ops`] |
//! | `GET /openapi.json`, `GET /docs` | [`openapi::document`], [`openapi::docs`] |

pub mod admin;
pub mod best_products;
pub mod coupons;
pub mod events;
pub mod ops;
pub mod orders;
pub mod points;
pub mod products;
pub mod tickets;

use axum::{
    Router, middleware,
    routing::{get, patch, post},
};

use crate::{
    error::{error_body, route_not_found},
    extract::require_admin,
    guard, openapi,
    state::AppState,
    telemetry,
};

/// The application's router.
///
/// Routes that cannot answer without Postgres sit behind [`guard::require_db`]: while Postgres
/// is known to be down they answer `503` at once instead of waiting on the pool. The hot path
/// (issuing tickets and coupons, the public event reads) and the ops routes do not: they work
/// from Redis and the cached rules through an outage.
pub fn router(state: AppState) -> Router {
    let db = || middleware::from_fn_with_state(state.clone(), guard::require_db);
    Router::new()
        .route("/events", post(events::create).layer(db()).get(events::list))
        .route(
            "/events/{event_key}",
            get(events::show).merge(patch(events::update).layer(db())),
        )
        .route("/events/{event_key}/tickets", post(tickets::issue))
        .route(
            "/users/{user_id}/tickets",
            get(tickets::list_for_user).layer(db()),
        )
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(openapi::document))
        .merge(openapi::docs())
        .route("/api/v1/coupons/{coupon_id}/issue", post(coupons::issue))
        .nest("/api/v1", shop().route_layer(db()))
        // The role is checked before any path, query or body is looked at (403 before 400).
        .nest(
            "/api/v1/admin",
            admin::router(state.upload_limit)
                .route_layer(db())
                .route_layer(middleware::from_fn_with_state(state.clone(), require_admin)),
        )
        .route_layer(middleware::from_fn(telemetry::track))
        .fallback(route_not_found)
        .layer(middleware::from_fn_with_state(state.guard.clone(), guard::guard))
        .layer(middleware::from_fn(error_body))
        .with_state(state)
}

/// The commerce API under `/api/v1` (but coupon issuing, on the hot path), with the seeds'
/// alternative spellings.
fn shop() -> Router<AppState> {
    Router::new()
        .route("/coupons", get(coupons::list_by_query))
        .route("/users/{user_id}/coupons", get(coupons::list_for_user))
        .route("/points/{user_id}", post(points::charge).get(points::balance))
        .route("/points/{user_id}/history", get(points::history))
        .route("/wallets/{user_id}", get(points::balance))
        .route("/wallets/{user_id}/charge", post(points::charge))
        .route("/orders", post(orders::create))
        .route("/orders/checkout", post(orders::checkout))
        .route("/orders/{order_id}", get(orders::show))
        .route("/users/{user_id}/orders", get(orders::list_for_user))
        .route("/payments", post(orders::pay))
        .route("/products", get(products::list))
        .route("/products/best", get(best_products::show))
        .route("/products/top", get(best_products::show))
        .route("/products/{product_id}", get(products::show))
}
