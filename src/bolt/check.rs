//! A structural check of a whole file, in the spirit of Go's `tx.Check`, that
//! reports every problem with its page, offset and bucket path and keeps going:
//! a bad page ends only its own subtree, never the check.

use std::sync::Mutex;

use super::bucket::{
    AtomicPageBitmap, Bucket, BucketRoot, PageBitmap, PageSet, MAX_BUCKET_DEPTH, MAX_DEPTH,
};
use super::db::Db;
use super::error::{BucketPath, CorruptKind, Corruption, Pgid};
use super::layout::*;
use super::page::{describe_flags, Page, PageKind, Pages};

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
pub fn check(db: &Db<'_>) -> CheckReport {
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

/// A key for messages: quoted if printable, else hex.
pub fn show(key: &[u8]) -> String {
    if !key.is_empty() && key.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        format!("{:?}", String::from_utf8_lossy(key))
    } else {
        let mut s = String::from("0x");
        for b in key.iter().take(64) {
            s.push_str(&format!("{b:02x}"));
        }
        if key.len() > 64 {
            s.push('…');
        }
        s
    }
}
