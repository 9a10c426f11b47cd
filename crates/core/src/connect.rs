//! Opening the pools every process needs, and running the migrations.

use std::time::Duration;

use fred::{
    interfaces::{ClusterInterface, EventInterface, PubsubInterface},
    prelude::{Builder, ClientLike, Config as RedisConfig, Pool, ReconnectPolicy, ServerConfig},
    types::config::Options,
};
use sqlx::{
    PgPool,
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::{config::CoreConfig, error::Error};

/// Opens the Postgres pool.
pub async fn postgres(cfg: &CoreConfig) -> Result<PgPool, Error> {
    Ok(PgPoolOptions::new()
        .max_connections(cfg.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&cfg.database_url)
        .await?)
}

/// Opens the Postgres pool of a request-serving process: every statement is ended by the server
/// after `statement_timeout`. A request that times out drops its query, but Postgres would go
/// on running it (or waiting on its lock) and keep the connection busy; the server-side limit
/// ends that work too. Long statements that are bounded otherwise (the code export, which ends
/// with its client) lift it on their own connection.
pub async fn postgres_bounded(cfg: &CoreConfig, statement_timeout: Duration) -> Result<PgPool, Error> {
    let options = cfg
        .database_url
        .parse::<PgConnectOptions>()?
        .options([("statement_timeout", format!("{}", statement_timeout.as_millis()))]);
    Ok(PgPoolOptions::new()
        .max_connections(cfg.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await?)
}

/// Applies pending migrations: ours, then apalis' own (schema `apalis`, its own migration
/// table). sqlx holds an advisory lock meanwhile, so processes that start together apply each
/// migration once.
pub async fn migrate(pool: &PgPool) -> Result<(), Error> {
    sqlx::migrate!("../../migrations")
        .run(pool)
        .await
        .map_err(|e| Error::Db(e.into()))?;
    apalis_postgres::PostgresStorage::<()>::setup(pool)
        .await
        .map_err(|e| match e {
            apalis_postgres::Error::Database(db) => Error::Db(db),
            other => Error::protocol("apalis setup", other.to_string()),
        })
}

/// Opens the Redis pool. Commands time out after two seconds so a stalled Redis turns into an
/// error answer instead of a pile of waiting requests; the pool reconnects on its own.
///
/// A `redis-sentinel://` URL (`redis-sentinel://:PASS@s1:26379/0?sentinelServiceName=issuance&
/// node=s2:26379&node=s3:26379`) finds the primary through the sentinels, and the pool follows
/// their failovers (see [`follow_sentinels`]).
pub async fn redis(cfg: &CoreConfig) -> Result<Pool, Error> {
    let config = RedisConfig::from_url(&cfg.redis_url)?;
    if config.server.is_clustered() && config.database.is_some_and(|db| db != 0) {
        return Err(fred::error::Error::new(
            fred::error::ErrorKind::Config,
            "a Redis Cluster has only db 0: drop the db index from REDIS_URL",
        )
        .into());
    }
    let server = config.server.clone();
    // Through sentinels or on a cluster, a call stuck on a primary that hangs holds its group's
    // slot until it times out: shorter bounds let the calls behind it reach the promoted
    // replica sooner.
    let followed = matches!(config.server, ServerConfig::Sentinel { .. }) || config.server.is_clustered();
    let (connect, command, policy) = if followed {
        (
            Duration::from_millis(500),
            Duration::from_secs(1),
            ReconnectPolicy::new_constant(0, 100),
        )
    } else {
        (
            Duration::from_secs(2),
            Duration::from_secs(2),
            // At most half a second between attempts: a Redis that comes back is used again
            // (and the drain persists what waited) within a second.
            ReconnectPolicy::new_exponential(0, 100, 500, 2),
        )
    };
    let pool = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = connect;
            c.internal_command_timeout = connect;
        })
        .with_performance_config(|p| p.default_command_timeout = command)
        .set_policy(policy)
        .build_pool(cfg.redis_pool_size.max(1))?;
    pool.init().await?;
    follow_sentinels(&pool, &server);
    follow_cluster(&pool, &server);
    Ok(pool)
}

/// How often the cluster's primaries are pinged, and how long one may take to answer.
const CLUSTER_CHECK: Duration = Duration::from_millis(250);
const CLUSTER_PING_TIMEOUT: Duration = Duration::from_millis(500);

/// Follows a Redis Cluster failover even when the old primary hangs instead of dying. fred
/// moves a slot when a node answers MOVED or its connection breaks; a stopped process does
/// neither, so calls to its slots would time out until it resumed. Every 250 ms each primary
/// of the pool's slot map is pinged; while one has not answered within 500 ms, every client
/// of the pool refreshes its slot map (`CLUSTER SLOTS` from a node that answers), so once the
/// cluster promotes a replica the next refresh routes its slots there. A healthy cluster costs
/// one PING per primary per check; nothing is watched off a cluster.
fn follow_cluster(pool: &Pool, server: &ServerConfig) {
    if !server.is_clustered() {
        return;
    }
    let pool = pool.clone();
    tokio::spawn(async move {
        let mut checks = tokio::time::interval(CLUSTER_CHECK);
        checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            checks.tick().await;
            let client = pool.next();
            let Some(routing) = client.cached_cluster_state() else {
                continue;
            };
            let pings = routing.unique_primary_nodes().into_iter().map(|node| {
                let once = Options {
                    cluster_node: Some(node),
                    timeout: Some(CLUSTER_PING_TIMEOUT),
                    max_attempts: Some(1),
                    fail_fast: true,
                    ..Options::default()
                };
                async move { client.with_options(&once).ping::<()>(None).await }
            });
            let silent = futures::future::join_all(pings)
                .await
                .iter()
                .filter(|r| r.is_err())
                .count();
            if silent == 0 {
                continue;
            }
            tracing::warn!(
                silent,
                "a cluster primary does not answer: refreshing the slot map"
            );
            let refreshes = pool.clients().iter().map(|c| c.sync_cluster());
            for refreshed in futures::future::join_all(refreshes).await {
                if let Err(e) = refreshed {
                    tracing::warn!(error = %e, "refreshing the slot map failed");
                }
            }
        }
    });
}

/// Follows a Sentinel failover even when the old primary hangs instead of dying: a stopped
/// process keeps its sockets open, so no error reaches the pool, which would keep timing out on
/// it and, once it resumed, write to it until the sentinels demote it (those writes are lost).
/// Every sentinel announces the switch on its `+switch-master` channel; on the first
/// announcement the pool reconnects, asking the sentinels for the new primary (every sentinel
/// announces it: the later reconnections find the same primary). Each sentinel is watched by
/// its own client, which reconnects and subscribes again on its own. Nothing is watched for a
/// plain `redis://` URL.
fn follow_sentinels(pool: &Pool, server: &ServerConfig) {
    let ServerConfig::Sentinel { hosts, .. } = server else {
        return;
    };
    for sentinel in hosts {
        let (pool, sentinel) = (pool.clone(), sentinel.clone());
        tokio::spawn(async move {
            let config = RedisConfig {
                server: ServerConfig::new_centralized(sentinel.host.to_string(), sentinel.port),
                ..RedisConfig::default()
            };
            let Ok(subscriber) = Builder::from_config(config)
                .with_connection_config(|c| c.connection_timeout = Duration::from_millis(500))
                .set_policy(ReconnectPolicy::new_constant(0, 500))
                .build()
            else {
                return;
            };
            // A sentinel that restarts forgets its subscribers: subscribe again on reconnect.
            let again = subscriber.clone();
            let _resubscribe = subscriber.on_reconnect(move |_| {
                let again = again.clone();
                async move {
                    let _ = again.subscribe("+switch-master").await;
                    Ok(())
                }
            });
            let _events = subscriber.on_message(move |message| {
                let pool = pool.clone();
                async move {
                    tracing::warn!(announcement = ?message.value, "Sentinel switched the primary: reconnecting");
                    if let Err(e) = pool.force_reconnection().await {
                        tracing::warn!(error = %e, "reconnecting after a switch failed");
                    }
                    Ok(())
                }
            });
            loop {
                match subscriber.init().await {
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(%sentinel, error = %e, "sentinel unreachable, retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
            if let Err(e) = subscriber.subscribe("+switch-master").await {
                tracing::warn!(%sentinel, error = %e, "could not watch the sentinel");
            }
            // The subscriber lives as long as the process.
            std::future::pending::<()>().await;
        });
    }
}

/// Whether each backing service answers; serialized as `/ready`'s body,
/// `{"redis": "up"|"down", "postgres": "up"|"down"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Readiness {
    /// Redis answered PING.
    pub redis: Up,
    /// Postgres answered a trivial query.
    pub postgres: Up,
}

/// Whether a backing service answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Up {
    /// It answered.
    Up,
    /// It did not.
    Down,
}

impl From<bool> for Up {
    fn from(answered: bool) -> Self {
        if answered { Up::Up } else { Up::Down }
    }
}

impl Readiness {
    /// Both answered.
    pub fn ready(&self) -> bool {
        self.redis == Up::Up && self.postgres == Up::Up
    }

    /// The HTTP status a workers process's `/ready` answers: 200, or 503 when either is down
    /// (its loops need both).
    pub fn http_status(&self) -> u16 {
        if self.ready() { 200 } else { 503 }
    }

    /// The HTTP status the api's `/ready` answers: 200 while Redis answers, since the hot path
    /// (issuing tickets and coupons of known scopes) works through a Postgres outage; the body
    /// still says that Postgres is down, and the commerce and admin routes answer 503 meanwhile.
    pub fn issuing_http_status(&self) -> u16 {
        if self.redis == Up::Up { 200 } else { 503 }
    }
}

/// How long a probe waits for an answer.
const PROBE_LIMIT: Duration = Duration::from_secs(1);

/// Whether Postgres answers a `SELECT 1` within a second; recorded as the gauge
/// `issuer_postgres_up` (1 or 0) for the alert rules.
pub async fn postgres_answers(db: &PgPool) -> bool {
    let up = matches!(
        tokio::time::timeout(PROBE_LIMIT, sqlx::query("SELECT 1").execute(db)).await,
        Ok(Ok(_))
    );
    metrics::gauge!("issuer_postgres_up").set(f64::from(u8::from(up)));
    up
}

/// Pings Redis and Postgres (each must answer within a second), and records the answers as the
/// gauges `issuer_redis_up` and `issuer_postgres_up` (1 or 0) for the alert rules.
pub async fn probe(redis: &Pool, db: &PgPool) -> Readiness {
    let (redis, postgres) = tokio::join!(
        tokio::time::timeout(PROBE_LIMIT, redis.ping::<String>(None)),
        postgres_answers(db)
    );
    let redis = matches!(redis, Ok(Ok(_)));
    metrics::gauge!("issuer_redis_up").set(f64::from(u8::from(redis)));
    Readiness {
        redis: redis.into(),
        postgres: postgres.into(),
    }
}
