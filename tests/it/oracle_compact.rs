//! Go bbolt as the oracle for the writer: on files written by ctrdb (random trees and
//! `ctrdb compact` of the Go-written fixtures), Go's `tx.Check` passes, Go's dump
//! equals the expected content, and Go can keep writing to them (put, create and
//! delete buckets, which frees our pages) with `tx.Check` still passing.
//!
//! Needs the tools of `tests/oracle/build.sh DIR` (dumpdb, editdb) in
//! `CTRDB_ORACLE_BIN=DIR`; without them every test prints a SKIP line and passes,
//! or fails under `CTRDB_REQUIRE_ORACLES=1` (`common::skip_or_fail`).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::common::{editdb, go_check_ok, oracle_bin, skip_or_fail, test_name};
use super::writer_common::*;
use ctrdb::bolt::writer::FreelistMode;

fn oracle() -> Option<PathBuf> {
    oracle_bin(&test_name())
}

fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let o = cmd.output().expect("run oracle tool");
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn go_lines(bin: &Path, db: &Path) -> String {
    let (code, out, err) = run(Command::new(bin.join("dumpdb")).arg("-lines").arg(db));
    assert_eq!(code, Some(0), "dumpdb -lines {}: {err}", db.display());
    out
}

#[test]
fn go_reads_and_checks_random_trees() {
    let Some(bin) = oracle() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let shape = Shape {
        max_depth: 5,
        max_entries: 40,
        bucket_percent: 25,
        big_key_percent: 2,
        big_value_percent: 8,
        huge_value_percent: 1,
    };
    for seed in 0..8u64 {
        for (ps, fl) in [
            (4096, FreelistMode::Page),
            (4096, FreelistMode::None),
            (1024, FreelistMode::Page),
            (16384, FreelistMode::None),
        ] {
            let mut rng = Rng(seed ^ 0xabcd);
            let top = rng.range(1, 6);
            let root = random_root(&mut rng, &shape, top);
            let path = dir.path().join(format!("r{seed}-{ps}.db"));
            write_tree_file(&path, &root, options(ps, fl));
            go_check_ok(&bin, &path);
            let mut want = String::new();
            super::writer_common::go_lines(&root, &mut Vec::new(), &mut want);
            assert!(
                go_lines(&bin, &path) == want,
                "seed {seed} page size {ps}: Go's dump differs from the content written"
            );
        }
    }
}

/// A tree with plain-text names, big enough for multi-level trees, inline and
/// page-based buckets, so Go's edits free and reuse our pages.
fn editable_tree() -> Tree {
    let mut rng = Rng(99);
    let mut v1 = Tree {
        sequence: 5,
        ..Tree::default()
    };
    let mut many = Tree {
        sequence: 77,
        ..Tree::default()
    };
    for i in 0..3000u32 {
        let n = rng.range(0, 200) as usize;
        many.entries
            .insert(format!("key{i:05}").into_bytes(), Node::Value(rng.bytes(n)));
    }
    v1.entries.insert(b"many".to_vec(), Node::Bucket(many));
    for i in 0..50u32 {
        let mut small = Tree {
            sequence: u64::from(i),
            ..Tree::default()
        };
        small
            .entries
            .insert(b"k".to_vec(), Node::Value(b"v".to_vec()));
        if i % 10 == 0 {
            small
                .entries
                .insert(b"big".to_vec(), Node::Value(rng.bytes(9000)));
        }
        v1.entries
            .insert(format!("small{i:02}").into_bytes(), Node::Bucket(small));
    }
    let mut root = Tree::default();
    root.entries.insert(b"v1".to_vec(), Node::Bucket(v1));
    root
}

fn mutate_and_check(bin: &Path, db: &Path) {
    editdb(
        bin,
        db,
        &["put", "v1", "many", "key01500x", "inserted in the middle"],
    );
    go_check_ok(bin, db);
    editdb(bin, db, &["mk-bucket", "v1", "ctrdb-new", "nested"]);
    editdb(bin, db, &["put", "v1", "ctrdb-new", "nested", "k", "v"]);
    editdb(bin, db, &["rm-bucket", "v1", "small10"]);
    editdb(bin, db, &["rm-bucket", "v1", "small11"]);
    go_check_ok(bin, db);
    editdb(bin, db, &["rm-bucket", "v1", "many"]);
    go_check_ok(bin, db);
    let lines = go_lines(bin, db);
    assert!(
        lines.contains(&format!(
            "K 7631/{} 6b 76\n",
            "6374726462 2d6e6577/6e6573746564".replace(' ', "")
        )),
        "{lines}"
    );
    assert!(
        !lines.contains("B 7631/6d616e79 "),
        "bucket 'many' still there"
    );
}

#[test]
fn go_keeps_writing_to_our_files() {
    let Some(bin) = oracle() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    for fl in [FreelistMode::Page, FreelistMode::None] {
        let path = dir.path().join(format!("edit-{fl:?}.db"));
        write_tree_file(&path, &editable_tree(), options(4096, fl));
        go_check_ok(&bin, &path);
        mutate_and_check(&bin, &path);
    }
}

#[test]
fn compacted_fixtures_pass_go_check_and_dump_identically() {
    let Some(bin) = oracle() else { return };
    let dbs = fixture_dbs();
    if dbs.is_empty() {
        skip_or_fail(&test_name(), "no fixtures/*/meta*.db in this checkout");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, db) in dbs.iter().enumerate() {
        let out = dir.path().join(format!("{i}.db"));
        let o = ctrdb()
            .arg("compact")
            .arg(db)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            db.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        go_check_ok(&bin, &out);
        assert!(
            go_lines(&bin, db) == go_lines(&bin, &out),
            "{}: Go's dump of the copy differs",
            db.display()
        );
        // Go can write to the copy too.
        editdb(&bin, &out, &["mk-bucket", "ctrdb-test", "b"]);
        editdb(&bin, &out, &["put", "ctrdb-test", "b", "k", "v"]);
        editdb(&bin, &out, &["rm-bucket", "ctrdb-test", "b"]);
        go_check_ok(&bin, &out);
        eprintln!("{}: ok", db.display());
    }
}
