//! `ctrdb repair` on damage derived from real history: for each step of the
//! committed containerd 1.7.24 and 2.1.9 histories (`fixtures/history/`), the
//! file after the step is damaged the way storage damages a transaction —
//! the newest transaction's pages lost (their slots left with the previous
//! state's bytes), half of them lost, one zeroed, the file cut where it grew,
//! bit rot in an element header and in the body of a page both trees share,
//! a misdirected write (a page overwritten by a copy of another), a torn meta
//! page.
//!
//! Every repaired copy passes Go's `tx.Check` and `ctrdb check` (errors; a
//! record that referenced a lost one may dangle), holds only keys and values
//! of the real states it came from (the trees of the step's file and of the
//! previous state's, as Go dumps them) plus the repair lease, and holds at
//! least as many of the newer state's keys as a bbolt user gets (keep the file
//! if Go's check passes, else revert to the other meta page); over all files,
//! strictly more. Per damage kind the totals are printed.
//!
//! Both bbolt files of a state are repaired this way: `meta.db` and the
//! overlayfs snapshotter's `metadata.db`, which bbolt's defaults write with a
//! persisted freelist; a step that wrote no transaction to a file is skipped
//! for it. The repaired copy keeps the source's freelist style — an empty
//! freelist page (it has no free pages) where the source persisted one, none
//! where it did not — and Go's check, which checks the freelist against the
//! tree, passes it. On the snapshotter's database, every snapshot id of the
//! newer state that the bbolt baseline keeps is kept too: containerd's sweep
//! deletes the directory of every id the database loses.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::common::*;
use super::history_fixtures::{gunzip_release, releases, Release};
use super::repair_common::*;
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::Db;

/// The damage kinds, in the order they are reported.
const KINDS: [&str; 9] = [
    "newest transaction lost",
    "half of it lost",
    "one of its pages zeroed",
    "cut where it grew",
    "element header rot in a shared page",
    "body rot in a shared page",
    "misdirected write",
    "misdirected write, id rewritten",
    "newest meta torn",
];

/// The damaged files of one step: (kind index, bytes).
fn damaged(prev: &[u8], next: &[u8], written: &[u64]) -> Vec<(usize, Vec<u8>)> {
    let db = Db::parse(next).unwrap();
    let ps = db.page_size();
    let page = |d: &[u8], id: u64| -> Vec<u8> {
        let at = id as usize * ps;
        d.get(at..at + ps).map_or(vec![0; ps], <[u8]>::to_vec)
    };
    let put = |d: &mut Vec<u8>, id: u64, bytes: &[u8]| {
        let at = id as usize * ps;
        d[at..at + ps].copy_from_slice(bytes);
    };
    let data: Vec<u64> = written.iter().copied().filter(|&p| p >= 2).collect();
    let mut out = Vec::new();
    if !data.is_empty() {
        let mut lost = next.to_vec();
        for &p in &data {
            put(&mut lost, p, &page(prev, p));
        }
        out.push((0, lost));
        let mut half = next.to_vec();
        for &p in data.iter().step_by(2) {
            put(&mut half, p, &page(prev, p));
        }
        out.push((1, half));
        let mut zero = next.to_vec();
        put(&mut zero, data[0], &vec![0; ps]);
        out.push((2, zero));
    }
    if next.len() > prev.len() {
        out.push((3, next[..prev.len()].to_vec()));
    }
    // A page both trees reach and the previous state holds the same: a leaf
    // no recent transaction wrote.
    let shared = tree_pages(&db)
        .into_iter()
        .find(|p| p.kind == PageKind::Leaf && p.count > 1 && page(prev, p.id) == page(next, p.id));
    if let Some(s) = shared {
        let at = s.id as usize * ps;
        let mut rot = next.to_vec();
        rot[at + 16 + 16 + 8 + 1] ^= 0x04; // element 1's ksize
        out.push((4, rot));
        let mut body = next.to_vec();
        body[at + ps - 64] ^= 0x20;
        out.push((5, body));
    }
    if data.len() >= 2 {
        let mut mis = next.to_vec();
        put(&mut mis, data[0], &page(next, data[1]));
        out.push((6, mis));
        let mut mis_id = next.to_vec();
        let mut copy = page(next, data[1]);
        copy[..8].copy_from_slice(&data[0].to_le_bytes());
        put(&mut mis_id, data[0], &copy);
        out.push((7, mis_id));
    }
    let used = db.selection().used;
    let mut torn = next.to_vec();
    torn[used * ps + 40..used * ps + 64].fill(0);
    out.push((8, torn));
    out
}

/// The bbolt files of a history state that a repair is run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Database {
    /// containerd's metadata database: no persisted freelist (1.7+).
    Meta,
    /// The overlayfs snapshotter's database: bbolt's defaults, so its
    /// freelist is persisted.
    Overlayfs,
}

impl Database {
    /// The file's name in a state's directory.
    fn file_name(self) -> &'static str {
        match self {
            Database::Meta => "meta.db.gz",
            Database::Overlayfs => "overlayfs-metadata.db.gz",
        }
    }

    /// The key of the file's entry in a state of `manifest.json`.
    fn manifest_key(self) -> &'static str {
        match self {
            Database::Meta => "meta",
            Database::Overlayfs => "overlayfs",
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Tally {
    files: usize,
    ours: usize,
    baseline: usize,
}

#[test]
fn repairs_of_damaged_history_steps_keep_more_than_bbolt_and_invent_nothing() {
    repair_history(Database::Meta);
}

/// The snapshotter's database too: containerd's sweep deletes the snapshot
/// directories whose ids it loses, so besides the keys, every snapshot id of
/// the newer state that the bbolt baseline keeps is kept.
#[test]
fn repairs_of_damaged_overlayfs_history_steps_keep_more_than_bbolt_and_invent_nothing() {
    repair_history(Database::Overlayfs);
}

fn repair_history(database: Database) {
    let Some(go) = oracle_bin(&test_name()) else {
        return;
    };
    // Go's bbolt on hundreds of damaged files takes both cores and gigabytes
    // of address space: no live containerd runs meanwhile (starved, its `ctr`
    // calls time out).
    let _quiet = super::live::serial();
    let per_release: Vec<BTreeMap<usize, Tally>> = std::thread::scope(|s| {
        let go = &go;
        let handles: Vec<_> = releases()
            .into_iter()
            .map(|rel| s.spawn(move || repair_release(go, &rel, database)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut total = BTreeMap::<usize, Tally>::new();
    for m in per_release {
        for (k, t) in m {
            let e = total.entry(k).or_default();
            e.files += t.files;
            e.ours += t.ours;
            e.baseline += t.baseline;
        }
    }
    let (mut ours, mut baseline) = (0, 0);
    for (k, t) in &total {
        eprintln!(
            "repair history ({}): {:<36} {:>3} files: {:>6} keys of the newer state kept, bbolt {:>6}",
            database.manifest_key(),
            KINDS[*k],
            t.files,
            t.ours,
            t.baseline
        );
        ours += t.ours;
        baseline += t.baseline;
    }
    assert!(
        ours > baseline,
        "repair keeps {ours} keys over all files, no more than bbolt's {baseline}"
    );
}

fn repair_release(go: &Path, rel: &Release, database: Database) -> BTreeMap<usize, Tally> {
    let tmp = tempfile::tempdir().unwrap();
    let files = gunzip_release(rel);
    let states = rel.manifest["states"].as_array().unwrap();
    let key = database.manifest_key();
    let file_of = |st: &serde_json::Value| {
        files
            .get(
                &rel.dir
                    .join(st["name"].as_str().unwrap())
                    .join(database.file_name()),
            )
            .unwrap_or_else(|| panic!("every state has a {}", database.file_name()))
    };
    let mut tally = BTreeMap::<usize, Tally>::new();
    let dump = |name: &str, bytes: &[u8]| -> BTreeSet<String> {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        go_lines_of_good(go, &p).unwrap_or_else(|| panic!("Go reads {name}"))
    };
    for pair in states.windows(2) {
        let step = pair[1]["name"].as_str().unwrap();
        // A step that wrote no transaction to this file left it as it was.
        let Some(last) = pair[1][key]["written"].as_array().and_then(|w| w.last()) else {
            assert_eq!(
                pair[0][key]["txid"], pair[1][key]["txid"],
                "{} {step}: {key} changed without a written transaction",
                rel.name
            );
            continue;
        };
        let (prev, next) = (file_of(&pair[0]), file_of(&pair[1]));
        let newer = dump("next.db", next);
        let mut real: BTreeSet<String> = newer.clone();
        real.extend(dump("next-other.db", &reverted(next).unwrap()));
        real.extend(dump("prev.db", prev));
        real.extend(dump("prev-other.db", &reverted(prev).unwrap()));
        let written: Vec<u64> = last["pages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect();
        let persisted_freelist = Db::parse(next).unwrap().meta().has_freelist();
        let newer_ids = snapshot_ids(&newer);
        for (kind, bytes) in damaged(prev, next, &written) {
            let what = format!("{} {step} {key}: {}", rel.name, KINDS[kind]);
            let input = tmp.path().join("damaged.db");
            std::fs::write(&input, &bytes).unwrap();
            let out = tmp.path().join("repaired.db");
            let _ = std::fs::remove_file(&out);
            let o = ctrdb(&[
                "repair",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ]);
            assert_no_panic(&o, &what);
            assert!(
                matches!(o.status.code(), Some(0 | 1)),
                "{what}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let check = ctrdb_path(&["check", "--fail-on", "error"], &out);
            assert_eq!(
                check.status.code(),
                Some(0),
                "{what}: ctrdb check on the repaired copy: {}",
                String::from_utf8_lossy(&check.stdout)
            );
            // Go's check, below, also checks the freelist against the tree:
            // every page is reachable or listed free, and none twice.
            assert_freelist_kept(&out, persisted_freelist, &what);
            let lines = go_lines_of_good(go, &out)
                .unwrap_or_else(|| panic!("{what}: Go's tx.Check fails on the repaired copy"));
            for l in &lines {
                assert!(
                    real.contains(l) || in_repair_lease(l),
                    "{what}: the repaired copy holds {l}, which no real state holds"
                );
            }
            let ours = keys_in(&lines, &newer);
            let kept = baseline_lines(go, &input, &bytes, &tmp.path().join("reverted.db"));
            let baseline = kept.as_ref().map_or(0, |l| keys_in(l, &newer));
            assert!(
                ours >= baseline,
                "{what}: the repaired copy holds {ours} of the newer state's keys, bbolt {baseline}"
            );
            if database == Database::Overlayfs {
                let ours_ids = snapshot_ids(&lines);
                let baseline_ids = kept.as_ref().map(snapshot_ids).unwrap_or_default();
                let dropped: Vec<_> = baseline_ids
                    .intersection(&newer_ids)
                    .filter(|id| !ours_ids.contains(*id))
                    .collect();
                assert!(
                    dropped.is_empty(),
                    "{what}: the repaired copy loses the newer state's snapshots {dropped:?}, which bbolt keeps"
                );
            }
            let t = tally.entry(kind).or_default();
            t.files += 1;
            t.ours += ours;
            t.baseline += baseline;
        }
    }
    tally
}

/// The repaired file keeps the source's freelist style: where the source
/// persisted a freelist, the copy has one, and it is empty (every page below
/// the high-water mark is a meta, the freelist or reachable); where it did
/// not, the copy has none.
fn assert_freelist_kept(repaired: &Path, persisted: bool, what: &str) {
    let bytes = std::fs::read(repaired).unwrap();
    let db = Db::parse(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    let freelist = db
        .freelist()
        .unwrap_or_else(|e| panic!("{what}: the repaired copy's freelist: {e}"));
    match freelist {
        Some(f) => {
            assert!(
                persisted,
                "{what}: the repaired copy persists a freelist, the source does not"
            );
            assert_eq!(
                f.ids,
                Vec::<u64>::new(),
                "{what}: the repaired copy lists free pages"
            );
        }
        None => assert!(
            !persisted,
            "{what}: the repaired copy drops the source's freelist"
        ),
    }
}
