//! `ctrdb containers` against real containerd: on each fixture, the container
//! ids per namespace are `ctr containers ls -q`'s, and `--spec ID` prints the
//! same runtime spec as `ctr containers info --spec ID` of the release that
//! wrote the file, running on it. Offline, the JSON report lists as many
//! containers per namespace as `inspect` counts, each with its spec decoded.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::common::*;
use super::live::*;

fn json(o: &std::process::Output, what: &str) -> Value {
    assert_no_panic(o, what);
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", String::from_utf8_lossy(&o.stderr)))
}

/// (namespace, id) of every container the JSON report lists.
fn listed(doc: &Value) -> BTreeSet<(String, String)> {
    doc["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| {
            (
                c["namespace"].as_str().unwrap().to_string(),
                c["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn containers_are_listed_with_their_specs_decoded() {
    for (name, fixture) in fixtures() {
        let doc = json(
            &ctrdb_path(&["containers", "--format", "json"], &fixture),
            &name,
        );
        assert_eq!(doc["command"], "containers");
        let mut per_ns: BTreeMap<String, u64> = BTreeMap::new();
        for c in doc["containers"].as_array().unwrap() {
            *per_ns
                .entry(c["namespace"].as_str().unwrap().into())
                .or_default() += 1;
            assert!(
                c["spec"]["ociVersion"].is_string(),
                "{name}: the spec is decoded: {}",
                c["spec"]
            );
            assert!(
                c["createdAt"].is_string() && c["runtime"]["name"].is_string(),
                "{name}: {c}"
            );
        }
        let inspect = json(
            &ctrdb_path(&["inspect", "--format", "json"], &fixture),
            &name,
        );
        for ns in inspect["namespaces"].as_array().unwrap() {
            let n = ns["name"].as_str().unwrap();
            let want = ns["containers"].as_u64().unwrap();
            assert_eq!(per_ns.get(n).copied().unwrap_or(0), want, "{name}: {n}");
        }
        assert!(!per_ns.is_empty(), "{name}: the fixture has containers");
        let quiet = ctrdb_path(&["containers", "-q"], &fixture);
        let ids: BTreeSet<String> = String::from_utf8(quiet.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let json_ids: BTreeSet<String> = listed(&doc).into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids, json_ids, "{name}");
        let o = ctrdb_path(&["containers", "--spec", "no-such-container"], &fixture);
        assert_eq!(o.status.code(), Some(2), "{name}");
    }
}

#[test]
fn live_specs_are_ctr_containers_info_specs() {
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let db = fx.join("meta.db");
        let doc = json(&ctrdb_path(&["containers", "--format", "json"], &db), v);
        let Some(lc) = LiveContainerd::start(v, &fx, &db) else {
            continue;
        };
        let ours = listed(&doc);
        let namespaces: BTreeSet<&String> = ours.iter().map(|(ns, _)| ns).collect();
        for ns in namespaces {
            let o = lc.ctr(&["-n", ns, "containers", "ls", "-q"]);
            assert!(o.status.success(), "{v}: {o:?}");
            let theirs: BTreeSet<(String, String)> = String::from_utf8(o.stdout)
                .unwrap()
                .lines()
                .map(|id| (ns.clone(), id.to_string()))
                .collect();
            let mine: BTreeSet<(String, String)> =
                ours.iter().filter(|(n, _)| n == ns).cloned().collect();
            assert_eq!(mine, theirs, "{v}: containers of {ns}");
        }
        for (ns, id) in &ours {
            let o = lc.ctr(&["-n", ns, "containers", "info", "--spec", id]);
            assert!(o.status.success(), "{v}: {o:?}");
            let theirs: Value = serde_json::from_slice(&o.stdout).expect("ctr prints JSON");
            let mine = json(
                &ctrdb_path(&["containers", "-n", ns, "--spec", id], &db),
                &format!("{v} {ns}/{id}"),
            );
            assert_eq!(mine, theirs, "{v}: the spec of {ns}/{id}");
        }
    }
}
