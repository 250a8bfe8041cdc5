//! Where a page no tree reaches may belong, by containerd's schema: the
//! buckets of a tree down to its records buckets, and the judgements a
//! repair and a carve make of a leaf before placing it in one of them
//! (`docs/repair.md`, "Orphan pages"; `docs/forensics.md`).

use crate::bolt::salvage::PageKeys;
use crate::bolt::{Bucket, BucketPath, MetaTree, PageKind};

use super::shape::{Child, Level, RecordKind};

/// A bucket of a tree above the records, with its level.
#[derive(Debug)]
pub struct Known<'a> {
    /// Its path.
    pub path: BucketPath,
    /// Its level.
    pub level: Level,
    /// The bucket.
    pub bucket: Bucket<'a>,
}

/// The buckets of `tree` from the root down to the records buckets (not into
/// records), as far as they can be read.
pub fn skeleton<'a>(tree: &MetaTree<'a>, root: Level) -> Vec<Known<'a>> {
    let mut out = Vec::new();
    let Ok(b) = tree.root() else {
        return out;
    };
    let mut stack = vec![(BucketPath(Vec::new()), root, b)];
    while let Some((path, level, bucket)) = stack.pop() {
        if path.0.len() >= crate::bolt::MAX_BUCKET_DEPTH {
            continue;
        }
        for e in bucket.iter().map_while(Result::ok) {
            let (Some(x), Child::Level(l)) = (e.bucket(), level.child(e.key)) else {
                continue;
            };
            if l == Level::Other {
                continue;
            }
            let p = path.child(e.key);
            out.push(Known {
                path: p.clone(),
                level: l,
                bucket: x,
            });
            stack.push((p, l, x));
        }
    }
    out
}

/// Whether a leaf with `keys` passes `level`'s judge (as the bucket's root
/// leaf when `root`).
pub fn plausible(level: Level, root: bool, keys: &[(&[u8], bool)]) -> bool {
    let view = PageKeys {
        kind: PageKind::Leaf,
        root,
        keys,
        values: &[],
    };
    level.implausible(&view).is_none()
}

/// Whether every key at the root of the record `b` is one containerd writes
/// there (where the kind's set is closed; a branch root is not judged).
pub fn keys_known(b: &Bucket<'_>, kind: RecordKind) -> bool {
    let Some(known) = kind.known_keys() else {
        return true;
    };
    let Ok(page) = b.root_page() else {
        return false;
    };
    if page.kind() == Some(PageKind::Branch) {
        return true;
    }
    (0..usize::from(page.count))
        .filter_map(|i| page.leaf_element(i).ok())
        .all(|e| known.contains(&e.key))
}

/// Whether the root page of `b` is plausible at `level`: a leaf (or an
/// inline bucket's page) whose keys pass the level's judge, or a branch.
pub fn child_fits(b: &Bucket<'_>, level: Level) -> bool {
    let Ok(page) = b.root_page() else {
        return false;
    };
    if page.kind() == Some(PageKind::Branch) {
        return true;
    }
    let keys: Vec<(&[u8], bool)> = (0..usize::from(page.count))
        .filter_map(|i| page.leaf_element(i).ok())
        .map(|e| (e.key, e.is_bucket()))
        .collect();
    plausible(level, true, &keys)
}
