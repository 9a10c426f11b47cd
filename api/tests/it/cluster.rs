//! Redis Cluster faults, on a cluster of the test's own (3 primaries with 1 or 2 replicas
//! each, `cluster-node-timeout` 1 s): a primary killed or hung mid-burst is replaced by its replica
//! and the api follows without a restart, losing no answered issue in replica mode; a drain
//! batch read before a failover cannot commit behind the rebuild after it.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use engine::stream;
use issuance_core::config::Durability;
use serde_json::Value;
use workers::{
    config::DrainConfig,
    drain::write::{self, Write},
};

use crate::{
    durability::{
        burst, every_201_kept, first_answered_after, first_asked_after, issue_until, slowest_refusal,
    },
    helpers::{Options, RedisServer, TestApp, WorkersProcess},
};

/// The nodes of a cluster of a test's own; the first three start as primaries.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    /// Every node's arguments: cluster mode, a 1 s node timeout, and full syncs at once (the
    /// default waits 5 s for more replicas).
    pub const NODE_ARGS: [&'static str; 8] = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "1000",
        "--repl-diskless-sync-delay",
        "0",
    ];

    /// Starts three primaries with `replicas` replicas each on loopback, joins them and waits
    /// until every node sees the cluster whole and every replica has synced.
    pub async fn start(replicas: usize) -> Self {
        let mut nodes = Vec::new();
        for _ in 0..3 * (1 + replicas) {
            nodes.push(RedisServer::start(&Self::NODE_ARGS).await);
        }
        Self::form(nodes, replicas).await
    }

    /// Joins nodes started with [`Cluster::NODE_ARGS`] (the first three become primaries, with
    /// `replicas` replicas each) and waits as [`Cluster::start`] does.
    pub async fn form(nodes: Vec<RedisServer>, replicas: usize) -> Self {
        let created = std::process::Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(nodes.iter().map(|n| format!("{}:{}", n.host, n.port)))
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli is installed (scripts/services)");
        assert!(
            created.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&created.stdout)
        );
        let cluster = Self { nodes };
        cluster.settled(replicas).await;
        cluster
    }

    /// Waits until every node sees the cluster whole and every replica has synced.
    pub async fn settled(&self, replicas: usize) {
        let since = Instant::now();
        for node in &self.nodes {
            loop {
                let info: String = node.cmd("CLUSTER", vec!["INFO".into()]).await;
                let replication: String = node.cmd("INFO", vec!["replication".into()]).await;
                let synced = replication.contains("role:slave")
                    && replication.contains("master_link_status:up")
                    || replication.contains("role:master")
                        && replication.matches("state=online").count() == replicas;
                if info.contains("cluster_state:ok") && synced {
                    break;
                }
                assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "the cluster never settled"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// fred's URL of the cluster: three of its nodes to start from.
    pub fn url(&self) -> String {
        format!(
            "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
            self.nodes[0].port, self.nodes[1].port, self.nodes[2].port
        )
    }

    /// The node that serves `key`'s slot as primary, as node `asked` (one that answers) sees
    /// it: the master not marked failed whose slot ranges hold the slot.
    pub async fn primary_of(&self, key: &str, asked: usize) -> &RedisServer {
        self.serving(key, asked)
            .await
            .unwrap_or_else(|| panic!("no live primary serves {key}"))
    }

    /// [`Cluster::primary_of`], or `None` while the slot's primary is suspected or failed and
    /// not yet replaced.
    pub async fn serving(&self, key: &str, asked: usize) -> Option<&RedisServer> {
        let slot = fred::util::redis_keyslot(key.as_bytes());
        let nodes: String = self.nodes[asked].cmd("CLUSTER", vec!["NODES".into()]).await;
        let port = nodes.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?;
            if !flags.contains("master") || flags.contains("fail") {
                return None;
            }
            let serves = fields[8..].iter().any(|range| {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                matches!((from.parse::<u16>(), to.parse::<u16>()), (Ok(a), Ok(b)) if (a..=b).contains(&slot))
            });
            let addr = fields[1].split('@').next()?;
            serves.then(|| addr.rsplit(':').next()?.parse::<u16>().ok())?
        })?;
        Some(self.node(port))
    }

    /// A replica of the primary on `primary`, as node `asked` sees it.
    async fn replica_of(&self, primary: u16, asked: usize) -> &RedisServer {
        let nodes: String = self.nodes[asked].cmd("CLUSTER", vec!["NODES".into()]).await;
        let port_of = |fields: &[&str]| {
            fields[1]
                .split('@')
                .next()?
                .rsplit(':')
                .next()?
                .parse::<u16>()
                .ok()
        };
        let lines: Vec<Vec<&str>> = nodes.lines().map(|l| l.split_whitespace().collect()).collect();
        let id = lines
            .iter()
            .find(|f| port_of(f) == Some(primary))
            .map(|f| f[0])
            .expect("the primary is listed");
        let port = lines
            .iter()
            .find(|f| f[2].contains("slave") && f[3] == id)
            .and_then(|f| port_of(f))
            .expect("the primary has a replica");
        self.node(port)
    }

    fn node(&self, port: u16) -> &RedisServer {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .expect("a node of this cluster")
    }

    fn index(&self, port: u16) -> usize {
        self.nodes.iter().position(|n| n.port == port).unwrap()
    }

    /// Another node than `port`'s, to ask while that one is down or hung.
    fn witness(&self, port: u16) -> usize {
        (self.index(port) + 1) % self.nodes.len()
    }

    /// When node `asked` first names another primary than `old` for `key` (polled from `t0`).
    async fn switched(&self, key: &str, old: u16, asked: usize, t0: Instant) -> Duration {
        loop {
            if self.serving(key, asked).await.is_some_and(|n| n.port != old) {
                return t0.elapsed();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "the cluster never failed over"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An api on `cluster` in replica mode (one replica, 200 ms).
fn replica_mode(cluster: &Cluster) -> Options {
    Options {
        redis_url: Some(cluster.url()),
        durability: Durability {
            aof: false,
            replicas: 1,
            wait: Duration::from_millis(200),
        },
        ..Options::default()
    }
}

/// No ticket id answered to two users.
fn no_ticket_twice(answers: &[&crate::durability::Answer]) {
    let mut seen = HashSet::new();
    for a in answers {
        let ticket = a.ticket.clone().expect("a 201 names its ticket");
        assert!(seen.insert(ticket.clone()), "ticket {ticket} answered twice");
    }
}

/// WAIT goes to the server that ran the script, over the connection that ran it: with the
/// replica of one event's primary hung, that event answers 503 and its drain commits nothing,
/// while an event on another primary (whose replica is fine) goes on. A WAIT sent to whichever
/// node the client picks would count another primary's replica and answer 201.
#[tokio::test]
async fn replica_mode_confirms_on_the_primary_that_ran_the_script() {
    let cluster = Cluster::start(1).await;
    let app = TestApp::spawn_with(Options {
        drain: false,
        ..replica_mode(&cluster)
    })
    .await;
    let hung = app.keys.ticket_event("hung-replica").holders;
    let primary = cluster.primary_of(&hung, 0).await.port;
    // An event on another primary: names are tried until one lands elsewhere.
    let mut other = String::new();
    for i in 0.. {
        other = format!("elsewhere-{i}");
        let holders = app.keys.ticket_event(&other).holders;
        if cluster.primary_of(&holders, 0).await.port != primary {
            break;
        }
    }
    app.create_event("hung-replica", 100, None).await;
    app.create_event(&other, 100, None).await;
    for user in 1..=5 {
        assert_eq!(app.issue("hung-replica", user).await.status(), 201);
    }

    let replica = cluster.replica_of(primary, 0).await;
    replica.stop();
    let r = app.issue("hung-replica", 6).await;
    let refused = r.status();
    let elsewhere = app.issue(&other, 6).await.status();
    // The drain of the five confirms on the same primary: it holds their commit.
    app.start_drain(DrainConfig {
        confirm: engine::confirm::Confirm::of(&app.core.durability),
        ..DrainConfig::default()
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let committed = app.ticket_rows("hung-replica").await;
    replica.resume();

    assert_eq!(refused, 503, "the event's replica acknowledged nothing");
    assert_eq!(elsewhere, 201, "the other primary's replica is fine");
    assert_eq!(committed, 0, "nothing committed that its replica did not hold");
    assert_eq!(app.wait_rows("hung-replica", 6, Duration::from_secs(20)).await, 6);
}

#[tokio::test]
async fn a_killed_cluster_primary_is_followed_to_its_replica_and_no_201_is_lost() {
    let mut cluster = Cluster::start(1).await;
    let app = TestApp::spawn_with(replica_mode(&cluster)).await;
    app.create_event("killed", 1_000_000, None).await;
    let holders = app.keys.ticket_event("killed").holders;
    let old = cluster.primary_of(&holders, 0).await.port;
    let asked = cluster.witness(old);

    // A burst of fresh users; the event's primary is SIGKILLed 2 s in. Once its replica has
    // taken over, the old node starts again from its nodes.conf and rejoins as the new
    // primary's replica: with one replica per primary, nothing is confirmed until then.
    let t0 = Instant::now();
    let faults = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let index = cluster.index(old);
        cluster.nodes[index].kill();
        let killed = t0.elapsed();
        let switched = cluster.switched(&holders, old, asked, t0).await;
        cluster.nodes[index].restart().await;
        (killed, switched)
    };
    let (answers, (killed, switched)) =
        tokio::join!(burst(&app, "killed", t0, Duration::from_secs(12)), faults);

    let primary = cluster.primary_of(&holders, asked).await;
    assert_ne!(primary.port, old, "the replica serves the slot now");
    let ok = every_201_kept(&app, "killed", primary, &answers).await;
    no_ticket_twice(&ok);
    let back = first_asked_after(&ok, killed);
    let slowest_refusal = slowest_refusal(&answers);
    eprintln!(
        "killed cluster primary: switch {:?} after the kill, issuing again {:?} after it; \
         {} × 201, {} × 503, slowest 503 {slowest_refusal:?}",
        switched - killed,
        back - killed,
        ok.len(),
        answers.len() - ok.len()
    );
    assert!(
        slowest_refusal < Duration::from_secs(5),
        "requests in the gap are refused fast, not held: a 503 took {slowest_refusal:?}"
    );
    let check = WorkersProcess::run_once(&app.core, &["check"]);
    assert!(
        check.status.success(),
        "workers check: {}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[tokio::test]
async fn a_hung_cluster_primary_is_left_for_its_promoted_replica_and_no_201_is_lost() {
    // Two replicas per primary: while the hung node is down, its promoted replica still has
    // one to confirm writes to (with one, replica mode refuses everything until it is back).
    let cluster = Cluster::start(2).await;
    let app = TestApp::spawn_with(replica_mode(&cluster)).await;
    app.create_event("hung", 1_000_000, None).await;
    let holders = app.keys.ticket_event("hung").holders;
    let old = cluster.primary_of(&holders, 0).await.port;
    let asked = cluster.witness(old);

    // The event's primary hangs 2 s in (SIGSTOP: its sockets stay open, so no error and no
    // MOVED reaches the client) and resumes 10 s later, rejoining as a replica.
    let t0 = Instant::now();
    let faults = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let hung = cluster.node(old);
        hung.stop();
        let stopped = t0.elapsed();
        let switched = cluster.switched(&holders, old, asked, t0).await;
        tokio::time::sleep(Duration::from_secs(10).saturating_sub(t0.elapsed() - stopped)).await;
        hung.resume();
        (stopped, switched)
    };
    let (answers, (stopped, switched)) =
        tokio::join!(burst(&app, "hung", t0, Duration::from_secs(16)), faults);

    let primary = cluster.primary_of(&holders, asked).await;
    let ok = every_201_kept(&app, "hung", primary, &answers).await;
    no_ticket_twice(&ok);
    let first_after = first_answered_after(&ok, switched);
    eprintln!(
        "hung cluster primary: stopped at {stopped:?}, promotion at {switched:?} (+{:?}), first 201 \
         after it +{:?}; {} × 201, {} × 503",
        switched - stopped,
        first_after - switched,
        ok.len(),
        answers.len() - ok.len()
    );
    // The client leaves the hung node while it still hangs (one that waits for MOVED or a
    // broken connection stays on it until it resumes, 10 s after the stop).
    assert!(
        first_after < stopped + Duration::from_secs(9),
        "issuing resumed {:?} after the promotion, only once the old primary was back",
        first_after - switched
    );
}

#[tokio::test]
async fn a_drain_batch_read_before_a_failover_cannot_commit_behind_the_rebuild() {
    let cluster = Cluster::start(1).await;
    let app = TestApp::spawn_with(Options {
        redis_url: Some(cluster.url()),
        drain: false,
        ..Options::default()
    })
    .await;
    app.create_event("fenced", 100, None).await;
    let keys = app.keys.ticket_event("fenced");
    for user in 1..=10 {
        assert_eq!(app.issue("fenced", user).await.status(), 201);
    }
    // A drain consumer reads the batch from this history and is held before its commit.
    let client = app.redis.next();
    stream::ensure_group(client, &keys.stream).await.unwrap();
    let held: Vec<stream::IssueRecord> = stream::read_new(client, &keys.stream, "held", 100)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|e| e.records.unwrap())
        .collect();
    assert_eq!(held.len(), 10);

    // The event's primary fails over to its replica (memory mode: the replica may lack the
    // last writes). The promoted node has another replication id, so the next request finds
    // the copy's epoch stale and rebuilds it from Postgres under a new fence.
    let old = cluster.primary_of(&keys.holders, 0).await.port;
    let asked = cluster.witness(old);
    let t0 = Instant::now();
    let index = cluster.index(old);
    let mut cluster = cluster;
    cluster.nodes[index].kill();
    cluster.switched(&keys.holders, old, asked, t0).await;
    let r = issue_until(&app, "fenced", 11, Duration::from_secs(15), |s| s != 503).await;
    assert_eq!(r.status(), 201);

    // The held batch belongs to the replaced history and is dropped.
    let written = write::commit(&app.db, &held, Write::Fresh).await.unwrap();
    assert_eq!(
        written,
        write::Written { kept: 0, fenced: 10 },
        "the held batch was dropped"
    );

    // Every user then holds exactly what Redis answers them now, and Postgres ends with it.
    let mut answered: HashMap<i64, String> = HashMap::new();
    for user in 1..=11 {
        let r = app.issue("fenced", user).await;
        assert!(
            matches!(r.status().as_u16(), 200 | 201),
            "user {user}: {}",
            r.status()
        );
        let ticket = r.json::<Value>().await.unwrap()["ticketId"]
            .as_str()
            .unwrap()
            .to_owned();
        answered.insert(user, ticket);
    }
    app.start_drain(DrainConfig::default());
    assert_eq!(app.wait_rows("fenced", 11, Duration::from_secs(20)).await, 11);
    for (user, ticket) in &answered {
        let row: String = sqlx::query_scalar(
            "SELECT ticket_id::text FROM tickets WHERE event_key = 'fenced' AND user_id = $1",
        )
        .bind(user)
        .fetch_one(&app.db)
        .await
        .unwrap();
        assert_eq!(&row, ticket, "user {user}: Postgres holds what Redis answered");
    }
    let distinct: HashSet<&String> = answered.values().collect();
    assert_eq!(distinct.len(), 11, "no ticket twice");
}

#[tokio::test]
async fn a_cluster_without_quorum_answers_fast_503s_never_a_hang_or_a_500() {
    let mut cluster = Cluster::start(0).await;
    let app = TestApp::spawn_with(Options {
        redis_url: Some(cluster.url()),
        ..Options::default()
    })
    .await;
    app.create_event("quorum", 1_000, None).await;
    assert_eq!(app.issue("quorum", 1).await.status(), 201);

    // Two of the three primaries die: the third sees no majority and refuses every slot
    // (CLUSTERDOWN) once the node timeout has passed; the dead ones' slots are not served at all.
    cluster.nodes[1].kill();
    cluster.nodes[2].kill();
    let t0 = Instant::now();
    let answers = burst(&app, "quorum", t0, Duration::from_secs(6)).await;
    let late: Vec<_> = answers
        .iter()
        .filter(|a| a.asked > Duration::from_secs(3))
        .collect();
    let statuses: HashSet<u16> = late.iter().map(|a| a.status).collect();
    let slowest = answers.iter().map(|a| a.took).max().unwrap_or_default();
    eprintln!(
        "no quorum: {} answers, statuses after 3 s {statuses:?}, slowest {slowest:?}",
        answers.len()
    );
    assert!(!late.is_empty());
    assert_eq!(
        statuses,
        HashSet::from([503]),
        "only 503 once the cluster is down"
    );
    assert!(
        answers.iter().all(|a| a.status == 201 || a.status == 503),
        "never a 500"
    );
    assert!(slowest < Duration::from_secs(5), "a request took {slowest:?}");
}

#[tokio::test]
async fn a_cluster_with_a_password_is_used_through_its_url_and_a_wrong_one_is_refused() {
    let cluster = Cluster::start(0).await;
    for node in &cluster.nodes {
        let _: String = node
            .cmd(
                "CONFIG",
                vec!["SET".into(), "requirepass".into(), "s3cret-pw".into()],
            )
            .await;
    }
    let url = |password: &str| {
        cluster
            .url()
            .replacen("redis-cluster://", &format!("redis-cluster://:{password}@"), 1)
    };
    let app = TestApp::spawn_with(Options {
        redis_url: Some(url("s3cret-pw")),
        ..Options::default()
    })
    .await;
    app.create_event("guarded", 10, None).await;
    assert_eq!(app.issue("guarded", 1).await.status(), 201);
    assert_eq!(app.issue("guarded", 1).await.status(), 200);
    assert_eq!(app.wait_rows("guarded", 1, Duration::from_secs(10)).await, 1);
    let check = WorkersProcess::run_once(&app.core, &["check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    let mut wrong = app.core.clone();
    wrong.redis_url = url("not-it");
    let refused = issuance_core::connect::redis(&wrong)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(refused.to_string().contains("WRONGPASS"), "{refused}");
}

/// An event spread over 3 buckets lands one bucket on each primary, and the primary of one of
/// them SIGKILLed mid-burst loses no answered issue (replica mode): every 201 is held by its
/// bucket on that bucket's current primary and in Postgres once, and the pool never leased
/// more than the buckets hold.
#[tokio::test]
async fn a_killed_primary_of_one_bucket_loses_no_201_of_a_spread_event() {
    let mut cluster = Cluster::start(1).await;
    let app = TestApp::spawn_with(replica_mode(&cluster)).await;
    crate::shards::create(&app, "spread", 1_000_000, 3).await;
    let event = issuance_core::ids::EventKey::parse("spread").unwrap();
    let buckets = engine::scope::Scope::buckets(&event, 3);
    let (buckets, old, asked) = one_bucket_per_primary(&cluster, &app, &buckets).await;

    let t0 = Instant::now();
    let faults = kill_mid_burst(&mut cluster, &buckets[1].holders, old, asked, t0);
    let (answers, ()) = tokio::join!(burst(&app, "spread", t0, Duration::from_secs(10)), faults);

    let others: Vec<_> = answers
        .iter()
        .filter(|a| a.status != 201 && a.status != 503)
        .map(|a| (a.user, a.status))
        .take(3)
        .collect();
    assert!(others.is_empty(), "only 201 or 503: {others:?}");
    let ok: Vec<&crate::durability::Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert!(ok.len() > 100, "the burst issued ({} × 201)", ok.len());
    no_ticket_twice(&ok);
    let mut issued = 0;
    for (index, bucket) in buckets.iter().enumerate() {
        let primary = cluster.primary_of(&bucket.holders, asked).await;
        for a in ok
            .iter()
            .filter(|a| usize::from(engine::scope::bucket_of(a.user, 3)) == index)
        {
            let held: Option<String> = primary
                .cmd("HGET", vec![bucket.holders.clone(), a.user.to_string()])
                .await;
            let held = held.unwrap_or_else(|| panic!("user {} got 201 but holds nothing", a.user));
            assert_eq!(held.split('|').next(), a.ticket.as_deref(), "user {}", a.user);
        }
        let n: i64 = primary.cmd("HLEN", vec![bucket.holders.clone()]).await;
        issued += n;
    }
    assert_eq!(
        app.wait_rows("spread", issued, Duration::from_secs(20)).await,
        issued,
        "Postgres holds what the buckets hold"
    );
    let answered: Vec<String> = ok.iter().filter_map(|a| a.ticket.clone()).collect();
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tickets WHERE event_key = 'spread' AND ticket_id::text = ANY($1)",
    )
    .bind(&answered)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(rows as usize, ok.len(), "every 201 in Postgres exactly once");
    pool_is_the_leases(&app, "ticket", "spread", issued).await;
    crate::shards::checked(&app);
}

/// The keys of 3 `buckets`, each on a primary of its own (asserted), with bucket 1's primary's
/// port and a node to ask about it once it is gone.
async fn one_bucket_per_primary(
    cluster: &Cluster,
    app: &TestApp,
    buckets: &[engine::scope::Scope],
) -> (Vec<engine::keys::ScopeKeys>, u16, usize) {
    let buckets: Vec<_> = buckets.iter().map(|b| b.keys(&app.keys)).collect();
    let mut primaries = HashSet::new();
    for bucket in &buckets {
        primaries.insert(cluster.primary_of(&bucket.holders, 0).await.port);
    }
    assert_eq!(primaries.len(), 3, "one bucket on each primary");
    let old = cluster.primary_of(&buckets[1].holders, 0).await.port;
    let asked = cluster.witness(old);
    (buckets, old, asked)
}

/// Two seconds into a burst begun at `t0`: SIGKILLs `old`, the primary of `key`, waits until
/// `asked` names its replica as the key's primary, and restarts it.
async fn kill_mid_burst(cluster: &mut Cluster, key: &str, old: u16, asked: usize, t0: Instant) {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let index = cluster.index(old);
    cluster.nodes[index].kill();
    cluster.switched(key, old, asked, t0).await;
    cluster.nodes[index].restart().await;
}

/// A scope spread over buckets (`kind`, `pool`): the pool's lease is the sum of its buckets',
/// and covers the `issued` their copies hold.
async fn pool_is_the_leases(app: &TestApp, kind: &str, pool: &str, issued: i64) {
    let (leased, buckets): (i64, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT reserved FROM scope_reservations WHERE scope_kind = $1 AND scope_id = $2),
                (SELECT sum(reserved)::bigint FROM scope_reservations WHERE scope_kind = $1 AND scope_id LIKE $2 || '#%')",
    )
    .bind(kind)
    .bind(pool)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(Some(leased), buckets, "the pool is what the buckets hold");
    assert!(
        leased >= issued,
        "every issue was leased ({leased} leased, {issued} issued)"
    );
}

/// A coupon batch spread over 3 buckets, one per primary: the primary of one of them SIGKILLed
/// mid-burst gives no position twice (replica mode). Every 201's coupon is in Postgres once, for
/// its user, no two 201s name one coupon, the pool is what the buckets leased, and the check
/// finds Redis and Postgres agreeing.
#[tokio::test]
async fn a_killed_primary_of_one_coupon_bucket_gives_no_coupon_twice() {
    use futures::StreamExt;

    let mut cluster = Cluster::start(1).await;
    let app = TestApp::spawn_with(replica_mode(&cluster)).await;
    let setup = crate::coupons::Setup {
        count: 1_000_000,
        shards: 3,
        ..Default::default()
    };
    let (_, batch) = crate::coupons::batch(&app, setup).await;
    let buckets = engine::scope::Scope::coupon_buckets(batch, 3);
    let (buckets, old, asked) = one_bucket_per_primary(&cluster, &app, &buckets).await;

    let t0 = Instant::now();
    let faults = kill_mid_burst(&mut cluster, &buckets[1].holders, old, asked, t0);
    let path = format!("/api/v1/coupons/{batch}/issue");
    let app_ref = &app;
    let burst = futures::stream::iter(1_i64..)
        .take_while(|_| std::future::ready(t0.elapsed() < Duration::from_secs(10)))
        .map(|user| {
            let path = path.clone();
            async move {
                let r = app_ref
                    .post(&path, &app_ref.user(user), &serde_json::json!({ "userId": user }))
                    .await;
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                (user, status, body["couponIssueId"].as_i64())
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>();
    let (answers, ()) = tokio::join!(burst, faults);

    let others: Vec<_> = answers
        .iter()
        .filter(|(_, status, _)| *status != 201 && *status != 503)
        .take(3)
        .collect();
    assert!(others.is_empty(), "only 201 or 503: {others:?}");
    let ok: Vec<(i64, i64)> = answers
        .iter()
        .filter(|(_, status, _)| *status == 201)
        .map(|(user, _, id)| (*user, id.expect("a 201 names its coupon")))
        .collect();
    assert!(ok.len() > 100, "the burst issued ({} × 201)", ok.len());
    let ids: HashSet<i64> = ok.iter().map(|(_, id)| *id).collect();
    assert_eq!(ids.len(), ok.len(), "no coupon answered to two users");
    let mut issued = 0;
    for bucket in &buckets {
        let primary = cluster.primary_of(&bucket.holders, asked).await;
        let n: i64 = primary.cmd("HLEN", vec![bucket.holders.clone()]).await;
        issued += n;
    }
    let started = Instant::now();
    let mut rows = 0;
    while started.elapsed() < Duration::from_secs(20) {
        rows = sqlx::query_scalar::<_, i64>("SELECT count(*) FROM coupon_issues WHERE batch_id = $1")
            .bind(batch)
            .fetch_one(&app.db)
            .await
            .unwrap();
        if rows >= issued {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(rows, issued, "Postgres holds what the buckets hold");
    let (users, answered): (Vec<i64>, Vec<i64>) = ok.iter().copied().unzip();
    let kept: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM coupon_issues i JOIN unnest($1::bigint[], $2::bigint[]) AS a(user_id, id)
         ON i.coupon_issue_id = a.id AND i.user_id = a.user_id",
    )
    .bind(&users)
    .bind(&answered)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kept as usize, ok.len(), "every 201 in Postgres, for its user");
    pool_is_the_leases(&app, "coupon", &batch.to_string(), issued).await;
    crate::shards::checked(&app);
}
