//! `ctrdb check`.

use std::io::Write;

use serde::Serialize;

use super::{AppError, ExitStatus, Input};
use crate::bolt::check::{self, CheckReport, Severity};
use crate::bolt::Db;
use crate::cli::{CheckArgs, Format};
use crate::containerd::MetaDb;
use crate::report::{hash_alongside, InputInfo, Tool, REPORT_SCHEMA_VERSION};

/// One finding on the wire.
#[derive(Debug, Serialize)]
pub struct FindingJson {
    /// "error" or "warning".
    pub severity: &'static str,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// Page id.
    pub page: Option<u64>,
    /// Absolute byte offset.
    pub offset: Option<u64>,
    /// Bucket path.
    pub path: Option<String>,
    /// Description.
    pub message: String,
}

/// Summary on the wire.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryJson {
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
    schema: SchemaSummaryJson,
}

/// The `schema` part of the summary: the containerd-level decode.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaSummaryJson {
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
#[serde(rename_all = "camelCase")]
struct CheckJson {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
    summary: SummaryJson,
    findings: Vec<FindingJson>,
}

pub(super) fn run(
    a: &CheckArgs,
    out: &mut dyn Write,
    _err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let input = Input::from_args(&a.input);
    let file = input.open()?;
    let db = file.db()?;
    let (sha256, (report, schema)) =
        hash_alongside(a.input.hash && a.format != Format::Table, db.data(), || {
            // One after the other, each parallel inside: on top of each other their
            // heaps would add up, and running them together gains no wall time.
            let report = check::check(&db);
            (report, MetaDb::decode(&db))
        });
    let summary = summary(&db, &report, &schema);
    match a.format {
        Format::Table => print_table(out, &input, &summary, &report, &schema)?,
        Format::Json | Format::Jsonl => {
            let doc = CheckJson {
                schema_version: REPORT_SCHEMA_VERSION,
                tool: Tool::current(),
                command: "check",
                input: InputInfo::with_sha256(
                    &input.path,
                    db.data().len() as u64,
                    sha256,
                    Some(db.meta().txid),
                ),
                summary,
                findings: findings_json(&report)
                    .into_iter()
                    .chain(schema_findings_json(&schema))
                    .collect(),
            };
            if a.format == Format::Json {
                serde_json::to_writer_pretty(&mut *out, &doc)?;
            } else {
                serde_json::to_writer(&mut *out, &doc)?;
            }
            writeln!(out)?;
        }
    }
    let clean = report.findings.is_empty() && report.omitted == 0 && schema.findings.is_empty();
    Ok(if clean {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    })
}

fn summary(db: &Db<'_>, r: &CheckReport, schema: &MetaDb) -> SummaryJson {
    let m = db.meta();
    SummaryJson {
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
        schema: SchemaSummaryJson {
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

/// The schema findings in wire form (after the structural ones).
pub fn schema_findings_json(m: &MetaDb) -> Vec<FindingJson> {
    m.findings
        .iter()
        .map(|f| FindingJson {
            severity: f.severity().name(),
            code: f.code.code(),
            page: f.page,
            offset: f.offset,
            path: Some(f.path.to_string()),
            message: f.message.clone(),
        })
        .collect()
}

/// The findings in wire form.
pub fn findings_json(r: &CheckReport) -> Vec<FindingJson> {
    r.findings
        .iter()
        .map(|f| FindingJson {
            severity: f.severity.name(),
            code: f.corruption.kind.code(),
            page: f.corruption.page,
            offset: f.corruption.offset,
            path: f.corruption.path.as_ref().map(|p| p.to_string()),
            message: f.corruption.message.clone(),
        })
        .collect()
}

fn print_table(
    out: &mut dyn Write,
    input: &Input,
    s: &SummaryJson,
    r: &CheckReport,
    schema: &MetaDb,
) -> std::io::Result<()> {
    writeln!(out, "{}", input.path.display())?;
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
        write!(out, "{sev}[{}]: {}", c.kind.code(), c.message)?;
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
    let v = s.schema.version.map_or("-".to_string(), |v| v.to_string());
    writeln!(
        out,
        "  schema: v1/version {v} ({}), {} namespaces",
        s.schema.family, s.schema.namespaces
    )?;
    for f in &schema.findings {
        write!(
            out,
            "{}[{}]: {} (bucket {}",
            f.severity().name(),
            f.code.code(),
            f.message,
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
