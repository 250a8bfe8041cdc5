//! The report of `inspect`: file geometry, schema version and family,
//! per-namespace record counts.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::table::{cell, write_columns};
use super::{Envelope, InputInfo, Layout};
use crate::bytes::Bytes;
use crate::containerd::DbKind;

/// Record counts of one namespace.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceCounts<'a> {
    /// The namespace.
    pub name: Bytes<'a>,
    /// Image records.
    pub images: usize,
    /// Content blob records.
    pub blobs: usize,
    /// Ingest records.
    pub ingests: usize,
    /// Container records.
    pub containers: usize,
    /// Snapshot records over all snapshotters.
    pub snapshots: usize,
    /// Lease records.
    pub leases: usize,
    /// Sandbox records.
    pub sandboxes: usize,
    /// Target digests with more than one image name.
    pub digests_with_multiple_names: usize,
}

/// What `inspect` reports (field docs: `docs/report.md`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[allow(missing_docs)]
pub struct Inspection<'r, 'a> {
    pub file_size: u64,
    pub page_size: usize,
    pub file_pages: u64,
    pub high_water_mark: u64,
    pub pages_in_use: u64,
    pub pages_free: u64,
    pub pages_unused: u64,
    pub reclaimable_bytes: u64,
    pub txid: u64,
    pub meta_used: usize,
    pub freelist: Option<u64>,
    #[serde(serialize_with = "kind_name")]
    pub database: DbKind,
    pub containerd_schema_version: Option<i64>,
    pub containerd_family: &'static str,
    pub top_level_buckets: &'r [Bytes<'a>],
    pub namespaces: Vec<NamespaceCounts<'a>>,
    pub digests_with_multiple_names: usize,
    pub schema_findings: usize,
}

fn kind_name<S: serde::Serializer>(k: &DbKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.name())
}

/// `--format json` or `jsonl`, as `layout` says.
pub fn write_json(
    out: &mut dyn Write,
    input: InputInfo,
    d: &Inspection<'_, '_>,
    layout: Layout,
) -> io::Result<()> {
    let doc = Envelope::new("inspect", input, d);
    super::write_document(out, &doc, layout)
}

/// The report for people.
pub fn write_table(out: &mut dyn Write, path: &Path, d: &Inspection<'_, '_>) -> io::Result<()> {
    writeln!(
        out,
        "file:          {} ({} bytes)",
        path.display(),
        d.file_size
    )?;
    writeln!(out, "page size:     {}", d.page_size)?;
    writeln!(
        out,
        "pages:         {} in use of {} in the file (high-water mark {}); {} free, {} unused; {} bytes reclaimable by compaction",
        d.pages_in_use, d.file_pages, d.high_water_mark, d.pages_free, d.pages_unused, d.reclaimable_bytes
    )?;
    writeln!(out, "txid:          {} (meta {})", d.txid, d.meta_used)?;
    let freelist = match d.freelist {
        Some(_) => "persisted (NoFreelistSync=false)",
        None => "not persisted (NoFreelistSync)",
    };
    writeln!(out, "freelist:      {freelist}")?;
    let top_level = d
        .top_level_buckets
        .iter()
        .map(|b| cell(b.0))
        .collect::<Vec<_>>()
        .join(", ");
    if d.database == DbKind::Snapshotter {
        writeln!(out, "database:      {}", super::snapshotter_note(path))?;
        return writeln!(out, "top level:     {top_level}");
    }
    let v = d
        .containerd_schema_version
        .map_or("-".to_string(), |v| v.to_string());
    writeln!(
        out,
        "schema:        v1/version {v} → {}",
        d.containerd_family
    )?;
    writeln!(out, "top level:     {top_level}")?;
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
