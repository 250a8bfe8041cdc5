//! Records carved from what the newest tree no longer reaches (`ctrdb carve`,
//! `docs/forensics.md`): earlier versions of records, and records deleted a
//! transaction or more ago, as long as their pages were not reused.
//!
//! Two sources:
//! - the other meta page's tree (the previous transaction's): its records
//!   the newest tree lacks or holds otherwise, joined record by record as
//!   `diff` joins two files;
//! - leaf pages no tree reaches (`bolt::salvage::orphan_leaves`), placed in a
//!   records bucket of the newest tree only when the placement is
//!   unambiguous: the leaf's keys and the records it holds are plausible
//!   there by containerd's schema (`containerd::placement`: a page of
//!   container records is no snapshots page), it shares at least one key
//!   with that bucket (an earlier version of one of its nodes), it fits no
//!   other, and no other bucket of the same records in either tree holds any
//!   of its keys. Any other leaf is a fragment: counted, never shown as a
//!   record.
//!
//! A carved record is `deleted` when the newest tree has no record of that
//! identity, `olderVersion` when it has one that differs (the fields that
//! differ are named); one equal to the live record is not evidence and is
//! left out. The same version found in several places is one record with all
//! its pages.

use std::collections::{BTreeMap, HashMap};

use crate::bolt::salvage::{orphan_leaves, OrphanScan, Visited};
use crate::bolt::{Db, Pgid};
use crate::containerd::placement::{child_fits, keys_known, plausible, skeleton, Known};
use crate::containerd::records::{record_entries, RecordEntry, Records};
use crate::containerd::shape::{identity, Child, Level, RecordId, RecordKind};

use super::diff::{self, ChangeKind};

/// Why a carved record is evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// The newest tree has no record of this identity.
    Deleted,
    /// The newest tree's record of this identity differs.
    OlderVersion,
}

impl Status {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Status::Deleted => "deleted",
            Status::OlderVersion => "olderVersion",
        }
    }
}

/// Where a carved record was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// The other meta page's tree.
    OtherTree,
    /// A leaf page no tree reaches.
    FreePage,
}

impl Source {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            Source::OtherTree => "otherTree",
            Source::FreePage => "freePage",
        }
    }
}

/// One carved record.
#[derive(Debug, Clone)]
pub struct Carved<'a> {
    /// Its identity.
    pub id: RecordId,
    /// Its kind.
    pub kind: RecordKind,
    /// Why it is evidence.
    pub status: Status,
    /// Where it was read (the first place, when several).
    pub sources: Vec<Source>,
    /// The free pages it was read from (none for the other tree's).
    pub pages: Vec<Pgid>,
    /// Its entries.
    pub entries: Vec<RecordEntry<'a>>,
    /// For an older version, the names of the fields that differ from the
    /// live record.
    pub differs: Vec<&'a [u8]>,
}

/// What a carve found.
#[derive(Debug, Default)]
pub struct Carve<'a> {
    /// The records, by namespace, kind and id.
    pub records: Vec<Carved<'a>>,
    /// The scan of pages no tree reaches.
    pub scan: OrphanScan,
    /// Well-formed leaves placed in a records bucket.
    pub placed: u64,
    /// Well-formed leaves that could not be placed (or fit several buckets).
    pub fragments: u64,
}

/// A records bucket of one of the trees.
struct Target<'r, 'a> {
    known: &'r Known<'a>,
    kind: RecordKind,
    /// Whether it is the newest tree's (only those take leaves).
    newest: bool,
}

/// Carves `db`: records its newest tree no longer holds as they were.
pub fn carve<'a>(db: &Db<'a>) -> Carve<'a> {
    let mut out = Carve::default();
    let trees = db.trees();
    let Some(newest) = trees.first() else {
        return out;
    };
    let root = Level::root(crate::containerd::kind::identify(db));
    let mut found: BTreeMap<(RecordId, RecordKind), Vec<Carved<'a>>> = BTreeMap::new();
    let mut add = |c: Carved<'a>| {
        let versions = found.entry((c.id.clone(), c.kind)).or_default();
        match versions.iter_mut().find(|v| v.entries == c.entries) {
            Some(v) => {
                v.pages.extend(c.pages);
                for s in c.sources {
                    if !v.sources.contains(&s) {
                        v.sources.push(s);
                    }
                }
            }
            None => versions.push(c),
        }
    };

    // The other tree's records against the newest's (a tree that cannot be
    // read whole gives what it gave up to its damage).
    let old = trees.get(1).and_then(|t| Records::of_tree(db, t).ok());
    if let (Some(old), Ok(new)) = (old, Records::new(db)) {
        let _ = diff::join(old, new, |c, old_record, _| {
            let status = match c.change {
                ChangeKind::Removed => Status::Deleted,
                ChangeKind::Changed => Status::OlderVersion,
                ChangeKind::Added => return,
            };
            if let Some(r) = old_record {
                add(Carved {
                    id: c.id,
                    kind: c.kind,
                    status,
                    sources: vec![Source::OtherTree],
                    pages: Vec::new(),
                    entries: r.entries,
                    differs: c.fields.iter().map(|f| f.name).collect(),
                });
            }
        });
    }

    // Leaves no tree reaches.
    let tree = *trees.iter().max_by_key(|t| t.meta.pgid).unwrap_or(newest);
    let mut reached = Visited::for_tree(&tree);
    for t in &trees {
        reached.mark_reached(t);
    }
    let pages = tree.pages();
    let (leaves, scan) = orphan_leaves(&pages, &reached);
    out.scan = scan;
    let skeletons: Vec<Vec<Known<'a>>> = trees.iter().map(|t| skeleton(t, root)).collect();
    let records_buckets = |s: &[Known<'a>]| -> Vec<(usize, RecordKind)> {
        s.iter()
            .enumerate()
            .filter_map(|(i, k)| match k.level {
                Level::Records(kind) => Some((i, kind)),
                _ => None,
            })
            .collect()
    };
    let live = |k: &Known<'a>| -> Vec<&'a [u8]> {
        k.bucket
            .iter()
            .map_while(Result::ok)
            .map(|e| e.key)
            .collect()
    };
    // Every records bucket of either tree (the newest tree's first: only
    // they take leaves), and which of them hold each live key.
    let holders: Vec<Target<'_, 'a>> = skeletons
        .iter()
        .enumerate()
        .flat_map(|(n, s)| {
            records_buckets(s).into_iter().map(move |(i, kind)| Target {
                known: &s[i],
                kind,
                newest: n == 0,
            })
        })
        .collect();
    let mut holding: HashMap<&'a [u8], Vec<usize>> = HashMap::new();
    for (h, t) in holders.iter().enumerate() {
        for k in live(t.known) {
            holding.entry(k).or_default().push(h);
        }
    }
    for leaf in &leaves {
        let keys = leaf.keys();
        let entries = leaf.entries(&pages);
        let mut sharing: Vec<usize> = keys
            .iter()
            .filter_map(|(k, _)| holding.get(k))
            .flatten()
            .copied()
            .collect();
        sharing.sort_unstable();
        sharing.dedup();
        let fits = |t: &Target<'_, 'a>| {
            t.newest
                && plausible(t.known.level, false, &keys)
                && entries
                    .iter()
                    .all(|e| match (e.bucket(), t.known.level.child(e.key)) {
                        (Some(b), Child::Record(kind)) => {
                            child_fits(&b, Level::Record(kind)) && keys_known(&b, kind)
                        }
                        _ => false,
                    })
        };
        let candidates: Vec<&Target<'_, 'a>> = sharing
            .iter()
            .map(|&h| &holders[h])
            .filter(|t| fits(t))
            .collect();
        let [t] = candidates.as_slice() else {
            out.fragments += 1;
            continue;
        };
        // Another bucket of these records holding one of its keys (in either
        // tree) could be the leaf's as well.
        let elsewhere = sharing
            .iter()
            .map(|&h| &holders[h])
            .any(|h| h.kind == t.kind && h.known.path != t.known.path);
        if elsewhere {
            out.fragments += 1;
            continue;
        }
        out.placed += 1;
        for e in &entries {
            let Some(b) = e.bucket() else { continue };
            let Ok(carved) = record_entries(db, b) else {
                continue;
            };
            let current = match t.known.bucket.get(e.key) {
                Ok(Some(x)) => x.bucket().and_then(|x| record_entries(db, x).ok()),
                _ => None,
            };
            let (status, differs) = match &current {
                None => (Status::Deleted, Vec::new()),
                Some(c) if *c == carved => continue,
                Some(c) => (Status::OlderVersion, diff::differing_fields(c, &carved)),
            };
            add(Carved {
                id: identity(&t.known.path, e.key, Some(t.kind)),
                kind: t.kind,
                status,
                sources: vec![Source::FreePage],
                pages: vec![leaf.page.id],
                entries: carved,
                differs,
            });
        }
    }
    out.records = found.into_values().flatten().collect();
    out
}
