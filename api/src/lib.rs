//! The HTTP API of the issuance engine.
//!
//! # Layout
//!
//! * [`run`] serves the app on a listener until a shutdown future resolves; [`app`] builds the
//!   router from an [`AppState`] (tests use both).
//! * [`config`], [`state`] (with [`ops_memo`]), [`error`] (the one error type and body), [`extract`] (auth and
//!   bodies whose rejections are `ApiError`s), [`auth`], [`ratelimit`], [`telemetry`].
//! * [`server`] (connections: limits, header and idle timeouts, bounded shutdown) and [`guard`]
//!   (requests: load shedding, body and answer deadlines).
//! * [`routes`]: the one route list (it serves and documents) and thin handlers; the rules live
//!   in the `engine`, `shop`, `admin` and `campaigns` crates, the SQL in `store`. [`params`]: the
//!   time and paging parameters every route reads the same way.
//! * [`openapi`]: the frame of the OpenAPI document and the modifiers that finish it.
//! * [`web`]: the campaign owner's page, files from `web/campaigns/`.

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod guard;
pub mod hot;
pub mod openapi;
pub mod ops_memo;
pub mod params;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod state;
pub mod telemetry;
mod timer;
pub mod web;

use std::{future::Future, sync::Arc, time::Duration};

use engine::{Engine, EngineOptions, Keys};
use issuance_core::connect;
use tokio::net::TcpListener;

use crate::{auth::Jwt, config::Config, ratelimit::RateLimits, state::AppState};

/// The application for a state: the router, with the issue routes answered ahead of it.
pub fn app(state: AppState) -> hot::App {
    hot::App::new(routes::router(state.clone()), state)
}

/// Connects, migrates (when configured), and serves on `listener` until `shutdown` resolves;
/// requests in flight then finish, within the shutdown grace period.
pub async fn run(
    cfg: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let codes = issuance_core::code_generator::CodeGenerator::new(&cfg.core.code_secret);
    let db = connect::postgres_bounded(&cfg.core, cfg.limits.request_timeout).await?;
    if cfg.migrate_on_start {
        connect::migrate(&db).await?;
    }
    store::settings::pin_code_secret(&db, &codes).await?;
    let redis = connect::redis(&cfg.core).await?;
    let engine = Engine::new(
        redis,
        db,
        Keys::new(&cfg.core.key_prefix),
        EngineOptions {
            event_cache_ttl: cfg.event_cache_ttl,
            sold_out_holders_max: cfg.sold_out_holders_max,
            issue_calls_in_flight: cfg.issue_calls_in_flight,
            admission: codes.admission_keys(),
            codes,
            order_ttl: cfg.order_ttl,
            rules_stale_max: cfg.rules_stale_max,
            rules_cache_max: cfg.rules_cache_max,
            durability: cfg.core.durability,
            reserve: cfg.reserve,
        },
    );
    // Refuse to serve on a Redis that would not keep what REDIS_DURABILITY promises.
    engine.check_durability().await?;
    let db_watch = engine.watch_db(Duration::from_millis(500));
    let limits = Arc::new(RateLimits::new(cfg.user_rate, cfg.user_burst, cfg.global_rate));
    let housekeeping = Arc::clone(&limits);
    let sweeper = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(10)).await;
            housekeeping.forget_idle();
        }
    });
    let campaigns = campaigns::Campaigns::new(
        engine.clone(),
        campaigns::channels::Distributor::new(cfg.campaigns.channels.clone()),
        campaigns::lifecycle::Options {
            public_url: match &cfg.campaigns.public_url {
                Some(url) => url.clone(),
                None => format!("http://{}", listener.local_addr()?),
            },
            dashboard_ttl: cfg.campaigns.dashboard_ttl,
            max_days: cfg.campaigns.max_days,
        },
    );
    let metrics = telemetry::metrics_handle();
    engine::script::Lua::export_at_zero();
    let state = AppState::new(state::Shared {
        engine,
        campaigns,
        jwt: Arc::new(Jwt::new(&cfg.jwt_secret)),
        limits,
        metrics,
        dashboard: admin::dashboard::DashboardOptions {
            ttl: cfg.dashboard_ttl,
        },
        upload_limit: cfg.upload_limit,
        ops: Arc::default(),
        guard: guard::Guard::new(
            cfg.limits.max_in_flight,
            cfg.limits.body_timeout,
            cfg.limits.request_timeout,
        ),
    });
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    let served = server::serve(listener, app(state), &cfg.limits, shutdown).await;
    sweeper.abort();
    db_watch.abort();
    Ok(served?)
}
