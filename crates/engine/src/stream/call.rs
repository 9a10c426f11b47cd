//! The entry `issue.lua` writes for a call that issued: the call itself rather than a line per
//! issue, read back here into one [`IssueRecord`] per issue.
//!
//! Fields (see `issue.lua`'s header):
//! - `g`: `<kind>|<scope>|<ids>|<base>|<at ms>|<fence>|<statuses>`, where `ids` is the call's
//!   [`crate::scope::IdMode`] word, `base` the call's ticket id prefix (`given`), the issues
//!   before the call (`position`) or empty (`leased`), `fence` empty for a meta without one,
//!   and `statuses` one letter per request, `I` for each that issued;
//! - `gu`: the requests' users, in order, each followed by a space;
//! - `gp` (`leased` only): the positions issued, in order, each followed by a space;
//! - `gt` (clock overrides only): each request's time in epoch ms, each followed by a space.
//!
//! The script writes only what the call already holds, so an issue adds no text to the entry;
//! the drain does the joining instead, off the hot scope's Redis core.

use super::record::{IssueId, IssueRecord, RecordKind};

/// The fields of a call's entry, as read (`None`: absent).
#[derive(Debug, Default)]
pub(super) struct CallEntry {
    pub head: Option<String>,
    pub users: Option<String>,
    pub positions: Option<String>,
    pub times: Option<String>,
}

impl CallEntry {
    /// Takes `name = value` when it is one of a call entry's fields; false otherwise.
    pub fn take(&mut self, name: &str, value: &str) -> bool {
        let slot = match name {
            "g" => &mut self.head,
            "gu" => &mut self.users,
            "gp" => &mut self.positions,
            "gt" => &mut self.times,
            _ => return false,
        };
        *slot = Some(value.to_owned());
        true
    }

    /// The records of the call's issues, in request order; `None` when the entry is not a
    /// call's.
    pub fn records(&self) -> Option<Result<Vec<IssueRecord>, String>> {
        let head = self.head.as_deref()?;
        Some(self.read(head))
    }

    fn read(&self, head: &str) -> Result<Vec<IssueRecord>, String> {
        let bad = |what: &str| format!("{what} in call entry {head:?}");
        let (kind, rest) = head.split_once('|').ok_or_else(|| bad("no kind"))?;
        let kind = RecordKind::parse(kind).ok_or_else(|| bad("unknown kind"))?;
        // From the right: the scope is what is left, so it may hold any character.
        let mut tail = rest.rsplitn(6, '|');
        let mut next = |what: &str| tail.next().ok_or_else(|| bad(what));
        let statuses = next("no statuses")?.as_bytes();
        let fence = match next("no fence")? {
            "" => None,
            f => Some(f.parse::<i64>().map_err(|_| bad("bad fence"))?),
        };
        let at: i64 = next("no time")?.parse().map_err(|_| bad("bad time"))?;
        let base = next("no base")?;
        let ids = next("no ids")?;
        let scope = next("no scope")?;

        let users: Vec<&str> = self
            .users
            .as_deref()
            .ok_or_else(|| bad("no users (gu)"))?
            .split_terminator(' ')
            .collect();
        if users.len() != statuses.len() {
            return Err(bad("users and statuses differ in number"));
        }
        let times: Option<Vec<&str>> = self.times.as_deref().map(|t| t.split_terminator(' ').collect());
        if times.as_ref().is_some_and(|t| t.len() != users.len()) {
            return Err(bad("users and times differ in number"));
        }
        let mut positions = self.positions.as_deref().map(|p| p.split_terminator(' '));
        let first: i64 = match ids {
            "position" => base.parse().map_err(|_| bad("bad base"))?,
            _ => 0,
        };

        let mut records = Vec::with_capacity(statuses.iter().filter(|s| **s == b'I').count());
        for (j, (user, status)) in users.iter().zip(statuses).enumerate() {
            if *status != b'I' {
                continue;
            }
            let issue_id = match ids {
                "given" if j < 1 << 12 => IssueId::parse(kind, &format!("{base}{j:03x}")),
                "position" => i32::try_from(first + records.len() as i64)
                    .ok()
                    .filter(|_| kind == RecordKind::Coupon)
                    .map(IssueId::Position),
                "leased" => positions
                    .as_mut()
                    .and_then(Iterator::next)
                    .and_then(|p| IssueId::parse(kind, p)),
                _ => None,
            }
            .ok_or_else(|| bad("an id that cannot be made"))?;
            let issued_at_ms = match &times {
                Some(times) => times[j].parse().map_err(|_| bad("bad time"))?,
                None => at,
            };
            records.push(IssueRecord {
                kind,
                scope: scope.to_owned(),
                user_id: user.parse().map_err(|_| bad("bad user"))?,
                issue_id,
                issued_at_ms,
                fence,
            });
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn entry(head: &str, users: &str, positions: Option<&str>, times: Option<&str>) -> CallEntry {
        CallEntry {
            head: Some(head.to_owned()),
            users: Some(users.to_owned()),
            positions: positions.map(str::to_owned),
            times: times.map(str::to_owned),
        }
    }

    fn read(e: &CallEntry) -> Result<Vec<IssueRecord>, String> {
        e.records().expect("a call's entry")
    }

    /// (user, id, at, fence) of each record.
    fn summary(records: &[IssueRecord]) -> Vec<(i64, String, i64, Option<i64>)> {
        records
            .iter()
            .map(|r| (r.user_id, r.issue_id.to_string(), r.issued_at_ms, r.fence))
            .collect()
    }

    const PREFIX: &str = "01900000-0000-7000-8000-000000000";

    #[test]
    fn a_tickets_id_is_the_prefix_and_its_requests_index() {
        let head = format!("ticket|e1|given|{PREFIX}|1700000000123|41|IHSI");
        let records = read(&entry(&head, "7 8 9 10 ", None, None)).unwrap();
        assert_eq!(
            summary(&records),
            [
                (7, format!("{PREFIX}000"), 1_700_000_000_123, Some(41)),
                (10, format!("{PREFIX}003"), 1_700_000_000_123, Some(41)),
            ]
        );
        assert_eq!(records[0].kind, RecordKind::Ticket);
        assert_eq!(records[0].scope, "e1");
        let big = format!("ticket|e1|given|{PREFIX}|5||{}I", "S".repeat(300));
        let users = "1 ".repeat(301);
        let last = read(&entry(&big, &users, None, None)).unwrap();
        assert_eq!(
            last[0].issue_id,
            IssueId::Uuid(Uuid::parse_str(&format!("{PREFIX}12c")).unwrap())
        );
        assert_eq!(last[0].fence, None);
    }

    #[test]
    fn a_coupons_position_counts_on_from_the_issues_before_the_call() {
        let records = read(&entry("coupon|12|position|40|5||IIAI", "1 2 3 4 ", None, None)).unwrap();
        assert_eq!(
            summary(&records),
            [
                (1, "40".to_owned(), 5, None),
                (2, "41".to_owned(), 5, None),
                (4, "42".to_owned(), 5, None),
            ]
        );
    }

    #[test]
    fn a_buckets_positions_are_its_leased_ones_in_order() {
        let e = entry("coupon|12#1.2|leased||5|7|IHI", "1 2 3 ", Some("100 205 "), None);
        let records = read(&e).unwrap();
        assert_eq!(
            summary(&records),
            [
                (1, "100".to_owned(), 5, Some(7)),
                (3, "205".to_owned(), 5, Some(7))
            ]
        );
        assert_eq!(records[0].scope, "12#1.2");
        let short = entry("coupon|12|leased||5|7|II", "1 2 ", Some("100 "), None);
        assert!(read(&short).is_err(), "an issue without its position");
    }

    #[test]
    fn a_clock_override_is_its_requests_time() {
        let e = entry("coupon|12|position|0|5||IPI", "1 2 3 ", None, Some("11 22 33 "));
        let times: Vec<i64> = read(&e).unwrap().iter().map(|r| r.issued_at_ms).collect();
        assert_eq!(times, [11, 33]);
    }

    #[test]
    fn a_scope_may_hold_the_separator() {
        let records = read(&entry("coupon|a|b|position|0|5||I", "1 ", None, None)).unwrap();
        assert_eq!(records[0].scope, "a|b");
    }

    #[test]
    fn a_torn_or_foreign_entry_is_unreadable() {
        let fine = format!("ticket|e1|given|{PREFIX}|5|1|II");
        assert!(read(&entry(&fine, "1 2 ", None, None)).is_ok());
        for (head, users) in [
            (fine.as_str(), "1 "),
            (fine.as_str(), "1 2 3 "),
            (fine.as_str(), "1 x "),
            ("ticket|e1|given|not-a-uuid|5|1|I", "1 "),
            ("ticket|e1|position|0|5|1|I", "1 "),
            ("coupon|12|position|x|5||I", "1 "),
            ("coupon|12|position|0|5|x|I", "1 "),
            ("coupon|12|position|0|x||I", "1 "),
            ("coupon|12|guessed|0|5||I", "1 "),
            ("voucher|12|position|0|5||I", "1 "),
            ("coupon|12|5||I", "1 "),
        ] {
            assert!(read(&entry(head, users, None, None)).is_err(), "{head} / {users}");
        }
        let times = entry("coupon|12|position|0|5||II", "1 2 ", None, Some("11 "));
        assert!(read(&times).is_err(), "a time short");
        let no_users = CallEntry {
            head: Some(fine.clone()),
            ..CallEntry::default()
        };
        assert!(read(&no_users).is_err());
        assert!(CallEntry::default().records().is_none(), "not a call's entry");
    }
}
