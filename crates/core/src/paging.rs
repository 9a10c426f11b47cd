//! What every admin list shares: paging, sorting, the period filter, and the page envelope
//! `{page, size, totalElements, totalPages, data}` of the admin seed.

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use crate::{clock, error::Error};

/// Largest page a list returns.
pub const MAX_PAGE_SIZE: i64 = 100;
/// Page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: i64 = 20;

/// A page of results in the admin seed's envelope.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    /// Zero-based page number.
    pub page: i64,
    /// Page size asked for.
    pub size: i64,
    /// Matches over all pages.
    pub total_elements: i64,
    /// Pages at this size.
    pub total_pages: i64,
    /// This page's items.
    pub data: Vec<T>,
}

impl<T> Page<T> {
    /// A page of `data` out of `total`.
    pub fn new(paging: Paging, total: i64, data: Vec<T>) -> Self {
        Self {
            page: paging.page,
            size: paging.size,
            total_elements: total,
            total_pages: (total + paging.size - 1) / paging.size,
            data,
        }
    }

    /// The same page carrying other items (the same number of them).
    pub fn with_data<U>(self, data: Vec<U>) -> Page<U> {
        Page {
            page: self.page,
            size: self.size,
            total_elements: self.total_elements,
            total_pages: self.total_pages,
            data,
        }
    }

    /// The same page with its items mapped.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            page: self.page,
            size: self.size,
            total_elements: self.total_elements,
            total_pages: self.total_pages,
            data: self.data.into_iter().map(f).collect(),
        }
    }
}

/// Page number and size, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// Zero-based page.
    pub page: i64,
    /// Items per page, 1..=100.
    pub size: i64,
}

impl Paging {
    /// `page` ≥ 0 (default 0) and `size` 1..=100 (default 20).
    pub fn new(page: Option<i64>, size: Option<i64>) -> Result<Self, Error> {
        let page = page.unwrap_or(0);
        let size = size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page < 0 || page > i64::from(i32::MAX) {
            return Err(Error::Invalid("page must be 0 or more".into()));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&size) {
            return Err(Error::Invalid(format!("size must be 1 to {MAX_PAGE_SIZE}")));
        }
        Ok(Self { page, size })
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        self.page * self.size
    }
}

/// `sort=field,ASC|DESC`, resolved against a resource's list of sortable fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    /// The column to order by (from the resource's own list, never from the request).
    pub column: &'static str,
    /// Descending?
    pub descending: bool,
}

impl Sort {
    /// Parses `field[,ASC|DESC]`; `fields` maps API field names to columns. Absent: `default`.
    pub fn parse(raw: Option<&str>, fields: &[(&str, &'static str)], default: Sort) -> Result<Self, Error> {
        let Some(raw) = raw.filter(|r| !r.is_empty()) else {
            return Ok(default);
        };
        let (field, direction) = raw.split_once(',').unwrap_or((raw, "ASC"));
        let column = fields
            .iter()
            .find(|(name, _)| *name == field.trim())
            .map(|(_, column)| *column)
            .ok_or_else(|| {
                let names: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
                Error::Invalid(format!("sort field must be one of {}", names.join(", ")))
            })?;
        let descending = match direction.trim().to_ascii_uppercase().as_str() {
            "ASC" => false,
            "DESC" => true,
            _ => return Err(Error::Invalid("sort direction must be ASC or DESC".into())),
        };
        Ok(Self { column, descending })
    }

    /// `ORDER BY` text: the column, the direction, and the id as a tie-breaker so pages never
    /// overlap.
    pub fn order_by(&self, id_column: &str) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        format!(" ORDER BY {} {dir}, {id_column} {dir}", self.column)
    }
}

/// The `from`/`to` filter: a period must start at or after `from` and end before `to`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Period {
    /// Earliest start.
    pub from: Option<DateTime<Utc>>,
    /// End must be before this (a date `to` means the whole KST day is included).
    pub until_before: Option<DateTime<Utc>>,
}

impl Period {
    /// Reads `from`/`to`: each a date (`2025-06-01`, a KST day) or an instant.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, Error> {
        let from = from
            .filter(|s| !s.is_empty())
            .map(|s| bound(s, false).ok_or_else(|| bad_bound("from")))
            .transpose()?;
        let until_before = to
            .filter(|s| !s.is_empty())
            .map(|s| bound(s, true).ok_or_else(|| bad_bound("to")))
            .transpose()?;
        if let (Some(f), Some(t)) = (from, until_before)
            && f >= t
        {
            return Err(Error::Invalid("from must be before to".into()));
        }
        Ok(Self { from, until_before })
    }
}

fn bad_bound(name: &str) -> Error {
    Error::Invalid(format!(
        "{name} must be a date (YYYY-MM-DD) or an RFC 3339 datetime"
    ))
}

/// A date is its KST midnight (`to`: the next one); an instant is itself (`to`: one microsecond
/// later, so the bound is inclusive at Postgres' resolution).
fn bound(s: &str, end: bool) -> Option<DateTime<Utc>> {
    if let Ok(day) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        let day = if end {
            day.checked_add_days(Days::new(1))?
        } else {
            day
        };
        return clock::storable(clock::kst_midnight(day));
    }
    let t = clock::parse_instant(s)?;
    Some(if end {
        t + chrono::Duration::microseconds(1)
    } else {
        t
    })
}

/// A keyword for `ILIKE`, with its wildcards escaped.
pub fn like_pattern(keyword: &str) -> String {
    let escaped = keyword
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[(&str, &str)] = &[("createdAt", "created_at"), ("fromAt", "from_at")];
    const DEFAULT: Sort = Sort {
        column: "created_at",
        descending: true,
    };

    #[test]
    fn sort_parses_field_and_direction() {
        let s = Sort::parse(Some("fromAt,asc"), FIELDS, DEFAULT).unwrap();
        assert_eq!((s.column, s.descending), ("from_at", false));
        assert_eq!(Sort::parse(None, FIELDS, DEFAULT).unwrap(), DEFAULT);
        assert!(Sort::parse(Some("name;DROP"), FIELDS, DEFAULT).is_err());
        assert!(Sort::parse(Some("fromAt,UP"), FIELDS, DEFAULT).is_err());
    }

    #[test]
    fn paging_bounds() {
        assert_eq!(Paging::new(None, None).unwrap(), Paging { page: 0, size: 20 });
        assert!(Paging::new(Some(-1), None).is_err());
        assert!(Paging::new(None, Some(0)).is_err());
        assert!(Paging::new(None, Some(101)).is_err());
    }

    #[test]
    fn a_date_to_includes_the_whole_kst_day() {
        let p = Period::parse(Some("2025-06-01"), Some("2025-06-30")).unwrap();
        assert_eq!(clock::format_kst(p.from.unwrap()), "2025-06-01T00:00:00+09:00");
        assert_eq!(
            clock::format_kst(p.until_before.unwrap()),
            "2025-07-01T00:00:00+09:00"
        );
        assert!(Period::parse(Some("June"), None).is_err());
        assert!(Period::parse(Some("2025-07-01"), Some("2025-06-01")).is_err());
    }

    #[test]
    fn page_counts() {
        let p = Page::new(Paging { page: 0, size: 20 }, 41, vec![1]);
        assert_eq!(p.total_pages, 3);
        assert_eq!(
            Page::<i32>::new(Paging { page: 0, size: 20 }, 0, vec![]).total_pages,
            0
        );
    }

    #[test]
    fn like_escapes_wildcards() {
        assert_eq!(like_pattern("50%_off"), "%50\\%\\_off%");
    }
}
