//! What the repair tests share: Go's dump of a file as the ground truth, the
//! bbolt user's baseline (a reverted meta page), and the repair lease's lines.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::common::{go_check_passes_within, tree_pages};
use ctrdb::bolt::testing::PageKind;
use ctrdb::bolt::Db;

/// Lower-case hex of `b`, as dump lines write keys.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Go bbolt's dump of a damaged file `db` as `B`/`K` lines, or `None` if Go's
/// check or its dump fails on it. Go's bbolt may loop or allocate gigabytes
/// on a damaged file: a check that takes longer than 3 s, or more than 2 GiB
/// of address space (Go's runtime reserves well under that), is a failed one,
/// as it is for a bbolt user.
pub fn go_lines(bin: &Path, db: &Path) -> Option<BTreeSet<String>> {
    go_lines_within(bin, db, Duration::from_secs(3), 2 << 30)
}

/// Go's dump of a file that must be good (a fixture, a repaired copy): the
/// limits only stop a runaway.
pub fn go_lines_of_good(bin: &Path, db: &Path) -> Option<BTreeSet<String>> {
    go_lines_within(bin, db, Duration::from_secs(60), 4 << 30)
}

fn go_lines_within(
    bin: &Path,
    db: &Path,
    limit: Duration,
    address_space: u64,
) -> Option<BTreeSet<String>> {
    if !go_check_passes_within(bin, db, limit, address_space) {
        return None;
    }
    let o = Command::new(bin.join("dumpdb"))
        .arg("-lines")
        .arg(db)
        .output()
        .expect("run dumpdb -lines");
    // Go's check passes some damaged files that its reads then fail on.
    if !o.status.success() {
        return None;
    }
    Some(
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("B ") || l.starts_with("K "))
            .map(str::to_string)
            .collect(),
    )
}

/// `data` with its newest meta page invalidated (its magic zeroed): what a
/// bbolt user's `surgery revert-meta-page` leaves Go to read.
pub fn reverted(data: &[u8]) -> Option<Vec<u8>> {
    let db = Db::parse(data).ok()?;
    let ps = db.page_size();
    let used = db.selection().used;
    let mut out = data.to_vec();
    out.get_mut(used * ps + 16..used * ps + 20)?.fill(0);
    Some(out)
}

/// How many keys (`K` lines: bbolt counts keys with values, not buckets) of
/// `lines` `newer` holds.
pub fn keys_in(lines: &BTreeSet<String>, newer: &BTreeSet<String>) -> usize {
    lines
        .intersection(newer)
        .filter(|l| l.starts_with("K "))
        .count()
}

/// Whether a dump line is under a repair lease.
pub fn in_repair_lease(line: &str) -> bool {
    line.contains(&format!("/{}/{}", hex(b"leases"), hex(b"ctrdb-repair-")))
}

/// The bbolt user's best: keep the file if Go reads it, else revert to the
/// other meta page; how many of `newer`'s keys that gives. `scratch` is a
/// path the reverted file may be written to.
pub fn baseline(
    bin: &Path,
    damaged: &Path,
    bytes: &[u8],
    newer: &BTreeSet<String>,
    scratch: &Path,
) -> usize {
    match go_lines(bin, damaged) {
        Some(kept) => keys_in(&kept, newer),
        None => reverted(bytes).map_or(0, |r| {
            std::fs::write(scratch, r).unwrap();
            go_lines(bin, scratch).map_or(0, |l| keys_in(&l, newer))
        }),
    }
}

/// `data` (a fixture) with the leaf page of `v1/k8s.io/images` zeroed — a page
/// both meta trees share, so its image records are lost to a repair — and
/// that page's id.
pub fn k8s_images_leaf_zeroed(data: &[u8]) -> (Vec<u8>, u64) {
    let db = Db::parse(data).expect("a fixture parses");
    let ps = db.page_size();
    let leaf = tree_pages(&db)
        .into_iter()
        .find(|p| {
            p.kind == PageKind::Leaf
                && p.bucket == [b"v1".to_vec(), b"k8s.io".to_vec(), b"images".to_vec()]
        })
        .expect("k8s.io's images leaf");
    let mut out = data.to_vec();
    let at = leaf.id as usize * ps;
    out[at..at + ps].fill(0);
    (out, leaf.id)
}
