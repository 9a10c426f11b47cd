//! Every Redis key the engine uses, and nothing else names one.
//!
//! `<scope>` is `gt:<event key>` or `cb:<batch id>`.
//!
//! | key | type | what |
//! |---|---|---|
//! | `<p>{<scope>}:meta` | hash | the scope's rules, copied from Postgres: `total daily start end active ver`, the integrity fields `issued gap day today broken` `issue.lua` keeps, `epoch` (the replication id of the server the copy was built on), and `layout` (a value too long for a listpack, so the hash is a hash table: `issue.lua` reads its fields on every call) |
//! | `<p>{<scope>}:holders` | hash | user id → `"<issue id>\|<issued at ms>"` (a ticket's UUID, a coupon's position); its length is the issued count |
//! | `<p>{<scope>}:day:<n>` | string | issued on KST day `n` (days since 1970-01-01 KST); expires a day after |
//! | `<p>{gt:<event>#<b>.<n>}:…` | | the same keys for bucket `b` of an event spread over buckets ([`crate::leases`]); its meta adds `lgen` |
//! | `<p>{<scope>}:stream` | stream | one entry per `issue.lua` call that issued: the call (`g`, `gu` …), read into its issue records by [`crate::stream`]; trimmed once persisted (group `drain`) |
//! | `<p>{<scope>}:drained` | string | the drain consumer that last committed the scope's records (replica mode): the write before each commit that `WAIT` then counts, on the stream's own server; expires after a minute |
//! | `<p>{<scope>}:room` | hash | the waiting room's counts: `n` joined, `npre` joined before the start, `adm` admitted, `at` the outflow's clock (ms) |
//! | `<p>{<scope>}:queue` | hash | user id → join index (0, 1, 2 …); the order is computed from it, never written |
//! | `<p>{<scope>}:passes` | hash | user id → when the pass given to that admitted user expires (ms) |
//! | `<p>issuance:streams` | set | every issuance stream, for the drain to find |
//! | `<p>drain:alive:<consumer>` | string | a drain consumer's liveness, renewed while it runs |
//! | `<p>admin:dashboard` | string | the admin dashboard, cached for a few seconds (`:lock` while one computes it) |
//! | `<p>campaign:job:<job id>` | string | a campaign job that ended (COMPLETED or FAILED), as JSON; 1 h |
//! | `<p>campaign:views:<campaign id>` | string | how often the campaign's banners were served |
//! | `<p>campaign:dashboard:<owner id or all>` | string | a campaign dashboard's rows, as JSON; 1 min, deleted on every change |
//!
//! A scope is what one `issue.lua` call decides for: a golden-ticket event (`gt:<event key>`) or a
//! first-come coupon batch (`cb:<batch id>`). The keys of one scope share its hash tag, so one Lua
//! call touches one slot and the design runs unchanged on a Redis Cluster. The registry set is read
//! only by the drain and the metrics, never on the issue path. `<p>` is the configured prefix (no
//! braces).

/// What joins an event key and a bucket number in a bucket's scope id (`<event key>#<bucket>`,
/// as its records and its `scope_reservations` row name it) and hash tag; event keys never hold
/// it.
pub const BUCKET_MARK: char = '#';

/// The consumer group that persists issue records.
pub const DRAIN_GROUP: &str = "drain";

/// Builds keys under one prefix.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    prefix: String,
}

/// The keys of one issuance scope (a golden-ticket event or a first-come coupon batch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeKeys {
    /// The rules hash.
    pub meta: String,
    /// The holders hash.
    pub holders: String,
    /// The day-counter prefix; the scripts append the KST day number.
    pub day_prefix: String,
    /// The issuance stream.
    pub stream: String,
}

/// The keys of a scope's waiting room (see `lua/room.lua`); they share the scope's hash tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomKeys {
    /// Counts: joined, joined before the start, admitted, and the outflow's clock.
    pub room: String,
    /// User id -> join index.
    pub queue: String,
    /// User id -> when the user's pass expires.
    pub passes: String,
    /// The outflow's steps, until their passes expire.
    pub steps: String,
    /// Passes used, until they expire.
    pub used: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The keys of a golden-ticket event.
    pub fn ticket_event(&self, event_key: &str) -> ScopeKeys {
        self.scope("gt", event_key)
    }

    /// The keys of a first-come coupon batch.
    pub fn coupon_batch(&self, batch_id: i64) -> ScopeKeys {
        self.scope("cb", &batch_id.to_string())
    }

    /// The cached admin dashboard.
    pub fn dashboard(&self) -> String {
        format!("{}admin:dashboard", self.prefix)
    }

    /// A campaign job that ended.
    pub fn campaign_job(&self, job_id: &str) -> String {
        format!("{}campaign:job:{job_id}", self.prefix)
    }

    /// How often a campaign's banners were served.
    pub fn campaign_views(&self, campaign_id: &str) -> String {
        format!("{}campaign:views:{campaign_id}", self.prefix)
    }

    /// The campaign dashboard of one owner (`Some`) or of everybody (`None`, for admins).
    pub fn campaign_dashboard(&self, owner: Option<i64>) -> String {
        match owner {
            Some(id) => format!("{}campaign:dashboard:{id}", self.prefix),
            None => format!("{}campaign:dashboard:all", self.prefix),
        }
    }

    /// The meta key of the scope whose stream is `stream` (the drain knows streams only from
    /// the registry).
    pub fn meta_of_stream(stream: &str) -> Option<String> {
        stream.strip_suffix(":stream").map(|base| format!("{base}:meta"))
    }

    /// The drain's mark of the scope whose stream is `stream`, in the stream's slot.
    pub fn drained_of_stream(stream: &str) -> Option<String> {
        stream
            .strip_suffix(":stream")
            .map(|base| format!("{base}:drained"))
    }

    /// The waiting room of the scope tagged `tag` (`gt:<event key>`, `cb:<batch id>`).
    pub fn room(&self, tag: &str) -> RoomKeys {
        let base = format!("{}{{{tag}}}", self.prefix);
        RoomKeys {
            room: format!("{base}:room"),
            queue: format!("{base}:queue"),
            passes: format!("{base}:passes"),
            steps: format!("{base}:steps"),
            used: format!("{base}:used"),
        }
    }

    fn scope(&self, kind: &str, id: &str) -> ScopeKeys {
        self.tagged(&format!("{kind}:{id}"))
    }

    /// The keys of the scope whose hash tag is `tag` (a bucket's, see [`crate::scope::Scope`]).
    pub(crate) fn tagged(&self, tag: &str) -> ScopeKeys {
        let base = format!("{}{{{tag}}}", self.prefix);
        ScopeKeys {
            meta: format!("{base}:meta"),
            holders: format!("{base}:holders"),
            day_prefix: format!("{base}:day:"),
            stream: format!("{base}:stream"),
        }
    }

    /// The scope a stream belongs to, as its hash tag names it (`gt:<event>`, `cb:<batch>`).
    pub fn scope_of_stream(stream: &str) -> Option<&str> {
        let (_, rest) = stream.split_once('{')?;
        rest.split_once('}').map(|(scope, _)| scope)
    }

    /// The set of every issuance stream.
    pub fn streams(&self) -> String {
        format!("{}issuance:streams", self.prefix)
    }

    /// The liveness key of drain consumer `consumer`: present while it runs (renewed every few
    /// hundred ms with a short expiry), gone soon after it dies.
    pub fn drain_alive(&self, consumer: &str) -> String {
        format!("{}drain:alive:{consumer}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_names_its_scope() {
        let keys = Keys::new("t1:");
        assert_eq!(
            Keys::scope_of_stream(&keys.ticket_event("golden-1").stream),
            Some("gt:golden-1")
        );
        assert_eq!(
            Keys::scope_of_stream(&keys.coupon_batch(12).stream),
            Some("cb:12")
        );
        assert_eq!(Keys::scope_of_stream("no-tag"), None);
    }

    #[test]
    fn keys_of_one_scope_share_a_hash_tag() {
        let k = Keys::new("t1:").ticket_event("golden-1");
        for key in [&k.meta, &k.holders, &k.day_prefix, &k.stream] {
            assert!(key.starts_with("t1:{gt:golden-1}:"), "{key}");
        }
    }
}
