//! An event's waiting room: joining, the fair draw at the start, the outflow, passes on the
//! issue endpoint, the live controls, sold out, and a loss of the room's keys.

use std::{collections::HashMap, hash::Hasher, time::Duration};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

const PASS: &str = "x-admission-pass";

/// Sleeps until `margin` past `instant`.
async fn sleep_past(instant: chrono::DateTime<Utc>, margin: Duration) {
    let left = (instant - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(left + margin).await;
}

/// An event whose room opened a second ago and whose start is `start_in` from now; its start.
async fn gated_event(
    app: &TestApp,
    key: &str,
    total: i64,
    rate: i64,
    start_in: Duration,
) -> chrono::DateTime<Utc> {
    let now = Utc::now();
    let at = |d: chrono::Duration| (now + d).to_rfc3339_opts(SecondsFormat::Millis, true);
    let body = json!({
        "eventKey": key, "name": format!("room {key}"), "totalQuantity": total,
        "startAt": at(chrono::Duration::from_std(start_in).unwrap()),
        "endAt": at(chrono::Duration::days(1)),
        "admission": {"enabled": true, "prequeueOpensAt": at(chrono::Duration::seconds(-1)),
                      "admitPerSecond": rate, "passTtlSeconds": 60},
    });
    let r = app.post("/events", &app.admin(), &body).await;
    assert_eq!(r.status(), 201, "create {key}");
    now + chrono::Duration::from_std(start_in).unwrap()
}

/// Who of `users` is admitted now, with their passes.
async fn passes_of(app: &TestApp, key: &str, users: std::ops::RangeInclusive<i64>) -> Vec<(i64, String)> {
    let mut admitted = Vec::new();
    for user in users {
        if let Some(pass) = place(app, key, user).await["pass"].as_str() {
            admitted.push((user, pass.to_owned()));
        }
    }
    admitted
}

async fn join(app: &TestApp, key: &str, user: i64) -> reqwest::Response {
    app.post(
        &format!("/events/{key}/queue"),
        &app.user(user),
        &json!({ "userId": user }),
    )
    .await
}

async fn place(app: &TestApp, key: &str, user: i64) -> Value {
    let r = app
        .get(&format!("/events/{key}/queue/{user}"), Some(&app.user(user)))
        .await;
    assert_eq!(r.status(), 200, "place of {user}");
    r.json().await.unwrap()
}

async fn issue_with(app: &TestApp, key: &str, user: i64, pass: Option<&str>) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url(&format!("/events/{key}/tickets")))
        .bearer_auth(app.user(user))
        .json(&json!({ "userId": user }));
    if let Some(pass) = pass {
        req = req.header(PASS, pass);
    }
    req.send().await.unwrap()
}

/// The order recomputed from a revealed seed by the published algorithm alone (not the
/// engine's code): the slot of each join index below `size`.
fn slots_from_seed(seed: &str, size: u64) -> Vec<u64> {
    let k0 = u64::from_str_radix(&seed[..16], 16).unwrap();
    let k1 = u64::from_str_radix(&seed[16..], 16).unwrap();
    let b = 64 - size.saturating_sub(1).leading_zeros();
    let h = b.div_ceil(2).max(1);
    let mask = (1u64 << h) - 1;
    let e = |x: u64| {
        let (mut l, mut r) = (x >> h, x & mask);
        for round in 0u64..6 {
            let mut s = siphasher::sip::SipHasher13::new_with_keys(k0, k1);
            s.write(&round.to_le_bytes());
            s.write(&r.to_le_bytes());
            (l, r) = (r, l ^ (s.finish() & mask));
        }
        (l << h) | r
    };
    (0..size)
        .map(|i| {
            let mut x = e(i);
            while x >= size {
                x = e(x);
            }
            x
        })
        .collect()
}

#[tokio::test]
async fn the_pre_queue_is_drawn_at_the_start_and_admitted_in_that_order() {
    let app = TestApp::spawn().await;
    let key = "room-draw";
    // Time enough for the joins before the start, also on a loaded machine.
    let start = gated_event(&app, key, 100, 4, Duration::from_secs(5)).await;
    let users: Vec<i64> = (1..=12).collect();
    for &user in &users {
        let r = join(&app, key, user).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["state"], "PREQUEUE");
        assert!(body["position"].is_null(), "no order before the draw");
    }
    // Joining again is the same place, with no penalty.
    let again: Value = join(&app, key, 3).await.json().await.unwrap();
    assert_eq!(again["joined"], 12);
    let seed_path = format!("/events/{key}/queue/seed");
    assert_error(
        app.get(&seed_path, None).await,
        403,
        "SEED_NOT_REVEALED",
        &seed_path,
    )
    .await;
    let issue_path = format!("/events/{key}/tickets");
    assert_error(
        issue_with(&app, key, 1, None).await,
        403,
        "ADMISSION_REQUIRED",
        &issue_path,
    )
    .await;

    sleep_past(start, Duration::from_millis(300)).await;
    let late = 500;
    let late_place: Value = join(&app, key, late).await.json().await.unwrap();
    let seed: Value = app.get(&seed_path, None).await.json().await.unwrap();
    assert_eq!(seed["prequeueSize"], 12, "the late arrival is not in the draw");
    let slots = slots_from_seed(seed["seed"].as_str().unwrap(), 12);
    let slot_of: HashMap<i64, i64> = users
        .iter()
        .map(|&u| (u, slots[(u - 1) as usize] as i64))
        .collect();
    assert_ne!(slots, (0..12).collect::<Vec<u64>>(), "not the join order");

    // Whoever the room says is admitted is exactly the first `admitted` slots of the draw.
    let mut seen_admitted = 0;
    for _ in 0..3 {
        let mut places = HashMap::new();
        for &user in &users {
            places.insert(user, place(&app, key, user).await);
        }
        let admitted = places
            .values()
            .map(|p| p["admitted"].as_i64().unwrap())
            .max()
            .unwrap();
        for (&user, p) in &places {
            let slot = slot_of[&user];
            if p["state"] == "ADMITTED" {
                assert!(
                    slot < p["admitted"].as_i64().unwrap(),
                    "user {user} slot {slot}: {p}"
                );
                assert!(p["pass"].is_string());
            } else {
                assert_eq!(p["state"], "WAITING", "{p}");
                assert!(
                    slot >= p["admitted"].as_i64().unwrap(),
                    "user {user} slot {slot}: {p}"
                );
                assert_eq!(
                    p["position"].as_i64().unwrap(),
                    slot - p["admitted"].as_i64().unwrap()
                );
            }
        }
        seen_admitted = seen_admitted.max(admitted);
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    assert!(seen_admitted >= 4, "admitted at 4 a second: {seen_admitted}");
    // The late arrival joined at the back, after the whole draw.
    assert_eq!(late_place["state"], "WAITING");
    assert!(late_place["position"].as_i64().unwrap() >= 12 - late_place["admitted"].as_i64().unwrap());

    // The first of the draw takes their ticket with their pass; nobody else's pass works.
    let first = *slot_of.iter().find(|(_, s)| **s == 0).unwrap().0;
    let p = place(&app, key, first).await;
    let pass = p["pass"].as_str().unwrap().to_owned();
    let other = *slot_of.iter().find(|(_, s)| **s == 11).unwrap().0;
    assert_error(
        issue_with(&app, key, other, Some(&pass)).await,
        403,
        "ADMISSION_INVALID",
        &issue_path,
    )
    .await;
    // One hex digit of the tag changed (never to itself).
    let last = if pass.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &pass[..pass.len() - 1]);
    assert_error(
        issue_with(&app, key, first, Some(&forged)).await,
        403,
        "ADMISSION_INVALID",
        &issue_path,
    )
    .await;
    let r = issue_with(&app, key, first, Some(&pass)).await;
    assert_eq!(r.status(), 201);
    // A holder gets their ticket back, pass or not.
    assert_eq!(issue_with(&app, key, first, None).await.status(), 200);
}

#[tokio::test]
async fn the_outflow_keeps_its_rate_and_pauses_resumes_and_closes() {
    let app = TestApp::spawn().await;
    let key = "room-rate";
    let start = gated_event(&app, key, 1_000, 10, Duration::from_millis(300)).await;
    for user in 1..=100 {
        assert_eq!(join(&app, key, user).await.status(), 200);
    }
    sleep_past(start, Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    let first = place(&app, key, 1).await["admitted"].as_i64().unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let later = place(&app, key, 1).await["admitted"].as_i64().unwrap();
    let secs = started.elapsed().as_secs_f64() + 1.0;
    assert!(later > first, "admission moves: {first} -> {later}");
    assert!(
        (later - first) as f64 <= 10.0 * secs + 1.0,
        "never more than 10 a second: {first} -> {later} in {secs:.1} s"
    );

    let admin = app.admin();
    let r = app
        .post_empty(&format!("/events/{key}/queue/pause"), &admin)
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["admission"]["state"], "PAUSED");
    let paused = place(&app, key, 1).await["admitted"].as_i64().unwrap();
    // Nobody asks while it is paused; a resume then admits from now on, not for the time it
    // was paused (fails without the count at the change).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let r = app
        .post_empty(&format!("/events/{key}/queue/resume"), &admin)
        .await;
    assert_eq!(r.status(), 200);
    let resumed = place(&app, key, 1).await["admitted"].as_i64().unwrap();
    assert!(
        resumed - paused <= 2,
        "no admission for the pause: {paused} -> {resumed}"
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(place(&app, key, 1).await["admitted"].as_i64().unwrap() > resumed);

    // Closed: no new joins, those still waiting are told.
    let r = app
        .post_empty(&format!("/events/{key}/queue/close"), &admin)
        .await;
    assert_eq!(r.status(), 200);
    let queue = format!("/events/{key}/queue");
    assert_error(join(&app, key, 1_000).await, 409, "QUEUE_CLOSED", &queue).await;
    let mut closed = 0;
    for user in 1..=100 {
        let p = place(&app, key, user).await;
        if p["state"] == "CLOSED" {
            closed += 1;
        } else {
            assert_eq!(p["state"], "ADMITTED", "{p}");
        }
    }
    assert!(closed > 0, "those not admitted are told the room closed");
}

#[tokio::test]
async fn a_sell_out_tells_everyone_waiting_at_their_next_poll() {
    let app = TestApp::spawn().await;
    let key = "room-sold";
    let start = gated_event(&app, key, 2, 1_000, Duration::from_millis(300)).await;
    for user in 1..=20 {
        assert_eq!(join(&app, key, user).await.status(), 200);
    }
    sleep_past(start, Duration::from_millis(200)).await;
    let mut holders = Vec::new();
    for user in 1..=20 {
        let p = place(&app, key, user).await;
        if let Some(pass) = p["pass"].as_str()
            && issue_with(&app, key, user, Some(pass)).await.status() == 201
        {
            holders.push(user);
        }
        if holders.len() == 2 {
            break;
        }
    }
    assert_eq!(holders.len(), 2);
    // At their very next poll: the holders see they are in, everyone else that it is over.
    for user in 1..=20 {
        let p = place(&app, key, user).await;
        if holders.contains(&user) {
            assert_eq!(p["state"], "ADMITTED", "{p}");
        } else {
            assert_eq!(p["state"], "SOLD_OUT", "{p}");
            assert!(p["pass"].is_null(), "no pass once sold out: {p}");
        }
    }
}

#[tokio::test]
async fn unused_passes_are_capped_and_a_pass_used_or_expired_frees_its_slot() {
    let app = TestApp::spawn().await;
    let key = "room-cap";
    // 1,000 a second would admit all 20 at once; the cap lets 3 through until passes are used
    // or expire (2 s after their admission).
    let start = gated_event(&app, key, 100, 1_000, Duration::from_millis(300)).await;
    let r = app
        .patch(
            &format!("/events/{key}"),
            &app.admin(),
            &json!({"admission": {"maxUnusedPasses": 3, "passTtlSeconds": 2}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["admission"]["maxUnusedPasses"], 3);
    for user in 1..=20 {
        assert_eq!(join(&app, key, user).await.status(), 200);
    }
    sleep_past(start, Duration::from_millis(300)).await;
    let first = passes_of(&app, key, 1..=20).await;
    assert_eq!(
        first.len(),
        3,
        "the cap holds the outflow (fails without it): {first:?}"
    );
    assert_eq!(place(&app, key, 1).await["admitted"], 3);

    // Two passes used: two more are let through (the copy of the counts is 100 ms old at most).
    for (user, pass) in &first[..2] {
        assert_eq!(issue_with(&app, key, *user, Some(pass)).await.status(), 201);
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let second = passes_of(&app, key, 1..=20).await;
    let fresh: Vec<i64> = second
        .iter()
        .map(|(u, _)| *u)
        .filter(|u| first.iter().all(|(f, _)| f != u))
        .collect();
    assert_eq!(fresh.len(), 2, "a used pass frees its slot: {second:?}");
    assert_eq!(place(&app, key, 1).await["admitted"], 5);

    // Nobody uses another: the three unused passes expire 2 s after their admission, and three
    // more are let through, never more than three out at once.
    sleep_past(start, Duration::from_millis(2_700)).await;
    let admitted = place(&app, key, 1).await["admitted"].as_i64().unwrap();
    assert!(
        (6..=8).contains(&admitted),
        "expired passes free their slots: {admitted}"
    );
    let out = passes_of(&app, key, 1..=20).await;
    let now = Utc::now().timestamp_millis();
    let live: Vec<_> = out
        .iter()
        .filter(|(user, pass)| {
            !first[..2].iter().any(|(u, _)| u == user)
                && pass.split_once('.').unwrap().0.parse::<i64>().unwrap() > now
        })
        .collect();
    assert!(live.len() <= 3, "at most three unused passes: {live:?}");
    assert!(!live.is_empty(), "new passes were given: {out:?}");
    let (user, stale) = &first[2];
    assert_error(
        issue_with(&app, key, *user, Some(stale)).await,
        403,
        "ADMISSION_INVALID",
        &format!("/events/{key}/tickets"),
    )
    .await;

    // The cap lifted live: everyone is let through within the rules cache's second.
    let r = app
        .patch(
            &format!("/events/{key}"),
            &app.admin(),
            &json!({"admission": {"maxUnusedPasses": 0}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(place(&app, key, 1).await["admitted"], 20);
}

#[tokio::test]
async fn the_room_checks_its_input_and_its_opening() {
    let app = TestApp::spawn().await;
    // Not open yet: the pre-queue opens in an hour.
    let now = Utc::now();
    let at = |d: chrono::Duration| (now + d).to_rfc3339_opts(SecondsFormat::Millis, true);
    let body = json!({
        "eventKey": "room-later", "name": "later", "totalQuantity": 10,
        "startAt": at(chrono::Duration::hours(2)), "endAt": at(chrono::Duration::hours(3)),
        "admission": {"enabled": true, "prequeueOpensAt": at(chrono::Duration::hours(1)),
                      "admitPerSecond": 10, "passTtlSeconds": 60},
    });
    assert_eq!(app.post("/events", &app.admin(), &body).await.status(), 201);
    assert_error(
        join(&app, "room-later", 1).await,
        400,
        "QUEUE_NOT_OPEN",
        "/events/room-later/queue",
    )
    .await;
    let r = app.get("/events/room-later/queue/1", Some(&app.user(1))).await;
    assert_error(r, 404, "QUEUE_PLACE_NOT_FOUND", "/events/room-later/queue/1").await;
    let r = app.get("/events/room-later/queue/1", Some(&app.user(2))).await;
    assert_error(r, 403, "FORBIDDEN", "/events/room-later/queue/1").await;

    // Switched on without its settings, a rate out of range, a pre-queue after the start.
    for (admission, why) in [
        (json!({"enabled": true}), "no settings"),
        (
            json!({"enabled": true, "prequeueOpensAt": at(chrono::Duration::hours(1)), "admitPerSecond": 0, "passTtlSeconds": 60}),
            "rate 0",
        ),
        (
            json!({"enabled": true, "prequeueOpensAt": at(chrono::Duration::hours(5)), "admitPerSecond": 5, "passTtlSeconds": 60}),
            "after the start",
        ),
        (
            json!({"enabled": true, "prequeueOpensAt": at(chrono::Duration::hours(1)), "admitPerSecond": 5, "passTtlSeconds": 60, "maxUnusedPasses": -1}),
            "a negative cap",
        ),
        (json!({"enabled": true, "admitted": 5}), "an unknown field"),
    ] {
        let mut body = body.clone();
        body["eventKey"] = json!("room-bad");
        body["admission"] = admission;
        let r = app.post("/events", &app.admin(), &body).await;
        assert_eq!(r.status(), 400, "{why}");
        assert_error(r, 400, "INVALID_REQUEST", "/events").await;
    }
    // An event without a room has none to join, and issues as before.
    app.create_event("no-room", 10, None).await;
    assert_error(
        join(&app, "no-room", 1).await,
        404,
        "QUEUE_NOT_FOUND",
        "/events/no-room/queue",
    )
    .await;
    assert_eq!(app.issue("no-room", 1).await.status(), 201);

    // The rate changes live through PATCH.
    let r = app
        .patch(
            "/events/room-later",
            &app.admin(),
            &json!({"admission": {"admitPerSecond": 50}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["admission"]["admitPerSecond"], 50);
    assert_eq!(body["admission"]["enabled"], true);
}

#[tokio::test]
async fn a_loss_of_the_rooms_keys_never_issues_past_the_quantity_or_twice() {
    let app = TestApp::spawn().await;
    let key = "room-lost";
    let start = gated_event(&app, key, 3, 1_000, Duration::from_millis(300)).await;
    for user in 1..=10 {
        assert_eq!(join(&app, key, user).await.status(), 200);
    }
    sleep_past(start, Duration::from_millis(200)).await;
    let mut passes = HashMap::new();
    for user in 1..=10 {
        if let Some(pass) = place(&app, key, user).await["pass"].as_str() {
            passes.insert(user, pass.to_owned());
        }
    }
    assert_eq!(passes.len(), 10, "everyone admitted at 1,000 a second");
    assert_eq!(issue_with(&app, key, 1, Some(&passes[&1])).await.status(), 201);
    // The room's keys are lost: everyone joins again, at the back.
    for suffix in ["room", "queue", "passes"] {
        let k = format!("{}{{gt:{key}}}:{suffix}", app.core.key_prefix);
        let _: i64 = app.redis_cmd("DEL", vec![k]).await;
    }
    // Polls answered from memory see the loss within the copy's age.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = app
        .get(&format!("/events/{key}/queue/2"), Some(&app.user(2)))
        .await;
    assert_eq!(r.status(), 404, "the place is gone");
    assert_eq!(join(&app, key, 2).await.status(), 200);
    // Passes given before the loss still work until they expire; the quantity and one per user
    // hold whatever the room did.
    let mut created = 1;
    for user in 1..=10 {
        let status = issue_with(&app, key, user, Some(&passes[&user])).await.status();
        match status.as_u16() {
            201 => created += 1,
            200 => assert_eq!(user, 1, "only the holder gets a ticket back"),
            409 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(created, 3, "never more than the quantity");
    assert_eq!(app.wait_rows(key, 3, Duration::from_secs(10)).await, 3);
}

#[tokio::test]
async fn a_self_coupon_batch_has_the_same_room() {
    let app = TestApp::spawn().await;
    let now = Utc::now();
    let at = |d: chrono::Duration| (now + d).to_rfc3339_opts(SecondsFormat::Millis, true);
    let start = now + chrono::Duration::milliseconds(1_500);
    let event = app
        .admin_post(
            "/api/v1/admin/events",
            &json!({"eventName": format!("room-{}", uuid::Uuid::new_v4().simple()),
                    "fromAt": "2026-01-01T00:00:00", "untilAt": "2099-01-01T00:00:00"}),
            201,
        )
        .await;
    let inventory = app
        .admin_post(
            "/api/v1/admin/coupon-inventories",
            &json!({"eventId": event["eventId"], "inventoryName": "A", "totalCount": 10,
                    "usableFromAt": "2026-01-01T00:00:00", "usableUntilAt": "2099-06-01T00:00:00"}),
            201,
        )
        .await;
    let batch_body = |issue_type: &str| {
        json!({"inventoryId": inventory["inventoryId"], "batchName": "1회차", "issueCount": 5,
               "issueType": issue_type, "batchStatus": "READY",
               "validFromAt": start.to_rfc3339_opts(SecondsFormat::Millis, true),
               "validUntilAt": at(chrono::Duration::days(1)),
               "admission": {"enabled": true, "prequeueOpensAt": at(chrono::Duration::seconds(-1)),
                             "admitPerSecond": 1000, "passTtlSeconds": 60}})
    };
    let r = app
        .post(
            "/api/v1/admin/coupon-batches",
            &app.admin(),
            &batch_body("MAPPED"),
        )
        .await;
    assert_error(r, 400, "INVALID_REQUEST", "/api/v1/admin/coupon-batches").await;
    let batch = app
        .admin_post("/api/v1/admin/coupon-batches", &batch_body("SELF"), 201)
        .await;
    assert_eq!(batch["admission"]["enabled"], true);
    let id = batch["batchId"].as_i64().unwrap();
    let queue = format!("/api/v1/coupons/{id}/queue");
    let issue = format!("/api/v1/coupons/{id}/issue");
    let claim = |user: i64, pass: Option<String>| {
        let mut req = app
            .http
            .post(app.url(&issue))
            .bearer_auth(app.user(user))
            .json(&json!({ "userId": user }));
        if let Some(pass) = pass {
            req = req.header(PASS, pass);
        }
        req.send()
    };
    for user in 1..=3 {
        let r = app
            .post(&queue, &app.user(user), &json!({ "userId": user }))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.json::<Value>().await.unwrap()["state"], "PREQUEUE");
    }
    assert_error(claim(1, None).await.unwrap(), 403, "ADMISSION_REQUIRED", &issue).await;

    sleep_past(start, Duration::from_millis(300)).await;
    let p: Value = app
        .get(&format!("{queue}/1"), Some(&app.user(1)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["state"], "ADMITTED", "{p}");
    let pass = p["pass"].as_str().unwrap().to_owned();
    let r = claim(2, Some(pass.clone())).await.unwrap();
    assert_error(r, 403, "ADMISSION_INVALID", &issue).await;
    assert_eq!(claim(1, Some(pass)).await.unwrap().status(), 201);
    // A holder is answered as a holder, pass or not.
    assert_error(
        claim(1, None).await.unwrap(),
        409,
        "COUPON_ALREADY_ISSUED",
        &issue,
    )
    .await;
    let seed: Value = app
        .get(&format!("{queue}/seed"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seed["prequeueSize"], 3);

    // Live controls and settings.
    let r = app.post_empty(&format!("{queue}/pause"), &app.admin()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["admission"]["state"], "PAUSED");
    let r = app.post_empty(&format!("{queue}/pause"), &app.user(1)).await;
    assert_error(r, 403, "FORBIDDEN", &format!("{queue}/pause")).await;
    let r = app
        .patch(
            &format!("/api/v1/admin/coupon-batches/{id}"),
            &app.admin(),
            &json!({"admission": {"admitPerSecond": 7}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["admission"]["admitPerSecond"], 7);
}
