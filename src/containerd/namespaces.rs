//! The names of a file's namespaces, read without decoding their records: for
//! checking a `-n` filter before any work is done.

use crate::bolt::Db;

/// The namespaces of `db` in key order: the buckets under `v1`, then the
/// top-level buckets of containerd 1.7's sandbox store (`<ns>/sandboxes`) that
/// `v1` does not have; none in a snapshotter's database. Best effort: what a damaged tree hides is not listed.
pub fn namespace_names<'a>(db: &Db<'a>) -> Vec<&'a [u8]> {
    let Ok(root) = db.root() else {
        return Vec::new();
    };
    if super::kind::identify(db) == super::DbKind::Snapshotter {
        return Vec::new();
    }
    let buckets = |b: crate::bolt::Bucket<'a>| {
        b.iter()
            .map_while(Result::ok)
            .filter(|e| e.bucket().is_some())
            .map(|e| e.key)
            .collect::<Vec<_>>()
    };
    let mut names = match root.bucket(b"v1") {
        Ok(Some(v1)) => buckets(v1),
        _ => Vec::new(),
    };
    for top in buckets(root) {
        if top != b"v1" && !names.contains(&top) {
            names.push(top);
        }
    }
    names.sort_unstable();
    names
}
