//! The admin API's domain (SPEC §3): marketing events, coupon inventories and batches, the jobs
//! that make a batch's codes, the codes themselves, users and products, and the dashboard.
//!
//! Each module holds its nouns, its rules (lifecycles, limits) and the functions the handlers
//! call; the SQL is in [`crate::repo`]. Every refusal is an [`crate::Error::Refused`] or
//! [`crate::Error::NotFound`] naming the seed's code.

pub mod batches;
pub mod catalog;
pub mod codes;
pub mod dashboard;
pub mod events;
pub mod inventories;
pub mod jobs;
pub mod listing;
pub mod partner_csv;

use std::collections::HashMap;

use fred::interfaces::HashesInterface;

use crate::{Engine, error::Error};

/// Coupons issued from each batch, live: the size of its holders hash in Redis (the issuance
/// core counts there, as for golden tickets). Batches nobody claimed yet are 0.
pub async fn issued_counts(engine: &Engine, batch_ids: &[i64]) -> Result<HashMap<i64, i64>, Error> {
    let client = engine.redis().next();
    let lens = futures::future::try_join_all(batch_ids.iter().map(|id| {
        let key = engine.keys().coupon_batch(*id).holders;
        async move { client.hlen::<i64, _>(key).await }
    }))
    .await?;
    Ok(batch_ids.iter().copied().zip(lens).collect())
}
