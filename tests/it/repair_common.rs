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
    baseline_lines(bin, damaged, bytes, scratch).map_or(0, |l| keys_in(&l, newer))
}

/// What the bbolt user's best (see [`baseline`]) leaves Go to read, as dump
/// lines; `None` if neither the file nor its reverted copy reads.
pub fn baseline_lines(
    bin: &Path,
    damaged: &Path,
    bytes: &[u8],
    scratch: &Path,
) -> Option<BTreeSet<String>> {
    go_lines(bin, damaged).or_else(|| {
        let r = reverted(bytes)?;
        std::fs::write(scratch, r).unwrap();
        go_lines(bin, scratch)
    })
}

/// `data` (a fixture) with the leaf page of `v1/k8s.io/images` zeroed — a page
/// both meta trees share, so its image records are lost to a repair — and
/// that page's id.
pub fn k8s_images_leaf_zeroed(data: &[u8]) -> (Vec<u8>, u64) {
    leaf_zeroed(data, &[b"v1", b"k8s.io", b"images"])
}

/// `data` (a fixture) with the first leaf page of `bucket` zeroed, and that
/// page's id.
pub fn leaf_zeroed(data: &[u8], bucket: &[&[u8]]) -> (Vec<u8>, u64) {
    let db = Db::parse(data).expect("a fixture parses");
    let ps = db.page_size();
    let leaf = tree_pages(&db)
        .into_iter()
        .find(|p| {
            p.kind == PageKind::Leaf
                && p.bucket
                    .iter()
                    .map(Vec::as_slice)
                    .eq(bucket.iter().copied())
        })
        .unwrap_or_else(|| panic!("no leaf page of {bucket:?}"));
    let mut out = data.to_vec();
    let at = leaf.id as usize * ps;
    out[at..at + ps].fill(0);
    (out, leaf.id)
}

/// `data` (a fixture) with the inline `labels` bucket of the first `n`
/// records that have one in the leaf pages of `bucket` made unreadable (its
/// page flags say branch): records whose keys are known and that no tree
/// holds whole. Returns the file and the records' keys.
pub fn record_labels_broken(data: &[u8], bucket: &[&[u8]], n: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    use ctrdb::bolt::layout::{BRANCH_PAGE, BUCKET_HEADER_SIZE, PAGE_FLAGS};
    const PAGE_HEADER: usize = 16;
    const ELEMENT: usize = 16;
    let u32_at = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
    let db = Db::parse(data).expect("a fixture parses");
    let ps = db.page_size();
    let mut out = data.to_vec();
    let mut keys = Vec::new();
    for p in tree_pages(&db).into_iter().filter(|p| {
        p.kind == PageKind::Leaf
            && p.bucket
                .iter()
                .map(Vec::as_slice)
                .eq(bucket.iter().copied())
    }) {
        let page = db.pages().page(p.id).unwrap();
        for i in 0..usize::from(p.count) {
            let e = page.leaf_element(i).unwrap();
            if keys.len() == n || !e.is_bucket() {
                continue;
            }
            // The record's page: inline after its bucket header, or its root
            // (a leaf: records are small).
            let root = u64::from_le_bytes(e.value[..8].try_into().unwrap()) as usize;
            let at = if root == 0 {
                e.value_offset as usize + BUCKET_HEADER_SIZE
            } else {
                root * ps
            };
            let count = usize::from(u16::from_le_bytes([data[at + 10], data[at + 11]]));
            for j in 0..count {
                let elem = at + PAGE_HEADER + j * ELEMENT;
                let (flags, pos, ksize) = (u32_at(elem), u32_at(elem + 4), u32_at(elem + 8));
                let key = &data[elem + pos..elem + pos + ksize];
                let value = elem + pos + ksize;
                if key == b"labels" && flags & 1 != 0 && data[value..value + 8] == [0; 8] {
                    let flags_at = value + BUCKET_HEADER_SIZE + PAGE_FLAGS;
                    out[flags_at..flags_at + 2].copy_from_slice(&BRANCH_PAGE.to_le_bytes());
                    keys.push(e.key.to_vec());
                }
            }
        }
    }
    assert_eq!(keys.len(), n, "records with inline labels in {bucket:?}");
    (out, keys)
}

/// The snapshot ids a snapshotter database's dump lines hold: the `id` value
/// of each `v1/snapshots/<key>` (its directory under `snapshots/`), as hex.
pub fn snapshot_ids(lines: &BTreeSet<String>) -> BTreeSet<String> {
    let records = format!("K {}/{}/", hex(b"v1"), hex(b"snapshots"));
    let id = format!("{} ", hex(b"id"));
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&records))
        .filter_map(|rest| {
            let (snapshot, entry) = rest.split_once(' ')?;
            // A key of the record itself, not of its labels.
            if snapshot.contains('/') {
                return None;
            }
            entry.strip_prefix(&id).map(str::to_string)
        })
        .collect()
}
