//! Coupon jobs: the apalis worker that runs them and the sweeper that keeps them moving.
//!
//! # How a job runs
//!
//! The api writes a `coupon_jobs` row and its apalis task in one transaction. Whichever workers
//! process fetches the task **claims** the job: it takes a lease (`lease_owner`, `lease_until`)
//! if the job is PENDING, or IN_PROGRESS under an expired lease. Every chunk it writes commits
//! together with the progress step and a renewed lease, conditionally on still holding the job;
//! so a job runs in one place at a time, and a cancelled job stops at its next chunk with that
//! chunk rolled back.
//!
//! # Crashes
//!
//! A worker killed mid-job leaves the job IN_PROGRESS with committed progress. Its lease expires;
//! the [`sweeper`] of any workers process then pushes a new task, and the next worker resumes at
//! `processed`: generated codes are a pure function of their position, so nothing is written
//! twice and nothing is skipped. A job taken over more than `JOB_MAX_ATTEMPTS` times fails with
//! that reason. Rows of cancelled or failed jobs never count (see `issuer::admin::jobs`) and are
//! deleted by the worker that saw the job end, or by the sweeper.

pub mod cleanup;
pub mod generate;
pub mod sweeper;
pub mod upload;

use std::{sync::Arc, time::Duration};

use apalis::prelude::{BoxDynError, Data};
use issuer::{
    admin::jobs::{Job, JobType, messages},
    codes::CodeGenerator,
    queue::RunCouponJob,
    repo,
};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::config::JobsConfig;

/// How a run ended, when it did not fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The job is COMPLETED.
    Completed,
    /// The job was cancelled or taken over; this worker stopped.
    Stopped,
    /// This process is shutting down; the job was handed back.
    Released,
}

/// A failure that ends the job (FAILED, with this text in its message).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobFailure(pub String);

/// What a run can return: the job's outcome, a reason to fail it, or an infrastructure error.
pub type RunResult = Result<Result<Outcome, JobFailure>, issuer::Error>;

/// Everything a job needs; shared by the apalis handler and the sweeper.
pub struct JobRunner {
    /// Postgres.
    pub db: PgPool,
    /// The code generator (from `CODE_SECRET`).
    pub generator: CodeGenerator,
    /// This process's name in leases.
    pub owner: String,
    /// Settings.
    pub cfg: JobsConfig,
    /// Stops runs between chunks.
    pub shutdown: CancellationToken,
}

impl JobRunner {
    /// Claims job `job_id` and runs it to its end (or until it is cancelled, taken over or this
    /// process stops). A job held by a live worker, or already ended, is left alone.
    pub async fn run(&self, job_id: i64) -> Result<(), issuer::Error> {
        let Some(job) = repo::jobs::find(&self.db, job_id).await? else {
            return Ok(());
        };
        let message = match job.job_type {
            JobType::CouponGeneration => messages::GENERATING,
            JobType::PartnerCouponUpload => messages::UPLOADING,
        };
        let Some(job) = repo::jobs::claim(&self.db, job_id, &self.owner, self.cfg.lease, message).await?
        else {
            return Ok(());
        };
        tracing::info!(job_id, job_type = ?job.job_type, processed = job.processed, attempt = job.attempts, "job claimed");
        let heartbeat = self.heartbeat(job_id);
        let result = if job.attempts > self.cfg.max_attempts {
            Ok(Err(JobFailure(format!(
                "작업을 처리하던 워커가 {}번 중단되어 작업을 포기했습니다.",
                job.attempts - 1
            ))))
        } else {
            match job.job_type {
                JobType::CouponGeneration => generate::run(self, &job).await,
                JobType::PartnerCouponUpload => upload::run(self, &job).await,
            }
        };
        heartbeat.abort();
        self.finish(&job, result).await
    }

    /// Renews the job's lease every third of it while this run lasts, so a slow block (a busy
    /// machine, a huge batch) never looks like a dead worker; a killed process stops renewing and
    /// its lease runs out.
    fn heartbeat(&self, job_id: i64) -> tokio::task::JoinHandle<()> {
        let (db, owner, lease) = (self.db.clone(), self.owner.clone(), self.cfg.lease);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match repo::jobs::renew(&db, job_id, &owner, lease).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => tracing::warn!(job_id, error = %e, "lease renewal failed"),
                }
            }
        })
    }

    async fn finish(&self, job: &Job, result: RunResult) -> Result<(), issuer::Error> {
        let kind = job.job_type.as_str();
        let outcome = match result {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(JobFailure(reason))) => {
                tracing::warn!(job_id = job.job_id, reason, "job failed");
                let message = format!("작업이 실패했습니다: {reason}");
                repo::jobs::fail(&self.db, job.job_id, &message).await?;
                metrics::counter!("issuer_jobs_finished_total", "job_type" => kind, "status" => "FAILED")
                    .increment(1);
                cleanup::clean_batch(&self.db, job.batch_id).await?;
                return Ok(());
            }
            Err(e) => {
                // Postgres trouble: give the job back; the sweeper hands it on once Postgres
                // answers again, and a later worker resumes from the committed progress.
                tracing::error!(job_id = job.job_id, error = %e, "job interrupted");
                let _ = repo::jobs::release(&self.db, job.job_id, &self.owner).await;
                return Err(e);
            }
        };
        match outcome {
            Outcome::Completed => {
                tracing::info!(job_id = job.job_id, "job completed");
                metrics::counter!("issuer_jobs_finished_total", "job_type" => kind, "status" => "COMPLETED")
                    .increment(1);
            }
            Outcome::Stopped => {
                let status = repo::jobs::status(&self.db, job.job_id).await?;
                tracing::info!(job_id = job.job_id, ?status, "job stopped");
                if status == Some(issuer::admin::jobs::JobStatus::Cancelled) {
                    metrics::counter!("issuer_jobs_finished_total", "job_type" => kind, "status" => "CANCELLED").increment(1);
                    cleanup::clean_batch(&self.db, job.batch_id).await?;
                }
            }
            Outcome::Released => {
                repo::jobs::release(&self.db, job.job_id, &self.owner).await?;
                tracing::info!(job_id = job.job_id, "job handed back at shutdown");
            }
        }
        Ok(())
    }
}

/// The apalis handler: one task, one job run. Errors are infrastructure errors; apalis retries
/// them, and the lease sweeper covers what retries do not.
pub async fn handle(task: RunCouponJob, runner: Data<Arc<JobRunner>>) -> Result<(), BoxDynError> {
    runner
        .run(task.job_id)
        .await
        .map_err(|e| Box::new(e) as BoxDynError)
}

/// Retries a Postgres step a few times (a failover, a dropped connection) before giving up.
pub(crate) async fn with_retries<T, F, Fut>(mut step: F) -> Result<T, issuer::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, issuer::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for _ in 0..3 {
        match step().await {
            Err(issuer::Error::Db(e)) if is_transient(&e) => {
                tracing::warn!(error = %e, "retrying a job step");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            other => return other,
        }
    }
    step().await
}

fn is_transient(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Protocol(_)
    ) || e
        .as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|c| c.starts_with("40") || c.starts_with("08") || c == "57P01")
}

/// Starts the apalis worker (`JOB_CONCURRENCY` jobs at once) and the sweeper; both stop when
/// the runner's shutdown token is cancelled (a running job is handed back between blocks).
pub fn spawn(runner: Arc<JobRunner>) -> tokio::task::JoinHandle<()> {
    use apalis::{
        layers::WorkerBuilderExt,
        prelude::{BackendExt, Monitor, Strategy, WorkerBuilder},
    };
    use apalis_postgres::{Config as QueueConfig, PostgresStorage};

    let shutdown = runner.shutdown.clone();
    let sweeper = tokio::spawn(sweeper::run(Arc::clone(&runner), shutdown.clone()));
    tokio::spawn(async move {
        let storage = PostgresStorage::<RunCouponJob>::new(&runner.db)
            .with_config(
                QueueConfig::default()
                    .queue(issuer::queue::COUPON_JOBS)
                    .heartbeat_interval(Duration::from_secs(5)),
            )
            .poll_with_strategy(Strategy::new().interval(runner.cfg.poll_every));
        let name = runner.owner.clone();
        let concurrency = runner.cfg.concurrency.max(1);
        let data = Arc::clone(&runner);
        let monitor = Monitor::new()
            .register(move |i| {
                WorkerBuilder::new(format!("{name}-jobs-{i}"))
                    .backend(storage.clone())
                    .concurrency(concurrency)
                    .data(Arc::clone(&data))
                    .build(handle)
            })
            .shutdown_timeout(Duration::from_secs(30));
        let stop = shutdown.clone();
        let signal = async move {
            stop.cancelled().await;
            Ok(())
        };
        if let Err(e) = monitor.run_with_signal(signal).await {
            tracing::error!(error = %e, "coupon job worker stopped");
        }
        let _ = sweeper.await;
    })
}
