//! `GET /api/v1/admin/dashboard`: events by status, live issuance of the running golden-ticket
//! events (from Redis), and the jobs in flight.
//!
//! A room of admins polling it must cost one computation, not one each: the result is cached in
//! Redis for [`DashboardOptions::ttl`], and on a miss one caller (per deployment) computes it
//! under a short lock while the others wait briefly for its result.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use engine::Engine;
use fred::{
    interfaces::KeysInterface,
    types::{Expiration, SetOptions},
};
use issuance_core::{clock, enums::EventStatus, error::Error};
use serde::{Deserialize, Serialize};
use store::coupon_jobs::Job;

/// The dashboard.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Dashboard {
    /// Live admin events per status (every status present).
    pub events_by_status: BTreeMap<String, i64>,
    /// Golden-ticket events running now, with their counts from Redis.
    pub live_issuance: Vec<LiveIssuance>,
    /// Jobs PENDING or IN_PROGRESS, oldest first (at most 20).
    pub jobs_in_progress: Vec<JobSummary>,
    /// When this was computed (KST).
    pub computed_at: String,
}

/// One running golden-ticket event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct LiveIssuance {
    /// Its key.
    pub event_key: String,
    /// Its name.
    pub name: String,
    /// Quantity on offer.
    pub total_quantity: i64,
    /// Issued so far.
    pub issued_total: i64,
    /// Issued today (KST).
    pub issued_today: i64,
    /// Left.
    pub remaining_quantity: i64,
}

/// One live job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct JobSummary {
    /// Its id.
    pub job_id: String,
    /// Its type.
    pub job_type: String,
    /// Its batch.
    pub batch_id: i64,
    /// PENDING or IN_PROGRESS.
    pub job_status: String,
    /// Done.
    pub processed: i64,
    /// In all.
    pub total: i64,
    /// Percent done.
    pub percent: f64,
}

impl From<&Job> for JobSummary {
    fn from(j: &Job) -> Self {
        let kind = serde_json::to_value(j.job_type)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            job_id: j.job_id.to_string(),
            job_type: kind,
            batch_id: j.batch_id,
            job_status: j.job_status.as_str().to_owned(),
            processed: i64::from(j.processed),
            total: i64::from(j.total),
            percent: j.percent(),
        }
    }
}

/// How long the cached dashboard lives.
#[derive(Clone, Copy, Debug)]
pub struct DashboardOptions {
    /// Cache lifetime.
    pub ttl: Duration,
}

/// How long others wait for the computing caller before computing themselves.
const WAIT_FOR_PEER: Duration = Duration::from_millis(1_500);

/// The dashboard, from the cache when fresh.
pub async fn dashboard(engine: &Engine, options: DashboardOptions) -> Result<Dashboard, Error> {
    let redis = engine.redis().next();
    let key = engine.keys().dashboard();
    let lock = format!("{key}:lock");
    if let Some(hit) = cached(redis, &key).await? {
        return Ok(hit);
    }
    let ttl_ms = options.ttl.as_millis().max(1) as i64;
    let won: Option<String> = redis
        .set(
            &lock,
            "1",
            Some(Expiration::PX(2_000)),
            Some(SetOptions::NX),
            false,
        )
        .await?;
    if won.is_none() {
        let started = std::time::Instant::now();
        while started.elapsed() < WAIT_FOR_PEER {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some(hit) = cached(redis, &key).await? {
                return Ok(hit);
            }
        }
    }
    let fresh = compute(engine, Utc::now()).await?;
    let json = serde_json::to_string(&fresh).map_err(|e| Error::protocol("dashboard", e.to_string()))?;
    let _: () = redis
        .set(&key, json, Some(Expiration::PX(ttl_ms)), None, false)
        .await?;
    if won.is_some() {
        let _: i64 = redis.del(&lock).await?;
    }
    metrics::counter!("issuer_dashboard_computations_total").increment(1);
    Ok(fresh)
}

async fn cached(redis: &fred::clients::Client, key: &str) -> Result<Option<Dashboard>, Error> {
    let raw: Option<String> = redis.get(key).await?;
    Ok(raw.and_then(|s| serde_json::from_str(&s).ok()))
}

async fn compute(engine: &Engine, now: DateTime<Utc>) -> Result<Dashboard, Error> {
    let counts = store::dashboard::events_by_status(engine.db()).await?;
    let mut events_by_status: BTreeMap<String, i64> = EventStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    for (status, n) in counts {
        events_by_status.insert(status.as_str().to_owned(), n);
    }
    let live_issuance = engine
        .running_events()
        .await?
        .into_iter()
        .map(|s| LiveIssuance {
            remaining_quantity: s.remaining(),
            event_key: s.event.event_key,
            name: s.event.name,
            total_quantity: i64::from(s.event.total_quantity),
            issued_total: s.issued,
            issued_today: s.today,
        })
        .collect();
    let jobs = store::coupon_jobs::live_or_recent(engine.db(), std::time::Duration::ZERO, 20).await?;
    Ok(Dashboard {
        events_by_status,
        live_issuance,
        jobs_in_progress: jobs.iter().map(JobSummary::from).collect(),
        computed_at: clock::format_kst(now),
    })
}
