//! The time and paging parameters every route reads the same way: input instants (RFC 3339, or
//! KST without an offset), output instants in KST, `page`/`size`, `from`/`to` and keywords.

use chrono::{DateTime, Utc};
use issuance_core::paging::{Paging, Period};

use crate::error::ApiError;

/// Reads an input instant (RFC 3339, or KST without an offset).
pub fn instant(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    issuance_core::clock::parse_instant(raw).ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "{field} must be RFC 3339, or a datetime without offset (KST)"
        ))
    })
}

/// Writes an instant in KST.
pub fn kst(t: DateTime<Utc>) -> String {
    issuance_core::clock::format_kst(t)
}

/// `page`, `size`, checked.
pub fn paging(page: Option<i64>, size: Option<i64>) -> Result<Paging, ApiError> {
    Ok(Paging::new(page, size)?)
}

/// `from`, `to`, checked.
pub fn period(from: &Option<String>, to: &Option<String>) -> Result<Period, ApiError> {
    Ok(Period::parse(from.as_deref(), to.as_deref())?)
}

/// A keyword, or none when blank.
pub fn keyword(k: Option<String>) -> Option<String> {
    k.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty())
}
