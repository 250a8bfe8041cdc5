//! containerd's value encodings, decoded without trusting the bytes: signed
//! zig-zag varints (`binary.Varint`), Go `time.Time.MarshalBinary` and protobuf
//! `google.protobuf.Any`. Every read is bounds-checked; nothing here can panic
//! or allocate more than the input's length.

#![deny(clippy::indexing_slicing)]

use std::fmt;

/// Why a value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The value is empty where a varint was expected.
    #[error("empty varint")]
    VarintEmpty,
    /// The varint runs past the end of the value.
    #[error("truncated varint")]
    VarintTruncated,
    /// The varint is longer than 10 bytes or overflows 64 bits.
    #[error("varint overflows 64 bits")]
    VarintOverflow,
    /// A time value has the wrong length for its version.
    #[error("time value is {len} bytes, want {want} for version {version}")]
    TimeLength {
        /// Actual length.
        len: usize,
        /// Expected length.
        want: usize,
        /// The version byte.
        version: u8,
    },
    /// A time value has an unknown version byte (or is empty).
    #[error("time value has unknown version {0:?}")]
    TimeVersion(Option<u8>),
    /// The nanoseconds field is outside 0..1e9.
    #[error("time value has nanoseconds {0}, outside 0..1000000000")]
    TimeNanos(i32),
    /// Seconds outside the range this tool represents.
    #[error("time value's seconds are out of range")]
    TimeRange,
    /// A protobuf message is malformed.
    #[error("malformed protobuf Any: {0}")]
    Any(&'static str),
}

/// Maximum bytes of a 64-bit varint.
pub const MAX_VARINT_LEN: usize = 10;

/// Reads an unsigned LEB128 varint (Go `binary.Uvarint`) from the start of `b`.
/// Returns the value and the number of bytes read.
pub fn uvarint(b: &[u8]) -> Result<(u64, usize), DecodeError> {
    if b.is_empty() {
        return Err(DecodeError::VarintEmpty);
    }
    let mut x: u64 = 0;
    let mut s: u32 = 0;
    for (i, &byte) in b.iter().enumerate().take(MAX_VARINT_LEN) {
        if byte < 0x80 {
            if i == MAX_VARINT_LEN - 1 && byte > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            return Ok((x | (u64::from(byte) << s), i + 1));
        }
        x |= u64::from(byte & 0x7f) << s;
        s += 7;
    }
    if b.len() >= MAX_VARINT_LEN {
        Err(DecodeError::VarintOverflow)
    } else {
        Err(DecodeError::VarintTruncated)
    }
}

/// Reads a signed zig-zag varint (Go `binary.Varint`), as containerd's `size`
/// and `version` values are written. Trailing bytes are ignored, as Go does.
pub fn varint(b: &[u8]) -> Result<i64, DecodeError> {
    let (ux, _) = uvarint(b)?;
    let x = (ux >> 1) as i64;
    Ok(if ux & 1 != 0 { !x } else { x })
}

/// Encodes a signed zig-zag varint (Go `binary.PutVarint`).
pub fn put_varint(v: i64) -> Vec<u8> {
    let mut ux = (v as u64) << 1;
    if v < 0 {
        ux = !ux;
    }
    let mut out = Vec::with_capacity(MAX_VARINT_LEN);
    while ux >= 0x80 {
        out.push((ux as u8) | 0x80);
        ux >>= 7;
    }
    out.push(ux as u8);
    out
}

/// Seconds from 0001-01-01T00:00:00Z to the Unix epoch (Go's `unixToInternal`).
const UNIX_TO_INTERNAL: i64 = 62_135_596_800;

/// A point in time as containerd stores it (`time.Time.MarshalBinary`), kept
/// exactly: Unix seconds, nanoseconds and the stored zone offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch (UTC).
    pub unix_secs: i64,
    /// Nanoseconds, 0..1e9.
    pub nanos: u32,
    /// The zone offset in seconds east of UTC, or `None` for UTC (`0xffff`).
    pub zone_offset_secs: Option<i32>,
}

impl Timestamp {
    /// RFC 3339 in UTC with nine fractional digits, e.g. `2026-11-27T21:07:31.176176427Z`.
    pub fn rfc3339(&self) -> String {
        crate::time::Civil::from_unix(self.unix_secs, self.nanos).rfc3339_nanos()
    }

    /// Go's `time.Time.Format(time.RFC3339Nano)` of the UTC instant (trailing zeros
    /// of the fraction dropped), for comparison with Go tools.
    pub fn rfc3339_nano_go(&self) -> String {
        let full = self.rfc3339();
        let Some((head, frac)) = full.trim_end_matches('Z').split_once('.') else {
            return full;
        };
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            format!("{head}Z")
        } else {
            format!("{head}.{frac}Z")
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

/// Decodes Go's `time.Time.MarshalBinary` (version 1: 15 bytes, version 2: 16).
// Go's time encoding is big-endian by definition (unlike bbolt's native order).
#[allow(clippy::big_endian_bytes)]
pub fn time(b: &[u8]) -> Result<Timestamp, DecodeError> {
    let version = b.first().copied();
    let want = match version {
        Some(1) => 15,
        Some(2) => 16,
        v => return Err(DecodeError::TimeVersion(v)),
    };
    let version = version.unwrap_or(0);
    let arr: &[u8; 15] = match b.get(..15).and_then(|s| s.try_into().ok()) {
        Some(a) if b.len() == want => a,
        _ => {
            return Err(DecodeError::TimeLength {
                len: b.len(),
                want,
                version,
            })
        }
    };
    let [_, s0, s1, s2, s3, s4, s5, s6, s7, n0, n1, n2, n3, o0, o1] = *arr;
    let sec = i64::from_be_bytes([s0, s1, s2, s3, s4, s5, s6, s7]);
    let nsec = i32::from_be_bytes([n0, n1, n2, n3]);
    let offset_min = i16::from_be_bytes([o0, o1]);
    if !(0..1_000_000_000).contains(&nsec) {
        return Err(DecodeError::TimeNanos(nsec));
    }
    let unix_secs = sec
        .checked_sub(UNIX_TO_INTERNAL)
        .ok_or(DecodeError::TimeRange)?;
    // Keep the year formattable in four-plus digits without overflow in `rfc3339`.
    if unix_secs.unsigned_abs() > 1 << 55 {
        return Err(DecodeError::TimeRange);
    }
    let zone_offset_secs = if offset_min == -1 {
        None
    } else {
        let extra = if version == 2 {
            b.get(15).map_or(0, |&x| i32::from(x as i8))
        } else {
            0
        };
        Some(i32::from(offset_min) * 60 + extra)
    };
    Ok(Timestamp {
        unix_secs,
        nanos: nsec as u32,
        zone_offset_secs,
    })
}

/// Encodes a UTC timestamp as Go's `MarshalBinary` version 1 (for tests and writers).
#[allow(clippy::big_endian_bytes)]
pub fn put_time_utc(unix_secs: i64, nanos: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(15);
    v.push(1);
    v.extend_from_slice(&(unix_secs + UNIX_TO_INTERNAL).to_be_bytes());
    v.extend_from_slice(&(nanos as i32).to_be_bytes());
    v.extend_from_slice(&(-1i16).to_be_bytes());
    v
}

/// A decoded `google.protobuf.Any`: the type URL and the raw value bytes, both
/// borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnyValue<'a> {
    /// Field 1, `type_url` (raw bytes; normally UTF-8).
    pub type_url: &'a [u8],
    /// Field 2, `value` (kept as bytes, not decoded).
    pub value: &'a [u8],
}

/// Decodes a protobuf `Any`. Unknown fields are skipped; the last occurrence of a
/// field wins, as in protobuf.
pub fn any(b: &[u8]) -> Result<AnyValue<'_>, DecodeError> {
    let mut out = AnyValue::default();
    let mut rest = b;
    while !rest.is_empty() {
        let (tag, n) = uvarint(rest).map_err(|_| DecodeError::Any("bad field tag"))?;
        rest = rest.get(n..).unwrap_or_default();
        let field = tag >> 3;
        if field == 0 {
            return Err(DecodeError::Any("field number 0"));
        }
        match tag & 7 {
            0 => {
                let (_, n) = uvarint(rest).map_err(|_| DecodeError::Any("bad varint field"))?;
                rest = rest.get(n..).unwrap_or_default();
            }
            1 => {
                rest = rest
                    .get(8..)
                    .ok_or(DecodeError::Any("truncated fixed64 field"))?
            }
            5 => {
                rest = rest
                    .get(4..)
                    .ok_or(DecodeError::Any("truncated fixed32 field"))?
            }
            2 => {
                let (len, n) = uvarint(rest).map_err(|_| DecodeError::Any("bad length"))?;
                rest = rest.get(n..).unwrap_or_default();
                let len = usize::try_from(len).map_err(|_| DecodeError::Any("length too large"))?;
                let body = rest
                    .get(..len)
                    .ok_or(DecodeError::Any("length runs past the end"))?;
                rest = rest.get(len..).unwrap_or_default();
                match field {
                    1 => out.type_url = body,
                    2 => out.value = body,
                    _ => {}
                }
            }
            _ => return Err(DecodeError::Any("unsupported wire type")),
        }
    }
    Ok(out)
}

#[cfg(test)]
// A test that indexes out of bounds fails, which is what it should do.
#[allow(clippy::big_endian_bytes, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn varint_matches_go_examples() {
        // §3.1 of containerd-metadb.md: 3 → 06, 4 → 08, 19 → 26, 528 → a0 08, 29125 → 8a c7 03.
        for (v, enc) in [
            (3, &[0x06][..]),
            (4, &[0x08]),
            (19, &[0x26]),
            (528, &[0xa0, 0x08]),
            (29125, &[0x8a, 0xc7, 0x03]),
        ] {
            assert_eq!(varint(enc), Ok(v));
            assert_eq!(put_varint(v), enc);
        }
        assert_eq!(varint(&[0x01]), Ok(-1));
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1 << 40, -(1 << 40)] {
            assert_eq!(varint(&put_varint(v)), Ok(v));
        }
    }

    #[test]
    fn varint_rejects_bad_input() {
        assert_eq!(varint(&[]), Err(DecodeError::VarintEmpty));
        assert_eq!(varint(&[0x80, 0x80]), Err(DecodeError::VarintTruncated));
        assert_eq!(varint(&[0xff; 10]), Err(DecodeError::VarintOverflow));
        assert_eq!(varint(&[0xff; 11]), Err(DecodeError::VarintOverflow));
        // 10th byte may only be 0 or 1.
        let mut b = vec![0x80; 9];
        b.push(0x02);
        assert_eq!(varint(&b), Err(DecodeError::VarintOverflow));
        b[9] = 0x01;
        assert!(varint(&b).is_ok());
    }

    #[test]
    fn time_decodes_the_appendix_example() {
        // 01 0000000ee29be813 0a803d2b ffff = 2026-11-27 21:07:31.176176427 UTC
        let b = [
            1, 0, 0, 0, 0x0e, 0xe2, 0x9b, 0xe8, 0x13, 0x0a, 0x80, 0x3d, 0x2b, 0xff, 0xff,
        ];
        let t = time(&b).unwrap();
        assert_eq!(t.rfc3339(), "2026-11-27T21:07:31.176176427Z");
        assert_eq!(t.zone_offset_secs, None);
        assert_eq!(put_time_utc(t.unix_secs, t.nanos), b);
    }

    #[test]
    fn time_versions_and_errors() {
        let mut v2 = put_time_utc(0, 5);
        v2[0] = 2;
        v2[13] = 0;
        v2[14] = 60; // +01:00
        v2.push(30); // +30 s
        let t = time(&v2).unwrap();
        assert_eq!(t.rfc3339(), "1970-01-01T00:00:00.000000005Z");
        assert_eq!(t.rfc3339_nano_go(), "1970-01-01T00:00:00.000000005Z");
        assert_eq!(t.zone_offset_secs, Some(3630));
        assert_eq!(time(&[]), Err(DecodeError::TimeVersion(None)));
        assert_eq!(time(&[3; 15]), Err(DecodeError::TimeVersion(Some(3))));
        assert!(matches!(
            time(&v2[..15]),
            Err(DecodeError::TimeLength { .. })
        ));
        let mut bad = put_time_utc(0, 0);
        bad[9..13].copy_from_slice(&1_000_000_000i32.to_be_bytes());
        assert_eq!(time(&bad), Err(DecodeError::TimeNanos(1_000_000_000)));
        let mut huge = put_time_utc(0, 0);
        huge[1..9].copy_from_slice(&i64::MIN.to_be_bytes());
        assert_eq!(time(&huge), Err(DecodeError::TimeRange));
        assert_eq!(
            time(&put_time_utc(-62_135_596_800, 0)).unwrap().rfc3339(),
            "0001-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            time(&put_time_utc(951_782_400, 1_000))
                .unwrap()
                .rfc3339_nano_go(),
            "2000-02-29T00:00:00.000001Z"
        );
    }

    #[test]
    fn any_decodes_and_skips() {
        assert_eq!(
            any(&[0x0a, 0x01, b'x', 0x12, 0x01, b'y']).unwrap(),
            AnyValue {
                type_url: b"x",
                value: b"y"
            }
        );
        // unknown varint field 3, fixed32 field 4, fixed64 field 5 are skipped
        let b = [
            0x18, 0x96, 0x01, 0x25, 1, 2, 3, 4, 0x29, 1, 2, 3, 4, 5, 6, 7, 8, 0x0a, 0x00,
        ];
        assert_eq!(any(&b).unwrap(), AnyValue::default());
        assert!(any(&[]).is_ok());
        assert!(any(&[0x0a, 0x05, b'x']).is_err());
        assert!(any(&[0x0a]).is_err());
        assert!(any(&[0x0b]).is_err()); // wire type 3 (group)
        assert!(any(&[0x00]).is_err()); // field 0
        assert!(any(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err());
        assert!(any(&[0x25, 1, 2]).is_err());
    }
}
