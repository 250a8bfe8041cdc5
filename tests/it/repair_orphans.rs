//! Orphan pages in real history. In every state of the committed containerd
//! 1.7.24 and 2.1.9 histories (`fixtures/history/`), each leaf page of the
//! newest tree is zeroed in turn, and has the header of one element rotted
//! beyond what the packing undoes; where the other meta's tree cannot make up
//! for it, a repair may take the lost range's records from pages no tree
//! reaches (earlier versions bbolt left in place). Wherever it does:
//! - the repaired copy (written by `ctrdb repair -o`) passes Go's `tx.Check`
//!   and ctrdb's check;
//! - every key and value in it is one real containerd wrote at that place, in
//!   this state or an earlier one, as Go dumps the states (orphan pages are
//!   earlier versions: a record may come back as it was before a later
//!   change); the repair lease is the only addition;
//! - it keeps at least as many of the state's own keys as a bbolt user gets.
//!
//! Over both histories orphan pages must give records back, and the totals
//! (records from orphan pages; of the state's keys, kept by the repair and by
//! bbolt; keys from earlier states) are printed.

use std::collections::BTreeSet;
use std::path::Path;

use super::common::*;
use super::history_fixtures::{gunzip_release, releases, Release};
use super::repair::wire::Doc;
use super::repair_common::*;
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::Db;
use ctrdb::ops::repair::{repair_in_memory, Source};

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    damaged: usize,
    files: usize,
    records: usize,
    ours: usize,
    baseline: usize,
    older: usize,
    between: usize,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.damaged += o.damaged;
        self.files += o.files;
        self.records += o.records;
        self.ours += o.ours;
        self.baseline += o.baseline;
        self.older += o.older;
        self.between += o.between;
    }
}

#[test]
fn orphan_pages_give_back_records_real_containerd_wrote_there() {
    let Some(go) = oracle_bin(&test_name()) else {
        return;
    };
    let _quiet = super::live::serial();
    let mut total = Tally::default();
    let per_release: Vec<Tally> = std::thread::scope(|s| {
        let go = &go;
        let handles: Vec<_> = releases()
            .into_iter()
            .map(|rel| s.spawn(move || orphans_of_release(go, &rel)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for t in per_release {
        total += t;
    }
    eprintln!(
        "repair orphans: {} damaged leaves, {} repairs took {} record(s) from orphan pages; \
         of the states' keys they keep {}, bbolt {}; {} key(s) are earlier versions, \
         {} line(s) of records no state holds",
        total.damaged,
        total.files,
        total.records,
        total.ours,
        total.baseline,
        total.older,
        total.between
    );
    assert!(
        total.records > 0,
        "no repair of a damaged leaf took anything from an orphan page"
    );
}

/// The record a dump line is part of: the records bucket's path and the
/// record's key (hex), for the kinds of `v1/<ns>/…`.
fn record_of(l: &str) -> Option<(Vec<String>, String)> {
    let path: Vec<&str> = l.split(' ').nth(1)?.split('/').collect();
    let name = |i: usize| {
        path.get(i)
            .map(|h| String::from_utf8(unhex(h)).unwrap_or_default())
    };
    let depth = match (name(0)?.as_str(), name(2).as_deref(), name(3).as_deref()) {
        ("v1", Some("images" | "containers" | "leases" | "sandboxes"), _) => 3,
        ("v1", Some("content"), Some("blob" | "ingests")) | ("v1", Some("snapshots"), Some(_)) => 4,
        _ => return None,
    };
    let id = path.get(depth)?.to_string();
    Some((path[..depth].iter().map(|s| s.to_string()).collect(), id))
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Whether the bucket path, key and value of the dump line `l` are all byte
/// strings of `file` (nothing the repair wrote is made up).
fn in_bytes_of(file: &[u8], l: &str) -> bool {
    let found =
        |needle: &[u8]| needle.is_empty() || file.windows(needle.len()).any(|w| w == needle);
    let mut parts = l.split(' ').skip(1);
    let path = parts.next().unwrap_or_default();
    let tail: Vec<Vec<u8>> = match (l.as_bytes()[0], parts.next(), parts.next()) {
        (b'K', Some(key), Some(value)) if value != "-" => vec![unhex(key), unhex(value)],
        (b'K', Some(key), _) => vec![unhex(key)],
        _ => Vec::new(),
    };
    path.split('/').map(unhex).chain(tail).all(|b| found(&b))
}

fn orphans_of_release(go: &Path, rel: &Release) -> Tally {
    let tmp = tempfile::tempdir().unwrap();
    let files = gunzip_release(rel);
    let dump = |name: &str, bytes: &[u8]| -> BTreeSet<String> {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        go_lines_of_good(go, &p).unwrap_or_else(|| panic!("Go reads {name}"))
    };
    let mut tally = Tally::default();
    // Everything real containerd wrote up to the current state, both trees.
    let mut real = BTreeSet::new();
    for st in rel.manifest["states"].as_array().unwrap() {
        let name = st["name"].as_str().unwrap();
        let data = files
            .get(&rel.dir.join(name).join("meta.db.gz"))
            .expect("every state has a meta.db");
        let state = dump("state.db", data);
        real.extend(state.iter().cloned());
        real.extend(dump("state-other.db", &reverted(data).unwrap()));

        let db = Db::parse(data).unwrap();
        let ps = db.page_size();
        let leaves: Vec<(u64, u16)> = tree_pages(&db)
            .into_iter()
            .filter(|p| p.kind == PageKind::Leaf)
            .map(|p| (p.id, p.count))
            .collect();
        let damaged = leaves.iter().flat_map(|&(id, count)| {
            let at = id as usize * ps;
            let mut zeroed = data.clone();
            zeroed[at..at + ps].fill(0);
            // Element 1's pos, ksize and vsize rotted together: more than the
            // packing can undo, so its key is a hole between its neighbours.
            let rotted = (count >= 3).then(|| {
                let mut b = data.clone();
                let e = at + 16 + 16 + 4;
                b[e..e + 12].fill(0xee);
                (format!("leaf {id}, element 1's header rotted"), b)
            });
            std::iter::once((format!("leaf {id} zeroed"), zeroed)).chain(rotted)
        });
        for (how, bytes) in damaged {
            tally.damaged += 1;
            let damaged = Db::parse(&bytes).unwrap();
            let (_, ledger) = repair_in_memory(&damaged).unwrap();
            let from_orphans = ledger
                .recovered
                .iter()
                .filter(|r| r.source == Source::Orphan)
                .count();
            if from_orphans == 0 {
                continue;
            }
            let what = format!("{} {name}: {how}", rel.name);
            let input = tmp.path().join("damaged.db");
            std::fs::write(&input, &bytes).unwrap();
            let out = tmp.path().join("repaired.db");
            let _ = std::fs::remove_file(&out);
            let o = ctrdb(&[
                "repair",
                input.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--format",
                "json",
            ]);
            assert_no_panic(&o, &what);
            assert_eq!(o.status.code(), Some(1), "{what}: {o:?}");
            let doc: Doc = serde_json::from_slice(&o.stdout).expect("the documented format");
            let reported: Vec<_> = doc
                .recovered
                .iter()
                .filter(|r| r.source == "orphanPage")
                .collect();
            assert_eq!(
                reported.len(),
                from_orphans,
                "{what}: the report's orphan records"
            );
            assert!(
                reported.iter().all(|r| r.page.is_some()),
                "{what}: an orphan record without its page"
            );
            let placed = doc.orphans.as_ref().map_or(0, |o| o.placed);
            assert!(placed > 0, "{what}: records from orphan pages, none placed");
            let check = ctrdb_path(&["check", "--fail-on", "error"], &out);
            assert_eq!(
                check.status.code(),
                Some(0),
                "{what}: ctrdb check on the repaired copy: {}",
                String::from_utf8_lossy(&check.stdout)
            );
            let lines = go_lines_of_good(go, &out)
                .unwrap_or_else(|| panic!("{what}: Go's tx.Check fails on the repaired copy"));
            for l in lines
                .iter()
                .filter(|l| !real.contains(*l) && !in_repair_lease(l))
            {
                let moved = record_of(l).is_some_and(|(bucket, id)| {
                    real.iter()
                        .filter_map(|r| record_of(r))
                        .any(|(b, i)| i == id && b != bucket)
                });
                assert!(
                    record_of(l).is_some() && !moved && in_bytes_of(&bytes, l),
                    "{what}: the repaired copy holds {l}, which containerd never wrote there"
                );
                tally.between += 1;
            }
            let ours = keys_in(&lines, &state);
            let baseline = baseline(go, &input, &bytes, &state, &tmp.path().join("reverted.db"));
            assert!(
                ours >= baseline,
                "{what}: the repaired copy holds {ours} of the state's keys, bbolt {baseline}"
            );
            tally.files += 1;
            tally.records += from_orphans;
            tally.ours += ours;
            tally.baseline += baseline;
            tally.older += lines
                .iter()
                .filter(|l| l.starts_with("K ") && !state.contains(*l) && !in_repair_lease(l))
                .count();
        }
    }
    tally
}
