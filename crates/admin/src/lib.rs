//! The admin back office (SPEC §3): marketing events, coupon inventories and batches, the jobs
//! that make a batch's codes (and their apalis queue), the codes themselves, partner CSV
//! uploads, users and products, the dashboard and the gauges measured at scrape time.
//!
//! Each module holds its rules (lifecycles, limits) and the functions the handlers call when
//! there is a rule to apply; the rows and the SQL are in `store`, and reads with nothing to add
//! are called there directly. Every refusal is an `Error::Refused` or `Error::NotFound` naming
//! the seed's code.

pub mod batches;
pub mod catalog;
pub mod codes;
pub mod dashboard;
pub mod events;
pub mod gauges;
pub mod inventories;
pub mod jobs;
pub mod partner_csv;
pub mod queue;
