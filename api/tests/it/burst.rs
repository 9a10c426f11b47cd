//! Bursts: many users, each pressing twice at once, against a small quantity.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use futures::{StreamExt, stream};
use serde_json::{Value, json};

use crate::helpers::{ApiProcess, TestApp};

/// Fires `users` users at `bases` (round-robin), each sending two requests at once; returns
/// every (user, status, body).
pub(crate) async fn burst(app: &TestApp, bases: &[String], key: &str, users: i64) -> Vec<(i64, u16, Value)> {
    burst_of(app, bases, key, 1..=users).await
}

/// [`burst`] by the users `users`.
pub(crate) async fn burst_of(
    app: &TestApp,
    bases: &[String],
    key: &str,
    users: std::ops::RangeInclusive<i64>,
) -> Vec<(i64, u16, Value)> {
    press_twice(app, users, |user, n| {
        format!(
            "{}/events/{key}/tickets",
            bases[(user as usize + n) % bases.len()]
        )
    })
    .await
}

/// Users `users`, each sending `{"userId": user}` with a token of their own twice at once, to
/// `url(user, 0)` and `url(user, 1)`; returns every (user, status, body).
pub(crate) async fn press_twice(
    app: &TestApp,
    users: std::ops::RangeInclusive<i64>,
    url: impl Fn(i64, usize) -> String,
) -> Vec<(i64, u16, Value)> {
    let jobs = users.map(|user| {
        let (http, token, urls) = (app.http.clone(), app.user(user), [url(user, 0), url(user, 1)]);
        async move {
            let send = |url: &str| {
                http.post(url)
                    .bearer_auth(&token)
                    .json(&json!({ "userId": user }))
                    .send()
            };
            let (a, b) = tokio::join!(send(&urls[0]), send(&urls[1]));
            let mut out = Vec::new();
            for r in [a, b] {
                let r = r.expect("request completes");
                let status = r.status().as_u16();
                out.push((user, status, r.json::<Value>().await.unwrap()));
            }
            out
        }
    });
    stream::iter(jobs)
        .buffer_unordered(200)
        .flat_map(stream::iter)
        .collect()
        .await
}

/// Asserts the outcome of a burst on an event of `quantity`: exactly `quantity` 201s, a
/// winner's two answers carry one ticket, everyone else 409 SOLD_OUT.
async fn assert_exact(app: &TestApp, key: &str, answers: &[(i64, u16, Value)], quantity: usize) {
    let created = answers.iter().filter(|(_, s, _)| *s == 201).count();
    assert_eq!(created, quantity, "exactly {quantity} answers of 201");
    let mut per_user: HashMap<i64, Vec<&(i64, u16, Value)>> = HashMap::new();
    for a in answers {
        per_user.entry(a.0).or_default().push(a);
    }
    let mut winners = HashSet::new();
    for (user, pair) in &per_user {
        let statuses: Vec<u16> = pair.iter().map(|a| a.1).collect();
        if statuses.iter().any(|s| *s == 201 || *s == 200) {
            assert!(
                statuses.contains(&201),
                "user {user} got a ticket without a 201: {statuses:?}"
            );
            assert!(
                statuses.iter().all(|s| *s == 201 || *s == 200),
                "user {user}: {statuses:?}"
            );
            let ids: HashSet<&str> = pair.iter().map(|a| a.2["ticketId"].as_str().unwrap()).collect();
            assert_eq!(ids.len(), 1, "user {user} got two different tickets");
            winners.insert(*user);
        } else {
            for a in pair {
                assert_eq!(a.1, 409, "user {user}: {}", a.2);
                assert_eq!(a.2["code"], "SOLD_OUT");
            }
        }
    }
    assert_eq!(winners.len(), quantity);
    let rows = app.wait_rows(key, quantity as i64, Duration::from_secs(10)).await;
    assert_eq!(rows, quantity as i64, "Postgres holds exactly the issued tickets");
    let holders: i64 = app
        .redis_cmd("HLEN", vec![app.keys.ticket_event(key).holders])
        .await;
    assert_eq!(holders, quantity as i64);
}

#[tokio::test]
async fn burst_of_1000_users_pressing_twice_gets_exactly_100() {
    let app = TestApp::spawn().await;
    app.create_event("burst", 100, None).await;
    let answers = burst(&app, std::slice::from_ref(&app.base), "burst", 1_000).await;
    assert_eq!(answers.len(), 2_000);
    assert_exact(&app, "burst", &answers, 100).await;
    let status: Value = app.get("/events/burst", None).await.json().await.unwrap();
    assert_eq!(status["remainingQuantity"], 0);
}

#[tokio::test]
async fn two_api_processes_share_one_quantity() {
    let app = TestApp::spawn().await;
    app.create_event("shared", 50, None).await;
    let a = ApiProcess::start(&app.core).await;
    let b = ApiProcess::start(&app.core).await;
    let answers = burst(&app, &[a.base.clone(), b.base.clone()], "shared", 400).await;
    assert_exact(&app, "shared", &answers, 50).await;
}
