//! The stream drain under faults: a dead consumer, a replayed stream.

use std::time::Duration;

use fred::interfaces::StreamsInterface;
use issuer::stream;
use serde_json::Value;
use workers::config::DrainConfig;

use crate::helpers::{Options, TestApp};

async fn issue_many(app: &TestApp, key: &str, users: std::ops::RangeInclusive<i64>) -> Vec<Value> {
    let mut out = Vec::new();
    for user in users {
        let r = app.issue(key, user).await;
        assert_eq!(r.status(), 201);
        out.push(r.json().await.unwrap());
    }
    out
}

#[tokio::test]
async fn batch_of_a_dead_consumer_is_reclaimed_and_persisted_once() {
    let app = TestApp::spawn_with(Options {
        drain: false,
        ..Options::default()
    })
    .await;
    app.create_event("reclaim", 50, None).await;
    let issued = issue_many(&app, "reclaim", 1..=20).await;
    let keys = app.keys.ticket_event("reclaim");

    // A consumer reads the batch and dies before acknowledging it.
    let client = app.redis.next();
    stream::ensure_group(client, &keys.stream).await.unwrap();
    let taken = stream::read_new(client, &keys.stream, "doomed", 100)
        .await
        .unwrap();
    assert_eq!(taken.len(), 20);
    assert_eq!(app.ticket_rows("reclaim").await, 0);

    app.start_drain(DrainConfig {
        claim_idle: Duration::from_millis(300),
        claim_every: Duration::from_millis(100),
        forget_idle: Duration::from_millis(300),
        idle: Duration::from_millis(5),
        ..DrainConfig::default()
    });
    assert_eq!(app.wait_rows("reclaim", 20, Duration::from_secs(10)).await, 20);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.ticket_rows("reclaim").await, 20, "each ticket exactly once");
    let lag = stream::lag(client, &keys.stream).await.unwrap();
    assert_eq!(lag.entries, 0, "persisted entries are trimmed");

    // The dead consumer's name goes once it holds nothing and has been idle long enough.
    let started = std::time::Instant::now();
    loop {
        let consumers: fred::types::Value = app
            .redis_cmd(
                "XINFO",
                vec!["CONSUMERS".into(), keys.stream.clone(), "drain".into()],
            )
            .await;
        if !format!("{consumers:?}").contains("doomed") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "dead consumer name kept: {consumers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for t in issued {
        let user = t["userId"].as_i64().unwrap();
        let list: Vec<Value> = app
            .get(&format!("/users/{user}/tickets"), Some(&app.admin()))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0]["ticketId"], t["ticketId"]);
    }
}

#[tokio::test]
async fn replaying_the_whole_stream_changes_nothing() {
    let app = TestApp::spawn_with(Options {
        drain: false,
        ..Options::default()
    })
    .await;
    app.create_event("replay", 50, None).await;
    issue_many(&app, "replay", 1..=30).await;
    let keys = app.keys.ticket_event("replay");
    let client = app.redis.next();
    let recorded = stream::unpersisted(client, &keys.stream).await.unwrap();
    assert_eq!(recorded.len(), 30);

    app.start_drain(DrainConfig {
        idle: Duration::from_millis(5),
        ..DrainConfig::default()
    });
    assert_eq!(app.wait_rows("replay", 30, Duration::from_secs(10)).await, 30);
    let before: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT ticket_id, user_id FROM tickets ORDER BY ticket_id")
            .fetch_all(&app.db)
            .await
            .unwrap();

    // Every record again, as if the stream were replayed from the start.
    for entry in &recorded {
        let fields = entry.record.as_ref().unwrap().to_fields();
        let _: String = client.xadd(&keys.stream, false, None, "*", fields).await.unwrap();
    }
    let started = std::time::Instant::now();
    while stream::lag(client, &keys.stream).await.unwrap().entries > 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "replay not drained");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after: Vec<(uuid::Uuid, i64)> =
        sqlx::query_as("SELECT ticket_id, user_id FROM tickets ORDER BY ticket_id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(before, after);
}

#[tokio::test]
async fn persisted_entries_are_trimmed_from_the_stream() {
    let app = TestApp::spawn().await;
    app.create_event("trim", 1_000, None).await;
    let engine = app.engine();
    let key = issuer::model::EventKey::parse("trim").unwrap();
    for user in 1..=800 {
        let user = issuer::model::UserId::new(user).unwrap();
        assert!(engine.issue_ticket(&key, user).await.unwrap().fresh);
    }
    assert_eq!(app.wait_rows("trim", 800, Duration::from_secs(10)).await, 800);
    let keys = app.keys.ticket_event("trim");
    let started = std::time::Instant::now();
    let len = loop {
        let len: i64 = app.redis_cmd("XLEN", vec![keys.stream.clone()]).await;
        if len <= 200 || started.elapsed() > Duration::from_secs(5) {
            break len;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(len <= 200, "stream still holds {len} of 800 persisted entries");
    let lag = stream::lag(app.redis.next(), &keys.stream).await.unwrap();
    assert_eq!((lag.entries, lag.age_ms), (0, 0));
    assert!(lag.length <= len, "the length is what the stream holds");
}
