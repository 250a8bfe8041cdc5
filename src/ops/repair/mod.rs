//! `repair`: a damaged database written afresh with every record that can be
//! read whole (`docs/repair.md`).
//!
//! [`merge`] decides, record by record, what the output holds and where each
//! record comes from; this module runs it into the writer, makes the result
//! safe for containerd's GC (a lease holds what the repair made collectable,
//! [`protection`]), writes through the verified-write protocol and verifies
//! the written file by comparing it with a second run of the same merge.
//!
//! The output holds only keys and values of the input, plus the lease the
//! repair adds and, with a containerd root, the content records it re-creates
//! from verified blob files ([`content`]); its other records are whole records
//! of one of the input's trees or of orphan pages.

pub mod content;
pub mod merge;
pub mod orphans;
mod sinks;

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::analysis::gc::{collectable, Collectable, GcOptions, GcRules};
use crate::bolt::writer::{BoltWriter, WriteSummary, WriterOptions};
use crate::bolt::{Db, DbFile, MetaTree, Walk};
use crate::bytes::Bytes;
use crate::containerd::encoding::put_time_utc;
use crate::containerd::kind::{self, DbKind};
use crate::containerd::shape::Level;
use crate::containerd::MetaDb;
use crate::fsio::atomic::{self, Backup, OutputError, OutputOptions, Written};
use crate::time::Civil;

use content::ContentSink;
pub use content::{ContentRoot, ContentStoreOutcome, NotRecreated, Recreated, RECREATED_LABEL};
pub use merge::{Ledger, Lost, LostWhat, Recovered, Source, Trees, Why};
use orphans::Orphans;
pub use sinks::Additions;
use sinks::{Addition, CompareSink, Discard, Overlay, WriterSink};

/// The label the repair lease carries, with what it holds and why.
pub const LEASE_LABEL: &str = "ctrdb.repair/reason";
/// The repair lease's id prefix; the id ends with the UTC time of the repair.
pub const LEASE_PREFIX: &str = "ctrdb-repair-";

pub use super::Mode;

/// The kinds of records containerd's GC deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GcKind {
    /// `content/blob/<digest>`.
    Content,
    /// `snapshots/<snapshotter>/<key>` (the id is `<snapshotter>/<key>`).
    Snapshot,
    /// `images/<name>` (2.x).
    Image,
    /// `leases/<id>` (expired).
    Lease,
    /// `content/ingests/<ref>`.
    Ingest,
}

impl GcKind {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            GcKind::Content => "content",
            GcKind::Snapshot => "snapshot",
            GcKind::Image => "image",
            GcKind::Lease => "lease",
            GcKind::Ingest => "ingest",
        }
    }
}

/// One record containerd's GC would delete.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GcItem {
    /// Its namespace.
    pub namespace: Vec<u8>,
    /// Its kind.
    pub kind: GcKind,
    /// Its id (a snapshot's is `<snapshotter>/<key>`).
    pub id: Vec<u8>,
}

/// A set of records containerd's GC would delete.
pub type GcSet = BTreeSet<GcItem>;

/// The model's answer as owned records.
fn gc_set(c: &Collectable<'_>) -> GcSet {
    let item = |ns: &Bytes<'_>, kind, id: Vec<u8>| GcItem {
        namespace: ns.0.to_vec(),
        kind,
        id,
    };
    let mut out = GcSet::new();
    out.extend(
        c.content
            .iter()
            .map(|(n, d)| item(n, GcKind::Content, d.0.to_vec())),
    );
    out.extend(c.snapshots.iter().map(|(n, sn, k)| {
        let mut id = sn.0.to_vec();
        id.push(b'/');
        id.extend_from_slice(k.0);
        item(n, GcKind::Snapshot, id)
    }));
    out.extend(
        c.images
            .iter()
            .map(|(n, x)| item(n, GcKind::Image, x.0.to_vec())),
    );
    out.extend(
        c.leases
            .iter()
            .map(|(n, x)| item(n, GcKind::Lease, x.0.to_vec())),
    );
    out.extend(
        c.ingests
            .iter()
            .map(|(n, x)| item(n, GcKind::Ingest, x.0.to_vec())),
    );
    out
}

/// The lease a repair adds, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairLease {
    /// The lease id (`ctrdb-repair-<UTC time>`), the same in every namespace.
    pub id: String,
    /// What it holds: what the repaired file would let containerd's GC
    /// delete that the input may still need.
    pub holds: GcSet,
}

/// What containerd's first GC would delete, before and after.
#[derive(Debug, Clone)]
pub struct GcImpact {
    /// The rules applied.
    pub rules: GcRules,
    /// On the input, read as far as it can be (what the damage hides counts as
    /// unreferenced: containerd reading this tree would delete it).
    pub input: GcSet,
    /// On the repaired file, lease included.
    pub output: GcSet,
}

/// What the scan for orphan pages found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrphanSummary {
    /// Pages read: those no tree reaches, below the high-water mark.
    pub pages_read: u64,
    /// Of them, well-formed leaves.
    pub leaves: u64,
    /// Leaves placed in a range both trees lost.
    pub placed: u64,
    /// Leaves that overlap such a range but could not be placed in one
    /// unambiguously (never used).
    pub unplaced: u64,
}

/// The outcome of a repair.
#[derive(Debug)]
pub struct Outcome {
    /// Which database this is.
    pub kind: DbKind,
    /// The orphan-page scan, run when both trees lost a key range.
    pub orphans: Option<OrphanSummary>,
    /// What the content store of `--root` gave (metadata databases).
    pub content: Option<ContentStoreOutcome>,
    /// The trees read: (meta slot, txid), newest first.
    pub trees: Vec<(usize, u64)>,
    /// What the merge found and decided.
    pub ledger: Ledger,
    /// The lease added, if anything needed holding.
    pub lease: Option<RepairLease>,
    /// The GC model before and after (metadata databases).
    pub gc: Option<GcImpact>,
    /// What the writer wrote.
    pub summary: WriteSummary,
    /// The written file (`--output`, or the database itself), verified.
    pub written: Option<Written>,
    /// The backup made before an in-place swap.
    pub backup: Option<Backup>,
}

impl Outcome {
    /// Whether the input was whole: nothing to repair.
    pub fn clean(&self) -> bool {
        self.ledger.is_clean()
    }
}

/// Repairs `db`, the database open as `file`, as `mode` says; with
/// `content_root`, the content store of the containerd root it came from,
/// re-creates the content records it lost whose blob files verify.
pub fn run(
    file: &DbFile,
    db: &Db<'_>,
    mode: &Mode,
    content_root: Option<&ContentRoot>,
) -> Result<Outcome, super::Error> {
    let source = file.path();
    let trees = Trees::new(db.trees());
    let kind = identify(&trees);
    let level = Level::root(kind);
    let wopts = WriterOptions::copy_of(db)?;
    let now = SystemTime::now();
    let input_gc = (kind == DbKind::Metadata).then(|| {
        let meta = MetaDb::decode_records(db);
        let rules = GcRules::for_file(&meta, db.meta().has_freelist());
        (
            rules,
            gc_set(&collectable(&meta, &GcOptions { now, rules })),
        )
    });
    // Found from the losses of a merge without them: a first read, or
    // --output's first write.
    let orphans: OnceCell<Option<Orphans<'_>>> = OnceCell::new();
    let content_root = content_root.filter(|_| kind == DbKind::Metadata);
    // A read of both trees before anything is written: the dry run and the
    // in-place repair leave an undamaged file alone, and --root must know
    // which content records were lost before the first write.
    let first = (!matches!(mode, Mode::Output { .. }) || content_root.is_some()).then(|| {
        let mut content = ContentSink::default();
        let ledger = infallible(merge::merge(&trees, level, None, &mut content));
        let _ = orphans.set(Orphans::find(&trees, level, &ledger.lost));
        (ledger, content.view)
    });
    let mut base = Additions::default();
    let mut content = None;
    if let (Some(store), Some((ledger, view))) = (content_root, &first) {
        // With orphan records placed, the output records more content.
        let placed = orphans
            .get()
            .and_then(Option::as_ref)
            .filter(|o| o.placements.iter().any(Option::is_some));
        let again = placed.map(|o| {
            let mut content = ContentSink::default();
            let ledger = infallible(merge::merge(&trees, level, Some(o), &mut content));
            (ledger, content.view)
        });
        let (ledger, view) = again.as_ref().map_or((ledger, view), |(l, v)| (l, v));
        let (add, c) =
            content::recreate(ledger, view, store, &time_value(now)).map_err(|source| {
                super::Error::ContentStore {
                    root: store.root.clone(),
                    source,
                }
            })?;
        base = add;
        content = Some(c);
    }
    let job = Job {
        trees: &trees,
        level,
        orphans: &orphans,
        base,
        wopts,
        input_gc: input_gc.as_ref(),
        now,
    };
    let outcome = |built: Built, written, backup| Outcome {
        kind,
        content: content.clone(),
        orphans: orphans
            .get()
            .and_then(Option::as_ref)
            .map(|o| OrphanSummary {
                pages_read: o.scan.pages_read,
                leaves: o.scan.leaves,
                placed: o
                    .placements
                    .iter()
                    .flatten()
                    .map(|p| p.leaves.len() as u64)
                    .sum(),
                unplaced: o.unplaced,
            }),
        trees: trees.iter().map(|t| (t.slot, t.meta.txid)).collect(),
        ledger: built.ledger,
        lease: built.lease,
        gc: built.gc,
        summary: built.summary,
        written,
        backup,
    };
    let verified = |target: &Path, opts: OutputOptions| {
        atomic::write_verified(
            source,
            target,
            opts,
            |f, p| job.build(f, p),
            |b, bytes| verify(&trees, level, job.placed(), &b.additions, bytes),
        )
    };
    match mode {
        Mode::Output { target, overwrite } => {
            let opts = OutputOptions {
                overwrite: *overwrite,
                replace_source: false,
            };
            let (b, (), written) = verified(target, opts)?;
            Ok(outcome(b, Some(written), None))
        }
        Mode::DryRun | Mode::InPlace { .. } => {
            let Some((first, _)) = first else {
                unreachable!("the first read runs for every mode but --output")
            };
            // An undamaged file needs no write, and its GC is the input's.
            if first.is_clean() {
                let ledger = first;
                let gc = job.input_gc.map(|(rules, input)| GcImpact {
                    rules: *rules,
                    input: input.clone(),
                    output: input.clone(),
                });
                let summary = WriteSummary::default();
                let b = Built {
                    ledger,
                    additions: Additions::default(),
                    lease: None,
                    gc,
                    summary,
                };
                return Ok(outcome(b, None, None));
            }
            let Mode::InPlace { backup } = mode else {
                // The GC is modelled on the file the repair would write, so the
                // dry run writes it to an unnamed temporary file.
                let mut f = tempfile::tempfile().map_err(|e| OutputError::Io {
                    op: "create a temporary file (in $TMPDIR) for the dry run of",
                    path: source.to_path_buf(),
                    source: e,
                })?;
                let b = job.build(&mut f, source)?;
                return Ok(outcome(b, None, None));
            };
            let backup_path = backup
                .clone()
                .unwrap_or_else(|| super::default_backup_path(source));
            let backup = atomic::write_backup(source, file.bytes(), &backup_path)?;
            let opts = OutputOptions {
                overwrite: false,
                replace_source: true,
            };
            let swap = || {
                crate::fault::point("after-backup").map_err(|e| OutputError::Io {
                    op: "continue after the backup",
                    path: backup.path.clone(),
                    source: e,
                })?;
                verified(source, opts)
            };
            match swap() {
                Ok((b, (), written)) => Ok(outcome(b, Some(written), Some(backup))),
                Err(e) => Err(super::failed_swap(e.into(), file, backup)),
            }
        }
    }
}

fn infallible<T>(r: Result<T, std::convert::Infallible>) -> T {
    match r {
        Ok(t) => t,
        Err(never) => match never {},
    }
}

/// A Go binary time of `now` in UTC, as containerd writes `createdat`.
fn time_value(now: SystemTime) -> Vec<u8> {
    let since = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    put_time_utc(secs, since.subsec_nanos())
}

/// The database kind, from the first tree whose `v1` shows it past damage.
fn identify(trees: &[MetaTree<'_>]) -> DbKind {
    for t in trees {
        if let Some(snapshotter) = kind::salvages_as_snapshotter_v1(t) {
            return if snapshotter {
                DbKind::Snapshotter
            } else {
                DbKind::Metadata
            };
        }
    }
    DbKind::Metadata
}

struct Built {
    ledger: Ledger,
    additions: Additions,
    lease: Option<RepairLease>,
    gc: Option<GcImpact>,
    summary: WriteSummary,
}

/// What every write of one repair shares.
struct Job<'r, 'a> {
    trees: &'r Trees<'a>,
    level: Level,
    orphans: &'r OnceCell<Option<Orphans<'a>>>,
    /// What every write adds: the re-created content records.
    base: Additions,
    wopts: WriterOptions,
    input_gc: Option<&'r (GcRules, GcSet)>,
    now: SystemTime,
}

impl<'a> Job<'_, 'a> {
    /// The orphan leaves the merge uses, once found.
    fn placed(&self) -> Option<&Orphans<'a>> {
        self.orphans.get().and_then(Option::as_ref)
    }

    /// Writes the merge into `f` (which becomes `path`) — again with orphan
    /// pages if its losses place any, when they were not found before; on a
    /// metadata database models the GC on what was written and, when the
    /// repair made anything collectable that the input may still need,
    /// writes it again with the repair lease holding that.
    fn build(&self, f: &mut File, path: &Path) -> Result<Built, OutputError> {
        let base = &self.base;
        let (mut ledger, mut summary) = self.write(base, f, path)?;
        if self.orphans.get().is_none() {
            let found = Orphans::find(self.trees, self.level, &ledger.lost);
            let any = found
                .as_ref()
                .is_some_and(|o| o.placements.iter().any(Option::is_some));
            let _ = self.orphans.set(found);
            if any {
                rewind(f, path)?;
                (ledger, summary) = self.write(base, f, path)?;
            }
        }
        let Some((rules, input)) = self.input_gc else {
            return Ok(Built {
                ledger,
                additions: base.clone(),
                lease: None,
                gc: None,
                summary,
            });
        };
        let output = model_gc(f, path, *rules, self.now)?;
        let holds = protection(&ledger, input, &output);
        if holds.is_empty() {
            return Ok(Built {
                ledger,
                additions: base.clone(),
                lease: None,
                gc: Some(GcImpact {
                    rules: *rules,
                    input: input.clone(),
                    output,
                }),
                summary,
            });
        }
        let id = format!(
            "{LEASE_PREFIX}{}",
            Civil::from_system(self.now).file_stamp()
        );
        let mut additions = base.clone();
        additions.merge(lease_additions(&id, &holds, self.now, ledger.lost.len()));
        rewind(f, path)?;
        let (ledger, summary) = self.write(&additions, f, path)?;
        let output = model_gc(f, path, *rules, self.now)?;
        Ok(Built {
            ledger,
            additions,
            lease: Some(RepairLease { id, holds }),
            gc: Some(GcImpact {
                rules: *rules,
                input: input.clone(),
                output,
            }),
            summary,
        })
    }

    fn write(
        &self,
        additions: &Additions,
        f: &mut File,
        path: &Path,
    ) -> Result<(Ledger, WriteSummary), OutputError> {
        atomic::write_pipelined(f, |pipe| {
            let w = BoltWriter::new(pipe, self.wopts)?;
            let mut sink = Overlay::new(WriterSink(w), additions);
            let ledger = merge::merge(self.trees, self.level, self.placed(), &mut sink)?;
            let WriterSink(w) = sink.finish()?;
            let (_, summary) = w.finish()?;
            Ok((ledger, summary))
        })
        .map_err(|source| OutputError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Empties the file being written, to write it again.
fn rewind(f: &mut File, path: &Path) -> Result<(), OutputError> {
    let io = |op| {
        move |source| OutputError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    f.set_len(0).map_err(io("truncate the new file for"))?;
    f.seek(SeekFrom::Start(0))
        .map_err(io("seek in the new file for"))?;
    Ok(())
}

/// What containerd's GC would delete from the file just written into `f`.
fn model_gc(f: &File, path: &Path, rules: GcRules, now: SystemTime) -> Result<GcSet, OutputError> {
    let written = DbFile::reopen(f, path).map_err(|source| OutputError::ReadBack {
        path: path.to_path_buf(),
        source,
    })?;
    let db = written
        .db()
        .map_err(|e| OutputError::VerifyOther(e.to_string()))?;
    let meta = MetaDb::decode_records(&db);
    Ok(gc_set(&collectable(&meta, &GcOptions { now, rules })))
}

/// What the repair lease must hold: what the output would let containerd's GC
/// delete that the input's GC would keep, and — in every namespace where the
/// repair lost records or took them from an older tree (whose references
/// containerd would follow instead of the lost ones) — everything the output
/// would let it delete. Expired leases cannot be held by a lease and are left
/// out.
pub fn protection(ledger: &Ledger, input: &GcSet, output: &GcSet) -> GcSet {
    let mut touched: BTreeSet<&[u8]> = BTreeSet::new();
    let mut everywhere = false;
    let paths = ledger
        .lost
        .iter()
        .map(|l| &l.path)
        .chain(ledger.recovered.iter().map(|r| &r.path));
    for p in paths {
        let mut c = p.components();
        match (c.next(), c.next()) {
            (Some(b"v1"), Some(ns)) => {
                touched.insert(ns);
            }
            _ => everywhere = true,
        }
    }
    output
        .iter()
        .filter(|x| x.kind != GcKind::Lease)
        .filter(|x| everywhere || touched.contains(x.namespace.as_slice()) || !input.contains(x))
        .cloned()
        .collect()
}

/// The repair lease's records, one per namespace that has something to hold.
fn lease_additions(id: &str, holds: &GcSet, now: SystemTime, lost: usize) -> Additions {
    let mut add = Additions::default();
    let created = time_value(now);
    let reason = format!(
        "held by ctrdb repair: {lost} record(s) or key range(s) were lost, or records were taken from an older tree, so containerd's GC would delete what they may have referenced; review what this lease holds, then delete it"
    );
    for x in holds {
        let lease = add.bucket_mut(&[b"v1", &x.namespace, b"leases", id.as_bytes()]);
        lease
            .entries
            .insert(b"createdat".to_vec(), Addition::Value(created.clone()));
        lease.bucket_mut(&[b"labels"]).entries.insert(
            LEASE_LABEL.as_bytes().to_vec(),
            Addition::Value(reason.clone().into_bytes()),
        );
        let (bucket, key): (Vec<&[u8]>, &[u8]) = match x.kind {
            GcKind::Content => (vec![b"content"], &x.id),
            GcKind::Image => (vec![b"images"], &x.id),
            GcKind::Ingest => (vec![b"ingests"], &x.id),
            GcKind::Snapshot => {
                let cut = x.id.iter().position(|&b| b == b'/').unwrap_or(x.id.len());
                let (sn, rest) = x.id.split_at(cut);
                (vec![b"snapshots", sn], rest.get(1..).unwrap_or_default())
            }
            GcKind::Lease => continue,
        };
        lease
            .bucket_mut(&bucket)
            .entries
            .insert(key.to_vec(), Addition::Value(Vec::new()));
    }
    add
}

/// Re-reads the written file: its length matches its high-water mark, its
/// structural check finds nothing, and it equals, event by event, a second
/// run of the same merge with the same additions.
fn verify<'a>(
    trees: &Trees<'a>,
    level: Level,
    orphans: Option<&Orphans<'a>>,
    additions: &Additions,
    bytes: &[u8],
) -> Result<(), OutputError> {
    let out = Db::parse(bytes).map_err(|e| OutputError::VerifyOther(e.to_string()))?;
    let expect = out.meta().pgid.checked_mul(out.page_size() as u64);
    if expect != Some(bytes.len() as u64) {
        return Err(OutputError::VerifyOther(format!(
            "the file is {} bytes but its high-water mark says {expect:?}",
            bytes.len()
        )));
    }
    let report = crate::bolt::check::check(&out);
    if let Some(f) = report.findings.first() {
        return Err(OutputError::VerifyOther(format!(
            "ctrdb check finds {} problem(s) in the repaired file, first: {}",
            report.findings.len() + report.omitted,
            f.corruption
        )));
    }
    let walk = Walk::new(&out).map_err(|e| OutputError::VerifyOther(e.to_string()))?;
    let mut sink = Overlay::new(CompareSink::new(walk), additions);
    merge::merge(trees, level, orphans, &mut sink).map_err(OutputError::VerifyOther)?;
    sink.finish()
        .and_then(CompareSink::finish)
        .map_err(OutputError::VerifyOther)
}

/// The repaired file in memory, without the lease: the merge written by the
/// writer into a buffer. For fuzzing and for tests of the merge.
pub fn repair_in_memory(db: &Db<'_>) -> Result<(Vec<u8>, Ledger), super::Error> {
    let trees = Trees::new(db.trees());
    let level = Level::root(identify(&trees));
    let wopts = WriterOptions::copy_of(db)?;
    let first = infallible(merge::merge(&trees, level, None, &mut Discard));
    let orphans = Orphans::find(&trees, level, &first.lost);
    let w = BoltWriter::new(std::io::Cursor::new(Vec::new()), wopts).map_err(write_error)?;
    let mut sink = WriterSink(w);
    let ledger = merge::merge(&trees, level, orphans.as_ref(), &mut sink).map_err(write_error)?;
    let WriterSink(w) = sink;
    let (cursor, _) = w.finish().map_err(write_error)?;
    Ok((cursor.into_inner(), ledger))
}

fn write_error(source: crate::bolt::writer::WriteError) -> super::Error {
    super::Error::Write(OutputError::Write {
        path: PathBuf::from("(memory)"),
        source,
    })
}
