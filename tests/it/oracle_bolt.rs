//! Go bbolt is the ground truth: on every fixture our `dump` lists exactly the
//! buckets, keys, values and sequences Go's dump lists, and our `check` finds no
//! error where Go's `tx.Check` finds none. Without the Go tools it skips with the
//! reason, or fails under `CTRDB_REQUIRE_ORACLES=1` (`common::skip_or_fail`).

use std::process::Command;

use super::common::*;

#[test]
fn dump_equals_go_dump_and_check_agrees_with_go_check() {
    let Some(bin) = oracle_bin("dump_equals_go_dump_and_check_agrees_with_go_check") else {
        return;
    };
    for (name, path) in fixtures() {
        let go = Command::new(bin.join("dumpdb"))
            .arg("-lines")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            go.status.success(),
            "{name}: Go dump failed: {}",
            String::from_utf8_lossy(&go.stderr)
        );
        let ours = ctrdb_path(&["dump", "--format", "hex"], &path);
        assert_eq!(ours.status.code(), Some(0));
        let (go, ours) = (
            String::from_utf8(go.stdout).unwrap(),
            String::from_utf8(ours.stdout).unwrap(),
        );
        assert!(
            go.lines().count() > 500,
            "{name}: Go dump suspiciously short"
        );
        assert!(go == ours, "{name}: dump differs from Go's");

        let go_check = Command::new(bin.join("dumpdb"))
            .arg("-check")
            .arg(&path)
            .output()
            .unwrap();
        let go_ok =
            go_check.status.success() && String::from_utf8_lossy(&go_check.stdout).trim() == "OK";
        let ours = ctrdb_path(&["check", "--format", "json"], &path);
        let v: serde_json::Value = serde_json::from_slice(&ours.stdout).unwrap();
        let errors = v["summary"]["errors"].as_u64().unwrap();
        assert!(go_ok, "{name}: Go tx.Check failed on a committed fixture");
        assert_eq!(
            errors, 0,
            "{name}: Go's check passes but ours reports {}",
            v["findings"]
        );
        assert_eq!(ours.status.code(), Some(0), "{name}");
    }
}

#[test]
fn go_check_flags_what_our_check_flags_on_corrupted_copies() {
    // Damage that Go 1.3.6's tx.Check detects must be an error for us too.
    let Some(bin) = oracle_bin("go_check_flags_what_our_check_flags_on_corrupted_copies") else {
        return;
    };
    let (name, path) = fixtures()
        .into_iter()
        .find(|(n, _)| n.contains("1.6"))
        .unwrap();
    let original = std::fs::read(&path).unwrap();
    let db = ctrdb::bolt::Db::parse(&original).unwrap();
    let (ps, fl) = (db.page_size(), db.meta().freelist);
    let dir = tempfile::tempdir().unwrap();
    // A freelist entry duplicated: Go reports "already freed" / "unreachable unfreed".
    let mut d = original.clone();
    let ids = fl as usize * ps + 16;
    let id0: [u8; 8] = d[ids..ids + 8].try_into().unwrap();
    d[ids + 8..ids + 16].copy_from_slice(&id0);
    let p = dir.path().join("dup.db");
    std::fs::write(&p, &d).unwrap();
    let go = Command::new(bin.join("dumpdb"))
        .arg("-check")
        .arg(&p)
        .output()
        .unwrap();
    assert!(
        !go.status.success(),
        "{name}: Go accepted a duplicated freelist entry"
    );
    let ours = ctrdb_path(&["check"], &p);
    assert_eq!(
        ours.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&ours.stdout)
    );
}
