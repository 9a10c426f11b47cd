//! Integration tests: the real api (and drain) against real Redis and Postgres.
//!
//! Each test gets its own database and Redis key prefix (see `helpers::TestApp`), so tests run
//! in parallel. Set `TEST_DATABASE_URL` (a server URL, without database) and `TEST_REDIS_URL`
//! to point elsewhere than the local defaults.

mod admin;
mod admission;
mod batch;
mod best_products;
mod burst;
mod cluster;
mod contract;
mod coupon_jobs;
mod coupon_shards;
mod coupons;
mod daily;
mod drain;
mod durability;
mod events;
mod faults;
mod helpers;
mod invariants;
mod limits;
mod lost_answers;
mod marketing;
mod observability;
mod orders;
mod outage;
mod outbox;
mod partial_loss;
mod partition;
mod points;
mod private_pg;
mod processes;
mod products;
mod quantity;
mod secrets;
mod shards;
mod tickets;
