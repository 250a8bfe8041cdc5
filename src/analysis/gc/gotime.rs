//! The two Go time parsers containerd's GC applies to label values:
//! `time.Parse(time.RFC3339, v)` (`containerd.io/gc.expire`,
//! `containerd.io/gc.cond.value-usedat`) and `time.ParseDuration` (2.3's
//! `containerd.io/gc.cond.snapshot` conditions). Times are nanoseconds since the
//! Unix epoch as `i128`, so no value of a 4-digit year overflows.
//!
//! The grammar follows Go's general parser for the RFC 3339 layout
//! `2006-01-02T15:04:05Z07:00`: 4-digit year, 2-digit month/day/minute/second,
//! 1–2 digit hour, optional fraction after `.` or `,`, then `Z` or `±hh:mm`,
//! nothing after; day checked against the month. Inputs Go accepts outside this
//! grammar are not known to occur; a value we reject counts as "unparsable",
//! which for leases and images means "not expired" (more reachable, the safe side).

/// Nanoseconds per second.
const NS: i128 = 1_000_000_000;

fn days_in(m: u32, y: i64) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Exactly `n` ASCII digits at the front of `s`.
fn digits(s: &[u8], n: usize) -> Option<(u32, &[u8])> {
    let head = s.get(..n)?;
    if !head.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = head.iter().fold(0u32, |a, &c| a * 10 + u32::from(c - b'0'));
    Some((v, s.get(n..)?))
}

fn lit(s: &[u8], c: u8) -> Option<&[u8]> {
    s.strip_prefix(&[c])
}

/// `time.Parse(time.RFC3339, s)` as Unix nanoseconds, `None` if Go would fail (see module doc).
pub fn parse_rfc3339(s: &[u8]) -> Option<i128> {
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(lit(s, b'-')?, 2)?;
    let (day, s) = digits(lit(s, b'-')?, 2)?;
    let s = lit(s, b'T')?;
    // Go's stdHour accepts one or two digits.
    let (hour, s) = digits(s, 2).or_else(|| digits(s, 1))?;
    let (min, s) = digits(lit(s, b':')?, 2)?;
    let (sec, mut s) = digits(lit(s, b':')?, 2)?;
    if !(1..=12).contains(&month) || hour >= 24 || min >= 60 || sec >= 60 {
        return None;
    }
    let mut nanos: i128 = 0;
    if let [sep, d, ..] = s {
        if (*sep == b'.' || *sep == b',') && d.is_ascii_digit() {
            let frac = s.get(1..)?;
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            // Go keeps nine digits and ignores the rest.
            for (i, c) in frac.iter().take(n).enumerate() {
                if i < 9 {
                    nanos = nanos * 10 + i128::from(c - b'0');
                }
            }
            for _ in n..9 {
                nanos *= 10;
            }
            s = frac.get(n..)?;
        }
    }
    let offset_secs: i128 = match s {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (hh, _) = digits(&[*h1, *h2], 2)?;
            let (mm, _) = digits(&[*m1, *m2], 2)?;
            if hh > 24 || mm > 60 {
                return None;
            }
            let o = i128::from(hh) * 3600 + i128::from(mm) * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let year = i64::from(year);
    if day < 1 || day > days_in(month, year) {
        return None;
    }
    let days = i128::from(crate::time::days_from_civil(year, month, day));
    let secs = days * 86_400 + i128::from(hour) * 3600 + i128::from(min) * 60 + i128::from(sec)
        - offset_secs;
    Some(secs * NS + nanos)
}

/// `time.ParseDuration(s)` in nanoseconds, `None` on error (including overflow of
/// Go's `int64`). Grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, or `0`.
pub fn parse_duration(s: &[u8]) -> Option<i128> {
    const UNITS: [(&[u8], u64); 9] = [
        (b"ns", 1),
        (b"us", 1_000),
        ("\u{b5}s".as_bytes(), 1_000),
        ("\u{3bc}s".as_bytes(), 1_000),
        (b"ms", 1_000_000),
        (b"s", 1_000_000_000),
        (b"m", 60_000_000_000),
        (b"h", 3_600_000_000_000),
        (b"", 0),
    ];
    let (neg, mut s) = match s {
        [b'-', r @ ..] => (true, r),
        [b'+', r @ ..] => (false, r),
        r => (false, r),
    };
    if s == b"0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let limit: u128 = 1 << 63;
    let mut total: u128 = 0;
    while !s.is_empty() {
        let first = *s.first()?;
        if !(first == b'.' || first.is_ascii_digit()) {
            return None;
        }
        let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u128 = 0;
        for c in s.get(..n)? {
            v = v * 10 + u128::from(c - b'0');
            if v > limit {
                return None;
            }
        }
        s = s.get(n..)?;
        let mut frac: Option<(u128, u128)> = None; // (digits, scale)
        if let Some(r) = s.strip_prefix(b".") {
            let k = r.iter().take_while(|c| c.is_ascii_digit()).count();
            let (mut f, mut scale) = (0u128, 1u128);
            for c in r.get(..k)? {
                if scale < 1_000_000_000_000_000_000 {
                    f = f * 10 + u128::from(c - b'0');
                    scale *= 10;
                }
            }
            frac = Some((f, scale)).filter(|_| k > 0);
            if n == 0 && k == 0 {
                return None;
            }
            s = r.get(k..)?;
        } else if n == 0 {
            return None;
        }
        let u = s
            .iter()
            .take_while(|c| !(**c == b'.' || c.is_ascii_digit()))
            .count();
        if u == 0 {
            return None;
        }
        let unit_name = s.get(..u)?;
        let unit = UNITS
            .iter()
            .find(|(name, m)| *m != 0 && *name == unit_name)
            .map(|(_, m)| u128::from(*m))?;
        s = s.get(u..)?;
        v = v.checked_mul(unit).filter(|v| *v <= limit)?;
        if let Some((f, scale)) = frac {
            v += f * unit / scale;
            if v > limit {
                return None;
            }
        }
        total += v;
        if total > limit {
            return None;
        }
    }
    if neg {
        Some(-(total as i128))
    } else if total > limit - 1 {
        None
    } else {
        Some(total as i128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_values_go_accepts() {
        assert_eq!(parse_rfc3339(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339(b"2026-11-27T23:08:49Z"),
            Some(1_795_820_929 * NS)
        );
        assert_eq!(parse_rfc3339(b"1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339(b"1969-12-31T23:00:00-01:00"), Some(0));
        assert_eq!(
            parse_rfc3339(b"1970-01-01T00:00:01.5Z"),
            Some(NS + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339(b"1970-01-01T00:00:00,123456789999Z"),
            Some(123_456_789)
        );
        assert_eq!(parse_rfc3339(b"1970-01-01T1:00:00Z"), Some(3600 * NS));
        assert_eq!(
            parse_rfc3339(b"2024-02-29T00:00:00Z").map(|n| n / NS),
            Some(1_709_164_800)
        );
    }

    #[test]
    fn rfc3339_values_go_rejects() {
        for bad in [
            &b""[..],
            b"2026-11-27",
            b"2026-11-27T23:08:49",
            b"2026-11-27 23:08:49Z",
            b"2026-11-27T23:08:49z",
            b"2026-13-01T00:00:00Z",
            b"2023-02-29T00:00:00Z",
            b"2026-11-27T24:00:00Z",
            b"2026-11-27T23:60:00Z",
            b"2026-11-27T23:00:60Z",
            b"2026-11-27T23:00:00Z ",
            b"2026-11-27T23:00:00+0100",
            b"2026-11-27T23:00:00.Z",
            b"1h",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn durations_like_go() {
        let h = 3_600 * NS;
        assert_eq!(parse_duration(b"0"), Some(0));
        assert_eq!(parse_duration(b"1h"), Some(h));
        assert_eq!(parse_duration(b"1h30m"), Some(h + h / 2));
        assert_eq!(parse_duration(b"-1.5h"), Some(-(h + h / 2)));
        assert_eq!(parse_duration(b".5s"), Some(NS / 2));
        assert_eq!(parse_duration(b"10ms"), Some(10_000_000));
        assert_eq!(parse_duration("3\u{b5}s".as_bytes()), Some(3_000));
        for bad in [
            &b""[..],
            b"1",
            b"h",
            b".h",
            b"1x",
            b"1h-2m",
            b"9999999999999999999h",
            b"+",
        ] {
            assert_eq!(
                parse_duration(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
