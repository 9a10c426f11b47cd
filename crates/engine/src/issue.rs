//! The typed call of `issue.lua` and the one place its reply is decoded.

use fred::{clients::Client, types::Value};
use issuance_core::error::{Denial, Error};

use crate::{
    confirm::{Confirm, Connection},
    keys::ScopeKeys,
    scope::IdMode,
    script::Lua,
};

/// What `issue.lua` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// This call issued `id` at `at_ms`; `issued` is the count after it.
    Issued {
        /// The new issue's id.
        id: String,
        /// When, in epoch ms (Redis clock).
        at_ms: i64,
        /// Issued count after this one.
        issued: i64,
        /// The quantity.
        total: i64,
        /// What the copy may issue up to (the reservation), `None` for a copy without one.
        ceiling: Option<i64>,
    },
    /// The user already held `id`, issued at `at_ms`.
    Held {
        /// The existing issue's id.
        id: String,
        /// When it was issued.
        at_ms: i64,
    },
    /// The scope is switched off.
    Inactive,
    /// Now is outside the window.
    NotInPeriod,
    /// Nothing left.
    SoldOut,
    /// Today's quota is used up.
    DailyLimit,
    /// The rules are missing from Redis; the caller rebuilds them and asks again.
    NoMeta,
    /// The copy has issued all that Postgres reserved for it (`issued` of it); the caller
    /// reserves more and asks again.
    Reserve {
        /// Issued count.
        issued: i64,
    },
}

impl Verdict {
    /// The refusal this verdict is, in the words every scope kind shares ([`Denial`]). An issue
    /// or a held one is not a refusal (each scope kind answers those its own way), and
    /// `NoMeta` never leaves [`crate::first_come`].
    pub fn denial(&self) -> Result<Denial, Error> {
        match self {
            Verdict::Inactive => Ok(Denial::Inactive),
            Verdict::NotInPeriod => Ok(Denial::NotInPeriod),
            Verdict::SoldOut => Ok(Denial::SoldOut),
            Verdict::DailyLimit => Ok(Denial::DailyLimit),
            Verdict::NoMeta => Err(Error::protocol("issue.lua", "meta missing after a rebuild")),
            Verdict::Reserve { .. } => Err(Error::protocol(
                "issue.lua",
                "reservation missing after extending it",
            )),
            Verdict::Issued { .. } | Verdict::Held { .. } => {
                Err(Error::protocol("issue.lua", "an issue taken for a refusal"))
            }
        }
    }
}

/// One request of a group.
#[derive(Clone, Debug)]
pub struct IssueRequest {
    /// The user.
    pub user: i64,
    /// The id this request's issue gets, if it issues.
    pub candidate: String,
    /// Clock override in epoch ms (tests only); `None` lets Redis `TIME` decide.
    pub clock_ms: Option<i64>,
}

/// Requests to one scope, decided in one call.
#[derive(Clone, Copy, Debug)]
pub struct IssueGroup<'a> {
    /// The scope's keys.
    pub keys: &'a ScopeKeys,
    /// Record kind written into the stream entries.
    pub kind: &'a str,
    /// Scope id written into the stream entries.
    pub scope: &'a str,
    /// How issues get their ids.
    pub ids: IdMode,
    /// The requests, decided in this order.
    pub requests: &'a [IssueRequest],
    /// Replicas that must acknowledge the call's writes before its verdicts stand as answers
    /// (replica mode), and how long to wait for them; `None` in memory and aof modes.
    pub confirm: Option<Confirm>,
}

/// Runs `issue.lua` on a group of requests; one verdict per request, in order.
///
/// With [`IssueGroup::confirm`], a call whose verdicts include an issue or a held one is
/// followed by `WAIT` on the same connection ([`Confirm::wait`]). The script rewrites a held
/// entry in that mode, so the connection's offset covers the original issue too. Fewer
/// acknowledgements than required fail the whole call with [`Error::NotReplicated`]: its
/// decisions stand in Redis and a retry finds them, but none is answered as made.
pub async fn run(client: &Client, group: IssueGroup<'_>) -> Result<Vec<Verdict>, Error> {
    let keys = vec![
        group.keys.meta.as_str(),
        group.keys.holders.as_str(),
        group.keys.day_prefix.as_str(),
        group.keys.stream.as_str(),
    ];
    let given = group.ids == IdMode::Given;
    let clock = group.requests.iter().any(|r| r.clock_ms.is_some());
    let stride = 1 + usize::from(given) + usize::from(clock);
    let mut args = Vec::with_capacity(5 + stride * group.requests.len());
    args.push(group.kind.to_owned());
    args.push(group.scope.to_owned());
    args.push(group.ids.as_arg().to_owned());
    args.push(if group.confirm.is_some() { "1" } else { "" }.to_owned());
    args.push(if clock { "1" } else { "" }.to_owned());
    for r in group.requests {
        args.push(r.user.to_string());
        if given {
            args.push(r.candidate.clone());
        }
        if clock {
            args.push(r.clock_ms.map(|ms| ms.to_string()).unwrap_or_default());
        }
    }
    // Replica mode only: the connection the `WAIT` must find unchanged.
    let confirm = group
        .confirm
        .map(|confirm| (confirm, Connection::of(client, &group.keys.stream)));
    let reply: Value = Lua::Issue.call(client, keys, args).await?;
    let verdicts = decode(reply, group.requests.len())?;
    if let Some((confirm, connection)) = &confirm
        && verdicts
            .iter()
            .any(|v| matches!(v, Verdict::Issued { .. } | Verdict::Held { .. }))
        && let Err(e) = confirm.wait(client, connection).await
    {
        metrics::counter!("issuer_issue_unconfirmed_total").increment(1);
        return Err(e);
    }
    Ok(verdicts)
}

/// Values per request in the script's reply, after the two it starts with.
const FIELDS: usize = 4;

/// Turns the script's `{total, ceiling}` and `{status, id, at, issued}` per request into
/// [`Verdict`]s.
fn decode(reply: Value, requests: usize) -> Result<Vec<Verdict>, Error> {
    let bad = |detail: String| Error::protocol("issue.lua", detail);
    let parts = reply.into_array();
    if parts.len() != 2 + requests * FIELDS {
        return Err(bad(format!("{} values for {requests} requests", parts.len())));
    }
    let total = parts[0]
        .as_i64()
        .ok_or_else(|| bad("total is not a number".into()))?;
    let ceiling = parts[1]
        .as_i64()
        .ok_or_else(|| bad("ceiling is not a number".into()))?;
    let ceiling = Some(ceiling).filter(|c| *c >= 0);
    parts[2..]
        .chunks_exact(FIELDS)
        .map(|answer| decode_one(answer, total, ceiling))
        .collect()
}

fn decode_one(parts: &[Value], total: i64, ceiling: Option<i64>) -> Result<Verdict, Error> {
    let bad = |detail: String| Error::protocol("issue.lua", detail);
    let [status, id, at, issued] = parts else {
        return Err(bad(format!("{} fields, expected {FIELDS}", parts.len())));
    };
    let status = status.as_str().ok_or_else(|| bad("status is not text".into()))?;
    let id = || id.as_string().ok_or_else(|| bad("id is not text".into()));
    let int = |v: &Value, name: &str| v.as_i64().ok_or_else(|| bad(format!("{name} is not a number")));
    Ok(match &*status {
        "ISSUED" => Verdict::Issued {
            id: id()?,
            at_ms: int(at, "at")?,
            issued: int(issued, "issued")?,
            total,
            ceiling,
        },
        "HELD" => Verdict::Held {
            id: id()?,
            at_ms: int(at, "at")?,
        },
        "INACTIVE" => Verdict::Inactive,
        "NOT_IN_PERIOD" => Verdict::NotInPeriod,
        "SOLD_OUT" => Verdict::SoldOut,
        "DAILY_LIMIT" => Verdict::DailyLimit,
        "NO_META" => Verdict::NoMeta,
        "RESERVE" => Verdict::Reserve {
            issued: int(issued, "issued")?,
        },
        other => return Err(bad(format!("unknown status {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply of `total` and `ceiling` and one answer.
    fn reply(total: i64, ceiling: i64, answer: [Value; 4]) -> Value {
        let mut parts = vec![total.into(), ceiling.into()];
        parts.extend(answer);
        Value::Array(parts)
    }

    fn decode_single(v: Value) -> Result<Verdict, Error> {
        decode(v, 1).map(|mut v| v.remove(0))
    }

    #[test]
    fn decodes_every_status() {
        let ok = reply(10, 8, ["ISSUED".into(), "t1".into(), 5.into(), 3.into()]);
        assert_eq!(
            decode_single(ok).unwrap(),
            Verdict::Issued {
                id: "t1".into(),
                at_ms: 5,
                issued: 3,
                total: 10,
                ceiling: Some(8),
            }
        );
        let legacy = reply(10, -1, ["ISSUED".into(), "t1".into(), 5.into(), 3.into()]);
        assert!(matches!(
            decode_single(legacy).unwrap(),
            Verdict::Issued { ceiling: None, .. }
        ));
        let reserve = reply(10, 8, ["RESERVE".into(), "".into(), 0.into(), 8.into()]);
        assert_eq!(decode_single(reserve).unwrap(), Verdict::Reserve { issued: 8 });
        let held = reply(10, 8, ["HELD".into(), "t0".into(), 4.into(), 3.into()]);
        assert_eq!(
            decode_single(held).unwrap(),
            Verdict::Held {
                id: "t0".into(),
                at_ms: 4
            }
        );
        for (s, v) in [
            ("INACTIVE", Verdict::Inactive),
            ("NOT_IN_PERIOD", Verdict::NotInPeriod),
            ("SOLD_OUT", Verdict::SoldOut),
            ("DAILY_LIMIT", Verdict::DailyLimit),
            ("NO_META", Verdict::NoMeta),
        ] {
            let r = reply(0, -1, [s.into(), "".into(), 0.into(), 0.into()]);
            assert_eq!(decode_single(r).unwrap(), v);
        }
    }

    #[test]
    fn refuses_unknown_shapes() {
        assert!(decode_single(Value::Array(vec!["ISSUED".into()])).is_err());
        let unknown = reply(0, 0, ["MAYBE".into(), "".into(), 0.into(), 0.into()]);
        assert!(decode_single(unknown).is_err());
        let no_total = Value::Array(vec![
            "x".into(),
            (-1).into(),
            "SOLD_OUT".into(),
            "".into(),
            0.into(),
            0.into(),
        ]);
        assert!(decode_single(no_total).is_err());
    }

    #[test]
    fn decodes_a_group_in_order() {
        let two = Value::Array(vec![
            1.into(),
            1.into(),
            "SOLD_OUT".into(),
            "".into(),
            0.into(),
            1.into(),
            "HELD".into(),
            "t0".into(),
            4.into(),
            1.into(),
        ]);
        assert_eq!(
            decode(two, 2).unwrap(),
            vec![
                Verdict::SoldOut,
                Verdict::Held {
                    id: "t0".into(),
                    at_ms: 4
                }
            ]
        );
        let short = reply(10, 10, ["ISSUED".into(), "t1".into(), 5.into(), 3.into()]);
        assert!(decode(short, 2).is_err(), "one answer for two requests");
    }
}
