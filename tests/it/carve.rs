//! `ctrdb carve` on the committed histories of real containerd: every record
//! it reports as deleted is one an earlier state's live daemon listed (or one
//! created and removed inside one step, read from pages the step's
//! transactions wrote) and this state's does not (never a guess), every older version is of a record the
//! state lists; right after `04-container-delete` it recovers the deleted
//! container from a page no tree reaches, with the spec containerd stored
//! for it in `03-container-create`; and where a record's bytes are gone from
//! the file, it is not reported. Per state, the records carved against those
//! the history deleted are printed. "Earlier" starts with the listing of the
//! fixture the history was made from.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::common::*;
use super::history_fixtures::{gunzip_release, releases, source_dir};

fn json(o: &std::process::Output, what: &str) -> Value {
    assert_no_panic(o, what);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&o.stderr)))
}

fn objects(listing: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(listing)
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(1) != Some("lease-resource"))
        .map(str::to_string)
        .collect()
}

/// The records `db` holds, as `diff` lists them against an empty file: the
/// live listings hide an ingest whose blob exists (`fixtures/README.md`).
fn records_of(empty: &Path, db: &Path) -> BTreeSet<String> {
    let doc = json(
        &ctrdb(&[
            "diff",
            empty.to_str().unwrap(),
            db.to_str().unwrap(),
            "--format",
            "json",
        ]),
        "diff",
    );
    doc["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"] == "added")
        .map(line)
        .collect()
}

fn line(r: &Value) -> String {
    format!(
        "{} {} {}",
        r["namespace"].as_str().unwrap_or("-"),
        r["kind"].as_str().unwrap(),
        r["id"].as_str().unwrap()
    )
}

#[test]
fn carved_records_are_real_deleted_or_older_records_of_the_history() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut carved_total, mut deleted_total, mut container_found) = (0, 0, 0);
    let mut transients = 0;
    for rel in releases() {
        let all = gunzip_release(&rel);
        let states = rel.manifest["states"].as_array().unwrap();
        // The fixture the history started from, as its live daemon listed it
        // and as its file holds it.
        let src = source_dir(&rel.manifest);
        let empty = src.join("meta-empty.db");
        let mut source = objects(&src.join("live-objects-ext.txt"));
        source.extend(records_of(&empty, &src.join("meta.db")));
        let mut earlier: BTreeSet<String> = source.clone();
        let mut prev: Option<BTreeSet<String>> = Some(source);
        let mut stored_spec: Option<Value> = None;
        // The pages the history's transactions wrote so far.
        let mut written: BTreeSet<u64> = BTreeSet::new();
        for st in states {
            let name = st["name"].as_str().unwrap();
            let what = format!("{} {name}", rel.name);
            let bytes = &all[&rel.dir.join(name).join("meta.db.gz")];
            for tx in st["meta"]["written"].as_array().into_iter().flatten() {
                written.extend(
                    tx["pages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_u64().unwrap()),
                );
            }
            let db = tmp.path().join(format!("{name}.db"));
            std::fs::write(&db, bytes).unwrap();
            let mut now = objects(&rel.dir.join(name).join("live-objects-ext.txt"));
            now.extend(records_of(&empty, &db));
            let doc = json(&ctrdb_path(&["carve", "--format", "json"], &db), &what);
            assert_eq!(doc["command"], "carve");
            let records = doc["records"].as_array().unwrap();
            for r in records {
                let l = line(r);
                match r["status"].as_str().unwrap() {
                    "deleted" => {
                        assert!(
                            !now.contains(&l),
                            "{what}: carved {l} as deleted, but the state holds it"
                        );
                        // A record no listing saw lived and died inside one
                        // step (a client's short-lived lease, an ingest
                        // committed, an index an import replaced): its
                        // namespace existed, and it is the previous
                        // transaction's (the other meta's tree, a committed
                        // state) or every page it came from is one
                        // containerd's transactions wrote.
                        let ns = r["namespace"].as_str().unwrap_or_default();
                        let pages: Vec<u64> = r["pages"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|p| p.as_u64().unwrap())
                            .collect();
                        let committed = r["sources"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .any(|s| s == "otherTree");
                        let transient = earlier.contains(&format!("{ns} namespace {ns}"))
                            && (committed
                                || !pages.is_empty() && pages.iter().all(|p| written.contains(p)));
                        assert!(
                            earlier.contains(&l) || transient,
                            "{what}: carved {l}, which no earlier state held, from pages {pages:?}: {}",
                            r["record"]
                        );
                        transients += usize::from(!earlier.contains(&l));
                    }
                    "olderVersion" => {
                        assert!(
                            now.contains(&l),
                            "{what}: {l} is an older version of nothing"
                        );
                        assert!(!r["differs"].as_array().unwrap().is_empty(), "{what}: {l}");
                    }
                    s => panic!("{what}: status {s}"),
                }
            }
            let deleted: BTreeSet<String> = prev
                .as_ref()
                .map(|p| p.difference(&now).cloned().collect())
                .unwrap_or_default();
            let carved: BTreeSet<String> = records
                .iter()
                .filter(|r| r["status"] == "deleted")
                .map(line)
                .collect();
            eprintln!(
                "carve {what}: {} deleted record(s) carved; the step deleted {} ({} of them carved)",
                carved.len(),
                deleted.len(),
                carved.intersection(&deleted).count()
            );
            carved_total += carved.len();
            deleted_total += deleted.len();

            let hist = "default container hist-ctr";
            if name == "03-container-create" {
                let c = json(
                    &ctrdb_path(&["containers", "-n", "default", "--spec", "hist-ctr"], &db),
                    &what,
                );
                stored_spec = Some(c);
            }
            let found = records.iter().find(|r| line(r) == hist);
            if name == "04-container-delete" {
                let r =
                    found.unwrap_or_else(|| panic!("{what}: the deleted container is not carved"));
                assert_eq!(
                    Some(&r["record"]["spec"]),
                    stored_spec.as_ref(),
                    "{what}: the carved spec is the one containerd stored"
                );
                assert!(!r["pages"].as_array().unwrap().is_empty(), "{what}: {r}");
                container_found += 1;
            }
            if found.is_some() {
                assert!(
                    bytes.windows(b"hist-ctr".len()).any(|w| w == b"hist-ctr"),
                    "{what}: the container is carved, but its bytes are not in the file"
                );
            }
            earlier.extend(now.iter().cloned());
            prev = Some(now);
        }
    }
    eprintln!(
        "carve: {carved_total} deleted records carved over the histories ({transients} created and removed inside one step); the steps deleted {deleted_total}"
    );
    assert_eq!(container_found, 2, "the deleted container in both releases");
}
