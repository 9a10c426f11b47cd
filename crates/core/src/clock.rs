//! KST, the service's reference zone, and the text forms of instants.
//!
//! Which KST day it is on the hot path is decided inside the Lua scripts from Redis `TIME`, so
//! every api process agrees; [`kst_day`] is the same arithmetic for Rust callers.

use chrono::{
    DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, SubsecRound,
    TimeZone, Utc,
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
    match whole_ms(t) {
        Some(ms) => write_rfc3339_ms(ms, 0),
        None => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
    }
}

/// RFC 3339 with `+09:00`, as the `/api/v1` APIs and error bodies write instants.
pub fn format_kst(t: DateTime<Utc>) -> String {
    match whole_ms(t) {
        Some(ms) => write_rfc3339_ms(ms, KST_OFFSET_MS),
        None => t
            .with_timezone(&kst())
            .to_rfc3339_opts(SecondsFormat::AutoSi, false),
    }
}

/// The present instant, cut to the millisecond, as [`format_kst`] writes it: read from the
/// system clock as epoch ms, without building a chrono `DateTime` on the way (error bodies
/// write one per answer).
pub fn now_kst_ms() -> String {
    match now_ms() {
        Some(ms) => write_rfc3339_ms(ms, KST_OFFSET_MS),
        None => format_kst(Utc::now().trunc_subsecs(3)),
    }
}

/// Appends [`now_kst_ms`] to `out`.
pub fn push_now_kst_ms(out: &mut String) {
    match now_ms() {
        Some(ms) => push_kst_ms(out, ms),
        None => out.push_str(&now_kst_ms()),
    }
}

/// Appends the instant `ms` (epoch ms, as [`now_ms`] gives it) as [`format_kst`] writes it.
pub fn push_kst_ms(out: &mut String, ms: i64) {
    push_ms(out, ms, KST_OFFSET_MS);
}

/// Appends `t` as [`format_utc`] writes it, without a string of its own: an issued ticket's
/// answer writes its time this way.
pub fn push_utc(out: &mut String, t: DateTime<Utc>) {
    match whole_ms(t) {
        Some(ms) => push_ms(out, ms, 0),
        None => out.push_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// Appends `t` as [`format_kst`] writes it, as [`push_utc`] does: an issued coupon's answer
/// writes its expiry and its time this way.
pub fn push_kst(out: &mut String, t: DateTime<Utc>) {
    match whole_ms(t) {
        Some(ms) => push_ms(out, ms, KST_OFFSET_MS),
        None => out.push_str(&format_kst(t)),
    }
}

/// Appends `ms` at `offset_ms` (0 or KST) as [`write_rfc3339_ms`] writes it. The texts of the
/// last two instants written on this thread at each offset are written again while they last:
/// a flood of answers of one kind writes several a millisecond (the sold-out 409s at KST; the
/// tickets of one group commit, which share Redis's clock, in UTC), and a coupon's answer
/// writes its batch's expiry beside its own time.
fn push_ms(out: &mut String, ms: i64, offset_ms: i64) {
    /// Two instants' texts and which one was written last.
    struct Memo {
        texts: [(i64, String); 2],
        last: usize,
    }
    thread_local! {
        static MEMOS: std::cell::RefCell<[Memo; 2]> = const {
            std::cell::RefCell::new([
                Memo { texts: [(-1, String::new()), (-1, String::new())], last: 0 },
                Memo { texts: [(-1, String::new()), (-1, String::new())], last: 0 },
            ])
        };
    }
    MEMOS.with_borrow_mut(|memos| {
        let memo = &mut memos[usize::from(offset_ms != 0)];
        let slot = match memo.texts.iter().position(|(at, _)| *at == ms) {
            Some(slot) => slot,
            None => {
                // The one not written last makes room.
                let slot = 1 - memo.last;
                memo.texts[slot] = (ms, write_rfc3339_ms(ms, offset_ms));
                slot
            }
        };
        memo.last = slot;
        out.push_str(&memo.texts[slot].1);
    });
}

/// The system clock's epoch ms, when [`write_rfc3339_ms`] can write it (years 1970–9999).
pub fn now_ms() -> Option<i64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .filter(|ms| *ms < 253_402_300_800_000 - KST_OFFSET_MS)
}

/// The epoch ms of an instant of years 1970–9999 that is a whole millisecond: every instant
/// the hot path answers (Redis `TIME` in ms, error timestamps cut to ms), which
/// [`write_rfc3339_ms`] writes for a fifth of what chrono's formatter costs.
fn whole_ms(t: DateTime<Utc>) -> Option<i64> {
    let ms = t.timestamp_millis();
    (t.timestamp_subsec_nanos().is_multiple_of(1_000_000)
        && (0..253_402_300_800_000 - KST_OFFSET_MS).contains(&ms))
    .then_some(ms)
}

/// `ms` (0 ≤ ms, before 9999-12-31T15:00Z) as RFC 3339 at `offset_ms` (0 or KST), exactly as
/// chrono's `SecondsFormat::AutoSi` writes it: milliseconds only when not zero, `Z` for UTC.
fn write_rfc3339_ms(ms: i64, offset_ms: i64) -> String {
    let local = ms + offset_ms;
    let (days, in_day) = (local / DAY_MS, local % DAY_MS);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 ≥ 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (secs, milli) = (in_day / 1_000, in_day % 1_000);
    // "YYYY-MM-DDTHH:MM:SS.mmm" at fixed places, then the zone.
    let mut text = *b"0000-00-00T00:00:00.000";
    let mut put = |at: usize, value: i64, width: usize| {
        let mut value = value;
        for place in text[at..at + width].iter_mut().rev() {
            *place = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, secs / 3_600, 2);
    put(14, secs / 60 % 60, 2);
    put(17, secs % 60, 2);
    put(20, milli, 3);
    let len = if milli != 0 { 23 } else { 19 };
    let mut out = String::with_capacity(29);
    out.push_str(std::str::from_utf8(&text[..len]).expect("ASCII digits"));
    out.push_str(if offset_ms == 0 { "Z" } else { "+09:00" });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_as_chrono_writes_them() {
        let chrono_utc = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let chrono_kst = |t: DateTime<Utc>| {
            t.with_timezone(&kst())
                .to_rfc3339_opts(SecondsFormat::AutoSi, false)
        };
        let mut samples = vec![
            0,
            1,
            999,
            1_000,
            951_782_400_000,   // 2000-02-29
            1_709_164_800_000, // 2024-02-29
            1_768_014_000_123, // a KST noon
            1_767_193_199_999, // the last ms of 2025 in KST
            4_102_444_800_000, // 2100-01-01 (not a leap year)
            253_402_300_799_999 - KST_OFFSET_MS,
        ];
        // A walk over 400 years in uneven steps, through every month and leap rule.
        let mut ms = 0_i64;
        while ms < 12_622_780_800_000 {
            samples.push(ms);
            ms += 86_399_917 * 7 + 13;
        }
        for ms in samples {
            let t = from_ms(ms);
            assert_eq!(format_utc(t), chrono_utc(t), "{ms}");
            assert_eq!(format_kst(t), chrono_kst(t), "{ms}");
            // Pushed twice (the second from this thread's memo), at both offsets in turn, and
            // beside another instant (a coupon's expiry) that keeps its own place in the memo.
            for _ in 0..2 {
                let mut pushed = "x".to_owned();
                push_utc(&mut pushed, t);
                push_kst_ms(&mut pushed, ms);
                push_kst(&mut pushed, from_ms(951_782_400_000));
                push_kst(&mut pushed, t);
                assert_eq!(
                    pushed,
                    format!(
                        "x{}{}2000-02-29T09:00:00+09:00{}",
                        chrono_utc(t),
                        chrono_kst(t),
                        chrono_kst(t)
                    ),
                    "{ms}"
                );
            }
        }
        let micro = from_ms(1_768_014_000_123) + chrono::Duration::microseconds(456);
        assert_eq!(
            format_utc(micro),
            chrono_utc(micro),
            "sub-millisecond instants go to chrono"
        );
        let mut pushed = String::new();
        push_utc(&mut pushed, micro);
        assert_eq!(pushed, chrono_utc(micro));
        let now = now_kst_ms();
        let parsed = DateTime::parse_from_rfc3339(&now).expect("RFC 3339");
        assert_eq!(
            format_kst(parsed.with_timezone(&Utc)),
            now,
            "now is written as any instant"
        );
        assert!((Utc::now() - parsed.with_timezone(&Utc)).num_seconds().abs() < 5);
        // Pushed, twice within a millisecond or not: the present, as now_kst_ms writes it.
        for _ in 0..3 {
            let (before, mut pushed) = (Utc::now().trunc_subsecs(3), "x".to_owned());
            push_now_kst_ms(&mut pushed);
            let after = Utc::now();
            let pushed = pushed.strip_prefix('x').unwrap();
            let at = DateTime::parse_from_rfc3339(pushed)
                .expect("RFC 3339")
                .with_timezone(&Utc);
            assert!(
                before <= at && at <= after,
                "{pushed} within {before} and {after}"
            );
            assert_eq!(format_kst(at), pushed);
        }
        let before_1970 = from_ms(-1);
        assert_eq!(format_kst(before_1970), chrono_kst(before_1970));
    }

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
