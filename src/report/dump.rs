//! The output of `dump`: one line per bucket and per key, as an indented
//! tree, escaping-free hex lines, or JSON lines.

use std::io::{self, Write};

use serde::Serialize;

use super::DumpFormat;
use crate::bytes::{hex, quoted_or_hex, ByteStr};

/// Longest value the table format prints in full.
const MAX_TABLE_VALUE: usize = 256;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Line<'a> {
    Bucket {
        path: &'a [ByteStr],
        sequence: u64,
    },
    Key {
        path: &'a [ByteStr],
        key: ByteStr,
        value: ByteStr,
    },
}

/// A bucket at `path` (its name is the last component) with its sequence.
pub fn bucket(out: &mut dyn Write, f: DumpFormat, path: &[Vec<u8>], seq: u64) -> io::Result<()> {
    match f {
        DumpFormat::Table => {
            let depth = path.len().saturating_sub(1);
            let name = path.last().map(Vec::as_slice).unwrap_or_default();
            writeln!(
                out,
                "{:indent$}[{}] seq={seq}",
                "",
                quoted_or_hex(name, usize::MAX),
                indent = depth * 2
            )
        }
        DumpFormat::Hex => writeln!(out, "B {} seq={seq}", hex_path(path)),
        DumpFormat::Jsonl => {
            let p: Vec<ByteStr> = path.iter().map(|c| ByteStr(c.clone())).collect();
            super::write_lines(
                out,
                [Line::Bucket {
                    path: &p,
                    sequence: seq,
                }],
            )
        }
    }
}

/// A key of the bucket at `path` with its value.
pub fn key(
    out: &mut dyn Write,
    f: DumpFormat,
    path: &[Vec<u8>],
    key: &[u8],
    value: &[u8],
) -> io::Result<()> {
    match f {
        DumpFormat::Table => {
            let shown = if value.len() > MAX_TABLE_VALUE {
                format!(
                    "{}… ({} bytes; --format hex shows all)",
                    quoted_or_hex(value.get(..MAX_TABLE_VALUE).unwrap_or(value), usize::MAX),
                    value.len()
                )
            } else {
                quoted_or_hex(value, usize::MAX)
            };
            writeln!(
                out,
                "{:indent$}{} = {shown}",
                "",
                quoted_or_hex(key, usize::MAX),
                indent = path.len() * 2
            )
        }
        DumpFormat::Hex => {
            let v = if value.is_empty() {
                "-".to_string()
            } else {
                hex(value)
            };
            writeln!(out, "K {} {} {v}", hex_path(path), hex(key))
        }
        DumpFormat::Jsonl => {
            let p: Vec<ByteStr> = path.iter().map(|c| ByteStr(c.clone())).collect();
            super::write_lines(
                out,
                [Line::Key {
                    path: &p,
                    key: ByteStr::new(key),
                    value: ByteStr::new(value),
                }],
            )
        }
    }
}

fn hex_path(path: &[Vec<u8>]) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.iter().map(|c| hex(c)).collect::<Vec<_>>().join("/")
}
