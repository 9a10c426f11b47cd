//! Coupon jobs: code generation (`COUPON_GENERATION`) and partner-code upload
//! (`PARTNER_COUPON_UPLOAD`), requested here and run by the workers.
//!
//! One job at a time per batch: a partial unique index refuses a second PENDING/IN_PROGRESS job,
//! also when two requests race. The job row and its queue task are written in one transaction.
//! Progress (`processed` of `total`) moves with every committed chunk. A cancelled or failed
//! job's rows never count: a batch's codes are those below its `code_count`, which only a
//! completing job raises; the rows it left are deleted afterwards.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::{
    batches::{BatchRow, IssueType},
    listing::{Page, Paging},
};
use crate::{
    error::{Error, Missing, Refusal},
    queue, repo,
};

/// What a job does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "job_type", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobType {
    /// Makes `issueCount` codes for a batch.
    CouponGeneration,
    /// Stores a partner's CSV of codes for a MAPPED batch.
    PartnerCouponUpload,
}

impl JobType {
    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CouponGeneration => "COUPON_GENERATION",
            Self::PartnerCouponUpload => "PARTNER_COUPON_UPLOAD",
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "job_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    /// Waiting for a worker.
    Pending,
    /// A worker is on it.
    InProgress,
    /// Done.
    Completed,
    /// Stopped by an error; `message` says which.
    Failed,
    /// Stopped by an admin.
    Cancelled,
}

impl JobStatus {
    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
        }
    }
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

/// Messages of each state.
pub mod messages {
    /// A generation job was accepted.
    pub const GENERATION_ACCEPTED: &str = "쿠폰 생성 작업이 수락되었습니다. 상태는 jobId를 통해 조회하세요.";
    /// An upload job was accepted.
    pub const UPLOAD_ACCEPTED: &str =
        "제휴사 쿠폰 업로드 작업이 수락되었습니다. 상태는 jobId를 통해 조회하세요.";
    /// A generation job runs.
    pub const GENERATING: &str = "쿠폰 생성이 진행 중입니다.";
    /// An upload job runs.
    pub const UPLOADING: &str = "제휴사 쿠폰 업로드가 진행 중입니다.";
    /// Cancelled by an admin.
    pub const CANCELLED: &str = "관리자가 작업을 취소했습니다.";
}

/// Asks for a batch's codes to be generated; 202 material.
pub async fn request_generation(db: &PgPool, actor: &str, batch_id: i64) -> Result<Job, Error> {
    let mut tx = db.begin().await?;
    let batch = lock_batch(&mut tx, batch_id).await?;
    if batch.code_count > 0 {
        return Err(Error::Refused(Refusal::CouponsAlreadyGenerated));
    }
    let job = repo::jobs::insert(
        &mut *tx,
        JobType::CouponGeneration,
        batch_id,
        batch.issue_count,
        messages::GENERATION_ACCEPTED,
        actor,
    )
    .await?;
    queue::push(&mut tx, job.job_id).await?;
    tx.commit().await?;
    Ok(job)
}

/// Accepts a partner CSV for a MAPPED batch; the workers check and store it.
pub async fn request_upload(db: &PgPool, actor: &str, batch_id: i64, csv: &[u8]) -> Result<Job, Error> {
    let text = std::str::from_utf8(csv).map_err(|_| Error::Invalid("the CSV must be UTF-8 text".into()))?;
    let lines = super::partner_csv::count_lines(text);
    if lines == 0 {
        return Err(Error::Invalid("the CSV holds no codes".into()));
    }
    let mut tx = db.begin().await?;
    let batch = lock_batch(&mut tx, batch_id).await?;
    if batch.issue_type != IssueType::Mapped {
        return Err(Error::Refused(Refusal::BatchNotMapped));
    }
    let job = repo::jobs::insert(
        &mut *tx,
        JobType::PartnerCouponUpload,
        batch_id,
        i32::try_from(lines).map_err(|_| Error::Invalid("the CSV has too many lines".into()))?,
        messages::UPLOAD_ACCEPTED,
        actor,
    )
    .await?;
    repo::jobs::store_upload(&mut *tx, job.job_id, csv).await?;
    queue::push(&mut tx, job.job_id).await?;
    tx.commit().await?;
    Ok(job)
}

async fn lock_batch(tx: &mut sqlx::PgConnection, batch_id: i64) -> Result<BatchRow, Error> {
    repo::batches::lock(&mut *tx, batch_id)
        .await?
        .ok_or(Error::NotFound(Missing::Batch))
}

/// One job.
pub async fn find(db: &PgPool, job_id: i64) -> Result<Job, Error> {
    repo::jobs::find(db, job_id)
        .await?
        .ok_or(Error::NotFound(Missing::Job))
}

/// A page of jobs, newest first.
pub async fn list(db: &PgPool, filter: &JobFilter) -> Result<Page<Job>, Error> {
    repo::jobs::list(db, filter).await
}

/// Cancels a PENDING or IN_PROGRESS job. A running worker notices at its next chunk (within a
/// second), rolls that chunk back and stops; the rows it committed never count and are deleted.
pub async fn cancel(db: &PgPool, job_id: i64) -> Result<Job, Error> {
    match repo::jobs::cancel(db, job_id, messages::CANCELLED).await? {
        Some(job) => Ok(job),
        None => match repo::jobs::find(db, job_id).await? {
            Some(_) => Err(Error::Refused(Refusal::CannotCancelJob)),
            None => Err(Error::NotFound(Missing::Job)),
        },
    }
}
