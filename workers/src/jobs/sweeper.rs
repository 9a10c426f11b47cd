//! Keeps coupon jobs moving when their workers are gone, and deletes what ended jobs left.
//!
//! Every workers process runs one; `FOR UPDATE SKIP LOCKED` and the `requeued_at` mark make
//! each orphan handed on once per lease period, whoever sweeps.

use std::sync::Arc;

use admin::queue;
use tokio_util::sync::CancellationToken;

use super::{cleanup, runner::JobRunner};

/// Sweeps every `JOB_SWEEP_MS` until shutdown.
pub async fn run(runner: Arc<JobRunner>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = sweep(&runner).await {
            tracing::warn!(error = %e, "job sweep failed");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(runner.cfg.sweep_every) => {}
        }
    }
}

/// One pass: hand on orphaned jobs, then clean up after ended ones.
pub async fn sweep(runner: &JobRunner) -> Result<(), issuance_core::Error> {
    let mut tx = runner.db.begin().await?;
    let orphans = store::coupon_jobs::take_orphans(&mut *tx, runner.cfg.lease).await?;
    for job_id in &orphans {
        queue::push(&mut tx, *job_id).await?;
    }
    tx.commit().await?;
    for job_id in orphans {
        tracing::info!(job_id, "job's worker is gone: handed on");
        metrics::counter!("issuer_jobs_requeued_total").increment(1);
    }
    for batch_id in store::coupon_jobs::batches_to_clean(&runner.db, 10).await? {
        cleanup::clean_batch(&runner.db, batch_id).await?;
    }
    Ok(())
}
