//! Differential test of the structural check: a frozen copy of the check as it
//! was before its walk was rewritten for speed (one rayon task per page-based
//! bucket, findings merged in bucket-path order) is the reference. On every seeded
//! mutation of the real fixtures, the current check must report exactly what the
//! reference reports (same findings in the same order, same counts), except where
//! a page is referenced twice: which reference wins was scheduling-dependent in
//! the reference and is the first in key order now. It must also be deterministic
//! across thread counts and work splits.

use std::sync::Mutex;

use ctrdb::bolt::bucket::{
    AtomicPageBitmap, Bucket, BucketRoot, PageBitmap, PageSet, MAX_BUCKET_DEPTH, MAX_DEPTH,
};
use ctrdb::bolt::check::{show, CheckReport, Finding, PageCounts, Severity, MAX_FINDINGS};
use ctrdb::bolt::layout::*;
use ctrdb::bolt::page::{describe_flags, Page, PageKind, Pages};
use ctrdb::bolt::{BucketPath, CorruptKind, Corruption, Db, Pgid};

struct Checker<'a, 'd> {
    db: &'d Db<'a>,
    pages: Pages<'a>,
    reachable: AtomicPageBitmap,
    findings: Vec<Finding>,
    omitted: usize,
    buckets: u64,
    keys: u64,
}

/// What one bucket task found. Tasks run in parallel; their outputs are merged in
/// bucket-path order so the report does not depend on scheduling.
#[derive(Debug, Default)]
struct TaskOut {
    path: BucketPath,
    findings: Vec<Finding>,
    buckets: u64,
    keys: u64,
}

impl TaskOut {
    fn push(&mut self, severity: Severity, corruption: Corruption) {
        // Bounded per task; the merge applies the global cap.
        if self.findings.len() <= MAX_FINDINGS {
            self.findings.push(Finding {
                severity,
                corruption,
            });
        }
    }

    fn error(&mut self, c: Corruption) {
        self.push(Severity::Error, c);
    }
}

/// The shared, copyable context of the parallel tree check.
#[derive(Clone, Copy)]
struct Tree<'a, 'c> {
    pages: Pages<'a>,
    reachable: &'c AtomicPageBitmap,
    outs: &'c Mutex<Vec<TaskOut>>,
}

/// Checks the whole file behind `db`.
pub fn check_reference(db: &Db<'_>) -> CheckReport {
    let pages = db.pages();
    let file_pages = (db.data().len() / pages.page_size()) as u64;
    let mut c = Checker {
        db,
        pages,
        reachable: AtomicPageBitmap::new(pages.hwm().min(file_pages + 1)),
        findings: Vec::new(),
        omitted: 0,
        buckets: 0,
        keys: 0,
    };
    c.check_metas();
    let free = c.check_freelist_page();
    c.check_tree();
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
        self.reachable.insert(0);
        self.reachable.insert(1);
    }

    /// Reads the freelist and marks its pages reachable; returns the listed ids.
    fn check_freelist_page(&mut self) -> Option<Vec<Pgid>> {
        let m = self.db.meta();
        if !m.has_freelist() || m.freelist < 2 || m.freelist >= m.pgid {
            return None;
        }
        match self.db.freelist() {
            Ok(Some(fl)) => {
                for id in fl.page..=fl.page.saturating_add(u64::from(fl.overflow)) {
                    self.reachable.insert(id);
                }
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

    fn check_tree(&mut self) {
        let root = match self.db.root() {
            Ok(r) => r,
            Err(_) => return, // reported by check_metas
        };
        let outs = Mutex::new(Vec::new());
        let tree = Tree {
            pages: self.pages,
            reachable: &self.reachable,
            outs: &outs,
        };
        rayon::scope(|s| tree.task(s, root, BucketPath::root(), 0));
        let mut outs = outs.into_inner().unwrap_or_else(|e| e.into_inner());
        outs.sort_by(|a, b| a.path.cmp(&b.path));
        for o in outs {
            self.buckets += o.buckets;
            self.keys += o.keys;
            for f in o.findings {
                self.push(f.severity, f.corruption);
            }
        }
    }

    fn account(&mut self, free: Option<&[Pgid]>, file_pages: u64) -> PageCounts {
        let hwm = self.pages.hwm();
        let bound = hwm.min(file_pages + 1);
        let mut listed = PageBitmap::new(bound);
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
        let mut run: Option<(Pgid, Pgid)> = None;
        let mut runs = Vec::new();
        for id in 0..bound {
            if self.reachable.contains(id) {
                reachable += 1;
            } else if !listed.contains(id) {
                unused += 1;
                run = match run {
                    Some((s, e)) if e + 1 == id => Some((s, id)),
                    Some(r) => {
                        runs.push(r);
                        Some((id, id))
                    }
                    None => Some((id, id)),
                };
            }
        }
        runs.extend(run);
        if free.is_some() {
            for (s, e) in runs {
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
        }
        PageCounts {
            reachable,
            free: free_count,
            unused,
            beyond_hwm: file_pages.saturating_sub(hwm),
        }
    }
}

impl<'a, 'c> Tree<'a, 'c> {
    /// Checks one page-based bucket (and the inline buckets inside it) as a task;
    /// nested page-based buckets become tasks of their own.
    fn task<'s>(self, scope: &rayon::Scope<'s>, bucket: Bucket<'a>, path: BucketPath, depth: usize)
    where
        'a: 's,
        'c: 's,
    {
        let mut out = TaskOut {
            path: path.clone(),
            ..TaskOut::default()
        };
        self.check_bucket(scope, &mut out, bucket, &path, depth);
        if let Ok(mut outs) = self.outs.lock() {
            outs.push(out);
        }
    }

    fn check_bucket<'s>(
        self,
        scope: &rayon::Scope<'s>,
        out: &mut TaskOut,
        bucket: Bucket<'a>,
        path: &BucketPath,
        depth: usize,
    ) where
        'a: 's,
        'c: 's,
    {
        let page = match bucket.root_ref() {
            BucketRoot::Inline(bytes, off) => match Page::inline(bytes, off) {
                Ok(p) => p,
                Err(c) => return out.error(c.in_bucket(path)),
            },
            BucketRoot::Page(id) => match self.enter_page(out, id, path, &[]) {
                Some(p) => p,
                None => return,
            },
        };
        // Explicit stack of (page, next element, lower bound, upper bound, previous key).
        struct Frame<'a> {
            page: Page<'a>,
            index: usize,
            lower: Option<&'a [u8]>,
            upper: Option<&'a [u8]>,
            prev: Option<&'a [u8]>,
        }
        let mut stack = vec![Frame {
            page,
            index: 0,
            lower: None,
            upper: None,
            prev: None,
        }];
        let mut ancestors: Vec<Pgid> = vec![page.id];
        while let Some(top) = stack.last_mut() {
            let i = top.index;
            if i >= usize::from(top.page.count) {
                stack.pop();
                ancestors.pop();
                continue;
            }
            top.index += 1;
            let page = top.page;
            let (lower, upper, prev) = (top.lower, top.upper, top.prev);
            let is_branch = page.kind() == Some(PageKind::Branch);
            let key = if is_branch {
                match page.branch_element(i) {
                    Ok(e) => Some((e.key, None, Some(e.child), e.elem_offset)),
                    Err(c) => {
                        out.error(c.in_bucket(path));
                        None
                    }
                }
            } else {
                match page.leaf_element(i) {
                    Ok(e) => Some((e.key, Some(e), None, e.elem_offset)),
                    Err(c) => {
                        out.error(c.in_bucket(path));
                        None
                    }
                }
            };
            let Some((key, leaf, child, eoff)) = key else {
                continue;
            };
            let loc = |c: Corruption| {
                let c = c.offset(eoff).in_bucket(path);
                if page.id != 0 {
                    c.page(page.id)
                } else {
                    c
                }
            };
            if key.is_empty() {
                out.error(loc(Corruption::new(
                    CorruptKind::KeyEmpty,
                    format!("element {i} has an empty key"),
                )));
            }
            if let Some(p) = prev {
                if key <= p {
                    out.error(loc(Corruption::new(
                        CorruptKind::KeyOrder,
                        format!(
                            "element {i}: key {} is not greater than the previous key {}",
                            show(key),
                            show(p)
                        ),
                    )));
                }
            }
            if lower.is_some_and(|l| key < l) || upper.is_some_and(|u| key >= u) {
                out.error(loc(Corruption::new(
                    CorruptKind::KeyOrderAncestor,
                    format!(
                        "element {i}: key {} is outside the range [{}, {}) set by its ancestors",
                        show(key),
                        lower.map_or("-".into(), show),
                        upper.map_or("-".into(), show)
                    ),
                )));
            }
            if let Some(top) = stack.last_mut() {
                top.prev = Some(key);
            }
            if let Some(child) = child {
                // Child range: [this key, next branch key or our upper bound).
                let next = if i + 1 < usize::from(page.count) {
                    page.branch_element(i + 1).ok().map(|e| e.key)
                } else {
                    upper
                };
                if ancestors.len() >= MAX_DEPTH {
                    out.error(loc(Corruption::new(
                        CorruptKind::TreeTooDeep,
                        format!("bucket tree is deeper than {MAX_DEPTH} levels"),
                    )));
                    continue;
                }
                if let Some(cp) = self.enter_page(out, child, path, &ancestors) {
                    ancestors.push(cp.id);
                    stack.push(Frame {
                        page: cp,
                        index: 0,
                        lower: Some(key),
                        upper: next,
                        prev: None,
                    });
                }
                continue;
            }
            let Some(e) = leaf else { continue };
            if e.flags & !BUCKET_LEAF_FLAG != 0 {
                out.push(
                    Severity::Warning,
                    loc(Corruption::new(
                        CorruptKind::ElementFlags,
                        format!("element {i} has unknown flag bits {:#x}", e.flags),
                    )),
                );
            }
            if !e.is_bucket() {
                out.keys += 1;
                if depth == 0 {
                    out.error(loc(Corruption::new(
                        CorruptKind::RootNonBucket,
                        format!(
                            "the root bucket holds a plain key {}; only buckets belong there",
                            show(key)
                        ),
                    )));
                }
                continue;
            }
            let child_path = path.child(key);
            match Bucket::from_value(self.pages, e.value, e.value_offset) {
                Err(c) => out.error(c.in_bucket(&child_path)),
                Ok(b) => {
                    out.buckets += 1;
                    if depth + 1 > MAX_BUCKET_DEPTH {
                        out.error(loc(Corruption::new(
                            CorruptKind::TreeTooDeep,
                            format!("buckets nest deeper than {MAX_BUCKET_DEPTH} levels"),
                        )));
                    } else if b.is_inline() {
                        self.check_bucket(scope, out, b, &child_path, depth + 1);
                    } else {
                        scope.spawn(move |s| self.task(s, b, child_path, depth + 1));
                    }
                }
            }
        }
    }

    /// Validates and marks a tree page; `None` (with a finding) if its subtree
    /// cannot be followed.
    fn enter_page(
        self,
        out: &mut TaskOut,
        id: Pgid,
        path: &BucketPath,
        ancestors: &[Pgid],
    ) -> Option<Page<'a>> {
        if id < 2 {
            out.error(
                Corruption::new(
                    CorruptKind::PageType,
                    format!("bucket tree refers to meta page {id}"),
                )
                .page(id)
                .in_bucket(path),
            );
            return None;
        }
        if ancestors.contains(&id) {
            out.error(
                Corruption::new(
                    CorruptKind::PageCycle,
                    format!("page {id} is its own ancestor"),
                )
                .page(id)
                .in_bucket(path),
            );
            return None;
        }
        let page = match self.pages.page(id) {
            Ok(p) => p,
            Err(c) => {
                out.error(c.in_bucket(path));
                return None;
            }
        };
        let mut dup = false;
        for p in id..=id.saturating_add(u64::from(page.overflow)) {
            if !self.reachable.insert(p) {
                dup = true;
            }
        }
        if dup {
            out.error(
                Corruption::new(
                    CorruptKind::PageMultipleReferences,
                    format!("page {id} is referenced more than once"),
                )
                .page(id)
                .offset(page.file_offset)
                .in_bucket(path),
            );
            return None;
        }
        match page.kind() {
            Some(PageKind::Branch | PageKind::Leaf) => {}
            _ => {
                out.error(
                    Corruption::new(
                        CorruptKind::PageType,
                        format!(
                            "page {id} is {}, want a branch or leaf",
                            describe_flags(page.flags)
                        ),
                    )
                    .page(id)
                    .offset(page.file_offset)
                    .in_bucket(path),
                );
                return None;
            }
        }
        if let Err(c) = page.check_elements_fit() {
            out.error(c.in_bucket(path));
            return None;
        }
        if page.kind() == Some(PageKind::Branch) && page.count == 0 {
            out.error(
                Corruption::new(
                    CorruptKind::BranchEmpty,
                    format!("branch page {id} has no elements"),
                )
                .page(id)
                .offset(page.file_offset)
                .in_bucket(path),
            );
            return None;
        }
        Some(page)
    }
}

use ctrdb::bolt::check;

use super::common::*;
use super::mutation::mutate;

/// Mutations per fixture.
const MUTATIONS_PER_FIXTURE: u64 = 2_000;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn assert_same(a: &CheckReport, b: &CheckReport, what: &str) {
    assert_eq!(a.findings, b.findings, "{what}: findings differ");
    assert_eq!(a.omitted, b.omitted, "{what}: omitted differ");
    assert_eq!(a.pages, b.pages, "{what}: page counts differ");
    assert_eq!(a.buckets, b.buckets, "{what}: bucket counts differ");
    assert_eq!(a.keys, b.keys, "{what}: key counts differ");
}

#[test]
fn check_matches_the_reference_and_is_deterministic() {
    let (one, four) = (pool(1), pool(4));
    let (mut compared, mut shared) = (0u64, 0u64);
    for (name, path) in fixtures() {
        let original = std::fs::read(&path).unwrap();
        let ps = Db::parse(&original).unwrap().page_size();
        for seed in 0..=MUTATIONS_PER_FIXTURE {
            let mut d = original.clone();
            let what = if seed == 0 {
                format!("{name}: unmodified")
            } else {
                let mut rng = Rng(seed ^ 0x0EC0_0000);
                format!("{name}: seed {seed} ({})", mutate(&mut d, ps, &mut rng))
            };
            let Ok(db) = Db::parse(&d) else { continue };
            let serial = one.install(|| check::check(&db));
            let parallel = four.install(|| check::check(&db));
            let split = four.install(|| check::check_split_everywhere(&db));
            let split_one = one.install(|| check::check_split_everywhere(&db));
            assert_same(&serial, &parallel, &format!("{what}: 1 vs 4 threads"));
            assert_same(
                &serial,
                &split,
                &format!("{what}: serial vs split on 4 threads"),
            );
            assert_same(
                &serial,
                &split_one,
                &format!("{what}: serial vs split on 1 thread"),
            );
            let reference = one.install(|| check_reference(&db));
            let twice = |r: &CheckReport| {
                r.findings
                    .iter()
                    .any(|f| f.corruption.kind == CorruptKind::PageMultipleReferences)
            };
            if twice(&reference) || twice(&serial) {
                shared += 1;
                if std::env::var_os("CHECK_EQUIV_SHOW").is_some()
                    && reference.findings != serial.findings
                {
                    eprintln!("== {what}");
                    for f in &reference.findings {
                        eprintln!("  ref {}", f.corruption);
                    }
                    for f in &serial.findings {
                        eprintln!("  new {}", f.corruption);
                    }
                }
                continue;
            }
            assert_same(
                &reference,
                &serial,
                &format!("{what}: reference vs current"),
            );
            compared += 1;
        }
    }
    eprintln!(
        "check_equiv: {compared} files compared exactly, {shared} with a page referenced twice"
    );
    assert!(compared > 3_000);
}
