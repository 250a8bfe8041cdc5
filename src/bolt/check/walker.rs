//! The checker's walk of the bucket tree: every page of every bucket, its
//! elements and their keys, split across threads.

#![deny(clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::order::Keyed;
use super::{Finding, Severity, MAX_FINDINGS};
use crate::bolt::bucket::{nested_too_deep, Bucket, BucketRoot, MAX_BUCKET_DEPTH};
use crate::bolt::bytes::{u32_at, u64_at};
use crate::bolt::error::{BucketPath, CorruptKind, Corruption, Pgid};
use crate::bolt::layout::*;
use crate::bolt::page::{Page, PageKind, Pages};
use crate::bolt::pageset::PageSet;
use crate::bolt::tree::{self, show, Refusal, MAX_DEPTH};

/// How the tree is walked.
///
/// The first walk descends into each child bucket where its key is, and stops at
/// the first page reached twice; it is split into parallel work unless `Serial`.
/// Only if it stopped, the tree is walked again in Go's order (`GoOrder`) on one
/// thread, which decides which reference to a shared page is followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// On the calling thread.
    Serial,
    /// Hands the largest piece of the remaining walk to the pool whenever no piece
    /// is waiting for an idle thread.
    Adaptive,
    /// Split at every descent (tests: exercises every split path).
    Always,
    /// As Go's tx.Check: a bucket's own pages, then its child buckets in key order;
    /// on the calling thread, to the end.
    GoOrder,
}

/// What a walk of the tree found.
pub(super) struct Walked<'a> {
    pub(super) found: Vec<Keyed<'a>>,
    pub(super) buckets: u64,
    pub(super) keys: u64,
    /// A page was reached a second time (in a mode other than `GoOrder`, whose
    /// findings are then incomplete).
    pub(super) conflict: bool,
}

/// Walks the bucket tree from `root` as `mode` says, marking the pages it
/// enters in `reachable`.
pub(super) fn walk_tree<'a>(
    pages: Pages<'a>,
    reachable: &PageSet,
    root: Pgid,
    mode: Mode,
) -> Walked<'a> {
    let shared = Shared::default();
    let tree = Tree {
        pages,
        reachable,
        shared: &shared,
        mode,
    };
    let unit = Unit {
        path: Vec::new(),
        tag: Vec::new(),
        ancestors: Vec::new(),
        depth: 0,
        start: Start::Root(root),
    };
    match mode {
        Mode::Serial | Mode::GoOrder => tree.run(None, unit),
        Mode::Adaptive | Mode::Always => rayon::scope(|s| tree.run(Some(s), unit)),
    }
    Walked {
        found: shared.found.into_inner().unwrap_or_else(|e| e.into_inner()),
        buckets: shared.buckets.into_inner(),
        keys: shared.keys.into_inner(),
        conflict: shared.conflict.into_inner(),
    }
}

/// What the walkers share: their findings and counts.
#[derive(Default)]
struct Shared<'a> {
    found: Mutex<Vec<Keyed<'a>>>,
    buckets: AtomicU64,
    keys: AtomicU64,
    /// A page was reached a second time.
    conflict: AtomicBool,
    /// Units handed to the pool and not yet started.
    queued: AtomicUsize,
}

/// The shared, copyable context of the tree walk.
#[derive(Clone, Copy)]
struct Tree<'a, 'c> {
    pages: Pages<'a>,
    reachable: &'c PageSet,
    shared: &'c Shared<'a>,
    mode: Mode,
}

/// A page being walked: the next element, the end of the range this walker owns,
/// the key range its ancestors allow and the previous key on the page.
#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    page: Page<'a>,
    index: usize,
    end: usize,
    lower: Option<&'a [u8]>,
    upper: Option<&'a [u8]>,
    prev: Option<&'a [u8]>,
}

impl<'a> Frame<'a> {
    fn new(page: Page<'a>, lower: Option<&'a [u8]>, upper: Option<&'a [u8]>) -> Frame<'a> {
        Frame {
            page,
            index: 0,
            end: usize::from(page.count),
            lower,
            upper,
            prev: None,
        }
    }
}

/// A bucket on a walker's stack.
#[derive(Debug, Clone, Copy)]
struct Level<'a> {
    /// Its key in its parent (unused for the walker's first level, whose path the
    /// walker holds).
    name: &'a [u8],
    /// Index of its root page's frame in the walker's frames.
    first: usize,
    inline: bool,
    /// Bucket nesting depth (the root bucket is 0).
    depth: usize,
    /// Findings this walker kept for this bucket's walk (page-based buckets).
    kept: usize,
    /// Where its deferred child buckets start in the walker's list.
    deferred: usize,
    /// Its next deferred child bucket to walk.
    next: usize,
}

/// A page-based child bucket whose walk waits until its parent's pages are done.
#[derive(Debug, Clone, Copy)]
struct Deferred<'a> {
    name: &'a [u8],
    root: Pgid,
    depth: usize,
}

/// A piece of the tree walk: a bucket's root page, or the rest of a page.
struct Unit<'a> {
    /// Path of the bucket the piece starts in (page-based, or the root).
    path: Vec<&'a [u8]>,
    /// Position of the piece's first page in that bucket's walk.
    tag: Vec<u32>,
    /// Pages above the piece's first page in that bucket's tree.
    ancestors: Vec<Pgid>,
    depth: usize,
    start: Start<'a>,
}

enum Start<'a> {
    /// The root page of the root bucket.
    Root(Pgid),
    /// The rest of a page (already entered and marked).
    Frame(Frame<'a>),
}

/// One thread's walk of a [`Unit`], nested buckets included, with an explicit stack.
struct Walker<'a, 'c> {
    tree: Tree<'a, 'c>,
    path: Vec<&'a [u8]>,
    tag: Vec<u32>,
    ancestors: Vec<Pgid>,
    frames: Vec<Frame<'a>>,
    levels: Vec<Level<'a>>,
    /// Child buckets waiting for their parents' pages (one-thread walk only).
    deferred: Vec<Deferred<'a>>,
    found: Vec<Keyed<'a>>,
    buckets: u64,
    keys: u64,
}

impl<'a, 'c> Tree<'a, 'c> {
    /// Walks `unit` (and whatever it reaches) on this thread, handing pieces to
    /// `scope` as the split policy says.
    fn run<'s>(self, scope: Option<&rayon::Scope<'s>>, unit: Unit<'a>)
    where
        'a: 's,
        'c: 's,
    {
        let mut w = Walker {
            tree: self,
            path: unit.path,
            tag: unit.tag,
            ancestors: unit.ancestors,
            frames: Vec::with_capacity(16),
            levels: Vec::with_capacity(8),
            deferred: Vec::new(),
            found: Vec::new(),
            buckets: 0,
            keys: 0,
        };
        w.push_level(&[], false, unit.depth);
        match unit.start {
            Start::Root(id) => {
                if let Some(p) = w.enter_page(id) {
                    w.frames.push(Frame::new(p, None, None));
                }
            }
            Start::Frame(f) => w.frames.push(f),
        }
        w.walk(scope);
        let shared = self.shared;
        shared.buckets.fetch_add(w.buckets, Ordering::Relaxed);
        shared.keys.fetch_add(w.keys, Ordering::Relaxed);
        if !w.found.is_empty() {
            if let Ok(mut found) = shared.found.lock() {
                found.append(&mut w.found);
            }
        }
    }
}

impl<'a, 'c> Walker<'a, 'c> {
    fn walk<'s>(&mut self, scope: Option<&rayon::Scope<'s>>)
    where
        'a: 's,
        'c: 's,
    {
        loop {
            let first = self.levels.last().map_or(0, |l| l.first);
            let own = self.frames.len() > first;
            let top = match self.frames.last_mut() {
                Some(top) if own => top,
                _ => {
                    // The current bucket's tree is done: its deferred child buckets next.
                    if self.next_bucket() {
                        continue;
                    }
                    break;
                }
            };
            let i = top.index;
            if i >= top.end {
                self.frames.pop();
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
                        self.report(Severity::Error, c, None);
                        None
                    }
                }
            } else {
                match page.leaf_element(i) {
                    Ok(e) => Some((e.key, Some(e), None, e.elem_offset)),
                    Err(c) => {
                        self.report(Severity::Error, c, None);
                        None
                    }
                }
            };
            let Some((key, leaf, child, eoff)) = key else {
                continue;
            };
            let loc = |c: Corruption| {
                let c = c.offset(eoff);
                if page.id != 0 {
                    c.page(page.id)
                } else {
                    c
                }
            };
            for c in tree::key_findings(i, key, prev, lower, upper) {
                self.report(Severity::Error, loc(c), None);
            }
            if let Some(top) = self.frames.last_mut() {
                top.prev = Some(key);
            }
            if let Some(child) = child {
                // Child range: [this key, next branch key or our upper bound).
                let next = if i + 1 < usize::from(page.count) {
                    page.branch_element(i + 1).ok().map(|e| e.key)
                } else {
                    upper
                };
                if self.tree_depth() >= MAX_DEPTH {
                    self.report(Severity::Error, loc(tree::too_deep()), None);
                    continue;
                }
                self.maybe_split(scope);
                if let Some(cp) = self.enter_page(child) {
                    if let Some(c) = tree::child_key_finding(i, key, &cp) {
                        self.report(Severity::Error, loc(c), None);
                    }
                    self.frames.push(Frame::new(cp, Some(key), next));
                }
                continue;
            }
            let Some(e) = leaf else { continue };
            if let Some(c) = tree::flag_finding(i, e.flags) {
                self.report(Severity::Warning, loc(c), None);
            }
            let depth = self.levels.last().map_or(0, |l| l.depth);
            if !e.is_bucket() {
                self.keys += 1;
                if depth == 0 {
                    self.report(
                        Severity::Error,
                        loc(Corruption::new(
                            CorruptKind::RootNonBucket,
                            format!(
                                "the root bucket holds a plain key {}; only buckets belong there",
                                show(key)
                            ),
                        )),
                        None,
                    );
                }
                continue;
            }
            let b = match Bucket::from_value(self.tree.pages, e.value, e.value_offset) {
                Ok(b) => b,
                Err(c) => {
                    self.report(Severity::Error, c, Some(key));
                    continue;
                }
            };
            self.buckets += 1;
            if depth + 1 > MAX_BUCKET_DEPTH {
                self.report(Severity::Error, loc(nested_too_deep()), None);
                continue;
            }
            match b.root_ref() {
                BucketRoot::Inline(bytes, off) => match Page::inline(bytes, off) {
                    Ok(p) => {
                        self.push_level(key, true, depth + 1);
                        self.frames.push(Frame::new(p, None, None));
                    }
                    Err(c) => self.report(Severity::Error, c, Some(key)),
                },
                BucketRoot::Page(id) if self.tree.mode == Mode::GoOrder => {
                    self.deferred.push(Deferred {
                        name: key,
                        root: id,
                        depth: depth + 1,
                    });
                }
                BucketRoot::Page(id) => {
                    self.maybe_split(scope);
                    self.push_level(key, false, depth + 1);
                    if let Some(p) = self.enter_page(id) {
                        self.frames.push(Frame::new(p, None, None));
                    }
                }
            }
        }
    }

    fn push_level(&mut self, name: &'a [u8], inline: bool, depth: usize) {
        self.levels.push(Level {
            name,
            first: self.frames.len(),
            inline,
            depth,
            kept: 0,
            deferred: self.deferred.len(),
            next: self.deferred.len(),
        });
    }

    /// Called when the current bucket's own pages are done: enters its next
    /// deferred child bucket, or leaves it. `false` when the walk is over.
    fn next_bucket(&mut self) -> bool {
        let Some(level) = self.levels.last_mut() else {
            return false;
        };
        if let Some(&d) = self.deferred.get(level.next) {
            level.next += 1;
            self.push_level(d.name, false, d.depth);
            if let Some(p) = self.enter_page(d.root) {
                self.frames.push(Frame::new(p, None, None));
            }
            return true;
        }
        let start = level.deferred;
        self.deferred.truncate(start);
        self.levels.pop();
        !self.levels.is_empty()
    }

    /// The current bucket's tree pages from its root down (the walker's own, plus
    /// those above its first page when the bucket is the walker's first level).
    fn tree_depth(&self) -> usize {
        let first = self.levels.last().map_or(0, |l| l.first);
        let base = if self.levels.len() == 1 {
            self.ancestors.len()
        } else {
            0
        };
        base + self.frames.len().saturating_sub(first)
    }

    /// Whether `id` is a page of the current bucket's tree above this point.
    fn is_ancestor(&self, id: Pgid) -> bool {
        let first = self.levels.last().map_or(0, |l| l.first);
        (self.levels.len() == 1 && self.ancestors.contains(&id))
            || self
                .frames
                .get(first..)
                .is_some_and(|fs| fs.iter().any(|f| f.page.id == id))
    }

    /// The path of the current bucket, plus `child` if given.
    fn bucket_path(&self, child: Option<&[u8]>) -> BucketPath {
        let mut v: Vec<Vec<u8>> = self.path.iter().map(|c| c.to_vec()).collect();
        v.extend(self.levels.iter().skip(1).map(|l| l.name.to_vec()));
        v.extend(child.map(<[u8]>::to_vec));
        BucketPath(v)
    }

    /// Records a finding in the current bucket (or in its child `child`): the path
    /// is materialized here, only for findings.
    fn report(&mut self, severity: Severity, c: Corruption, child: Option<&'a [u8]>) {
        let c = c.in_bucket(&self.bucket_path(child));
        let Some(t) = self.levels.iter().rposition(|l| !l.inline) else {
            return;
        };
        let Some(level) = self.levels.get_mut(t) else {
            return;
        };
        // Bounded per bucket walk; the merge applies the global cap.
        if level.kept > MAX_FINDINGS {
            return;
        }
        level.kept += 1;
        let first = level.first;
        let mut task = self.path.clone();
        task.extend(self.levels.iter().take(t + 1).skip(1).map(|l| l.name));
        let mut tag = if t == 0 { self.tag.clone() } else { Vec::new() };
        tag.extend(
            self.frames
                .get(first..)
                .unwrap_or(&[])
                .iter()
                .map(|f| f.index.saturating_sub(1) as u32),
        );
        self.found.push(Keyed {
            task,
            tag,
            finding: Finding {
                severity,
                corruption: c,
            },
        });
    }

    /// When the policy says so, hands the rest of the shallowest page that has
    /// elements left (in a page-based bucket) to the pool as a new unit.
    fn maybe_split<'s>(&mut self, scope: Option<&rayon::Scope<'s>>)
    where
        'a: 's,
        'c: 's,
    {
        let Some(scope) = scope else { return };
        match self.tree.mode {
            Mode::Serial | Mode::GoOrder => return,
            Mode::Adaptive => {
                // One piece waiting at a time: idle threads take it, and the next
                // descent on any thread offers another.
                if self.tree.shared.queued.load(Ordering::Relaxed) != 0 {
                    return;
                }
            }
            Mode::Always => {}
        }
        let mut li = 0;
        for k in 0..self.frames.len() {
            while self.levels.get(li + 1).is_some_and(|l| l.first <= k) {
                li += 1;
            }
            let (Some(&f), Some(&level)) = (self.frames.get(k), self.levels.get(li)) else {
                return;
            };
            if f.index >= f.end || level.inline {
                continue;
            }
            let mut path = self.path.clone();
            path.extend(self.levels.iter().take(li + 1).skip(1).map(|l| l.name));
            let (mut tag, mut ancestors) = if li == 0 {
                (self.tag.clone(), self.ancestors.clone())
            } else {
                (Vec::new(), Vec::new())
            };
            for g in self.frames.get(level.first..k).unwrap_or(&[]) {
                tag.push(g.index.saturating_sub(1) as u32);
                ancestors.push(g.page.id);
            }
            let unit = Unit {
                path,
                tag,
                ancestors,
                depth: level.depth,
                start: Start::Frame(f),
            };
            if let Some(g) = self.frames.get_mut(k) {
                g.end = g.index;
            }
            let tree = self.tree;
            tree.shared.queued.fetch_add(1, Ordering::Relaxed);
            scope.spawn(move |s| {
                tree.shared.queued.fetch_sub(1, Ordering::Relaxed);
                tree.run(Some(s), unit);
            });
            return;
        }
    }

    /// Validates and marks a tree page of the current bucket; `None` (with a
    /// finding) if its subtree cannot be followed.
    fn enter_page(&mut self, id: Pgid) -> Option<Page<'a>> {
        if self.tree.mode != Mode::GoOrder && self.tree.shared.conflict.load(Ordering::Relaxed) {
            // Another walker reached a page twice: this walk will be redone.
            self.frames.clear();
            return None;
        }
        let reachable = self.tree.reachable;
        let entered = tree::enter(&self.tree.pages, id, self.is_ancestor(id), |page| {
            // Every page of its span, overflow included, belongs to it alone.
            let mut first = true;
            for p in id..=id.saturating_add(u64::from(page.overflow)) {
                first &= reachable.insert_shared(p);
            }
            first
        });
        let page = match entered {
            Ok(page) => page,
            Err(Refusal::Revisit(_)) if self.tree.mode != Mode::GoOrder => {
                // The report will come from a walk in Go's order; stop this one.
                self.tree.shared.conflict.store(true, Ordering::Relaxed);
                self.frames.clear();
                return None;
            }
            Err(r) => {
                self.report(Severity::Error, r.corruption(), None);
                return None;
            }
        };
        prefetch_children(&self.tree.pages, &page, self.tree.mode != Mode::GoOrder);
        Some(page)
    }
}

/// Prefetches ([`Pages::prefetch`]) every page that `page` refers to — the
/// children of a branch; with `buckets`, the root pages of a leaf's page-based
/// buckets — before the walk enters them, so their misses overlap.
fn prefetch_children(pages: &Pages<'_>, page: &Page<'_>, buckets: bool) {
    let branch = match page.kind() {
        Some(PageKind::Branch) => true,
        Some(PageKind::Leaf) if buckets => false,
        _ => return,
    };
    for i in 0..usize::from(page.count) {
        let eoff = PAGE_HEADER_SIZE + i * ELEMENT_SIZE;
        let id = if branch {
            u64_at(page.bytes, eoff + BRANCH_PGID)
        } else {
            let flags = u32_at(page.bytes, eoff + LEAF_FLAGS).unwrap_or(0);
            if flags & BUCKET_LEAF_FLAG == 0 {
                continue;
            }
            let pos = u32_at(page.bytes, eoff + LEAF_POS).unwrap_or(0) as usize;
            let ksize = u32_at(page.bytes, eoff + LEAF_KSIZE).unwrap_or(0) as usize;
            eoff.checked_add(pos)
                .and_then(|v| v.checked_add(ksize))
                .and_then(|v| v.checked_add(BUCKET_ROOT))
                .and_then(|v| u64_at(page.bytes, v))
        };
        if let Some(id) = id.filter(|&id| id >= 2 && id < pages.hwm()) {
            pages.prefetch(id);
        }
    }
}
