//! The nightly best-products job: an apalis-cron worker that, at every tick of its schedule
//! (`BEST_PRODUCTS_CRON`, default `0 0 0 * * *` in Asia/Seoul: 00:00 KST), computes the KST
//! day's snapshot (`shop::best_products`). A process that starts after a missed midnight
//! computes today's snapshot at once. Every workers process runs the job; a day's snapshot is
//! the same whoever computes it, and concurrent runs take turns on the day's row.

use apalis::prelude::{BoxDynError, Data, Monitor, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// The default schedule (seconds first): midnight.
pub const DEFAULT_SCHEDULE: &str = "0 0 0 * * *";

/// The zone the schedule is read in.
pub const ZONE: Tz = chrono_tz::Asia::Seoul;

/// Catches up on a missed day, then runs the cron worker until `shutdown`.
pub fn spawn(
    db: PgPool,
    schedule: cron::Schedule,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match shop::best_products::catch_up(&db, Utc::now()).await {
            Ok(true) => tracing::info!("best products: today's snapshot was missing, computed"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "best products catch-up failed"),
        }
        let backend = CronScheduler::new(schedule).with_timezone(ZONE);
        let monitor = Monitor::new().register(move |_| {
            WorkerBuilder::new("best-products")
                .backend(backend.clone())
                .data(db.clone())
                .build(nightly)
        });
        let signal = async move {
            shutdown.cancelled().await;
            Ok(())
        };
        if let Err(e) = monitor.run_with_signal(signal).await {
            tracing::error!(error = %e, "best-products worker stopped");
        }
    })
}

/// One tick: the snapshot of the KST day the tick falls on.
async fn nightly(tick: Tick<Tz>, db: Data<PgPool>) -> Result<(), BoxDynError> {
    let at = i64::try_from(tick.get_timestamp())
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
        .unwrap_or_else(Utc::now);
    shop::best_products::compute(&db, issuance_core::clock::kst_date(at)).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_default_schedule_fires_at_kst_midnight() {
        let schedule = cron::Schedule::from_str(DEFAULT_SCHEDULE).unwrap();
        let after = Utc.with_ymd_and_hms(2026, 3, 9, 16, 0, 0).unwrap(); // 01:00 KST
        let next = schedule.after(&after.with_timezone(&ZONE)).next().unwrap();
        assert_eq!(
            next.with_timezone(&Utc),
            Utc.with_ymd_and_hms(2026, 3, 10, 15, 0, 0).unwrap()
        );
        assert_eq!(
            issuance_core::clock::kst_date(next.with_timezone(&Utc)),
            chrono::NaiveDate::from_ymd_opt(2026, 3, 11).unwrap()
        );
    }
}
