//! Several processes serving one system, as an opening runs it: three api processes behind
//! nginx (`ops/nginx/nginx.conf`) and two workers processes, on a Redis Cluster of the test's
//! own. Every invariant holds, the load spreads over the processes, and a user's rate limit
//! stays that user's.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use futures::StreamExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{
    cluster::Cluster,
    coupons::{self, Setup},
    helpers::{ApiProcess, Nginx, Options, TestApp, WorkersProcess},
};

/// Issue requests the api process at `base` has answered so far, by its own metrics.
async fn issue_requests(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("http_requests_total{") && l.contains("method=\"POST\""))
        .filter(|l| l.contains("/tickets\"") || l.contains("/issue\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn three_api_and_two_workers_processes_behind_nginx_keep_every_invariant() {
    let cluster = Cluster::start(1).await;
    let opts = Options {
        redis_url: Some(cluster.url()),
        // The two workers processes drain.
        drain: false,
        ..Options::default()
    };
    let core = TestApp::fresh_core(&opts).await;
    let limits = [("RATE_LIMIT_USER_PER_SEC", "1"), ("RATE_LIMIT_USER_BURST", "10")];
    let mut apis = Vec::new();
    for _ in 0..3 {
        apis.push(ApiProcess::start_with(&core, &limits).await);
    }
    let _workers = [WorkersProcess::start(&core), WorkersProcess::start(&core)];
    let upstreams: Vec<String> = apis
        .iter()
        .map(|a| a.base.trim_start_matches("http://").to_owned())
        .collect();
    let nginx = Nginx::start(&upstreams).await;
    let app = TestApp::attach(core.clone(), opts, nginx.base.clone(), CancellationToken::new()).await;

    // An opening through the load balancer: 1,500 users for 400 tickets and 300 coupons, each
    // user pressing both buttons twice at once, 64 requests in flight.
    app.create_event("spread", 400, None).await;
    let (_, batch) = coupons::batch(
        &app,
        Setup {
            count: 300,
            ..Setup::default()
        },
    )
    .await;
    let asks = (1..=1_500i64).flat_map(|user| [(user, true), (user, true), (user, false), (user, false)]);
    let answers: Vec<(i64, bool, u16, Value)> = futures::stream::iter(asks)
        .map(|(user, ticket)| {
            let app = &app;
            async move {
                let r = if ticket {
                    app.issue("spread", user).await
                } else {
                    coupons::issue(app, batch, user).await
                };
                let status = r.status().as_u16();
                (user, ticket, status, r.json().await.unwrap_or(Value::Null))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;

    // Exactly the quantity, one per user, every id once, and a user's two answers agree.
    let mut tickets: HashMap<i64, String> = HashMap::new();
    let mut coupons_held: HashMap<i64, i64> = HashMap::new();
    for (user, ticket, status, body) in &answers {
        match (ticket, status) {
            (true, 200 | 201) => {
                let id = body["ticketId"].as_str().unwrap().to_owned();
                assert_eq!(
                    tickets.entry(*user).or_insert_with(|| id.clone()),
                    &id,
                    "user {user}: two tickets"
                );
            }
            (false, 201) => {
                let id = body["couponIssueId"].as_i64().unwrap();
                assert!(
                    coupons_held.insert(*user, id).is_none(),
                    "user {user}: two coupons"
                );
            }
            (true, 409) => assert_eq!(body["code"], "SOLD_OUT", "{body}"),
            (false, 409) => assert!(
                ["COUPON_SOLD_OUT", "COUPON_ALREADY_ISSUED"].contains(&body["code"].as_str().unwrap_or("")),
                "{body}"
            ),
            other => panic!("user {user}: unexpected {other:?} {body}"),
        }
    }
    assert_eq!(tickets.len(), 400, "every ticket issued, none more");
    assert_eq!(coupons_held.len(), 300, "every coupon issued, none more");
    let distinct: HashSet<&String> = tickets.values().collect();
    assert_eq!(distinct.len(), 400, "no ticket id twice");
    let positions: HashSet<&i64> = coupons_held.values().collect();
    assert_eq!(positions.len(), 300, "no coupon position twice");

    // The load spread over the three processes.
    let mut served = Vec::new();
    for api in &apis {
        served.push(issue_requests(&api.base).await);
    }
    eprintln!("issue requests per api process: {served:?}");
    assert!(
        served.iter().all(|n| *n >= 6_000 / 3 / 2),
        "every process took a fair share of 6,000: {served:?}"
    );

    // The two drains persist everything once; the invariants hold.
    assert_eq!(app.wait_rows("spread", 400, Duration::from_secs(30)).await, 400);
    let limit = Duration::from_secs(30);
    assert_eq!(
        coupons::wait_coupon_rows_within(&app, batch, 300, limit).await,
        300
    );
    let check = WorkersProcess::run_once(&core, &["check"]);
    assert!(
        check.status.success(),
        "workers check: {}",
        String::from_utf8_lossy(&check.stdout)
    );

    // One user's requests all reach one process (nginx hashes the token), so their limit is
    // the one configured: a burst of 10, then 1 a second. Spread over three processes they
    // would get three bursts. nginx takes an upstream out for fail_timeout (2 s) after one
    // error, and the user's hash then falls on another process; on a loaded machine the burst
    // above can cause one, so the check starts once any such mark has lapsed. A mark can still
    // fall within the check (a kept-alive connection to the api closing as nginx reuses it), so
    // a second user gets a second try after another lapse: a hash that does not pin users lets
    // about three bursts through on both tries.
    let mut tries = Vec::new();
    for user in [77_777, 77_778] {
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        let started = Instant::now();
        let mut allowed = 0;
        for _ in 0..40 {
            if app.issue("spread", user).await.status() != 429 {
                allowed += 1;
            }
        }
        let refill = started.elapsed().as_secs() + 1;
        eprintln!(
            "user {user}, 40 requests through nginx in {:?}: {allowed} not limited",
            started.elapsed()
        );
        tries.push(allowed);
        if allowed <= 10 + refill {
            return;
        }
    }
    panic!("{tries:?} of 40 let through: the user's limit was multiplied by the processes");
}
