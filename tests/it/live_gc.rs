//! The GC model predicts what each fixture's own containerd (1.6.20, 1.7.24,
//! 2.1.9) really deletes: restarted on an edited copy of its meta.db (images,
//! a container and a lease removed, a lease expired), the content, snapshot
//! and lease records gone after its startup GC are exactly `collectable`'s
//! prediction, and so are the blob files removed from disk (a file goes when
//! no namespace keeps a record of its digest).
//!
//! Ingests are not compared through the live listing: `ctr content active`
//! hides ingests without a backend writer (fixtures/README.md); the oracle test
//! covers them. Needs root, the releases and the Go tools (see `live.rs`); skips
//! otherwise, or fails under `CTRDB_REQUIRE_ORACLES=1`.

use std::collections::BTreeSet;
use std::time::SystemTime;

use super::common::*;
use super::live::*;
use ctrdb::analysis::gc::{collectable, GcOptions, GcRules};
use ctrdb::bolt::{DbFile, LockMode};
use ctrdb::containerd::MetaDb;

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Metadata objects `"<ns> content|snapshot|lease <id>"` and blob file names of a live listing.
fn listing_objects(listing: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut objs, mut disk) = (BTreeSet::new(), BTreeSet::new());
    let (mut ns, mut section) = (String::new(), String::new());
    for line in listing.lines() {
        if let Some(n) = line.strip_prefix("## namespace ") {
            ns = n.to_string();
            section.clear();
        } else if line == "## disk" {
            ns.clear();
        } else if let Some(h) = line.strip_prefix("# ") {
            section = h.split(':').next().unwrap_or_default().to_string();
        } else if let Some(first) = line.split_whitespace().next() {
            match section.as_str() {
                "content" if !ns.is_empty() => {
                    objs.insert(format!("{ns} content {first}"));
                }
                "leases" if !ns.is_empty() => {
                    objs.insert(format!("{ns} lease {first}"));
                }
                sn if sn.starts_with("snapshots ") && !ns.is_empty() => {
                    objs.insert(format!(
                        "{ns} snapshot {}/{first}",
                        &sn["snapshots ".len()..]
                    ));
                }
                "blobs/sha256" => {
                    disk.insert(format!("sha256:{first}"));
                }
                _ => {}
            }
        }
    }
    (objs, disk)
}

/// The same objects from a decoded DB.
fn db_objects(meta: &MetaDb) -> BTreeSet<String> {
    let mut v = BTreeSet::new();
    for ns in meta.namespaces.iter().filter(|n| n.in_v1) {
        let n = s(ns.name.0);
        v.extend(
            ns.blobs
                .iter()
                .map(|b| format!("{n} content {}", s(b.digest.0))),
        );
        v.extend(ns.leases.iter().map(|l| format!("{n} lease {}", s(l.id.0))));
        for sn in &ns.snapshotters {
            v.extend(
                sn.snapshots
                    .iter()
                    .map(|x| format!("{n} snapshot {}/{}", s(sn.name.0), s(x.key.0))),
            );
        }
    }
    v
}

#[test]
fn live_startup_gc_removes_exactly_the_predicted_records() {
    let Some(bin) = oracle_bin("live_startup_gc_removes_exactly_the_predicted_records") else {
        return;
    };
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let original = fx.join("meta.db");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("meta.db");
        std::fs::copy(&original, &db).unwrap();
        // restart-test.sh's standard edits, plus: every k8s.io image gone, the plain lease expired.
        let file = DbFile::open(&original, LockMode::None).unwrap();
        let meta0 = MetaDb::decode(&file.db().unwrap());
        editdb(
            &bin,
            &db,
            &[
                "rm-bucket",
                "v1",
                "default",
                "images",
                "docker.io/library/app:1.0",
            ],
        );
        for i in &meta0
            .namespaces
            .iter()
            .find(|n| n.name.0 == b"moby")
            .unwrap()
            .images
        {
            editdb(
                &bin,
                &db,
                &["rm-bucket", "v1", "moby", "images", &s(i.name.0)],
            );
        }
        for i in &meta0
            .namespaces
            .iter()
            .find(|n| n.name.0 == b"k8s.io")
            .unwrap()
            .images
        {
            editdb(
                &bin,
                &db,
                &["rm-bucket", "v1", "k8s.io", "images", &s(i.name.0)],
            );
        }
        editdb(
            &bin,
            &db,
            &["rm-bucket", "v1", "default", "containers", "app-ctr"],
        );
        editdb(
            &bin,
            &db,
            &["rm-bucket", "v1", "default", "leases", "ctrdb-res-lease"],
        );
        editdb(
            &bin,
            &db,
            &[
                "mk-bucket",
                "v1",
                "default",
                "leases",
                "ctrdb-plain-lease",
                "labels",
            ],
        );
        editdb(
            &bin,
            &db,
            &[
                "put",
                "v1",
                "default",
                "leases",
                "ctrdb-plain-lease",
                "labels",
                "containerd.io/gc.expire",
                "2020-01-01T00:00:00Z",
            ],
        );

        let file = DbFile::open(&db, LockMode::None).unwrap();
        let bdb = file.db().unwrap();
        let meta = MetaDb::decode(&bdb);
        let rules = GcRules::for_file(&meta, bdb.meta().has_freelist());
        let now = SystemTime::now();
        let c = collectable(&meta, &GcOptions { now, rules });
        let Some((before, after)) = compare_startup(v, &fx, &original, &db) else {
            continue;
        };

        let mut predicted_gone = BTreeSet::new();
        predicted_gone.extend(
            c.content
                .iter()
                .map(|(n, d)| format!("{} content {}", s(n.0), s(d.0))),
        );
        predicted_gone.extend(
            c.leases
                .iter()
                .map(|(n, l)| format!("{} lease {}", s(n.0), s(l.0))),
        );
        predicted_gone.extend(
            c.snapshots
                .iter()
                .map(|(n, sn, k)| format!("{} snapshot {}/{}", s(n.0), s(sn.0), s(k.0))),
        );
        let edited = db_objects(&meta);
        let (live, disk_after) = listing_objects(&after);
        let actually_gone: BTreeSet<String> = edited.difference(&live).cloned().collect();
        assert_eq!(
            live.difference(&edited).count(),
            0,
            "{v}: objects appeared: {:?}",
            live.difference(&edited)
        );
        assert_eq!(
            actually_gone, predicted_gone,
            "{v}: startup GC removed something else than predicted"
        );

        // Blob files: one goes when no namespace keeps a record of its digest.
        let (_, disk_before) = listing_objects(&before);
        let kept_digests: BTreeSet<String> = edited
            .iter()
            .filter(|o| !predicted_gone.contains(*o))
            .filter_map(|o| o.split_once(" content ").map(|(_, d)| d.to_string()))
            .collect();
        let predicted_files: BTreeSet<String> =
            disk_before.intersection(&kept_digests).cloned().collect();
        assert_eq!(
            disk_after, predicted_files,
            "{v}: blob files on disk after GC"
        );
        eprintln!(
            "live {v} ({rules:?}): {} records and {} blob files removed, as predicted",
            actually_gone.len(),
            disk_before.len() - disk_after.len()
        );
        assert!(actually_gone.len() > 10);
    }
}
