//! A structural check of a whole file, in the spirit of Go's `tx.Check`, that
//! reports every problem with its page, offset and bucket path and keeps going:
//! a bad page ends only its own subtree, never the check.
//!
//! This module checks the metas and the freelist and accounts for every page;
//! `walker` walks the bucket tree (in parallel), and `order` puts the
//! walkers' findings into walk order.

#![deny(clippy::indexing_slicing)]

mod order;
mod walker;

use super::bucket::BucketRoot;
use super::db::Db;
use super::error::{CorruptKind, Corruption, Pgid};
use super::layout::*;
use super::page::{describe_flags, Pages};
use super::pageset::PageSet;
pub(crate) use walker::Mode;

/// At most this many findings are kept; the rest are only counted.
pub const MAX_FINDINGS: usize = 10_000;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Structural damage: Go or containerd would fail or misbehave.
    Error,
    /// Something a healthy file may legitimately have, worth knowing.
    Warning,
}

impl Severity {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// What and where.
    pub corruption: Corruption,
}

/// Page accounting of the checked file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageCounts {
    /// Pages reachable from the metas: metas, freelist and bucket trees (with overflow).
    pub reachable: u64,
    /// Pages listed in the freelist.
    pub free: u64,
    /// Pages below the high-water mark that are neither reachable nor listed free
    /// (leaked with a freelist; implicitly free with `NoFreelistSync`).
    pub unused: u64,
    /// Whole pages in the file beyond the high-water mark.
    pub beyond_hwm: u64,
}

/// The outcome of a check.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// Findings in walk order, at most [`MAX_FINDINGS`].
    pub findings: Vec<Finding>,
    /// Findings not kept because of the cap.
    pub omitted: usize,
    /// Page accounting.
    pub pages: PageCounts,
    /// Number of buckets checked (root excluded).
    pub buckets: u64,
    /// Number of plain (non-bucket) keys checked.
    pub keys: u64,
}

impl CheckReport {
    /// Number of error findings (including omitted ones, which are counted as errors
    /// conservatively).
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
            + self.omitted
    }

    /// Number of warnings kept.
    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }
}

struct Checker<'a, 'd> {
    db: &'d Db<'a>,
    pages: Pages<'a>,
    reachable: PageSet,
    /// The freelist page and its overflow count, once read.
    freelist_span: Option<(Pgid, u32)>,
    findings: Vec<Finding>,
    omitted: usize,
    buckets: u64,
    keys: u64,
}

/// Checks the whole file behind `db`.
///
/// The report depends on the file alone, not on the number of threads: findings
/// are ordered by the bucket walk that found them (see `Keyed`), and when a page is
/// referenced more than once (the only finding whose attribution depends on which
/// reference is followed first) the tree is walked again on one thread in Go's
/// order (see `Mode`).
pub fn check(db: &Db<'_>) -> CheckReport {
    let mode = if rayon::current_num_threads() > 1 {
        Mode::Adaptive
    } else {
        Mode::Serial
    };
    check_with(db, mode)
}

/// The check, its tree walked as `mode` says.
pub(crate) fn check_with(db: &Db<'_>, mode: Mode) -> CheckReport {
    let pages = db.pages();
    let file_pages = (db.data().len() / pages.page_size()) as u64;
    let mut c = Checker {
        db,
        pages,
        reachable: PageSet::new(&pages),
        freelist_span: None,
        findings: Vec::new(),
        omitted: 0,
        buckets: 0,
        keys: 0,
    };
    c.check_metas();
    let free = c.check_freelist_page();
    c.premark();
    c.check_tree(mode);
    let counts = c.account(free.as_deref(), file_pages);
    CheckReport {
        findings: c.findings,
        omitted: c.omitted,
        pages: counts,
        buckets: c.buckets,
        keys: c.keys,
    }
}

impl<'a> Checker<'a, '_> {
    fn push(&mut self, severity: Severity, corruption: Corruption) {
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(Finding {
                severity,
                corruption,
            });
        } else {
            self.omitted += 1;
        }
    }

    fn error(&mut self, c: Corruption) {
        self.push(Severity::Error, c);
    }

    fn check_metas(&mut self) {
        let sel = self.db.selection().clone();
        let ps = self.pages.page_size() as u64;
        for (i, slot) in sel.slots.iter().enumerate() {
            if let Err(p) = &slot.validity {
                let other = 1 - i;
                self.push(
                    Severity::Warning,
                    Corruption::new(
                        CorruptKind::MetaInvalid,
                        format!("meta page {i} is invalid ({p}); meta {other} is used, as Go does"),
                    )
                    .page(i as u64)
                    .offset(i as u64 * ps),
                );
                continue;
            }
            if slot.header_id != Some(i as u64) || slot.header_flags != Some(META_PAGE) {
                self.error(
                    Corruption::new(
                        CorruptKind::MetaPageHeader,
                        format!(
                            "meta page {i} has header id {} and flags {}, want id {i} and meta",
                            slot.header_id.unwrap_or(0),
                            describe_flags(slot.header_flags.unwrap_or(0))
                        ),
                    )
                    .page(i as u64)
                    .offset(i as u64 * ps),
                );
            }
        }
        let m = self.db.meta();
        let used = sel.used as u64;
        if m.page_size != sel.page_size {
            self.error(
                Corruption::new(
                    CorruptKind::MetaGeometry,
                    format!(
                        "meta {used} records page size {} but the file is addressed with {} (from meta 0), as Go does",
                        m.page_size, sel.page_size
                    ),
                )
                .page(used),
            );
        }
        if m.pgid < 2 {
            self.error(
                Corruption::new(
                    CorruptKind::MetaGeometry,
                    format!("meta {used} has high-water mark {}, below 2", m.pgid),
                )
                .page(used),
            );
        }
        if m.root < 2 || m.root >= m.pgid {
            self.error(
                Corruption::new(
                    CorruptKind::MetaGeometry,
                    format!(
                        "meta {used} names root page {}, outside 2..{}",
                        m.root, m.pgid
                    ),
                )
                .page(used),
            );
        }
        if m.has_freelist() && (m.freelist < 2 || m.freelist >= m.pgid) {
            self.error(
                Corruption::new(
                    CorruptKind::MetaGeometry,
                    format!(
                        "meta {used} names freelist page {}, outside 2..{}",
                        m.freelist, m.pgid
                    ),
                )
                .page(used),
            );
        }
        let need = m.pgid.checked_mul(ps);
        if need.is_none_or(|n| n > self.db.data().len() as u64) {
            self.error(
                Corruption::new(
                    CorruptKind::FileTruncated,
                    format!(
                        "the high-water mark {} needs {} bytes but the file has {}",
                        m.pgid,
                        need.map_or_else(|| "more than 2^64".to_string(), |n| n.to_string()),
                        self.db.data().len()
                    ),
                )
                .page(used),
            );
        }
    }

    /// Reads the freelist and remembers its pages; returns the listed ids.
    fn check_freelist_page(&mut self) -> Option<Vec<Pgid>> {
        let m = self.db.meta();
        if !m.has_freelist() || m.freelist < 2 || m.freelist >= m.pgid {
            return None;
        }
        match self.db.freelist() {
            Ok(Some(fl)) => {
                self.freelist_span = Some((fl.page, fl.overflow));
                Some(fl.ids)
            }
            Ok(None) => None,
            Err(c) => {
                let c = if c.kind == CorruptKind::FreelistMalformed {
                    c
                } else {
                    Corruption {
                        kind: CorruptKind::FreelistMalformed,
                        ..c
                    }
                };
                self.error(c);
                None
            }
        }
    }

    /// Starts the reachable-page bitmap afresh with the metas and the freelist
    /// pages, before the bucket tree is walked.
    fn premark(&mut self) {
        self.reachable = PageSet::for_file(&self.pages);
        self.reachable.insert(0);
        self.reachable.insert(1);
        if let Some((page, overflow)) = self.freelist_span {
            // `freelist::read` checked that the span ends below the high-water mark.
            for id in page..=page.saturating_add(u64::from(overflow)) {
                self.reachable.insert(id);
            }
        }
    }

    fn check_tree(&mut self, mode: Mode) {
        let root = match self.db.root() {
            Ok(r) => r,
            Err(_) => return, // reported by check_metas
        };
        let BucketRoot::Page(root) = root.root_ref() else {
            return; // the root bucket is never inline
        };
        let mut walked = walker::walk_tree(self.pages, &self.reachable, root, mode);
        if walked.conflict {
            // A page is referenced twice: which reference is followed (and reported)
            // must not depend on scheduling or on where child buckets are walked.
            self.premark();
            walked = walker::walk_tree(self.pages, &self.reachable, root, Mode::GoOrder);
        }
        self.buckets += walked.buckets;
        self.keys += walked.keys;
        for f in order::in_walk_order(walked.found) {
            self.push(f.severity, f.corruption);
        }
    }

    /// Reports the run `s..=e` of pages neither reachable nor free.
    fn leaked(&mut self, (s, e): (Pgid, Pgid)) {
        let what = if s == e {
            format!("page {s} is")
        } else {
            format!("pages {s}..={e} are")
        };
        self.error(
            Corruption::new(
                CorruptKind::PageUnreachableUnfreed,
                format!("{what} neither reachable nor free (leaked)"),
            )
            .page(s),
        );
    }

    fn account(&mut self, free: Option<&[Pgid]>, file_pages: u64) -> PageCounts {
        let hwm = self.pages.hwm();
        let bound = hwm.min(file_pages + 1);
        let mut listed = PageSet::for_file(&self.pages);
        let mut free_count = 0u64;
        if let Some(ids) = free {
            let fl_page = self.db.meta().freelist;
            for &id in ids {
                if id < 2 || id >= hwm {
                    self.error(
                        Corruption::new(
                            CorruptKind::FreelistOutOfRange,
                            format!("freelist lists page {id}, outside 2..{hwm}"),
                        )
                        .page(fl_page),
                    );
                    continue;
                }
                if !listed.insert(id) {
                    self.error(
                        Corruption::new(
                            CorruptKind::FreelistDuplicate,
                            format!("page {id} is listed as free twice"),
                        )
                        .page(fl_page),
                    );
                    continue;
                }
                free_count += 1;
                if self.reachable.contains(id) {
                    self.error(
                        Corruption::new(
                            CorruptKind::PageReachableFreed,
                            format!("page {id} is both in use and listed as free"),
                        )
                        .page(id),
                    );
                }
            }
        }
        let mut reachable = 0u64;
        let mut unused = 0u64;
        // Runs of leaked pages are reported as they end (ascending), not collected.
        let report_leaks = free.is_some();
        let mut run: Option<(Pgid, Pgid)> = None;
        for id in 0..bound {
            if self.reachable.contains(id) {
                reachable += 1;
            } else if !listed.contains(id) {
                unused += 1;
                run = match run {
                    Some((s, e)) if e + 1 == id => Some((s, id)),
                    Some(r) => {
                        if report_leaks {
                            self.leaked(r);
                        }
                        Some((id, id))
                    }
                    None => Some((id, id)),
                };
            }
        }
        if let (Some(r), true) = (run, report_leaks) {
            self.leaked(r);
        }
        PageCounts {
            reachable,
            free: free_count,
            unused,
            beyond_hwm: file_pages.saturating_sub(hwm),
        }
    }
}
