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

use std::borrow::Cow;

use crate::containerd::labels::*;
use crate::containerd::Labels;

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
/// resources: reached, but their label references are not followed). Keys
/// borrow from the decoded records.
///
/// A snapshot's containerd key is the string `"<snapshotter>/<key>"`, which
/// containerd splits at the first `/` when it looks the snapshot up. It is held
/// here split that same way (`key` before the first `/`, `rest` after), so two
/// nodes are equal exactly when their strings are; only a snapshotter name
/// that itself contains `/` needs a copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Node<'a> {
    /// The resource kind.
    pub kind: Kind,
    /// The key (digest, ref, name, id); for a snapshot, the snapshotter part.
    pub key: Cow<'a, [u8]>,
    /// For a snapshot, the snapshot key part; empty otherwise.
    pub rest: Cow<'a, [u8]>,
    /// Whether this is the flat variant (`Resource* | 0x20`).
    pub flat: bool,
}

impl<'a> Node<'a> {
    /// A non-flat node.
    pub fn new(kind: Kind, key: &'a [u8]) -> Node<'a> {
        Node {
            kind,
            key: Cow::Borrowed(key),
            rest: Cow::Borrowed(&[]),
            flat: false,
        }
    }

    /// A snapshot node `"<snapshotter>/<key>"`.
    pub fn snapshot(snapshotter: &'a [u8], key: &'a [u8]) -> Node<'a> {
        let (key, rest) = match snapshotter.iter().position(|c| *c == b'/') {
            None => (Cow::Borrowed(snapshotter), Cow::Borrowed(key)),
            Some(slash) => {
                let whole = snapshot_key(snapshotter, key);
                let head = whole.get(..slash).unwrap_or_default().to_vec();
                let tail = whole.get(slash + 1..).unwrap_or_default().to_vec();
                (Cow::Owned(head), Cow::Owned(tail))
            }
        };
        Node {
            kind: Kind::Snapshot,
            key,
            rest,
            flat: false,
        }
    }

    /// The same node with the flat bit set to `flat`.
    pub fn with_flat(mut self, flat: bool) -> Node<'a> {
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
pub fn forward_refs<'a>(labels: &Labels<'a>, syn: RefSyntax, out: &mut Vec<Node<'a>>) {
    if !labels.has_gc_labels() {
        return;
    }
    for (k, v) in labels {
        let (k, v) = (k.0, v.0);
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
pub fn back_refs<'a>(labels: &Labels<'a>, out: &mut Vec<Node<'a>>) {
    if !labels.has_gc_labels() {
        return;
    }
    for (k, v) in labels {
        let (k, v) = (k.0, v.0);
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
pub fn is_root(labels: &Labels<'_>, syn: RefSyntax) -> bool {
    if !labels.has_gc_labels() {
        return false;
    }
    if syn.root_prefix {
        labels.with_prefix(GC_ROOT).next().is_some()
    } else {
        labels.contains_key(GC_ROOT)
    }
}

/// A label value, if present.
pub fn get<'a>(labels: &Labels<'a>, key: &[u8]) -> Option<&'a [u8]> {
    // Every key asked for here is a GC label.
    if key.starts_with(GC_LABEL_PREFIX) && !labels.has_gc_labels() {
        return None;
    }
    labels.get(key).map(|v| v.0)
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
pub fn conditional_refs<'a>(labels: &Labels<'a>, out: &mut Vec<(Node<'a>, UsedAt)>) {
    if !labels.has_gc_labels() {
        return;
    }
    for (k, v) in labels.range_from(COND_SNAPSHOT) {
        let (k, v): (&'a [u8], &'a [u8]) = (k.0, v.0);
        let Some(rest) = k.strip_prefix(COND_SNAPSHOT) else {
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
        let Some(bar) = v.iter().position(|c| *c == b'|') else {
            continue;
        };
        let (conds, key) = (
            v.get(..bar).unwrap_or_default(),
            v.get(bar + 1..).unwrap_or_default(),
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
pub fn used_at_values(labels: &Labels<'_>) -> Vec<i128> {
    if !labels.has_gc_labels() {
        return Vec::new();
    }
    labels
        .with_prefix(COND_VALUE_USEDAT)
        .filter_map(|(_, v)| super::gotime::parse_rfc3339(v.0))
        .collect()
}
