//! Acceptance with real containerd: a fixture's meta.db with the k8s.io
//! images leaf zeroed (a page both meta trees share, so its image records are
//! lost) is repaired, and the release that wrote it starts on the repaired
//! copy with the fixture's content store and snapshotters. It lists every
//! image the original lists except k8s.io's lost ones, and after its startup
//! GC every blob file and snapshot directory the original keeps is still on
//! disk: the repair lease holds what the lost images referenced.
//!
//! A lost content leaf is different: containerd's GC deletes every blob file
//! no namespace records, whatever references it. Repaired without the
//! content store, the copy lets containerd's startup GC delete those blobs
//! (the lease cannot keep them); repaired in place with `--root`, whose
//! verified blob files become content records again, containerd keeps every
//! blob file and snapshot directory and lists the content again.

use std::collections::BTreeSet;

use super::common::*;
use super::live::*;
use super::repair_common::{k8s_images_leaf_zeroed, leaf_zeroed};

/// The lines of the listing's section `header` (up to the next `#` line), with
/// the namespace they are in (`-` on disk).
fn section(listing: &str, header: &str) -> BTreeSet<(String, String)> {
    let (mut ns, mut inside) = ("-".to_string(), false);
    let mut out = BTreeSet::new();
    for l in listing.lines() {
        if let Some(n) = l.strip_prefix("## namespace ") {
            ns = n.trim().to_string();
        } else if l == "## disk" {
            ns = "-".into();
        }
        if l.starts_with('#') {
            inside = l.strip_prefix("# ").is_some_and(|h| h.starts_with(header));
        } else if inside {
            out.insert((ns.clone(), l.to_string()));
        }
    }
    out
}

fn image_names(listing: &str) -> BTreeSet<(String, String)> {
    section(listing, "images")
        .into_iter()
        .map(|(ns, l)| (ns, l.split(' ').next().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn live_repaired_copies_start_list_their_images_and_keep_every_blob() {
    let dir = tempfile::tempdir().unwrap();
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let original = fx.join("meta.db");
        let Some(lc) = LiveContainerd::start(v, &fx, &original) else {
            continue;
        };
        let a = lc.listing();
        drop(lc);

        let (damaged, _) = k8s_images_leaf_zeroed(&std::fs::read(&original).unwrap());
        let input = dir.path().join(format!("{v}-damaged.db"));
        std::fs::write(&input, &damaged).unwrap();
        let repaired = dir.path().join(format!("{v}-repaired.db"));
        let o = ctrdb(&[
            "repair",
            input.to_str().unwrap(),
            "-o",
            repaired.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{v}: {o:?}");

        let Some(lc) = LiveContainerd::start(v, &fx, &repaired) else {
            continue;
        };
        let b = lc.listing();
        drop(lc);

        let (before, after) = (image_names(&a), image_names(&b));
        let gone: Vec<_> = before.difference(&after).collect();
        assert!(
            gone.iter().all(|(ns, _)| ns == "k8s.io"),
            "{v}: images outside the damaged bucket are gone: {gone:?}"
        );
        assert!(!gone.is_empty(), "{v}: the zeroed leaf lost no image");
        assert!(
            after.is_subset(&before),
            "{v}: containerd lists images the original does not have: {:?}",
            after.difference(&before).collect::<Vec<_>>()
        );
        for disk in ["blobs/sha256", "snapshot dirs"] {
            let (kept, now) = (section(&a, disk), section(&b, disk));
            let lost: Vec<_> = kept.difference(&now).collect();
            assert!(
                lost.is_empty(),
                "{v}: containerd's startup GC on the repaired copy deleted {disk} the original keeps: {lost:?}"
            );
        }
        let leases = section(&b, "leases");
        assert!(
            leases
                .iter()
                .any(|(ns, l)| ns == "k8s.io" && l.starts_with("ctrdb-repair-")),
            "{v}: the repair lease is not listed: {leases:?}"
        );
    }
}

/// The digests of a listing's `# content` lines in `namespace`.
fn content_digests(listing: &str, namespace: &str) -> BTreeSet<String> {
    section(listing, "content")
        .into_iter()
        .filter(|(ns, _)| ns == namespace)
        .map(|(_, l)| l.split(' ').next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn live_a_lost_content_leaf_repaired_with_the_root_keeps_every_blob() {
    let dir = tempfile::tempdir().unwrap();
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let original = fx.join("meta.db");
        let Some(lc) = LiveContainerd::start(v, &fx, &original) else {
            continue;
        };
        let a = lc.listing();
        drop(lc);
        let bucket: [&[u8]; 4] = [b"v1", b"k8s.io", b"content", b"blob"];
        let (damaged, _) = leaf_zeroed(&std::fs::read(&original).unwrap(), &bucket);
        let input = dir.path().join(format!("{v}-damaged.db"));
        std::fs::write(&input, &damaged).unwrap();

        // Without the content store: the records are lost, and so are the
        // blob files only k8s.io recorded.
        let plain = dir.path().join(format!("{v}-repaired.db"));
        let o = ctrdb(&[
            "repair",
            input.to_str().unwrap(),
            "-o",
            plain.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{v}: {o:?}");
        let Some(lc) = LiveContainerd::start(v, &fx, &plain) else {
            continue;
        };
        let without = lc.listing();
        drop(lc);
        let deleted = section(&a, "blobs/sha256")
            .difference(&section(&without, "blobs/sha256"))
            .count();
        assert!(
            deleted > 0,
            "{v}: containerd kept every blob file of the lost content records without them; the content store would not be needed"
        );

        // In place under the root, with its content store.
        let Some(mut lc) = LiveContainerd::prepare(v, &fx, &input) else {
            continue;
        };
        let root = lc.work_dir().join("root");
        let o = ctrdb(&["repair", "--root", root.to_str().unwrap(), "--in-place"]);
        assert_eq!(o.status.code(), Some(1), "{v}: {o:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.contains("re-created from verified blob files"),
            "{v}: {text}"
        );
        lc.run();
        let b = lc.listing();
        drop(lc);
        for disk in ["blobs/sha256", "snapshot dirs"] {
            let (kept, now) = (section(&a, disk), section(&b, disk));
            let lost: Vec<_> = kept.difference(&now).collect();
            assert!(
                lost.is_empty(),
                "{v}: containerd's startup GC on the copy repaired with --root deleted {disk} the original keeps: {lost:?}"
            );
        }
        let (before, after) = (content_digests(&a, "k8s.io"), content_digests(&b, "k8s.io"));
        let missing: Vec<_> = before.difference(&after).collect();
        assert!(
            missing.is_empty(),
            "{v}: k8s.io content containerd no longer lists after the repair with --root: {missing:?}"
        );
        assert_eq!(
            image_names(&a),
            image_names(&b),
            "{v}: every image is listed"
        );
    }
}
