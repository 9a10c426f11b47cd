//! Background workers of the issuance engine.
//!
//! * [`drain`]: persists the issuance streams into Postgres.
//! * [`ops`]: `/health`, `/ready` and `/metrics` of a workers process.
//!
//! `main.rs` wires them with [`config::Config`] and stops them on SIGTERM/SIGINT.

pub mod config;
pub mod drain;
pub mod ops;
