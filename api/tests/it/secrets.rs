//! Secrets fail closed: real `api` and `workers` processes refuse to start without strong,
//! unpublished secrets, and with a code secret other than the one their database was made with.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use crate::helpers::{JWT_SECRET, free_port, fresh_database, random_secret, redis_url};

fn binary(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_BIN_EXE_api")).with_file_name(name)
}

/// Starts `bin` with these secrets (`None` = unset) against `db`, and waits until it exits
/// (`Some(output)`) or answers `/ready` (`None`: it started, and is stopped again).
async fn run(bin: &str, db: &str, jwt: Option<&str>, code: Option<&str>) -> Option<Output> {
    let port = free_port();
    let mut cmd = Command::new(binary(bin));
    cmd.env_remove("JWT_SECRET")
        .env_remove("CODE_SECRET")
        .env("DATABASE_URL", db)
        .env("REDIS_URL", redis_url())
        .env(
            "KEY_PREFIX",
            format!("sec{}:", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        )
        .env("API_ADDR", format!("127.0.0.1:{port}"))
        .env("WORKERS_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(j) = jwt {
        cmd.env("JWT_SECRET", j);
    }
    if let Some(c) = code {
        cmd.env("CODE_SECRET", c);
    }
    let mut child = cmd.spawn().expect("spawn");
    let http = reqwest::Client::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if http
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("{bin} neither exited nor became ready");
}

/// The process exited with an error naming `variable`.
fn assert_refused(out: Option<Output>, variable: &str, what: &str) {
    let out = out.unwrap_or_else(|| panic!("{what}: the process started"));
    assert!(!out.status.success(), "{what}: exit status {}", out.status);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        text.contains(variable),
        "{what}: the error names {variable}: {text}"
    );
}

#[tokio::test]
async fn missing_short_or_published_secrets_are_refused() {
    let db = fresh_database().await;
    let good = random_secret();
    let cases: [(&str, Option<&str>, Option<&str>); 6] = [
        ("JWT_SECRET", None, Some(&good)),
        ("JWT_SECRET", Some("too-short-to-be-a-key"), Some(&good)),
        (
            "JWT_SECRET",
            Some("local-development-secret-change-me"),
            Some(&good),
        ),
        ("CODE_SECRET", Some(&good), None),
        ("CODE_SECRET", Some(&good), Some("short")),
        (
            "CODE_SECRET",
            Some(&good),
            Some("local-development-secret-change-me"),
        ),
    ];
    for (variable, jwt, code) in cases {
        let what = format!("api with {jwt:?}/{code:?}");
        assert_refused(run("api", &db, jwt, code).await, variable, &what);
    }
    for (variable, code) in [("CODE_SECRET", None), ("CODE_SECRET", Some("short"))] {
        let what = format!("workers with {code:?}");
        assert_refused(run("workers", &db, Some(&good), code).await, variable, &what);
    }
}

#[tokio::test]
async fn another_code_secret_under_the_same_database_is_refused() {
    let db = fresh_database().await;
    let first = random_secret();
    // The first start pins the secret.
    let api = run("api", &db, Some(&JWT_SECRET), Some(&first)).await;
    assert!(api.is_none(), "the first start runs: {api:?}");
    let other = random_secret();
    for bin in ["api", "workers"] {
        let out = run(bin, &db, Some(&JWT_SECRET), Some(&other)).await;
        assert_refused(out, "CODE_SECRET", &format!("{bin} with another code secret"));
    }
    // The original secret still starts, and the fingerprint is a hash, not the secret.
    let pinned: String = {
        let pool = sqlx::PgPool::connect(&db).await.unwrap();
        sqlx::query_scalar("SELECT value FROM deployment_settings WHERE name = 'code_secret_fingerprint'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(!pinned.contains(&first) && !first.contains(&pinned));
    let again = run("workers", &db, Some(&JWT_SECRET), Some(&first)).await;
    assert!(again.is_none(), "the original runs: {again:?}");
}

/// An api and a workers process starting together on a new database pin the secret's
/// fingerprint at the same moment: every one of them gets the one value that holds (a pin whose
/// insert did nothing once found no row, and that process did not start).
#[tokio::test]
async fn processes_pinning_at_once_on_a_new_database_agree() {
    let db = fresh_database().await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    issuance_core::connect::migrate(&pool).await.unwrap();
    for round in 0..20 {
        let name = format!("setting-{round}");
        let pins = (0..8).map(|i| {
            let (pool, name) = (pool.clone(), name.clone());
            tokio::spawn(async move { store::settings::pin(&pool, &name, &format!("value-{i}")).await })
        });
        let pinned: Vec<String> = futures::future::join_all(pins)
            .await
            .into_iter()
            .map(|r| r.unwrap().expect("every pin answers"))
            .collect();
        assert!(
            pinned.iter().all(|v| *v == pinned[0]),
            "round {round}: {pinned:?}"
        );
    }
}
