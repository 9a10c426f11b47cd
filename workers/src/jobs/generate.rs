//! `COUPON_GENERATION`: writes a batch's `issueCount` codes, a block at a time.
//!
//! A blocking thread makes the next blocks (codes sorted within each block, rendered as COPY
//! text) while this task writes the current one: code making and Postgres' index work overlap
//! on the two cores, and at most two blocks wait in memory. Each block is one transaction: COPY,
//! then the progress step (conditional on still holding the job), then commit with
//! `synchronous_commit = off` — a commit lost in a Postgres crash loses its progress step with
//! its rows, and the block is simply written again.

use std::{io::Write, time::Instant};

use issuance_core::code_generator::{BLOCK_SIZE, MAX_BATCH_ID};
use store::coupon_jobs::Job;

use super::{
    cleanup,
    runner::{JobFailure, JobRunner, Outcome, RunResult, with_retries},
};

/// A block of rows to write: positions `lo..hi` as COPY text.
struct Block {
    lo: u32,
    hi: u32,
    rows: Vec<u8>,
}

/// Runs (or resumes) a generation job.
pub async fn run(runner: &JobRunner, job: &Job) -> RunResult {
    let db = &runner.db;
    let fingerprint = runner.generator.fingerprint();
    if job.key_fingerprint.as_deref().is_some_and(|f| f != fingerprint) {
        return Ok(Err(JobFailure(
            "이 작업을 시작한 워커와 CODE_SECRET이 다릅니다. 같은 비밀값으로 다시 요청하세요.".into(),
        )));
    }
    store::coupon_jobs::set_fingerprint(db, job.job_id, fingerprint).await?;
    let Some(batch) = store::coupon_batches::find(db, job.batch_id).await? else {
        return Ok(Err(JobFailure("쿠폰 회차가 삭제되었습니다.".into())));
    };
    if batch.batch_id > MAX_BATCH_ID {
        return Ok(Err(JobFailure(format!("batch id above {MAX_BATCH_ID}"))));
    }
    if job.processed == 0 {
        // Rows an earlier cancelled or failed job left behind go first.
        cleanup::delete_leftovers(db, batch.batch_id, batch.code_count).await?;
    }

    let (total, start) = (job.total as u32, job.processed as u32);
    let (blocks_tx, mut blocks) = tokio::sync::mpsc::channel::<Block>(1);
    let generator = runner.generator.clone();
    let batch_id = batch.batch_id;
    let producer = tokio::task::spawn_blocking(move || {
        let mut lo = start;
        while lo < total {
            let hi = total.min((lo / BLOCK_SIZE + 1) * BLOCK_SIZE);
            let codes = generator.sorted_block(batch_id, lo..hi);
            let mut rows = Vec::with_capacity(codes.len() * 32);
            for (seq, code) in codes {
                let _ = write!(rows, "{batch_id}\t{seq}\t");
                rows.extend_from_slice(&code);
                rows.push(b'\n');
            }
            if blocks_tx.blocking_send(Block { lo, hi, rows }).is_err() {
                return;
            }
            lo = hi;
        }
    });

    let lease = runner.cfg.lease;
    while let Some(block) = blocks.recv().await {
        if runner.shutdown.is_cancelled() {
            return Ok(Ok(Outcome::Released));
        }
        let started = Instant::now();
        let written = with_retries(|| async {
            let mut tx = db.begin().await?;
            store::coupon_codes::relax_commit(&mut tx).await?;
            store::coupon_codes::copy_rows(&mut tx, &block.rows).await?;
            let held = store::coupon_jobs::advance(
                &mut *tx,
                job.job_id,
                &runner.owner,
                block.lo as i32,
                block.hi as i32,
                lease,
            )
            .await?;
            if held {
                tx.commit().await?;
            }
            Ok(held)
        })
        .await;
        match written {
            Ok(true) => {
                metrics::counter!("issuer_job_processed_total", "job_type" => "COUPON_GENERATION")
                    .increment(u64::from(block.hi - block.lo));
                metrics::histogram!("issuer_job_block_seconds").record(started.elapsed().as_secs_f64());
            }
            Ok(false) => return Ok(Ok(Outcome::Stopped)),
            Err(e) if store::coupon_codes::is_code_collision(&e) => {
                return Ok(Err(JobFailure(
                    "이미 존재하는 코드와 충돌했습니다 (CODE_SECRET 변경 또는 제휴사 코드).".into(),
                )));
            }
            Err(e) => return Err(e),
        }
    }
    drop(blocks);
    let _ = producer.await;

    let message = format!("쿠폰 {}개 생성이 완료되었습니다.", job.total);
    let completed = with_retries(|| async {
        let mut tx = db.begin().await?;
        let done =
            store::coupon_jobs::complete(&mut *tx, job.job_id, &runner.owner, job.total, &message, None)
                .await?;
        if done {
            store::coupon_batches::add_codes(&mut *tx, batch_id, job.total).await?;
            // First-come issues persisted while the codes were being written.
            store::coupon_issues::sync_code_statuses(&mut *tx, batch_id).await?;
            tx.commit().await?;
        }
        Ok(done)
    })
    .await?;
    Ok(Ok(if completed {
        Outcome::Completed
    } else {
        Outcome::Stopped
    }))
}
