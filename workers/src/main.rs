//! `workers`: runs the background work until SIGTERM/SIGINT, or a helper command.
//!
//! ```text
//! workers                                       the drain, coupon jobs, order expiry, outbox
//!                                               relay and best-products job, with /health,
//!                                               /ready and /metrics on WORKERS_ADDR
//! workers receiver [--addr A] [--fail-rate F]   a stand-in data platform (default
//!                                               127.0.0.1:9099; F of requests answered 503)
//! workers check [--save-baseline FILE]          check the invariants (exit 1 if one fails),
//!               [--baseline FILE]               or record the stock baseline for a later check
//! workers reconcile [--repair]                  every scope's holders in Redis against its rows
//!                                               in Postgres (exit 1 if one differs); --repair
//!                                               rebuilds each Redis copy that differs
//! ```

use std::{sync::Arc, time::Duration};

use engine::{Engine, EngineOptions, Keys};
use issuance_core::connect;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use workers::{
    config::Config,
    drain::Drain,
    jobs::{self, JobRunner},
    ops,
    receiver::Receiver,
    relay::Relay,
};

/// Same allocator as the api (see `api/src/main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("run") => run().await,
        Some("receiver") => receiver(&args[1..]).await,
        Some("check") => check(&args[1..]).await,
        Some("reconcile") => reconcile(&args[1..]).await,
        Some(other) => {
            Err(format!("unknown command {other:?}; use run, receiver, check or reconcile").into())
        }
    }
}

async fn receiver(args: &[String]) -> Result<(), BoxError> {
    let mut addr = "127.0.0.1:9099".to_owned();
    let mut fail_rate = 0.0_f64;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--addr" => addr = it.next().ok_or("--addr needs a value")?.clone(),
            "--fail-rate" => fail_rate = it.next().ok_or("--fail-rate needs a value")?.parse()?,
            other => return Err(format!("unknown option {other:?}").into()),
        }
    }
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(addr = %listener.local_addr()?, fail_rate, "data-platform receiver listening");
    axum::serve(listener, Receiver::failing(fail_rate).router())
        .with_graceful_shutdown(issuance_core::shutdown::signal())
        .await?;
    Ok(())
}

/// How long `workers check` waits for the drain to empty the issuance streams.
const DRAIN_WAIT: Duration = Duration::from_secs(30);

async fn check(args: &[String]) -> Result<(), BoxError> {
    let (mut save, mut load) = (None, None);
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--save-baseline" => save = Some(it.next().ok_or("--save-baseline needs a file")?.clone()),
            "--baseline" => load = Some(it.next().ok_or("--baseline needs a file")?.clone()),
            other => return Err(format!("unknown option {other:?}").into()),
        }
    }
    let core = issuance_core::config::CoreConfig::from_env()?;
    let db = connect::postgres(&core).await?;
    require_schema(&db).await?;
    if let Some(file) = save {
        let baseline = workers::check::baseline(&db).await?;
        std::fs::write(&file, serde_json::to_vec(&baseline)?)?;
        println!("baseline of {} products written to {file}", baseline.stock.len());
        return Ok(());
    }
    let baseline: Option<workers::check::Baseline> = match load {
        Some(file) => Some(serde_json::from_slice(&std::fs::read(&file)?)?),
        None => None,
    };
    let redis = connect::redis(&core).await?;
    let keys = Keys::new(&core.key_prefix);
    let mut findings = workers::check::check_issuance(&db, &redis, &keys, DRAIN_WAIT).await?;
    findings.extend(workers::check::check(&db, baseline.as_ref()).await?);
    let mut failed = 0;
    for f in &findings {
        let verdict = match f.verdict {
            workers::check::Verdict::Pass => "PASS",
            workers::check::Verdict::Fail => {
                failed += 1;
                "FAIL"
            }
            workers::check::Verdict::Skip => "SKIP",
        };
        println!("{verdict}  {:<70} {}", f.name, f.detail);
    }
    if failed > 0 {
        return Err(format!("{failed} invariant(s) broken").into());
    }
    Ok(())
}

/// The one-shot commands read the schema and never migrate: on a database without it they say
/// so, instead of failing on the first missing table.
async fn require_schema(db: &sqlx::PgPool) -> Result<(), BoxError> {
    if store::settings::schema_present(db).await? {
        return Ok(());
    }
    Err("the database at DATABASE_URL has no schema yet: run `api migrate` (or start the api or the workers once)".into())
}

async fn reconcile(args: &[String]) -> Result<(), BoxError> {
    let repair = match args {
        [] => false,
        [flag] if flag == "--repair" => true,
        other => return Err(format!("unknown options {other:?}; use --repair or nothing").into()),
    };
    let core = issuance_core::config::CoreConfig::from_env()?;
    let db = connect::postgres(&core).await?;
    require_schema(&db).await?;
    let redis = connect::redis(&core).await?;
    let codes = issuance_core::code_generator::CodeGenerator::new(&core.code_secret);
    let engine = Engine::new(redis, db, Keys::new(&core.key_prefix), EngineOptions::new(codes));
    let lines = workers::reconcile::reconcile(&engine, repair).await?;
    let differ = lines.iter().filter(|l| l.report.broken()).count();
    for line in &lines {
        println!("{}", line.render());
    }
    println!("{} scopes compared, {differ} differ", lines.len());
    if differ > 0 {
        return Err(format!("{differ} scope(s) differ between Redis and Postgres").into());
    }
    Ok(())
}

async fn run() -> Result<(), BoxError> {
    let cfg = Config::from_env()?;
    tracing::info!(?cfg, "starting workers");

    let metrics = issuance_core::telemetry::exporter().install_recorder()?;
    jobs::export_counters_at_zero();
    engine::script::Lua::export_at_zero();
    let db = connect::postgres(&cfg.core).await?;
    connect::migrate(&db).await?;
    let generator = issuance_core::code_generator::CodeGenerator::new(&cfg.core.code_secret);
    store::settings::pin_code_secret(&db, &generator).await?;
    let redis = connect::redis(&cfg.core).await?;

    let shutdown = CancellationToken::new();
    let drain = Drain::new(
        redis.clone(),
        db.clone(),
        Keys::new(&cfg.core.key_prefix),
        cfg.drain.clone(),
    );
    let drain_task = tokio::spawn(drain.run(shutdown.clone()));
    let jobs_task = jobs::spawn(Arc::new(JobRunner {
        db: db.clone(),
        generator: generator.clone(),
        owner: cfg.drain.consumer.clone(),
        cfg: cfg.jobs.clone(),
        shutdown: shutdown.clone(),
    }));

    let campaign_engine = Engine::new(
        redis.clone(),
        db.clone(),
        Keys::new(&cfg.core.key_prefix),
        EngineOptions::new(generator.clone()),
    );
    let hand_back_task = tokio::spawn(workers::hand_back::run(
        campaign_engine.clone(),
        workers::hand_back::EVERY,
        workers::hand_back::IDLE_FOR,
        shutdown.clone(),
    ));
    let campaign_task = workers::campaign_jobs::spawn(
        Arc::new(campaigns::jobs::JobRunner {
            engine: campaign_engine,
            recommender: workers::campaign_jobs::recommender(&cfg.campaign_jobs),
            owner: cfg.drain.consumer.clone(),
            lease: cfg.campaign_jobs.lease,
            max_attempts: cfg.campaign_jobs.max_attempts,
        }),
        cfg.campaign_jobs.clone(),
        shutdown.clone(),
    );

    let expiry_task = tokio::spawn(workers::expiry::run(
        db.clone(),
        cfg.expiry_every,
        shutdown.clone(),
    ));

    let relay_task = tokio::spawn(Relay::new(db.clone(), cfg.relay.clone())?.run(shutdown.clone()));
    let best_task =
        workers::best_products::spawn(db.clone(), cfg.best_products_cron.clone(), shutdown.clone());

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
        issuance_core::shutdown::signal().await;
        stop.cancel();
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    drain_task.await?;
    jobs_task.await?;
    campaign_task.await?;
    expiry_task.await?;
    hand_back_task.await?;
    relay_task.await?;
    best_task.await?;
    Ok(())
}
