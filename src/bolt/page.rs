//! Bounds-checked access to pages and their elements.

#![deny(clippy::indexing_slicing)]

use super::bytes::{slice, u16_at, u32_at, u64_at};
use super::error::{CorruptKind, Corruption, Pgid};
use super::layout::*;

/// The kind of a page, from its flags (exactly one flag must be set, as Go ≥ 1.3.7
/// requires).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageKind {
    /// Branch page.
    Branch,
    /// Leaf page.
    Leaf,
    /// Meta page.
    Meta,
    /// Freelist page.
    Freelist,
}

impl PageKind {
    /// The kind whose flag value is exactly `flags`.
    pub fn from_flags(flags: u16) -> Option<PageKind> {
        match flags {
            BRANCH_PAGE => Some(PageKind::Branch),
            LEAF_PAGE => Some(PageKind::Leaf),
            META_PAGE => Some(PageKind::Meta),
            FREELIST_PAGE => Some(PageKind::Freelist),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            PageKind::Branch => "branch",
            PageKind::Leaf => "leaf",
            PageKind::Meta => "meta",
            PageKind::Freelist => "freelist",
        }
    }
}

/// Describes a flags value for messages.
pub(crate) fn describe_flags(flags: u16) -> String {
    match PageKind::from_flags(flags) {
        Some(k) => k.name().to_string(),
        None => format!("unknown<{flags:#06x}>"),
    }
}

/// Cache lines [`Pages::prefetch`] asks for at the start of a page: the header,
/// the start of the element array and, on pages of short keys, the first keys
/// and values — what a walk reads first when it enters the page.
pub(crate) const PREFETCH_LINES: usize = 8;

/// The geometry of a mapped file: its bytes, page size and high-water mark. Cheap
/// to copy; every page access goes through it.
#[derive(Debug, Clone, Copy)]
pub struct Pages<'a> {
    data: &'a [u8],
    page_size: usize,
    hwm: Pgid,
}

/// A page (with its overflow pages) as a byte slice, plus its decoded header.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    /// Page id (its position in the file).
    pub id: Pgid,
    /// All bytes of the page and its overflow pages.
    pub bytes: &'a [u8],
    /// Absolute offset of the page in the file (0 for inline pages).
    pub file_offset: u64,
    /// Header flags.
    pub flags: u16,
    /// Header element count.
    pub count: u16,
    /// Header overflow count.
    pub overflow: u32,
}

impl<'a> Pages<'a> {
    /// Creates the accessor. `page_size` must be at least a page header.
    pub fn new(data: &'a [u8], page_size: usize, hwm: Pgid) -> Pages<'a> {
        Pages {
            data,
            page_size: page_size.max(PAGE_HEADER_SIZE),
            hwm,
        }
    }

    /// The file bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Page size.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// High-water mark.
    pub fn hwm(&self) -> Pgid {
        self.hwm
    }

    /// Byte offset of page `id`, if representable.
    pub fn offset_of(&self, id: Pgid) -> Option<u64> {
        id.checked_mul(self.page_size as u64)
    }

    /// Asks the CPU to start loading the first [`PREFETCH_LINES`] cache lines of
    /// page `id` (a prefetch hint: nothing is read, nothing can fault; ids
    /// outside the file are ignored). The readers are bound by the latency of the
    /// first touch of each page (a TLB and a cache miss); a walk that knows its
    /// next pages asks for them here, so their misses overlap each other and the
    /// work on the current page instead of coming one at a time. This is the
    /// readers' one prefetch mechanism (docs/performance.md has what it measured).
    #[inline]
    pub(crate) fn prefetch(&self, id: Pgid) {
        let Some(start) = self.offset_of(id).and_then(|o| usize::try_from(o).ok()) else {
            return;
        };
        for line in 0..PREFETCH_LINES {
            if let Some(rest) = self
                .data
                .get(start.saturating_add(line.saturating_mul(64))..)
            {
                prefetch_line(rest);
            }
        }
    }

    /// Reads page `id`: checks it is below the high-water mark, inside the file with
    /// its overflow, and that its header names it. Does not check its type.
    pub fn page(&self, id: Pgid) -> Result<Page<'a>, Corruption> {
        if id >= self.hwm {
            return Err(Corruption::new(
                CorruptKind::PageOutOfBounds,
                format!("page {id} is at or beyond the high-water mark {}", self.hwm),
            )
            .page(id));
        }
        self.page_unchecked_hwm(id)
    }

    /// Like [`Pages::page`] but without the high-water-mark test (for pages the
    /// meta itself points at when diagnosing geometry).
    pub fn page_unchecked_hwm(&self, id: Pgid) -> Result<Page<'a>, Corruption> {
        let beyond = || {
            Corruption::new(
                CorruptKind::PageBeyondFile,
                format!(
                    "page {id} lies beyond the end of the file ({} bytes)",
                    self.data.len()
                ),
            )
            .page(id)
        };
        let off = self
            .offset_of(id)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(beyond)?;
        let header = slice(self.data, off, PAGE_HEADER_SIZE).ok_or_else(beyond)?;
        let hdr_id = u64_at(header, PAGE_ID).unwrap_or(0);
        let flags = u16_at(header, PAGE_FLAGS).unwrap_or(0);
        let count = u16_at(header, PAGE_COUNT).unwrap_or(0);
        let overflow = u32_at(header, PAGE_OVERFLOW).unwrap_or(0);
        if hdr_id != id {
            return Err(Corruption::new(
                CorruptKind::PageIdMismatch,
                format!("page {id} identifies itself as page {hdr_id}"),
            )
            .page(id)
            .offset(off as u64));
        }
        let last = id.checked_add(u64::from(overflow));
        if last.is_none_or(|l| l >= self.hwm) {
            return Err(Corruption::new(
                CorruptKind::PageOutOfBounds,
                format!(
                    "page {id} with {overflow} overflow pages runs past the high-water mark {}",
                    self.hwm
                ),
            )
            .page(id)
            .offset(off as u64));
        }
        let span = (u64::from(overflow) + 1)
            .checked_mul(self.page_size as u64)
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(beyond)?;
        let bytes = slice(self.data, off, span).ok_or_else(|| {
            Corruption::new(
                CorruptKind::PageBeyondFile,
                format!(
                    "page {id} with {overflow} overflow pages ends beyond the end of the file ({} bytes)",
                    self.data.len()
                ),
            )
            .page(id)
            .offset(off as u64)
        })?;
        Ok(Page {
            id,
            bytes,
            file_offset: off as u64,
            flags,
            count,
            overflow,
        })
    }
}

impl<'a> Page<'a> {
    /// Interprets an inline bucket's page image (the bytes after the 16-byte bucket
    /// header). `file_offset` is where those bytes are in the file.
    pub fn inline(bytes: &'a [u8], file_offset: u64) -> Result<Page<'a>, Corruption> {
        let header = slice(bytes, 0, PAGE_HEADER_SIZE).ok_or_else(|| {
            Corruption::new(
                CorruptKind::InlineBucketMalformed,
                format!(
                    "inline bucket page is {} bytes, shorter than a page header",
                    bytes.len()
                ),
            )
            .offset(file_offset)
        })?;
        Ok(Page {
            id: 0,
            bytes,
            file_offset,
            flags: u16_at(header, PAGE_FLAGS).unwrap_or(0),
            count: u16_at(header, PAGE_COUNT).unwrap_or(0),
            overflow: u32_at(header, PAGE_OVERFLOW).unwrap_or(0),
        })
    }

    /// The page's kind, if its flags name exactly one.
    pub fn kind(&self) -> Option<PageKind> {
        PageKind::from_flags(self.flags)
    }
}

/// Prefetches the cache line holding `bytes[0]` (no-op on other architectures
/// and for an empty slice).
#[inline]
#[allow(unsafe_code)]
fn prefetch_line(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    if !bytes.is_empty() {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, and a prefetch is a hint
        // that reads nothing architecturally and cannot fault; the address is
        // inside `bytes` anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(bytes.as_ptr().cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}
