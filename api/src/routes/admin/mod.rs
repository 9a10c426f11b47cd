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
