//! The bbolt file format: a defensive, zero-copy reader, a structural checker and
//! a streaming compact writer. This module knows nothing about containerd.
//!
//! Layers, after `object`: [`layout`] (named offsets) → [`bytes`], [`page`],
//! [`meta`] (bounds-checked raw access) → [`bucket`], [`walk`], [`db`] (typed API).
//! `docs/format.md` is the specification this code mirrors.

pub mod bucket;
pub mod bytes;
pub mod check;
pub mod db;
pub mod error;
pub mod freelist;
pub mod layout;
pub mod meta;
pub mod page;
pub mod pageset;
pub mod tree;
pub mod walk;
pub mod writer;

pub use bucket::{Bucket, Entry, EntryKind};
pub use db::{Db, DbFile, LockMode};
pub use error::{
    BucketPath, CorruptKind, Corruption, Error, LockHolder, LockKind, MetaProblem, Pgid, Result,
};
pub use walk::{Walk, WalkEvent};
