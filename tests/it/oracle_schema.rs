//! Our containerd schema decode equals containerd's own: every namespace's
//! images, content, ingests, containers, leases and snapshots, record for
//! record, against `ctrmeta -json` (built from containerd 1.6.20's `metadata`
//! package) on the 1.6, 1.7 and 2.1 fixtures.
//!
//! What the 1.6 package cannot see — sandboxes (1.7 top level, 2.x `v1/<ns>`),
//! containers' `sandboxid` and 2.x lease `images` — is compared against the
//! oracle's `raw_extras`, which the same tool reads with raw bbolt.
//! Skips (printing why) when the Go tools are absent (`CTRDB_ORACLE_BIN`), or fails
//! under `CTRDB_REQUIRE_ORACLES=1` (`common::skip_or_fail`).

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{json, Map, Value};

use super::common::*;
use ctrdb::bolt::{DbFile, LockMode};
use ctrdb::containerd::{Labels, MetaDb, Namespace, SandboxLocation, Timestamp};

fn s(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("fixture strings are UTF-8")
}

fn labels(l: &Labels) -> Option<Value> {
    (!l.is_empty()).then(|| {
        Value::Object(
            l.iter()
                .map(|(k, v)| (s(k.0), Value::String(s(v.0))))
                .collect(),
        )
    })
}

fn t(ts: &Option<Timestamp>) -> Value {
    ts.map_or(Value::Null, |t| Value::String(t.rfc3339_nano_go()))
}

/// An object without its null members (the oracle omits empty fields).
fn obj(pairs: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            if !v.is_null() {
                m.insert(k.to_string(), v);
            }
        }
    }
    Value::Object(m)
}

/// Our namespace in the oracle's shape (the fields it has without `-root`).
fn ours(ns: &Namespace) -> Value {
    let images: Vec<Value> = ns
        .images
        .iter()
        .map(|i| {
            let tg = i.target.clone().unwrap_or_default();
            obj(vec![
                ("name", Some(json!(s(i.name.0)))),
                ("digest", Some(json!(s(tg.digest.0)))),
                ("media_type", Some(json!(s(tg.media_type.0)))),
                ("size", Some(json!(tg.size))),
                ("labels", labels(&i.labels)),
                ("annotations", labels(&i.annotations)),
                ("created", Some(t(&i.created_at))),
                ("updated", Some(t(&i.updated_at))),
            ])
        })
        .collect();
    let content: Vec<Value> = ns
        .blobs
        .iter()
        .map(|b| {
            obj(vec![
                ("digest", Some(json!(s(b.digest.0)))),
                ("size", Some(json!(b.size.unwrap_or(0)))),
                ("labels", labels(&b.labels)),
                ("created", Some(t(&b.created_at))),
            ])
        })
        .collect();
    let ingests: Vec<Value> = ns
        .ingests
        .iter()
        .map(|i| {
            obj(vec![
                ("ref", Some(json!(s(i.ref_.0)))),
                ("backend_ref", i.backend_ref.as_ref().map(|r| json!(s(r.0)))),
                (
                    "expected",
                    i.expected
                        .as_ref()
                        .filter(|e| !e.0.is_empty())
                        .map(|e| json!(s(e.0))),
                ),
                ("expireat", Some(t(&i.expire_at))),
            ])
        })
        .collect();
    let containers: Vec<Value> = ns
        .containers
        .iter()
        .map(|c| {
            let rt = c.runtime.clone().unwrap_or_default();
            let exts: Map<String, Value> = c
                .extensions
                .iter()
                .map(|(k, a)| {
                    (
                        s(k.0),
                        json!(format!("{} ({} bytes)", s(a.type_url), a.value.len())),
                    )
                })
                .collect();
            obj(vec![
                ("id", Some(json!(s(c.id.0)))),
                (
                    "image",
                    Some(json!(c.image.as_ref().map_or(String::new(), |x| s(x.0)))),
                ),
                (
                    "runtime",
                    Some(json!(rt.name.as_ref().map_or(String::new(), |x| s(x.0)))),
                ),
                (
                    "runtime_options_type",
                    rt.options.as_ref().map(|o| json!(s(o.type_url))),
                ),
                (
                    "snapshotter",
                    Some(json!(c
                        .snapshotter
                        .as_ref()
                        .map_or(String::new(), |x| s(x.0)))),
                ),
                (
                    "snapshot_key",
                    Some(json!(c
                        .snapshot_key
                        .as_ref()
                        .map_or(String::new(), |x| s(x.0)))),
                ),
                (
                    "spec_type",
                    c.spec
                        .as_ref()
                        .map(|a| json!(s(a.type_url)))
                        .filter(|v| v != ""),
                ),
                (
                    "spec_bytes",
                    Some(json!(c.spec.as_ref().map_or(0, |a| a.value.len()))),
                ),
                ("labels", labels(&c.labels)),
                (
                    "extensions",
                    (!exts.is_empty()).then_some(Value::Object(exts)),
                ),
                ("created", Some(t(&c.created_at))),
            ])
        })
        .collect();
    let leases: Vec<Value> = ns
        .leases
        .iter()
        .map(|l| {
            let mut res: Vec<String> = l
                .content
                .iter()
                .map(|d| format!("content:{}", s(d.0)))
                .collect();
            res.extend(l.ingests.iter().map(|r| format!("ingests:{}", s(r.0))));
            res.extend(
                l.snapshots
                    .iter()
                    .map(|(sn, k)| format!("snapshots/{}:{}", s(sn.0), s(k.0))),
            );
            res.sort();
            obj(vec![
                ("id", Some(json!(s(l.id.0)))),
                ("labels", labels(&l.labels)),
                ("created", Some(t(&l.created_at))),
                ("resources", (!res.is_empty()).then(|| json!(res))),
            ])
        })
        .collect();
    let mut snapshots = Map::new();
    for sn in &ns.snapshotters {
        if sn.snapshots.is_empty() {
            continue;
        }
        let list: Vec<Value> = sn
            .snapshots
            .iter()
            .map(|x| {
                obj(vec![
                    ("key", Some(json!(s(x.key.0)))),
                    ("kind", Some(json!("Unknown"))),
                    ("parent", x.parent.as_ref().map(|p| json!(s(p.0)))),
                    ("labels", labels(&x.labels)),
                    ("created", Some(t(&x.created_at))),
                ])
            })
            .collect();
        snapshots.insert(s(sn.name.0), Value::Array(list));
    }
    obj(vec![
        ("name", Some(json!(s(ns.name.0)))),
        ("labels", labels(&ns.labels)),
        ("images", Some(Value::Array(images))),
        ("content", Some(Value::Array(content))),
        (
            "ingests",
            (!ingests.is_empty()).then_some(Value::Array(ingests)),
        ),
        ("containers", Some(Value::Array(containers))),
        ("leases", Some(Value::Array(leases))),
        ("snapshots", Some(Value::Object(snapshots))),
    ])
}

/// The oracle's namespace with lease resources sorted (the oracle keeps ListResources order).
fn normalize_oracle(mut ns: Value) -> Value {
    if let Some(ls) = ns.get_mut("leases").and_then(Value::as_array_mut) {
        for l in ls {
            if let Some(Value::Array(r)) = l.get_mut("resources") {
                r.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    ns
}

#[test]
fn decoded_records_equal_containerd_1_6_metadata_package() {
    let Some(bin) = oracle_bin("decoded_records_equal_containerd_1_6_metadata_package") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for (name, path) in fixtures() {
        // ctrmeta opens read-write to run Init: give it a copy.
        let copy = tmp.path().join(format!("{name}.db"));
        std::fs::copy(&path, &copy).unwrap();
        let o = Command::new(bin.join("ctrmeta"))
            .arg("-json")
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{name}: ctrmeta: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let oracle: Value = serde_json::from_slice(&o.stdout).unwrap();

        let file = DbFile::open(&path, LockMode::None).unwrap();
        let db = file.db().unwrap();
        let meta = MetaDb::decode(&db);
        assert!(
            meta.findings.is_empty(),
            "{name}: unexpected schema findings {:?}",
            meta.findings
        );
        assert_eq!(
            meta.schema_version.map(|v| v.to_string()),
            oracle["db_version"].as_str().map(String::from),
            "{name}"
        );

        let theirs: Vec<Value> = oracle["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .cloned()
            .map(normalize_oracle)
            .collect();
        let mine: Vec<Value> = meta
            .namespaces
            .iter()
            .filter(|n| n.in_v1)
            .map(ours)
            .collect();
        assert_eq!(mine.len(), theirs.len(), "{name}: namespace count");
        let mut records = 0;
        for (m, t) in mine.iter().zip(&theirs) {
            for field in [
                "name",
                "labels",
                "images",
                "content",
                "ingests",
                "containers",
                "leases",
                "snapshots",
            ] {
                let (a, b) = (m.get(field), t.get(field));
                if let (Some(Value::Array(a)), Some(Value::Array(b))) = (a, b) {
                    assert_eq!(a.len(), b.len(), "{name} {} {field}: count", m["name"]);
                    for (x, y) in a.iter().zip(b) {
                        assert_eq!(x, y, "{name} {} {field}: record differs", m["name"]);
                        records += 1;
                    }
                } else {
                    assert_eq!(a, b, "{name} {} {field}", m["name"]);
                }
            }
        }
        assert!(records > 50, "{name}: compared only {records} records");

        // What 1.6 cannot see, against the oracle's raw bbolt reads.
        let raw = &oracle["raw_extras"];
        let top: Vec<String> = meta.top_level.iter().map(|b| s(b.0)).collect();
        assert_eq!(
            json!(top),
            raw["top_level_buckets"],
            "{name}: top-level buckets"
        );
        let mut sbids = BTreeMap::new();
        let mut lease_images = Vec::new();
        let mut sandboxes = Vec::new();
        for ns in &meta.namespaces {
            for c in &ns.containers {
                if let Some(sb) = &c.sandbox_id {
                    sbids.insert(format!("{}/{}", s(ns.name.0), s(c.id.0)), json!(s(sb.0)));
                }
            }
            for l in &ns.leases {
                for i in &l.images {
                    lease_images.push(json!(format!(
                        "{} {} images:{}",
                        s(ns.name.0),
                        s(l.id.0),
                        s(i.0)
                    )));
                }
            }
            for sb in &ns.sandboxes {
                let location = match sb.location {
                    SandboxLocation::V1 => format!("v1/{}/sandboxes", s(ns.name.0)),
                    SandboxLocation::TopLevel => format!("{}/sandboxes", s(ns.name.0)),
                };
                let exts: Vec<String> = sb.extensions.keys().map(|k| s(k.0)).collect();
                sandboxes.push(obj(vec![
                    ("location", Some(json!(location))),
                    ("namespace", Some(json!(s(ns.name.0)))),
                    ("id", Some(json!(s(sb.id.0)))),
                    (
                        "sandboxer",
                        sb.sandboxer
                            .as_ref()
                            .map(|x| json!(s(x.0)))
                            .filter(|v| v != ""),
                    ),
                    (
                        "runtime",
                        sb.runtime
                            .as_ref()
                            .and_then(|r| r.name.as_ref())
                            .map(|x| json!(s(x.0)))
                            .filter(|v| v != ""),
                    ),
                    ("labels", labels(&sb.labels)),
                    ("extensions", (!exts.is_empty()).then(|| json!(exts))),
                    ("created", Some(t(&sb.created_at))),
                ]));
            }
        }
        let or_empty = |v: &Value, empty: Value| if v.is_null() { empty } else { v.clone() };
        assert_eq!(
            json!(sbids),
            or_empty(&raw["container_sandboxid"], json!({})),
            "{name}: container sandboxid"
        );
        assert_eq!(
            json!(lease_images),
            or_empty(&raw["lease_images"], json!([])),
            "{name}: lease images"
        );
        assert_eq!(
            json!(sandboxes),
            or_empty(&raw["sandboxes"], json!([])),
            "{name}: sandboxes"
        );
        eprintln!(
            "{name}: {records} records equal the oracle's; {} sandboxes, {} lease images",
            sandboxes.len(),
            lease_images.len()
        );
    }
}
