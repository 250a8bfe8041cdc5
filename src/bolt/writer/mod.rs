//! A streaming writer of fresh, compact bbolt files.
//!
//! The input is an ordered stream of buckets, keys and values ([`BoltWriter::begin_bucket`],
//! [`BoltWriter::put`], [`BoltWriter::end_bucket`]), in practice a [`Walk`] of a source file
//! ([`copy_walk`], with a [`Filtered`] view that drops chosen subtrees). Pages are written as
//! the keys arrive, so memory is O(bucket depth × branch levels × page size) plus the
//! elements of the page being filled; the whole tree is never held.
//!
//! # Layout (what Go bbolt writes when it compacts with fill percent 1.0 in one transaction)
//!
//! Every bucket's entries form one Go "node" that is split exactly like `node.split`:
//! a node of ≤ 4 entries, or of fewer than `page_size` bytes, stays whole (possibly
//! spanning overflow pages); otherwise its first page takes entries while they fit in
//! `page_size` (at least 2), and the rest, which always keeps at least 3 entries, is
//! split again. Streaming needs only that rule's lookahead: a page is final once the
//! entry that does not fit *and two more* have arrived. Branch levels above are built
//! the same way from `(first key, page id)` of the pages below. One deviation from Go:
//! no page gets `0xFFFF` or more elements (Go would panic there; it only matters for
//! page sizes above ~1 MiB).
//!
//! A bucket with no sub-bucket whose `16 + Σ(16 + key + value) <= page_size / 4` is
//! stored inline in its parent (Go's `inlineable`); the root bucket never is. A nested
//! bucket is finished (pages written, root page known, or inline value built) before
//! its parent's element is queued. Pages 0 and 1 are metas with txids `t` and `t + 1`
//! (`t` even, so page `i` holds a txid `≡ i (mod 2)`); page 2 is an empty freelist page
//! unless the file is written without a freelist (`NoFreelistSync`). Data pages follow
//! from there without gaps, so every page below the high-water mark is a meta, the
//! freelist or reachable.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::{Seek, SeekFrom, Write};

mod compare;
mod source;

pub use compare::{compare, CompareSummary, Mismatch};
pub use source::{copy_walk, keep_all, Filtered, ItemKind};

use crate::bolt::error::{BucketPath, Error as ReadError, Pgid};
use crate::bolt::layout::*;
use crate::bolt::meta::Meta;
#[cfg(doc)]
use crate::bolt::walk::Walk;

/// Largest `pos + ksize + vsize` of one element that Go can address (`MaxAllocSize` on amd64).
pub const MAX_ELEMENT_EXTENT: u64 = 0x7FFF_FFFF;
/// At most this many elements per page (`count` must stay below `0xFFFF`).
pub const MAX_PAGE_ELEMENTS: usize = MAX_ELEMENTS - 1;
/// Deepest bucket nesting the writer accepts (the reader's limit is lower).
pub const MAX_WRITE_DEPTH: usize = 1024;

/// Errors of the writer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// Writing or seeking the output failed.
    #[error("cannot {op} the output")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The page size cannot hold a bbolt file.
    #[error(
        "unsupported page size {0} (want a multiple of 16 in {MIN_PAGE_SIZE}..={MAX_PAGE_SIZE})"
    )]
    PageSize(u32),
    /// A key (or bucket name) of length zero.
    #[error("empty key in bucket {path}")]
    KeyEmpty {
        /// The bucket.
        path: BucketPath,
    },
    /// Keys did not arrive in strictly increasing byte order.
    #[error("key {key:?} is not greater than the previous key in bucket {path}")]
    KeyOrder {
        /// The bucket.
        path: BucketPath,
        /// The offending key (lossy text, for the message).
        key: String,
    },
    /// An element is too large for a page element's 32-bit offsets.
    #[error("an element of {size} bytes in bucket {path} is too large for bbolt (max {MAX_ELEMENT_EXTENT})")]
    ElementTooLarge {
        /// The bucket.
        path: BucketPath,
        /// Key plus value size.
        size: u64,
    },
    /// `end_bucket` without an open bucket, or `finish` with buckets still open.
    #[error("unbalanced bucket events: {0}")]
    Unbalanced(&'static str),
    /// Buckets nested deeper than [`MAX_WRITE_DEPTH`].
    #[error("buckets nest deeper than {MAX_WRITE_DEPTH} levels")]
    TooDeep,
    /// The transaction id or page ids ran out of range.
    #[error("{0} out of range")]
    Overflow(&'static str),
    /// Reading the source failed.
    #[error(transparent)]
    Source(#[from] ReadError),
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> WriteError {
    move |source| WriteError::Io { op, source }
}

/// Whether the output has a persisted freelist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreelistMode {
    /// An empty freelist page at page 2 (what Go writes by default; containerd 1.6).
    Page,
    /// `meta.freelist = 0xFFFF_FFFF_FFFF_FFFF` (`NoFreelistSync`; containerd 1.7+).
    None,
}

impl FreelistMode {
    /// The mode of an existing file's meta.
    pub fn of(meta: &Meta) -> FreelistMode {
        if meta.has_freelist() {
            FreelistMode::Page
        } else {
            FreelistMode::None
        }
    }
}

/// Settings of a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Page size in bytes.
    pub page_size: u32,
    /// Freelist style.
    pub freelist: FreelistMode,
    /// The new metas get txids above this one (the source's txid).
    pub after_txid: u64,
    /// The root bucket's sequence.
    pub root_sequence: u64,
}

impl WriterOptions {
    /// The options for a copy of `db`: its page size and freelist style, txids
    /// above its own, its root bucket's sequence.
    pub fn copy_of(db: &crate::bolt::Db<'_>) -> Result<WriterOptions, crate::bolt::Corruption> {
        let meta = db.meta();
        Ok(WriterOptions {
            page_size: meta.page_size,
            freelist: FreelistMode::of(&meta),
            after_txid: meta.txid,
            root_sequence: db.root()?.sequence(),
        })
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// High-water mark: pages in the file.
    pub pages: u64,
    /// Bytes written (`pages × page_size`).
    pub bytes: u64,
    /// Root page of the root bucket.
    pub root: Pgid,
    /// Buckets written (root excluded).
    pub buckets: u64,
    /// Of which inline.
    pub inline_buckets: u64,
    /// Plain keys written.
    pub keys: u64,
    /// The newer meta's txid.
    pub txid: u64,
}

/// One element queued for a page: a leaf entry (`pgid == 0`) or a branch entry.
#[derive(Debug, Clone)]
struct Elem<'a> {
    flags: u32,
    key: Cow<'a, [u8]>,
    value: Cow<'a, [u8]>,
    pgid: Pgid,
}

impl Elem<'_> {
    fn size(&self) -> usize {
        ELEMENT_SIZE + self.key.len() + self.value.len()
    }
}

/// The elements of one tree level that are not yet on a page, and the running state of
/// Go's `splitIndex` over them.
#[derive(Debug, Default)]
struct Level<'a> {
    q: VecDeque<Elem<'a>>,
    /// Bytes of the page header plus `q[..scanned]`.
    prefix: usize,
    /// Elements of `q` already scanned without finding the break.
    scanned: usize,
    /// First index that does not fit on the first page.
    brk: Option<usize>,
    /// Bytes of everything in `q` (header included).
    total: usize,
    /// Pages this level has written so far.
    written: u64,
}

impl<'a> Level<'a> {
    fn new() -> Self {
        Level {
            prefix: PAGE_HEADER_SIZE,
            total: PAGE_HEADER_SIZE,
            ..Default::default()
        }
    }

    /// Advances the split scan over newly queued elements.
    fn scan(&mut self, page_size: usize) {
        while self.brk.is_none() && self.scanned < self.q.len() {
            let i = self.scanned;
            let el = self.q.get(i).map_or(0, Elem::size);
            if i >= 2 && (self.prefix + el > page_size || i >= MAX_PAGE_ELEMENTS) {
                self.brk = Some(i);
            } else {
                self.prefix += el;
                self.scanned += 1;
            }
        }
    }

    /// Takes the first `n` elements off the queue and rescans the rest.
    fn take(&mut self, n: usize, page_size: usize) -> Vec<Elem<'a>> {
        let page: Vec<Elem<'a>> = self.q.drain(..n).collect();
        self.total = PAGE_HEADER_SIZE + self.q.iter().map(Elem::size).sum::<usize>();
        self.prefix = PAGE_HEADER_SIZE;
        self.scanned = 0;
        self.brk = None;
        self.scan(page_size);
        page
    }

    /// The first page, if it is already decided by the elements queued so far.
    fn ready(&mut self, page_size: usize) -> Option<Vec<Elem<'a>>> {
        match self.brk {
            Some(i) if self.q.len() >= i + 3 => Some(self.take(i, page_size)),
            _ => None,
        }
    }

    /// The next page at the end of the stream: Go's `splitTwo` on what is left.
    fn final_page(&mut self, page_size: usize) -> Option<Vec<Elem<'a>>> {
        let n = self.q.len();
        if n == 0 {
            return None;
        }
        if (n <= 4 || self.total < page_size) && n <= MAX_PAGE_ELEMENTS {
            return Some(self.take(n, page_size));
        }
        // Go's splitIndex: break at the first i >= 2 that does not fit, else at n - 3.
        let mut sz = PAGE_HEADER_SIZE;
        let mut index = 0;
        for (i, e) in self.q.iter().enumerate().take(n - 2) {
            index = i;
            if i >= 2 && (sz + e.size() > page_size || i >= MAX_PAGE_ELEMENTS) {
                break;
            }
            sz += e.size();
        }
        Some(self.take(index.max(1), page_size))
    }

    fn push(&mut self, e: Elem<'a>, page_size: usize) {
        self.total += e.size();
        self.q.push_back(e);
        self.scan(page_size);
    }
}

/// One open bucket.
#[derive(Debug)]
struct Frame<'a> {
    name: Cow<'a, [u8]>,
    sequence: u64,
    /// `levels[0]` is the leaf level; each further one a branch level.
    levels: Vec<Level<'a>>,
    has_sub_bucket: bool,
    last_key: Option<Cow<'a, [u8]>>,
}

impl<'a> Frame<'a> {
    fn new(name: Cow<'a, [u8]>, sequence: u64) -> Self {
        Frame {
            name,
            sequence,
            levels: vec![Level::new()],
            has_sub_bucket: false,
            last_key: None,
        }
    }
}

/// A streaming writer of a new bbolt file into `out` (positioned at its start).
///
/// Call [`begin_bucket`](Self::begin_bucket), [`put`](Self::put) and
/// [`end_bucket`](Self::end_bucket) in key order, then [`finish`](Self::finish). Keys
/// borrowed for `'a` (e.g. from a mapped source) are not copied.
#[derive(Debug)]
pub struct BoltWriter<'a, W: Write + Seek> {
    out: W,
    opts: WriterOptions,
    page_size: usize,
    next_pgid: Pgid,
    stack: Vec<Frame<'a>>,
    buf: Vec<u8>,
    summary: WriteSummary,
}

impl<'a, W: Write + Seek> BoltWriter<'a, W> {
    /// Starts a file: reserves the meta (and freelist) pages, which are written last.
    pub fn new(mut out: W, opts: WriterOptions) -> Result<Self, WriteError> {
        let ps = opts.page_size;
        if !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&ps) || !ps.is_multiple_of(16) {
            return Err(WriteError::PageSize(ps));
        }
        let page_size = ps as usize;
        let reserved: Pgid = match opts.freelist {
            FreelistMode::Page => 3,
            FreelistMode::None => 2,
        };
        let zeros = vec![0u8; page_size];
        for _ in 0..reserved {
            out.write_all(&zeros).map_err(io("write"))?;
        }
        Ok(BoltWriter {
            out,
            opts,
            page_size,
            next_pgid: reserved,
            stack: vec![Frame::new(Cow::Borrowed(&[]), opts.root_sequence)],
            buf: Vec::new(),
            summary: WriteSummary::default(),
        })
    }

    /// Current bucket nesting (0 inside the root bucket).
    pub fn depth(&self) -> usize {
        self.stack.len().saturating_sub(1)
    }

    fn path(&self) -> BucketPath {
        BucketPath(self.stack.iter().skip(1).map(|f| f.name.to_vec()).collect())
    }

    /// Checks that `key` may follow the current bucket's previous key, and records it
    /// (a `Cow` so that a borrowed key stays borrowed).
    #[allow(clippy::ptr_arg)]
    fn order(&mut self, key: &Cow<'a, [u8]>) -> Result<(), WriteError> {
        if key.is_empty() {
            return Err(WriteError::KeyEmpty { path: self.path() });
        }
        let bad = match self.stack.last().and_then(|f| f.last_key.as_ref()) {
            Some(prev) => prev.as_ref() >= key.as_ref(),
            None => false,
        };
        if bad {
            return Err(WriteError::KeyOrder {
                path: self.path(),
                key: String::from_utf8_lossy(key).into_owned(),
            });
        }
        if let Some(f) = self.stack.last_mut() {
            f.last_key = Some(key.clone());
        }
        Ok(())
    }

    /// Opens a nested bucket `name` in the current bucket.
    pub fn begin_bucket(
        &mut self,
        name: impl Into<Cow<'a, [u8]>>,
        sequence: u64,
    ) -> Result<(), WriteError> {
        let name = name.into();
        if self.stack.len() > MAX_WRITE_DEPTH {
            return Err(WriteError::TooDeep);
        }
        self.order(&name)?;
        self.stack.push(Frame::new(name, sequence));
        Ok(())
    }

    /// Adds a plain key and value to the current bucket.
    pub fn put(
        &mut self,
        key: impl Into<Cow<'a, [u8]>>,
        value: impl Into<Cow<'a, [u8]>>,
    ) -> Result<(), WriteError> {
        let key = key.into();
        self.order(&key)?;
        self.summary.keys += 1;
        self.queue_leaf(Elem {
            flags: 0,
            key,
            value: value.into(),
            pgid: 0,
        })
    }

    fn queue_leaf(&mut self, e: Elem<'a>) -> Result<(), WriteError> {
        if (PAGE_HEADER_SIZE + e.size()) as u64 > MAX_ELEMENT_EXTENT {
            return Err(WriteError::ElementTooLarge {
                path: self.path(),
                size: (e.key.len() + e.value.len()) as u64,
            });
        }
        let ps = self.page_size;
        let Some(frame) = self.stack.last_mut() else {
            return Err(WriteError::Unbalanced("no open bucket"));
        };
        if e.flags & BUCKET_LEAF_FLAG != 0 {
            frame.has_sub_bucket = true;
        }
        if let Some(l) = frame.levels.first_mut() {
            l.push(e, ps);
        }
        self.drain_ready(0)
    }

    /// Writes every page of the top frame that is decided, from `level` upward.
    fn drain_ready(&mut self, mut level: usize) -> Result<(), WriteError> {
        let ps = self.page_size;
        loop {
            let page = match self.stack.last_mut().and_then(|f| f.levels.get_mut(level)) {
                Some(l) => l.ready(ps),
                None => return Ok(()),
            };
            match page {
                Some(elems) => {
                    self.emit_up(level, &elems)?;
                }
                None => {
                    level += 1;
                }
            }
        }
    }

    /// Writes a page of the top frame's `level` and queues its entry one level up.
    fn emit_up(&mut self, level: usize, elems: &[Elem<'a>]) -> Result<(), WriteError> {
        let pgid = self.write_page(level, elems)?;
        let Some(frame) = self.stack.last_mut() else {
            return Err(WriteError::Unbalanced("no open bucket"));
        };
        if let Some(l) = frame.levels.get_mut(level) {
            l.written += 1;
        }
        if frame.levels.len() <= level + 1 {
            frame.levels.push(Level::new());
        }
        let key = elems.first().map(|e| e.key.clone()).unwrap_or_default();
        if let Some(up) = frame.levels.get_mut(level + 1) {
            up.push(
                Elem {
                    flags: 0,
                    key,
                    value: Cow::Borrowed(&[]),
                    pgid,
                },
                self.page_size,
            );
        }
        Ok(())
    }

    /// Serializes one page (leaf if `level == 0`, else branch) and returns its id.
    fn write_page(&mut self, level: usize, elems: &[Elem<'a>]) -> Result<Pgid, WriteError> {
        let ps = self.page_size;
        let size = PAGE_HEADER_SIZE + elems.iter().map(Elem::size).sum::<usize>();
        if size as u64 > MAX_ELEMENT_EXTENT {
            return Err(WriteError::ElementTooLarge {
                path: self.path(),
                size: size as u64,
            });
        }
        let npages = size.div_ceil(ps).max(1);
        let pgid = self.next_pgid;
        let flags = if level == 0 { LEAF_PAGE } else { BRANCH_PAGE };
        let overflow =
            u32::try_from(npages - 1).map_err(|_| WriteError::Overflow("page overflow count"))?;
        // Header and element array from a small buffer, then keys, values and the zero
        // tail straight into the output: each byte is copied once here.
        let mut head = std::mem::take(&mut self.buf);
        head.clear();
        head.resize(PAGE_HEADER_SIZE + ELEMENT_SIZE * elems.len(), 0);
        encode_head(&mut head, pgid, flags, overflow, elems);
        let r = self.stream_page(&head, elems, npages * ps - size);
        self.buf = head;
        if self.buf.capacity() > 4 * ps {
            self.buf = Vec::new();
        }
        r.map_err(io("write"))?;
        self.next_pgid = pgid
            .checked_add(npages as u64)
            .ok_or(WriteError::Overflow("page id"))?;
        if pgid / crate::fault::WRITE_PAGES_EVERY
            != self.next_pgid / crate::fault::WRITE_PAGES_EVERY
        {
            crate::fault::point("write-pages").map_err(io("write"))?;
        }
        Ok(pgid)
    }

    /// Writes an encoded page head, the elements' keys and values, and `pad` zeros.
    fn stream_page(&mut self, head: &[u8], elems: &[Elem<'a>], pad: usize) -> std::io::Result<()> {
        self.out.write_all(head)?;
        for e in elems {
            self.out.write_all(&e.key)?;
            self.out.write_all(&e.value)?;
        }
        let mut pad = pad;
        while pad > 0 {
            let n = pad.min(ZEROS.len());
            self.out.write_all(&ZEROS[..n])?;
            pad -= n;
        }
        Ok(())
    }

    /// Finishes the top frame's tree and returns its root page id.
    fn finish_tree(&mut self) -> Result<Pgid, WriteError> {
        let ps = self.page_size;
        let mut level = 0;
        loop {
            let (written_before, n_levels) = match self.stack.last() {
                Some(f) => (f.levels.get(level).map_or(0, |l| l.written), f.levels.len()),
                None => return Err(WriteError::Unbalanced("no open bucket")),
            };
            // Collect this level's remaining pages (they can be several).
            let mut pages = Vec::new();
            while let Some(p) = self
                .stack
                .last_mut()
                .and_then(|f| f.levels.get_mut(level))
                .and_then(|l| l.final_page(ps))
            {
                pages.push(p);
            }
            if written_before == 0 && pages.len() <= 1 && n_levels <= level + 1 {
                // The whole level is one page: the root (an empty leaf for an empty tree).
                let elems = pages.pop().unwrap_or_default();
                return self.write_page(level, &elems);
            }
            for p in &pages {
                self.emit_up(level, p)?;
                self.drain_ready(level + 1)?;
            }
            level += 1;
        }
    }

    /// Closes the current nested bucket and queues its element in the parent.
    pub fn end_bucket(&mut self) -> Result<(), WriteError> {
        if self.stack.len() < 2 {
            return Err(WriteError::Unbalanced("bucket end without a bucket start"));
        }
        let ps = self.page_size;
        let inline = match self.stack.last() {
            Some(f) => {
                let l0 = f.levels.first();
                !f.has_sub_bucket
                    && f.levels.len() == 1
                    && l0.is_some_and(|l| {
                        l.written == 0 && l.total <= ps / 4 && l.q.len() <= MAX_PAGE_ELEMENTS
                    })
            }
            None => false,
        };
        let value: Vec<u8> = if inline {
            let Some(f) = self.stack.last() else {
                return Err(WriteError::Unbalanced("no open bucket"));
            };
            let elems: Vec<Elem<'a>> = f
                .levels
                .first()
                .map(|l| l.q.iter().cloned().collect())
                .unwrap_or_default();
            let size = PAGE_HEADER_SIZE + elems.iter().map(Elem::size).sum::<usize>();
            let mut v = vec![0u8; BUCKET_HEADER_SIZE + size];
            put_u64(&mut v, BUCKET_ROOT, 0);
            put_u64(&mut v, BUCKET_SEQUENCE, f.sequence);
            encode_node(&mut v[BUCKET_HEADER_SIZE..], 0, LEAF_PAGE, 0, &elems);
            self.summary.inline_buckets += 1;
            v
        } else {
            let root = self.finish_tree()?;
            let seq = self.stack.last().map_or(0, |f| f.sequence);
            let mut v = vec![0u8; BUCKET_HEADER_SIZE];
            put_u64(&mut v, BUCKET_ROOT, root);
            put_u64(&mut v, BUCKET_SEQUENCE, seq);
            v
        };
        let frame = self
            .stack
            .pop()
            .ok_or(WriteError::Unbalanced("no open bucket"))?;
        self.summary.buckets += 1;
        self.queue_leaf(Elem {
            flags: BUCKET_LEAF_FLAG,
            key: frame.name,
            value: Cow::Owned(value),
            pgid: 0,
        })
    }

    /// Writes the root bucket's tree, the freelist and both metas, flushes, and
    /// returns the output and a summary. The caller syncs the file.
    pub fn finish(mut self) -> Result<(W, WriteSummary), WriteError> {
        if self.stack.len() != 1 {
            return Err(WriteError::Unbalanced("buckets still open at the end"));
        }
        let root = self.finish_tree()?;
        let ps = self.page_size;
        let hwm = self.next_pgid;
        // Metas: txids t (page 0) and t + 1 (page 1), t even and t + 1 > after_txid.
        let t = self
            .opts
            .after_txid
            .checked_add(1)
            .map(|x| x & !1)
            .filter(|t| t.checked_add(1).is_some())
            .ok_or(WriteError::Overflow("transaction id"))?;
        let freelist = match self.opts.freelist {
            FreelistMode::Page => 2,
            FreelistMode::None => NO_FREELIST,
        };
        let mut head = vec![0u8; ps * if freelist == NO_FREELIST { 2 } else { 3 }];
        for i in 0..2u64 {
            let off = i as usize * ps;
            let meta = Meta {
                magic: MAGIC,
                version: VERSION,
                page_size: self.opts.page_size,
                flags: 0,
                root,
                root_sequence: self.opts.root_sequence,
                freelist,
                pgid: hwm,
                txid: t + i,
                checksum: 0,
            };
            put_u64(&mut head, off + PAGE_ID, i);
            put_u16(&mut head, off + PAGE_FLAGS, META_PAGE);
            if let Some(dst) = head.get_mut(off + META_OFFSET..off + META_END) {
                dst.copy_from_slice(&meta.encode());
            }
        }
        if freelist != NO_FREELIST {
            put_u64(&mut head, 2 * ps + PAGE_ID, 2);
            put_u16(&mut head, 2 * ps + PAGE_FLAGS, FREELIST_PAGE);
        }
        self.out.flush().map_err(io("flush"))?;
        self.out.seek(SeekFrom::Start(0)).map_err(io("seek in"))?;
        self.out.write_all(&head).map_err(io("write"))?;
        self.out.flush().map_err(io("flush"))?;
        self.summary.pages = hwm;
        self.summary.bytes = hwm.saturating_mul(ps as u64);
        self.summary.root = root;
        self.summary.txid = t + 1;
        Ok((self.out, self.summary))
    }
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    if let Some(d) = b.get_mut(at..at + 2) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if let Some(d) = b.get_mut(at..at + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

fn put_u64(b: &mut [u8], at: usize, v: u64) {
    if let Some(d) = b.get_mut(at..at + 8) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

/// Zeros for page tails.
static ZEROS: [u8; 4096] = [0; 4096];

/// Writes a page header and the element array into `b` (zeroed, at least
/// `PAGE_HEADER_SIZE + ELEMENT_SIZE * elems.len()` bytes); the elements' keys and values
/// follow the array in order, with no gaps. Offsets fit in `u32` and `count` in `u16`:
/// callers reject nodes larger than [`MAX_ELEMENT_EXTENT`] and the split rule caps the
/// count.
fn encode_head(b: &mut [u8], pgid: Pgid, flags: u16, overflow: u32, elems: &[Elem<'_>]) {
    put_u64(b, PAGE_ID, pgid);
    put_u16(b, PAGE_FLAGS, flags);
    put_u16(b, PAGE_COUNT, elems.len() as u16);
    put_u32(b, PAGE_OVERFLOW, overflow);
    let mut data = PAGE_HEADER_SIZE + ELEMENT_SIZE * elems.len();
    for (i, e) in elems.iter().enumerate() {
        let at = PAGE_HEADER_SIZE + ELEMENT_SIZE * i;
        let pos = (data - at) as u32;
        if flags == BRANCH_PAGE {
            put_u32(b, at + BRANCH_POS, pos);
            put_u32(b, at + BRANCH_KSIZE, e.key.len() as u32);
            put_u64(b, at + BRANCH_PGID, e.pgid);
        } else {
            put_u32(b, at + LEAF_FLAGS, e.flags);
            put_u32(b, at + LEAF_POS, pos);
            put_u32(b, at + LEAF_KSIZE, e.key.len() as u32);
            put_u32(b, at + LEAF_VSIZE, e.value.len() as u32);
        }
        data += e.key.len() + e.value.len();
    }
}

/// Writes a whole node into `b` (zeroed, and sized by the caller from the same
/// elements): [`encode_head`], then the keys and values.
fn encode_node(b: &mut [u8], pgid: Pgid, flags: u16, overflow: u32, elems: &[Elem<'_>]) {
    encode_head(b, pgid, flags, overflow, elems);
    let mut data = PAGE_HEADER_SIZE + ELEMENT_SIZE * elems.len();
    for e in elems {
        if let Some(d) = b.get_mut(data..data + e.key.len()) {
            d.copy_from_slice(&e.key);
        }
        data += e.key.len();
        if let Some(d) = b.get_mut(data..data + e.value.len()) {
            d.copy_from_slice(&e.value);
        }
        data += e.value.len();
    }
}
