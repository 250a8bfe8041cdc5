//! The GC label keys and containerd's exact prefix matching for them
//! (`sendLabelRefs` and the 1.7+ `labelHandlers` in `metadata/gc.go`).
//!
//! Matching rules, as in containerd:
//! * `gc.ref.content`, `gc.ref.image`, `gc.bref.content|image|container`: the key
//!   is the prefix itself, or the prefix followed by `.` or `/` and anything
//!   (`…content.l.0`, `…content/x`); `…contentX` is not a reference.
//! * `gc.ref.snapshot.` and `gc.bref.snapshot.`: everything after the prefix up to
//!   the first `/` is the snapshotter name (`…snapshot.overlayfs/x` →
//!   `overlayfs`); the node key is `<snapshotter>/<value>`.
//! * 2.2+: `gc.root` is a plain prefix (`containerd.io/gc.rootX` counts);
//!   before 2.2 only the exact key `containerd.io/gc.root` makes a root.

use crate::containerd::Labels;

/// `containerd.io/gc.root`: a content blob or snapshot is a root.
pub const GC_ROOT: &[u8] = b"containerd.io/gc.root";
/// `containerd.io/gc.expire` (RFC 3339): lease expiry; 2.x also image expiry.
pub const GC_EXPIRE: &[u8] = b"containerd.io/gc.expire";
/// `containerd.io/gc.flat`: a lease whose resources' references are not followed.
pub const GC_FLAT: &[u8] = b"containerd.io/gc.flat";
/// `containerd.io/gc.ref.content[.|/…]` → content by digest.
pub const REF_CONTENT: &[u8] = b"containerd.io/gc.ref.content";
/// `containerd.io/gc.ref.snapshot.<snapshotter>[/…]` → snapshot by key.
pub const REF_SNAPSHOT: &[u8] = b"containerd.io/gc.ref.snapshot.";
/// 2.0+: `containerd.io/gc.ref.image[.|/…]` → image by name.
pub const REF_IMAGE: &[u8] = b"containerd.io/gc.ref.image";
/// 2.2+: back reference to the container named in the value.
pub const BREF_CONTAINER: &[u8] = b"containerd.io/gc.bref.container";
/// 2.2+: back reference to the content digest in the value.
pub const BREF_CONTENT: &[u8] = b"containerd.io/gc.bref.content";
/// 2.2+: back reference to the image named in the value.
pub const BREF_IMAGE: &[u8] = b"containerd.io/gc.bref.image";
/// 2.2+: back reference to a snapshot `<snapshotter>/<value>`.
pub const BREF_SNAPSHOT: &[u8] = b"containerd.io/gc.bref.snapshot.";
/// 2.3+: conditional reference from content/image to a snapshot.
pub const COND_SNAPSHOT: &[u8] = b"containerd.io/gc.cond.snapshot";
/// 2.3+: the "used at" time (RFC 3339) on a snapshot that conditions test.
pub const COND_VALUE_USEDAT: &[u8] = b"containerd.io/gc.cond.value-usedat";

/// The kind of a GC node (containerd's `gc.ResourceType` values that concern meta.db).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `content/blob/<digest>`.
    Content,
    /// `snapshots/<snapshotter>/<key>`, keyed `"<snapshotter>/<key>"` as in containerd.
    Snapshot,
    /// `content/ingests/<ref>`.
    Ingest,
    /// 2.x: `images/<name>`.
    Image,
    /// `containers/<id>`.
    Container,
    /// `leases/<id>`.
    Lease,
}

/// A GC node: kind, containerd's string key, and the "flat" bit (a flat lease's
/// resources: reached, but their label references are not followed).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node {
    /// The resource kind.
    pub kind: Kind,
    /// The key (digest, `"<snapshotter>/<key>"`, ref, name, id).
    pub key: Vec<u8>,
    /// Whether this is the flat variant (`Resource* | 0x20`).
    pub flat: bool,
}

impl Node {
    /// A non-flat node.
    pub fn new(kind: Kind, key: &[u8]) -> Node {
        Node {
            kind,
            key: key.to_vec(),
            flat: false,
        }
    }

    /// A snapshot node `"<snapshotter>/<key>"`.
    pub fn snapshot(snapshotter: &[u8], key: &[u8]) -> Node {
        Node {
            kind: Kind::Snapshot,
            key: snapshot_key(snapshotter, key),
            flat: false,
        }
    }

    /// The same node with the flat bit set to `flat`.
    pub fn with_flat(mut self, flat: bool) -> Node {
        self.flat = flat;
        self
    }
}

/// containerd's snapshot node key: `fmt.Sprintf("%s/%s", snapshotter, key)`.
pub fn snapshot_key(snapshotter: &[u8], key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(snapshotter.len() + 1 + key.len());
    k.extend_from_slice(snapshotter);
    k.push(b'/');
    k.extend_from_slice(key);
    k
}

/// `key` is `prefix`, or `prefix` followed by `.` or `/`.
pub fn named(key: &[u8], prefix: &[u8]) -> bool {
    matches!(key.strip_prefix(prefix), Some([] | [b'.' | b'/', ..]))
}

/// The snapshotter named after `prefix` in `key` (up to the first `/`), if `key` has the prefix.
pub fn snapshotter_after<'k>(key: &'k [u8], prefix: &[u8]) -> Option<&'k [u8]> {
    let rest = key.strip_prefix(prefix)?;
    Some(rest.split(|c| *c == b'/').next().unwrap_or(rest))
}

/// Which reference labels are in effect.
#[derive(Debug, Clone, Copy)]
pub struct RefSyntax {
    /// 2.0+: `gc.ref.image` references images.
    pub image_refs: bool,
    /// 2.2+: `gc.root` is a prefix match.
    pub root_prefix: bool,
}

/// Forward references in `labels` (containerd's `sendLabelRefs` with `fn`).
pub fn forward_refs(labels: &Labels, syn: RefSyntax, out: &mut Vec<Node>) {
    for (k, v) in labels {
        let (k, v) = (k.0.as_slice(), v.0.as_slice());
        if named(k, REF_CONTENT) {
            out.push(Node::new(Kind::Content, v));
        } else if let Some(sn) = snapshotter_after(k, REF_SNAPSHOT) {
            out.push(Node::snapshot(sn, v));
        } else if syn.image_refs && named(k, REF_IMAGE) {
            out.push(Node::new(Kind::Image, v));
        }
    }
}

/// 2.2+ back references in `labels`: the parents that keep the labelled object.
pub fn back_refs(labels: &Labels, out: &mut Vec<Node>) {
    for (k, v) in labels {
        let (k, v) = (k.0.as_slice(), v.0.as_slice());
        if named(k, BREF_CONTAINER) {
            out.push(Node::new(Kind::Container, v));
        } else if named(k, BREF_CONTENT) {
            out.push(Node::new(Kind::Content, v));
        } else if named(k, BREF_IMAGE) {
            out.push(Node::new(Kind::Image, v));
        } else if let Some(sn) = snapshotter_after(k, BREF_SNAPSHOT) {
            out.push(Node::snapshot(sn, v));
        }
    }
}

/// Whether `labels` make a content blob or snapshot a root.
pub fn is_root(labels: &Labels, syn: RefSyntax) -> bool {
    if syn.root_prefix {
        labels
            .range(crate::report::ByteStr::new(GC_ROOT)..)
            .next()
            .is_some_and(|(k, _)| k.0.starts_with(GC_ROOT))
    } else {
        labels.contains_key(&crate::report::ByteStr::new(GC_ROOT))
    }
}

/// A label value, if present.
pub fn get<'l>(labels: &'l Labels, key: &[u8]) -> Option<&'l [u8]> {
    labels
        .get(&crate::report::ByteStr::new(key))
        .map(|v| v.0.as_slice())
}

/// A 2.3 "usedat" condition: keep the snapshot if `now - usedat` is less (`<`)
/// or greater (`>`) than the duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsedAt {
    /// `usedat<D`: used within the last D.
    Within(i128),
    /// `usedat>D`: last used more than D ago.
    OlderThan(i128),
}

impl UsedAt {
    /// Whether the condition holds for a snapshot used at `used` (ns), at `now` (ns).
    pub fn holds(self, used: i128, now: i128) -> bool {
        match self {
            UsedAt::Within(d) => now - used < d,
            UsedAt::OlderThan(d) => now - used > d,
        }
    }
}

/// 2.3 conditional snapshot references in `labels`:
/// `containerd.io/gc.cond.snapshot[./]<snapshotter>[/…] = cond[,cond…]|<key>`,
/// each `cond` `usedat<D` or `usedat>D` (others are ignored, as in containerd).
pub fn conditional_refs(labels: &Labels, out: &mut Vec<(Node, UsedAt)>) {
    for (k, v) in labels.range(crate::report::ByteStr::new(COND_SNAPSHOT)..) {
        let Some(rest) = k.0.strip_prefix(COND_SNAPSHOT) else {
            break;
        };
        let rest = {
            let n = rest
                .iter()
                .take_while(|c| **c == b'.' || **c == b'/')
                .count();
            rest.get(n..).unwrap_or_default()
        };
        let sn = rest.split(|c| *c == b'/').next().unwrap_or(rest);
        let Some(bar) = v.0.iter().position(|c| *c == b'|') else {
            continue;
        };
        let (conds, key) = (
            v.0.get(..bar).unwrap_or_default(),
            v.0.get(bar + 1..).unwrap_or_default(),
        );
        for c in conds.split(|c| *c == b',') {
            let Some(op_pos) = c.iter().position(|c| b"!<>=".contains(c)) else {
                continue;
            };
            let name = c.get(..op_pos).unwrap_or_default();
            let mut op = vec![c.get(op_pos).copied().unwrap_or_default()];
            let mut val = c.get(op_pos + 1..).unwrap_or_default();
            if let Some(r) = val.strip_prefix(b"=") {
                op.push(b'=');
                val = r;
            }
            if name != b"usedat" {
                continue;
            }
            let Some(d) = super::gotime::parse_duration(val) else {
                continue;
            };
            let cond = match op.as_slice() {
                b"<" => UsedAt::Within(d),
                b">" => UsedAt::OlderThan(d),
                _ => continue,
            };
            out.push((Node::snapshot(sn, key), cond));
        }
    }
}

/// 2.3: the parsable `containerd.io/gc.cond.value-usedat*` times on a snapshot (ns).
pub fn used_at_values(labels: &Labels) -> Vec<i128> {
    labels
        .range(crate::report::ByteStr::new(COND_VALUE_USEDAT)..)
        .take_while(|(k, _)| k.0.starts_with(COND_VALUE_USEDAT))
        .filter_map(|(_, v)| super::gotime::parse_rfc3339(&v.0))
        .collect()
}
