//! `MetaDb::decode_records_each` (what `dedup --output` plans from while it
//! writes): the callback sees every namespace of the result exactly once, with
//! the content it has in the result — also a namespace completed late by 1.7's
//! top-level `<ns>/sandboxes` bucket, and one that exists only there.

use std::path::Path;
use std::sync::Mutex;

use ctrdb::bolt::Db;
use ctrdb::containerd::{MetaDb, Namespace};

use super::common::*;

fn check_each(data: &[u8], what: &str) -> Vec<String> {
    let db = Db::parse(data).expect("parse");
    let seen: Mutex<Vec<Namespace<'_>>> = Mutex::new(Vec::new());
    let meta = MetaDb::decode_records_each(&db, |ns| seen.lock().expect("lock").push(ns.clone()));
    let mut seen = seen.into_inner().expect("lock");
    seen.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(
        seen.len(),
        meta.namespaces.len(),
        "{what}: one call per namespace"
    );
    assert!(
        seen == meta.namespaces,
        "{what}: callback content differs from the result"
    );
    assert_eq!(
        meta.namespaces,
        MetaDb::decode_records(&db).namespaces,
        "{what}"
    );
    meta.namespaces
        .iter()
        .map(|n| {
            format!(
                "{}:{}",
                String::from_utf8_lossy(n.name.0),
                n.sandboxes.len()
            )
        })
        .collect()
}

#[test]
fn each_namespace_once_with_its_final_content_on_real_fixtures() {
    for (name, path) in fixtures() {
        let data = std::fs::read(&path).expect("read");
        let names = check_each(&data, &name);
        assert!(names.len() >= 4, "{name}: {names:?}");
    }
}

#[test]
fn namespaces_with_top_level_sandboxes_are_reported_complete() {
    let Some(bin) = oracle_bin("namespaces_with_top_level_sandboxes_are_reported_complete") else {
        return;
    };
    for (name, path) in fixtures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = dir.path().join("meta.db");
        std::fs::copy(&path, &copy).expect("copy");
        // 1.7 keeps sandboxes at `<ns>/sandboxes`, beside v1 (Go's bbolt writes them).
        let mk = |args: &[&str]| editdb(&bin, Path::new(&copy), args);
        mk(&["mk-bucket", "k8s.io", "sandboxes", "sbx-top-1"]);
        mk(&["mk-bucket", "k8s.io", "sandboxes", "sbx-top-2"]);
        mk(&["mk-bucket", "only-top", "sandboxes", "sbx-alone"]);
        let data = std::fs::read(&copy).expect("read copy");
        let names = check_each(&data, &name);
        assert!(
            names.contains(&"only-top:1".to_string()),
            "{name}: {names:?}"
        );
        assert!(
            names
                .iter()
                .any(|n| n.starts_with("k8s.io:") && n != "k8s.io:0"),
            "{name}: k8s.io has no top-level sandboxes: {names:?}"
        );
    }
}
