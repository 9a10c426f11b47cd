//! Best products: the top products by units sold in PAID orders over the last three whole KST
//! days, computed once a day (the workers' 00:00 KST job, or an admin) into a snapshot that
//! `GET /api/v1/products/best` serves.
//!
//! A snapshot belongs to a KST day `D` and covers `[D-3 00:00, D 00:00)` KST by payment time.
//! Computing `D` again replaces its snapshot with the same answer (unless sales were corrected
//! meanwhile), so the job is idempotent per day and safe to run in several processes at once.

use chrono::{DateTime, Days, NaiveDate, Utc};
use issuance_core::{clock, error::Error};
use sqlx::PgPool;
use store::best_products::Snapshot;

/// Whole KST days a snapshot covers.
pub const RANGE_DAYS: u32 = 3;
/// Products a snapshot keeps.
pub const TOP: i64 = 5;

/// The window of day `day`: `[day - 3 days, day)` at KST midnights.
pub fn window(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = day
        .checked_sub_days(Days::new(RANGE_DAYS.into()))
        .expect("within chrono's range");
    (clock::kst_midnight(from), clock::kst_midnight(day))
}

/// Computes (or recomputes) day `day`'s snapshot.
pub async fn compute(db: &PgPool, day: NaiveDate) -> Result<Snapshot, Error> {
    let (from, to) = window(day);
    let mut tx = db.begin().await?;
    // The upsert locks the day's row: concurrent runs of one day take turns.
    let mut snapshot =
        store::best_products::upsert_snapshot(&mut tx, day, RANGE_DAYS as i32, from, to).await?;
    snapshot.items = store::best_products::replace_items(&mut tx, day, from, to, TOP).await?;
    tx.commit().await?;
    metrics::counter!("issuer_best_products_runs_total").increment(1);
    tracing::info!(%day, items = snapshot.items.len(), "best products computed");
    Ok(snapshot)
}

/// Computes today's (KST) snapshot unless it exists; for a process that starts after a missed
/// midnight. Returns whether it computed.
pub async fn catch_up(db: &PgPool, now: DateTime<Utc>) -> Result<bool, Error> {
    let today = clock::kst_date(now);
    if store::best_products::latest(db)
        .await?
        .is_some_and(|s| s.day >= today)
    {
        return Ok(false);
    }
    compute(db, today).await?;
    Ok(true)
}

/// The newest snapshot, if any was computed.
pub async fn latest(db: &PgPool) -> Result<Option<Snapshot>, Error> {
    let Some(mut snapshot) = store::best_products::latest(db).await? else {
        return Ok(None);
    };
    snapshot.items = store::best_products::items(db, snapshot.day).await?;
    Ok(Some(snapshot))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_three_whole_kst_days_before() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let (from, to) = window(day);
        assert_eq!(clock::format_kst(from), "2026-02-26T00:00:00+09:00");
        assert_eq!(clock::format_kst(to), "2026-03-01T00:00:00+09:00");
        assert_eq!(from.to_rfc3339(), "2026-02-25T15:00:00+00:00");
    }
}
