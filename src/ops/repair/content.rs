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
//! A record lost by key is re-created when its blob verifies. For a lost range
//! only blobs no namespace of the repaired file records are candidates: a blob
//! another namespace records is not deleted by the GC, and whether this
//! namespace held it too cannot be told.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::merge::{Ledger, LostWhat, Sink};
use super::sinks::{Addition, Additions};
use crate::bolt::salvage::contains;
use crate::containerd::encoding::put_varint;
use crate::oci::{BlobFiles, VerifyError};

/// The label a re-created content record carries.
pub const RECREATED_LABEL: &str = "ctrdb.repair/recreated";

const RECREATED_REASON: &str =
    "re-created by ctrdb repair: the content record was lost; the blob file's bytes match its digest";

/// Digests of content records, per namespace.
pub type ContentKeys = BTreeMap<Vec<u8>, BTreeSet<Vec<u8>>>;

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
/// files under `root` verify; `held` is what the repaired file records.
pub fn recreate(
    ledger: &Ledger,
    held: &ContentKeys,
    root: &Path,
    created: &[u8],
) -> std::io::Result<(Additions, ContentStoreOutcome)> {
    let files = BlobFiles::of_root(root);
    let on_disk = files.digests()?;
    let sizes = on_disk
        .iter()
        .filter_map(|d| files.size(d).map(|s| (d.clone(), s)))
        .collect();
    let anywhere: BTreeSet<&[u8]> = held.values().flatten().map(Vec::as_slice).collect();
    let none = BTreeSet::new();
    let mut candidates: BTreeSet<(Vec<u8>, Vec<u8>)> = BTreeSet::new();
    for (ns, scope) in content_loss(ledger) {
        let mine = held.get(&ns).unwrap_or(&none);
        match scope {
            Scope::Record(d) if !mine.contains(&d) => {
                candidates.insert((ns, d));
            }
            Scope::Record(_) => {}
            Scope::Range(lower, upper) => {
                let (lo, up) = (
                    lower.as_ref().map(Vec::as_slice),
                    upper.as_ref().map(Vec::as_slice),
                );
                for d in on_disk.iter().map(String::as_bytes) {
                    if contains(lo, up, d) && !anywhere.contains(d) {
                        candidates.insert((ns.clone(), d.to_vec()));
                    }
                }
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

/// Collects the digests of the content records a merge writes.
#[derive(Debug, Default)]
pub(super) struct ContentKeySink {
    path: Vec<Vec<u8>>,
    /// What it found.
    pub(super) keys: ContentKeys,
}

impl<'a> Sink<'a> for ContentKeySink {
    type Error = std::convert::Infallible;

    fn begin(&mut self, key: &'a [u8], _: u64) -> Result<(), Self::Error> {
        if let [v1, ns, content, blob] = self.path.as_slice() {
            if v1 == b"v1" && content == b"content" && blob == b"blob" {
                self.keys
                    .entry(ns.clone())
                    .or_default()
                    .insert(key.to_vec());
            }
        }
        self.path.push(key.to_vec());
        Ok(())
    }

    fn put(&mut self, _: &'a [u8], _: &'a [u8]) -> Result<(), Self::Error> {
        Ok(())
    }

    fn end(&mut self) -> Result<(), Self::Error> {
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
