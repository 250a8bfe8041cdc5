//! The report of `diff`: the records added, removed and changed between two
//! files, in containerd's terms (`docs/report.md`, "diff").

use std::io::{self, Write};

use serde::Serialize;
use serde_json::{Map, Value};

use super::table::write_columns;
use super::wire::map_key;
use super::{Envelope, InputInfo, Layout};
use crate::analysis::diff::{Change, FieldChange};
use crate::bytes::{sha256_hex, table_cell, ByteStr};
use crate::containerd::encoding;
use crate::containerd::records::RecordEntry;

/// A value longer than this is shown by its size and SHA-256 (a container's
/// spec is kilobytes).
const INLINE_VALUE: usize = 1024;

/// Counts of the changes.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Summary {
    /// Records only the new file has.
    pub added: u64,
    /// Records only the old file has.
    pub removed: u64,
    /// Records both have, with different fields.
    pub changed: u64,
}

impl Summary {
    /// Counts `c`.
    pub fn add(&mut self, c: &Change<'_>) {
        use crate::analysis::diff::ChangeKind;
        match c.change {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Removed => self.removed += 1,
            ChangeKind::Changed => self.changed += 1,
        }
    }

    /// Whether the files hold the same records.
    pub fn is_empty(&self) -> bool {
        self.added + self.removed + self.changed == 0
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeOut {
    namespace: Option<ByteStr>,
    kind: &'static str,
    id: ByteStr,
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<FieldOut>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct FieldOut {
    name: ByteStr,
    old: Value,
    new: Value,
}

fn change_out(c: &Change<'_>) -> ChangeOut {
    use crate::analysis::diff::ChangeKind;
    ChangeOut {
        namespace: c.id.namespace.clone().map(ByteStr),
        kind: c.kind.name(),
        id: ByteStr(c.id.id.clone()),
        change: c.change.name(),
        fields: (c.change == ChangeKind::Changed).then(|| c.fields.iter().map(field_out).collect()),
    }
}

fn field_out(f: &FieldChange<'_>) -> FieldOut {
    FieldOut {
        name: ByteStr(f.name.to_vec()),
        old: field_value(&f.old),
        new: field_value(&f.new),
    }
}

/// A record's JSON form: an object of its fields, each as [`field_value`].
pub(super) fn record_object(entries: &[RecordEntry<'_>]) -> Value {
    let mut m = Map::new();
    let mut i = 0;
    while let Some((path, _)) = entries.get(i) {
        let name = path.first().copied().unwrap_or_default();
        let n = entries[i..]
            .iter()
            .take_while(|(p, _)| p.first().copied().unwrap_or_default() == name)
            .count();
        m.insert(map_key(name), field_value(&entries[i..i + n]));
        i += n;
    }
    Value::Object(m)
}

/// A field's JSON form: `null` when absent, its value when plain, an object
/// of its entries (paths below it joined by `/`) when a bucket.
fn field_value(entries: &[RecordEntry<'_>]) -> Value {
    match entries {
        [] => Value::Null,
        [(path, Some(v))] => value(path.last().copied().unwrap_or_default(), v),
        _ => {
            let mut m = Map::new();
            for (path, v) in entries.iter().skip(1) {
                let rest = path.get(1..).unwrap_or_default();
                let key = rest
                    .iter()
                    .map(|c| map_key(c))
                    .collect::<Vec<_>>()
                    .join("/");
                let v = match v {
                    Some(v) => value(rest.last().copied().unwrap_or_default(), v),
                    None => Value::Object(Map::new()),
                };
                m.insert(key, v);
            }
            Value::Object(m)
        }
    }
}

/// A plain value by what containerd keeps under `key`: times as RFC 3339,
/// sizes as numbers, long values by size and SHA-256, the rest as byte strings.
fn value(key: &[u8], v: &[u8]) -> Value {
    let decoded = match key {
        b"createdat" | b"updatedat" | b"expireat" => encoding::time(v)
            .ok()
            .map(|t| Value::String(t.rfc3339_nano_go())),
        b"size" => encoding::varint(v).ok().map(Value::from),
        _ => None,
    };
    if let Some(d) = decoded {
        return d;
    }
    if v.len() > INLINE_VALUE {
        let mut m = Map::new();
        m.insert("size".into(), Value::from(v.len()));
        m.insert("sha256".into(), Value::String(sha256_hex(v)));
        return Value::Object(m);
    }
    serde_json::to_value(ByteStr(v.to_vec())).unwrap_or(Value::Null)
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'c> {
    old: InputInfo,
    summary: Summary,
    changes: &'c [ChangeOut],
}

/// The JSON report (`--format json` or `jsonl`, as `layout` says): `new` is
/// the envelope's input.
pub fn write_json(
    out: &mut dyn Write,
    layout: Layout,
    old: InputInfo,
    new: InputInfo,
    summary: Summary,
    changes: &[Change<'_>],
) -> io::Result<()> {
    let changes: Vec<ChangeOut> = changes.iter().map(change_out).collect();
    let body = Body {
        old,
        summary,
        changes: &changes,
    };
    super::write_document(out, &Envelope::new("diff", new, body), layout)
}

/// The report for people.
pub fn write_table(
    out: &mut dyn Write,
    old: &std::path::Path,
    new: &std::path::Path,
    summary: Summary,
    changes: &[Change<'_>],
) -> io::Result<()> {
    writeln!(
        out,
        "{} → {}: {} added, {} removed, {} changed",
        old.display(),
        new.display(),
        summary.added,
        summary.removed,
        summary.changed
    )?;
    if changes.is_empty() {
        return Ok(());
    }
    let mut rows = vec![["CHANGE", "NAMESPACE", "KIND", "ID", "FIELDS"]
        .map(String::from)
        .to_vec()];
    for c in changes {
        let fields: Vec<String> = c.fields.iter().map(|f| table_cell(f.name)).collect();
        rows.push(vec![
            c.change.name().to_string(),
            c.id.namespace
                .as_ref()
                .map_or("-".to_string(), |n| table_cell(n)),
            c.kind.name().to_string(),
            table_cell(&c.id.id),
            fields.join(", "),
        ]);
    }
    write_columns(out, &rows)
}
