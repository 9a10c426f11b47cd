//! The ORDER_PAID outbox relay against a real (in-process) receiver: payments never wait for
//! the data platform, every event arrives once it answers, per order in order, and dead
//! letters come back on an admin's retry.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use workers::{
    receiver::Receiver,
    relay::{Relay, RelayConfig},
};

use crate::{
    helpers::{TestApp, assert_error},
    orders::{charge, order, pay, product, user},
};

/// A relay posting to `url` that retries quickly; `max_attempts` before DEAD.
pub(crate) fn relay(app: &TestApp, url: &str, max_attempts: i32) -> CancellationToken {
    let stop = CancellationToken::new();
    let cfg = RelayConfig {
        url: url.to_owned(),
        poll_every: Duration::from_millis(20),
        timeout: Duration::from_millis(500),
        backoff: shop::outbox::Backoff {
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
            max_attempts,
        },
        ..RelayConfig::default()
    };
    tokio::spawn(Relay::new(app.db.clone(), cfg).unwrap().run(stop.clone()));
    stop
}

/// Serves `receiver` on `listener` until the token is cancelled.
pub(crate) fn serve(listener: TcpListener, receiver: &Receiver) -> CancellationToken {
    let stop = CancellationToken::new();
    let app = receiver.router();
    let until = stop.clone().cancelled_owned();
    tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(until).await });
    stop
}

/// An order of `user` for one unit of `product`, paid → its id.
async fn paid_order(app: &TestApp, u: i64, p: i64) -> i64 {
    let r = order(app, u, json!([{"productId": p, "qty": 1}]), None).await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["orderId"].as_i64().unwrap();
    let r = pay(app, u, id).await;
    assert_eq!(r.status(), 200, "payment must not depend on the data platform");
    id
}

/// `(outbox_id, order_id, status, attempts)` of every record, by id.
async fn records(app: &TestApp) -> Vec<(i64, i64, String, i32)> {
    sqlx::query_as("SELECT outbox_id, order_id, status::text, attempts FROM outbox ORDER BY outbox_id")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

pub(crate) async fn wait_until<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn all_with_status(app: &TestApp, status: &str) -> bool {
    records(app).await.iter().all(|r| r.2 == status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_succeed_while_the_platform_is_down_and_every_event_arrives_later() {
    let app = TestApp::spawn().await;
    // A port nobody listens on yet: the platform is down (connection refused).
    let port = crate::helpers::free_port();
    let url = format!("http://127.0.0.1:{port}/events");
    let _a = relay(&app, &url, 1_000);
    let _b = relay(&app, &url, 1_000);

    let p = product(&app, 1_000, 100).await;
    let mut orders = Vec::new();
    for _ in 0..20 {
        let u = user(&app).await;
        charge(&app, u, 5_000).await;
        orders.push(paid_order(&app, u, p).await);
    }
    let rows = records(&app).await;
    assert_eq!(rows.len(), 20, "one outbox record per paid order");

    // The relays keep trying, and record why.
    wait_until(Duration::from_secs(10), "retries", || async {
        records(&app).await.iter().all(|r| r.2 == "PENDING" && r.3 >= 2)
    })
    .await;
    let errors: Vec<Option<String>> = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(
        errors
            .iter()
            .all(|e| e.as_deref().is_some_and(|e| e.starts_with("connection failed")))
    );

    // The platform comes back, flaky: a third of its answers are 503.
    let receiver = Receiver::failing(0.3);
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let _platform = serve(listener, &receiver);
    wait_until(Duration::from_secs(20), "delivery", || {
        all_with_status(&app, "DELIVERED")
    })
    .await;

    let events = receiver.events();
    let mut arrived: Vec<i64> = events.iter().map(|e| e["orderId"].as_i64().unwrap()).collect();
    arrived.sort_unstable();
    arrived.dedup();
    let mut expected = orders.clone();
    expected.sort_unstable();
    assert_eq!(arrived, expected, "every ORDER_PAID arrived");
    for e in &events {
        assert_eq!(e["eventType"], "ORDER_PAID");
        assert!(e["eventId"].as_i64().is_some());
        assert_eq!(e["amount"]["total"], 1_000);
        assert_eq!(e["items"][0]["productId"], p);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_retried_by_an_admin() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::failing(1.0);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let _platform = serve(listener, &receiver);
    let _relay = relay(&app, &url, 3);

    let p = product(&app, 500, 10).await;
    let u = user(&app).await;
    charge(&app, u, 10_000).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        orders.push(paid_order(&app, u, p).await);
    }
    wait_until(Duration::from_secs(10), "dead letters", || {
        all_with_status(&app, "DEAD")
    })
    .await;

    let dead = app.admin_get("/api/v1/admin/outbox?status=DEAD").await;
    assert_eq!(dead["totalElements"], 3);
    for r in dead["data"].as_array().unwrap() {
        assert_eq!(r["status"], "DEAD");
        assert_eq!(r["attempts"], 3);
        assert_eq!(r["lastError"], "HTTP 503 Service Unavailable");
        assert_eq!(r["eventType"], "ORDER_PAID");
        assert!(r["nextAttemptAt"].is_null());
    }
    assert_eq!(
        app.admin_get("/api/v1/admin/outbox?status=PENDING").await["totalElements"],
        0
    );
    assert!(receiver.events().is_empty());

    // The platform is fixed; one record is retried alone, then the rest at once.
    receiver.set_fail_rate(0.0);
    let first = dead["data"][2]["outboxId"].as_i64().unwrap();
    let r = app
        .post_empty(&format!("/api/v1/admin/outbox/{first}/retry"), &app.admin())
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["status"].as_str(), body["attempts"].as_i64()),
        (Some("PENDING"), Some(0))
    );
    wait_until(Duration::from_secs(10), "the retried record", || async {
        records(&app)
            .await
            .iter()
            .any(|r| r.0 == first && r.2 == "DELIVERED")
    })
    .await;
    let path = format!("/api/v1/admin/outbox/{first}/retry");
    let r = app.post_empty(&path, &app.admin()).await;
    assert_error(r, 409, "OUTBOX_NOT_DEAD", &path).await;
    let r = app
        .post_empty("/api/v1/admin/outbox/999999/retry", &app.admin())
        .await;
    assert_error(
        r,
        404,
        "OUTBOX_EVENT_NOT_FOUND",
        "/api/v1/admin/outbox/999999/retry",
    )
    .await;
    let r = app.post_empty(&path, &app.user(u)).await;
    assert_eq!(r.status(), 403);

    let r = app
        .post_empty("/api/v1/admin/outbox/retry-dead", &app.admin())
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["retried"], 2);
    wait_until(Duration::from_secs(10), "every record", || {
        all_with_status(&app, "DELIVERED")
    })
    .await;
    let mut arrived: Vec<i64> = receiver
        .events()
        .iter()
        .map(|e| e["orderId"].as_i64().unwrap())
        .collect();
    arrived.sort_unstable();
    assert_eq!(arrived, orders, "each dead letter delivered once after its retry");
    let shown = app.admin_get(&format!("/api/v1/admin/outbox/{first}")).await;
    assert_eq!(shown["status"], "DELIVERED");
    assert!(shown["deliveredAt"].as_str().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_event_of_an_order_waits_for_the_earlier_one() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::failing(1.0);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let _platform = serve(listener, &receiver);

    let p = product(&app, 500, 10).await;
    let u = user(&app).await;
    charge(&app, u, 10_000).await;
    let (first_order, other_order) = (paid_order(&app, u, p).await, paid_order(&app, u, p).await);
    // A follow-up event of the first order, written after its ORDER_PAID.
    sqlx::query(
        "INSERT INTO outbox (event_type, order_id, payload)
         VALUES ('ORDER_NOTE', $1, jsonb_build_object('eventType', 'ORDER_NOTE', 'orderId', $1::int8))",
    )
    .bind(first_order)
    .execute(&app.db)
    .await
    .unwrap();
    let _relay = relay(&app, &url, 3);

    // The first order's ORDER_PAID dies; its follow-up is never tried while it is undelivered,
    // whereas the other order's event is not held up by it.
    wait_until(Duration::from_secs(10), "dead letters", || async {
        records(&app).await.iter().filter(|r| r.2 == "DEAD").count() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rows = records(&app).await;
    let note = rows
        .iter()
        .find(|r| r.1 == first_order && r.2 == "PENDING")
        .unwrap();
    assert_eq!(note.3, 0, "the follow-up waits for the dead ORDER_PAID");
    assert!(rows.iter().any(|r| r.1 == other_order && r.2 == "DEAD"));

    receiver.set_fail_rate(0.0);
    let r = app
        .post_empty("/api/v1/admin/outbox/retry-dead", &app.admin())
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["retried"], 2);
    wait_until(Duration::from_secs(10), "delivery", || {
        all_with_status(&app, "DELIVERED")
    })
    .await;
    let of_first: Vec<String> = receiver
        .events()
        .iter()
        .filter(|e| e["orderId"] == first_order)
        .map(|e| e["eventType"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(of_first, ["ORDER_PAID", "ORDER_NOTE"]);
}

/// A relay with its own timeout, batch and concurrency (one request's lease is twice the
/// timeout).
fn slow_relay(
    app: &TestApp,
    url: &str,
    timeout: Duration,
    batch: i64,
    concurrency: usize,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let cfg = RelayConfig {
        url: url.to_owned(),
        poll_every: Duration::from_millis(20),
        timeout,
        batch_size: batch,
        concurrency,
        ..RelayConfig::default()
    };
    tokio::spawn(Relay::new(app.db.clone(), cfg).unwrap().run(stop.clone()));
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_pass_keeps_its_leases_so_two_relays_never_repeat_an_attempt() {
    let app = TestApp::spawn().await;
    let p = product(&app, 1_000, 100).await;
    for _ in 0..16 {
        let u = user(&app).await;
        charge(&app, u, 5_000).await;
        paid_order(&app, u, p).await;
    }
    // Each answer takes 300 ms; a lease is 2 × 500 ms; one pass of 16 records two at a time
    // takes 2.4 s, more than twice a lease.
    let receiver = Receiver::default();
    receiver.set_delay(Duration::from_millis(300));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let _platform = serve(listener, &receiver);
    let _a = slow_relay(&app, &url, Duration::from_millis(500), 16, 2);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let _b = slow_relay(&app, &url, Duration::from_millis(500), 16, 2);
    wait_until(Duration::from_secs(20), "delivery", || {
        all_with_status(&app, "DELIVERED")
    })
    .await;
    let rows = records(&app).await;
    assert!(rows.iter().all(|r| r.3 == 1), "one attempt each: {rows:?}");
    let ids: Vec<i64> = receiver
        .events()
        .iter()
        .map(|e| e["eventId"].as_i64().unwrap())
        .collect();
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (16, 16), "each event sent once");
}

#[tokio::test]
async fn a_redirect_is_a_failed_delivery_and_is_not_followed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("http://{}/events", listener.local_addr().unwrap());
    let _platform = serve(listener, &receiver);
    // A platform that answers every POST with a redirect to the real receiver.
    let moved = axum::Router::new().route(
        "/events",
        axum::routing::post(move || {
            let target = target.clone();
            async move { (axum::http::StatusCode::FOUND, [("location", target)]) }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, moved).await });

    let p = product(&app, 1_000, 10).await;
    let u = user(&app).await;
    charge(&app, u, 5_000).await;
    paid_order(&app, u, p).await;
    let _relay = relay(&app, &url, 2);
    wait_until(Duration::from_secs(10), "dead letter", || {
        all_with_status(&app, "DEAD")
    })
    .await;
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM outbox")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(error.as_deref(), Some("HTTP 302 Found"));
    assert!(receiver.events().is_empty(), "the redirect was not followed");
}
