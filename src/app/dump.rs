//! `ctrdb dump`: the raw bucket tree.

use std::io::Write;

use serde::Serialize;

use super::{AppError, ExitStatus, Input};
use crate::bolt::{BucketPath, Walk, WalkEvent};
use crate::cli::{DumpArgs, DumpFormat};
use crate::bytes::{hex, quoted_or_hex};
use crate::report::ByteStr;

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

pub(super) fn run(
    a: &DumpArgs,
    out: &mut dyn Write,
    _err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let input = Input::from_args(&a.input);
    let file = input.open()?;
    let db = file.db()?;
    let base = a.path.as_deref().map(BucketPath::parse).unwrap_or_default();
    let mut walk = if base.0.is_empty() {
        Walk::new(&db)?
    } else {
        let b = db.bucket(&base)?.ok_or_else(|| {
            AppError::Usage(format!("no bucket {base} in {}", input.path.display()))
        })?;
        Walk::from_bucket(&db, b)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let mut path: Vec<Vec<u8>> = base.0.clone();
    if !base.0.is_empty() {
        emit_bucket(&mut out, a.format, &path, walk.root_sequence())?;
    }
    while let Some(ev) = walk.next_event() {
        match ev? {
            WalkEvent::BucketStart { key, sequence, .. } => {
                path.push(key.to_vec());
                emit_bucket(&mut out, a.format, &path, sequence)?;
            }
            WalkEvent::BucketEnd => {
                path.pop();
            }
            WalkEvent::Value { key, value } => emit_key(&mut out, a.format, &path, key, value)?,
        }
    }
    out.flush()?;
    Ok(ExitStatus::Clean)
}

fn emit_bucket(
    out: &mut dyn Write,
    f: DumpFormat,
    path: &[Vec<u8>],
    seq: u64,
) -> Result<(), AppError> {
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
            )?;
        }
        DumpFormat::Hex => writeln!(out, "B {} seq={seq}", hex_path(path))?,
        DumpFormat::Jsonl => {
            let p: Vec<ByteStr> = path.iter().map(|c| ByteStr(c.clone())).collect();
            serde_json::to_writer(
                &mut *out,
                &Line::Bucket {
                    path: &p,
                    sequence: seq,
                },
            )?;
            writeln!(out)?;
        }
    }
    Ok(())
}

fn emit_key(
    out: &mut dyn Write,
    f: DumpFormat,
    path: &[Vec<u8>],
    key: &[u8],
    value: &[u8],
) -> Result<(), AppError> {
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
            )?;
        }
        DumpFormat::Hex => {
            let v = if value.is_empty() {
                "-".to_string()
            } else {
                hex(value)
            };
            writeln!(out, "K {} {} {v}", hex_path(path), hex(key))?;
        }
        DumpFormat::Jsonl => {
            let p: Vec<ByteStr> = path.iter().map(|c| ByteStr(c.clone())).collect();
            serde_json::to_writer(
                &mut *out,
                &Line::Key {
                    path: &p,
                    key: ByteStr::new(key),
                    value: ByteStr::new(value),
                },
            )?;
            writeln!(out)?;
        }
    }
    Ok(())
}

fn hex_path(path: &[Vec<u8>]) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.iter().map(|c| hex(c)).collect::<Vec<_>>().join("/")
}
