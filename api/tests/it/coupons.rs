//! First-come coupons: the golden-ticket guarantees on a SELF coupon batch, every refusal code,
//! codes, and a user's coupon list.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use issuance_core::{code_generator::CodeGenerator, ids::UserId};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, fast_jobs};

/// The rules of a test batch; the defaults make an open SELF batch with a 10 % discount.
pub(crate) struct Setup {
    pub count: i64,
    /// The inventory's `totalCount` (none: the batch's count).
    pub inventory: Option<i64>,
    pub daily: Option<i64>,
    pub valid: (&'static str, &'static str),
    pub usable: (&'static str, &'static str),
    pub batch_status: &'static str,
    pub inventory_status: &'static str,
    pub issue_type: &'static str,
    /// The buckets the batch is spread over.
    pub shards: i64,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            count: 100,
            inventory: None,
            daily: None,
            valid: ("2026-01-01T00:00:00", "2099-01-01T00:00:00"),
            usable: ("2026-01-01T00:00:00", "2099-06-01T00:00:00"),
            batch_status: "READY",
            inventory_status: "READY",
            issue_type: "SELF",
            shards: 1,
        }
    }
}

/// Creates an event, an inventory and a batch as `s` says; returns (inventory id, batch id).
pub(crate) async fn batch(app: &TestApp, s: Setup) -> (i64, i64) {
    let name = format!("event-{}", uuid::Uuid::new_v4().simple());
    let event = app
        .admin_post(
            "/api/v1/admin/events",
            &json!({"eventName": name, "fromAt": "2026-01-01T00:00:00", "untilAt": "2099-01-01T00:00:00"}),
            201,
        )
        .await;
    let inventory = app
        .admin_post(
            "/api/v1/admin/coupon-inventories",
            &json!({"eventId": event["eventId"], "inventoryName": "A", "totalCount": s.inventory.unwrap_or(s.count),
                    "usableFromAt": s.usable.0, "usableUntilAt": s.usable.1,
                    "inventoryStatus": s.inventory_status,
                    "discount": {"type": "PERCENT", "value": 10, "maxDiscount": 5000}}),
            201,
        )
        .await;
    let batch = app
        .admin_post(
            "/api/v1/admin/coupon-batches",
            &json!({"inventoryId": inventory["inventoryId"], "batchName": "1회차", "issueCount": s.count,
                    "issueType": s.issue_type, "dailyLimit": s.daily, "batchStatus": s.batch_status,
                    "validFromAt": s.valid.0, "validUntilAt": s.valid.1, "shards": s.shards}),
            201,
        )
        .await;
    (
        inventory["inventoryId"].as_i64().unwrap(),
        batch["batchId"].as_i64().unwrap(),
    )
}

/// Users `from ..= to`, each pressing twice at once on the batch; every (user, status, body).
pub(crate) async fn burst(
    app: &TestApp,
    batch: i64,
    users: std::ops::RangeInclusive<i64>,
) -> Vec<(i64, u16, Value)> {
    let url = app.url(&format!("/api/v1/coupons/{batch}/issue"));
    crate::burst::press_twice(app, users, |_, _| url.clone()).await
}

pub(crate) async fn issue(app: &TestApp, batch: i64, user: i64) -> reqwest::Response {
    app.post(
        &format!("/api/v1/coupons/{batch}/issue"),
        &app.user(user),
        &json!({ "userId": user }),
    )
    .await
}

async fn coupon_rows(app: &TestApp, batch: i64) -> i64 {
    store::coupon_issues::count_for_batch(&app.db, batch)
        .await
        .unwrap()
}

pub(crate) async fn wait_coupon_rows(app: &TestApp, batch: i64, n: i64) -> i64 {
    wait_coupon_rows_within(app, batch, n, Duration::from_secs(10)).await
}

/// [`wait_coupon_rows`] with its own limit.
pub(crate) async fn wait_coupon_rows_within(app: &TestApp, batch: i64, n: i64, limit: Duration) -> i64 {
    let started = std::time::Instant::now();
    loop {
        let rows = coupon_rows(app, batch).await;
        if rows >= n || started.elapsed() > limit {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_a_coupon_issues_exactly_the_quantity_each_with_its_own_code() {
    let app = TestApp::spawn().await;
    let (inventory, batch) = batch(&app, Setup::default()).await;
    let answers = burst(&app, batch, 1..=1_000).await;

    let mut per_user: HashMap<i64, Vec<&(i64, u16, Value)>> = HashMap::new();
    for a in &answers {
        per_user.entry(a.0).or_default().push(a);
    }
    let generator = CodeGenerator::new(&app.core.code_secret);
    let (mut codes, mut ids) = (HashSet::new(), HashSet::new());
    for (user, pair) in &per_user {
        let created: Vec<_> = pair.iter().filter(|a| a.1 == 201).collect();
        if let [won] = created.as_slice() {
            let body = &won.2;
            let other = pair.iter().find(|a| a.1 != 201).expect("two answers");
            assert_eq!(other.1, 409, "user {user}: {}", other.2);
            assert_eq!(other.2["code"], "COUPON_ALREADY_ISSUED");
            assert_eq!(other.2["couponIssueId"], body["couponIssueId"], "the held coupon");
            assert_eq!(body["userId"], *user);
            assert_eq!(body["couponId"], batch);
            assert_eq!(body["status"], "ISSUED");
            assert_eq!(
                body["discount"],
                json!({"type": "PERCENT", "value": 10, "maxDiscount": 5000})
            );
            assert_eq!(body["expiresAt"], "2099-06-01T00:00:00+09:00");
            let id = body["couponIssueId"].as_i64().unwrap();
            let seq = id - batch * 10_000_000;
            assert!((0..100).contains(&seq), "position {seq}");
            assert_eq!(
                body["code"],
                generator.code(batch, seq as u32).as_str(),
                "the batch's code at its position"
            );
            assert!(codes.insert(body["code"].as_str().unwrap().to_owned()));
            assert!(ids.insert(id));
        } else {
            assert!(created.is_empty(), "user {user} got two coupons");
            for a in pair {
                assert_eq!(
                    (a.1, a.2["code"].as_str()),
                    (409, Some("COUPON_SOLD_OUT")),
                    "user {user}"
                );
            }
        }
    }
    assert_eq!(ids.len(), 100, "exactly the quantity");
    assert_eq!(codes.len(), 100, "each with its own code");

    assert_eq!(wait_coupon_rows(&app, batch, 100).await, 100);
    let (rows, users, seqs): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT user_id), count(DISTINCT seq) FROM coupon_issues WHERE batch_id = $1",
    )
    .bind(batch)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((rows, users, seqs), (100, 100, 100), "each persisted once");
    let persisted: HashSet<i64> =
        sqlx::query_scalar("SELECT coupon_issue_id FROM coupon_issues WHERE batch_id = $1")
            .bind(batch)
            .fetch_all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(persisted, ids, "the rows are the answered coupons");

    let b = app
        .admin_get(&format!("/api/v1/admin/coupon-batches/{batch}"))
        .await;
    assert_eq!(b["issuedCount"], 100);
    let i = app
        .admin_get(&format!("/api/v1/admin/coupon-inventories/{inventory}"))
        .await;
    assert_eq!(i["issuedCount"], 100);
}

#[tokio::test]
async fn a_ticket_and_a_coupon_of_one_user_do_not_interfere() {
    let app = TestApp::spawn().await;
    app.create_event("golden-one", 1, None).await;
    let (_, batch) = batch(
        &app,
        Setup {
            count: 1,
            ..Setup::default()
        },
    )
    .await;

    assert_eq!(app.issue("golden-one", 7).await.status(), 201);
    assert_eq!(issue(&app, batch, 7).await.status(), 201);
    assert_eq!(
        app.issue("golden-one", 7).await.status(),
        200,
        "the ticket is still theirs"
    );
    let again = issue(&app, batch, 7).await;
    assert_error(
        again,
        409,
        "COUPON_ALREADY_ISSUED",
        &format!("/api/v1/coupons/{batch}/issue"),
    )
    .await;

    let path = "/events/golden-one/tickets";
    assert_error(app.issue("golden-one", 8).await, 409, "SOLD_OUT", path).await;
    let path = format!("/api/v1/coupons/{batch}/issue");
    assert_error(issue(&app, batch, 8).await, 409, "COUPON_SOLD_OUT", &path).await;

    assert_eq!(app.wait_rows("golden-one", 1, Duration::from_secs(10)).await, 1);
    assert_eq!(wait_coupon_rows(&app, batch, 1).await, 1);
    let tickets = app.get("/users/7/tickets", Some(&app.user(7))).await;
    assert_eq!(
        tickets.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
    let coupons: Value = app
        .get("/api/v1/users/7/coupons", Some(&app.user(7)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(coupons["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_refusal_has_its_code() {
    let app = TestApp::spawn().await;
    let path = |b: i64| format!("/api/v1/coupons/{b}/issue");

    assert_error(
        issue(&app, 999_999, 1).await,
        404,
        "COUPON_NOT_FOUND",
        &path(999_999),
    )
    .await;
    let (_, mapped) = batch(
        &app,
        Setup {
            issue_type: "MAPPED",
            ..Setup::default()
        },
    )
    .await;
    assert_error(
        issue(&app, mapped, 1).await,
        404,
        "COUPON_NOT_FOUND",
        &path(mapped),
    )
    .await;

    let (_, pending) = batch(
        &app,
        Setup {
            batch_status: "PENDING",
            ..Setup::default()
        },
    )
    .await;
    assert_error(
        issue(&app, pending, 1).await,
        400,
        "COUPON_NOT_IN_PERIOD",
        &path(pending),
    )
    .await;
    let (_, future) = batch(
        &app,
        Setup {
            valid: ("2098-01-01T00:00:00", "2099-01-01T00:00:00"),
            ..Setup::default()
        },
    )
    .await;
    assert_error(
        issue(&app, future, 1).await,
        400,
        "COUPON_NOT_IN_PERIOD",
        &path(future),
    )
    .await;
    let (_, past) = batch(
        &app,
        Setup {
            valid: ("2020-01-01T00:00:00", "2021-01-01T00:00:00"),
            ..Setup::default()
        },
    )
    .await;
    assert_error(issue(&app, past, 1).await, 400, "COUPON_EXPIRED", &path(past)).await;
    let (_, ended) = batch(
        &app,
        Setup {
            inventory_status: "END",
            ..Setup::default()
        },
    )
    .await;
    assert_error(issue(&app, ended, 1).await, 400, "COUPON_EXPIRED", &path(ended)).await;

    let (_, open) = batch(
        &app,
        Setup {
            count: 2,
            ..Setup::default()
        },
    )
    .await;
    let first: Value = issue(&app, open, 1).await.json().await.unwrap();
    let dup = assert_error(
        issue(&app, open, 1).await,
        409,
        "COUPON_ALREADY_ISSUED",
        &path(open),
    )
    .await;
    assert_eq!(dup["couponIssueId"], first["couponIssueId"]);
    assert_eq!(issue(&app, open, 2).await.status(), 201);
    assert_error(issue(&app, open, 3).await, 409, "COUPON_SOLD_OUT", &path(open)).await;
    let dup = assert_error(
        issue(&app, open, 1).await,
        409,
        "COUPON_ALREADY_ISSUED",
        &path(open),
    )
    .await;
    assert_eq!(
        dup["couponIssueId"], first["couponIssueId"],
        "a holder hears of theirs after the sell-out"
    );

    // Who may ask, and with what.
    let other = app.post(&path(open), &app.user(5), &json!({"userId": 6})).await;
    assert_error(other, 403, "FORBIDDEN", &path(open)).await;
    let anon = app
        .http
        .post(app.url(&path(open)))
        .json(&json!({"userId": 6}))
        .send()
        .await
        .unwrap();
    assert_error(anon, 401, "UNAUTHORIZED", &path(open)).await;
    let bad = app
        .post(&path(open), &app.user(6), &json!({"userId": "six"}))
        .await;
    assert_error(bad, 400, "INVALID_REQUEST", &path(open)).await;
    let bad = app
        .post("/api/v1/coupons/abc/issue", &app.user(6), &json!({"userId": 6}))
        .await;
    assert_error(bad, 400, "INVALID_REQUEST", "/api/v1/coupons/abc/issue").await;
}

#[tokio::test]
async fn the_daily_limit_holds_per_kst_day() {
    let app = TestApp::spawn().await;
    let (_, daily) = batch(
        &app,
        Setup {
            count: 3,
            daily: Some(1),
            ..Setup::default()
        },
    )
    .await;
    let path = format!("/api/v1/coupons/{daily}/issue");
    assert_eq!(issue(&app, daily, 1).await.status(), 201);
    assert_error(issue(&app, daily, 2).await, 409, "DAILY_LIMIT_REACHED", &path).await;

    // The next KST day opens one more.
    let engine = app.engine();
    let tomorrow = chrono::Utc::now().timestamp_millis() + 86_400_000;
    let next = engine
        .issue_coupon_at(daily, UserId::new(2).unwrap(), Some(tomorrow))
        .await
        .expect("a new day");
    assert_eq!(next.coupon_issue_id, daily * 10_000_000 + 1);
    let again = engine
        .issue_coupon_at(daily, UserId::new(3).unwrap(), Some(tomorrow))
        .await;
    assert!(
        matches!(
            again,
            Err(issuance_core::Error::Denied(
                _,
                issuance_core::error::Denial::DailyLimit
            ))
        ),
        "{again:?}"
    );
}

#[tokio::test]
async fn an_admin_change_applies_at_once() {
    let app = TestApp::spawn().await;
    let (inventory, batch) = batch(&app, Setup::default()).await;
    assert_eq!(issue(&app, batch, 1).await.status(), 201);
    let i = app
        .admin_get(&format!("/api/v1/admin/coupon-inventories/{inventory}"))
        .await;
    let ended = app
        .put(
            &format!("/api/v1/admin/coupon-inventories/{inventory}"),
            &app.admin(),
            &json!({"eventId": i["eventId"], "inventoryName": "A", "totalCount": 100,
                    "usableFromAt": "2026-01-01T00:00:00", "usableUntilAt": "2099-06-01T00:00:00",
                    "inventoryStatus": "END"}),
        )
        .await;
    assert_eq!(ended.status(), 200, "{}", ended.text().await.unwrap());
    let path = format!("/api/v1/coupons/{batch}/issue");
    assert_error(issue(&app, batch, 2).await, 400, "COUPON_EXPIRED", &path).await;
    assert_error(issue(&app, batch, 1).await, 409, "COUPON_ALREADY_ISSUED", &path).await;
}

#[tokio::test]
async fn lost_redis_state_is_rebuilt_without_reusing_a_position() {
    let app = TestApp::spawn().await;
    let (_, batch) = batch(
        &app,
        Setup {
            count: 5,
            ..Setup::default()
        },
    )
    .await;
    let mut first = Vec::new();
    for user in 1..=3 {
        let body: Value = issue(&app, batch, user).await.json().await.unwrap();
        first.push(body["couponIssueId"].as_i64().unwrap());
    }
    assert_eq!(wait_coupon_rows(&app, batch, 3).await, 3);
    let keys = app.keys.coupon_batch(batch);
    let _: i64 = app
        .redis_cmd("DEL", vec![keys.meta.clone(), keys.holders.clone()])
        .await;

    let dup = assert_error(
        issue(&app, batch, 2).await,
        409,
        "COUPON_ALREADY_ISSUED",
        &format!("/api/v1/coupons/{batch}/issue"),
    )
    .await;
    assert_eq!(dup["couponIssueId"], first[1], "the holder is known again");
    let next: Value = issue(&app, batch, 4).await.json().await.unwrap();
    assert_eq!(
        next["couponIssueId"],
        batch * 10_000_000 + 3,
        "the next free position"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issued_coupon_is_the_generated_code_and_marks_it_issued() {
    let app = TestApp::spawn().await;
    app.start_jobs(fast_jobs());
    let (_, batch) = batch(
        &app,
        Setup {
            count: 50,
            ..Setup::default()
        },
    )
    .await;
    // Claimed before the codes exist: the completed job marks the code afterwards.
    let early: Value = issue(&app, batch, 1).await.json().await.unwrap();
    assert_eq!(wait_coupon_rows(&app, batch, 1).await, 1);
    let job = app
        .admin_post(
            &format!("/api/v1/admin/coupon-batches/{batch}/generate-coupons"),
            &json!({}),
            202,
        )
        .await;
    let done = app
        .wait_job(job["jobId"].as_str().unwrap(), Duration::from_secs(30), |j| {
            j["jobStatus"] == "COMPLETED"
        })
        .await;
    assert_eq!(done["jobStatus"], "COMPLETED", "{done}");
    // Claimed after: the drain marks it.
    let late: Value = issue(&app, batch, 2).await.json().await.unwrap();
    assert_eq!(wait_coupon_rows(&app, batch, 2).await, 2);

    let rows: Vec<(i32, String, String)> = sqlx::query_as(
        "SELECT seq, code, status::text FROM coupon_codes WHERE batch_id = $1 AND status <> 'AVAILABLE' ORDER BY seq",
    )
    .bind(batch)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            (0, early["code"].as_str().unwrap().to_owned(), "ISSUED".to_owned()),
            (1, late["code"].as_str().unwrap().to_owned(), "ISSUED".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_users_coupons_say_whether_they_are_usable_and_why_not() {
    let app = TestApp::spawn().await;
    let (_, open) = batch(&app, Setup::default()).await;
    let (expiring_inventory, expiring) = batch(&app, Setup::default()).await;
    let (_, used) = batch(&app, Setup::default()).await;
    let (_, later) = batch(
        &app,
        Setup {
            usable: ("2098-01-01T00:00:00", "2099-06-01T00:00:00"),
            ..Setup::default()
        },
    )
    .await;
    for b in [open, expiring, used, later] {
        assert_eq!(issue(&app, b, 9).await.status(), 201);
    }
    assert_eq!(issue(&app, open, 10).await.status(), 201);
    assert_eq!(wait_coupon_rows(&app, open, 2).await, 2);
    for b in [expiring, used, later] {
        assert_eq!(wait_coupon_rows(&app, b, 1).await, 1);
    }
    // Time passes for one inventory; another coupon is spent.
    sqlx::query(
        "UPDATE coupon_inventories SET usable_until_at = now() - interval '1 day' WHERE inventory_id = $1",
    )
    .bind(expiring_inventory)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("UPDATE coupon_issues SET status = 'USED', used_at = now() WHERE batch_id = $1")
        .bind(used)
        .execute(&app.db)
        .await
        .unwrap();

    let list = |query: &'static str| {
        let app = &app;
        async move {
            let r = app
                .get(&format!("/api/v1/users/9/coupons{query}"), Some(&app.user(9)))
                .await;
            assert_eq!(r.status(), 200);
            let body: Value = r.json().await.unwrap();
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["couponId"].as_i64().unwrap(), c.clone()))
                .collect::<HashMap<i64, Value>>()
        }
    };
    let all = list("").await;
    assert_eq!(all.len(), 4, "only user 9's coupons");
    let state = |c: &Value| (c["status"].clone(), c["usable"].clone(), c["reason"].clone());
    assert_eq!(state(&all[&open]), (json!("ISSUED"), json!(true), Value::Null));
    assert_eq!(
        state(&all[&expiring]),
        (json!("EXPIRED"), json!(false), json!("EXPIRED"))
    );
    assert_eq!(state(&all[&used]), (json!("USED"), json!(false), json!("USED")));
    assert_eq!(
        state(&all[&later]),
        (json!("ISSUED"), json!(false), json!("NOT_YET_USABLE"))
    );
    assert_eq!(all[&open]["discount"]["type"], "PERCENT");
    assert_eq!(all[&open]["code"].as_str().unwrap().len(), 17);

    let keys = |m: HashMap<i64, Value>| m.into_keys().collect::<HashSet<i64>>();
    assert_eq!(keys(list("?status=ISSUED").await), HashSet::from([open, later]));
    assert_eq!(keys(list("?status=USED").await), HashSet::from([used]));
    assert_eq!(keys(list("?status=EXPIRED").await), HashSet::from([expiring]));

    // The points seed's spelling, an admin, and someone else.
    let alias: Value = app
        .get("/api/v1/coupons?userId=9&status=USED", Some(&app.user(9)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(alias["items"].as_array().unwrap().len(), 1);
    let by_admin = app.get("/api/v1/users/9/coupons", Some(&app.admin())).await;
    assert_eq!(by_admin.status(), 200);
    let other = app.get("/api/v1/users/9/coupons", Some(&app.user(10))).await;
    assert_error(other, 403, "FORBIDDEN", "/api/v1/users/9/coupons").await;
    let bad = app
        .get("/api/v1/users/9/coupons?status=LOST", Some(&app.user(9)))
        .await;
    assert_error(bad, 400, "INVALID_REQUEST", "/api/v1/users/9/coupons").await;
}
