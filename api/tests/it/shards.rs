//! Events spread over buckets: exact under bursts with 1, 3 and 8 buckets, sold out completely
//! while demand continues, and never over the quantity after a bucket's key is lost.

use std::{collections::HashSet, time::Duration};

use engine::{
    keys::ScopeKeys,
    scope::{Scope, bucket_of},
};
use issuance_core::ids::EventKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    burst::{burst, burst_of},
    helpers::{TestApp, WorkersProcess},
};

/// Creates an event of `total` over `shards` buckets; panics unless 201.
pub(crate) async fn create(app: &TestApp, key: &str, total: i64, shards: i64) -> Value {
    create_daily(app, key, total, None, shards).await
}

/// [`create`] with a daily limit.
async fn create_daily(app: &TestApp, key: &str, total: i64, daily: Option<i64>, shards: i64) -> Value {
    let body = json!({
        "eventKey": key, "name": "spread", "totalQuantity": total, "dailyLimit": daily, "shards": shards,
        "startAt": "2020-01-01T00:00:00Z", "endAt": "2099-12-31T23:59:59Z",
    });
    let r = app.post("/events", &app.admin(), &body).await;
    assert_eq!(r.status(), StatusCode::CREATED, "create {key}");
    r.json().await.unwrap()
}

/// The event as `GET /events/{key}` answers it.
async fn event_status(app: &TestApp, key: &str) -> Value {
    app.get(&format!("/events/{key}"), None)
        .await
        .json()
        .await
        .unwrap()
}

/// The keys of every Redis copy of `key` (its buckets, or the event itself).
fn copies(app: &TestApp, key: &str, shards: u16) -> Vec<ScopeKeys> {
    let event = EventKey::parse(key).unwrap();
    match Scope::buckets(&event, shards) {
        buckets if buckets.is_empty() => vec![app.keys.ticket_event(key)],
        buckets => buckets.iter().map(|b| b.keys(&app.keys)).collect(),
    }
}

/// Holders in Redis over every copy.
async fn holders(app: &TestApp, key: &str, shards: u16) -> i64 {
    let mut sum = 0;
    for copy in copies(app, key, shards) {
        let n: i64 = app.redis_cmd("HLEN", vec![copy.holders]).await;
        sum += n;
    }
    sum
}

/// What Postgres has reserved for the event's pool, and for its buckets together.
async fn reservations(app: &TestApp, key: &str) -> (i64, i64) {
    let pool: i64 = sqlx::query_scalar(
        "SELECT reserved FROM scope_reservations WHERE scope_kind = 'ticket' AND scope_id = $1",
    )
    .bind(key)
    .fetch_optional(&app.db)
    .await
    .unwrap()
    .unwrap_or(0);
    let buckets: Option<i64> = sqlx::query_scalar(
        "SELECT sum(reserved)::bigint FROM scope_reservations WHERE scope_kind = 'ticket' AND scope_id LIKE $1 || '#%'",
    )
    .bind(key)
    .fetch_one(&app.db)
    .await
    .unwrap();
    (pool, buckets.unwrap_or(0))
}

#[tokio::test]
async fn a_burst_on_1_3_and_8_buckets_gets_exactly_the_quantity() {
    let app = TestApp::spawn().await;
    for shards in [1_u16, 3, 8] {
        let key = format!("spread-{shards}");
        let created = create(&app, &key, 120, i64::from(shards)).await;
        assert_eq!(created["shards"], shards);
        let answers = burst(&app, std::slice::from_ref(&app.base), &key, 700).await;
        let created = answers.iter().filter(|(_, s, _)| *s == 201).count();
        assert_eq!(
            created, 120,
            "{shards} buckets: exactly the quantity answered 201"
        );
        let mut winners = HashSet::new();
        for (user, status, body) in &answers {
            match status {
                201 | 200 => {
                    winners.insert(*user);
                }
                409 => assert_eq!(body["code"], "SOLD_OUT", "{body}"),
                other => panic!("{shards} buckets: user {user} answered {other}: {body}"),
            }
        }
        assert_eq!(winners.len(), 120, "{shards} buckets: one ticket per winner");
        // The same user asking again gets the same ticket back, from their bucket.
        let (user, _, first) = answers.iter().find(|(_, s, _)| *s == 201).unwrap();
        let again = app.issue(&key, *user).await;
        assert_eq!(again.status(), StatusCode::OK);
        assert_eq!(
            again.json::<Value>().await.unwrap()["ticketId"],
            first["ticketId"]
        );

        assert_eq!(holders(&app, &key, shards).await, 120, "{shards} buckets: Redis");
        let rows = app.wait_rows(&key, 120, Duration::from_secs(10)).await;
        assert_eq!(
            rows, 120,
            "{shards} buckets: Postgres holds exactly the issued tickets"
        );
        let users: i64 =
            sqlx::query_scalar("SELECT count(DISTINCT user_id) FROM tickets WHERE event_key = $1")
                .bind(&key)
                .fetch_one(&app.db)
                .await
                .unwrap();
        assert_eq!(users, 120, "{shards} buckets: no user twice in Postgres");
        let status = event_status(&app, &key).await;
        assert_eq!(status["remainingQuantity"], 0, "{shards} buckets");
        if shards > 1 {
            let (pool, buckets) = reservations(&app, &key).await;
            assert!(pool <= 120, "{shards} buckets: the pool leased {pool}");
            assert_eq!(
                pool, buckets,
                "{shards} buckets: the pool is what the buckets hold"
            );
            // Reconcile compares each bucket with its share of the event's rows.
            reconciled_per_bucket(&app, &format!("gt:{key}"), shards);
        }
    }
    // `workers check` counts an event over buckets as one: the sum of its buckets' holders.
    checked(&app);
}

/// `workers reconcile` finds every bucket of the scope tagged `whole` (`gt:<event>`,
/// `cb:<batch>`) OK.
pub(crate) fn reconciled_per_bucket(app: &TestApp, whole: &str, shards: u16) {
    let out = WorkersProcess::run_once(&app.core, &["reconcile"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "workers reconcile: {text}");
    for bucket in 0..shards {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("{whole}#{bucket} ")))
            .unwrap_or_else(|| panic!("no line for bucket {bucket}: {text}"));
        assert!(line.starts_with("OK"), "{line}");
    }
}

/// `workers check` passes.
pub(crate) fn checked(app: &TestApp) {
    let check = WorkersProcess::run_once(&app.core, &["check"]);
    assert!(
        check.status.success(),
        "workers check: {}",
        String::from_utf8_lossy(&check.stdout)
    );
}

/// The first user ids (from `from`) that fall in `bucket` of `shards`.
pub(crate) fn users_of(bucket: u16, shards: u16, from: i64, n: usize) -> Vec<i64> {
    (from..)
        .filter(|u| bucket_of(*u, shards) == bucket)
        .take(n)
        .collect()
}

#[tokio::test]
async fn demand_on_one_bucket_sells_the_whole_event() {
    let app = TestApp::spawn().await;
    create(&app, "hot-bucket", 30, 3).await;
    // Every bucket leases a share: one user each.
    for bucket in 0..3 {
        let user = users_of(bucket, 3, 1, 1)[0];
        assert_eq!(app.issue("hot-bucket", user).await.status(), StatusCode::CREATED);
    }
    let (pool, _) = reservations(&app, "hot-bucket").await;
    assert!(
        pool > 3,
        "the buckets hold leases beyond their one issue ({pool})"
    );
    // Then only bucket 0's users ask, one at a time: the others' leases must come back to it,
    // so the first SOLD_OUT comes only once all 30 are issued.
    let mut issued = 3;
    for user in users_of(0, 3, 1_000, 60) {
        let r = app.issue("hot-bucket", user).await;
        match r.status() {
            StatusCode::CREATED => issued += 1,
            StatusCode::CONFLICT => {
                assert_eq!(issued, 30, "told sold out with {} left", 30 - issued);
                break;
            }
            other => panic!("user {user}: {other}"),
        }
    }
    assert_eq!(issued, 30, "the whole quantity was sold");
    assert_eq!(holders(&app, "hot-bucket", 3).await, 30);
    let (pool, buckets) = reservations(&app, "hot-bucket").await;
    assert_eq!((pool, buckets), (30, 30));
}

#[tokio::test]
async fn losing_any_key_of_a_bucket_never_takes_the_event_past_its_quantity() {
    let app = TestApp::spawn().await;
    for (n, suffix) in ["meta", "holders", "stream", "all"].iter().enumerate() {
        let key = format!("lossy-{suffix}");
        create(&app, &key, 60, 3).await;
        let base = 10_000 * (n as i64 + 1);
        // Half the crowd, then the loss of one bucket's key, then the rest (and the first half
        // again).
        let first: Vec<(i64, u16, Value)> = burst_from(&app, &key, base, 40).await;
        // Persisted first: without persistence, a lost stream loses the answers not yet drained
        // (replica mode is what keeps those, see the durability tests); this is about the count.
        let answered = first.iter().filter(|(_, s, _)| *s == 201).count() as i64;
        assert_eq!(
            app.wait_rows(&key, answered, Duration::from_secs(10)).await,
            answered
        );
        let bucket = &copies(&app, &key, 3)[1];
        let lost = match *suffix {
            "meta" => vec![bucket.meta.clone()],
            "holders" => vec![bucket.holders.clone()],
            "stream" => vec![bucket.stream.clone()],
            _ => vec![bucket.meta.clone(), bucket.holders.clone(), bucket.stream.clone()],
        };
        let _: i64 = app.redis_cmd("DEL", lost).await;
        let second = burst_from(&app, &key, base, 200).await;
        let mut tickets = HashSet::new();
        for (user, status, body) in first.iter().chain(&second) {
            if *status == 201 || *status == 200 {
                tickets.insert((*user, body["ticketId"].as_str().unwrap().to_owned()));
            }
        }
        let users: HashSet<i64> = tickets.iter().map(|(u, _)| *u).collect();
        assert_eq!(
            users.len(),
            tickets.len(),
            "{suffix}: a user answered two tickets"
        );
        assert!(
            users.len() <= 60,
            "{suffix}: {} answered past the quantity",
            users.len()
        );
        let (pool, buckets) = reservations(&app, &key).await;
        assert!(
            pool <= 60 && pool == buckets,
            "{suffix}: pool {pool}, buckets {buckets}"
        );
        let status = event_status(&app, &key).await;
        assert_eq!(
            status["remainingQuantity"], 0,
            "{suffix}: sold out (stranded units count as issued)"
        );
        let rows = app
            .wait_rows(&key, users.len() as i64, Duration::from_secs(10))
            .await;
        assert_eq!(
            rows,
            users.len() as i64,
            "{suffix}: Postgres holds every ticket answered"
        );
    }
}

#[tokio::test]
async fn a_bucket_lost_at_the_end_of_a_sale_is_rebuilt_before_anyone_is_told_sold_out() {
    let app = TestApp::spawn().await;
    create(&app, "unsound", 30, 3).await;
    for bucket in 0..3 {
        let user = users_of(bucket, 3, 1, 1)[0];
        assert_eq!(app.issue("unsound", user).await.status(), StatusCode::CREATED);
    }
    // Bucket 1 loses its meta, with the lease it has not issued, and none of its users asks:
    // only a lease can find it.
    let meta = copies(&app, "unsound", 3)[1].meta.clone();
    let _: i64 = app.redis_cmd("DEL", vec![meta]).await;
    let mut told = None;
    for user in users_of(0, 3, 1_000, 60) {
        match app.issue("unsound", user).await.status() {
            StatusCode::CREATED => {}
            StatusCode::CONFLICT => {
                told = Some(event_status(&app, "unsound").await["remainingQuantity"].clone());
                break;
            }
            other => panic!("user {user}: {other}"),
        }
    }
    assert_eq!(
        told,
        Some(json!(0)),
        "told sold out only once nothing is left (stranded units count as issued)"
    );
    let (pool, buckets) = reservations(&app, "unsound").await;
    assert_eq!((pool, buckets), (30, 30));
}

#[tokio::test]
async fn a_take_back_never_lowers_a_bucket_of_another_history() {
    let app = TestApp::spawn().await;
    create(&app, "older", 30, 3).await;
    let mut answered = 0;
    for (bucket, n) in [(0, 1), (1, 3), (2, 1)] {
        for user in users_of(bucket, 3, 1, n) {
            assert_eq!(app.issue("older", user).await.status(), StatusCode::CREATED);
            answered += 1;
        }
    }
    assert_eq!(
        app.wait_rows("older", answered, Duration::from_secs(10)).await,
        answered
    );
    // Bucket 1's server comes back from an older copy: its last two issues, answered and
    // persisted, are gone from it, and it is of another history.
    let copy = &copies(&app, "older", 3)[1];
    let kept = users_of(1, 3, 1, 3);
    let _: i64 = app
        .redis_cmd(
            "HDEL",
            vec![copy.holders.clone(), kept[1].to_string(), kept[2].to_string()],
        )
        .await;
    let _: i64 = app
        .redis_cmd(
            "HSET",
            vec![
                copy.meta.clone(),
                "issued".into(),
                "1".into(),
                "epoch".into(),
                "0123456789abcdef".into(),
            ],
        )
        .await;
    // Only bucket 0's users ask, until the event is sold out.
    for user in users_of(0, 3, 1_000, 60) {
        match app.issue("older", user).await.status() {
            StatusCode::CREATED => answered += 1,
            StatusCode::CONFLICT => break,
            other => panic!("user {user}: {other}"),
        }
    }
    assert!(answered <= 30, "{answered} tickets answered of 30");
    let rows = app.wait_rows("older", answered, Duration::from_secs(10)).await;
    assert_eq!(rows, answered, "Postgres holds every ticket answered");
    let (pool, buckets) = reservations(&app, "older").await;
    assert!(pool <= 30 && pool == buckets, "pool {pool}, buckets {buckets}");
}

/// A burst of the users `base + 1 ..= base + users`, each pressing twice.
async fn burst_from(app: &TestApp, key: &str, base: i64, users: i64) -> Vec<(i64, u16, Value)> {
    burst_of(app, std::slice::from_ref(&app.base), key, base + 1..=base + users).await
}

#[tokio::test]
async fn a_lease_raised_late_does_not_undo_a_take_back() {
    let app = TestApp::spawn().await;
    create(&app, "late-raise", 40, 3).await;
    let user = users_of(1, 3, 1, 1)[0];
    assert_eq!(app.issue("late-raise", user).await.status(), StatusCode::CREATED);
    let meta = copies(&app, "late-raise", 3)[1].meta.clone();
    let field = |name: &'static str| {
        let meta = meta.clone();
        let app = &app;
        async move {
            let v: Option<String> = app.redis_cmd("HGET", vec![meta, name.into()]).await;
            v.unwrap_or_else(|| "0".into())
        }
    };
    let (fence, lgen, leased) = (field("fence").await, field("lgen").await, field("ceiling").await);
    assert!(
        leased.parse::<i64>().unwrap() > 1,
        "the bucket leased more than it issued"
    );
    let client = app.redis.next();
    // A take-back, then a raise computed before it (its generation is the old one).
    let day = copies(&app, "late-raise", 3)[1].day_prefix.clone();
    let lowered: (i64, i64) = engine::script::Lua::LowerCeiling
        .call(
            client,
            vec![meta.as_str(), day.as_str()],
            vec![fence.clone(), String::new(), leased.clone(), "0".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        lowered,
        (1, -1),
        "taken back down to what it issued (no daily share)"
    );
    let after: i64 = engine::script::Lua::RaiseCeiling
        .call(
            client,
            vec![meta.as_str()],
            vec![fence.clone(), "1000".into(), lgen.clone()],
        )
        .await
        .unwrap();
    assert_eq!(after, 1, "the late raise changed nothing");
    assert_eq!(field("ceiling").await, "1");
    // A raise of the current generation applies.
    let current = field("lgen").await;
    let raised: i64 = engine::script::Lua::RaiseCeiling
        .call(client, vec![meta.as_str()], vec![fence, "5".into(), current])
        .await
        .unwrap();
    assert_eq!(raised, 5);
}

/// One answer of [`timed_burst`]: who, what, and when it was sent and answered.
struct Timed {
    status: u16,
    sent: Duration,
    answered: Duration,
}

/// `users` fresh users from `base + 1`, 64 at a time, each asking once; every answer timed.
async fn timed_burst(app: &TestApp, key: &str, base: i64, users: i64) -> Vec<Timed> {
    use futures::StreamExt;
    let t0 = std::time::Instant::now();
    futures::stream::iter(base + 1..=base + users)
        .map(|user| async move {
            let sent = t0.elapsed();
            let status = app.issue(key, user).await.status().as_u16();
            Timed {
                status,
                sent,
                answered: t0.elapsed(),
            }
        })
        .buffer_unordered(64)
        .collect()
        .await
}

#[tokio::test]
async fn nobody_is_told_sold_out_while_a_bucket_still_has_stock() {
    let app = TestApp::spawn().await;
    for shards in [3_i64, 8] {
        let key = format!("told-{shards}");
        create(&app, &key, 400, shards).await;
        let answers = timed_burst(&app, &key, 0, 1_500).await;
        let issued: Vec<&Timed> = answers.iter().filter(|a| a.status == 201).collect();
        assert_eq!(issued.len(), 400, "{shards} buckets: all sold");
        assert!(
            answers.iter().all(|a| a.status == 201 || a.status == 409),
            "{shards} buckets: 201 or 409 only"
        );
        // A 409 answered before a later request was sent and got a ticket: told "sold out"
        // while a unit was left somewhere.
        let last_sent = issued.iter().map(|a| a.sent).max().unwrap();
        let early: Vec<Duration> = answers
            .iter()
            .filter(|a| a.status == 409 && a.answered < last_sent)
            .map(|a| last_sent - a.answered)
            .collect();
        eprintln!(
            "{shards} buckets: {} of {} sold-out answers came while stock was left (the earliest {:?} before the last sale)",
            early.len(),
            answers.len() - issued.len(),
            early.iter().max()
        );
        assert!(
            early.iter().all(|d| *d < Duration::from_secs(1)),
            "{shards} buckets: told sold out over a second before the last sale: {early:?}"
        );
    }
}

/// The daily limit's shares leased to the pool, and to the buckets together.
async fn daily_shares(app: &TestApp, key: &str) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT daily_reserved FROM scope_reservations WHERE scope_kind = 'ticket' AND scope_id = $1),
                (SELECT coalesce(sum(daily_reserved), 0)::bigint FROM scope_reservations
                 WHERE scope_kind = 'ticket' AND scope_id LIKE $1 || '#%')",
    )
    .bind(key)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_daily_limit_holds_across_buckets() {
    let app = TestApp::spawn().await;
    for shards in [3_i64, 8] {
        let key = format!("daily-{shards}");
        create_daily(&app, &key, 200, Some(50), shards).await;
        let answers = burst(&app, std::slice::from_ref(&app.base), &key, 400).await;
        let issued = answers.iter().filter(|(_, s, _)| *s == 201).count();
        assert_eq!(issued, 50, "{shards} buckets: exactly today's limit");
        for (user, status, body) in &answers {
            if *status == 409 {
                assert_eq!(body["code"], "DAILY_LIMIT_REACHED", "user {user}: {body}");
            } else {
                assert!(*status == 201 || *status == 200, "user {user}: {status} {body}");
            }
        }
        let status = event_status(&app, &key).await;
        assert_eq!(status["todayIssuedCount"], 50, "{shards} buckets");
        assert_eq!(status["remainingQuantity"], 150, "{shards} buckets");
        let (pool, buckets) = daily_shares(&app, &key).await;
        assert!(
            pool <= 50 && pool == buckets,
            "{shards} buckets: pool {pool}, buckets {buckets}"
        );
    }
}

#[tokio::test]
async fn demand_on_one_bucket_takes_the_whole_daily_limit() {
    let app = TestApp::spawn().await;
    create_daily(&app, "daily-hot", 100, Some(30), 3).await;
    for bucket in 0..3 {
        let user = users_of(bucket, 3, 1, 1)[0];
        assert_eq!(app.issue("daily-hot", user).await.status(), StatusCode::CREATED);
    }
    let mut issued = 3;
    for user in users_of(0, 3, 1_000, 60) {
        let r = app.issue("daily-hot", user).await;
        match r.status() {
            StatusCode::CREATED => issued += 1,
            StatusCode::CONFLICT => {
                assert_eq!(r.json::<Value>().await.unwrap()["code"], "DAILY_LIMIT_REACHED");
                assert_eq!(issued, 30, "told the day is full with {} left", 30 - issued);
                break;
            }
            other => panic!("user {user}: {other}"),
        }
    }
    assert_eq!(issued, 30);
    let (pool, buckets) = daily_shares(&app, "daily-hot").await;
    assert_eq!((pool, buckets), (30, 30));
}

/// Once a lease finds today's share all leased and issued, the rest of the day's burst takes
/// its word for a moment rather than queueing one Postgres transaction each on the pool row:
/// with that row held locked, every bucket still answers DAILY_LIMIT at once. Without the
/// finding each probe waits on the lock (a burst of 400 over 8 buckets queued some past the
/// request timeout that way). The finding stands a second, so a round whose probes a stalled
/// machine made miss it is tried again.
#[tokio::test]
async fn a_full_day_is_answered_without_queueing_on_the_pool_row() {
    let app = TestApp::spawn().await;
    let key = "daily-full";
    create_daily(&app, key, 100, Some(6), 3).await;
    let mut issued = 0;
    for user in 1.. {
        match app.issue(key, user).await.status() {
            StatusCode::CREATED => issued += 1,
            StatusCode::CONFLICT => break,
            other => panic!("user {user}: {other}"),
        }
    }
    assert_eq!(issued, 6, "the day's share, across the buckets");
    let probes: Vec<i64> = (0..3).map(|b| users_of(b, 3, 10_000, 1)[0]).collect();
    let mut answered_while_locked = false;
    for _round in 0..3 {
        // Any earlier finding has lapsed: this round's first request makes one.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let r = app.issue(key, probes[0]).await;
        assert_eq!(r.status(), StatusCode::CONFLICT);
        let mut lock = app.db.begin().await.unwrap();
        sqlx::query(
            "SELECT 1 FROM scope_reservations WHERE scope_kind = 'ticket' AND scope_id = $1 FOR UPDATE",
        )
        .bind(key)
        .execute(&mut *lock)
        .await
        .unwrap();
        let probing = probes
            .iter()
            .map(|user| tokio::time::timeout(Duration::from_secs(2), app.issue(key, *user)));
        let answers = futures::future::join_all(probing).await;
        lock.rollback().await.unwrap();
        if answers.iter().any(|a| a.is_err()) {
            continue;
        }
        for (user, answer) in probes.iter().zip(answers) {
            let r = answer.unwrap();
            assert_eq!(r.status(), StatusCode::CONFLICT, "user {user}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["code"], "DAILY_LIMIT_REACHED", "user {user}");
        }
        answered_while_locked = true;
        break;
    }
    assert!(
        answered_while_locked,
        "every round's probes queued on the pool row"
    );
    let (pool, buckets) = daily_shares(&app, key).await;
    assert_eq!((pool, buckets), (6, 6));
}

/// The state at the end of a day's share with every bucket leasing in turn, held for `churn`:
/// the pool's daily share all leased, bucket 0 out of its own, and bucket 1 holding the rest on
/// its way (a share in Postgres above its copy's, changed again and again, as buckets leasing
/// one after another keep it). Returns when the churn stops.
async fn hold_the_rest_on_its_way(app: &TestApp, key: &str, churn: Duration) {
    let buckets = Scope::buckets(&EventKey::parse(key).unwrap(), 2);
    let set_daily = |scope: String, daily: i64| {
        sqlx::query(
            "UPDATE scope_reservations SET daily_reserved = $2, updated_at = clock_timestamp()
             WHERE scope_kind = 'ticket' AND scope_id = $1",
        )
        .bind(scope)
        .bind(daily)
        .execute(&app.db)
    };
    set_daily(key.to_owned(), 4).await.unwrap();
    set_daily(buckets[0].id(), 1).await.unwrap();
    set_daily(buckets[1].id(), 3).await.unwrap();
    for bucket in &buckets {
        let meta = bucket.keys(&app.keys).meta;
        let _: i64 = app.redis_cmd("HSET", vec![meta, "dcap".into(), "1".into()]).await;
    }
    // As a bucket's own leases would, the churn refreshes the share only while it is still 3:
    // a take-back holds the pool row, so no lease ever writes over what one took back. An
    // unconditional write waiting on the row behind a take-back (a churn starved for longer
    // than a lease stays in flight) put the share back and left the buckets holding more than
    // the pool.
    let refresh = |scope: String| {
        sqlx::query(
            "UPDATE scope_reservations SET updated_at = clock_timestamp()
             WHERE scope_kind = 'ticket' AND scope_id = $1 AND daily_reserved = 3",
        )
        .bind(scope)
        .execute(&app.db)
    };
    let started = std::time::Instant::now();
    while started.elapsed() < churn {
        refresh(buckets[1].id()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_request_waits_out_a_daily_share_on_its_way_to_another_bucket() {
    let app = TestApp::spawn().await;
    let key = "daily-on-its-way";
    create_daily(&app, key, 100, Some(4), 2).await;
    // One issue on each bucket makes both copies; then every lease ahead has settled.
    for bucket in 0..2 {
        let user = users_of(bucket, 2, 1, 1)[0];
        assert_eq!(app.issue(key, user).await.status(), StatusCode::CREATED);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Longer than a request's reservations last (16 × 25 ms), well within its waits (2 s).
    let churn = Duration::from_millis(1_200);
    let user = users_of(0, 2, 1_000, 1)[0];
    let started = std::time::Instant::now();
    let (answer, ()) = tokio::join!(
        async {
            // The churn has begun when this asks.
            tokio::time::sleep(Duration::from_millis(100)).await;
            app.issue(key, user).await
        },
        hold_the_rest_on_its_way(&app, key, churn),
    );
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(
        started.elapsed() >= churn,
        "the request waited for the share on its way ({:?})",
        started.elapsed()
    );
    let (pool, buckets) = daily_shares(&app, key).await;
    assert!(pool <= 4 && pool == buckets, "pool {pool}, buckets {buckets}");
    assert_eq!(event_status(&app, key).await["todayIssuedCount"], 3);
}

/// Runs the workers' idle-lease loop in this process until the returned token is cancelled.
pub(crate) fn hand_back_loop(app: &TestApp) -> tokio_util::sync::CancellationToken {
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(workers::hand_back::run(
        app.engine(),
        workers::hand_back::EVERY,
        workers::hand_back::IDLE_FOR,
        stop.clone(),
    ));
    stop
}

#[tokio::test]
async fn idle_leases_go_back_to_the_pool_within_a_second() {
    let app = TestApp::spawn().await;
    create(&app, "idle-leases", 30, 3).await;
    for bucket in 0..3 {
        let user = users_of(bucket, 3, 1, 1)[0];
        assert_eq!(app.issue("idle-leases", user).await.status(), StatusCode::CREATED);
    }
    let (pool, _) = reservations(&app, "idle-leases").await;
    assert!(
        pool > 3,
        "the buckets hold leases beyond their one issue ({pool})"
    );
    let stop = hand_back_loop(&app);
    let started = std::time::Instant::now();
    let mut back_after = None;
    while started.elapsed() < Duration::from_secs(5) {
        if reservations(&app, "idle-leases").await == (3, 3) {
            back_after = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let back_after = back_after.expect("the idle leases came back to the pool");
    println!("idle leases back in the pool {back_after:?} after the last issue");
    for copy in copies(&app, "idle-leases", 3) {
        let (issued, ceiling): (i64, i64) = app
            .redis_cmd(
                "HMGET",
                vec![copy.meta.clone(), "issued".into(), "ceiling".into()],
            )
            .await;
        assert_eq!(
            ceiling, issued,
            "{}: the ceiling is down to what it issued",
            copy.meta
        );
    }
    // The rest sells to bucket 0 alone, exactly.
    let mut issued = 3;
    for user in users_of(0, 3, 1_000, 40) {
        match app.issue("idle-leases", user).await.status() {
            StatusCode::CREATED => issued += 1,
            StatusCode::CONFLICT => break,
            other => panic!("user {user}: {other}"),
        }
    }
    assert_eq!(issued, 30);
    assert_eq!(reservations(&app, "idle-leases").await, (30, 30));
    stop.cancel();
}
