//! The bbolt file format: a defensive, zero-copy reader, a structural checker and
//! a streaming compact writer. This module knows nothing about containerd.
//!
//! Layers, after `object`: [`layout`] (named offsets) → `bytes`, `page`, `meta`,
//! `freelist` (bounds-checked raw access) → `tree` (the rules of a tree page and
//! its elements), `pageset` (the pages a walk has entered) → `bucket`, `walk`,
//! `db` (the typed API, re-exported here) → [`check`] and [`writer`].
//! `docs/format.md` is the specification this code mirrors.
//!
//! Public: the typed API re-exported below, [`check`], [`writer`], [`layout`]
//! (the format's offsets, as `docs/format.md` names them), and [`testing`]
//! (page-level access for tests, benchmarks and fuzz targets). Everything else
//! is internal to the crate.

pub(crate) mod bucket;
pub(crate) mod bytes;
pub mod check;
pub(crate) mod db;
pub(crate) mod error;
pub(crate) mod freelist;
pub mod layout;
pub(crate) mod meta;
pub(crate) mod page;
pub(crate) mod pageset;
pub mod salvage;
pub mod testing;
pub(crate) mod tree;
pub(crate) mod walk;
pub mod writer;

pub use bucket::{Bucket, Entries, Entry, EntryKind, MAX_BUCKET_DEPTH};
pub use db::{Db, DbFile, LockMode, MetaTree};
pub use error::{
    BucketPath, CorruptKind, Corruption, Error, LockHolder, LockKind, MetaProblem, PathSyntaxError,
    Pgid, Result,
};
pub use freelist::Freelist;
pub use meta::{Meta, MetaReason, MetaSelection, MetaSlot};
pub use page::PageKind;
pub use walk::{Walk, WalkEvent};
