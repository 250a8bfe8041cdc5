//! Civil (proleptic Gregorian, UTC) dates from and to Unix time: the one
//! calendar behind every timestamp ctrdb prints or parses.
//!
//! Hand-written rather than from a date crate: stored timestamps come from
//! untrusted files and may hold any `i64` of seconds, which date crates bound to
//! about ±9999 years, and the GC model must parse label values with Go's
//! `time.Parse` grammar (`analysis::gc::gotime`), not a crate's. The arithmetic
//! is Howard Hinnant's `days_from_civil` / `civil_from_days`; it is exact for
//! every day count a `i64` of seconds can hold.

#![deny(clippy::indexing_slicing)]

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds in a day.
const DAY_SECS: i64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01 in the shifted (March-first) calendar.
const EPOCH_SHIFT_DAYS: i64 = 719_468;
/// Days in a 400-year era.
const ERA_DAYS: i64 = 146_097;

/// A UTC instant split into calendar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year (may be below 1 or above 9999 for values from damaged files).
    pub year: i64,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=31.
    pub day: u32,
    /// Hour, 0..=23.
    pub hour: u32,
    /// Minute, 0..=59.
    pub minute: u32,
    /// Second, 0..=59.
    pub second: u32,
    /// Nanoseconds as given (not normalized).
    pub nanos: u32,
}

impl Civil {
    /// The calendar fields of `unix_secs` seconds (and `nanos`) after the epoch.
    pub fn from_unix(unix_secs: i64, nanos: u32) -> Civil {
        let (year, month, day) = civil_from_days(unix_secs.div_euclid(DAY_SECS));
        let sod = unix_secs.rem_euclid(DAY_SECS);
        // 0 <= sod < 86_400, so each field fits a u32.
        let field = |v: i64| u32::try_from(v).unwrap_or(0);
        Civil {
            year,
            month,
            day,
            hour: field(sod / 3600),
            minute: field(sod / 60 % 60),
            second: field(sod % 60),
            nanos,
        }
    }

    /// The calendar fields of a system time; times before the epoch read as the epoch.
    pub fn from_system(t: SystemTime) -> Civil {
        let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => (
                i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                d.subsec_nanos(),
            ),
            Err(_) => (0, 0),
        };
        Civil::from_unix(secs, nanos)
    }

    /// RFC 3339 in UTC with nine fractional digits: `2026-11-27T21:07:31.176176427Z`.
    pub fn rfc3339_nanos(&self) -> String {
        format!(
            "{}T{:02}:{:02}:{:02}.{:09}Z",
            self.date("-"),
            self.hour,
            self.minute,
            self.second,
            self.nanos
        )
    }

    /// A compact stamp for file names, to the nanosecond so two runs within one
    /// second name different files: `20261127T210731.176176427Z`.
    pub fn file_stamp(&self) -> String {
        format!(
            "{}T{:02}{:02}{:02}.{:09}Z",
            self.date(""),
            self.hour,
            self.minute,
            self.second,
            self.nanos
        )
    }

    /// `yyyy<sep>mm<sep>dd`.
    fn date(&self, sep: &str) -> String {
        format!("{:04}{sep}{:02}{sep}{:02}", self.year, self.month, self.day)
    }
}

/// Days since 1970-01-01 → (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(EPOCH_SHIFT_DAYS);
    let era = z.div_euclid(ERA_DAYS);
    let doe = z.rem_euclid(ERA_DAYS);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // 0 <= doy < 366 and 0 <= mp < 12, so both fit a u32.
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month 1..=12, day 1..=31) → days since 1970-01-01 (saturating far
/// outside any real date, so no input can overflow).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 {
        year.saturating_sub(1)
    } else {
        year
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.saturating_mul(ERA_DAYS)
        .saturating_add(doe - EPOCH_SHIFT_DAYS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let t = Civil::from_unix(1_764_277_651, 176_176_427);
        assert_eq!(t.rfc3339_nanos(), "2025-11-27T21:07:31.176176427Z");
        assert_eq!(t.file_stamp(), "20251127T210731.176176427Z");
        assert_eq!(
            Civil::from_unix(-62_135_596_800, 0).rfc3339_nanos(),
            "0001-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            Civil::from_unix(951_782_400, 0).rfc3339_nanos(),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    /// The two directions are inverse over every day of four 400-year eras
    /// around the epoch, and each day follows the one before.
    #[test]
    fn round_trip_and_continuity() {
        let mut prev = civil_from_days(-ERA_DAYS * 2 - 1);
        for days in -ERA_DAYS * 2..ERA_DAYS * 2 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            let next_day = (y, m, d) == (prev.0, prev.1, prev.2 + 1);
            let next_month =
                d == 1 && ((y, m) == (prev.0, prev.1 + 1) || (m == 1 && y == prev.0 + 1));
            assert!(next_day || next_month, "{prev:?} -> {:?}", (y, m, d));
            prev = (y, m, d);
        }
    }

    #[test]
    fn extremes_do_not_panic() {
        for s in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
            let _ = Civil::from_unix(s, 999_999_999).rfc3339_nanos();
        }
    }
}
