//! A snapshotter's own bbolt file (`io.containerd.snapshotter.v1.<name>/metadata.db`,
//! whose `v1` holds `snapshots` and `parents`) is recognised, from the real
//! files in the fixtures' `root.tar.gz`: `check` and `inspect` say what it is
//! instead of calling its buckets namespaces (and still check its bbolt
//! structure), and `dedup` (every mode), `images` and `refs` refuse it with
//! exit 2, writing nothing and leaving it untouched.

use serde_json::Value;

use super::common::*;

const SNAPSHOTTERS: [&str; 2] = ["overlayfs", "native"];

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)))
}

#[test]
fn snapshotter_databases_are_named_and_refused_for_metadata_work() {
    for (fixture, _) in fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let Some(root) = unpack_root(&fixture, dir.path()) else {
            return;
        };
        let meta = root.join("io.containerd.metadata.v1.bolt/meta.db");
        for snapshotter in SNAPSHOTTERS {
            let db = root.join(format!(
                "io.containerd.snapshotter.v1.{snapshotter}/metadata.db"
            ));
            let what = format!("{fixture} {snapshotter}");
            let original = std::fs::read(&db).unwrap();
            // the shape this recognises: only v1, holding snapshots and parents
            let o = ctrdb_path(&["dump", "--format", "jsonl"], &db);
            assert_eq!(o.status.code(), Some(0), "{what}");

            let o = ctrdb_path(&["check"], &db);
            let text = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{what}: the bbolt structure is sound\n{text}"
            );
            assert!(
                text.contains("a containerd snapshotter database (io.containerd.snapshotter.v1.<name>/metadata.db), not meta.db"),
                "{what}: {text}"
            );
            assert!(
                text.contains(&format!("are in {}", meta.display())),
                "{what}: {text}"
            );
            assert!(
                !text.contains("namespace parents") && !text.contains("namespace snapshots"),
                "{what}: {text}"
            );
            let doc = json(&ctrdb_path(&["check", "--format", "json"], &db));
            assert_eq!(
                doc["summary"]["schema"]["database"], "snapshotter",
                "{what}"
            );
            assert_eq!(doc["summary"]["schema"]["namespaces"], 0, "{what}");

            let o = ctrdb_path(&["inspect"], &db);
            let text = String::from_utf8_lossy(&o.stdout);
            assert_eq!(o.status.code(), Some(0), "{what}");
            assert!(
                text.contains("database:      a containerd snapshotter database"),
                "{what}: {text}"
            );
            assert!(
                !text.contains("NAMESPACE"),
                "{what}: no namespace table\n{text}"
            );
            let doc = json(&ctrdb_path(&["inspect", "--format", "json"], &db));
            assert_eq!(doc["database"], "snapshotter", "{what}");
            assert_eq!(doc["namespaces"], Value::Array(vec![]), "{what}");

            let out = dir.path().join("out.db");
            let out_arg = out.to_str().unwrap().to_string();
            for args in [
                vec!["dedup"],
                vec!["dedup", "--format", "json"],
                vec!["dedup", "--output", &out_arg],
                vec![
                    "dedup",
                    "--policy",
                    "one-per-digest",
                    "--yes",
                    "--output",
                    &out_arg,
                ],
                vec!["dedup", "--in-place"],
                vec!["images"],
                vec!["refs"],
            ] {
                let o = ctrdb_path(&args, &db);
                let err = String::from_utf8_lossy(&o.stderr);
                assert_eq!(o.status.code(), Some(2), "{what} {args:?}: {err}");
                assert!(o.stdout.is_empty(), "{what} {args:?}: no plan, no listing");
                assert!(
                    err.contains("snapshotter database")
                        && err.contains("not meta.db")
                        && err.contains(&meta.display().to_string()),
                    "{what} {args:?}: {err}"
                );
                assert!(!out.exists(), "{what} {args:?} wrote a file");
            }
            assert_eq!(
                std::fs::read(&db).unwrap(),
                original,
                "{what}: input untouched"
            );
            let left: Vec<_> = std::fs::read_dir(db.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .filter(|n| n.to_string_lossy().contains("metadata.db."))
                .collect();
            assert!(
                left.is_empty(),
                "{what}: no backup or temporary file: {left:?}"
            );
        }
        // the metadata database of the same root is still one
        let doc = json(&ctrdb_path(&["inspect", "--format", "json"], &meta));
        assert_eq!(doc["database"], "metadata", "{fixture}");
    }
}
