//! The block sizes of the reservations one process makes (see [`crate::reservations`]): the
//! state the engine keeps per scope, apart from the calls that use it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use moka::sync::Cache;

/// The largest block, whatever the rate: what one loss can strand per api process.
const MAX_BLOCK: i64 = 100_000;

/// How blocks are sized (`RESERVE_AHEAD_MS`, `RESERVE_BLOCK_MIN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveOptions {
    /// How much time of issues one block should last; zero reserves the whole quantity at once.
    pub ahead: Duration,
    /// The smallest block.
    pub min_block: i64,
}

impl Default for ReserveOptions {
    fn default() -> Self {
        Self {
            ahead: Duration::from_millis(100),
            min_block: 64,
        }
    }
}

/// This process's block sizes, per scope.
pub struct Reservations {
    options: ReserveOptions,
    scopes: Cache<String, Arc<Blocks>>,
}

/// One scope's block size and the last time this process reserved for it.
#[derive(Debug)]
pub(crate) struct Blocks {
    pub(crate) size: AtomicI64,
    pub(crate) last: tokio::sync::Mutex<Option<Instant>>,
    /// A reservation ahead is under way (so the requests meanwhile start no other).
    pub(crate) ahead: AtomicBool,
}

impl Reservations {
    pub(crate) fn new(options: ReserveOptions) -> Self {
        Self {
            options,
            scopes: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    pub(crate) fn blocks(&self, meta: &str) -> Arc<Blocks> {
        if let Some(blocks) = self.scopes.get(meta) {
            return blocks;
        }
        let min = self.options.min_block.max(1);
        self.scopes.get_with(meta.to_owned(), || {
            Arc::new(Blocks {
                size: AtomicI64::new(min),
                last: tokio::sync::Mutex::new(None),
                ahead: AtomicBool::new(false),
            })
        })
    }

    /// The next block for a scope whose last block was reserved at `last`.
    pub(crate) fn next(&self, blocks: &Blocks, last: Option<Instant>, total: i64) -> i64 {
        if self.options.ahead.is_zero() {
            return total;
        }
        let ahead = self.options.ahead;
        let size = blocks.size.load(Ordering::Relaxed);
        let next = match last.map(|at| at.elapsed()) {
            Some(lasted) if lasted < ahead => size.saturating_mul(2),
            Some(lasted) if lasted > ahead * 4 => size / 2,
            _ => size,
        }
        .clamp(self.options.min_block.max(1), MAX_BLOCK);
        blocks.size.store(next, Ordering::Relaxed);
        next
    }
}
