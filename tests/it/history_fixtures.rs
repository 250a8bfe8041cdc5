//! The committed containerd histories (`fixtures/history/containerd-<ver>/`,
//! written by `fixtures/gen/history.sh` with real containerd) agree with their
//! manifest and with ctrdb, from the committed files alone (no containerd here):
//! every state's databases decompress to the recorded SHA-256, open, and
//! `ctrdb check` finds nothing; the meta.db txid grows from state to state by
//! the recorded number of transactions; the recorded changed pages are exactly
//! the pages whose bytes differ from the previous state, and the traced
//! transactions wrote all of them; the objects ctrdb decodes are the live
//! daemon's listing of that state; every blob a state names is in the source
//! `root.tar.gz` or in `extra-blobs.tar.gz`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use ctrdb::bolt::Db;
use ctrdb::containerd::MetaDb;
use serde_json::Value;

use super::common::*;

/// (manifest key, file in a state dir, the file inside `root.tar.gz`)
const DBS: [(&str, &str, &str); 3] = [
    (
        "meta",
        "meta.db",
        "root/io.containerd.metadata.v1.bolt/meta.db",
    ),
    (
        "overlayfs",
        "overlayfs-metadata.db",
        "root/io.containerd.snapshotter.v1.overlayfs/metadata.db",
    ),
    (
        "native",
        "native-metadata.db",
        "root/io.containerd.snapshotter.v1.native/metadata.db",
    ),
];

const BLOBS_IN_ROOT: &str = "root/io.containerd.content.v1.content/blobs/sha256/";

pub(super) struct Release {
    pub(super) name: String,
    pub(super) dir: PathBuf,
    pub(super) manifest: Value,
}

pub(super) fn releases() -> Vec<Release> {
    let dir = fixtures_dir().join("history");
    let mut v: Vec<Release> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("manifest.json").is_file())
                .map(|p| Release {
                    name: p.file_name().unwrap().to_string_lossy().into_owned(),
                    manifest: serde_json::from_slice(
                        &std::fs::read(p.join("manifest.json")).unwrap(),
                    )
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display())),
                    dir: p,
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = v.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["containerd-1.7.24", "containerd-2.1.9"],
        "histories under {}",
        dir.display()
    );
    v
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// Every database file of a release, decompressed by one `gzip -dc` of all of
/// them (a process per file costs more than the rest of the test): its output
/// is the files' contents one after the other, cut at the manifest's sizes
/// (which `check_db` then confirms with the SHA-256).
pub(super) fn gunzip_release(rel: &Release) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = Vec::new();
    for st in rel.manifest["states"].as_array().unwrap() {
        let dir = rel.dir.join(st["name"].as_str().unwrap());
        for (key, file, _) in DBS {
            if let Some(e) = st.get(key) {
                files.push((
                    dir.join(format!("{file}.gz")),
                    e["size"].as_u64().unwrap() as usize,
                ));
            }
        }
    }
    let all = run(Command::new("gzip")
        .arg("-dc")
        .args(files.iter().map(|f| &f.0)));
    let total: usize = files.iter().map(|f| f.1).sum();
    assert_eq!(
        all.len(),
        total,
        "{}: decompressed bytes vs the manifest's sizes",
        rel.name
    );
    let mut out = BTreeMap::new();
    let mut at = 0;
    for (path, size) in files {
        out.insert(path, all[at..at + size].to_vec());
        at += size;
    }
    out
}

fn lines(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect()
}

/// The page ids whose bytes differ; bytes past the end of the shorter file
/// count as zeros (the generator's rule, manifest `page_rule`).
fn changed_pages(a: &[u8], b: &[u8], page_size: usize) -> Vec<u64> {
    let n = a.len().max(b.len()).div_ceil(page_size);
    let page = |d: &[u8], i: usize| -> Vec<u8> {
        let mut p = d
            .get(i * page_size..((i + 1) * page_size).min(d.len()))
            .unwrap_or_default()
            .to_vec();
        p.resize(page_size, 0);
        p
    };
    (0..n)
        .filter(|&i| page(a, i) != page(b, i))
        .map(|i| i as u64)
        .collect()
}

/// The source fixture's three databases and blob list (from its root.tar.gz).
struct Source {
    dbs: Vec<Option<Vec<u8>>>,
    blobs: BTreeSet<String>,
}

/// The standard fixture a history starts from (manifest `source`, a path
/// under `fixtures/`).
pub(super) fn source_dir(manifest: &Value) -> PathBuf {
    let s = manifest["source"].as_str().unwrap();
    let rel = s
        .strip_prefix("fixtures/")
        .and_then(|r| r.strip_suffix("/root.tar.gz"))
        .unwrap_or_else(|| panic!("source {s}"));
    fixtures_dir().join(rel)
}

fn source(manifest: &Value, tmp: &Path) -> Source {
    let tarball = source_dir(manifest).join("root.tar.gz");
    let listing = String::from_utf8(run(Command::new("tar").arg("-tzf").arg(&tarball))).unwrap();
    let blobs = listing
        .lines()
        .filter_map(|l| l.strip_prefix(BLOBS_IN_ROOT))
        .filter(|h| !h.is_empty())
        .map(|h| format!("sha256:{h}"))
        .collect();
    let members: Vec<&str> = DBS
        .iter()
        .map(|d| d.2)
        .filter(|m| listing.lines().any(|l| l == *m))
        .collect();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(tmp)
        .args(&members));
    let dbs = DBS
        .iter()
        .map(|d| std::fs::read(tmp.join(d.2)).ok())
        .collect();
    Source { dbs, blobs }
}

/// `"<ns> <kind> <id>"` lines of what ctrdb decodes, in the format of lib.sh's
/// `live_objects` (with `ext`: lease resources and sandboxes too). An ingest
/// is listed only when its backend ingest exists (`ingests.txt`): `ctr content
/// active` lists the backend's writers.
fn ctrdb_objects(
    db: &MetaDb<'_>,
    backend_ingests: &BTreeSet<String>,
    ext: bool,
) -> BTreeSet<String> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let mut out = BTreeSet::new();
    for ns in &db.namespaces {
        let n = s(ns.name.0);
        if ns.in_v1 {
            out.insert(format!("{n} namespace {n}"));
        }
        for i in &ns.images {
            out.insert(format!("{n} image {}", s(i.name.0)));
        }
        for b in &ns.blobs {
            out.insert(format!("{n} content {}", s(b.digest.0)));
        }
        for c in &ns.containers {
            out.insert(format!("{n} container {}", s(c.id.0)));
        }
        for l in &ns.leases {
            out.insert(format!("{n} lease {}", s(l.id.0)));
        }
        for i in &ns.ingests {
            if i.backend_ref
                .as_ref()
                .is_some_and(|r| backend_ingests.contains(&s(r.0)))
            {
                out.insert(format!("{n} ingest {}", s(i.ref_.0)));
            }
        }
        for sn in &ns.snapshotters {
            for snap in &sn.snapshots {
                out.insert(format!("{n} snapshot {}/{}", s(sn.name.0), s(snap.key.0)));
            }
        }
        if !ext {
            continue;
        }
        for l in &ns.leases {
            let id = s(l.id.0);
            let mut res = Vec::new();
            res.extend(l.content.iter().map(|d| format!("content:{}", s(d.0))));
            res.extend(
                l.snapshots
                    .iter()
                    .map(|(sn, k)| format!("snapshots/{}:{}", s(sn.0), s(k.0))),
            );
            res.extend(l.ingests.iter().map(|r| format!("ingests:{}", s(r.0))));
            res.extend(l.images.iter().map(|i| format!("images:{}", s(i.0))));
            for r in res {
                out.insert(format!("{n} lease-resource {id} {r}"));
            }
        }
        for sb in &ns.sandboxes {
            out.insert(format!("{n} sandbox {}", s(sb.id.0)));
        }
    }
    out
}

/// One database file of one state against its manifest entry and the previous
/// state's bytes; returns the txid.
fn check_db(what: &str, e: &Value, data: &[u8], prev: Option<&[u8]>, prev_txid: u64) -> u64 {
    assert_eq!(
        sha256_hex(data),
        e["sha256"].as_str().unwrap(),
        "{what}: sha256"
    );
    assert_eq!(
        data.len() as u64,
        e["size"].as_u64().unwrap(),
        "{what}: size"
    );
    let db = Db::parse(data).unwrap_or_else(|err| panic!("{what}: {err}"));
    let sel = db.selection();
    let txid = sel.meta().txid;
    assert_eq!(txid, e["txid"].as_u64().unwrap(), "{what}: txid");
    assert_eq!(
        sel.used as u64,
        e["meta_used"].as_u64().unwrap(),
        "{what}: meta used"
    );
    for (i, slot) in sel.slots.iter().enumerate() {
        let m = slot.meta.expect("meta page");
        let r = &e["metas"][i];
        assert_eq!(
            slot.validity.is_ok(),
            r["valid"].as_bool().unwrap(),
            "{what}: meta {i} valid"
        );
        assert_eq!(m.txid, r["txid"].as_u64().unwrap(), "{what}: meta {i} txid");
        assert_eq!(m.root, r["root"].as_u64().unwrap(), "{what}: meta {i} root");
        assert_eq!(
            m.pgid,
            r["high_water_mark"].as_u64().unwrap(),
            "{what}: meta {i} hwm"
        );
    }
    assert_eq!(
        e["prev_txid"].as_u64().unwrap(),
        prev_txid,
        "{what}: prev txid"
    );
    let n = e["transactions"].as_u64().unwrap();
    assert_eq!(
        txid,
        prev_txid + n,
        "{what}: txid = previous + transactions"
    );
    let by_phase: u64 = e["transactions_by_phase"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(by_phase, n, "{what}: transactions by phase");
    let changed = u64s(&e["changed_pages"]);
    if let Some(prev) = prev {
        assert_eq!(
            changed,
            changed_pages(prev, data, db.page_size()),
            "{what}: changed pages vs a byte comparison with the previous state"
        );
    }
    if let Some(written) = e.get("written") {
        assert_eq!(e["trace_complete"], Value::Bool(true), "{what}: trace");
        let mut pages = BTreeSet::new();
        let mut committed = Vec::new();
        for t in written.as_array().unwrap() {
            pages.extend(u64s(&t["pages"]));
            if let Some(m) = t["meta_page"].as_u64() {
                let id = t["txid"].as_u64().unwrap();
                assert_eq!(m, id % 2, "{what}: tx {id} meta slot");
                pages.insert(m);
                committed.push(id);
            }
        }
        let expect: Vec<u64> = (prev_txid + 1..=txid).collect();
        assert_eq!(committed, expect, "{what}: traced transactions");
        let unwritten: Vec<&u64> = changed.iter().filter(|p| !pages.contains(p)).collect();
        assert!(
            unwritten.is_empty(),
            "{what}: changed but never written: {unwritten:?}"
        );
    }
    txid
}

#[test]
fn history_states_match_their_manifest_and_ctrdb() {
    let tmp = tempfile::tempdir().unwrap();
    let rels = releases();
    // one thread per release: most of the time is spent waiting for gzip, tar
    // and ctrdb processes
    std::thread::scope(|s| {
        for rel in &rels {
            let tmp = tmp.path();
            s.spawn(move || check_release(rel, tmp));
        }
    });
}

fn check_release(rel: &Release, tmp: &Path) {
    let mut unpacked = gunzip_release(rel);
    let src_dir = tmp.join(&rel.name);
    std::fs::create_dir_all(&src_dir).unwrap();
    let src = source(&rel.manifest, &src_dir);
    let extra_listing = String::from_utf8(run(Command::new("tar")
        .arg("-tzf")
        .arg(rel.dir.join("extra-blobs.tar.gz"))))
    .unwrap();
    let extra: BTreeSet<String> = extra_listing
        .lines()
        .filter_map(|l| l.strip_prefix("blobs/sha256/"))
        .filter(|h| !h.is_empty())
        .map(|h| format!("sha256:{h}"))
        .collect();

    let mut prev: Vec<Option<Vec<u8>>> = src.dbs.clone();
    let mut prev_txid: Vec<u64> = prev
        .iter()
        .map(|d| {
            d.as_deref()
                .map_or(0, |d| Db::parse(d).unwrap().meta().txid)
        })
        .collect();
    let mut prev_objects = lines(&source_dir(&rel.manifest).join("live-objects-ext.txt"));
    let mut prev_blobs = src.blobs.clone();
    let states = rel.manifest["states"].as_array().unwrap();
    assert!(states.len() >= 10, "{}: {} states", rel.name, states.len());
    for (i, st) in states.iter().enumerate() {
        let name = st["name"].as_str().unwrap();
        let what = format!("{}/{name}", rel.name);
        assert_eq!(st["index"].as_u64(), Some(i as u64), "{what}");
        assert!(name.starts_with(&format!("{i:02}-")), "{what}");
        let dir = rel.dir.join(name);
        let state_tmp = tmp.join(format!("{}-{name}", rel.name));
        std::fs::create_dir_all(&state_tmp).unwrap();

        for (k, (key, file, _)) in DBS.iter().enumerate() {
            let gz = dir.join(format!("{file}.gz"));
            let Some(e) = st.get(*key) else {
                assert!(!gz.exists(), "{what}: {file}.gz not in the manifest");
                continue;
            };
            let data = unpacked.remove(&gz).expect("decompressed");
            let w = format!("{what}/{file}");
            let txid = check_db(&w, e, &data, prev[k].as_deref(), prev_txid[k]);
            if *key == "meta" {
                assert!(
                    txid > prev_txid[k],
                    "{w}: txid {txid} not above {}",
                    prev_txid[k]
                );
            }
            for (tool, verdict) in [("go-tx-check", "OK"), ("ctrdb-check", "clean")] {
                if let Some(v) = e["checks"].get(tool) {
                    assert_eq!(v.as_str(), Some(verdict), "{w}: {tool} at generation");
                }
            }
            let path = state_tmp.join(file);
            std::fs::write(&path, &data).unwrap();
            let o = ctrdb_path(&["check"], &path);
            assert_no_panic(&o, &w);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{w}: ctrdb check: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            prev[k] = Some(data);
            prev_txid[k] = txid;
        }

        // the objects ctrdb decodes = what the live daemon listed
        let meta = prev[0].as_deref().unwrap();
        let db = Db::parse(meta).unwrap();
        let decoded = MetaDb::decode(&db);
        let ingests = lines(&dir.join("ingests.txt"));
        for (file, ext) in [("live-objects.txt", false), ("live-objects-ext.txt", true)] {
            let live = lines(&dir.join(file));
            let ours = ctrdb_objects(&decoded, &ingests, ext);
            let only_db: Vec<&String> = ours.difference(&live).collect();
            let only_live: Vec<&String> = live.difference(&ours).collect();
            assert!(
                only_db.is_empty() && only_live.is_empty(),
                "{what}: {file}: only in ctrdb's view {only_db:?}, only live {only_live:?}"
            );
        }
        let objects = lines(&dir.join("live-objects-ext.txt"));
        assert_eq!(
            strings(&st["objects_added"]),
            objects.difference(&prev_objects).cloned().collect(),
            "{what}: objects added"
        );
        assert_eq!(
            strings(&st["objects_removed"]),
            prev_objects.difference(&objects).cloned().collect(),
            "{what}: objects removed"
        );
        prev_objects = objects;

        // blobs: rebuildable from root.tar.gz + extra-blobs.tar.gz, and every
        // content record has its blob
        let blobs = lines(&dir.join("blobs.txt"));
        let missing: Vec<&String> = blobs
            .iter()
            .filter(|b| !src.blobs.contains(*b) && !extra.contains(*b))
            .collect();
        assert!(
            missing.is_empty(),
            "{what}: blobs in neither tarball: {missing:?}"
        );
        for ns in &decoded.namespaces {
            for b in &ns.blobs {
                let d = String::from_utf8_lossy(b.digest.0).into_owned();
                assert!(
                    blobs.contains(&d),
                    "{what}: content record {d} without a blob"
                );
            }
        }
        assert_eq!(
            strings(&st["blobs_added"]),
            blobs.difference(&prev_blobs).cloned().collect(),
            "{what}: blobs added"
        );
        assert_eq!(
            strings(&st["blobs_removed"]),
            prev_blobs.difference(&blobs).cloned().collect(),
            "{what}: blobs removed"
        );
        prev_blobs = blobs;
    }
    // every blob of the extra tarball is named by some state
    let named: BTreeSet<String> = states
        .iter()
        .flat_map(|st| lines(&rel.dir.join(st["name"].as_str().unwrap()).join("blobs.txt")))
        .collect();
    assert!(extra.is_subset(&named), "{}: unused extra blobs", rel.name);
}
