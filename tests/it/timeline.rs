//! `ctrdb timeline` against the committed histories of real containerd: each
//! state's events are in time order, and every record the live daemon lists
//! as new in a state (its object listing against the previous state's) has a
//! `created` event later than every event of the previous state; the content
//! relabelled in `07-content-label` has an `updated` event later than them
//! too. The JSON and JSONL forms are the documented ones.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;

use super::common::*;
use super::history_fixtures::{gunzip_release, releases};
use super::repair_common::k8s_images_leaf_zeroed;

#[derive(Debug, Deserialize, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Event {
    time: String,
    event: String,
    namespace: String,
    kind: String,
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Doc {
    schema_version: u32,
    tool: serde_json::Value,
    command: String,
    input: serde_json::Value,
    damage: Vec<serde_json::Value>,
    events: Vec<Event>,
}

fn events(db: &Path) -> Vec<Event> {
    let o = ctrdb_path(&["timeline", "--format", "json"], db);
    assert_no_panic(&o, "timeline");
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let doc: Doc = serde_json::from_slice(&o.stdout).expect("the documented format");
    assert_eq!((doc.command.as_str(), doc.schema_version), ("timeline", 3));
    assert!(doc.tool.is_object() && doc.input.is_object() && doc.damage.is_empty());
    // JSONL is the same events, one a line.
    let o = ctrdb_path(&["timeline", "--format", "jsonl"], db);
    let lines: Vec<Event> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event a line"))
        .collect();
    assert_eq!(lines, doc.events);
    doc.events
}

fn objects(listing: &Path) -> BTreeSet<(String, String, String)> {
    std::fs::read_to_string(listing)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut p = l.splitn(3, ' ');
            Some((p.next()?.into(), p.next()?.into(), p.next()?.into()))
        })
        .collect()
}

#[test]
fn history_states_time_their_records_as_containerd_wrote_them() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for rel in releases() {
        let all = gunzip_release(&rel);
        let states = rel.manifest["states"].as_array().unwrap();
        let mut before: Option<(Vec<Event>, BTreeSet<_>)> = None;
        for st in states {
            let name = st["name"].as_str().unwrap();
            let what = format!("{} {name}", rel.name);
            let db = tmp.path().join(format!("{name}.db"));
            std::fs::write(&db, &all[&rel.dir.join(name).join("meta.db.gz")]).unwrap();
            let ev = events(&db);
            assert!(
                ev.windows(2).all(|w| w[0].time <= w[1].time),
                "{what}: in time order"
            );
            let listed = objects(&rel.dir.join(name).join("live-objects.txt"));
            if let Some((prev, prev_listed)) = &before {
                let last = prev
                    .iter()
                    .map(|e| e.time.clone())
                    .max()
                    .unwrap_or_default();
                for (ns, kind, id) in listed.difference(prev_listed) {
                    if kind == "namespace" || kind == "ingest" {
                        continue;
                    }
                    let created = ev.iter().find(|e| {
                        e.event == "created" && &e.namespace == ns && &e.kind == kind && &e.id == id
                    });
                    let created = created
                        .unwrap_or_else(|| panic!("{what}: no created event for {ns} {kind} {id}"));
                    assert!(
                        created.time > last,
                        "{what}: {ns} {kind} {id} created {} before {last}",
                        created.time
                    );
                    checked += 1;
                }
                if name == "07-content-label" {
                    assert!(
                        ev.iter()
                            .any(|e| e.event == "updated" && e.kind == "content" && e.time > last),
                        "{what}: the relabelled content's update"
                    );
                }
            }
            before = Some((ev, listed));
        }
    }
    assert!(checked > 10, "only {checked} new records checked");
}

#[test]
fn a_damaged_file_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, fixture) = fixtures().into_iter().last().unwrap();
    let (z, _) = k8s_images_leaf_zeroed(&std::fs::read(&fixture).unwrap());
    let damaged = tmp.path().join("damaged.db");
    std::fs::write(&damaged, z).unwrap();
    let o = ctrdb_path(&["timeline", "--format", "json"], &damaged);
    assert_no_panic(&o, "timeline");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is damaged"));
    let doc: Doc = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!doc.damage.is_empty());
    assert!(doc
        .events
        .iter()
        .all(|e| !(e.namespace == "k8s.io" && e.kind == "image")));
}
