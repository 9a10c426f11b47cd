//! A lost answer costs only itself, in every durability mode: after Redis forgets answers it
//! gave (a restart without persistence, a restore from an older snapshot), no unit or coupon
//! position that may have been answered is answered again (the reservations), and a drain batch
//! read from the forgotten history cannot commit behind the rebuild (the fence).

use std::{collections::HashMap, time::Duration};

use engine::stream;
use serde_json::Value;
use workers::{
    config::DrainConfig,
    drain::write::{self, Write},
};

use crate::{
    coupons::{self, Setup},
    helpers::{Options, RedisServer, TestApp, WorkersProcess, assert_error},
};

/// A test app on `redis` (no persistence: memory mode) whose drain the test starts itself.
async fn app_on(redis: &RedisServer) -> TestApp {
    TestApp::spawn_with(Options {
        redis_url: Some(redis.url()),
        drain: false,
        ..Options::default()
    })
    .await
}

/// The line `workers reconcile` prints for `scope` (`gt:<key>`, `cb:<id>`).
fn reconcile_line(app: &TestApp, scope: &str) -> String {
    let out = WorkersProcess::run_once(&app.core, &["reconcile"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(scope))
        .unwrap_or_else(|| panic!("no line for {scope}: {text}"))
        .to_owned()
}

/// The `stranded N` figure of a reconcile line.
fn stranded(line: &str) -> i64 {
    line.split("stranded ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

/// The coupon position an answer names.
fn position(batch: i64, body: &Value) -> i64 {
    body["couponIssueId"].as_i64().unwrap() - batch * 10_000_000
}

/// Asks for a coupon until Redis answers something other than 503 (it is being restarted).
async fn coupon(app: &TestApp, batch: i64, user: i64) -> (u16, Value) {
    for _ in 0..200 {
        let r = coupons::issue(app, batch, user).await;
        let status = r.status().as_u16();
        if status != 503 {
            return (status, r.json().await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("user {user}: Redis never answered again");
}

#[tokio::test]
async fn a_restore_from_an_older_snapshot_answers_no_coupon_position_twice() {
    let mut redis = RedisServer::start(&[]).await;
    let app = app_on(&redis).await;
    let (_, batch) = coupons::batch(
        &app,
        Setup {
            count: 1_000,
            ..Setup::default()
        },
    )
    .await;
    // 50 users answered; nothing drained yet; a snapshot taken after the first 25.
    let mut answered: HashMap<i64, i64> = HashMap::new(); // position -> user
    for user in 1..=50 {
        if user == 26 {
            let _: String = redis.cmd("SAVE", vec![]).await;
        }
        let (status, body) = coupon(&app, batch, user).await;
        assert_eq!(status, 201, "{body}");
        assert!(answered.insert(position(batch, &body), user).is_none());
    }
    let last_before = *answered.keys().max().unwrap();

    redis.kill_and_restart().await;
    let holders = app.keys.coupon_batch(batch).holders;
    assert_eq!(
        redis.cmd::<i64>("HLEN", vec![holders.clone()]).await,
        25,
        "back with the snapshot"
    );

    // The 25 the snapshot kept are held as before; the other 25 lost their answer and get a new
    // one; new users too. Every new position lies above every position answered before.
    for user in 1..=25 {
        let (status, body) = coupon(&app, batch, user).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (409, Some("COUPON_ALREADY_ISSUED")),
            "{body}"
        );
        assert_eq!(answered.get(&position(batch, &body)), Some(&user));
    }
    for user in 26..=100 {
        let (status, body) = coupon(&app, batch, user).await;
        assert_eq!(status, 201, "user {user}: {body}");
        let p = position(batch, &body);
        assert!(
            p > last_before,
            "user {user} got position {p}, answered before up to {last_before}"
        );
        assert!(answered.insert(p, user).is_none(), "position {p} answered twice");
    }

    // The drain writes what Redis holds: each position once, and what the loss stranded
    // (reserved, never held) is counted, never issued.
    app.start_drain(DrainConfig::default());
    let held: i64 = redis.cmd("HLEN", vec![holders]).await;
    assert_eq!(held, 100);
    let limit = Duration::from_secs(20);
    assert_eq!(
        coupons::wait_coupon_rows_within(&app, batch, held, limit).await,
        held
    );
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT seq) FROM coupon_issues WHERE batch_id = $1")
            .bind(batch)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((rows, distinct), (100, 100));
    let line = reconcile_line(&app, &format!("cb:{batch}"));
    eprintln!("snapshot restore, 25 answers lost: {line}");
    assert!(line.starts_with("OK"), "{line}");
    assert!(
        stranded(&line) >= 25,
        "the lost positions are never issued again: {line}"
    );
}

#[tokio::test]
async fn a_drain_batch_read_before_a_rebuild_cannot_commit_after_it() {
    let mut redis = RedisServer::start(&[]).await;
    let app = app_on(&redis).await;
    app.create_event("fenced", 100, None).await;
    let keys = app.keys.ticket_event("fenced");
    let mut first = HashMap::new();
    for user in 1..=10 {
        let r = app.issue("fenced", user).await;
        assert_eq!(r.status(), 201);
        first.insert(user, r.json::<Value>().await.unwrap()["ticketId"].clone());
    }
    // A drain consumer reads the batch from this history and is held before its commit.
    let client = app.redis.next();
    stream::ensure_group(client, &keys.stream).await.unwrap();
    let held: Vec<stream::IssueRecord> = stream::read_new(client, &keys.stream, "held", 100)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|e| e.records.unwrap())
        .collect();
    assert_eq!(held.len(), 10);

    // Redis restarts without its data; the next request rebuilds the copy from Postgres (which
    // has none of the ten) under a new fence.
    redis.kill_and_restart().await;
    let r = crate::durability::issue_until(&app, "fenced", 11, Duration::from_secs(10), |s| s != 503).await;
    assert_eq!(r.status(), 201);

    // The held batch is released: it belongs to the replaced history and is dropped.
    let written = write::commit(&app.db, &held, Write::Fresh).await.unwrap();

    // The ten lost their answers; asking again they get a new ticket, and that ticket (the one
    // Redis holds) is the one Postgres ends with.
    let mut second = HashMap::new();
    for user in 1..=10 {
        let r = app.issue("fenced", user).await;
        assert_eq!(r.status(), 201, "user {user} was forgotten with the history");
        let ticket = r.json::<Value>().await.unwrap()["ticketId"].clone();
        assert_ne!(ticket, first[&user]);
        second.insert(user, ticket);
    }
    app.start_drain(DrainConfig::default());
    assert_eq!(app.wait_rows("fenced", 11, Duration::from_secs(20)).await, 11);
    for (user, ticket) in &second {
        let row: String = sqlx::query_scalar(
            "SELECT ticket_id::text FROM tickets WHERE event_key = 'fenced' AND user_id = $1",
        )
        .bind(user)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(
            Value::String(row),
            *ticket,
            "user {user}: Postgres holds what Redis answered"
        );
    }
    let line = reconcile_line(&app, "gt:fenced");
    assert!(line.starts_with("OK"), "{line}");
    assert_eq!(
        written,
        write::Written { kept: 0, fenced: 10 },
        "the held batch was dropped"
    );
}

#[tokio::test]
async fn answers_never_exceed_the_quantity_through_losses() {
    // Quantity 30; 20 answered and lost (nothing drained), Redis restarted empty; then 100 more
    // users ask. Without reservations the 20 lost units would be sold again: 50 answers for 30.
    let mut redis = RedisServer::start(&[]).await;
    let app = app_on(&redis).await;
    app.create_event("capped", 30, None).await;
    let mut answered = 0;
    for user in 1..=20 {
        assert_eq!(app.issue("capped", user).await.status(), 201);
        answered += 1;
    }
    redis.kill_and_restart().await;
    for user in 21..=120 {
        let r =
            crate::durability::issue_until(&app, "capped", user, Duration::from_secs(10), |s| s != 503).await;
        match r.status().as_u16() {
            201 => answered += 1,
            409 => {
                assert_error(r, 409, "SOLD_OUT", "/events/capped/tickets").await;
            }
            other => panic!("user {user}: {other}"),
        }
    }
    assert!(answered <= 30, "{answered} answers of 201 for 30 tickets");
}

/// The guard itself: `issue.lua` answers RESERVE at the ceiling Postgres reserved, whatever the
/// quantity left, and issues again once the ceiling is raised.
#[tokio::test]
async fn the_script_never_issues_past_the_reserved_ceiling() {
    use engine::{
        issue::{self, IssueGroup, IssueRequest, Verdict},
        scope::IdMode,
    };

    let app = TestApp::spawn_without_drain().await;
    app.create_event("ceiling", 100, None).await;
    let keys = app.keys.ticket_event("ceiling");
    let _: i64 = app
        .redis_cmd("HSET", vec![keys.meta.clone(), "ceiling".into(), "2".into()])
        .await;
    let requests: Vec<IssueRequest> = (1..=3)
        .map(|user| IssueRequest { user, clock_ms: None })
        .collect();
    let group = |requests| IssueGroup {
        keys: &keys,
        kind: "ticket",
        scope: "ceiling",
        ids: IdMode::Given,
        requests,
        confirm: None,
    };
    let verdicts = issue::run(app.redis.next(), group(&requests)).await.unwrap();
    assert!(
        matches!(
            verdicts[0],
            Verdict::Issued {
                issued: 1,
                ceiling: Some(2),
                ..
            }
        ),
        "{verdicts:?}"
    );
    assert!(
        matches!(verdicts[1], Verdict::Issued { issued: 2, .. }),
        "{verdicts:?}"
    );
    assert_eq!(
        verdicts[2],
        Verdict::Reserve {
            issued: 2,
            total: 100
        },
        "98 left, none reserved"
    );
    let _: i64 = app
        .redis_cmd("HSET", vec![keys.meta.clone(), "ceiling".into(), "3".into()])
        .await;
    let again = issue::run(app.redis.next(), group(&requests[2..])).await.unwrap();
    assert!(matches!(again[0], Verdict::Issued { issued: 3, .. }), "{again:?}");
    // Through the api, the engine reserves in Postgres and goes on.
    assert_eq!(app.issue("ceiling", 4).await.status(), 201);
    let reserved: i64 = sqlx::query_scalar(
        "SELECT reserved FROM scope_reservations WHERE scope_kind = 'ticket' AND scope_id = 'ceiling'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(reserved >= 4, "reserved {reserved}");
}
