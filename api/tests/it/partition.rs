//! A real network partition, as Jepsen makes one. Two test hosts on this machine: a network
//! namespace holding one cluster primary and one api process, and this one holding the other
//! five nodes, a second api process, the drain and PostgreSQL. The namespace reaches this
//! host over a data link (Redis, PostgreSQL) and a client link (the test's requests to its
//! api). Mid-burst the data link goes down for 10 s: the primary and its api are cut off from
//! the majority, which promotes the primary's replica, while clients still reach both api
//! processes. Afterwards, per durability mode: how many answered 201s were lost, and whether
//! any coupon position was answered twice.

use std::{
    collections::HashMap,
    process::Command,
    time::{Duration, Instant},
};

use futures::StreamExt;
use issuance_core::config::{CoreConfig, Durability};
use serde_json::{Value, json};
use workers::config::DrainConfig;

use crate::{
    cluster::Cluster,
    helpers::{ApiProcess, JWT_SECRET, Options, RedisServer, TestApp, random_secret},
    private_pg::PrivatePostgres,
};

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("iproute2 is installed");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test host: a network namespace joined to this one by a data link (10.77.n.0/30) and a
/// client link (10.78.n.0/30). Removed when dropped.
struct TestHost {
    ns: String,
    data: String,
    client: String,
    /// This host's end of the data link.
    here: String,
    /// The namespace's end of the data link.
    there: String,
    /// The namespace's end of the client link.
    there_for_clients: String,
}

impl TestHost {
    fn create() -> Self {
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
        let n = u8::from_str_radix(&tag[..2], 16).unwrap() % 250 + 1;
        let host = Self {
            ns: format!("iep-{tag}"),
            data: format!("iepd{tag}"),
            client: format!("iepc{tag}"),
            here: format!("10.77.{n}.1"),
            there: format!("10.77.{n}.2"),
            there_for_clients: format!("10.78.{n}.2"),
        };
        ip(&["netns", "add", &host.ns]);
        ip(&["-n", &host.ns, "link", "set", "lo", "up"]);
        for (link, net) in [(&host.data, "10.77"), (&host.client, "10.78")] {
            let peer = format!("{link}n");
            ip(&["link", "add", link, "type", "veth", "peer", "name", &peer]);
            ip(&["link", "set", &peer, "netns", &host.ns]);
            ip(&["addr", "add", &format!("{net}.{n}.1/30"), "dev", link]);
            ip(&[
                "-n",
                &host.ns,
                "addr",
                "add",
                &format!("{net}.{n}.2/30"),
                "dev",
                &peer,
            ]);
            ip(&["link", "set", link, "up"]);
            ip(&["-n", &host.ns, "link", "set", &peer, "up"]);
        }
        host
    }

    /// Cuts the data link: the namespace reaches nothing here but its clients.
    fn cut(&self) {
        ip(&["link", "set", &self.data, "down"]);
    }

    fn heal(&self) {
        ip(&["link", "set", &self.data, "up"]);
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["link", "del", &self.data]).status();
        let _ = Command::new("ip").args(["link", "del", &self.client]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// One answer: which api, the user, the status, the position a 201 named.
struct Answer {
    cut_side: bool,
    user: i64,
    status: u16,
    position: Option<i64>,
}

/// What a partition did in one durability mode.
struct Outcome {
    answered: usize,
    answered_cut_side: usize,
    lost: usize,
    twice: usize,
}

async fn partition_run(durability: Durability, mode: &str) -> Outcome {
    let host = TestHost::create();
    let mut node_args = Cluster::NODE_ARGS.to_vec();
    node_args.extend(["--protected-mode", "no"]);
    if durability.aof {
        node_args.extend(["--appendonly", "yes", "--appendfsync", "always"]);
    }
    if durability.replicas > 0 {
        // The server-side guard: a primary whose replica has not acknowledged for 2 s refuses
        // writes, so one cut off from its replica stops issuing on its own.
        node_args.extend(["--min-replicas-to-write", "1", "--min-replicas-max-lag", "2"]);
    }
    // Node 0 on the test host; the other five here.
    let mut nodes = vec![RedisServer::start_at(&host.there, Some(&host.ns), &node_args).await];
    for _ in 0..5 {
        nodes.push(RedisServer::start_at(&host.here, None, &node_args).await);
    }
    let cluster = Cluster::form(nodes, 1).await;
    let role: String = cluster.nodes[0].cmd("INFO", vec!["replication".into()]).await;
    if role.contains("role:slave") {
        // The cut-off host must hold a primary: node 0 takes over from its own.
        let _: String = cluster.nodes[0].cmd("CLUSTER", vec!["FAILOVER".into()]).await;
        let since = Instant::now();
        while !cluster.nodes[0]
            .cmd::<String>("INFO", vec!["replication".into()])
            .await
            .contains("role:master")
        {
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "node 0 never took over"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        cluster.settled(1).await;
    }
    let nodes = &cluster.nodes;

    let pg = PrivatePostgres::start_on(&host.here);
    pg.wait_up().await;
    let admin = sqlx::PgPool::connect(&pg.url()).await.unwrap();
    sqlx::query("CREATE DATABASE issuance")
        .execute(&admin)
        .await
        .unwrap();
    let core = CoreConfig {
        database_url: format!("postgres://postgres@{}:{}/issuance", host.here, pg.port),
        database_max_connections: 8,
        redis_url: format!(
            "redis-cluster://{}:{}?node={}:{}&node={}:{}",
            nodes[1].host, nodes[1].port, nodes[2].host, nodes[2].port, nodes[0].host, nodes[0].port
        ),
        redis_pool_size: 2,
        key_prefix: "p:".into(),
        code_secret: random_secret(),
        durability,
    };
    let app = TestApp::spawn_on(
        core.clone(),
        Options {
            drain: false,
            durability,
            ..Options::default()
        },
    )
    .await;
    app.start_drain(DrainConfig {
        idle: Duration::from_millis(5),
        confirm: engine::confirm::Confirm::of(&durability),
        ..DrainConfig::default()
    });
    let wait = durability.wait.as_millis().to_string();
    let cut_side = ApiProcess::start_at(
        &core,
        Some(&host.ns),
        &host.there_for_clients,
        &[
            ("REDIS_DURABILITY", durability.mode()),
            ("REDIS_MIN_REPLICAS", &durability.replicas.max(1).to_string()),
            ("REDIS_WAIT_TIMEOUT_MS", &wait),
        ],
    )
    .await;

    // A first-come coupon batch whose slot the cut-off primary serves.
    let mut batch = 0;
    for _ in 0..30 {
        let (_, id) = crate::coupons::batch(
            &app,
            crate::coupons::Setup {
                count: 1_000_000,
                ..crate::coupons::Setup::default()
            },
        )
        .await;
        let primary = cluster.serving(&app.keys.coupon_batch(id).holders, 1).await;
        if primary.is_some_and(|p| p.port == nodes[0].port) {
            batch = id;
            break;
        }
    }
    assert!(batch > 0, "no batch landed on the cut-off primary");

    // Fresh users at both api processes, 8 in flight each, for 20 s; the data link is down from
    // 4 s to 14 s.
    let t0 = Instant::now();
    let length = Duration::from_secs(20);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let jwt = api::auth::Jwt::new(&JWT_SECRET);
    let load = |base: String, cut: bool, first: i64| {
        let (http, jwt) = (http.clone(), &jwt);
        futures::stream::iter(first..)
            .take_while(move |_| std::future::ready(t0.elapsed() < length))
            .map(move |user| {
                let (http, base) = (http.clone(), base.clone());
                async move {
                    let r = http
                        .post(format!("{base}/api/v1/coupons/{batch}/issue"))
                        .bearer_auth(jwt.mint(user, false, 3600))
                        .json(&json!({ "userId": user }))
                        .send()
                        .await;
                    let (status, body) = match r {
                        Ok(r) => (
                            r.status().as_u16(),
                            r.json::<Value>().await.unwrap_or(Value::Null),
                        ),
                        Err(_) => (0, Value::Null),
                    };
                    Answer {
                        cut_side: cut,
                        user,
                        status,
                        position: body["couponIssueId"].as_i64().map(|id| id - batch * 10_000_000),
                    }
                }
            })
            .buffer_unordered(8)
            .collect::<Vec<Answer>>()
    };
    let faults = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        host.cut();
        tokio::time::sleep(Duration::from_secs(10)).await;
        host.heal();
    };
    let (majority, minority, ()) = tokio::join!(
        load(app.base.clone(), false, 1),
        load(cut_side.base.clone(), true, 1_000_000_000),
        faults
    );

    // Healed: the old primary rejoins as a replica; the drain persists what the cluster holds.
    let answers: Vec<Answer> = majority.into_iter().chain(minority).collect();
    let holders = app.keys.coupon_batch(batch).holders;
    let engine = app.engine();
    let since = Instant::now();
    let held = loop {
        let mut settled = None;
        if let Some(primary) = cluster.serving(&holders, 1).await {
            let lag = engine::stream::total_lag(engine.redis(), engine.keys()).await;
            if lag.is_ok_and(|l| l.entries == 0) {
                settled = Some(primary.cmd::<i64>("HLEN", vec![holders.clone()]).await);
            }
        }
        if let Some(held) = settled {
            break held;
        }
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "the cluster never settled after the heal"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let rows = crate::coupons::wait_coupon_rows_within(&app, batch, held, Duration::from_secs(30)).await;
    let persisted: HashMap<i64, i64> =
        sqlx::query_as::<_, (i64, i64)>("SELECT user_id, seq::int8 FROM coupon_issues WHERE batch_id = $1")
            .bind(batch)
            .fetch_all(&app.db)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(persisted.len() as i64, rows);

    let ok: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    let lost = ok
        .iter()
        .filter(|a| persisted.get(&a.user) != a.position.as_ref())
        .count();
    let mut by_position: HashMap<i64, i64> = HashMap::new();
    let mut twice = 0;
    for a in &ok {
        let position = a.position.expect("a 201 names its position");
        if by_position
            .insert(position, a.user)
            .is_some_and(|other| other != a.user)
        {
            twice += 1;
        }
    }
    let outcome = Outcome {
        answered: ok.len(),
        answered_cut_side: ok.iter().filter(|a| a.cut_side).count(),
        lost,
        twice,
    };
    let statuses = answers.iter().fold(HashMap::<u16, usize>::new(), |mut m, a| {
        *m.entry(a.status).or_default() += 1;
        m
    });
    eprintln!(
        "partition, {mode}: {} answered 201 ({} by the cut-off api), {} of them lost, {} positions \
         answered twice; answers {statuses:?}",
        outcome.answered, outcome.answered_cut_side, outcome.lost, outcome.twice
    );
    outcome
}

#[tokio::test]
async fn a_partition_in_memory_mode_answers_no_position_twice() {
    let outcome = partition_run(Durability::default(), "memory").await;
    assert!(outcome.answered > 0);
    assert_eq!(outcome.twice, 0, "a coupon position answered to two users");
}

#[tokio::test]
async fn a_partition_in_aof_mode_answers_no_position_twice() {
    let durability = Durability {
        aof: true,
        ..Durability::default()
    };
    let outcome = partition_run(durability, "aof").await;
    assert!(outcome.answered > 0);
    assert_eq!(outcome.twice, 0, "a coupon position answered to two users");
}

/// Replica modes, with `min-replicas-to-write` on the nodes.
async fn replica_mode(aof: bool, mode: &str) {
    let durability = Durability {
        aof,
        replicas: 1,
        wait: Duration::from_millis(200),
    };
    let outcome = partition_run(durability, mode).await;
    assert!(outcome.answered > 0);
    assert_eq!(outcome.twice, 0, "a coupon position answered to two users");
    assert_eq!(outcome.lost, 0, "an answered 201 was lost");
}

#[tokio::test]
async fn a_partition_in_replica_mode_loses_no_answer_and_answers_no_position_twice() {
    replica_mode(false, "replica").await;
}

#[tokio::test]
async fn a_partition_in_aof_replica_mode_loses_no_answer_and_answers_no_position_twice() {
    replica_mode(true, "aof+replica").await;
}
