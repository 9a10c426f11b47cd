//! What `/ready` and `/metrics` measure, remembered for a moment: both are public, and a flood
//! of them must not become a flood of Redis and Postgres queries.

use std::time::{Duration, Instant};

use issuance_core::connect::Readiness;

/// What `/ready` and `/metrics` measure, at most once per interval: both are public, and a
/// flood of them must not become a flood of Postgres queries.
#[derive(Default)]
pub struct OpsMemo {
    ready: tokio::sync::Mutex<Option<(Instant, Readiness)>>,
    gauges: tokio::sync::Mutex<Option<Instant>>,
}

/// How long a readiness probe is reused.
const READY_EVERY: Duration = Duration::from_millis(500);

/// How often the scrape-time gauges are measured.
const GAUGES_EVERY: Duration = Duration::from_secs(1);

impl OpsMemo {
    pub async fn readiness(&self, engine: &engine::Engine) -> Readiness {
        let mut last = self.ready.lock().await;
        if let Some((at, r)) = *last
            && at.elapsed() < READY_EVERY
        {
            return r;
        }
        let r = issuance_core::connect::probe(engine.redis(), engine.db()).await;
        *last = Some((Instant::now(), r));
        r
    }

    /// Measures the gauges unless they were measured within the interval (or are being
    /// measured now).
    pub async fn refresh_gauges(&self, engine: &engine::Engine) {
        let Ok(mut last) = self.gauges.try_lock() else {
            return;
        };
        if last.is_some_and(|at| at.elapsed() < GAUGES_EVERY) {
            return;
        }
        self.readiness(engine).await;
        if let Err(e) = admin::gauges::record_issuance(engine).await {
            tracing::warn!(error = %e, "issuance gauges unavailable");
        }
        match engine::stream::total_lag(engine.redis(), engine.keys()).await {
            Ok(lag) => engine::stream::record_lag(&lag),
            Err(e) => tracing::warn!(error = %e, "stream lag unavailable"),
        }
        *last = Some(Instant::now());
    }
}
