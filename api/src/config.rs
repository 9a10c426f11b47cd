//! Settings of an api process, from the environment. Every variable is in docs/configuration.md.

use std::{fmt, net::SocketAddr, time::Duration};

use campaigns::channels::ChannelConfig;
use engine::reservations::ReserveOptions;
use issuance_core::{
    config::{ConfigError, CoreConfig, millis_or, parse_or, secret, var_or},
    enums::ChannelType,
};

use crate::server::Limits;

/// Everything an api process needs.
#[derive(Clone)]
pub struct Config {
    /// Connections and key prefix shared with the workers.
    pub core: CoreConfig,
    /// `API_ADDR`: where the API (and `/health`, `/ready`, `/metrics`) is served.
    pub addr: SocketAddr,
    /// `JWT_SECRET`: HS256 secret of the bearer tokens; required, at least 32 bytes.
    pub jwt_secret: String,
    /// `RATE_LIMIT_USER_PER_SEC`: issue requests per second per user (0 = no limit).
    pub user_rate: u32,
    /// `RATE_LIMIT_USER_BURST`: how many of them may come at once.
    pub user_burst: u32,
    /// `RATE_LIMIT_GLOBAL_PER_SEC`: issue requests per second for this process (0 = no limit).
    pub global_rate: u32,
    /// `EVENT_CACHE_TTL_MS`: how long an event's rules are reused before Postgres is asked again.
    pub event_cache_ttl: Duration,
    /// `RULES_STALE_MAX_MS`: how long a scope's rules are served from the last copy while
    /// Postgres cannot be reached.
    pub rules_stale_max: Duration,
    /// `RULES_CACHE_MAX`: most scopes (and misses) whose rules a process keeps.
    pub rules_cache_max: u64,
    /// `SOLD_OUT_HOLDERS_MAX`: largest sold-out event answered from memory.
    pub sold_out_holders_max: usize,
    /// `ISSUE_CALLS_IN_FLIGHT`: `issue.lua` calls in flight per event; requests arriving meanwhile
    /// are decided together in the next call.
    pub issue_calls_in_flight: usize,
    /// `RESERVE_AHEAD_MS` and `RESERVE_BLOCK_MIN`: how much of a scope Postgres reserves ahead
    /// of Redis (about this much time of issues per block; 0 reserves the whole quantity at
    /// once), and the smallest block (see `engine::reservations`).
    pub reserve: ReserveOptions,
    /// `MIGRATE_ON_START`: apply pending migrations at start-up.
    pub migrate_on_start: bool,
    /// `DASHBOARD_CACHE_MS`: how long the admin dashboard is served from Redis.
    pub dashboard_ttl: Duration,
    /// `ORDER_TTL_MS`: how long an order waits for its payment before it fails.
    pub order_ttl: Duration,
    /// `UPLOAD_MAX_BYTES`: largest partner CSV accepted.
    pub upload_limit: usize,
    /// `HTTP_*`: connection and request bounds.
    pub limits: Limits,
    /// Marketing campaigns: public URL, channels, caches.
    pub campaigns: CampaignSettings,
}

/// Settings of the campaign routes.
#[derive(Clone, Debug)]
pub struct CampaignSettings {
    /// The api's public base URL for banner URLs and claim links (`PUBLIC_URL`; default: the
    /// address it listens on).
    pub public_url: Option<String>,
    /// The channels' webhooks, timeout and circuit breaker.
    pub channels: ChannelConfig,
    /// How long a campaign dashboard is cached.
    pub dashboard_ttl: Duration,
    /// Longest campaign period in days.
    pub max_days: u64,
}

impl CampaignSettings {
    /// `PUBLIC_URL`, `CHANNEL_BASE_URL`, `CHANNEL_URL_<TYPE>`, `CHANNEL_TIMEOUT_MS`,
    /// `CHANNEL_BREAKER_FAILURES`, `CHANNEL_BREAKER_OPEN_MS`, `CAMPAIGN_DASHBOARD_CACHE_MS`,
    /// `CAMPAIGN_MAX_DAYS`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let base = var_or("CHANNEL_BASE_URL", "");
        let mut urls = if base.is_empty() {
            Default::default()
        } else {
            ChannelConfig::under(&base)
        };
        for channel in ChannelType::ALL {
            let name = format!("CHANNEL_URL_{}", channel.as_str());
            if let Ok(url) = std::env::var(&name)
                && !url.is_empty()
            {
                urls.insert(channel, url);
            }
        }
        let public_url = var_or("PUBLIC_URL", "");
        Ok(Self {
            public_url: (!public_url.is_empty()).then_some(public_url),
            channels: ChannelConfig {
                urls,
                timeout: millis_or("CHANNEL_TIMEOUT_MS", Duration::from_millis(5_000))?,
                failures_to_open: parse_or("CHANNEL_BREAKER_FAILURES", 3)?,
                open_for: millis_or("CHANNEL_BREAKER_OPEN_MS", Duration::from_millis(30_000))?,
            },
            dashboard_ttl: millis_or("CAMPAIGN_DASHBOARD_CACHE_MS", Duration::from_millis(60_000))?,
            max_days: parse_or("CAMPAIGN_MAX_DAYS", 366)?,
        })
    }
}

impl Config {
    /// Reads the environment, with local defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let addr = var_or("API_ADDR", "127.0.0.1:8080");
        Ok(Self {
            core: CoreConfig::from_env()?,
            addr: addr.parse().map_err(|e| ConfigError {
                name: "API_ADDR",
                reason: format!("{e}"),
            })?,
            jwt_secret: secret("JWT_SECRET")?,
            user_rate: parse_or("RATE_LIMIT_USER_PER_SEC", 5)?,
            user_burst: parse_or("RATE_LIMIT_USER_BURST", 10)?,
            global_rate: parse_or("RATE_LIMIT_GLOBAL_PER_SEC", 200_000)?,
            event_cache_ttl: millis_or("EVENT_CACHE_TTL_MS", Duration::from_millis(1_000))?,
            rules_stale_max: millis_or("RULES_STALE_MAX_MS", Duration::from_millis(3_600_000))?,
            rules_cache_max: parse_or("RULES_CACHE_MAX", 100_000)?,
            sold_out_holders_max: parse_or("SOLD_OUT_HOLDERS_MAX", 1_000_000)?,
            issue_calls_in_flight: parse_or("ISSUE_CALLS_IN_FLIGHT", 1)?,
            reserve: ReserveOptions {
                ahead: millis_or("RESERVE_AHEAD_MS", ReserveOptions::default().ahead)?,
                min_block: parse_or("RESERVE_BLOCK_MIN", ReserveOptions::default().min_block)?.max(1),
            },
            migrate_on_start: parse_or("MIGRATE_ON_START", true)?,
            dashboard_ttl: millis_or("DASHBOARD_CACHE_MS", Duration::from_millis(3_000))?,
            order_ttl: millis_or("ORDER_TTL_MS", Duration::from_millis(300_000))?,
            upload_limit: parse_or("UPLOAD_MAX_BYTES", 64 * 1024 * 1024)?,
            limits: limits_from_env()?,
            campaigns: CampaignSettings::from_env()?,
        })
    }
}

/// The `HTTP_*` variables, over [`Limits::default`].
fn limits_from_env() -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let ms = |name, default: Duration| -> Result<Duration, ConfigError> {
        let v = millis_or(name, default)?;
        if v.is_zero() {
            return Err(ConfigError {
                name,
                reason: "must be at least 1 ms".into(),
            });
        }
        Ok(v)
    };
    let count = |name, default: usize| -> Result<usize, ConfigError> {
        let v: usize = parse_or(name, default)?;
        if v == 0 {
            return Err(ConfigError {
                name,
                reason: "must be at least 1".into(),
            });
        }
        Ok(v)
    };
    Ok(Limits {
        header_read_timeout: ms("HTTP_HEADER_READ_TIMEOUT_MS", d.header_read_timeout)?,
        body_timeout: ms("HTTP_BODY_TIMEOUT_MS", d.body_timeout)?,
        request_timeout: ms("HTTP_REQUEST_TIMEOUT_MS", d.request_timeout)?,
        keep_alive_idle: ms("HTTP_KEEP_ALIVE_IDLE_MS", d.keep_alive_idle)?,
        max_connections: count("HTTP_MAX_CONNECTIONS", d.max_connections)?,
        max_in_flight: count("HTTP_MAX_IN_FLIGHT", d.max_in_flight)?,
        shutdown_grace: ms("HTTP_SHUTDOWN_GRACE_MS", d.shutdown_grace)?,
        listen_backlog: u32::try_from(count("HTTP_LISTEN_BACKLOG", d.listen_backlog as usize)?).map_err(
            |_| ConfigError {
                name: "HTTP_LISTEN_BACKLOG",
                reason: "must fit in 32 bits".into(),
            },
        )?,
    })
}

impl fmt::Debug for Config {
    // The JWT secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("core", &self.core)
            .field("addr", &self.addr)
            .field("jwt_secret", &"***")
            .field("user_rate", &self.user_rate)
            .field("user_burst", &self.user_burst)
            .field("global_rate", &self.global_rate)
            .field("event_cache_ttl", &self.event_cache_ttl)
            .field("rules_stale_max", &self.rules_stale_max)
            .field("rules_cache_max", &self.rules_cache_max)
            .field("sold_out_holders_max", &self.sold_out_holders_max)
            .field("issue_calls_in_flight", &self.issue_calls_in_flight)
            .field("reserve", &self.reserve)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("dashboard_ttl", &self.dashboard_ttl)
            .field("order_ttl", &self.order_ttl)
            .field("upload_limit", &self.upload_limit)
            .field("limits", &self.limits)
            .field("campaigns", &self.campaigns)
            .finish()
    }
}
