//! Replica mode's confirmation: `WAIT` for the replicas after writes, on the connection that
//! made them — after each issue call, and before each drain commit (so Postgres never holds an
//! issue the replicas lack).
//!
//! `WAIT` counts the acknowledgements of the writes of the connection it runs on; one that ran
//! on another connection (fred re-sends a command after a reconnect, and a new connection has
//! written nothing, so its `WAIT` returns at once) would confirm nothing. So the `WAIT` is never
//! re-sent, fails rather than waits for a reconnect, and counts only when the client's
//! connection is still the one it was before the writes ([`Connection`]).

use std::{collections::HashMap, time::Duration};

use fred::{
    clients::Client,
    interfaces::{ClientInterface, ClientLike, ServerInterface},
    types::config::{Options, Server},
};
use issuance_core::{config::Durability, error::Error};

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
