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
