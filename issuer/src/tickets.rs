//! Issuing golden tickets, and reading a user's tickets.

use uuid::Uuid;

use crate::{
    clock,
    engine::Engine,
    error::Error,
    issue::Verdict,
    model::{EventKey, Issued, Ticket, UserId, UserTicket},
    repo,
};

impl Engine {
    /// Issues `user` a ticket of `key`, or returns the one they hold.
    pub async fn issue_ticket(&self, key: &EventKey, user: UserId) -> Result<Issued, Error> {
        self.issue_ticket_at(key, user, None).await
    }

    /// [`Engine::issue_ticket`] with the clock overridden (epoch ms), for tests that cross a
    /// KST midnight. `None` lets Redis `TIME` decide, as in production.
    pub async fn issue_ticket_at(
        &self,
        key: &EventKey,
        user: UserId,
        clock_ms: Option<i64>,
    ) -> Result<Issued, Error> {
        let cached = self.cached_event(key).await?.ok_or(Error::EventNotFound)?;
        let ticket = |id: &str, at_ms: i64| -> Result<Ticket, Error> {
            Ok(Ticket {
                ticket_id: id
                    .parse::<Uuid>()
                    .map_err(|_| Error::protocol("issue.lua", format!("ticket id {id:?}")))?,
                user_id: user.get(),
                event_key: key.clone(),
                issued_at: clock::from_ms(at_ms),
            })
        };
        let candidate = Uuid::now_v7().to_string();
        match self.decide(&cached, user.get(), candidate, clock_ms).await? {
            Verdict::Issued { id, at_ms, .. } => Ok(Issued {
                ticket: ticket(&id, at_ms)?,
                fresh: true,
            }),
            Verdict::Held { id, at_ms } => Ok(Issued {
                ticket: ticket(&id, at_ms)?,
                fresh: false,
            }),
            Verdict::Inactive => Err(Error::EventInactive),
            Verdict::NotInPeriod => Err(Error::EventNotInPeriod),
            Verdict::SoldOut => Err(Error::SoldOut),
            Verdict::DailyLimit => Err(Error::DailyLimitReached),
            Verdict::NoMeta => Err(Error::protocol("issue.lua", "meta missing after a rebuild")),
        }
    }

    /// A user's tickets, newest first.
    pub async fn user_tickets(&self, user: UserId) -> Result<Vec<UserTicket>, Error> {
        repo::tickets::list_for_user(self.db(), user.get()).await
    }
}
