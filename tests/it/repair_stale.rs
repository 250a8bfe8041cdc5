//! `ctrdb repair` where the newest tree's page is an older version of the same
//! node: in each step of the committed containerd histories, each leaf the
//! step's last transaction wrote is overwritten, in turn, by every earlier
//! version of that node — a leaf of an earlier state's tree in the same bucket
//! with the same first key, or an intermediate transaction's leaf with the
//! same keys — read from the earlier file, its id rewritten to the slot, as a
//! lost or misdirected write leaves a slot. A page of records rolls records
//! back; a page of a bucket of buckets (`v1/<ns>`, `v1/<ns>/content`) points
//! to the pages its children had then, which later transactions may have
//! given to other buckets: such a reference is seen as stale where the other
//! tree has the page in another bucket, or where the records it reaches hold
//! another kind's keys.
//!
//! Each repaired copy passes Go's `tx.Check` and `ctrdb check`, and holds only
//! lines of the release's real states or of the damaged file as Go reads it
//! (no record lands in another bucket); each record reported as newer in the
//! other tree (`newerInOtherTree`) is, line for line, the newer state's.

use std::collections::BTreeSet;
use std::path::Path;

use super::common::*;
use super::history_fixtures::{gunzip_release, releases};
use super::repair::wire;
use super::repair_common::*;

/// The keys of a leaf page image, or `None` for anything else.
fn leaf_keys(page: &[u8]) -> Option<Vec<&[u8]>> {
    let u16_at = |at: usize| u16::from_le_bytes([page[at], page[at + 1]]);
    let u32_at = |at: usize| u32::from_le_bytes(page[at..at + 4].try_into().unwrap()) as usize;
    let (flags, count) = (u16_at(8), usize::from(u16_at(10)));
    if flags != 0x02 || count == 0 || 16 + count * 16 > page.len() {
        return None;
    }
    (0..count)
        .map(|i| {
            let at = 16 + i * 16;
            let (pos, ksize) = (u32_at(at + 4), u32_at(at + 8));
            page.get(at + pos..at + pos + ksize)
        })
        .collect()
}

/// Repairs `input` into `out` (JSON report): the run does not panic and
/// exits 0 or 1, and the copy passes `ctrdb check` and Go's `tx.Check`.
/// Returns the report and Go's dump of the copy.
fn repaired(go: &Path, input: &Path, out: &Path, what: &str) -> (wire::Doc, BTreeSet<String>) {
    let _ = std::fs::remove_file(out);
    let o = ctrdb(&[
        "repair",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_no_panic(&o, what);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{what}: {o:?}");
    let doc = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{what}: {e}: {o:?}"));
    let check = ctrdb_path(&["check", "--fail-on", "error"], out);
    assert_eq!(check.status.code(), Some(0), "{what}: {check:?}");
    let lines = go_lines_of_good(go, out)
        .unwrap_or_else(|| panic!("{what}: Go's tx.Check fails on the repaired copy"));
    (doc, lines)
}

/// The dump lines of the record at `path/key` (its bucket line and
/// everything below it).
fn record_lines<'l>(lines: &'l BTreeSet<String>, path: &str, key: &[u8]) -> BTreeSet<&'l str> {
    let hex_path: Vec<String> = path.split('/').map(|c| hex(c.as_bytes())).collect();
    let record = format!("{}/{}", hex_path.join("/"), hex(key));
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| {
            let p = l.get(2..).and_then(|r| r.split(' ').next()).unwrap_or("");
            p == record || p.starts_with(&format!("{record}/"))
        })
        .collect()
}

#[test]
fn an_older_version_of_a_node_in_the_newest_tree_yields_to_the_newer_record_of_the_other() {
    let Some(go) = oracle_bin(&test_name()) else {
        return;
    };
    let _quiet = super::live::serial();
    let tmp = tempfile::tempdir().unwrap();
    let (mut files, mut newer_in_other) = (0, 0);
    let (mut stale_references, mut foreign_records) = (0, 0);
    for rel in releases() {
        let all = gunzip_release(&rel);
        let states = rel.manifest["states"].as_array().unwrap();
        let meta: Vec<&Vec<u8>> = states
            .iter()
            .map(|st| {
                &all[&rel
                    .dir
                    .join(st["name"].as_str().unwrap())
                    .join("meta.db.gz")]
            })
            .collect();
        let dump = |name: &str, bytes: &[u8]| -> BTreeSet<String> {
            let p = tmp.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            go_lines_of_good(&go, &p).unwrap_or_else(|| panic!("Go reads {name}"))
        };
        // Every line of every real state of the release, both trees: the
        // stale page is one of them.
        let mut real = BTreeSet::new();
        for (i, m) in meta.iter().enumerate() {
            real.extend(dump(&format!("state-{i}.db"), m));
            real.extend(dump(&format!("state-{i}-other.db"), &reverted(m).unwrap()));
        }
        for i in 1..states.len() {
            let step = states[i]["name"].as_str().unwrap();
            let next = meta[i];
            let ps = ctrdb::bolt::Db::parse(next).unwrap().page_size();
            let written = states[i]["meta"]["written"]
                .as_array()
                .and_then(|w| w.last())
                .expect("the step's transactions")["pages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap() as usize);
            let newer = dump("next.db", next);
            let buckets: std::collections::BTreeMap<u64, Vec<Vec<u8>>> =
                tree_pages(&ctrdb::bolt::Db::parse(next).unwrap())
                    .into_iter()
                    .map(|t| (t.id, t.bucket))
                    .collect();
            for p in written.filter(|&p| p >= 2 && (p + 1) * ps <= next.len()) {
                let current = &next[p * ps..(p + 1) * ps];
                let (Some(keys), Some(bucket)) = (leaf_keys(current), buckets.get(&(p as u64)))
                else {
                    continue;
                };
                // Every earlier version of this node: a leaf of an earlier
                // state's tree in the same bucket whose first key is this
                // leaf's (as the branch above it says), or a leaf of an
                // earlier file that no tree reaches (an intermediate
                // transaction's page) with exactly this leaf's keys.
                let mut versions: Vec<(usize, u64, &[u8])> = Vec::new();
                for j in (0..i).rev() {
                    let old = meta[j];
                    let db = ctrdb::bolt::Db::parse(old).unwrap();
                    let tree = tree_pages(&db);
                    let reached: BTreeSet<u64> = tree.iter().map(|t| t.id).collect();
                    let page = |id: u64| &old[id as usize * ps..(id as usize + 1) * ps];
                    let in_tree = tree
                        .iter()
                        .filter(|t| t.bucket == *bucket)
                        .map(|t| t.id)
                        .filter(|&id| {
                            leaf_keys(page(id)).and_then(|k| k.first().copied())
                                == keys.first().copied()
                        });
                    let unreached = (2..(old.len() / ps) as u64)
                        .filter(|id| !reached.contains(id))
                        .filter(|&id| leaf_keys(page(id)).as_ref() == Some(&keys));
                    for id in in_tree.collect::<Vec<_>>().into_iter().chain(unreached) {
                        let q = page(id);
                        if q != current && versions.iter().all(|(_, _, v)| *v != q) {
                            versions.push((j, id, q));
                        }
                    }
                }
                for (j, old_id, older) in versions {
                    let mut bytes = next.clone();
                    bytes[p * ps..(p + 1) * ps].copy_from_slice(older);
                    bytes[p * ps..p * ps + 8].copy_from_slice(&(p as u64).to_le_bytes());
                    let what = format!(
                    "{} {step}: page {p} (bucket {}) holds its node's version of {} (page {old_id})",
                    rel.name,
                    bucket.iter().map(|c| String::from_utf8_lossy(c)).collect::<Vec<_>>().join("/"),
                    states[j]["name"].as_str().unwrap()
                );
                    let input = tmp.path().join("stale.db");
                    std::fs::write(&input, &bytes).unwrap();
                    let (doc, lines) =
                        repaired(&go, &input, &tmp.path().join("repaired.db"), &what);
                    // Where Go reads the damaged file, its own lines are the
                    // input's too (an intermediate transaction's page holds
                    // records no committed state shows).
                    let input_lines = go_lines(&go, &input).unwrap_or_default();
                    for l in &lines {
                        assert!(
                            real.contains(l) || input_lines.contains(l) || in_repair_lease(l),
                            "{what}: the repaired copy holds {l}, which no real state holds"
                        );
                    }
                    files += 1;
                    for f in &doc.damage {
                        stale_references +=
                            usize::from(f.message.contains("the other tree has it in bucket"));
                        foreign_records +=
                            usize::from(f.message.contains("which containerd writes only in"));
                    }
                    for r in doc
                        .recovered
                        .iter()
                        .filter(|r| r.reason == "newerInOtherTree")
                    {
                        newer_in_other += 1;
                        assert_eq!(r.source, "otherTree", "{what}: {r:?}");
                        let id = r.id.as_str().expect("a text id");
                        let key = match r.kind.as_deref() {
                            Some("content" | "image" | "container" | "lease" | "sandbox") => {
                                id.as_bytes()
                            }
                            _ => continue,
                        };
                        let want = record_lines(&newer, &r.path, key);
                        assert!(
                            !want.is_empty(),
                            "{what}: {r:?} is not a record of the newer state"
                        );
                        assert_eq!(
                            record_lines(&lines, &r.path, key),
                            want,
                            "{what}: {id} is not the newer state's record"
                        );
                    }
                }
            }
        }
    }
    eprintln!(
        "repair stale: {files} files with an older version of a node in the newest tree: \
         {stale_references} stale references to pages the other tree has elsewhere, \
         {foreign_records} pages of records holding another kind's keys, \
         {newer_in_other} records taken from the other tree as newer"
    );
    assert!(
        files > 0,
        "no written leaf has an older version in the histories"
    );
    // A stale page of a bucket of buckets points to pages later transactions
    // gave to other buckets: both checks see it in these histories.
    assert!(stale_references > 0, "no stale reference was seen");
    assert!(foreign_records > 0, "no record of another kind was seen");
}

/// `data` with its two meta pages' transaction ids exchanged (checksums
/// recomputed): the newest meta names the older tree.
fn metas_exchanged(data: &[u8]) -> Option<Vec<u8>> {
    use ctrdb::bolt::layout::META_OFFSET;
    let db = ctrdb::bolt::Db::parse(data).ok()?;
    let ps = db.page_size();
    let mut metas: Vec<ctrdb::bolt::Meta> = (0..2)
        .map(|slot| ctrdb::bolt::Meta::decode(data.get(slot * ps..(slot + 1) * ps)?))
        .collect::<Option<_>>()?;
    let (a, b) = (metas[0].txid, metas[1].txid);
    metas[0].txid = b;
    metas[1].txid = a;
    let mut out = data.to_vec();
    for (slot, m) in metas.iter().enumerate() {
        let body = m.encode();
        let at = slot * ps + META_OFFSET;
        out[at..at + body.len()].copy_from_slice(&body);
    }
    Some(out)
}

/// Where the newest tree holds a record whole at an older `updatedat` than
/// the other tree — what a lost write of the same node leaves, record by
/// record — the other tree's is taken and reported `newerInOtherTree`. Each
/// history state's meta pages exchange their transaction ids, so the newest
/// meta names the previous transaction's tree: every record the last
/// transaction updated (a content label, an image re-tag) is older there.
/// The repaired record is, line for line, the record of the state's newest
/// tree.
#[test]
fn a_record_the_other_tree_holds_newer_is_taken_from_it() {
    let Some(go) = oracle_bin(&test_name()) else {
        return;
    };
    let _quiet = super::live::serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut taken = 0;
    for rel in releases() {
        let all = gunzip_release(&rel);
        for st in rel.manifest["states"].as_array().unwrap() {
            let step = st["name"].as_str().unwrap();
            let data = &all[&rel.dir.join(step).join("meta.db.gz")];
            let what = format!("{} {step}, meta txids exchanged", rel.name);
            let input = tmp.path().join("exchanged.db");
            std::fs::write(&input, metas_exchanged(data).unwrap()).unwrap();
            let state = tmp.path().join("state.db");
            std::fs::write(&state, data).unwrap();
            let newer = go_lines_of_good(&go, &state).expect("Go reads the state");
            let (doc, lines) = repaired(&go, &input, &tmp.path().join("repaired.db"), &what);
            for r in doc
                .recovered
                .iter()
                .filter(|r| r.reason == "newerInOtherTree" && r.kind.as_deref() != Some("snapshot"))
            {
                taken += 1;
                assert_eq!(r.source, "otherTree", "{what}: {r:?}");
                let id = r.id.as_str().expect("a text id");
                let want = record_lines(&newer, &r.path, id.as_bytes());
                assert!(
                    !want.is_empty(),
                    "{what}: {r:?} is not a record of the state"
                );
                assert_eq!(
                    record_lines(&lines, &r.path, id.as_bytes()),
                    want,
                    "{what}: {id} is not the newest tree's record"
                );
            }
        }
    }
    eprintln!("repair stale: with the meta txids exchanged, {taken} records taken from the other tree as newer");
    assert!(
        taken > 0,
        "no record was taken from the other tree as newer"
    );
}
