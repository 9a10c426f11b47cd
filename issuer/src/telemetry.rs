//! What the api and the workers share about metrics: one exporter configuration, and the gauges
//! measured when Prometheus scrapes (rather than kept up to date on every change).
//!
//! | gauge | set by | what |
//! |---|---|---|
//! | `issuer_stream_lag_entries`, `issuer_stream_lag_seconds`, `issuer_stream_length_entries` | api, workers | entries not yet persisted, the oldest one's age, and what the streams hold |
//! | `issuer_scope_lag_entries{scope}`, `issuer_scope_lag_seconds{scope}` | workers | the same per scope (`gt:<event>`, `cb:<batch>`) with a live stream |
//! | `issuer_event_issued{event}`, `issuer_event_remaining{event}` | api | golden-ticket events running now |
//! | `issuer_coupon_issued{batch}`, `issuer_coupon_remaining{batch}` | api | first-come batches issuing now |
//! | `issuer_coupon_jobs{status}` | workers | coupon jobs per status |
//! | `issuer_coupon_job_progress_ratio{job,batch,type}` | workers | progress of each live job, and of those finished in the last [`RECENT_JOBS`] |
//!
//! A gauge nobody sets for [`GAUGE_IDLE`] (an event that stopped running, a finished job) drops
//! out of the exposition instead of showing its last value forever.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;
use sqlx::PgPool;

use crate::{Engine, error::Error, repo};

/// Latency buckets (every `*_seconds` histogram): a tenth of a millisecond to ten seconds.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Size buckets (every `*_batch_size` histogram: requests per Lua call, records per drain write).
pub const BATCH_SIZE_BUCKETS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 20000.0,
];

/// How long an unset gauge stays in the exposition.
pub const GAUGE_IDLE: Duration = Duration::from_secs(120);

/// The exporter both binaries install.
pub fn exporter() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), &BATCH_SIZE_BUCKETS))
        .expect("bucket lists are not empty")
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
}

/// Issued and remaining quantity of every golden-ticket event running now and every first-come
/// coupon batch issuing now (issued as the admin API counts it: the batch's holders in Redis; a
/// batch nobody asked for yet has issued 0).
pub async fn record_issuance(engine: &Engine) -> Result<(), Error> {
    for e in engine.running_events().await? {
        let key = e.event.event_key.clone();
        metrics::gauge!("issuer_event_remaining", "event" => key.clone()).set(e.remaining() as f64);
        metrics::gauge!("issuer_event_issued", "event" => key).set(e.issued as f64);
    }
    let batches = repo::batches::issuing(engine.db()).await?;
    let ids: Vec<i64> = batches.iter().map(|(id, _)| *id).collect();
    let issued_counts = crate::admin::issued_counts(engine, &ids).await?;
    for (batch, total) in batches {
        let issued = issued_counts.get(&batch).copied().unwrap_or(0);
        let label = batch.to_string();
        metrics::gauge!("issuer_coupon_issued", "batch" => label.clone()).set(issued as f64);
        metrics::gauge!("issuer_coupon_remaining", "batch" => label)
            .set((i64::from(total) - issued).max(0) as f64);
    }
    Ok(())
}

/// Finished jobs keep showing their last progress this long.
pub const RECENT_JOBS: Duration = Duration::from_secs(600);

/// The drain's lag per scope, and over all of them.
pub fn record_lags(lags: &[(String, crate::stream::Lag)]) {
    for (stream, lag) in lags {
        let scope = crate::Keys::scope_of_stream(stream).unwrap_or(stream).to_owned();
        metrics::gauge!("issuer_scope_lag_entries", "scope" => scope.clone()).set(lag.entries as f64);
        metrics::gauge!("issuer_scope_lag_seconds", "scope" => scope).set(lag.age_ms as f64 / 1000.0);
    }
    record_lag(&crate::stream::Lag::sum(lags.iter().map(|(_, lag)| lag)));
}

/// The drain's lag over every stream ([`crate::stream::total_lag`]).
pub fn record_lag(lag: &crate::stream::Lag) {
    metrics::gauge!("issuer_stream_lag_entries").set(lag.entries as f64);
    metrics::gauge!("issuer_stream_lag_seconds").set(lag.age_ms as f64 / 1000.0);
    metrics::gauge!("issuer_stream_length_entries").set(lag.length as f64);
}

/// Coupon jobs per status, and the progress of each live or recently finished one.
pub async fn record_jobs(db: &PgPool) -> Result<(), Error> {
    for (status, n) in repo::jobs::count_by_status(db).await? {
        metrics::gauge!("issuer_coupon_jobs", "status" => status).set(n as f64);
    }
    for job in repo::jobs::live_or_recent(db, RECENT_JOBS, 100).await? {
        let ratio = if job.total > 0 {
            f64::from(job.processed) / f64::from(job.total)
        } else {
            0.0
        };
        metrics::gauge!(
            "issuer_coupon_job_progress_ratio",
            "job" => job.job_id.to_string(),
            "batch" => job.batch_id.to_string(),
            "type" => job.job_type.as_str(),
        )
        .set(ratio);
    }
    Ok(())
}
