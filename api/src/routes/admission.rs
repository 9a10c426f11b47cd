//! The waiting room's settings as the event and coupon batch routes take and show them
//! (`admission` on `POST`/`PATCH /events`, on a batch's `POST`/`PATCH`, and in their views); the
//! room's own routes are in [`crate::routes::queue`].

use issuance_core::clock;
use serde::{Deserialize, Serialize};
use store::ticket_events::{AdmissionColumns, AdmissionFields};
use utoipa::ToSchema;

use crate::{error::ApiError, params::instant};

/// The waiting room's settings on `POST /events`, `PATCH /events/{eventKey}` and a SELF coupon
/// batch's `POST`/`PATCH`: each field absent stays as it is (on creation: unset). Switching it
/// on needs all three settings.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"enabled": true, "prequeueOpensAt": "2026-06-21T08:30:00Z", "admitPerSecond": 200, "passTtlSeconds": 120}))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdmissionBody {
    enabled: Option<bool>,
    /// From when users may join, at or before the start (an event's `startAt`, a batch's
    /// `validFromAt`); those who join before the start are shuffled at the start.
    prequeue_opens_at: Option<String>,
    #[schema(minimum = 1, maximum = 1_000_000)]
    admit_per_second: Option<i64>,
    /// How long a pass lasts from the user's admission.
    #[schema(minimum = 1, maximum = 86_400)]
    pass_ttl_seconds: Option<i64>,
    /// Most passes given and neither used nor expired: the outflow waits while this many are
    /// out. 0 removes the cap.
    #[schema(minimum = 0, maximum = 1_000_000)]
    max_unused_passes: Option<i64>,
}

impl AdmissionBody {
    /// The checked fields.
    pub fn fields(self) -> Result<AdmissionFields, ApiError> {
        let opens = self
            .prequeue_opens_at
            .map(|at| instant("prequeueOpensAt", &at))
            .transpose()?;
        Ok(AdmissionFields::new(
            self.enabled,
            opens,
            self.admit_per_second,
            self.pass_ttl_seconds,
            self.max_unused_passes,
        )?)
    }
}

/// The waiting room of an event or batch, as its view shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionView {
    enabled: bool,
    #[schema(format = DateTime)]
    prequeue_opens_at: Option<String>,
    admit_per_second: Option<i32>,
    pass_ttl_seconds: Option<i32>,
    /// None (or 0): no cap.
    max_unused_passes: Option<i32>,
    /// `RUNNING`, `PAUSED` or `CLOSED`.
    state: String,
}

impl From<&AdmissionColumns> for AdmissionView {
    fn from(a: &AdmissionColumns) -> Self {
        Self {
            enabled: a.admission_enabled,
            prequeue_opens_at: a.prequeue_opens_at.map(clock::format_utc),
            admit_per_second: a.admit_per_second,
            pass_ttl_seconds: a.pass_ttl_seconds,
            max_unused_passes: a.max_unused_passes,
            state: a.admission_state.clone(),
        }
    }
}
