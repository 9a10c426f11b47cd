//! Coupon-code jobs end to end over HTTP, with real workers: generation, duplicates, cancel,
//! a worker killed with SIGKILL mid-run, and partner CSV uploads.

use std::{collections::HashSet, time::Duration};

use futures::future::join_all;
use issuance_core::code_generator::{BLOCK_SIZE, is_well_formed};
use serde_json::{Value, json};

use crate::helpers::{TestApp, WorkersProcess, assert_error, fast_jobs};

fn job_id(accepted: &Value) -> String {
    accepted["jobId"].as_str().expect("jobId is a string").to_owned()
}

fn status(job: &Value) -> &str {
    job["jobStatus"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generates_a_small_batch_end_to_end() {
    let app = TestApp::spawn().await;
    app.start_jobs(fast_jobs());
    let batch = app.coupon_batch(5_000, 1_000, "SELF").await;
    let path = format!("/api/v1/admin/coupon-batches/{batch}/generate-coupons");
    let accepted = app.admin_post(&path, &json!({}), 202).await;
    assert_eq!(accepted["jobType"], "COUPON_GENERATION");
    assert_eq!(accepted["jobStatus"], "PENDING");
    assert!(accepted["message"].as_str().is_some_and(|m| !m.is_empty()));
    let job = app
        .wait_job(&job_id(&accepted), Duration::from_secs(30), |j| {
            status(j) == "COMPLETED"
        })
        .await;
    assert_eq!(status(&job), "COMPLETED", "{job}");
    assert_eq!(
        job["progress"],
        json!({"processed": 1000, "total": 1000, "percent": 100.0})
    );
    assert_eq!(
        app.admin_get(&format!("/api/v1/admin/coupon-batches/{batch}"))
            .await["codeCount"],
        1000
    );

    let page = app
        .admin_get(&format!(
            "/api/v1/admin/coupon-batches/{batch}/codes?page=3&size=100"
        ))
        .await;
    assert_eq!(
        (page["totalElements"].as_i64(), page["totalPages"].as_i64()),
        (Some(1000), Some(10))
    );
    assert_eq!(page["data"][0]["seq"], 300);
    assert_eq!(page["data"][0]["codeStatus"], "AVAILABLE");
    let csv = app
        .get(
            &format!("/api/v1/admin/coupon-batches/{batch}/codes/export"),
            Some(&app.admin()),
        )
        .await
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("code,status"));
    let codes: HashSet<&str> = lines
        .map(|l| l.strip_suffix(",AVAILABLE").expect("status column"))
        .collect();
    assert_eq!(codes.len(), 1000);
    assert!(codes.iter().all(|c| is_well_formed(c)));
    assert_eq!(app.code_rows(batch).await, (1000, 1000));

    // The batch has its codes: a second request is refused; unknown ids are 404.
    let r = app.post_empty(&path, &app.admin()).await;
    assert_error(r, 409, "COUPONS_ALREADY_GENERATED", &path).await;
    let missing = "/api/v1/admin/coupon-batches/999999/generate-coupons";
    assert_error(
        app.post_empty(missing, &app.admin()).await,
        404,
        "BATCH_NOT_FOUND",
        missing,
    )
    .await;
    let missing = "/api/v1/admin/coupon-jobs/123456789";
    assert_error(
        app.get(missing, Some(&app.admin())).await,
        404,
        "JOB_NOT_FOUND",
        missing,
    )
    .await;
    let list = app
        .admin_get(&format!(
            "/api/v1/admin/coupon-jobs?batchId={batch}&jobStatus=COMPLETED"
        ))
        .await;
    assert_eq!(list["totalElements"], 1);
}

#[tokio::test]
async fn concurrent_duplicate_requests_start_one_job() {
    let app = TestApp::spawn().await;
    let batch = app.coupon_batch(100, 100, "SELF").await;
    let path = format!("/api/v1/admin/coupon-batches/{batch}/generate-coupons");
    let admin = app.admin();
    let answers = join_all((0..10).map(|_| app.post_empty(&path, &admin))).await;
    let mut accepted = 0;
    for r in answers {
        if r.status() == 202 {
            accepted += 1;
        } else {
            assert_error(r, 409, "DUPLICATE_BATCH_JOB_REQUEST", &path).await;
        }
    }
    assert_eq!(accepted, 1);
    // Still PENDING (no worker runs here): still a duplicate.
    assert_error(
        app.post_empty(&path, &admin).await,
        409,
        "DUPLICATE_BATCH_JOB_REQUEST",
        &path,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_mid_run_leaves_no_usable_codes_and_allows_a_new_job() {
    let app = TestApp::spawn().await;
    app.start_jobs(fast_jobs());
    let count = 4 * i64::from(BLOCK_SIZE);
    let batch = app.coupon_batch(count, count, "SELF").await;
    let accepted = app
        .admin_post(
            &format!("/api/v1/admin/coupon-batches/{batch}/generate-coupons"),
            &json!({}),
            202,
        )
        .await;
    let id = job_id(&accepted);
    let running = app
        .wait_job(&id, Duration::from_secs(60), |j| {
            j["progress"]["processed"].as_i64() >= Some(i64::from(BLOCK_SIZE))
        })
        .await;
    assert_eq!(status(&running), "IN_PROGRESS", "cancel while running: {running}");
    let cancelled = app
        .admin_post(&format!("/api/v1/admin/coupon-jobs/{id}/cancel"), &json!({}), 200)
        .await;
    assert_eq!(status(&cancelled), "CANCELLED");
    let again = format!("/api/v1/admin/coupon-jobs/{id}/cancel");
    assert_error(
        app.post_empty(&again, &app.admin()).await,
        409,
        "CANNOT_CANCEL_JOB",
        &again,
    )
    .await;

    // Nothing counts at once; the rows are deleted soon after.
    assert_eq!(
        app.admin_get(&format!("/api/v1/admin/coupon-batches/{batch}"))
            .await["codeCount"],
        0
    );
    let page = app
        .admin_get(&format!("/api/v1/admin/coupon-batches/{batch}/codes"))
        .await;
    assert_eq!(page["totalElements"], 0);
    let started = std::time::Instant::now();
    while app.code_rows(batch).await.0 > 0 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.code_rows(batch).await.0, 0, "leftover rows deleted");
    let job = app.admin_get(&format!("/api/v1/admin/coupon-jobs/{id}")).await;
    assert_eq!(
        status(&job),
        "CANCELLED",
        "the worker did not overwrite the cancel: {job}"
    );

    // A new job makes the whole batch.
    let accepted = app
        .admin_post(
            &format!("/api/v1/admin/coupon-batches/{batch}/generate-coupons"),
            &json!({}),
            202,
        )
        .await;
    let job = app
        .wait_job(&job_id(&accepted), Duration::from_secs(120), |j| {
            status(j) == "COMPLETED"
        })
        .await;
    assert_eq!(status(&job), "COMPLETED", "{job}");
    assert_eq!(app.code_rows(batch).await, (count, count));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_is_resumed_without_duplicates() {
    let app = TestApp::spawn().await;
    let count = 5 * i64::from(BLOCK_SIZE) + 123;
    let batch = app.coupon_batch(count, count, "MAPPED").await;
    let mut worker = WorkersProcess::start(&app.core);
    let accepted = app
        .admin_post(
            &format!("/api/v1/admin/coupon-batches/{batch}/generate-coupons"),
            &json!({}),
            202,
        )
        .await;
    let id = job_id(&accepted);
    let running = app
        .wait_job(&id, Duration::from_secs(60), |j| {
            j["progress"]["processed"].as_i64() >= Some(i64::from(BLOCK_SIZE))
        })
        .await;
    worker.kill9();
    let processed = running["progress"]["processed"].as_i64().unwrap();
    assert!(
        status(&running) == "IN_PROGRESS" && processed < count,
        "killed mid-run: {running}"
    );

    // Another worker takes over once the dead one's lease runs out, and resumes.
    app.start_jobs(fast_jobs());
    let job = app
        .wait_job(&id, Duration::from_secs(120), |j| status(j) == "COMPLETED")
        .await;
    assert_eq!(status(&job), "COMPLETED", "{job}");
    assert!(job["attempts"].as_i64() >= Some(2), "taken over: {job}");
    assert_eq!(
        app.code_rows(batch).await,
        (count, count),
        "exactly issueCount unique codes"
    );
    let seqs: (i64, i32, i32) = sqlx::query_as(
        "SELECT count(DISTINCT seq), min(seq), max(seq) FROM coupon_codes WHERE batch_id = $1",
    )
    .bind(batch)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(seqs, (count, 0, count as i32 - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partner_csv_upload_reports_every_rejected_line() {
    let app = TestApp::spawn().await;
    app.start_jobs(fast_jobs());
    // A code that exists already, in another batch.
    let other = app.coupon_batch(10, 10, "MAPPED").await;
    let upload = |batch: i64, body: &'static str| {
        let path = format!("/api/v1/admin/coupon-batches/{batch}/partner-codes");
        let req = app
            .http
            .post(app.url(&path))
            .bearer_auth(app.admin())
            .header("content-type", "text/csv")
            .body(body);
        async move { req.send().await.unwrap() }
    };
    let first = upload(other, "TAKEN-001\n").await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    let done = app
        .wait_job(&job_id(&first), Duration::from_secs(30), |j| {
            status(j) == "COMPLETED"
        })
        .await;
    assert_eq!(done["result"]["accepted"], 1, "{done}");

    let batch = app.coupon_batch(10, 3, "MAPPED").await;
    let csv =
        "code\nPARTNER-A1\nbad code!\nPARTNER-A2\nPARTNER-A1\n\nTAKEN-001\nPARTNER-A3\nPARTNER-A4\nX,Y\n";
    let r = upload(batch, csv).await;
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted["jobType"], "PARTNER_COUPON_UPLOAD");
    let job = app
        .wait_job(&job_id(&accepted), Duration::from_secs(30), |j| {
            status(j) == "COMPLETED"
        })
        .await;
    assert_eq!(status(&job), "COMPLETED", "{job}");
    let report = &job["result"];
    assert_eq!(report["accepted"], 3);
    assert_eq!(report["rejected"], 6);
    let lines: Vec<(i64, &str)> = report["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_i64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        vec![
            (3, "MALFORMED"),
            (5, "DUPLICATE_IN_FILE"),
            (6, "MALFORMED"),
            (7, "ALREADY_EXISTS"),
            (9, "OVER_CAPACITY"),
            (10, "MALFORMED"),
        ]
    );
    assert_eq!(report["rejections"][1]["message"], "same code as line 2");
    let page = app
        .admin_get(&format!("/api/v1/admin/coupon-batches/{batch}/codes"))
        .await;
    let codes: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["PARTNER-A1", "PARTNER-A2", "PARTNER-A3"]);

    // SELF batches take no partner codes; only CSV is read.
    let self_batch = app.coupon_batch(10, 3, "SELF").await;
    let path = format!("/api/v1/admin/coupon-batches/{self_batch}/partner-codes");
    assert_error(
        upload(self_batch, "ABCD-1\n").await,
        400,
        "BATCH_NOT_MAPPED",
        &path,
    )
    .await;
    let path = format!("/api/v1/admin/coupon-batches/{batch}/partner-codes");
    let r = app.post(&path, &app.admin(), &json!({"codes": []})).await;
    assert_error(r, 415, "UNSUPPORTED_MEDIA_TYPE", &path).await;
}

/// Uploads `body` as a partner CSV for `batch` and waits for the job to end; returns the job.
async fn upload_and_wait(app: &TestApp, batch: i64, body: Vec<u8>) -> Value {
    let path = format!("/api/v1/admin/coupon-batches/{batch}/partner-codes");
    let r = app
        .http
        .post(app.url(&path))
        .bearer_auth(app.admin())
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    app.wait_job(&job_id(&accepted), Duration::from_secs(120), |j| {
        matches!(status(j), "COMPLETED" | "FAILED")
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_are_malformed_and_the_job_completes() {
    let app = TestApp::spawn().await;
    app.start_jobs(fast_jobs());
    let batch = app.coupon_batch(10, 5, "MAPPED").await;
    let job = upload_and_wait(&app, batch, b"GOOD-0001\nAB\0CD\nEF\x07GH\nGOOD-0002\n".to_vec()).await;
    assert_eq!(status(&job), "COMPLETED", "{job}");
    let report = &job["result"];
    assert_eq!(
        (report["accepted"].as_i64(), report["rejected"].as_i64()),
        (Some(2), Some(2))
    );
    let shown: Vec<&str> = report["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["reason"], "MALFORMED");
            r["code"].as_str().unwrap()
        })
        .collect();
    assert_eq!(shown, vec!["AB\\u{0}CD", "EF\\u{7}GH"]);
}

/// The worst 64 MiB files (every line empty, malformed, or the same code) complete with exact
/// counts, and a real workers process's peak memory stays under 300 MB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worst_case_64_mib_uploads_complete_in_bounded_memory() {
    const SIZE: usize = 64 * 1024 * 1024;
    let app = TestApp::spawn_with(crate::helpers::Options {
        upload_limit: SIZE,
        ..Default::default()
    })
    .await;
    let workers = crate::helpers::WorkersProcess::start(&app.core);
    let cases: [(&str, &[u8]); 3] = [
        ("empty", b"\n"),
        ("malformed", b"x\n"),
        ("duplicates", b"SAME-CODE-1\n"),
    ];
    for (what, line) in cases {
        let lines = SIZE / line.len();
        let batch = app.coupon_batch(10, 10, "MAPPED").await;
        let job = upload_and_wait(&app, batch, line.repeat(lines)).await;
        assert_eq!(status(&job), "COMPLETED", "{what}: {job}");
        let (accepted, rejected) = if what == "duplicates" {
            (1, lines - 1)
        } else {
            (0, lines)
        };
        assert_eq!(job["result"]["accepted"], accepted, "{what}");
        assert_eq!(job["result"]["rejected"], rejected, "{what}: the count is exact");
        assert_eq!(
            job["result"]["rejections"].as_array().unwrap().len(),
            rejected.min(10_000)
        );
    }
    let peak_mb = workers.peak_rss_kib() / 1024;
    eprintln!("workers peak RSS over three 64 MiB worst-case uploads: {peak_mb} MB");
    assert!(peak_mb > 0 && peak_mb < 300, "peak RSS {peak_mb} MB");
}
