//! `ctrdb repair --root`: content records lost in both trees are re-created
//! from the blob files of the containerd root real containerd left beside each
//! fixture — only for files whose bytes hash to their digest — labelled, held
//! by the repair lease, and reported; a rotten or missing blob file is
//! reported and not re-created.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::common::*;
use super::repair::wire;
use super::repair_common::*;
use ctrdb::bolt::Db;
use ctrdb::containerd::MetaDb;

const DB_UNDER_ROOT: &str = "io.containerd.metadata.v1.bolt/meta.db";
const BLOBS: &str = "io.containerd.content.v1.content/blobs";

fn blob_path(root: &Path, digest: &str) -> std::path::PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    root.join(BLOBS).join(alg).join(hex)
}

/// Whether the blob file of `digest` under `root` holds bytes that hash to it.
fn verifies(root: &Path, digest: &str) -> bool {
    std::fs::read(blob_path(root, digest))
        .is_ok_and(|b| digest.strip_prefix("sha256:") == Some(sha256_hex(&b).as_str()))
}

/// Content digests per namespace of a file, as ctrdb decodes them.
fn content_of(data: &[u8]) -> Vec<(String, BTreeSet<String>)> {
    let db = Db::parse(data).unwrap();
    MetaDb::decode_records(&db)
        .namespaces
        .iter()
        .map(|ns| {
            (
                String::from_utf8_lossy(ns.name.0).into_owned(),
                ns.blobs
                    .iter()
                    .map(|b| String::from_utf8_lossy(b.digest.0).into_owned())
                    .collect(),
            )
        })
        .collect()
}

fn repair_json(args: &[&str]) -> (Option<i32>, wire::Doc) {
    let o = ctrdb(args);
    assert_no_panic(&o, &format!("{args:?}"));
    let doc = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), doc)
}

/// The repaired file's content records are valid ones: Go's check passes (when
/// the oracle is there), `ctrdb check` finds nothing, each re-created record
/// has the blob's size and the label, and whatever the repaired file lets
/// the GC delete that the input kept is held by the lease.
fn assert_recreated_in(out: &Path, doc: &wire::Doc, what: &str) {
    if let Some(go) = oracle_bin(&test_name()) {
        assert!(
            go_lines_of_good(&go, out).is_some(),
            "{what}: Go's tx.Check fails on the repaired copy"
        );
    }
    let check = ctrdb_path(&["check", "--fail-on", "error"], out);
    assert_eq!(check.status.code(), Some(0), "{what}: {check:?}");
    let data = std::fs::read(out).unwrap();
    let db = Db::parse(&data).unwrap();
    let meta = MetaDb::decode_records(&db);
    let store = doc.content_store.as_ref().expect("contentStore");
    for r in &store.recreated {
        let ns = meta
            .namespace(r.namespace.as_str().unwrap().as_bytes())
            .unwrap();
        let blob = ns
            .blob(r.digest.as_bytes())
            .unwrap_or_else(|| panic!("{what}: {} is not in the repaired file", r.digest));
        assert_eq!(blob.size, Some(r.size as i64), "{what}: {}", r.digest);
        assert!(
            blob.labels.get(b"ctrdb.repair/recreated").is_some(),
            "{what}: {} has no ctrdb.repair/recreated label",
            r.digest
        );
        assert!(blob.created_at.is_some() && blob.updated_at.is_some());
    }
    let gc = doc.gc.as_ref().expect("a GC model");
    let held: BTreeSet<(String, String)> = doc
        .lease
        .iter()
        .flat_map(|l| &l.holds)
        .map(|h| (h.namespace.to_string(), h.id.to_string()))
        .collect();
    for x in gc.output.iter().filter(|x| x.kind == "content") {
        if let Some(r) = store.recreated.iter().find(|r| x.id == r.digest.as_str()) {
            assert_eq!(
                x.size,
                Some(r.size),
                "{what}: the GC record carries the blob's size"
            );
        }
    }
    let key = |x: &wire::GcRecord| (x.namespace.to_string(), x.kind.clone(), x.id.to_string());
    let input: BTreeSet<_> = gc.input.iter().map(key).collect();
    for x in &gc.output {
        assert!(
            held.contains(&(x.namespace.to_string(), x.id.to_string()))
                || x.kind == "lease"
                || input.contains(&key(x)),
            "{what}: the repaired file lets containerd's GC delete {x:?}, which the input kept and the lease does not hold"
        );
    }
}

/// The whole `v1/k8s.io/content/blob` leaf zeroed (a page both trees share)
/// and one of its blob files rotten: every other record of the leaf is
/// re-created (the blob files only k8s.io recorded, and those its images
/// name that other namespaces record too), nothing else is, and the rotten
/// one is reported.
#[test]
fn a_lost_content_leaf_is_re_created_from_the_blob_files_that_verify() {
    for (name, fixture) in fixtures() {
        let tmp = tempfile::tempdir().unwrap();
        let fixture_name = fixture
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let Some(root) = unpack_root(fixture_name, tmp.path()) else {
            return;
        };
        let data = std::fs::read(&fixture).unwrap();
        let bucket: [&[u8]; 4] = [b"v1", b"k8s.io", b"content", b"blob"];
        let (damaged, leaf) = leaf_zeroed(&data, &bucket);
        let leaf_keys: Vec<String> = {
            let db = Db::parse(&data).unwrap();
            let page = db.pages().page(leaf).unwrap();
            (0..usize::from(page.count))
                .map(|i| String::from_utf8_lossy(page.leaf_element(i).unwrap().key).into_owned())
                .collect()
        };
        let elsewhere: BTreeSet<String> = content_of(&data)
            .into_iter()
            .filter(|(ns, _)| ns != "k8s.io")
            .flat_map(|(_, d)| d)
            .collect();
        // The blobs only k8s.io recorded, with their files: what containerd's
        // GC would delete after this damage.
        let only_here: Vec<&String> = leaf_keys
            .iter()
            .filter(|d| !elsewhere.contains(*d) && verifies(&root, d))
            .collect();
        assert!(only_here.len() >= 2, "{name}: {only_here:?}");
        let rotten = only_here[0].clone();
        let path = blob_path(&root, &rotten);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 0x01;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, &bytes).unwrap();

        let db_path = root.join(DB_UNDER_ROOT);
        std::fs::write(&db_path, &damaged).unwrap();
        let root_arg = root.to_str().unwrap();
        let out = tmp.path().join("repaired.db");
        let (code, doc) = repair_json(&[
            "repair",
            "--root",
            root_arg,
            "-o",
            out.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(code, Some(1), "{name}");
        let store = doc.content_store.as_ref().expect("contentStore");
        let recreated: BTreeSet<&str> = store
            .recreated
            .iter()
            .inspect(|r| assert_eq!(r.namespace, "k8s.io", "{name}: {r:?}"))
            .map(|r| r.digest.as_str())
            .collect();
        for d in &only_here[1..] {
            assert!(recreated.contains(d.as_str()), "{name}: {d} not re-created");
        }
        // What the leaf held is the truth: a re-created record is one of its
        // records, with a file that verifies.
        for d in &recreated {
            assert!(
                leaf_keys.iter().any(|k| k == d) && verifies(&root, d),
                "{name}: {d} re-created, but the lost leaf did not hold it or its file does not verify"
            );
        }
        let left: Vec<&String> = leaf_keys
            .iter()
            .filter(|d| **d != rotten && verifies(&root, d) && !recreated.contains(d.as_str()))
            .collect();
        assert!(
            left.is_empty(),
            "{name}: lost k8s.io records with verified blob files that were not re-created: {left:?}"
        );
        assert!(
            !recreated.contains(rotten.as_str()),
            "{name}: the rotten blob was re-created"
        );
        let bad: Vec<_> = store
            .not_recreated
            .iter()
            .filter(|n| n.digest == rotten.as_str())
            .collect();
        assert!(
            bad.len() == 1 && bad[0].reason == "digestMismatch" && bad[0].namespace == "k8s.io",
            "{name}: {:?}",
            store.not_recreated
        );
        let count = doc
            .counts
            .iter()
            .find(|c| c.namespace == "k8s.io" && c.kind == "content")
            .expect("a k8s.io content count");
        assert_eq!(count.recreated as usize, recreated.len(), "{name}");
        assert_recreated_in(&out, &doc, &name);
        assert_eq!(
            std::fs::read(&db_path).unwrap(),
            damaged,
            "{name}: the input is untouched"
        );

        // Without the content store the same file loses them, and says nothing
        // of a content store.
        let plain = tmp.path().join("plain.db");
        std::fs::write(&plain, &damaged).unwrap();
        let (code, doc) = repair_json(&["repair", plain.to_str().unwrap(), "--format", "json"]);
        assert_eq!(code, Some(1), "{name}");
        assert!(doc.content_store.is_none(), "{name}");
        assert!(doc.counts.iter().all(|c| c.recreated == 0), "{name}");
    }
}

/// Two content records of `default` lost by key, one of whose blob files is
/// gone: the other is re-created (the lost record says so), the missing one
/// is reported; the dry run reports the same and writes nothing.
#[test]
fn content_records_lost_by_key_are_re_created_when_their_blob_is_there() {
    for (name, fixture) in fixtures() {
        let tmp = tempfile::tempdir().unwrap();
        let fixture_name = fixture
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        let Some(root) = unpack_root(fixture_name, tmp.path()) else {
            return;
        };
        let data = std::fs::read(&fixture).unwrap();
        let bucket: [&[u8]; 4] = [b"v1", b"default", b"content", b"blob"];
        let (damaged, keys) = record_labels_broken(&data, &bucket, 2);
        let keys: Vec<String> = keys
            .iter()
            .map(|k| String::from_utf8(k.clone()).unwrap())
            .collect();
        assert!(keys.iter().all(|k| verifies(&root, k)), "{name}: {keys:?}");
        std::fs::remove_file(blob_path(&root, &keys[1])).unwrap();
        let db_path = root.join(DB_UNDER_ROOT);
        std::fs::write(&db_path, &damaged).unwrap();
        let root_arg = root.to_str().unwrap();

        let (code, dry) = repair_json(&["repair", "--root", root_arg, "--format", "json"]);
        assert_eq!(code, Some(1), "{name}");
        assert!(dry.dry_run);
        let out = tmp.path().join("repaired.db");
        let (code, doc) = repair_json(&[
            "repair",
            "--root",
            root_arg,
            "-o",
            out.to_str().unwrap(),
            "--format",
            "json",
        ]);
        assert_eq!(code, Some(1), "{name}");
        for d in [&dry, &doc] {
            let store = d.content_store.as_ref().expect("contentStore");
            let recreated: Vec<(&str, &str)> = store
                .recreated
                .iter()
                .map(|r| (r.namespace.as_str().unwrap(), r.digest.as_str()))
                .collect();
            assert_eq!(recreated, [("default", keys[0].as_str())], "{name}");
            let missing: Vec<(&str, &str, &str)> = store
                .not_recreated
                .iter()
                .map(|n| {
                    (
                        n.namespace.as_str().unwrap(),
                        n.digest.as_str().unwrap(),
                        n.reason.as_str(),
                    )
                })
                .collect();
            assert_eq!(
                missing,
                [("default", keys[1].as_str(), "missing")],
                "{name}: {store:?} {:?}",
                d.lost
            );
            let lost: Vec<(&str, bool)> = d
                .lost
                .iter()
                .filter(|l| l.path == "v1/default/content/blob")
                .map(|l| (l.id.as_ref().unwrap().as_str().unwrap(), l.recreated))
                .collect();
            assert_eq!(
                lost,
                [(keys[0].as_str(), true), (keys[1].as_str(), false)],
                "{name}: {:?}",
                d.lost
            );
        }
        assert_recreated_in(&out, &doc, &name);
        assert_eq!(
            std::fs::read(&db_path).unwrap(),
            damaged,
            "{name}: the input is untouched"
        );
    }
}
