//! Replica mode's confirmation: `WAIT` for the replicas after writes, on the connection that
//! made them — after each issue call, and before each drain commit (so Postgres never holds an
//! issue the replicas lack).
//!
//! `WAIT` counts the acknowledgements of the writes of the connection it runs on; one that ran
//! on another connection (fred re-sends a command after a reconnect, and a new connection has
//! written nothing, so its `WAIT` returns at once) would confirm nothing. So the `WAIT` is never
//! re-sent, fails rather than waits for a reconnect, and counts only when the client's
//! connection is still the one it was before the writes ([`Connection`]).
//!
//! On a Redis Cluster a client holds one connection per primary, and `WAIT` has no key, so
//! fred would send it to any node. It goes to the primary that holds the written keys' slot, as
//! the client's cached slot map has it when the writes start; a slot that moved meanwhile (a
//! failover) changes the connection, and the `WAIT` counts nothing.

use std::time::Duration;

use fred::{
    clients::Client,
    interfaces::{ClientInterface, ClientLike, ClusterInterface, ServerInterface},
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
        let not_replicated = Error::NotReplicated {
            acked: 0,
            needed: self.replicas,
        };
        let Some((server, _)) = &since.0 else {
            return Err(not_replicated);
        };
        let timeout_ms = i64::try_from(self.timeout.as_millis()).unwrap_or(i64::MAX).max(1);
        let once = Options {
            max_attempts: Some(1),
            fail_fast: true,
            cluster_node: client.is_clustered().then(|| server.clone()),
            ..Options::default()
        };
        let acked: i64 = client.with_options(&once).wait(self.replicas, timeout_ms).await?;
        let acked = if Connection::at_slot(client, since.1) == *since {
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

/// The connection a client writes a key on now: the server that holds the key (the only one,
/// off a cluster) and the server's `CLIENT ID` for the connection (fred reads the id whenever
/// it connects), with the key's hash slot. `None` when the client knows no such server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection(Option<(Server, i64)>, u16);

impl Connection {
    /// `client`'s connection now to the server that holds `key`.
    pub fn of(client: &Client, key: &str) -> Self {
        Self::at_slot(client, fred::util::redis_keyslot(key.as_bytes()))
    }

    fn at_slot(client: &Client, slot: u16) -> Self {
        let ids = client.connection_ids();
        let server = if client.is_clustered() {
            client
                .cached_cluster_state()
                .and_then(|routing| routing.get_server(slot).cloned())
        } else {
            ids.keys().next().cloned()
        };
        let connection = server.and_then(|server| ids.get(&server).map(|id| (server, *id)));
        Self(connection, slot)
    }
}
