//! Plain padded columns for `--format table` (no table crate: the output is a
//! handful of left-aligned columns, like `ctr`'s tabwriter).

use std::io::Write;

use crate::containerd::model::Labels;

/// Writes rows as columns separated by three spaces; the last column is not padded.
pub fn write_columns(out: &mut dyn Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                let w = widths.get(i).copied().unwrap_or(0);
                line.push_str(c);
                line.extend(std::iter::repeat_n(
                    ' ',
                    w.saturating_sub(c.chars().count()) + 3,
                ));
            } else {
                line.push_str(c);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

pub use crate::bytes::table_cell as cell;

/// `k=v,k=v` as `ctr` prints labels; `-` when empty.
pub fn labels_cell(l: &Labels) -> String {
    if l.is_empty() {
        return "-".into();
    }
    l.iter()
        .map(|(k, v)| format!("{}={}", cell(k.0), cell(v.0)))
        .collect::<Vec<_>>()
        .join(",")
}

/// A size as `ctr` shows it (`1.2 KiB`; `404 B` below a KiB).
pub fn human_size(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v.abs() >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    match UNITS.get(u) {
        Some(unit) if u > 0 => format!("{v:.1} {unit}"),
        _ => format!("{n} B"),
    }
}

/// A byte count with its human size beside it: `1536 bytes (1.5 KiB)`,
/// `-1536 bytes (1.5 KiB)`, `12 bytes`.
pub fn bytes_and_human_size(n: i64) -> String {
    let magnitude = i64::try_from(n.unsigned_abs()).unwrap_or(i64::MAX);
    if magnitude < 1024 {
        format!("{n} bytes")
    } else {
        format!("{n} bytes ({})", human_size(magnitude))
    }
}
