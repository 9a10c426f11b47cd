//! Opaque keyset cursors for the commerce lists: `base64url({"after": <id>})`.
//!
//! A page is "the next `limit` rows after this id" in a fixed order, so it costs an index range
//! scan however deep the client pages, and rows inserted meanwhile never shift a page. The
//! encoding is opaque to clients, who pass back what they got.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    after: i64,
}

/// The cursor that continues after the row with id `after`.
pub fn encode(after: i64) -> String {
    let json = serde_json::to_vec(&Body { after }).expect("a number serialises");
    URL_SAFE_NO_PAD.encode(json)
}

/// The id a cursor continues after; `400 INVALID_REQUEST` for anything this service did not
/// hand out.
pub fn decode(cursor: &str) -> Result<i64, Error> {
    let bad = || Error::Invalid("cursor is not valid".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let body: Body = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if body.after < 0 {
        return Err(bad());
    }
    Ok(body.after)
}

/// A page size: 1..=100, default 20.
pub fn limit(requested: Option<i64>) -> Result<i64, Error> {
    match requested {
        None => Ok(20),
        Some(n @ 1..=100) => Ok(n),
        Some(_) => Err(Error::Invalid("limit must be 1-100".into())),
    }
}

/// One page of a keyset list.
#[derive(Clone, Debug)]
pub struct Slice<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Where the next page starts, `None` on the last page.
    pub next: Option<String>,
}

impl<T> Slice<T> {
    /// Cuts `rows` (fetched with one extra row to learn whether more follow) to `limit`.
    pub fn cut(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = more.then(|| rows.last().map(|r| encode(id(r)))).flatten();
        Self { items: rows, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_forgeries() {
        assert_eq!(decode(&encode(42)).unwrap(), 42);
        for bad in [
            "",
            "!!",
            "e30",
            &URL_SAFE_NO_PAD.encode(br#"{"after":-1}"#),
            &URL_SAFE_NO_PAD.encode(br#"{"after":"1"}"#),
            &URL_SAFE_NO_PAD.encode(br#"{"after":1,"x":2}"#),
        ] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limit_range() {
        assert_eq!(limit(None).unwrap(), 20);
        assert_eq!(limit(Some(100)).unwrap(), 100);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
    }

    #[test]
    fn slice_knows_the_last_page() {
        let s = Slice::cut(vec![1, 2, 3], 2, |r| *r);
        assert_eq!(s.items, vec![1, 2]);
        assert_eq!(decode(s.next.as_deref().unwrap()).unwrap(), 2);
        let last = Slice::cut(vec![1, 2], 2, |r| *r);
        assert!(last.next.is_none());
    }
}
