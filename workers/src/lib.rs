//! Background workers of the issuance engine.
//!
//! * [`drain`]: persists the issuance streams into Postgres.
//! * [`expiry`]: fails unpaid orders after their deadline, giving stock and coupons back.
//! * [`jobs`]: runs coupon jobs from the apalis queue and sweeps up after dead workers.
//! * [`ops`]: `/health`, `/ready` and `/metrics` of a workers process.
//!
//! `main.rs` wires them with [`config::Config`] and stops them on SIGTERM/SIGINT.

pub mod config;
pub mod drain;
pub mod expiry;
pub mod jobs;
pub mod ops;
