//! Redis faults: scripts flushed, event metadata lost.

use std::time::Duration;

use futures::{StreamExt, stream};
use serde_json::json;

use crate::helpers::TestApp;

/// Issues for `users` concurrently; returns the statuses.
async fn issue_all(app: &TestApp, key: &str, users: impl Iterator<Item = i64>) -> Vec<u16> {
    let jobs = users.map(|user| {
        let (http, url, token) = (
            app.http.clone(),
            app.url(&format!("/events/{key}/tickets")),
            app.user(user),
        );
        async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "userId": user }))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    stream::iter(jobs).buffer_unordered(64).collect().await
}

#[tokio::test]
async fn script_flush_mid_run_does_not_fail_requests() {
    let app = TestApp::spawn().await;
    app.create_event("flush", 300, None).await;
    let first = issue_all(&app, "flush", 1..=100);
    let flusher = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _: String = app.redis_cmd("SCRIPT", vec!["FLUSH".into()]).await;
    };
    let (statuses, ()) = tokio::join!(first, flusher);
    let _: String = app.redis_cmd("SCRIPT", vec!["FLUSH".into()]).await;
    let more = issue_all(&app, "flush", 101..=200).await;
    for s in statuses.iter().chain(&more) {
        assert_eq!(*s, 201);
    }
    assert_eq!(app.wait_rows("flush", 200, Duration::from_secs(10)).await, 200);
}

#[tokio::test]
async fn lost_metadata_is_rebuilt_and_never_over_issues() {
    let app = TestApp::spawn().await;
    app.create_event("meta", 50, None).await;
    let keys = app.keys.ticket_event("meta");
    assert!(issue_all(&app, "meta", 1..=30).await.iter().all(|s| *s == 201));

    // The rules vanish (eviction, restart): rebuilt from Postgres before anyone is answered.
    let _: i64 = app.redis_cmd("DEL", vec![keys.meta.clone()]).await;
    let statuses = issue_all(&app, "meta", 31..=100).await;
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 20);
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409));
    assert_eq!(app.wait_rows("meta", 50, Duration::from_secs(10)).await, 50);
    let users: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT user_id FROM tickets WHERE event_key = 'meta'")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(users.len(), 50);
}

#[tokio::test]
async fn lost_holders_are_restored_from_postgres_and_the_stream() {
    let app = TestApp::spawn_without_drain().await;
    app.create_event("holders", 40, Some(40)).await;
    let keys = app.keys.ticket_event("holders");
    // 10 persisted to Postgres, 15 still only in the stream.
    assert!(issue_all(&app, "holders", 1..=10).await.iter().all(|s| *s == 201));
    let drain = app.start_drain(workers::config::DrainConfig::default());
    assert_eq!(app.wait_rows("holders", 10, Duration::from_secs(10)).await, 10);
    drain.cancel();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        issue_all(&app, "holders", 11..=25)
            .await
            .iter()
            .all(|s| *s == 201)
    );

    let _: i64 = app
        .redis_cmd("DEL", vec![keys.meta.clone(), keys.holders.clone()])
        .await;
    let day_keys: Vec<String> = app.redis_cmd("KEYS", vec![format!("{}*", keys.day_prefix)]).await;
    let _: i64 = app.redis_cmd("DEL", day_keys).await;

    // Holders 1..=25 keep their tickets (200), 15 more fit (40 in all), and the daily count
    // was restored too (40 per day).
    let statuses = issue_all(&app, "holders", 1..=100).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        25,
        "holders recognised"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        15,
        "only the remainder issued"
    );
    let status: serde_json::Value = app.get("/events/holders", None).await.json().await.unwrap();
    assert_eq!(status["remainingQuantity"], 0);
    assert_eq!(status["todayIssuedCount"], 40);
    app.start_drain(workers::config::DrainConfig::default());
    assert_eq!(app.wait_rows("holders", 40, Duration::from_secs(10)).await, 40);
}
