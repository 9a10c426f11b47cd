//! Campaign jobs (recommendations, banners) on the apalis queue `campaign-jobs`, beside the
//! coupon jobs: the worker runs each task's job ([`campaigns::jobs::JobRunner::run`]) and a
//! sweeper hands on jobs whose worker died and fails those that died too often.

use std::{sync::Arc, time::Duration};

use apalis::prelude::{BoxDynError, Data};
use campaigns::{
    jobs::{CAMPAIGN_JOBS, JobRunner, RunCampaignJob},
    recommend::{Builtin, ChatCompletions, ChatConfig, Recommender},
};
use tokio_util::sync::CancellationToken;

/// How campaign jobs run.
#[derive(Clone, Debug)]
pub struct CampaignJobsConfig {
    /// The chat-completions service (`RECOMMENDER_URL` …); none: the built-in recommender.
    pub recommender: Option<ChatConfig>,
    /// `CAMPAIGN_JOB_LEASE_MS`: a worker silent this long is taken for dead.
    pub lease: Duration,
    /// `CAMPAIGN_JOB_MAX_ATTEMPTS`: claims before a job fails.
    pub max_attempts: i32,
    /// `CAMPAIGN_JOB_PENDING_MS`: a job nobody took this long gets a new task.
    pub pending_for: Duration,
    /// How often the sweeper looks.
    pub sweep_every: Duration,
    /// Jobs this process runs at once.
    pub concurrency: usize,
    /// How often the queue is polled.
    pub poll_every: Duration,
}

impl Default for CampaignJobsConfig {
    fn default() -> Self {
        Self {
            recommender: None,
            lease: Duration::from_secs(10),
            max_attempts: 3,
            pending_for: Duration::from_secs(30),
            sweep_every: Duration::from_secs(1),
            concurrency: 4,
            poll_every: Duration::from_millis(200),
        }
    }
}

/// The recommender the configuration names.
pub fn recommender(cfg: &CampaignJobsConfig) -> Arc<dyn Recommender> {
    match &cfg.recommender {
        Some(chat) => Arc::new(ChatCompletions::new(chat.clone())),
        None => Arc::new(Builtin),
    }
}

async fn handle(task: RunCampaignJob, runner: Data<Arc<JobRunner>>) -> Result<(), BoxDynError> {
    runner
        .run(task.job_id)
        .await
        .map_err(|e| Box::new(e) as BoxDynError)
}

/// Starts the apalis worker and the sweeper; both stop when `shutdown` is cancelled.
pub fn spawn(
    runner: Arc<JobRunner>,
    cfg: CampaignJobsConfig,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    use apalis::{
        layers::WorkerBuilderExt,
        prelude::{BackendExt, Monitor, Strategy, WorkerBuilder},
    };
    use apalis_postgres::{Config as QueueConfig, PostgresStorage};

    let sweeper = {
        let runner = Arc::clone(&runner);
        let stop = shutdown.clone();
        let (every, pending_for) = (cfg.sweep_every, cfg.pending_for);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                if let Err(e) = runner.sweep(pending_for).await {
                    tracing::warn!(error = %e, "campaign job sweep failed");
                }
            }
        })
    };
    tokio::spawn(async move {
        let storage = PostgresStorage::<RunCampaignJob>::new(runner.engine.db())
            .with_config(
                QueueConfig::default()
                    .queue(CAMPAIGN_JOBS)
                    .heartbeat_interval(Duration::from_secs(5)),
            )
            .poll_with_strategy(Strategy::new().interval(cfg.poll_every));
        let name = runner.owner.clone();
        let concurrency = cfg.concurrency.max(1);
        let data = Arc::clone(&runner);
        let monitor = Monitor::new()
            .register(move |i| {
                WorkerBuilder::new(format!("{name}-campaigns-{i}"))
                    .backend(storage.clone())
                    .concurrency(concurrency)
                    .data(Arc::clone(&data))
                    .build(handle)
            })
            .shutdown_timeout(Duration::from_secs(10));
        let stop = shutdown.clone();
        let signal = async move {
            stop.cancelled().await;
            Ok(())
        };
        if let Err(e) = monitor.run_with_signal(signal).await {
            tracing::error!(error = %e, "campaign job worker stopped");
        }
        let _ = sweeper.await;
    })
}
