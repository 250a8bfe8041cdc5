//! Our GC model (`ctrdb::analysis::gc::collectable`) predicts exactly what containerd's own
//! garbage collector removes: on every fixture and on edited copies of it
//! (images, containers, leases deleted; lease expiry, flat leases, ingest
//! expiry, gc.root and reference labels changed with `editdb`), the content,
//! snapshots, leases and ingests we call collectable equal what `ctrmeta -gc`
//! (containerd 1.6.20's `GarbageCollect` on a copy, run at the same moment)
//! removes.
//!
//! Each fixture is modelled with its own rules (`GcRules::for_file`: 1.6, 1.7,
//! 2.0). The 1.6 oracle does not know 2.x's rules (image expiry, sandbox label
//! refs, lease images): scenarios without those features must agree with the
//! fixture's rules as well as with `V1_6`; the scenarios that use them check that
//! the 2.x prediction differs from the 1.6 one exactly as documented (an expired
//! image acts like a deleted one; a sandbox label keeps its blob).
//! Skips (printing why) when the Go tools are absent (`CTRDB_ORACLE_BIN`), or fails
//! under `CTRDB_REQUIRE_ORACLES=1` (`common::skip_or_fail`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use serde_json::Value;

use super::common::*;
use ctrdb::analysis::gc::{collectable, Collectable, GcOptions, GcRules};
use ctrdb::bolt::{DbFile, LockMode};
use ctrdb::containerd::MetaDb;

const PAST: &str = "2020-01-01T00:00:00Z";

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Decodes a DB file: the records and the rules for it.
fn decode(path: &Path) -> (MetaDb<'static>, GcRules) {
    // The records borrow from the mapped file; the test keeps it mapped for good.
    let file: &'static DbFile = Box::leak(Box::new(DbFile::open(path, LockMode::None).unwrap()));
    let db = file.db().unwrap();
    let meta = MetaDb::decode(&db);
    let rules = GcRules::for_file(&meta, db.meta().has_freelist());
    (meta, rules)
}

/// `"<ns> <kind> <id>"` lines, the oracle's syntax, for the kinds the 1.6 GC removes.
fn lines(c: &Collectable<'_>) -> BTreeSet<String> {
    let mut v = BTreeSet::new();
    v.extend(
        c.content
            .iter()
            .map(|(n, d)| format!("{} content {}", s(n.0), s(d.0))),
    );
    v.extend(
        c.snapshots
            .iter()
            .map(|(n, sn, k)| format!("{} snapshot {}/{}", s(n.0), s(sn.0), s(k.0))),
    );
    v.extend(
        c.leases
            .iter()
            .map(|(n, l)| format!("{} lease {}", s(n.0), s(l.0))),
    );
    v.extend(
        c.ingests
            .iter()
            .map(|(n, i)| format!("{} ingest {}", s(n.0), s(i.0))),
    );
    v
}

/// The oracle's removals on a copy of `db`, and the time it ran at.
fn oracle_gc(bin: &Path, db: &Path, tmp: &Path) -> (BTreeSet<String>, SystemTime) {
    let copy = tmp.join("oracle-gc-copy.db");
    std::fs::copy(db, &copy).unwrap();
    let now = SystemTime::now();
    let o = Command::new(bin.join("ctrmeta"))
        .args(["-gc", "-json"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ctrmeta -gc {}: {}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let removed = v["metadata_objects_removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string());
    (removed.collect(), now)
}

fn a(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// A named list of editdb operations.
type Scenario = (String, Vec<Vec<String>>);

fn rm_image(ns: &str, name: &str) -> Vec<String> {
    a(&["rm-bucket", "v1", ns, "images", name])
}

fn put_label(path: &[&str], key: &str, value: &str) -> Vec<Vec<String>> {
    let mut mk = a(&["mk-bucket"]);
    mk.extend(a(path));
    mk.push("labels".into());
    let mut put = a(&["put"]);
    put.extend(a(path));
    put.extend(a(&["labels", key, value]));
    vec![mk, put]
}

/// Removes `containerd.io/gc.root` from every snapshot of `default`.
fn root_snapshot_unlabels(meta: &MetaDb) -> Vec<Vec<String>> {
    let mut ops = vec![];
    for ns in meta.namespaces.iter().filter(|n| n.name.0 == b"default") {
        for sn in &ns.snapshotters {
            for x in sn
                .snapshots
                .iter()
                .filter(|x| x.labels.keys().any(|k| k.0 == b"containerd.io/gc.root"))
            {
                let (sn, key) = (s(sn.name.0), s(x.key.0));
                ops.push(a(&[
                    "rm-key",
                    "v1",
                    "default",
                    "snapshots",
                    &sn,
                    &key,
                    "labels",
                    "containerd.io/gc.root",
                ]));
            }
        }
    }
    ops
}

/// Edits that make things collectable, derived from the fixture's records so
/// they work on every release (scenario names say what they do).
fn scenarios(meta: &MetaDb) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = vec![("unmodified".into(), vec![])];
    out.push((
        "restart-test standard edits".into(),
        vec![
            rm_image("default", "docker.io/library/app:1.0"),
            rm_image("moby", "docker.io/library/dtiny:latest"),
            a(&["rm-bucket", "v1", "default", "containers", "app-ctr"]),
            a(&["rm-bucket", "v1", "default", "leases", "ctrdb-res-lease"]),
        ],
    ));
    // The moby config alias, by target (same as restart-test.sh's second moby edit).
    if let Some(moby) = meta.namespaces.iter().find(|n| n.name.0 == b"moby") {
        if let Some(last) = out.last_mut() {
            for i in moby
                .images
                .iter()
                .filter(|i| i.name.0.starts_with(b"sha256:"))
            {
                last.1.push(rm_image("moby", &s(i.name.0)));
            }
        }
    }
    let mut all_images = vec![];
    let mut all_containers = vec![];
    let mut all_leases = vec![];
    for ns in meta.namespaces.iter().filter(|n| n.in_v1) {
        let n = s(ns.name.0);
        // Every name of one target, one target at a time.
        let mut by_target: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for i in &ns.images {
            let t = i.target_digest().map(|d| s(d.0)).unwrap_or_default();
            by_target.entry(t).or_default().push(s(i.name.0));
        }
        for (t, names) in &by_target {
            out.push((
                format!("{n}: all {} names of target {t}", names.len()),
                names.iter().map(|x| rm_image(&n, x)).collect(),
            ));
        }
        all_images.extend(ns.images.iter().map(|i| rm_image(&n, &s(i.name.0))));
        for c in &ns.containers {
            let op = a(&["rm-bucket", "v1", &n, "containers", &s(c.id.0)]);
            out.push((
                format!("{n}: container {} removed", s(c.id.0)),
                vec![op.clone()],
            ));
            all_containers.push(op);
        }
        all_leases.extend(
            ns.leases
                .iter()
                .map(|l| a(&["rm-bucket", "v1", &n, "leases", &s(l.id.0)])),
        );
    }
    out.push(("no leases".into(), all_leases.clone()));
    out.push(("no containers".into(), all_containers.clone()));
    out.push(("no images".into(), all_images.clone()));
    out.push((
        "no images, containers or leases".into(),
        [all_images.clone(), all_containers.clone(), all_leases].concat(),
    ));

    // Lease expiry, unparsable expiry, flat leases (with the images gone so that lease roots matter).
    let default_images: Vec<Vec<String>> = all_images
        .iter()
        .filter(|op| op[2] == "default")
        .cloned()
        .collect();
    let lease = ["v1", "default", "leases", "ctrdb-res-lease"];
    let plain = ["v1", "default", "leases", "ctrdb-plain-lease"];
    let root_blob = meta
        .namespaces
        .iter()
        .find(|n| n.name.0 == b"default")
        .and_then(|n| {
            n.blobs
                .iter()
                .find(|b| b.labels.keys().any(|k| k.0 == b"containerd.io/gc.root"))
        })
        .map(|b| s(b.digest.0));
    let mut expire = default_images.clone();
    expire.extend(put_label(&lease, "containerd.io/gc.expire", PAST));
    expire.extend(put_label(&plain, "containerd.io/gc.expire", PAST));
    out.push(("default: no images, leases expired".into(), expire));
    let mut bad = default_images.clone();
    bad.extend(put_label(&lease, "containerd.io/gc.expire", "yesterday"));
    out.push(("default: no images, lease expiry unparsable".into(), bad));
    let mut future = default_images.clone();
    future.extend(put_label(
        &lease,
        "containerd.io/gc.expire",
        "2999-01-01T00:00:00+02:00",
    ));
    out.push(("default: no images, lease expiry far future".into(), future));
    // Without its snapshot resource, the lease keeps the config blob; only a
    // non-flat lease follows the blob's gc.ref.snapshot label to the layer chain.
    let mut normal = [default_images.clone(), all_containers.clone()].concat();
    normal.push(a(&[
        "rm-bucket",
        "v1",
        "default",
        "leases",
        "ctrdb-res-lease",
        "snapshots",
    ]));
    normal.extend(root_snapshot_unlabels(meta));
    let mut flat = normal.clone();
    flat.extend(put_label(&lease, "containerd.io/gc.flat", "1"));
    out.push(("default: no images or containers, flat lease".into(), flat));
    out.push((
        "default: no images or containers, normal lease".into(),
        normal,
    ));

    // Ingests without expiry are only kept by a lease.
    out.push((
        "ingests lose expireat".into(),
        vec![
            a(&[
                "rm-key",
                "v1",
                "default",
                "content",
                "ingests",
                "ctrdb-orphan-ingest",
                "expireat",
            ]),
            a(&[
                "rm-key",
                "v1",
                "buildkit",
                "content",
                "ingests",
                "ctrdb-shared-ingest",
                "expireat",
            ]),
        ],
    ));

    // gc.root labels removed; then reference labels added to the root blob.
    if let Some(rb) = &root_blob {
        let rb_path = ["v1", "default", "content", "blob", rb.as_str()];
        let mut ops = vec![a(&[
            "rm-key",
            "v1",
            "default",
            "content",
            "blob",
            rb,
            "labels",
            "containerd.io/gc.root",
        ])];
        ops.extend(root_snapshot_unlabels(meta));
        out.push(("default: gc.root labels removed".into(), ops));

        // With the default images and containers gone, the root blob's labels decide.
        if let Some(ns) = meta.namespaces.iter().find(|n| n.name.0 == b"default") {
            let mut ops = [default_images.clone(), all_containers.clone()].concat();
            let blobs: Vec<String> = ns
                .blobs
                .iter()
                .map(|b| s(b.digest.0))
                .filter(|d| d != rb)
                .collect();
            let snaps: Vec<(String, String)> = ns
                .snapshotters
                .iter()
                .flat_map(|sn| sn.snapshots.iter().map(move |x| (s(sn.name.0), s(x.key.0))))
                .collect();
            let pick = |i: usize| {
                blobs
                    .get(i % blobs.len().max(1))
                    .cloned()
                    .unwrap_or_default()
            };
            for (k, v) in [
                ("containerd.io/gc.ref.content", pick(0)),
                ("containerd.io/gc.ref.content.m.1", pick(1)),
                ("containerd.io/gc.ref.content/x", pick(2)),
                ("containerd.io/gc.ref.contentX", pick(3)),
                ("containerd.io/gc.ref.content-y", pick(4)),
                ("containerd.io/gc.ref.image", pick(5)),
            ] {
                ops.extend(put_label(&rb_path, k, &v));
            }
            if let Some((sn, key)) = snaps.iter().find(|(_, k)| k.starts_with("sha256:")) {
                ops.extend(put_label(
                    &rb_path,
                    &format!("containerd.io/gc.ref.snapshot.{sn}/extra"),
                    key,
                ));
            }
            if let Some((_, key)) = snaps.iter().rev().find(|(_, k)| k.starts_with("sha256:")) {
                ops.extend(put_label(
                    &rb_path,
                    "containerd.io/gc.ref.snapshot.native",
                    key,
                ));
            }
            out.push((
                "default: no images/containers, reference labels on the gc.root blob".into(),
                ops,
            ));
        }
    }
    out
}

#[test]
fn collectable_equals_containerd_1_6_gc_on_fixtures_and_edits() {
    let Some(bin) = oracle_bin("collectable_equals_containerd_1_6_gc_on_fixtures_and_edits") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut total = (0usize, 0usize);
    for (name, path) in fixtures() {
        let (meta0, _) = decode(&path);
        for (what, ops) in scenarios(&meta0) {
            let db = tmp.path().join("edited.db");
            std::fs::copy(&path, &db).unwrap();
            for op in &ops {
                editdb(&bin, &db, op);
            }
            let (meta, rules) = decode(&db);
            let (theirs, now) = oracle_gc(&bin, &db, tmp.path());
            for r in BTreeSet::from([rules, GcRules::V1_6]) {
                let c = collectable(&meta, &GcOptions { now, rules: r });
                let ours = lines(&c);
                assert!(
                    c.images.is_empty(),
                    "{name} [{what}] {r:?}: no 2.x image expiry in these scenarios"
                );
                if ours != theirs {
                    panic!(
                        "{name} [{what}] {r:?}: model differs from containerd 1.6.20 GC\n  only ours: {:?}\n  only containerd: {:?}",
                        ours.difference(&theirs).collect::<Vec<_>>(),
                        theirs.difference(&ours).collect::<Vec<_>>()
                    );
                }
            }
            eprintln!(
                "{name} [{what}] ({rules:?}): {} removals agree",
                theirs.len()
            );
            total.0 += 1;
            total.1 += theirs.len();
        }
    }
    eprintln!(
        "{} scenarios, {} removals, all equal to containerd 1.6.20's GC",
        total.0, total.1
    );
    assert!(total.1 > 100, "the edits should make plenty collectable");
}

/// 2.x-only rules on the 2.1.9 fixture, checked through the 1.6 oracle:
/// an expired image (`containerd.io/gc.expire` in the past) is collected by 2.x
/// and then acts like a deleted image, so `V2_0` on the labelled copy must equal
/// the 1.6 GC on a copy without that image (plus the image itself); a sandbox's
/// `gc.ref.content` label keeps a blob under 2.x that 1.6 collects.
#[test]
fn gc_2x_rules_differ_from_1_6_exactly_as_documented() {
    let Some(bin) = oracle_bin("gc_2x_rules_differ_from_1_6_exactly_as_documented") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let path: PathBuf = fixtures()
        .into_iter()
        .find(|(n, _)| n.contains("2.1"))
        .map(|(_, p)| p)
        .unwrap();
    let (meta0, rules0) = decode(&path);
    assert_eq!(rules0, GcRules::V2_0);
    let default = meta0
        .namespaces
        .iter()
        .find(|n| n.name.0 == b"default")
        .unwrap();

    // Expire every name of app:1.0's target in `default`.
    let app = default
        .image(b"docker.io/library/app:1.0")
        .unwrap()
        .target_digest()
        .unwrap();
    let names: Vec<String> = default
        .images
        .iter()
        .filter(|i| i.target_digest() == Some(app))
        .map(|i| s(i.name.0))
        .collect();
    let labelled = tmp.path().join("expired.db");
    let removed = tmp.path().join("removed.db");
    std::fs::copy(&path, &labelled).unwrap();
    std::fs::copy(&path, &removed).unwrap();
    for n in &names {
        for op in put_label(
            &["v1", "default", "images", n],
            "containerd.io/gc.expire",
            PAST,
        ) {
            editdb(&bin, &labelled, &op);
        }
        editdb(&bin, &removed, &rm_image("default", n));
    }
    let (meta, rules) = decode(&labelled);
    let (theirs_labelled, now) = oracle_gc(&bin, &labelled, tmp.path());
    let (theirs_removed, _) = oracle_gc(&bin, &removed, tmp.path());
    let v2 = collectable(&meta, &GcOptions { now, rules });
    let v16 = collectable(
        &meta,
        &GcOptions {
            now,
            rules: GcRules::V1_6,
        },
    );
    assert_eq!(lines(&v16), theirs_labelled, "1.6 ignores image expiry");
    assert_eq!(
        lines(&v2),
        theirs_removed,
        "2.x: expired images act as deleted"
    );
    let imgs: BTreeSet<String> = v2.images.iter().map(|(_, n)| s(n.0)).collect();
    assert_eq!(
        imgs,
        names.iter().cloned().collect(),
        "2.x collects the expired images"
    );
    assert!(theirs_removed.len() > theirs_labelled.len());
    eprintln!(
        "expired images {names:?}: 2.x model = 1.6 GC without them ({} removals)",
        theirs_removed.len()
    );

    // A sandbox label keeps a blob in 2.x only: label the sandbox with the app
    // manifest, then remove the images that held it.
    let k8s = meta0
        .namespaces
        .iter()
        .find(|n| n.name.0 == b"k8s.io")
        .unwrap();
    let sb = k8s.sandboxes.first().expect("2.1.9 fixture has a sandbox");
    let k8s_images: Vec<&ctrdb::containerd::Image> = k8s.images.iter().collect();
    let target = k8s_images.iter().find_map(|i| i.target_digest()).unwrap();
    let db = tmp.path().join("sandbox.db");
    std::fs::copy(&path, &db).unwrap();
    for op in put_label(
        &["v1", "k8s.io", "sandboxes", &s(sb.id.0)],
        "containerd.io/gc.ref.content.ctrdb",
        &s(target.0),
    ) {
        editdb(&bin, &db, &op);
    }
    for i in k8s_images
        .iter()
        .filter(|i| i.target_digest() == Some(target))
    {
        editdb(&bin, &db, &rm_image("k8s.io", &s(i.name.0)));
    }
    let (meta, rules) = decode(&db);
    let (theirs, now) = oracle_gc(&bin, &db, tmp.path());
    let v2 = lines(&collectable(&meta, &GcOptions { now, rules }));
    let v16 = lines(&collectable(
        &meta,
        &GcOptions {
            now,
            rules: GcRules::V1_6,
        },
    ));
    assert_eq!(v16, theirs);
    let kept: Vec<&String> = theirs.difference(&v2).collect();
    assert!(v2.is_subset(&theirs), "2.x only keeps more here");
    assert!(
        kept.contains(&&format!("k8s.io content {}", s(target.0))),
        "sandbox label keeps {target:?}: {kept:?}"
    );
    eprintln!(
        "sandbox label: 2.x keeps {} objects 1.6 collects",
        kept.len()
    );
}

/// `collectable_before_and_after` (one mark per namespace, extended from the
/// edited state to the original) equals two separate marks on every real
/// fixture, removing every single image, every image, and every image but the
/// first of each namespace. Needs no oracle: `collectable` itself is checked
/// against containerd above.
#[test]
fn shared_mark_equals_separate_marks_on_fixtures() {
    use ctrdb::analysis::gc::{collectable_before_and_after, collectable_without};
    use ctrdb::bytes::Bytes;
    let now = SystemTime::now();
    for (name, path) in fixtures() {
        let (meta, rules) = decode(&path);
        let o = GcOptions { now, rules };
        let all: Vec<(Bytes<'static>, Bytes<'static>)> = meta
            .namespaces
            .iter()
            .flat_map(|n| n.images.iter().map(move |i| (n.name, i.name)))
            .collect();
        let mut sets: Vec<BTreeSet<(Bytes<'static>, Bytes<'static>)>> =
            all.iter().map(|x| BTreeSet::from([*x])).collect();
        sets.push(all.iter().copied().collect());
        sets.push(
            meta.namespaces
                .iter()
                .flat_map(|n| n.images.iter().skip(1).map(move |i| (n.name, i.name)))
                .collect(),
        );
        let before = collectable(&meta, &o);
        for removed in &sets {
            let (b, a) = collectable_before_and_after(&meta, removed, &o);
            assert_eq!(b, before, "{name}: before");
            assert_eq!(
                a,
                collectable_without(&meta, removed, &o),
                "{name}: after, removed {removed:?}"
            );
        }
    }
}
