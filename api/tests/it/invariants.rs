//! The invariant checks pass after real traffic and name each rule a corruption breaks.

use std::time::Duration;

use serde_json::{Value, json};
use workers::check::{self as invariants, Verdict};
use workers::config::DrainConfig;

use crate::{
    helpers::TestApp,
    orders::{charge, order, pay, product, user},
};

async fn verdicts(app: &TestApp, baseline: &invariants::Baseline) -> Vec<(&'static str, Verdict)> {
    invariants::check(&app.db, Some(baseline))
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.verdict))
        .collect()
}

fn failing(v: &[(&'static str, Verdict)]) -> Vec<&'static str> {
    v.iter()
        .filter(|(_, v)| *v == Verdict::Fail)
        .map(|(n, _)| *n)
        .collect()
}

#[tokio::test]
async fn the_check_passes_after_traffic_and_catches_each_corruption() {
    let app = TestApp::spawn().await;
    let p = product(&app, 1_000, 10).await;
    let baseline = invariants::baseline(&app.db).await.unwrap();
    assert_eq!(baseline.stock.get(&p), Some(&10));

    let u = user(&app).await;
    charge(&app, u, 5_000).await;
    let mut paid = Vec::new();
    for qty in [1, 2] {
        let r = order(&app, u, json!([{"productId": p, "qty": qty}]), None).await;
        let id = r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap();
        assert_eq!(pay(&app, u, id).await.status(), 200);
        paid.push(id);
    }
    let unpaid = order(&app, u, json!([{"productId": p, "qty": 3}]), None).await;
    assert_eq!(unpaid.status(), 201);

    let clean = verdicts(&app, &baseline).await;
    assert!(failing(&clean).is_empty(), "{clean:?}");
    assert!(clean.iter().all(|(_, v)| *v == Verdict::Pass));
    let without = invariants::check(&app.db, None).await.unwrap();
    assert!(without.iter().any(|f| f.verdict == Verdict::Skip));

    let corrupt = |sql: &'static str| {
        let db = app.db.clone();
        async move { sqlx::query(sql).execute(&db).await.unwrap() }
    };
    corrupt("UPDATE products SET stock = stock - 1").await;
    assert_eq!(
        failing(&verdicts(&app, &baseline).await),
        ["stock + sold = initial"]
    );
    corrupt("UPDATE products SET stock = stock + 1").await;

    corrupt("UPDATE wallets SET balance = balance + 1").await;
    assert_eq!(
        failing(&verdicts(&app, &baseline).await),
        ["balance equals the sum of its history"]
    );
    corrupt("UPDATE wallets SET balance = balance - 1").await;

    sqlx::query("DELETE FROM outbox WHERE order_id = $1")
        .bind(paid[0])
        .execute(&app.db)
        .await
        .unwrap();
    assert_eq!(
        failing(&verdicts(&app, &baseline).await),
        ["a paid order has exactly one ORDER_PAID record"]
    );
}

async fn issuance_verdicts(app: &TestApp) -> Vec<(&'static str, Verdict)> {
    let engine = app.engine();
    invariants::check_issuance(&app.db, engine.redis(), engine.keys(), Duration::from_secs(10))
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.name, f.verdict))
        .collect()
}

const REDIS_MATCHES: &str = "Redis issued count = Postgres rows (streams drained)";

#[tokio::test]
async fn the_issuance_check_passes_after_issues_and_catches_each_corruption() {
    let app = TestApp::spawn().await;
    app.start_drain(DrainConfig::default());
    app.create_event("inv", 5, Some(3)).await;
    for user in 1..=4 {
        app.issue("inv", user).await;
    }
    assert_eq!(app.wait_rows("inv", 3, Duration::from_secs(10)).await, 3);

    let engine = app.engine();
    let all = invariants::check_issuance(&app.db, engine.redis(), engine.keys(), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(all.iter().all(|f| f.verdict == Verdict::Pass), "{all:?}");
    let compared = all.iter().find(|f| f.name == REDIS_MATCHES).unwrap();
    assert!(
        compared.detail.starts_with("1 scopes compared"),
        "{}",
        compared.detail
    );

    // A row Redis never issued: over the day's limit and more than Redis counts.
    let insert = "INSERT INTO tickets (ticket_id, event_key, user_id, issued_at)
                  VALUES (gen_random_uuid(), 'inv', $1, now())";
    sqlx::query(insert).bind(100_i64).execute(&app.db).await.unwrap();
    assert_eq!(
        failing(&issuance_verdicts(&app).await),
        ["tickets issued per KST day <= the daily limit", REDIS_MATCHES]
    );
    sqlx::query("DELETE FROM tickets WHERE user_id = 100")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(failing(&issuance_verdicts(&app).await).is_empty());

    // An issue Redis forgot.
    let holders = engine.keys().ticket_event("inv").holders;
    let _: i64 = app.redis_cmd("HDEL", vec![holders.clone(), "1".into()]).await;
    assert_eq!(failing(&issuance_verdicts(&app).await), [REDIS_MATCHES]);

    // Past the quantity, and one user twice (the unique constraint dropped to allow it).
    sqlx::query("ALTER TABLE tickets DROP CONSTRAINT tickets_event_user_key")
        .execute(&app.db)
        .await
        .unwrap();
    for _ in 0..3 {
        sqlx::query(
            "INSERT INTO tickets (ticket_id, event_key, user_id, issued_at)
                     VALUES (gen_random_uuid(), 'inv', 2, now() - interval '2 days')",
        )
        .execute(&app.db)
        .await
        .unwrap();
    }
    assert_eq!(
        failing(&issuance_verdicts(&app).await),
        [
            "tickets issued <= the event's quantity",
            "no user holds two tickets of an event",
            REDIS_MATCHES
        ]
    );
}

#[tokio::test]
async fn reconcile_names_each_holder_redis_and_postgres_disagree_on_and_repairs_them() {
    use crate::helpers::WorkersProcess;

    let app = TestApp::spawn().await;
    app.create_event("recon", 10, None).await;
    for user in 1..=5 {
        assert_eq!(app.issue("recon", user).await.status(), 201);
    }
    assert_eq!(app.wait_rows("recon", 5, Duration::from_secs(10)).await, 5);
    let clean = WorkersProcess::run_once(&app.core, &["reconcile"]);
    let out = String::from_utf8_lossy(&clean.stdout);
    assert!(clean.status.success(), "{out}");
    assert!(out.contains("OK    gt:recon"), "{out}");

    // Redis forgets user 2 (Postgres has them); Redis holds user 77, of whom Postgres and the
    // stream know nothing (an answer whose record was lost).
    let holders = app.keys.ticket_event("recon").holders;
    let _: i64 = app.redis_cmd("HDEL", vec![holders.clone(), "2".into()]).await;
    let lost = format!(
        "{}|{}",
        uuid::Uuid::now_v7(),
        chrono::Utc::now().timestamp_millis()
    );
    let _: i64 = app
        .redis_cmd("HSET", vec![holders.clone(), "77".into(), lost.clone()])
        .await;
    let found = WorkersProcess::run_once(&app.core, &["reconcile"]);
    let out = String::from_utf8_lossy(&found.stdout);
    assert!(!found.status.success(), "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("gt:recon"))
        .expect("a line per scope");
    assert!(line.starts_with("DIFF"), "{line}");
    assert!(line.contains("missing in Redis 1 [users 2]"), "{line}");
    assert!(line.contains("missing in Postgres 1 [users 77]"), "{line}");

    // The repair merges Postgres back into Redis and queues the lost record again.
    let repaired = WorkersProcess::run_once(&app.core, &["reconcile", "--repair"]);
    let out = String::from_utf8_lossy(&repaired.stdout);
    assert!(repaired.status.success(), "{out}");
    assert!(out.contains("(repaired)"), "{out}");
    assert_eq!(app.wait_rows("recon", 6, Duration::from_secs(10)).await, 6);
    let held: Option<String> = app.redis_cmd("HGET", vec![holders, "2".into()]).await;
    assert!(held.is_some(), "user 2 holds their ticket in Redis again");
    let ticket: Value = app.issue("recon", 77).await.json().await.unwrap();
    assert_eq!(ticket["ticketId"], lost.split('|').next().unwrap());
    let after = WorkersProcess::run_once(&app.core, &["reconcile"]);
    assert!(
        after.status.success(),
        "{}",
        String::from_utf8_lossy(&after.stdout)
    );
}

#[tokio::test]
async fn check_and_reconcile_on_a_database_without_schema_say_so() {
    let mut core = TestApp::fresh_core(&crate::helpers::Options::default()).await;
    core.database_url = core.database_url.replace("/test_", "/test_bare_");
    let name = core.database_url.rsplit('/').next().unwrap().to_owned();
    let admin = sqlx::PgPool::connect(&core.database_url.replace(&name, "postgres"))
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    for command in [&["check"][..], &["reconcile"][..]] {
        let out = crate::helpers::WorkersProcess::run_once(&core, command);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?} passed on an empty database");
        assert!(said.contains("has no schema yet"), "{command:?}: {said}");
    }
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
        .execute(&admin)
        .await
        .unwrap();
}
