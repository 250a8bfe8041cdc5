//! `ctrdb diff` against what real containerd did: between consecutive states
//! of the committed histories (`fixtures/history/`), the records added and
//! removed are exactly the difference of the live daemon's object listings
//! of the two states (`live-objects-ext.txt`, written by containerd's own
//! API at generation), and what containerd changed in place — a content
//! label, a lease's resources, a snapshot's children — is reported as changed
//! with the fields that differ. The JSON report is the documented one.

use std::collections::BTreeSet;
use std::path::Path;

use super::common::*;
use super::history_fixtures::{gunzip_release, releases};
use super::repair_common::k8s_images_leaf_zeroed;

mod wire {
    //! The `diff` report as `docs/report.md` documents it.
    use serde::Deserialize;
    use serde_json::Value;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Field {
        pub name: Value,
        pub old: Value,
        pub new: Value,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Change {
        pub namespace: Option<Value>,
        pub kind: String,
        pub id: Value,
        pub change: String,
        pub fields: Option<Vec<Field>>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Summary {
        pub added: u64,
        pub removed: u64,
        pub changed: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    pub struct Doc {
        pub schema_version: u32,
        pub tool: Value,
        pub command: String,
        pub input: Value,
        pub old: Value,
        pub summary: Summary,
        pub changes: Vec<Change>,
    }
}

/// `ns kind id` lines of a state's live listing: its records (lease resources
/// are fields of their lease, not records).
fn objects(listing: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(listing)
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(1) != Some("lease-resource"))
        .map(str::to_string)
        .collect()
}

fn line(c: &wire::Change) -> String {
    let s = |v: &serde_json::Value| v.as_str().expect("text").to_string();
    format!(
        "{} {} {}",
        c.namespace.as_ref().map_or("-".into(), s),
        c.kind,
        s(&c.id)
    )
}

fn diff_json(old: &Path, new: &Path, extra: &[&str]) -> (Option<i32>, wire::Doc) {
    let mut args = vec!["diff", old.to_str().unwrap(), new.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--format", "json"]);
    let o = ctrdb(&args);
    assert_no_panic(&o, "diff");
    let doc = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o.status.code(), doc)
}

#[test]
fn consecutive_history_states_differ_by_what_containerd_did() {
    let tmp = tempfile::tempdir().unwrap();
    let mut changed_kinds = BTreeSet::new();
    for rel in releases() {
        let all = gunzip_release(&rel);
        let states = rel.manifest["states"].as_array().unwrap();
        for pair in states.windows(2) {
            let names: Vec<&str> = pair.iter().map(|s| s["name"].as_str().unwrap()).collect();
            let what = format!("{} {} → {}", rel.name, names[0], names[1]);
            let paths: Vec<_> = names
                .iter()
                .map(|n| {
                    let p = tmp.path().join(format!("{n}.db"));
                    std::fs::write(&p, &all[&rel.dir.join(n).join("meta.db.gz")]).unwrap();
                    p
                })
                .collect();
            let (code, doc) = diff_json(&paths[0], &paths[1], &[]);
            assert_eq!((doc.command.as_str(), doc.schema_version), ("diff", 3));
            assert_eq!(doc.tool["name"], "ctrdb");
            assert_eq!(doc.old["path"], paths[0].to_str().unwrap(), "{what}");
            assert_eq!(doc.input["path"], paths[1].to_str().unwrap(), "{what}");
            let before = objects(&rel.dir.join(names[0]).join("live-objects-ext.txt"));
            let after = objects(&rel.dir.join(names[1]).join("live-objects-ext.txt"));
            let of = |change: &str| -> BTreeSet<String> {
                doc.changes
                    .iter()
                    .filter(|c| c.change == change)
                    .map(line)
                    .collect()
            };
            assert_eq!(
                of("added"),
                after.difference(&before).cloned().collect(),
                "{what}: added"
            );
            assert_eq!(
                of("removed"),
                before.difference(&after).cloned().collect(),
                "{what}: removed"
            );
            for c in doc.changes.iter().filter(|c| c.change == "changed") {
                let l = line(c);
                assert!(before.contains(&l) && after.contains(&l), "{what}: {l}");
                let fields = c
                    .fields
                    .as_ref()
                    .expect("a changed record names its fields");
                assert!(!fields.is_empty(), "{what}: {l}");
                for f in fields {
                    assert_ne!(f.old, f.new, "{what}: {l}: {f:?}");
                }
                changed_kinds.insert(c.kind.clone());
            }
            let s = &doc.summary;
            let n = doc.changes.len() as u64;
            assert_eq!(s.added + s.removed + s.changed, n, "{what}");
            assert_eq!(code, Some(if n == 0 { 0 } else { 1 }), "{what}");
        }
    }
    for kind in ["content", "lease", "snapshot"] {
        assert!(
            changed_kinds.contains(kind),
            "no {kind} changed in place over the histories: {changed_kinds:?}"
        );
    }
}

/// The content label the history adds shows as the record's `labels` and
/// `updatedat` changing, with the values decoded.
#[test]
fn a_relabelled_content_record_shows_its_labels_and_updatedat() {
    let tmp = tempfile::tempdir().unwrap();
    for rel in releases() {
        let all = gunzip_release(&rel);
        let path = |n: &str| {
            let p = tmp.path().join(format!("{}-{n}.db", rel.name));
            std::fs::write(&p, &all[&rel.dir.join(n).join("meta.db.gz")]).unwrap();
            p
        };
        let (old, new) = (path("06-lease-add-content"), path("07-content-label"));
        let (code, doc) = diff_json(&old, &new, &[]);
        assert_eq!(code, Some(1), "{}", rel.name);
        let [c] = doc.changes.as_slice() else {
            panic!("{}: one change: {:?}", rel.name, doc.changes);
        };
        assert_eq!((c.kind.as_str(), c.change.as_str()), ("content", "changed"));
        let fields = c.fields.as_ref().unwrap();
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str().unwrap()).collect();
        assert_eq!(names, ["labels", "updatedat"], "{}", rel.name);
        let (old_labels, new_labels) = (&fields[0].old, &fields[0].new);
        let keys = |v: &serde_json::Value| -> BTreeSet<String> {
            v.as_object()
                .map_or_else(BTreeSet::new, |m| m.keys().cloned().collect())
        };
        assert!(
            keys(new_labels).difference(&keys(old_labels)).count() >= 1,
            "{}: a label was added: {old_labels} → {new_labels}",
            rel.name
        );
        let time = |v: &serde_json::Value| v.as_str().expect("an RFC 3339 time").to_string();
        assert!(time(&fields[1].new) > time(&fields[1].old), "{}", rel.name);

        // -n selects namespaces; a file compared with itself has no changes.
        let (code, doc) = diff_json(&old, &new, &["-n", "k8s.io"]);
        assert_eq!((code, doc.changes.len()), (Some(0), 0), "{}", rel.name);
        let (code, doc) = diff_json(&new, &new, &[]);
        assert_eq!((code, doc.summary.changed), (Some(0), 0), "{}", rel.name);
    }
}

/// A damaged file is refused: what the damage hides would show as removed.
#[test]
fn a_damaged_file_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, fixture) = fixtures().into_iter().last().unwrap();
    let (z, _) = k8s_images_leaf_zeroed(&std::fs::read(&fixture).unwrap());
    let damaged = tmp.path().join("damaged.db");
    std::fs::write(&damaged, z).unwrap();
    for args in [[&fixture, &damaged], [&damaged, &fixture]] {
        let o = ctrdb(&["diff", args[0].to_str().unwrap(), args[1].to_str().unwrap()]);
        assert_no_panic(&o, "diff");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("is damaged") && err.contains(damaged.to_str().unwrap()),
            "{err}"
        );
        assert!(o.stdout.is_empty());
    }
}
