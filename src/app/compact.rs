//! `ctrdb compact`: a fresh, gap-free copy of the database, verified before it is put
//! in place.

use std::io::Write;

use serde::Serialize;

use super::{AppError, ExitStatus, Input};
use crate::fsio::atomic::{self, OutputError, OutputOptions};
use crate::bolt::writer::{
    self, BoltWriter, CompareSummary, Filtered, FreelistMode, WriteSummary, WriterOptions,
};
use crate::bolt::{Db, Walk, WalkEvent};
use crate::cli::{CompactArgs, ReportFormat};
use crate::report::table::bytes_and_human_size;
use crate::report::{sha256_hex, InputInfo, Tool, REPORT_SCHEMA_VERSION};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputJson {
    path: String,
    size: u64,
    sha256: Option<String>,
    txid: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CompactJson {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
    output: OutputJson,
    size_before: u64,
    size_after: u64,
    reclaimed: i64,
    page_size: usize,
    pages_before: u64,
    pages_after: u64,
    freelist_mode: FreelistMode,
    buckets: u64,
    inline_buckets: u64,
    keys: u64,
    verified: bool,
}

pub(super) fn run(
    a: &CompactArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let input = Input::from_args(&a.input);
    let file = input.open()?;
    let db = file.db()?;
    file.advise_sequential();
    let meta = db.meta();
    let wopts = WriterOptions::copy_of(&db).map_err(crate::bolt::Error::from)?;
    let json = a.format == ReportFormat::Json;
    let hash = json && a.input.hash;
    let (summary, (compared, sha), written) = atomic::write_verified(
        &input.path,
        &a.output,
        OutputOptions {
            overwrite: a.force,
            replace_source: false,
        },
        |f, path| {
            write_copy(&db, wopts, f).map_err(|source| OutputError::Write {
                path: path.to_path_buf(),
                source,
            })
        },
        |_, bytes| verify_and_hash(&db, bytes, writer::keep_all, hash),
    )?;
    for p in &written.stale_removed {
        writeln!(
            err,
            "ctrdb: note: removed '{}', left behind by an earlier ctrdb run that was killed",
            p.display()
        )?;
    }
    let size_before = db.data().len() as u64;
    if json {
        let doc = CompactJson {
            schema_version: REPORT_SCHEMA_VERSION,
            tool: Tool::current(),
            command: "compact",
            input: InputInfo::new(&input.path, db.data(), hash, Some(meta.txid)),
            output: OutputJson {
                path: written.path.display().to_string(),
                size: written.size,
                sha256: sha,
                txid: summary.txid,
            },
            size_before,
            size_after: written.size,
            reclaimed: size_before as i64 - written.size as i64,
            page_size: db.page_size(),
            pages_before: meta.pgid,
            pages_after: summary.pages,
            freelist_mode: wopts.freelist,
            buckets: compared.buckets,
            inline_buckets: summary.inline_buckets,
            keys: compared.keys,
            verified: true,
        };
        serde_json::to_writer_pretty(&mut *out, &doc)?;
        writeln!(out)?;
    } else {
        let reclaimed = size_before as i64 - written.size as i64;
        let pct = if size_before > 0 {
            reclaimed as f64 * 100.0 / size_before as f64
        } else {
            0.0
        };
        writeln!(
            out,
            "compacted {} -> {}",
            input.path.display(),
            written.path.display()
        )?;
        writeln!(
            out,
            "  size before: {} ({} pages)",
            bytes_and_human_size(size_before as i64),
            meta.pgid
        )?;
        writeln!(
            out,
            "  size after:  {} ({} pages)",
            bytes_and_human_size(written.size as i64),
            summary.pages
        )?;
        writeln!(
            out,
            "  reclaimed:   {} ({pct:.1} %)",
            bytes_and_human_size(reclaimed)
        )?;
        let fl = match wopts.freelist {
            FreelistMode::Page => "empty freelist page (as the source: containerd 1.6 style)",
            FreelistMode::None => "none persisted (as the source: NoFreelistSync, containerd 1.7+)",
        };
        writeln!(out, "  page size {}, freelist: {fl}", db.page_size())?;
        writeln!(
            out,
            "  {} buckets ({} inline), {} keys; verified identical to the source",
            compared.buckets, summary.inline_buckets, compared.keys
        )?;
    }
    Ok(ExitStatus::Clean)
}

/// Writes the whole tree of `db` into `f` as a new file.
pub(crate) fn write_copy(
    db: &Db<'_>,
    opts: WriterOptions,
    f: &mut std::fs::File,
) -> Result<WriteSummary, writer::WriteError> {
    write_filtered(db, opts, f, writer::keep_all, &mut |_| {})
}

/// Writes the tree of `db` into `f`, leaving out what `keep` rejects; `progress`
/// is told the number of buckets and keys written every 65 536 of them. The walk and
/// the page packing run on this thread, the `write` calls on a second one
/// ([`atomic::write_pipelined`]).
pub(crate) fn write_filtered<F>(
    db: &Db<'_>,
    opts: WriterOptions,
    f: &mut std::fs::File,
    keep: F,
    progress: &mut dyn FnMut(u64),
) -> Result<WriteSummary, writer::WriteError>
where
    F: FnMut(&[&[u8]], &[u8], writer::ItemKind) -> bool,
{
    atomic::write_pipelined(f, |sink| {
        let mut w = BoltWriter::new(sink, opts)?;
        let mut src = Filtered::new(Walk::new(db)?, keep);
        let mut n: u64 = 0;
        while let Some(ev) = src.next_event() {
            match ev? {
                WalkEvent::BucketStart { key, sequence, .. } => w.begin_bucket(key, sequence)?,
                WalkEvent::Value { key, value } => w.put(key, value)?,
                WalkEvent::BucketEnd => w.end_bucket()?,
            }
            n += 1;
            if n.is_multiple_of(65_536) {
                progress(n);
            }
        }
        let (_, summary) = w.finish()?;
        Ok(summary)
    })
}

/// [`verify_filtered`], and the copy's SHA-256 if `hash` (computed on a second thread
/// alongside the verification).
pub(crate) fn verify_and_hash<F>(
    src: &Db<'_>,
    copy: &[u8],
    keep: F,
    hash: bool,
) -> Result<(CompareSummary, Option<String>), OutputError>
where
    F: FnMut(&[&[u8]], &[u8], writer::ItemKind) -> bool,
{
    if !hash {
        return Ok((verify_filtered(src, copy, keep)?, None));
    }
    std::thread::scope(|s| {
        let sha = s.spawn(|| sha256_hex(copy));
        let compared = verify_filtered(src, copy, keep);
        let sha = sha
            .join()
            .map_err(|_| OutputError::VerifyOther("the hashing thread panicked".into()))?;
        Ok((compared?, Some(sha)))
    })
}

/// Re-reads a copy written through a [`Filtered`] walk with `keep`: its length matches
/// its high-water mark, the structural check finds nothing, and a walk reproduces the
/// source with the same items left out, exactly. The structural check of
/// the copy (itself parallel) and the lockstep comparison with the source run at the
/// same time; both must pass.
pub(crate) fn verify_filtered<F>(
    src: &Db<'_>,
    copy: &[u8],
    keep: F,
) -> Result<CompareSummary, OutputError>
where
    F: FnMut(&[&[u8]], &[u8], writer::ItemKind) -> bool,
{
    let cdb = Db::parse(copy).map_err(|e| OutputError::VerifyOther(e.to_string()))?;
    let m = cdb.meta();
    let expect = m.pgid.checked_mul(cdb.page_size() as u64);
    if expect != Some(copy.len() as u64) {
        return Err(OutputError::VerifyOther(format!(
            "the file is {} bytes but its high-water mark {} says {expect:?}",
            copy.len(),
            m.pgid
        )));
    }
    let (report, compared) = std::thread::scope(|s| {
        let report = s.spawn(|| crate::bolt::check::check(&cdb));
        let compared = compare_filtered(src, &cdb, keep);
        (report.join(), compared)
    });
    let report =
        report.map_err(|_| OutputError::VerifyOther("the structural check panicked".into()))?;
    if let Some(f) = report.findings.first() {
        return Err(OutputError::VerifyOther(format!(
            "ctrdb check finds {} problem(s) in the new file, first: {}",
            report.findings.len() + report.omitted,
            f.corruption
        )));
    }
    compared
}

/// The lockstep comparison of the filtered source with the copy.
fn compare_filtered<F>(src: &Db<'_>, cdb: &Db<'_>, keep: F) -> Result<CompareSummary, OutputError>
where
    F: FnMut(&[&[u8]], &[u8], writer::ItemKind) -> bool,
{
    let walk = Walk::new(src).map_err(|e| OutputError::VerifyOther(format!("the source: {e}")))?;
    let mut a = Filtered::new(walk, keep);
    let mut b = Walk::new(cdb).map_err(|e| OutputError::VerifyOther(e.to_string()))?;
    Ok(writer::compare(&mut a, &mut b)?)
}
