//! `deployment_settings`: values fixed once per database.

use sqlx::PgExecutor;

use crate::error::Error;

/// Stores `value` under `name` unless a value is there already (then `value` is ignored);
/// returns the value that holds.
pub async fn pin(db: impl PgExecutor<'_>, name: &str, value: &str) -> Result<String, Error> {
    Ok(sqlx::query_scalar(
        "WITH ins AS (
             INSERT INTO deployment_settings (name, value) VALUES ($1, $2)
             ON CONFLICT (name) DO NOTHING RETURNING value)
         SELECT value FROM ins
         UNION ALL SELECT value FROM deployment_settings WHERE name = $1
         LIMIT 1",
    )
    .bind(name)
    .bind(value)
    .fetch_one(db)
    .await?)
}

/// The code-secret fingerprint a generation job recorded, if any job did (a database that
/// holds generated codes from before the settings table).
pub async fn recorded_code_fingerprint(db: impl PgExecutor<'_>) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT key_fingerprint FROM coupon_jobs WHERE key_fingerprint IS NOT NULL
         ORDER BY job_id LIMIT 1",
    )
    .fetch_optional(db)
    .await?)
}
