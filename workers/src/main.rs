//! `workers`: runs the issuance-stream drain and the coupon jobs, and serves its ops endpoints,
//! until SIGTERM/SIGINT.

use std::{sync::Arc, time::Duration};

use issuer::{Keys, connect};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use workers::{
    config::Config,
    drain::Drain,
    jobs::{self, JobRunner},
    ops,
};

/// Same allocator as the api (see `api/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cfg = Config::from_env()?;
    tracing::info!(?cfg, "starting workers");

    let metrics = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".into()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ],
        )?
        .set_buckets_for_metric(
            Matcher::Full("issuer_drain_batch_size".into()),
            &[1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0],
        )?
        .install_recorder()?;
    let db = connect::postgres(&cfg.core).await?;
    connect::migrate(&db).await?;
    let redis = connect::redis(&cfg.core).await?;

    let shutdown = CancellationToken::new();
    let drain = Drain::new(
        redis.clone(),
        db.clone(),
        Keys::new(&cfg.core.key_prefix),
        cfg.drain.clone(),
    );
    let drain_task = tokio::spawn(drain.run(shutdown.clone()));
    if cfg.core.code_secret == issuer::config::DEV_CODE_SECRET {
        tracing::warn!("CODE_SECRET is not set: coupon codes use the local development secret");
    }
    let jobs_task = jobs::spawn(Arc::new(JobRunner {
        db: db.clone(),
        generator: issuer::codes::CodeGenerator::new(&cfg.core.code_secret),
        owner: cfg.drain.consumer.clone(),
        cfg: cfg.jobs.clone(),
        shutdown: shutdown.clone(),
    }));

    let expiry_task = tokio::spawn(workers::expiry::run(
        db.clone(),
        cfg.expiry_every,
        shutdown.clone(),
    ));

    let upkeep = metrics.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(5)).await;
            upkeep.run_upkeep();
        }
    });

    let listener = tokio::net::TcpListener::bind(cfg.ops_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "ops endpoints listening");
    let app = ops::router(ops::OpsState { redis, db, metrics });
    let stop = shutdown.clone();
    tokio::spawn(async move {
        issuer::shutdown::signal().await;
        stop.cancel();
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    drain_task.await?;
    jobs_task.await?;
    expiry_task.await?;
    Ok(())
}
