//! The points wallet: charges, caps, no lost update, history, who may ask.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error};

async fn user(app: &TestApp) -> i64 {
    let u = app
        .admin_post("/api/v1/admin/users", &json!({"name": "buyer"}), 201)
        .await;
    u["userId"].as_i64().unwrap()
}

async fn charge(app: &TestApp, user: i64, amount: i64) -> reqwest::Response {
    app.post(
        &format!("/api/v1/points/{user}"),
        &app.user(user),
        &json!({ "amount": amount }),
    )
    .await
}

async fn balance(app: &TestApp, user: i64) -> i64 {
    let r = app
        .get(&format!("/api/v1/points/{user}"), Some(&app.user(user)))
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["balance"].as_i64().unwrap()
}

/// (rows, signed sum, last balance_after) of the user's history.
async fn history_sums(app: &TestApp, user: i64) -> (i64, i64, Option<i64>) {
    sqlx::query_as(
        "SELECT count(*), coalesce(sum(amount), 0)::int8,
                (SELECT balance_after FROM point_history WHERE user_id = $1 ORDER BY entry_id DESC LIMIT 1)
         FROM point_history WHERE user_id = $1",
    )
    .bind(user)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn charge_read_and_refusals() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    let path = format!("/api/v1/points/{u}");

    let fresh: Value = app.get(&path, Some(&app.user(u))).await.json().await.unwrap();
    assert_eq!(
        (fresh["userId"].as_i64(), fresh["balance"].as_i64()),
        (Some(u), Some(0))
    );
    assert!(fresh["updatedAt"].as_str().unwrap().ends_with("+09:00"));

    let r = charge(&app, u, 50_000).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["userId"].as_i64(), body["balance"].as_i64()),
        (Some(u), Some(50_000))
    );

    for bad in [0, -5, 1_000_001] {
        assert_error(charge(&app, u, bad).await, 400, "INVALID_AMOUNT", &path).await;
    }
    let r = app.post(&path, &app.user(u), &json!({"amount": 1.5})).await;
    assert_error(r, 400, "INVALID_REQUEST", &path).await;
    let r = app.post(&path, &app.user(u), &json!({})).await;
    assert_error(r, 400, "INVALID_REQUEST", &path).await;

    // Up to the cap exactly, then nothing more.
    for _ in 0..4 {
        assert_eq!(charge(&app, u, 1_000_000).await.status(), 200);
    }
    assert_eq!(charge(&app, u, 950_000).await.status(), 200);
    assert_eq!(balance(&app, u).await, 5_000_000);
    assert_error(charge(&app, u, 1).await, 409, "POINT_LIMIT_EXCEEDED", &path).await;
    assert_eq!(
        balance(&app, u).await,
        5_000_000,
        "a refused charge changes nothing"
    );
    assert_eq!(history_sums(&app, u).await, (6, 5_000_000, Some(5_000_000)));

    // Nobody by that id.
    let ghost = u + 1_000;
    let gpath = format!("/api/v1/points/{ghost}");
    assert_error(charge(&app, ghost, 10).await, 404, "USER_NOT_FOUND", &gpath).await;
    let r = app.get(&gpath, Some(&app.user(ghost))).await;
    assert_error(r, 404, "USER_NOT_FOUND", &gpath).await;

    // The user themself or an admin.
    let r = app.post(&path, &app.user(u + 1), &json!({"amount": 10})).await;
    assert_error(r, 403, "FORBIDDEN", &path).await;
    let r = app.get(&path, None).await;
    assert_error(r, 401, "UNAUTHORIZED", &path).await;
    let admin = app.get(&path, Some(&app.admin())).await;
    assert_eq!(admin.status(), 200);
}

#[tokio::test]
async fn the_wallet_seed_paths_are_the_same_wallet() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    let r = app
        .post(
            &format!("/api/v1/wallets/{u}/charge"),
            &app.user(u),
            &json!({"amount": 700}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(balance(&app, u).await, 700);
    let w: Value = app
        .get(&format!("/api/v1/wallets/{u}"), Some(&app.user(u)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(w["balance"], 700);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_charges_lose_nothing() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    let answers = join_all((0..200).map(|_| charge(&app, u, 1_000))).await;
    assert!(answers.iter().all(|r| r.status() == 200));
    assert_eq!(balance(&app, u).await, 200_000);
    assert_eq!(history_sums(&app, u).await, (200, 200_000, Some(200_000)));
    let distinct: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT balance_after) FROM point_history WHERE user_id = $1")
            .bind(u)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(distinct, 200, "each charge saw the one before it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_charges_at_the_cap_stop_exactly_there() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    for _ in 0..4 {
        assert_eq!(charge(&app, u, 1_000_000).await.status(), 200);
    }
    assert_eq!(charge(&app, u, 990_000).await.status(), 200);
    let answers = join_all((0..20).map(|_| charge(&app, u, 1_000))).await;
    let ok = answers.iter().filter(|r| r.status() == 200).count();
    let refused = answers.iter().filter(|r| r.status() == 409).count();
    assert_eq!((ok, refused), (10, 10));
    assert_eq!(balance(&app, u).await, 5_000_000);
    assert_eq!(history_sums(&app, u).await, (15, 5_000_000, Some(5_000_000)));
}

#[tokio::test]
async fn the_history_pages_newest_first() {
    let app = TestApp::spawn().await;
    let u = user(&app).await;
    for amount in 1..=5 {
        assert_eq!(charge(&app, u, amount).await.status(), 200);
    }
    let path = format!("/api/v1/points/{u}/history");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{path}?limit=2&cursor={c}"),
            None => format!("{path}?limit=2"),
        };
        let page: Value = app.get(&q, Some(&app.user(u))).await.json().await.unwrap();
        for e in page["items"].as_array().unwrap() {
            assert_eq!(e["type"], "CHARGE");
            seen.push((e["amount"].as_i64().unwrap(), e["balanceAfter"].as_i64().unwrap()));
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, vec![(5, 15), (4, 10), (3, 6), (2, 3), (1, 1)]);
    let bad = app
        .get(&format!("{path}?cursor=not-a-cursor"), Some(&app.user(u)))
        .await;
    assert_error(bad, 400, "INVALID_REQUEST", &path).await;
    let bad = app.get(&format!("{path}?limit=0"), Some(&app.user(u))).await;
    assert_error(bad, 400, "INVALID_REQUEST", &path).await;
}
