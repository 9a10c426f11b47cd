//! Settings of a workers process, from the environment.

use std::{net::SocketAddr, time::Duration};

use engine::confirm::Confirm;
use issuance_core::config::{ConfigError, CoreConfig, millis_or, parse_or, var_or};
use shop::outbox::Backoff;

use crate::relay::RelayConfig;

/// Everything a workers process needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Connections and key prefix shared with the api.
    pub core: CoreConfig,
    /// `WORKERS_ADDR`: where `/health`, `/ready` and `/metrics` are served.
    pub ops_addr: SocketAddr,
    /// The drain's settings.
    pub drain: DrainConfig,
    /// The coupon jobs' settings.
    pub jobs: JobsConfig,
    /// Campaign recommendation and banner jobs.
    pub campaign_jobs: crate::campaign_jobs::CampaignJobsConfig,
    /// `ORDER_EXPIRY_POLL_MS`: how often unpaid orders past their deadline are looked for.
    pub expiry_every: Duration,
    /// The outbox relay's settings.
    pub relay: RelayConfig,
    /// `BEST_PRODUCTS_CRON`: when the best-products snapshot is computed (cron with seconds,
    /// read in Asia/Seoul).
    pub best_products_cron: cron::Schedule,
}

/// How coupon jobs are run.
#[derive(Clone, Debug)]
pub struct JobsConfig {
    /// `JOB_CONCURRENCY`: jobs this process runs at once.
    pub concurrency: usize,
    /// `JOB_LEASE_MS`: a worker silent this long (no committed chunk) is taken for dead and its
    /// job handed on.
    pub lease: std::time::Duration,
    /// `JOB_SWEEP_MS`: how often to look for such jobs and for leftovers to delete.
    pub sweep_every: std::time::Duration,
    /// `JOB_POLL_MS`: how often the queue is polled for new tasks.
    pub poll_every: std::time::Duration,
    /// `JOB_MAX_ATTEMPTS`: workers that may take a job before it fails.
    pub max_attempts: i32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            concurrency: 2,
            lease: Duration::from_secs(15),
            sweep_every: Duration::from_secs(2),
            poll_every: Duration::from_millis(200),
            max_attempts: 5,
        }
    }
}

/// How the drain reads and persists.
#[derive(Clone, Debug)]
pub struct DrainConfig {
    /// `WORKER_ID`: this consumer's name in the group; unique per process (default: host, pid
    /// and a random part, so a restarted process never inherits a dead one's entries by name).
    pub consumer: String,
    /// `DRAIN_CONSUMERS`: consumers in this process. Each reads its share of every stream (the
    /// group hands an entry to one of them) and commits on its own Postgres connection, so one
    /// hot stream is written by several transactions at once.
    pub consumers: usize,
    /// `DRAIN_BATCH_MIN`: the most entries read from a stream at once when it is quiet.
    pub batch_min: u64,
    /// `DRAIN_BATCH_MAX`: the most entries read and committed at once: a stream's read size
    /// doubles after every full read up to this, and falls back to twice what the last read
    /// found.
    pub batch_max: u64,
    /// `DRAIN_IDLE_MS`: pause after a pass that read no full batch.
    pub idle: Duration,
    /// `DRAIN_CLAIM_IDLE_MS`: an entry unacknowledged this long belongs to a dead consumer and is
    /// taken over.
    pub claim_idle: Duration,
    /// `DRAIN_CLAIM_EVERY_MS`: how often to look for such entries.
    pub claim_every: Duration,
    /// `DRAIN_FORGET_IDLE_MS`: consumer names idle this long with nothing pending are removed
    /// from the group (left behind by processes that are gone).
    pub forget_idle: Duration,
    /// How often the stream registry is re-read (a new event's stream is found within this) and
    /// the lag gauges refreshed.
    pub refresh_every: Duration,
    /// `DRAIN_HEARTBEAT_MS`: lifetime of this consumer's liveness key, renewed every quarter of
    /// it; a consumer whose key expired is dead and its pending entries are taken at once.
    pub heartbeat: Duration,
    /// `DRAIN_DEAD_CHECK_MS`: how often to look for pending entries of dead consumers.
    pub dead_check_every: Duration,
    /// Replica mode (`REDIS_DURABILITY`): replicas that must hold what a batch read before it is
    /// committed, so Postgres never holds an issue a promoted replica could lack.
    pub confirm: Option<Confirm>,
}

impl Config {
    /// Reads the environment, with local defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let ops_addr = var_or("WORKERS_ADDR", "127.0.0.1:9091");
        let core = CoreConfig::from_env()?;
        Ok(Self {
            drain: DrainConfig {
                confirm: Confirm::of(&core.durability),
                ..DrainConfig::from_env()?
            },
            core,
            ops_addr: ops_addr.parse().map_err(|e| ConfigError {
                name: "WORKERS_ADDR",
                reason: format!("{e}"),
            })?,
            jobs: JobsConfig {
                concurrency: parse_or("JOB_CONCURRENCY", 2)?,
                lease: millis_or("JOB_LEASE_MS", Duration::from_millis(15_000))?,
                sweep_every: millis_or("JOB_SWEEP_MS", Duration::from_millis(2_000))?,
                poll_every: millis_or("JOB_POLL_MS", Duration::from_millis(200))?,
                max_attempts: parse_or("JOB_MAX_ATTEMPTS", 5)?,
            },
            campaign_jobs: campaign_jobs_from_env()?,
            expiry_every: millis_or("ORDER_EXPIRY_POLL_MS", Duration::from_millis(500))?,
            relay: RelayConfig {
                url: var_or("DATA_PLATFORM_URL", "http://127.0.0.1:9099/events"),
                poll_every: millis_or("OUTBOX_POLL_MS", Duration::from_millis(200))?,
                batch_size: parse_or("OUTBOX_BATCH_SIZE", 200)?,
                timeout: millis_or("OUTBOX_TIMEOUT_MS", Duration::from_millis(5_000))?,
                concurrency: parse_or("OUTBOX_CONCURRENCY", 16)?,
                backoff: Backoff {
                    base: millis_or("OUTBOX_BACKOFF_BASE_MS", Duration::from_millis(1_000))?,
                    max: millis_or("OUTBOX_BACKOFF_MAX_MS", Duration::from_millis(300_000))?,
                    max_attempts: parse_or("OUTBOX_MAX_ATTEMPTS", 16)?,
                },
            },
            best_products_cron: parse_or(
                "BEST_PRODUCTS_CRON",
                crate::best_products::DEFAULT_SCHEDULE
                    .parse()
                    .expect("a valid schedule"),
            )?,
        })
    }
}

/// `RECOMMENDER_*` and `CAMPAIGN_JOB_*`.
fn campaign_jobs_from_env() -> Result<crate::campaign_jobs::CampaignJobsConfig, ConfigError> {
    let d = crate::campaign_jobs::CampaignJobsConfig::default();
    let url = var_or("RECOMMENDER_URL", "");
    let recommender = if url.is_empty() {
        None
    } else {
        let key = var_or("RECOMMENDER_API_KEY", "");
        Some(campaigns::recommend::ChatConfig {
            url,
            model: var_or("RECOMMENDER_MODEL", "gpt-4o-mini"),
            api_key: (!key.is_empty()).then_some(key),
            timeout: millis_or("RECOMMENDER_TIMEOUT_MS", Duration::from_millis(20_000))?,
            retries: parse_or("RECOMMENDER_RETRIES", 2)?,
        })
    };
    Ok(crate::campaign_jobs::CampaignJobsConfig {
        recommender,
        lease: millis_or("CAMPAIGN_JOB_LEASE_MS", d.lease)?,
        max_attempts: parse_or("CAMPAIGN_JOB_MAX_ATTEMPTS", d.max_attempts)?,
        pending_for: millis_or("CAMPAIGN_JOB_PENDING_MS", d.pending_for)?,
        ..d
    })
}

impl DrainConfig {
    fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let cfg = Self {
            consumer: var_or("WORKER_ID", &d.consumer),
            consumers: parse_or("DRAIN_CONSUMERS", d.consumers)?,
            batch_min: parse_or("DRAIN_BATCH_MIN", d.batch_min)?,
            batch_max: parse_or("DRAIN_BATCH_MAX", d.batch_max)?,
            idle: millis_or("DRAIN_IDLE_MS", d.idle)?,
            claim_idle: millis_or("DRAIN_CLAIM_IDLE_MS", d.claim_idle)?,
            claim_every: millis_or("DRAIN_CLAIM_EVERY_MS", d.claim_every)?,
            forget_idle: millis_or("DRAIN_FORGET_IDLE_MS", d.forget_idle)?,
            refresh_every: d.refresh_every,
            heartbeat: millis_or("DRAIN_HEARTBEAT_MS", d.heartbeat)?,
            dead_check_every: millis_or("DRAIN_DEAD_CHECK_MS", d.dead_check_every)?,
            confirm: None,
        };
        if cfg.consumers == 0 {
            return Err(ConfigError {
                name: "DRAIN_CONSUMERS",
                reason: "at least one consumer is needed".into(),
            });
        }
        if cfg.batch_min == 0 || cfg.batch_min > cfg.batch_max {
            return Err(ConfigError {
                name: "DRAIN_BATCH_MIN",
                reason: format!("must be between 1 and DRAIN_BATCH_MAX ({})", cfg.batch_max),
            });
        }
        Ok(cfg)
    }

    /// `<host>-<pid>-<random>`.
    pub fn default_consumer() -> String {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "host".into());
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        format!("{host}-{}-{nonce:08x}", std::process::id())
    }
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self {
            consumer: Self::default_consumer(),
            consumers: 2,
            batch_min: 500,
            batch_max: 20_000,
            idle: Duration::from_millis(10),
            claim_idle: Duration::from_secs(30),
            claim_every: Duration::from_secs(5),
            forget_idle: Duration::from_secs(3_600),
            refresh_every: Duration::from_millis(200),
            heartbeat: Duration::from_millis(1_500),
            dead_check_every: Duration::from_millis(250),
            confirm: None,
        }
    }
}
