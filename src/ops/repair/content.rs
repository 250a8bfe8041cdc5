//! Content records re-created from the content store (`repair --root`,
//! `docs/repair.md`, "The content store").
//!
//! containerd's GC deletes every blob file whose digest no namespace records
//! in `v1/<ns>/content/blob`, whatever references it: a lease cannot keep a
//! blob whose content record is lost. So where the merge lost content records
//! of a namespace — by key, or a key range of its `content/blob` bucket — the
//! blob files on disk that could have been those records are verified (their
//! bytes hash to their name) and re-created as records of that namespace:
//! `createdat`/`updatedat` the time of the repair, `size` the file's, and the
//! label [`RECREATED_LABEL`] saying so. They are the only keys of a repaired
//! file that are not the input's; the repair lease holds them like anything
//! else the repaired file would let the GC delete.
//!
//! A record lost by key is re-created when its blob verifies. For a lost key
//! range, the candidates are the blob files in the range that
//! - no namespace of the repaired file records (the GC would delete them), or
//! - the namespace's own records name: its images' targets and everything
//!   pull for the node's platform fetched through their manifests and indexes
//!   (read from the blob files), its content records'
//!   `containerd.io/gc.ref.content*` labels and its leases' content.
//!
//! A blob another namespace records that this namespace's records do not name
//! is not re-created: the GC keeps it, and whether this namespace held it
//! cannot be told.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::PathBuf;

use rayon::prelude::*;

use super::merge::{Ledger, LostWhat, Sink};
use super::sinks::{Addition, Additions};
use crate::bolt::salvage::contains;
use crate::containerd::encoding::{put_varint, varint};
use crate::oci::{self, BlobFiles, ContentStore, Descriptor, Matcher, VerifyError};

/// The label a re-created content record carries.
pub const RECREATED_LABEL: &str = "ctrdb.repair/recreated";

const RECREATED_REASON: &str =
    "re-created by ctrdb repair: the content record was lost; the blob file's bytes match its digest";

/// The content store a repair reads.
#[derive(Debug, Clone)]
pub struct ContentRoot {
    /// The containerd root.
    pub root: PathBuf,
    /// The platform the node pulled images for: of an index, the manifest a
    /// pull for it fetched is taken to be the namespace's.
    pub platform: Matcher,
}

/// Digests per namespace.
pub type ContentKeys = BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>;

/// What a repaired file holds of content and of references to it.
#[derive(Debug, Clone, Default)]
pub struct ContentView {
    /// The digests of content records, per namespace.
    pub records: ContentKeys,
    /// Digests named by content labels (`containerd.io/gc.ref.content*`)
    /// and leases, per namespace.
    pub named: ContentKeys,
    /// Image targets, per namespace.
    pub targets: BTreeMap<Vec<u8>, Vec<Descriptor>>,
}

/// A key range: its lower and upper bounds.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Which content records of a namespace the merge lost.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// One record, by its digest.
    Record(Vec<u8>),
    /// Whatever `content/blob` held in a key range.
    Range(Bound<Vec<u8>>, Bound<Vec<u8>>),
}

/// The content losses of a merge, per namespace.
fn content_loss(ledger: &Ledger) -> Vec<(Vec<u8>, Scope)> {
    let whole = || Scope::Range(Bound::Unbounded, Bound::Unbounded);
    let mut out = Vec::new();
    for l in &ledger.lost {
        let path: Vec<&[u8]> = l.path.components().collect();
        let holds = |name: &[u8]| match &l.what {
            LostWhat::Record { key } => key == name,
            LostWhat::Range { lower, upper } => contains(
                lower.as_ref().map(Vec::as_slice),
                upper.as_ref().map(Vec::as_slice),
                name,
            ),
        };
        let scope = match path.as_slice() {
            [b"v1", _, b"content", b"blob"] => match &l.what {
                LostWhat::Record { key } => Scope::Record(key.clone()),
                LostWhat::Range { lower, upper } => Scope::Range(lower.clone(), upper.clone()),
            },
            [b"v1", _, b"content"] if holds(b"blob") => whole(),
            [b"v1", _] if holds(b"content") => whole(),
            _ => continue,
        };
        out.push((path[1].to_vec(), scope));
    }
    out
}

/// A content record re-created from its blob file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recreated {
    /// Its namespace.
    pub namespace: Vec<u8>,
    /// Its digest.
    pub digest: String,
    /// The blob's size.
    pub size: u64,
}

/// A lost content record that was not re-created, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRecreated {
    /// Its namespace.
    pub namespace: Vec<u8>,
    /// Its digest (as the file names it, or the lost key as bytes).
    pub digest: Vec<u8>,
    /// What the blob file failed.
    pub reason: VerifyError,
}

/// What `--root` did.
#[derive(Debug, Clone, Default)]
pub struct ContentStoreOutcome {
    /// The containerd root.
    pub root: PathBuf,
    /// Records re-created, by namespace and digest.
    pub recreated: Vec<Recreated>,
    /// Lost records whose blob file failed verification.
    pub not_recreated: Vec<NotRecreated>,
    /// The size of every blob file of the store, by digest.
    pub sizes: BTreeMap<String, u64>,
}

/// Re-creates, as `additions`, the content records `ledger` lost whose blob
/// files under `content.root` verify; `view` is what the repaired file holds.
pub fn recreate(
    ledger: &Ledger,
    view: &ContentView,
    content: &ContentRoot,
    created: &[u8],
) -> std::io::Result<(Additions, ContentStoreOutcome)> {
    let root = content.root.as_path();
    let files = BlobFiles::of_root(root);
    let on_disk = files.digests()?;
    let sizes = on_disk
        .iter()
        .filter_map(|d| files.size(d).map(|s| (d.clone(), s)))
        .collect();
    let disk: BTreeSet<&[u8]> = on_disk.iter().map(String::as_bytes).collect();
    let held = &view.records;
    let anywhere: BTreeSet<&[u8]> = held.values().flatten().map(Vec::as_slice).collect();
    let none = BTreeSet::new();
    let mut ranges: BTreeMap<Vec<u8>, Vec<KeyRange>> = BTreeMap::new();
    let mut candidates: BTreeSet<(Vec<u8>, Vec<u8>)> = BTreeSet::new();
    for (ns, scope) in content_loss(ledger) {
        match scope {
            Scope::Record(d) => {
                if !held.get(&ns).unwrap_or(&none).contains(&d) {
                    candidates.insert((ns, d));
                }
            }
            Scope::Range(lower, upper) => ranges.entry(ns).or_default().push((lower, upper)),
        }
    }
    // Documents are read from the files as they are; a rotten one names
    // nothing that verifies, or garbage that names no file.
    let store = ContentStore::new(root, |_: &str| true);
    for (ns, lost) in &ranges {
        let mine = held.get(ns).unwrap_or(&none);
        let in_lost = |d: &[u8]| {
            lost.iter().any(|(l, u)| {
                contains(
                    l.as_ref().map(Vec::as_slice),
                    u.as_ref().map(Vec::as_slice),
                    d,
                )
            })
        };
        let targets = view.targets.get(ns).map_or(&[][..], Vec::as_slice);
        let reached = oci::fetched(&store, targets, &content.platform);
        let named = view
            .named
            .get(ns)
            .into_iter()
            .flatten()
            .map(Vec::as_slice)
            .chain(reached.iter().map(|d| d.digest.as_bytes()));
        let unrecorded = disk.iter().copied().filter(|d| !anywhere.contains(d));
        for d in unrecorded.chain(named.filter(|d| disk.contains(d))) {
            if in_lost(d) && !mine.contains(d) {
                candidates.insert((ns.clone(), d.to_vec()));
            }
        }
    }
    // Each blob is hashed once, however many namespaces lost it.
    let digests: BTreeSet<&[u8]> = candidates.iter().map(|(_, d)| d.as_slice()).collect();
    let verified: BTreeMap<&[u8], Result<u64, VerifyError>> = digests
        .into_par_iter()
        .map(|d| {
            let r = match std::str::from_utf8(d) {
                Ok(s) => files.verify(s).map(|v| v.size),
                Err(_) => Err(VerifyError::InvalidDigest),
            };
            (d, r)
        })
        .collect();
    let mut add = Additions::default();
    let mut outcome = ContentStoreOutcome {
        root: root.to_path_buf(),
        sizes,
        ..ContentStoreOutcome::default()
    };
    for (ns, d) in &candidates {
        match &verified[d.as_slice()] {
            Ok(size) => {
                let digest = String::from_utf8_lossy(d).into_owned();
                let record = add.bucket_mut(&[b"v1", ns, b"content", b"blob", d]);
                for key in [b"createdat".as_slice(), b"updatedat"] {
                    record
                        .entries
                        .insert(key.to_vec(), Addition::Value(created.to_vec()));
                }
                let size_value = put_varint(i64::try_from(*size).unwrap_or(i64::MAX));
                record
                    .entries
                    .insert(b"size".to_vec(), Addition::Value(size_value));
                record.bucket_mut(&[b"labels"]).entries.insert(
                    RECREATED_LABEL.as_bytes().to_vec(),
                    Addition::Value(RECREATED_REASON.as_bytes().to_vec()),
                );
                outcome.recreated.push(Recreated {
                    namespace: ns.clone(),
                    digest,
                    size: *size,
                });
            }
            Err(reason) => outcome.not_recreated.push(NotRecreated {
                namespace: ns.clone(),
                digest: d.clone(),
                reason: reason.clone(),
            }),
        }
    }
    Ok((add, outcome))
}

/// Collects what a merge writes of content and of references to it.
#[derive(Debug, Default)]
pub(super) struct ContentSink {
    path: Vec<Vec<u8>>,
    target: Descriptor,
    /// What it found.
    pub(super) view: ContentView,
}

/// The label keys whose values name content a content record refers to.
const CONTENT_REF_LABEL: &[u8] = b"containerd.io/gc.ref.content";

impl<'a> Sink<'a> for ContentSink {
    type Error = std::convert::Infallible;

    fn begin(&mut self, key: &'a [u8], _: u64) -> Result<(), Self::Error> {
        if let [v1, ns, content, blob] = self.path.as_slice() {
            if v1 == b"v1" && content == b"content" && blob == b"blob" {
                let records = self.view.records.entry(ns.clone()).or_default();
                records.insert(key.to_vec());
            }
        }
        self.path.push(key.to_vec());
        Ok(())
    }

    fn put(&mut self, key: &'a [u8], value: &'a [u8]) -> Result<(), Self::Error> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match self.path.as_slice() {
            [v1, _, images, _, target]
                if v1 == b"v1" && images == b"images" && target == b"target" =>
            {
                match key {
                    b"digest" => self.target.digest = text(value),
                    b"mediatype" => self.target.media_type = text(value),
                    b"size" => self.target.size = varint(value).unwrap_or(0),
                    _ => {}
                }
            }
            [v1, ns, content, blob, _, labels]
                if v1 == b"v1"
                    && content == b"content"
                    && blob == b"blob"
                    && labels == b"labels"
                    && key.starts_with(CONTENT_REF_LABEL) =>
            {
                let named = self.view.named.entry(ns.clone()).or_default();
                named.insert(value.to_vec());
            }
            [v1, ns, leases, _, content]
                if v1 == b"v1" && leases == b"leases" && content == b"content" =>
            {
                let named = self.view.named.entry(ns.clone()).or_default();
                named.insert(key.to_vec());
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), Self::Error> {
        if let [v1, ns, images, _, target] = self.path.as_slice() {
            if v1 == b"v1" && images == b"images" && target == b"target" {
                let t = std::mem::take(&mut self.target);
                if !t.digest.is_empty() {
                    self.view.targets.entry(ns.clone()).or_default().push(t);
                }
            }
        }
        self.path.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bolt::{BucketPath, CorruptKind, Corruption};
    use crate::containerd::shape::Level;
    use crate::ops::repair::Lost;

    fn lost(path: &[&[u8]], what: LostWhat) -> Lost {
        Lost {
            path: BucketPath(path.iter().map(|c| c.to_vec()).collect()),
            what,
            kind: None,
            level: Level::root(crate::containerd::kind::DbKind::Metadata),
            cause: Corruption::new(CorruptKind::PageMisplaced, "test"),
            page: None,
        }
    }

    #[test]
    fn content_losses_are_found_at_every_level_that_holds_content() {
        let range = |l: &[u8], u: &[u8]| LostWhat::Range {
            lower: Bound::Included(l.to_vec()),
            upper: Bound::Excluded(u.to_vec()),
        };
        let ledger = Ledger {
            lost: vec![
                lost(
                    &[b"v1", b"a", b"content", b"blob"],
                    LostWhat::Record {
                        key: b"sha256:1".to_vec(),
                    },
                ),
                lost(
                    &[b"v1", b"b", b"content", b"blob"],
                    range(b"sha256:2", b"sha256:3"),
                ),
                lost(&[b"v1", b"c", b"content"], range(b"a", b"c")),
                lost(&[b"v1", b"d", b"content"], range(b"c", b"z")),
                lost(&[b"v1", b"e"], range(b"containers", b"images")),
                lost(&[b"v1", b"f", b"images"], range(b"a", b"z")),
            ],
            ..Ledger::default()
        };
        let whole = Scope::Range(Bound::Unbounded, Bound::Unbounded);
        assert_eq!(
            content_loss(&ledger),
            vec![
                (b"a".to_vec(), Scope::Record(b"sha256:1".to_vec())),
                (
                    b"b".to_vec(),
                    Scope::Range(
                        Bound::Included(b"sha256:2".to_vec()),
                        Bound::Excluded(b"sha256:3".to_vec())
                    )
                ),
                (b"c".to_vec(), whole.clone()),
                (b"e".to_vec(), whole),
            ]
        );
    }
}
