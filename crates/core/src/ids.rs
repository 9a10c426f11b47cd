//! Identifiers: event keys, user ids, and the numbering of coupon issues.

use std::{fmt, sync::Arc};

use crate::error::Error;

/// An event's public key: 1–64 characters of `[a-z0-9-]`, safe inside a Redis key and a URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey(Arc<str>);

impl EventKey {
    /// Checks the format.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let ok = (1..=64).contains(&s.len())
            && crate::text::every_byte(s, |b| b.is_ascii_lowercase() | b.is_ascii_digit() | (b == b'-'));
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(Error::Invalid(
                "eventKey must be 1-64 characters of a-z, 0-9 and '-'".into(),
            ))
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user id: a positive 64-bit number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(i64);

impl UserId {
    /// Refuses zero and negatives.
    pub fn new(id: i64) -> Result<Self, Error> {
        if id > 0 {
            Ok(Self(id))
        } else {
            Err(Error::Invalid("userId must be a positive number".into()))
        }
    }

    /// The id as a number.
    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Positions per batch in a coupon issue id (a batch holds at most 10,000,000 codes).
pub const ID_STRIDE: i64 = 10_000_000;

/// A coupon issue id from its batch and position.
pub fn issue_id(batch_id: i64, seq: i32) -> i64 {
    batch_id * ID_STRIDE + i64::from(seq)
}

/// The batch and position of a coupon issue id.
pub fn split_issue_id(id: i64) -> Option<(i64, i32)> {
    (id > 0).then_some((id / ID_STRIDE, (id % ID_STRIDE) as i32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_key_accepts_only_its_alphabet() {
        assert!(EventKey::parse("golden-2026-summer").is_ok());
        assert!(EventKey::parse(&"a".repeat(64)).is_ok());
        for bad in ["", "Upper", "with space", "under_score", "{tag}", &"a".repeat(65)] {
            assert!(EventKey::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn issue_ids_split_back() {
        assert_eq!(issue_id(12, 5), 120_000_005);
        assert_eq!(split_issue_id(120_000_005), Some((12, 5)));
        assert_eq!(split_issue_id(issue_id(1, 9_999_999)), Some((1, 9_999_999)));
        assert_eq!(split_issue_id(0), None);
        assert_eq!(split_issue_id(-3), None);
    }
}
