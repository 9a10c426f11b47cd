//! `POST /events/{eventKey}/tickets` and `GET /users/{userId}/tickets`, every row of SPEC §2.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Options, TestApp, assert_error};

#[tokio::test]
async fn second_request_returns_the_same_ticket_with_200() {
    let app = TestApp::spawn().await;
    app.create_event("e", 10, None).await;
    let first = app.issue("e", 7).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["userId"], 7);
    assert_eq!(first["eventKey"], "e");
    assert!(first["ticketId"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(first["issuedAt"].as_str().unwrap().ends_with('Z'));
    let second = app.issue("e", 7).await;
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(second.json::<Value>().await.unwrap(), first);
}

#[tokio::test]
async fn unknown_event_is_404() {
    let app = TestApp::spawn().await;
    let r = app.issue("ghost", 1).await;
    assert_error(r, 404, "EVENT_NOT_FOUND", "/events/ghost/tickets").await;
}

#[tokio::test]
async fn outside_the_period_is_400_event_not_in_period() {
    let app = TestApp::spawn().await;
    for (key, start, end) in [
        ("future", "2090-01-01T00:00:00Z", "2091-01-01T00:00:00Z"),
        ("past", "2020-01-01T00:00:00Z", "2020-02-01T00:00:00Z"),
    ] {
        let body = json!({"eventKey": key, "name": key, "totalQuantity": 5, "startAt": start, "endAt": end});
        assert_eq!(app.post("/events", &app.admin(), &body).await.status(), 201);
        let path = format!("/events/{key}/tickets");
        let body = assert_error(app.issue(key, 1).await, 400, "EVENT_NOT_IN_PERIOD", &path).await;
        assert_eq!(body["message"], "이벤트 기간이 아닙니다.");
    }
}

#[tokio::test]
async fn sold_out_is_409_but_a_holder_still_gets_their_ticket() {
    let app = TestApp::spawn().await;
    app.create_event("two", 2, None).await;
    assert_eq!(app.issue("two", 1).await.status(), 201);
    let holder: Value = app.issue("two", 2).await.json().await.unwrap();
    let body = assert_error(app.issue("two", 3).await, 409, "SOLD_OUT", "/events/two/tickets").await;
    assert_eq!(body["message"], "티켓이 모두 소진되었습니다.");
    // Once the process has loaded the holders, outsiders are answered from memory: the answers
    // must not change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        assert_error(app.issue("two", 4).await, 409, "SOLD_OUT", "/events/two/tickets").await;
        let again = app.issue("two", 2).await;
        assert_eq!(again.status(), 200);
        assert_eq!(again.json::<Value>().await.unwrap(), holder);
    }
    let status: Value = app.get("/events/two", None).await.json().await.unwrap();
    assert_eq!(status["remainingQuantity"], 0);
}

#[tokio::test]
async fn daily_limit_is_409_daily_limit_reached() {
    let app = TestApp::spawn().await;
    app.create_event("daily", 10, Some(2)).await;
    assert_eq!(app.issue("daily", 1).await.status(), 201);
    assert_eq!(app.issue("daily", 2).await.status(), 201);
    let body = assert_error(
        app.issue("daily", 3).await,
        409,
        "DAILY_LIMIT_REACHED",
        "/events/daily/tickets",
    )
    .await;
    assert_eq!(
        body["message"],
        "오늘의 발급 한도에 도달했습니다. 내일 다시 시도해주세요."
    );
    let status: Value = app.get("/events/daily", None).await.json().await.unwrap();
    assert_eq!(status["todayIssuedCount"], 2);
    assert_eq!(status["remainingQuantity"], 8);
}

#[tokio::test]
async fn check_order_holder_first_then_active_then_period() {
    let app = TestApp::spawn().await;
    app.create_event("order", 5, None).await;
    let held: Value = app.issue("order", 1).await.json().await.unwrap();
    let r = app
        .patch("/events/order", &app.admin(), &json!({"active": false}))
        .await;
    assert_eq!(r.status(), 200);
    // The holder still gets their ticket from an inactive event.
    let again = app.issue("order", 1).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), held);
    assert_error(
        app.issue("order", 2).await,
        400,
        "EVENT_INACTIVE",
        "/events/order/tickets",
    )
    .await;

    // Inactive and out of period: inactive is checked first.
    let body = json!({"eventKey": "old", "name": "old", "totalQuantity": 5,
                      "startAt": "2020-01-01T00:00:00Z", "endAt": "2020-01-02T00:00:00Z"});
    app.post("/events", &app.admin(), &body).await;
    app.patch("/events/old", &app.admin(), &json!({"active": false}))
        .await;
    assert_error(
        app.issue("old", 2).await,
        400,
        "EVENT_INACTIVE",
        "/events/old/tickets",
    )
    .await;
}

#[tokio::test]
async fn a_user_may_not_ask_for_another_but_an_admin_may() {
    let app = TestApp::spawn().await;
    app.create_event("auth", 5, None).await;
    let r = app
        .post("/events/auth/tickets", &app.user(1), &json!({"userId": 2}))
        .await;
    assert_error(r, 403, "FORBIDDEN", "/events/auth/tickets").await;
    let r = app
        .http
        .post(app.url("/events/auth/tickets"))
        .json(&json!({"userId": 2}))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "UNAUTHORIZED", "/events/auth/tickets").await;
    let r = app
        .post("/events/auth/tickets", &app.admin(), &json!({"userId": 2}))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<Value>().await.unwrap()["userId"], 2);
}

#[tokio::test]
async fn malformed_issue_requests_are_400() {
    let app = TestApp::spawn().await;
    app.create_event("shape", 5, None).await;
    let path = "/events/shape/tickets";
    for body in [
        json!({"userId": "7"}),
        json!({}),
        json!({"userId": 0}),
        json!({"userId": -3}),
        json!("7"),
    ] {
        let r = app.post(path, &app.admin(), &body).await;
        assert_error(r, 400, "INVALID_REQUEST", path).await;
    }
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(app.admin())
        .header("content-type", "application/json")
        .body("{userId: 1")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "INVALID_REQUEST", path).await;
    let status: Value = app.get("/events/shape", None).await.json().await.unwrap();
    assert_eq!(status["remainingQuantity"], 5, "nothing was issued");
}

#[tokio::test]
async fn over_the_user_rate_limit_is_429_with_retry_after() {
    let app = TestApp::spawn_with(Options {
        user_rate: 1,
        user_burst: 2,
        ..Options::default()
    })
    .await;
    app.create_event("limited", 5, None).await;
    assert_eq!(app.issue("limited", 1).await.status(), 201);
    assert_eq!(app.issue("limited", 1).await.status(), 200);
    let r = app.issue("limited", 1).await;
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_error(r, 429, "RATE_LIMITED", "/events/limited/tickets").await;
    assert_eq!(retry.as_deref(), Some("1"));
    // Another user is not affected.
    assert_eq!(app.issue("limited", 2).await.status(), 201);
}

#[tokio::test]
async fn ticket_shows_in_the_users_list_within_a_second() {
    let app = TestApp::spawn().await;
    app.create_event("listed", 5, None).await;
    let ticket: Value = app.issue("listed", 11).await.json().await.unwrap();
    let started = std::time::Instant::now();
    let list = loop {
        let list: Vec<Value> = app
            .get("/users/11/tickets", Some(&app.user(11)))
            .await
            .json()
            .await
            .unwrap();
        if !list.is_empty() || started.elapsed() > Duration::from_secs(1) {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(list.len(), 1, "ticket not listed within 1 s");
    assert_eq!(list[0]["ticketId"], ticket["ticketId"]);
    assert_eq!(list[0]["eventKey"], "listed");
    assert_eq!(list[0]["eventName"], "event listed");
    assert_eq!(list[0]["issuedAt"], ticket["issuedAt"]);

    let r = app.get("/users/11/tickets", Some(&app.user(12))).await;
    assert_error(r, 403, "FORBIDDEN", "/users/11/tickets").await;
    assert_eq!(
        app.get("/users/11/tickets", Some(&app.admin())).await.status(),
        200
    );
    let r = app.get("/users/abc/tickets", Some(&app.admin())).await;
    assert_error(r, 400, "INVALID_REQUEST", "/users/abc/tickets").await;
    let r = app.get("/users/11/tickets", None).await;
    assert_error(r, 401, "UNAUTHORIZED", "/users/11/tickets").await;
}

#[tokio::test]
async fn a_redis_url_with_a_db_index_keeps_keys_there() {
    let mut url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    url.truncate(url.rfind('/').unwrap());
    url.push_str("/9");
    let app = TestApp::spawn_with(Options {
        redis_url: Some(url),
        ..Options::default()
    })
    .await;
    app.create_event("indexed", 3, None).await;
    assert_eq!(app.issue("indexed", 1).await.status(), 201);
    assert_eq!(app.wait_rows("indexed", 1, Duration::from_secs(5)).await, 1);
    let holders = app.keys.ticket_event("indexed").holders;
    let selected: i64 = app.redis_cmd("EXISTS", vec![holders.clone()]).await;
    assert_eq!(selected, 1, "the holders live in db 9, where the pool points");
    let mut db0 = app.core.clone();
    db0.redis_url = format!("{}/0", &db0.redis_url[..db0.redis_url.rfind('/').unwrap()]);
    let other = issuance_core::connect::redis(&db0).await.unwrap();
    let elsewhere: i64 = fred::interfaces::KeysInterface::exists(&other, holders)
        .await
        .unwrap();
    assert_eq!(elsewhere, 0, "nothing in db 0");
}

/// What `path` answers `user` (as `token`, with `body` as the raw body): status and JSON,
/// without the time it was written.
async fn answer(app: &TestApp, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut request = app
        .http
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let mut json: Value = r.json().await.unwrap();
    if let Some(fields) = json.as_object_mut() {
        fields.remove("timestamp");
        fields.remove("path");
    }
    (status, json)
}

/// POSTs `parts` to `path` as `token` in chunks sent apart (each its own frame to the server);
/// the status and the body of the answer.
async fn chunked(app: &TestApp, path: &str, token: &str, parts: &[&str]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    for part in parts {
        tcp.write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes())
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tcp.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    (status, answer.split_once("\r\n\r\n").unwrap().1.to_owned())
}

#[tokio::test]
async fn the_issue_routes_answer_alike_whichever_way_they_are_served() {
    // A plain path is answered ahead of the router; the same path with an escape the router
    // decodes goes through the router. Every answer must be the same.
    let app = TestApp::spawn().await;
    app.create_event("e-1", 2, None).await;
    let setup = crate::coupons::Setup {
        count: 2,
        ..Default::default()
    };
    let (_, batch) = crate::coupons::batch(&app, setup).await;
    let ticket = ("/events/e-1/tickets", "/events/e%2D1/tickets");
    let digits: String = batch.to_string().bytes().map(|b| format!("%{b:02X}")).collect();
    let coupon = (
        format!("/api/v1/coupons/{batch}/issue"),
        format!("/api/v1/coupons/{digits}/issue"),
    );
    for (hot, routed) in [(ticket.0.to_owned(), ticket.1.to_owned()), coupon] {
        let (me, other) = (app.user(7), app.user(8));
        for (token, body, status) in [
            (None, r#"{"userId":7}"#, 401),
            (None, r#"{"userId":7"#, 401),
            (Some(me.as_str()), r#"{"userId":7"#, 400),
            (Some(me.as_str()), r#"{"userId":7,"extra":1}"#, 400),
            (Some(me.as_str()), r#"[7]"#, 400),
            (Some(other.as_str()), r#"{"userId":7}"#, 403),
            (Some(me.as_str()), r#"{"userId":0}"#, 400),
        ] {
            let plain = answer(&app, &hot, token, body).await;
            assert_eq!(plain.0, status, "{hot} {body}: {}", plain.1);
            assert_eq!(answer(&app, &routed, token, body).await, plain, "{routed} {body}");
        }
        // A body over axum's 2 MB bound, and one sent in two chunks, read alike.
        let large = format!("{{\"userId\":7{}}}", " ".repeat(2_100_000));
        let too_large = answer(&app, &hot, Some(&me), &large).await;
        assert_eq!(too_large.0, 413, "{}", too_large.1);
        assert_eq!(answer(&app, &routed, Some(&me), &large).await, too_large);
        for path in [&hot, &routed] {
            let parts = [r#"{"userId""#, r#":0}"#];
            let (status, body) = chunked(&app, path, &me, &parts).await;
            assert_eq!(status, 400, "{path}: {body}");
            assert!(
                body.contains("userId"),
                "{path}: the joined body was read: {body}"
            );
        }
        // The first issue on one spelling, the same user again on the other.
        let first = answer(&app, &hot, Some(&me), r#"{"userId":7}"#).await;
        assert_eq!(first.0, 201, "{hot}: {}", first.1);
        let again = answer(&app, &routed, Some(&me), r#"{"userId":7}"#).await;
        let second = answer(&app, &routed, Some(&app.user(9)), r#"{"userId":9}"#).await;
        assert_eq!(second.0, 201, "{routed}: {}", second.1);
        let third = answer(&app, &hot, Some(&app.user(10)), r#"{"userId":10}"#).await;
        assert_eq!(third.0, 409, "{hot}: {}", third.1);
        assert_eq!(
            answer(&app, &routed, Some(&app.user(10)), r#"{"userId":10}"#).await,
            third
        );
        if hot.starts_with("/events") {
            assert_eq!(again, (200, first.1), "the same ticket again");
        } else {
            assert_eq!(again.0, 409, "{}", again.1);
            assert_eq!(again.1["code"], "COUPON_ALREADY_ISSUED");
        }
    }
    // Both ways are counted under the route's template.
    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    for series in [
        "http_requests_total{method=\"POST\",route=\"/events/{eventKey}/tickets\",status=\"401\"}",
        "http_requests_total{method=\"POST\",route=\"/api/v1/coupons/{couponId}/issue\",status=\"201\"}",
    ] {
        let count: f64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in\n{metrics}"));
        assert!(count >= 2.0, "{series} {count}");
    }
}
