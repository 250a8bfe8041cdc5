//! Typed records of containerd's metadata schema (`containerd-metadb.md` §3.3).
//! Names, keys and label values stay raw bytes borrowed from the database file
//! ([`Bytes`]); a field that is absent or could not be decoded is `None` and has a
//! finding next to it.

#![deny(clippy::indexing_slicing)]

use std::collections::BTreeMap;

use super::encoding::{AnyValue, Timestamp};
use super::labels::{GC_LABEL_PREFIX, IMAGE_REF_LABEL_PREFIXES};
use crate::bytes::display;
pub use crate::bytes::Bytes;

/// [`Labels`] summary bit: some key starts with [`GC_LABEL_PREFIX`].
const HAS_GC: u8 = 1;
/// [`Labels`] summary bit: some key starts with one of [`IMAGE_REF_LABEL_PREFIXES`].
const HAS_IMAGE_REF: u8 = 2;

/// A label or annotation map (`labels`, `annotations` buckets): pairs borrowed
/// from the file, sorted by key, keys unique. Lookups are binary searches. It
/// notes while it is built (when the keys are in cache) whether any key is a
/// GC label, so the scans for those skip the other maps without reading them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels<'a> {
    pairs: Box<[(Bytes<'a>, Bytes<'a>)]>,
    flags: u8,
}

impl<'a> Labels<'a> {
    /// An empty map.
    pub fn new() -> Self {
        Labels::default()
    }

    /// Builds the map from pairs in any order; for a repeated key the last
    /// value wins (as inserting into a map would).
    pub fn from_pairs(mut v: Vec<(Bytes<'a>, Bytes<'a>)>) -> Self {
        if !v.windows(2).all(|w| matches!(w, [a, b] if a.0 < b.0)) {
            v.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep their order
            let mut out: Vec<(Bytes<'a>, Bytes<'a>)> = Vec::with_capacity(v.len());
            for p in v {
                match out.last_mut() {
                    Some(last) if last.0 == p.0 => *last = p,
                    _ => out.push(p),
                }
            }
            v = out;
        }
        let mut flags = 0;
        for (k, _) in &v {
            if k.0.starts_with(GC_LABEL_PREFIX) {
                flags |= HAS_GC;
                if IMAGE_REF_LABEL_PREFIXES.iter().any(|p| k.0.starts_with(p)) {
                    flags |= HAS_IMAGE_REF;
                }
            }
        }
        Labels {
            pairs: v.into_boxed_slice(),
            flags,
        }
    }

    /// Whether some key starts with [`GC_LABEL_PREFIX`] (`containerd.io/gc.`).
    pub fn has_gc_labels(&self) -> bool {
        self.flags & HAS_GC != 0
    }

    /// Whether some key starts with one of [`IMAGE_REF_LABEL_PREFIXES`].
    pub fn has_image_ref_labels(&self) -> bool {
        self.flags & HAS_IMAGE_REF != 0
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// No labels.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs in key order.
    pub fn iter(&self) -> std::slice::Iter<'_, (Bytes<'a>, Bytes<'a>)> {
        self.pairs.iter()
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = Bytes<'a>> + '_ {
        self.pairs.iter().map(|(k, _)| *k)
    }

    /// The value of `key`.
    pub fn get(&self, key: &[u8]) -> Option<Bytes<'a>> {
        self.pairs
            .binary_search_by(|(k, _)| k.0.cmp(key))
            .ok()
            .and_then(|i| self.pairs.get(i))
            .map(|(_, v)| *v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// The pairs with keys `>= from`, in key order.
    pub fn range_from(&self, from: &[u8]) -> std::slice::Iter<'_, (Bytes<'a>, Bytes<'a>)> {
        let i = self.pairs.partition_point(|(k, _)| k.0 < from);
        self.pairs.get(i..).unwrap_or_default().iter()
    }

    /// The pairs whose key starts with `prefix`, in key order.
    pub fn with_prefix<'s>(
        &'s self,
        prefix: &'s [u8],
    ) -> impl Iterator<Item = &'s (Bytes<'a>, Bytes<'a>)> + 's {
        self.range_from(prefix)
            .take_while(move |(k, _)| k.0.starts_with(prefix))
    }
}

impl<'l, 'a> IntoIterator for &'l Labels<'a> {
    type Item = &'l (Bytes<'a>, Bytes<'a>);
    type IntoIter = std::slice::Iter<'l, (Bytes<'a>, Bytes<'a>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.pairs.iter()
    }
}

impl<'a> FromIterator<(Bytes<'a>, Bytes<'a>)> for Labels<'a> {
    fn from_iter<I: IntoIterator<Item = (Bytes<'a>, Bytes<'a>)>>(it: I) -> Self {
        Labels::from_pairs(it.into_iter().collect())
    }
}

/// An image target descriptor (`images/<name>/target`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target<'a> {
    /// `digest`, e.g. `sha256:…` (empty if missing).
    pub digest: Bytes<'a>,
    /// `mediatype` (empty if missing).
    pub media_type: Bytes<'a>,
    /// `size` (zig-zag varint); 0 if missing or undecodable.
    pub size: i64,
}

/// An image record `v1/<ns>/images/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image<'a> {
    /// The record's name (the bucket key).
    pub name: Bytes<'a>,
    /// The target, `None` when the `target` bucket is missing.
    pub target: Option<Target<'a>>,
    /// Whether the target has a digest, media type and decodable size.
    pub target_valid: bool,
    /// Image labels.
    pub labels: Labels<'a>,
    /// Target annotations (stored beside `target`).
    pub annotations: Labels<'a>,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

impl<'a> Image<'a> {
    /// The target digest, if the target bucket exists and has one.
    pub fn target_digest(&self) -> Option<Bytes<'a>> {
        self.target
            .as_ref()
            .map(|t| t.digest)
            .filter(|d| !d.0.is_empty())
    }
}

/// A content blob record `v1/<ns>/content/blob/<digest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob<'a> {
    /// The digest (bucket key).
    pub digest: Bytes<'a>,
    /// `size`.
    pub size: Option<i64>,
    /// Labels (`containerd.io/gc.ref.*` children live here).
    pub labels: Labels<'a>,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// An ingest record `v1/<ns>/content/ingests/<ref>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingest<'a> {
    /// The ingest ref (bucket key).
    pub ref_: Bytes<'a>,
    /// `ref`: the backend ref `<ns>/<seq>/<ref>`.
    pub backend_ref: Option<Bytes<'a>>,
    /// `expireat`.
    pub expire_at: Option<Timestamp>,
    /// `expected` digest.
    pub expected: Option<Bytes<'a>>,
    /// The bucket's sequence (backend ref counter).
    pub sequence: u64,
}

/// A container's runtime (`containers/<id>/runtime`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Runtime<'a> {
    /// `name`.
    pub name: Option<Bytes<'a>>,
    /// `options` (protobuf Any).
    pub options: Option<AnyValue<'a>>,
}

/// A container record `v1/<ns>/containers/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container<'a> {
    /// The id (bucket key).
    pub id: Bytes<'a>,
    /// `image`: an image NAME (empty for CRI).
    pub image: Option<Bytes<'a>>,
    /// `snapshotter`.
    pub snapshotter: Option<Bytes<'a>>,
    /// `snapshotKey`.
    pub snapshot_key: Option<Bytes<'a>>,
    /// `sandboxid` (1.7+).
    pub sandbox_id: Option<Bytes<'a>>,
    /// `runtime`.
    pub runtime: Option<Runtime<'a>>,
    /// `spec` (protobuf Any).
    pub spec: Option<AnyValue<'a>>,
    /// `extensions/<name>`.
    pub extensions: BTreeMap<Bytes<'a>, AnyValue<'a>>,
    /// Labels.
    pub labels: Labels<'a>,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// A snapshot record `v1/<ns>/snapshots/<snapshotter>/<key>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot<'a> {
    /// The metadata key (bucket key).
    pub key: Bytes<'a>,
    /// `name`: the backend key `<ns>/<seq>/<key>`.
    pub name: Option<Bytes<'a>>,
    /// `parent`: the parent's metadata key.
    pub parent: Option<Bytes<'a>>,
    /// Keys of `children`.
    pub children: Vec<Bytes<'a>>,
    /// Labels.
    pub labels: Labels<'a>,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// One snapshotter bucket `v1/<ns>/snapshots/<snapshotter>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshotter<'a> {
    /// The snapshotter's name.
    pub name: Bytes<'a>,
    /// The bucket sequence (backend key counter; must never be reset).
    pub sequence: u64,
    /// Snapshots in key order.
    pub snapshots: Vec<Snapshot<'a>>,
}

/// The position of the record whose key (`key_of`) is `key` in a decoded list,
/// which is in key order (the decoder guarantees it): a binary search.
pub fn position_by_key<T>(list: &[T], key: &[u8], key_of: impl Fn(&T) -> &[u8]) -> Option<usize> {
    list.binary_search_by(|x| key_of(x).cmp(key)).ok()
}

impl<'a> Snapshotter<'a> {
    /// Finds a snapshot by key.
    pub fn get(&self, key: &[u8]) -> Option<&Snapshot<'a>> {
        position_by_key(&self.snapshots, key, |s| s.key.0).and_then(|i| self.snapshots.get(i))
    }
}

/// A lease record `v1/<ns>/leases/<id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease<'a> {
    /// The id (bucket key).
    pub id: Bytes<'a>,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// Labels (`containerd.io/gc.expire`, `containerd.io/gc.flat`).
    pub labels: Labels<'a>,
    /// `content/<digest>`.
    pub content: Vec<Bytes<'a>>,
    /// `snapshots/<snapshotter>/<key>` as (snapshotter, key).
    pub snapshots: Vec<(Bytes<'a>, Bytes<'a>)>,
    /// `ingests/<ref>`.
    pub ingests: Vec<Bytes<'a>>,
    /// `images/<name>` (2.x).
    pub images: Vec<Bytes<'a>>,
}

/// Where a sandbox record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxLocation {
    /// 2.x: `v1/<ns>/sandboxes`.
    V1,
    /// 1.7: the top-level `<ns>/sandboxes`.
    TopLevel,
}

/// A sandbox record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox<'a> {
    /// The id (bucket key).
    pub id: Bytes<'a>,
    /// Where it was found.
    pub location: SandboxLocation,
    /// `sandboxer` (2.x).
    pub sandboxer: Option<Bytes<'a>>,
    /// `runtime`.
    pub runtime: Option<Runtime<'a>>,
    /// `spec`.
    pub spec: Option<AnyValue<'a>>,
    /// `extensions/<name>`.
    pub extensions: BTreeMap<Bytes<'a>, AnyValue<'a>>,
    /// Labels.
    pub labels: Labels<'a>,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// Everything in one namespace, each list in key order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Namespace<'a> {
    /// The namespace name.
    pub name: Bytes<'a>,
    /// Whether `v1/<ns>` exists (false for a 1.7 top-level-only sandbox namespace).
    pub in_v1: bool,
    /// Namespace labels.
    pub labels: Labels<'a>,
    /// Images.
    pub images: Vec<Image<'a>>,
    /// Content blobs.
    pub blobs: Vec<Blob<'a>>,
    /// Ingests.
    pub ingests: Vec<Ingest<'a>>,
    /// Containers.
    pub containers: Vec<Container<'a>>,
    /// Snapshotters with their snapshots.
    pub snapshotters: Vec<Snapshotter<'a>>,
    /// Leases.
    pub leases: Vec<Lease<'a>>,
    /// Sandboxes (both locations, V1 first).
    pub sandboxes: Vec<Sandbox<'a>>,
}

impl<'a> Namespace<'a> {
    /// Finds an image by name.
    pub fn image(&self, name: &[u8]) -> Option<&Image<'a>> {
        position_by_key(&self.images, name, |i| i.name.0).and_then(|i| self.images.get(i))
    }

    /// Finds a content blob by digest.
    pub fn blob(&self, digest: &[u8]) -> Option<&Blob<'a>> {
        position_by_key(&self.blobs, digest, |b| b.digest.0).and_then(|i| self.blobs.get(i))
    }

    /// Finds a snapshotter by name.
    pub fn snapshotter(&self, name: &[u8]) -> Option<&Snapshotter<'a>> {
        self.snapshotters.iter().find(|s| s.name.0 == name)
    }

    /// Finds a snapshot.
    pub fn snapshot(&self, snapshotter: &[u8], key: &[u8]) -> Option<&Snapshot<'a>> {
        self.snapshotter(snapshotter).and_then(|s| s.get(key))
    }

    /// Number of snapshots over all snapshotters.
    pub fn snapshot_count(&self) -> usize {
        self.snapshotters.iter().map(|s| s.snapshots.len()).sum()
    }

    /// Every label map in the namespace with its owner: namespace, images,
    /// blobs, containers, snapshots, leases, sandboxes (in that order).
    pub fn all_labels(&self) -> impl Iterator<Item = (LabelOwner<'a>, &Labels<'a>)> + '_ {
        std::iter::once((LabelOwner::Namespace, &self.labels))
            .chain(
                self.images
                    .iter()
                    .map(|i| (LabelOwner::Image(i.name.0), &i.labels)),
            )
            .chain(
                self.blobs
                    .iter()
                    .map(|b| (LabelOwner::Content(b.digest.0), &b.labels)),
            )
            .chain(
                self.containers
                    .iter()
                    .map(|c| (LabelOwner::Container(c.id.0), &c.labels)),
            )
            .chain(self.snapshotters.iter().flat_map(|s| {
                s.snapshots
                    .iter()
                    .map(move |x| (LabelOwner::Snapshot(s.name.0, x.key.0), &x.labels))
            }))
            .chain(
                self.leases
                    .iter()
                    .map(|l| (LabelOwner::Lease(l.id.0), &l.labels)),
            )
            .chain(
                self.sandboxes
                    .iter()
                    .map(|s| (LabelOwner::Sandbox(s.id.0), &s.labels)),
            )
    }
}

/// The record a label map belongs to; displayed as `image <name>`,
/// `snapshot <snapshotter>/<key>`, `namespace`, ...
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelOwner<'a> {
    /// The namespace's own labels.
    Namespace,
    /// An image by name.
    Image(&'a [u8]),
    /// A content blob by digest.
    Content(&'a [u8]),
    /// A container by id.
    Container(&'a [u8]),
    /// A snapshot (snapshotter, key).
    Snapshot(&'a [u8], &'a [u8]),
    /// A lease by id.
    Lease(&'a [u8]),
    /// A sandbox by id.
    Sandbox(&'a [u8]),
}

impl std::fmt::Display for LabelOwner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelOwner::Namespace => f.write_str("namespace"),
            LabelOwner::Image(n) => write!(f, "image {}", display(n)),
            LabelOwner::Content(d) => write!(f, "content {}", display(d)),
            LabelOwner::Container(c) => write!(f, "container {}", display(c)),
            LabelOwner::Snapshot(s, k) => write!(f, "snapshot {}/{}", display(s), display(k)),
            LabelOwner::Lease(l) => write!(f, "lease {}", display(l)),
            LabelOwner::Sandbox(s) => write!(f, "sandbox {}", display(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&'static str, &'static str)]) -> Labels<'static> {
        Labels::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| (Bytes(k.as_bytes()), Bytes(v.as_bytes())))
                .collect(),
        )
    }

    #[test]
    fn labels_sort_and_keep_the_last_duplicate_like_a_map() {
        let m = l(&[("b", "1"), ("a", "2"), ("b", "3"), ("c", "4")]);
        let got: Vec<(&[u8], &[u8])> = m.iter().map(|(k, v)| (k.0, v.0)).collect();
        assert_eq!(got, [(&b"a"[..], &b"2"[..]), (b"b", b"3"), (b"c", b"4")]);
        assert_eq!(m.get(b"b"), Some(Bytes(b"3")));
        assert_eq!(m.get(b"x"), None);
        assert!(m.contains_key(b"c"));
        let p = l(&[("gc.x", "1"), ("gc", "0"), ("gc.y", "2"), ("gd", "3")]);
        let ks: Vec<&[u8]> = p.with_prefix(b"gc.").map(|(k, _)| k.0).collect();
        assert_eq!(ks, [&b"gc.x"[..], b"gc.y"]);
        assert_eq!(p.range_from(b"gc.y").count(), 2);
        assert!(Labels::new().with_prefix(b"").next().is_none());
    }
}
