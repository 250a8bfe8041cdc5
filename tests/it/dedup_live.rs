//! Acceptance with real containerd: for each fixture release and each policy, the
//! cleaned copy written by `ctrdb dedup --output` is started by that release's own
//! containerd (with the fixture's content store and snapshotters). After its
//! startup GC, `ctr images ls` in every namespace shows exactly the names the plan
//! kept, and everything else — content, ingests, containers, leases, snapshots,
//! and the blob / ingest / snapshot directories on disk — is identical to what
//! the same containerd shows when it starts on the original file.
//!
//! One start on the original and one per policy: 4 starts per release.

use std::collections::BTreeSet;
use std::time::Instant;

use super::dedup_cli::dedup_json;
use super::live::*;

/// Each line of a listing with, for lines of a `# images` section, the
/// `(namespace, image name)` it lists.
fn classify_lines(listing: &str) -> Vec<(&str, Option<(String, String)>)> {
    let mut ns = None;
    let mut in_images = false;
    let mut out = Vec::new();
    for l in listing.lines() {
        let mut image = None;
        if let Some(n) = l.strip_prefix("## namespace ") {
            ns = Some(n.trim().to_string());
            in_images = false;
        } else if l.starts_with("## ") {
            ns = None;
            in_images = false;
        } else if l.starts_with('#') {
            in_images = ns.is_some() && l.starts_with("# images");
        } else if in_images {
            if let (Some(n), Some(name)) = (&ns, l.split(' ').next()) {
                image = Some((n.clone(), name.to_string()));
            }
        }
        out.push((l, image));
    }
    out
}

/// `(namespace, image name)` of the `# images` sections of a listing.
fn listed_images(listing: &str) -> BTreeSet<(String, String)> {
    classify_lines(listing)
        .into_iter()
        .filter_map(|(_, image)| image)
        .collect()
}

/// The listing without the image lines of `(namespace, name)` in `drop`.
fn without_images(listing: &str, drop: &BTreeSet<(String, String)>) -> String {
    classify_lines(listing)
        .into_iter()
        .filter(|(_, image)| !image.as_ref().is_some_and(|i| drop.contains(i)))
        .map(|(l, _)| format!("{l}\n"))
        .collect()
}

#[test]
fn live_cleaned_copies_start_with_exactly_the_kept_names() {
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let original = fx.join("meta.db");
        let t = Instant::now();
        let Some(lc) = LiveContainerd::start(v, &fx, &original) else {
            continue;
        };
        let a = lc.listing();
        drop(lc);
        let listed = listed_images(&a);
        assert!(
            listed.len() >= 20,
            "{v}: the original listing shows {} images:\n{a}",
            listed.len()
        );
        let dir = tempfile::tempdir().unwrap();
        for policy in ["safe", "tagged", "one-per-digest"] {
            let out = dir.path().join(format!("{policy}.db"));
            let (code, doc) = dedup_json(
                &[
                    "--policy",
                    policy,
                    "--yes",
                    "--output",
                    out.to_str().unwrap(),
                ],
                &original,
            );
            assert_eq!(code, Some(0), "{v} {policy}: {:?}", doc.refused);
            let removed = doc.removed();
            let kept: BTreeSet<(String, String)> = doc
                .decisions
                .iter()
                .filter(|d| d.action == "keep")
                .map(|d| (d.namespace.clone(), d.name.clone()))
                .collect();
            assert_eq!(
                listed,
                kept.union(&removed).cloned().collect(),
                "{v}: the plan covers every listed image"
            );
            let lc = LiveContainerd::start(v, &fx, &out).expect("started above");
            let b = lc.listing();
            drop(lc);
            assert_eq!(
                listed_images(&b),
                kept,
                "{v} {policy}: ctr images ls shows exactly the kept names"
            );
            assert_same_listing(
                &format!(
                    "containerd {v} {policy}: original without the removed images vs cleaned copy"
                ),
                &without_images(&a, &removed),
                &b,
            );
            eprintln!(
                "live dedup: {v} {policy}: {} removed, {} protected, GC before {} / after {} records",
                removed.len(),
                doc.summary.protected,
                doc.gc.before.len(),
                doc.gc.after.len()
            );
        }
        eprintln!(
            "live dedup: {v}: 4 starts in {} ms",
            t.elapsed().as_millis()
        );
    }
}
