//! The rules a page of a bucket tree and its elements must follow: the one
//! place they are written down, for every reader.
//!
//! - [`enter`]: a page reached from a branch element or a bucket header (not a
//!   meta, not its own ancestor, inside the file and below the high-water
//!   mark, not entered before, then [`node`]);
//! - [`node`]: a branch or leaf whose element array fits in the page, and a
//!   branch has elements;
//! - [`Page::leaf_element`], [`Page::branch_element`]: an element's key and
//!   value lie inside its page;
//! - [`key_findings`], [`flag_finding`], [`too_deep`]: key order and ranges,
//!   element flags, tree depth;
//! - [`child_key_finding`]: a branch element's key is the first key of its
//!   child.
//!
//! The cursor applies the rules it needs to read (entering pages, element
//! bounds, depth); the checker applies them all and reports each as a finding.
//! Findings come without their location where the caller knows it better (the
//! element offset and the bucket path).

#![deny(clippy::indexing_slicing)]

use super::bytes::{slice, u32_at, u64_at};
use super::error::{CorruptKind, Corruption, Pgid};
use super::layout::*;
use super::page::{describe_flags, Page, PageKind, Pages};

/// Deepest branch/leaf nesting inside one bucket that the readers follow. A
/// bbolt tree with fill ≥ 10 % and ≥ 2 elements per branch needs fewer than 64
/// levels to address every page a 64-bit id can name; deeper means a corrupt
/// file.
pub(crate) const MAX_DEPTH: usize = 64;

/// Why a page is not entered.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// It breaks a rule.
    Corrupt(Corruption),
    /// It was entered before (a page referenced more than once); the
    /// corruption says so, for a caller that reports it.
    Revisit(Corruption),
}

impl Refusal {
    /// The corruption, whichever the reason.
    pub(crate) fn corruption(self) -> Corruption {
        match self {
            Refusal::Corrupt(c) | Refusal::Revisit(c) => c,
        }
    }
}

impl From<Corruption> for Refusal {
    fn from(c: Corruption) -> Self {
        Refusal::Corrupt(c)
    }
}

/// Enters page `id` of a bucket tree. `ancestor`: whether `id` is a page above
/// this point of the same tree. `first_visit` is asked once the page is read,
/// and records it: `false` means it was entered before. The rules, in order:
/// not a meta page, not an ancestor, readable ([`Pages::page`]), first visit,
/// then [`node`].
pub(crate) fn enter<'a>(
    pages: &Pages<'a>,
    id: Pgid,
    ancestor: bool,
    first_visit: impl FnOnce(&Page<'a>) -> bool,
) -> Result<Page<'a>, Refusal> {
    if id < 2 {
        return Err(Corruption::new(
            CorruptKind::PageType,
            format!("bucket tree refers to meta page {id}"),
        )
        .page(id)
        .into());
    }
    if ancestor {
        return Err(Corruption::new(
            CorruptKind::PageCycle,
            format!("page {id} is its own ancestor"),
        )
        .page(id)
        .into());
    }
    let page = pages.page(id)?;
    if !first_visit(&page) {
        return Err(Refusal::Revisit(
            Corruption::new(
                CorruptKind::PageMultipleReferences,
                format!("page {id} is referenced more than once"),
            )
            .page(id)
            .offset(page.file_offset),
        ));
    }
    node(&page)?;
    Ok(page)
}

/// A page of a bucket tree (inline pages too): a branch or a leaf, its element
/// array inside the page, and a branch with at least one element.
pub(crate) fn node(page: &Page<'_>) -> Result<(), Corruption> {
    match page.kind() {
        Some(PageKind::Branch | PageKind::Leaf) => {}
        _ => {
            return Err(page.located(
                Corruption::new(
                    CorruptKind::PageType,
                    format!(
                        "page {} is {}, want a branch or leaf",
                        page.id,
                        describe_flags(page.flags)
                    ),
                ),
                0,
            ))
        }
    }
    page.check_elements_fit()?;
    if page.kind() == Some(PageKind::Branch) && page.count == 0 {
        return Err(page.located(
            Corruption::new(
                CorruptKind::BranchEmpty,
                format!("branch page {} has no elements", page.id),
            ),
            0,
        ));
    }
    Ok(())
}

/// A branch deeper than [`MAX_DEPTH`] levels (without location).
pub(crate) fn too_deep() -> Corruption {
    Corruption::new(
        CorruptKind::TreeTooDeep,
        format!("bucket tree is deeper than {MAX_DEPTH} levels"),
    )
}

/// What is wrong with the key of element `i` (without location): empty, not
/// above the previous key on its page `prev`, or outside `[lower, upper)`, the
/// range its ancestors' branch keys allow.
pub(crate) fn key_findings(
    i: usize,
    key: &[u8],
    prev: Option<&[u8]>,
    lower: Option<&[u8]>,
    upper: Option<&[u8]>,
) -> impl Iterator<Item = Corruption> {
    let empty = key.is_empty().then(|| {
        Corruption::new(
            CorruptKind::KeyEmpty,
            format!("element {i} has an empty key"),
        )
    });
    let order = prev.filter(|&p| key <= p).map(|p| {
        Corruption::new(
            CorruptKind::KeyOrder,
            format!(
                "element {i}: key {} is not greater than the previous key {}",
                show(key),
                show(p)
            ),
        )
    });
    let outside = lower.is_some_and(|l| key < l) || upper.is_some_and(|u| key >= u);
    let range = outside.then(|| {
        Corruption::new(
            CorruptKind::KeyOrderAncestor,
            format!(
                "element {i}: key {} is outside the range [{}, {}) set by its ancestors",
                show(key),
                lower.map_or("-".into(), show),
                upper.map_or("-".into(), show)
            ),
        )
    });
    empty.into_iter().chain(order).chain(range)
}

/// What is wrong when branch element `i`'s key `key` is not the first key of
/// `child`, the page it points to (without location). Go's bbolt writes a
/// branch key from its child's first key each time it writes the child (node
/// spill), so the two differ only when the child's slot holds another page: an
/// older version whose rewrite was lost, or a misdirected write. Such a page
/// can be well-formed and in key range, so no other rule sees it.
pub(crate) fn child_key_finding(i: usize, key: &[u8], child: &Page<'_>) -> Option<Corruption> {
    let first = match child.kind() {
        Some(PageKind::Branch) => child.branch_element(0).ok().map(|e| e.key),
        Some(PageKind::Leaf) => child.leaf_element(0).ok().map(|e| e.key),
        _ => None,
    };
    // An unreadable first element is the child's own finding.
    if child.count > 0 && first.is_none() {
        return None;
    }
    (first != Some(key)).then(|| {
        Corruption::new(
            CorruptKind::BranchKeyMismatch,
            format!(
                "branch element {i}: key {} is not the first key {} of its child page {}: the child is a stale or misplaced page",
                show(key),
                first.map_or("(none: the page is empty)".into(), show),
                child.id
            ),
        )
    })
}

/// Leaf element `i`'s flags, when they have bits other than the bucket flag
/// (without location; a warning: bbolt ignores them).
pub(crate) fn flag_finding(i: usize, flags: u32) -> Option<Corruption> {
    (flags & !BUCKET_LEAF_FLAG != 0).then(|| {
        Corruption::new(
            CorruptKind::ElementFlags,
            format!("element {i} has unknown flag bits {flags:#x}"),
        )
    })
}

/// A key for messages: quoted if printable, else hex (at most 64 bytes).
pub(crate) fn show(key: &[u8]) -> String {
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

/// A decoded leaf element.
#[derive(Debug, Clone, Copy)]
pub struct LeafElement<'a> {
    /// Element flags ([`BUCKET_LEAF_FLAG`] for buckets).
    pub flags: u32,
    /// The key.
    pub key: &'a [u8],
    /// The value (a bucket header for buckets).
    pub value: &'a [u8],
    /// Absolute file offset of the value.
    pub value_offset: u64,
    /// Absolute file offset of the element.
    pub elem_offset: u64,
}

impl LeafElement<'_> {
    /// Whether this element is a bucket.
    pub fn is_bucket(&self) -> bool {
        self.flags & BUCKET_LEAF_FLAG != 0
    }
}

/// A decoded branch element.
#[derive(Debug, Clone, Copy)]
pub struct BranchElement<'a> {
    /// The first key of the child subtree.
    pub key: &'a [u8],
    /// The child page.
    pub child: Pgid,
    /// Absolute file offset of the element.
    pub elem_offset: u64,
}

impl<'a> Page<'a> {
    /// `c` located at byte `rel` of this page (and on it, unless inline).
    fn located(&self, c: Corruption, rel: usize) -> Corruption {
        let c = c.offset(self.file_offset.saturating_add(rel as u64));
        if self.id != 0 {
            c.page(self.id)
        } else {
            c
        }
    }

    /// Checks that the element array of `count` elements fits in the page.
    pub fn check_elements_fit(&self) -> Result<(), Corruption> {
        let need = usize::from(self.count)
            .checked_mul(ELEMENT_SIZE)
            .and_then(|n| n.checked_add(PAGE_HEADER_SIZE));
        match need {
            Some(n) if n <= self.bytes.len() => Ok(()),
            _ => Err(self.located(
                Corruption::new(
                    CorruptKind::ElementsOverflow,
                    format!(
                        "{} elements do not fit in a {}-byte page",
                        self.count,
                        self.bytes.len()
                    ),
                ),
                0,
            )),
        }
    }

    /// The bytes of element `i` and their offset in the page.
    fn element(&self, i: usize, what: &str) -> Result<(&'a [u8], usize), Corruption> {
        let eoff = i
            .checked_mul(ELEMENT_SIZE)
            .and_then(|o| o.checked_add(PAGE_HEADER_SIZE))
            .unwrap_or(usize::MAX);
        let elem = slice(self.bytes, eoff, ELEMENT_SIZE).ok_or_else(|| {
            self.located(
                Corruption::new(
                    CorruptKind::ElementsOverflow,
                    format!("{what} element {i} lies outside the page"),
                ),
                eoff,
            )
        })?;
        Ok((elem, eoff))
    }

    /// Element `i` of a leaf page: its key and value inside the page.
    pub fn leaf_element(&self, i: usize) -> Result<LeafElement<'a>, Corruption> {
        let (elem, eoff) = self.element(i, "leaf")?;
        let flags = u32_at(elem, LEAF_FLAGS).unwrap_or(0);
        let pos = u32_at(elem, LEAF_POS).unwrap_or(0) as usize;
        let ksize = u32_at(elem, LEAF_KSIZE).unwrap_or(0) as usize;
        let vsize = u32_at(elem, LEAF_VSIZE).unwrap_or(0) as usize;
        let out = || {
            self.located(
                Corruption::new(
                    CorruptKind::ElementOutOfPage,
                    format!(
                        "leaf element {i} (pos {pos}, key {ksize} bytes, value {vsize} bytes) lies outside its {}-byte page",
                        self.bytes.len()
                    ),
                ),
                eoff,
            )
        };
        let kstart = eoff.checked_add(pos).ok_or_else(out)?;
        let key = slice(self.bytes, kstart, ksize).ok_or_else(out)?;
        let vstart = kstart.checked_add(ksize).ok_or_else(out)?;
        let value = slice(self.bytes, vstart, vsize).ok_or_else(out)?;
        Ok(LeafElement {
            flags,
            key,
            value,
            value_offset: self.file_offset.saturating_add(vstart as u64),
            elem_offset: self.file_offset.saturating_add(eoff as u64),
        })
    }

    /// Element `i` of a branch page: its key inside the page, and the child id.
    pub fn branch_element(&self, i: usize) -> Result<BranchElement<'a>, Corruption> {
        let (elem, eoff) = self.element(i, "branch")?;
        let pos = u32_at(elem, BRANCH_POS).unwrap_or(0) as usize;
        let ksize = u32_at(elem, BRANCH_KSIZE).unwrap_or(0) as usize;
        let child = u64_at(elem, BRANCH_PGID).unwrap_or(0);
        let key = eoff
            .checked_add(pos)
            .and_then(|k| slice(self.bytes, k, ksize))
            .ok_or_else(|| {
                self.located(
                    Corruption::new(
                        CorruptKind::ElementOutOfPage,
                        format!(
                            "branch element {i} (pos {pos}, key {ksize} bytes) lies outside its {}-byte page",
                            self.bytes.len()
                        ),
                    ),
                    eoff,
                )
            })?;
        Ok(BranchElement {
            key,
            child,
            elem_offset: self.file_offset.saturating_add(eoff as u64),
        })
    }
}
