//! Byte layout of a bbolt file, as named constants.
//!
//! This module mirrors `docs/format.md`; every offset used by the reader and the
//! writer is defined here, each built from the ones before it. All integers are
//! little-endian (bbolt writes native byte order; every platform containerd ships
//! on that we support is little-endian, and a byte-swapped magic is rejected).

/// Size of the header at the start of every page.
///
/// ```text
/// 0        8       10      12          16
/// +--------+-------+-------+-----------+
/// | id u64 | flags | count | overflow  |
/// |        |  u16  |  u16  |   u32     |
/// +--------+-------+-------+-----------+
/// ```
pub const PAGE_HEADER_SIZE: usize = 16;
/// Offset of the page id in the page header.
pub const PAGE_ID: usize = 0;
/// Offset of the page flags in the page header.
pub const PAGE_FLAGS: usize = 8;
/// Offset of the element count in the page header.
pub const PAGE_COUNT: usize = 10;
/// Offset of the overflow page count in the page header.
pub const PAGE_OVERFLOW: usize = 12;

/// Page flag: branch page.
pub const BRANCH_PAGE: u16 = 0x01;
/// Page flag: leaf page.
pub const LEAF_PAGE: u16 = 0x02;
/// Page flag: meta page.
pub const META_PAGE: u16 = 0x04;
/// Page flag: freelist page.
pub const FREELIST_PAGE: u16 = 0x10;

/// Size of one branch or leaf element; element `i` starts at
/// `PAGE_HEADER_SIZE + i * ELEMENT_SIZE`.
pub const ELEMENT_SIZE: usize = 16;

/// Branch element: `pos u32 | ksize u32 | pgid u64`. `pos` is relative to the
/// element's own start.
pub const BRANCH_POS: usize = 0;
/// Branch element: key size.
pub const BRANCH_KSIZE: usize = 4;
/// Branch element: child page id.
pub const BRANCH_PGID: usize = 8;

/// Leaf element: `flags u32 | pos u32 | ksize u32 | vsize u32`. The value
/// follows the key immediately.
pub const LEAF_FLAGS: usize = 0;
/// Leaf element: position of the key, relative to the element's own start.
pub const LEAF_POS: usize = 4;
/// Leaf element: key size.
pub const LEAF_KSIZE: usize = 8;
/// Leaf element: value size.
pub const LEAF_VSIZE: usize = 12;
/// Leaf element flag: the value is a bucket header (`InBucket`).
pub const BUCKET_LEAF_FLAG: u32 = 0x01;

/// Meta body, starting right after the page header of pages 0 and 1.
///
/// ```text
/// 16     20       24        28     32        40       48         56    64     72         80
/// +------+--------+---------+------+---------+--------+----------+-----+------+----------+
/// |magic |version |pageSize |flags |root pgid|root seq|freelist  |pgid |txid  |checksum  |
/// | u32  |  u32   |  u32    | u32  |  u64    |  u64   |  u64     | u64 | u64  | u64      |
/// +------+--------+---------+------+---------+--------+----------+-----+------+----------+
/// ```
pub const META_OFFSET: usize = PAGE_HEADER_SIZE;
/// Meta: magic number, [`MAGIC`].
pub const META_MAGIC: usize = META_OFFSET;
/// Meta: format version, [`VERSION`].
pub const META_VERSION: usize = META_MAGIC + 4;
/// Meta: page size in bytes.
pub const META_PAGE_SIZE: usize = META_VERSION + 4;
/// Meta: flags (unused by bbolt; 0 when written by Go).
pub const META_FLAGS: usize = META_PAGE_SIZE + 4;
/// Meta: root bucket's root page id.
pub const META_ROOT: usize = META_FLAGS + 4;
/// Meta: root bucket's sequence.
pub const META_ROOT_SEQUENCE: usize = META_ROOT + 8;
/// Meta: freelist page id, or [`NO_FREELIST`].
pub const META_FREELIST: usize = META_ROOT_SEQUENCE + 8;
/// Meta: high-water mark, the number of pages in use.
pub const META_PGID: usize = META_FREELIST + 8;
/// Meta: transaction id.
pub const META_TXID: usize = META_PGID + 8;
/// Meta: FNV-1a 64 checksum of bytes `[META_OFFSET, META_CHECKSUM)`.
pub const META_CHECKSUM: usize = META_TXID + 8;
/// End of the meta body.
pub const META_END: usize = META_CHECKSUM + 8;

/// bbolt's magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only file format version bbolt has.
pub const VERSION: u32 = 2;
/// Meta `freelist` value meaning "no freelist persisted" (`NoFreelistSync`).
pub const NO_FREELIST: u64 = u64::MAX;

/// Bucket header (`InBucket`) at the start of a bucket value:
/// `root u64 | sequence u64`; `root == 0` means inline, and a leaf page image follows.
pub const BUCKET_HEADER_SIZE: usize = 16;
/// Bucket header: root page id.
pub const BUCKET_ROOT: usize = 0;
/// Bucket header: sequence.
pub const BUCKET_SEQUENCE: usize = 8;

/// Freelist: when the header's count is this value, the real count is the first u64
/// after the header and the ids start one u64 later.
pub const FREELIST_COUNT_OVERFLOW: u16 = 0xFFFF;

/// Smallest page size the reader accepts. Go probes for the second meta from 1 KiB.
pub const MIN_PAGE_SIZE: u32 = 1024;
/// Largest page size the reader accepts. Go probes for the second meta up to 16 MiB.
pub const MAX_PAGE_SIZE: u32 = 16 << 20;

/// bbolt's largest key (`MaxKeySize`), enforced by Go only in `Put`.
pub const MAX_KEY_SIZE: usize = 32768;
/// Go's writer refuses a node with this many elements or more (`count` is u16).
pub const MAX_ELEMENTS: usize = 0xFFFF;
