//! The JSON wire formats of `images`, `refs`, `inspect` and `check` are exactly
//! what `docs/report.md` documents: every document deserializes into structs
//! with `deny_unknown_fields` (no undocumented field, none missing), and
//! non-UTF-8 names and labels round-trip losslessly.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::Value;

use ctrdb::bolt::writer::WriterOptions;
use ctrdb::bolt::Db;

use super::common::*;
use super::writer_common::{read_tree, write_tree_file, Node};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tool {
    name: String,
    #[allow(dead_code)]
    version: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputInfo {
    #[allow(dead_code)]
    path: String,
    size: u64,
    sha256: Option<String>,
    txid: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Target {
    digest: Value,
    media_type: Value,
    size: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImageRec {
    namespace: Value,
    name: Value,
    target: Option<Target>,
    labels: BTreeMap<String, Value>,
    annotations: BTreeMap<String, Value>,
    created_at: Option<String>,
    updated_at: Option<String>,
    class: String,
    normalized: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LabelRef {
    #[allow(dead_code)]
    owner: String,
    #[allow(dead_code)]
    key: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NameRef {
    name: Value,
    class: String,
    normalized: Option<String>,
    digest_matches_target: Option<bool>,
    managed: bool,
    pinned: bool,
    used_by_containers: Vec<Value>,
    leased_by: Vec<Value>,
    named_by_labels: Vec<LabelRef>,
    gc_labels: BTreeMap<String, Value>,
    dangling: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Group {
    #[serde(rename = "type", default)]
    type_: Option<String>,
    namespace: Value,
    digest: Value,
    media_type: Value,
    size: i64,
    dangling: bool,
    names: Vec<NameRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NsCount {
    #[allow(dead_code)]
    namespace: Value,
    #[allow(dead_code)]
    names: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Shared {
    #[serde(rename = "type", default)]
    type_: Option<String>,
    #[allow(dead_code)]
    digest: Value,
    namespaces: Vec<NsCount>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ImagesDoc {
    schema_version: u32,
    tool: Tool,
    command: String,
    input: InputInfo,
    damage: Vec<Finding>,
    images: Option<Vec<ImageRec>>,
    groups: Option<Vec<Group>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RefsDoc {
    schema_version: u32,
    tool: Tool,
    command: String,
    input: InputInfo,
    damage: Vec<Finding>,
    groups: Vec<Group>,
    shared: Vec<Shared>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NsCounts {
    #[allow(dead_code)]
    name: Value,
    images: usize,
    blobs: usize,
    ingests: usize,
    containers: usize,
    snapshots: usize,
    leases: usize,
    sandboxes: usize,
    digests_with_multiple_names: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct InspectDoc {
    schema_version: u32,
    tool: Tool,
    command: String,
    input: InputInfo,
    damage: Vec<Finding>,
    file_size: u64,
    page_size: usize,
    file_pages: u64,
    high_water_mark: u64,
    pages_in_use: u64,
    pages_free: u64,
    pages_unused: u64,
    reclaimable_bytes: u64,
    txid: u64,
    meta_used: usize,
    freelist: Option<u64>,
    database: String,
    containerd_schema_version: Option<i64>,
    containerd_family: String,
    top_level_buckets: Vec<Value>,
    namespaces: Vec<NsCounts>,
    digests_with_multiple_names: usize,
    schema_findings: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct SchemaSummary {
    database: String,
    version: Option<i64>,
    family: String,
    namespaces: usize,
    errors: usize,
    warnings: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct CheckSummary {
    file_size: u64,
    page_size: usize,
    meta_used: usize,
    meta_reason: String,
    txid: u64,
    high_water_mark: u64,
    freelist: Option<u64>,
    pages_reachable: u64,
    pages_free: u64,
    pages_unused: u64,
    pages_beyond_high_water_mark: u64,
    buckets: u64,
    keys: u64,
    errors: usize,
    warnings: usize,
    findings_omitted: usize,
    schema: SchemaSummary,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Finding {
    severity: String,
    code: String,
    page: Option<u64>,
    offset: Option<u64>,
    path: Option<String>,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CheckDoc {
    schema_version: u32,
    tool: Tool,
    command: String,
    input: InputInfo,
    summary: CheckSummary,
    findings: Vec<Finding>,
}

/// Runs a report command; a document with an envelope (`--format json`) is
/// asked for the input's hash too (`--hash` is refused without an envelope).
fn run_json(args: &[&str], path: &std::path::Path) -> Vec<u8> {
    let envelope = args.ends_with(&["--format", "json"]);
    let args: Vec<&str> = args
        .iter()
        .copied()
        .chain(envelope.then_some("--hash"))
        .collect();
    let o = ctrdb_path(&args, path);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

fn is_rfc3339_nanos_utc(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 30
        && b.ends_with(b"Z")
        && b.get(b.len() - 11) == Some(&b'.')
        && b[b.len() - 10..b.len() - 1].iter().all(u8::is_ascii_digit)
        && s.contains('T')
}

fn envelope(
    v: u32,
    tool: &Tool,
    command: &str,
    want: &str,
    input: &InputInfo,
    file: &std::path::Path,
) {
    assert_eq!(v, 3);
    assert_eq!(tool.name, "ctrdb");
    assert_eq!(command, want);
    let bytes = std::fs::read(file).unwrap();
    assert_eq!(input.size, bytes.len() as u64);
    assert_eq!(input.sha256, Some(super::common::sha256_hex(&bytes)));
    assert!(input.txid.is_some());
}

#[test]
fn json_reports_match_the_documented_format() {
    for (name, path) in fixtures() {
        let doc: ImagesDoc =
            serde_json::from_slice(&run_json(&["images", "--format", "json"], &path)).unwrap();
        envelope(
            doc.schema_version,
            &doc.tool,
            &doc.command,
            "images",
            &doc.input,
            &path,
        );
        assert!(doc.damage.is_empty(), "{name}: {:?}", doc.damage);
        let images = doc.images.expect("images");
        assert!(doc.groups.is_none());
        assert!(images.len() >= 20, "{name}");
        let lines = String::from_utf8(run_json(&["images", "--format", "jsonl"], &path)).unwrap();
        let recs: Vec<ImageRec> = lines
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            recs.len(),
            images.len(),
            "{name}: jsonl has one line per image record"
        );
        for r in &recs {
            assert!(r.namespace.is_string() && r.name.is_string() && r.annotations.len() < 100);
            let t = r.target.as_ref().expect("fixture images have targets");
            assert!(
                t.digest.as_str().unwrap().starts_with("sha256:")
                    && t.media_type.is_string()
                    && t.size > 0
            );
            assert!(
                is_rfc3339_nanos_utc(r.created_at.as_deref().unwrap()),
                "{:?}",
                r.created_at
            );
            assert!(is_rfc3339_nanos_utc(r.updated_at.as_deref().unwrap()));
            assert!([
                "tag",
                "repoDigest",
                "imageId",
                "mobyDangling",
                "invalid",
                "other"
            ]
            .contains(&r.class.as_str()));
            assert_eq!(
                r.normalized.is_none(),
                r.class == "imageId" || r.class == "invalid"
            );
        }
        assert!(recs.iter().any(|r| r
            .labels
            .get("io.cri-containerd.image")
            .and_then(Value::as_str)
            == Some("managed")));

        let doc: ImagesDoc = serde_json::from_slice(&run_json(
            &["images", "--collapse", "--format", "json"],
            &path,
        ))
        .unwrap();
        assert!(doc.images.is_none());
        assert!(doc.damage.is_empty(), "{name}: {:?}", doc.damage);
        let groups = doc.groups.expect("groups");
        assert_eq!(
            groups.iter().map(|g| g.names.len()).sum::<usize>(),
            images.len(),
            "{name}"
        );

        let doc: RefsDoc =
            serde_json::from_slice(&run_json(&["refs", "--format", "json"], &path)).unwrap();
        envelope(
            doc.schema_version,
            &doc.tool,
            &doc.command,
            "refs",
            &doc.input,
            &path,
        );
        assert!(doc.damage.is_empty(), "{name}: {:?}", doc.damage);
        let multi: Vec<&Group> = doc.groups.iter().filter(|g| g.names.len() > 1).collect();
        assert!(!multi.is_empty(), "{name}");
        let first_single = doc
            .groups
            .iter()
            .position(|g| g.names.len() == 1)
            .unwrap_or(doc.groups.len());
        assert!(
            doc.groups[first_single..]
                .iter()
                .all(|g| g.names.len() == 1),
            "{name}: multi-name groups first"
        );
        assert!(doc
            .shared
            .iter()
            .all(|s| s.namespaces.len() > 1 && s.type_.is_none()));
        for g in &doc.groups {
            assert!(
                g.type_.is_none()
                    && g.namespace.is_string()
                    && g.digest.is_string()
                    && g.media_type.is_string()
            );
            assert!(g.size > 0 && !g.dangling);
            for n in &g.names {
                assert!(
                    n.name.is_string()
                        && !n.dangling
                        && n.used_by_containers.len() < 10
                        && n.leased_by.is_empty()
                );
                assert!(n.gc_labels.is_empty() && n.named_by_labels.is_empty());
                assert_eq!(
                    n.digest_matches_target.is_some(),
                    n.class == "repoDigest" || n.class == "mobyDangling"
                );
                assert_eq!(
                    n.normalized.is_some(),
                    n.class != "imageId" && n.class != "invalid"
                );
                let _ = (n.managed, n.pinned);
            }
        }
        let lines = String::from_utf8(run_json(&["refs", "--format", "jsonl"], &path)).unwrap();
        let mut n_groups = 0;
        for l in lines.lines() {
            let v: Value = serde_json::from_str(l).unwrap();
            match v["type"].as_str() {
                Some("group") => {
                    let g: Group = serde_json::from_value(v).unwrap();
                    assert_eq!(g.type_.as_deref(), Some("group"));
                    n_groups += 1;
                }
                Some("shared") => {
                    let _: Shared = serde_json::from_value(v).unwrap();
                }
                t => panic!("{name}: refs jsonl line type {t:?}"),
            }
        }
        assert_eq!(n_groups, doc.groups.len());

        let doc: InspectDoc =
            serde_json::from_slice(&run_json(&["inspect", "--format", "json"], &path)).unwrap();
        envelope(
            doc.schema_version,
            &doc.tool,
            &doc.command,
            "inspect",
            &doc.input,
            &path,
        );
        assert!(doc.damage.is_empty(), "{name}: {:?}", doc.damage);
        assert_eq!(
            doc.namespaces.iter().map(|n| n.images).sum::<usize>(),
            images.len()
        );
        assert_eq!(doc.digests_with_multiple_names, multi.len());
        assert!(doc.pages_in_use <= doc.file_pages && doc.schema_findings == 0);
        assert_eq!(doc.database, "metadata");
        let want_family = if name.contains("1.6") {
            "1.6"
        } else if name.contains("1.7") {
            "1.7+"
        } else {
            "2.x"
        };
        assert!(
            doc.containerd_family.contains(want_family),
            "{name}: {}",
            doc.containerd_family
        );
        let _ = doc
            .namespaces
            .iter()
            .map(|n| {
                n.blobs
                    + n.ingests
                    + n.containers
                    + n.snapshots
                    + n.leases
                    + n.sandboxes
                    + n.digests_with_multiple_names
            })
            .sum::<usize>();

        let doc: CheckDoc =
            serde_json::from_slice(&run_json(&["check", "--format", "json"], &path)).unwrap();
        envelope(
            doc.schema_version,
            &doc.tool,
            &doc.command,
            "check",
            &doc.input,
            &path,
        );
        assert!(doc.findings.is_empty(), "{name}: {:?}", doc.findings);
        assert_eq!(doc.summary.schema.errors + doc.summary.schema.warnings, 0);
        assert_eq!(doc.summary.schema.database, "metadata");
    }
}

/// Non-UTF-8 image names, label keys and values survive the JSON round trip. The
/// file is the newest fixture plus a non-UTF-8 label and a non-UTF-8 image name
/// with an empty `target` bucket, written with ctrdb's own writer.
#[test]
fn non_utf8_bytes_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, fx) = fixtures().into_iter().last().unwrap();
    let data = std::fs::read(fx).unwrap();
    let opts = WriterOptions::copy_of(&Db::parse(&data).unwrap()).unwrap();
    let (mut root, _) = read_tree(&data);
    let images: &[&[u8]] = &[b"v1", b"default", b"images"];
    root.bucket_mut(images, false)
        .bucket_mut(&[b"docker.io/library/app:1.0", b"labels"], false)
        .entries
        .insert(b"k\xff".to_vec(), Node::Value(b"v\xfe".to_vec()));
    root.bucket_mut(images, false)
        .bucket_mut(&[b"bad\xffname", b"target"], true);
    let p = tmp.path().join("nonutf8.db");
    write_tree_file(&p, &root, opts);
    let o = ctrdb_path(&["images", "-n", "default", "--format", "jsonl"], &p);
    assert_eq!(o.status.code(), Some(0));
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let recs: Vec<ImageRec> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let bad = recs
        .iter()
        .find(|r| r.name == serde_json::json!({"bytes": b64(b"bad\xffname")}))
        .expect("non-UTF-8 name");
    assert_eq!(bad.class, "invalid");
    let app = recs
        .iter()
        .find(|r| r.name == "docker.io/library/app:1.0")
        .unwrap();
    let key = format!("\u{0}b64:{}", b64(b"k\xff"));
    assert_eq!(
        app.labels.get(&key),
        Some(&serde_json::json!({"bytes": b64(b"v\xfe")}))
    );
    // check reports the nameless target as an invalid target, not a crash.
    let o = ctrdb_path(&["check", "--format", "json"], &p);
    assert_eq!(o.status.code(), Some(1));
    let doc: CheckDoc = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc.findings.iter().any(|f| f.code == "image-target-invalid"
        && f.path.as_deref() == Some(r"v1/default/images/bad\xffname/target")));
}
