//! Coupon jobs: code generation (`COUPON_GENERATION`) and partner-code upload
//! (`PARTNER_COUPON_UPLOAD`), requested here and run by the workers.
//!
//! One job at a time per batch: a partial unique index refuses a second PENDING/IN_PROGRESS job,
//! also when two requests race. The job row and its queue task are written in one transaction.
//! Progress (`processed` of `total`) moves with every committed chunk. A cancelled or failed
//! job's rows never count: a batch's codes are those below its `code_count`, which only a
//! completing job raises; the rows it left are deleted afterwards.

use issuance_core::{
    enums::{IssueType, JobType},
    error::{Error, Missing, Refusal},
};
use sqlx::PgPool;
use store::{coupon_batches::BatchRow, coupon_jobs::Job};

use crate::{partner_csv::count_lines, queue};

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
    let job = store::coupon_jobs::insert(
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
    let lines = count_lines(text);
    if lines == 0 {
        return Err(Error::Invalid("the CSV holds no codes".into()));
    }
    let mut tx = db.begin().await?;
    let batch = lock_batch(&mut tx, batch_id).await?;
    if batch.issue_type != IssueType::Mapped {
        return Err(Error::Refused(Refusal::BatchNotMapped));
    }
    let job = store::coupon_jobs::insert(
        &mut *tx,
        JobType::PartnerCouponUpload,
        batch_id,
        i32::try_from(lines).map_err(|_| Error::Invalid("the CSV has too many lines".into()))?,
        messages::UPLOAD_ACCEPTED,
        actor,
    )
    .await?;
    store::coupon_jobs::store_upload(&mut *tx, job.job_id, csv).await?;
    queue::push(&mut tx, job.job_id).await?;
    tx.commit().await?;
    Ok(job)
}

async fn lock_batch(tx: &mut sqlx::PgConnection, batch_id: i64) -> Result<BatchRow, Error> {
    store::coupon_batches::lock(&mut *tx, batch_id)
        .await?
        .ok_or(Error::NotFound(Missing::Batch))
}

/// One job.
pub async fn find(db: &PgPool, job_id: i64) -> Result<Job, Error> {
    store::coupon_jobs::find(db, job_id)
        .await?
        .ok_or(Error::NotFound(Missing::Job))
}

/// Cancels a PENDING or IN_PROGRESS job. A running worker notices at its next chunk (within a
/// second), rolls that chunk back and stops; the rows it committed never count and are deleted.
pub async fn cancel(db: &PgPool, job_id: i64) -> Result<Job, Error> {
    match store::coupon_jobs::cancel(db, job_id, messages::CANCELLED).await? {
        Some(job) => Ok(job),
        None => match store::coupon_jobs::find(db, job_id).await? {
            Some(_) => Err(Error::Refused(Refusal::CannotCancelJob)),
            None => Err(Error::NotFound(Missing::Job)),
        },
    }
}
