//! `ctrdb inspect`: file geometry, schema version, per-namespace counts.

use std::io::Write;

use rayon::prelude::*;
use serde::Serialize;

use crate::report::table::{cell, write_columns};
use super::{AppError, ExitStatus, Input};
use crate::analysis::refs;
use crate::bolt::check;
use crate::cli::{Format, InspectArgs};
use crate::containerd::MetaDb;
use crate::report::{hash_alongside, Bytes, InputInfo, Tool, REPORT_SCHEMA_VERSION};

/// Per-namespace counts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceCounts<'a> {
    name: Bytes<'a>,
    images: usize,
    blobs: usize,
    ingests: usize,
    containers: usize,
    snapshots: usize,
    leases: usize,
    sandboxes: usize,
    digests_with_multiple_names: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InspectDoc<'a> {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
    file_size: u64,
    page_size: usize,
    file_pages: u64,
    high_water_mark: u64,
    pages_in_use: u64,
    pages_free: u64,
    pages_unused: u64,
    reclaimable_bytes: u64,
    txid: u64,
    meta_used: usize,
    freelist: &'static str,
    containerd_schema_version: Option<i64>,
    containerd_family: &'static str,
    top_level_buckets: &'a [Bytes<'a>],
    namespaces: Vec<NamespaceCounts<'a>>,
    digests_with_multiple_names: usize,
    schema_findings: usize,
}

pub(super) fn run(
    a: &InspectArgs,
    out: &mut dyn Write,
    _err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let input = Input::from_args(&a.input);
    let file = input.open()?;
    let db = file.db()?;
    let m = db.meta();
    let (sha256, (pages, (meta, multi))) =
        hash_alongside(a.input.hash && a.format != Format::Table, db.data(), || {
            // One after the other, each parallel inside (see `check`).
            let pages = check::check(&db).pages;
            let meta = MetaDb::decode(&db);
            let multi: Vec<usize> = meta
                .namespaces
                .par_iter()
                .map(refs::multi_name_digests)
                .collect();
            (pages, (meta, multi))
        });
    let ps = db.page_size() as u64;
    let file_pages = db.data().len() as u64 / ps.max(1);
    let namespaces = meta
        .namespaces
        .iter()
        .zip(&multi)
        .map(|(n, &multi)| NamespaceCounts {
            name: n.name,
            images: n.images.len(),
            blobs: n.blobs.len(),
            ingests: n.ingests.len(),
            containers: n.containers.len(),
            snapshots: n.snapshot_count(),
            leases: n.leases.len(),
            sandboxes: n.sandboxes.len(),
            digests_with_multiple_names: multi,
        })
        .collect();
    let doc = InspectDoc {
        schema_version: REPORT_SCHEMA_VERSION,
        tool: Tool::current(),
        command: "inspect",
        input: InputInfo::with_sha256(&input.path, db.data().len() as u64, sha256, Some(m.txid)),
        file_size: db.data().len() as u64,
        page_size: db.page_size(),
        file_pages,
        high_water_mark: m.pgid,
        pages_in_use: pages.reachable,
        pages_free: pages.free,
        pages_unused: pages.unused,
        reclaimable_bytes: file_pages
            .saturating_sub(pages.reachable)
            .saturating_mul(ps),
        txid: m.txid,
        meta_used: db.selection().used,
        freelist: if m.has_freelist() {
            "persisted (NoFreelistSync=false)"
        } else {
            "not persisted (NoFreelistSync)"
        },
        containerd_schema_version: meta.schema_version,
        containerd_family: meta.family(m.has_freelist()),
        top_level_buckets: &meta.top_level,
        namespaces,
        digests_with_multiple_names: multi.iter().sum(),
        schema_findings: meta.findings.len(),
    };
    match a.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &doc)?;
            writeln!(out)?;
        }
        Format::Jsonl => {
            serde_json::to_writer(&mut *out, &doc)?;
            writeln!(out)?;
        }
        Format::Table => print_table(out, &input, &doc)?,
    }
    Ok(ExitStatus::Clean)
}

fn print_table(out: &mut dyn Write, input: &Input, d: &InspectDoc) -> std::io::Result<()> {
    writeln!(
        out,
        "file:          {} ({} bytes)",
        input.path.display(),
        d.file_size
    )?;
    writeln!(out, "page size:     {}", d.page_size)?;
    writeln!(
        out,
        "pages:         {} in use of {} in the file (high-water mark {}); {} free, {} unused; {} bytes reclaimable by compaction",
        d.pages_in_use, d.file_pages, d.high_water_mark, d.pages_free, d.pages_unused, d.reclaimable_bytes
    )?;
    writeln!(out, "txid:          {} (meta {})", d.txid, d.meta_used)?;
    writeln!(out, "freelist:      {}", d.freelist)?;
    let v = d
        .containerd_schema_version
        .map_or("-".to_string(), |v| v.to_string());
    writeln!(
        out,
        "schema:        v1/version {v} → {}",
        d.containerd_family
    )?;
    writeln!(
        out,
        "top level:     {}",
        d.top_level_buckets
            .iter()
            .map(|b| cell(b.0))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    writeln!(
        out,
        "multi-name digests: {}    schema findings: {} (see `ctrdb check`)",
        d.digests_with_multiple_names, d.schema_findings
    )?;
    writeln!(out)?;
    let mut rows = vec![[
        "NAMESPACE",
        "IMAGES",
        "BLOBS",
        "INGESTS",
        "CONTAINERS",
        "SNAPSHOTS",
        "LEASES",
        "SANDBOXES",
        "MULTI-NAME DIGESTS",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for n in &d.namespaces {
        rows.push(vec![
            cell(n.name.0),
            n.images.to_string(),
            n.blobs.to_string(),
            n.ingests.to_string(),
            n.containers.to_string(),
            n.snapshots.to_string(),
            n.leases.to_string(),
            n.sandboxes.to_string(),
            n.digests_with_multiple_names.to_string(),
        ]);
    }
    write_columns(out, &rows)
}
