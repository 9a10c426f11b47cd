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
//! * [`tickets`], [`events`], [`coupons`], [`points`], [`products`], [`orders`],
//!   [`outbox`], [`best_products`]: what the api and the workers call. Golden-ticket events and
//!   first-come coupon batches are both [`scope`]s, decided by one hot path ([`first_come`])
//!   whose Redis copy of the rules [`meta`] keeps.
//! * [`issue`], [`batch`], [`script`], [`keys`], [`stream`]: the Redis side, one script per
//!   `lua/` file; concurrent requests to one scope share a call ([`batch`]).
//! * [`admin`]: the admin API's domain (events, inventories, batches, coupon jobs, codes,
//!   users, products, dashboard); [`codes`]: the coupon-code generator; [`queue`]: the apalis
//!   queue that carries coupon jobs to the workers.
//! * [`telemetry`]: the metrics exporter both binaries install, and the gauges measured at
//!   scrape time.
//! * [`repo`]: all SQL. [`model`], [`clock`], [`error`], [`config`], [`connect`], [`shutdown`]: the rest,
//!   shared by both binaries.

pub mod admin;
pub mod batch;
pub mod best_products;
pub mod cache;
pub mod clock;
pub mod codes;
pub mod config;
pub mod connect;
pub mod coupons;
pub mod cursor;
pub mod engine;
pub mod error;
pub mod events;
pub mod first_come;
pub mod invariants;
pub mod issue;
pub mod keys;
pub mod meta;
pub mod model;
pub mod orders;
pub mod outbox;
pub mod points;
pub mod products;
pub mod queue;
pub mod repo;
pub mod scope;
pub mod script;
pub mod shutdown;
pub mod stream;
pub mod telemetry;
pub mod tickets;

pub use engine::{Engine, EngineOptions};
pub use error::{Error, Result};
pub use keys::Keys;
