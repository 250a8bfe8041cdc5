//! Where a merge's events go: the writer, the comparison with a written
//! file, a counter; and the overlay that adds the repair's own keys at their
//! places on the way.

use std::collections::btree_map;
use std::collections::BTreeMap;
use std::io::{Seek, Write};
use std::iter::Peekable;

use super::merge::Sink;
use crate::bolt::writer::{BoltWriter, WriteError};
use crate::bolt::{Walk, WalkEvent};

/// Keys the repair adds, as a tree: merged into the output at their places.
/// A bucket here that the output has is merged into it; one it lacks is
/// created with sequence 0. A key the output already holds keeps the
/// output's entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Additions {
    /// The entries of this bucket.
    pub entries: BTreeMap<Vec<u8>, Addition>,
}

/// One added entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addition {
    /// A plain key's value.
    Value(Vec<u8>),
    /// A bucket.
    Bucket(Additions),
}

impl Additions {
    /// The bucket at `path` below this one, created as needed (a value on
    /// the way is replaced by a bucket).
    pub fn bucket_mut(&mut self, path: &[&[u8]]) -> &mut Additions {
        let mut at = self;
        for name in path {
            let entry = at
                .entries
                .entry(name.to_vec())
                .or_insert_with(|| Addition::Bucket(Additions::default()));
            if let Addition::Value(_) = entry {
                *entry = Addition::Bucket(Additions::default());
            }
            at = match entry {
                Addition::Bucket(b) => b,
                Addition::Value(_) => unreachable!("a value on the way was replaced above"),
            };
        }
        at
    }

    /// Adds `other`'s entries: buckets both hold are merged; where both hold
    /// a key otherwise, this tree's entry stays.
    pub fn merge(&mut self, other: Additions) {
        for (k, a) in other.entries {
            match (self.entries.entry(k), a) {
                (btree_map::Entry::Vacant(v), a) => {
                    v.insert(a);
                }
                (btree_map::Entry::Occupied(mut o), Addition::Bucket(b)) => {
                    if let Addition::Bucket(mine) = o.get_mut() {
                        mine.merge(b);
                    }
                }
                (btree_map::Entry::Occupied(_), Addition::Value(_)) => {}
            }
        }
    }
}

type Pending<'a> = Option<Peekable<btree_map::Iter<'a, Vec<u8>, Addition>>>;

/// A sink that passes every event on and adds [`Additions`] at their places.
pub(super) struct Overlay<'a, S> {
    inner: S,
    stack: Vec<Pending<'a>>,
}

impl<'a, S: Sink<'a>> Overlay<'a, S> {
    pub(super) fn new(inner: S, add: &'a Additions) -> Self {
        Overlay {
            inner,
            stack: vec![Some(add.entries.iter().peekable())],
        }
    }

    /// Adds what is left at the root and returns the inner sink.
    pub(super) fn finish(mut self) -> Result<S, S::Error> {
        self.flush_before(None)?;
        Ok(self.inner)
    }

    /// Emits the additions of the current bucket below `key` (all if `None`).
    fn flush_before(&mut self, key: Option<&[u8]>) -> Result<(), S::Error> {
        loop {
            let next = match self.stack.last_mut() {
                Some(Some(it)) => match it.peek() {
                    Some((k, _)) if key.is_none_or(|key| k.as_slice() < key) => it.next(),
                    _ => None,
                },
                _ => None,
            };
            let Some((k, a)) = next else { return Ok(()) };
            emit(&mut self.inner, k, a)?;
        }
    }

    /// Takes the addition at `key` in the current bucket, if there is one.
    fn take_at(&mut self, key: &[u8]) -> Option<&'a Addition> {
        let it = self.stack.last_mut()?.as_mut()?;
        match it.peek() {
            Some((k, _)) if k.as_slice() == key => it.next().map(|(_, a)| a),
            _ => None,
        }
    }
}

/// Emits an added entry and everything under it.
fn emit<'a, S: Sink<'a>>(sink: &mut S, key: &'a [u8], a: &'a Addition) -> Result<(), S::Error> {
    match a {
        Addition::Value(v) => sink.put(key, v),
        Addition::Bucket(b) => {
            sink.begin(key, 0)?;
            for (k, x) in &b.entries {
                emit(sink, k, x)?;
            }
            sink.end()
        }
    }
}

impl<'a, S: Sink<'a>> Sink<'a> for Overlay<'a, S> {
    type Error = S::Error;

    fn begin(&mut self, key: &'a [u8], sequence: u64) -> Result<(), S::Error> {
        self.flush_before(Some(key))?;
        let child = match self.take_at(key) {
            Some(Addition::Bucket(b)) => Some(b.entries.iter().peekable()),
            _ => None,
        };
        self.stack.push(child);
        self.inner.begin(key, sequence)
    }

    fn put(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), S::Error> {
        self.flush_before(Some(key))?;
        let _ = self.take_at(key);
        self.inner.put(key, value)
    }

    fn end(&mut self) -> Result<(), S::Error> {
        self.flush_before(None)?;
        self.stack.pop();
        self.inner.end()
    }
}

/// The writer as a sink.
pub(super) struct WriterSink<'a, W: Write + Seek>(pub(super) BoltWriter<'a, W>);

impl<'a, W: Write + Seek> Sink<'a> for WriterSink<'a, W> {
    type Error = WriteError;

    fn begin(&mut self, key: &'a [u8], sequence: u64) -> Result<(), WriteError> {
        self.0.begin_bucket(key, sequence)
    }

    fn put(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), WriteError> {
        self.0.put(key, value)
    }

    fn end(&mut self) -> Result<(), WriteError> {
        self.0.end_bucket()
    }
}

/// Compares the events with a walk of a written file, one by one.
pub(super) struct CompareSink<'b> {
    walk: Walk<'b>,
    events: u64,
}

impl<'b> CompareSink<'b> {
    pub(super) fn new(walk: Walk<'b>) -> Self {
        CompareSink { walk, events: 0 }
    }

    fn next(&mut self, want: &str) -> Result<WalkEvent<'b>, String> {
        self.events += 1;
        match self.walk.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(format!(
                "the repaired file cannot be read at event {}: {e}",
                self.events
            )),
            None => Err(format!(
                "the repaired file ends where the repair has {want} (event {})",
                self.events
            )),
        }
    }

    fn differs(&self, want: String, got: WalkEvent<'_>) -> String {
        format!(
            "the repaired file differs from the repair in bucket {} at event {}: the repair has {want}, the file {got:?}",
            self.walk.path(),
            self.events
        )
    }

    /// Succeeds if the file holds nothing more.
    pub(super) fn finish(mut self) -> Result<(), String> {
        match self.walk.next_event() {
            None => Ok(()),
            Some(Ok(ev)) => Err(format!(
                "the repaired file holds more than the repair wrote: {ev:?}"
            )),
            Some(Err(e)) => Err(format!("the repaired file cannot be read at its end: {e}")),
        }
    }
}

impl<'a, 'b> Sink<'a> for CompareSink<'b> {
    type Error = String;

    fn begin(&mut self, key: &'a [u8], sequence: u64) -> Result<(), String> {
        let want = || {
            format!(
                "bucket {} (sequence {sequence})",
                crate::bytes::display(key)
            )
        };
        match self.next(&want())? {
            WalkEvent::BucketStart {
                key: k,
                sequence: s,
                ..
            } if k == key && s == sequence => Ok(()),
            got => Err(self.differs(want(), got)),
        }
    }

    fn put(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), String> {
        let want = || format!("key {}", crate::bytes::display(key));
        match self.next(&want())? {
            WalkEvent::Value { key: k, value: v } if k == key && v == value => Ok(()),
            got => Err(self.differs(want(), got)),
        }
    }

    fn end(&mut self) -> Result<(), String> {
        match self.next("the end of a bucket")? {
            WalkEvent::BucketEnd => Ok(()),
            got => Err(self.differs("the end of a bucket".into(), got)),
        }
    }
}

/// Takes the events and drops them: a merge run for its ledger alone.
#[derive(Debug, Default)]
pub(super) struct Discard;

impl<'a> Sink<'a> for Discard {
    type Error = std::convert::Infallible;

    fn begin(&mut self, _: &'a [u8], _: u64) -> Result<(), Self::Error> {
        Ok(())
    }

    fn put(&mut self, _: &'a [u8], _: &'a [u8]) -> Result<(), Self::Error> {
        Ok(())
    }

    fn end(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}
