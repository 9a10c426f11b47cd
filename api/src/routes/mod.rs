//! The whole route list.
//!
//! | method, path | handler |
//! |---|---|
//! | `POST /events`, `GET /events` | [`events::create`], [`events::list`] |
//! | `GET /events/{eventKey}`, `PATCH /events/{eventKey}` | [`events::show`], [`events::update`] |
//! | `POST /events/{eventKey}/tickets` | [`tickets::issue`] |
//! | `GET /users/{userId}/tickets` | [`tickets::list_for_user`] |
//! | `/api/v1/admin/…` | [`admin`] (its own table) |
//! | `GET /health`, `GET /ready`, `GET /metrics` | [`ops`] |

pub mod admin;
pub mod events;
pub mod ops;
pub mod tickets;

use axum::{
    Router, middleware,
    routing::{get, post},
};

use crate::{
    error::{error_body, route_not_found},
    state::AppState,
    telemetry,
};

/// The application's router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/events", post(events::create).get(events::list))
        .route("/events/{event_key}", get(events::show).patch(events::update))
        .route("/events/{event_key}/tickets", post(tickets::issue))
        .route("/users/{user_id}/tickets", get(tickets::list_for_user))
        .route("/health", get(ops::health))
        .route("/ready", get(ops::ready))
        .route("/metrics", get(ops::metrics))
        .nest("/api/v1/admin", admin::router(state.upload_limit))
        .route_layer(middleware::from_fn(telemetry::track))
        .fallback(route_not_found)
        .layer(middleware::from_fn(error_body))
        .with_state(state)
}
