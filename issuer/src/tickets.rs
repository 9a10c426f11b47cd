//! Issuing golden tickets, and reading a user's tickets.
//!
//! One request costs a share of one Redis round trip (`issue.lua`, batched with the requests
//! arriving alongside it, see [`crate::batch`]), and nothing else while the event's rules are
//! cached. After a sell-out this process answers outsiders from memory (see
//! [`crate::cache`]).

use chrono::Utc;
use fred::types::scan::Scanner;
use futures::StreamExt;
use uuid::Uuid;

use crate::{
    cache::CachedEvent,
    clock,
    engine::Engine,
    error::Error,
    issue::{IssueRequest, Verdict},
    model::{EventKey, Issued, Ticket, UserId, UserTicket},
    repo,
    stream::RecordKind,
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
        if let Some(refusal) = self.local_refusal(&cached, user, clock_ms) {
            return Err(refusal);
        }
        let request = IssueRequest {
            user: user.get(),
            candidate: Uuid::now_v7().to_string(),
            clock_ms,
        };
        let ticket = |id: &str, at_ms: i64| -> Result<Ticket, Error> {
            Ok(Ticket {
                ticket_id: id
                    .parse()
                    .map_err(|_| Error::protocol("issue.lua", format!("ticket id {id:?}")))?,
                user_id: user.get(),
                event_key: key.clone(),
                issued_at: clock::from_ms(at_ms),
            })
        };
        for _ in 0..2 {
            let verdict = self
                .inner
                .batchers
                .issue(
                    self.redis(),
                    &cached.keys,
                    RecordKind::Ticket.as_str(),
                    key.as_str(),
                    request.clone(),
                )
                .await?;
            return match verdict {
                Verdict::Issued {
                    id,
                    at_ms,
                    issued,
                    total,
                } => {
                    if issued >= total {
                        self.mark_sold_out(&cached);
                    }
                    Ok(Issued {
                        ticket: ticket(&id, at_ms)?,
                        fresh: true,
                    })
                }
                Verdict::Held { id, at_ms } => Ok(Issued {
                    ticket: ticket(&id, at_ms)?,
                    fresh: false,
                }),
                Verdict::Inactive => Err(Error::EventInactive),
                Verdict::NotInPeriod => Err(Error::EventNotInPeriod),
                Verdict::SoldOut => {
                    self.mark_sold_out(&cached);
                    Err(Error::SoldOut)
                }
                Verdict::DailyLimit => Err(Error::DailyLimitReached),
                Verdict::NoMeta => {
                    self.rebuild(&cached.event, &cached.keys).await?;
                    continue;
                }
            };
        }
        Err(Error::protocol("issue.lua", "meta still missing after a rebuild"))
    }

    /// A user's tickets, newest first.
    pub async fn user_tickets(&self, user: UserId) -> Result<Vec<UserTicket>, Error> {
        repo::tickets::list_for_user(self.db(), user.get()).await
    }

    /// The answer for a user known to hold nothing of a sold-out event, in SPEC §2's order
    /// (active, then period, then quantity), without asking Redis.
    fn local_refusal(&self, cached: &CachedEvent, user: UserId, clock_ms: Option<i64>) -> Option<Error> {
        let sold_out = self.inner.sold_out.get(&cached.event.event_key)?;
        if !sold_out.is_outsider(user.get())? {
            return None;
        }
        let now = clock_ms.map_or_else(Utc::now, clock::from_ms);
        Some(if !cached.event.is_active {
            Error::EventInactive
        } else if !cached.event.in_period(now) {
            Error::EventNotInPeriod
        } else {
            Error::SoldOut
        })
    }

    /// Remembers the sell-out and loads the holders in the background, without blocking Redis
    /// (HSCAN pages, not HKEYS).
    fn mark_sold_out(&self, cached: &CachedEvent) {
        if i64::from(cached.event.total_quantity) > self.inner.options.sold_out_holders_max as i64 {
            return;
        }
        let Some(entry) = self.inner.sold_out.mark(&cached.event.event_key) else {
            return;
        };
        let client = self.redis().next().clone();
        let holders_key = cached.keys.holders.clone();
        let capacity = cached.event.total_quantity as usize;
        tokio::spawn(async move {
            let mut holders = Vec::with_capacity(capacity);
            let mut pages = std::pin::pin!(client.hscan(holders_key.as_str(), "*", Some(1_000)));
            while let Some(page) = pages.next().await {
                let mut page = match page {
                    Ok(page) => page,
                    Err(e) => {
                        // The entry stays without holders: every request keeps asking Redis.
                        tracing::warn!(error = %e, "could not load the holders of a sold-out event");
                        return;
                    }
                };
                if let Some(map) = page.take_results() {
                    holders.extend(map.inner().keys().filter_map(|k| k.as_str()?.parse::<i64>().ok()));
                }
            }
            entry.set_holders(holders);
        });
    }
}
