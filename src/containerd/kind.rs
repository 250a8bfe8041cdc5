//! Which containerd bbolt file this is. A containerd root holds two kinds:
//! the metadata database (`io.containerd.metadata.v1.bolt/meta.db`: `v1`
//! holds `version` and one bucket per namespace) and each snapshotter's own
//! database (`io.containerd.snapshotter.v1.<name>/metadata.db`, containerd's
//! `snapshots/storage`: `v1` holds only `snapshots`, one bucket per snapshot,
//! and `parents`, the parent index). Both start with `v1`, so without this a
//! snapshotter database reads as a metadata database with two namespaces.

use std::path::{Path, PathBuf};

use crate::bolt::{Bucket, Db};

use super::roots::DB_UNDER_ROOT;

/// The kind of a containerd bbolt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbKind {
    /// The metadata database (meta.db), or a file that is neither kind: its
    /// decode says what is wrong with it.
    #[default]
    Metadata,
    /// A snapshotter's database (overlayfs, native, ...): not meta.db.
    Snapshotter,
}

impl DbKind {
    /// The wire name: `metadata` or `snapshotter`.
    pub fn name(self) -> &'static str {
        match self {
            DbKind::Metadata => "metadata",
            DbKind::Snapshotter => "snapshotter",
        }
    }
}

/// What a snapshotter database is, for messages.
pub const SNAPSHOTTER_DB: &str =
    "a containerd snapshotter database (io.containerd.snapshotter.v1.<name>/metadata.db), not meta.db";

/// The snapshotter storage's bucket names under `v1`.
pub(crate) const SNAPSHOTTER_BUCKETS: [&[u8]; 2] = [b"snapshots", b"parents"];

/// Whether `v1` is a snapshotter's: it has entries, all of them buckets named
/// `snapshots` or `parents` (a metadata database's `v1` has a `version` key).
/// A bucket that cannot be read is not taken for a snapshotter's.
pub fn is_snapshotter_v1(v1: &Bucket<'_>) -> bool {
    let mut seen = 0usize;
    for e in v1.iter() {
        let Ok(e) = e else { return false };
        if e.bucket().is_none() || !SNAPSHOTTER_BUCKETS.contains(&e.key) {
            return false;
        }
        seen += 1;
    }
    seen > 0
}

/// The kind of `db`: a snapshotter database has exactly one top-level bucket,
/// `v1`, shaped as [`is_snapshotter_v1`] says.
pub fn identify(db: &Db<'_>) -> DbKind {
    let Ok(root) = db.root() else {
        return DbKind::Metadata;
    };
    let mut top = root.iter();
    let only_v1 = match (top.next(), top.next()) {
        (Some(Ok(e)), None) if e.key == b"v1" => e.bucket(),
        _ => None,
    };
    match only_v1 {
        Some(v1) if is_snapshotter_v1(&v1) => DbKind::Snapshotter,
        _ => DbKind::Metadata,
    }
}

/// For a snapshotter database at `ROOT/io.containerd.snapshotter.v1.<name>/metadata.db`,
/// the metadata database of the same root, `ROOT/io.containerd.metadata.v1.bolt/meta.db`.
pub fn metadata_db_beside(snapshotter_db: &Path) -> Option<PathBuf> {
    let dir = snapshotter_db.parent()?;
    let plugin = dir.file_name()?.to_str()?;
    plugin
        .starts_with("io.containerd.snapshotter.v1.")
        .then(|| dir.parent().map(|root| root.join(DB_UNDER_ROOT)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_database_beside_a_snapshotters() {
        assert_eq!(
            metadata_db_beside(Path::new(
                "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/metadata.db"
            )),
            Some(PathBuf::from(
                "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db"
            ))
        );
        assert_eq!(metadata_db_beside(Path::new("/tmp/metadata.db")), None);
    }
}
