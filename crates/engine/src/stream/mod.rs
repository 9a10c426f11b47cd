//! The issuance stream: what `issue.lua` appends, and the consumer-group calls the drain makes.
//!
//! Every call of `issue.lua` that issues appends one entry to its scope's stream, so an answered
//! 201 always has its record: the call itself (its users, their statuses, how its ids are made,
//! its time and fence; [`call`]), from which the drain makes one record per issue. One entry per
//! call rather than per issue: Redis appends, XREADGROUP answers and the drain acknowledges a
//! group's worth of issues at once; and the call rather than its records, so an issue adds no
//! text to it on the hot scope's Redis core. Entries of the earlier shapes are still read: one
//! field `rs` holding a call's records, one line each (`<kind>|<scope>|<user>|<issue id>|<issued
//! at ms>|<fence>`, joined by `\n`; [`IssueRecord::to_fields`] still writes it to requeue a
//! record), one field `r` holding one record line, or five fields `k s u id t`. The drain reads
//! entries through the group [`DRAIN_GROUP`], commits them to Postgres, and only then
//! acknowledges them and trims the stream head ([`ack`]); the stream
//! holds what is not yet persisted (and a little more until the next trim). An entry read by a
//! consumer that died stays pending in the group until another consumer claims it
//! ([`claim_idle`], [`claim_from`]).

mod call;
mod record;

use std::collections::HashMap;

use fred::{
    clients::{Client, Pool},
    interfaces::{SetsInterface, StreamsInterface},
    types::Value,
};
use issuance_core::error::Error;

use self::call::CallEntry;
pub use self::record::{IssueId, IssueRecord, RecordKind};
use crate::{
    keys::{DRAIN_GROUP, Keys},
    script::Lua,
};

/// A stream entry as read: its id and its records, or why they could not be read.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The stream entry id.
    pub id: String,
    /// The decoded records, in the order they were issued.
    pub records: Result<Vec<IssueRecord>, String>,
}

type Fields = HashMap<String, String>;

impl Entry {
    fn decode(id: String, fields: Fields) -> Self {
        let records = records_of(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        Self { id, records }
    }

    /// An entry as XREADGROUP answers it: `[id, [field, value, …]]` (the fields are nil when the
    /// entry was deleted after it was delivered).
    fn from_value(value: Value) -> Option<Self> {
        let Value::Array(mut parts) = value else {
            return None;
        };
        let fields = parts.pop()?;
        let id = parts.pop()?.as_string()?;
        let records = match &fields {
            Value::Array(flat) => records_of(
                flat.chunks_exact(2)
                    .filter_map(|kv| Some((kv[0].as_str()?, kv[1].as_str()?))),
            ),
            _ => Err("entry deleted".to_owned()),
        };
        Some(Self { id, records })
    }
}

/// Reads an entry's records from its fields: a call's (`g`, `gu` …; [`call`]), the one
/// field `rs` (several records), the one field `r` (one record), or the five of the earliest
/// shape in any order; unknown fields are ignored.
fn records_of<K, V>(pairs: impl Iterator<Item = (K, V)>) -> Result<Vec<IssueRecord>, String>
where
    K: AsRef<str>,
    V: AsRef<str>,
{
    let mut call = CallEntry::default();
    let (mut kind, mut scope, mut user, mut id, mut at) = (None, None, None, None, None);
    for (name, value) in pairs {
        let (name, value) = (name.as_ref(), value.as_ref());
        if call.take(name, value) {
            continue;
        }
        match name {
            "rs" => return value.split('\n').map(IssueRecord::parse).collect(),
            "r" => return IssueRecord::parse(value).map(|r| vec![r]),
            "k" => kind = Some(value.to_owned()),
            "s" => scope = Some(value.to_owned()),
            "u" => user = Some(value.to_owned()),
            "id" => id = Some(value.to_owned()),
            "t" => at = Some(value.to_owned()),
            _ => {}
        }
    }
    if let Some(records) = call.records() {
        return records;
    }
    let missing = |name: &str| format!("missing field {name}");
    IssueRecord::from_parts([
        &kind.ok_or_else(|| missing("k"))?,
        &scope.ok_or_else(|| missing("s"))?,
        &user.ok_or_else(|| missing("u"))?,
        &id.ok_or_else(|| missing("id"))?,
        &at.ok_or_else(|| missing("t"))?,
    ])
    .map(|r| vec![r])
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
    // `[[stream, [entry, …]]]` (a map of stream to entries in RESP3), read without building a
    // map per entry: the drain reads tens of thousands of them per second.
    let entries = match raw {
        Value::Null => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .find_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => Some(pair.pop()?),
                _ => None,
            })
            .unwrap_or(Value::Null),
        Value::Map(m) => m.inner().remove(&stream.into()).unwrap_or(Value::Null),
        other => {
            return Err(Error::Redis(fred::error::Error::new(
                fred::error::ErrorKind::Protocol,
                format!("unexpected XREADGROUP reply: {other:?}"),
            )));
        }
    };
    Ok(entries
        .into_array()
        .into_iter()
        .filter_map(Entry::from_value)
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

/// The lag of each of `streams`.
pub async fn lags(redis: &Pool, streams: &[String]) -> Result<Vec<(String, Lag)>, Error> {
    let mut out = Vec::with_capacity(streams.len());
    for stream in streams {
        out.push((stream.clone(), lag(redis.next(), stream).await?));
    }
    Ok(out)
}

impl Lag {
    /// Lags summed: total entries and lengths, the oldest age.
    pub fn sum<'a>(lags: impl IntoIterator<Item = &'a Lag>) -> Lag {
        lags.into_iter().fold(Lag::default(), |total, lag| Lag {
            entries: total.entries + lag.entries,
            age_ms: total.age_ms.max(lag.age_ms),
            length: total.length + lag.length,
        })
    }
}

/// Lag summed over every registered stream: total entries, and the oldest age.
pub async fn total_lag(redis: &Pool, keys: &Keys) -> Result<Lag, Error> {
    let lags = lags(redis, &registered(redis, keys).await?).await?;
    Ok(Lag::sum(lags.iter().map(|(_, lag)| lag)))
}

/// The drain's lag per scope (an event over buckets as one: its buckets' streams summed), and
/// over all of them.
pub fn record_lags(lags: &[(String, Lag)]) {
    let mut scopes: std::collections::BTreeMap<&str, Vec<&Lag>> = std::collections::BTreeMap::new();
    for (stream, lag) in lags {
        scopes.entry(scope_label(stream)).or_default().push(lag);
    }
    for (scope, lags) in scopes {
        let lag = Lag::sum(lags);
        metrics::gauge!("issuer_scope_lag_entries", "scope" => scope.to_owned()).set(lag.entries as f64);
        metrics::gauge!("issuer_scope_lag_seconds", "scope" => scope.to_owned())
            .set(lag.age_ms as f64 / 1000.0);
    }
    record_lag(&Lag::sum(lags.iter().map(|(_, lag)| lag)));
}

/// The `scope` label of `stream`: its hash tag (`gt:<event>`, `cb:<batch>`), a bucket's named by
/// its event's.
fn scope_label(stream: &str) -> &str {
    let tag = Keys::scope_of_stream(stream).unwrap_or(stream);
    tag.split_once(crate::keys::BUCKET_MARK)
        .map_or(tag, |(event, _)| event)
}

/// The drain's lag over every stream ([`total_lag`]).
pub fn record_lag(lag: &Lag) {
    metrics::gauge!("issuer_stream_lag_entries").set(lag.entries as f64);
    metrics::gauge!("issuer_stream_lag_seconds").set(lag.age_ms as f64 / 1000.0);
    metrics::gauge!("issuer_stream_length_entries").set(lag.length as f64);
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn a_bucket_is_labelled_as_its_event() {
        let keys = Keys::new("p:");
        assert_eq!(scope_label(&keys.ticket_event("e1").stream), "gt:e1");
        assert_eq!(scope_label(&keys.tagged("gt:e1#1.1").stream), "gt:e1");
        assert_eq!(scope_label(&keys.coupon_batch(7).stream), "cb:7");
    }

    #[test]
    fn record_round_trips_through_fields() {
        let r = IssueRecord {
            kind: RecordKind::Ticket,
            scope: "e1".into(),
            user_id: 42,
            issue_id: IssueId::Uuid(Uuid::now_v7()),
            issued_at_ms: 1_700_000_000_123,
            fence: None,
        };
        let fields: Fields = r.to_fields().into_iter().collect();
        assert_eq!(Entry::decode("1-0".into(), fields).records, Ok(vec![r]));
        let c = IssueRecord {
            kind: RecordKind::Coupon,
            scope: "12".into(),
            user_id: 42,
            issue_id: IssueId::Position(7),
            issued_at_ms: 1_700_000_000_123,
            fence: Some(41),
        };
        let fields: Fields = c.to_fields().into_iter().collect();
        assert_eq!(fields["rs"], "coupon|12|42|7|1700000000123|41");
        assert_eq!(Entry::decode("1-0".into(), fields).records, Ok(vec![c]));
    }

    #[test]
    fn an_entry_holds_a_call_s_records_in_order() {
        let rs = "coupon|12|42|7|1700000000123|41\ncoupon|12|43|8|1700000000124|41";
        let fields: Fields = [("rs".to_owned(), rs.to_owned())].into_iter().collect();
        let records = Entry::decode("1-0".into(), fields).records.unwrap();
        let users: Vec<i64> = records.iter().map(|r| r.user_id).collect();
        assert_eq!(users, [42, 43]);
        assert_eq!(records[1].issue_id, IssueId::Position(8));
        let single: Fields = [("r".to_owned(), "coupon|12|42|7|1700000000123".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(Entry::decode("1-0".into(), single).records.unwrap().len(), 1);
        let torn: Fields = [("rs".to_owned(), format!("{rs}\ncoupon|12"))]
            .into_iter()
            .collect();
        assert!(
            Entry::decode("1-0".into(), torn).records.is_err(),
            "one unreadable line makes the entry unreadable"
        );
    }

    #[test]
    fn a_calls_entry_is_read_from_either_reply_shape() {
        let head = "coupon|12|position|7|1700000000123|41|IHI";
        let fields: Fields = [("g", head), ("gu", "42 43 44 ")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let records = Entry::decode("1-0".into(), fields).records.unwrap();
        let users: Vec<i64> = records.iter().map(|r| r.user_id).collect();
        assert_eq!(users, [42, 44]);
        assert_eq!(records[1].issue_id, IssueId::Position(8));
        let v = |s: &str| Value::String(s.into());
        let read = Entry::from_value(Value::Array(vec![
            v("5-1"),
            Value::Array(vec![v("gu"), v("42 43 44 "), v("g"), v(head)]),
        ]))
        .unwrap();
        assert_eq!(read.records.unwrap(), records);
    }

    #[test]
    fn a_record_is_written_only_within_its_fence() {
        let mut r = IssueRecord::parse("coupon|12|42|7|1700000000123|41").unwrap();
        assert_eq!(r.fence, Some(41));
        assert!(r.within_fence(Some(41)), "the current fence");
        assert!(
            r.within_fence(Some(40)),
            "a rebuild that has not committed its fence"
        );
        assert!(!r.within_fence(Some(42)), "a history a rebuild has replaced");
        assert!(r.within_fence(None), "a scope without a fence");
        r.fence = None;
        assert!(r.within_fence(Some(42)), "a record from before fences");
        assert!(IssueRecord::parse("coupon|12|42|7|1|x").is_err());
        assert!(IssueRecord::parse("coupon|12|42|7|1|2|3").is_err());
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
        assert_eq!(
            Entry::decode("1-0".into(), fields).records,
            Err("missing field s".into())
        );
        let short: Fields = [("r".to_owned(), "ticket|e1|42".to_owned())]
            .into_iter()
            .collect();
        assert!(
            Entry::decode("1-0".into(), short)
                .records
                .unwrap_err()
                .starts_with("short record")
        );
    }

    #[test]
    fn records_of_the_earlier_five_field_shape_are_read() {
        let id = Uuid::now_v7();
        let fields: Fields = [
            ("k", "ticket"),
            ("s", "e1"),
            ("u", "42"),
            ("id", &id.to_string()),
            ("t", "7"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let want = IssueRecord {
            kind: RecordKind::Ticket,
            scope: "e1".into(),
            user_id: 42,
            issue_id: IssueId::Uuid(id),
            issued_at_ms: 7,
            fence: None,
        };
        assert_eq!(Entry::decode("1-0".into(), fields).records, Ok(vec![want]));
    }

    #[test]
    fn the_reply_of_xreadgroup_is_read_without_maps() {
        let v = |s: &str| Value::String(s.into());
        let entry = Value::Array(vec![
            v("5-1"),
            Value::Array(vec![v("rs"), v("coupon|12|42|3|1700000000123")]),
        ]);
        let e = Entry::from_value(entry).unwrap();
        assert_eq!(e.id, "5-1");
        assert_eq!(e.records.unwrap()[0].issue_id, IssueId::Position(3));
        let deleted = Value::Array(vec![v("5-2"), Value::Null]);
        assert_eq!(
            Entry::from_value(deleted).unwrap().records,
            Err("entry deleted".into())
        );
    }
}
