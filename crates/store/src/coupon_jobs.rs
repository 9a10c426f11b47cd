//! `coupon_jobs` and `coupon_job_uploads`: the jobs' truth, their leases and progress.
//!
//! A worker holds a job by its lease (`lease_owner`, `lease_until`) and renews it with every
//! committed chunk; every write a worker makes is conditional on still holding it, so a worker
//! that lost its job (cancelled, or taken over after it stalled) changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::{JobStatus, JobType},
    error::{Error, Refusal},
    paging::{Page, Paging},
};
use sqlx::{PgExecutor, PgPool, Postgres, QueryBuilder};

const COLUMNS: &str = "job_id, job_type, batch_id, job_status, total, processed, message, result, \
                       key_fingerprint, attempts, requested_by, created_at, updated_at, started_at, finished_at";

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Inserts a PENDING job; `DuplicateBatchJob` while the batch has a live one.
pub async fn insert(
    db: impl PgExecutor<'_>,
    job_type: JobType,
    batch_id: i64,
    total: i32,
    message: &str,
    actor: &str,
) -> Result<Job, Error> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO coupon_jobs (job_type, batch_id, total, message, requested_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
    )))
    .bind(job_type)
    .bind(batch_id)
    .bind(total)
    .bind(message)
    .bind(actor)
    .fetch_one(db)
    .await
    .map_err(|err| match crate::constraint(&err) {
        Some("coupon_jobs_live_batch_key") => Error::Refused(Refusal::DuplicateBatchJob),
        _ => err.into(),
    })
}

/// Keeps an upload's CSV with its job.
pub async fn store_upload(db: impl PgExecutor<'_>, job_id: i64, body: &[u8]) -> Result<(), Error> {
    sqlx::query("INSERT INTO coupon_job_uploads (job_id, body) VALUES ($1, $2)")
        .bind(job_id)
        .bind(body)
        .execute(db)
        .await?;
    Ok(())
}

/// An upload's CSV.
///
/// Read in 1 MiB slices: a connection's receive buffer grows to the largest row it ever read and
/// keeps that size, so one 64 MiB row would pin 64 MiB on every pooled connection that loads an
/// upload, besides the copy decoded from it.
pub async fn load_upload(db: &sqlx::PgPool, job_id: i64) -> Result<Option<Vec<u8>>, Error> {
    const SLICE: i32 = 1 << 20;
    let Some(len): Option<i32> =
        sqlx::query_scalar("SELECT octet_length(body) FROM coupon_job_uploads WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(db)
            .await?
    else {
        return Ok(None);
    };
    let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut from = 1;
    while from <= len {
        let part: Vec<u8> = sqlx::query_scalar(
            "SELECT substring(body FROM $2 FOR $3) FROM coupon_job_uploads WHERE job_id = $1",
        )
        .bind(job_id)
        .bind(from)
        .bind(SLICE)
        .fetch_one(db)
        .await?;
        body.extend_from_slice(&part);
        from += SLICE;
    }
    Ok(Some(body))
}

/// One job.
pub async fn find(db: impl PgExecutor<'_>, job_id: i64) -> Result<Option<Job>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupon_jobs WHERE job_id = $1"
    )))
    .bind(job_id)
    .fetch_optional(db)
    .await?)
}

/// Whether the batch has a PENDING or IN_PROGRESS job.
pub async fn has_live_job(db: impl PgExecutor<'_>, batch_id: i64) -> Result<bool, Error> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM coupon_jobs
                        WHERE batch_id = $1 AND job_status IN ('PENDING', 'IN_PROGRESS'))",
    )
    .bind(batch_id)
    .fetch_one(db)
    .await?)
}

fn push_filters(qb: &mut QueryBuilder<Postgres>, f: &JobFilter) {
    qb.push(" WHERE true");
    if let Some(status) = f.status {
        qb.push(" AND job_status = ").push_bind(status);
    }
    if let Some(kind) = f.job_type {
        qb.push(" AND job_type = ").push_bind(kind);
    }
    if let Some(batch) = f.batch_id {
        qb.push(" AND batch_id = ").push_bind(batch);
    }
}

/// A page of jobs, newest first.
pub async fn list(db: &PgPool, f: &JobFilter) -> Result<Page<Job>, Error> {
    crate::page(
        db,
        "coupon_jobs",
        COLUMNS,
        |qb| push_filters(qb, f),
        " ORDER BY created_at DESC, job_id DESC",
        f.paging,
    )
    .await
}

/// Cancels a live job; `None` when it is not live (or does not exist). A generation job that may
/// have written rows is marked for cleanup.
pub async fn cancel(db: impl PgExecutor<'_>, job_id: i64, message: &str) -> Result<Option<Job>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_jobs SET job_status = 'CANCELLED', message = $2, finished_at = now(),
                updated_at = now(), lease_until = NULL,
                needs_cleanup = (job_type = 'COUPON_GENERATION' AND job_status = 'IN_PROGRESS')
         WHERE job_id = $1 AND job_status IN ('PENDING', 'IN_PROGRESS')
         RETURNING {COLUMNS}"
    )))
    .bind(job_id)
    .bind(message)
    .fetch_optional(db)
    .await?)
}

/// Takes a job that is PENDING, or IN_PROGRESS under an expired lease (its worker is gone), for
/// `owner` until `lease` from now; `None` when it is held elsewhere or has ended.
pub async fn claim(
    db: impl PgExecutor<'_>,
    job_id: i64,
    owner: &str,
    lease: Duration,
    message: &str,
) -> Result<Option<Job>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE coupon_jobs SET job_status = 'IN_PROGRESS', lease_owner = $2,
                lease_until = clock_timestamp() + make_interval(secs => $3), attempts = attempts + 1,
                started_at = coalesce(started_at, now()), updated_at = now(), message = $4
         WHERE job_id = $1
           AND (job_status = 'PENDING' OR (job_status = 'IN_PROGRESS' AND lease_until < now()))
         RETURNING {COLUMNS}"
    )))
    .bind(job_id)
    .bind(owner)
    .bind(secs(lease))
    .bind(message)
    .fetch_optional(db)
    .await?)
}

/// Records which code secret the job's codes come from (once).
pub async fn set_fingerprint(db: impl PgExecutor<'_>, job_id: i64, fingerprint: &str) -> Result<(), Error> {
    sqlx::query("UPDATE coupon_jobs SET key_fingerprint = $2 WHERE job_id = $1 AND key_fingerprint IS NULL")
        .bind(job_id)
        .bind(fingerprint)
        .execute(db)
        .await?;
    Ok(())
}

/// Moves progress from `from` to `to` and renews the lease, in the transaction that wrote the
/// chunk; `false` (roll the chunk back) when the job was cancelled, taken over or moved already.
///
/// Leases run from `clock_timestamp()`, the moment the row is written: `now()` is when the
/// transaction (or the statement, before it waited for the row lock) began, and a block that
/// took longer than the lease to write would renew it into the past, so the sweeper would hand
/// a live job on.
pub async fn advance(
    db: impl PgExecutor<'_>,
    job_id: i64,
    owner: &str,
    from: i32,
    to: i32,
    lease: Duration,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE coupon_jobs SET processed = $4, lease_until = clock_timestamp() + make_interval(secs => $5),
                updated_at = now()
         WHERE job_id = $1 AND lease_owner = $2 AND job_status = 'IN_PROGRESS' AND processed = $3",
    )
    .bind(job_id)
    .bind(owner)
    .bind(from)
    .bind(to)
    .bind(secs(lease))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks the job COMPLETED (in the transaction of its last writes); `false` when it was
/// cancelled or taken over meanwhile.
pub async fn complete(
    db: impl PgExecutor<'_>,
    job_id: i64,
    owner: &str,
    processed: i32,
    message: &str,
    result: Option<&serde_json::Value>,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE coupon_jobs SET job_status = 'COMPLETED', processed = $3, message = $4, result = $5,
                finished_at = now(), updated_at = now(), lease_until = NULL
         WHERE job_id = $1 AND lease_owner = $2 AND job_status = 'IN_PROGRESS'",
    )
    .bind(job_id)
    .bind(owner)
    .bind(processed)
    .bind(message)
    .bind(result)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a live job FAILED with its reason; its rows are cleaned up afterwards.
pub async fn fail(db: impl PgExecutor<'_>, job_id: i64, message: &str) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE coupon_jobs SET job_status = 'FAILED', message = $2, finished_at = now(),
                updated_at = now(), lease_until = NULL,
                needs_cleanup = (job_type = 'COUPON_GENERATION')
         WHERE job_id = $1 AND job_status IN ('PENDING', 'IN_PROGRESS')",
    )
    .bind(job_id)
    .bind(message)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Extends the lease of a job `owner` still holds; `false` when it no longer does.
pub async fn renew(
    db: impl PgExecutor<'_>,
    job_id: i64,
    owner: &str,
    lease: Duration,
) -> Result<bool, Error> {
    let done = sqlx::query(
        "UPDATE coupon_jobs SET lease_until = clock_timestamp() + make_interval(secs => $3)
         WHERE job_id = $1 AND lease_owner = $2 AND job_status = 'IN_PROGRESS'",
    )
    .bind(job_id)
    .bind(owner)
    .bind(secs(lease))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives the job back (shutdown): its lease expires now, so the sweeper hands it on at once.
pub async fn release(db: impl PgExecutor<'_>, job_id: i64, owner: &str) -> Result<(), Error> {
    sqlx::query(
        "UPDATE coupon_jobs SET lease_until = now(), updated_at = now()
         WHERE job_id = $1 AND lease_owner = $2 AND job_status = 'IN_PROGRESS'",
    )
    .bind(job_id)
    .bind(owner)
    .execute(db)
    .await?;
    Ok(())
}

/// The job's status now.
pub async fn status(db: impl PgExecutor<'_>, job_id: i64) -> Result<Option<JobStatus>, Error> {
    Ok(
        sqlx::query_scalar("SELECT job_status FROM coupon_jobs WHERE job_id = $1")
            .bind(job_id)
            .fetch_optional(db)
            .await?,
    )
}

/// IN_PROGRESS jobs whose worker is gone (lease expired) and that were not handed on in the
/// last `every`: marks them handed on now and returns them (the caller pushes their tasks in
/// the same transaction).
pub async fn take_orphans(db: impl PgExecutor<'_>, every: Duration) -> Result<Vec<i64>, Error> {
    Ok(sqlx::query_scalar(
        "UPDATE coupon_jobs SET requeued_at = now()
         WHERE job_id IN (
             SELECT job_id FROM coupon_jobs
             WHERE job_status = 'IN_PROGRESS' AND lease_until < now()
               AND (requeued_at IS NULL OR requeued_at < now() - make_interval(secs => $1))
             FOR UPDATE SKIP LOCKED)
         RETURNING job_id",
    )
    .bind(secs(every))
    .fetch_all(db)
    .await?)
}

/// Batches with rows of cancelled or failed jobs still to delete.
pub async fn batches_to_clean(db: impl PgExecutor<'_>, limit: i64) -> Result<Vec<i64>, Error> {
    Ok(
        sqlx::query_scalar("SELECT DISTINCT batch_id FROM coupon_jobs WHERE needs_cleanup LIMIT $1")
            .bind(limit)
            .fetch_all(db)
            .await?,
    )
}

/// The batch's leftovers are gone.
pub async fn cleaned(db: impl PgExecutor<'_>, batch_id: i64) -> Result<(), Error> {
    sqlx::query("UPDATE coupon_jobs SET needs_cleanup = false WHERE batch_id = $1 AND needs_cleanup")
        .bind(batch_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Drops an ended upload's CSV.
pub async fn drop_upload(db: impl PgExecutor<'_>, job_id: i64) -> Result<(), Error> {
    sqlx::query("DELETE FROM coupon_job_uploads WHERE job_id = $1")
        .bind(job_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Jobs per status (every status, zeros included).
pub async fn count_by_status(db: &PgPool) -> Result<Vec<(String, i64)>, Error> {
    Ok(sqlx::query_as(
        "SELECT s::text, count(j.job_id)
         FROM unnest(enum_range(NULL::job_status)) s
         LEFT JOIN coupon_jobs j ON j.job_status = s
         GROUP BY s ORDER BY s",
    )
    .fetch_all(db)
    .await?)
}

/// Jobs PENDING or IN_PROGRESS, and those that finished less than `since` ago (none when zero),
/// oldest first.
pub async fn live_or_recent(db: impl PgExecutor<'_>, since: Duration, limit: i64) -> Result<Vec<Job>, Error> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM coupon_jobs
         WHERE job_status IN ('PENDING', 'IN_PROGRESS')
            OR finished_at > now() - make_interval(secs => $1)
         ORDER BY created_at LIMIT $2"
    )))
    .bind(since.as_secs_f64())
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// A job as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Job {
    /// Its id (snowflake-style).
    pub job_id: i64,
    /// What it does.
    pub job_type: JobType,
    /// Its batch.
    pub batch_id: i64,
    /// Where it is.
    pub job_status: JobStatus,
    /// Units of work in all (codes, or CSV lines).
    pub total: i32,
    /// Units done and committed.
    pub processed: i32,
    /// What an admin reads.
    pub message: String,
    /// The per-line report of an upload.
    pub result: Option<serde_json::Value>,
    /// The code secret's fingerprint (generation).
    pub key_fingerprint: Option<String>,
    /// Workers that took it.
    pub attempts: i32,
    /// Who asked for it.
    pub requested_by: String,
    /// When it was asked for.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When a worker first took it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// Percent done, one decimal.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            return if self.job_status == JobStatus::Completed {
                100.0
            } else {
                0.0
            };
        }
        (f64::from(self.processed) * 1000.0 / f64::from(self.total)).floor() / 10.0
    }
}

/// The list filters.
#[derive(Clone, Debug)]
pub struct JobFilter {
    /// `jobStatus`.
    pub status: Option<JobStatus>,
    /// `jobType`.
    pub job_type: Option<JobType>,
    /// `batchId`.
    pub batch_id: Option<i64>,
    /// `page`, `size` (newest first).
    pub paging: Paging,
}
