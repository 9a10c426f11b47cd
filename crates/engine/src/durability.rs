//! Whether Redis keeps what the configured durability needs ([`Durability`]).
//!
//! `aof` needs `appendonly yes` with `appendfsync always`: Redis then fsyncs a call's effects
//! before it replies, so an answered issue survives a crash of Redis. The api checks it before
//! serving (and refuses to start otherwise) and again after every reconnect (a failover or a
//! restart may bring another server, or the same one with another configuration); while it does
//! not hold, issues answer 503 instead of being made on a Redis that may forget them. Replica
//! mode confirms writes where it matters, per call ([`crate::confirm`]).

use std::{collections::HashMap, sync::atomic::Ordering};

use fred::{
    clients::Client,
    interfaces::{ClientLike, ClusterInterface, ConfigInterface, EventInterface},
    types::config::{Options, Server},
};
use issuance_core::{config::Durability, error::Error};

use crate::engine::Engine;

/// `Ok` when the server behind `client` keeps what `durability` needs (on a Redis Cluster:
/// every primary of the client's slot map); otherwise what is missing, for the operator.
pub async fn check(client: &Client, durability: &Durability) -> Result<(), String> {
    if !durability.aof {
        return Ok(());
    }
    let primaries = if client.is_clustered() {
        let routing = client.cached_cluster_state();
        routing.map(|r| r.unique_primary_nodes()).unwrap_or_default()
    } else {
        Vec::new()
    };
    if primaries.is_empty() {
        return check_server(client, None, durability).await;
    }
    for primary in primaries {
        check_server(client, Some(primary), durability).await?;
    }
    Ok(())
}

/// [`check`] of one server: `node` on a cluster, the client's server otherwise.
async fn check_server(client: &Client, node: Option<Server>, durability: &Durability) -> Result<(), String> {
    let at = node.as_ref().map(|n| format!(" on {n}")).unwrap_or_default();
    let there = Options {
        cluster_node: node,
        ..Options::default()
    };
    let settings: HashMap<String, String> = client.with_options(&there).config_get("append*").await.map_err(
        |e| {
            format!(
                "REDIS_DURABILITY={} needs CONFIG GET to read appendonly/appendfsync{at}, which failed: {e}",
                durability.mode()
            )
        },
    )?;
    let value = |name: &str| settings.get(name).map(String::as_str).unwrap_or("?");
    if value("appendonly") == "yes" && value("appendfsync") == "always" {
        Ok(())
    } else {
        Err(format!(
            "REDIS_DURABILITY={} needs Redis with appendonly yes and appendfsync always, found{at} \
             appendonly {} and appendfsync {} (set them in redis.conf, or choose another mode)",
            durability.mode(),
            value("appendonly"),
            value("appendfsync"),
        ))
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
