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
pub(crate) async fn issue_until(
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
    // Long enough that a healthy replica on a busy machine acknowledges in time.
    let wait = Duration::from_millis(1000);
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

/// A primary, its replicas and three sentinels (quorum 2, down after 1 s), all met.
struct Layout {
    primary: RedisServer,
    replicas: Vec<RedisServer>,
    sentinels: Vec<RedisServer>,
}

impl Layout {
    async fn start(replicas: usize) -> Self {
        // Full syncs start at once (the default waits 5 s for more replicas to come).
        let quick = ["--repl-diskless-sync-delay", "0"];
        let primary = RedisServer::start(&quick).await;
        let port = primary.port.to_string();
        let mut started = Vec::new();
        for _ in 0..replicas {
            let args = [&quick[..], &["--replicaof", "127.0.0.1", &port]].concat();
            started.push(RedisServer::start(&args).await);
        }
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            sentinels.push(RedisServer::sentinel(primary.port).await);
        }
        let since = Instant::now();
        loop {
            let info: String = primary.cmd("INFO", vec!["replication".into()]).await;
            if info.matches("state=online").count() == replicas {
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "replicas never synced: {info}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for s in &sentinels {
            while !sentinel_ready(s, replicas, 3).await {
                assert!(since.elapsed() < Duration::from_secs(30), "sentinels never met");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Self {
            primary,
            replicas: started,
            sentinels,
        }
    }

    /// An api in replica mode (one replica, 200 ms) that finds the primary through the sentinels.
    fn options(&self) -> Options {
        let nodes: Vec<String> = self.sentinels[1..]
            .iter()
            .map(|s| format!("&node=127.0.0.1:{}", s.port))
            .collect();
        Options {
            redis_url: Some(format!(
                "redis-sentinel://127.0.0.1:{}?sentinelServiceName=issuance{}",
                self.sentinels[0].port,
                nodes.concat()
            )),
            durability: Durability {
                aof: false,
                replicas: 1,
                wait: Duration::from_millis(200),
            },
            ..Options::default()
        }
    }

    /// When the sentinels name another primary than the first (polled from `t0`).
    async fn switched(&self, t0: Instant) -> Duration {
        loop {
            if primary_port(&self.sentinels[0]).await != self.primary.port {
                return t0.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The node the sentinels name as primary now: the replica they promoted, or — when a
    /// busy machine made them fail over once more (down-after is 1 s) — the node that
    /// replicated it since. Every 201 must be held there either way.
    async fn current_primary(&self) -> &RedisServer {
        let port = primary_port(&self.sentinels[0]).await;
        self.replicas
            .iter()
            .chain(std::iter::once(&self.primary))
            .find(|r| r.port == port)
            .expect("the sentinels name one of the nodes")
    }
}

/// One answer of a burst: user, status, ticket id, when it was asked and how long it took.
pub(crate) struct Answer {
    pub user: i64,
    pub status: u16,
    pub ticket: Option<String>,
    pub asked: Duration,
    pub took: Duration,
}

impl Answer {
    /// When the answer arrived, from the burst's start.
    fn answered(&self) -> Duration {
        self.asked + self.took
    }
}

/// When the first of these 201s that arrived after `t` arrived: issuing resumed.
pub(crate) fn first_answered_after(ok: &[&Answer], t: Duration) -> Duration {
    ok.iter()
        .map(|a| a.answered())
        .filter(|at| *at > t)
        .min()
        .expect("issues resume on the promoted replica")
}

/// When the first of these 201s asked after `t` arrived: issuing was back for new requests.
pub(crate) fn first_asked_after(ok: &[&Answer], t: Duration) -> Duration {
    ok.iter()
        .filter(|a| a.asked > t)
        .map(|a| a.answered())
        .min()
        .expect("issues resume on the promoted replica")
}

/// The longest a 503 of the burst took.
pub(crate) fn slowest_refusal(answers: &[Answer]) -> Duration {
    answers
        .iter()
        .filter(|a| a.status == 503)
        .map(|a| a.took)
        .max()
        .unwrap_or_default()
}

/// Fresh users asking `key` for a ticket, 16 at a time, for `length` from `t0`.
pub(crate) async fn burst(app: &TestApp, key: &str, t0: Instant, length: Duration) -> Vec<Answer> {
    use futures::StreamExt;

    futures::stream::iter(1..)
        .take_while(|_| std::future::ready(t0.elapsed() < length))
        .map(|user: i64| async move {
            let asked = t0.elapsed();
            let r = app.issue(key, user).await;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            Answer {
                user,
                status,
                ticket: body["ticketId"].as_str().map(str::to_owned),
                asked,
                took: t0.elapsed() - asked,
            }
        })
        .buffer_unordered(16)
        .collect()
        .await
}

/// Only 201 and 503 were answered, and every 201 is held with its ticket on `primary` and in
/// Postgres exactly once, with nothing else. Returns the 201s.
pub(crate) async fn every_201_kept<'a>(
    app: &TestApp,
    key: &str,
    primary: &RedisServer,
    answers: &'a [Answer],
) -> Vec<&'a Answer> {
    let others: Vec<_> = answers
        .iter()
        .filter(|a| a.status != 201 && a.status != 503)
        .map(|a| (a.user, a.status))
        .take(3)
        .collect();
    assert!(others.is_empty(), "only 201 or 503: {others:?}");
    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    let holders = app.keys.ticket_event(key).holders;
    for a in &ok {
        let held: Option<String> = primary
            .cmd("HGET", vec![holders.clone(), a.user.to_string()])
            .await;
        let held = held.unwrap_or_else(|| panic!("user {} got 201 but holds nothing", a.user));
        assert_eq!(held.split('|').next(), a.ticket.as_deref(), "user {}", a.user);
    }
    let issued: i64 = primary.cmd("HLEN", vec![holders]).await;
    assert_eq!(
        app.wait_rows(key, issued, Duration::from_secs(20)).await,
        issued,
        "Postgres holds what Redis holds"
    );
    let answered: Vec<String> = ok.iter().filter_map(|a| a.ticket.clone()).collect();
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE event_key = $1 AND ticket_id::text = ANY($2)")
            .bind(key)
            .bind(&answered)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(rows as usize, ok.len(), "every 201 in Postgres exactly once");
    ok
}

#[tokio::test]
async fn a_hung_primary_is_left_for_the_promoted_replica_and_no_201_is_lost() {
    let layout = Layout::start(2).await;
    let app = TestApp::spawn_with(layout.options()).await;
    app.create_event("hung", 1_000_000, None).await;

    // A burst of fresh users; the primary hangs 2 s in, and resumes 10 s later.
    let t0 = Instant::now();
    let faults = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        layout.primary.stop();
        let stopped = t0.elapsed();
        let switched = layout.switched(t0).await;
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(t0.elapsed() - stopped)).await;
        layout.primary.resume();
        (stopped, switched)
    };
    let (answers, (stopped, switched)) =
        tokio::join!(burst(&app, "hung", t0, Duration::from_secs(16)), faults);

    let ok = every_201_kept(&app, "hung", layout.current_primary().await, &answers).await;
    let first_after = first_answered_after(&ok, switched);
    eprintln!(
        "hung primary: stopped at {stopped:?}, switch at {switched:?} (+{:?}), first 201 after it +{:?}; \
         {} × 201, {} × 503",
        switched - stopped,
        first_after - switched,
        ok.len(),
        answers.len() - ok.len()
    );
    // The pool follows the switch while the old primary still hangs (a client that waits for
    // an error would stay on it until it resumes, 10 s after the stop, and then write to it).
    assert!(
        first_after < stopped + Duration::from_secs(9),
        "issuing resumed {:?} after the switch, only once the old primary was back",
        first_after - switched
    );
}

#[tokio::test]
async fn a_killed_primary_is_followed_to_the_promoted_replica_and_no_201_is_lost() {
    let mut layout = Layout::start(1).await;
    let app = TestApp::spawn_with(layout.options()).await;
    app.create_event("killed", 1_000_000, None).await;

    // A burst of fresh users; the primary is SIGKILLed 2 s in. Once the sentinels have promoted
    // the replica, the old one is started again as its replica (as a start script that asks the
    // sentinels first would): in replica mode with one replica, nothing can be confirmed until
    // a replica is back.
    let t0 = Instant::now();
    let faults = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        layout.primary.kill();
        let killed = t0.elapsed();
        let switched = layout.switched(t0).await;
        let promoted = primary_port(&layout.sentinels[0]).await.to_string();
        layout
            .primary
            .restart_with(&["--replicaof", "127.0.0.1", &promoted])
            .await;
        (killed, switched)
    };
    let (answers, (killed, switched)) =
        tokio::join!(burst(&app, "killed", t0, Duration::from_secs(12)), faults);

    let ok = every_201_kept(&app, "killed", layout.current_primary().await, &answers).await;
    let back = first_asked_after(&ok, killed);
    let slowest_refusal = slowest_refusal(&answers);
    eprintln!(
        "killed primary: switch {:?} after the kill, issuing again {:?} after it; {} × 201, \
         {} × 503, slowest 503 {slowest_refusal:?}",
        switched - killed,
        back - killed,
        ok.len(),
        answers.len() - ok.len()
    );
    // Requests during the switch are refused, not held until the request timeout (15 s).
    assert!(
        slowest_refusal < Duration::from_secs(10),
        "a 503 took {slowest_refusal:?}"
    );
}

#[tokio::test]
async fn a_script_cache_lost_mid_burst_is_loaded_again_without_failing_a_request() {
    use futures::StreamExt;

    let redis = RedisServer::start(&[]).await;
    let app = TestApp::spawn_with(with(&redis, Durability::default())).await;
    app.create_event("noscript", 1_000_000, None).await;
    let flushes = async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _: String = redis.cmd("SCRIPT", vec!["FLUSH".into()]).await;
        }
    };
    let asks = futures::stream::iter(1..=1_000)
        .map(|user| {
            let app = &app;
            async move { app.issue("noscript", user).await.status().as_u16() }
        })
        .buffer_unordered(16)
        .collect::<Vec<u16>>();
    let (statuses, ()) = tokio::join!(asks, flushes);
    assert!(statuses.iter().all(|s| *s == 201), "every request issued");
    assert_eq!(
        app.wait_rows("noscript", 1_000, Duration::from_secs(20)).await,
        1_000
    );
}

/// What the users of [`kill_rounds`] were answered: the ticket id or the coupon issue id each
/// was told they hold, and how many answers were 503.
#[derive(Default)]
struct Told {
    tickets: std::collections::HashMap<i64, String>,
    coupons: std::collections::HashMap<i64, i64>,
    refused: usize,
    sold_out: usize,
}

/// Ten rounds of 200 users, each asking event "kill" for a ticket and `batch` for a coupon
/// (2,000 of each in all); Redis is SIGKILLed in the middle of each round and restarted.
async fn kill_rounds(app: &TestApp, redis: &mut RedisServer, batch: i64) -> Told {
    use futures::StreamExt;

    use crate::coupons;

    let mut told = Told::default();
    for round in 0..10 {
        let users = (round * 200 + 1)..=(round * 200 + 200);
        let burst = futures::stream::iter(users)
            .map(|user| async move {
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
            })
            .buffer_unordered(32)
            .collect::<Vec<_>>();
        let kill = async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            redis.kill_and_restart().await;
        };
        let (answers, ()) = tokio::join!(burst, kill);
        for (user, (ts, tb), (cs, cb)) in answers {
            // A call whose answer the kill cut off is sent again after the reconnect; if the
            // restarted Redis kept its decision, it finds the user holding: a ticket's 200 or
            // a coupon's COUPON_ALREADY_ISSUED, with the id the first call issued.
            match ts {
                201 | 200 => {
                    told.tickets
                        .insert(user, tb["ticketId"].as_str().unwrap().to_owned());
                }
                409 if tb["code"] == "SOLD_OUT" => told.sold_out += 1,
                503 => told.refused += 1,
                other => panic!("ticket answered {other}: {tb}"),
            }
            match cs {
                201 => {
                    told.coupons.insert(user, cb["couponIssueId"].as_i64().unwrap());
                }
                409 if cb["code"] == "COUPON_ALREADY_ISSUED" => {
                    told.coupons.insert(user, cb["couponIssueId"].as_i64().unwrap());
                }
                409 if cb["code"] == "COUPON_SOLD_OUT" => told.sold_out += 1,
                503 => told.refused += 1,
                other => panic!("coupon answered {other}: {cb}"),
            }
        }
    }
    told
}

/// The Redis copies of event "kill" and of `batch` over `shards` buckets (each itself for 1).
fn kill_copies(batch: i64, shards: u16) -> (Vec<engine::scope::Scope>, Vec<engine::scope::Scope>) {
    use engine::scope::Scope;

    let event = issuance_core::ids::EventKey::parse("kill").unwrap();
    let whole = |buckets: Vec<Scope>, whole: Scope| if buckets.is_empty() { vec![whole] } else { buckets };
    (
        whole(Scope::buckets(&event, shards), Scope::Ticket(event.clone())),
        whole(Scope::coupon_buckets(batch, shards), Scope::Coupon(batch)),
    )
}

/// Holders over `copies` on `redis`.
async fn held(app: &TestApp, redis: &RedisServer, copies: &[engine::scope::Scope]) -> i64 {
    let mut sum = 0;
    for copy in copies {
        let n: i64 = redis.cmd("HLEN", vec![copy.keys(&app.keys).holders]).await;
        sum += n;
    }
    sum
}

/// Postgres ends with exactly what Redis holds for event "kill" and `batch` (over `shards`
/// buckets each), each once, no position twice.
async fn postgres_is_redis(app: &TestApp, redis: &RedisServer, batch: i64, shards: u16) {
    use crate::coupons;

    let (events, batches) = kill_copies(batch, shards);
    let issued = held(app, redis, &events).await;
    assert_eq!(
        app.wait_rows("kill", issued, Duration::from_secs(30)).await,
        issued
    );
    let positions = held(app, redis, &batches).await;
    // Ten kills leave the drain's pool in its reconnect backoff (up to 5 s) once more at the
    // end; on two busy cores the rows take their time.
    assert_eq!(
        coupons::wait_coupon_rows_within(app, batch, positions, Duration::from_secs(30)).await,
        positions
    );
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT seq) FROM coupon_issues WHERE batch_id = $1")
            .bind(batch)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!((rows, distinct), (positions, positions), "no position twice");
}

/// Of the ids `told`, those Postgres holds for the same user.
async fn persisted(app: &TestApp, batch: i64, told: &Told) -> (usize, usize) {
    let tickets: Vec<(i64, String)> =
        sqlx::query_as("SELECT user_id, ticket_id::text FROM tickets WHERE event_key = 'kill'")
            .fetch_all(&app.db)
            .await
            .unwrap();
    let coupons: Vec<(i64, i64)> =
        sqlx::query_as("SELECT user_id, coupon_issue_id FROM coupon_issues WHERE batch_id = $1")
            .bind(batch)
            .fetch_all(&app.db)
            .await
            .unwrap();
    (
        tickets
            .iter()
            .filter(|(u, t)| told.tickets.get(u) == Some(t))
            .count(),
        coupons
            .iter()
            .filter(|(u, c)| told.coupons.get(u) == Some(c))
            .count(),
    )
}

/// An app on `redis`, event "kill" and a batch, each of `quantity` over `shards` buckets.
async fn kill_setup(
    redis: &RedisServer,
    durability: Durability,
    quantity: i64,
    shards: u16,
) -> (TestApp, i64) {
    use crate::coupons::{self, Setup};

    let app = TestApp::spawn_with(with(redis, durability)).await;
    crate::shards::create(&app, "kill", quantity, i64::from(shards)).await;
    let (_, batch) = coupons::batch(
        &app,
        Setup {
            count: quantity,
            shards: i64::from(shards),
            ..Setup::default()
        },
    )
    .await;
    (app, batch)
}

#[tokio::test]
async fn aof_keeps_every_answered_issue_through_redis_being_killed() {
    let mut redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]).await;
    let aof = Durability {
        aof: true,
        ..Durability::default()
    };
    let (app, batch) = kill_setup(&redis, aof, 100_000, 1).await;
    let told = kill_rounds(&app, &mut redis, batch).await;
    eprintln!(
        "aof kills: {} tickets and {} coupons answered with their id, {} answers 503",
        told.tickets.len(),
        told.coupons.len(),
        told.refused
    );
    // Enough answers to check (how many depends on the disk's fsync rate, not on a guarantee).
    assert!(
        told.tickets.len() > 300 && told.coupons.len() > 300,
        "the bursts issued too little to check anything"
    );

    // Every answer that named an issue survived the kills: held with the same ticket or position.
    let ticket_holders = app.keys.ticket_event("kill").holders;
    let coupon_holders = app.keys.coupon_batch(batch).holders;
    for (user, ticket) in &told.tickets {
        let held: Option<String> = redis
            .cmd("HGET", vec![ticket_holders.clone(), user.to_string()])
            .await;
        assert_eq!(
            held.as_deref().and_then(|h| h.split('|').next()),
            Some(ticket.as_str()),
            "user {user}"
        );
    }
    for (user, id) in &told.coupons {
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
    // cut off, which a retry gets), each once, no position twice: every answer is in it.
    postgres_is_redis(&app, &redis, batch, 1).await;
    assert_eq!(
        persisted(&app, batch, &told).await,
        (told.tickets.len(), told.coupons.len()),
        "every answered issue is in Postgres"
    );

    // Visible soon after an outage: Redis down for three seconds (every pool and the drain
    // back off meanwhile), then issues answered after it comes back reach Postgres within a
    // second of its return.
    redis.kill();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.restart().await;
    let back = Instant::now();
    let before = app.ticket_rows("kill").await;
    for user in 5_001..=5_020 {
        let r = issue_until(&app, "kill", user, Duration::from_secs(10), |s| s != 503).await;
        assert_eq!(r.status(), 201);
    }
    let answered = back.elapsed();
    assert_eq!(
        app.wait_rows("kill", before + 20, Duration::from_secs(10)).await,
        before + 20
    );
    eprintln!(
        "after a 3 s outage: 20 issues answered {:.2} s after Redis answered again, all in Postgres {:.2} s after it",
        answered.as_secs_f64(),
        back.elapsed().as_secs_f64()
    );
}

#[tokio::test]
async fn memory_mode_loses_answers_but_never_answers_a_unit_or_position_twice() {
    memory_kills(1).await;
}

#[tokio::test]
async fn memory_mode_over_buckets_never_answers_a_unit_or_position_twice() {
    memory_kills(3).await;
}

/// 2,000 users each ask for one of 1,500 tickets and one of 1,500 coupons (event and batch
/// over `shards` buckets), through ten kills of a Redis without persistence.
async fn memory_kills(shards: u16) {
    const QUANTITY: usize = 1_500;
    let mut redis = RedisServer::start(&[]).await;
    let (app, batch) = kill_setup(&redis, Durability::default(), QUANTITY as i64, shards).await;
    let told = kill_rounds(&app, &mut redis, batch).await;
    // The copies lost with the last kill are rebuilt now (as `workers reconcile --repair`
    // does), rather than by whichever request reaches Redis next: after a sell-out most are
    // answered from memory.
    let engine = app.engine();
    let (events, batches) = kill_copies(batch, shards);
    for scope in events.iter().chain(&batches) {
        assert!(engine.repair(scope).await.unwrap(), "{scope:?} exists");
    }
    // Whatever was lost, what is left is consistent: Redis was rebuilt from Postgres before
    // any decision after each restart, so Postgres holds exactly Redis's holders.
    postgres_is_redis(&app, &redis, batch, shards).await;
    let (tickets_kept, coupons_kept) = persisted(&app, batch, &told).await;
    let answered = told.tickets.len() + told.coupons.len();
    let lost = answered - tickets_kept - coupons_kept;
    let mut positions: Vec<i64> = told.coupons.values().copied().collect();
    positions.sort_unstable();
    let before = positions.len();
    positions.dedup();
    eprintln!(
        "memory kills over {shards} buckets: {answered} issues answered with their id, {lost} lost ({:.2} %: \
         {} tickets, {} coupons), {} coupon positions told to two users, {} answers 503, {} sold out",
        100.0 * lost as f64 / answered.max(1) as f64,
        told.tickets.len() - tickets_kept,
        told.coupons.len() - coupons_kept,
        before - positions.len(),
        told.refused,
        told.sold_out
    );
    // Each loss strands what was reserved and not answered (about 100 ms of issues a scope):
    // at a kill every 200 requests, much of the quantity.
    assert!(answered > 500, "the bursts mostly failed: {answered} answered");
    // A lost answer costs only itself: its unit and position are never answered to another.
    assert_eq!(before, positions.len(), "a coupon position was told to two users");
    assert!(
        told.tickets.len() <= QUANTITY,
        "{} tickets answered for {QUANTITY}",
        told.tickets.len()
    );
    assert!(
        told.coupons.len() <= QUANTITY,
        "{} coupons answered for {QUANTITY}",
        told.coupons.len()
    );
}

#[tokio::test]
async fn a_redis_come_back_behind_postgres_is_rebuilt_before_any_decision() {
    use std::collections::HashMap;

    use crate::coupons::{self, Setup};

    // Memory mode on a Redis that can come back with less than it had: a snapshot taken
    // halfway, then SIGKILL and a restart from it.
    let mut redis = RedisServer::start(&[]).await;
    let app = TestApp::spawn_with(with(&redis, Durability::default())).await;
    app.create_event("behind", 70, None).await;
    let (_, batch) = coupons::batch(
        &app,
        Setup {
            count: 70,
            ..Setup::default()
        },
    )
    .await;
    let mut tickets: HashMap<i64, Value> = HashMap::new();
    let mut coupon_ids: HashMap<i64, Value> = HashMap::new();
    for user in 1..=60 {
        if user == 31 {
            let _: String = redis.cmd("SAVE", vec![]).await;
        }
        let t = app.issue("behind", user).await;
        assert_eq!(t.status(), 201);
        tickets.insert(user, t.json::<Value>().await.unwrap()["ticketId"].clone());
        let c = coupons::issue(&app, batch, user).await;
        assert_eq!(c.status(), 201);
        coupon_ids.insert(user, c.json::<Value>().await.unwrap()["couponIssueId"].clone());
    }
    let limit = Duration::from_secs(20);
    assert_eq!(app.wait_rows("behind", 60, limit).await, 60);
    assert_eq!(coupons::wait_coupon_rows_within(&app, batch, 60, limit).await, 60);

    redis.kill_and_restart().await;
    let ticket_holders = app.keys.ticket_event("behind").holders;
    let coupon_holders = app.keys.coupon_batch(batch).holders;
    let held: i64 = redis.cmd("HLEN", vec![ticket_holders.clone()]).await;
    assert_eq!(held, 30, "Redis came back with the snapshot, behind Postgres");

    // The users Redis forgot, and Postgres remembers, get theirs back; new users get only what
    // is left of the 70, at positions never handed out.
    for user in 31..=60 {
        let r = issue_until(&app, "behind", user, limit, |s| s != 503).await;
        assert_eq!(r.status(), 200, "user {user} holds a ticket");
        assert_eq!(r.json::<Value>().await.unwrap()["ticketId"], tickets[&user]);
        let c = coupons::issue(&app, batch, user).await;
        let body = assert_error(
            c,
            409,
            "COUPON_ALREADY_ISSUED",
            &format!("/api/v1/coupons/{batch}/issue"),
        )
        .await;
        assert_eq!(body["couponIssueId"], coupon_ids[&user], "user {user}");
    }
    // What was reserved for the copy that was lost may have been answered: it is not issued
    // again (here all 60 answers were drained, so what is above 60 is stranded).
    let reserved = |kind: &'static str, id: String| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT reserved FROM scope_reservations WHERE scope_kind = $1 AND scope_id = $2",
            )
            .bind(kind)
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let left_tickets = 70 - reserved("ticket", "behind".into()).await;
    let left_coupons = 70 - reserved("coupon", batch.to_string()).await;
    let mut new_tickets = 0;
    let mut new_coupons = 0;
    for user in 61..=100 {
        let t = app.issue("behind", user).await.status().as_u16();
        assert!(t == 201 || t == 409, "ticket answered {t}");
        new_tickets += i64::from(t == 201);
        let c = coupons::issue(&app, batch, user).await.status().as_u16();
        assert!(c == 201 || c == 409, "coupon answered {c}");
        new_coupons += i64::from(c == 201);
    }
    assert_eq!(
        (new_tickets, new_coupons),
        (left_tickets, left_coupons),
        "only what the lost copy had not reserved"
    );
    let (tickets, coupons) = (60 + left_tickets, 60 + left_coupons);
    assert_eq!(redis.cmd::<i64>("HLEN", vec![ticket_holders]).await, tickets);
    assert_eq!(redis.cmd::<i64>("HLEN", vec![coupon_holders]).await, coupons);
    assert_eq!(app.wait_rows("behind", tickets, limit).await, tickets);
    assert_eq!(
        coupons::wait_coupon_rows_within(&app, batch, coupons, limit).await,
        coupons
    );
    let (rows, distinct, below_60): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT seq), count(*) FILTER (WHERE seq < 60) FROM coupon_issues WHERE batch_id = $1",
    )
    .bind(batch)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        (rows, distinct, below_60),
        (coupons, coupons, 60),
        "no position twice"
    );
}
