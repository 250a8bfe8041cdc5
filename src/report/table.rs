//! Plain padded columns for `--format table` (no table crate: the output is a
//! handful of columns, like `ctr`'s tabwriter; counts are right-aligned).

use std::io::Write;

use crate::containerd::model::Labels;

/// Writes rows as columns separated by three spaces; the last column is not padded.
pub fn write_columns(out: &mut dyn Write, rows: &[Vec<String>]) -> std::io::Result<()> {
    write_aligned(out, "", rows, &[])
}

/// How a column's cells are placed in its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Counts: padded on the left, so digits of the same place line up.
    Right,
}

/// Writes rows as columns separated by three spaces, each line after `indent`;
/// column `i` is placed as `align[i]` says (left where `align` is shorter). A
/// left-aligned last column is not padded.
pub fn write_aligned(
    out: &mut dyn Write,
    indent: &str,
    rows: &[Vec<String>],
    align: &[Align],
) -> std::io::Result<()> {
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
        let mut line = String::from(indent);
        for (i, c) in r.iter().enumerate() {
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(c.chars().count());
            let last = i + 1 == r.len();
            if i > 0 {
                line.push_str("   ");
            }
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(c);
                }
                Align::Left => {
                    line.push_str(c);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_right_aligned_and_text_left() {
        let rows = vec![
            vec!["NS".to_string(), "NAMES".to_string(), "X".to_string()],
            vec!["k8s.io".to_string(), "7".to_string(), "1".to_string()],
            vec!["a".to_string(), "12345".to_string(), "22".to_string()],
        ];
        let mut out = Vec::new();
        write_aligned(
            &mut out,
            "  ",
            &rows,
            &[Align::Left, Align::Right, Align::Right],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  NS       NAMES    X\n  k8s.io       7    1\n  a        12345   22\n"
        );
        let mut out = Vec::new();
        write_columns(&mut out, &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NS       NAMES   X\nk8s.io   7       1\na        12345   22\n"
        );
    }
}
