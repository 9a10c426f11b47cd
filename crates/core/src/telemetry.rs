//! What the api and the workers share about metrics: one exporter configuration. The gauges
//! measured when Prometheus scrapes (rather than kept up to date on every change) are set by
//! `engine::stream` (lags), `admin::gauges` (issuance, jobs) and the readiness probe.
//!
//! | gauge | set by | what |
//! |---|---|---|
//! | `issuer_stream_lag_entries`, `issuer_stream_lag_seconds`, `issuer_stream_length_entries` | api, workers | entries not yet persisted, the oldest one's age, and what the streams hold |
//! | `issuer_scope_lag_entries{scope}`, `issuer_scope_lag_seconds{scope}` | workers | the same per scope (`gt:<event>`, `cb:<batch>`) with a live stream |
//! | `issuer_event_issued{event}`, `issuer_event_remaining{event}` | api | golden-ticket events running now |
//! | `issuer_coupon_issued{batch}`, `issuer_coupon_remaining{batch}` | api | first-come batches issuing now |
//! | `issuer_coupon_jobs{status}` | workers | coupon jobs per status |
//! | `issuer_coupon_job_progress_ratio{job,batch,type}` | workers | progress of each live job, and of those finished in the last ten minutes |
//!
//! A gauge nobody sets for [`GAUGE_IDLE`] (an event that stopped running, a finished job) drops
//! out of the exposition instead of showing its last value forever.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use metrics_util::MetricKindMask;

/// Latency buckets (every `*_seconds` histogram): a tenth of a millisecond to ten seconds.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Size buckets (every `*_batch_size` histogram: requests per Lua call, records per drain write).
pub const BATCH_SIZE_BUCKETS: [f64; 14] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 20000.0,
];

/// Waiting-room buckets (`issuer_room_wait_seconds`: from joining, or the start, to the pass):
/// a second to two hours. A full name wins over the `_seconds` suffix.
pub const ROOM_WAIT_BUCKETS: [f64; 12] = [
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
];

/// How long an unset gauge stays in the exposition.
pub const GAUGE_IDLE: Duration = Duration::from_secs(120);

/// The exporter both binaries install.
pub fn exporter() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
        .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".into()), &BATCH_SIZE_BUCKETS))
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("issuer_room_wait_seconds".into()),
                &ROOM_WAIT_BUCKETS,
            )
        })
        .expect("bucket lists are not empty")
        .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
}
