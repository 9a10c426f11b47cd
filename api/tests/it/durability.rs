//! Durability modes against Redis servers of the tests' own: `aof` refuses a Redis that does
//! not fsync before replying (at start and after a reconnect), `replica` answers no 201 that a
//! replica did not acknowledge.

use std::time::{Duration, Instant};

use issuance_core::config::Durability;
use serde_json::Value;

use crate::helpers::{Options, RedisServer, TestApp, assert_error, config};

fn with(redis: &RedisServer, durability: Durability) -> Options {
    Options {
        redis_url: Some(redis.url()),
        durability,
        ..Options::default()
    }
}

/// Issues until `pred` holds for the status (at most `limit`); returns the last answer.
async fn issue_until(
    app: &TestApp,
    key: &str,
    user: i64,
    limit: Duration,
    pred: impl Fn(u16) -> bool,
) -> reqwest::Response {
    let started = Instant::now();
    loop {
        let r = app.issue(key, user).await;
        if pred(r.status().as_u16()) || started.elapsed() > limit {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn aof_mode_refuses_a_redis_that_does_not_fsync_before_replying() {
    let redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "everysec"]).await;
    let aof = Durability {
        aof: true,
        ..Durability::default()
    };
    let opts = with(&redis, aof);
    let core = TestApp::fresh_core(&opts).await;

    // At start: the api does not serve, and says why.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let refused = api::run(config(&core, &opts), listener, std::future::pending())
        .await
        .expect_err("an aof api must not start on appendfsync everysec");
    let reason = refused.to_string();
    assert!(
        reason.contains("REDIS_DURABILITY=aof") && reason.contains("appendfsync everysec"),
        "{reason}"
    );

    // With fsync before every reply it serves.
    let _: String = redis
        .cmd(
            "CONFIG",
            vec!["SET".into(), "appendfsync".into(), "always".into()],
        )
        .await;
    let app = TestApp::spawn_on(core, opts).await;
    app.create_event("aof", 10, None).await;
    assert_eq!(app.issue("aof", 1).await.status(), 201);

    // The same server comes back with another setting (a restart, a failover): from the
    // dropped connection until the check after the reconnect passes, nothing is issued.
    let _: String = redis
        .cmd("CONFIG", vec!["SET".into(), "appendfsync".into(), "no".into()])
        .await;
    let _: i64 = redis
        .cmd("CLIENT", vec!["KILL".into(), "TYPE".into(), "normal".into()])
        .await;
    let mut issued = 1;
    let mut user = 100;
    let started = Instant::now();
    loop {
        user += 1;
        let r = app.issue("aof", user).await;
        match r.status().as_u16() {
            201 => issued += 1,
            503 => {
                assert_error(r, 503, "SERVICE_UNAVAILABLE", "/events/aof/tickets").await;
                break;
            }
            other => panic!("answered {other}"),
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still issuing on appendfsync no"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(issued <= 2, "issued {issued} after the connections dropped");
    for _ in 0..5 {
        assert_eq!(app.issue("aof", 2).await.status(), 503);
    }
    let _: String = redis
        .cmd(
            "CONFIG",
            vec!["SET".into(), "appendfsync".into(), "always".into()],
        )
        .await;
    let _: i64 = redis
        .cmd("CLIENT", vec!["KILL".into(), "TYPE".into(), "normal".into()])
        .await;
    let r = issue_until(&app, "aof", 2, Duration::from_secs(10), |s| s == 201).await;
    assert_eq!(r.status(), 201);
    issued += 1;
    assert_eq!(
        app.wait_rows("aof", issued, Duration::from_secs(10)).await,
        issued
    );
}

#[tokio::test]
async fn replica_mode_answers_no_201_a_replica_did_not_acknowledge() {
    let primary = RedisServer::start(&[]).await;
    let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &primary.port.to_string()]).await;
    // The replica is attached and in sync before the test begins.
    let started = Instant::now();
    loop {
        let info: String = primary.cmd("INFO", vec!["replication".into()]).await;
        if info.contains("state=online") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "replica never came online: {info}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let wait = Duration::from_millis(100);
    let opts = with(
        &primary,
        Durability {
            aof: false,
            replicas: 1,
            wait,
        },
    );
    let app = TestApp::spawn_with(opts).await;
    app.create_event("rep", 10, None).await;
    let first = app.issue("rep", 1).await;
    assert_eq!(first.status(), 201);
    let ticket: Value = first.json().await.unwrap();

    // The replica hangs: no answer claims an issue it has not acknowledged, and none waits
    // much beyond the WAIT timeout.
    replica.stop();
    let asked = Instant::now();
    let r = app.issue("rep", 2).await;
    let took = asked.elapsed();
    assert_error(r, 503, "SERVICE_UNAVAILABLE", "/events/rep/tickets").await;
    assert!(took < wait * 10, "answered after {took:?}");
    // A holder asking again is not confirmed either (the held entry is rewritten and waited for).
    assert_eq!(app.issue("rep", 1).await.status(), 503);

    // It resumes: the decisions made meanwhile stand (a retry is 200 with the same ticket), and
    // new issues are confirmed again.
    replica.resume();
    let again = issue_until(&app, "rep", 2, Duration::from_secs(10), |s| s != 503).await;
    assert_eq!(again.status(), 200, "the issue decided during the stop stands");
    let holder: Value = app.issue("rep", 1).await.json().await.unwrap();
    assert_eq!(holder["ticketId"], ticket["ticketId"]);
    assert_eq!(app.issue("rep", 3).await.status(), 201);
    assert_eq!(app.wait_rows("rep", 3, Duration::from_secs(10)).await, 3);
    let held: i64 = replica
        .cmd("HLEN", vec![app.keys.ticket_event("rep").holders])
        .await;
    assert_eq!(held, 3, "the replica holds every issue answered");
}

/// `INFO sentinel` of `s` once it sees `replicas` replicas and the other sentinels.
async fn sentinel_ready(s: &RedisServer, replicas: usize, sentinels: usize) -> bool {
    let info: String = s.cmd("INFO", vec!["sentinel".into()]).await;
    info.contains(&format!("slaves={replicas},sentinels={sentinels}"))
}

/// The primary's port as the sentinel `s` names it.
async fn primary_port(s: &RedisServer) -> u16 {
    let addr: Vec<String> = s
        .cmd(
            "SENTINEL",
            vec!["get-master-addr-by-name".into(), "issuance".into()],
        )
        .await;
    addr[1].parse().unwrap()
}

#[tokio::test]
async fn a_hung_primary_is_left_for_the_promoted_replica_and_no_201_is_lost() {
    use futures::StreamExt;

    let primary = RedisServer::start(&[]).await;
    let port = primary.port.to_string();
    let replicas = [
        RedisServer::start(&["--replicaof", "127.0.0.1", &port]).await,
        RedisServer::start(&["--replicaof", "127.0.0.1", &port]).await,
    ];
    let sentinels = [
        RedisServer::sentinel(primary.port).await,
        RedisServer::sentinel(primary.port).await,
        RedisServer::sentinel(primary.port).await,
    ];
    let started = Instant::now();
    for s in &sentinels {
        while !sentinel_ready(s, 2, 3).await {
            assert!(started.elapsed() < Duration::from_secs(30), "sentinels never met");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let url = format!(
        "redis-sentinel://127.0.0.1:{}?sentinelServiceName=issuance&node=127.0.0.1:{}&node=127.0.0.1:{}",
        sentinels[0].port, sentinels[1].port, sentinels[2].port
    );
    let opts = Options {
        redis_url: Some(url),
        durability: Durability {
            aof: false,
            replicas: 1,
            wait: Duration::from_millis(200),
        },
        ..Options::default()
    };
    let app = TestApp::spawn_with(opts).await;
    app.create_event("hung", 1_000_000, None).await;

    // A burst of fresh users; the primary hangs 2 s in, and resumes 10 s later.
    let t0 = Instant::now();
    let burst = futures::stream::iter(1..)
        .take_while(|_| std::future::ready(t0.elapsed() < Duration::from_secs(16)))
        .map(|user: i64| {
            let app = &app;
            async move {
                let r = app.issue("hung", user).await;
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                (
                    user,
                    status,
                    body["ticketId"].as_str().map(str::to_owned),
                    t0.elapsed(),
                )
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let faults = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        primary.stop();
        let stopped = t0.elapsed();
        let switched = loop {
            if primary_port(&sentinels[0]).await != primary.port {
                break t0.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(t0.elapsed() - stopped)).await;
        primary.resume();
        (stopped, switched)
    };
    let (results, (stopped, switched)) = tokio::join!(burst, faults);

    let ok: Vec<_> = results.iter().filter(|r| r.1 == 201).collect();
    let unavailable = results.iter().filter(|r| r.1 == 503).count();
    assert!(
        results.iter().all(|r| r.1 == 201 || r.1 == 503),
        "only 201 or 503: {:?}",
        results
            .iter()
            .filter(|r| r.1 != 201 && r.1 != 503)
            .take(3)
            .collect::<Vec<_>>()
    );
    let first_after = ok
        .iter()
        .map(|r| r.3)
        .filter(|at| *at > switched)
        .min()
        .expect("issues resume on the promoted replica");
    eprintln!(
        "hung primary: stopped at {stopped:?}, switch at {switched:?} (+{:?}), first 201 after it +{:?}; \
         {} × 201, {unavailable} × 503",
        switched - stopped,
        first_after - switched,
        ok.len()
    );
    // The pool follows the switch while the old primary still hangs (a client that waits for
    // an error would stay on it until it resumes, 10 s after the stop, and then write to it).
    assert!(
        first_after < stopped + Duration::from_secs(9),
        "issuing resumed {:?} after the switch, only once the old primary was back",
        first_after - switched
    );

    // Every 201 is held on the new primary with its ticket, and in Postgres exactly once.
    let promoted = primary_port(&sentinels[0]).await;
    let new_primary = replicas
        .iter()
        .find(|r| r.port == promoted)
        .expect("a replica was promoted");
    let holders = app.keys.ticket_event("hung").holders;
    for (user, _, ticket, _) in &ok {
        let held: Option<String> = new_primary
            .cmd("HGET", vec![holders.clone(), user.to_string()])
            .await;
        let held = held.unwrap_or_else(|| panic!("user {user} got 201 but holds nothing"));
        assert_eq!(held.split('|').next(), ticket.as_deref(), "user {user}");
    }
    let issued: i64 = new_primary.cmd("HLEN", vec![holders]).await;
    assert_eq!(
        app.wait_rows("hung", issued, Duration::from_secs(20)).await,
        issued
    );
    let answered: std::collections::HashSet<&str> = ok.iter().filter_map(|r| r.2.as_deref()).collect();
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets WHERE event_key = 'hung' AND ticket_id::text = ANY($1)",
    )
    .bind(answered.iter().map(|t| t.to_string()).collect::<Vec<_>>())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        rows as usize,
        answered.len(),
        "every 201 in Postgres exactly once"
    );
}

#[tokio::test]
async fn aof_keeps_every_answered_issue_through_redis_being_killed() {
    use std::collections::HashMap;

    use futures::StreamExt;

    use crate::coupons::{self, Setup};

    let mut redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let aof = Durability {
        aof: true,
        ..Durability::default()
    };
    let app = TestApp::spawn_with(with(&redis, aof)).await;
    app.create_event("kill", 100_000, None).await;
    let (_, batch) = coupons::batch(
        &app,
        Setup {
            count: 100_000,
            ..Setup::default()
        },
    )
    .await;

    // Ten rounds of 200 users, each asking for a ticket and a coupon (2,000 of each in all);
    // Redis is SIGKILLed in the middle of each round and restarted from its AOF.
    let mut tickets: HashMap<i64, String> = HashMap::new();
    let mut coupons_held: HashMap<i64, i64> = HashMap::new();
    let mut refused = 0;
    for round in 0..10 {
        let users = (round * 200 + 1)..=(round * 200 + 200);
        let burst = futures::stream::iter(users)
            .map(|user| {
                let app = &app;
                async move {
                    let t = app.issue("kill", user).await;
                    let t = (
                        t.status().as_u16(),
                        t.json::<Value>().await.unwrap_or(Value::Null),
                    );
                    let c = coupons::issue(app, batch, user).await;
                    let c = (
                        c.status().as_u16(),
                        c.json::<Value>().await.unwrap_or(Value::Null),
                    );
                    (user, t, c)
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>();
        let kill = async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            redis.kill_and_restart().await;
        };
        let (answers, ()) = tokio::join!(burst, kill);
        for (user, (ts, tb), (cs, cb)) in answers {
            // A call whose answer the kill cut off is sent again after the reconnect, and the
            // restarted Redis, which kept its decision, finds the user holding: a ticket's 200
            // or a coupon's COUPON_ALREADY_ISSUED, with the id the first call issued.
            match ts {
                201 | 200 => {
                    tickets.insert(user, tb["ticketId"].as_str().unwrap().to_owned());
                }
                503 => refused += 1,
                other => panic!("ticket answered {other}: {tb}"),
            }
            match cs {
                201 => {
                    coupons_held.insert(user, cb["couponIssueId"].as_i64().unwrap());
                }
                409 if cb["code"] == "COUPON_ALREADY_ISSUED" => {
                    coupons_held.insert(user, cb["couponIssueId"].as_i64().unwrap());
                }
                503 => refused += 1,
                other => panic!("coupon answered {other}: {cb}"),
            }
        }
    }
    eprintln!(
        "aof kills: {} tickets and {} coupons answered with their id, {refused} answers 503",
        tickets.len(),
        coupons_held.len()
    );
    assert!(
        tickets.len() > 1_000 && coupons_held.len() > 1_000,
        "the bursts mostly succeeded"
    );

    // Every answer that named an issue survived the kills: held with the same ticket or position.
    let ticket_holders = app.keys.ticket_event("kill").holders;
    let coupon_holders = app.keys.coupon_batch(batch).holders;
    for (user, ticket) in &tickets {
        let held: Option<String> = redis
            .cmd("HGET", vec![ticket_holders.clone(), user.to_string()])
            .await;
        assert_eq!(
            held.as_deref().and_then(|h| h.split('|').next()),
            Some(ticket.as_str()),
            "user {user}"
        );
    }
    for (user, id) in &coupons_held {
        let held: Option<String> = redis
            .cmd("HGET", vec![coupon_holders.clone(), user.to_string()])
            .await;
        let position: i64 = held
            .as_deref()
            .and_then(|h| h.split('|').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(*id, batch * 10_000_000 + position, "user {user}");
    }
    // Postgres ends with what Redis holds (the 201s, and the issues whose answers the kills
    // cut off, which a retry gets), each once, no position twice.
    let issued: i64 = redis.cmd("HLEN", vec![ticket_holders]).await;
    assert_eq!(
        app.wait_rows("kill", issued, Duration::from_secs(30)).await,
        issued
    );
    let positions: i64 = redis.cmd("HLEN", vec![coupon_holders]).await;
    // Ten kills leave the drain's pool in its reconnect backoff (up to 5 s) once more at the
    // end; on two busy cores the rows take their time.
    assert_eq!(
        coupons::wait_coupon_rows_within(&app, batch, positions, Duration::from_secs(30)).await,
        positions
    );
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT seq) FROM coupon_issues WHERE batch_id = $1")
            .bind(batch)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((rows, distinct), (positions, positions), "no position twice");
    let mut expected: Vec<i64> = coupons_held.values().copied().collect();
    expected.sort_unstable();
    let stored: Vec<i64> = sqlx::query_scalar(
        "SELECT coupon_issue_id FROM coupon_issues WHERE coupon_issue_id = ANY($1) ORDER BY 1",
    )
    .bind(&expected)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, expected, "every coupon answered 201 is in Postgres");
}
