//! Mark and sweep for one namespace: containerd's `scanRoots`, `references`,
//! `gc.Tricolor` and `scanAll`, over decoded records instead of bolt buckets.
//! References never leave the namespace.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::gotime::parse_rfc3339;
use super::labels::{self, Kind, Node, RefSyntax, UsedAt};
use super::{Collectable, GcRules};
use crate::containerd::labels as keys;
use crate::containerd::{position_by_key, Image, Labels, Namespace, SandboxLocation, Timestamp};

/// One namespace's GC inputs.
pub(super) struct NsGc<'r, 'a> {
    /// The namespace's records.
    pub ns: &'r Namespace<'a>,
    /// Image names treated as deleted.
    pub removed: &'r BTreeSet<&'r [u8]>,
    /// The release family.
    pub rules: GcRules,
    /// The GC time, Unix nanoseconds.
    pub now: i128,
    /// `v1/version` of the file (2.x migrates 1.7 top-level sandboxes when < 4).
    pub schema_version: Option<i64>,
}

/// Parents → the objects they keep through back (or satisfied conditional) references.
type BackRefs<'a> = HashMap<Node<'a>, Vec<Node<'a>>>;

fn ts_ns(t: &Timestamp) -> i128 {
    i128::from(t.unix_secs) * 1_000_000_000 + i128::from(t.nanos)
}

impl<'r, 'a> NsGc<'r, 'a> {
    fn syntax(&self) -> RefSyntax {
        RefSyntax {
            image_refs: self.rules.image_nodes(),
            root_prefix: self.rules.back_refs(),
        }
    }

    /// `containerd.io/gc.expire` is a parsable time strictly before now
    /// (`expThreshold.After(exp)`); absent or unparsable means not expired.
    fn expired(&self, l: &Labels<'a>) -> bool {
        labels::get(l, keys::GC_EXPIRE)
            .and_then(parse_rfc3339)
            .is_some_and(|exp| self.now > exp)
    }

    fn images(&self) -> impl Iterator<Item = &'r Image<'a>> + '_ {
        self.ns
            .images
            .iter()
            .filter(|i| !self.removed.contains(i.name.0))
    }

    /// Whether sandboxes at `loc` contribute label refs under these rules.
    fn sandbox_counts(&self, loc: SandboxLocation) -> bool {
        match (self.rules, loc) {
            (GcRules::V1_6, _) => false,
            (_, SandboxLocation::V1) => true,
            // 1.7's own GC looks only under v1/<ns>/sandboxes; 2.x's migration 4
            // moves 1.7's top-level sandboxes there before the first GC.
            (GcRules::V1_7, SandboxLocation::TopLevel) => false,
            (_, SandboxLocation::TopLevel) => self.schema_version.is_none_or(|v| v < 4),
        }
    }

    /// `scanRoots`: the roots and (2.2+) the back-reference table.
    fn roots(&self) -> (Vec<Node<'a>>, BackRefs<'a>) {
        let syn = self.syntax();
        let brefs_on = self.rules.back_refs();
        let mut roots = Vec::new();
        let mut br = BackRefs::new();
        let add_brefs = |l: &Labels<'a>, child: &Node<'a>, br: &mut BackRefs<'a>| {
            if brefs_on {
                let mut parents = Vec::new();
                labels::back_refs(l, &mut parents);
                for p in parents {
                    br.entry(p).or_default().push(child.clone());
                }
            }
        };
        // 2.3 conditional references: (parent, snapshot, condition) and snapshots' usedat values.
        let mut conds: Vec<(Node<'a>, Node<'a>, UsedAt)> = Vec::new();
        let mut used_at: HashMap<Node<'a>, Vec<i128>> = HashMap::new();
        let add_conds =
            |l: &Labels<'a>, parent: &Node<'a>, conds: &mut Vec<(Node<'a>, Node<'a>, UsedAt)>| {
                if brefs_on {
                    let mut c = Vec::new();
                    labels::conditional_refs(l, &mut c);
                    conds.extend(
                        c.into_iter()
                            .map(|(snap, cond)| (parent.clone(), snap, cond)),
                    );
                }
            };

        for l in &self.ns.leases {
            if self.expired(&l.labels) {
                continue;
            }
            let flat = labels::get(&l.labels, keys::GC_FLAT).is_some();
            roots.push(Node::new(Kind::Lease, l.id.0));
            roots.extend(
                l.content
                    .iter()
                    .map(|d| Node::new(Kind::Content, d.0).with_flat(flat)),
            );
            roots.extend(
                l.snapshots
                    .iter()
                    .map(|(sn, k)| Node::snapshot(sn.0, k.0).with_flat(flat)),
            );
            // Ingests have no flat variant.
            roots.extend(l.ingests.iter().map(|r| Node::new(Kind::Ingest, r.0)));
            if self.rules.image_nodes() {
                roots.extend(
                    l.images
                        .iter()
                        .map(|n| Node::new(Kind::Image, n.0).with_flat(flat)),
                );
            }
        }

        for img in self.images() {
            if !self.rules.image_nodes() {
                // 1.x: the target content and the image's label refs are roots.
                if let Some(t) = &img.target {
                    roots.push(Node::new(Kind::Content, t.digest.0));
                }
                labels::forward_refs(&img.labels, syn, &mut roots);
                continue;
            }
            let node = Node::new(Kind::Image, img.name.0);
            if self.expired(&img.labels) {
                // 2.2+: an expired image can still be kept by a back reference.
                add_brefs(&img.labels, &node, &mut br);
            } else {
                roots.push(node.clone());
            }
            add_conds(&img.labels, &node, &mut conds);
        }

        for i in &self.ns.ingests {
            if i.expire_at.is_some_and(|t| self.now <= ts_ns(&t)) {
                roots.push(Node::new(Kind::Ingest, i.ref_.0));
            }
        }

        for b in &self.ns.blobs {
            let node = Node::new(Kind::Content, b.digest.0);
            add_brefs(&b.labels, &node, &mut br);
            add_conds(&b.labels, &node, &mut conds);
            if labels::is_root(&b.labels, syn) {
                roots.push(node);
            }
        }

        for c in &self.ns.containers {
            let node = Node::new(Kind::Container, c.id.0);
            add_brefs(&c.labels, &node, &mut br);
            roots.push(node);
        }

        for sn in &self.ns.snapshotters {
            for s in &sn.snapshots {
                let node = Node::snapshot(sn.name.0, s.key.0);
                add_brefs(&s.labels, &node, &mut br);
                if brefs_on {
                    let v = labels::used_at_values(&s.labels);
                    if !v.is_empty() {
                        used_at.entry(node.clone()).or_default().extend(v);
                    }
                }
                if labels::is_root(&s.labels, syn) {
                    roots.push(node);
                }
            }
        }

        for sb in &self.ns.sandboxes {
            if self.sandbox_counts(sb.location) {
                labels::forward_refs(&sb.labels, syn, &mut roots);
            }
        }

        for (parent, snap, cond) in conds {
            if let Some(vals) = used_at.get(&snap) {
                for &v in vals {
                    if cond.holds(v, self.now) {
                        br.entry(parent.clone()).or_default().push(snap.clone());
                    }
                }
            }
        }
        (roots, br)
    }

    /// Where `n`'s record is in the namespace, if it has one (a removed image
    /// has none). Every vector searched is in bolt key order.
    fn slot(&self, n: &Node<'a>) -> Option<Slot> {
        let ns = self.ns;
        let key: &[u8] = &n.key;
        match n.kind {
            Kind::Lease => position_by_key(&ns.leases, key, |x| x.id.0).map(Slot::Lease),
            Kind::Content => position_by_key(&ns.blobs, key, |x| x.digest.0).map(Slot::Content),
            Kind::Ingest => position_by_key(&ns.ingests, key, |x| x.ref_.0).map(Slot::Ingest),
            Kind::Container => {
                position_by_key(&ns.containers, key, |x| x.id.0).map(Slot::Container)
            }
            Kind::Image if self.removed.contains(key) => None,
            Kind::Image => position_by_key(&ns.images, key, |x| x.name.0).map(Slot::Image),
            Kind::Snapshot => {
                // Held split at the first '/', as containerd splits it.
                let j = ns.snapshotters.iter().position(|s| s.name.0 == key)?;
                let snapshots = &ns.snapshotters.get(j)?.snapshots;
                position_by_key(snapshots, &n.rest, |x| x.key.0).map(|i| Slot::Snapshot(j, i))
            }
        }
    }

    /// `references`: the nodes `n` (whose record is at `slot`) reaches in one step.
    fn refs(&self, n: &Node<'a>, slot: Option<Slot>, br: &BackRefs<'a>, out: &mut Vec<Node<'a>>) {
        let syn = self.syntax();
        // Back references are keyed by the non-flat parent, as in containerd.
        if !br.is_empty() {
            if let Some(v) = br.get(n) {
                out.extend(v.iter().cloned());
            }
        }
        let ns = self.ns;
        match (n.kind, slot) {
            (Kind::Content, Some(Slot::Content(i))) => {
                if let Some(b) = ns.blobs.get(i).filter(|_| !n.flat) {
                    labels::forward_refs(&b.labels, syn, out);
                }
            }
            (Kind::Snapshot, Some(Slot::Snapshot(j, i))) => {
                let Some(s) = ns.snapshotters.get(j).and_then(|sn| sn.snapshots.get(i)) else {
                    return;
                };
                if let Some(p) = s.parent.filter(|p| !p.0.is_empty()) {
                    // `n.key` has no '/', so (key, parent) is already split.
                    out.push(Node {
                        kind: Kind::Snapshot,
                        key: n.key.clone(),
                        rest: Cow::Borrowed(p.0),
                        flat: n.flat,
                    });
                }
                if !n.flat {
                    labels::forward_refs(&s.labels, syn, out);
                }
            }
            (Kind::Ingest, Some(Slot::Ingest(i))) => {
                if let Some(e) = ns
                    .ingests
                    .get(i)
                    .and_then(|i| i.expected)
                    .filter(|e| !e.0.is_empty())
                {
                    out.push(Node::new(Kind::Content, e.0));
                }
            }
            (Kind::Image, Some(Slot::Image(i))) => {
                if !self.rules.image_nodes() {
                    return;
                }
                let Some(img) = ns.images.get(i) else {
                    return;
                };
                if let Some(t) = &img.target {
                    out.push(Node::new(Kind::Content, t.digest.0).with_flat(n.flat));
                }
                if !n.flat {
                    labels::forward_refs(&img.labels, syn, out);
                }
            }
            (Kind::Container, Some(Slot::Container(i))) => {
                let Some(c) = ns.containers.get(i) else {
                    return;
                };
                if let Some(sn) = c.snapshotter.filter(|s| !s.0.is_empty()) {
                    let key = c.snapshot_key.map(|k| k.0).unwrap_or_default();
                    out.push(Node::snapshot(sn.0, key));
                }
                labels::forward_refs(&c.labels, syn, out);
            }
            _ => {}
        }
    }

    /// `gc.Tricolor`: every node reachable from the roots. Nodes with a record
    /// are marked by record position (flat and non-flat variants as separate
    /// bits); nodes without one (dangling references, removed images) by value.
    fn mark(&self) -> (Marks<'a>, BackRefs<'a>) {
        let (stack, br) = self.roots();
        let mut marks = Marks::for_namespace(self.ns);
        self.mark_from(&mut marks, stack, &br);
        (marks, br)
    }

    /// Marks everything reachable from `stack` that `marks` does not hold yet.
    fn mark_from(&self, marks: &mut Marks<'a>, mut stack: Vec<Node<'a>>, br: &BackRefs<'a>) {
        let mut next = Vec::new();
        while let Some(n) = stack.pop() {
            let slot = self.slot(&n);
            if !marks.insert(slot, &n) {
                continue;
            }
            next.clear();
            self.refs(&n, slot, br, &mut next);
            stack.append(&mut next);
        }
    }

    /// `scanAll` + `remove`: adds every unmarked lease, snapshot, ingest, blob
    /// (2.x: image) of the namespace to `out`.
    pub fn sweep(&self, out: &mut Collectable<'a>) {
        let (marks, _) = self.mark();
        self.sweep_marked(&marks, out);
    }

    /// [`sweep`](Self::sweep) of the namespace as it is (`self`, nothing removed) and
    /// of `after` (the same namespace with images removed), from one shared mark.
    ///
    /// Removing images only takes roots and edges away, so what `after` reaches
    /// is a subset of what `self` reaches: `after` is marked in full, and the
    /// same marks are then extended to `self`'s closure by re-marking from
    /// `self`'s roots — everything reached already is skipped — plus the two
    /// kinds of edge that `after` lacks out of nodes it did reach: a removed
    /// image reached by name (it had no record, so its target and labels were
    /// not followed) and the back references that removed images add to a
    /// reached parent. The result equals a separate full mark of `self`.
    pub fn sweep_before_and_after(
        &self,
        after: &NsGc<'_, 'a>,
        before_out: &mut Collectable<'a>,
        after_out: &mut Collectable<'a>,
    ) {
        let (mut marks, _) = after.mark();
        after.sweep_marked(&marks, after_out);
        let (mut stack, br) = self.roots();
        stack.extend(
            marks
                .other
                .iter()
                .filter(|n| n.kind == Kind::Image && after.removed.contains(&*n.key))
                .cloned(),
        );
        for (parent, children) in &br {
            if marks.contains(self.slot(parent), parent) {
                stack.extend(children.iter().cloned());
            }
        }
        self.mark_from(&mut marks, stack, &br);
        self.sweep_marked(&marks, before_out);
    }

    fn sweep_marked(&self, marks: &Marks<'a>, out: &mut Collectable<'a>) {
        // Reachable with the flat bit stripped: either variant was reached. A
        // record whose own position is unmarked is looked up by its key too, so
        // a duplicate key (corrupt file) answers like the node it equals.
        let has = |own: Slot, n: Node<'a>| {
            if marks.get(Some(own)) {
                return true;
            }
            match self.slot(&n) {
                Some(s) if s != own => marks.get(Some(s)),
                Some(_) => false,
                None => marks.other.contains(&n) || marks.other.contains(&n.with_flat(true)),
            }
        };
        let ns = self.ns.name;
        for (i, l) in self.ns.leases.iter().enumerate() {
            if !has(Slot::Lease(i), Node::new(Kind::Lease, l.id.0)) {
                out.leases.insert((ns, l.id));
            }
        }
        for (j, sn) in self.ns.snapshotters.iter().enumerate() {
            for (i, s) in sn.snapshots.iter().enumerate() {
                if !has(Slot::Snapshot(j, i), Node::snapshot(sn.name.0, s.key.0)) {
                    out.snapshots.insert((ns, sn.name, s.key));
                }
            }
        }
        for (i, r) in self.ns.ingests.iter().enumerate() {
            if !has(Slot::Ingest(i), Node::new(Kind::Ingest, r.ref_.0)) {
                out.ingests.insert((ns, r.ref_));
            }
        }
        for (i, b) in self.ns.blobs.iter().enumerate() {
            if !has(Slot::Content(i), Node::new(Kind::Content, b.digest.0)) {
                out.content.insert((ns, b.digest));
            }
        }
        if self.rules.image_nodes() {
            for (i, img) in self.ns.images.iter().enumerate() {
                if self.removed.contains(img.name.0) {
                    continue;
                }
                if !has(Slot::Image(i), Node::new(Kind::Image, img.name.0)) {
                    out.images.insert((ns, img.name));
                }
            }
        }
    }
}

/// A record's position in its namespace's vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Lease(usize),
    Content(usize),
    /// (snapshotter, snapshot)
    Snapshot(usize, usize),
    Ingest(usize),
    Image(usize),
    Container(usize),
}

/// Marked nodes: two bits per record (non-flat, flat), and a set for nodes
/// without a record.
struct Marks<'a> {
    leases: Vec<u8>,
    content: Vec<u8>,
    snapshots: Vec<Vec<u8>>,
    ingests: Vec<u8>,
    images: Vec<u8>,
    containers: Vec<u8>,
    other: HashSet<Node<'a>>,
}

impl<'a> Marks<'a> {
    fn for_namespace(ns: &Namespace<'a>) -> Marks<'a> {
        Marks {
            leases: vec![0; ns.leases.len()],
            content: vec![0; ns.blobs.len()],
            snapshots: ns
                .snapshotters
                .iter()
                .map(|s| vec![0; s.snapshots.len()])
                .collect(),
            ingests: vec![0; ns.ingests.len()],
            images: vec![0; ns.images.len()],
            containers: vec![0; ns.containers.len()],
            other: HashSet::new(),
        }
    }

    fn cell(&mut self, slot: Slot) -> Option<&mut u8> {
        match slot {
            Slot::Lease(i) => self.leases.get_mut(i),
            Slot::Content(i) => self.content.get_mut(i),
            Slot::Snapshot(j, i) => self.snapshots.get_mut(j).and_then(|v| v.get_mut(i)),
            Slot::Ingest(i) => self.ingests.get_mut(i),
            Slot::Image(i) => self.images.get_mut(i),
            Slot::Container(i) => self.containers.get_mut(i),
        }
    }

    /// Marks `n` (at `slot`); false if it was marked already.
    fn insert(&mut self, slot: Option<Slot>, n: &Node<'a>) -> bool {
        let bit = if n.flat { 2 } else { 1 };
        match slot.and_then(|s| self.cell(s)) {
            Some(c) => {
                let fresh = *c & bit == 0;
                *c |= bit;
                fresh
            }
            None => self.other.insert(n.clone()),
        }
    }

    /// The mark bits of the record at `slot`.
    fn bits(&self, slot: Slot) -> Option<u8> {
        match slot {
            Slot::Lease(i) => self.leases.get(i),
            Slot::Content(i) => self.content.get(i),
            Slot::Snapshot(j, i) => self.snapshots.get(j).and_then(|v| v.get(i)),
            Slot::Ingest(i) => self.ingests.get(i),
            Slot::Image(i) => self.images.get(i),
            Slot::Container(i) => self.containers.get(i),
        }
        .copied()
    }

    /// Whether `n` itself (this variant, at `slot`) is marked.
    fn contains(&self, slot: Option<Slot>, n: &Node<'a>) -> bool {
        let bit = if n.flat { 2 } else { 1 };
        match slot {
            Some(s) => self.bits(s).is_some_and(|c| c & bit != 0),
            None => self.other.contains(n),
        }
    }

    /// Whether the record at `slot` was reached in either variant.
    fn get(&self, slot: Option<Slot>) -> bool {
        slot.and_then(|s| self.bits(s)).is_some_and(|c| c != 0)
    }
}
