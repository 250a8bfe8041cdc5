//! Every command tells the truth about damage: on real fixtures damaged the way
//! storage damages them (a zeroed page, bit rot in an element header, a file cut
//! where it grew), the readers (`images`, `refs`, `inspect`) still print what
//! they can, warn on stderr, carry `damage` in their JSON envelope and exit 1;
//! `dedup` plans nothing and writes nothing (exit 2), since a GC prediction on
//! a partial tree would count what the damage hides as unreferenced. Go's
//! `tx.Check` confirms that each damaged file is damaged.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::common::*;
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::Db;

const READERS: [&str; 3] = ["images", "refs", "inspect"];

/// The leaf pages of `v1/k8s.io/images` in `db`.
fn images_leaves(data: &[u8]) -> (usize, Vec<u64>) {
    let db = Db::parse(data).expect("a fixture parses");
    let leaves = tree_pages(&db)
        .into_iter()
        .filter(|p| p.kind == PageKind::Leaf)
        .filter(|p| p.bucket == [b"v1".to_vec(), b"k8s.io".to_vec(), b"images".to_vec()])
        .map(|p| p.id)
        .collect();
    (db.page_size(), leaves)
}

/// Damaged copies of `fixture` in `dir`: (what, path).
fn damaged_copies(name: &str, fixture: &Path, dir: &Path) -> Vec<(String, PathBuf)> {
    let data = std::fs::read(fixture).unwrap();
    let (ps, leaves) = images_leaves(&data);
    let leaf = *leaves.first().expect("k8s.io images have a leaf page");
    let at = usize::try_from(leaf).unwrap() * ps;
    let mut out = Vec::new();
    let mut write = |what: &str, bytes: &[u8]| {
        let p = dir.join(format!("{name}-{what}.db"));
        std::fs::write(&p, bytes).unwrap();
        out.push((format!("{name} {what}"), p));
    };

    let mut zeroed = data.clone();
    zeroed[at..at + ps].fill(0);
    write("zeroed-images-leaf", &zeroed);

    // bit rot in the first element header's `pos` (high byte of the u32 at
    // header + 4): the element then points far outside its page
    let mut rotted = data.clone();
    rotted[at + 16 + 6] ^= 0x40;
    write("bit-rot-images-leaf", &rotted);

    // the file cut at the leaf: every page from it on is gone
    write("cut-at-images-leaf", &data[..at]);
    out
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn readers_warn_report_damage_and_exit_1_on_damaged_trees() {
    let go = oracle_bin("readers_warn_report_damage_and_exit_1_on_damaged_trees");
    let tmp = tempfile::tempdir().unwrap();
    for (name, fixture) in fixtures() {
        for (what, db) in damaged_copies(&name, &fixture, tmp.path()) {
            if let Some(bin) = &go {
                let o = Command::new(bin.join("dumpdb"))
                    .arg("-check")
                    .arg(&db)
                    .output()
                    .unwrap();
                let said = String::from_utf8_lossy(&o.stdout);
                assert!(
                    !(o.status.success() && said.trim() == "OK"),
                    "{what}: Go's tx.Check finds nothing wrong, so the test damages nothing"
                );
            }
            for cmd in READERS {
                let table = ctrdb_path(&[cmd], &db);
                assert_no_panic(&table, &what);
                assert_eq!(
                    table.status.code(),
                    Some(1),
                    "{what}: {cmd}: {}",
                    stderr(&table)
                );
                let err = stderr(&table);
                assert!(
                    err.contains("is damaged") && err.contains("ctrdb check"),
                    "{what}: {cmd}: no damage warning in: {err}"
                );
                assert_eq!(
                    err.lines().count(),
                    1,
                    "{what}: {cmd}: one warning line: {err}"
                );

                let json = ctrdb_path(&[cmd, "--format", "json"], &db);
                assert_eq!(json.status.code(), Some(1), "{what}: {cmd} json");
                let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
                let damage = doc["damage"].as_array().expect("damage in the envelope");
                assert!(!damage.is_empty(), "{what}: {cmd}: empty damage");
                for d in damage {
                    assert_eq!(d["severity"], "error", "{what}: {cmd}: {d}");
                    assert!(d["code"].is_string() && d["message"].is_string(), "{d}");
                }
                assert!(
                    damage
                        .iter()
                        .any(|d| d["page"].is_u64() && d["path"].is_string()),
                    "{what}: {cmd}: no damage names its page and bucket: {damage:?}"
                );
            }
        }
    }
}

#[test]
fn dedup_plans_and_writes_nothing_on_a_damaged_tree() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, fixture) in fixtures() {
        for (what, db) in damaged_copies(&name, &fixture, tmp.path()) {
            let before = std::fs::read(&db).unwrap();
            let out = tmp.path().join("out.db");
            let out_arg = out.to_str().unwrap();
            for args in [
                &["dedup"][..],
                &["dedup", "--format", "json"][..],
                &["dedup", "--output", out_arg][..],
                &["dedup", "--in-place", "--yes"][..],
            ] {
                let o = ctrdb_path(args, &db);
                assert_no_panic(&o, &what);
                assert_eq!(o.status.code(), Some(2), "{what}: {args:?}: {}", stderr(&o));
                assert!(
                    stderr(&o).contains("database is damaged"),
                    "{what}: {args:?}: {}",
                    stderr(&o)
                );
                assert!(o.stdout.is_empty(), "{what}: {args:?}: a plan was printed");
                assert!(!out.exists(), "{what}: {args:?}: an output was written");
                assert_eq!(std::fs::read(&db).unwrap(), before, "{what}: input changed");
                let left: Vec<_> = std::fs::read_dir(tmp.path())
                    .unwrap()
                    .filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains("ctrdb") || n.contains("backup"))
                    .collect();
                assert!(left.is_empty(), "{what}: {args:?}: left behind {left:?}");
            }
        }
    }
}

/// Damage in one namespace does not taint a listing of another, and an intact
/// file reports `damage: []` and exits 0.
#[test]
fn damage_counts_only_where_it_affects_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, fixture) in fixtures() {
        for cmd in ["images", "refs"] {
            let o = ctrdb_path(&[cmd, "--format", "json"], &fixture);
            assert_eq!(o.status.code(), Some(0), "{name}: {cmd}");
            assert!(o.stderr.is_empty(), "{name}: {cmd}: {}", stderr(&o));
            let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(doc["damage"], Value::Array(vec![]), "{name}: {cmd}");
        }
        let (what, db) = damaged_copies(&name, &fixture, tmp.path())
            .into_iter()
            .find(|(w, _)| w.ends_with("bit-rot-images-leaf"))
            .unwrap();
        let damaged = ctrdb_path(&["images", "-n", "k8s.io", "-q"], &db);
        assert_eq!(damaged.status.code(), Some(1), "{what}");
        let other = ctrdb_path(&["images", "-n", "default", "--format", "json"], &db);
        assert_eq!(other.status.code(), Some(0), "{what}: {}", stderr(&other));
        let doc: Value = serde_json::from_slice(&other.stdout).unwrap();
        assert_eq!(doc["damage"], Value::Array(vec![]), "{what}");
        let intact = ctrdb_path(&["images", "-n", "default", "--format", "json"], &fixture);
        let intact: Value = serde_json::from_slice(&intact.stdout).unwrap();
        assert_eq!(
            doc["images"], intact["images"],
            "{what}: default's images changed"
        );
    }
}

/// Stale pages from the file's own history: each page slot that the file's
/// first state (`meta-empty.db`, the same file after containerd's first start)
/// used and the final state rewrote is given back its older bytes, as when
/// the writes of later transactions to that slot were lost. Where Go's
/// `tx.Check` passes such a file (the page is well-formed, only its place is
/// wrong), ctrdb still finds the damage from the schema — an empty record, a
/// namespace holding another tree's buckets — and the readers and `dedup` treat
/// it as damage.
#[test]
fn stale_pages_that_go_check_passes_are_damage() {
    let go = oracle_bin("stale_pages_that_go_check_passes_are_damage");
    let tmp = tempfile::tempdir().unwrap();
    for (name, fixture) in fixtures() {
        let new = std::fs::read(&fixture).unwrap();
        let old = std::fs::read(fixture.with_file_name("meta-empty.db")).unwrap();
        let ps = Db::parse(&new).unwrap().page_size();
        let mut go_passes = 0;
        for slot in 2..old.len() / ps {
            let range = slot * ps..(slot + 1) * ps;
            if old[range.clone()] == new[range.clone()] {
                continue;
            }
            let mut stale = new.clone();
            stale[range.clone()].copy_from_slice(&old[range]);
            let what = format!("{name} slot {slot}");
            let db = tmp.path().join(format!("{name}-stale-{slot}.db"));
            std::fs::write(&db, &stale).unwrap();
            let go_ok = go.as_ref().is_some_and(|bin| {
                let o = Command::new(bin.join("dumpdb"))
                    .arg("-check")
                    .arg(&db)
                    .output()
                    .unwrap();
                o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "OK"
            });
            let check = ctrdb_path(&["check", "--fail-on", "error"], &db);
            assert_no_panic(&check, &what);
            assert_eq!(
                check.status.code(),
                Some(1),
                "{what}: check finds no error: {}",
                String::from_utf8_lossy(&check.stdout)
            );
            if !go_ok {
                continue;
            }
            go_passes += 1;
            for cmd in ["images", "refs"] {
                let o = ctrdb_path(&[cmd, "-q"], &db);
                assert_eq!(o.status.code(), Some(1), "{what}: {cmd}: {}", stderr(&o));
                assert!(stderr(&o).contains("is damaged"), "{what}: {cmd}");
            }
            let o = ctrdb_path(&["dedup"], &db);
            assert_eq!(o.status.code(), Some(2), "{what}: dedup: {}", stderr(&o));
        }
        if go.is_some() {
            assert!(
                go_passes > 0,
                "{name}: no stale page that Go's check passes: the test shows nothing"
            );
        }
    }
}
