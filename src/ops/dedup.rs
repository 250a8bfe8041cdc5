//! `dedup`'s run: the plan of [`analysis::dedup`], its GC proof under
//! [`analysis::gc`], and — when asked — a cleaned copy or an in-place swap.
//! The copy is the source with exactly the removed `v1/<ns>/images/<name>`
//! buckets left out, which is what containerd's own `imageStore.Delete` does
//! (`containerd-metadb.md` §7 rule 4).
//!
//! Refusals (nothing written): a plan that makes anything newly collectable by
//! containerd's GC; writing a plan that drops tags without confirmation; an
//! existing backup path.
//!
//! `--output` is written while the plan is made: a planner thread decodes and
//! plans one namespace at a time and publishes each part ([`Published`]); the
//! writer waits only for the namespace whose `images` bucket it has reached.
//! The GC proof runs beside the verification of the copy (while the disk syncs
//! it), and the copy is renamed only if the proof holds. A dry run and
//! `--in-place` (which first writes a backup) prove before writing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use super::copy::{self, Copied};
pub use super::Mode;
use super::{default_backup_path, failed_swap, Error};
use crate::analysis::dedup::{self, Plan, PlanOptions};
use crate::analysis::gc::Impact;
use crate::bolt::writer::{ItemKind, WriterOptions};
use crate::bolt::{Db, DbFile};
use crate::bytes::Bytes;
use crate::containerd::MetaDb;
use crate::fsio::atomic::{self, Backup, OutputError, OutputOptions};

/// A dedup run.
#[derive(Debug, Clone)]
pub struct Job {
    /// The planner's options.
    pub plan: PlanOptions,
    /// What is written.
    pub mode: Mode,
    /// The user confirmed a policy that drops tags.
    pub confirmed: bool,
    /// Hash the written copy (SHA-256).
    pub hash: bool,
}

/// Why a plan was not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The plan would let containerd's GC collect records the input keeps
    /// (the impact's `newly` set).
    GcProof,
    /// The policy drops tags and the user has not confirmed it; `removed` names
    /// in all would go.
    NeedsConfirmation {
        /// How many names the plan removes.
        removed: usize,
    },
    /// The backup path exists (it is never replaced).
    BackupExists(PathBuf),
}

/// A verified cleaned copy.
#[derive(Debug)]
pub struct Clean {
    /// The copy and its verification.
    pub copy: Copied,
    /// How many image buckets the verified copy leaves out.
    pub removed_buckets: usize,
}

/// What a run did.
#[derive(Debug)]
pub struct Outcome<'a> {
    /// The plan.
    pub plan: Plan<'a>,
    /// Its GC impact.
    pub impact: Impact<'a>,
    /// Why nothing was written, if it was refused.
    pub refused: Option<Refusal>,
    /// The verified copy (at the target, or in place of the database).
    pub written: Option<Clean>,
    /// The backup made before an in-place swap.
    pub backup: Option<Backup>,
}

impl Outcome<'_> {
    /// Temporary files of killed earlier runs that the run removed.
    pub fn stale_removed(&self) -> impl Iterator<Item = &Path> {
        self.backup
            .iter()
            .flat_map(|b| &b.stale_removed)
            .chain(
                self.written
                    .iter()
                    .flat_map(|w| &w.copy.written.stale_removed),
            )
            .map(PathBuf::as_path)
    }
}

/// Plans, proves and — as `job.mode` says — writes. `file` is the open
/// database (under an exclusive lock for [`Mode::InPlace`]) and `db` its parsed
/// view; `progress` is told what the write is doing.
pub fn run<'a>(
    file: &DbFile,
    db: &Db<'a>,
    job: &Job,
    progress: &(dyn Fn(String) + Sync),
) -> Result<Outcome<'a>, Error> {
    let has_freelist = db.meta().has_freelist();
    let unconfirmed = job.mode.writes() && job.plan.policy.needs_confirmation() && !job.confirmed;
    let source = file.path();
    let copier = Copier {
        db,
        source,
        hash: job.hash,
        progress,
    };
    match &job.mode {
        Mode::Output { target, overwrite } if !unconfirmed => {
            let published = Published::default();
            let mut proved = None;
            let result = std::thread::scope(|s| {
                s.spawn(|| published.plan(db, &job.plan));
                copier.write_clean(
                    target,
                    OutputOptions {
                        overwrite: *overwrite,
                        replace_source: false,
                    },
                    &Removals::Streamed(&published),
                    || {
                        let (meta, plan) = published.wait()?;
                        if !meta.damage(|_| true).is_empty() {
                            return Err(OutputError::Declined("the tree is damaged".into()));
                        }
                        let impact = Impact::of_removal(
                            meta,
                            &plan.removed(),
                            has_freelist,
                            SystemTime::now(),
                        );
                        let holds = gc_proof_holds(&impact);
                        proved = Some(impact);
                        if holds {
                            Ok(())
                        } else {
                            Err(OutputError::Declined("the GC proof failed".into()))
                        }
                    },
                )
            });
            // Damage makes the copy fail where it meets it, or the proof refuse:
            // either way the damage is the reason to give.
            if let Some((meta, _)) = published.result.get() {
                refuse_damaged(meta)?;
            }
            let (written, refused) = match result {
                Ok(w) => (Some(w), None),
                Err(Error::Write(OutputError::Declined(_))) => (None, Some(Refusal::GcProof)),
                Err(e) => return Err(e),
            };
            let (meta, plan) = published.result.into_inner().ok_or_else(planner_failed)?;
            // A write that fails before its proof has returned above.
            let impact = proved.unwrap_or_else(|| {
                Impact::of_removal(&meta, &plan.removed(), has_freelist, SystemTime::now())
            });
            Ok(Outcome {
                plan,
                impact,
                refused,
                written,
                backup: None,
            })
        }
        mode => {
            // The plan and the GC model read records only; the cross-record
            // findings are `check`'s business.
            let meta = MetaDb::decode_records(db);
            refuse_damaged(&meta)?;
            let plan = dedup::plan(&meta, &job.plan);
            let removed = plan.removed();
            let impact = Impact::of_removal(&meta, &removed, has_freelist, SystemTime::now());
            drop(meta);
            let mut outcome = Outcome {
                plan,
                impact,
                refused: None,
                written: None,
                backup: None,
            };
            if !gc_proof_holds(&outcome.impact) {
                outcome.refused = Some(Refusal::GcProof);
            } else if unconfirmed {
                outcome.refused = Some(Refusal::NeedsConfirmation {
                    removed: outcome.plan.removed_count(),
                });
            } else if let (Mode::InPlace { backup }, false) = (mode, removed.is_empty()) {
                let backup_path = backup
                    .clone()
                    .unwrap_or_else(|| default_backup_path(source));
                let backup = match atomic::write_backup(source, file.bytes(), &backup_path) {
                    Ok(b) => b,
                    Err(OutputError::Exists(p)) => {
                        outcome.refused = Some(Refusal::BackupExists(p));
                        return Ok(outcome);
                    }
                    Err(e) => return Err(e.into()),
                };
                let swap = || {
                    crate::fault::point("after-backup").map_err(|source| OutputError::Io {
                        op: "continue after the backup",
                        path: backup.path.clone(),
                        source,
                    })?;
                    copier.write_clean(
                        source,
                        OutputOptions {
                            overwrite: false,
                            replace_source: true,
                        },
                        &Removals::planned(&removed),
                        || Ok(()),
                    )
                };
                match swap() {
                    Ok(written) => {
                        outcome.backup = Some(backup);
                        outcome.written = Some(written);
                    }
                    Err(e) => return Err(failed_swap(e, file, backup)),
                }
            }
            Ok(outcome)
        }
    }
}

/// [`Error::Damaged`] when decoding met structural damage anywhere: the GC
/// model needs every record, whichever namespaces the plan touches.
fn refuse_damaged(meta: &MetaDb<'_>) -> Result<(), Error> {
    let damage = meta.damage(|_| true);
    if damage.is_empty() {
        return Ok(());
    }
    Err(Error::Damaged {
        findings: damage.into_iter().cloned().collect(),
    })
}

/// Whether the plan lets containerd's GC collect nothing new.
/// `CTRDB_FAULT=gc-proof:error` makes the proof fail (for tests of the refusal path).
fn gc_proof_holds(impact: &Impact<'_>) -> bool {
    let injected = crate::fault::point("gc-proof").is_err();
    impact.newly.is_empty() && !injected
}

/// What every cleaned copy of one run shares: the source and how to report.
struct Copier<'r, 'a> {
    db: &'r Db<'a>,
    source: &'r Path,
    hash: bool,
    progress: &'r (dyn Fn(String) + Sync),
}

impl Copier<'_, '_> {
    /// Writes the source to `target` without the image buckets `removals` names,
    /// verified against the whole plan and, beside that verification, checked by
    /// `alongside` (the GC proof) before it is renamed.
    fn write_clean(
        &self,
        target: &Path,
        options: OutputOptions,
        removals: &Removals<'_, '_>,
        alongside: impl FnOnce() -> Result<(), OutputError> + Send,
    ) -> Result<Clean, Error> {
        let Copier {
            db,
            source,
            hash,
            progress,
        } = *self;
        let wopts = WriterOptions::copy_of(db)?;
        let (summary, (compared, sha, verified_drops), written) = atomic::write_verified(
            source,
            target,
            options,
            |f, path| {
                let mut dropped = 0usize;
                // The namespace whose removed names the writer is in, and those names.
                let mut current: Option<(Vec<u8>, NamesRemoved<'_>)> = None;
                let mut report = |n: u64| progress(format!("writing: {n} buckets and keys"));
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
                let s =
                    copy::write_filtered(db, wopts, f, keep, &mut report).map_err(|source| {
                        OutputError::Write {
                            path: path.to_path_buf(),
                            source,
                        }
                    })?;
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
                progress("verifying the new file".into());
                let (verified, beside) = rayon::join(
                    || {
                        let dropped = std::cell::Cell::new(0);
                        copy::verify_and_hash(db, bytes, keep_fn(set, &dropped), hash)
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
            copy: Copied {
                written,
                summary: summary.0,
                compared,
                sha256: sha,
            },
            removed_buckets: verified_drops,
        })
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analysis::dedup::Policy;

    /// The streamed plan equals the ordinary one on every fixture, and the
    /// writer's per-namespace view agrees with it.
    #[test]
    fn published_plan_is_the_ordinary_plan() {
        crate::testing::for_each_fixture_db(|path, db| {
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

    /// Two in-place runs in the same second get different default backups.
    #[test]
    fn default_backup_names_differ_within_a_second() {
        let db = Path::new("/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db");
        let a = default_backup_path(db);
        let b = default_backup_path(db);
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("meta.db.ctrdb-backup-"), "{name}");
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
