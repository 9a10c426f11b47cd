//! The issuance core: the one place that decides who gets what.
//!
//! # Guarantees
//!
//! * **Never more than the quantity, never two per user.** `lua/issue.lua` makes the whole
//!   decision in one atomic Redis call; the issued count *is* the size of the holders hash, so
//!   the two rules rest on one structure.
//! * **Never a blank state.** Postgres is the source of truth for an event's rules; when the
//!   Redis copy is missing, it is rebuilt (holders first) before anyone is answered.
//! * **Every issue reaches Postgres once.** The record is appended to the event's stream inside
//!   the same Lua call; the drain (`workers`) persists it idempotently and only then
//!   acknowledges it and trims the stream.
//!
//! # Layout
//!
//! * [`engine`]: the [`Engine`] value (pools, keys, caches).
//! * [`tickets`], [`events`]: what the api calls.
//! * [`issue`], [`batch`], [`script`], [`keys`], [`stream`]: the Redis side, one script per
//!   `lua/` file; concurrent requests to one event share a call ([`batch`]).
//! * [`admin`]: the admin API's domain (events, inventories, batches, coupon jobs, codes,
//!   users, products, dashboard); [`codes`]: the coupon-code generator; [`queue`]: the apalis
//!   queue that carries coupon jobs to the workers.
//! * [`repo`]: all SQL. [`model`], [`clock`], [`error`], [`config`], [`connect`], [`shutdown`]: the rest,
//!   shared by both binaries.

pub mod admin;
pub mod batch;
pub mod cache;
pub mod clock;
pub mod codes;
pub mod config;
pub mod connect;
pub mod engine;
pub mod error;
pub mod events;
pub mod issue;
pub mod keys;
pub mod model;
pub mod queue;
pub mod repo;
pub mod script;
pub mod shutdown;
pub mod stream;
pub mod tickets;

pub use engine::{Engine, EngineOptions};
pub use error::{Error, Result};
pub use keys::Keys;
