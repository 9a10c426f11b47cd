//! `PARTNER_COUPON_UPLOAD`: stores a partner's CSV of codes for a MAPPED batch.
//!
//! Every line that cannot be stored is reported with its number and reason: malformed, repeated
//! in the file, existing already (in any batch), or beyond the batch's `issueCount`. The rest is
//! stored in one transaction together with the job's completion and the batch's new code count,
//! so an upload is all-or-nothing: a cancel or a crash before the commit stores nothing.

use std::collections::HashSet;

use admin::partner_csv::{self, Reason, Rejections};
use serde_json::json;
use store::coupon_jobs::Job;

use super::runner::{JobFailure, JobRunner, Outcome, RunResult, with_retries};

/// Codes looked up per query.
const LOOKUP_CHUNK: usize = 10_000;

/// Runs an upload job.
pub async fn run(runner: &JobRunner, job: &Job) -> RunResult {
    let db = &runner.db;
    let Some(body) = store::coupon_jobs::load_upload(db, job.job_id).await? else {
        return Ok(Err(JobFailure("업로드된 파일을 찾을 수 없습니다.".into())));
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return Ok(Err(JobFailure("the CSV must be UTF-8 text".into())));
    };
    let (candidates, malformed) = partner_csv::parse(text);
    // Another batch's upload may take one of our codes between the look-up and the COPY: then
    // the COPY fails on the unique index and the whole check runs again.
    for _ in 0..3 {
        let Some(batch) = store::coupon_batches::find(db, job.batch_id).await? else {
            return Ok(Err(JobFailure("쿠폰 회차가 삭제되었습니다.".into())));
        };
        let mut existing = HashSet::new();
        for chunk in candidates.chunks(LOOKUP_CHUNK) {
            let codes: Vec<String> = chunk.iter().map(|c| c.code.to_owned()).collect();
            existing.extend(store::coupon_codes::existing(db, &codes).await?);
        }
        let capacity = (batch.issue_count - batch.code_count).max(0) as usize;
        let mut later = Rejections::default();
        let mut rows = Vec::new();
        let mut accepted = 0usize;
        for c in &candidates {
            if existing.contains(c.code) {
                later.push(c.line, Reason::AlreadyExists, Some(c.code), "code exists already");
            } else if accepted >= capacity {
                later.push(
                    c.line,
                    Reason::OverCapacity,
                    Some(c.code),
                    "the batch holds issueCount codes already",
                );
            } else {
                let seq = batch.code_count as usize + accepted;
                rows.extend_from_slice(format!("{}\t{seq}\t{}\n", batch.batch_id, c.code).as_bytes());
                accepted += 1;
            }
        }
        let rejected = malformed.clone().merge(later);
        let report = json!({
            "accepted": accepted,
            "rejected": rejected.count,
            "rejections": &rejected.listed,
        });
        let message = format!(
            "제휴사 쿠폰 {accepted}개가 등록되었습니다. 거부된 줄: {}개.",
            rejected.count
        );
        let stored = with_retries(|| async {
            let mut tx = db.begin().await?;
            if !rows.is_empty() {
                store::coupon_codes::copy_rows(&mut tx, &rows).await?;
            }
            let done = store::coupon_jobs::complete(
                &mut *tx,
                job.job_id,
                &runner.owner,
                job.total,
                &message,
                Some(&report),
            )
            .await?;
            if done {
                store::coupon_batches::add_codes(&mut *tx, batch.batch_id, accepted as i32).await?;
                store::coupon_jobs::drop_upload(&mut *tx, job.job_id).await?;
                tx.commit().await?;
            }
            Ok(done)
        })
        .await;
        match stored {
            Ok(true) => {
                metrics::counter!("issuer_job_processed_total", "job_type" => "PARTNER_COUPON_UPLOAD")
                    .increment(job.total as u64);
                return Ok(Ok(Outcome::Completed));
            }
            Ok(false) => return Ok(Ok(Outcome::Stopped)),
            Err(e) if store::coupon_codes::is_code_collision(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(Err(JobFailure(
        "다른 업로드와 코드가 계속 충돌합니다. 잠시 후 다시 시도하세요.".into(),
    )))
}
