//! `POST /events`, `GET /events`, `GET /events/{eventKey}`, `PATCH /events/{eventKey}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

fn event_body(key: &str) -> Value {
    json!({
        "eventKey": key, "name": "2026 여름 골든티켓", "totalQuantity": 100, "dailyLimit": 10,
        "startAt": "2026-01-15T00:00:00Z", "endAt": "2026-01-20T23:59:59Z",
    })
}

#[tokio::test]
async fn create_answers_201_with_remaining_quantity() {
    let app = TestApp::spawn().await;
    let r = app
        .post("/events", &app.admin(), &event_body("golden-2026-summer"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["eventKey"], "golden-2026-summer");
    assert_eq!(body["name"], "2026 여름 골든티켓");
    assert_eq!(body["totalQuantity"], 100);
    assert_eq!(body["dailyLimit"], 10);
    assert_eq!(body["remainingQuantity"], 100);
    assert_eq!(body["startAt"], "2026-01-15T00:00:00Z");
    assert_eq!(body["endAt"], "2026-01-20T23:59:59Z");
    assert!(body["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn create_reads_datetimes_without_offset_as_kst() {
    let app = TestApp::spawn().await;
    let mut body = event_body("kst");
    body["startAt"] = json!("2026-01-15T09:00:00");
    body["endAt"] = json!("2026-01-16T09:00:00+09:00");
    let r = app.post("/events", &app.admin(), &body).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["startAt"], "2026-01-15T00:00:00Z");
    assert_eq!(body["endAt"], "2026-01-16T00:00:00Z");
}

#[tokio::test]
async fn duplicate_key_is_409_duplicate_event() {
    let app = TestApp::spawn().await;
    app.post("/events", &app.admin(), &event_body("dup")).await;
    let r = app.post("/events", &app.admin(), &event_body("dup")).await;
    let body = assert_error(r, 409, "DUPLICATE_EVENT", "/events").await;
    assert_eq!(body["message"], "이미 존재하는 이벤트입니다.");
}

#[tokio::test]
async fn create_needs_an_admin_token() {
    let app = TestApp::spawn().await;
    let r = app
        .http
        .post(app.url("/events"))
        .json(&event_body("a"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "UNAUTHORIZED", "/events").await;
    let r = app.post("/events", &app.user(5), &event_body("a")).await;
    assert_error(r, 403, "FORBIDDEN", "/events").await;
    let r = app.post("/events", "not.a.jwt", &event_body("a")).await;
    assert_error(r, 401, "UNAUTHORIZED", "/events").await;
    let forged = api::auth::Jwt::new("other-secret").mint(1, true, 3600);
    let r = app.post("/events", &forged, &event_body("a")).await;
    assert_error(r, 401, "UNAUTHORIZED", "/events").await;
    // An expired token (beyond the 5 s leeway).
    let claims = json!({"sub": "1", "roles": ["ROLE_ADMIN"], "exp": 1_000});
    let old = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let r = app.post("/events", &old, &event_body("a")).await;
    assert_error(r, 401, "UNAUTHORIZED", "/events").await;
    assert_eq!(
        app.get("/events/a", None).await.status(),
        404,
        "nothing was created"
    );
}

#[tokio::test]
async fn bad_input_is_400_invalid_request_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let with = |field: &str, value: Value| {
        let mut b = event_body("bad");
        b[field] = value;
        b
    };
    cases.push(("total 0", with("totalQuantity", json!(0))));
    cases.push(("total above 10M", with("totalQuantity", json!(10_000_001))));
    cases.push(("total as text", with("totalQuantity", json!("100"))));
    cases.push(("total fractional", with("totalQuantity", json!(1.5))));
    cases.push(("daily above total", with("dailyLimit", json!(101))));
    cases.push(("daily 0", with("dailyLimit", json!(0))));
    cases.push(("end before start", with("endAt", json!("2026-01-01T00:00:00Z"))));
    cases.push(("bad date", with("startAt", json!("15/01/2026"))));
    cases.push(("bad key", with("eventKey", json!("Bad_Key"))));
    cases.push(("empty name", with("name", json!(""))));
    let mut missing = event_body("bad");
    missing.as_object_mut().unwrap().remove("totalQuantity");
    cases.push(("missing field", missing));
    for (what, body) in cases {
        let r = app.post("/events", &app.admin(), &body).await;
        assert_eq!(r.status(), 400, "{what}");
        assert_error(r, 400, "INVALID_REQUEST", "/events").await;
    }
    let r = app
        .http
        .post(app.url("/events"))
        .bearer_auth(app.admin())
        .header("content-type", "application/json")
        .body("{\"eventKey\": ")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "INVALID_REQUEST", "/events").await;
    assert_error(
        app.get("/events/bad", None).await,
        404,
        "EVENT_NOT_FOUND",
        "/events/bad",
    )
    .await;
}

#[tokio::test]
async fn unknown_event_is_404_event_not_found() {
    let app = TestApp::spawn().await;
    let r = app.get("/events/nope", None).await;
    let body = assert_error(r, 404, "EVENT_NOT_FOUND", "/events/nope").await;
    assert_eq!(body["message"], "존재하지 않는 이벤트입니다.");
    // A key that breaks the format cannot exist either.
    assert_error(
        app.get("/events/NOPE_", None).await,
        404,
        "EVENT_NOT_FOUND",
        "/events/NOPE_",
    )
    .await;
}

#[tokio::test]
async fn status_shows_live_counts() {
    let app = TestApp::spawn().await;
    app.create_event("live", 10, Some(5)).await;
    for user in 1..=3 {
        assert_eq!(app.issue("live", user).await.status(), 201);
    }
    let body: Value = app.get("/events/live", None).await.json().await.unwrap();
    assert_eq!(body["totalQuantity"], 10);
    assert_eq!(body["remainingQuantity"], 7);
    assert_eq!(body["todayIssuedCount"], 3);
    assert_eq!(body["isActive"], true);
}

#[tokio::test]
async fn list_shows_running_active_events_only() {
    let app = TestApp::spawn().await;
    app.create_event("running", 10, None).await;
    app.create_event("switched-off", 10, None).await;
    let r = app
        .patch("/events/switched-off", &app.admin(), &json!({"active": false}))
        .await;
    assert_eq!(r.status(), 200);
    app.post("/events", &app.admin(), &event_body("past")).await;
    let body: Vec<Value> = app.get("/events", None).await.json().await.unwrap();
    let keys: Vec<&str> = body.iter().map(|e| e["eventKey"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["running"]);
}

#[tokio::test]
async fn patch_switches_an_event_off_and_on() {
    let app = TestApp::spawn().await;
    app.create_event("toggle", 10, None).await;
    let patch = |active: bool, token: String| {
        app.http
            .patch(app.url("/events/toggle"))
            .bearer_auth(token)
            .json(&json!({ "active": active }))
            .send()
    };
    let r = patch(false, app.admin()).await.unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["isActive"], false);
    assert_error(
        app.issue("toggle", 9).await,
        400,
        "EVENT_INACTIVE",
        "/events/toggle/tickets",
    )
    .await;
    let r = patch(true, app.admin()).await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["isActive"], true);
    assert_eq!(app.issue("toggle", 9).await.status(), 201);

    let r = patch(false, app.user(9)).await.unwrap();
    assert_error(r, 403, "FORBIDDEN", "/events/toggle").await;
    let r = app
        .patch("/events/missing", &app.admin(), &json!({"active": false}))
        .await;
    assert_error(r, 404, "EVENT_NOT_FOUND", "/events/missing").await;
    let r = app
        .patch("/events/toggle", &app.admin(), &json!({"active": "no"}))
        .await;
    assert_error(r, 400, "INVALID_REQUEST", "/events/toggle").await;
}

#[tokio::test]
async fn unknown_route_and_method_use_the_error_body() {
    let app = TestApp::spawn().await;
    assert_error(app.get("/nowhere", None).await, 404, "NOT_FOUND", "/nowhere").await;
    let r = app.http.delete(app.url("/events")).send().await.unwrap();
    assert_error(r, 405, "METHOD_NOT_ALLOWED", "/events").await;
}

#[tokio::test]
async fn ops_endpoints_answer() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/health", None).await.status(), 200);
    let ready: Value = app.get("/ready", None).await.json().await.unwrap();
    assert_eq!(ready, json!({"redis": "up", "postgres": "up"}));
    app.create_event("m", 1, None).await;
    app.issue("m", 1).await;
    app.issue("m", 2).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    for needle in [
        "issuer_issue_total{kind=\"ticket\",outcome=\"issued\"}",
        "issuer_issue_total{kind=\"ticket\",outcome=\"sold_out\"}",
        "http_requests_total{method=\"POST\",route=\"/events/{eventKey}/tickets\",status=\"201\"}",
        "http_request_duration_seconds_bucket",
        "issuer_stream_lag_entries",
        "issuer_stream_lag_seconds",
        "issuer_stream_length_entries",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}");
    }
}
