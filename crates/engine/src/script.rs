//! The Lua scripts, loaded by name from `lua/` at compile time.
//!
//! Each call goes out as EVALSHA. When Redis answers NOSCRIPT (restart, failover, `SCRIPT
//! FLUSH`), the script is loaded again and the call repeated once; the reload is counted in
//! `issuer_script_reloads_total`. A repeated call is safe: NOSCRIPT means nothing ran. On a
//! Redis Cluster the reload goes to every primary (SCRIPT LOAD is not replicated, so a promoted
//! replica answers NOSCRIPT too), not to whichever node the client picks.

use std::sync::LazyLock;

use fred::{
    clients::Client,
    interfaces::LuaInterface,
    types::{FromValue, MultipleKeys},
};
use issuance_core::error::Error;

/// A script in `lua/`, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lua {
    /// `issue.lua`: the first-come decision.
    Issue,
    /// `load_meta.lua`: copy an event's rules into Redis.
    LoadMeta,
    /// `restore_holders.lua`: merge known issues back into the holders hash.
    RestoreHolders,
    /// `scope_counts.lua`: live figures of a scope (an event, a first-come batch).
    ScopeCounts,
    /// `ack_entries.lua`: acknowledge and delete persisted stream entries.
    AckEntries,
    /// `stream_lag.lua`: entries and age of what is not yet persisted.
    StreamLag,
    /// `forget_consumers.lua`: drop idle consumer names with nothing pending.
    ForgetConsumers,
    /// `retire_stream.lua`: drop the stream of an ended, fully persisted scope.
    RetireStream,
    /// `raise_ceiling.lua`: let a scope's copy issue up to a new reservation.
    RaiseCeiling,
    /// `lower_ceiling.lua`: take back what a bucket leased and has not issued.
    LowerCeiling,
    /// `copy_whole.lua`: whether this server's history of a scope is known whole.
    CopyWhole,
    /// `mark_broken.lua`: mark a scope's copy broken, if there is one.
    MarkBroken,
    /// `set_total.lua`: lower a scope's quantity, never below what it issued.
    SetTotal,
    /// `room.lua`: a scope's waiting room (join, place, pass).
    Room,
}

const ALL: [Lua; 14] = [
    Lua::Issue,
    Lua::LoadMeta,
    Lua::RestoreHolders,
    Lua::ScopeCounts,
    Lua::AckEntries,
    Lua::StreamLag,
    Lua::ForgetConsumers,
    Lua::RetireStream,
    Lua::RaiseCeiling,
    Lua::LowerCeiling,
    Lua::CopyWhole,
    Lua::MarkBroken,
    Lua::SetTotal,
    Lua::Room,
];

/// SHA1 of each script, computed once.
static SHAS: LazyLock<Vec<String>> =
    LazyLock::new(|| ALL.iter().map(|s| fred::util::sha1_hash(s.source())).collect());

impl Lua {
    /// The file name without `.lua`.
    pub fn name(self) -> &'static str {
        match self {
            Lua::Issue => "issue",
            Lua::LoadMeta => "load_meta",
            Lua::RestoreHolders => "restore_holders",
            Lua::ScopeCounts => "scope_counts",
            Lua::AckEntries => "ack_entries",
            Lua::StreamLag => "stream_lag",
            Lua::ForgetConsumers => "forget_consumers",
            Lua::RetireStream => "retire_stream",
            Lua::RaiseCeiling => "raise_ceiling",
            Lua::LowerCeiling => "lower_ceiling",
            Lua::CopyWhole => "copy_whole",
            Lua::MarkBroken => "mark_broken",
            Lua::SetTotal => "set_total",
            Lua::Room => "room",
        }
    }

    fn source(self) -> &'static str {
        match self {
            Lua::Issue => include_str!("../../../lua/issue.lua"),
            Lua::LoadMeta => include_str!("../../../lua/load_meta.lua"),
            Lua::RestoreHolders => include_str!("../../../lua/restore_holders.lua"),
            Lua::ScopeCounts => include_str!("../../../lua/scope_counts.lua"),
            Lua::AckEntries => include_str!("../../../lua/ack_entries.lua"),
            Lua::StreamLag => include_str!("../../../lua/stream_lag.lua"),
            Lua::ForgetConsumers => include_str!("../../../lua/forget_consumers.lua"),
            Lua::RetireStream => include_str!("../../../lua/retire_stream.lua"),
            Lua::RaiseCeiling => include_str!("../../../lua/raise_ceiling.lua"),
            Lua::LowerCeiling => include_str!("../../../lua/lower_ceiling.lua"),
            Lua::CopyWhole => include_str!("../../../lua/copy_whole.lua"),
            Lua::MarkBroken => include_str!("../../../lua/mark_broken.lua"),
            Lua::SetTotal => include_str!("../../../lua/set_total.lua"),
            Lua::Room => include_str!("../../../lua/room.lua"),
        }
    }

    fn sha(self) -> &'static str {
        let index = ALL
            .iter()
            .position(|s| *s == self)
            .expect("every script is in ALL");
        &SHAS[index]
    }

    /// Exports `issuer_script_reloads_total` of every script at 0, so a reload after a restart
    /// or a failover shows as an increase (a counter that appears at 1 has no earlier sample).
    pub fn export_at_zero() {
        for script in ALL {
            metrics::counter!("issuer_script_reloads_total", "script" => script.name()).absolute(0);
        }
    }

    /// Runs the script by EVALSHA, loading it again once on NOSCRIPT.
    pub async fn call<R, K>(self, client: &Client, keys: K, args: Vec<String>) -> Result<R, Error>
    where
        R: FromValue,
        K: Into<MultipleKeys> + Clone + Send,
    {
        self.call_with(client, keys, || args.clone()).await
    }

    /// [`Lua::call`] with arguments made by `args`: once, and a second time only after a
    /// NOSCRIPT, so the hot path's arguments (two per request of a group) are not copied for a
    /// retry that almost never happens.
    pub async fn call_with<R, K>(
        self,
        client: &Client,
        keys: K,
        args: impl Fn() -> Vec<String>,
    ) -> Result<R, Error>
    where
        R: FromValue,
        K: Into<MultipleKeys> + Clone + Send,
    {
        match client.evalsha(self.sha(), keys.clone(), args()).await {
            Err(e) if e.details().starts_with("NOSCRIPT") => {
                metrics::counter!("issuer_script_reloads_total", "script" => self.name()).increment(1);
                tracing::info!(script = self.name(), "script missing in Redis, loading it again");
                client.script_load_cluster::<String, _>(self.source()).await?;
                Ok(client.evalsha(self.sha(), keys, args()).await?)
            }
            other => Ok(other?),
        }
    }
}
