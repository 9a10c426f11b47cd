//! Orders, payments, checkout and expiry: stock, coupons and points move exactly once.

use std::time::Duration;

use futures::future::join_all;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    coupons::{Setup, batch, issue, wait_coupon_rows},
    helpers::{Options, TestApp, assert_error},
};

pub(crate) async fn user(app: &TestApp) -> i64 {
    let u = app
        .admin_post("/api/v1/admin/users", &json!({"name": "buyer"}), 201)
        .await;
    u["userId"].as_i64().unwrap()
}

pub(crate) async fn product(app: &TestApp, price: i64, stock: i64) -> i64 {
    let p = app
        .admin_post(
            "/api/v1/admin/products",
            &json!({"name": "milk", "price": price, "stock": stock}),
            201,
        )
        .await;
    p["productId"].as_i64().unwrap()
}

pub(crate) async fn stock(app: &TestApp, product: i64) -> i64 {
    sqlx::query_scalar::<_, i32>("SELECT stock FROM products WHERE product_id = $1")
        .bind(product)
        .fetch_one(&app.db)
        .await
        .map(i64::from)
        .unwrap()
}

pub(crate) async fn charge(app: &TestApp, user: i64, amount: i64) {
    let r = app
        .post(
            &format!("/api/v1/points/{user}"),
            &app.user(user),
            &json!({"amount": amount}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

async fn balance(app: &TestApp, user: i64) -> i64 {
    let w: Value = app
        .get(&format!("/api/v1/points/{user}"), Some(&app.user(user)))
        .await
        .json()
        .await
        .unwrap();
    w["balance"].as_i64().unwrap()
}

pub(crate) async fn order(app: &TestApp, user: i64, items: Value, coupon: Option<i64>) -> reqwest::Response {
    app.post(
        "/api/v1/orders",
        &app.user(user),
        &json!({"userId": user, "items": items, "couponIssueId": coupon}),
    )
    .await
}

pub(crate) async fn pay(app: &TestApp, user: i64, order: i64) -> reqwest::Response {
    app.post(
        "/api/v1/payments",
        &app.user(user),
        &json!({"userId": user, "orderId": order}),
    )
    .await
}

async fn coupon_status(app: &TestApp, coupon: i64) -> String {
    sqlx::query_scalar("SELECT status::text FROM coupon_issues WHERE coupon_issue_id = $1")
        .bind(coupon)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// A persisted coupon of a fresh SELF batch (10 %, at most 5,000) for `user`.
async fn coupon(app: &TestApp, user: i64) -> i64 {
    let (_, b) = batch(app, Setup::default()).await;
    let body: Value = issue(app, b, user).await.json().await.unwrap();
    assert_eq!(wait_coupon_rows(app, b, 1).await, 1);
    body["couponIssueId"].as_i64().unwrap()
}

pub(crate) fn expiry(app: &TestApp) -> CancellationToken {
    let stop = CancellationToken::new();
    tokio::spawn(workers::expiry::run(
        app.db.clone(),
        Duration::from_millis(50),
        stop.clone(),
    ));
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_orders_for_ten_units_sell_exactly_ten() {
    let app = TestApp::spawn().await;
    let p = product(&app, 1_000, 10).await;
    let mut buyers = Vec::new();
    for _ in 0..50 {
        buyers.push(user(&app).await);
    }
    let answers = join_all(
        buyers
            .iter()
            .map(|u| order(&app, *u, json!([{"productId": p, "qty": 1}]), None)),
    )
    .await;
    let created = answers.iter().filter(|r| r.status() == 201).count();
    let out = answers.iter().filter(|r| r.status() == 409).count();
    assert_eq!((created, out), (10, 40));
    assert_eq!(stock(&app, p).await, 0);
}

#[tokio::test]
async fn an_order_reserves_all_or_nothing_and_applies_its_coupon() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    let (a, b) = (product(&app, 30_000, 5).await, product(&app, 20_000, 1).await);
    let c = coupon(&app, u).await;

    // One line short: nothing reserved, the coupon untouched.
    let r = order(
        &app,
        u,
        json!([{"productId": a, "qty": 2}, {"productId": b, "qty": 2}]),
        Some(c),
    )
    .await;
    assert_error(r, 409, "OUT_OF_STOCK", "/api/v1/orders").await;
    assert_eq!((stock(&app, a).await, stock(&app, b).await), (5, 1));
    assert_eq!(coupon_status(&app, c).await, "ISSUED");

    let r = order(
        &app,
        u,
        json!([{"productId": a, "qty": 2}, {"productId": b, "qty": 1}]),
        Some(c),
    )
    .await;
    assert_eq!(r.status(), 201);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["status"], "NOT_PAID");
    // 10 % of 80,000 is 8,000, capped at 5,000.
    assert_eq!(
        o["amount"],
        json!({"subtotal": 80_000, "discount": 5_000, "total": 75_000})
    );
    assert_eq!(
        o["items"][0],
        json!({"productId": a, "qty": 2, "unitPrice": 30_000, "subtotal": 60_000})
    );
    let created = chrono::DateTime::parse_from_rfc3339(o["createdAt"].as_str().unwrap()).unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(o["expiresAt"].as_str().unwrap()).unwrap();
    assert_eq!((expires - created).num_seconds(), 300, "five minutes to pay");
    assert_eq!((stock(&app, a).await, stock(&app, b).await), (3, 0));
    assert_eq!(coupon_status(&app, c).await, "USED");

    // The coupon again, someone else's coupon, unknown products, bad lines.
    let r = order(&app, u, json!([{"productId": a, "qty": 1}]), Some(c)).await;
    assert_error(r, 409, "COUPON_ALREADY_USED", "/api/v1/orders").await;
    let other = user(&app).await;
    let theirs = coupon(&app, other).await;
    let r = order(&app, u, json!([{"productId": a, "qty": 1}]), Some(theirs)).await;
    assert_error(r, 400, "COUPON_INVALID", "/api/v1/orders").await;
    let r = order(&app, u, json!([{"productId": 987_654, "qty": 1}]), None).await;
    assert_error(r, 404, "PRODUCT_NOT_FOUND", "/api/v1/orders").await;
    for bad in [
        json!([]),
        json!([{"productId": a, "qty": 0}]),
        json!([{"productId": a}]),
    ] {
        assert_error(
            order(&app, u, bad, None).await,
            400,
            "INVALID_REQUEST",
            "/api/v1/orders",
        )
        .await;
    }
    assert_eq!(stock(&app, a).await, 3, "refused orders reserve nothing");

    let shown: Value = app
        .get(&format!("/api/v1/orders/{}", o["orderId"]), Some(&app.user(u)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["orderId"], o["orderId"]);
    let r = app
        .get(
            &format!("/api/v1/orders/{}", o["orderId"]),
            Some(&app.user(other)),
        )
        .await;
    assert_eq!(r.status(), 404, "another user's order does not exist for them");
    let list: Value = app
        .get(&format!("/api/v1/users/{u}/orders"), Some(&app.user(u)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_takes_points_once_and_writes_its_outbox_record() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    let p = product(&app, 10_000, 5).await;
    let o: Value = order(&app, u, json!([{"productId": p, "qty": 2}]), None)
        .await
        .json()
        .await
        .unwrap();
    let id = o["orderId"].as_i64().unwrap();

    charge(&app, u, 15_000).await;
    assert_error(
        pay(&app, u, id).await,
        409,
        "WALLET_INSUFFICIENT_BALANCE",
        "/api/v1/payments",
    )
    .await;
    assert_eq!(
        balance(&app, u).await,
        15_000,
        "a refused payment changes nothing"
    );

    charge(&app, u, 10_000).await;
    let answers = join_all((0..5).map(|_| pay(&app, u, id))).await;
    let ok: Vec<_> = answers.into_iter().filter(|r| r.status() == 200).collect();
    assert_eq!(ok.len(), 1, "two payments race: exactly one wins");
    let paid: Value = ok.into_iter().next().unwrap().json().await.unwrap();
    assert_eq!(paid["status"], "PAID");
    assert_eq!(paid["wallet"]["balanceAfter"], 5_000);
    assert_eq!(balance(&app, u).await, 5_000);
    assert_error(
        pay(&app, u, id).await,
        409,
        "ORDER_ALREADY_PAID",
        "/api/v1/payments",
    )
    .await;

    let (uses, sum): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE kind = 'USE'), sum(amount)::int8 FROM point_history WHERE user_id = $1",
    )
    .bind(u)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((uses, sum), (1, 5_000));
    let outbox: Vec<(String, Value)> =
        sqlx::query_as("SELECT event_type, payload FROM outbox WHERE order_id = $1")
            .bind(id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].0, "ORDER_PAID");
    assert_eq!(outbox[0].1["amount"]["total"], 20_000);
    let other = user(&app).await;
    assert_error(
        pay(&app, other, id).await,
        404,
        "ORDER_NOT_FOUND",
        "/api/v1/payments",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_order_expires_and_gives_stock_and_coupon_back_once() {
    let app = TestApp::spawn_with(Options {
        order_ttl: Duration::from_millis(800),
        ..Options::default()
    })
    .await;
    let _a = expiry(&app);
    let _b = expiry(&app);
    let u = user(&app).await;
    let p = product(&app, 1_000, 3).await;
    let c = coupon(&app, u).await;
    let o: Value = order(&app, u, json!([{"productId": p, "qty": 2}]), Some(c))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stock(&app, p).await, 1);
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    let shown: Value = app
        .get(&format!("/api/v1/orders/{}", o["orderId"]), Some(&app.user(u)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(shown["status"], "FAILED");
    assert_eq!(
        stock(&app, p).await,
        3,
        "stock back once, with two expiry loops running"
    );
    assert_eq!(
        coupon_status(&app, c).await,
        "ISSUED",
        "the coupon is usable again"
    );
    charge(&app, u, 10_000).await;
    let id = o["orderId"].as_i64().unwrap();
    assert_error(pay(&app, u, id).await, 409, "ORDER_EXPIRED", "/api/v1/payments").await;
    assert_eq!(balance(&app, u).await, 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_racing_the_deadline_end_paid_or_failed_never_both() {
    let app = TestApp::spawn_with(Options {
        order_ttl: Duration::from_millis(600),
        ..Options::default()
    })
    .await;
    let _a = expiry(&app);
    let _b = expiry(&app);
    let p = product(&app, 100, 1_000).await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        let u = user(&app).await;
        charge(&app, u, 10_000).await;
        let c = coupon(&app, u).await;
        let o: Value = order(&app, u, json!([{"productId": p, "qty": 3}]), Some(c))
            .await
            .json()
            .await
            .unwrap();
        orders.push((u, o["orderId"].as_i64().unwrap(), c));
    }
    // Pay each near its deadline, from several requests at once.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let payments = orders
        .iter()
        .flat_map(|(u, id, _)| [pay(&app, *u, *id), pay(&app, *u, *id)]);
    let answers = join_all(payments).await;
    for r in &answers {
        assert!(
            [200, 409].contains(&r.status().as_u16()),
            "paid, already paid or expired: {}",
            r.status()
        );
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut sold = 0;
    for (u, id, c) in &orders {
        let (status, paid, failed): (String, bool, bool) = sqlx::query_as(
            "SELECT status::text, paid_at IS NOT NULL, failed_at IS NOT NULL FROM orders WHERE order_id = $1",
        )
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert!(!(paid && failed), "order {id} both paid and failed");
        let points = balance(&app, *u).await;
        match status.as_str() {
            "PAID" => {
                sold += 3;
                assert_eq!(coupon_status(&app, *c).await, "USED");
                assert!(points < 10_000, "a paid order took points");
            }
            "FAILED" => {
                assert_eq!(coupon_status(&app, *c).await, "ISSUED");
                assert_eq!(points, 10_000, "a failed order took nothing");
            }
            other => panic!("order {id} still {other}"),
        }
    }
    assert_eq!(stock(&app, p).await, 1_000 - sold, "stock + sold = initial");
}

#[tokio::test]
async fn checkout_is_all_or_nothing() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    let p = product(&app, 3_200, 10).await;
    let c = coupon(&app, u).await;
    charge(&app, u, 5_000).await;
    let body = json!({"userId": u, "items": [{"productId": p, "qty": 2}], "couponIssueId": c});

    let r = app.post("/api/v1/orders/checkout", &app.user(u), &body).await;
    assert_error(r, 409, "WALLET_INSUFFICIENT_BALANCE", "/api/v1/orders/checkout").await;
    assert_eq!(stock(&app, p).await, 10);
    assert_eq!(coupon_status(&app, c).await, "ISSUED");
    assert_eq!(balance(&app, u).await, 5_000);
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE user_id = $1")
        .bind(u)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(orders, 0, "no order left behind");

    charge(&app, u, 10_000).await;
    let r = app.post("/api/v1/orders/checkout", &app.user(u), &body).await;
    assert_eq!(r.status(), 201);
    let paid: Value = r.json().await.unwrap();
    assert_eq!(paid["status"], "PAID");
    assert_eq!(paid["paidBy"], "WALLET");
    assert_eq!(
        paid["amount"],
        json!({"subtotal": 6_400, "discount": 640, "total": 5_760})
    );
    assert_eq!(paid["wallet"]["balanceAfter"], 15_000 - 5_760);
    assert_eq!(
        paid["items"][0],
        json!({"productId": p, "qty": 2, "unitPrice": 3_200, "subtotal": 6_400})
    );
    assert_eq!(stock(&app, p).await, 8);
    assert_eq!(coupon_status(&app, c).await, "USED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiring_batches_never_deadlock_with_new_orders() {
    // An expiry pass fails many orders at once; if it locked their products order by order
    // (b for one, then a for the next) while a new order locks a then b, Postgres would break
    // the cycle with a deadlock error and the new order would fail.
    let app = TestApp::spawn_with(Options {
        order_ttl: Duration::from_millis(100),
        ..Options::default()
    })
    .await;
    let _a = expiry(&app);
    let _b = expiry(&app);
    let (a, b) = (
        product(&app, 100, 100_000).await,
        product(&app, 100, 100_000).await,
    );
    let mut buyers = Vec::new();
    for _ in 0..12 {
        buyers.push(user(&app).await);
    }
    let lines = [
        json!([{"productId": b, "qty": 1}]),
        json!([{"productId": a, "qty": 1}]),
        json!([{"productId": a, "qty": 1}, {"productId": b, "qty": 1}]),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let tasks = buyers.iter().enumerate().map(|(i, u)| {
        let (app, lines) = (&app, &lines);
        async move {
            let mut statuses = Vec::new();
            let mut n = i;
            while tokio::time::Instant::now() < deadline {
                statuses.push(order(app, *u, lines[n % 3].clone(), None).await.status().as_u16());
                n += 1;
            }
            statuses
        }
    });
    let statuses: Vec<u16> = join_all(tasks).await.into_iter().flatten().collect();
    assert!(statuses.len() > 100, "only {} orders placed", statuses.len());
    let failed: Vec<u16> = statuses.iter().copied().filter(|s| *s != 201).collect();
    assert!(
        failed.is_empty(),
        "{} of {} orders failed: {failed:?}",
        failed.len(),
        statuses.len()
    );

    // Every order expires and every unit comes back.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!((stock(&app, a).await, stock(&app, b).await), (100_000, 100_000));
}

async fn coupon_rows(app: &TestApp, batch: i64) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM coupon_issues WHERE batch_id = $1")
        .bind(batch)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_coupon_ordered_before_the_drain_wrote_it_is_persisted_first() {
    let app = TestApp::spawn_without_drain().await;
    let (u, other) = (user(&app).await, user(&app).await);
    let p = product(&app, 10_000, 5).await;
    let (_, b) = batch(&app, Setup::default()).await;
    let issued: Value = issue(&app, b, u).await.json().await.unwrap();
    let c = issued["couponIssueId"].as_i64().unwrap();
    assert_eq!(coupon_rows(&app, b).await, 0, "not drained yet");

    // Not the holder: refused, nothing written.
    let r = order(&app, other, json!([{"productId": p, "qty": 1}]), Some(c)).await;
    assert_error(r, 400, "COUPON_INVALID", "/api/v1/orders").await;
    assert_eq!(coupon_rows(&app, b).await, 0);

    // The holder: the issue is written first, then used.
    let r = order(&app, u, json!([{"productId": p, "qty": 1}]), Some(c)).await;
    assert_eq!(r.status(), 201);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["amount"]["discount"], 1_000);
    assert_eq!(coupon_status(&app, c).await, "USED");

    // The drain's own write of the same issue changes nothing.
    app.start_drain(workers::config::DrainConfig {
        idle: Duration::from_millis(5),
        ..Default::default()
    });
    for _ in 0..200 {
        let lag = engine::stream::total_lag(&app.redis, &app.keys).await.unwrap();
        if lag.entries == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        engine::stream::total_lag(&app.redis, &app.keys)
            .await
            .unwrap()
            .entries,
        0
    );
    assert_eq!(coupon_rows(&app, b).await, 1);
    assert_eq!(coupon_status(&app, c).await, "USED");
}
