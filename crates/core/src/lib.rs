//! The words every layer of the issuance engine shares, and nothing that decides anything:
//! identifiers, every Postgres enum, the discount policy, the one error type, the KST clock,
//! configuration, opening the pools, paging and cursors, the coupon-code generator, the
//! metrics exporter, the shutdown signal and a byte check over text.
//!
//! Everything above depends on this crate; it depends on none of them.

pub mod admission;
pub mod clock;
pub mod code_generator;
pub mod config;
pub mod connect;
pub mod cursor;
pub mod discount;
pub mod enums;
pub mod error;
pub mod ids;
pub mod paging;
pub mod shutdown;
pub mod telemetry;
pub mod text;

pub use error::{Error, Result};
