//! The typed call of `issue.lua` and the one place its reply is decoded.

use fred::{clients::Client, types::Value};

use crate::{error::Error, keys::ScopeKeys, script::Lua};

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
    },
    /// The user already held `id`, issued at `at_ms`.
    Held {
        /// The existing issue's id.
        id: String,
        /// When it was issued.
        at_ms: i64,
    },
    /// The event is switched off.
    Inactive,
    /// Now is outside the window.
    NotInPeriod,
    /// Nothing left.
    SoldOut,
    /// Today's quota is used up.
    DailyLimit,
    /// The rules are missing from Redis; the caller rebuilds them and asks again.
    NoMeta,
}

/// One issue request.
#[derive(Clone, Copy, Debug)]
pub struct IssueCall<'a> {
    /// The scope's keys.
    pub keys: &'a ScopeKeys,
    /// Record kind written into the stream entry.
    pub kind: &'a str,
    /// Scope id written into the stream entry.
    pub scope: &'a str,
    /// The user.
    pub user: i64,
    /// The id this call's issue gets, if it issues.
    pub candidate: &'a str,
    /// Clock override in epoch ms (tests only); `None` lets Redis `TIME` decide.
    pub clock_ms: Option<i64>,
}

/// Runs `issue.lua`.
pub async fn run(client: &Client, call: IssueCall<'_>) -> Result<Verdict, Error> {
    let keys = vec![
        call.keys.meta.as_str(),
        call.keys.holders.as_str(),
        call.keys.day_prefix.as_str(),
        call.keys.stream.as_str(),
    ];
    let args = vec![
        call.user.to_string(),
        call.candidate.to_owned(),
        call.clock_ms.map(|ms| ms.to_string()).unwrap_or_default(),
        call.kind.to_owned(),
        call.scope.to_owned(),
    ];
    let reply: Value = Lua::Issue.call(client, keys, args).await?;
    decode(reply)
}

/// Turns the script's `{status, id, at, issued, total}` into a [`Verdict`].
fn decode(reply: Value) -> Result<Verdict, Error> {
    let bad = |detail: String| Error::protocol("issue.lua", detail);
    let parts = reply.into_array();
    let [status, id, at, issued, total]: [Value; 5] = parts
        .try_into()
        .map_err(|p: Vec<Value>| bad(format!("{} fields, expected 5", p.len())))?;
    let status = status
        .as_string()
        .ok_or_else(|| bad("status is not text".into()))?;
    let id = || id.as_string().ok_or_else(|| bad("id is not text".into()));
    let int = |v: &Value, name: &str| v.as_i64().ok_or_else(|| bad(format!("{name} is not a number")));
    Ok(match status.as_str() {
        "OK" => Verdict::Issued {
            id: id()?,
            at_ms: int(&at, "at")?,
            issued: int(&issued, "issued")?,
            total: int(&total, "total")?,
        },
        "DUP" => Verdict::Held {
            id: id()?,
            at_ms: int(&at, "at")?,
        },
        "INACTIVE" => Verdict::Inactive,
        "PERIOD" => Verdict::NotInPeriod,
        "SOLD_OUT" => Verdict::SoldOut,
        "DAILY" => Verdict::DailyLimit,
        "NO_META" => Verdict::NoMeta,
        other => return Err(bad(format!("unknown status {other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(parts: Vec<Value>) -> Value {
        Value::Array(parts)
    }

    #[test]
    fn decodes_every_status() {
        let ok = reply(vec!["OK".into(), "t1".into(), 5.into(), 3.into(), 10.into()]);
        assert_eq!(
            decode(ok).unwrap(),
            Verdict::Issued {
                id: "t1".into(),
                at_ms: 5,
                issued: 3,
                total: 10
            }
        );
        let dup = reply(vec!["DUP".into(), "t0".into(), 4.into(), 3.into(), 10.into()]);
        assert_eq!(
            decode(dup).unwrap(),
            Verdict::Held {
                id: "t0".into(),
                at_ms: 4
            }
        );
        for (s, v) in [
            ("INACTIVE", Verdict::Inactive),
            ("PERIOD", Verdict::NotInPeriod),
            ("SOLD_OUT", Verdict::SoldOut),
            ("DAILY", Verdict::DailyLimit),
            ("NO_META", Verdict::NoMeta),
        ] {
            let r = reply(vec![s.into(), "".into(), 0.into(), 0.into(), 0.into()]);
            assert_eq!(decode(r).unwrap(), v);
        }
    }

    #[test]
    fn refuses_unknown_shapes() {
        assert!(decode(reply(vec!["OK".into()])).is_err());
        let unknown = reply(vec!["MAYBE".into(), "".into(), 0.into(), 0.into(), 0.into()]);
        assert!(decode(unknown).is_err());
    }
}
