//! Schema findings on real fixtures edited at test time with the Go `editdb`
//! tool (real bbolt writes, never hand-made files): each edit yields its
//! specific code and severity in `ctrdb check`, exit 1, and decoding continues
//! with every other record. Structural corruption under one namespace leaves
//! the other namespaces fully decoded.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::common::*;
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::Db;
use ctrdb::containerd::{MetaDb, SchemaCode};

const APP_MANIFEST: &str =
    "sha256:6a48f8bd607915a989b6f3b2f396dbd2820afd030db9428b39e11b889b520cc7";
const TINY_LAYER_SNAPSHOT: &str =
    "sha256:46dc5f7f85d89c349ed4ee4709de6434bb4b019b73382d206794eb5476e141fa";

fn fixture(name: &str) -> PathBuf {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p)
        .expect("fixture")
}

/// A copy of `fixture` edited by `editdb` with each op.
fn edited(bin: &Path, dir: &Path, fixture_name: &str, case: &str, ops: &[&[&str]]) -> PathBuf {
    let out = dir.join(format!("{fixture_name}-{case}.db"));
    std::fs::copy(fixture(fixture_name), &out).unwrap();
    for op in ops {
        editdb(bin, &out, op);
    }
    out
}

/// `ctrdb check --format json`: exit code and (severity, code, path) of the findings.
fn check(path: &Path) -> (Option<i32>, Vec<(String, String, String)>) {
    let o = ctrdb_path(&["check", "--format", "json"], path);
    assert_no_panic(&o, "check");
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let g = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (g("severity"), g("code"), g("path"))
        })
        .collect();
    (o.status.code(), f)
}

fn image_count(path: &Path) -> usize {
    let o = ctrdb_path(&["images", "--format", "jsonl"], path);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap().lines().count()
}

/// (case, editdb ops, severity, code, path).
type Case<'a> = (&'a str, &'a [&'a [&'a str]], &'a str, &'a str, &'a str);

#[test]
fn edited_fixtures_give_specific_schema_findings() {
    let Some(bin) = oracle_bin("edited_fixtures_give_specific_schema_findings") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[Case] = &[
        // (case, edits, severity, code, path)
        (
            "target-missing",
            &[&[
                "rm-bucket",
                "v1",
                "default",
                "images",
                "docker.io/library/app:1.0",
                "target",
            ]],
            "error",
            "image-target-missing",
            r"v1/default/images/docker.io\x2flibrary\x2fapp:1.0",
        ),
        (
            "not-bucket",
            &[&["put", "v1", "default", "images", "stray", "x"]],
            "error",
            "image-not-bucket",
            "v1/default/images/stray",
        ),
        (
            "target-invalid",
            &[&[
                "rm-key",
                "v1",
                "default",
                "images",
                "docker.io/library/tiny:1.0",
                "target",
                "mediatype",
            ]],
            "warning",
            "image-target-invalid",
            r"v1/default/images/docker.io\x2flibrary\x2ftiny:1.0/target",
        ),
        (
            "time-invalid",
            &[&[
                "put",
                "v1",
                "default",
                "images",
                "docker.io/library/tiny:latest",
                "createdat",
                "garbage",
            ]],
            "error",
            "image-time-invalid",
            r"v1/default/images/docker.io\x2flibrary\x2ftiny:latest/createdat",
        ),
        (
            "dangling",
            &[&[
                "rm-bucket",
                "v1",
                "default",
                "content",
                "blob",
                APP_MANIFEST,
            ]],
            "warning",
            "image-dangling",
            r"v1/default/images/docker.io\x2flibrary\x2fapp:1.0",
        ),
        (
            "container-snapshot",
            &[&[
                "rm-bucket",
                "v1",
                "default",
                "snapshots",
                "overlayfs",
                "app-ctr",
            ]],
            "warning",
            "container-snapshot-missing",
            "v1/default/containers/app-ctr",
        ),
        (
            "parent-missing",
            &[&[
                "rm-bucket",
                "v1",
                "moby",
                "snapshots",
                "native",
                TINY_LAYER_SNAPSHOT,
            ]],
            "warning",
            "snapshot-parent-missing",
            "v1/moby/snapshots/native/moby-ctr",
        ),
        (
            "children",
            &[&[
                "rm-key",
                "v1",
                "moby",
                "snapshots",
                "native",
                TINY_LAYER_SNAPSHOT,
                "children",
                "moby-ctr",
            ]],
            "warning",
            "snapshot-children-mismatch",
            "v1/moby/snapshots/native/moby-ctr",
        ),
        (
            "lease-resource",
            &[&[
                "rm-bucket",
                "v1",
                "default",
                "content",
                "ingests",
                "ctrdb-leased-ingest",
            ]],
            "warning",
            "lease-resource-missing",
            "v1/default/leases/ctrdb-res-lease",
        ),
        (
            "top-level",
            &[&["mk-bucket", "junk", "inner"]],
            "warning",
            "unknown-top-level-bucket",
            "junk",
        ),
        (
            "version",
            &[&["put", "v1", "version", "x"]],
            "error",
            "schema-version-invalid",
            "v1/version",
        ),
        (
            "spec",
            &[&[
                "put",
                "v1",
                "default",
                "containers",
                "app-ctr",
                "spec",
                "zz",
            ]],
            "warning",
            "field-invalid",
            "v1/default/containers/app-ctr/spec",
        ),
    ];
    for fx in ["containerd-1.6.20", "containerd-2.1.9"] {
        let total = image_count(&fixture(fx));
        for (case, ops, sev, code, path) in cases {
            let p = edited(&bin, tmp.path(), fx, case, ops);
            let (rc, findings) = check(&p);
            assert_eq!(rc, Some(1), "{fx} {case}: exit code, findings {findings:?}");
            assert!(
                findings
                    .iter()
                    .any(|(s, c, p)| s == sev && c == code && p == path),
                "{fx} {case}: want {sev} {code} at {path}, got {findings:?}"
            );
            // No structural finding: the edit is a valid bbolt write.
            assert!(
                findings.iter().all(|(_, c, _)| !c.starts_with("page-")),
                "{fx} {case}: {findings:?}"
            );
            // Decoding continued: every image record is still listed (plus none or minus none).
            let n = image_count(&p);
            assert!(n + 1 >= total, "{fx} {case}: {n} images listed of {total}");
        }
    }
}

/// Structural damage to a page under one namespace costs only that subtree.
#[test]
fn structural_corruption_in_one_namespace_leaves_the_others_decoded() {
    for (name, path) in fixtures() {
        let original = std::fs::read(&path).unwrap();
        let mut bytes = original.clone();
        let (ps, target, before) = {
            let db = Db::parse(&original).unwrap();
            let before = MetaDb::decode(&db);
            let target = tree_pages(&db)
                .into_iter()
                .find(|p| {
                    p.kind == PageKind::Leaf && p.bucket.len() >= 2 && p.bucket[1] == b"k8s.io"
                })
                .map(|p| p.id);
            (db.page_size(), target, before)
        };
        let target = target.unwrap_or_else(|| {
            panic!("{name}: the fixture has no leaf page of its own under v1/k8s.io")
        });
        // Make the page claim to be a freelist page.
        let flags_at = target as usize * ps + 8;
        bytes[flags_at] = 0x10;
        bytes[flags_at + 1] = 0;
        let db = Db::parse(&bytes).unwrap();
        let after = MetaDb::decode(&db);
        assert!(
            after
                .findings
                .iter()
                .any(|f| f.code == SchemaCode::BucketUnreadable
                    && f.path.0.get(1).map(Vec::as_slice) == Some(b"k8s.io")),
            "{name}: want schema-bucket-unreadable under v1/k8s.io, got {:?}",
            after.findings
        );
        for ns in before.namespaces.iter().filter(|n| n.name.0 != b"k8s.io") {
            assert_eq!(
                after.namespace(ns.name.0),
                Some(ns),
                "{name}: namespace {:?} changed",
                ns.name
            );
        }
    }
}
