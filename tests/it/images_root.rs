//! `ctrdb images --root DIR` shows SIZE and PLATFORMS as `ctr images ls` does:
//! compared row by row with the listings recorded from each fixture's own
//! containerd (`live-listing.txt`, `### ctr -n NS images ls`), on the
//! fixture's real root (`root.tar.gz`); the JSON carries the same as
//! `imageSize` and `platforms`. Blobs that are missing, not JSON, of the wrong
//! kind, oversized or not files give a partial size and `-`, a warning and a
//! `contentError` — never a panic or a failed listing. Without a root the
//! header says the size is the target's.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::common::*;

/// One row: (REF, TYPE, DIGEST, SIZE, PLATFORMS, LABELS).
type Row = (String, String, String, String, String, String);

/// The `ctr -n NS images ls` sections of a recorded listing, by namespace.
fn recorded(fixture: &str) -> BTreeMap<String, Vec<Row>> {
    let text =
        std::fs::read_to_string(fixtures_dir().join(fixture).join("live-listing.txt")).unwrap();
    let mut out: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            current = rest
                .strip_prefix("ctr -n ")
                .and_then(|r| r.strip_suffix(" images ls"))
                .map(str::to_string);
            if let Some(ns) = &current {
                out.entry(ns.clone()).or_default();
            }
            continue;
        }
        let Some(ns) = &current else { continue };
        let t: Vec<&str> = line.split_whitespace().collect();
        if t.first() == Some(&"REF") || t.is_empty() {
            continue;
        }
        // REF TYPE DIGEST SIZE UNIT PLATFORMS LABELS
        assert_eq!(t.len(), 7, "{fixture}: unexpected row {line:?}");
        out.get_mut(ns).unwrap().push((
            t[0].into(),
            t[1].into(),
            t[2].into(),
            format!("{} {}", t[3], t[4]),
            t[5].into(),
            t[6].into(),
        ));
    }
    assert!(out.len() >= 4, "{fixture}: no image sections parsed");
    out
}

/// ctrdb's table rows (columns are three or more spaces apart).
fn ours(root: &Path, ns: &str) -> Vec<Row> {
    let o = ctrdb(&["images", "--root", root.to_str().unwrap(), "-n", ns]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8(o.stdout).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "REF",
            "TYPE",
            "DIGEST",
            "SIZE",
            "PLATFORMS",
            "LABELS"
        ]
    );
    lines
        .map(|l| {
            let c: Vec<&str> = l
                .split("   ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            assert_eq!(c.len(), 7, "{l:?}");
            assert_eq!(c[0], ns);
            (
                c[1].into(),
                c[2].into(),
                c[3].into(),
                c[4].into(),
                c[5].into(),
                c[6].into(),
            )
        })
        .collect()
}

fn json_images(args: &[&str]) -> Vec<Value> {
    let o = ctrdb(args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    doc["images"].as_array().unwrap().clone()
}

#[test]
fn size_and_platforms_match_the_recorded_ctr_listings() {
    for (fixture, _) in fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let Some(root) = unpack_root(&fixture, dir.path()) else {
            return;
        };
        let want = recorded(&fixture);
        let mut compared = 0;
        for (ns, rows) in &want {
            assert_eq!(&ours(&root, ns), rows, "{fixture} namespace {ns}");
            compared += rows.len();
        }
        assert!(compared >= 15, "{fixture}: only {compared} rows compared");
        // The JSON says the same in numbers and lists.
        let table: BTreeMap<(String, String), (String, String)> = want
            .iter()
            .flat_map(|(ns, rows)| {
                rows.iter()
                    .map(move |r| ((ns.clone(), r.0.clone()), (r.3.clone(), r.4.clone())))
            })
            .collect();
        for img in json_images(&[
            "images",
            "--root",
            root.to_str().unwrap(),
            "--format",
            "json",
        ]) {
            let key = (
                img["namespace"].as_str().unwrap().to_string(),
                img["name"].as_str().unwrap().to_string(),
            );
            let Some((size, platforms)) = table.get(&key) else {
                continue;
            };
            let bytes = img["imageSize"].as_i64().unwrap();
            assert_eq!(
                &ctrdb::report::images::ctr_size(bytes),
                size,
                "{fixture} {key:?}"
            );
            let list: Vec<&str> = img["platforms"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap())
                .collect();
            assert_eq!(&list.join(","), platforms, "{fixture} {key:?}");
            assert_eq!(img["contentError"], Value::Null);
        }
    }
}

#[test]
fn sizes_are_formatted_as_ctr_formats_them() {
    use ctrdb::report::images::ctr_size;
    assert_eq!(ctr_size(0), "0.0 B");
    assert_eq!(ctr_size(555), "555.0 B");
    assert_eq!(ctr_size(1868), "1.8 KiB");
    assert_eq!(ctr_size(1280), "1.2 KiB"); // a tie rounds to even, as Go's strconv
    assert_eq!(ctr_size(415_000), "405.3 KiB");
    assert_eq!(ctr_size(3 << 30), "3.0 GiB");
}

#[test]
fn damaged_blobs_give_partial_sizes_and_warnings_not_failures() {
    let (fixture, _) = fixtures().pop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = unpack_root(&fixture, dir.path()) else {
        return;
    };
    let blobs = root.join("io.containerd.content.v1.content/blobs/sha256");
    let blob = |d: &str| blobs.join(d.trim_start_matches("sha256:"));
    // default/docker.io/library/multi:2.0 is an index (883 bytes) whose amd64
    // manifest is 9bf319df…; app:1.0 a manifest (555 bytes) with config 4414f0e1….
    let index = "sha256:15d9a3c3641074bf61fb2dd759785e3a002cbed4bb193932708e81fe08a6e198";
    let amd64 = "sha256:9bf319df68131d8747b40a0f41faaccd94ed5a937626a8463de4c5405c304136";
    let manifest = "sha256:6a48f8bd607915a989b6f3b2f396dbd2820afd030db9428b39e11b889b520cc7";
    let config = "sha256:4414f0e148944d1f62dbbc0872e5d7f3cf073514891ffc9d0e285acb5e3cc14c";
    let run = || {
        let o = ctrdb(&[
            "images",
            "--root",
            root.to_str().unwrap(),
            "-n",
            "default",
            "--format",
            "json",
        ]);
        assert_no_panic(&o, "images --root");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
        let by_name = |n: &str| {
            doc["images"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["name"] == n)
                .cloned()
                .unwrap()
        };
        (
            by_name("docker.io/library/multi:2.0"),
            by_name("docker.io/library/app:1.0"),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let intact = run();
    assert_eq!(intact.0["contentError"], Value::Null);
    let full_multi = intact.0["imageSize"].as_i64().unwrap();

    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "not JSON",
            Box::new(|p: &Path| std::fs::write(p, b"{\"manifests\": [").unwrap()),
        ),
        (
            "a JSON array",
            Box::new(|p: &Path| std::fs::write(p, b"[]").unwrap()),
        ),
        (
            "a manifest where an index is",
            Box::new(|p: &Path| std::fs::write(p, br#"{"config":{},"layers":[]}"#).unwrap()),
        ),
        (
            "a size that is not an integer",
            Box::new(|p: &Path| {
                std::fs::write(p, br#"{"manifests":[{"size":1.5,"digest":"x"}]}"#).unwrap()
            }),
        ),
        (
            "a digest that names a path",
            Box::new(|p: &Path| {
                std::fs::write(p, br#"{"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}"#).unwrap()
            }),
        ),
        (
            "a directory",
            Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
        ),
        ("missing", Box::new(|_: &Path| {})),
        (
            "larger than any manifest",
            Box::new(|p: &Path| {
                let f = std::fs::File::create(p).unwrap();
                f.set_len(64 << 20).unwrap(); // sparse: no disk used
            }),
        ),
    ];
    let original = std::fs::read(blob(index)).unwrap();
    for (what, damage) in &cases {
        std::fs::remove_file(blob(index)).unwrap();
        damage(&blob(index));
        let (multi, app, stderr) = run();
        assert!(multi["contentError"].is_string(), "{what}: {multi}");
        if *what == "a digest that names a path" {
            // the index is readable: its platform is listed, the manifest is not read
            assert_eq!(
                multi["platforms"],
                serde_json::json!(["linux/amd64"]),
                "{what}"
            );
            // not in the namespace's content records: containerd answers "not
            // found" before it looks at the digest's form (ctrdb never at a path)
            assert!(
                multi["contentError"]
                    .as_str()
                    .unwrap()
                    .contains("not found"),
                "{multi}"
            );
        } else {
            assert_eq!(multi["platforms"], Value::Array(vec![]), "{what}");
        }
        // ctr's partial sum: the index descriptor's own size was added first
        // (and, for a readable index, the chosen manifest's before its read)
        let partial = if *what == "a digest that names a path" {
            884
        } else {
            883
        };
        assert_eq!(multi["imageSize"], partial, "{what}");
        assert!(
            stderr.contains("warning: image docker.io/library/multi:2.0 in default"),
            "{what}: {stderr}"
        );
        assert_eq!(
            app["contentError"],
            Value::Null,
            "{what}: other images are unaffected"
        );
        if std::fs::metadata(blob(index)).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir(blob(index)).unwrap();
        } else {
            let _ = std::fs::remove_file(blob(index));
        }
        std::fs::write(blob(index), &original).unwrap();
    }
    // A missing child manifest: the index and that manifest's descriptor count.
    std::fs::rename(blob(amd64), dir.path().join("aside")).unwrap();
    let (multi, _, _) = run();
    assert!(
        multi["contentError"]
            .as_str()
            .unwrap()
            .contains("not found"),
        "{multi}"
    );
    assert_eq!(multi["imageSize"], 883 + 401);
    assert_eq!(
        multi["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64/v8"]),
        "platforms come from the index alone"
    );
    assert!(multi["imageSize"].as_i64().unwrap() < full_multi);
    std::fs::rename(dir.path().join("aside"), blob(amd64)).unwrap();
    // A single-manifest image whose config is garbage: its size needs no
    // config read, its platform does.
    std::fs::write(blob(config), b"\xff\xfe").unwrap();
    let (_, app, _) = run();
    assert_eq!(app["imageSize"], intact.1["imageSize"]);
    assert_eq!(app["platforms"], Value::Array(vec![]));
    assert!(app["contentError"].is_string());
    // A manifest that names an index: refused as containerd refuses it.
    std::fs::write(
        blob(manifest),
        br#"{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#,
    )
    .unwrap();
    let (_, app, _) = run();
    assert!(
        app["contentError"]
            .as_str()
            .unwrap()
            .contains("expected manifest but found index"),
        "{app}"
    );
    assert_eq!(app["imageSize"], 555);
}

#[test]
fn without_a_root_the_size_is_the_targets_and_the_header_says_so() {
    let (_, db) = fixtures().pop().unwrap();
    let o = ctrdb_path(&["images"], &db);
    let text = String::from_utf8(o.stdout).unwrap();
    let header: Vec<&str> = text
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "NAMESPACE",
            "REF",
            "TYPE",
            "DIGEST",
            "TARGET SIZE",
            "LABELS"
        ]
    );
    let o = ctrdb_path(&["images", "--format", "jsonl"], &db);
    let first: Value =
        serde_json::from_slice(o.stdout.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert!(
        first.get("imageSize").is_none() && first.get("platforms").is_none(),
        "{first}"
    );
}

#[test]
fn platform_chooses_the_manifest_an_index_counts() {
    let (fixture, _) = fixtures().pop().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let Some(root) = unpack_root(&fixture, dir.path()) else {
        return;
    };
    let root = root.to_str().unwrap();
    let size = |platform: &[&str], name: &str| {
        let mut args = vec![
            "images", "--root", root, "-n", "default", "--format", "json",
        ];
        args.extend_from_slice(platform);
        json_images(&args)
            .into_iter()
            .find(|i| i["name"] == name)
            .map(|i| (i["imageSize"].as_i64().unwrap(), i["contentError"].clone()))
            .unwrap()
    };
    // multi:2.0's index (883) with the amd64 manifest (401), config (400) and
    // layer (184), or the arm64 one (401) with its config (415) and layer (184)
    let host_is_amd64 = std::env::consts::ARCH == "x86_64";
    if host_is_amd64 {
        assert_eq!(
            size(&[], "docker.io/library/multi:2.0"),
            (1868, Value::Null)
        );
    }
    assert_eq!(
        size(
            &["--platform", "linux/amd64"],
            "docker.io/library/multi:2.0"
        ),
        (1868, Value::Null)
    );
    assert_eq!(
        size(
            &["--platform", "linux/arm64/v8"],
            "docker.io/library/multi:2.0"
        ),
        (1883, Value::Null)
    );
    assert_eq!(
        size(
            &["--platform", "linux/aarch64"],
            "docker.io/library/multi:2.0"
        ),
        (1883, Value::Null)
    );
    // a platform the index lacks: ctr's "no match for platform in manifest"
    let (partial, e) = size(
        &["--platform", "linux/s390x"],
        "docker.io/library/multi:2.0",
    );
    assert_eq!(partial, 883);
    assert!(e.as_str().unwrap().contains("no match for platform"), "{e}");
    // a plain manifest is counted whatever the platform, as ctr does
    assert_eq!(
        size(&["--platform", "linux/s390x"], "docker.io/library/app:1.0"),
        size(&["--platform", "linux/amd64"], "docker.io/library/app:1.0")
    );
    // without a content store there is nothing to choose: refused, not ignored
    let (_, db) = fixtures().pop().unwrap();
    let o = ctrdb_path(&["images", "--platform", "linux/arm64"], &db);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--root"));
    let o = ctrdb(&["images", "--root", root, "--platform", "arm64"]);
    assert_eq!(o.status.code(), Some(2), "not OS/ARCH");
}
