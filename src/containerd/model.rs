//! Typed records of containerd's metadata schema (`containerd-metadb.md` §3.3).
//! Names, keys and label values stay raw bytes ([`ByteStr`]); a field that is
//! absent or could not be decoded is `None` and has a finding next to it.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::encoding::{AnyValue, Timestamp};
use crate::report::ByteStr;

/// A label or annotation map (`labels`, `annotations` buckets), ordered by key.
pub type Labels = BTreeMap<ByteStr, ByteStr>;

/// Serializes a [`Labels`] map as a JSON object. A key that is not UTF-8 is
/// written as `"\u0000b64:<base64>"` (documented in `docs/report.md`).
pub fn serialize_labels<S: Serializer>(m: &Labels, s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for (k, v) in m {
        match std::str::from_utf8(&k.0) {
            Ok(t) => map.serialize_entry(t, v)?,
            Err(_) => map.serialize_entry(
                &format!(
                    "\u{0}b64:{}",
                    base64::engine::general_purpose::STANDARD.encode(&k.0)
                ),
                v,
            )?,
        }
    }
    map.end()
}

impl Serialize for AnyValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Any", 2)?;
        st.serialize_field("typeUrl", &ByteStr(self.type_url.clone()))?;
        st.serialize_field("valueSize", &self.value.len())?;
        st.end()
    }
}

/// An image target descriptor (`images/<name>/target`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// `digest`, e.g. `sha256:…` (empty if missing).
    pub digest: ByteStr,
    /// `mediatype` (empty if missing).
    pub media_type: ByteStr,
    /// `size` (zig-zag varint); 0 if missing or undecodable.
    pub size: i64,
}

/// An image record `v1/<ns>/images/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The record's name (the bucket key).
    pub name: ByteStr,
    /// The target, `None` when the `target` bucket is missing.
    pub target: Option<Target>,
    /// Whether the target has a digest, media type and decodable size.
    #[serde(skip)]
    pub target_valid: bool,
    /// Image labels.
    #[serde(serialize_with = "serialize_labels")]
    pub labels: Labels,
    /// Target annotations (stored beside `target`).
    #[serde(serialize_with = "serialize_labels")]
    pub annotations: Labels,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

impl Image {
    /// The target digest, if the target bucket exists and has one.
    pub fn target_digest(&self) -> Option<&ByteStr> {
        self.target
            .as_ref()
            .map(|t| &t.digest)
            .filter(|d| !d.0.is_empty())
    }
}

/// A content blob record `v1/<ns>/content/blob/<digest>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    /// The digest (bucket key).
    pub digest: ByteStr,
    /// `size`.
    pub size: Option<i64>,
    /// Labels (`containerd.io/gc.ref.*` children live here).
    #[serde(serialize_with = "serialize_labels")]
    pub labels: Labels,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// An ingest record `v1/<ns>/content/ingests/<ref>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ingest {
    /// The ingest ref (bucket key).
    pub ref_: ByteStr,
    /// `ref`: the backend ref `<ns>/<seq>/<ref>`.
    pub backend_ref: Option<ByteStr>,
    /// `expireat`.
    pub expire_at: Option<Timestamp>,
    /// `expected` digest.
    pub expected: Option<ByteStr>,
    /// The bucket's sequence (backend ref counter).
    pub sequence: u64,
}

/// A container's runtime (`containers/<id>/runtime`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Runtime {
    /// `name`.
    pub name: Option<ByteStr>,
    /// `options` (protobuf Any).
    pub options: Option<AnyValue>,
}

/// A container record `v1/<ns>/containers/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// The id (bucket key).
    pub id: ByteStr,
    /// `image`: an image NAME (empty for CRI).
    pub image: Option<ByteStr>,
    /// `snapshotter`.
    pub snapshotter: Option<ByteStr>,
    /// `snapshotKey`.
    pub snapshot_key: Option<ByteStr>,
    /// `sandboxid` (1.7+).
    pub sandbox_id: Option<ByteStr>,
    /// `runtime`.
    pub runtime: Option<Runtime>,
    /// `spec` (protobuf Any).
    pub spec: Option<AnyValue>,
    /// `extensions/<name>`.
    pub extensions: BTreeMap<ByteStr, AnyValue>,
    /// Labels.
    #[serde(serialize_with = "serialize_labels")]
    pub labels: Labels,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// A snapshot record `v1/<ns>/snapshots/<snapshotter>/<key>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The metadata key (bucket key).
    pub key: ByteStr,
    /// `name`: the backend key `<ns>/<seq>/<key>`.
    pub name: Option<ByteStr>,
    /// `parent`: the parent's metadata key.
    pub parent: Option<ByteStr>,
    /// Keys of `children`.
    pub children: Vec<ByteStr>,
    /// Labels.
    #[serde(serialize_with = "serialize_labels")]
    pub labels: Labels,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// One snapshotter bucket `v1/<ns>/snapshots/<snapshotter>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshotter {
    /// The snapshotter's name.
    pub name: ByteStr,
    /// The bucket sequence (backend key counter; must never be reset).
    pub sequence: u64,
    /// Snapshots in key order.
    pub snapshots: Vec<Snapshot>,
}

impl Snapshotter {
    /// Finds a snapshot by key (binary search; the list is in key order).
    pub fn get(&self, key: &[u8]) -> Option<&Snapshot> {
        self.snapshots
            .binary_search_by(|s| s.key.0.as_slice().cmp(key))
            .ok()
            .and_then(|i| self.snapshots.get(i))
    }
}

/// A lease record `v1/<ns>/leases/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// The id (bucket key).
    pub id: ByteStr,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// Labels (`containerd.io/gc.expire`, `containerd.io/gc.flat`).
    #[serde(serialize_with = "serialize_labels")]
    pub labels: Labels,
    /// `content/<digest>`.
    pub content: Vec<ByteStr>,
    /// `snapshots/<snapshotter>/<key>` as (snapshotter, key).
    pub snapshots: Vec<(ByteStr, ByteStr)>,
    /// `ingests/<ref>`.
    pub ingests: Vec<ByteStr>,
    /// `images/<name>` (2.x).
    pub images: Vec<ByteStr>,
}

/// Where a sandbox record lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SandboxLocation {
    /// 2.x: `v1/<ns>/sandboxes`.
    V1,
    /// 1.7: the top-level `<ns>/sandboxes`.
    TopLevel,
}

/// A sandbox record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    /// The id (bucket key).
    pub id: ByteStr,
    /// Where it was found.
    pub location: SandboxLocation,
    /// `sandboxer` (2.x).
    pub sandboxer: Option<ByteStr>,
    /// `runtime`.
    pub runtime: Option<Runtime>,
    /// `spec`.
    pub spec: Option<AnyValue>,
    /// `extensions/<name>`.
    pub extensions: BTreeMap<ByteStr, AnyValue>,
    /// Labels.
    #[serde(serialize_with = "serialize_labels")]
    pub labels: Labels,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
}

/// Everything in one namespace, each list in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Namespace {
    /// The namespace name.
    pub name: ByteStr,
    /// Whether `v1/<ns>` exists (false for a 1.7 top-level-only sandbox namespace).
    pub in_v1: bool,
    /// Namespace labels.
    #[serde(serialize_with = "serialize_labels")]
    pub labels: Labels,
    /// Images.
    pub images: Vec<Image>,
    /// Content blobs.
    pub blobs: Vec<Blob>,
    /// Ingests.
    pub ingests: Vec<Ingest>,
    /// Containers.
    pub containers: Vec<Container>,
    /// Snapshotters with their snapshots.
    pub snapshotters: Vec<Snapshotter>,
    /// Leases.
    pub leases: Vec<Lease>,
    /// Sandboxes (both locations, V1 first).
    pub sandboxes: Vec<Sandbox>,
}

impl Namespace {
    /// Finds an image by name.
    pub fn image(&self, name: &[u8]) -> Option<&Image> {
        self.images
            .binary_search_by(|i| i.name.0.as_slice().cmp(name))
            .ok()
            .and_then(|i| self.images.get(i))
    }

    /// Finds a content blob by digest.
    pub fn blob(&self, digest: &[u8]) -> Option<&Blob> {
        self.blobs
            .binary_search_by(|b| b.digest.0.as_slice().cmp(digest))
            .ok()
            .and_then(|i| self.blobs.get(i))
    }

    /// Finds a snapshotter by name.
    pub fn snapshotter(&self, name: &[u8]) -> Option<&Snapshotter> {
        self.snapshotters.iter().find(|s| s.name.0 == name)
    }

    /// Finds a snapshot.
    pub fn snapshot(&self, snapshotter: &[u8], key: &[u8]) -> Option<&Snapshot> {
        self.snapshotter(snapshotter).and_then(|s| s.get(key))
    }

    /// Number of snapshots over all snapshotters.
    pub fn snapshot_count(&self) -> usize {
        self.snapshotters.iter().map(|s| s.snapshots.len()).sum()
    }

    /// Every label map in the namespace with a description of its owner:
    /// namespace, images, blobs, containers, snapshots, leases, sandboxes.
    pub fn all_labels(&self) -> Vec<(String, &Labels)> {
        let mut v: Vec<(String, &Labels)> = vec![("namespace".into(), &self.labels)];
        v.extend(
            self.images
                .iter()
                .map(|i| (format!("image {}", show(&i.name.0)), &i.labels)),
        );
        v.extend(
            self.blobs
                .iter()
                .map(|b| (format!("content {}", show(&b.digest.0)), &b.labels)),
        );
        v.extend(
            self.containers
                .iter()
                .map(|c| (format!("container {}", show(&c.id.0)), &c.labels)),
        );
        for s in &self.snapshotters {
            v.extend(s.snapshots.iter().map(|x| {
                (
                    format!("snapshot {}/{}", show(&s.name.0), show(&x.key.0)),
                    &x.labels,
                )
            }));
        }
        v.extend(
            self.leases
                .iter()
                .map(|l| (format!("lease {}", show(&l.id.0)), &l.labels)),
        );
        v.extend(
            self.sandboxes
                .iter()
                .map(|s| (format!("sandbox {}", show(&s.id.0)), &s.labels)),
        );
        v
    }
}

/// Bytes for a message: UTF-8 as is, otherwise escaped.
pub fn show(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.escape_ascii().to_string(),
    }
}
