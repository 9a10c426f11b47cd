//! Recommendation and banner jobs: queued on apalis like coupon jobs, run by the workers.
//!
//! `campaign_jobs` is the truth about a job; the apalis task (queue [`CAMPAIGN_JOBS`]) only says
//! "run job X" and is pushed in the transaction that writes the row. A worker claims the job
//! with a lease and renews it with every progress step; a worker that dies stops renewing, and
//! the [`sweep`] of any workers process hands the job on (a new task) or, after
//! `max_attempts` claims, fails it with that reason. Banners get ids derived from the job and
//! style and are written idempotently, so a resumed job keeps the banners already drawn.
//!
//! A job that ended is cached in Redis for an hour (the seed's job-status cache): an ended job
//! never changes, so the cache can never show a stale state; running jobs are read from Postgres.

use std::{sync::Arc, time::Duration};

use apalis::prelude::TaskBuilder;
use engine::Engine;
use fred::{interfaces::KeysInterface, types::Expiration};
use issuance_core::{
    enums::{BannerStyle, CampaignJobKind, CampaignJobStatus},
    error::Error,
};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use store::campaign_jobs::CampaignJob;
use uuid::Uuid;

use crate::{
    banner::{self, BannerText, Palette},
    model::{Recommendation, StoreInfo},
    recommend::{Brief, Recommender},
};

/// The queue's name in `apalis.jobs`.
pub const CAMPAIGN_JOBS: &str = "campaign-jobs";

/// How long an ended job stays in the Redis cache.
pub const CACHE_TTL_SECS: i64 = 3_600;

/// The task: run (or resume) this job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCampaignJob {
    /// `campaign_jobs.job_id`.
    pub job_id: Uuid,
}

/// Pushes a task for `job_id` inside the caller's transaction.
pub async fn push(tx: &mut PgConnection, job_id: Uuid) -> Result<(), Error> {
    let args = serde_json::to_vec(&RunCampaignJob { job_id })
        .map_err(|e| Error::protocol("campaign job task", e.to_string()))?;
    let task = TaskBuilder::new(args).max_attempts(5).build();
    apalis_postgres::queries::push_tasks(tx, CAMPAIGN_JOBS, vec![task])
        .await
        .map_err(|e| match e {
            apalis_postgres::Error::Database(db) => Error::Db(db),
            other => Error::protocol("apalis push", other.to_string()),
        })
}

/// A job as the status route shows it (and as the cache keeps it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    /// The job.
    pub job_id: Uuid,
    /// Its campaign.
    pub campaign_id: Uuid,
    /// The campaign's owner (who may read it).
    pub owner_id: i64,
    /// Recommendations or banners.
    pub kind: CampaignJobKind,
    /// Status.
    pub status: CampaignJobStatus,
    /// 0–100.
    pub progress: i32,
    /// The recommendations (a completed recommendation job).
    pub recommendations: Option<Vec<Recommendation>>,
    /// The banners by style (a completed banner job).
    pub images: Option<Images>,
    /// Why it failed.
    pub error: Option<String>,
}

/// The three banners of a banner job, by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Images {
    /// Simple.
    pub simple: Uuid,
    /// Fancy.
    pub fancy: Uuid,
    /// Trendy.
    pub trendy: Uuid,
}

impl Images {
    /// The id of `style`'s banner.
    pub fn of(&self, style: BannerStyle) -> Uuid {
        match style {
            BannerStyle::Simple => self.simple,
            BannerStyle::Fancy => self.fancy,
            BannerStyle::Trendy => self.trendy,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct RecommendationResult {
    recommendations: Vec<Recommendation>,
    source: String,
}

#[derive(Serialize, Deserialize)]
struct ImagesResult {
    images: Images,
}

impl JobState {
    /// The state of a stored job.
    pub fn of(job: &CampaignJob, owner_id: i64) -> Self {
        let result = job.result.clone().unwrap_or(serde_json::Value::Null);
        let (recommendations, images) = match job.kind {
            CampaignJobKind::Recommendation => (
                serde_json::from_value::<RecommendationResult>(result)
                    .ok()
                    .map(|r| r.recommendations),
                None,
            ),
            CampaignJobKind::Images => (
                None,
                serde_json::from_value::<ImagesResult>(result)
                    .ok()
                    .map(|r| r.images),
            ),
        };
        Self {
            job_id: job.job_id,
            campaign_id: job.campaign_id,
            owner_id,
            kind: job.kind,
            status: job.status,
            progress: job.progress,
            recommendations,
            images,
            error: job.error.clone(),
        }
    }
}

/// The id a job's banner of `style` gets: the same on every run of the job, so a resumed job
/// finds what it drew before.
pub fn image_id(job_id: Uuid, style: BannerStyle) -> Uuid {
    let n = BannerStyle::ALL.iter().position(|s| *s == style).unwrap_or(0) as u128 + 1;
    Uuid::from_u128(job_id.as_u128() ^ (n << 64))
}

/// Caches an ended job (best effort: the route falls back to Postgres).
pub async fn cache(engine: &Engine, state: &JobState) {
    if !state.status.is_final() {
        return;
    }
    let Ok(json) = serde_json::to_string(state) else {
        return;
    };
    let key = engine.keys().campaign_job(&state.job_id.to_string());
    if let Err(e) = engine
        .redis()
        .next()
        .set::<(), _, _>(key, json, Some(Expiration::EX(CACHE_TTL_SECS)), None, false)
        .await
    {
        tracing::debug!(error = %e, "campaign job not cached");
    }
}

/// An ended job from the cache.
pub async fn cached(engine: &Engine, job_id: Uuid) -> Option<JobState> {
    let key = engine.keys().campaign_job(&job_id.to_string());
    let json: Option<String> = engine.redis().next().get(key).await.ok()?;
    serde_json::from_str(&json?).ok()
}

/// What a workers process needs to run campaign jobs.
pub struct JobRunner {
    /// Postgres and Redis.
    pub engine: Engine,
    /// Where recommendations come from.
    pub recommender: Arc<dyn Recommender>,
    /// This process's name (the lease owner).
    pub owner: String,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Claims after which a job fails instead of being handed on.
    pub max_attempts: i32,
}

/// Why a run ended without a result.
enum Failure {
    /// The job cannot succeed: record the reason.
    Job(String),
    /// Postgres or Redis trouble: leave the job to be resumed.
    Infra(Error),
    /// Another worker holds the job now.
    Lost,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Infra(e)
    }
}

impl JobRunner {
    /// Claims job `job_id` and runs it to its end. A job held by a live worker, or already
    /// ended, is left alone.
    pub async fn run(&self, job_id: Uuid) -> Result<(), Error> {
        let db = self.engine.db();
        let Some(job) = store::campaign_jobs::claim(db, job_id, &self.owner, self.lease).await? else {
            return Ok(());
        };
        let campaign = store::campaigns::find(db, job.campaign_id)
            .await?
            .ok_or_else(|| Error::protocol("campaign job", "campaign missing"))?;
        tracing::info!(%job_id, kind = ?job.kind, attempt = job.attempts, "campaign job claimed");
        let outcome = if job.attempts > self.max_attempts {
            Err(Failure::Job(format!(
                "작업을 처리하던 워커가 {}번 중단되어 작업을 포기했습니다.",
                job.attempts - 1
            )))
        } else {
            match job.kind {
                CampaignJobKind::Recommendation => self.recommend(&job, &campaign).await,
                CampaignJobKind::Images => self.draw(&job, &campaign).await,
            }
        };
        let label = match job.kind {
            CampaignJobKind::Recommendation => "recommendation",
            CampaignJobKind::Images => "images",
        };
        let ended = match outcome {
            Ok(result) => store::campaign_jobs::complete(db, job_id, &self.owner, &result).await?,
            Err(Failure::Job(reason)) => {
                tracing::warn!(%job_id, reason, "campaign job failed");
                store::campaign_jobs::fail(db, job_id, Some(&self.owner), &reason).await?
            }
            Err(Failure::Lost) => None,
            Err(Failure::Infra(e)) => return Err(e),
        };
        if let Some(ended) = ended {
            let status = match ended.status {
                CampaignJobStatus::Completed => "COMPLETED",
                _ => "FAILED",
            };
            metrics::counter!("issuer_campaign_jobs_finished_total", "kind" => label, "status" => status)
                .increment(1);
            cache(&self.engine, &JobState::of(&ended, campaign.owner_id)).await;
        }
        Ok(())
    }

    async fn step(&self, job_id: Uuid, progress: i32) -> Result<(), Failure> {
        if store::campaign_jobs::progress(self.engine.db(), job_id, &self.owner, self.lease, progress).await?
        {
            Ok(())
        } else {
            Err(Failure::Lost)
        }
    }

    async fn recommend(
        &self,
        job: &CampaignJob,
        c: &store::campaigns::CampaignRow,
    ) -> Result<serde_json::Value, Failure> {
        self.step(job.job_id, 10).await?;
        let brief = Brief {
            objective: c.objective,
            store: StoreInfo {
                store_name: c.store_name.clone(),
                industry: c.industry.clone(),
                region: c.region.clone(),
                address: c.address.clone(),
            },
        };
        // The service call runs beside lease renewals, so a slow answer is not taken for a
        // dead worker.
        let call = self.recommender.recommend(&brief);
        tokio::pin!(call);
        let recommendations = loop {
            tokio::select! {
                r = &mut call => break r.map_err(|e| Failure::Job(e.to_string()))?,
                _ = tokio::time::sleep(self.lease / 3) => self.step(job.job_id, 50).await?,
            }
        };
        serde_json::to_value(RecommendationResult {
            recommendations,
            source: self.recommender.name().to_owned(),
        })
        .map_err(|e| Failure::Infra(Error::protocol("recommendations", e.to_string())))
    }

    async fn draw(
        &self,
        job: &CampaignJob,
        c: &store::campaigns::CampaignRow,
    ) -> Result<serde_json::Value, Failure> {
        let text = banner_text(c, None);
        for (i, style) in BannerStyle::ALL.into_iter().enumerate() {
            let id = image_id(job.job_id, style);
            if store::campaign_images::info(self.engine.db(), id)
                .await?
                .is_none()
            {
                let text = text.clone();
                let png =
                    tokio::task::spawn_blocking(move || banner::banner(style, &text, &Palette::of(style)))
                        .await
                        .map_err(|e| Failure::Infra(Error::protocol("banner", e.to_string())))?
                        .map_err(|e| Failure::Job(e.to_string()))?;
                store::campaign_images::insert(
                    self.engine.db(),
                    &store::campaign_images::NewImage {
                        image_id: id,
                        campaign_id: c.campaign_id,
                        style,
                        png: &png.bytes,
                        width: png.width as i32,
                        height: png.height as i32,
                        source_id: None,
                    },
                )
                .await?;
            }
            self.step(job.job_id, 30 * (i as i32 + 1)).await?;
        }
        let images = Images {
            simple: image_id(job.job_id, BannerStyle::Simple),
            fancy: image_id(job.job_id, BannerStyle::Fancy),
            trendy: image_id(job.job_id, BannerStyle::Trendy),
        };
        serde_json::to_value(ImagesResult { images })
            .map_err(|e| Failure::Infra(Error::protocol("images", e.to_string())))
    }

    /// Hands on jobs whose worker stopped (lease expired) or that nobody took for
    /// `pending_for`; fails those claimed `max_attempts` times. Returns how many it touched.
    pub async fn sweep(&self, pending_for: Duration) -> Result<usize, Error> {
        let db = self.engine.db();
        let stalled = store::campaign_jobs::stalled(db, pending_for).await?;
        for (job_id, attempts) in &stalled {
            if *attempts >= self.max_attempts {
                let reason = format!("작업을 처리하던 워커가 {attempts}번 중단되어 작업을 포기했습니다.");
                if let Some(ended) = store::campaign_jobs::fail(db, *job_id, None, &reason).await? {
                    let owner = store::campaigns::find(db, ended.campaign_id)
                        .await?
                        .map_or(0, |c| c.owner_id);
                    cache(&self.engine, &JobState::of(&ended, owner)).await;
                }
                continue;
            }
            let mut tx = db.begin().await?;
            push(&mut tx, *job_id).await?;
            store::campaign_jobs::touch(&mut *tx, *job_id).await?;
            tx.commit().await?;
            tracing::info!(%job_id, attempts, "campaign job handed on");
        }
        Ok(stalled.len())
    }
}

/// The texts of a campaign's banner: its chosen recommendation, or the edited content.
pub fn banner_text(
    c: &store::campaigns::CampaignRow,
    edited: Option<&crate::model::EditedContent>,
) -> BannerText {
    let pick = |edited: Option<&Option<String>>, chosen: &Option<String>| {
        edited
            .and_then(|e| e.as_deref())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .or_else(|| chosen.clone())
            .unwrap_or_default()
    };
    let period = match (c.start_date, c.end_date) {
        (Some(s), Some(e)) => format!("{} ~ {}", s.format("%Y.%m.%d"), e.format("%Y.%m.%d")),
        _ => String::new(),
    };
    BannerText {
        store: c.store_name.clone(),
        title: pick(edited.map(|e| &e.title), &c.title),
        prize: pick(edited.map(|e| &e.prize_text), &c.prize_name),
        participation: pick(edited.map(|e| &e.participation_text), &c.participation_method),
        period,
    }
}
