//! Whether Redis keeps what the configured durability needs ([`Durability`]).
//!
//! `aof` needs `appendonly yes` with `appendfsync always`: Redis then fsyncs a call's effects
//! before it replies, so an answered issue survives a crash of Redis. The api checks it before
//! serving (and refuses to start otherwise) and again after every reconnect (a failover or a
//! restart may bring another server, or the same one with another configuration); while it does
//! not hold, issues answer 503 instead of being made on a Redis that may forget them.
//!
//! Replica mode confirms writes where it matters: [`Confirm::wait`] after each issue call, and
//! after each drain read (so Postgres never holds an issue the replicas lack). `WAIT` counts
//! the acknowledgements of the writes of the connection it runs on; one that ran on another
//! connection (fred re-sends a command after a reconnect, and a new connection has written
//! nothing, so its `WAIT` returns at once) would confirm nothing. So the `WAIT` is never
//! re-sent, fails rather than waits for a reconnect, and counts only when the client's
//! connection is still the one it was before the writes ([`Connection`]).

use std::{collections::HashMap, sync::atomic::Ordering, time::Duration};

use fred::{
    clients::Client,
    interfaces::{ClientInterface, ClientLike, ConfigInterface, EventInterface, ServerInterface},
    types::config::{Options, Server},
};
use issuance_core::{config::Durability, error::Error};

use crate::engine::Engine;

/// `Ok` when the server behind `client` keeps what `durability` needs; otherwise what is
/// missing, for the operator.
pub async fn check(client: &Client, durability: &Durability) -> Result<(), String> {
    if !durability.aof {
        return Ok(());
    }
    let settings: HashMap<String, String> = client.config_get("append*").await.map_err(|e| {
        format!(
            "REDIS_DURABILITY={} needs CONFIG GET to read appendonly/appendfsync, which failed: {e}",
            durability.mode()
        )
    })?;
    let value = |name: &str| settings.get(name).map(String::as_str).unwrap_or("?");
    if value("appendonly") == "yes" && value("appendfsync") == "always" {
        Ok(())
    } else {
        Err(format!(
            "REDIS_DURABILITY={} needs Redis with appendonly yes and appendfsync always, found \
             appendonly {} and appendfsync {} (set them in redis.conf, or choose another mode)",
            durability.mode(),
            value("appendonly"),
            value("appendfsync"),
        ))
    }
}

/// A `WAIT` after writes, on the connection that made them (replica mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// Replicas that must acknowledge.
    pub replicas: i64,
    /// At most this long.
    pub timeout: Duration,
}

impl Confirm {
    /// What `durability` asks for; `None` when it asks for no replica.
    pub fn of(durability: &Durability) -> Option<Self> {
        (durability.replicas > 0).then_some(Self {
            replicas: durability.replicas,
            timeout: durability.wait,
        })
    }

    /// Waits until the replicas acknowledged every write `client` sent on `since`, the
    /// connection taken before the writes; [`Error::NotReplicated`] when fewer did in time or
    /// the connection changed meanwhile.
    pub async fn wait(&self, client: &Client, since: &Connection) -> Result<(), Error> {
        let timeout_ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX).max(1);
        let once = Options {
            max_attempts: Some(1),
            fail_fast: true,
            ..Options::default()
        };
        let acked: i64 = client.with_options(&once).wait(self.replicas, timeout_ms).await?;
        let acked = if Connection::of(client) == *since {
            acked
        } else {
            0
        };
        if acked < self.replicas {
            metrics::counter!("issuer_issue_unconfirmed_total").increment(1);
            return Err(Error::NotReplicated {
                acked,
                needed: self.replicas,
            });
        }
        Ok(())
    }
}

/// The connection a client writes on now: its server and the server's `CLIENT ID` for it
/// (fred reads the id whenever it connects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection(HashMap<Server, i64>);

impl Connection {
    /// `client`'s connection now.
    pub fn of(client: &Client) -> Self {
        Self(client.connection_ids())
    }
}

impl Engine {
    /// Checks Redis once now (see [`check`]), and again on every reconnect of a pooled
    /// connection, keeping [`Engine::redis_fit`] up to date.
    pub async fn check_durability(&self) -> Result<(), Error> {
        let durability = self.options().durability;
        let verdict = check(self.redis().next(), &durability).await;
        self.inner.redis_fit.store(verdict.is_ok(), Ordering::Relaxed);
        if durability.aof {
            for client in self.redis().clients() {
                // A dropped connection may come back to another server: nothing is issued
                // from the moment it drops until the check after the reconnect has passed.
                let engine = self.clone();
                client.on_error(move |_| {
                    engine.inner.redis_fit.store(false, Ordering::Relaxed);
                    async { Ok(()) }
                });
                let engine = self.clone();
                let me = client.clone();
                client.on_reconnect(move |server| {
                    let (engine, me) = (engine.clone(), me.clone());
                    async move {
                        let verdict = check(&me, &durability).await;
                        if let Err(reason) = &verdict {
                            tracing::error!(%server, reason, "Redis does not keep what REDIS_DURABILITY needs: not issuing");
                        }
                        engine.inner.redis_fit.store(verdict.is_ok(), Ordering::Relaxed);
                        Ok(())
                    }
                });
            }
        }
        verdict.map_err(Error::RedisUnfit)
    }

    /// Whether Redis was found keeping what the durability needs at the last check.
    pub fn redis_fit(&self) -> bool {
        self.inner.redis_fit.load(Ordering::Relaxed)
    }
}
