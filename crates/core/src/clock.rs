//! KST, the service's reference zone, and the text forms of instants.
//!
//! Which KST day it is on the hot path is decided inside the Lua scripts from Redis `TIME`, so
//! every api process agrees; [`kst_day`] is the same arithmetic for Rust callers.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, TimeZone, Utc,
};

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;
/// KST is UTC+9 all year.
const KST_OFFSET_MS: i64 = 9 * 3_600_000;

/// The KST zone.
pub fn kst() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("UTC+9 is a valid offset")
}

/// Days since 1970-01-01 KST of an instant in epoch ms; the suffix of the day-counter keys.
pub fn kst_day(epoch_ms: i64) -> i64 {
    (epoch_ms + KST_OFFSET_MS).div_euclid(DAY_MS)
}

/// The KST date of an instant.
pub fn kst_date(t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&kst()).date_naive()
}

/// The first instant of KST day `day` (its midnight; KST has no gaps).
pub fn kst_midnight(day: NaiveDate) -> DateTime<Utc> {
    kst()
        .from_local_datetime(&day.and_time(NaiveTime::MIN))
        .single()
        .expect("a fixed offset has no gaps")
        .with_timezone(&Utc)
}

/// The instant of an epoch-ms value.
pub fn from_ms(epoch_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(epoch_ms).unwrap_or_default()
}

/// Reads an input instant: RFC 3339 with an offset, or a datetime without one, which means KST.
/// Only years 1–9999 are instants (RFC 3339's four digits; Postgres stores a wider range, chrono
/// parses a wider one, and anything outside would fail in storage instead of at the input).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let naive = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
            kst().from_local_datetime(&naive).single()?.with_timezone(&Utc)
        }
    };
    storable(t)
}

/// The instant if its year is 1–9999 (in UTC and in KST alike), else `None`.
pub fn storable(t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let years = 1..=9999;
    (years.contains(&t.year()) && years.contains(&t.with_timezone(&kst()).year())).then_some(t)
}

/// UTC with `Z`, as the golden-ticket API writes instants (fraction only when there is one).
pub fn format_utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 with `+09:00`, as the `/api/v1` APIs and error bodies write instants.
pub fn format_kst(t: DateTime<Utc>) -> String {
    t.with_timezone(&kst())
        .to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kst_days_turn_at_15_utc() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 14, 59, 59).unwrap();
        assert_eq!(kst_date(t), NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 15, 0, 0).unwrap();
        assert_eq!(kst_date(t), NaiveDate::from_ymd_opt(2026, 1, 2).unwrap());
        let day = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(kst_midnight(day).to_rfc3339(), "2026-11-30T15:00:00+00:00");
    }

    #[test]
    fn only_four_digit_years_are_instants() {
        for bad in [
            "-5000-01-01T00:00:00Z",
            "+300000-01-01T00:00:00Z",
            "300000-01-01T00:00:00",
            "-5000-01-01T00:00:00",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00+09:00",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
        for good in [
            "0001-01-01T09:00:00+09:00",
            "9999-12-31T14:59:59Z",
            "2026-01-15T10:00:00",
        ] {
            assert!(parse_instant(good).is_some(), "{good}");
        }
    }

    #[test]
    fn kst_day_turns_at_kst_midnight() {
        // 2026-01-15T14:59:59.999Z is 23:59:59.999 KST; one ms later is the next KST day.
        let before = DateTime::parse_from_rfc3339("2026-01-15T14:59:59.999Z").unwrap();
        let ms = before.timestamp_millis();
        assert_eq!(kst_day(ms) + 1, kst_day(ms + 1));
        assert_eq!(kst_day(ms - 1), kst_day(ms));
    }

    #[test]
    fn naive_input_means_kst() {
        let a = parse_instant("2026-01-15T09:00:00").unwrap();
        let b = parse_instant("2026-01-15T00:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_instant("2026-01-15T09:00:00+09:00"), Some(b));
        assert_eq!(parse_instant("yesterday"), None);
    }

    #[test]
    fn formats() {
        let t = parse_instant("2026-01-15T00:00:00Z").unwrap();
        assert_eq!(format_utc(t), "2026-01-15T00:00:00Z");
        assert_eq!(format_kst(t), "2026-01-15T09:00:00+09:00");
    }
}
