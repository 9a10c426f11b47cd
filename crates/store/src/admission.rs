//! The waiting room's columns, the same on `ticket_events` and `coupon_batches`
//! (`20261205000010_admission.sql`, `20261205000011_batch_admission.sql`,
//! `20261206000012_max_unused_passes.sql`).

use chrono::{DateTime, Utc};
use issuance_core::admission::Gate;

/// A row's waiting room as stored.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AdmissionColumns {
    /// Whether the room is on.
    pub admission_enabled: bool,
    /// The pre-queue's opening.
    pub prequeue_opens_at: Option<DateTime<Utc>>,
    /// Admissions per second.
    pub admit_per_second: Option<i32>,
    /// How long a pass lasts.
    pub pass_ttl_seconds: Option<i32>,
    /// Most passes given and neither used nor expired (none or 0: no cap).
    pub max_unused_passes: Option<i32>,
    /// The live control (`RUNNING`, `PAUSED`, `CLOSED`).
    pub admission_state: String,
}

impl AdmissionColumns {
    /// The room, when it is on.
    pub fn gate(&self) -> Option<Gate> {
        Gate::from_columns(
            self.admission_enabled,
            self.prequeue_opens_at,
            self.admit_per_second,
            self.pass_ttl_seconds,
            self.max_unused_passes,
            &self.admission_state,
        )
    }
}
