//! The shape of containerd's bucket trees, level by level, for salvage: which
//! keys a page may hold at each place (so a page in the wrong place is seen
//! even when the format allows it) and where a record starts (the unit a
//! repair takes whole or reports lost).
//!
//! Two trees are known: the metadata database (`meta.db`, `containerd-metadb.md`
//! §3) and a snapshotter's database (`snapshots/storage`: `v1/snapshots/<key>`,
//! `v1/parents`). Everything else is [`Level::Other`]: no judgement, and every
//! key its own unit.

use crate::bolt::salvage::{PageJudge, PageKeys};
use crate::bolt::{BucketPath, PageKind};

use super::kind::{DbKind, SNAPSHOTTER_BUCKETS};

/// The kinds of records: the unit a repair keeps whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// `v1/<ns>/images/<name>`.
    Image,
    /// `v1/<ns>/containers/<id>`.
    Container,
    /// `v1/<ns>/content/blob/<digest>`.
    Content,
    /// `v1/<ns>/content/ingests/<ref>`.
    Ingest,
    /// `v1/<ns>/snapshots/<snapshotter>/<key>`.
    Snapshot,
    /// `v1/<ns>/leases/<id>`.
    Lease,
    /// `v1/<ns>/sandboxes/<id>` (and 1.7's top-level sandboxes).
    Sandbox,
    /// `v1/<ns>/labels`: the namespace's labels, one record.
    NamespaceLabels,
    /// A snapshotter database's `v1/snapshots/<key>`.
    StorageSnapshot,
}

impl RecordKind {
    /// The wire name (as `carve` and `repair` report it).
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Image => "image",
            RecordKind::Container => "container",
            RecordKind::Content => "content",
            RecordKind::Ingest => "ingest",
            RecordKind::Snapshot => "snapshot",
            RecordKind::Lease => "lease",
            RecordKind::Sandbox => "sandbox",
            RecordKind::NamespaceLabels => "namespace",
            RecordKind::StorageSnapshot => "snapshot",
        }
    }

    /// The keys containerd writes with every record of the kind: a record
    /// whose root page holds the whole record (a leaf) and lacks one is a page
    /// in the wrong place. (Images always have a `target`, containers a
    /// `runtime`, content blobs a `size`, snapshots the backend `name`; a
    /// snapshotter's snapshot its `id` and `kind`, which `putSnapshot` writes
    /// with the timestamps.)
    pub fn required_keys(self) -> &'static [&'static [u8]] {
        match self {
            RecordKind::Image => &[b"createdat", b"target"],
            RecordKind::Container => &[b"createdat", b"runtime"],
            RecordKind::Content => &[b"createdat", b"size"],
            RecordKind::Snapshot => &[b"createdat", b"name"],
            RecordKind::StorageSnapshot => &[b"createdat", b"id", b"kind"],
            RecordKind::Lease | RecordKind::Sandbox => &[b"createdat"],
            RecordKind::Ingest => &[b"ref"],
            RecordKind::NamespaceLabels => &[],
        }
    }

    /// Every key containerd 1.6 to 2.1 writes at a record's root, where the
    /// set is closed (`containerd-metadb.md` §3.3); `None` where any key may
    /// appear. Stricter than a tree's judge, which must never refuse a page
    /// a later release could write: it is for placing pages no tree reaches.
    pub fn known_keys(self) -> Option<&'static [&'static [u8]]> {
        Some(match self {
            RecordKind::Image => &[
                b"annotations",
                b"createdat",
                b"labels",
                b"target",
                b"updatedat",
            ],
            RecordKind::Container => &[
                b"createdat",
                b"extensions",
                b"image",
                b"labels",
                b"runtime",
                b"sandboxid",
                b"snapshotKey",
                b"snapshotter",
                b"spec",
                b"updatedat",
            ],
            RecordKind::Content => &[b"createdat", b"labels", b"size", b"updatedat"],
            RecordKind::Ingest => &[b"expected", b"expireat", b"ref"],
            RecordKind::Snapshot => &[
                b"children",
                b"createdat",
                b"labels",
                b"name",
                b"parent",
                b"updatedat",
            ],
            RecordKind::Lease => &[
                b"content",
                b"createdat",
                b"images",
                b"ingests",
                b"labels",
                b"snapshots",
            ],
            RecordKind::Sandbox => &[
                b"createdat",
                b"extensions",
                b"labels",
                b"runtime",
                b"sandboxer",
                b"spec",
                b"updatedat",
            ],
            RecordKind::NamespaceLabels | RecordKind::StorageSnapshot => return None,
        })
    }

    /// A key of `keys` that containerd writes with every record of another
    /// kind and never in this kind's (where this kind's keys are a closed
    /// set), with that kind: a record holding one is another kind's record,
    /// reached through a page in the wrong place (a stale parent whose child
    /// slot was reused). No release writes such a key, so no real record is
    /// refused.
    pub fn foreign_key<'k>(
        self,
        keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Option<(&'k [u8], RecordKind)> {
        let known = self.known_keys()?;
        keys.into_iter()
            .filter(|k| !known.contains(k))
            .find_map(|k| {
                RECORD_KINDS
                    .iter()
                    .find(|other| **other != self && other.required_keys().contains(&k))
                    .map(|other| (k, *other))
            })
    }

    /// Whether the record keeps `createdat`/`updatedat` (the newer of two
    /// versions is the one with the later `updatedat`).
    pub fn has_updatedat(self) -> bool {
        matches!(
            self,
            RecordKind::Image
                | RecordKind::Container
                | RecordKind::Content
                | RecordKind::Snapshot
                | RecordKind::Sandbox
                | RecordKind::StorageSnapshot
        )
    }
}

/// The kinds of a metadata database's records.
const RECORD_KINDS: [RecordKind; 7] = [
    RecordKind::Image,
    RecordKind::Container,
    RecordKind::Content,
    RecordKind::Ingest,
    RecordKind::Snapshot,
    RecordKind::Lease,
    RecordKind::Sandbox,
];

/// A place in a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The root bucket of a metadata database: `v1` (and 1.7's top-level
    /// buckets), all buckets.
    MetaRoot,
    /// `v1` of a metadata database: `version` and one bucket per namespace.
    MetaV1,
    /// containerd 1.7's top-level `<ns>` bucket, beside `v1`: `sandboxes`.
    LegacyNamespace,
    /// `v1/<ns>`: the object buckets.
    Namespace,
    /// `v1/<ns>/content`: `blob` and `ingests`.
    Content,
    /// `v1/<ns>/snapshots`: one bucket per snapshotter.
    Snapshotters,
    /// A bucket whose entries are records of one kind.
    Records(RecordKind),
    /// The root bucket of a snapshotter database: `v1`.
    StorageRoot,
    /// `v1` of a snapshotter database: `snapshots` and `parents`.
    StorageV1,
    /// The root bucket of a record.
    Record(RecordKind),
    /// Anything else: not judged, every key its own unit.
    Other,
}

/// The object buckets of a namespace (containerd 1.6–2.x).
const NAMESPACE_BUCKETS: [&[u8]; 7] = [
    b"labels",
    b"images",
    b"containers",
    b"content",
    b"snapshots",
    b"leases",
    b"sandboxes",
];

/// What an entry at a level is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    /// A record: taken whole.
    Record(RecordKind),
    /// A bucket at this level.
    Level(Level),
}

impl Level {
    /// The root level of a database of `kind`.
    pub fn root(kind: DbKind) -> Level {
        match kind {
            DbKind::Metadata => Level::MetaRoot,
            DbKind::Snapshotter => Level::StorageRoot,
        }
    }

    /// What the entry `key` of this level is.
    pub fn child(self, key: &[u8]) -> Child {
        let level = match (self, key) {
            (Level::MetaRoot, b"v1") => Level::MetaV1,
            (Level::MetaRoot, _) => Level::LegacyNamespace,
            (Level::LegacyNamespace, b"sandboxes") => Level::Records(RecordKind::Sandbox),
            (Level::MetaV1, _) => Level::Namespace,
            (Level::Namespace, b"labels") => return Child::Record(RecordKind::NamespaceLabels),
            (Level::Namespace, b"images") => Level::Records(RecordKind::Image),
            (Level::Namespace, b"containers") => Level::Records(RecordKind::Container),
            (Level::Namespace, b"content") => Level::Content,
            (Level::Namespace, b"snapshots") => Level::Snapshotters,
            (Level::Namespace, b"leases") => Level::Records(RecordKind::Lease),
            (Level::Namespace, b"sandboxes") => Level::Records(RecordKind::Sandbox),
            (Level::Content, b"blob") => Level::Records(RecordKind::Content),
            (Level::Content, b"ingests") => Level::Records(RecordKind::Ingest),
            (Level::Snapshotters, _) => Level::Records(RecordKind::Snapshot),
            (Level::Records(kind), _) => return Child::Record(kind),
            (Level::StorageRoot, b"v1") => Level::StorageV1,
            (Level::StorageV1, b"snapshots") => Level::Records(RecordKind::StorageSnapshot),
            _ => Level::Other,
        };
        Child::Level(level)
    }

    /// Why a page cannot be one of this level's, if it cannot. Only what
    /// containerd never writes counts: a key it writes in some release, or a
    /// bucket it may add, is never a reason.
    pub fn implausible(self, page: &PageKeys<'_, '_>) -> Option<String> {
        let leaf = page.kind == PageKind::Leaf;
        let plain = |allowed: &[&[u8]]| {
            page.keys
                .iter()
                .find(|(k, bucket)| leaf && !bucket && !allowed.contains(k))
                .map(|(k, _)| format!("it holds the plain key {}", show(k)))
        };
        match self {
            Level::MetaRoot | Level::StorageRoot => plain(&[]).or_else(|| {
                let whole = page.root && leaf;
                let v1 = page.keys.iter().any(|(k, b)| *b && *k == b"v1");
                (whole && !v1).then(|| "a root bucket without v1".to_string())
            }),
            Level::Snapshotters => plain(&[]).or_else(|| {
                // containerd's own bucket names are never a snapshotter's: a
                // page holding them is another bucket's (`blob`/`ingests` are
                // a content bucket's).
                page.keys
                    .iter()
                    .find(|(k, _)| NAMESPACE_BUCKETS.contains(k) || *k == b"blob" || *k == b"ingests")
                    .map(|(k, _)| format!("{} is not a snapshotter's name", show(k)))
            }),
            Level::LegacyNamespace => plain(&[]),
            Level::MetaV1 => plain(&[b"version"]).or_else(|| {
                let whole = page.root && leaf;
                let version = page.keys.iter().any(|(k, b)| !b && *k == b"version");
                let namespaces = page.keys.iter().any(|(_, b)| *b);
                (whole && namespaces && !version)
                    .then(|| "namespaces without v1/version (containerd writes it first)".to_string())
            }),
            Level::Namespace => plain(&[]).or_else(|| {
                let known = page
                    .keys
                    .iter()
                    .any(|(k, _)| NAMESPACE_BUCKETS.contains(k));
                (!page.keys.is_empty() && !known).then(|| {
                    "none of its keys is one of a namespace's buckets (images, containers, content, …)"
                        .to_string()
                })
            }),
            Level::Content => plain(&[]).or_else(|| {
                page.keys
                    .iter()
                    .find(|(k, _)| k != b"blob" && k != b"ingests")
                    .map(|(k, _)| format!("it holds {}, not blob or ingests", show(k)))
            }),
            Level::StorageV1 => page
                .keys
                .iter()
                .find(|(k, _)| !SNAPSHOTTER_BUCKETS.contains(k))
                .map(|(k, _)| format!("it holds {}, not snapshots or parents", show(k))),
            Level::Records(RecordKind::Content) => plain(&[]).or_else(|| {
                page.keys
                    .iter()
                    .find(|(k, _)| !looks_like_digest(k))
                    .map(|(k, _)| format!("the key {} is not a digest", show(k)))
            }),
            Level::Records(RecordKind::StorageSnapshot) => plain(&[]).or_else(|| {
                // containerd keys a snapshotter's snapshots `<namespace>/<n>/<key>`:
                // `v1`'s bucket names are another level's page.
                page.keys
                    .iter()
                    .find(|(k, _)| SNAPSHOTTER_BUCKETS.contains(k))
                    .map(|(k, _)| format!("{} is v1's bucket, not a snapshot", show(k)))
            }),
            Level::Records(kind) => plain(&[]).or_else(|| {
                // An inline record's own keys are in the page.
                (0..page.keys.len()).find_map(|i| {
                    let keys = page.inline_keys(i)?;
                    let (k, other) = kind.foreign_key(keys)?;
                    Some(foreign(kind, &show(page.keys.get(i)?.0), k, other))
                })
            }),
            Level::Record(kind) => {
                let whole = page.root && leaf;
                let foreign_key = leaf
                    .then(|| kind.foreign_key(page.keys.iter().map(|(k, _)| *k)))
                    .flatten();
                if let Some((k, other)) = foreign_key {
                    return Some(foreign(kind, "here", k, other));
                }
                kind.required_keys()
                    .iter()
                    .find(|want| whole && !page.keys.iter().any(|(k, _)| k == *want))
                    .map(|want| {
                        format!(
                            "{} record without {} (containerd writes it with every one)",
                            kind.name(),
                            show(want)
                        )
                    })
            }
            Level::Other => None,
        }
    }
}

impl PageJudge for Level {
    fn judge(&self, page: &PageKeys<'_, '_>) -> Option<String> {
        self.implausible(page)
    }
}

fn foreign(kind: RecordKind, record: &str, key: &[u8], other: RecordKind) -> String {
    format!(
        "the {} record {record} holds {}, which containerd writes only in {} records",
        kind.name(),
        show(key),
        other.name()
    )
}

/// A record's identity in containerd's terms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordId {
    /// Its namespace (none in a snapshotter database, or outside `v1`).
    pub namespace: Option<Vec<u8>>,
    /// The record's id: the image name, container id, content digest, lease
    /// id, sandbox id, ingest ref, `<snapshotter>/<key>` for a snapshot, the
    /// namespace's name for its labels; the key itself outside records.
    pub id: Vec<u8>,
}

/// The identity of the entry `key` of the bucket `path`, of kind `kind`.
pub fn identity(path: &BucketPath, key: &[u8], kind: Option<RecordKind>) -> RecordId {
    let parts: Vec<&[u8]> = path.components().collect();
    identity_at(&parts, key, kind)
}

/// [`identity`] with the bucket path as its components.
pub fn identity_at(parts: &[&[u8]], key: &[u8], kind: Option<RecordKind>) -> RecordId {
    let namespace = match parts {
        [b"v1", ns, ..] => Some(ns.to_vec()),
        [b"v1"] if kind.is_none() => None,
        [b"v1"] => Some(key.to_vec()),
        [top, ..] if kind == Some(RecordKind::Sandbox) => Some(top.to_vec()),
        _ => None,
    };
    let namespace = match kind {
        Some(RecordKind::StorageSnapshot) => None,
        _ => namespace,
    };
    let id = match (kind, parts) {
        (Some(RecordKind::Snapshot), [.., sn]) => {
            let mut id = sn.to_vec();
            id.push(b'/');
            id.extend_from_slice(key);
            id
        }
        (Some(RecordKind::NamespaceLabels), _) => namespace.clone().unwrap_or_default(),
        _ => key.to_vec(),
    };
    RecordId { namespace, id }
}

/// `algorithm:hex`, as containerd's content keys are (`sha256:…`).
fn looks_like_digest(k: &[u8]) -> bool {
    let Some(colon) = k.iter().position(|&b| b == b':') else {
        return false;
    };
    let (algo, hex) = (
        k.get(..colon).unwrap_or(&[]),
        k.get(colon + 1..).unwrap_or(&[]),
    );
    !algo.is_empty()
        && algo
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(b))
        && hex.len() >= 32
        && hex.iter().all(u8::is_ascii_hexdigit)
}

fn show(k: &[u8]) -> String {
    crate::bytes::escape_controls(&String::from_utf8_lossy(k)).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf<'p, 'a>(keys: &'p [(&'a [u8], bool)]) -> PageKeys<'p, 'a> {
        PageKeys {
            kind: PageKind::Leaf,
            root: true,
            keys,
            values: &[],
        }
    }

    #[test]
    fn a_container_records_page_is_no_namespace() {
        let page = [(&b"createdat"[..], false), (&b"image"[..], false)];
        assert!(Level::Namespace.implausible(&leaf(&page)).is_some());
        assert!(Level::MetaV1.implausible(&leaf(&page)).is_some());
        let ns = [(&b"content"[..], true), (&b"images"[..], true)];
        assert_eq!(Level::Namespace.implausible(&leaf(&ns)), None);
        let v1 = [(&b"default"[..], true), (&b"version"[..], false)];
        assert_eq!(Level::MetaV1.implausible(&leaf(&v1)), None);
    }

    #[test]
    fn records_holding_another_kinds_keys_are_another_kinds() {
        // A content record read as a lease: `size` is content's.
        let content = [
            (&b"createdat"[..], false),
            (&b"labels"[..], true),
            (&b"size"[..], false),
            (&b"updatedat"[..], false),
        ];
        let why = Level::Record(RecordKind::Lease).implausible(&leaf(&content));
        assert!(why.is_some_and(|w| w.contains("size") && w.contains("content")));
        assert_eq!(
            Level::Record(RecordKind::Content).implausible(&leaf(&content)),
            None
        );
        // An ingest never has createdat; a container may have any of its keys.
        let ingest = [(&b"createdat"[..], false), (&b"ref"[..], false)];
        assert!(Level::Record(RecordKind::Ingest)
            .implausible(&leaf(&ingest))
            .is_some());
        let container = [
            (&b"createdat"[..], false),
            (&b"image"[..], false),
            (&b"runtime"[..], true),
            (&b"snapshotKey"[..], false),
        ];
        assert_eq!(
            Level::Record(RecordKind::Container).implausible(&leaf(&container)),
            None
        );
        // A key no kind requires is not a reason (a later release may add it).
        let lease = [(&b"createdat"[..], false), (&b"expires"[..], false)];
        assert_eq!(
            Level::Record(RecordKind::Lease).implausible(&leaf(&lease)),
            None
        );
    }

    #[test]
    fn content_keys_are_digests() {
        let good = [(
            &b"sha256:3811636fd0e00fffbdf02801a029f3323514aacc136f757b7140589549d54e2d"[..],
            true,
        )];
        assert_eq!(
            Level::Records(RecordKind::Content).implausible(&leaf(&good)),
            None
        );
        let bad = [(&b"docker.io/library/tiny:1.0"[..], true)];
        assert!(Level::Records(RecordKind::Content)
            .implausible(&leaf(&bad))
            .is_some());
    }

    #[test]
    fn a_snapshotters_snapshot_record_is_whole_only_with_its_id_kind_and_createdat() {
        let record = Level::Record(RecordKind::StorageSnapshot);
        let whole = [
            (&b"createdat"[..], false),
            (&b"id"[..], false),
            (&b"kind"[..], false),
            (&b"parent"[..], false),
            (&b"updatedat"[..], false),
        ];
        assert_eq!(record.implausible(&leaf(&whole)), None);
        // The labels and usage of a record, without the keys before them.
        let half = [
            (&b"inodes"[..], false),
            (&b"labels"[..], true),
            (&b"size"[..], false),
            (&b"updatedat"[..], false),
        ];
        assert!(record.implausible(&leaf(&half)).is_some());
        let no_id = [
            (&b"createdat"[..], false),
            (&b"kind"[..], false),
            (&b"updatedat"[..], false),
        ];
        assert!(record.implausible(&leaf(&no_id)).is_some());
    }

    #[test]
    fn v1s_page_is_no_snapshotters_snapshots_page() {
        let records = Level::Records(RecordKind::StorageSnapshot);
        let v1 = [(&b"parents"[..], true), (&b"snapshots"[..], true)];
        assert!(records.implausible(&leaf(&v1)).is_some());
        assert_eq!(Level::StorageV1.implausible(&leaf(&v1)), None);
        let snapshots = [
            (&b"default/10/ctrdb-active-snap"[..], true),
            (&b"default/11/hist-ctr"[..], true),
        ];
        assert_eq!(records.implausible(&leaf(&snapshots)), None);
        assert!(Level::StorageV1.implausible(&leaf(&snapshots)).is_some());
    }

    #[test]
    fn records_start_where_the_schema_says() {
        let ns = Level::MetaV1.child(b"k8s.io");
        assert_eq!(ns, Child::Level(Level::Namespace));
        assert_eq!(
            Level::Namespace.child(b"labels"),
            Child::Record(RecordKind::NamespaceLabels)
        );
        let Child::Level(content) = Level::Namespace.child(b"content") else {
            panic!("content is a level")
        };
        assert_eq!(
            content.child(b"blob"),
            Child::Level(Level::Records(RecordKind::Content))
        );
        assert_eq!(
            Level::Records(RecordKind::Image).child(b"docker.io/x:1"),
            Child::Record(RecordKind::Image)
        );
    }
}
