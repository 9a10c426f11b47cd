//! `campaign_jobs`: recommendation and banner jobs. The row is the truth; a worker claims it
//! with a lease (PENDING, or PROCESSING under an expired lease), and every later write is
//! conditional on still holding it, so a job taken over from a stalled worker is finished once.

use std::time::Duration;

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::{CampaignJobKind, CampaignJobStatus},
    error::Error,
};
use sqlx::PgExecutor;
use uuid::Uuid;

const COLUMNS: &str =
    "job_id, campaign_id, kind, status, progress, result, error, attempts, created_at, updated_at";

/// A job as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CampaignJob {
    /// Its id.
    pub job_id: Uuid,
    /// The campaign it works for.
    pub campaign_id: Uuid,
    /// Recommendations or banners.
    pub kind: CampaignJobKind,
    /// PENDING, PROCESSING, COMPLETED or FAILED.
    pub status: CampaignJobStatus,
    /// 0–100.
    pub progress: i32,
    /// What it produced (COMPLETED).
    pub result: Option<serde_json::Value>,
    /// Why it failed (FAILED).
    pub error: Option<String>,
    /// Claims so far.
    pub attempts: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Inserts a PENDING job.
pub async fn insert(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    campaign_id: Uuid,
    kind: CampaignJobKind,
) -> Result<CampaignJob, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO campaign_jobs (job_id, campaign_id, kind) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    )))
    .bind(job_id)
    .bind(campaign_id)
    .bind(kind)
    .fetch_one(db)
    .await?)
}

/// A job.
pub async fn find(db: impl PgExecutor<'_>, job_id: Uuid) -> Result<Option<CampaignJob>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM campaign_jobs WHERE job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(db)
    .await?)
}

/// Takes the job for `owner` (PENDING, or PROCESSING under an expired lease).
pub async fn claim(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    owner: &str,
    lease: Duration,
) -> Result<Option<CampaignJob>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE campaign_jobs SET status = 'PROCESSING', lease_owner = $2,
                lease_until = clock_timestamp() + make_interval(secs => $3),
                attempts = attempts + 1, updated_at = now()
         WHERE job_id = $1
           AND (status = 'PENDING' OR (status = 'PROCESSING' AND lease_until < clock_timestamp()))
         RETURNING {COLUMNS}"
    )))
    .bind(job_id)
    .bind(owner)
    .bind(secs(lease))
    .fetch_optional(db)
    .await?)
}

/// Records progress (and renews the lease) while `owner` holds the job; false once it does not.
pub async fn progress(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    owner: &str,
    lease: Duration,
    progress: i32,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE campaign_jobs SET progress = greatest(progress, $3),
                lease_until = clock_timestamp() + make_interval(secs => $4), updated_at = now()
         WHERE job_id = $1 AND lease_owner = $2 AND status = 'PROCESSING'",
    )
    .bind(job_id)
    .bind(owner)
    .bind(progress)
    .bind(secs(lease))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// COMPLETED with its result, if `owner` still holds it.
pub async fn complete(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    owner: &str,
    result: &serde_json::Value,
) -> Result<Option<CampaignJob>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE campaign_jobs SET status = 'COMPLETED', progress = 100, result = $3, error = NULL,
                lease_owner = NULL, lease_until = NULL, updated_at = now()
         WHERE job_id = $1 AND lease_owner = $2 AND status = 'PROCESSING' RETURNING {COLUMNS}"
    )))
    .bind(job_id)
    .bind(owner)
    .bind(result)
    .fetch_optional(db)
    .await?)
}

/// FAILED with its reason, unless it already ended (`owner`: only if held by it; none: by anyone).
pub async fn fail(
    db: impl PgExecutor<'_>,
    job_id: Uuid,
    owner: Option<&str>,
    reason: &str,
) -> Result<Option<CampaignJob>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE campaign_jobs SET status = 'FAILED', error = $3, lease_owner = NULL, lease_until = NULL,
                updated_at = now()
         WHERE job_id = $1 AND status IN ('PENDING', 'PROCESSING')
           AND ($2::text IS NULL OR lease_owner = $2) RETURNING {COLUMNS}"
    )))
    .bind(job_id)
    .bind(owner)
    .bind(reason)
    .fetch_optional(db)
    .await?)
}

/// Jobs a worker stopped holding (lease expired) and jobs nobody took within `pending_for`,
/// with their claims so far.
pub async fn stalled(db: impl PgExecutor<'_>, pending_for: Duration) -> Result<Vec<(Uuid, i32)>, Error> {
    Ok(sqlx::query_as(
        "SELECT job_id, attempts FROM campaign_jobs
         WHERE (status = 'PROCESSING' AND lease_until < clock_timestamp())
            OR (status = 'PENDING' AND updated_at < clock_timestamp() - make_interval(secs => $1))
         ORDER BY created_at LIMIT 100",
    )
    .bind(secs(pending_for))
    .fetch_all(db)
    .await?)
}

/// Marks a stalled job as handed on (so it is not handed on again at once).
pub async fn touch(db: impl PgExecutor<'_>, job_id: Uuid) -> Result<(), Error> {
    sqlx::query(
        "UPDATE campaign_jobs SET updated_at = now(),
                lease_until = CASE WHEN status = 'PROCESSING' THEN lease_until END
         WHERE job_id = $1",
    )
    .bind(job_id)
    .execute(db)
    .await?;
    Ok(())
}
