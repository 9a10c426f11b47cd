//! Golden-ticket events: creation, status, switching on and off. Their Redis copy is kept by
//! [`crate::meta`].

use std::sync::Arc;

use chrono::Utc;
use issuance_core::{
    error::{Error, Missing},
    ids::EventKey,
};
use sqlx::PgConnection;
use store::ticket_events::{EventChange, NewTicketEvent, TicketEvent};

use crate::{
    cache::{Cached, Part},
    engine::Engine,
    first_come,
    keys::ScopeKeys,
    quantity::RowChange,
    scope::{Rules, Scope},
    stream,
    tickets::LiveEvent,
};

impl Engine {
    /// Creates an event and copies its rules into Redis.
    pub async fn create_event(&self, new: NewTicketEvent) -> Result<LiveEvent, Error> {
        let event = store::ticket_events::insert(self.db(), &new).await?;
        self.event_created(&event).await;
        Ok(LiveEvent {
            event,
            issued: 0,
            today: 0,
        })
    }

    /// Copies the rules of an event just committed to Postgres (by [`Engine::create_event`], or
    /// in a caller's transaction) into Redis, and registers its stream. Should Redis fail here,
    /// the first issue rebuilds the copy.
    pub async fn event_created(&self, event: &TicketEvent) {
        let rules = Rules::from(event);
        for scope in self.copies_of(event) {
            let keys = scope.keys(self.keys());
            let copied = async {
                let reservation = self.open_reservation(&scope).await?;
                // A bucket of an event with a daily limit starts with no share of it.
                let dcap =
                    (matches!(scope, Scope::TicketBucket { .. }) && rules.daily.is_some()).then_some(0);
                self.load_meta(&rules, &keys, Some(reservation), dcap).await
            };
            if let Err(e) = copied.await {
                tracing::warn!(event = %event.event_key, error = %e, "event created, Redis copy deferred");
            }
            if let Err(e) = stream::register(self.redis(), self.keys(), &keys.stream).await {
                tracing::warn!(event = %event.event_key, error = %e, "stream registration deferred");
            }
        }
        self.inner.events.invalidate(&event.event_key);
        *self.inner.running.lock().await = None;
    }

    /// An event with its live figures: the rules from this process's cache (the same the hot
    /// path uses, fresh within the cache TTL), the figures from Redis. A public read, so it never
    /// costs a Postgres query per request.
    pub async fn event_status(&self, key: &EventKey) -> Result<LiveEvent, Error> {
        let cached = self
            .cached_event(key)
            .await?
            .ok_or(Error::NotFound(Missing::TicketEvent))?;
        self.with_counts(cached.detail.clone(), None).await
    }

    /// Events running now (active, inside their window) with their live figures. The list is
    /// read from Postgres at most once per cache TTL (a public read); the figures from Redis.
    pub async fn running_events(&self) -> Result<Vec<LiveEvent>, Error> {
        let events = {
            let mut running = self.inner.running.lock().await;
            match &*running {
                Some((at, events)) if at.elapsed() < self.inner.options.event_cache_ttl => Arc::clone(events),
                _ => {
                    let events = Arc::new(store::ticket_events::list_running(self.db(), Utc::now()).await?);
                    *running = Some((std::time::Instant::now(), Arc::clone(&events)));
                    events
                }
            }
        };
        let now = Utc::now();
        let live = events
            .iter()
            .filter(|e| e.is_active && e.start_at <= now && now <= e.end_at);
        futures::future::try_join_all(live.map(|e| self.with_counts(e.clone(), None))).await
    }

    /// Changes an event: switches it on or off, changes its quantity, or both. Postgres commits
    /// first and the Redis copy follows, except that a lowering is decided in Redis first (see
    /// [`crate::quantity`]): never below what the event issued.
    pub async fn change_event(&self, key: &EventKey, change: EventChange) -> Result<LiveEvent, Error> {
        let scope = Scope::Ticket(key.clone());
        let total = change.total_quantity.map(i64::from);
        let (_, event) = self.change_scope(&scope, total, EventRow { key, change }).await?;
        self.event_changed(&scope.keys(self.keys()), event).await
    }

    /// The Redis copies of `event`: the event itself, or each of its buckets.
    fn copies_of(&self, event: &TicketEvent) -> Vec<Scope> {
        let Ok(key) = EventKey::parse(&event.event_key) else {
            return Vec::new();
        };
        Scope::Ticket(key).copies(event.shard_count())
    }

    /// Copies a committed change into Redis and forgets what this process remembered of the
    /// event (a raised quantity ends a sell-out; other processes see the new version).
    async fn event_changed(&self, keys: &ScopeKeys, event: TicketEvent) -> Result<LiveEvent, Error> {
        // Only updates an existing copy: a missing one is rebuilt, holders first, on next use.
        // The stream is registered again, in case it was retired.
        for scope in self.copies_of(&event) {
            let copy = scope.keys(self.keys());
            if self.load_meta(&Rules::from(&event), &copy, None, None).await? {
                stream::register(self.redis(), self.keys(), &copy.stream).await?;
            }
        }
        self.inner.sold_out.forget(&keys.stream);
        self.inner.events.invalidate(&event.event_key);
        *self.inner.running.lock().await = None;
        self.with_counts(event, None).await
    }

    /// The live figures of `event` (today as of `clock_ms`, or Redis `TIME`).
    pub async fn with_counts(&self, event: TicketEvent, clock_ms: Option<i64>) -> Result<LiveEvent, Error> {
        let rules = Rules::from(&event);
        let (mut issued, mut today) = (0, 0);
        // The buckets of a spread event in turn: each is read in one call, and their sum is the
        // event's (a bucket can only have issued within what it leased from the pool).
        for scope in self.copies_of(&event) {
            let counts = self.scope_counts(&scope, &rules, clock_ms).await?;
            issued += counts.issued;
            today += counts.today;
        }
        Ok(LiveEvent { event, issued, today })
    }

    /// The event's rules, from this process's cache when fresh.
    pub(crate) async fn cached_event(
        &self,
        key: &EventKey,
    ) -> Result<Option<Arc<Cached<TicketEvent>>>, Error> {
        first_come::cached(&self.inner.events, key.as_str(), self.db_down(), || async {
            Ok(store::ticket_events::find(self.db(), key.as_str())
                .await?
                .map(|event| Cached {
                    scope: Scope::Ticket(key.clone()),
                    rules: Rules::from(&event),
                    keys: self.keys().ticket_event(&event.event_key),
                    blocks: Default::default(),
                    queue: Default::default(),
                    room: Default::default(),
                    parts: Part::all(Scope::buckets(key, event.shard_count()), self.keys()),
                    findings: Default::default(),
                    pool_empty: Default::default(),
                    detail: event,
                }))
        })
        .await
    }
}

/// A change of an event's row (see [`RowChange`]).
struct EventRow<'a> {
    key: &'a EventKey,
    change: EventChange,
}

impl RowChange for EventRow<'_> {
    type Row = TicketEvent;

    async fn lock(&mut self, tx: &mut PgConnection) -> Result<i64, Error> {
        let event = store::ticket_events::lock(tx, self.key.as_str())
            .await?
            .ok_or(Error::NotFound(Missing::TicketEvent))?;
        self.change.admission.check_opening(event.start_at, "startAt")?;
        if let Some(total) = self.change.total_quantity
            && event.daily_limit.is_some_and(|daily| daily > total)
        {
            return Err(Error::Invalid(
                "totalQuantity must not be below the event's dailyLimit".into(),
            ));
        }
        Ok(i64::from(event.total_quantity))
    }

    async fn write(&mut self, tx: &mut PgConnection) -> Result<TicketEvent, Error> {
        store::ticket_events::update(tx, self.key.as_str(), &self.change)
            .await?
            .ok_or(Error::NotFound(Missing::TicketEvent))
    }
}
