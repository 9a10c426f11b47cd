//! The hot path: the one place that decides who gets what.
//!
//! # Guarantees
//!
//! * **Never more than the quantity, never two per user.** `lua/issue.lua` makes the whole
//!   decision in one atomic Redis call; the issued count *is* the size of the holders hash, so
//!   the two rules rest on one structure.
//! * **Never a blank state.** Postgres is the source of truth for a scope's rules; when the
//!   Redis copy is missing, damaged, or may be behind Postgres (its server restarted or was
//!   promoted since it was built), it is rebuilt (holders first) before anyone is answered.
//! * **Every issue reaches Postgres once.** The record is appended to the scope's stream inside
//!   the same Lua call; the drain (`workers`) persists it idempotently and only then
//!   acknowledges it and trims the stream.
//!
//! # Layout
//!
//! * [`engine`]: the [`Engine`] value (pools, keys, caches) every caller holds.
//! * [`scope`]: what golden-ticket events and first-come coupon batches have in common;
//!   [`tickets`] and [`coupons`] are the two scope kinds, thin: each names its outcomes;
//!   [`ticket_events`] creates and reads events with their live counts.
//! * [`first_come`]: the decision every scope goes through: rules from [`cache`] (with the
//!   sold-out memory), then [`group_commit`], which shares one `issue.lua` call ([`issue`], its
//!   one decoder) among the requests arriving together.
//! * [`leases`]: one event or batch spread over buckets on different cluster masters, leasing
//!   quantity (and, for a batch, [`positions`]) from its pool.
//! * [`meta`]: the Redis copy of a scope's rules, and its rebuild from Postgres and the stream;
//!   [`reconcile`] compares a scope's holders in Redis and Postgres and repairs the copy;
//!   [`quantity`] changes a scope's quantity while it issues, never below what it issued.
//! * [`durability`]: whether Redis keeps what the configured durability needs; [`confirm`]: the
//!   replica confirmation (`WAIT`) of replica mode.
//! * [`script`], [`keys`], [`stream`]: the script registry (one script per `lua/` file), key
//!   naming, and the issuance stream the drain reads (with its lag).

pub mod admission;
pub mod blocks;
pub mod cache;
pub mod confirm;
pub mod coupons;
pub mod durability;
pub mod engine;
pub mod first_come;
pub mod group_commit;
pub mod idle;
pub mod issue;
pub mod keys;
pub mod leases;
pub mod meta;
pub mod positions;
pub mod quantity;
pub mod reconcile;
pub mod reservations;
pub mod room_memory;
pub mod scope;
pub mod script;
pub mod stream;
pub mod ticket_events;
pub mod tickets;

pub use engine::{Engine, EngineOptions};
pub use keys::Keys;
