//! What every job run shares: the runner's resources, how a run ends, and retries of a
//! Postgres step.

use std::time::Duration;

use issuance_core::code_generator::CodeGenerator;
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
pub type RunResult = Result<Result<Outcome, JobFailure>, issuance_core::Error>;

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

/// Retries a Postgres step a few times (a failover, a dropped connection) before giving up.
pub async fn with_retries<T, F, Fut>(mut step: F) -> Result<T, issuance_core::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, issuance_core::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for _ in 0..3 {
        match step().await {
            Err(issuance_core::Error::Db(e)) if is_transient(&e) => {
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
