//! The apalis queue that carries coupon jobs from the api to the workers.
//!
//! `coupon_jobs` (ours) is the truth about a job: its status, progress and lease. The queue only
//! says "run job N", and a task is pushed **in the same transaction** that creates the job (or
//! finds its worker gone), so a committed job always has a task and a rolled-back one never does.
//! A task for a job that is already running elsewhere or has ended does nothing, so a task
//! delivered twice is harmless.

use apalis::prelude::TaskBuilder;
use issuance_core::error::Error;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

/// The queue's name in `apalis.jobs`.
pub const COUPON_JOBS: &str = "coupon-jobs";

/// apalis retries a task whose handler failed (Postgres unreachable) this many times; the
/// lease sweeper brings back anything that still slips through.
const MAX_ATTEMPTS: usize = 5;

/// The task: run (or resume) this coupon job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCouponJob {
    /// `coupon_jobs.job_id`.
    pub job_id: i64,
}

/// Pushes a task for `job_id` inside the caller's transaction.
pub async fn push(tx: &mut PgConnection, job_id: i64) -> Result<(), Error> {
    let args = serde_json::to_vec(&RunCouponJob { job_id })
        .map_err(|e| Error::protocol("coupon job task", e.to_string()))?;
    let task = TaskBuilder::new(args).max_attempts(MAX_ATTEMPTS).build();
    apalis_postgres::queries::push_tasks(tx, COUPON_JOBS, vec![task])
        .await
        .map_err(|e| match e {
            apalis_postgres::Error::Database(db) => Error::Db(db),
            other => Error::protocol("apalis push", other.to_string()),
        })
}
