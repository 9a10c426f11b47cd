//! What every handler can reach.

use std::sync::Arc;

use admin::dashboard::DashboardOptions;
use engine::Engine;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::{auth::Jwt, ratelimit::RateLimits};

/// Shared, cheap to clone: one reference count, however many parts (axum clones the state for
/// every extractor of every request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state made of `shared`.
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    /// The issuance core.
    pub engine: Engine,
    /// Marketing campaigns on it.
    pub campaigns: campaigns::Campaigns,
    /// Token keys.
    pub jwt: Arc<Jwt>,
    /// Issue-endpoint rate limits.
    pub limits: Arc<RateLimits>,
    /// The metrics recorder, rendered by `/metrics`.
    pub metrics: PrometheusHandle,
    /// How long the admin dashboard is cached.
    pub dashboard: DashboardOptions,
    /// Largest partner CSV accepted, in bytes.
    pub upload_limit: usize,
    /// Per-request bounds: slots in flight, body and answer deadlines.
    pub guard: crate::guard::Guard,
    /// `/ready` and `/metrics` measurements, shared by their requests.
    pub ops: Arc<crate::ops_memo::OpsMemo>,
}
