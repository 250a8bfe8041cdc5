//! The merge of a damaged file's trees into one tree, record by record
//! (`docs/repair.md`, "How records are chosen").
//!
//! The newest tree (the selected meta's) is read with [`SalvageCursor`]s: what
//! it holds whole is the base, and each range it cannot read is a hole. The
//! other meta's tree, read the same way bucket by bucket in lockstep, fills
//! the holes with what it holds in their ranges. Nothing outside a hole is
//! taken from it: a key the newest tree lacks outside its holes was deleted by
//! the newest transaction. Where both trees hold a record whole and the other
//! tree's has the later `updatedat` (the newest tree's page is an older
//! version of the same node, whose rewrite was lost), the other's is taken. A
//! record ([`RecordKind`]) is the unit: it is taken whole from one tree, or
//! reported lost; outside records every key is its own unit.
//!
//! bbolt's bucket sequences only grow, so a bucket holding a sub-bucket whose
//! sequence is higher in the other tree is, in the newest tree, an older
//! version (a lost write left the older page in the slot): below it the other
//! tree's version is the newer one and takes precedence, and the newest tree's
//! only fills what the other tree cannot read.
//!
//! In a snapshotter database a snapshot's `id` names its directory, and
//! containerd's sweep deletes every directory no record names. Where the
//! newest tree lost snapshot records, a record the other tree holds under a
//! key the newest tree lacks (a snapshot the newest transaction committed,
//! which renames it, or removed) is kept if no record of the output has its
//! id: each merge of a snapshotter database is preceded by one that learns
//! what the newest tree loses and the ids the output holds.
//!
//! The output is a stream of events in key order for a [`Sink`]: the writer,
//! or the verification that compares a written file with a second run of the
//! same merge. Memory is O(bucket depth) cursors plus one record (the largest
//! the file holds); nothing else is buffered.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use crate::bolt::salvage::{contains, Hole, Item, PageOwners, SalvageCursor, Visited};

use super::orphans::Orphans;
use crate::bolt::bucket::BucketRoot;
use crate::bolt::{Bucket, BucketPath, Corruption, Entry, EntryKind, MetaTree, MAX_BUCKET_DEPTH};
use crate::bolt::{CorruptKind, Pgid};
use crate::containerd::encoding;
pub use crate::containerd::shape::{identity, RecordId};
use crate::containerd::shape::{Child, Level, RecordKind};
use crate::containerd::Timestamp;

/// Where an entry of the output comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// The selected meta's tree.
    Newest,
    /// The other meta page's tree (the previous transaction's).
    Other,
    /// A page no tree reaches ([`super::orphans`]).
    Orphan,
}

/// Why an entry was taken from the other tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Why {
    /// The newest tree cannot give it whole: the damage there.
    NewestDamaged(Corruption),
    /// Both hold it whole, and the other's `updatedat` is later.
    NewerInOther {
        /// The newest tree's `updatedat`.
        newest: Timestamp,
        /// The other tree's.
        other: Timestamp,
    },
    /// It lies below a bucket that is an older version in the newest tree:
    /// a sub-bucket's sequence is higher in the other tree.
    OlderBucketInNewest(Staleness),
    /// A snapshotter's snapshot the newest tree lacks, whose id no record of
    /// the output holds, while the newest tree lost snapshot records (this
    /// finding): without it containerd would delete its directory.
    SnapshotIdOnlyInOther(Corruption),
}

/// The proof that the newest tree's version of a bucket is older than the
/// other tree's: a sub-bucket both hold has a higher sequence in the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staleness {
    /// The bucket whose newest version is older.
    pub bucket: BucketPath,
    /// The sub-bucket whose sequences differ.
    pub child: Vec<u8>,
    /// Its sequence in the newest tree.
    pub newest: u64,
    /// In the other tree.
    pub other: u64,
}

impl Staleness {
    fn finding(&self) -> Corruption {
        Corruption::new(
            CorruptKind::PageMisplaced,
            format!(
                "bucket {}'s sequence is {} in the newest tree and {} in the other: sequences only grow, so the newest tree's page holding it is an older version (a lost write); below it the other tree's version is taken",
                self.bucket.child(&self.child),
                self.newest,
                self.other
            ),
        )
        .in_bucket(&self.bucket)
    }
}

/// A record (or a plain key outside any record) the newest tree could not
/// give, taken from the other tree.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The bucket holding it.
    pub path: BucketPath,
    /// Its key there.
    pub key: Vec<u8>,
    /// Its kind, where it is a containerd record.
    pub kind: Option<RecordKind>,
    /// Where it comes from: the other tree, or an orphan page.
    pub source: Source,
    /// The orphan page it was read from.
    pub page: Option<Pgid>,
    /// Why not from the newest tree.
    pub why: Why,
}

/// What the output lacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostWhat {
    /// A record known by its key, readable whole in no tree.
    Record {
        /// Its key.
        key: Vec<u8>,
    },
    /// A key range no tree could read: whatever it held.
    Range {
        /// Lowest key it may have held.
        lower: Bound<Vec<u8>>,
        /// Highest.
        upper: Bound<Vec<u8>>,
    },
}

/// Something the output lacks, and why.
#[derive(Debug, Clone)]
pub struct Lost {
    /// The bucket.
    pub path: BucketPath,
    /// What.
    pub what: LostWhat,
    /// The kind of record it is or held, where the schema says.
    pub kind: Option<RecordKind>,
    /// The level of the bucket, for placing orphan pages there.
    pub level: Level,
    /// The damage in the newest tree.
    pub cause: Corruption,
    /// The page the newest tree could not read, if one.
    pub page: Option<Pgid>,
}

/// What one merge found and decided.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Every piece of damage met in the newest tree (holes, and corrections
    /// that lost nothing), in tree order.
    pub damage: Vec<Corruption>,
    /// Damage met in the other tree where it was consulted.
    pub other_damage: Vec<Corruption>,
    /// Entries not from the newest tree, in output order.
    pub recovered: Vec<Recovered>,
    /// What is lost, in tree order.
    pub lost: Vec<Lost>,
    /// Records written, per namespace (empty for files without namespaces),
    /// kind and source.
    pub records: BTreeMap<(Vec<u8>, RecordKind, Source), u64>,
}

impl Ledger {
    /// Whether the newest tree was read whole: nothing recovered, nothing lost.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty() && self.recovered.is_empty() && self.lost.is_empty()
    }
}

/// The trees of a file, newest first, as merges read them; what every merge
/// needs to know of the other tree is learnt once.
#[derive(Debug)]
pub struct Trees<'a> {
    trees: Vec<MetaTree<'a>>,
    other_owners: OnceCell<PageOwners>,
}

impl<'a> Trees<'a> {
    /// The trees (newest first; a merge uses the first two).
    pub fn new(trees: Vec<MetaTree<'a>>) -> Trees<'a> {
        Trees {
            trees,
            other_owners: OnceCell::new(),
        }
    }

    /// The bucket each page of the other tree belongs to, walked once when
    /// first asked.
    fn other_owners(&self) -> Option<&PageOwners> {
        let other = self.trees.get(1)?;
        Some(self.other_owners.get_or_init(|| PageOwners::of_tree(other)))
    }
}

impl<'a> std::ops::Deref for Trees<'a> {
    type Target = [MetaTree<'a>];

    fn deref(&self) -> &[MetaTree<'a>] {
        &self.trees
    }
}

/// What a merge writes to.
pub trait Sink<'a> {
    /// Errors of the sink.
    type Error;
    /// A bucket starts in the current one.
    fn begin(&mut self, key: &'a [u8], sequence: u64) -> Result<(), Self::Error>;
    /// A plain key in the current bucket.
    fn put(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), Self::Error>;
    /// The current bucket ends.
    fn end(&mut self) -> Result<(), Self::Error>;
}

/// Merges the trees of a file (newest first; the first two are used) into
/// `sink`. `root` is the level of the root bucket; `orphans`, found for the
/// losses of a merge of the same trees without them, fill the ranges they
/// were placed in. A snapshotter database is merged twice: the first merge
/// learns its snapshot ids.
pub fn merge<'a, S: Sink<'a>>(
    trees: &Trees<'a>,
    root: Level,
    orphans: Option<&Orphans<'a>>,
    sink: &mut S,
) -> Result<Ledger, S::Error> {
    let rescue = match root {
        Level::StorageRoot => {
            let mut ids = SnapshotIds::default();
            let first = match merge_with(trees, root, orphans, None, &mut ids) {
                Ok(l) => l,
                Err(never) => match never {},
            };
            first
                .lost
                .iter()
                .find(|l| l.kind == Some(RecordKind::StorageSnapshot) || l.path.0.len() < 2)
                .map(|l| (ids.ids, l.cause.clone()))
        }
        _ => None,
    };
    merge_with(trees, root, orphans, rescue, sink)
}

/// The ids of the snapshots a merge of a snapshotter database writes.
#[derive(Debug, Default)]
struct SnapshotIds<'a> {
    path: Vec<&'a [u8]>,
    ids: BTreeSet<&'a [u8]>,
}

impl<'a> Sink<'a> for SnapshotIds<'a> {
    type Error = std::convert::Infallible;
    fn begin(&mut self, key: &'a [u8], _: u64) -> Result<(), Self::Error> {
        self.path.push(key);
        Ok(())
    }
    fn put(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), Self::Error> {
        if let ([b"v1", b"snapshots", _], b"id") = (self.path.as_slice(), key) {
            self.ids.insert(value);
        }
        Ok(())
    }
    fn end(&mut self) -> Result<(), Self::Error> {
        self.path.pop();
        Ok(())
    }
}

fn merge_with<'a, S: Sink<'a>>(
    trees: &Trees<'a>,
    root: Level,
    orphans: Option<&Orphans<'a>>,
    rescue: Option<(BTreeSet<&'a [u8]>, Corruption)>,
    sink: &mut S,
) -> Result<Ledger, S::Error> {
    let mut sides = trees.iter().take(2).map(|t| Side {
        tree: *t,
        seen: Visited::for_tree(t),
    });
    let Some(mut a) = sides.next() else {
        return Ok(Ledger::default());
    };
    let mut b = sides.next();
    let mut m = Merger {
        trees,
        ledger: Ledger::default(),
        path: Vec::new(),
        root,
        orphans,
        ranges: 0,
        orphan_side: orphans.map(|o| Side {
            tree: o.tree,
            seen: Visited::for_tree(&o.tree),
        }),
        in_orphan: None,
        stale: None,
        rescue,
        rescuing: false,
    };
    let b_root = b.as_ref().and_then(|s| s.tree.root().ok());
    let a_root = match a.tree.root() {
        Ok(r) => ABucket::Present(r),
        Err(c) => {
            m.ledger.damage.push(c.clone());
            ABucket::Missing(c)
        }
    };
    m.bucket(&mut a, b.as_mut(), root, a_root, b_root, sink)?;
    Ok(m.ledger)
}

/// One tree being read.
#[derive(Debug)]
struct Side<'a> {
    tree: MetaTree<'a>,
    seen: Visited,
}

/// The newest tree's side of a bucket.
#[derive(Debug, Clone)]
enum ABucket<'a> {
    /// The bucket as the newest tree holds it.
    Present(Bucket<'a>),
    /// Inside a range the newest tree could not read (the range's damage is
    /// recorded where it was met).
    Missing(Corruption),
}

/// The other tree's cursor over the bucket being merged, one item ahead.
struct Other<'a> {
    cursor: Option<SalvageCursor<'a, Level>>,
    pending: Option<Item<'a>>,
}

impl<'a> Other<'a> {
    fn new(bucket: Option<Bucket<'a>>, level: Level, side: Option<&mut Side<'a>>) -> Other<'a> {
        let mut o = Other {
            cursor: bucket.map(|b| SalvageCursor::new(b, level)),
            pending: None,
        };
        o.advance(side);
        o
    }

    fn advance(&mut self, side: Option<&mut Side<'a>>) {
        self.pending = match (self.cursor.as_mut(), side) {
            (Some(c), Some(s)) => c.next_item(&mut s.seen),
            _ => None,
        };
    }

    /// Drops what lies below `key` (deleted by the newest transaction, or
    /// damage the newest tree does not need) and takes the entry at `key`.
    fn take_at(
        &mut self,
        key: &[u8],
        mut side: Option<&mut Side<'a>>,
        damage: &mut Vec<Corruption>,
    ) -> Option<Entry<'a>> {
        loop {
            match &self.pending {
                Some(Item::Entry(e)) if e.key < key => {}
                Some(Item::Entry(e)) if e.key == key => {
                    let e = *e;
                    self.advance(side.as_deref_mut());
                    return Some(e);
                }
                Some(Item::Hole(h)) if !contains(Bound::Unbounded, h.upper, key) => {
                    damage.push(h.cause.clone());
                }
                _ => return None,
            }
            self.advance(side.as_deref_mut());
        }
    }

    /// The next entry below `before`, if the other tree holds one there; its
    /// holes below `before` are recorded in `damage` and passed.
    fn take_before(
        &mut self,
        before: Bound<&[u8]>,
        mut side: Option<&mut Side<'a>>,
        damage: &mut Vec<Corruption>,
    ) -> Option<Entry<'a>> {
        loop {
            match &self.pending {
                Some(Item::Entry(e)) if contains(Bound::Unbounded, before, e.key) => {
                    let e = *e;
                    self.advance(side.as_deref_mut());
                    return Some(e);
                }
                Some(Item::Hole(h)) if upper_le(h.upper, before) => {
                    damage.push(h.cause.clone());
                }
                _ => return None,
            }
            self.advance(side.as_deref_mut());
        }
    }

    /// Whether the other tree's bucket is read and, where `key` would be, is
    /// readable: a key it does not hold there, it does not hold. (Call after
    /// [`Self::take_at`] for `key`.)
    fn lacks(&self, key: &[u8]) -> bool {
        self.cursor.is_some() && !matches!(&self.pending, Some(Item::Hole(h)) if h.contains(key))
    }

    /// The next item of the other tree that overlaps the hole `ha`: an entry
    /// in it, or a hole overlapping it (with whether it ends inside `ha`:
    /// else it stays pending). What lies below `ha` is dropped.
    fn next_in(
        &mut self,
        ha: &Hole<'a>,
        mut side: Option<&mut Side<'a>>,
        damage: &mut Vec<Corruption>,
    ) -> Option<(Item<'a>, bool)> {
        loop {
            match &self.pending {
                Some(Item::Entry(e)) if ha.contains(e.key) => {
                    let e = *e;
                    self.advance(side.as_deref_mut());
                    return Some((Item::Entry(e), true));
                }
                Some(Item::Entry(e)) if below_lower(e.key, ha.lower) => {}
                Some(Item::Hole(hb)) if disjoint(hb.upper, ha.lower) => {
                    damage.push(hb.cause.clone());
                }
                Some(Item::Hole(hb)) if !disjoint(ha.upper, hb.lower) => {
                    let hb = hb.clone();
                    let inside = upper_le(hb.upper, ha.upper);
                    if inside {
                        self.advance(side.as_deref_mut());
                    }
                    return Some((Item::Hole(hb), inside));
                }
                _ => return None,
            }
            self.advance(side.as_deref_mut());
        }
    }
}

/// One key's entries: the newest tree's, the other tree's of the same key,
/// and — when only the other tree has it — the damage of the newest tree's
/// hole it lies in.
#[derive(Debug, Clone, Copy)]
struct Pair<'a, 'h> {
    newest: Option<Entry<'a>>,
    other: Option<Entry<'a>>,
    hole: Option<&'h Corruption>,
}

impl<'a> Pair<'a, '_> {
    fn key(&self) -> Option<&'a [u8]> {
        self.newest.as_ref().or(self.other.as_ref()).map(|e| e.key)
    }
}

/// A record read from one tree: its events, the damage inside it, its `updatedat`.
#[derive(Debug, Default)]
struct RecordRead<'a> {
    events: Vec<Ev<'a>>,
    holes: Vec<Corruption>,
    notes: Vec<Corruption>,
    updated: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy)]
enum Ev<'a> {
    Begin(&'a [u8], u64),
    Put(&'a [u8], &'a [u8]),
    End,
}

struct Merger<'o, 'a> {
    trees: &'o Trees<'a>,
    ledger: Ledger,
    path: Vec<Vec<u8>>,
    root: Level,
    orphans: Option<&'o Orphans<'a>>,
    /// Ranges lost so far outside orphan subtrees: the ordinal of the next.
    ranges: usize,
    /// Orphan records are read with their own visited pages, so the trees
    /// are read exactly as without orphans and meet the same lost ranges.
    orphan_side: Option<Side<'a>>,
    /// While an orphan page's entries are written: that page.
    in_orphan: Option<(Pgid, Corruption)>,
    /// While a bucket the newest tree holds an older version of is merged
    /// (and below it): the proof.
    stale: Option<Staleness>,
    /// In a snapshotter database whose newest tree lost snapshot records:
    /// the snapshot ids the output holds without the other tree's records
    /// the newest lacks, and the first loss.
    rescue: Option<(BTreeSet<&'a [u8]>, Corruption)>,
    /// While a record is taken for its id alone.
    rescuing: bool,
}

impl<'a> Merger<'_, 'a> {
    fn bucket_path(&self) -> BucketPath {
        BucketPath(self.path.clone())
    }

    /// The namespace the current bucket is in (metadata databases).
    fn namespace(&self) -> Vec<u8> {
        match (self.root, self.path.first().map(Vec::as_slice)) {
            (Level::MetaRoot, Some(b"v1")) => self.path.get(1).cloned().unwrap_or_default(),
            (Level::MetaRoot, Some(top)) => top.to_vec(),
            _ => Vec::new(),
        }
    }

    fn count(&mut self, kind: RecordKind, source: Source) {
        let source = match self.in_orphan {
            Some(_) => Source::Orphan,
            None => source,
        };
        let ns = if kind == RecordKind::NamespaceLabels {
            self.path.get(1).cloned().unwrap_or_default()
        } else {
            self.namespace()
        };
        *self.ledger.records.entry((ns, kind, source)).or_default() += 1;
    }

    fn bucket<S: Sink<'a>>(
        &mut self,
        a: &mut Side<'a>,
        b: Option<&mut Side<'a>>,
        level: Level,
        a_bucket: ABucket<'a>,
        b_bucket: Option<Bucket<'a>>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        // A subtree no transaction touched is the same pages in both trees:
        // the other tree adds nothing there.
        let b_bucket = match (&a_bucket, b_bucket) {
            (ABucket::Present(x), Some(y)) if x.same_as(&y) => None,
            (_, y) => y,
        };
        let a_bucket = match (a_bucket, &b_bucket) {
            (ABucket::Present(x), Some(_)) => match self.foreign_root(&x) {
                Some(c) => ABucket::Missing(c),
                None => ABucket::Present(x),
            },
            (x, _) => x,
        };
        let outer = self.stale.is_some();
        if let (false, ABucket::Present(x), Some(y)) = (outer, &a_bucket, &b_bucket) {
            if let Some((child, newest, other)) = older_in_newest(x, y) {
                let proof = Staleness {
                    bucket: self.bucket_path(),
                    child,
                    newest,
                    other,
                };
                self.ledger.damage.push(proof.finding());
                self.stale = Some(proof);
            }
        }
        let r = self.bucket_items(a, b, level, a_bucket, b_bucket, sink);
        if !outer {
            self.stale = None;
        }
        r
    }

    /// The entries of one bucket, from the newest tree's version `a_bucket`
    /// and the other's `b_bucket`.
    fn bucket_items<S: Sink<'a>>(
        &mut self,
        a: &mut Side<'a>,
        mut b: Option<&mut Side<'a>>,
        level: Level,
        a_bucket: ABucket<'a>,
        b_bucket: Option<Bucket<'a>>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let (mut ca, mut missing) = match a_bucket {
            ABucket::Present(x) => (Some(SalvageCursor::new(x, level)), None),
            ABucket::Missing(c) => (None, Some(c)),
        };
        let mut other = Other::new(b_bucket, level, b.as_deref_mut());
        loop {
            let item = match (ca.as_mut(), missing.take()) {
                (Some(c), _) => c.next_item(&mut a.seen),
                (None, Some(cause)) => Some(Item::Hole(Hole {
                    lower: Bound::Unbounded,
                    upper: Bound::Unbounded,
                    page: None,
                    cause,
                })),
                (None, None) => None,
            };
            // Below a bucket the newest tree holds an older version of, what
            // the other tree holds before the newest tree's next item is newer;
            // a snapshot there may hold an id the output otherwise lacks.
            let rescues =
                self.rescue.is_some() && level == Level::Records(RecordKind::StorageSnapshot);
            if self.stale.is_some() || rescues {
                let before = match &item {
                    Some(Item::Entry(ea)) => Bound::Excluded(ea.key),
                    Some(Item::Hole(ha)) => match ha.lower {
                        Bound::Included(k) => Bound::Excluded(k),
                        Bound::Excluded(k) => Bound::Included(k),
                        Bound::Unbounded => Bound::Excluded(&[][..]),
                    },
                    None => Bound::Unbounded,
                };
                while let Some(eb) =
                    other.take_before(before, b.as_deref_mut(), &mut self.ledger.other_damage)
                {
                    let rescued = self.stale.is_none() && self.id_otherwise_lost(&eb);
                    if self.stale.is_none() && !rescued {
                        continue;
                    }
                    let pair = Pair {
                        newest: None,
                        other: Some(eb),
                        hole: None,
                    };
                    self.rescuing = rescued;
                    let r = self.entry(a, b.as_deref_mut(), level, pair, sink);
                    self.rescuing = false;
                    r?;
                }
            }
            match item {
                None => break,
                Some(Item::Entry(ea)) => {
                    let eb = other.take_at(ea.key, b.as_deref_mut(), &mut self.ledger.other_damage);
                    if self.stale.is_some() && eb.is_none() && other.lacks(ea.key) {
                        // The newer version of the bucket does not hold it.
                        continue;
                    }
                    let pair = Pair {
                        newest: Some(ea),
                        other: eb,
                        hole: None,
                    };
                    self.entry(a, b.as_deref_mut(), level, pair, sink)?;
                }
                Some(Item::Hole(mut ha)) => {
                    ha.cause = ha.cause.in_bucket(&self.bucket_path());
                    if ca.is_some() {
                        self.ledger.damage.push(ha.cause.clone());
                    }
                    if other.cursor.is_none() {
                        self.lose_range(level, ha.lower, ha.upper, &ha, sink)?;
                        continue;
                    }
                    while let Some((item, inside)) =
                        other.next_in(&ha, b.as_deref_mut(), &mut self.ledger.other_damage)
                    {
                        match item {
                            Item::Entry(eb) => {
                                let pair = Pair {
                                    newest: None,
                                    other: Some(eb),
                                    hole: Some(&ha.cause),
                                };
                                self.entry(a, b.as_deref_mut(), level, pair, sink)?;
                            }
                            Item::Hole(hb) => {
                                self.ledger.other_damage.push(hb.cause.clone());
                                let lower = max_lower(ha.lower, hb.lower);
                                let upper = min_upper(ha.upper, hb.upper);
                                self.lose_range(level, lower, upper, &ha, sink)?;
                                if !inside {
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(c) = ca.as_mut() {
            let path = self.bucket_path();
            self.ledger
                .damage
                .extend(c.take_notes().into_iter().map(|n| n.in_bucket(&path)));
        }
        Ok(())
    }

    /// Whether the newest tree's bucket `x`, here, starts at a page the other
    /// tree has in another bucket: a page both trees reach is an unchanged
    /// subtree at an unchanged place, so the reference is stale (its parent
    /// page is an older version whose slot the newest transaction did not
    /// overwrite) and the page is another bucket's. Asked only where the
    /// other tree holds this bucket with other pages.
    fn foreign_root(&mut self, x: &Bucket<'a>) -> Option<Corruption> {
        let BucketRoot::Page(id) = x.root_ref() else {
            return None;
        };
        let here = self.bucket_path();
        let owner = self.trees.other_owners()?.owner(id)?;
        if *owner == here {
            return None;
        }
        let mut c = Corruption::new(
            CorruptKind::PageMisplaced,
            format!(
                "page {id} does not belong here: the other tree has it in bucket {owner}, so the reference to it is stale"
            ),
        )
        .in_bucket(&here);
        c.page = Some(id);
        self.ledger.damage.push(c.clone());
        Some(c)
    }

    /// A range no tree could read: lost, and filled from the orphan leaves
    /// placed there.
    fn lose_range<S: Sink<'a>>(
        &mut self,
        level: Level,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        ha: &Hole<'_>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let kind = match level {
            Level::Records(k) => Some(k),
            _ => None,
        };
        self.ledger.lost.push(Lost {
            path: self.bucket_path(),
            what: LostWhat::Range {
                lower: lower.map(<[u8]>::to_vec),
                upper: upper.map(<[u8]>::to_vec),
            },
            kind,
            level,
            cause: ha.cause.clone(),
            page: ha.page,
        });
        if self.in_orphan.is_some() {
            return Ok(());
        }
        let ordinal = self.ranges;
        self.ranges += 1;
        let Some(o) = self.orphans else {
            return Ok(());
        };
        let Some(p) = o.placed(ordinal, &self.bucket_path(), lower, upper) else {
            return Ok(());
        };
        let pages = o.tree.pages();
        let mut found: Vec<(Entry<'a>, Pgid)> = Vec::new();
        for leaf in p.leaves.iter().filter_map(|&i| o.leaves.get(i)) {
            let inside = leaf.entries(&pages).into_iter();
            let inside = inside.filter(|e| contains(lower, upper, e.key));
            found.extend(inside.map(|e| (e, leaf.page.id)));
        }
        // Stable: within a key, page order.
        found.sort_by(|x, y| x.0.key.cmp(y.0.key));
        let Some(mut side) = self.orphan_side.take() else {
            return Ok(());
        };
        let r = self.fill(&mut side, level, &found, &ha.cause, sink);
        self.orphan_side = Some(side);
        r
    }

    /// Writes the orphan entries `found` (in key order; a key more than once
    /// where several leaves hold it) of one lost range.
    fn fill<S: Sink<'a>>(
        &mut self,
        side: &mut Side<'a>,
        level: Level,
        found: &[(Entry<'a>, Pgid)],
        cause: &Corruption,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        for versions in found.chunk_by(|x, y| x.0.key == y.0.key) {
            let Some(&(first, _)) = versions.first() else {
                continue;
            };
            let key = first.key;
            match choose_version(side, level, versions) {
                Ok((e, page)) => {
                    self.in_orphan = Some((page, cause.clone()));
                    let r = self.orphan_entry(side, level, e, sink);
                    self.in_orphan = None;
                    r?;
                }
                Err(message) => {
                    let kind = match level.child(key) {
                        Child::Record(k) => Some(k),
                        Child::Level(_) => None,
                    };
                    self.ledger.lost.push(Lost {
                        path: self.bucket_path(),
                        what: LostWhat::Record { key: key.to_vec() },
                        kind,
                        level,
                        cause: Corruption::new(CorruptKind::PageMisplaced, message),
                        page: None,
                    });
                }
            }
        }
        Ok(())
    }

    /// One entry of an orphan page, in the bucket being merged.
    fn orphan_entry<S: Sink<'a>>(
        &mut self,
        side: &mut Side<'a>,
        level: Level,
        e: Entry<'a>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        match (level.child(e.key), e.kind) {
            (Child::Record(kind), _) => {
                let pair = Pair {
                    newest: Some(e),
                    other: None,
                    hole: None,
                };
                self.record(side, None, kind, pair, sink)
            }
            (Child::Level(_), EntryKind::Value(v)) => {
                self.recovered(e.key, None, None);
                sink.put(e.key, v)
            }
            (Child::Level(l), EntryKind::Bucket(x)) => {
                self.recovered(e.key, None, None);
                let present = ABucket::Present(x);
                self.descend(side, None, l, e.key, x.sequence(), present, None, sink)
            }
        }
    }

    /// One key of the output, from its [`Pair`].
    fn entry<S: Sink<'a>>(
        &mut self,
        a: &mut Side<'a>,
        b: Option<&mut Side<'a>>,
        level: Level,
        pair: Pair<'a, '_>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let Some(key) = pair.key() else {
            return Ok(());
        };
        let hole = pair.hole;
        let child = match level.child(key) {
            Child::Record(kind) => return self.record(a, b, kind, pair, sink),
            Child::Level(l) => l,
        };
        match (pair.newest.map(|e| e.kind), pair.other.map(|e| e.kind)) {
            (Some(EntryKind::Value(v)), Some(EntryKind::Value(w)))
                if v != w && self.stale.is_some() =>
            {
                self.recovered(key, None, None);
                sink.put(key, w)
            }
            (Some(EntryKind::Value(v)), _) => sink.put(key, v),
            (Some(EntryKind::Bucket(x)), other) => {
                let y = other.and_then(|k| match k {
                    EntryKind::Bucket(y) => Some(y),
                    EntryKind::Value(_) => None,
                });
                let seq = x.sequence().max(y.map_or(0, |y| y.sequence()));
                self.descend(a, b, child, key, seq, ABucket::Present(x), y, sink)
            }
            (None, Some(EntryKind::Value(v))) => {
                self.recovered(key, None, hole);
                sink.put(key, v)
            }
            (None, Some(EntryKind::Bucket(y))) => {
                let cause = hole.cloned().unwrap_or_else(|| missing_cause(key));
                self.descend(
                    a,
                    b,
                    child,
                    key,
                    y.sequence(),
                    ABucket::Missing(cause),
                    Some(y),
                    sink,
                )
            }
            (None, None) => Ok(()),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn descend<S: Sink<'a>>(
        &mut self,
        a: &mut Side<'a>,
        b: Option<&mut Side<'a>>,
        level: Level,
        key: &'a [u8],
        sequence: u64,
        x: ABucket<'a>,
        y: Option<Bucket<'a>>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        if self.path.len() >= MAX_BUCKET_DEPTH {
            let cause = Corruption::new(
                CorruptKind::TreeTooDeep,
                format!("buckets nest deeper than {MAX_BUCKET_DEPTH} levels"),
            );
            self.ledger.damage.push(cause.clone());
            self.ledger.lost.push(Lost {
                path: self.bucket_path(),
                what: LostWhat::Record { key: key.to_vec() },
                kind: None,
                level,
                cause,
                page: None,
            });
            return Ok(());
        }
        sink.begin(key, sequence)?;
        self.path.push(key.to_vec());
        let r = self.bucket(a, b, level, x, y, sink);
        self.path.pop();
        r?;
        sink.end()
    }

    /// Whether `e`, a snapshot record, holds an id no record of the output
    /// holds (while snapshot ids are rescued).
    fn id_otherwise_lost(&self, e: &Entry<'a>) -> bool {
        let Some((ids, _)) = &self.rescue else {
            return false;
        };
        let id = e.bucket().and_then(|b| b.value(b"id").ok().flatten());
        id.is_some_and(|id| !ids.contains(id))
    }

    fn recovered(&mut self, key: &[u8], kind: Option<RecordKind>, hole: Option<&Corruption>) {
        let (source, page, hole) = match &self.in_orphan {
            Some((page, cause)) => (Source::Orphan, Some(*page), Some(cause)),
            None => (Source::Other, None, hole),
        };
        let why = match (hole, &self.stale, &self.rescue) {
            (None, _, Some((_, lost))) if self.rescuing => Why::SnapshotIdOnlyInOther(lost.clone()),
            (Some(c), _, _) => Why::NewestDamaged(c.clone()),
            (None, Some(proof), _) if self.in_orphan.is_none() => {
                Why::OlderBucketInNewest(proof.clone())
            }
            (None, _, _) => Why::NewestDamaged(missing_cause(key)),
        };
        self.ledger.recovered.push(Recovered {
            path: self.bucket_path(),
            key: key.to_vec(),
            kind,
            source,
            page,
            why,
        });
    }

    /// A record: the newest tree's if whole (unless the other's whole version
    /// is newer), else the other's if whole, else lost.
    fn record<S: Sink<'a>>(
        &mut self,
        a: &mut Side<'a>,
        b: Option<&mut Side<'a>>,
        kind: RecordKind,
        pair: Pair<'a, '_>,
        sink: &mut S,
    ) -> Result<(), S::Error> {
        let Some(key) = pair.key() else {
            return Ok(());
        };
        let (ea, eb, hole) = (pair.newest, pair.other, pair.hole);
        let same = match (&ea, &eb) {
            (Some(x), Some(y)) => same_entry(x, y),
            _ => false,
        };
        let rpath = self.bucket_path().child(key);
        let located = |mut r: RecordRead<'a>| {
            for c in r.holes.iter_mut().chain(r.notes.iter_mut()) {
                *c = c.clone().in_bucket(&rpath);
            }
            r
        };
        let ra = ea.map(|e| located(read_record(&mut a.seen, e, kind)));
        let rb = match (eb, b) {
            (Some(e), Some(side)) if !same => Some(located(read_record(&mut side.seen, e, kind))),
            _ => None,
        };
        if let Some(x) = &ra {
            self.ledger
                .damage
                .extend(x.holes.iter().chain(&x.notes).cloned());
        }
        if let Some(y) = &rb {
            self.ledger.other_damage.extend(y.holes.iter().cloned());
        }
        let whole = |r: &Option<RecordRead<'a>>| r.as_ref().is_some_and(|r| r.holes.is_empty());
        let take_b = match (&ra, &rb) {
            (Some(_), Some(_)) if whole(&ra) && whole(&rb) && self.stale.is_some() => {
                self.recovered(key, Some(kind), None);
                true
            }
            (Some(x), Some(y)) if whole(&ra) && whole(&rb) => match (x.updated, y.updated) {
                (Some(tx), Some(ty)) if kind.has_updatedat() && ty > tx => {
                    self.ledger.recovered.push(Recovered {
                        path: self.bucket_path(),
                        key: key.to_vec(),
                        kind: Some(kind),
                        source: Source::Other,
                        page: None,
                        why: Why::NewerInOther {
                            newest: tx,
                            other: ty,
                        },
                    });
                    true
                }
                _ => false,
            },
            _ if whole(&ra) => {
                if self.in_orphan.is_some() {
                    self.recovered(key, Some(kind), None);
                }
                false
            }
            _ if whole(&rb) => {
                let cause = match &ra {
                    Some(x) => x.holes.first().cloned(),
                    None => hole.cloned(),
                };
                self.recovered(key, Some(kind), cause.as_ref());
                true
            }
            _ => {
                let cause = ra
                    .as_ref()
                    .and_then(|x| x.holes.first().cloned())
                    .or_else(|| hole.cloned())
                    .unwrap_or_else(|| missing_cause(key));
                let page = cause.page;
                self.ledger.lost.push(Lost {
                    path: self.bucket_path(),
                    what: LostWhat::Record { key: key.to_vec() },
                    kind: Some(kind),
                    level: Level::Record(kind),
                    cause,
                    page,
                });
                return Ok(());
            }
        };
        let (chosen, source) = if take_b {
            (rb, Source::Other)
        } else {
            (ra, Source::Newest)
        };
        self.count(kind, source);
        for ev in chosen.map(|r| r.events).unwrap_or_default() {
            match ev {
                Ev::Begin(k, s) => sink.begin(k, s)?,
                Ev::Put(k, v) => sink.put(k, v)?,
                Ev::End => sink.end()?,
            }
        }
        Ok(())
    }
}

/// The first sub-bucket that both `x` (a bucket as the newest tree holds it)
/// and `y` (as the other tree does) hold with a higher sequence in `y`: its
/// name and its two sequences. Read with the plain readers, as far as both
/// read; nothing is proven past damage.
fn older_in_newest(x: &Bucket<'_>, y: &Bucket<'_>) -> Option<(Vec<u8>, u64, u64)> {
    let mut ys = y.iter();
    let mut next_y = ys.next();
    for ex in x.iter() {
        let ex = ex.ok()?;
        let Some(bx) = ex.bucket() else { continue };
        loop {
            match &next_y {
                Some(Ok(ey)) if ey.key < ex.key => next_y = ys.next(),
                Some(Ok(ey)) if ey.key == ex.key => {
                    let sy = ey.bucket().map_or(0, |by| by.sequence());
                    if sy > bx.sequence() {
                        return Some((ex.key.to_vec(), bx.sequence(), sy));
                    }
                    break;
                }
                Some(Ok(_)) => break,
                _ => return None,
            }
        }
    }
    None
}

/// The damage of an entry found only in the other tree, where no hole is known.
fn missing_cause(key: &[u8]) -> Corruption {
    Corruption::new(
        CorruptKind::PageMisplaced,
        format!(
            "{} lies in a range the newest tree could not read",
            crate::bytes::display(key)
        ),
    )
}

/// Whether two entries are the same stored bytes (a value, or a bucket whose
/// pages both trees share).
fn same_entry(x: &Entry<'_>, y: &Entry<'_>) -> bool {
    match (x.kind, y.kind) {
        (EntryKind::Value(v), EntryKind::Value(w)) => v == w,
        (EntryKind::Bucket(p), EntryKind::Bucket(q)) => p.same_as(&q),
        _ => false,
    }
}

/// Of the versions of one key that orphan leaves hold (in page order), the
/// one to take: the only one (versions with the same bytes are one), else the
/// record with the latest `updatedat` where every version is a whole record
/// that has one. Else why none is taken.
fn choose_version<'a>(
    side: &Side<'a>,
    level: Level,
    versions: &[(Entry<'a>, Pgid)],
) -> Result<(Entry<'a>, Pgid), String> {
    let Some(&(first, page)) = versions.first() else {
        return Err("no version".to_string());
    };
    if versions.iter().all(|(e, _)| same_entry(e, &first)) {
        return Ok((first, page));
    }
    let pages: Vec<String> = versions.iter().map(|(_, p)| p.to_string()).collect();
    let differ = format!(
        "orphan pages {} hold different versions of it",
        pages.join(", ")
    );
    let Child::Record(kind) = level.child(first.key) else {
        return Err(differ);
    };
    if !kind.has_updatedat() {
        return Err(differ);
    }
    let mut best: Option<(Timestamp, Entry<'a>, Pgid, bool)> = None;
    for &(e, p) in versions {
        // A scratch set: which version is taken must not change what the
        // chosen one's read sees.
        let mut seen = Visited::for_tree(&side.tree);
        let r = read_record(&mut seen, e, kind);
        let Some(t) = r.updated.filter(|_| r.holes.is_empty()) else {
            return Err(differ);
        };
        best = match best {
            Some((bt, be, bp, tied)) if bt > t => Some((bt, be, bp, tied)),
            Some((bt, be, bp, tied)) if bt == t => Some((bt, be, bp, tied || !same_entry(&be, &e))),
            _ => Some((t, e, p, false)),
        };
    }
    match best {
        Some((_, e, p, false)) => Ok((e, p)),
        _ => Err(differ),
    }
}

/// Reads a record whole: its events, and every hole inside it.
fn read_record<'a>(seen: &mut Visited, e: Entry<'a>, kind: RecordKind) -> RecordRead<'a> {
    let mut out = RecordRead::default();
    match e.kind {
        EntryKind::Value(v) => out.events.push(Ev::Put(e.key, v)),
        EntryKind::Bucket(b) => {
            out.events.push(Ev::Begin(e.key, b.sequence()));
            let mut stack = vec![SalvageCursor::new(b, Level::Record(kind))];
            while let Some(top) = stack.last_mut() {
                match top.next_item(seen) {
                    None => {
                        out.notes.extend(top.take_notes());
                        stack.pop();
                        out.events.push(Ev::End);
                    }
                    Some(Item::Hole(h)) => out.holes.push(h.cause),
                    Some(Item::Entry(x)) => match x.kind {
                        EntryKind::Value(v) => {
                            if stack.len() == 1 && x.key == b"updatedat" {
                                out.updated = encoding::time(v).ok();
                            }
                            out.events.push(Ev::Put(x.key, v));
                        }
                        EntryKind::Bucket(c) => {
                            if stack.len() >= MAX_BUCKET_DEPTH {
                                out.holes.push(Corruption::new(
                                    CorruptKind::TreeTooDeep,
                                    format!("buckets nest deeper than {MAX_BUCKET_DEPTH} levels"),
                                ));
                                continue;
                            }
                            out.events.push(Ev::Begin(x.key, c.sequence()));
                            stack.push(SalvageCursor::new(c, Level::Other));
                        }
                    },
                }
            }
        }
    }
    out
}

/// Whether `key` is below the lower bound `l`.
fn below_lower(key: &[u8], l: Bound<&[u8]>) -> bool {
    match l {
        Bound::Unbounded => false,
        Bound::Included(x) => key < x,
        Bound::Excluded(x) => key <= x,
    }
}

/// Whether no key is both below the upper bound `u` and above the lower
/// bound `l`.
fn disjoint(u: Bound<&[u8]>, l: Bound<&[u8]>) -> bool {
    match (u, l) {
        (Bound::Unbounded, _) | (_, Bound::Unbounded) => false,
        (Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => x <= y,
        (Bound::Included(x), Bound::Included(y)) => x < y,
        (Bound::Included(x), Bound::Excluded(y)) => x <= y,
    }
}

/// Whether upper bound `x` is at or below upper bound `y`.
fn upper_le(x: Bound<&[u8]>, y: Bound<&[u8]>) -> bool {
    match (x, y) {
        (_, Bound::Unbounded) => true,
        (Bound::Unbounded, _) => false,
        (Bound::Excluded(p), Bound::Excluded(q)) | (Bound::Included(p), Bound::Included(q)) => {
            p <= q
        }
        (Bound::Excluded(p), Bound::Included(q)) => p <= q,
        (Bound::Included(p), Bound::Excluded(q)) => p < q,
    }
}

fn min_upper<'k>(x: Bound<&'k [u8]>, y: Bound<&'k [u8]>) -> Bound<&'k [u8]> {
    if upper_le(x, y) {
        x
    } else {
        y
    }
}

fn max_lower<'k>(x: Bound<&'k [u8]>, y: Bound<&'k [u8]>) -> Bound<&'k [u8]> {
    let key = |b: Bound<&'k [u8]>| match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k),
        Bound::Unbounded => None,
    };
    match (key(x), key(y)) {
        (None, _) => y,
        (_, None) => x,
        (Some(p), Some(q)) if p > q => x,
        (Some(p), Some(q)) if q > p => y,
        _ if matches!(x, Bound::Excluded(_)) => x,
        _ => y,
    }
}

impl Recovered {
    /// The record's identity.
    pub fn id(&self) -> RecordId {
        identity(&self.path, &self.key, self.kind)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::bolt::writer::{BoltWriter, FreelistMode, WriterOptions};
    use crate::bolt::Db;

    /// A snapshotter database whose `v1/snapshots` has sequence `seq`.
    fn with_sequence(seq: u64) -> Vec<u8> {
        let opts = WriterOptions {
            page_size: 4096,
            freelist: FreelistMode::Page,
            after_txid: 0,
            root_sequence: 0,
        };
        let mut w = BoltWriter::new(Cursor::new(Vec::new()), opts).unwrap();
        w.begin_bucket(&b"v1"[..], 0).unwrap();
        w.begin_bucket(&b"parents"[..], 0).unwrap();
        w.end_bucket().unwrap();
        w.begin_bucket(&b"snapshots"[..], seq).unwrap();
        w.end_bucket().unwrap();
        w.end_bucket().unwrap();
        w.finish().unwrap().0.into_inner()
    }

    #[test]
    fn a_lower_sequence_in_the_newest_tree_proves_its_bucket_older() {
        let (older, newer) = (with_sequence(15), with_sequence(16));
        let (older, newer) = (Db::parse(&older).unwrap(), Db::parse(&newer).unwrap());
        fn v1<'a>(db: &Db<'a>) -> Bucket<'a> {
            db.root().unwrap().bucket(b"v1").unwrap().unwrap()
        }
        assert_eq!(
            older_in_newest(&v1(&older), &v1(&newer)),
            Some((b"snapshots".to_vec(), 15, 16))
        );
        assert_eq!(older_in_newest(&v1(&newer), &v1(&older)), None);
        assert_eq!(older_in_newest(&v1(&newer), &v1(&newer)), None);
    }
}
