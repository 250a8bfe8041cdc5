//! Acceptance with real containerd: a fixture's meta.db with the k8s.io
//! images leaf zeroed (a page both meta trees share, so its image records are
//! lost) is repaired, and the release that wrote it starts on the repaired
//! copy with the fixture's content store and snapshotters. It lists every
//! image the original lists except k8s.io's lost ones, and after its startup
//! GC every blob file and snapshot directory the original keeps is still on
//! disk: the repair lease holds what the lost images referenced.

use std::collections::BTreeSet;

use super::common::*;
use super::live::*;
use super::repair_common::k8s_images_leaf_zeroed;

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
