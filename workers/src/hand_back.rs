//! Idle leases handed back to their pools (`engine::idle`): a bucket of a spread event or batch
//! that sees no demand for a moment returns what it leased and did not issue to its pool.
//!
//! Every workers process runs this loop; each hand-back holds its pool's row, so two processes
//! passing at once hand back once.

use std::time::Duration;

use engine::{Engine, idle::IdleWatch};
use tokio_util::sync::CancellationToken;

use crate::poll;

/// How often a pass looks at the buckets.
pub const EVERY: Duration = Duration::from_millis(250);
/// How long a bucket's issued count stays put before its unused lease is handed back: with
/// [`EVERY`], an idle lease is back in its pool within a second.
pub const IDLE_FOR: Duration = Duration::from_millis(600);

/// Runs until `shutdown`, a pass every `every`, handing back leases idle for `idle_for`.
pub async fn run(engine: Engine, every: Duration, idle_for: Duration, shutdown: CancellationToken) {
    let mut watch = IdleWatch::default();
    while !shutdown.is_cancelled() {
        let wait = match engine.hand_back_idle(&mut watch, idle_for).await {
            Ok(_) => every,
            Err(e) => {
                tracing::warn!(error = %e, "idle lease pass failed");
                every * 4
            }
        };
        poll::pause(&shutdown, wait).await;
    }
}
