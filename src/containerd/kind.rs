//! Which containerd bbolt file this is. A containerd root holds two kinds:
//! the metadata database (`io.containerd.metadata.v1.bolt/meta.db`: `v1`
//! holds `version` and one bucket per namespace) and each snapshotter's own
//! database (`io.containerd.snapshotter.v1.<name>/metadata.db`, containerd's
//! `snapshots/storage`: `v1` holds only `snapshots`, one bucket per snapshot,
//! and `parents`, the parent index). Both start with `v1`, so without this a
//! snapshotter database reads as a metadata database with two namespaces.

use std::path::{Path, PathBuf};

use crate::bolt::salvage::{Item, SalvageCursor, Visited};
use crate::bolt::{Bucket, Db, MetaTree};

use super::roots::DB_UNDER_ROOT;
use super::shape::Level;

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

/// The kind of file `tree` shows, read past damage (a repair's input): `v1`
/// as the root holds it, with every entry of it that can be read a bucket
/// named `snapshots` or `parents`, is a snapshotter's, and any other entry
/// (`version`, a namespace) a metadata database's. `None` when the damage
/// hides `v1` or all of its entries: another tree may show them.
pub fn salvages_as_snapshotter_v1(tree: &MetaTree<'_>) -> Option<bool> {
    let mut seen = Visited::for_tree(tree);
    let mut root = SalvageCursor::new(tree.root().ok()?, Level::Other);
    let v1 = loop {
        match root.next_item(&mut seen)? {
            Item::Entry(e) if e.key == b"v1" => break e.bucket()?,
            Item::Entry(e) if e.key > &b"v1"[..] => return None,
            _ => {}
        }
    };
    let mut entries = SalvageCursor::new(v1, Level::Other);
    let mut seen_one = false;
    while let Some(item) = entries.next_item(&mut seen) {
        if let Item::Entry(e) = item {
            if e.bucket().is_none() || !SNAPSHOTTER_BUCKETS.contains(&e.key) {
                return Some(false);
            }
            seen_one = true;
        }
    }
    seen_one.then_some(true)
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
    #![allow(clippy::indexing_slicing)]

    use std::io::Cursor;

    use super::*;
    use crate::bolt::bucket::BucketRoot;
    use crate::bolt::layout::{BUCKET_HEADER_SIZE, PAGE_FLAGS};
    use crate::bolt::writer::{BoltWriter, FreelistMode, WriterOptions};

    /// A snapshotter database: `v1` holding a small (inline) `parents` and
    /// `snapshots` with three records.
    fn snapshotter_file() -> Vec<u8> {
        let opts = WriterOptions {
            page_size: 4096,
            freelist: FreelistMode::Page,
            after_txid: 0,
            root_sequence: 0,
        };
        let mut w = BoltWriter::new(Cursor::new(Vec::new()), opts).unwrap();
        w.begin_bucket(&b"v1"[..], 0).unwrap();
        w.begin_bucket(&b"parents"[..], 0).unwrap();
        w.put(&b"\x01\x02"[..], &b"default/2/b"[..]).unwrap();
        w.end_bucket().unwrap();
        w.begin_bucket(&b"snapshots"[..], 3).unwrap();
        for (key, id) in [("default/1/a", 1u8), ("default/2/b", 2), ("default/3/c", 3)] {
            w.begin_bucket(key.as_bytes().to_vec(), 0).unwrap();
            w.put(&b"createdat"[..], vec![0u8; 300]).unwrap();
            w.put(&b"id"[..], vec![id]).unwrap();
            w.put(&b"kind"[..], vec![3u8]).unwrap();
            w.end_bucket().unwrap();
        }
        w.end_bucket().unwrap();
        w.end_bucket().unwrap();
        w.finish().unwrap().0.into_inner()
    }

    #[test]
    fn a_snapshotter_database_is_known_past_damage_in_v1() {
        let mut bytes = snapshotter_file();
        {
            let db = Db::parse(&bytes).unwrap();
            assert_eq!(identify(&db), DbKind::Snapshotter);
            assert_eq!(salvages_as_snapshotter_v1(&db.trees()[0]), Some(true));
        }
        // `parents`' inline page made a branch: its header no longer decodes.
        let at = {
            let db = Db::parse(&bytes).unwrap();
            let v1 = db.root().unwrap().bucket(b"v1").unwrap().unwrap();
            let BucketRoot::Page(id) = v1.root_ref() else {
                panic!("v1 has its own page")
            };
            let e = db.pages().page(id).unwrap().leaf_element(0).unwrap();
            assert_eq!(e.key, b"parents");
            e.value_offset as usize + BUCKET_HEADER_SIZE + PAGE_FLAGS
        };
        bytes[at] = 0x01;
        let db = Db::parse(&bytes).unwrap();
        assert_eq!(
            identify(&db),
            DbKind::Metadata,
            "the plain reader stops at parents"
        );
        assert_eq!(salvages_as_snapshotter_v1(&db.trees()[0]), Some(true));
    }

    #[test]
    fn a_metadata_database_is_not_taken_for_a_snapshotters() {
        let opts = WriterOptions {
            page_size: 4096,
            freelist: FreelistMode::None,
            after_txid: 0,
            root_sequence: 0,
        };
        let mut w = BoltWriter::new(Cursor::new(Vec::new()), opts).unwrap();
        w.begin_bucket(&b"v1"[..], 0).unwrap();
        w.begin_bucket(&b"snapshots"[..], 0).unwrap();
        w.end_bucket().unwrap();
        w.put(&b"version"[..], &b"\x03"[..]).unwrap();
        w.end_bucket().unwrap();
        let bytes = w.finish().unwrap().0.into_inner();
        let db = Db::parse(&bytes).unwrap();
        assert_eq!(salvages_as_snapshotter_v1(&db.trees()[0]), Some(false));
    }

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
