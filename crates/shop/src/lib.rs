//! The shop around the engine (SPEC §5): point wallets, products, orders and their payment,
//! the ORDER_PAID outbox, the nightly best products, and a user's coupons.
//!
//! Every write is one Postgres transaction through `store`; the only Redis read is the proof of
//! a coupon issue the drain has not written yet ([`engine::Engine::persist_issued_coupon`]).

pub mod best_products;
pub mod coupons;
pub mod orders;
pub mod outbox;
pub mod points;
pub mod products;
