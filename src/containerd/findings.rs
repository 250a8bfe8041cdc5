//! Schema findings: malformed records found while decoding, and cross-record
//! problems (dangling images, missing snapshots, broken parent/children links,
//! lease resources naming nothing). Each has a stable kebab-case code.

#![deny(clippy::indexing_slicing)]

use std::collections::{HashMap, HashSet};

use super::model::{Namespace, Snapshot, Snapshotter};
use crate::bolt::check::Severity;
use crate::bolt::{BucketPath, Corruption};
use crate::bytes::display;

/// What kind of schema problem was found. Codes are stable (`docs/report.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum SchemaCode {
    /// Structural corruption stopped decoding part of the tree.
    BucketUnreadable,
    /// A key where containerd never writes one — a plain key in a namespace or
    /// in `v1` (other than `version`), namespaces without `v1/version` — which
    /// a tree shows when one of its pages is stale or misplaced (an older
    /// version of the page, or another record's page, at its place).
    PageMisplaced,
    /// `v1/version` is missing (from a `v1` that holds no namespace).
    VersionMissing,
    /// `v1/version` is not a varint, or not a version containerd knows.
    VersionInvalid,
    /// A top-level bucket other than `v1` (and 1.7's `<ns>/sandboxes`).
    UnknownTopLevelBucket,
    /// A key under `v1`, a namespace or an object bucket that containerd does not write.
    UnknownKey,
    /// A non-bucket key under `images` (containerd's `List` would dereference a nil bucket).
    ImageNotBucket,
    /// An image without a `target` bucket: `List` fails for the whole namespace.
    ImageTargetMissing,
    /// An image target without digest, media type or a decodable size.
    ImageTargetInvalid,
    /// An image's `createdat`/`updatedat` cannot be decoded: `List` fails for the namespace.
    ImageTimeInvalid,
    /// An image's target digest has no content record in its namespace.
    ImageDangling,
    /// A record that should be a bucket is a plain key (or vice versa).
    RecordNotBucket,
    /// A field of a record could not be decoded (time, varint, protobuf Any).
    FieldInvalid,
    /// A container's snapshot does not exist.
    ContainerSnapshotMissing,
    /// A snapshot's parent does not exist.
    SnapshotParentMissing,
    /// A `children` list and the children's `parent` disagree.
    SnapshotChildrenMismatch,
    /// A lease resource names no existing object.
    LeaseResourceMissing,
}

impl SchemaCode {
    /// The stable kebab-case code.
    pub fn code(self) -> &'static str {
        match self {
            SchemaCode::BucketUnreadable => "schema-bucket-unreadable",
            SchemaCode::PageMisplaced => "schema-page-misplaced",
            SchemaCode::VersionMissing => "schema-version-missing",
            SchemaCode::VersionInvalid => "schema-version-invalid",
            SchemaCode::UnknownTopLevelBucket => "unknown-top-level-bucket",
            SchemaCode::UnknownKey => "unknown-key",
            SchemaCode::ImageNotBucket => "image-not-bucket",
            SchemaCode::ImageTargetMissing => "image-target-missing",
            SchemaCode::ImageTargetInvalid => "image-target-invalid",
            SchemaCode::ImageTimeInvalid => "image-time-invalid",
            SchemaCode::ImageDangling => "image-dangling",
            SchemaCode::RecordNotBucket => "record-not-bucket",
            SchemaCode::FieldInvalid => "field-invalid",
            SchemaCode::ContainerSnapshotMissing => "container-snapshot-missing",
            SchemaCode::SnapshotParentMissing => "snapshot-parent-missing",
            SchemaCode::SnapshotChildrenMismatch => "snapshot-children-mismatch",
            SchemaCode::LeaseResourceMissing => "lease-resource-missing",
        }
    }

    /// Whether the finding is damage to the file's structure (the bbolt tree)
    /// rather than to containerd's records: a result computed on the tree
    /// misses what the damage hides.
    pub fn is_structural(self) -> bool {
        matches!(
            self,
            SchemaCode::BucketUnreadable | SchemaCode::PageMisplaced
        )
    }

    /// The severity: `error` when containerd cannot use the file (or a whole
    /// namespace), `warning` otherwise.
    pub fn severity(self) -> Severity {
        match self {
            SchemaCode::BucketUnreadable
            | SchemaCode::PageMisplaced
            | SchemaCode::VersionInvalid
            | SchemaCode::ImageNotBucket
            | SchemaCode::ImageTargetMissing
            | SchemaCode::ImageTimeInvalid => Severity::Error,
            _ => Severity::Warning,
        }
    }
}

/// One schema finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaFinding {
    /// What.
    pub code: SchemaCode,
    /// The bucket path of the record (or of the bucket that could not be read).
    pub path: BucketPath,
    /// Page id, for structural corruption.
    pub page: Option<u64>,
    /// File offset, for structural corruption.
    pub offset: Option<u64>,
    /// Description.
    pub message: String,
}

impl SchemaFinding {
    /// A finding at `path`.
    pub fn new(code: SchemaCode, path: &BucketPath, message: impl Into<String>) -> Self {
        SchemaFinding {
            code,
            path: path.clone(),
            page: None,
            offset: None,
            message: message.into(),
        }
    }

    /// A structural corruption met while decoding the bucket at `path`.
    pub fn unreadable(path: &BucketPath, c: &Corruption) -> Self {
        SchemaFinding {
            code: SchemaCode::BucketUnreadable,
            path: path.clone(),
            page: c.page,
            offset: c.offset,
            message: format!("cannot read bucket: {} ({})", c.message, c.kind.code()),
        }
    }

    /// The severity of its code.
    pub fn severity(&self) -> Severity {
        self.code.severity()
    }
}

fn ns_path(ns: &Namespace<'_>, rest: &[&[u8]]) -> BucketPath {
    let mut v = vec![b"v1".to_vec(), ns.name.0.to_vec()];
    v.extend(rest.iter().map(|c| c.to_vec()));
    BucketPath(v)
}

/// A parent with more children than this has them looked up in a hash set.
const MANY_CHILDREN: usize = 16;

/// Lookups in one snapshotter's snapshots for the parent/children checks: by hash
/// when the keys are unique and in order (as bolt stores them), so the answer is
/// the one binary search gives; otherwise by [`Snapshotter::get`].
struct SnapshotIndex<'r, 'a> {
    s: &'r Snapshotter<'a>,
    /// Key → snapshot, when the keys are strictly increasing.
    by_key: Option<HashMap<&'a [u8], &'r Snapshot<'a>>>,
    /// (parent, child) for every parent listing more than [`MANY_CHILDREN`]
    /// children, when the keys are unique.
    edges: HashSet<(&'a [u8], &'a [u8])>,
}

impl<'r, 'a> SnapshotIndex<'r, 'a> {
    fn new(s: &'r Snapshotter<'a>) -> Self {
        let unique = s
            .snapshots
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.key.0 < b.key.0));
        let by_key = unique.then(|| s.snapshots.iter().map(|x| (x.key.0, x)).collect());
        let edges = s
            .snapshots
            .iter()
            .filter(|x| unique && x.children.len() > MANY_CHILDREN)
            .flat_map(|x| x.children.iter().map(move |c| (x.key.0, c.0)))
            .collect();
        SnapshotIndex { s, by_key, edges }
    }

    fn get(&self, key: &[u8]) -> Option<&'r Snapshot<'a>> {
        match &self.by_key {
            Some(m) => m.get(key).copied(),
            None => self.s.get(key),
        }
    }

    /// Whether `parent`'s `children` list `child`.
    fn lists_child(&self, parent: &Snapshot<'a>, child: &[u8]) -> bool {
        if self.by_key.is_some() && parent.children.len() > MANY_CHILDREN {
            self.edges.contains(&(parent.key.0, child))
        } else {
            parent.children.iter().any(|c| c.0 == child)
        }
    }
}

/// Cross-record checks within one namespace.
pub fn cross_check(ns: &Namespace<'_>, out: &mut Vec<SchemaFinding>) {
    for img in &ns.images {
        if let Some(d) = img.target_digest() {
            if ns.blob(d.0).is_none() {
                out.push(SchemaFinding::new(
                    SchemaCode::ImageDangling,
                    &ns_path(ns, &[b"images", img.name.0]),
                    format!(
                        "image {} targets {}, which has no content record in namespace {}",
                        display(img.name.0),
                        display(d.0),
                        display(ns.name.0)
                    ),
                ));
            }
        }
    }
    for c in &ns.containers {
        let (Some(sn), Some(key)) = (&c.snapshotter, &c.snapshot_key) else {
            continue;
        };
        if sn.0.is_empty() || key.0.is_empty() {
            continue;
        }
        if ns.snapshot(sn.0, key.0).is_none() {
            out.push(SchemaFinding::new(
                SchemaCode::ContainerSnapshotMissing,
                &ns_path(ns, &[b"containers", c.id.0]),
                format!(
                    "container {} uses snapshot {}/{}, which does not exist",
                    display(c.id.0),
                    display(sn.0),
                    display(key.0)
                ),
            ));
        }
    }
    for s in &ns.snapshotters {
        let idx = SnapshotIndex::new(s);
        for snap in &s.snapshots {
            let path = || ns_path(ns, &[b"snapshots", s.name.0, snap.key.0]);
            if let Some(p) = &snap.parent {
                match idx.get(p.0) {
                    None => out.push(SchemaFinding::new(
                        SchemaCode::SnapshotParentMissing,
                        &path(),
                        format!(
                            "snapshot {}/{} has parent {}, which does not exist",
                            display(s.name.0),
                            display(snap.key.0),
                            display(p.0)
                        ),
                    )),
                    Some(parent) => {
                        if !idx.lists_child(parent, snap.key.0) {
                            out.push(SchemaFinding::new(
                                SchemaCode::SnapshotChildrenMismatch,
                                &path(),
                                format!(
                                    "snapshot {}/{} names parent {}, whose children do not list it",
                                    display(s.name.0),
                                    display(snap.key.0),
                                    display(p.0)
                                ),
                            ));
                        }
                    }
                }
            }
            for child in &snap.children {
                let ok = idx
                    .get(child.0)
                    .is_some_and(|c| c.parent.as_ref().is_some_and(|p| p.0 == snap.key.0));
                if !ok {
                    out.push(SchemaFinding::new(
                        SchemaCode::SnapshotChildrenMismatch,
                        &path(),
                        format!("snapshot {}/{} lists child {}, which does not exist or has another parent", display(s.name.0), display(snap.key.0), display(child.0)),
                    ));
                }
            }
        }
    }
    let ingests: HashSet<&[u8]> = ns.ingests.iter().map(|i| i.ref_.0).collect();
    for l in &ns.leases {
        let mut missing = Vec::new();
        missing.extend(
            l.content
                .iter()
                .filter(|d| ns.blob(d.0).is_none())
                .map(|d| format!("content {}", display(d.0))),
        );
        missing.extend(
            l.ingests
                .iter()
                .filter(|r| !ingests.contains(r.0))
                .map(|r| format!("ingest {}", display(r.0))),
        );
        missing.extend(
            l.snapshots
                .iter()
                .filter(|(sn, k)| ns.snapshot(sn.0, k.0).is_none())
                .map(|(sn, k)| format!("snapshot {}/{}", display(sn.0), display(k.0))),
        );
        missing.extend(
            l.images
                .iter()
                .filter(|n| ns.image(n.0).is_none())
                .map(|n| format!("image {}", display(n.0))),
        );
        for m in missing {
            out.push(SchemaFinding::new(
                SchemaCode::LeaseResourceMissing,
                &ns_path(ns, &[b"leases", l.id.0]),
                format!("lease {} holds {m}, which does not exist", display(l.id.0)),
            ));
        }
    }
}
