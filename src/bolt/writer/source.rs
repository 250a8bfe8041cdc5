//! The writer's input: a walk of a source file, with chosen subtrees left out,
//! streamed into a [`BoltWriter`].

use std::io::{Seek, Write};

use super::{BoltWriter, WriteError};
use crate::bolt::error::Error as ReadError;
use crate::bolt::walk::{Walk, WalkEvent};

/// What a [`Filtered`] walk's filter is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A nested bucket (dropping it drops its whole subtree).
    Bucket,
    /// A plain key.
    Value,
}

/// A [`Walk`] with chosen subtrees and keys left out: `keep(path, key, kind)` is asked
/// about every bucket start and key, with `path` the names of the enclosing buckets.
#[derive(Debug)]
pub struct Filtered<'a, F> {
    pub(super) walk: Walk<'a>,
    path: Vec<&'a [u8]>,
    keep: F,
}

impl<'a, F: FnMut(&[&[u8]], &[u8], ItemKind) -> bool> Filtered<'a, F> {
    /// Wraps `walk`.
    pub fn new(walk: Walk<'a>, keep: F) -> Self {
        Filtered {
            walk,
            path: Vec::new(),
            keep,
        }
    }

    /// The root sequence of the underlying walk.
    pub fn root_sequence(&self) -> u64 {
        self.walk.root_sequence()
    }

    /// The next event that passes the filter.
    pub fn next_event(&mut self) -> Option<Result<WalkEvent<'a>, ReadError>> {
        loop {
            let ev = match self.walk.next_event()? {
                Ok(ev) => ev,
                Err(e) => return Some(Err(e)),
            };
            match ev {
                WalkEvent::BucketStart { key, .. } => {
                    if (self.keep)(&self.path, key, ItemKind::Bucket) {
                        self.path.push(key);
                        return Some(Ok(ev));
                    }
                    self.walk.skip_current();
                }
                WalkEvent::Value { key, .. } => {
                    if (self.keep)(&self.path, key, ItemKind::Value) {
                        return Some(Ok(ev));
                    }
                }
                WalkEvent::BucketEnd => {
                    self.path.pop();
                    return Some(Ok(ev));
                }
            }
        }
    }
}

/// Keeps everything.
pub fn keep_all(_: &[&[u8]], _: &[u8], _: ItemKind) -> bool {
    true
}

/// Writes every event of `src` into `w` (no copies of keys or values: they are
/// borrowed from the source).
pub fn copy_walk<'a, W, F>(
    src: &mut Filtered<'a, F>,
    w: &mut BoltWriter<'a, W>,
) -> Result<(), WriteError>
where
    W: Write + Seek,
    F: FnMut(&[&[u8]], &[u8], ItemKind) -> bool,
{
    while let Some(ev) = src.next_event() {
        match ev? {
            WalkEvent::BucketStart { key, sequence, .. } => w.begin_bucket(key, sequence)?,
            WalkEvent::Value { key, value } => w.put(key, value)?,
            WalkEvent::BucketEnd => w.end_bucket()?,
        }
    }
    Ok(())
}
