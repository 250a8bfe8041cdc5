//! `ctrdb repair` on files real containerd wrote, damaged the way storage
//! damages them: every tree page zeroed in turn, bit rot in element headers,
//! pages whose slot holds an older page (from the database the same release
//! wrote on its first start), the file cut where it grew, a torn meta page.
//!
//! For each damaged file the repaired copy must pass Go's `tx.Check` and
//! `ctrdb check`, hold only keys and values of the two real states the file
//! came from (its two meta pages' trees, as Go's bbolt dumps them) plus the
//! repair lease, and hold at least as many of the newer state's keys as a
//! bbolt user gets (keep the file if Go's check passes, else revert to the
//! other meta page) — and strictly more over all files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::common::*;
use super::repair_common::*;
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::Db;

/// Every how many tree pages one is damaged.
const PAGE_STEP: usize = 9;

struct Damaged {
    what: String,
    bytes: Vec<u8>,
}

/// Damaged copies of one fixture.
fn damaged(name: &str, fixture: &Path) -> Vec<Damaged> {
    let data = std::fs::read(fixture).unwrap();
    let db = Db::parse(&data).unwrap();
    let ps = db.page_size();
    // Every page of each kind of place would be hundreds of files; a spread
    // of them keeps roots, branches, inline and page-based records.
    let pages: Vec<_> = tree_pages(&db).into_iter().step_by(PAGE_STEP).collect();
    let mut out = Vec::new();
    let mut add = |what: String, bytes: Vec<u8>| out.push(Damaged { what, bytes });
    for p in &pages {
        let at = p.id as usize * ps;
        let mut z = data.clone();
        z[at..at + ps].fill(0);
        add(format!("{name} page {} ({:?}) zeroed", p.id, p.kind), z);
        if p.kind == PageKind::Leaf && p.count > 0 {
            // bit rot in the first element header's ksize (high byte)
            let mut r = data.clone();
            r[at + 16 + 8 + 2] ^= 0x10;
            add(format!("{name} page {} element header rot", p.id), r);
        }
    }
    let old = std::fs::read(fixture.with_file_name("meta-empty.db")).unwrap();
    for slot in (2..old.len() / ps).step_by(2) {
        let range = slot * ps..(slot + 1) * ps;
        if old[range.clone()] == data[range.clone()] {
            continue;
        }
        let mut stale = data.clone();
        stale[range.clone()].copy_from_slice(&old[range]);
        add(format!("{name} slot {slot} holds its older page"), stale);
    }
    for cut in [data.len() / 2, data.len() * 3 / 4] {
        add(format!("{name} cut at {cut}"), data[..cut].to_vec());
    }
    let mut torn = data.clone();
    let used = db.selection().used;
    torn[used * ps + 40..used * ps + 64].fill(0);
    add(format!("{name} newest meta torn"), torn);
    out
}

#[test]
fn repair_of_an_undamaged_file_changes_nothing() {
    // Go's bbolt reads both files: the comparison does not rest on our reader.
    let Some(go) = oracle_bin(&test_name()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (name, fixture) in fixtures() {
        let dry = ctrdb_path(&["repair"], &fixture);
        assert_eq!(dry.status.code(), Some(0), "{name}: {dry:?}");
        let out = tmp.path().join(format!("{name}.db"));
        let o = ctrdb(&[
            "repair",
            fixture.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}: {o:?}");
        let a = go_lines_of_good(&go, &fixture).expect("Go reads the fixture");
        let b = go_lines_of_good(&go, &out).expect("Go reads the repaired copy");
        assert_eq!(a, b, "{name}: the repaired copy differs");
    }
}

#[test]
fn repaired_copies_are_valid_hold_only_real_records_and_beat_the_bbolt_baseline() {
    let Some(go) = oracle_bin(&test_name()) else {
        return;
    };
    // Go's bbolt on hundreds of damaged files takes both cores and gigabytes
    // of address space: no live containerd runs meanwhile (starved, its `ctr`
    // calls time out).
    let _quiet = super::live::serial();
    // The fixtures in parallel: Go's bbolt is slow on some damaged files.
    let results: Vec<(usize, usize, usize)> = std::thread::scope(|s| {
        let go = &go;
        let handles: Vec<_> = fixtures()
            .into_iter()
            .map(|(name, fixture)| s.spawn(move || repair_each(go, &name, &fixture)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (ours_total, baseline_total, files) = results
        .iter()
        .fold((0, 0, 0), |a, r| (a.0 + r.0, a.1 + r.1, a.2 + r.2));
    eprintln!(
        "repair: {files} damaged files: {ours_total} keys of the newer states kept, bbolt baseline {baseline_total}"
    );
    assert!(
        ours_total > baseline_total,
        "repair keeps {ours_total} keys, no more than the bbolt baseline {baseline_total}"
    );
}

/// Repairs every damaged copy of one fixture and checks each result; returns
/// (newer-state keys kept, the bbolt baseline's, files).
fn repair_each(go: &Path, name: &str, fixture: &Path) -> (usize, usize, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let (mut ours_total, mut baseline_total, mut files) = (0usize, 0usize, 0usize);
    let data = std::fs::read(fixture).unwrap();
    let newer = go_lines_of_good(go, fixture).expect("Go reads the fixture");
    let older_path = tmp.path().join(format!("{name}-older.db"));
    std::fs::write(&older_path, reverted(&data).unwrap()).unwrap();
    let older = go_lines_of_good(go, &older_path).expect("Go reads the older state");
    let real: BTreeSet<&String> = newer.iter().chain(&older).collect();
    for d in damaged(name, fixture) {
        let input = tmp.path().join("damaged.db");
        std::fs::write(&input, &d.bytes).unwrap();
        let out: PathBuf = tmp.path().join("repaired.db");
        let _ = std::fs::remove_file(&out);
        let o = ctrdb(&[
            "repair",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_no_panic(&o, &d.what);
        if o.status.code() == Some(2) {
            // nothing recoverable: no valid meta, or nothing to read
            assert!(
                Db::parse(&d.bytes).is_err(),
                "{}: repair failed: {}",
                d.what,
                String::from_utf8_lossy(&o.stderr)
            );
            continue;
        }
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{}: {}",
            d.what,
            String::from_utf8_lossy(&o.stderr)
        );
        // Records that referenced a lost one now dangle (an image whose
        // content record was lost): warnings, which only the content
        // store (`--root`) can resolve. Nothing else may be found.
        let check = ctrdb_path(&["check", "--fail-on", "error"], &out);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{}: ctrdb check on the repaired copy: {}",
            d.what,
            String::from_utf8_lossy(&check.stdout)
        );
        let lines = go_lines_of_good(go, &out)
            .unwrap_or_else(|| panic!("{}: Go's tx.Check fails on the repaired copy", d.what));
        for l in &lines {
            assert!(
                real.contains(l) || in_repair_lease(l),
                "{}: the repaired copy holds {l}, which neither real state holds",
                d.what
            );
        }
        let ours = keys_in(&lines, &newer);
        let baseline = baseline(
            go,
            &input,
            &d.bytes,
            &newer,
            &tmp.path().join("reverted.db"),
        );
        assert!(
            ours >= baseline,
            "{}: the repaired copy holds {ours} of the newer state's keys, a bbolt user gets {baseline}",
            d.what
        );
        ours_total += ours;
        baseline_total += baseline;
        files += 1;
    }
    (ours_total, baseline_total, files)
}

// Every field is deserialized to pin the format; the tests assert on some.
#[allow(dead_code)]
pub(super) mod wire {
    //! The `repair` report is what `docs/report.md` documents: every document
    //! deserializes with `deny_unknown_fields`.
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Finding {
        pub severity: String,
        pub code: String,
        pub page: Option<u64>,
        pub offset: Option<u64>,
        pub path: Option<String>,
        pub message: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Tree {
        pub meta: u64,
        pub txid: u64,
        pub role: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Recovered {
        pub namespace: Option<Value>,
        pub kind: Option<String>,
        pub id: Value,
        pub path: String,
        pub source: String,
        pub page: Option<u64>,
        pub reason: String,
        pub detail: String,
        pub damage: Option<Finding>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Bound {
        pub key: Value,
        pub inclusive: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Range {
        pub from: Option<Bound>,
        pub to: Option<Bound>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Lost {
        pub namespace: Option<Value>,
        pub kind: Option<String>,
        pub id: Option<Value>,
        pub range: Option<Range>,
        pub path: String,
        pub page: Option<u64>,
        pub damage: Finding,
        pub recreated: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Count {
        pub namespace: Value,
        pub kind: String,
        pub newest_tree: u64,
        pub other_tree: u64,
        pub orphan_pages: u64,
        pub lost: u64,
        pub recreated: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Orphans {
        pub pages_read: u64,
        pub leaves: u64,
        pub placed: u64,
        pub unplaced: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct GcRecord {
        pub namespace: Value,
        pub kind: String,
        pub id: Value,
        pub size: Option<u64>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Recreated {
        pub namespace: Value,
        pub digest: String,
        pub size: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct NotRecreated {
        pub namespace: Value,
        pub digest: Value,
        pub reason: String,
        pub detail: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct ContentStore {
        pub root: Value,
        pub recreated: Vec<Recreated>,
        pub not_recreated: Vec<NotRecreated>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Gc {
        pub rules: String,
        pub input: Vec<GcRecord>,
        pub output: Vec<GcRecord>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Lease {
        pub id: String,
        pub holds: Vec<GcRecord>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Output {
        pub path: Value,
        pub size: u64,
        pub txid: u64,
        pub verified: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Backup {
        pub path: Value,
        pub sha256: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Doc {
        pub schema_version: u32,
        pub tool: Value,
        pub command: String,
        pub input: Value,
        pub database: String,
        pub dry_run: bool,
        pub damaged: bool,
        pub trees: Vec<Tree>,
        pub damage: Vec<Finding>,
        pub other_tree_damage: Vec<Finding>,
        pub recovered: Vec<Recovered>,
        pub lost: Vec<Lost>,
        pub orphans: Option<Orphans>,
        pub counts: Vec<Count>,
        pub gc: Option<Gc>,
        pub lease: Option<Lease>,
        pub content_store: Option<ContentStore>,
        pub output: Option<Output>,
        pub backup: Option<Backup>,
        pub rollback: Option<Value>,
    }
}

/// A zeroed leaf both trees share: its records are lost, the lease holds what
/// they referenced, the JSON report is the documented one, and `--in-place`
/// swaps the file with a backup of the damaged one.
#[test]
fn a_lost_leaf_is_reported_by_record_and_its_references_are_leased() {
    let tmp = tempfile::tempdir().unwrap();
    let (name, fixture) = fixtures()
        .into_iter()
        .find(|(n, _)| n.contains("2.1.9"))
        .expect("the 2.1.9 fixture");
    let (z, images_leaf) = k8s_images_leaf_zeroed(&std::fs::read(&fixture).unwrap());
    let input = tmp.path().join("meta.db");
    std::fs::write(&input, &z).unwrap();

    let dry = ctrdb_path(&["repair", "--format", "json"], &input);
    assert_eq!(dry.status.code(), Some(1), "{name}: {dry:?}");
    let doc: wire::Doc = serde_json::from_slice(&dry.stdout).expect("the documented format");
    assert_eq!((doc.command.as_str(), doc.schema_version), ("repair", 3));
    assert!(doc.dry_run && doc.damaged && doc.output.is_none());
    assert_eq!(doc.trees.len(), 2);
    assert_eq!(doc.trees[0].role, "newest");
    assert!(doc.damage.iter().any(|f| f.page == Some(images_leaf)));
    assert!(
        doc.lost
            .iter()
            .any(|l| l.path == "v1/k8s.io/images" && l.page == Some(images_leaf)),
        "{:?}",
        doc.lost
    );
    let lease = doc
        .lease
        .expect("a lease holds what the lost images referenced");
    assert!(lease.id.starts_with("ctrdb-repair-"));
    assert!(lease.holds.iter().any(|h| h.kind == "content"));
    assert!(lease.holds.iter().all(|h| h.namespace == "k8s.io"));
    let gc = doc.gc.expect("a metadata database has a GC model");
    assert!(
        gc.output.len() < gc.input.len(),
        "the lease keeps what the damage would let the GC delete"
    );
    assert_eq!(
        std::fs::read(&input).unwrap(),
        z,
        "a dry run writes nothing"
    );

    let o = ctrdb(&[
        "repair",
        "--in-place",
        input.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let doc: wire::Doc = serde_json::from_slice(&o.stdout).expect("the documented format");
    let lease = doc.lease.expect("the in-place repair adds its lease");
    let backup = doc.backup.expect("a backup of the damaged file");
    let backup_path = std::path::PathBuf::from(backup.path.as_str().unwrap());
    assert_eq!(
        std::fs::read(&backup_path).unwrap(),
        z,
        "the backup is the damaged file"
    );
    assert!(doc.rollback.is_some() && doc.output.is_some_and(|w| w.verified));
    let check = ctrdb_path(&["check"], &input);
    assert_eq!(check.status.code(), Some(0), "{check:?}");
    let again = ctrdb_path(&["repair"], &input);
    assert_eq!(
        again.status.code(),
        Some(0),
        "the repaired file has no damage"
    );
    let leases = ctrdb_path(&["dump", "--path", "v1/k8s.io/leases"], &input);
    assert!(String::from_utf8_lossy(&leases.stdout).contains(&lease.id));
}
