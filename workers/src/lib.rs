//! Background workers of the issuance engine.
//!
//! * [`drain`]: persists the issuance streams into Postgres.
//! * [`relay`]: delivers outbox events (`ORDER_PAID`) to the data platform; [`receiver`] is a
//!   stand-in platform (and stand-in campaign channels) for local runs and tests.
//! * [`best_products`]: the nightly (00:00 KST) best-products snapshot, on apalis-cron.
//! * [`expiry`]: fails unpaid orders after their deadline, giving stock and coupons back.
//! * [`hand_back`]: returns the idle leases of a spread event's or batch's buckets to its pool.
//! * [`jobs`]: runs coupon jobs from the apalis queue and sweeps up after dead workers.
//! * [`campaign_jobs`]: runs campaign recommendation and banner jobs the same way.
//! * [`check`]: the invariants of SPEC §8 (`workers check`).
//! * [`ops`]: `/health`, `/ready` and `/metrics` of a workers process.
//! * [`poll`]: the pass-then-pause loop the drain, the expiry and the relay share.
//!
//! `main.rs` wires them with [`config::Config`] and stops them on SIGTERM/SIGINT.

pub mod best_products;
pub mod campaign_jobs;
pub mod check;
pub mod config;
pub mod drain;
pub mod expiry;
pub mod hand_back;
pub mod jobs;
pub mod ops;
pub mod poll;
pub mod receiver;
pub mod reconcile;
pub mod relay;
