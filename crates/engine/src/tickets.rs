//! Golden tickets: the scope kind whose issues carry a UUIDv7 the request chooses, and whose
//! holder asking again gets the same ticket back (200) rather than a refusal.

use chrono::{DateTime, Utc};
use issuance_core::{
    clock,
    error::{Error, Missing, ScopeKind},
    ids::{EventKey, UserId},
};
use store::ticket_events::TicketEvent;
use uuid::Uuid;

use crate::{
    engine::Engine,
    issue::{IssueId, Verdict},
};

impl Engine {
    /// Issues `user` a ticket of `key`, or returns the one they hold.
    pub async fn issue_ticket(&self, key: &EventKey, user: UserId) -> Result<Issued, Error> {
        self.issue_ticket_with_pass(key, user, None).await
    }

    /// [`Engine::issue_ticket`] with the admission pass the request carried: an event whose
    /// waiting room is on issues only to a user with a valid pass of their own (see
    /// [`crate::admission`]); a holder gets their ticket back, pass or not.
    pub async fn issue_ticket_with_pass(
        &self,
        key: &EventKey,
        user: UserId,
        pass: Option<&str>,
    ) -> Result<Issued, Error> {
        self.issue_ticket_inner(key, user, None, pass).await
    }

    /// [`Engine::issue_ticket`] with the clock overridden (epoch ms), for tests that cross a
    /// KST midnight. `None` lets Redis `TIME` decide, as in production.
    pub async fn issue_ticket_at(
        &self,
        key: &EventKey,
        user: UserId,
        clock_ms: Option<i64>,
    ) -> Result<Issued, Error> {
        self.issue_ticket_inner(key, user, clock_ms, None).await
    }

    async fn issue_ticket_inner(
        &self,
        key: &EventKey,
        user: UserId,
        clock_ms: Option<i64>,
        pass: Option<&str>,
    ) -> Result<Issued, Error> {
        let cached = self
            .cached_event(key)
            .await?
            .ok_or(Error::NotFound(Missing::TicketEvent))?;
        let ticket = |id: IssueId, at_ms: i64| -> Result<Ticket, Error> {
            let IssueId::Ticket(ticket_id) = id else {
                return Err(Error::protocol("issue.lua", format!("ticket id {id:?}")));
            };
            Ok(Ticket {
                ticket_id,
                user_id: user.get(),
                event_key: key.clone(),
                issued_at: clock::from_ms(at_ms),
            })
        };
        if let Err(refused) = self.admit(&cached.scope, cached.detail.gate(), user.get(), pass) {
            return match Box::pin(self.held_entry(cached.copy_for(user.get()).0, user.get())).await? {
                Some((id, at_ms)) => Ok(Issued {
                    ticket: ticket(id, at_ms)?,
                    fresh: false,
                }),
                None => Err(Error::Denied(ScopeKind::Ticket, refused)),
            };
        }
        match self.decide(&cached, user.get(), clock_ms).await? {
            Verdict::Issued { id, at_ms, .. } => {
                if cached.detail.admission.admission_enabled {
                    self.pass_used(&cached.scope, cached.detail.gate(), user.get(), pass)
                        .await;
                }
                Ok(Issued {
                    ticket: ticket(id, at_ms)?,
                    fresh: true,
                })
            }
            Verdict::Held { id, at_ms } => Ok(Issued {
                ticket: ticket(id, at_ms)?,
                fresh: false,
            }),
            refused => Err(Error::Denied(ScopeKind::Ticket, refused.denial()?)),
        }
    }
}

/// An event with its live figures from Redis.
#[derive(Clone, Debug)]
pub struct LiveEvent {
    /// The event's rules.
    pub event: TicketEvent,
    /// Tickets issued in all.
    pub issued: i64,
    /// Tickets issued today (KST).
    pub today: i64,
}

impl LiveEvent {
    /// `totalQuantity − issued`, never below zero.
    pub fn remaining(&self) -> i64 {
        (i64::from(self.event.total_quantity) - self.issued).max(0)
    }
}

/// One user's ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// Its id (UUIDv7).
    pub ticket_id: Uuid,
    /// Its holder.
    pub user_id: i64,
    /// Its event.
    pub event_key: EventKey,
    /// When Redis issued it.
    pub issued_at: DateTime<Utc>,
}

/// The answer to an issue request that got a ticket.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The ticket.
    pub ticket: Ticket,
    /// `true` when this call issued it; `false` when the user already held it.
    pub fresh: bool,
}
