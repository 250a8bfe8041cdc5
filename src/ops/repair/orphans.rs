//! Orphan pages as the third source of a repair (`docs/repair.md`, "Orphan
//! pages"): well-formed leaf pages no tree reaches, used only for key ranges
//! both trees lost, and only where the page's contents place it.
//!
//! A merge without orphans finds the lost ranges; [`Orphans::find`] scans the
//! pages neither tree reaches (each read once) and decides, for each lost
//! range, which leaves belong there. A leaf is placed in a range when
//! - its keys are plausible at the range's level (the schema judge a tree's
//!   pages pass), at least one lies inside the range, and every key outside
//!   it is one the bucket holds (an earlier version of a leaf around the hole);
//! - something ties it to this bucket: the range is the whole bucket, or the
//!   leaf's first key is the branch key that pointed to the lost page (bbolt
//!   keeps a branch key equal to its child's first key), or its keys outside
//!   the range are the bucket's;
//! - no other bucket of the same level, in either tree, holds one of its keys
//!   inside the range (it would be that bucket's page), and no other lost
//!   range can take it.
//!
//! The merge then takes, from the placed leaves, the keys inside the range:
//! records whole, as from a tree; where two leaves hold different versions of
//! one key, the record with the later `updatedat`, or none.

use std::ops::Bound;

use crate::bolt::salvage::{
    contains, orphan_leaves, Item, OrphanLeaf, OrphanScan, SalvageCursor, Visited,
};
use crate::bolt::{Bucket, BucketPath, Entry, MetaTree};
use crate::containerd::placement::{child_fits, keys_known, plausible, skeleton, Known};
use crate::containerd::shape::{Child, Level};

use super::merge::{Lost, LostWhat};

/// The leaves placed in one lost range.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The bucket.
    pub path: BucketPath,
    /// The range, as the merge met it.
    pub lower: Bound<Vec<u8>>,
    /// Its upper bound.
    pub upper: Bound<Vec<u8>>,
    /// Indexes into [`Orphans::leaves`], in page order.
    pub leaves: Vec<usize>,
}

/// The orphan leaves of a file and where they go.
#[derive(Debug)]
pub struct Orphans<'a> {
    /// The tree whose pages the leaves are read through (the one with the
    /// higher high-water mark).
    pub tree: MetaTree<'a>,
    /// Every well-formed orphan leaf, in page order.
    pub leaves: Vec<OrphanLeaf<'a>>,
    /// Per lost range, in the order the merge meets them: the leaves placed
    /// there (`None` where none is).
    pub placements: Vec<Option<Placement>>,
    /// What the scan read.
    pub scan: OrphanScan,
    /// Leaves whose keys and shape fit a lost range but that could not be
    /// placed in one unambiguously (counted, never used).
    pub unplaced: u64,
}

impl<'a> Orphans<'a> {
    /// Scans `trees`' file for orphan leaves and places them in the key ranges
    /// `lost` (a merge's losses without orphans) names. `None` when nothing
    /// was lost as a range, or there are no trees.
    pub fn find(trees: &[MetaTree<'a>], root: Level, lost: &[Lost]) -> Option<Orphans<'a>> {
        let ranges: Vec<&Lost> = lost
            .iter()
            .filter(|l| matches!(l.what, LostWhat::Range { .. }))
            .collect();
        if ranges.is_empty() {
            return None;
        }
        let newest = trees.first()?;
        let tree = *trees.iter().max_by_key(|t| t.meta.pgid)?;
        let mut reached = Visited::for_tree(&tree);
        for t in trees {
            reached.mark_reached(t);
        }
        let pages = tree.pages();
        let (leaves, scan) = orphan_leaves(&pages, &reached);
        let skeletons: Vec<Vec<Known<'a>>> = trees.iter().map(|t| skeleton(t, root)).collect();
        let keys: Vec<Vec<(&'a [u8], bool)>> = leaves.iter().map(OrphanLeaf::keys).collect();
        let entries: Vec<Vec<Entry<'a>>> = leaves.iter().map(|l| l.entries(&pages)).collect();

        let mut chosen: Vec<Vec<usize>> = Vec::with_capacity(ranges.len());
        let mut uses = vec![0u32; leaves.len()];
        let mut overlapping = vec![false; leaves.len()];
        for r in &ranges {
            let LostWhat::Range { lower, upper } = &r.what else {
                continue;
            };
            let (lower, upper) = (as_ref(lower), as_ref(upper));
            // The keys the newest tree's bucket holds, read past its damage
            // (a point lookup would stop at the damaged page).
            let own: Vec<&'a [u8]> = bucket_at(newest, &r.path).map_or_else(Vec::new, |b| {
                let mut seen = Visited::for_tree(newest);
                let mut c = SalvageCursor::new(b, r.level);
                std::iter::from_fn(|| c.next_item(&mut seen))
                    .filter_map(|i| match i {
                        Item::Entry(e) => Some(e.key),
                        Item::Hole(_) => None,
                    })
                    .collect()
            });
            let mut here = Vec::new();
            for (i, leaf) in leaves.iter().enumerate() {
                let overlaps = contains(Bound::Unbounded, upper, leaf.first)
                    && contains(lower, Bound::Unbounded, leaf.last);
                if !overlaps {
                    continue;
                }
                let fits = Fit {
                    level: r.level,
                    path: &r.path,
                    lower,
                    upper,
                    own: &own,
                    skeletons: &skeletons,
                };
                match fits.place(&keys[i], &entries[i]) {
                    Verdict::NotHere => {}
                    Verdict::Ambiguous => overlapping[i] = true,
                    Verdict::Placed => {
                        overlapping[i] = true;
                        here.push(i);
                        uses[i] = uses[i].saturating_add(1);
                    }
                }
            }
            chosen.push(here);
        }
        // A leaf that fits two lost ranges may be either's: it is neither's.
        let unplaced = (0..leaves.len())
            .filter(|&i| overlapping[i] && uses[i] != 1)
            .count() as u64;
        let placements = ranges
            .iter()
            .zip(chosen)
            .map(|(r, c)| {
                let leaves: Vec<usize> = c.into_iter().filter(|&i| uses[i] == 1).collect();
                let LostWhat::Range { lower, upper } = &r.what else {
                    return None;
                };
                (!leaves.is_empty()).then(|| Placement {
                    path: r.path.clone(),
                    lower: lower.clone(),
                    upper: upper.clone(),
                    leaves,
                })
            })
            .collect();
        Some(Orphans {
            tree,
            leaves,
            placements,
            scan,
            unplaced,
        })
    }

    /// The leaves placed in the `ordinal`-th lost range, if it is the range
    /// `path`, `lower`, `upper` (a merge meets the same ranges in the same
    /// order; anything else places nothing).
    pub fn placed(
        &self,
        ordinal: usize,
        path: &BucketPath,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Option<&Placement> {
        let p = self.placements.get(ordinal)?.as_ref()?;
        let same = p.path == *path && as_ref(&p.lower) == lower && as_ref(&p.upper) == upper;
        same.then_some(p)
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    b.as_ref().map(Vec::as_slice)
}

/// The bucket at `path` in `tree`, if it can be read.
fn bucket_at<'a>(tree: &MetaTree<'a>, path: &BucketPath) -> Option<Bucket<'a>> {
    let mut b = tree.root().ok()?;
    for c in path.components() {
        b = b.bucket(c).ok()??;
    }
    Some(b)
}

/// Whether a leaf belongs in one lost range.
struct Fit<'r, 'a> {
    level: Level,
    path: &'r BucketPath,
    lower: Bound<&'r [u8]>,
    upper: Bound<&'r [u8]>,
    /// The keys the newest tree's bucket holds, in order (none where it
    /// lost the bucket).
    own: &'r [&'a [u8]],
    skeletons: &'r [Vec<Known<'a>>],
}

/// Where a leaf stands with one lost range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Its keys or shape are not this range's.
    NotHere,
    /// It could be this range's, but nothing ties it here, or another bucket
    /// holds its keys.
    Ambiguous,
    /// It belongs here.
    Placed,
}

impl Fit<'_, '_> {
    fn place(&self, keys: &[(&[u8], bool)], entries: &[Entry<'_>]) -> Verdict {
        if self.level == Level::Other {
            return Verdict::NotHere;
        }
        let whole = self.lower == Bound::Unbounded && self.upper == Bound::Unbounded;
        let (inside, outside): (Vec<&[u8]>, Vec<&[u8]>) = keys
            .iter()
            .map(|(k, _)| *k)
            .partition(|k| contains(self.lower, self.upper, k));
        if inside.is_empty() || !plausible(self.level, whole, keys) {
            return Verdict::NotHere;
        }
        // The shape one level down: each bucket it holds is plausible at its
        // own level (a snapshotter's page of snapshot records is no
        // namespace's `snapshots` page, though its keys could be).
        let children_fit = entries
            .iter()
            .all(|e| match (e.bucket(), self.level.child(e.key)) {
                (None, _) => true,
                (Some(b), Child::Record(kind)) => {
                    child_fits(&b, Level::Record(kind)) && keys_known(&b, kind)
                }
                (Some(b), Child::Level(l)) => child_fits(&b, l),
            });
        if !children_fit {
            return Verdict::NotHere;
        }
        let held = |k: &[u8]| self.own.binary_search(&k).is_ok();
        if !outside.iter().all(|k| held(k)) {
            return Verdict::NotHere;
        }
        let first_is_branch_key =
            matches!(self.lower, Bound::Included(l) if keys.first().is_some_and(|(k, _)| *k == l));
        if !(first_is_branch_key || !outside.is_empty() || whole && self.names_namespace(entries)) {
            return Verdict::Ambiguous;
        }
        // Another bucket of this level, or of any records, holding one of its
        // keys makes it that bucket's page (or leaves the question open).
        let records = |l: Level| matches!(l, Level::Records(_));
        let exclusive = self.skeletons.iter().flatten().all(|q| {
            !(q.level == self.level || records(q.level) && records(self.level))
                || q.path == *self.path
                || inside.iter().all(|k| matches!(q.bucket.get(k), Ok(None)))
        });
        if exclusive {
            Verdict::Placed
        } else {
            Verdict::Ambiguous
        }
    }
}

impl Fit<'_, '_> {
    /// Whether every record of `entries` names this bucket's namespace: an
    /// ingest's `ref` and a snapshot's `name` are the backend's keys, which
    /// begin `<namespace>/`. Nothing else a page holds says which namespace's
    /// it was, so a whole bucket's range takes no other page.
    fn names_namespace(&self, entries: &[Entry<'_>]) -> bool {
        let (Some(ns), key): (Option<&[u8]>, &[u8]) = (
            self.path.components().nth(1),
            match self.level {
                Level::Records(crate::containerd::shape::RecordKind::Ingest) => b"ref",
                Level::Records(crate::containerd::shape::RecordKind::Snapshot) => b"name",
                _ => return false,
            },
        ) else {
            return false;
        };
        let ours = |v: &[u8]| v.strip_prefix(ns).is_some_and(|r| r.first() == Some(&b'/'));
        !entries.is_empty()
            && entries.iter().all(|e| {
                e.bucket()
                    .and_then(|b| b.value(key).ok().flatten())
                    .is_some_and(ours)
            })
    }
}
