//! Salvage reading: a bucket's entries in key order, past damage.
//!
//! The other readers stop at the first page that breaks a rule of
//! [`super::tree`]; a [`SalvageCursor`] reports the key range that page was to
//! cover as a [`Hole`] and goes on with the next one. What it yields is
//! therefore every entry it could read and, in key order between them, the
//! ranges it could not: a caller can fill each hole from another source (the
//! other meta's tree, an orphan page) and knows exactly which keys the hole may
//! have held.
//!
//! Ranges come from the tree itself: a branch element's child covers
//! `[its key, the next element's key)`, within the range its own parent gave.
//! A damaged leaf element covers the keys strictly between the last good key
//! before it and the first good key after it. A hole never covers a key the
//! cursor yielded, and the holes and entries of one bucket are disjoint and
//! in increasing order.
//!
//! A page is refused (and becomes a hole) when it cannot be entered
//! ([`super::tree::enter`]), when its first key differs from the branch key
//! that points to it (a stale or misplaced page), or when the caller's
//! [`PageJudge`] rejects its keys (a page in the wrong place that the format
//! alone cannot see, e.g. a bucket root page whose slot holds an older page).
//! A leaf keeps its good elements: an element is good when it lies inside the
//! page, its key is non-empty, increasing and inside the page's range, its
//! flags are known, and a bucket's header decodes.
//!
//! A leaf's element count is cross-checked with the packing bbolt writes
//! (`node.write` puts the keys and values right after the element array, so
//! element 0's `pos` is `count × 16`): where they disagree and the packing
//! names a count that fits the page, the packing's count is used, since one
//! flipped bit in `count` would otherwise hide elements or invent them.
//! The elements' headers are cross-checked with the same packing: each
//! element's data starts where the one before it ends. A header that breaks
//! that is wrong even when what it points to reads as a good element (a key
//! grown over its neighbours' bytes), so it is read only as the packing places
//! it; breaks that one wrong header field does not explain make the page
//! damaged. [`SalvageCursor::take_notes`] returns such corrections.

#![deny(clippy::indexing_slicing)]

use std::ops::Bound;

use super::bucket::{entry_from_leaf, Bucket, BucketRoot, Entry};
use super::bytes::u32_at;
use super::error::{BucketPath, CorruptKind, Corruption, Pgid};
use super::layout::*;
use super::page::{Page, PageKind, Pages};
use super::pageset::PageSet;
use super::tree::{self, LeafElement, MAX_DEPTH};

/// The pages of one tree that its salvage cursors have entered: a page is
/// entered once per tree, so a page two buckets point to is read by the first
/// and a hole for the second.
#[derive(Debug)]
pub struct Visited(PageSet);

impl Visited {
    /// An empty set for the tree of `tree`.
    pub fn for_tree(tree: &super::db::MetaTree<'_>) -> Visited {
        Visited(PageSet::for_file(&tree.pages()))
    }

    /// Marks every page `tree` reaches: its branch and leaf pages and, through
    /// bucket values, every nested bucket's. Damage ends the walk below it and
    /// nothing else; a page already marked is not entered again (so trees that
    /// share subtrees are walked once, and no file makes the walk loop).
    pub fn mark_reached<'a>(&mut self, tree: &super::db::MetaTree<'a>) {
        let pages = tree.pages();
        let Ok(root) = tree.root() else {
            return;
        };
        let mut buckets = vec![root];
        let mut stack: Vec<(Pgid, usize)> = Vec::new();
        while let Some(b) = buckets.pop() {
            match b.root_ref() {
                BucketRoot::Inline(..) => {
                    // An inline bucket holds no page ids but its own image's.
                    if let Ok(page) = b.root_page() {
                        nested_buckets(&pages, &page, &mut buckets);
                    }
                    continue;
                }
                BucketRoot::Page(id) => stack.push((id, 0)),
            }
            while let Some((id, depth)) = stack.pop() {
                if id < 2 || depth > MAX_DEPTH || !self.0.insert(id) {
                    continue;
                }
                let Ok(page) = pages.page(id) else {
                    continue;
                };
                if tree::node(&page).is_err() {
                    continue;
                }
                if page.kind() == Some(PageKind::Leaf) {
                    nested_buckets(&pages, &page, &mut buckets);
                } else {
                    for i in 0..usize::from(page.count) {
                        if let Ok(e) = page.branch_element(i) {
                            stack.push((e.child, depth + 1));
                        }
                    }
                }
            }
        }
    }

    /// Whether page `id` is marked.
    pub fn contains(&self, id: Pgid) -> bool {
        self.0.contains(id)
    }
}

/// Which bucket each page of one tree belongs to: the bucket whose B+tree
/// reaches it first in a walk from the root (each page entered once, so no
/// file makes the walk loop). Pages the walk cannot read are left out.
///
/// In a valid file a page both meta trees reach belongs to the same bucket in
/// both: bbolt writes every change to pages free in both trees, so a shared
/// page is an unchanged subtree at an unchanged place (only `MoveBucket`,
/// which moves a subtree whole, breaks this).
#[derive(Debug, Default)]
pub struct PageOwners {
    paths: Vec<BucketPath>,
    owner: std::collections::HashMap<Pgid, u32>,
}

impl PageOwners {
    /// The owners of `tree`'s pages.
    pub fn of_tree(tree: &super::db::MetaTree<'_>) -> PageOwners {
        let mut out = PageOwners::default();
        let pages = tree.pages();
        let Ok(root) = tree.root() else {
            return out;
        };
        let mut buckets = vec![(root, BucketPath::root())];
        let mut stack: Vec<(Pgid, usize)> = Vec::new();
        let mut found = Vec::new();
        while let Some((b, path)) = buckets.pop() {
            if path.0.len() > super::MAX_BUCKET_DEPTH {
                continue;
            }
            // Only buckets that own pages keep their path.
            let mut index = None;
            match b.root_ref() {
                BucketRoot::Inline(..) => {
                    if let Ok(page) = b.root_page() {
                        named_buckets(&pages, &page, &mut found);
                    }
                }
                BucketRoot::Page(id) => stack.push((id, 0)),
            }
            while let Some((id, depth)) = stack.pop() {
                if id < 2 || depth > MAX_DEPTH || out.owner.contains_key(&id) {
                    continue;
                }
                let Ok(page) = pages.page(id) else {
                    continue;
                };
                if tree::node(&page).is_err() {
                    continue;
                }
                let i = *index.get_or_insert_with(|| {
                    out.paths.push(path.clone());
                    u32::try_from(out.paths.len() - 1).unwrap_or(u32::MAX)
                });
                out.owner.insert(id, i);
                if page.kind() == Some(PageKind::Leaf) {
                    named_buckets(&pages, &page, &mut found);
                } else {
                    for i in 0..usize::from(page.count) {
                        if let Ok(e) = page.branch_element(i) {
                            stack.push((e.child, depth + 1));
                        }
                    }
                }
            }
            buckets.extend(found.drain(..).map(|(key, x)| (x, path.child(key))));
        }
        out
    }

    /// The bucket page `id` belongs to, if the tree reaches it.
    pub fn owner(&self, id: Pgid) -> Option<&BucketPath> {
        let i = *self.owner.get(&id)?;
        self.paths.get(usize::try_from(i).ok()?)
    }
}

/// The buckets a leaf's elements hold, with their keys.
fn named_buckets<'a>(pages: &Pages<'a>, page: &Page<'a>, out: &mut Vec<(&'a [u8], Bucket<'a>)>) {
    for i in 0..usize::from(page.count) {
        let Ok(e) = page.leaf_element(i) else {
            continue;
        };
        if let Ok(Entry {
            key,
            kind: super::bucket::EntryKind::Bucket(x),
        }) = entry_from_leaf(pages, &e)
        {
            out.push((key, x));
        }
    }
}

/// The buckets a leaf's elements hold.
fn nested_buckets<'a>(pages: &Pages<'a>, page: &Page<'a>, out: &mut Vec<Bucket<'a>>) {
    for i in 0..usize::from(page.count) {
        let Ok(e) = page.leaf_element(i) else {
            continue;
        };
        if let Ok(Entry {
            kind: super::bucket::EntryKind::Bucket(x),
            ..
        }) = entry_from_leaf(pages, &e)
        {
            out.push(x);
        }
    }
}

/// A well-formed leaf page that no tree reaches: an earlier version of a node
/// (bbolt writes every change to a new page and leaves the old one in place
/// until a later transaction reuses it), or a current page below a branch the
/// damage destroyed.
#[derive(Debug, Clone, Copy)]
pub struct OrphanLeaf<'a> {
    /// The page.
    pub page: Page<'a>,
    /// Its first key.
    pub first: &'a [u8],
    /// Its last key.
    pub last: &'a [u8],
}

impl<'a> OrphanLeaf<'a> {
    /// Its entries, in key order (every element is good: the scan admitted
    /// only such pages).
    pub fn entries(&self, pages: &Pages<'a>) -> Vec<Entry<'a>> {
        (0..usize::from(self.page.count))
            .filter_map(|i| self.page.leaf_element(i).ok())
            .filter_map(|e| entry_from_leaf(pages, &e).ok())
            .collect()
    }

    /// Its keys, each with whether it names a bucket, as a [`PageJudge`]
    /// sees them.
    pub fn keys(&self) -> Vec<(&'a [u8], bool)> {
        (0..usize::from(self.page.count))
            .filter_map(|i| self.page.leaf_element(i).ok())
            .map(|e| (e.key, e.is_bucket()))
            .collect()
    }
}

/// What [`orphan_leaves`] looked at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrphanScan {
    /// Pages read (those no tree reaches, below the high-water mark).
    pub pages_read: u64,
    /// Of them, well-formed leaves.
    pub leaves: u64,
}

/// The well-formed leaf pages of `pages` (below its high-water mark) that
/// `reached` does not hold, in page order. A page is well formed when its
/// header names its own id and exactly the leaf flag, it has elements, and
/// every element is good: inside the page, its data where the packing puts
/// it, a non-empty key above the one before it, known flags, a bucket value
/// that decodes. Each page is read
/// once; an admitted leaf's overflow pages are skipped.
pub fn orphan_leaves<'a>(
    pages: &Pages<'a>,
    reached: &Visited,
) -> (Vec<OrphanLeaf<'a>>, OrphanScan) {
    let mut out = Vec::new();
    let mut scan = OrphanScan::default();
    let in_file = (pages.data().len() / pages.page_size()) as u64;
    let end = pages.hwm().min(in_file);
    let mut id = 2;
    while id < end {
        let next = id + 1;
        if reached.contains(id) {
            id = next;
            continue;
        }
        scan.pages_read += 1;
        let Ok(page) = pages.page(id) else {
            id = next;
            continue;
        };
        match well_formed_leaf(pages, page) {
            Some(leaf) => {
                scan.leaves += 1;
                out.push(leaf);
                id = id
                    .saturating_add(u64::from(page.overflow))
                    .saturating_add(1);
            }
            None => id = next,
        }
    }
    (out, scan)
}

fn well_formed_leaf<'a>(pages: &Pages<'a>, page: Page<'a>) -> Option<OrphanLeaf<'a>> {
    if page.flags != LEAF_PAGE || page.count == 0 || tree::node(&page).is_err() {
        return None;
    }
    if packing(&page, usize::from(page.count)).ok()? != Packing::Tiled {
        return None;
    }
    let mut first = None;
    let mut last: Option<&[u8]> = None;
    for i in 0..usize::from(page.count) {
        let e = page.leaf_element(i).ok()?;
        let known = e.flags & !BUCKET_LEAF_FLAG == 0;
        if e.key.is_empty() || !known || last.is_some_and(|l| l >= e.key) {
            return None;
        }
        entry_from_leaf(pages, &e).ok()?;
        first.get_or_insert(e.key);
        last = Some(e.key);
    }
    Some(OrphanLeaf {
        page,
        first: first?,
        last: last?,
    })
}

/// A key range a cursor could not read.
#[derive(Debug, Clone)]
pub struct Hole<'a> {
    /// Lowest key the range may hold.
    pub lower: Bound<&'a [u8]>,
    /// Highest key the range may hold.
    pub upper: Bound<&'a [u8]>,
    /// The page that failed (`None` for an inline bucket's page).
    pub page: Option<Pgid>,
    /// Why.
    pub cause: Corruption,
}

impl Hole<'_> {
    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        contains(self.lower, self.upper, key)
    }
}

/// Whether `key` lies in `[lower, upper]` with those bounds.
pub fn contains(lower: Bound<&[u8]>, upper: Bound<&[u8]>, key: &[u8]) -> bool {
    let above = match lower {
        Bound::Unbounded => true,
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
    };
    let below = match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => key <= u,
        Bound::Excluded(u) => key < u,
    };
    above && below
}

/// One step of a salvage cursor.
#[derive(Debug, Clone)]
pub enum Item<'a> {
    /// An entry read whole.
    Entry(Entry<'a>),
    /// A range that could not be read.
    Hole(Hole<'a>),
}

/// What a page holds, for a [`PageJudge`]: its kind and its keys, each with
/// whether it names a bucket (always `false` on a branch page).
#[derive(Debug)]
pub struct PageKeys<'p, 'a> {
    /// Branch or leaf.
    pub kind: PageKind,
    /// Whether it is the bucket's root page (a root leaf holds the whole bucket).
    pub root: bool,
    /// The readable keys, in page order.
    pub keys: &'p [(&'a [u8], bool)],
    /// Their values (a bucket's header and, inline, its page), where known:
    /// empty, or one per key (empty on a branch page).
    pub values: &'p [&'a [u8]],
}

impl<'a> PageKeys<'_, 'a> {
    /// The keys at the top of the inline bucket that key `i` names, if it is
    /// one and its page can be read (a leaf whose elements lie inside it).
    pub fn inline_keys(&self, i: usize) -> Option<Vec<&'a [u8]>> {
        let (_, bucket) = self.keys.get(i)?;
        let value = *self.values.get(i)?;
        if !bucket || value.get(..8)? != [0u8; 8] {
            return None;
        }
        let image = value.get(BUCKET_HEADER_SIZE..)?;
        let page = Page::inline(image, 0).ok()?;
        if page.kind() != Some(PageKind::Leaf) {
            return None;
        }
        (0..usize::from(page.count))
            .map(|e| page.leaf_element(e).ok().map(|x| x.key))
            .collect()
    }
}

/// Decides whether a page of one bucket is plausible there: `Some(reason)`
/// refuses it.
pub trait PageJudge {
    /// Judges a page of the bucket.
    fn judge(&self, page: &PageKeys<'_, '_>) -> Option<String>;
}

/// What a leaf's packing says about its element headers. bbolt writes the
/// keys and values right after the element array, back to back in element
/// order, so element `j`'s data starts where element `j − 1`'s ends (element
/// 0's right after the array): each boundary between two elements is named
/// twice, by the end of the one and the start of the other. One wrong field
/// breaks one boundary (a wrong `ksize` or `vsize`: the end of its element)
/// or two adjacent ones (a wrong `pos`: both ends of its element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    /// Every boundary agrees.
    Tiled,
    /// The breaks are those of one wrong field of this element's header: it is
    /// read only as the packing places it.
    Wrong(usize),
    /// The last boundary between elements breaks alone: this element's size
    /// or the last element's `pos` is wrong, and neither reading of the two
    /// fits better than the other, so neither element is read.
    Unsettled(usize),
}

/// How one element's header stands with the packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Not contradicted: read as its header says.
    Fits,
    /// Proven wrong: read as the packing places it, or not at all.
    Wrong,
    /// One of two elements is wrong and the packing cannot say which.
    Unsettled,
}

impl Packing {
    fn verdict(self, i: usize) -> Verdict {
        match self {
            Packing::Wrong(w) if w == i => Verdict::Wrong,
            Packing::Unsettled(u) if u == i || u.checked_add(1) == Some(i) => Verdict::Unsettled,
            _ => Verdict::Fits,
        }
    }
}

/// Where element `j`'s data starts and ends in `bytes` (a leaf page), by its
/// header alone.
fn extent(bytes: &[u8], j: usize) -> Option<(usize, usize)> {
    let at = j.checked_mul(ELEMENT_SIZE)?.checked_add(PAGE_HEADER_SIZE)?;
    let pos = u32_at(bytes, at + LEAF_POS)? as usize;
    let k = u32_at(bytes, at + LEAF_KSIZE)? as usize;
    let v = u32_at(bytes, at + LEAF_VSIZE)? as usize;
    let start = at.checked_add(pos)?;
    Some((start, start.checked_add(k)?.checked_add(v)?))
}

/// The packing of a leaf of `count` elements, or why the page is damaged:
/// its boundaries break where no one wrong field would break them.
fn packing(page: &Page<'_>, count: usize) -> Result<Packing, Corruption> {
    let b = page.bytes;
    let mut breaks: Vec<usize> = Vec::new();
    let mut end = count
        .checked_mul(ELEMENT_SIZE)
        .and_then(|n| n.checked_add(PAGE_HEADER_SIZE));
    for j in 0..count {
        let ext = extent(b, j);
        if end.is_none() || end != ext.map(|(start, _)| start) {
            breaks.push(j);
            if breaks.len() > 2 {
                break;
            }
        }
        end = ext.map(|(_, e)| e);
    }
    let last = count.saturating_sub(1);
    match *breaks.as_slice() {
        [] => Ok(Packing::Tiled),
        // The only element's pos.
        [0] if count == 1 => Ok(Packing::Wrong(0)),
        [j] if j > 0 && j == last => Ok(Packing::Unsettled(j - 1)),
        // The size of the element before the break.
        [j] if j > 0 => Ok(Packing::Wrong(j - 1)),
        // The pos of the element between the breaks.
        [j, k] if k == j + 1 => Ok(Packing::Wrong(j)),
        _ => {
            let c = Corruption::new(
                CorruptKind::ElementOutOfPage,
                format!(
                    "leaf page {}: its elements' data does not lie back to back (the element before {} ends elsewhere than it starts), which no one wrong header field explains",
                    page.id,
                    breaks
                        .iter()
                        .map(|j| format!("element {j}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            Err(locate(page, c, page.file_offset))
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    page: Page<'a>,
    /// Elements to read (the header's count, or the packing's).
    count: usize,
    /// Which element headers the packing proves wrong (leaves only).
    packing: Packing,
    index: usize,
    lower: Bound<&'a [u8]>,
    upper: Bound<&'a [u8]>,
}

/// An ordered cursor over one bucket that reports damage as holes.
#[derive(Debug)]
pub struct SalvageCursor<'a, J> {
    bucket: Bucket<'a>,
    judge: J,
    stack: Vec<Frame<'a>>,
    started: bool,
    /// What the next key must be above (or at): after the last key yielded,
    /// or at the end of the last hole.
    floor: Bound<&'a [u8]>,
    keys: Vec<(&'a [u8], bool)>,
    values: Vec<&'a [u8]>,
    notes: Vec<Corruption>,
}

impl<'a, J: PageJudge> SalvageCursor<'a, J> {
    /// A cursor over `bucket`, judging its pages with `judge`.
    pub fn new(bucket: Bucket<'a>, judge: J) -> Self {
        SalvageCursor {
            bucket,
            judge,
            stack: Vec::new(),
            started: false,
            floor: Bound::Unbounded,
            keys: Vec::new(),
            values: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Damage the cursor corrected without losing an entry (so far), oldest first.
    pub fn take_notes(&mut self) -> Vec<Corruption> {
        std::mem::take(&mut self.notes)
    }

    /// The next entry or hole. `seen` holds the pages of this tree entered so
    /// far (a page entered twice is refused: it belongs elsewhere).
    pub fn next_item(&mut self, seen: &mut Visited) -> Option<Item<'a>> {
        let seen = &mut seen.0;
        if !self.started {
            self.started = true;
            let pages = self.bucket.pages();
            let root = match self.bucket.root_ref() {
                BucketRoot::Inline(..) => self.bucket.root_page(),
                BucketRoot::Page(id) => tree::enter(&pages, id, false, |_| seen.insert(id))
                    .map_err(tree::Refusal::corruption),
            };
            match root.and_then(|p| self.admit(p, Bound::Unbounded, Bound::Unbounded)) {
                Ok(frame) => self.stack.push(frame),
                Err(cause) => {
                    let page = match self.bucket.root_ref() {
                        BucketRoot::Page(id) => Some(id),
                        BucketRoot::Inline(..) => None,
                    };
                    return Some(self.hole(Bound::Unbounded, Bound::Unbounded, page, cause));
                }
            }
        }
        loop {
            let top = *self.stack.last()?;
            if top.index >= top.count {
                self.stack.pop();
                continue;
            }
            let item = if top.page.kind() == Some(PageKind::Leaf) {
                self.leaf_step(top)
            } else {
                self.branch_step(top, seen)
            };
            if let Some(item) = item {
                return Some(item);
            }
        }
    }

    /// A page accepted into the stack: its count settled, its keys judged.
    fn admit(
        &mut self,
        page: Page<'a>,
        lower: Bound<&'a [u8]>,
        upper: Bound<&'a [u8]>,
    ) -> Result<Frame<'a>, Corruption> {
        let kind = page.kind().unwrap_or(PageKind::Leaf);
        let (count, packing) = match kind {
            PageKind::Leaf => {
                let count = self.leaf_count(&page);
                (count, self.settle(&page, count, packing(&page, count)?))
            }
            _ => (usize::from(page.count), Packing::Tiled),
        };
        self.keys.clear();
        self.values.clear();
        let frame = Frame {
            page,
            count,
            packing,
            index: 0,
            lower,
            upper,
        };
        let pages = self.bucket.pages();
        // A bucket element whose header does not decode says nothing about
        // what the page holds: a flipped flag bit makes a value look like a
        // bucket of that name.
        let decodes = |e: &LeafElement<'a>| !e.is_bucket() || entry_from_leaf(&pages, e).is_ok();
        for i in 0..count {
            match kind {
                PageKind::Leaf => {
                    let e = match packing.verdict(i) {
                        Verdict::Fits => page.leaf_element(i).ok(),
                        Verdict::Wrong => {
                            let readings: Vec<_> = self
                                .repacked(&frame, i)
                                .into_iter()
                                .filter(|e| decodes(e))
                                .collect();
                            match readings.as_slice() {
                                [one] => Some(*one),
                                _ => None,
                            }
                        }
                        Verdict::Unsettled => None,
                    };
                    if let Some(e) = e.filter(|e| decodes(e)) {
                        self.keys.push((e.key, e.is_bucket()));
                        self.values.push(e.value);
                    }
                }
                _ => {
                    if let Ok(e) = page.branch_element(i) {
                        self.keys.push((e.key, false));
                        self.values.push(&[]);
                    }
                }
            }
        }
        let view = PageKeys {
            kind,
            root: self.stack.is_empty(),
            keys: &self.keys,
            values: &self.values,
        };
        if let Some(reason) = self.judge.judge(&view) {
            let c = Corruption::new(
                CorruptKind::PageMisplaced,
                format!("page {} does not belong here: {reason}", page.id),
            );
            return Err(locate(&page, c, page.file_offset));
        }
        Ok(frame)
    }

    /// The number of elements to read from a leaf: the header's, unless the
    /// packing of element 0 names another that fits the page.
    fn leaf_count(&mut self, page: &Page<'a>) -> usize {
        let header = usize::from(page.count);
        let Some(pos) = u32_at(page.bytes, PAGE_HEADER_SIZE + LEAF_POS) else {
            return header;
        };
        let pos = pos as usize;
        if !pos.is_multiple_of(ELEMENT_SIZE) || pos / ELEMENT_SIZE == header {
            return header;
        }
        let packed = pos / ELEMENT_SIZE;
        let fits = packed
            .checked_mul(ELEMENT_SIZE)
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE))
            .is_some_and(|n| n <= page.bytes.len());
        if packed == 0 || packed >= MAX_ELEMENTS || !fits {
            return header;
        }
        let c = Corruption::new(
            CorruptKind::ElementsOverflow,
            format!(
                "leaf page {} says it holds {header} elements, but its elements are packed for {packed}; read as {packed}",
                page.id
            ),
        );
        self.notes.push(locate(page, c, page.file_offset));
        packed
    }

    /// Decides an [`Packing::Unsettled`] pair by the readings each case gives:
    /// where the element's size is wrong it is read as the packing places it
    /// and the last element as its header says, where the last element's
    /// `pos` is wrong the other way round. A case whose readings do not give
    /// keys increasing from the element before the pair, or a bucket header
    /// that decodes, is not the one; if exactly one case is left, it settles
    /// the pair.
    fn settle(&self, page: &Page<'a>, count: usize, packing: Packing) -> Packing {
        let Packing::Unsettled(j) = packing else {
            return packing;
        };
        let last = j + 1;
        let pages = self.bucket.pages();
        let good = |e: &LeafElement<'a>| !e.key.is_empty() && entry_from_leaf(&pages, e).is_ok();
        let before = j
            .checked_sub(1)
            .and_then(|p| page.leaf_element(p).ok())
            .map(|e| e.key);
        let increasing = |a: &LeafElement<'a>, b: &LeafElement<'a>| {
            good(a) && good(b) && before.is_none_or(|k| k < a.key) && a.key < b.key
        };
        let reading = |wrong: usize| Frame {
            page: *page,
            count,
            packing: Packing::Wrong(wrong),
            index: 0,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        };
        let size_wrong = page.leaf_element(last).is_ok_and(|l| {
            self.repacked(&reading(j), j)
                .iter()
                .any(|e| increasing(e, &l))
        });
        let pos_wrong = page.leaf_element(j).is_ok_and(|e| {
            self.repacked(&reading(last), last)
                .iter()
                .any(|l| increasing(&e, l))
        });
        match (size_wrong, pos_wrong) {
            (true, false) => Packing::Wrong(j),
            (false, true) => Packing::Wrong(last),
            _ => packing,
        }
    }

    /// Element `i` of a leaf, if it is good: readable, its key non-empty, at
    /// or above `floor` and inside the frame's range and, for a bucket, its
    /// header decodable. An element whose header breaks that, or that the
    /// page's packing proves wrong, is read again as the packing places it
    /// ([`Self::repacked`]); then, and for unknown flag bits (which bbolt
    /// ignores), the second value says what was wrong.
    fn good_leaf(
        &self,
        frame: &Frame<'a>,
        i: usize,
        floor: Bound<&'a [u8]>,
    ) -> Result<(Entry<'a>, Option<Corruption>), Corruption> {
        let page = frame.page;
        let elem_offset = page
            .file_offset
            .saturating_add((PAGE_HEADER_SIZE + i * ELEMENT_SIZE) as u64);
        let first = match frame.packing.verdict(i) {
            Verdict::Fits => match page.leaf_element(i) {
                Ok(e) => match self.check_leaf(frame, i, &e, floor) {
                    Ok(entry) => {
                        let note = tree::flag_finding(i, e.flags)
                            .map(|c| locate(&page, c, e.elem_offset));
                        return Ok((entry, note));
                    }
                    // Its neighbours' headers fit the packing, so no other
                    // reading of this one does.
                    Err(c) => return Err(c),
                },
                Err(c) => return Err(c),
            },
            Verdict::Wrong => locate(
                &page,
                Corruption::new(
                    CorruptKind::ElementOutOfPage,
                    format!(
                        "leaf element {i}: its header does not fit the page's packing (its data does not start where the element before it ends, or does not end where the next one starts)"
                    ),
                ),
                elem_offset,
            ),
            Verdict::Unsettled => {
                return Err(locate(
                    &page,
                    Corruption::new(
                        CorruptKind::ElementOutOfPage,
                        format!(
                            "leaf element {i}: its data and its neighbour's do not meet, and the packing cannot say whose header is wrong"
                        ),
                    ),
                    elem_offset,
                ))
            }
        };
        let mut found = None;
        for e in self.repacked(frame, i) {
            if let Ok(entry) = self.check_leaf(frame, i, &e, floor) {
                if found.is_some() {
                    // Two readings fit: the packing does not decide.
                    return Err(first);
                }
                found = Some(entry);
            }
        }
        match found {
            Some(entry) => {
                let note = Corruption::new(
                    first.kind,
                    format!(
                        "{}; read as the packing of the page places it (key {})",
                        first.message,
                        tree::show(entry.key)
                    ),
                );
                let note = Corruption {
                    page: first.page,
                    offset: first.offset,
                    ..note
                };
                Ok((entry, Some(note)))
            }
            None => Err(first),
        }
    }

    /// The checks of [`Self::good_leaf`] on a decoded element.
    fn check_leaf(
        &self,
        frame: &Frame<'a>,
        i: usize,
        e: &LeafElement<'a>,
        floor: Bound<&'a [u8]>,
    ) -> Result<Entry<'a>, Corruption> {
        let page = frame.page;
        let at = |c: Corruption| locate(&page, c, e.elem_offset);
        if e.key.is_empty() {
            return Err(at(Corruption::new(
                CorruptKind::KeyEmpty,
                format!("element {i} has an empty key"),
            )));
        }
        if !contains(floor, Bound::Unbounded, e.key) {
            return Err(at(Corruption::new(
                CorruptKind::KeyOrder,
                format!(
                    "element {i}: key {} is not above the keys before it",
                    tree::show(e.key)
                ),
            )));
        }
        if !contains(frame.lower, frame.upper, e.key) {
            return Err(at(Corruption::new(
                CorruptKind::KeyOrderAncestor,
                format!(
                    "element {i}: key {} is outside the range its ancestors set",
                    tree::show(e.key)
                ),
            )));
        }
        entry_from_leaf(&self.bucket.pages(), e)
    }

    /// Readings of leaf element `i` that the page's packing allows when its
    /// header is wrong. bbolt writes a leaf's keys and values back to back
    /// after the element array, in element order, so element `i`'s key starts
    /// where element `i − 1`'s value ends (element 0's right after the array)
    /// and element `i + 1`'s key starts where its value ends: one wrong field
    /// of `pos`, `ksize`, `vsize` is fixed by the other two. Every reading
    /// takes its bytes from the page as they are.
    fn repacked(&self, frame: &Frame<'a>, i: usize) -> Vec<LeafElement<'a>> {
        let page = frame.page;
        let b = page.bytes;
        let elem = |j: usize| -> Option<(u32, usize, usize, usize)> {
            let at = j.checked_mul(ELEMENT_SIZE)?.checked_add(PAGE_HEADER_SIZE)?;
            let f = u32_at(b, at + LEAF_FLAGS)?;
            let pos = u32_at(b, at + LEAF_POS)? as usize;
            let k = u32_at(b, at + LEAF_KSIZE)? as usize;
            let v = u32_at(b, at + LEAF_VSIZE)? as usize;
            Some((f, at.checked_add(pos)?, k, v))
        };
        let inside =
            |start: usize, len: usize| start.checked_add(len).is_some_and(|e| e <= b.len());
        let Some((flags, start, k, v)) = elem(i) else {
            return Vec::new();
        };
        let expected = if i == 0 {
            frame
                .count
                .checked_mul(ELEMENT_SIZE)
                .and_then(|n| n.checked_add(PAGE_HEADER_SIZE))
        } else {
            elem(i - 1).and_then(|(_, s, pk, pv)| {
                let end = s.checked_add(pk)?.checked_add(pv)?;
                (end <= b.len()).then_some(end)
            })
        };
        let Some(expected) = expected else {
            return Vec::new();
        };
        let next = if i + 1 < frame.count {
            elem(i + 1)
                .map(|(_, s, _, _)| s)
                .filter(|&s| s >= expected && s <= b.len())
        } else {
            None
        };
        let mut readings: Vec<(usize, usize)> = Vec::new();
        match next {
            Some(end) => {
                let total = end - expected;
                if start != expected && k.checked_add(v) == Some(total) {
                    readings.push((k, v));
                }
                if start == expected && k.checked_add(v) != Some(total) {
                    if v < total {
                        readings.push((total - v, v));
                    }
                    if k > 0 && k <= total {
                        readings.push((k, total - k));
                    }
                }
            }
            None => {
                if start != expected && k.checked_add(v).is_some_and(|n| inside(expected, n)) {
                    readings.push((k, v));
                }
            }
        }
        let elem_offset = page
            .file_offset
            .saturating_add((PAGE_HEADER_SIZE + i * ELEMENT_SIZE) as u64);
        readings
            .into_iter()
            .filter_map(|(k, v)| {
                let key = b.get(expected..expected.checked_add(k)?)?;
                let vstart = expected.checked_add(k)?;
                let value = b.get(vstart..vstart.checked_add(v)?)?;
                Some(LeafElement {
                    flags,
                    key,
                    value,
                    value_offset: page.file_offset.saturating_add(vstart as u64),
                    elem_offset,
                })
            })
            .collect()
    }

    fn leaf_step(&mut self, frame: Frame<'a>) -> Option<Item<'a>> {
        let i = frame.index;
        let cause = match self.good_leaf(&frame, i, self.floor) {
            Ok((entry, note)) => {
                self.notes.extend(note);
                self.advance(i + 1);
                self.floor = Bound::Excluded(entry.key);
                return Some(Item::Entry(entry));
            }
            Err(c) => c,
        };
        // Elements i.. are bad until the next good one, whose key ends the hole.
        let lower = tighter_lower(self.floor, frame.lower);
        let mut j = i + 1;
        let mut upper = frame.upper;
        while j < frame.count {
            if let Ok(e) = self.good_leaf(&frame, j, lower) {
                upper = Bound::Excluded(e.0.key);
                break;
            }
            j += 1;
        }
        self.advance(j);
        let page = (frame.page.id != 0).then_some(frame.page.id);
        Some(self.hole(lower, upper, page, cause))
    }

    fn branch_step(&mut self, frame: Frame<'a>, seen: &mut PageSet) -> Option<Item<'a>> {
        let page = frame.page;
        let i = frame.index;
        let e = match page.branch_element(i) {
            Ok(e) => e,
            Err(c) => {
                // The element's child range is unknown: from the floor to the
                // next readable element's key.
                let lower = tighter_lower(self.floor, frame.lower);
                let mut j = i + 1;
                let mut upper = frame.upper;
                while j < frame.count {
                    if let Ok(n) = page.branch_element(j) {
                        if contains(lower, frame.upper, n.key) {
                            upper = Bound::Excluded(n.key);
                            break;
                        }
                    }
                    j += 1;
                }
                self.advance(j);
                return Some(self.hole(lower, upper, Some(page.id), c));
            }
        };
        self.advance(i + 1);
        let lower = tighter_lower(Bound::Included(e.key), frame.lower);
        let upper = match page.branch_element(i + 1) {
            Ok(n) if i + 1 < frame.count && n.key > e.key => Bound::Excluded(n.key),
            _ => frame.upper,
        };
        let refuse = |c: Corruption| c.page(page.id).offset(e.elem_offset);
        let cause = if page.id == 0 {
            Some(refuse(Corruption::new(
                CorruptKind::PageType,
                "an inline bucket's page is a branch".to_string(),
            )))
        } else if self.stack.len() >= MAX_DEPTH {
            Some(refuse(tree::too_deep()))
        } else if !contains(frame.lower, frame.upper, e.key)
            || !contains(self.floor, Bound::Unbounded, e.key)
        {
            Some(refuse(Corruption::new(
                CorruptKind::KeyOrderAncestor,
                format!(
                    "branch element {i}: key {} is out of order or outside the range its ancestors set",
                    tree::show(e.key)
                ),
            )))
        } else {
            None
        };
        if let Some(cause) = cause {
            let lower = tighter_lower(self.floor, lower);
            return Some(self.hole(lower, upper, Some(e.child), cause));
        }
        let pages = self.bucket.pages();
        let ancestor = self.stack.iter().any(|f| f.page.id == e.child);
        let child = match tree::enter(&pages, e.child, ancestor, |_| seen.insert(e.child)) {
            Ok(child) => child,
            Err(r) => return Some(self.hole(lower, upper, Some(e.child), r.corruption())),
        };
        if let Some(c) = tree::child_key_finding(i, e.key, &child) {
            return Some(self.hole(lower, upper, Some(e.child), refuse(c)));
        }
        match self.admit(child, lower, upper) {
            Ok(frame) => {
                self.stack.push(frame);
                None
            }
            Err(c) => Some(self.hole(lower, upper, Some(e.child), c)),
        }
    }

    fn advance(&mut self, to: usize) {
        if let Some(top) = self.stack.last_mut() {
            top.index = to;
        }
    }

    /// A hole, after which keys continue at its upper bound; a hole that runs
    /// to the end of the bucket ends the cursor.
    fn hole(
        &mut self,
        lower: Bound<&'a [u8]>,
        upper: Bound<&'a [u8]>,
        page: Option<Pgid>,
        cause: Corruption,
    ) -> Item<'a> {
        match upper {
            Bound::Excluded(u) => self.floor = Bound::Included(u),
            Bound::Included(u) => self.floor = Bound::Excluded(u),
            Bound::Unbounded => self.stack.clear(),
        }
        Item::Hole(Hole {
            lower,
            upper,
            page,
            cause,
        })
    }
}

/// `c` at absolute `offset`, on `page` unless it is an inline bucket's page.
fn locate(page: &Page<'_>, c: Corruption, offset: u64) -> Corruption {
    let c = c.offset(offset);
    if page.id != 0 {
        c.page(page.id)
    } else {
        c
    }
}

fn bound_key(b: Bound<&[u8]>) -> Option<&[u8]> {
    match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    }
}

/// The higher of two lower bounds.
fn tighter_lower<'a>(a: Bound<&'a [u8]>, b: Bound<&'a [u8]>) -> Bound<&'a [u8]> {
    match (bound_key(a), bound_key(b)) {
        (None, _) => b,
        (_, None) => a,
        (Some(x), Some(y)) if x > y => a,
        (Some(x), Some(y)) if y > x => b,
        _ => {
            if matches!(a, Bound::Excluded(_)) {
                a
            } else {
                b
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]

    use std::cell::RefCell;
    use std::io::Cursor;

    use super::*;
    use crate::bolt::writer::{BoltWriter, FreelistMode, WriterOptions};
    use crate::bolt::Db;

    const PAGE: usize = 4096;

    /// A file whose root holds bucket `b` with `entries`, written as bbolt
    /// packs it, and the page id of `b`'s leaf.
    fn file_with(entries: &[(&[u8], Vec<u8>)]) -> (Vec<u8>, Pgid) {
        let opts = WriterOptions {
            page_size: PAGE as u32,
            freelist: FreelistMode::None,
            after_txid: 0,
            root_sequence: 0,
        };
        let mut w = BoltWriter::new(Cursor::new(Vec::new()), opts).unwrap();
        w.begin_bucket(&b"b"[..], 0).unwrap();
        for (k, v) in entries {
            w.put(*k, v.clone()).unwrap();
        }
        w.end_bucket().unwrap();
        let (out, _) = w.finish().unwrap();
        let bytes = out.into_inner();
        let leaf = {
            let db = Db::parse(&bytes).unwrap();
            let b = db.root().unwrap().bucket(b"b").unwrap().unwrap();
            match b.root_ref() {
                BucketRoot::Page(id) => id,
                BucketRoot::Inline(..) => panic!("bucket b is stored inline"),
            }
        };
        (bytes, leaf)
    }

    /// Offset in the file of field `field` of element `i` of page `page`.
    fn field(page: Pgid, i: usize, field: usize) -> usize {
        page as usize * PAGE + PAGE_HEADER_SIZE + i * ELEMENT_SIZE + field
    }

    fn add_u32(bytes: &mut [u8], at: usize, by: u32) {
        let v = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) + by;
        bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// The keys of one page as a judge sees them, each with whether it names
    /// a bucket.
    type Shown = Vec<(Vec<u8>, bool)>;

    /// Accepts every page, and keeps the keys it was shown.
    #[derive(Default)]
    struct Record(RefCell<Vec<Shown>>);

    impl PageJudge for &Record {
        fn judge(&self, page: &PageKeys<'_, '_>) -> Option<String> {
            let keys = page.keys.iter().map(|(k, b)| (k.to_vec(), *b)).collect();
            self.0.borrow_mut().push(keys);
            None
        }
    }

    type Items = Vec<Option<(String, String)>>;

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// Bucket `b`'s items as (key, value) for entries and `None` for holes,
    /// and the cursor's notes.
    fn read(bytes: &[u8], judge: &Record) -> (Items, usize) {
        let db = Db::parse(bytes).unwrap();
        let tree = db.trees()[0];
        let b = db.root().unwrap().bucket(b"b").unwrap().unwrap();
        let mut seen = Visited::for_tree(&tree);
        let mut cursor = SalvageCursor::new(b, judge);
        let mut items = Vec::new();
        while let Some(item) = cursor.next_item(&mut seen) {
            items.push(match item {
                Item::Entry(e) => Some((text(e.key), text(e.value().unwrap_or_default()))),
                Item::Hole(_) => None,
            });
        }
        (items, cursor.take_notes().len())
    }

    fn entries(keys: &[&'static [u8]]) -> Vec<(&'static [u8], Vec<u8>)> {
        keys.iter().map(|k| (*k, vec![b'x'; 400])).collect()
    }

    fn whole(e: &[(&[u8], Vec<u8>)]) -> Items {
        e.iter().map(|(k, v)| Some((text(k), text(v)))).collect()
    }

    #[test]
    fn a_key_size_the_packing_proves_wrong_is_read_as_the_packing_places_it() {
        // Element 1's ksize grown by 1024: its key then runs over the next
        // elements' keys and values, still inside the page and in key order.
        let e = entries(&[b"a", b"b", b"c", b"d", b"e"]);
        let (mut bytes, leaf) = file_with(&e);
        add_u32(&mut bytes, field(leaf, 1, LEAF_KSIZE), 1024);
        let (items, notes) = read(&bytes, &Record::default());
        assert_eq!(items, whole(&e));
        assert_eq!(notes, 1, "the correction is reported");
    }

    #[test]
    fn a_wrong_size_before_the_last_element_is_settled_by_the_readings() {
        let e = entries(&[b"a", b"b", b"c"]);
        let (mut bytes, leaf) = file_with(&e);
        // Read as its header says, the last element would start in the zeros
        // after the data: only the other case gives keys in order.
        add_u32(&mut bytes, field(leaf, 1, LEAF_KSIZE), 1024);
        assert_eq!(read(&bytes, &Record::default()).0, whole(&e));
    }

    #[test]
    fn an_unsettled_pair_is_not_read() {
        let e = entries(&[b"a", b"b", b"c"]);
        let (mut bytes, leaf) = file_with(&e);
        // The last element's pos moved into its own key's value: `b` grown by
        // those bytes and the last key read from there are in order too.
        add_u32(&mut bytes, field(leaf, 2, LEAF_POS), 8);
        let mut want = whole(&e);
        want.truncate(1);
        want.push(None);
        assert_eq!(read(&bytes, &Record::default()).0, want);
    }

    #[test]
    fn breaks_no_one_wrong_field_explains_make_the_page_damaged() {
        let e = entries(&[b"a", b"b", b"c", b"d", b"e"]);
        let (mut bytes, leaf) = file_with(&e);
        add_u32(&mut bytes, field(leaf, 0, LEAF_VSIZE), 1);
        add_u32(&mut bytes, field(leaf, 2, LEAF_VSIZE), 1);
        let (items, _) = read(&bytes, &Record::default());
        assert_eq!(items, vec![None], "one hole for the page, no entry");
    }

    #[test]
    fn a_bucket_element_whose_header_does_not_decode_shows_no_key_to_the_judge() {
        let mut e = entries(&[b"a", b"b", b"c", b"d"]);
        e[2].1 = b"short".to_vec();
        let (mut bytes, leaf) = file_with(&e);
        bytes[field(leaf, 2, LEAF_FLAGS)] |= BUCKET_LEAF_FLAG as u8;
        let judge = Record::default();
        let (items, _) = read(&bytes, &judge);
        let shown = judge.0.borrow();
        let plain = |k: &[u8]| (k.to_vec(), false);
        assert_eq!(
            shown.as_slice(),
            [vec![plain(b"a"), plain(b"b"), plain(b"d")]]
        );
        let mut want = whole(&e);
        want[2] = None;
        assert_eq!(items, want);
    }
}
