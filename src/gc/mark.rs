//! Mark and sweep for one namespace: containerd's `scanRoots`, `references`,
//! `gc.Tricolor` and `scanAll`, over decoded records instead of bolt buckets.
//! References never leave the namespace.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};

use super::gotime::parse_rfc3339;
use super::labels::{self, Kind, Node, RefSyntax, UsedAt};
use super::{Collectable, GcRules};
use crate::containerd::{Container, Image, Ingest, Labels, Namespace, SandboxLocation, Timestamp};

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
        labels::get(l, labels::GC_EXPIRE)
            .and_then(parse_rfc3339)
            .is_some_and(|exp| self.now > exp)
    }

    fn images(&self) -> impl Iterator<Item = &'r Image<'a>> + '_ {
        self.ns
            .images
            .iter()
            .filter(|i| !self.removed.contains(i.name.0))
    }

    fn image(&self, name: &[u8]) -> Option<&'r Image<'a>> {
        self.ns
            .image(name)
            .filter(|i| !self.removed.contains(i.name.0))
    }

    fn container(&self, id: &[u8]) -> Option<&'r Container<'a>> {
        let c = &self.ns.containers;
        c.binary_search_by(|x| x.id.0.cmp(id))
            .ok()
            .and_then(|i| c.get(i))
    }

    fn ingest(&self, r: &[u8]) -> Option<&'r Ingest<'a>> {
        let v = &self.ns.ingests;
        v.binary_search_by(|x| x.ref_.0.cmp(r))
            .ok()
            .and_then(|i| v.get(i))
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
            let flat = labels::get(&l.labels, labels::GC_FLAT).is_some();
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

    /// `references`: the nodes `n` reaches in one step.
    fn refs(&self, n: &Node<'a>, br: &BackRefs<'a>, out: &mut Vec<Node<'a>>) {
        let syn = self.syntax();
        // Back references are keyed by the non-flat parent, as in containerd.
        if let Some(v) = br.get(n) {
            out.extend(v.iter().cloned());
        }
        match n.kind {
            Kind::Content => {
                if !n.flat {
                    if let Some(b) = self.ns.blob(&n.key) {
                        labels::forward_refs(&b.labels, syn, out);
                    }
                }
            }
            Kind::Snapshot => {
                // Held split at the first '/', as containerd splits it.
                let Some(s) = self.ns.snapshot(&n.key, &n.rest) else {
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
            Kind::Ingest => {
                if let Some(e) = self
                    .ingest(&n.key)
                    .and_then(|i| i.expected)
                    .filter(|e| !e.0.is_empty())
                {
                    out.push(Node::new(Kind::Content, e.0));
                }
            }
            Kind::Image => {
                if !self.rules.image_nodes() {
                    return;
                }
                let Some(img) = self.image(&n.key) else {
                    return;
                };
                if let Some(t) = &img.target {
                    out.push(Node::new(Kind::Content, t.digest.0).with_flat(n.flat));
                }
                if !n.flat {
                    labels::forward_refs(&img.labels, syn, out);
                }
            }
            Kind::Container => {
                let Some(c) = self.container(&n.key) else {
                    return;
                };
                if let Some(sn) = c.snapshotter.filter(|s| !s.0.is_empty()) {
                    let key = c.snapshot_key.map(|k| k.0).unwrap_or_default();
                    out.push(Node::snapshot(sn.0, key));
                }
                labels::forward_refs(&c.labels, syn, out);
            }
            Kind::Lease => {}
        }
    }

    /// `gc.Tricolor`: every node reachable from the roots (flat and non-flat
    /// variants as separate entries).
    fn mark(&self) -> HashSet<Node<'a>> {
        let (mut stack, br) = self.roots();
        let mut seen: HashSet<Node<'a>> = HashSet::new();
        let mut next = Vec::new();
        while let Some(n) = stack.pop() {
            if seen.contains(&n) {
                continue;
            }
            next.clear();
            self.refs(&n, &br, &mut next);
            stack.extend(next.drain(..).filter(|r| !seen.contains(r)));
            seen.insert(n);
        }
        seen
    }

    /// `scanAll` + `remove`: adds every unmarked lease, snapshot, ingest, blob
    /// (2.x: image) of the namespace to `out`.
    pub fn sweep(&self, out: &mut Collectable<'a>) {
        let marked = self.mark();
        // Reachable with the flat bit stripped: either variant was reached.
        let has = |n: Node<'a>| {
            let flat = n.clone().with_flat(true);
            marked.contains(&n) || marked.contains(&flat)
        };
        let ns = self.ns.name;
        for l in &self.ns.leases {
            if !has(Node::new(Kind::Lease, l.id.0)) {
                out.leases.insert((ns, l.id));
            }
        }
        for sn in &self.ns.snapshotters {
            for s in &sn.snapshots {
                if !has(Node::snapshot(sn.name.0, s.key.0)) {
                    out.snapshots.insert((ns, sn.name, s.key));
                }
            }
        }
        for i in &self.ns.ingests {
            if !has(Node::new(Kind::Ingest, i.ref_.0)) {
                out.ingests.insert((ns, i.ref_));
            }
        }
        for b in &self.ns.blobs {
            if !has(Node::new(Kind::Content, b.digest.0)) {
                out.content.insert((ns, b.digest));
            }
        }
        if self.rules.image_nodes() {
            for img in self.images() {
                if !has(Node::new(Kind::Image, img.name.0)) {
                    out.images.insert((ns, img.name));
                }
            }
        }
    }
}
