//! A depth-first walk of the whole bucket tree, as a stream of events.
//!
//! The walk visits every page at most once across the whole file (a dense bitmap
//! over page ids), keeps one cursor per open bucket, and never nests deeper than
//! [`MAX_BUCKET_DEPTH`] buckets, so its time is linear in the file and its memory
//! is O(depth) plus the bitmap. It is the source of `dump`, `compact` and output
//! verification.

#![deny(clippy::indexing_slicing)]

use super::bucket::{nested_too_deep, Bucket, Cursor, EntryKind, MAX_BUCKET_DEPTH};
use super::db::Db;
use super::error::{BucketPath, Error, Result};
use super::pageset::PageSet;

/// One step of the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalkEvent<'a> {
    /// A nested bucket starts; its entries follow until the matching `BucketEnd`.
    BucketStart {
        /// The bucket's name in its parent.
        key: &'a [u8],
        /// The bucket's sequence.
        sequence: u64,
        /// Whether it is stored inline in its parent.
        inline: bool,
    },
    /// A key with a plain value in the current bucket.
    Value {
        /// The key.
        key: &'a [u8],
        /// The value.
        value: &'a [u8],
    },
    /// The current bucket ends.
    BucketEnd,
}

#[derive(Debug)]
struct Open<'a> {
    name: &'a [u8],
    cursor: Cursor<'a>,
}

/// The walk over a database's tree (the root bucket itself is not reported).
#[derive(Debug)]
pub struct Walk<'a> {
    stack: Vec<Open<'a>>,
    seen: PageSet,
    root_sequence: u64,
    failed: bool,
}

impl<'a> Walk<'a> {
    /// Starts a walk at the root bucket.
    pub fn new(db: &Db<'a>) -> Result<Walk<'a>> {
        let root = db.root()?;
        Ok(Walk::from_bucket(db, root))
    }

    /// Starts a walk at any bucket (its entries are reported at depth 0).
    pub fn from_bucket(db: &Db<'a>, bucket: Bucket<'a>) -> Walk<'a> {
        Walk {
            stack: vec![Open {
                name: b"",
                cursor: bucket.cursor(),
            }],
            seen: PageSet::for_file(&db.pages()),
            root_sequence: bucket.sequence(),
            failed: false,
        }
    }

    /// Sequence of the bucket the walk started at.
    pub fn root_sequence(&self) -> u64 {
        self.root_sequence
    }

    /// Current nesting depth: 0 inside the starting bucket.
    pub fn depth(&self) -> usize {
        self.stack.len().saturating_sub(1)
    }

    /// The path of the current bucket (names of the open nested buckets).
    pub fn path(&self) -> BucketPath {
        BucketPath(self.stack.iter().skip(1).map(|o| o.name.to_vec()).collect())
    }

    /// Skips the rest of the current bucket (typically right after its
    /// `BucketStart`): no more of its entries and no `BucketEnd` are reported.
    pub fn skip_current(&mut self) {
        if self.stack.len() > 1 {
            self.stack.pop();
        }
    }

    /// The next event, or the first corruption met (after which the walk ends).
    pub fn next_event(&mut self) -> Option<Result<WalkEvent<'a>>> {
        if self.failed {
            return None;
        }
        let depth = self.stack.len();
        let top = self.stack.last_mut()?;
        match top.cursor.next_entry(&mut self.seen) {
            None => {
                self.stack.pop();
                if self.stack.is_empty() {
                    None
                } else {
                    Some(Ok(WalkEvent::BucketEnd))
                }
            }
            Some(Err(c)) => {
                self.failed = true;
                let path = self.path();
                Some(Err(Error::from(c.in_bucket(&path))))
            }
            Some(Ok(e)) => match e.kind {
                EntryKind::Value(value) => Some(Ok(WalkEvent::Value { key: e.key, value })),
                EntryKind::Bucket(b) => {
                    if depth > MAX_BUCKET_DEPTH {
                        self.failed = true;
                        let path = self.path();
                        return Some(Err(Error::from(nested_too_deep().in_bucket(&path))));
                    }
                    self.stack.push(Open {
                        name: e.key,
                        cursor: b.cursor(),
                    });
                    Some(Ok(WalkEvent::BucketStart {
                        key: e.key,
                        sequence: b.sequence(),
                        inline: b.is_inline(),
                    }))
                }
            },
        }
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = Result<WalkEvent<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_event()
    }
}
