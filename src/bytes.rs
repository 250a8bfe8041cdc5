//! Byte strings, and byte strings as text. Keys, names and values in meta.db are arbitrary bytes;
//! each place that shows one as text uses one of these forms, chosen for its
//! reader. (The JSON form, which is lossless, lives in `report::wire`.)

#![deny(clippy::indexing_slicing)]

/// A borrowed byte string: a key, name or value as stored (a slice of the
/// mapped file). Ordered and compared bytewise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    /// Whether it is empty.
    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> From<&'a [u8]> for Bytes<'a> {
    fn from(b: &'a [u8]) -> Self {
        Bytes(b)
    }
}

/// An owned byte string.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteStr(pub Vec<u8>);

impl ByteStr {
    /// Copies `b`.
    pub fn new(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len().saturating_mul(2));
    for &x in b {
        for nibble in [x >> 4, x & 15] {
            s.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    s
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(data))
}

/// For messages: UTF-8 with its control characters escaped
/// ([`escape_controls`]), anything else with its bytes escaped (`\xff`), so a
/// name from the file cannot move the cursor, colour the terminal or break a line.
pub fn display(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => escape_controls(s).into_owned(),
        Err(_) => b.escape_ascii().to_string(),
    }
}

/// `s` with every control character escaped: `\t`, `\n`, `\r`, `\xNN` for
/// the other C0 controls and DEL, `\u{NN}` for C1 controls; borrowed when
/// there are none. Everything printed to a terminal passes through it.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().saturating_add(8));
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// For a table cell, which must stay on one line: UTF-8 without control
/// characters as it is, anything else escaped.
pub fn table_cell(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => b.escape_ascii().to_string(),
    }
}

/// For raw keys and values: printable ASCII as a quoted string, the empty string
/// as `""`, anything else as `0x…` hex of at most `max_bytes` bytes (then `…`).
pub fn quoted_or_hex(b: &[u8], max_bytes: usize) -> String {
    if b.is_empty() {
        "\"\"".into()
    } else if b.iter().all(|&c| (0x20..0x7f).contains(&c)) {
        format!("{:?}", String::from_utf8_lossy(b))
    } else {
        let shown = b.get(..max_bytes).unwrap_or(b);
        let more = if shown.len() < b.len() { "…" } else { "" };
        format!("0x{}{more}", hex(shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(hex(b"\x00\xab\xff"), "00abff");
        assert_eq!(display(b"a\xffb"), "a\\xffb");
        assert_eq!(display("é\t".as_bytes()), "é\\t");
        assert_eq!(
            escape_controls("a\x1b[31m\x08\n\u{85}é"),
            "a\\x1b[31m\\x08\\n\\u{85}é"
        );
        assert!(matches!(
            escape_controls("plain é"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(table_cell("é\t".as_bytes()), "\\xc3\\xa9\\t");
        assert_eq!(table_cell("é".as_bytes()), "é");
        assert_eq!(quoted_or_hex(b"", 4), "\"\"");
        assert_eq!(quoted_or_hex(b"k\"1", 4), "\"k\\\"1\"");
        assert_eq!(quoted_or_hex(b"\x01\x02\x03", 2), "0x0102…");
        assert_eq!(quoted_or_hex(b"\x01\x02", 2), "0x0102");
    }
}
