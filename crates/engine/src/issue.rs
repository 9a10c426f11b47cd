//! The typed call of `issue.lua` and the one place its reply is decoded.

use fred::{clients::Client, types::Value};
use issuance_core::error::{Denial, Error};
use uuid::Uuid;

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
        id: IssueId,
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
        id: IssueId,
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
        /// The copy's quantity.
        total: i64,
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

/// An issue's id, in the words of its scope's [`IdMode`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueId {
    /// A ticket's UUIDv7 ([`IdMode::Given`]).
    Ticket(Uuid),
    /// A coupon's position in its batch ([`IdMode::Position`], [`IdMode::Leased`]).
    Position(i64),
}

impl IssueId {
    /// The id as `issue.lua` writes it in holder entries and records.
    pub(crate) fn parse(text: &str, ids: IdMode) -> Option<Self> {
        match ids {
            IdMode::Given => Uuid::try_parse(text).ok().map(IssueId::Ticket),
            IdMode::Position | IdMode::Leased => text.parse().ok().map(IssueId::Position),
        }
    }
}

/// The ids of one call's tickets ([`IdMode::Given`]): a UUIDv7 drawn once per call with its last
/// 12 bits clear, and the request's index in the group in those bits (RFC 9562 allows a counter
/// in a UUIDv7's random bits). The script writes the same text — the base's first 33 characters
/// and the index as three hex digits — so no request sends an id of its own: a ticket's id used
/// to be made, copied and sent per request, a tenth of the instructions of an issue. Ids stay
/// unique (the index within a call; 62 random bits and the millisecond between calls) and sort
/// by time, then by request within a call.
#[derive(Clone, Copy, Debug)]
struct TicketIds(Uuid);

impl TicketIds {
    /// Room for 4,096 requests, far above the largest group the group commit makes (256).
    const INDEX_BITS: u32 = 12;

    fn draw() -> Self {
        Self(Uuid::from_u128(
            Uuid::now_v7().as_u128() >> Self::INDEX_BITS << Self::INDEX_BITS,
        ))
    }

    /// The text the script completes with three hex digits.
    fn prefix(self) -> String {
        let mut text = self.0.hyphenated().to_string();
        text.truncate(text.len() - 3);
        text
    }

    /// The id of the group's `index`-th request.
    fn of(self, index: usize) -> Uuid {
        Uuid::from_u128(self.0.as_u128() | index as u128)
    }
}

/// One request of a group.
#[derive(Clone, Copy, Debug)]
pub struct IssueRequest {
    /// The user.
    pub user: i64,
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
    if group.requests.len() >= 1 << TicketIds::INDEX_BITS {
        return Err(Error::protocol(
            "issue.lua",
            "a group larger than its ids can number",
        ));
    }
    let tickets = (group.ids == IdMode::Given).then(TicketIds::draw);
    let args = || {
        let clock = group.requests.iter().any(|r| r.clock_ms.is_some());
        // Each id through itoa rather than `write!`: its formatting machinery cost about 300
        // instructions a request.
        let mut users = String::with_capacity(group.requests.len() * 8);
        let mut digits = itoa::Buffer::new();
        for r in group.requests {
            users.push_str(digits.format(r.user));
            users.push(' ');
        }
        let mut args = Vec::with_capacity(7 + if clock { group.requests.len() } else { 0 });
        args.push(group.kind.to_owned());
        args.push(group.scope.to_owned());
        args.push(group.ids.as_arg().to_owned());
        args.push(if group.confirm.is_some() { "1" } else { "" }.to_owned());
        args.push(if clock { "1" } else { "" }.to_owned());
        args.push(users);
        args.push(tickets.map(TicketIds::prefix).unwrap_or_default());
        if clock {
            args.extend(group.requests.iter().map(|r| {
                r.clock_ms
                    .map(|ms| digits.format(ms).to_owned())
                    .unwrap_or_default()
            }));
        }
        args
    };
    // Replica mode only: the connection the `WAIT` must find unchanged.
    let confirm = group
        .confirm
        .map(|confirm| (confirm, Connection::of(client, &group.keys.stream)));
    let reply: Value = Lua::Issue.call_with(client, keys, args).await?;
    let verdicts = decode(reply, group.requests, group.ids, tickets)?;
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

/// Values the script's reply starts with, before the entries of the held requests.
const HEAD: usize = 5;

/// Turns the script's `{total, ceiling, now, issued before, statuses, held…}` (with
/// [`IdMode::Leased`], each issue's position among the held entries, in request order) into one
/// [`Verdict`] per request of `requests` (see `issue.lua`'s header: what the caller knows
/// already is not sent back).
fn decode(
    reply: Value,
    requests: &[IssueRequest],
    ids: IdMode,
    tickets: Option<TicketIds>,
) -> Result<Vec<Verdict>, Error> {
    let bad = |detail: String| Error::protocol("issue.lua", detail);
    let parts = reply.into_array();
    let [total, ceiling, now, before, statuses] = parts.get(..HEAD).unwrap_or_default() else {
        return Err(bad(format!("{} values, expected at least {HEAD}", parts.len())));
    };
    let int = |v: &Value, name: &str| v.as_i64().ok_or_else(|| bad(format!("{name} is not a number")));
    let (total, now, mut issued) = (int(total, "total")?, int(now, "now")?, int(before, "issued")?);
    let ceiling = Some(int(ceiling, "ceiling")?).filter(|c| *c >= 0);
    let statuses = statuses
        .as_bytes()
        .ok_or_else(|| bad("statuses are not text".into()))?;
    if statuses.len() != requests.len() {
        return Err(bad(format!(
            "{} statuses for {} requests",
            statuses.len(),
            requests.len()
        )));
    }
    let mut held = parts[HEAD..].iter();
    let verdicts = requests
        .iter()
        .zip(statuses)
        .enumerate()
        .map(|(index, (request, status))| {
            Ok(match status {
                b'I' => {
                    let id = match (ids, tickets) {
                        (IdMode::Given, Some(tickets)) => IssueId::Ticket(tickets.of(index)),
                        (IdMode::Given, None) => return Err(bad("tickets without their ids".into())),
                        (IdMode::Position, _) => IssueId::Position(issued),
                        (IdMode::Leased, _) => held
                            .next()
                            .and_then(Value::as_i64)
                            .map(IssueId::Position)
                            .ok_or_else(|| bad("an issue without its leased position".into()))?,
                    };
                    issued += 1;
                    Verdict::Issued {
                        id,
                        at_ms: request.clock_ms.unwrap_or(now),
                        issued,
                        total,
                        ceiling,
                    }
                }
                b'H' => {
                    let entry = held
                        .next()
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("a held request without its entry".into()))?;
                    let (id, at) = entry
                        .split_once('|')
                        .and_then(|(id, at)| Some((IssueId::parse(id, ids)?, at.parse().ok()?)))
                        .ok_or_else(|| bad(format!("holder entry {entry:?}")))?;
                    Verdict::Held { id, at_ms: at }
                }
                b'A' => Verdict::Inactive,
                b'P' => Verdict::NotInPeriod,
                b'S' => Verdict::SoldOut,
                b'D' => Verdict::DailyLimit,
                b'N' => Verdict::NoMeta,
                b'R' => Verdict::Reserve { issued, total },
                other => return Err(bad(format!("unknown status {:?}", char::from(*other)))),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if held.next().is_some() {
        return Err(bad("more holder entries than held requests".into()));
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(user: i64) -> IssueRequest {
        IssueRequest { user, clock_ms: None }
    }

    const T0: &str = "01900000-0000-7000-8000-000000000000";

    fn tickets() -> Option<TicketIds> {
        Some(TicketIds(Uuid::parse_str(T0).unwrap()))
    }

    fn ticket(text: &str) -> IssueId {
        IssueId::Ticket(Uuid::parse_str(text).unwrap())
    }

    /// A reply of `total`, `ceiling`, now = 5, `before` and `statuses`, then `held`.
    fn reply(total: i64, ceiling: i64, before: i64, statuses: &str, held: &[&str]) -> Value {
        let mut parts = vec![
            total.into(),
            ceiling.into(),
            5.into(),
            before.into(),
            statuses.into(),
        ];
        parts.extend(held.iter().map(|h| Value::from(*h)));
        Value::Array(parts)
    }

    #[test]
    fn decodes_every_status() {
        let one = [request(1)];
        assert_eq!(
            decode(reply(10, 8, 2, "I", &[]), &one, IdMode::Given, tickets()).unwrap(),
            vec![Verdict::Issued {
                id: ticket(T0),
                at_ms: 5,
                issued: 3,
                total: 10,
                ceiling: Some(8),
            }]
        );
        let legacy = decode(reply(10, -1, 2, "I", &[]), &one, IdMode::Given, tickets()).unwrap();
        assert!(matches!(legacy[0], Verdict::Issued { ceiling: None, .. }));
        assert_eq!(
            decode(reply(10, 8, 8, "R", &[]), &one, IdMode::Given, tickets()).unwrap(),
            vec![Verdict::Reserve { issued: 8, total: 10 }]
        );
        assert_eq!(
            decode(
                reply(10, 8, 3, "H", &["01900000-0000-7000-8000-00000000000a|4"]),
                &one,
                IdMode::Given,
                tickets()
            )
            .unwrap(),
            vec![Verdict::Held {
                id: ticket("01900000-0000-7000-8000-00000000000a"),
                at_ms: 4
            }]
        );
        for (s, v) in [
            ("A", Verdict::Inactive),
            ("P", Verdict::NotInPeriod),
            ("S", Verdict::SoldOut),
            ("D", Verdict::DailyLimit),
            ("N", Verdict::NoMeta),
        ] {
            assert_eq!(
                decode(reply(0, -1, 0, s, &[]), &one, IdMode::Given, tickets()).unwrap(),
                vec![v]
            );
        }
    }

    #[test]
    fn numbers_positions_and_counts_from_the_issued_before() {
        let three = [request(1), request(2), request(3)];
        let verdicts = decode(reply(10, -1, 4, "IRI", &[]), &three, IdMode::Position, None).unwrap();
        assert!(matches!(
            &verdicts[0],
            Verdict::Issued {
                id: IssueId::Position(4),
                issued: 5,
                ..
            }
        ));
        assert_eq!(verdicts[1], Verdict::Reserve { issued: 5, total: 10 });
        assert!(matches!(
            &verdicts[2],
            Verdict::Issued {
                id: IssueId::Position(5),
                issued: 6,
                ..
            }
        ));
    }

    #[test]
    fn a_bucket_sends_back_its_leased_positions_in_request_order() {
        let three = [request(1), request(2), request(3)];
        let verdicts = decode(
            reply(10, 9, 4, "IHI", &["70", "12|3", "41"]),
            &three,
            IdMode::Leased,
            None,
        )
        .unwrap();
        assert!(matches!(
            &verdicts[0],
            Verdict::Issued {
                id: IssueId::Position(70),
                issued: 5,
                ..
            }
        ));
        assert_eq!(
            verdicts[1],
            Verdict::Held {
                id: IssueId::Position(12),
                at_ms: 3
            }
        );
        assert!(matches!(
            &verdicts[2],
            Verdict::Issued {
                id: IssueId::Position(41),
                issued: 6,
                ..
            }
        ));
        assert!(decode(reply(10, 9, 4, "II", &["70"]), &three[..2], IdMode::Leased, None).is_err());
    }

    #[test]
    fn a_clock_override_is_the_issue_time() {
        let mut one = [request(1)];
        one[0].clock_ms = Some(42);
        let verdicts = decode(reply(10, -1, 0, "I", &[]), &one, IdMode::Given, tickets()).unwrap();
        assert!(matches!(verdicts[0], Verdict::Issued { at_ms: 42, .. }));
    }

    #[test]
    fn refuses_unknown_shapes() {
        let one = [request(1)];
        assert!(decode(Value::Array(vec!["I".into()]), &one, IdMode::Given, tickets()).is_err());
        assert!(
            decode(reply(0, 0, 0, "M", &[]), &one, IdMode::Given, tickets()).is_err(),
            "unknown status"
        );
        assert!(
            decode(reply(0, 0, 0, "II", &[]), &one, IdMode::Given, tickets()).is_err(),
            "two for one"
        );
        assert!(
            decode(reply(0, 0, 0, "H", &[]), &one, IdMode::Given, tickets()).is_err(),
            "no entry"
        );
        assert!(
            decode(reply(0, 0, 0, "H", &["t0"]), &one, IdMode::Given, tickets()).is_err(),
            "no time"
        );
        assert!(
            decode(reply(0, 0, 0, "H", &["t0|1"]), &one, IdMode::Given, tickets()).is_err(),
            "a ticket id that is no UUID"
        );
        assert!(
            decode(reply(0, 0, 0, "I", &[]), &one, IdMode::Given, None).is_err(),
            "tickets without their ids"
        );
        assert!(
            decode(reply(0, 0, 0, "S", &["t0|1"]), &one, IdMode::Given, tickets()).is_err(),
            "extra entry"
        );
        let no_total = Value::Array(vec!["x".into(), (-1).into(), 5.into(), 0.into(), "S".into()]);
        assert!(decode(no_total, &one, IdMode::Given, tickets()).is_err());
    }

    #[test]
    fn decodes_a_group_in_order() {
        let two = [request(1), request(2)];
        assert_eq!(
            decode(
                reply(1, 1, 1, "SH", &["01900000-0000-7000-8000-00000000000a|4"]),
                &two,
                IdMode::Given,
                tickets()
            )
            .unwrap(),
            vec![
                Verdict::SoldOut,
                Verdict::Held {
                    id: ticket("01900000-0000-7000-8000-00000000000a"),
                    at_ms: 4
                }
            ]
        );
    }

    #[test]
    fn a_calls_tickets_are_numbered_as_the_script_writes_them() {
        let two = [request(1), request(2)];
        let verdicts = decode(reply(10, -1, 0, "II", &[]), &two, IdMode::Given, tickets()).unwrap();
        assert!(matches!(verdicts[0], Verdict::Issued { id, .. } if id == ticket(T0)));
        assert!(
            matches!(verdicts[1], Verdict::Issued { id, .. } if id == ticket("01900000-0000-7000-8000-000000000001"))
        );
        for _ in 0..3 {
            let ids = TicketIds::draw();
            assert_eq!(ids.0.get_version_num(), 7);
            for index in [0, 1, 255, (1 << TicketIds::INDEX_BITS) - 1] {
                // issue.lua: prefix .. string.format('%03x', index)
                let script = format!("{}{index:03x}", ids.prefix());
                assert_eq!(script, ids.of(index).hyphenated().to_string());
            }
        }
    }
}
