//! Deleting the rows of cancelled and failed generation jobs.
//!
//! Those rows never counted (they sit at positions at or above the batch's `code_count`); this
//! only gives the space back. A block at a time, each under the batch's row lock and only while
//! no job is live for the batch: a new job deletes the leftovers itself before it writes, and
//! must never lose its own rows to a cleanup.

use issuance_core::code_generator::BLOCK_SIZE;
use sqlx::PgPool;

/// Blocks a batch can span (10M codes / 2^18 per block < 64).
const MAX_BLOCKS: i64 = 64;

/// Deletes every row of the batch at or above position `from` (the caller holds the batch's
/// live job).
pub async fn delete_leftovers(db: &PgPool, batch_id: i64, from: i32) -> Result<u64, issuance_core::Error> {
    let mut deleted = 0;
    for block in 0..MAX_BLOCKS {
        let (lo, hi) = (block * i64::from(BLOCK_SIZE), (block + 1) * i64::from(BLOCK_SIZE));
        if hi <= i64::from(from) {
            continue;
        }
        deleted += store::coupon_codes::delete_range(db, batch_id, lo.max(i64::from(from)), hi).await?;
    }
    Ok(deleted)
}

/// Deletes the leftovers of a batch whose jobs ended badly, unless a job is live for it.
pub async fn clean_batch(db: &PgPool, batch_id: i64) -> Result<(), issuance_core::Error> {
    let mut deleted = 0;
    for block in 0..MAX_BLOCKS {
        let mut tx = db.begin().await?;
        let Some(code_count) = store::coupon_batches::lock_code_count(&mut *tx, batch_id).await? else {
            break;
        };
        if store::coupon_jobs::has_live_job(&mut *tx, batch_id).await? {
            // The live job deletes them before it writes.
            break;
        }
        let (lo, hi) = (block * i64::from(BLOCK_SIZE), (block + 1) * i64::from(BLOCK_SIZE));
        if hi > i64::from(code_count) {
            deleted +=
                store::coupon_codes::delete_range(&mut *tx, batch_id, lo.max(i64::from(code_count)), hi)
                    .await?;
        }
        tx.commit().await?;
    }
    store::coupon_jobs::cleaned(db, batch_id).await?;
    if deleted > 0 {
        tracing::info!(batch_id, deleted, "leftover codes deleted");
    }
    Ok(())
}
