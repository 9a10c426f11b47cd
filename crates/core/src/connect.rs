//! Opening the pools every process needs, and running the migrations.

use std::time::Duration;

use fred::prelude::{Builder, ClientLike, Config as RedisConfig, Pool, ReconnectPolicy};
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
pub async fn redis(cfg: &CoreConfig) -> Result<Pool, Error> {
    let config = RedisConfig::from_url(&cfg.redis_url)?;
    let pool = Builder::from_config(config)
        .with_connection_config(|c| c.connection_timeout = Duration::from_secs(2))
        .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(2))
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build_pool(cfg.redis_pool_size.max(1))?;
    pool.init().await?;
    Ok(pool)
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
