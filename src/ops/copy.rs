//! Verified copies of a database: the tree written afresh (compact), or with
//! subtrees left out by a filter (dedup), through [`atomic::write_verified`] —
//! and checked, before the copy is put in place, by re-reading it: its
//! structural check finds nothing, and a walk of it equals the filtered walk of
//! the source.

use std::path::Path;

use crate::bolt::writer::{
    self, BoltWriter, CompareSummary, Filtered, WriteSummary, WriterOptions,
};
use crate::bolt::{Db, Walk, WalkEvent};
use crate::bytes::sha256_hex;
use crate::fsio::atomic::{self, OutputError, OutputOptions, Written};

/// How often (in buckets and keys written) the writer reports its progress.
const PROGRESS_EVERY: u64 = 65_536;

/// A copy that was written, verified and put in place.
#[derive(Debug)]
pub struct Copied {
    /// The file at the target.
    pub written: Written,
    /// What the writer wrote.
    pub summary: WriteSummary,
    /// What the verification compared.
    pub compared: CompareSummary,
    /// The copy's SHA-256, when asked for.
    pub sha256: Option<String>,
}

/// `bbolt compact` done safely: the whole tree of `db` (read from `source`)
/// written afresh to `target` with the source's sequences and freelist mode,
/// verified, then renamed into place (`overwrite` allows replacing a file).
pub fn compact(
    db: &Db<'_>,
    source: &Path,
    target: &Path,
    overwrite: bool,
    hash: bool,
) -> Result<Copied, super::Error> {
    let wopts = WriterOptions::copy_of(db)?;
    let (summary, (compared, sha256), written) = atomic::write_verified(
        source,
        target,
        OutputOptions {
            overwrite,
            replace_source: false,
        },
        |f, path| {
            write_copy(db, wopts, f).map_err(|source| OutputError::Write {
                path: path.to_path_buf(),
                source,
            })
        },
        |_, bytes| verify_and_hash(db, bytes, writer::keep_all, hash),
    )?;
    Ok(Copied {
        written,
        summary,
        compared,
        sha256,
    })
}

/// Writes the whole tree of `db` into `f` as a new file.
pub fn write_copy(
    db: &Db<'_>,
    opts: WriterOptions,
    f: &mut std::fs::File,
) -> Result<WriteSummary, writer::WriteError> {
    write_filtered(db, opts, f, writer::keep_all, &mut |_| {})
}

/// Writes the tree of `db` into `f`, leaving out what `keep` rejects; `progress`
/// is told the number of buckets and keys written every [`PROGRESS_EVERY`] of them. The walk and
/// the page packing run on this thread, the `write` calls on a second one
/// ([`atomic::write_pipelined`]).
pub fn write_filtered<F>(
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
            if n.is_multiple_of(PROGRESS_EVERY) {
                progress(n);
            }
        }
        let (_, summary) = w.finish()?;
        Ok(summary)
    })
}

/// [`verify_filtered`], and the copy's SHA-256 if `hash` (computed on a second thread
/// alongside the verification).
pub fn verify_and_hash<F>(
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
pub fn verify_filtered<F>(src: &Db<'_>, copy: &[u8], keep: F) -> Result<CompareSummary, OutputError>
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
