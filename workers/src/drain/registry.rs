//! The drain's list of streams: re-read every `refresh_every`, with the streams of ended scopes
//! retired and the lag published, and handed to the consumers.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use engine::{Keys, stream};
use fred::clients::Pool;
use issuance_core::Error;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{config::DrainConfig, poll};

/// How often the streams of ended scopes are looked at for retirement.
const RETIRE_EVERY: Duration = Duration::from_secs(5);

/// The streams the consumers drain, as last read.
pub(super) type Streams = watch::Receiver<Arc<[String]>>;

/// Keeps the stream list of one process.
pub(super) struct Registry {
    redis: Pool,
    keys: Keys,
    refresh_every: Duration,
    streams: watch::Sender<Arc<[String]>>,
    /// When ended scopes' streams were last looked at for retirement.
    last_retire: Option<Instant>,
}

impl Registry {
    /// A registry and the list it keeps (empty until its first refresh).
    pub(super) fn new(redis: Pool, keys: Keys, cfg: &DrainConfig) -> (Self, Streams) {
        let (tx, rx) = watch::channel(Arc::from(Vec::new()));
        let registry = Self {
            redis,
            keys,
            refresh_every: cfg.refresh_every,
            streams: tx,
            last_retire: None,
        };
        (registry, rx)
    }

    /// Refreshes until `shutdown`.
    pub(super) async fn run(mut self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "could not refresh the stream registry");
            }
            poll::pause(&shutdown, self.refresh_every).await;
        }
    }

    /// Re-reads the registry, retires the streams of ended scopes, creates missing groups,
    /// hands the list to the consumers and publishes the lag.
    async fn refresh(&mut self) -> Result<(), Error> {
        let registered = stream::registered(&self.redis, &self.keys).await?;
        // A scope ends once; looking every few seconds is enough, not at every refresh.
        let retire = self.last_retire.is_none_or(|t| t.elapsed() >= RETIRE_EVERY);
        if retire {
            self.last_retire = Some(Instant::now());
        }
        let known = self.streams.borrow().clone();
        let mut live = Vec::with_capacity(registered.len());
        for s in registered {
            if retire && self.retired(&s).await {
                continue;
            }
            if !known.contains(&s)
                && let Err(e) = stream::ensure_group(self.redis.next(), &s).await
            {
                // Not a stream (or Redis refused): skipped now, tried again next refresh.
                tracing::warn!(stream = %s, error = %e, "cannot read this stream; skipping it");
                continue;
            }
            live.push(s);
        }
        live.sort();
        let lags = stream::lags(&self.redis, &live).await?;
        engine::stream::record_lags(&lags);
        self.streams.send_replace(Arc::from(live));
        Ok(())
    }

    /// Whether the stream's scope has ended and everything is persisted, so the stream was
    /// emptied and left the registry.
    async fn retired(&self, s: &str) -> bool {
        let Some(meta) = Keys::meta_of_stream(s) else {
            return false;
        };
        match stream::retire(&self.redis, &self.keys, s, &meta).await {
            Ok(true) => {
                tracing::info!(stream = %s, "scope ended and persisted: stream retired");
                metrics::counter!("issuer_drain_streams_retired_total").increment(1);
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(stream = %s, error = %e, "could not check whether the stream can retire");
                false
            }
        }
    }
}
