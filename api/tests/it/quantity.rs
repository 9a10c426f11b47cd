//! `PATCH /events/{eventKey}` with `totalQuantity`: an event's quantity changed while it issues,
//! up, or down to what it issued and no further.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use futures::{StreamExt, stream};
use serde_json::{Value, json};

use crate::{
    coupons::{self, Setup},
    helpers::{Options, TestApp, assert_error},
};

async fn set_total(app: &TestApp, key: &str, total: i64) -> reqwest::Response {
    app.patch(
        &format!("/events/{key}"),
        &app.admin(),
        &json!({ "totalQuantity": total }),
    )
    .await
}

async fn figures(app: &TestApp, key: &str) -> (i64, i64) {
    let body: Value = app
        .get(&format!("/events/{key}"), None)
        .await
        .json()
        .await
        .unwrap();
    (
        body["totalQuantity"].as_i64().unwrap(),
        body["remainingQuantity"].as_i64().unwrap(),
    )
}

/// A second api process on the same stores, with caches and sold-out memory of its own (the
/// first one drains).
async fn second_process(app: &TestApp) -> TestApp {
    TestApp::spawn_on(
        app.core.clone(),
        Options {
            drain: false,
            ..Options::default()
        },
    )
    .await
}

/// Long enough for the sold-out memory to load the holders in the background.
const HOLDERS_LOADED: Duration = Duration::from_millis(300);
/// Past the rules cache's TTL (1 s).
const CACHE_TTL: Duration = Duration::from_millis(1_200);

#[tokio::test]
async fn lowering_below_what_was_issued_is_409_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.create_event("lower", 5, None).await;
    for user in 1..=3 {
        assert_eq!(app.issue("lower", user).await.status(), 201);
    }
    let refused = assert_error(
        set_total(&app, "lower", 2).await,
        409,
        "QUANTITY_BELOW_ISSUED",
        "/events/lower",
    )
    .await;
    assert!(refused["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(figures(&app, "lower").await, (5, 2), "nothing changed");
    assert_eq!(
        app.issue("lower", 4).await.status(),
        201,
        "the old quantity still issues"
    );

    // Down to exactly what was issued: sold out at once.
    let r = set_total(&app, "lower", 4).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["totalQuantity"].as_i64(), body["remainingQuantity"].as_i64()),
        (Some(4), Some(0))
    );
    assert_error(
        app.issue("lower", 5).await,
        409,
        "SOLD_OUT",
        "/events/lower/tickets",
    )
    .await;
    assert_eq!(
        app.issue("lower", 1).await.status(),
        200,
        "a holder keeps their ticket"
    );
}

#[tokio::test]
async fn a_quantity_change_checks_its_input() {
    let app = TestApp::spawn().await;
    app.create_event("checked", 10, Some(4)).await;
    for (body, why) in [
        (json!({}), "no field"),
        (json!({ "totalQuantity": 0 }), "zero"),
        (
            json!({ "totalQuantity": 10_000_001 }),
            "above the largest quantity",
        ),
        (json!({ "totalQuantity": "5" }), "not a number"),
        (json!({ "totalQuantity": 3 }), "below the daily limit"),
        (json!({ "totalQuantity": 5, "name": "x" }), "an unknown field"),
    ] {
        let r = app.patch("/events/checked", &app.admin(), &body).await;
        assert_eq!(r.status(), 400, "{why}");
        assert_error(r, 400, "INVALID_REQUEST", "/events/checked").await;
    }
    assert_eq!(figures(&app, "checked").await, (10, 10), "nothing changed");
    let r = app
        .patch("/events/checked", &app.user(1), &json!({ "totalQuantity": 20 }))
        .await;
    assert_error(r, 403, "FORBIDDEN", "/events/checked").await;
    assert_error(
        set_total(&app, "missing", 20).await,
        404,
        "EVENT_NOT_FOUND",
        "/events/missing",
    )
    .await;

    // Both fields at once.
    let r = app
        .patch(
            "/events/checked",
            &app.admin(),
            &json!({ "totalQuantity": 4, "active": false }),
        )
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["totalQuantity"].as_i64(), body["isActive"].as_bool()),
        (Some(4), Some(false))
    );
}

#[tokio::test]
async fn raising_the_quantity_ends_a_sell_out_in_every_process() {
    let app = TestApp::spawn().await;
    let other = second_process(&app).await;
    app.create_event("raise", 2, None).await;
    assert_eq!(app.issue("raise", 1).await.status(), 201);
    assert_eq!(other.issue("raise", 2).await.status(), 201);
    for process in [&app, &other] {
        assert_error(
            process.issue("raise", 3).await,
            409,
            "SOLD_OUT",
            "/events/raise/tickets",
        )
        .await;
    }
    tokio::time::sleep(HOLDERS_LOADED).await;

    let r = set_total(&app, "raise", 4).await;
    assert_eq!(r.status(), 200);
    assert_eq!(figures(&app, "raise").await, (4, 2));
    assert_eq!(
        app.issue("raise", 3).await.status(),
        201,
        "the process that changed it"
    );
    // The other process learns of the change within its rules cache's TTL; its sold-out memory
    // (holders loaded, so it would answer from memory) must not outlive the old rules.
    tokio::time::sleep(CACHE_TTL).await;
    assert_eq!(figures(&other, "raise").await, (4, 1));
    assert_eq!(other.issue("raise", 4).await.status(), 201, "another process");
    for process in [&app, &other] {
        assert_error(
            process.issue("raise", 5).await,
            409,
            "SOLD_OUT",
            "/events/raise/tickets",
        )
        .await;
    }
    assert_eq!(app.wait_rows("raise", 4, Duration::from_secs(10)).await, 4);
}

#[tokio::test]
async fn lowering_under_a_burst_never_issues_past_the_new_quantity() {
    lower_under_a_burst(1).await;
}

#[tokio::test]
async fn lowering_an_event_over_buckets_under_a_burst_never_issues_past_it() {
    lower_under_a_burst(3).await;
}

/// A 2,000-user burst on an event of 2,000 over `shards` buckets, lowered while it runs.
async fn lower_under_a_burst(shards: i64) {
    let app = TestApp::spawn().await;
    let users: i64 = 2_000;
    if shards > 1 {
        crate::shards::create(&app, "burst-lower", users, shards).await;
    } else {
        app.create_event("burst-lower", users, None).await;
    }
    let issued = Arc::new(AtomicI64::new(0));
    let burst = {
        let (app_base, issued) = (app.base.clone(), Arc::clone(&issued));
        let http = app.http.clone();
        let tokens: Vec<String> = (1..=users).map(|u| app.user(u)).collect();
        tokio::spawn(async move {
            stream::iter((1..=users).zip(tokens))
                .map(|(user, token)| {
                    let (http, base, issued) = (http.clone(), app_base.clone(), Arc::clone(&issued));
                    async move {
                        let r = http
                            .post(format!("{base}/events/burst-lower/tickets"))
                            .bearer_auth(token)
                            .json(&json!({ "userId": user }))
                            .send()
                            .await
                            .unwrap();
                        let status = r.status().as_u16();
                        if status == 201 {
                            issued.fetch_add(1, Ordering::Relaxed);
                        }
                        status
                    }
                })
                .buffer_unordered(32)
                .collect::<Vec<u16>>()
                .await
        })
    };
    // Lower it while the burst runs, to a little above what has been answered so far (the
    // answers in flight may take the count past it: then 409, and a higher try).
    while issued.load(Ordering::Relaxed) < 50 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut lowered = None;
    for _ in 0..20 {
        let target = issued.load(Ordering::Relaxed) + 100;
        let r = set_total(&app, "burst-lower", target).await;
        match r.status().as_u16() {
            200 => {
                lowered = Some(target);
                break;
            }
            409 => continue,
            other => panic!("{shards} buckets: unexpected {other}"),
        }
    }
    let statuses = burst.await.unwrap();
    let lowered = lowered.expect("a lowering was taken while the burst ran");
    let created = statuses.iter().filter(|s| **s == 201).count() as i64;
    let sold_out = statuses.iter().filter(|s| **s == 409).count() as i64;
    assert_eq!(
        created + sold_out,
        users,
        "every answer is an issue or sold out: {statuses:?}"
    );
    assert_eq!(
        created, lowered,
        "{shards} buckets: issued up to the new quantity exactly, never past it"
    );
    assert_eq!(figures(&app, "burst-lower").await, (lowered, 0));
    assert_eq!(
        app.wait_rows("burst-lower", created, Duration::from_secs(20))
            .await,
        created
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.ticket_rows("burst-lower").await,
        created,
        "nothing more reached Postgres"
    );
}

#[tokio::test]
async fn a_copy_rebuilt_from_stale_rules_keeps_the_lowered_quantity() {
    let app = TestApp::spawn().await;
    let other = second_process(&app).await;
    app.create_event("stale", 10, None).await;
    for user in 1..=3 {
        assert_eq!(other.issue("stale", user).await.status(), 201);
    }
    // The other process holds the rules with the old quantity in its cache for up to a second;
    // lower it through this one, then lose the Redis copy's rules.
    assert_eq!(set_total(&app, "stale", 4).await.status(), 200);
    let meta = app.keys.ticket_event("stale").meta;
    let _: i64 = app.redis_cmd("DEL", vec![meta]).await;
    // The other process rebuilds the copy with its cached rules at hand: the rebuild must take
    // the quantity from Postgres, not from them.
    let mut created = 0;
    for user in 10..20 {
        match other.issue("stale", user).await.status().as_u16() {
            201 => created += 1,
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 1, "one left under the lowered quantity of 4");
    tokio::time::sleep(CACHE_TTL).await;
    assert_eq!(figures(&other, "stale").await, (4, 0));
}

async fn set_issue_count(app: &TestApp, batch: i64, count: i64) -> reqwest::Response {
    app.patch(
        &format!("/api/v1/admin/coupon-batches/{batch}"),
        &app.admin(),
        &json!({ "issueCount": count }),
    )
    .await
}

#[tokio::test]
async fn a_self_batchs_quantity_changes_live_within_its_inventory() {
    let app = TestApp::spawn().await;
    let setup = |issue_type| Setup {
        count: 3,
        inventory: Some(10),
        issue_type,
        ..Setup::default()
    };
    let (_, batch) = coupons::batch(&app, setup("SELF")).await;
    let path = format!("/api/v1/admin/coupon-batches/{batch}");
    let claim_path = format!("/api/v1/coupons/{batch}/issue");
    for user in 1..=3 {
        assert_eq!(coupons::issue(&app, batch, user).await.status(), 201);
    }
    assert_error(
        coupons::issue(&app, batch, 4).await,
        409,
        "COUPON_SOLD_OUT",
        &claim_path,
    )
    .await;
    tokio::time::sleep(HOLDERS_LOADED).await;

    for (count, status, code) in [
        (2, 409, "QUANTITY_BELOW_ISSUED"),
        (11, 400, "MAX_COUPON_LIMIT_EXCEEDED"),
        (0, 400, "INVALID_REQUEST"),
    ] {
        assert_error(set_issue_count(&app, batch, count).await, status, code, &path).await;
    }
    let r = app.patch(&path, &app.user(1), &json!({ "issueCount": 5 })).await;
    assert_error(r, 403, "FORBIDDEN", &path).await;
    let missing = "/api/v1/admin/coupon-batches/999999";
    let r = app
        .patch(missing, &app.admin(), &json!({ "issueCount": 5 }))
        .await;
    assert_error(r, 404, "COUPON_BATCH_NOT_FOUND", missing).await;

    let r = set_issue_count(&app, batch, 5).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["issueCount"].as_i64(), body["issuedCount"].as_i64()),
        (Some(5), Some(3))
    );
    // The sell-out is over, and the next coupon takes the next position.
    let r = coupons::issue(&app, batch, 4).await;
    assert_eq!(r.status(), 201);
    let coupon: Value = r.json().await.unwrap();
    assert_eq!(coupon["couponIssueId"].as_i64(), Some(batch * 10_000_000 + 3));

    // Down to what was issued: sold out at once.
    assert_eq!(set_issue_count(&app, batch, 4).await.status(), 200);
    assert_error(
        coupons::issue(&app, batch, 5).await,
        409,
        "COUPON_SOLD_OUT",
        &claim_path,
    )
    .await;
    let body: Value = app.get(&path, Some(&app.admin())).await.json().await.unwrap();
    assert_eq!(
        (body["issueCount"].as_i64(), body["issuedCount"].as_i64()),
        (Some(4), Some(4))
    );

    // A MAPPED batch's quantity is its codes: not changed here.
    let (_, mapped) = coupons::batch(&app, setup("MAPPED")).await;
    let mapped_path = format!("/api/v1/admin/coupon-batches/{mapped}");
    assert_error(
        set_issue_count(&app, mapped, 5).await,
        400,
        "CANNOT_MODIFY_COUPON_BATCH",
        &mapped_path,
    )
    .await;
}

#[tokio::test]
async fn a_lowering_postgres_does_not_commit_is_put_back_in_redis() {
    let app = TestApp::spawn().await;
    app.create_event("put-back", 10, None).await;
    for user in 1..=2 {
        assert_eq!(app.issue("put-back", user).await.status(), 201);
    }
    // Postgres refuses the row's write after Redis has taken the lowering.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_quantity() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
         CREATE TRIGGER refuse_quantity BEFORE UPDATE ON ticket_events
         FOR EACH ROW WHEN (NEW.total_quantity = 5) EXECUTE FUNCTION refuse_quantity();",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let r = set_total(&app, "put-back", 5).await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let meta = app.keys.ticket_event("put-back").meta;
    let total: i64 = app.redis_cmd("HGET", vec![meta, "total".into()]).await;
    assert_eq!(total, 10, "the Redis copy is back at the quantity Postgres kept");
    assert_eq!(figures(&app, "put-back").await, (10, 8));
    let created = stream::iter(3..=12)
        .then(|user| app.issue("put-back", user))
        .filter(|r| std::future::ready(r.status() == 201))
        .count()
        .await;
    assert_eq!(created, 8, "the old quantity issues to its end");
}
