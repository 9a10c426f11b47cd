//! Marketing events of the admin API and their lifecycle:
//! READY → ONGOING → COMPLETED, READY | ONGOING → DISABLED; COMPLETED and DISABLED are final.

use chrono::{DateTime, Utc};
use issuance_core::{
    enums::EventStatus,
    error::{Error, Missing, Refusal},
    paging::Sort,
};
use sqlx::PgPool;
use store::events::{AdminEvent, EventFields};

/// What a status change answers.
#[derive(Clone, Debug)]
pub struct StatusChange {
    /// Before.
    pub previous: EventStatus,
    /// After.
    pub updated: EventStatus,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// Sortable fields of the list.
pub const SORT_FIELDS: &[(&str, &str)] = &[
    ("eventId", "event_id"),
    ("eventName", "event_name"),
    ("fromAt", "from_at"),
    ("untilAt", "until_at"),
    ("eventStatus", "event_status"),
    ("createdAt", "created_at"),
    ("updatedAt", "updated_at"),
];

/// Newest first.
pub const DEFAULT_SORT: Sort = Sort {
    column: "created_at",
    descending: true,
};

/// Checks the fields an admin sets against the rules of SPEC §3.
fn check(f: &EventFields, period_refusal: Refusal) -> Result<(), Error> {
    let name = f.event_name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::Invalid("eventName must be 1-200 characters".into()));
    }
    if f.description.chars().count() > 2_000 {
        return Err(Error::Invalid(
            "description must be at most 2000 characters".into(),
        ));
    }
    if f.from_at >= f.until_at {
        return Err(Error::Refused(period_refusal));
    }
    Ok(())
}

/// Creates an event; `DuplicateEventName` when a live event has the name.
pub async fn create(db: &PgPool, actor: &str, fields: EventFields) -> Result<AdminEvent, Error> {
    check(&fields, Refusal::InvalidDatetime)?;
    let status = fields.event_status.unwrap_or(EventStatus::Ready);
    if status.is_final() {
        return Err(Error::Invalid(
            "eventStatus of a new event must be READY or ONGOING".into(),
        ));
    }
    store::events::insert(db, actor, &fields, status).await
}

/// Changes an event's fields (and its status, along the lifecycle).
pub async fn update(db: &PgPool, actor: &str, id: i64, fields: EventFields) -> Result<AdminEvent, Error> {
    check(&fields, Refusal::EventInvalidDatetime)?;
    let mut tx = db.begin().await?;
    let current = store::events::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))?;
    if current.event_status.is_final() {
        return Err(Error::Refused(Refusal::CannotModifyEvent));
    }
    let status = fields.event_status.unwrap_or(current.event_status);
    if status != current.event_status && !current.event_status.can_become(status) {
        return Err(Error::Refused(Refusal::InvalidStatusTransition));
    }
    let updated = store::events::update(&mut *tx, id, actor, &fields, status).await?;
    tx.commit().await?;
    Ok(updated)
}

/// Moves an event along its lifecycle.
pub async fn change_status(
    db: &PgPool,
    actor: &str,
    id: i64,
    to: EventStatus,
) -> Result<StatusChange, Error> {
    let mut tx = db.begin().await?;
    let current = store::events::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))?;
    if !current.event_status.can_become(to) {
        return Err(Error::Refused(Refusal::InvalidStatusTransition));
    }
    let updated = store::events::set_status(&mut *tx, id, actor, to).await?;
    tx.commit().await?;
    Ok(StatusChange {
        previous: current.event_status,
        updated: updated.event_status,
        updated_at: updated.updated_at,
    })
}

/// Soft-deletes an event (not while ONGOING or once COMPLETED); returns when.
pub async fn delete(db: &PgPool, actor: &str, id: i64) -> Result<DateTime<Utc>, Error> {
    let mut tx = db.begin().await?;
    let current = store::events::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))?;
    if matches!(
        current.event_status,
        EventStatus::Ongoing | EventStatus::Completed
    ) {
        return Err(Error::Refused(Refusal::CannotDeleteEvent));
    }
    let at = store::events::soft_delete(&mut *tx, id, actor).await?;
    tx.commit().await?;
    Ok(at)
}

/// One live event.
pub async fn find(db: &PgPool, id: i64) -> Result<AdminEvent, Error> {
    store::events::find(db, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))
}
