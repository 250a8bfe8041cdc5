//! The names of a file's namespaces, read without decoding their records: for
//! checking a `-n` filter before any work is done.

use crate::bolt::Db;

/// The namespaces of a file, as far as its tree could be read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceNames<'a> {
    /// In key order.
    pub names: Vec<&'a [u8]>,
    /// Whether damage stopped the listing (a namespace may be missing).
    pub damaged: bool,
}

/// The namespaces of `db` in key order: the buckets under `v1`, then the
/// top-level buckets of containerd 1.7's sandbox store (`<ns>/sandboxes`) that
/// `v1` does not have; none in a snapshotter's database. What a damaged tree
/// hides is not listed, and `damaged` says so.
pub fn namespace_names<'a>(db: &Db<'a>) -> NamespaceNames<'a> {
    let Ok(root) = db.root() else {
        return NamespaceNames {
            names: Vec::new(),
            damaged: true,
        };
    };
    if super::kind::identify(db) == super::DbKind::Snapshotter {
        return NamespaceNames::default();
    }
    let mut damaged = false;
    let mut names = match root.bucket(b"v1") {
        Ok(Some(v1)) => child_buckets(v1, &mut damaged),
        Ok(None) => Vec::new(),
        Err(_) => {
            damaged = true;
            Vec::new()
        }
    };
    for top in child_buckets(root, &mut damaged) {
        if top != b"v1" && !names.contains(&top) {
            names.push(top);
        }
    }
    names.sort_unstable();
    NamespaceNames { names, damaged }
}

/// The names of `b`'s child buckets, up to the first damage (which sets `damaged`).
fn child_buckets<'a>(b: crate::bolt::Bucket<'a>, damaged: &mut bool) -> Vec<&'a [u8]> {
    let mut names = Vec::new();
    for e in b.iter() {
        match e {
            Ok(e) if e.bucket().is_some() => names.push(e.key),
            Ok(_) => {}
            Err(_) => {
                *damaged = true;
                break;
            }
        }
    }
    names
}
