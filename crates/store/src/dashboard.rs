//! The aggregates of the admin dashboard.

use issuance_core::{enums::EventStatus, error::Error};
use sqlx::PgExecutor;

/// Live admin events per status.
pub async fn events_by_status(db: impl PgExecutor<'_>) -> Result<Vec<(EventStatus, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT event_status, count(*) FROM events WHERE deleted_at IS NULL GROUP BY event_status",
    )
    .fetch_all(db)
    .await?)
}
