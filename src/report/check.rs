//! The report of `check`: the structural findings of the bbolt file and the
//! containerd schema findings, each with page, offset and bucket path.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::{Envelope, Finding, InputInfo, Layout};
use crate::bolt::check::{CheckReport, Severity};
use crate::bolt::Db;
use crate::bytes::escape_controls;
use crate::containerd::{DbKind, MetaDb};

/// Summary on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    file_size: u64,
    page_size: usize,
    meta_used: usize,
    meta_reason: &'static str,
    txid: u64,
    high_water_mark: u64,
    freelist: Option<u64>,
    pages_reachable: u64,
    pages_free: u64,
    pages_unused: u64,
    pages_beyond_high_water_mark: u64,
    buckets: u64,
    keys: u64,
    errors: usize,
    warnings: usize,
    findings_omitted: usize,
    schema: SchemaSummary,
}

/// The `schema` part of the summary: the containerd-level decode.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaSummary {
    /// `metadata` (meta.db) or `snapshotter` (a snapshotter's metadata.db).
    database: &'static str,
    /// `v1/version`, if decodable.
    version: Option<i64>,
    /// The containerd family it implies.
    family: &'static str,
    /// Number of namespaces decoded.
    namespaces: usize,
    /// Schema findings of severity error.
    errors: usize,
    /// Schema findings of severity warning.
    warnings: usize,
}

#[derive(Debug, Serialize)]
struct Check<'r> {
    summary: &'r Summary,
    findings: Vec<Finding>,
}

/// The summary of a structural check and schema decode of `db`.
pub fn summary(db: &Db<'_>, r: &CheckReport, schema: &MetaDb) -> Summary {
    let m = db.meta();
    Summary {
        file_size: db.data().len() as u64,
        page_size: db.page_size(),
        meta_used: db.selection().used,
        meta_reason: db.selection().reason.describe(),
        txid: m.txid,
        high_water_mark: m.pgid,
        freelist: m.has_freelist().then_some(m.freelist),
        pages_reachable: r.pages.reachable,
        pages_free: r.pages.free,
        pages_unused: r.pages.unused,
        pages_beyond_high_water_mark: r.pages.beyond_hwm,
        buckets: r.buckets,
        keys: r.keys,
        errors: r.errors(),
        warnings: r.warnings(),
        findings_omitted: r.omitted,
        schema: SchemaSummary {
            database: schema.kind.name(),
            version: schema.schema_version,
            family: schema.family(m.has_freelist()),
            namespaces: schema.namespaces.len(),
            errors: schema
                .findings
                .iter()
                .filter(|f| f.severity() == Severity::Error)
                .count(),
            warnings: schema
                .findings
                .iter()
                .filter(|f| f.severity() == Severity::Warning)
                .count(),
        },
    }
}

/// `--format json` or `jsonl`, as `layout` says: the summary, then every
/// structural finding, then every schema finding.
pub fn write_json(
    out: &mut dyn Write,
    input: InputInfo,
    s: &Summary,
    r: &CheckReport,
    schema: &MetaDb,
    layout: Layout,
) -> io::Result<()> {
    let body = Check {
        summary: s,
        findings: r
            .findings
            .iter()
            .map(Finding::structure)
            .chain(schema.findings.iter().map(Finding::schema))
            .collect(),
    };
    let doc = Envelope::new("check", input, body);
    super::write_document(out, &doc, layout)
}

/// The report for people.
pub fn write_table(
    out: &mut dyn Write,
    path: &Path,
    s: &Summary,
    r: &CheckReport,
    schema: &MetaDb,
) -> io::Result<()> {
    writeln!(out, "{}", path.display())?;
    writeln!(
        out,
        "  {} bytes, page size {}, meta {} ({}), txid {}, high-water mark {}",
        s.file_size, s.page_size, s.meta_used, s.meta_reason, s.txid, s.high_water_mark
    )?;
    match s.freelist {
        Some(p) => writeln!(out, "  freelist on page {p}")?,
        None => writeln!(
            out,
            "  no persisted freelist (NoFreelistSync, containerd 1.7+)"
        )?,
    }
    writeln!(
        out,
        "  pages: {} reachable, {} free, {} unused below the high-water mark, {} beyond it",
        s.pages_reachable, s.pages_free, s.pages_unused, s.pages_beyond_high_water_mark
    )?;
    writeln!(out, "  {} buckets, {} keys", s.buckets, s.keys)?;
    for f in &r.findings {
        let c = &f.corruption;
        let sev = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            out,
            "{sev}[{}]: {}",
            c.kind.code(),
            escape_controls(&c.message)
        )?;
        let mut loc = Vec::new();
        if let Some(p) = c.page {
            loc.push(format!("page {p}"));
        }
        if let Some(o) = c.offset {
            loc.push(format!("offset {o:#x}"));
        }
        if let Some(p) = &c.path {
            loc.push(format!("bucket {p}"));
        }
        if !loc.is_empty() {
            write!(out, " ({})", loc.join(", "))?;
        }
        writeln!(out)?;
    }
    if r.omitted > 0 {
        writeln!(out, "... {} more findings omitted", r.omitted)?;
    }
    if schema.kind == DbKind::Snapshotter {
        writeln!(out, "  schema: {}", super::snapshotter_note(path))?;
    } else {
        let v = s.schema.version.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            out,
            "  schema: v1/version {v} ({}), {} namespaces",
            s.schema.family, s.schema.namespaces
        )?;
    }
    for f in &schema.findings {
        write!(
            out,
            "{}[{}]: {} (bucket {}",
            f.severity().name(),
            f.code.code(),
            escape_controls(&f.message),
            f.path
        )?;
        if let Some(p) = f.page {
            write!(out, ", page {p}")?;
        }
        if let Some(o) = f.offset {
            write!(out, ", offset {o:#x}")?;
        }
        writeln!(out, ")")?;
    }
    if r.findings.is_empty() && schema.findings.is_empty() {
        writeln!(out, "OK: no problems found")?;
    } else {
        writeln!(
            out,
            "{} errors, {} warnings (structure); {} errors, {} warnings (schema)",
            s.errors, s.warnings, s.schema.errors, s.schema.warnings
        )?;
    }
    Ok(())
}
