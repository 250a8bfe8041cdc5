//! The report of `compact`: the written copy against the source.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::table::bytes_and_human_size;
use super::wire::PathBytes;
use super::{Envelope, InputInfo, Layout};
use crate::bolt::writer::FreelistMode;
use crate::bolt::Db;
use crate::ops::copy::Copied;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Output<'r> {
    path: PathBytes,
    size: u64,
    sha256: &'r Option<String>,
    txid: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Compacted<'r> {
    output: Output<'r>,
    size_before: u64,
    size_after: u64,
    reclaimed: i64,
    page_size: usize,
    pages_before: u64,
    pages_after: u64,
    freelist_mode: &'static str,
    buckets: u64,
    inline_buckets: u64,
    keys: u64,
    verified: bool,
}

/// The freelist mode's wire name.
fn freelist_name(m: FreelistMode) -> &'static str {
    match m {
        FreelistMode::Page => "page",
        FreelistMode::None => "none",
    }
}

/// The JSON report (`--format json` or `jsonl`, as `layout` says).
pub fn write_json(
    out: &mut dyn Write,
    layout: Layout,
    input: InputInfo,
    db: &Db<'_>,
    c: &Copied,
) -> io::Result<()> {
    let size_before = db.data().len() as u64;
    let body = Compacted {
        output: Output {
            path: PathBytes(c.written.path.clone()),
            size: c.written.size,
            sha256: &c.sha256,
            txid: c.summary.txid,
        },
        size_before,
        size_after: c.written.size,
        reclaimed: size_before as i64 - c.written.size as i64,
        page_size: db.page_size(),
        pages_before: db.meta().pgid,
        pages_after: c.summary.pages,
        freelist_mode: freelist_name(FreelistMode::of(&db.meta())),
        buckets: c.compared.buckets,
        inline_buckets: c.summary.inline_buckets,
        keys: c.compared.keys,
        verified: true,
    };
    super::write_document(out, &Envelope::new("compact", input, body), layout)
}

/// The report for people.
pub fn write_table(out: &mut dyn Write, source: &Path, db: &Db<'_>, c: &Copied) -> io::Result<()> {
    let size_before = db.data().len() as u64;
    let reclaimed = size_before as i64 - c.written.size as i64;
    let pct = if size_before > 0 {
        reclaimed as f64 * 100.0 / size_before as f64
    } else {
        0.0
    };
    writeln!(
        out,
        "compacted {} -> {}",
        source.display(),
        c.written.path.display()
    )?;
    writeln!(
        out,
        "  size before: {} ({} pages)",
        bytes_and_human_size(size_before as i64),
        db.meta().pgid
    )?;
    writeln!(
        out,
        "  size after:  {} ({} pages)",
        bytes_and_human_size(c.written.size as i64),
        c.summary.pages
    )?;
    writeln!(
        out,
        "  reclaimed:   {} ({pct:.1} %)",
        bytes_and_human_size(reclaimed)
    )?;
    let fl = match FreelistMode::of(&db.meta()) {
        FreelistMode::Page => "empty freelist page (as the source: containerd 1.6 style)",
        FreelistMode::None => "none persisted (as the source: NoFreelistSync, containerd 1.7+)",
    };
    writeln!(out, "  page size {}, freelist: {fl}", db.page_size())?;
    writeln!(
        out,
        "  {} buckets ({} inline), {} keys; verified identical to the source",
        c.compared.buckets, c.summary.inline_buckets, c.compared.keys
    )
}
