//! The report of `carve`: records read from what the newest tree no longer
//! reaches, in containerd's terms (`docs/report.md`, "carve").

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::diff::record_object;
use super::table::write_columns;
use super::{Envelope, InputInfo, Layout};
use crate::analysis::carve::{Carve, Carved, Status};
use crate::bytes::{table_cell, ByteStr};
use crate::containerd::encoding;
use crate::containerd::shape::RecordKind;
use crate::oci::runtime::json_payload;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordOut {
    namespace: Option<ByteStr>,
    kind: &'static str,
    id: ByteStr,
    status: &'static str,
    sources: Vec<&'static str>,
    pages: Vec<u64>,
    differs: Vec<ByteStr>,
    record: Value,
}

/// The record's fields; a container's `spec` decoded as `containers` shows
/// it (the JSON payload of its Any).
fn record_value(c: &Carved<'_>) -> Value {
    let mut v = record_object(&c.entries);
    if c.kind == RecordKind::Container {
        let spec = c
            .entries
            .iter()
            .find(|(p, _)| p.as_slice() == [b"spec".as_slice()])
            .and_then(|(_, v)| *v)
            .and_then(|raw| encoding::any(raw).ok())
            .and_then(|any| json_payload(any.value));
        if let (Some(spec), Some(m)) = (spec, v.as_object_mut()) {
            m.insert("spec".into(), spec);
        }
    }
    v
}

fn record_out(c: &Carved<'_>) -> RecordOut {
    RecordOut {
        namespace: c.id.namespace.clone().map(ByteStr),
        kind: c.kind.name(),
        id: ByteStr(c.id.id.clone()),
        status: c.status.name(),
        sources: c.sources.iter().map(|s| s.name()).collect(),
        pages: c.pages.clone(),
        differs: c.differs.iter().map(|d| ByteStr(d.to_vec())).collect(),
        record: record_value(c),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    pages_read: u64,
    leaves: u64,
    placed: u64,
    fragments: u64,
    deleted: u64,
    older_versions: u64,
}

fn summary(c: &Carve<'_>) -> Summary {
    let count = |s| c.records.iter().filter(|r| r.status == s).count() as u64;
    Summary {
        pages_read: c.scan.pages_read,
        leaves: c.scan.leaves,
        placed: c.placed,
        fragments: c.fragments,
        deleted: count(Status::Deleted),
        older_versions: count(Status::OlderVersion),
    }
}

#[derive(Debug, Serialize)]
struct Body {
    summary: Summary,
    records: Vec<RecordOut>,
}

/// The JSON report (`--format json` or `jsonl`, as `layout` says).
pub fn write_json(
    out: &mut dyn Write,
    layout: Layout,
    input: InputInfo,
    c: &Carve<'_>,
    records: &[&Carved<'_>],
) -> io::Result<()> {
    let body = Body {
        summary: summary(c),
        records: records.iter().map(|r| record_out(r)).collect(),
    };
    super::write_document(out, &Envelope::new("carve", input, body), layout)
}

/// The report for people.
pub fn write_table(out: &mut dyn Write, c: &Carve<'_>, records: &[&Carved<'_>]) -> io::Result<()> {
    let s = summary(c);
    writeln!(
        out,
        "{} deleted record(s), {} older version(s); {} page(s) no tree reaches read, {} well-formed leaves, {} placed, {} fragment(s) not placed",
        s.deleted, s.older_versions, s.pages_read, s.leaves, s.placed, s.fragments
    )?;
    if records.is_empty() {
        return Ok(());
    }
    let mut rows = vec![["STATUS", "NAMESPACE", "KIND", "ID", "FROM"]
        .map(String::from)
        .to_vec()];
    for r in records {
        let mut from: Vec<String> = r.sources.iter().map(|s| s.name().to_string()).collect();
        if !r.pages.is_empty() {
            let pages: Vec<String> = r.pages.iter().map(u64::to_string).collect();
            from.push(format!("page {}", pages.join(",")));
        }
        rows.push(vec![
            r.status.name().to_string(),
            r.id.namespace
                .as_ref()
                .map_or("-".into(), |n| table_cell(n)),
            r.kind.name().to_string(),
            table_cell(&r.id.id),
            from.join(" "),
        ]);
    }
    write_columns(out, &rows)
}
