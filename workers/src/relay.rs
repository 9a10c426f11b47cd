//! The outbox relay: delivers outbox records (`ORDER_PAID`) to the data platform as JSON POSTs
//! (see `shop::outbox` for the ordering and retry rules).
//!
//! Every workers process runs one. A pass claims due records (`FOR UPDATE SKIP LOCKED`, a lease
//! of twice the request timeout), posts them concurrently — at most one per order, as the claim
//! guarantees — and records each outcome. While the pass runs, the leases of its records not
//! yet answered are renewed every third of a lease, so a pass slower than one lease (many
//! records, a slow platform) keeps them: no other relay retakes one mid-pass and no attempt is
//! counted twice. Outcomes are fenced by the claim's attempt count, so a relay whose lease did
//! run out (a stalled process) cannot overwrite the outcome of the relay that took over.
//!
//! A 2xx answer delivers a record; anything else (an error status, a redirect — never
//! followed, since a platform that moved must be reconfigured, not guessed — a timeout, a
//! refused connection) schedules the next attempt, and the last one makes it DEAD. A process
//! that dies mid-pass stops renewing; its records are retaken when the lease ends: delivery is
//! at least once.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use futures::StreamExt;
use shop::outbox::Backoff;
use sqlx::PgPool;
use store::outbox::Delivery;
use tokio_util::sync::CancellationToken;

use crate::poll;

/// Settings.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// `DATA_PLATFORM_URL`: where events are POSTed.
    pub url: String,
    /// `OUTBOX_POLL_MS`: pause after a pass that found less than a full batch.
    pub poll_every: Duration,
    /// `OUTBOX_BATCH_SIZE`: records claimed per pass.
    pub batch_size: i64,
    /// `OUTBOX_TIMEOUT_MS`: one request's time limit.
    pub timeout: Duration,
    /// `OUTBOX_CONCURRENCY`: requests in flight at once.
    pub concurrency: usize,
    /// `OUTBOX_BACKOFF_BASE_MS`, `OUTBOX_BACKOFF_MAX_MS`, `OUTBOX_MAX_ATTEMPTS`.
    pub backoff: Backoff,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9099/events".into(),
            poll_every: Duration::from_millis(200),
            batch_size: 200,
            timeout: Duration::from_secs(5),
            concurrency: 16,
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(300),
                max_attempts: 16,
            },
        }
    }
}

/// The relay of one process.
pub struct Relay {
    db: PgPool,
    http: reqwest::Client,
    cfg: RelayConfig,
}

impl Relay {
    /// A relay over `db` with `cfg`.
    pub fn new(db: PgPool, cfg: RelayConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(2)))
            .pool_max_idle_per_host(cfg.concurrency)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { db, http, cfg })
    }

    /// Runs passes until `shutdown`; a pass in progress finishes first.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut next_gauges = Instant::now();
        while !shutdown.is_cancelled() {
            if Instant::now() >= next_gauges {
                self.refresh_gauges().await;
                next_gauges = Instant::now() + Duration::from_secs(1);
            }
            let pause = match self.pass().await {
                Ok(n) if n as i64 >= self.cfg.batch_size => continue,
                Ok(_) => self.cfg.poll_every,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay pass failed");
                    self.cfg.poll_every * 10
                }
            };
            poll::pause(&shutdown, pause).await;
        }
    }

    /// Claims due records, delivers them and records the outcomes; returns how many it claimed.
    pub async fn pass(&self) -> Result<usize, issuance_core::Error> {
        let lease = self.cfg.timeout * 2;
        let claimed = store::outbox::claim(&self.db, self.cfg.batch_size, lease.as_secs_f64()).await?;
        let n = claimed.len();
        let in_flight: Mutex<HashMap<i64, i32>> =
            Mutex::new(claimed.iter().map(|d| (d.outbox_id, d.attempts)).collect());
        let deliveries = futures::stream::iter(claimed)
            .map(|d| async {
                let id = d.outbox_id;
                let outcome = self.attempt(d).await;
                in_flight.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                outcome
            })
            .buffer_unordered(self.cfg.concurrency.max(1))
            .collect::<Vec<Result<(), issuance_core::Error>>>();
        let renewals = async {
            #[allow(clippy::infinite_loop)]
            loop {
                tokio::time::sleep(lease / 3).await;
                let claims: Vec<(i64, i32)> = in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(|(id, attempts)| (*id, *attempts))
                    .collect();
                if let Err(e) = store::outbox::renew(&self.db, &claims, lease.as_secs_f64()).await {
                    tracing::warn!(error = %e, "outbox lease renewal failed");
                }
            }
        };
        let outcomes = tokio::select! {
            outcomes = deliveries => outcomes,
            () = renewals => unreachable!("the renewal loop never ends"),
        };
        outcomes.into_iter().collect::<Result<(), _>>()?;
        Ok(n)
    }

    async fn attempt(&self, d: Delivery) -> Result<(), issuance_core::Error> {
        let started = Instant::now();
        let sent = self
            .http
            .post(&self.cfg.url)
            .header("Idempotency-Key", d.outbox_id.to_string())
            .header("X-Event-Type", &d.event_type)
            .json(&d.body)
            .send()
            .await;
        metrics::histogram!("issuer_outbox_delivery_seconds").record(started.elapsed().as_secs_f64());
        let error = match sent {
            Ok(r) if r.status().is_success() => None,
            Ok(r) => Some(format!("HTTP {}", r.status())),
            Err(e) => Some(describe(&e)),
        };
        match error {
            None => {
                store::outbox::delivered(&self.db, d.outbox_id, d.attempts).await?;
                metrics::counter!("issuer_outbox_deliveries_total", "outcome" => "delivered").increment(1);
            }
            Some(error) => {
                let retry = self.cfg.backoff.after(d.attempts);
                let outcome = if retry.is_some() { "retry" } else { "dead" };
                tracing::warn!(outbox_id = d.outbox_id, order_id = d.order_id, attempts = d.attempts, %error, outcome, "outbox delivery failed");
                store::outbox::failed(
                    &self.db,
                    d.outbox_id,
                    d.attempts,
                    &error,
                    retry.map(|r| r.as_secs_f64()),
                )
                .await?;
                metrics::counter!("issuer_outbox_deliveries_total", "outcome" => outcome).increment(1);
            }
        }
        Ok(())
    }

    async fn refresh_gauges(&self) {
        match store::outbox::backlog(&self.db).await {
            Ok((pending, dead, oldest)) => {
                metrics::gauge!("issuer_outbox_pending").set(pending as f64);
                metrics::gauge!("issuer_outbox_dead").set(dead as f64);
                let age = oldest.map_or(0.0, |t| {
                    (chrono::Utc::now() - t).num_milliseconds().max(0) as f64 / 1000.0
                });
                metrics::gauge!("issuer_outbox_oldest_pending_seconds").set(age);
            }
            Err(e) => tracing::warn!(error = %e, "outbox backlog query failed"),
        }
    }
}

/// A transport error in a few words (reqwest's Display hides the cause).
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    match std::error::Error::source(e) {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_owned(),
    }
}
