//! Order expiry: fails unpaid orders once their deadline passes and gives their stock and
//! coupons back (`shop::orders::expire_due`).
//!
//! Every workers process runs this loop. Each pass locks due orders with `FOR UPDATE SKIP
//! LOCKED`, so two processes never take the same order, and one a payment holds is left for the
//! next pass (by then it is PAID, or still due). An order leaves NOT_PAID once, in the
//! transaction that gives its stock and coupon back: exactly once, with any number of workers.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::poll;

/// Orders failed per transaction.
const BATCH: i64 = 100;

/// Runs until `shutdown`, looking for due orders every `every`.
pub async fn run(db: PgPool, every: Duration, shutdown: CancellationToken) {
    let db = &db;
    poll::repeat(&shutdown, move || async move {
        match shop::orders::expire_due(db, BATCH).await {
            Ok(n) if n as i64 == BATCH => None,
            Ok(_) => Some(every),
            Err(e) => {
                tracing::warn!(error = %e, "order expiry pass failed");
                Some(every * 4)
            }
        }
    })
    .await;
}
