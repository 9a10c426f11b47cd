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
//! that reason. Rows of cancelled or failed jobs never count (see `admin::jobs`) and are
//! deleted by the worker that saw the job end, or by the sweeper.

pub mod cleanup;
pub mod generate;
pub mod runner;
pub mod sweeper;
pub mod upload;

pub use runner::JobRunner;

use std::{sync::Arc, time::Duration};

use admin::{jobs::messages, queue::RunCouponJob};
use apalis::prelude::{BoxDynError, Data};
use issuance_core::enums::JobType;
use store::coupon_jobs::Job;

use self::runner::{JobFailure, Outcome, RunResult};

/// Puts the job counters on `/metrics` at 0 for every job type and end, before any job ends.
///
/// The alerts read them with `increase()` and `rate()`, which need two samples of a series: a
/// counter that appeared only with the first failed job after a start would never show that
/// failure, and one that never appeared could not tell a stalled job from an idle process.
pub fn export_counters_at_zero() {
    for job_type in JobType::ALL.map(JobType::as_str) {
        metrics::counter!("issuer_job_processed_total", "job_type" => job_type).absolute(0);
        for status in ["COMPLETED", "FAILED", "CANCELLED"] {
            metrics::counter!("issuer_jobs_finished_total", "job_type" => job_type, "status" => status)
                .absolute(0);
        }
    }
    metrics::counter!("issuer_jobs_requeued_total").absolute(0);
}

/// Claims job `job_id` and runs it to its end (or until it is cancelled, taken over or this
/// process stops). A job held by a live worker, or already ended, is left alone.
pub async fn run(runner: &JobRunner, job_id: i64) -> Result<(), issuance_core::Error> {
    let Some(job) = store::coupon_jobs::find(&runner.db, job_id).await? else {
        return Ok(());
    };
    let message = match job.job_type {
        JobType::CouponGeneration => messages::GENERATING,
        JobType::PartnerCouponUpload => messages::UPLOADING,
    };
    let Some(job) =
        store::coupon_jobs::claim(&runner.db, job_id, &runner.owner, runner.cfg.lease, message).await?
    else {
        return Ok(());
    };
    tracing::info!(job_id, job_type = ?job.job_type, processed = job.processed, attempt = job.attempts, "job claimed");
    let heartbeat = heartbeat(runner, job_id);
    let result = if job.attempts > runner.cfg.max_attempts {
        Ok(Err(JobFailure(format!(
            "작업을 처리하던 워커가 {}번 중단되어 작업을 포기했습니다.",
            job.attempts - 1
        ))))
    } else {
        match job.job_type {
            JobType::CouponGeneration => generate::run(runner, &job).await,
            JobType::PartnerCouponUpload => upload::run(runner, &job).await,
        }
    };
    heartbeat.abort();
    finish(runner, &job, result).await
}

/// Renews the job's lease every third of it while this run lasts, so a slow block (a busy
/// machine, a huge batch) never looks like a dead worker; a killed process stops renewing and
/// its lease runs out.
fn heartbeat(runner: &JobRunner, job_id: i64) -> tokio::task::JoinHandle<()> {
    let (db, owner, lease) = (runner.db.clone(), runner.owner.clone(), runner.cfg.lease);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(lease / 3).await;
            match store::coupon_jobs::renew(&db, job_id, &owner, lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(job_id, error = %e, "lease renewal failed"),
            }
        }
    })
}

async fn finish(runner: &JobRunner, job: &Job, result: RunResult) -> Result<(), issuance_core::Error> {
    let kind = job.job_type.as_str();
    let outcome = match result {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(JobFailure(reason))) => {
            tracing::warn!(job_id = job.job_id, reason, "job failed");
            let message = format!("작업이 실패했습니다: {reason}");
            store::coupon_jobs::fail(&runner.db, job.job_id, &message).await?;
            metrics::counter!("issuer_jobs_finished_total", "job_type" => kind, "status" => "FAILED")
                .increment(1);
            cleanup::clean_batch(&runner.db, job.batch_id).await?;
            return Ok(());
        }
        Err(e) => {
            // Postgres trouble: give the job back; the sweeper hands it on once Postgres
            // answers again, and a later worker resumes from the committed progress.
            tracing::error!(job_id = job.job_id, error = %e, "job interrupted");
            let _ = store::coupon_jobs::release(&runner.db, job.job_id, &runner.owner).await;
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
            let status = store::coupon_jobs::status(&runner.db, job.job_id).await?;
            tracing::info!(job_id = job.job_id, ?status, "job stopped");
            if status == Some(issuance_core::enums::JobStatus::Cancelled) {
                metrics::counter!("issuer_jobs_finished_total", "job_type" => kind, "status" => "CANCELLED")
                    .increment(1);
                cleanup::clean_batch(&runner.db, job.batch_id).await?;
            }
        }
        Outcome::Released => {
            store::coupon_jobs::release(&runner.db, job.job_id, &runner.owner).await?;
            tracing::info!(job_id = job.job_id, "job handed back at shutdown");
        }
    }
    Ok(())
}

/// The apalis handler: one task, one job run. Errors are infrastructure errors; apalis retries
/// them, and the lease sweeper covers what retries do not.
pub async fn handle(task: RunCouponJob, runner: Data<Arc<JobRunner>>) -> Result<(), BoxDynError> {
    run(&runner, task.job_id)
        .await
        .map_err(|e| Box::new(e) as BoxDynError)
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
                    .queue(admin::queue::COUPON_JOBS)
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
