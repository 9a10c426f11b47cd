//! The issuance stream: what `issue.lua` appends, and the consumer-group calls the drain makes.
//!
//! Every successful issue appends one entry `{k, s, u, id, t}` (kind, scope, user, issue id,
//! issued-at ms) to its scope's stream inside the same Lua call, so an answered 201 always has
//! its record. The drain reads entries through the group [`DRAIN_GROUP`], commits them to
//! Postgres, and only then acknowledges them and trims the stream head ([`ack`]); the stream
//! holds what is not yet persisted (and a little more until the next trim). An entry read by a consumer that died stays pending in
//! the group until another consumer claims it ([`claim_idle`]).

use std::collections::HashMap;

use fred::{
    clients::{Client, Pool},
    interfaces::{SetsInterface, StreamsInterface},
    types::Value,
};
use uuid::Uuid;

use crate::{
    error::Error,
    keys::{DRAIN_GROUP, Keys},
    script::Lua,
};

/// The kinds of record the stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// A golden ticket.
    Ticket,
    /// A first-come coupon.
    Coupon,
}

impl RecordKind {
    /// The `k` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Ticket => "ticket",
            RecordKind::Coupon => "coupon",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "ticket" => Some(RecordKind::Ticket),
            "coupon" => Some(RecordKind::Coupon),
            _ => None,
        }
    }
}

/// An issue's id, as its kind numbers it (see [`crate::scope::IdMode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueId {
    /// A ticket's UUIDv7.
    Uuid(Uuid),
    /// A coupon's position in its batch.
    Position(i32),
}

impl IssueId {
    /// Reads the id of a record of `kind`.
    pub fn parse(kind: RecordKind, s: &str) -> Option<Self> {
        match kind {
            RecordKind::Ticket => s.parse().ok().map(IssueId::Uuid),
            RecordKind::Coupon => s.parse().ok().filter(|p| *p >= 0).map(IssueId::Position),
        }
    }
}

impl std::fmt::Display for IssueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IssueId::Uuid(id) => id.fmt(f),
            IssueId::Position(p) => p.fmt(f),
        }
    }
}

/// One issue, as the stream records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueRecord {
    /// What was issued.
    pub kind: RecordKind,
    /// The scope (the event key, the batch id).
    pub scope: String,
    /// The holder.
    pub user_id: i64,
    /// The issue's id.
    pub issue_id: IssueId,
    /// When Redis issued it, epoch ms.
    pub issued_at_ms: i64,
}

/// A stream entry as read: its id and its record, or why the record could not be read.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The stream entry id.
    pub id: String,
    /// The decoded record.
    pub record: Result<IssueRecord, String>,
}

type Fields = HashMap<String, String>;

impl Entry {
    fn decode(id: String, fields: Fields) -> Self {
        let record = IssueRecord::from_fields(&fields);
        Self { id, record }
    }
}

impl IssueRecord {
    fn from_fields(f: &Fields) -> Result<Self, String> {
        let field = |name: &str| f.get(name).ok_or_else(|| format!("missing field {name}"));
        let kind = RecordKind::parse(field("k")?).ok_or("unknown kind")?;
        Ok(Self {
            kind,
            scope: field("s")?.clone(),
            user_id: field("u")?.parse().map_err(|_| "bad user")?,
            issue_id: IssueId::parse(kind, field("id")?).ok_or("bad id")?,
            issued_at_ms: field("t")?.parse().map_err(|_| "bad time")?,
        })
    }

    /// The entry's fields, as `issue.lua` writes them (used to replay records in tests and tools).
    pub fn to_fields(&self) -> Vec<(String, String)> {
        vec![
            ("k".into(), self.kind.as_str().into()),
            ("s".into(), self.scope.clone()),
            ("u".into(), self.user_id.to_string()),
            ("id".into(), self.issue_id.to_string()),
            ("t".into(), self.issued_at_ms.to_string()),
        ]
    }
}

/// Lag of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lag {
    /// Entries not yet persisted.
    pub entries: i64,
    /// Age of the oldest of them, ms.
    pub age_ms: i64,
    /// Entries the stream holds (XLEN), persisted ones not yet trimmed included.
    pub length: i64,
}

/// Adds a stream to the registry the drain reads. Idempotent.
pub async fn register(redis: &Pool, keys: &Keys, stream: &str) -> Result<(), Error> {
    redis.sadd::<(), _, _>(keys.streams(), stream).await?;
    Ok(())
}

/// Every registered stream.
pub async fn registered(redis: &Pool, keys: &Keys) -> Result<Vec<String>, Error> {
    Ok(redis.smembers(keys.streams()).await?)
}

/// Creates the drain group (and the stream) if missing, reading from the first entry.
pub async fn ensure_group(client: &Client, stream: &str) -> Result<(), Error> {
    match client
        .xgroup_create::<(), _, _, _>(stream, DRAIN_GROUP, "0", true)
        .await
    {
        Err(e) if e.details().starts_with("BUSYGROUP") => Ok(()),
        other => Ok(other?),
    }
}

/// Whether an error says the group (or its stream) does not exist.
pub fn is_missing_group(err: &Error) -> bool {
    matches!(err, Error::Redis(e) if e.details().starts_with("NOGROUP"))
}

/// Reads up to `count` entries never delivered to any consumer, without blocking.
pub async fn read_new(
    client: &Client,
    stream: &str,
    consumer: &str,
    count: u64,
) -> Result<Vec<Entry>, Error> {
    read_group(client, stream, consumer, count, ">").await
}

/// Reads up to `count` entries already delivered to `consumer` and not yet acknowledged (its
/// own unfinished work, after a failed commit).
pub async fn read_own_pending(
    client: &Client,
    stream: &str,
    consumer: &str,
    count: u64,
) -> Result<Vec<Entry>, Error> {
    read_group(client, stream, consumer, count, "0").await
}

async fn read_group(
    client: &Client,
    stream: &str,
    consumer: &str,
    count: u64,
    from: &str,
) -> Result<Vec<Entry>, Error> {
    let raw: Value = client
        .xreadgroup(DRAIN_GROUP, consumer, Some(count), None, false, stream, from)
        .await?;
    if raw.is_null() {
        return Ok(Vec::new());
    }
    let mut reply = raw.into_xread_response::<String, String, String, String>()?;
    Ok(reply
        .remove(stream)
        .unwrap_or_default()
        .into_iter()
        .map(|(id, fields)| Entry::decode(id, fields))
        .collect())
}

/// Takes over up to `count` entries that another consumer read but has not acknowledged for at
/// least `min_idle_ms`: that consumer is presumed dead.
pub async fn claim_idle(
    client: &Client,
    stream: &str,
    consumer: &str,
    min_idle_ms: u64,
    count: u64,
) -> Result<Vec<Entry>, Error> {
    let (_next, claimed): (String, Vec<(String, Fields)>) = client
        .xautoclaim_values(
            stream,
            DRAIN_GROUP,
            consumer,
            min_idle_ms,
            "0-0",
            Some(count),
            false,
        )
        .await?;
    Ok(claimed
        .into_iter()
        .map(|(id, fields)| Entry::decode(id, fields))
        .collect())
}

/// Acknowledges persisted entries and trims what no consumer needs; returns how many were
/// still pending.
pub async fn ack(client: &Client, stream: &str, ids: &[String]) -> Result<i64, Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut args = Vec::with_capacity(ids.len() + 1);
    args.push(DRAIN_GROUP.to_owned());
    args.extend(ids.iter().cloned());
    Lua::AckEntries.call(client, vec![stream], args).await
}

/// Consumers of the drain group holding pending entries, with how many (XINFO CONSUMERS).
pub async fn consumers_with_pending(client: &Client, stream: &str) -> Result<Vec<(String, i64)>, Error> {
    let info: Vec<HashMap<String, Value>> = match client.xinfo_consumers(stream, DRAIN_GROUP).await {
        Err(e) if e.details().starts_with("NOGROUP") || e.details().starts_with("ERR no such key") => {
            return Ok(Vec::new());
        }
        other => other?,
    };
    Ok(info
        .into_iter()
        .filter_map(|c| {
            let name = c.get("name")?.as_string()?;
            let pending = c.get("pending")?.as_i64()?;
            (pending > 0).then_some((name, pending))
        })
        .collect())
}

/// Takes over every entry pending under `dead` (a consumer whose liveness key is gone), up to
/// `count`, for `me`, whatever their idle time.
pub async fn claim_from(
    client: &Client,
    stream: &str,
    dead: &str,
    me: &str,
    count: u64,
) -> Result<Vec<Entry>, Error> {
    let pending: Vec<(String, String, u64, u64)> = client
        .xpending(stream, DRAIN_GROUP, ("-", "+", count, dead))
        .await?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = pending.into_iter().map(|(id, ..)| id).collect();
    let claimed: Vec<(String, Fields)> = client
        .xclaim_values(stream, DRAIN_GROUP, me, 0, ids, None, None, None, false, false)
        .await?;
    Ok(claimed
        .into_iter()
        .map(|(id, fields)| Entry::decode(id, fields))
        .collect())
}

/// Empties the stream of an ended, fully persisted scope (see `retire_stream.lua`) and takes it
/// out of the registry; returns whether it did.
pub async fn retire(redis: &Pool, keys: &Keys, stream: &str, meta: &str) -> Result<bool, Error> {
    let retired: i64 = Lua::RetireStream
        .call(redis.next(), vec![stream, meta], vec![DRAIN_GROUP.to_owned()])
        .await?;
    if retired == 1 {
        redis.srem::<(), _, _>(keys.streams(), stream).await?;
    }
    Ok(retired == 1)
}

/// Every entry the stream still holds, oldest first: all that is not yet persisted, and possibly
/// a few persisted ones the last trim left behind.
pub async fn unpersisted(client: &Client, stream: &str) -> Result<Vec<Entry>, Error> {
    let entries: Vec<(String, Fields)> = client.xrange_values(stream, "-", "+", None).await?;
    Ok(entries
        .into_iter()
        .map(|(id, fields)| Entry::decode(id, fields))
        .collect())
}

/// Removes consumer names idle for `min_idle_ms` with nothing pending; returns how many.
pub async fn forget_idle_consumers(client: &Client, stream: &str, min_idle_ms: u64) -> Result<i64, Error> {
    Lua::ForgetConsumers
        .call(
            client,
            vec![stream],
            vec![DRAIN_GROUP.to_owned(), min_idle_ms.to_string()],
        )
        .await
}

/// How far the drain is behind on `stream`.
pub async fn lag(client: &Client, stream: &str) -> Result<Lag, Error> {
    let (entries, age_ms, length): (i64, i64, i64) = Lua::StreamLag
        .call(client, vec![stream], vec![DRAIN_GROUP.to_owned()])
        .await?;
    Ok(Lag {
        entries,
        age_ms,
        length,
    })
}

/// Lag summed over every registered stream: total entries, and the oldest age.
pub async fn total_lag(redis: &Pool, keys: &Keys) -> Result<Lag, Error> {
    let mut total = Lag::default();
    for stream in registered(redis, keys).await? {
        let lag = lag(redis.next(), &stream).await?;
        total.entries += lag.entries;
        total.age_ms = total.age_ms.max(lag.age_ms);
        total.length += lag.length;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_through_fields() {
        let r = IssueRecord {
            kind: RecordKind::Ticket,
            scope: "e1".into(),
            user_id: 42,
            issue_id: IssueId::Uuid(Uuid::now_v7()),
            issued_at_ms: 1_700_000_000_123,
        };
        let fields: Fields = r.to_fields().into_iter().collect();
        assert_eq!(IssueRecord::from_fields(&fields), Ok(r));
        let c = IssueRecord {
            kind: RecordKind::Coupon,
            scope: "12".into(),
            user_id: 42,
            issue_id: IssueId::Position(7),
            issued_at_ms: 1_700_000_000_123,
        };
        let fields: Fields = c.to_fields().into_iter().collect();
        assert_eq!(IssueRecord::from_fields(&fields), Ok(c));
    }

    #[test]
    fn ids_must_fit_their_kind() {
        assert_eq!(
            IssueId::parse(RecordKind::Coupon, "3"),
            Some(IssueId::Position(3))
        );
        assert_eq!(IssueId::parse(RecordKind::Coupon, "-1"), None);
        assert_eq!(IssueId::parse(RecordKind::Ticket, "3"), None);
        assert_eq!(
            IssueId::parse(RecordKind::Coupon, &Uuid::now_v7().to_string()),
            None
        );
    }

    #[test]
    fn bad_record_says_why() {
        let fields: Fields = [("k".to_owned(), "ticket".to_owned())].into_iter().collect();
        assert_eq!(IssueRecord::from_fields(&fields), Err("missing field s".into()));
    }
}
