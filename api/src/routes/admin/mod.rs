//! The admin API under `/api/v1/admin` (SPEC §3, the admin seed). Every route needs an admin
//! token ([`crate::extract::Admin`]); instants are written in KST (`+09:00`).
//!
//! | path | handlers |
//! |---|---|
//! | `/events`, `/events/{id}`, `/events/{id}/status` | [`events`] |
//! | `/coupon-inventories`, `/coupon-inventories/{id}` | [`inventories`] |
//! | `/coupon-batches`, `/coupon-batches/{id}` | [`batches`] |
//! | `/coupon-batches/{id}/generate-coupons`, `/coupon-batches/{id}/partner-codes`, `/coupon-jobs…` | [`jobs`] |
//! | `/coupon-batches/{id}/codes`, `/coupon-batches/{id}/codes/export` | [`codes`] |
//! | `/users…`, `/products…` | [`catalog`] |
//! | `/dashboard` | [`dashboard`] |
//! | `/outbox…`, `/best-products` | [`reports`] |

pub mod batches;
pub mod catalog;
pub mod codes;
pub mod dashboard;
pub mod events;
pub mod inventories;
pub mod jobs;
pub mod reports;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    routing::{get, post, put},
};
use chrono::{DateTime, Utc};
use issuer::admin::listing::{Paging, Period};

use crate::{error::ApiError, state::AppState};

/// The admin routes, to be nested under `/api/v1/admin`.
pub fn router(upload_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/events", post(events::create).get(events::list))
        .route(
            "/events/{event_id}",
            get(events::show).put(events::update).delete(events::delete),
        )
        .route("/events/{event_id}/status", put(events::change_status))
        .route(
            "/coupon-inventories",
            post(inventories::create).get(inventories::list),
        )
        .route(
            "/coupon-inventories/{inventory_id}",
            get(inventories::show)
                .put(inventories::update)
                .delete(inventories::delete),
        )
        .route("/coupon-batches", post(batches::create).get(batches::list))
        .route(
            "/coupon-batches/{batch_id}",
            get(batches::show).put(batches::update).delete(batches::delete),
        )
        .route(
            "/coupon-batches/{batch_id}/generate-coupons",
            post(jobs::generate),
        )
        .route(
            "/coupon-batches/{batch_id}/partner-codes",
            post(jobs::upload).layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route("/coupon-batches/{batch_id}/codes", get(codes::list))
        .route("/coupon-batches/{batch_id}/codes/export", get(codes::export))
        .route("/coupon-jobs", get(jobs::list))
        .route("/coupon-jobs/{job_id}", get(jobs::show))
        .route("/coupon-jobs/{job_id}/cancel", post(jobs::cancel))
        .route("/users", post(catalog::create_user).get(catalog::list_users))
        .route("/users/{user_id}", get(catalog::show_user))
        .route(
            "/products",
            post(catalog::create_product).get(catalog::list_products),
        )
        .route("/products/{product_id}", get(catalog::show_product))
        .route("/dashboard", get(dashboard::show))
        .route("/outbox", get(reports::list))
        .route("/outbox/retry-dead", post(reports::retry_dead))
        .route("/outbox/{outbox_id}", get(reports::show))
        .route("/outbox/{outbox_id}/retry", post(reports::retry))
        .route("/best-products", post(reports::compute_best))
}

/// Reads an input instant (RFC 3339, or KST without an offset).
pub(crate) fn instant(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    issuer::clock::parse_instant(raw).ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "{field} must be RFC 3339, or a datetime without offset (KST)"
        ))
    })
}

/// Writes an instant in KST.
pub(crate) fn kst(t: DateTime<Utc>) -> String {
    issuer::clock::format_kst(t)
}

/// `page`, `size`, checked.
pub(crate) fn paging(page: Option<i64>, size: Option<i64>) -> Result<Paging, ApiError> {
    Ok(Paging::new(page, size)?)
}

/// `from`, `to`, checked.
pub(crate) fn period(from: &Option<String>, to: &Option<String>) -> Result<Period, ApiError> {
    Ok(Period::parse(from.as_deref(), to.as_deref())?)
}

/// A keyword, or none when blank.
pub(crate) fn keyword(k: Option<String>) -> Option<String> {
    k.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty())
}
