//! `TestApp`: a real api server on port 0 with a fresh database and key prefix.

use std::{process::Stdio, time::Duration};

use api::{auth::Jwt, config::Config};
use engine::{Engine, EngineOptions, Keys};
use fred::{clients::Pool, interfaces::ClientLike};
use issuance_core::{config::CoreConfig, connect};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use workers::{
    config::{DrainConfig, JobsConfig},
    drain::Drain,
    jobs::{self, JobRunner},
};

/// This run's token secret: random, so no secret the services accept is written anywhere.
pub static JWT_SECRET: std::sync::LazyLock<String> = std::sync::LazyLock::new(random_secret);

/// A fresh 64-character secret.
pub fn random_secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn server_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

/// Creates `test_<uuid>`, migrated, and returns its URL.
pub async fn fresh_database() -> String {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let admin = PgPool::connect(&format!("{}/postgres", server_url()))
        .await
        .expect("postgres is up");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    format!("{}/{name}", server_url())
}

/// Knobs of a test app.
#[derive(Clone)]
pub struct Options {
    pub user_rate: u32,
    pub user_burst: u32,
    pub drain: bool,
    /// Overrides the Redis URL (e.g. to use another db index).
    pub redis_url: Option<String>,
    /// How long an order waits for its payment.
    pub order_ttl: Duration,
    /// Connection and request bounds.
    pub limits: api::server::Limits,
    /// Largest partner CSV accepted.
    pub upload_limit: usize,
    /// What must hold in Redis before an issue is answered.
    pub durability: issuance_core::config::Durability,
    /// Where campaigns are distributed, and how.
    pub channels: campaigns::channels::ChannelConfig,
    /// How far ahead of Redis Postgres reserves.
    pub reserve: engine::reservations::ReserveOptions,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            user_rate: 1_000,
            user_burst: 1_000,
            drain: true,
            redis_url: None,
            order_ttl: Duration::from_secs(300),
            limits: api::server::Limits::default(),
            upload_limit: 8 * 1024 * 1024,
            durability: Default::default(),
            channels: campaigns::channels::ChannelConfig {
                urls: Default::default(),
                timeout: Duration::from_secs(2),
                failures_to_open: 3,
                open_for: Duration::from_secs(30),
            },
            reserve: Default::default(),
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: Client,
    pub db: PgPool,
    pub redis: Pool,
    pub keys: Keys,
    pub core: CoreConfig,
    pub jwt: Jwt,
    stop: CancellationToken,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    /// A test app whose issues stay in the stream until the test starts a drain.
    pub async fn spawn_without_drain() -> Self {
        Self::spawn_with(Options {
            drain: false,
            ..Options::default()
        })
        .await
    }

    pub async fn spawn_with(opts: Options) -> Self {
        let core = Self::fresh_core(&opts).await;
        Self::spawn_on(core, opts).await
    }

    pub async fn spawn_on(core: CoreConfig, opts: Options) -> Self {
        let cfg = config(&core, &opts);
        let listener = tokio::net::TcpListener::bind(cfg.addr).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move { api::run(cfg, listener, shutdown).await.expect("api runs") });
        Self::attach(core, opts, base, stop).await
    }

    /// A test app around an api already serving at `base` (stopped by cancelling `stop`).
    pub async fn attach(core: CoreConfig, opts: Options, base: String, stop: CancellationToken) -> Self {
        let db = connect::postgres(&core).await.unwrap();
        let redis = connect::redis(&core).await.unwrap();
        let app = Self {
            base,
            http: Client::builder().pool_max_idle_per_host(64).build().unwrap(),
            db,
            redis,
            keys: Keys::new(&core.key_prefix),
            core,
            jwt: Jwt::new(&JWT_SECRET),
            stop,
        };
        app.wait_healthy().await;
        if opts.drain {
            app.start_drain(DrainConfig {
                idle: Duration::from_millis(5),
                ..DrainConfig::default()
            });
        }
        app
    }

    /// A fresh database and key prefix for a test app.
    pub async fn fresh_core(opts: &Options) -> CoreConfig {
        CoreConfig {
            database_url: fresh_database().await,
            database_max_connections: 8,
            redis_url: opts.redis_url.clone().unwrap_or_else(redis_url),
            redis_pool_size: 2,
            key_prefix: format!("t{}:", &uuid::Uuid::new_v4().simple().to_string()[..12]),
            code_secret: random_secret(),
            durability: opts.durability,
        }
    }
}

/// The api's configuration in a test app.
pub fn config(core: &CoreConfig, opts: &Options) -> Config {
    Config {
        core: core.clone(),
        addr: "127.0.0.1:0".parse().unwrap(),
        jwt_secret: JWT_SECRET.clone(),
        user_rate: opts.user_rate,
        user_burst: opts.user_burst,
        global_rate: 0,
        event_cache_ttl: Duration::from_millis(200),
        rules_stale_max: Duration::from_secs(3_600),
        rules_cache_max: 100_000,
        sold_out_holders_max: 1_000_000,
        issue_calls_in_flight: 4,
        reserve: opts.reserve,
        migrate_on_start: true,
        dashboard_ttl: Duration::from_millis(3_000),
        order_ttl: opts.order_ttl,
        upload_limit: opts.upload_limit,
        limits: opts.limits.clone(),
        campaigns: api::config::CampaignSettings {
            public_url: None,
            channels: opts.channels.clone(),
            dashboard_ttl: Duration::from_secs(60),
            max_days: 366,
        },
    }
}

impl TestApp {
    async fn wait_healthy(&self) {
        for _ in 0..200 {
            if let Ok(r) = self.http.get(format!("{}/ready", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("api at {} never became ready", self.base);
    }

    /// Runs a drain consumer until the app stops or the returned token is cancelled.
    pub fn start_drain(&self, cfg: DrainConfig) -> CancellationToken {
        let stop = self.stop.child_token();
        let drain = Drain::new(self.redis.clone(), self.db.clone(), self.keys.clone(), cfg);
        tokio::spawn(drain.run(stop.clone()));
        stop
    }

    /// Runs the coupon jobs (apalis worker and sweeper) in this process until the app stops or
    /// the returned token is cancelled.
    pub fn start_jobs(&self, cfg: JobsConfig) -> CancellationToken {
        let stop = self.stop.child_token();
        jobs::spawn(std::sync::Arc::new(JobRunner {
            db: self.db.clone(),
            generator: issuance_core::code_generator::CodeGenerator::new(&self.core.code_secret),
            owner: format!("test-{}", uuid::Uuid::new_v4().simple()),
            cfg,
            shutdown: stop.clone(),
        }));
        stop
    }

    /// Runs campaign jobs (apalis worker and sweeper) in this process with `recommender`,
    /// until the app stops or the returned token is cancelled.
    pub fn start_campaign_jobs(
        &self,
        recommender: std::sync::Arc<dyn campaigns::recommend::Recommender>,
        cfg: workers::campaign_jobs::CampaignJobsConfig,
    ) -> CancellationToken {
        let stop = self.stop.child_token();
        workers::campaign_jobs::spawn(
            std::sync::Arc::new(self.campaign_runner(recommender, &cfg)),
            cfg,
            stop.clone(),
        );
        stop
    }

    /// A campaign job runner on this app's database and Redis.
    pub fn campaign_runner(
        &self,
        recommender: std::sync::Arc<dyn campaigns::recommend::Recommender>,
        cfg: &workers::campaign_jobs::CampaignJobsConfig,
    ) -> campaigns::jobs::JobRunner {
        campaigns::jobs::JobRunner {
            engine: Engine::new(
                self.redis.clone(),
                self.db.clone(),
                self.keys.clone(),
                EngineOptions::new(issuance_core::code_generator::CodeGenerator::new(
                    &self.core.code_secret,
                )),
            ),
            recommender,
            owner: format!("test-{}", uuid::Uuid::new_v4().simple()),
            lease: cfg.lease,
            max_attempts: cfg.max_attempts,
        }
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(reqwest::Method::PUT, path, token, body).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// POST without a body.
    pub async fn post_empty(&self, path: &str, token: &str) -> Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// An admin POST that must answer `status`; returns the body.
    pub async fn admin_post(&self, path: &str, body: &Value, status: u16) -> Value {
        let r = self.post(path, &self.admin(), body).await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, status, "POST {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// An admin GET that must answer 200; returns the body.
    pub async fn admin_get(&self, path: &str) -> Value {
        let r = self.get(path, Some(&self.admin())).await;
        let got = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(got, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    /// An event, an inventory of `total` and a batch of `count` codes; returns the batch id.
    pub async fn coupon_batch(&self, total: i64, count: i64, issue_type: &str) -> i64 {
        let name = format!("event-{}", uuid::Uuid::new_v4().simple());
        let event = self
            .admin_post(
                "/api/v1/admin/events",
                &json!({"eventName": name, "fromAt": "2026-01-01T00:00:00", "untilAt": "2099-01-01T00:00:00"}),
                201,
            )
            .await;
        let inventory = self
            .admin_post(
                "/api/v1/admin/coupon-inventories",
                &json!({"eventId": event["eventId"], "inventoryName": "A", "totalCount": total,
                        "usableFromAt": "2026-01-01T00:00:00", "usableUntilAt": "2099-01-01T00:00:00"}),
                201,
            )
            .await;
        let batch = self
            .admin_post(
                "/api/v1/admin/coupon-batches",
                &json!({"inventoryId": inventory["inventoryId"], "batchName": "1회차", "issueCount": count,
                        "issueType": issue_type, "validFromAt": "2026-01-01T00:00:00",
                        "validUntilAt": "2099-01-01T00:00:00"}),
                201,
            )
            .await;
        batch["batchId"].as_i64().unwrap()
    }

    /// Polls a job until `done(job)` holds (or `limit` passes); returns the last body.
    pub async fn wait_job(&self, job_id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let started = std::time::Instant::now();
        loop {
            let job = self
                .admin_get(&format!("/api/v1/admin/coupon-jobs/{job_id}"))
                .await;
            if done(&job) || started.elapsed() > limit {
                return job;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Rows of the batch in `coupon_codes` (counting or not), and distinct codes among them.
    pub async fn code_rows(&self, batch_id: i64) -> (i64, i64) {
        sqlx::query_as("SELECT count(*), count(DISTINCT code) FROM coupon_codes WHERE batch_id = $1")
            .bind(batch_id)
            .fetch_one(&self.db)
            .await
            .unwrap()
    }

    /// An engine over the app's stores (for calls the HTTP API does not expose).
    pub fn engine(&self) -> Engine {
        Engine::new(
            self.redis.clone(),
            self.db.clone(),
            self.keys.clone(),
            EngineOptions::new(issuance_core::code_generator::CodeGenerator::new(
                &self.core.code_secret,
            )),
        )
    }

    pub fn admin(&self) -> String {
        self.jwt.mint(1, true, 3600)
    }

    pub fn user(&self, id: i64) -> String {
        self.jwt.mint(id, false, 3600)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Creates an event through the API; panics unless 201.
    pub async fn create_event(&self, key: &str, total: i64, daily: Option<i64>) -> Value {
        let body = json!({
            "eventKey": key, "name": format!("event {key}"), "totalQuantity": total, "dailyLimit": daily,
            "startAt": "2020-01-01T00:00:00Z", "endAt": "2099-12-31T23:59:59Z",
        });
        let r = self.post("/events", &self.admin(), &body).await;
        assert_eq!(r.status(), StatusCode::CREATED, "create {key}");
        r.json().await.unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(reqwest::Method::POST, path, token, body).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.send(reqwest::Method::PATCH, path, token, body).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, token: &str, body: &Value) -> Response {
        self.http
            .request(method, self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Asks for a ticket as the user themself.
    pub async fn issue(&self, key: &str, user: i64) -> Response {
        self.post(
            &format!("/events/{key}/tickets"),
            &self.user(user),
            &json!({ "userId": user }),
        )
        .await
    }

    pub async fn ticket_rows(&self, key: &str) -> i64 {
        store::tickets::count_for_event(&self.db, key).await.unwrap()
    }

    /// Waits (up to `limit`) until Postgres holds `n` tickets of `key`; returns the final count.
    pub async fn wait_rows(&self, key: &str, n: i64, limit: Duration) -> i64 {
        let started = std::time::Instant::now();
        loop {
            let rows = self.ticket_rows(key).await;
            if rows >= n || started.elapsed() > limit {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn redis_cmd<R: fred::types::FromValue>(&self, cmd: &str, args: Vec<String>) -> R {
        self.redis
            .next()
            .custom(
                fred::types::CustomCommand::new_static(leak(cmd), None, false),
                args,
            )
            .await
            .unwrap()
    }
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Asserts the SPEC §1 error body.
pub async fn assert_error(r: Response, status: u16, code: &str, path: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status for {code}");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(ct.as_deref(), Some("application/json"), "error content type");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["statusCode"], status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["path"], path, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(body["error"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    let ts = body["timestamp"].as_str().expect("timestamp");
    assert!(ts.ends_with("+09:00"), "timestamp in KST: {ts}");
    body
}

/// Job settings that notice a dead worker within seconds. The lease still outlasts the commit
/// stalls of a machine running the whole suite at once (a shorter one made jobs change hands
/// while their worker was alive).
pub fn fast_jobs() -> JobsConfig {
    JobsConfig {
        concurrency: 2,
        lease: Duration::from_millis(5_000),
        sweep_every: Duration::from_millis(250),
        poll_every: Duration::from_millis(50),
        max_attempts: 5,
    }
}

/// A real `workers` process sharing the test app's stores (to be killed with SIGKILL).
pub struct WorkersProcess {
    child: std::process::Child,
}

impl WorkersProcess {
    pub fn start(core: &CoreConfig) -> Self {
        Self::start_with(core, &[])
    }

    /// A workers process with these variables set besides (or over) the usual ones.
    pub fn start_with(core: &CoreConfig, vars: &[(&str, &str)]) -> Self {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_api")).with_file_name("workers");
        assert!(bin.exists(), "build the workers binary first: {}", bin.display());
        let child = std::process::Command::new(bin)
            .env("WORKERS_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", &core.database_url)
            .env("REDIS_URL", &core.redis_url)
            .env("KEY_PREFIX", &core.key_prefix)
            .env("CODE_SECRET", &core.code_secret)
            .env("JOB_LEASE_MS", "5000")
            .env("JOB_SWEEP_MS", "250")
            .env("JOB_POLL_MS", "50")
            .env("RUST_LOG", "warn")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn workers");
        Self { child }
    }

    /// Runs a one-shot command (`workers check`, `workers reconcile …`) to its end.
    pub fn run_once(core: &CoreConfig, args: &[&str]) -> std::process::Output {
        let bin = std::path::Path::new(env!("CARGO_BIN_EXE_api")).with_file_name("workers");
        assert!(bin.exists(), "build the workers binary first: {}", bin.display());
        std::process::Command::new(bin)
            .args(args)
            .env("DATABASE_URL", &core.database_url)
            .env("REDIS_URL", &core.redis_url)
            .env("KEY_PREFIX", &core.key_prefix)
            .env("CODE_SECRET", &core.code_secret)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run workers")
    }

    /// The process's peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// SIGKILL: no shutdown, no release of anything.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkersProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A loopback port nobody listens on (free the moment it is read; fine for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real `api` process on its own port, sharing the test app's stores.
pub struct ApiProcess {
    pub base: String,
    child: std::process::Child,
}

impl ApiProcess {
    pub async fn start(core: &CoreConfig) -> Self {
        Self::start_with(core, &[]).await
    }

    /// [`ApiProcess::start`] with these variables set on top (`RATE_LIMIT_USER_BURST`, …).
    pub async fn start_with(core: &CoreConfig, vars: &[(&str, &str)]) -> Self {
        Self::start_at(core, None, "127.0.0.1", vars).await
    }

    /// [`ApiProcess::start_with`] inside network namespace `netns` (a test host), listening on
    /// every address there and reached at `host`.
    pub async fn start_at(core: &CoreConfig, netns: Option<&str>, host: &str, vars: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = match netns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_api")]);
                c
            }
            None => std::process::Command::new(env!("CARGO_BIN_EXE_api")),
        };
        let listen = if netns.is_some() { "0.0.0.0" } else { host };
        let child = command
            .env("API_ADDR", format!("{listen}:{port}"))
            .env("DATABASE_URL", &core.database_url)
            .env("REDIS_URL", &core.redis_url)
            .env("KEY_PREFIX", &core.key_prefix)
            .env("JWT_SECRET", &*JWT_SECRET)
            .env("CODE_SECRET", &core.code_secret)
            .env("RATE_LIMIT_USER_PER_SEC", "1000")
            .env("RATE_LIMIT_USER_BURST", "1000")
            .env("RUST_LOG", "warn")
            .envs(vars.iter().copied())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn api");
        let p = Self {
            base: format!("http://{host}:{port}"),
            child,
        };
        let http = Client::new();
        for _ in 0..400 {
            if http
                .get(format!("{}/ready", p.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("api process never became ready");
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// nginx with the project's configuration (`ops/nginx/nginx.conf`) on a free port, in front
/// of these upstreams (`host:port`), from a directory of its own. Stopped when dropped.
pub struct Nginx {
    pub base: String,
    child: std::process::Child,
    dir: std::path::PathBuf,
}

impl Nginx {
    pub async fn start(upstreams: &[String]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("nginx-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let conf =
            include_str!("../../../ops/nginx/nginx.conf").replace("listen 8080", &format!("listen {port}"));
        assert!(
            conf.contains(&format!("listen {port}")),
            "the config listens on 8080"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let servers: String = upstreams
            .iter()
            .map(|u| format!("server {u} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        std::fs::write(dir.join("upstreams.conf"), servers).unwrap();
        // Debian puts it in /usr/sbin, which a user's PATH may lack.
        let bin = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|b| std::path::Path::new(b).exists())
            .unwrap_or("nginx");
        let child = std::process::Command::new(bin)
            .args([
                "-p",
                dir.to_str().unwrap(),
                "-c",
                dir.join("nginx.conf").to_str().unwrap(),
            ])
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .spawn()
            .expect("nginx is installed (scripts/services)");
        let nginx = Self {
            base: format!("http://127.0.0.1:{port}"),
            child,
            dir,
        };
        let http = Client::new();
        for _ in 0..200 {
            if http
                .get(format!("{}/health", nginx.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                return nginx;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("nginx never answered");
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (a SIGKILL would leave them behind).
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `redis-server` of a test's own, on a free loopback port with its own directory: for the
/// faults a shared Redis must not suffer (killed, stopped, reconfigured). Killed when dropped.
pub struct RedisServer {
    pub port: u16,
    /// The address it listens on: loopback, or a test host's (see [`RedisServer::start_at`]).
    pub host: String,
    /// The network namespace it runs in, if not this one.
    netns: Option<String>,
    child: std::process::Child,
    dir: std::path::PathBuf,
    args: Vec<String>,
}

impl RedisServer {
    /// Starts one with these extra arguments (`--appendonly yes`, `--replicaof …`) and waits
    /// until it answers.
    pub async fn start(args: &[&str]) -> Self {
        Self::start_at("127.0.0.1", None, args).await
    }

    /// [`RedisServer::start`] listening on `host`, inside network namespace `netns` if given
    /// (a test host of its own; `host` must be reachable from here).
    pub async fn start_at(host: &str, netns: Option<&str>, args: &[&str]) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("redis-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let netns = netns.map(str::to_owned);
        let child = Self::spawn(&netns, host, port, &dir, &args);
        let server = Self {
            port,
            host: host.to_owned(),
            netns,
            child,
            dir,
            args,
        };
        server.wait_answering().await;
        server
    }

    fn spawn(
        netns: &Option<String>,
        host: &str,
        port: u16,
        dir: &std::path::Path,
        args: &[String],
    ) -> std::process::Child {
        let mut command = match netns {
            Some(ns) => {
                let mut c = std::process::Command::new("ip");
                c.args(["netns", "exec", ns, "redis-server"]);
                c
            }
            None => std::process::Command::new("redis-server"),
        };
        command
            .args(["--port", &port.to_string(), "--bind", host, "--save", ""])
            .args(["--dir", dir.to_str().unwrap(), "--appendonly", "no"])
            .args(args)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services)")
    }

    /// SIGKILL, then the same server again on the same port and directory (its AOF, if any).
    pub async fn kill_and_restart(&mut self) {
        self.kill();
        self.restart().await;
    }

    /// SIGKILL, nothing else (see [`RedisServer::restart`]).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The same server again after [`RedisServer::kill`], on the same port and directory.
    pub async fn restart(&mut self) {
        self.restart_with(&[]).await;
    }

    /// [`RedisServer::restart`] with these arguments added from now on (`--replicaof …`).
    pub async fn restart_with(&mut self, args: &[&str]) {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self.child = Self::spawn(&self.netns, &self.host, self.port, &self.dir, &self.args);
        self.wait_answering().await;
    }

    async fn wait_answering(&self) {
        let port = self.port;
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect((self.host.as_str(), port)) {
                use std::io::{Read, Write};
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on {port} never answered");
    }

    pub fn url(&self) -> String {
        format!("redis://{}:{}", self.host, self.port)
    }

    /// A client of its own.
    pub async fn client(&self) -> fred::clients::Client {
        use fred::prelude::*;
        let client = Builder::from_config(Config::from_url(&self.url()).unwrap())
            .build()
            .unwrap();
        client.init().await.unwrap();
        client
    }

    /// Runs a command and returns its answer.
    pub async fn cmd<R: fred::types::FromValue>(&self, cmd: &str, args: Vec<String>) -> R {
        use fred::prelude::*;
        let client = self.client().await;
        let reply = client
            .custom(
                fred::types::CustomCommand::new_static(leak(cmd), None, false),
                args,
            )
            .await
            .unwrap();
        let _ = client.quit().await;
        reply
    }

    /// SIGSTOP: the process hangs with its sockets open (a frozen host).
    pub fn stop(&self) {
        assert!(self.signal("STOP"));
    }

    /// SIGCONT after [`RedisServer::stop`].
    pub fn resume(&self) {
        assert!(self.signal("CONT"));
    }

    fn signal(&self, sig: &str) -> bool {
        std::process::Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // In case the test left it stopped.
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisServer {
    /// A sentinel watching the primary on `primary` as `issuance` (quorum 2, down after 1 s).
    pub async fn sentinel(primary: u16) -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("sentinel-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor issuance 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds issuance 1000\n\
                 sentinel failover-timeout issuance 1000\n\
                 sentinel parallel-syncs issuance 2\n",
                dir.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new("redis-server")
            .args([conf.to_str().unwrap(), "--sentinel"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let server = Self {
            port,
            host: "127.0.0.1".into(),
            netns: None,
            child,
            dir,
            args: Vec::new(),
        };
        // A sentinel answers PING like a server.
        server.wait_answering().await;
        server
    }
}
