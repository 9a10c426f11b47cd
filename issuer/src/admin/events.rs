//! Marketing events of the admin API and their lifecycle:
//! READY → ONGOING → COMPLETED, READY | ONGOING → DISABLED; COMPLETED and DISABLED are final.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use super::listing::{Page, Paging, Period, Sort};
use crate::{
    error::{Error, Missing, Refusal},
    repo,
};

/// An event's place in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[sqlx(type_name = "event_status", rename_all = "SCREAMING_SNAKE_CASE")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventStatus {
    /// Not started.
    Ready,
    /// Running.
    Ongoing,
    /// Ended normally (final).
    Completed,
    /// Switched off by an admin (final).
    Disabled,
}

impl EventStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [EventStatus; 4] = [Self::Ready, Self::Ongoing, Self::Completed, Self::Disabled];

    /// Whether the lifecycle allows `self → to`.
    pub fn can_become(self, to: EventStatus) -> bool {
        use EventStatus::*;
        matches!(
            (self, to),
            (Ready, Ongoing) | (Ongoing, Completed) | (Ready, Disabled) | (Ongoing, Disabled)
        )
    }

    /// COMPLETED and DISABLED: nothing changes any more.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Disabled)
    }

    /// The seed's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "READY",
            Self::Ongoing => "ONGOING",
            Self::Completed => "COMPLETED",
            Self::Disabled => "DISABLED",
        }
    }
}

/// An event as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AdminEvent {
    /// Its id.
    pub event_id: i64,
    /// Its name; unique among live events.
    pub event_name: String,
    /// Free text.
    pub description: String,
    /// Start.
    pub from_at: DateTime<Utc>,
    /// End.
    pub until_at: DateTime<Utc>,
    /// Lifecycle status.
    pub event_status: EventStatus,
    /// Who created it (token `sub`).
    pub created_by: String,
    /// Who changed it last.
    pub updated_by: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
}

/// The fields an admin sets, on create and on update.
#[derive(Clone, Debug)]
pub struct EventFields {
    /// 1–200 characters.
    pub event_name: String,
    /// Up to 2,000 characters.
    pub description: String,
    /// Start.
    pub from_at: DateTime<Utc>,
    /// End, after the start.
    pub until_at: DateTime<Utc>,
    /// Status; on create READY (default) or ONGOING.
    pub event_status: Option<EventStatus>,
}

impl EventFields {
    fn check(&self, period_refusal: Refusal) -> Result<(), Error> {
        let name = self.event_name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(Error::Invalid("eventName must be 1-200 characters".into()));
        }
        if self.description.chars().count() > 2_000 {
            return Err(Error::Invalid(
                "description must be at most 2000 characters".into(),
            ));
        }
        if self.from_at >= self.until_at {
            return Err(Error::Refused(period_refusal));
        }
        Ok(())
    }
}

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

/// The list filters.
#[derive(Clone, Debug)]
pub struct EventFilter {
    /// `eventStatus`.
    pub status: Option<EventStatus>,
    /// `keyword`: in the name or the description.
    pub keyword: Option<String>,
    /// `from`/`to` on `fromAt`/`untilAt`.
    pub period: Period,
    /// `sort`.
    pub sort: Sort,
    /// `page`, `size`.
    pub paging: Paging,
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

/// Creates an event; `DuplicateEventName` when a live event has the name.
pub async fn create(db: &PgPool, actor: &str, fields: EventFields) -> Result<AdminEvent, Error> {
    fields.check(Refusal::InvalidDatetime)?;
    let status = fields.event_status.unwrap_or(EventStatus::Ready);
    if status.is_final() {
        return Err(Error::Invalid(
            "eventStatus of a new event must be READY or ONGOING".into(),
        ));
    }
    repo::admin_events::insert(db, actor, &fields, status).await
}

/// Changes an event's fields (and its status, along the lifecycle).
pub async fn update(db: &PgPool, actor: &str, id: i64, fields: EventFields) -> Result<AdminEvent, Error> {
    fields.check(Refusal::EventInvalidDatetime)?;
    let mut tx = db.begin().await?;
    let current = repo::admin_events::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))?;
    if current.event_status.is_final() {
        return Err(Error::Refused(Refusal::CannotModifyEvent));
    }
    let status = fields.event_status.unwrap_or(current.event_status);
    if status != current.event_status && !current.event_status.can_become(status) {
        return Err(Error::Refused(Refusal::InvalidStatusTransition));
    }
    let updated = repo::admin_events::update(&mut *tx, id, actor, &fields, status).await?;
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
    let current = repo::admin_events::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))?;
    if !current.event_status.can_become(to) {
        return Err(Error::Refused(Refusal::InvalidStatusTransition));
    }
    let updated = repo::admin_events::set_status(&mut *tx, id, actor, to).await?;
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
    let current = repo::admin_events::lock(&mut *tx, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))?;
    if matches!(
        current.event_status,
        EventStatus::Ongoing | EventStatus::Completed
    ) {
        return Err(Error::Refused(Refusal::CannotDeleteEvent));
    }
    let at = repo::admin_events::soft_delete(&mut *tx, id, actor).await?;
    tx.commit().await?;
    Ok(at)
}

/// One live event.
pub async fn find(db: &PgPool, id: i64) -> Result<AdminEvent, Error> {
    repo::admin_events::find(db, id)
        .await?
        .ok_or(Error::NotFound(Missing::AdminEvent))
}

/// A page of live events.
pub async fn list(db: &PgPool, filter: &EventFilter) -> Result<Page<AdminEvent>, Error> {
    repo::admin_events::list(db, filter).await
}

#[cfg(test)]
mod tests {
    use super::EventStatus::{self, *};

    #[test]
    fn lifecycle() {
        let allowed: Vec<(EventStatus, EventStatus)> = EventStatus::ALL
            .iter()
            .flat_map(|a| EventStatus::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Ready, Ongoing),
                (Ready, Disabled),
                (Ongoing, Completed),
                (Ongoing, Disabled)
            ]
        );
    }
}
