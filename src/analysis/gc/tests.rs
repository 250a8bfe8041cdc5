//! The model's rules on small hand-built namespaces, one rule per test. These
//! check the model's logic; file compatibility is `tests/it/oracle_gc.rs`.

use std::collections::BTreeSet;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::bytes::display;
use crate::containerd::*;

/// "Now" in these tests: 2026-01-01T00:00:00Z.
const NOW: u64 = 1_767_225_600;
const PAST: &str = "2025-12-31T23:00:00Z";
const FUTURE: &str = "2026-01-01T01:00:00Z";

/// Test records borrow `'static` bytes: each string is leaked (tests only).
fn b(s: &str) -> Bytes<'static> {
    Bytes(Box::leak(s.as_bytes().to_vec().into_boxed_slice()))
}

fn labels(pairs: &[(&str, &str)]) -> Labels<'static> {
    pairs.iter().map(|(k, v)| (b(k), b(v))).collect()
}

fn ts(unix: i64) -> Timestamp {
    Timestamp {
        unix_secs: unix,
        nanos: 0,
        zone_offset_secs: None,
    }
}

fn image(name: &str, digest: &str, l: &[(&str, &str)]) -> Image<'static> {
    Image {
        name: b(name),
        target: Some(Target {
            digest: b(digest),
            media_type: b("m"),
            size: 1,
        }),
        target_valid: true,
        labels: labels(l),
        annotations: Labels::new(),
        created_at: None,
        updated_at: None,
    }
}

fn blob(digest: &str, l: &[(&str, &str)]) -> Blob<'static> {
    Blob {
        digest: b(digest),
        size: Some(1),
        labels: labels(l),
        created_at: None,
        updated_at: None,
    }
}

fn ingest(r: &str, expire_at: Option<i64>, expected: Option<&str>) -> Ingest<'static> {
    Ingest {
        ref_: b(r),
        backend_ref: None,
        expire_at: expire_at.map(ts),
        expected: expected.map(b),
        sequence: 1,
    }
}

fn container(id: &str, sn: &str, key: &str, l: &[(&str, &str)]) -> Container<'static> {
    Container {
        id: b(id),
        image: None,
        snapshotter: Some(b(sn)),
        snapshot_key: Some(b(key)),
        sandbox_id: None,
        runtime: None,
        spec: None,
        extensions: Default::default(),
        labels: labels(l),
        created_at: None,
        updated_at: None,
    }
}

fn snap(key: &str, parent: Option<&str>, l: &[(&str, &str)]) -> Snapshot<'static> {
    Snapshot {
        key: b(key),
        name: None,
        parent: parent.map(b),
        children: vec![],
        labels: labels(l),
        created_at: None,
        updated_at: None,
    }
}

fn snapshotter(name: &str, mut snaps: Vec<Snapshot<'static>>) -> Snapshotter<'static> {
    snaps.sort_by(|a, b| a.key.cmp(&b.key));
    Snapshotter {
        name: b(name),
        sequence: 1,
        snapshots: snaps,
    }
}

fn lease(id: &str, l: &[(&str, &str)]) -> Lease<'static> {
    Lease {
        id: b(id),
        created_at: None,
        labels: labels(l),
        content: vec![],
        snapshots: vec![],
        ingests: vec![],
        images: vec![],
    }
}

fn sandbox(id: &str, location: SandboxLocation, l: &[(&str, &str)]) -> Sandbox<'static> {
    Sandbox {
        id: b(id),
        location,
        sandboxer: None,
        runtime: None,
        spec: None,
        extensions: Default::default(),
        labels: labels(l),
        created_at: None,
        updated_at: None,
    }
}

/// A namespace "ns" with its lists sorted as the decoder returns them.
fn ns(mut n: Namespace<'static>) -> Namespace<'static> {
    n.name = b("ns");
    n.in_v1 = true;
    n.images.sort_by(|a, b| a.name.cmp(&b.name));
    n.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    n.ingests.sort_by(|a, b| a.ref_.cmp(&b.ref_));
    n.containers.sort_by(|a, b| a.id.cmp(&b.id));
    n.leases.sort_by(|a, b| a.id.cmp(&b.id));
    n
}

fn db(version: i64, namespaces: Vec<Namespace<'static>>) -> MetaDb<'static> {
    MetaDb {
        schema_version: Some(version),
        namespaces,
        ..Default::default()
    }
}

fn opts(rules: GcRules) -> GcOptions {
    GcOptions {
        now: UNIX_EPOCH + Duration::from_secs(NOW),
        rules,
    }
}

/// `collectable` of the namespace; every scenario also checks, for every subset
/// of its first 8 images removed, that the shared incremental mark gives what two
/// separate marks give.
fn run(n: Namespace<'static>, rules: GcRules) -> Collectable<'static> {
    let d = db(if rules >= GcRules::V2_0 { 4 } else { 3 }, vec![ns(n)]);
    let o = opts(rules);
    assert_shared_mark_matches(&d, &o);
    collectable(&d, &o)
}

fn assert_shared_mark_matches(d: &MetaDb<'static>, o: &GcOptions) {
    for n in &d.namespaces {
        let names: Vec<(Bytes<'static>, Bytes<'static>)> =
            n.images.iter().take(8).map(|i| (n.name, i.name)).collect();
        for mask in 0..(1u32 << names.len()) {
            let removed: BTreeSet<(Bytes<'static>, Bytes<'static>)> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| mask >> i & 1 == 1)
                .map(|(_, x)| *x)
                .collect();
            let (before, after) = collectable_before_and_after(d, &removed, o);
            assert_eq!(before, collectable(d, o), "before, removed {removed:?}");
            assert_eq!(
                after,
                collectable_without(d, &removed, o),
                "after, removed {removed:?}"
            );
        }
    }
}

fn content(c: &Collectable) -> Vec<String> {
    c.content.iter().map(|(_, d)| display(d.0)).collect()
}

fn snaps(c: &Collectable) -> Vec<String> {
    c.snapshots
        .iter()
        .map(|(_, s, k)| format!("{}/{}", display(s.0), display(k.0)))
        .collect()
}

fn ids(s: &BTreeSet<(Bytes<'_>, Bytes<'_>)>) -> Vec<String> {
    s.iter().map(|(_, x)| display(x.0)).collect()
}

const ALL: [GcRules; 4] = [GcRules::V1_6, GcRules::V1_7, GcRules::V2_0, GcRules::V2_2];

/// A manifest `m` → config `c` (which refs snapshot `overlayfs/chain`) and layer `l`; snapshot chain → parent.
fn image_tree() -> Namespace<'static> {
    Namespace {
        images: vec![image("img:1", "m", &[])],
        blobs: vec![
            blob(
                "m",
                &[
                    ("containerd.io/gc.ref.content.config", "c"),
                    ("containerd.io/gc.ref.content.l.0", "l"),
                ],
            ),
            blob("c", &[("containerd.io/gc.ref.snapshot.overlayfs", "chain")]),
            blob("l", &[]),
            blob("orphan", &[]),
        ],
        snapshotters: vec![snapshotter(
            "overlayfs",
            vec![
                snap("chain", Some("base"), &[]),
                snap("base", None, &[]),
                snap("lone", None, &[]),
            ],
        )],
        ..Default::default()
    }
}

#[test]
fn image_keeps_its_tree_and_nothing_else() {
    for r in ALL {
        let c = run(image_tree(), r);
        assert_eq!(content(&c), ["orphan"], "{r:?}");
        assert_eq!(snaps(&c), ["overlayfs/lone"], "{r:?}");
    }
}

#[test]
fn removing_the_image_makes_its_tree_collectable() {
    let d = db(3, vec![ns(image_tree())]);
    let removed = BTreeSet::from([(b("ns"), b("img:1"))]);
    let c = collectable_without(&d, &removed, &opts(GcRules::V1_6));
    assert_eq!(content(&c), ["c", "l", "m", "orphan"]);
    assert_eq!(
        snaps(&c),
        ["overlayfs/base", "overlayfs/chain", "overlayfs/lone"]
    );
    // A removed name of another namespace changes nothing.
    let other = BTreeSet::from([(b("other"), b("img:1"))]);
    assert_eq!(
        collectable_without(&d, &other, &opts(GcRules::V1_6)),
        collectable(&d, &opts(GcRules::V1_6))
    );
    // Removed images are never reported as collectable images (2.x).
    let d4 = db(4, vec![ns(image_tree())]);
    assert!(collectable_without(&d4, &removed, &opts(GcRules::V2_0))
        .images
        .is_empty());
}

#[test]
fn second_image_with_same_target_keeps_the_tree() {
    let mut n = image_tree();
    n.images.push(image("img:alias", "m", &[]));
    let d = db(3, vec![ns(n)]);
    let removed = BTreeSet::from([(b("ns"), b("img:1"))]);
    let c = collectable_without(&d, &removed, &opts(GcRules::V1_6));
    assert_eq!(c, collectable(&d, &opts(GcRules::V1_6)));
}

#[test]
fn label_prefix_matching_is_containerds() {
    let n = Namespace {
        blobs: vec![
            blob(
                "root",
                &[
                    ("containerd.io/gc.root", ""),
                    ("containerd.io/gc.ref.content", "exact"),
                    ("containerd.io/gc.ref.content.m.1", "dot"),
                    ("containerd.io/gc.ref.content/x", "slash"),
                    ("containerd.io/gc.ref.contentX", "nope1"),
                    ("containerd.io/gc.ref.content-x", "nope2"),
                    ("containerd.io/gc.ref.snapshot.native/extra", "s1"),
                    ("containerd.io/gc.ref.snapshot.overlayfs", "s2"),
                    ("containerd.io/gc.ref.snapshot", "nope3"),
                ],
            ),
            blob("exact", &[]),
            blob("dot", &[]),
            blob("slash", &[]),
            blob("nope1", &[]),
            blob("nope2", &[]),
        ],
        snapshotters: vec![
            snapshotter("native", vec![snap("s1", None, &[]), snap("s2", None, &[])]),
            snapshotter(
                "overlayfs",
                vec![
                    snap("s1", None, &[]),
                    snap("s2", None, &[]),
                    snap("nope3", None, &[]),
                ],
            ),
        ],
        ..Default::default()
    };
    for r in ALL {
        let c = run(n.clone(), r);
        assert_eq!(content(&c), ["nope1", "nope2"], "{r:?}");
        assert_eq!(
            snaps(&c),
            ["native/s2", "overlayfs/nope3", "overlayfs/s1"],
            "{r:?}"
        );
    }
}

#[test]
fn gc_root_label_on_snapshot_and_content() {
    let n = Namespace {
        blobs: vec![
            blob("r", &[("containerd.io/gc.root", "x")]),
            blob("rx", &[("containerd.io/gc.rootX", "x")]),
        ],
        snapshotters: vec![snapshotter(
            "sn",
            vec![
                snap("child", Some("parent"), &[("containerd.io/gc.root", "")]),
                snap("parent", None, &[]),
            ],
        )],
        ..Default::default()
    };
    for r in ALL {
        let c = run(n.clone(), r);
        // 2.2 made gc.root a prefix.
        let want: &[&str] = if r == GcRules::V2_2 { &[] } else { &["rx"] };
        assert_eq!(content(&c), want, "{r:?}");
        assert!(c.snapshots.is_empty(), "{r:?}");
    }
}

#[test]
fn lease_expiry_and_resources() {
    let mut live = lease("live", &[("containerd.io/gc.expire", FUTURE)]);
    live.content = vec![b("a")];
    live.snapshots = vec![(b("sn"), b("s"))];
    live.ingests = vec![b("i-live")];
    let mut dead = lease("dead", &[("containerd.io/gc.expire", PAST)]);
    dead.content = vec![b("b")];
    dead.ingests = vec![b("i-dead")];
    let mut bad = lease("bad", &[("containerd.io/gc.expire", "tomorrow")]);
    bad.content = vec![b("c")];
    let n = Namespace {
        leases: vec![live, dead, bad, lease("plain", &[])],
        blobs: vec![blob("a", &[]), blob("b", &[]), blob("c", &[])],
        ingests: vec![ingest("i-live", None, None), ingest("i-dead", None, None)],
        snapshotters: vec![snapshotter("sn", vec![snap("s", None, &[])])],
        ..Default::default()
    };
    for r in ALL {
        let c = run(n.clone(), r);
        assert_eq!(ids(&c.leases), ["dead"], "{r:?}");
        assert_eq!(content(&c), ["b"], "{r:?}");
        assert_eq!(ids(&c.ingests), ["i-dead"], "{r:?}");
        assert!(c.snapshots.is_empty(), "{r:?}");
    }
}

#[test]
fn expiry_boundary_is_strict() {
    // Expiring exactly now is not yet expired (`now.After(exp)`).
    let n = Namespace {
        leases: vec![lease(
            "edge",
            &[("containerd.io/gc.expire", "2026-01-01T00:00:00Z")],
        )],
        ingests: vec![
            ingest("edge", Some(NOW as i64), None),
            ingest("gone", Some(NOW as i64 - 1), None),
        ],
        ..Default::default()
    };
    let c = run(n, GcRules::V1_6);
    assert!(c.leases.is_empty());
    assert_eq!(ids(&c.ingests), ["gone"]);
}

#[test]
fn flat_lease_does_not_follow_labels_but_follows_parents() {
    let mut l = lease("flat", &[("containerd.io/gc.flat", "1")]);
    l.content = vec![b("m")];
    l.snapshots = vec![(b("sn"), b("top"))];
    l.ingests = vec![b("ing")];
    let n = Namespace {
        leases: vec![l],
        blobs: vec![
            blob("m", &[("containerd.io/gc.ref.content.config", "c")]),
            blob("c", &[]),
            blob("e", &[("containerd.io/gc.ref.content", "e-child")]),
            blob("e-child", &[]),
        ],
        // A flat lease's ingest is not flat: its expected blob's labels are followed.
        ingests: vec![ingest("ing", None, Some("e"))],
        snapshotters: vec![snapshotter(
            "sn",
            vec![
                snap(
                    "top",
                    Some("base"),
                    &[("containerd.io/gc.ref.content", "c")],
                ),
                snap("base", None, &[]),
            ],
        )],
        ..Default::default()
    };
    for r in ALL {
        let c = run(n.clone(), r);
        assert_eq!(content(&c), ["c"], "{r:?}");
        assert!(c.snapshots.is_empty(), "{r:?}");
        assert!(c.ingests.is_empty(), "{r:?}");
    }
}

#[test]
fn flat_and_normal_paths_to_the_same_blob() {
    // Reached flat by the lease and normally by the image: labels are followed.
    let mut l = lease("flat", &[("containerd.io/gc.flat", "")]);
    l.content = vec![b("m")];
    let mut n = image_tree();
    n.leases = vec![l];
    let c = run(n, GcRules::V1_6);
    assert_eq!(content(&c), ["orphan"]);
}

#[test]
fn ingests_root_only_while_unexpired_and_keep_expected() {
    let n = Namespace {
        ingests: vec![
            ingest("fresh", Some(NOW as i64 + 60), Some("x")),
            ingest("stale", Some(NOW as i64 - 60), Some("y")),
            ingest("noexpiry", None, None),
        ],
        blobs: vec![blob("x", &[]), blob("y", &[])],
        ..Default::default()
    };
    let c = run(n, GcRules::V1_6);
    assert_eq!(ids(&c.ingests), ["noexpiry", "stale"]);
    assert_eq!(content(&c), ["y"]);
}

#[test]
fn containers_keep_their_snapshot_and_label_refs_not_their_image() {
    let mut n = image_tree();
    n.images.clear();
    n.containers = vec![container(
        "c1",
        "overlayfs",
        "chain",
        &[("containerd.io/gc.ref.content", "l")],
    )];
    let mut c1 = n.containers[0].clone();
    c1.image = Some(b("img:1"));
    n.containers = vec![c1];
    let c = run(n, GcRules::V1_6);
    assert_eq!(content(&c), ["c", "m", "orphan"]);
    assert_eq!(snaps(&c), ["overlayfs/lone"]);
}

#[test]
fn namespaces_are_separate() {
    let a = ns(image_tree());
    let mut other = ns(Namespace {
        blobs: vec![blob("m", &[]), blob("c", &[])],
        ..Default::default()
    });
    other.name = b("other");
    let c = collectable(&db(3, vec![a, other]), &opts(GcRules::V1_6));
    let other_content: Vec<_> = c
        .content
        .iter()
        .filter(|(n, _)| n.0 == b"other")
        .map(|(_, d)| display(d.0))
        .collect();
    assert_eq!(other_content, ["c", "m"]);
}

#[test]
fn image_label_refs_are_roots_in_every_version() {
    let n = Namespace {
        images: vec![image(
            "i",
            "t",
            &[("containerd.io/gc.ref.content.extra", "x")],
        )],
        blobs: vec![blob("t", &[]), blob("x", &[])],
        ..Default::default()
    };
    for r in ALL {
        assert!(run(n.clone(), r).is_empty(), "{r:?}");
    }
}

#[test]
fn sandboxes_by_version_and_location() {
    let n = Namespace {
        sandboxes: vec![
            sandbox(
                "v1",
                SandboxLocation::V1,
                &[("containerd.io/gc.ref.content", "a")],
            ),
            sandbox(
                "top",
                SandboxLocation::TopLevel,
                &[("containerd.io/gc.ref.content", "b")],
            ),
        ],
        blobs: vec![blob("a", &[]), blob("b", &[])],
        ..Default::default()
    };
    let at = |v: i64, r: GcRules| content(&collectable(&db(v, vec![ns(n.clone())]), &opts(r)));
    assert_eq!(at(3, GcRules::V1_6), ["a", "b"]);
    assert_eq!(at(3, GcRules::V1_7), ["b"]);
    // 2.x on a 1.7 file: migration 4 moves top-level sandboxes into v1 first.
    assert_eq!(at(3, GcRules::V2_0), Vec::<String>::new());
    assert_eq!(at(4, GcRules::V2_0), ["b"]);
}

#[test]
fn image_expiry_is_2x_only() {
    let n = Namespace {
        images: vec![
            image("old", "t1", &[("containerd.io/gc.expire", PAST)]),
            image("new", "t2", &[("containerd.io/gc.expire", FUTURE)]),
            image("bad", "t3", &[("containerd.io/gc.expire", "never")]),
        ],
        blobs: vec![blob("t1", &[]), blob("t2", &[]), blob("t3", &[])],
        ..Default::default()
    };
    for r in [GcRules::V1_6, GcRules::V1_7] {
        assert!(run(n.clone(), r).is_empty(), "{r:?}");
    }
    for r in [GcRules::V2_0, GcRules::V2_2] {
        let c = run(n.clone(), r);
        assert_eq!(ids(&c.images), ["old"], "{r:?}");
        assert_eq!(content(&c), ["t1"], "{r:?}");
    }
}

#[test]
fn expired_image_kept_by_lease_or_image_ref() {
    let mut l = lease("l", &[]);
    l.images = vec![b("leased")];
    let n = Namespace {
        images: vec![
            image("leased", "t1", &[("containerd.io/gc.expire", PAST)]),
            image("named", "t2", &[("containerd.io/gc.expire", PAST)]),
        ],
        blobs: vec![
            blob("t1", &[]),
            blob("t2", &[]),
            blob(
                "holder",
                &[
                    ("containerd.io/gc.root", ""),
                    ("containerd.io/gc.ref.image.x", "named"),
                ],
            ),
        ],
        leases: vec![l],
        ..Default::default()
    };
    assert!(run(n.clone(), GcRules::V2_0).is_empty());
    // 1.x ignores gc.ref.image and lease images, but never collects images anyway.
    assert!(run(n, GcRules::V1_6).is_empty());
}

#[test]
fn flat_lease_image_keeps_target_only() {
    let mut l = lease("l", &[("containerd.io/gc.flat", "")]);
    l.images = vec![b("img:1")];
    let mut n = image_tree();
    n.images = vec![image("img:1", "m", &[("containerd.io/gc.expire", PAST)])];
    n.leases = vec![l];
    let c = run(n, GcRules::V2_0);
    assert!(c.images.is_empty());
    assert_eq!(content(&c), ["c", "l", "orphan"]);
}

#[test]
fn back_references_2_2() {
    let n = Namespace {
        images: vec![
            image("primary", "m", &[]),
            image(
                "extra",
                "x",
                &[
                    ("containerd.io/gc.expire", PAST),
                    ("containerd.io/gc.bref.image", "primary"),
                ],
            ),
            image(
                "stray",
                "y",
                &[
                    ("containerd.io/gc.expire", PAST),
                    ("containerd.io/gc.bref.image", "missing"),
                ],
            ),
        ],
        blobs: vec![
            blob("m", &[]),
            blob("x", &[]),
            blob("y", &[]),
            blob("kid", &[("containerd.io/gc.bref.content.p", "m")]),
            blob("ckid", &[("containerd.io/gc.bref.container", "ctr")]),
        ],
        containers: vec![container("ctr", "sn", "active", &[])],
        snapshotters: vec![snapshotter(
            "sn",
            vec![
                snap("active", None, &[]),
                snap(
                    "bsnap",
                    None,
                    &[("containerd.io/gc.bref.snapshot.sn/x", "active")],
                ),
            ],
        )],
        ..Default::default()
    };
    let c = run(n.clone(), GcRules::V2_2);
    assert_eq!(ids(&c.images), ["stray"]);
    assert_eq!(content(&c), ["y"]);
    assert!(c.snapshots.is_empty());
    let c = run(n, GcRules::V2_0);
    assert_eq!(ids(&c.images), ["extra", "stray"]);
    assert_eq!(content(&c), ["ckid", "kid", "x", "y"]);
    assert_eq!(snaps(&c), ["sn/bsnap"]);
}

#[test]
fn back_reference_from_flat_parent_does_not_hold() {
    let mut l = lease("l", &[("containerd.io/gc.flat", "")]);
    l.content = vec![b("p")];
    let n = Namespace {
        leases: vec![l],
        blobs: vec![
            blob("p", &[]),
            blob("kid", &[("containerd.io/gc.bref.content", "p")]),
        ],
        ..Default::default()
    };
    assert_eq!(content(&run(n, GcRules::V2_2)), ["kid"]);
}

#[test]
fn conditional_references_2_3() {
    let used_recently = "2025-12-31T23:30:00Z"; // 30 min before NOW
    let n = Namespace {
        blobs: vec![blob(
            "cfg",
            &[
                ("containerd.io/gc.root", ""),
                ("containerd.io/gc.cond.snapshot.sn", "usedat<1h|recent"),
                (
                    "containerd.io/gc.cond.snapshot.sn/2",
                    "usedat<1h,usedat>2h|stale",
                ),
                ("containerd.io/gc.cond.snapshot.sn/3", "usedat<=1h|weird"),
            ],
        )],
        snapshotters: vec![snapshotter(
            "sn",
            vec![
                snap(
                    "recent",
                    Some("base"),
                    &[("containerd.io/gc.cond.value-usedat", used_recently)],
                ),
                snap("base", None, &[]),
                snap(
                    "stale",
                    None,
                    &[("containerd.io/gc.cond.value-usedat", "2025-12-31T20:00:00Z")],
                ),
                snap(
                    "weird",
                    None,
                    &[("containerd.io/gc.cond.value-usedat", used_recently)],
                ),
            ],
        )],
        ..Default::default()
    };
    assert_eq!(snaps(&run(n.clone(), GcRules::V2_2)), ["sn/weird"]);
    assert_eq!(
        snaps(&run(n, GcRules::V2_0)),
        ["sn/base", "sn/recent", "sn/stale", "sn/weird"]
    );
}

#[test]
fn snapshot_keys_are_containerd_strings() {
    // containerd splits "<snapshotter>/<key>" at the first '/': a container on
    // snapshotter "a" with key "b/c" and a snapshot "c" of snapshotter "a/b" share a node key.
    let n = Namespace {
        containers: vec![container("ctr", "a", "b/c", &[])],
        snapshotters: vec![
            snapshotter("a", vec![snap("b/c", None, &[])]),
            snapshotter("a/b", vec![snap("c", None, &[])]),
        ],
        ..Default::default()
    };
    assert!(run(n, GcRules::V1_6).is_empty());
}

#[test]
fn rules_for_db() {
    let plain = |v| db(v, vec![ns(image_tree())]);
    assert_eq!(GcRules::for_db(&plain(3)), GcRules::V1_7);
    assert_eq!(GcRules::for_file(&plain(3), true), GcRules::V1_6);
    assert_eq!(GcRules::for_db(&plain(4)), GcRules::V2_0);
    let mut n = image_tree();
    n.blobs
        .push(blob("k", &[("containerd.io/gc.bref.image", "img:1")]));
    assert_eq!(GcRules::for_db(&db(4, vec![ns(n.clone())])), GcRules::V2_2);
    assert_eq!(GcRules::for_db(&db(3, vec![ns(n)])), GcRules::V1_7);
}

#[test]
fn collectable_set_ops() {
    let a = run(image_tree(), GcRules::V1_6);
    assert_eq!(a.len(), 2);
    assert!(!a.is_empty());
    assert!(a.minus(&a).is_empty());
    assert_eq!(a.minus(&Collectable::default()), a);
}
