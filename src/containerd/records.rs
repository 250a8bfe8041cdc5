//! A tree's records as they are stored (`containerd::shape`'s units), one
//! at a time in walk order, with their raw entries: an image, container,
//! content blob, ingest, snapshot, lease, sandbox — and a namespace, whose
//! entries are its labels. For comparing files record by record.

use std::cmp::Ordering;

use super::shape::{identity_at, Child, Level, RecordId, RecordKind};
use crate::bolt::{Bucket, Db, Error, MetaTree, Walk, WalkEvent};

/// One entry inside a record: its path below the record's bucket (the field
/// name first) and its value (`None` for a bucket, so an empty one counts).
pub type RecordEntry<'a> = (Vec<&'a [u8]>, Option<&'a [u8]>);

/// A record as one tree holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The bucket holding it (for a namespace, `v1`).
    pub path: Vec<&'a [u8]>,
    /// Its key there.
    pub key: &'a [u8],
    /// Its kind ([`RecordKind::NamespaceLabels`] for a namespace).
    pub kind: RecordKind,
    /// Its entries in key order.
    pub entries: Vec<RecordEntry<'a>>,
}

impl Record<'_> {
    /// Its identity.
    pub fn id(&self) -> RecordId {
        identity_at(&self.path, self.key, Some(self.kind))
    }

    /// The walk order: the bucket path then the key; a namespace comes after
    /// the records inside it (it is complete only at the namespace's end).
    pub fn order(&self, other: &Record<'_>) -> Ordering {
        let mine = self.path.iter().chain(std::iter::once(&self.key));
        let theirs = other.path.iter().chain(std::iter::once(&other.key));
        let (a, b) = (self.path.len() + 1, other.path.len() + 1);
        for (x, y) in mine.zip(theirs) {
            match x.cmp(y) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        let after = |r: &Record<'_>| r.kind == RecordKind::NamespaceLabels;
        match a.cmp(&b) {
            Ordering::Equal => Ordering::Equal,
            // One is the namespace the other lies in.
            Ordering::Less if after(self) => Ordering::Greater,
            Ordering::Greater if after(other) => Ordering::Less,
            o => o,
        }
    }
}

/// The records of one tree, in walk order.
#[derive(Debug)]
pub struct Records<'a> {
    walk: Walk<'a>,
    /// The open buckets: name and level (records are collected, not pushed).
    stack: Vec<(&'a [u8], Level)>,
    /// The namespace being walked, with its labels so far.
    namespace: Option<Record<'a>>,
    done: bool,
}

impl<'a> Records<'a> {
    /// The records of `db`.
    pub fn new(db: &Db<'a>) -> Result<Records<'a>, Error> {
        Ok(Records::from_walk(db, Walk::new(db)?))
    }

    fn from_walk(db: &Db<'a>, walk: Walk<'a>) -> Records<'a> {
        let root = Level::root(super::kind::identify(db));
        Records {
            walk,
            stack: vec![(b"", root)],
            namespace: None,
            done: false,
        }
    }

    fn next_event(&mut self) -> Option<Result<WalkEvent<'a>, Error>> {
        self.walk.next_event()
    }

    fn path(&self) -> Vec<&'a [u8]> {
        self.stack.iter().skip(1).map(|(n, _)| *n).collect()
    }

    /// The rest of a record whose bucket `key` just started.
    fn record(&mut self, key: &'a [u8], kind: RecordKind) -> Result<Record<'a>, Error> {
        let path = self.path();
        let entries = collect_entries(|| self.next_event())?;
        Ok(Record {
            path,
            key,
            kind,
            entries,
        })
    }

    /// The records of `tree` (one of the file's meta trees; [`Records::new`]
    /// reads the selected one).
    pub fn of_tree(db: &Db<'a>, tree: &MetaTree<'a>) -> Result<Records<'a>, Error> {
        let root = tree.root().map_err(Error::from)?;
        Ok(Records::from_walk(db, Walk::from_bucket(db, root)))
    }
}

/// The entries of a record whose bucket was just entered, from `next` (walk
/// events) up to the record's end (its `BucketEnd`, or the walk's end).
fn collect_entries<'a>(
    mut next: impl FnMut() -> Option<Result<WalkEvent<'a>, Error>>,
) -> Result<Vec<RecordEntry<'a>>, Error> {
    let mut entries = Vec::new();
    let mut inside: Vec<&'a [u8]> = Vec::new();
    loop {
        let Some(ev) = next() else {
            return Ok(entries);
        };
        match ev? {
            WalkEvent::Value { key, value } => {
                let mut p = inside.clone();
                p.push(key);
                entries.push((p, Some(value)));
            }
            WalkEvent::BucketStart { key, .. } => {
                inside.push(key);
                entries.push((inside.clone(), None));
            }
            WalkEvent::BucketEnd => {
                if inside.pop().is_none() {
                    return Ok(entries);
                }
            }
        }
    }
}

/// The entries of the record stored as `bucket`.
pub fn record_entries<'a>(db: &Db<'a>, bucket: Bucket<'a>) -> Result<Vec<RecordEntry<'a>>, Error> {
    let mut walk = Walk::from_bucket(db, bucket);
    collect_entries(|| walk.next_event())
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            let ev = match self.next_event() {
                Some(Ok(ev)) => ev,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(e));
                }
                None => {
                    self.done = true;
                    return None;
                }
            };
            let level = self.stack.last().map_or(Level::Other, |(_, l)| *l);
            match ev {
                WalkEvent::Value { .. } => {}
                WalkEvent::BucketStart { key, .. } => match level.child(key) {
                    Child::Record(RecordKind::NamespaceLabels) => {
                        // A namespace's labels are its namespace record's.
                        match self.record(key, RecordKind::NamespaceLabels) {
                            Ok(labels) => {
                                if let Some(ns) = self.namespace.as_mut() {
                                    ns.entries.push((vec![key], None));
                                    ns.entries.extend(labels.entries.into_iter().map(
                                        |(mut p, v)| {
                                            p.insert(0, key);
                                            (p, v)
                                        },
                                    ));
                                }
                            }
                            Err(e) => {
                                self.done = true;
                                return Some(Err(e));
                            }
                        }
                    }
                    Child::Record(kind) => {
                        let r = self.record(key, kind);
                        if r.is_err() {
                            self.done = true;
                        }
                        return Some(r);
                    }
                    Child::Level(l) => {
                        if l == Level::Namespace {
                            self.namespace = Some(Record {
                                path: self.path(),
                                key,
                                kind: RecordKind::NamespaceLabels,
                                entries: Vec::new(),
                            });
                        }
                        self.stack.push((key, l));
                    }
                },
                WalkEvent::BucketEnd => {
                    let ended = self.stack.pop();
                    if let Some((_, Level::Namespace)) = ended {
                        if let Some(ns) = self.namespace.take() {
                            return Some(Ok(ns));
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(path: &[&'a [u8]], key: &'a [u8], kind: RecordKind) -> Record<'a> {
        Record {
            path: path.to_vec(),
            key,
            kind,
            entries: Vec::new(),
        }
    }

    #[test]
    fn a_namespace_comes_after_the_records_inside_it() {
        let ns = record(&[b"v1"], b"default", RecordKind::NamespaceLabels);
        let image = record(&[b"v1", b"default", b"images"], b"x:1", RecordKind::Image);
        let other = record(&[b"v1"], b"k8s.io", RecordKind::NamespaceLabels);
        let later = record(&[b"v1", b"k8s.io", b"images"], b"a:1", RecordKind::Image);
        assert_eq!(image.order(&ns), Ordering::Less);
        assert_eq!(ns.order(&image), Ordering::Greater);
        assert_eq!(ns.order(&later), Ordering::Less);
        assert_eq!(other.order(&later), Ordering::Greater);
        assert_eq!(ns.order(&ns.clone()), Ordering::Equal);
        assert_eq!(image.id().id, b"x:1");
        assert_eq!(ns.id().namespace.as_deref(), Some(&b"default"[..]));
    }
}
