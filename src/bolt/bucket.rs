//! Buckets: decoding bucket values, ordered iteration and lookups.
//!
//! Iteration keeps an explicit stack (no recursion), bounded by [`MAX_DEPTH`], and
//! refuses to enter a page twice, so a corrupt file cannot make it loop, overflow
//! the stack or take more steps than the file has pages. Which pages and elements
//! are readable is decided by the rules of [`super::tree`].

#![deny(clippy::indexing_slicing)]

use super::bytes::u64_at;
use super::error::{CorruptKind, Corruption, Pgid, Result};
use super::layout::*;
use super::page::{Page, PageKind, Pages};
use super::pageset::PageSet;
use super::tree::{self, LeafElement, MAX_DEPTH};

/// Deepest bucket nesting the walkers follow. containerd nests at most 7 levels.
pub const MAX_BUCKET_DEPTH: usize = 256;

/// Buckets nested deeper than [`MAX_BUCKET_DEPTH`] (without location).
pub(crate) fn nested_too_deep() -> Corruption {
    Corruption::new(
        CorruptKind::TreeTooDeep,
        format!("buckets nest deeper than {MAX_BUCKET_DEPTH} levels"),
    )
}

/// Where a bucket's tree starts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum BucketRoot<'a> {
    /// Root page of a page-based bucket.
    Page(Pgid),
    /// The page image of an inline bucket, and its file offset.
    Inline(&'a [u8], u64),
}

/// A bucket: a root and a sequence, readable through the file's [`Pages`].
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'a> {
    pages: Pages<'a>,
    root: BucketRoot<'a>,
    sequence: u64,
}

/// A key and what it holds.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The key.
    pub key: &'a [u8],
    /// A value or a nested bucket.
    pub kind: EntryKind<'a>,
}

/// What a key holds.
#[derive(Debug, Clone, Copy)]
pub enum EntryKind<'a> {
    /// A plain value (possibly empty).
    Value(&'a [u8]),
    /// A nested bucket.
    Bucket(Bucket<'a>),
}

impl<'a> Entry<'a> {
    /// The value, if this is not a bucket.
    pub fn value(&self) -> Option<&'a [u8]> {
        match self.kind {
            EntryKind::Value(v) => Some(v),
            EntryKind::Bucket(_) => None,
        }
    }

    /// The bucket, if this is one.
    pub fn bucket(&self) -> Option<Bucket<'a>> {
        match self.kind {
            EntryKind::Bucket(b) => Some(b),
            EntryKind::Value(_) => None,
        }
    }
}

impl<'a> Bucket<'a> {
    /// The root bucket, whose tree starts at the meta's root page.
    pub fn root(pages: Pages<'a>, root: Pgid, sequence: u64) -> Bucket<'a> {
        Bucket {
            pages,
            root: BucketRoot::Page(root),
            sequence,
        }
    }

    /// Decodes a bucket value (`InBucket` header plus, for inline buckets, a leaf
    /// page image). `value_offset` is the value's file offset, for errors.
    pub fn from_value(
        pages: Pages<'a>,
        value: &'a [u8],
        value_offset: u64,
    ) -> Result<Bucket<'a>, Corruption> {
        if value.len() < BUCKET_HEADER_SIZE {
            return Err(Corruption::new(
                CorruptKind::BucketValueShort,
                format!(
                    "bucket value is {} bytes, shorter than the 16-byte bucket header",
                    value.len()
                ),
            )
            .offset(value_offset));
        }
        let root = u64_at(value, BUCKET_ROOT).unwrap_or(0);
        let sequence = u64_at(value, BUCKET_SEQUENCE).unwrap_or(0);
        if root != 0 {
            return Ok(Bucket {
                pages,
                root: BucketRoot::Page(root),
                sequence,
            });
        }
        let image = value.get(BUCKET_HEADER_SIZE..).unwrap_or(&[]);
        let image_offset = value_offset.saturating_add(BUCKET_HEADER_SIZE as u64);
        let page = Page::inline(image, image_offset)?;
        if page.flags != LEAF_PAGE {
            return Err(Corruption::new(
                CorruptKind::InlineBucketMalformed,
                format!(
                    "inline bucket page has flags {:#06x}, want leaf (0x0002)",
                    page.flags
                ),
            )
            .offset(image_offset));
        }
        page.check_elements_fit().map_err(|c| Corruption {
            kind: CorruptKind::InlineBucketMalformed,
            ..c
        })?;
        Ok(Bucket {
            pages,
            root: BucketRoot::Inline(image, image_offset),
            sequence,
        })
    }

    /// The bucket's sequence (`NextSequence` counter).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Where the bucket's tree starts.
    pub(crate) fn root_ref(&self) -> BucketRoot<'a> {
        self.root
    }

    /// Whether the bucket is stored inline in its parent.
    pub fn is_inline(&self) -> bool {
        matches!(self.root, BucketRoot::Inline(..))
    }

    /// Whether `other` is this very bucket as stored: the same root page and
    /// sequence, or an inline page of the same bytes. Copy-on-write leaves a
    /// subtree no transaction touched at the same page in both meta trees, so
    /// such a pair needs no comparison.
    pub fn same_as(&self, other: &Bucket<'_>) -> bool {
        self.sequence == other.sequence
            && match (self.root, other.root) {
                (BucketRoot::Page(a), BucketRoot::Page(b)) => a == b,
                (BucketRoot::Inline(a, _), BucketRoot::Inline(b, _)) => a == b,
                _ => false,
            }
    }

    /// The geometry this bucket is read through.
    pub fn pages(&self) -> Pages<'a> {
        self.pages
    }

    /// Prefetches the start of the bucket's root page (inline buckets are in the
    /// parent's page already). See [`Pages::prefetch`].
    #[inline]
    pub(crate) fn prefetch_root(&self) {
        if let BucketRoot::Page(id) = self.root {
            self.pages.prefetch(id);
        }
    }

    /// The bucket's root page, entered by the rules of `tree::enter` (an
    /// inline page by `tree::node`).
    pub fn root_page(&self) -> Result<Page<'a>, Corruption> {
        match self.root {
            BucketRoot::Inline(bytes, off) => {
                let page = Page::inline(bytes, off)?;
                tree::node(&page)?;
                Ok(page)
            }
            BucketRoot::Page(id) => {
                tree::enter(&self.pages, id, false, |_| true).map_err(tree::Refusal::corruption)
            }
        }
    }

    /// Iterates the bucket's entries in key order. Yields at most one error, then ends.
    pub fn iter(&self) -> Entries<'a> {
        Entries {
            cursor: Cursor::new(*self),
            seen: PageSet::new(&self.pages),
        }
    }

    /// A cursor for callers that keep their own visited-page set (see [`PageSet`]).
    pub(crate) fn cursor(&self) -> Cursor<'a> {
        Cursor::new(*self)
    }

    /// Looks up `key`, following branch pages by binary search as Go's cursor does.
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry<'a>>, Corruption> {
        let mut page = self.root_page()?;
        for _ in 0..MAX_DEPTH {
            if page.kind() == Some(PageKind::Leaf) {
                let (mut lo, mut hi) = (0usize, usize::from(page.count));
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    let e = page.leaf_element(mid)?;
                    match e.key.cmp(key) {
                        std::cmp::Ordering::Less => lo = mid + 1,
                        std::cmp::Ordering::Greater => hi = mid,
                        std::cmp::Ordering::Equal => {
                            return entry_from_leaf(&self.pages, &e).map(Some);
                        }
                    }
                }
                return Ok(None);
            }
            // A branch (tree::node): the last element whose key is <= `key`
            // (element 0 if none is).
            let (mut lo, mut hi) = (0usize, usize::from(page.count));
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if page.branch_element(mid)?.key <= key {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let i = lo.saturating_sub(1);
            let e = page.branch_element(i)?;
            if page.id == 0 {
                return Err(inline_branch(&page));
            }
            let child = tree::enter(&self.pages, e.child, e.child == page.id, |_| true)
                .map_err(tree::Refusal::corruption)?;
            if let Some(c) = tree::child_key_finding(i, e.key, &child) {
                return Err(c.page(page.id).offset(e.elem_offset));
            }
            page = child;
        }
        Err(tree::too_deep().page(page.id).offset(page.file_offset))
    }

    /// Looks up a nested bucket by name. `Ok(None)` if absent or not a bucket.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'a>>, Corruption> {
        Ok(self.get(name)?.and_then(|e| e.bucket()))
    }

    /// Looks up a plain value. `Ok(None)` if absent or a bucket.
    pub fn value(&self, key: &[u8]) -> Result<Option<&'a [u8]>, Corruption> {
        Ok(self.get(key)?.and_then(|e| e.value()))
    }

    /// Follows a path of bucket names from this bucket.
    pub fn bucket_at<'p>(
        &self,
        path: impl IntoIterator<Item = &'p [u8]>,
    ) -> Result<Option<Bucket<'a>>, Corruption> {
        let mut b = *self;
        for name in path {
            match b.bucket(name)? {
                Some(next) => b = next,
                None => return Ok(None),
            }
        }
        Ok(Some(b))
    }
}

/// Builds an entry from a leaf element.
pub(crate) fn entry_from_leaf<'a>(
    pages: &Pages<'a>,
    e: &LeafElement<'a>,
) -> Result<Entry<'a>, Corruption> {
    let kind = if e.is_bucket() {
        EntryKind::Bucket(Bucket::from_value(*pages, e.value, e.value_offset)?)
    } else {
        EntryKind::Value(e.value)
    };
    Ok(Entry { key: e.key, kind })
}

/// An inline bucket's page holds branch elements: [`Bucket::from_value`] lets
/// only leaves through, so this is a page image that changed kind.
fn inline_branch(p: &Page<'_>) -> Corruption {
    Corruption::new(
        CorruptKind::PageType,
        format!(
            "page {} is {}, want a branch or leaf",
            p.id,
            super::page::describe_flags(p.flags)
        ),
    )
    .offset(p.file_offset)
}

#[derive(Debug, Clone, Copy)]
struct Frame<'a> {
    page: Page<'a>,
    index: usize,
}

/// An ordered cursor over one bucket's entries, with an explicit page stack.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    bucket: Bucket<'a>,
    stack: Vec<Frame<'a>>,
    started: bool,
    done: bool,
}

impl<'a> Cursor<'a> {
    fn new(bucket: Bucket<'a>) -> Cursor<'a> {
        Cursor {
            bucket,
            stack: Vec::new(),
            started: false,
            done: false,
        }
    }

    /// The next entry, using `seen` to refuse pages already entered. After an error
    /// the cursor is finished.
    pub(crate) fn next_entry(
        &mut self,
        seen: &mut PageSet,
    ) -> Option<Result<Entry<'a>, Corruption>> {
        if self.done {
            return None;
        }
        let r = self.step(seen);
        match r {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(c) => {
                self.done = true;
                Some(Err(c))
            }
        }
    }

    fn step(&mut self, seen: &mut PageSet) -> Result<Option<Entry<'a>>, Corruption> {
        let pages = self.bucket.pages;
        if !self.started {
            self.started = true;
            let root = match self.bucket.root {
                BucketRoot::Inline(..) => self.bucket.root_page()?,
                BucketRoot::Page(id) => tree::enter(&pages, id, false, |_| seen.insert(id))
                    .map_err(tree::Refusal::corruption)?,
            };
            self.stack.push(Frame {
                page: root,
                index: 0,
            });
        }
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            let i = top.index;
            if i >= usize::from(top.page.count) {
                self.stack.pop();
                continue;
            }
            top.index += 1;
            let page = top.page;
            if page.kind() == Some(PageKind::Leaf) {
                let e = page.leaf_element(i)?;
                return entry_from_leaf(&pages, &e).map(Some);
            }
            // A branch (tree::node).
            let e = page.branch_element(i)?;
            if page.id == 0 {
                return Err(inline_branch(&page));
            }
            if self.stack.len() >= MAX_DEPTH {
                return Err(tree::too_deep().page(page.id).offset(e.elem_offset));
            }
            let ancestor = self.stack.iter().any(|f| f.page.id == e.child);
            let child = tree::enter(&pages, e.child, ancestor, |_| seen.insert(e.child))
                .map_err(tree::Refusal::corruption)?;
            if let Some(c) = tree::child_key_finding(i, e.key, &child) {
                return Err(c.page(page.id).offset(e.elem_offset));
            }
            self.stack.push(Frame {
                page: child,
                index: 0,
            });
        }
    }
}

/// Iterator over a bucket's entries, with its own visited-page set.
#[derive(Debug)]
pub struct Entries<'a> {
    cursor: Cursor<'a>,
    seen: PageSet,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>, Corruption>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next_entry(&mut self.seen)
    }
}
