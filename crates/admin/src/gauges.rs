//! Gauges the admin side measures when Prometheus scrapes: issuance per running event and
//! issuing batch and their waiting rooms (api), coupon jobs (workers).

use std::time::Duration;

use engine::{Engine, scope::Scope};
use issuance_core::{error::Error, ids::EventKey};
use sqlx::PgPool;

/// Issued and remaining quantity of every golden-ticket event running now and every first-come
/// coupon batch issuing now (issued as the admin API counts it: the batch's holders in Redis; a
/// batch nobody asked for yet has issued 0).
pub async fn record_issuance(engine: &Engine) -> Result<(), Error> {
    for e in engine.running_events().await? {
        let key = e.event.event_key.clone();
        metrics::gauge!("issuer_event_remaining", "event" => key.clone()).set(e.remaining() as f64);
        metrics::gauge!("issuer_event_issued", "event" => key.clone()).set(e.issued as f64);
        if e.event.admission.admission_enabled
            && let Ok(scope_key) = EventKey::parse(&key)
        {
            record_room(engine, &Scope::Ticket(scope_key)).await?;
        }
    }
    let batches = store::coupon_batches::issuing(engine.db()).await?;
    let ids: Vec<i64> = batches.iter().map(|(id, _)| *id).collect();
    let issued_counts = engine.issued_counts(&ids).await?;
    for (batch, total) in batches {
        let issued = issued_counts.get(&batch).copied().unwrap_or(0);
        let label = batch.to_string();
        metrics::gauge!("issuer_coupon_issued", "batch" => label.clone()).set(issued as f64);
        metrics::gauge!("issuer_coupon_remaining", "batch" => label)
            .set((i64::from(total) - issued).max(0) as f64);
        record_room(engine, &Scope::Coupon(batch)).await?;
    }
    Ok(())
}

/// Waiting and admitted in a scope's waiting room, once it has been used.
async fn record_room(engine: &Engine, scope: &Scope) -> Result<(), Error> {
    if let Some((joined, admitted)) = engine.room_counts(scope).await? {
        let label = scope.tag();
        metrics::gauge!("issuer_room_waiting", "scope" => label.clone())
            .set((joined - admitted).max(0) as f64);
        metrics::gauge!("issuer_room_admitted", "scope" => label).set(admitted as f64);
    }
    Ok(())
}

/// Finished jobs keep showing their last progress this long.
pub const RECENT_JOBS: Duration = Duration::from_secs(600);

/// Coupon jobs per status, and the progress of each live or recently finished one.
pub async fn record_jobs(db: &PgPool) -> Result<(), Error> {
    for (status, n) in store::coupon_jobs::count_by_status(db).await? {
        metrics::gauge!("issuer_coupon_jobs", "status" => status).set(n as f64);
    }
    for job in store::coupon_jobs::live_or_recent(db, RECENT_JOBS, 100).await? {
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
