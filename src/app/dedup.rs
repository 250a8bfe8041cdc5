//! `ctrdb dedup`: the plan of [`crate::analysis::dedup`], its GC impact under
//! [`crate::analysis::gc`], and — on request — a cleaned copy (`--output`) or an in-place
//! swap (`--in-place`) through [`atomic::write_verified`]. The copy is the source
//! with exactly the removed `v1/<ns>/images/<name>` buckets left out, which is what
//! containerd's own `imageStore.Delete` does (`containerd-metadb.md` §7 rule 4).
//!
//! Refusals (exit 2, nothing written): a plan that makes anything newly
//! collectable by containerd's GC; writing with `--policy one-per-digest` without
//! `--yes`; an existing backup path.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::report::table::cell;
use super::{AppError, ExitStatus, Input};
use crate::analysis::refs::SharedDigest;
use crate::fsio::atomic::{self, OutputError, OutputOptions};
use crate::bolt::writer::{CompareSummary, ItemKind, WriterOptions};
use crate::bolt::{Db, DbFile, LockMode};
use crate::cli::{DedupArgs, DedupPolicy, ReportFormat};
use crate::containerd::MetaDb;
use crate::analysis::dedup::{self, Action, Decision, Glob, NamespaceSummary, Plan, PlanOptions, Policy};
use crate::analysis::gc::{self, Collectable, GcOptions, GcRules};
use crate::time::Civil;
use crate::report::{sha256_hex, Bytes, InputInfo, Tool, REPORT_SCHEMA_VERSION};

/// Files at least this large get a progress spinner (on a terminal, not in JSON mode).
const PROGRESS_MIN_BYTES: usize = 64 << 20;

// ------------------------------------------------------------------ JSON shape

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DedupDoc<'a> {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
    policy: &'static str,
    mode: &'static str,
    namespaces: &'a [String],
    keep: &'a [String],
    decisions: &'a [Decision<'a>],
    shared: &'a [SharedDigest<'a>],
    gc: GcJson<'a>,
    summary: SummaryJson<'a>,
    warnings: &'a [String],
    refused: Option<String>,
    output: Option<OutputJson>,
    backup: Option<BackupJson>,
    rollback: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryJson<'a> {
    names: usize,
    kept: usize,
    removed: usize,
    protected: usize,
    newly_collectable: usize,
    namespaces: &'a [NamespaceSummary<'a>],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GcJson<'a> {
    rules: &'static str,
    now: String,
    before: GcSetJson<'a>,
    after: GcSetJson<'a>,
    newly_collectable: GcSetJson<'a>,
}

#[derive(Debug, Serialize)]
struct NsDigest<'a> {
    namespace: Bytes<'a>,
    digest: Bytes<'a>,
}

#[derive(Debug, Serialize)]
struct NsSnapshot<'a> {
    namespace: Bytes<'a>,
    snapshotter: Bytes<'a>,
    key: Bytes<'a>,
}

#[derive(Debug, Serialize)]
struct NsName<'a> {
    namespace: Bytes<'a>,
    name: Bytes<'a>,
}

#[derive(Debug, Serialize)]
struct NsId<'a> {
    namespace: Bytes<'a>,
    id: Bytes<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NsRef<'a> {
    namespace: Bytes<'a>,
    #[serde(rename = "ref")]
    ref_: Bytes<'a>,
}

#[derive(Debug, Serialize)]
struct GcSetJson<'a> {
    content: Vec<NsDigest<'a>>,
    snapshots: Vec<NsSnapshot<'a>>,
    images: Vec<NsName<'a>>,
    leases: Vec<NsId<'a>>,
    ingests: Vec<NsRef<'a>>,
}

impl<'a> GcSetJson<'a> {
    fn of(c: &Collectable<'a>) -> GcSetJson<'a> {
        GcSetJson {
            content: c
                .content
                .iter()
                .map(|(n, d)| NsDigest {
                    namespace: *n,
                    digest: *d,
                })
                .collect(),
            snapshots: c
                .snapshots
                .iter()
                .map(|(n, s, k)| NsSnapshot {
                    namespace: *n,
                    snapshotter: *s,
                    key: *k,
                })
                .collect(),
            images: c
                .images
                .iter()
                .map(|(n, x)| NsName {
                    namespace: *n,
                    name: *x,
                })
                .collect(),
            leases: c
                .leases
                .iter()
                .map(|(n, x)| NsId {
                    namespace: *n,
                    id: *x,
                })
                .collect(),
            ingests: c
                .ingests
                .iter()
                .map(|(n, x)| NsRef {
                    namespace: *n,
                    ref_: *x,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutputJson {
    path: String,
    size: u64,
    sha256: Option<String>,
    txid: u64,
    removed_buckets: usize,
    buckets: u64,
    keys: u64,
    verified: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BackupJson {
    path: String,
    sha256: String,
}

// ------------------------------------------------------------------ the command

/// The GC figures of a plan.
struct Impact<'a> {
    rules: GcRules,
    now: SystemTime,
    before: Collectable<'a>,
    after: Collectable<'a>,
    newly: Collectable<'a>,
}

fn policy_of(p: DedupPolicy) -> Policy {
    match p {
        DedupPolicy::Safe => Policy::Safe,
        DedupPolicy::Tagged => Policy::Tagged,
        DedupPolicy::OnePerDigest => Policy::OnePerDigest,
    }
}

pub(super) fn run(
    a: &DedupArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let mut input = Input::from_args(&a.input);
    if a.in_place {
        input.lock = LockMode::Exclusive;
        // Work next to the real file: a symlinked meta.db stays a link to the
        // repaired file, and the backup and temporary file share its filesystem.
        if let Ok(real) = fs::canonicalize(&input.path) {
            input.path = real;
        }
    }
    // Held until the end of the run: for --in-place, an exclusive lock.
    let file = input.open()?;
    let db = file.db()?;
    let opts = PlanOptions {
        policy: policy_of(a.policy),
        keep: a.keep.iter().map(|g| Glob::new(g)).collect(),
        namespaces: a.namespaces.iter().map(|n| n.as_bytes().to_vec()).collect(),
    };
    let has_freelist = db.meta().has_freelist();
    let writing = a.output.is_some() || a.in_place;
    let needs_yes = writing && opts.policy.needs_confirmation() && !a.yes;
    let json = a.format == ReportFormat::Json;
    let mut written = None;
    let mut backup = None;
    let (meta, plan, impact, mut refused);
    if let (Some(target), false) = (&a.output, needs_yes) {
        // --output: the copy is written while the records are decoded and
        // planned, one namespace at a time (the writer waits only for the
        // namespace whose images it has reached); the GC proof runs alongside
        // the verification of the copy (while the disk syncs it), and the copy is
        // renamed only if the proof holds.
        let published = Published::default();
        let progress = progress_bar(json, db.data().len(), err);
        let mut proved = None;
        let result = std::thread::scope(|s| {
            s.spawn(|| published.plan(&db, &opts));
            write_clean(
                &db,
                &input.path,
                target,
                a.force,
                false,
                &Removals::Streamed(&published),
                json && a.input.hash,
                &progress,
                || {
                    let (meta, plan) = published.wait()?;
                    let i = gc_impact(meta, &plan.removed(), has_freelist);
                    let declined = gc_refusal(&i);
                    proved = Some(i);
                    match declined {
                        Some(why) => Err(OutputError::Declined(why)),
                        None => Ok(()),
                    }
                },
            )
        });
        if let Some(p) = progress {
            p.finish_and_clear();
        }
        refused = None;
        match result {
            Ok(w) => written = Some(w),
            Err(AppError::Write(OutputError::Declined(why))) => refused = Some(why),
            Err(e) => return Err(e),
        }
        impact = proved;
        (meta, plan) = published
            .result
            .into_inner()
            .ok_or_else(|| AppError::Write(planner_failed()))?;
    } else {
        // A dry run, and --in-place (which first writes a backup), prove first.
        // The plan and the GC model read records only; the cross-record findings
        // are `check`'s business.
        meta = MetaDb::decode_records(&db);
        plan = dedup::plan(&meta, &opts);
        let removed = plan.removed();
        impact = Some(gc_impact(&meta, &removed, has_freelist));
        refused = impact.as_ref().and_then(gc_refusal);
        if refused.is_none() && needs_yes {
            refused = Some(format!(
                "--policy {} removes tags ({} name(s) in all); review the dry run and add --yes to write",
                opts.policy.name(),
                plan.removed_count()
            ));
        }
        if refused.is_none() && a.in_place && !removed.is_empty() {
            let progress = progress_bar(json, db.data().len(), err);
            let b = make_backup(&file, a.backup.as_deref())?;
            crate::fault::point("after-backup").map_err(|source| {
                AppError::Write(OutputError::Io {
                    op: "continue after the backup",
                    path: b.path.clone(),
                    source,
                })
            })?;
            backup = Some(b);
            written = Some(write_clean(
                &db,
                &input.path,
                &input.path,
                false,
                true,
                &Removals::planned(&removed),
                json && a.input.hash,
                &progress,
                || Ok(()),
            )?);
            if let Some(p) = progress {
                p.finish_and_clear();
            }
        }
    }
    for p in backup
        .iter()
        .flat_map(|b: &Backup| &b.stale_removed)
        .chain(written.iter().flat_map(|w: &Clean| &w.stale_removed))
    {
        writeln!(
            err,
            "ctrdb: note: removed '{}', left behind by an earlier ctrdb run that was killed",
            p.display()
        )?;
    }
    // Always computed above (a write that fails before its proof returns early);
    // the fallback only keeps this total.
    let impact = impact.unwrap_or_else(|| gc_impact(&meta, &plan.removed(), has_freelist));
    drop(meta);
    let rollback = backup
        .as_ref()
        .map(|b| rollback_command(&b.path, &input.path));
    let mode = if a.in_place {
        "inPlace"
    } else if a.output.is_some() {
        "output"
    } else {
        "dryRun"
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    if json {
        let doc = DedupDoc {
            schema_version: REPORT_SCHEMA_VERSION,
            tool: Tool::current(),
            command: "dedup",
            input: InputInfo::new(&input.path, db.data(), a.input.hash, Some(db.meta().txid)),
            policy: opts.policy.name(),
            mode,
            namespaces: &a.namespaces,
            keep: &a.keep,
            decisions: &plan.decisions,
            shared: &plan.shared,
            gc: GcJson {
                rules: rules_name(impact.rules),
                now: Civil::from_system(impact.now).rfc3339_nanos(),
                before: GcSetJson::of(&impact.before),
                after: GcSetJson::of(&impact.after),
                newly_collectable: GcSetJson::of(&impact.newly),
            },
            summary: SummaryJson {
                names: plan.decisions.len(),
                kept: plan.decisions.len() - plan.removed_count(),
                removed: plan.removed_count(),
                protected: plan.protected_count(),
                newly_collectable: impact.newly.len(),
                namespaces: &plan.namespaces,
            },
            warnings: &plan.warnings,
            refused: refused.clone(),
            output: written.as_ref().map(|x: &Clean| OutputJson {
                path: x.path.display().to_string(),
                size: x.size,
                sha256: x.sha256.clone(),
                txid: x.txid,
                removed_buckets: x.removed_buckets,
                buckets: x.compared.buckets,
                keys: x.compared.keys,
                verified: true,
            }),
            backup: backup.as_ref().map(|b| BackupJson {
                path: b.path.display().to_string(),
                sha256: b.sha256.clone(),
            }),
            rollback: rollback.clone(),
        };
        serde_json::to_writer_pretty(&mut w, &doc)?;
        writeln!(w)?;
    } else {
        print_table(&mut w, &input.path, &plan, &impact, mode)?;
        if let Some(x) = &written {
            writeln!(
                w,
                "wrote {} ({} bytes): {} image record(s) removed; every other bucket, key, value and sequence verified \
                 identical to the input",
                x.path.display(),
                x.size,
                x.removed_buckets
            )?;
        } else if a.in_place && refused.is_none() {
            writeln!(
                w,
                "nothing to remove: {} left unchanged",
                input.path.display()
            )?;
        }
        if let (Some(b), Some(r)) = (&backup, &rollback) {
            writeln!(w, "backup: {} (sha256 {})", b.path.display(), b.sha256)?;
            writeln!(w, "to roll back, with containerd stopped:\n    {r}")?;
        }
        if !writing && refused.is_none() {
            if plan.removed_count() > 0 {
                writeln!(
                    w,
                    "dry run: nothing written; write with --output OUT or --in-place"
                )?;
            } else {
                writeln!(w, "dry run: nothing to remove")?;
            }
        }
    }
    w.flush()?;
    drop(w);
    if let Some(why) = refused {
        return Err(AppError::Refused(why));
    }
    if writing {
        Ok(ExitStatus::Clean)
    } else if plan.removed_count() > 0 {
        Ok(ExitStatus::Findings)
    } else {
        Ok(ExitStatus::Clean)
    }
}

fn gc_impact<'a>(
    meta: &MetaDb<'a>,
    removed: &BTreeSet<(Bytes<'a>, Bytes<'a>)>,
    has_freelist: bool,
) -> Impact<'a> {
    let now = SystemTime::now();
    let rules = GcRules::for_file(meta, has_freelist);
    let o = GcOptions { now, rules };
    let (before, after) = gc::collectable_before_and_after(meta, removed, &o);
    let newly = after.minus(&before);
    Impact {
        rules,
        now,
        before,
        after,
        newly,
    }
}

/// Why the plan must not be written, if it would make a record newly
/// collectable. `CTRDB_FAULT=gc-proof:error` makes the proof fail (for tests
/// of the refusal path).
fn gc_refusal(impact: &Impact<'_>) -> Option<String> {
    let injected = crate::fault::point("gc-proof").is_err();
    if impact.newly.is_empty() && !injected {
        return None;
    }
    Some(format!(
        "the plan would make {} record(s) newly collectable by containerd's GC ({}); nothing is written. \
         This is a ctrdb bug or a record ctrdb does not expect: please report it with `--format json`",
        impact.newly.len(),
        describe(&impact.newly)
    ))
}

fn rules_name(r: GcRules) -> &'static str {
    match r {
        GcRules::V1_6 => "1.6",
        GcRules::V1_7 => "1.7",
        GcRules::V2_0 => "2.0",
        GcRules::V2_2 => "2.2",
    }
}

/// A short list for messages: `content default/sha256:…, snapshot …`.
fn describe(c: &Collectable<'_>) -> String {
    let s = |b: &Bytes<'_>| cell(b.0);
    let mut v: Vec<String> = Vec::new();
    v.extend(
        c.content
            .iter()
            .map(|(n, d)| format!("content {}/{}", s(n), s(d))),
    );
    v.extend(
        c.snapshots
            .iter()
            .map(|(n, sn, k)| format!("snapshot {}/{}/{}", s(n), s(sn), s(k))),
    );
    v.extend(
        c.images
            .iter()
            .map(|(n, x)| format!("image {}/{}", s(n), s(x))),
    );
    v.extend(
        c.leases
            .iter()
            .map(|(n, x)| format!("lease {}/{}", s(n), s(x))),
    );
    v.extend(
        c.ingests
            .iter()
            .map(|(n, x)| format!("ingest {}/{}", s(n), s(x))),
    );
    let more = v.len().saturating_sub(5);
    v.truncate(5);
    if more > 0 {
        v.push(format!("and {more} more"));
    }
    v.join(", ")
}

fn counts(c: &Collectable<'_>) -> String {
    if c.is_empty() {
        return "nothing".into();
    }
    let mut v = Vec::new();
    for (n, what) in [
        (c.content.len(), "content blob(s)"),
        (c.snapshots.len(), "snapshot(s)"),
        (c.images.len(), "image(s)"),
        (c.leases.len(), "lease(s)"),
        (c.ingests.len(), "ingest(s)"),
    ] {
        if n > 0 {
            v.push(format!("{n} {what}"));
        }
    }
    v.join(", ")
}

fn print_table(
    out: &mut dyn Write,
    path: &Path,
    plan: &Plan<'_>,
    impact: &Impact<'_>,
    mode: &str,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{}: policy {} ({})",
        path.display(),
        plan.policy.name(),
        match mode {
            "inPlace" => "in place",
            "output" => "writing a cleaned copy",
            _ => "dry run",
        }
    )?;
    let mut last: Option<(&Bytes<'_>, Option<&Bytes<'_>>)> = None;
    // Decisions come grouped by (namespace, target digest): a group's size is
    // the length of its run.
    for (i, d) in plan.decisions.iter().enumerate() {
        let key = (&d.namespace, d.target.as_ref().map(|t| &t.digest));
        if last != Some(key) {
            let n = plan.decisions[i..]
                .iter()
                .take_while(|x| (&x.namespace, x.target.as_ref().map(|t| &t.digest)) == key)
                .count();
            let digest = d
                .target
                .as_ref()
                .map_or_else(|| "(no target)".into(), |t| cell(t.digest.0));
            writeln!(
                out,
                "{} {}  ({} name{})",
                cell(d.namespace.0),
                digest,
                n,
                if n == 1 { "" } else { "s" }
            )?;
            last = Some(key);
        }
        let action = match (d.action, d.is_protected()) {
            (Action::Remove, _) => "remove",
            (Action::Keep, true) => "PROTECT",
            (Action::Keep, false) => "keep",
        };
        writeln!(
            out,
            "  {action:<8} {:<12} {}  [{}] {}",
            d.class.name(),
            cell(d.name.0),
            d.reason.name(),
            d.detail
        )?;
    }
    if !plan.shared.is_empty() {
        writeln!(
            out,
            "digests targeted in more than one namespace (never deduplicated across namespaces):"
        )?;
        for s in &plan.shared {
            let nss: Vec<String> = s
                .namespaces
                .iter()
                .map(|n| format!("{} ({})", cell(n.namespace.0), n.names))
                .collect();
            writeln!(out, "  {}  {}", cell(s.digest.0), nss.join(", "))?;
        }
    }
    writeln!(out, "per namespace:")?;
    for n in &plan.namespaces {
        writeln!(
            out,
            "  {:<16} {} names: {} kept, {} removed, {} protected",
            cell(n.namespace.0),
            n.names,
            n.kept,
            n.removed,
            n.protected
        )?;
    }
    writeln!(
        out,
        "total: {} names: {} kept, {} removed, {} protected",
        plan.decisions.len(),
        plan.decisions.len() - plan.removed_count(),
        plan.removed_count(),
        plan.protected_count()
    )?;
    writeln!(
        out,
        "GC impact (containerd {} rules, at {}):",
        rules_name(impact.rules),
        Civil::from_system(impact.now).rfc3339_nanos()
    )?;
    writeln!(
        out,
        "  the input as it is: containerd would collect {}",
        counts(&impact.before)
    )?;
    if !impact.before.is_empty() {
        writeln!(out, "    ({})", describe(&impact.before))?;
    }
    writeln!(
        out,
        "  after the plan:     containerd would collect {}",
        counts(&impact.after)
    )?;
    writeln!(out, "  newly collectable:  {}", counts(&impact.newly))?;
    for w in &plan.warnings {
        writeln!(out, "warning: {w}")?;
    }
    Ok(())
}

// ------------------------------------------------------------------ writing

/// A verified cleaned file.
struct Clean {
    path: PathBuf,
    size: u64,
    txid: u64,
    sha256: Option<String>,
    removed_buckets: usize,
    compared: CompareSummary,
    /// Temporary files of killed earlier runs that were removed first.
    stale_removed: Vec<PathBuf>,
}

type RemovedSet<'a> = HashSet<(&'a [u8], &'a [u8])>;

/// The pairs of a plan's removed set.
fn removed_set<'a>(removed: &BTreeSet<(Bytes<'a>, Bytes<'a>)>) -> RemovedSet<'a> {
    removed.iter().map(|(n, x)| (n.0, x.0)).collect()
}

/// Whether `path` is `v1/<ns>/images`; its namespace.
fn images_of<'p>(path: &[&'p [u8]]) -> Option<&'p [u8]> {
    match path {
        [v1, ns, images] if *v1 == b"v1" && *images == b"images" => Some(ns),
        _ => None,
    }
}

/// The filter: drop exactly `v1/<ns>/images/<name>` buckets of removed names.
fn keep_fn<'s>(
    removed: &'s RemovedSet<'s>,
    dropped: &'s std::cell::Cell<usize>,
) -> impl FnMut(&[&[u8]], &[u8], ItemKind) -> bool + 's {
    move |path, key, kind| {
        let drop = kind == ItemKind::Bucket
            && images_of(path).is_some_and(|ns| removed.contains(&(ns, key)));
        if drop {
            dropped.set(dropped.get() + 1);
        }
        !drop
    }
}

/// The names removed in one namespace.
type NamesRemoved<'a> = Arc<HashSet<&'a [u8]>>;

/// Which image records a copy leaves out.
enum Removals<'r, 'a> {
    /// Planned before the write: the removed names of each namespace.
    Planned(HashMap<&'a [u8], NamesRemoved<'a>>),
    /// Planned while the copy is written.
    Streamed(&'r Published<'a>),
}

impl<'a> Removals<'_, 'a> {
    /// A plan's removals `(namespace, name)`, made before the write.
    fn planned(removed: &BTreeSet<(Bytes<'a>, Bytes<'a>)>) -> Self {
        let mut by_ns: HashMap<&'a [u8], HashSet<&'a [u8]>> = HashMap::new();
        for (ns, name) in removed {
            by_ns.entry(ns.0).or_default().insert(name.0);
        }
        Removals::Planned(by_ns.into_iter().map(|(ns, v)| (ns, Arc::new(v))).collect())
    }

    /// The names removed in namespace `ns`; for a streamed plan, once that
    /// namespace is planned.
    fn names_in(&self, ns: &[u8]) -> NamesRemoved<'a> {
        match self {
            Removals::Planned(by_ns) => by_ns.get(ns).cloned().unwrap_or_default(),
            Removals::Streamed(p) => p.removed_in(ns),
        }
    }

    /// Every removal of the whole plan; for a streamed plan, once it is complete.
    fn all(&self) -> Result<RemovedSet<'a>, OutputError> {
        Ok(match self {
            Removals::Planned(by_ns) => by_ns
                .iter()
                .flat_map(|(ns, names)| names.iter().map(move |n| (*ns, *n)))
                .collect(),
            Removals::Streamed(p) => removed_set(&p.wait()?.1.removed()),
        })
    }
}

/// The plan, published one namespace at a time by a planner that runs while
/// the copy is written: the writer starts at once and waits only for the
/// namespace whose `images` bucket it has reached. Namespaces are planned
/// independently, so the parts are exactly [`dedup::plan`]'s; the final plan
/// is assembled from them when the decode ends, and the copy is checked
/// against that final plan (the count of dropped buckets, then the lockstep
/// comparison) before it is renamed.
#[derive(Default)]
struct Published<'a> {
    state: Mutex<PublishedState<'a>>,
    changed: Condvar,
    /// The decoded records and the whole plan, set once before `finished`.
    result: OnceLock<(MetaDb<'a>, Plan<'a>)>,
}

#[derive(Default)]
struct PublishedState<'a> {
    removed: HashMap<&'a [u8], NamesRemoved<'a>>,
    parts: Vec<dedup::NamespacePlan<'a>>,
    finished: bool,
}

/// Marks the planning finished when dropped, also if the planner failed, so
/// no waiter waits forever.
struct FinishOnDrop<'r, 'a>(&'r Published<'a>);

impl Drop for FinishOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.lock().finished = true;
        self.0.changed.notify_all();
    }
}

fn planner_failed() -> OutputError {
    OutputError::VerifyOther("the plan was not completed".into())
}

impl<'a> Published<'a> {
    fn lock(&self) -> std::sync::MutexGuard<'_, PublishedState<'a>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decodes `db`, publishing each v1 namespace's part of the plan as soon as
    /// it is decoded, then the records and the whole plan.
    fn plan(&self, db: &Db<'a>, opts: &PlanOptions) {
        let _finish = FinishOnDrop(self);
        let meta = MetaDb::decode_records_each(db, |ns| {
            if ns.in_v1 {
                let part = dedup::plan_namespace(ns, opts);
                let removed = Arc::new(part.removed_names().collect());
                let mut st = self.lock();
                st.removed.insert(ns.name.0, removed);
                st.parts.push(part);
                drop(st);
                self.changed.notify_all();
            }
        });
        let mut parts = std::mem::take(&mut self.lock().parts);
        parts.sort_by(|x, y| x.summary.namespace.cmp(&y.summary.namespace));
        let in_order = parts.iter().map(|p| p.summary.namespace).eq(meta
            .namespaces
            .iter()
            .filter(|n| n.in_v1)
            .map(|n| n.name));
        // Parts line up with the namespaces unless a damaged file repeats a
        // namespace key; then the plan is made again the ordinary way (and the
        // copy, checked against it, is refused if it differs).
        let plan = if in_order {
            dedup::assemble(parts, opts)
        } else {
            dedup::plan(&meta, opts)
        };
        let _ = self.result.set((meta, plan));
    }

    /// The names removed in namespace `ns`: waits until it is planned (none if
    /// the planning ends without it).
    fn removed_in(&self, ns: &[u8]) -> NamesRemoved<'a> {
        let mut st = self.lock();
        loop {
            if let Some(r) = st.removed.get(ns) {
                return Arc::clone(r);
            }
            if st.finished {
                return Arc::default();
            }
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// The records and the whole plan, once the planning has finished.
    fn wait(&self) -> Result<&(MetaDb<'a>, Plan<'a>), OutputError> {
        let mut st = self.lock();
        while !st.finished {
            st = self
                .changed
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(st);
        self.result.get().ok_or_else(planner_failed)
    }
}

#[allow(clippy::too_many_arguments)]
fn write_clean(
    db: &Db<'_>,
    source: &Path,
    target: &Path,
    force: bool,
    in_place: bool,
    removals: &Removals<'_, '_>,
    hash: bool,
    progress: &Option<indicatif::ProgressBar>,
    alongside: impl FnOnce() -> Result<(), OutputError> + Send,
) -> Result<Clean, AppError> {
    let wopts = WriterOptions::copy_of(db).map_err(crate::bolt::Error::from)?;
    let (summary, (compared, sha, verified_drops), written) = atomic::write_verified(
        source,
        target,
        OutputOptions {
            overwrite: force,
            replace_source: in_place,
        },
        |f, path| {
            let mut dropped = 0usize;
            // The namespace whose removed names the writer is in, and those names.
            let mut current: Option<(Vec<u8>, NamesRemoved<'_>)> = None;
            let mut report = |n: u64| {
                if let Some(p) = progress {
                    p.set_message(format!("writing: {n} buckets and keys"));
                }
            };
            let keep = |path: &[&[u8]], key: &[u8], kind: ItemKind| {
                let Some(ns) = images_of(path).filter(|_| kind == ItemKind::Bucket) else {
                    return true;
                };
                if current.as_ref().is_none_or(|(c, _)| c.as_slice() != ns) {
                    current = Some((ns.to_vec(), removals.names_in(ns)));
                }
                let drop = current.as_ref().is_some_and(|(_, r)| r.contains(key));
                dropped += usize::from(drop);
                !drop
            };
            let s = super::compact::write_filtered(db, wopts, f, keep, &mut report).map_err(
                |source| OutputError::Write {
                    path: path.to_path_buf(),
                    source,
                },
            )?;
            // The whole plan: what the copy is checked against.
            let full = removals.all()?;
            if dropped != full.len() {
                return Err(OutputError::VerifyOther(format!(
                    "{} image bucket(s) were planned for removal but {} were found",
                    full.len(),
                    dropped
                )));
            }
            Ok((s, full))
        },
        |(_, set), bytes| {
            if let Some(p) = progress {
                p.set_message("verifying the new file");
            }
            let (verified, beside) = rayon::join(
                || {
                    let dropped = std::cell::Cell::new(0);
                    super::compact::verify_and_hash(db, bytes, keep_fn(set, &dropped), hash)
                        .map(|(compared, sha)| (compared, sha, dropped.get()))
                },
                alongside,
            );
            let verified = verified?;
            beside?;
            Ok(verified)
        },
    )?;
    Ok(Clean {
        path: written.path,
        size: written.size,
        txid: summary.0.txid,
        sha256: sha,
        removed_buckets: verified_drops,
        compared,
        stale_removed: written.stale_removed,
    })
}

fn progress_bar(json: bool, size: usize, _err: &mut dyn Write) -> Option<indicatif::ProgressBar> {
    if json || size < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
        return None;
    }
    let p = indicatif::ProgressBar::new_spinner();
    p.enable_steady_tick(Duration::from_millis(120));
    p.set_message("writing");
    Some(p)
}

// ------------------------------------------------------------------ in place

struct Backup {
    path: PathBuf,
    sha256: String,
    /// Temporary backups of killed earlier runs that were removed first.
    stale_removed: Vec<PathBuf>,
}

/// Copies the locked database's bytes to the backup path (never replacing a
/// file), with the database's mode and owner, synced, directory synced, and read
/// back to check its hash.
fn make_backup(file: &DbFile, backup: Option<&Path>) -> Result<Backup, AppError> {
    let src = file.path();
    let path = match backup {
        Some(p) => p.to_path_buf(),
        None => {
            let stamp = Civil::from_system(SystemTime::now()).file_stamp();
            let mut s = src.as_os_str().to_os_string();
            s.push(format!(".ctrdb-backup-{stamp}"));
            PathBuf::from(s)
        }
    };
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| {
            AppError::Write(OutputError::Io {
                op,
                path: p,
                source,
            })
        }
    };
    if fs::symlink_metadata(&path).is_ok() {
        return Err(AppError::Refused(format!(
            "the backup path '{}' already exists; choose another with --backup PATH",
            path.display()
        )));
    }
    let bytes = file.bytes();
    let sha = sha256_hex(bytes);
    let src_meta = fs::metadata(src).map_err(io("stat", src))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Like every output: written under a temporary name, synced, read back, and
    // only then given its name, so a killed run never leaves a partial backup.
    let stale_removed = crate::fsio::atomic::remove_stale_temps(&dir, &name);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.ctrdb-tmp.{}.", std::process::id()))
        .rand_bytes(8)
        .tempfile_in(&dir)
        .map_err(io("create a temporary backup in", &dir))?;
    let tmp_path = tmp.path().to_path_buf();
    tmp.write_all(bytes)
        .map_err(io("write the backup", &tmp_path))?;
    tmp.as_file()
        .set_permissions(src_meta.permissions())
        .map_err(io("set the mode of", &tmp_path))?;
    // Best effort, as for the new file: only root may give a file away.
    let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(src_meta.uid()), Some(src_meta.gid()));
    tmp.as_file()
        .sync_all()
        .map_err(io("sync the backup", &tmp_path))?;
    let back = fs::read(&tmp_path).map_err(io("read back the backup", &tmp_path))?;
    if sha256_hex(&back) != sha {
        return Err(AppError::Refused(format!(
            "the backup '{}' does not read back identical",
            tmp_path.display()
        )));
    }
    tmp.persist_noclobber(&path).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            AppError::Refused(format!(
                "the backup path '{}' already exists; choose another with --backup PATH",
                path.display()
            ))
        } else {
            io("name the backup", &path)(e.error)
        }
    })?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", &dir))?;
    Ok(Backup {
        path,
        sha256: sha,
        stale_removed,
    })
}

/// `mv -f -- '<backup>' '<db>'`, shell-quoted.
fn rollback_command(backup: &Path, db: &Path) -> String {
    format!("mv -f -- {} {}", shell_quote(backup), shell_quote(db))
}

fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-+:@,=".contains(&c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed plan equals the ordinary one on every fixture, and the
    /// writer's per-namespace view agrees with it.
    #[test]
    fn published_plan_is_the_ordinary_plan() {
        super::super::for_each_fixture_db(|path, db| {
            for policy in [Policy::Safe, Policy::Tagged, Policy::OnePerDigest] {
                let opts = PlanOptions {
                    policy,
                    keep: Vec::new(),
                    namespaces: Vec::new(),
                };
                let published = Published::default();
                published.plan(db, &opts);
                let (_, plan) = published.wait().expect("planned");
                let want = dedup::plan(&MetaDb::decode_records(db), &opts);
                assert!(*plan == want, "{}: {policy:?}", path.display());
                let removed = plan.removed();
                for ns in &plan.namespaces {
                    let got: BTreeSet<&[u8]> = published
                        .removed_in(ns.namespace.0)
                        .iter()
                        .copied()
                        .collect();
                    let want: BTreeSet<&[u8]> = removed
                        .iter()
                        .filter(|(n, _)| *n == ns.namespace)
                        .map(|(_, i)| i.0)
                        .collect();
                    assert_eq!(got, want, "{}: {policy:?}", path.display());
                }
            }
        });
    }

    /// A waiter is released by the namespace's publication, and — when the
    /// planning ends without it (or the planner fails) — by the end, with nothing
    /// removed: never left waiting.
    #[test]
    fn waiters_are_released_by_publication_or_by_the_end() {
        let published = Published::default();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| published.removed_in(b"ns-a").len());
            std::thread::sleep(Duration::from_millis(20));
            let names: HashSet<&[u8]> = [&b"x:1"[..], b"y:2"].into_iter().collect();
            published.lock().removed.insert(b"ns-a", Arc::new(names));
            published.changed.notify_all();
            assert_eq!(waiter.join().expect("waiter"), 2);

            let waiter = s.spawn(|| published.removed_in(b"never").len());
            let planned = s.spawn(|| published.wait().is_ok());
            std::thread::sleep(Duration::from_millis(20));
            drop(FinishOnDrop(&published));
            assert_eq!(waiter.join().expect("waiter"), 0);
            // Finished without a result: the write is refused, not waited on.
            assert!(!planned.join().expect("wait"));
        });
    }
}
