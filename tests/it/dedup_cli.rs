//! `ctrdb dedup` end to end on the real fixtures and on copies edited with Go's
//! `editdb`: dry-run exit codes, the JSON contract (`deny_unknown_fields`), the
//! cleaned copy equal to the input minus exactly the removed `images/<name>`
//! buckets (our dump), Go's `tx.Check` and containerd 1.6.20's own GC
//! (`ctrmeta -gc`) content with every cleaned copy, `--in-place` with backup and
//! a working rollback command, refusals (locked: 3; one-per-digest without
//! `--yes`: 2; existing backup: 2) that leave everything untouched, and each
//! protection the fixtures lack.

#![allow(dead_code)] // the JSON structs pin every field; not all are read

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_json::Value;

use super::common::*;

const POLICIES: [&str; 3] = ["safe", "tagged", "one-per-digest"];

// ------------------------------------------------------------------ JSON contract

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Doc {
    pub schema_version: u32,
    pub tool: Value,
    pub command: String,
    pub input: Input,
    pub policy: String,
    pub mode: String,
    pub namespaces: Vec<String>,
    pub keep: Vec<String>,
    pub decisions: Vec<Decision>,
    pub shared: Vec<Value>,
    pub gc: Gc,
    pub summary: Summary,
    pub warnings: Vec<String>,
    pub refused: Option<String>,
    pub output: Option<OutputInfo>,
    pub backup: Option<BackupInfo>,
    pub rollback: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Input {
    pub path: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub txid: Option<u64>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Decision {
    pub namespace: String,
    pub name: String,
    pub target: Option<DecisionTarget>,
    pub class: String,
    pub action: String,
    pub reason: String,
    pub protected_by: Vec<String>,
    pub detail: String,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct DecisionTarget {
    pub digest: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gc {
    pub rules: String,
    pub now: String,
    pub before: GcSet,
    pub after: GcSet,
    pub newly_collectable: GcSet,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcSet {
    pub content: Vec<Value>,
    pub snapshots: Vec<Value>,
    pub images: Vec<Value>,
    pub leases: Vec<Value>,
    pub ingests: Vec<Value>,
}

impl GcSet {
    pub fn len(&self) -> usize {
        self.content.len()
            + self.snapshots.len()
            + self.images.len()
            + self.leases.len()
            + self.ingests.len()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Summary {
    pub names: usize,
    pub kept: usize,
    pub removed: usize,
    pub protected: usize,
    pub newly_collectable: usize,
    pub namespaces: Vec<NsSummary>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsSummary {
    pub namespace: String,
    pub names: usize,
    pub kept: usize,
    pub removed: usize,
    pub protected: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OutputInfo {
    pub path: String,
    pub size: u64,
    pub sha256: Option<String>,
    pub txid: u64,
    pub removed_buckets: usize,
    pub buckets: u64,
    pub keys: u64,
    pub verified: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupInfo {
    pub path: String,
    pub sha256: String,
}

impl Doc {
    pub fn removed(&self) -> BTreeSet<(String, String)> {
        self.decisions
            .iter()
            .filter(|d| d.action == "remove")
            .map(|d| (d.namespace.clone(), d.name.clone()))
            .collect()
    }

    pub fn decision(&self, ns: &str, name: &str) -> &Decision {
        self.decisions
            .iter()
            .find(|d| d.namespace == ns && d.name == name)
            .unwrap_or_else(|| panic!("no decision for {ns}/{name}"))
    }
}

// ------------------------------------------------------------------ helpers

pub fn dedup(args: &[&str], db: &Path) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .arg("dedup")
        .arg(db)
        .args(args)
        .output()
        .expect("run ctrdb");
    assert_no_panic(&o, "dedup");
    o
}

/// Runs `dedup --format json` with `args`, returns (exit code, document).
pub fn dedup_json(args: &[&str], db: &Path) -> (Option<i32>, Doc) {
    let mut a = vec!["--format", "json", "--hash"];
    a.extend_from_slice(args);
    let o = dedup(&a, db);
    let doc: Doc = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "dedup {args:?}: bad JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), doc)
}

fn fixture(version: &str) -> PathBuf {
    fixtures_dir().join(format!("containerd-{version}/meta.db"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `ctrdb dump --format hex` lines.
fn dump_lines(db: &Path) -> Vec<String> {
    let o = ctrdb_path(&["dump", "--format", "hex"], db);
    assert_eq!(
        o.status.code(),
        Some(0),
        "dump {}: {}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Asserts `out`'s dump equals `input`'s without exactly the `v1/<ns>/images/<name>`
/// subtrees of `removed` (and that each of them was there).
pub fn assert_dump_minus(input: &Path, out: &Path, removed: &BTreeSet<(String, String)>) {
    let prefixes: Vec<String> = removed
        .iter()
        .map(|(ns, n)| {
            format!(
                "{}/{}/{}/{}",
                hex(b"v1"),
                hex(ns.as_bytes()),
                hex(b"images"),
                hex(n.as_bytes())
            )
        })
        .collect();
    let a = dump_lines(input);
    let mut hit = vec![false; prefixes.len()];
    let expect: Vec<&String> = a
        .iter()
        .filter(|l| {
            let path = l.split(' ').nth(1).unwrap_or_default();
            let under = prefixes
                .iter()
                .position(|p| path == p || path.starts_with(&format!("{p}/")));
            if let Some(i) = under {
                hit[i] = true;
            }
            under.is_none()
        })
        .collect();
    assert!(
        hit.iter().all(|h| *h),
        "a removed name is not in the input: {removed:?}"
    );
    let b = dump_lines(out);
    let b: Vec<&String> = b.iter().collect();
    assert!(
        expect == b,
        "{}: dump differs from the input minus the removed image buckets",
        out.display()
    );
}

/// containerd 1.6.20's own GC (dry run on a copy): what it removes, without the
/// header lines (path, caveats, object counts).
fn go_gc(bin: &Path, db: &Path) -> Vec<String> {
    let o = Command::new(bin.join("ctrmeta"))
        .arg("-gc")
        .arg(db)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ctrmeta -gc {}: {}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| {
            !l.starts_with("GC dry run")
                && !l.starts_with("caveat:")
                && !l.starts_with("metadata objects")
        })
        .map(String::from)
        .collect()
}

/// A copy of `src` edited by `editdb` with each op (byte-string arguments).
fn edited(bin: &Path, dir: &Path, src: &Path, case: &str, ops: &[Vec<Vec<u8>>]) -> PathBuf {
    let out = dir.join(format!("{case}.db"));
    std::fs::copy(src, &out).unwrap();
    for op in ops {
        let args: Vec<&OsStr> = op.iter().map(|a| OsStr::from_bytes(a)).collect();
        editdb(bin, &out, &args);
    }
    out
}

fn op(parts: &[&[u8]]) -> Vec<Vec<u8>> {
    parts.iter().map(|p| p.to_vec()).collect()
}

/// containerd's zig-zag varint.
fn varint(v: i64) -> Vec<u8> {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    while u >= 0x80 {
        out.push((u as u8) | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
    out
}

const TINY: &str = "sha256:68e65afa778727889f29a63f5c0aec692694722392f5004197358bc8ffbfd04d";
const TINY_ID: &str = "sha256:3811636fd0e00fffbdf02801a029f3323514aacc136f757b7140589549d54e2d";
const APP: &str = "sha256:6a48f8bd607915a989b6f3b2f396dbd2820afd030db9428b39e11b889b520cc7";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// editdb ops that create `v1/<ns>/images/<name>` with a target and labels.
fn add_image(
    ns: &str,
    name: &str,
    digest: &str,
    size: i64,
    labels: &[(&str, &str)],
) -> Vec<Vec<Vec<u8>>> {
    let base: [&[u8]; 4] = [b"v1", ns.as_bytes(), b"images", name.as_bytes()];
    let at = |rest: &[&[u8]]| -> Vec<Vec<u8>> {
        let mut v: Vec<&[u8]> = vec![b"put"];
        v.extend_from_slice(&base);
        v.extend_from_slice(rest);
        op(&v)
    };
    let size = varint(size);
    let mut ops = vec![
        op(&[
            b"mk-bucket",
            b"v1",
            ns.as_bytes(),
            b"images",
            name.as_bytes(),
            b"target",
        ]),
        at(&[b"target", b"digest", digest.as_bytes()]),
        at(&[b"target", b"mediatype", OCI_MANIFEST.as_bytes()]),
        at(&[b"target", b"size", &size]),
    ];
    if !labels.is_empty() {
        ops.push(op(&[
            b"mk-bucket",
            b"v1",
            ns.as_bytes(),
            b"images",
            name.as_bytes(),
            b"labels",
        ]));
    }
    for (k, v) in labels {
        ops.push(at(&[b"labels", k.as_bytes(), v.as_bytes()]));
    }
    ops
}

// ------------------------------------------------------------------ fixtures

#[test]
fn dry_run_on_fixtures_per_policy() {
    for (name, db) in fixtures() {
        let before = std::fs::read(&db).unwrap();
        for policy in POLICIES {
            let (code, doc) = dedup_json(&["--policy", policy], &db);
            assert_eq!(code, Some(1), "{name} {policy}: something to remove");
            assert_eq!(
                (doc.schema_version, doc.command.as_str(), doc.mode.as_str()),
                (3, "dedup", "dryRun")
            );
            assert_eq!(doc.policy, policy);
            assert!(doc.output.is_none() && doc.backup.is_none() && doc.refused.is_none());
            assert_eq!(doc.summary.names, doc.decisions.len());
            assert_eq!(doc.summary.removed, doc.removed().len());
            assert_eq!(doc.summary.kept + doc.summary.removed, doc.summary.names);
            assert_eq!(doc.summary.newly_collectable, 0, "{name} {policy}");
            assert_eq!(doc.gc.newly_collectable.len(), 0);
            assert_eq!(
                doc.gc.before.len(),
                doc.gc.after.len(),
                "{name} {policy}: the plan changes nothing GC collects"
            );
            assert_eq!(doc.input.sha256, Some(super::common::sha256_hex(&before)));
            assert_eq!(doc.input.size, before.len() as u64);
            for d in &doc.decisions {
                assert!(["keep", "remove"].contains(&d.action.as_str()));
                assert_eq!(d.protected_by.is_empty(), d.reason != "protected", "{d:?}");
                assert!(d.target.is_some());
            }
            // never across namespaces: every removed name's target keeps a name in its namespace
            for (ns, n) in doc.removed() {
                let t = &doc.decision(&ns, &n).target.as_ref().unwrap().digest;
                assert!(
                    doc.decisions.iter().any(|d| d.namespace == ns
                        && d.action == "keep"
                        && d.target.as_ref().unwrap().digest == *t),
                    "{name} {policy}: {ns}/{n} was the last name of {t}"
                );
            }
            // the table shows the same decisions, grouped by digest
            let t = dedup(&["--policy", policy], &db);
            assert_eq!(t.status.code(), Some(1));
            let text = String::from_utf8_lossy(&t.stdout);
            assert_eq!(
                text.lines().filter(|l| l.starts_with("  remove ")).count(),
                doc.summary.removed
            );
            assert!(text.contains("newly collectable:  nothing"), "{text}");
        }
        // safe: exactly the CRI image-ID aliases beside a repo@digest (4 in every fixture)
        let (_, doc) = dedup_json(&[], &db);
        assert_eq!(doc.policy, "safe");
        let safe: Vec<(String, String)> = doc.removed().into_iter().collect();
        assert_eq!(safe.len(), 4, "{name}: {safe:?}");
        assert!(doc
            .decisions
            .iter()
            .filter(|d| d.action == "remove")
            .all(|d| d.reason == "criImageIdAlias" && d.class == "imageId"));
        assert!(
            safe.contains(&("default".into(), TINY_ID.into()))
                && safe.contains(&("k8s.io".into(), TINY_ID.into()))
        );
        assert_eq!(
            std::fs::read(&db).unwrap(),
            before,
            "{name}: the input was modified"
        );
    }
}

#[test]
fn output_equals_input_minus_removed_buckets_and_passes_go_checks() {
    let bin = oracle_bin("output_equals_input_minus_removed_buckets_and_passes_go_checks");
    let dir = tempfile::tempdir().unwrap();
    for (name, db) in fixtures() {
        for policy in POLICIES {
            let out = dir.path().join(format!("{name}-{policy}.db"));
            let (code, doc) = dedup_json(
                &[
                    "--policy",
                    policy,
                    "--yes",
                    "--output",
                    out.to_str().unwrap(),
                ],
                &db,
            );
            assert_eq!(code, Some(0), "{name} {policy}: {:?}", doc.refused);
            assert_eq!(doc.mode, "output");
            let o = doc.output.as_ref().expect("output info");
            assert!(o.verified);
            assert_eq!(o.removed_buckets, doc.removed().len());
            assert_eq!(
                o.sha256,
                Some(super::common::sha256_hex(&std::fs::read(&out).unwrap()))
            );
            assert_dump_minus(&db, &out, &doc.removed());
            // our own check, and a second dry run finds nothing more under the same policy
            assert_eq!(
                ctrdb_path(&["check"], &out).status.code(),
                Some(0),
                "{name} {policy}: check"
            );
            let (again, doc2) = dedup_json(&["--policy", policy], &out);
            assert_eq!(
                (again, doc2.summary.removed),
                (Some(0), 0),
                "{name} {policy}: not idempotent"
            );
            if let Some(bin) = &bin {
                go_check_ok(bin, &out);
                // Both at the same moment: the fixtures hold leases and ingests that expire.
                let (after, before) = (go_gc(bin, &out), go_gc(bin, &db));
                assert_eq!(
                    after, before,
                    "{name} {policy}: containerd 1.6.20's GC differs"
                );
            }
        }
    }
}

/// The GC proof failing (injected: `CTRDB_FAULT=gc-proof:error`) refuses the
/// write. With `--output` the proof runs alongside the verification of the
/// written copy, so the copy exists as a temporary file first: it must be gone,
/// nothing renamed, and the report must say why, as for a dry run and
/// `--in-place` (where the proof runs before anything is written).
#[test]
fn failed_gc_proof_refuses_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture("2.1.9");
    let out = dir.path().join("out.db");
    let run = |args: &[&str], path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ctrdb"))
            .arg("dedup")
            .args(args)
            .arg(path)
            .env("CTRDB_FAULT", "gc-proof:error")
            .output()
            .expect("run ctrdb")
    };
    let o = run(&["--output", out.to_str().unwrap()], &db);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("newly collectable"), "{err}");
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temporary file left behind"
    );
    let o = run(
        &["--format", "json", "--output", out.to_str().unwrap()],
        &db,
    );
    assert_eq!(o.status.code(), Some(2));
    let doc: Doc = serde_json::from_slice(&o.stdout).expect("a JSON report");
    assert!(doc
        .refused
        .as_deref()
        .is_some_and(|r| r.contains("newly collectable")));
    assert!(doc.output.is_none() && !out.exists());
    assert!(doc.summary.removed > 0, "the plan itself is still reported");
    // the dry run reports the refusal too
    let o = run(&[], &db);
    assert_eq!(o.status.code(), Some(2));
    // in place: nothing written, no backup
    let copy = dir.path().join("meta.db");
    std::fs::copy(&db, &copy).unwrap();
    let o = run(&["--in-place"], &copy);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&db).unwrap());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn one_per_digest_needs_yes_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = fixture("2.1.9");
    let out = dir.path().join("out.db");
    let o = dedup(
        &[
            "--policy",
            "one-per-digest",
            "--output",
            out.to_str().unwrap(),
        ],
        &db,
    );
    assert_eq!(o.status.code(), Some(2));
    // One sentence that names both counts for what they are: every name the
    // plan removes, and the tags among them that --yes confirms.
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "ctrdb: error: refused: --policy one-per-digest would remove 11 image name(s), among them \
         1 tag (docker.io/library/tiny:latest in default) that no kept name replaces; review the dry \
         run and add --yes to write\n"
    );
    assert!(!out.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
    let (code, doc) = dedup_json(
        &[
            "--policy",
            "one-per-digest",
            "--output",
            out.to_str().unwrap(),
        ],
        &db,
    );
    assert_eq!(code, Some(2));
    assert!(doc.refused.as_deref().is_some_and(|r| r.contains("--yes")) && doc.output.is_none());
    // in place too
    let copy = dir.path().join("meta.db");
    std::fs::copy(&db, &copy).unwrap();
    let o = dedup(&["--policy", "one-per-digest", "--in-place"], &copy);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&db).unwrap());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no backup for a refused run"
    );
    // --yes is accepted (and harmless) with every policy
    assert_eq!(dedup(&["--yes"], &db).status.code(), Some(1));
    // the dry run says before any write attempt that writing needs --yes, and why
    let o = dedup(&["--policy", "one-per-digest"], &db);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.ends_with(
            "dry run: nothing written; --policy one-per-digest removes 1 tag (docker.io/library/tiny:latest \
             in default), so writing (--output OUT or --in-place) needs --yes\n"
        ),
        "{text}"
    );
    let o = dedup(&["--policy", "one-per-digest", "--yes"], &db);
    assert!(String::from_utf8_lossy(&o.stdout)
        .ends_with("dry run: nothing written; write with --output OUT or --in-place\n"));
}

#[test]
fn per_namespace_counts_are_right_aligned() {
    let o = dedup(&[], &fixture("2.1.9"));
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    let table: String = text
        .lines()
        .skip_while(|l| *l != "per namespace:")
        .take_while(|l| !l.starts_with("GC impact"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        table,
        "per namespace:
  NAMESPACE     NAMES   KEPT   REMOVED   PROTECTED
  buildkit          2      2         0           0
  ctrdb-empty       0      0         0           0
  default           6      5         1           0
  k8s.io           11      8         3           0
  moby              2      2         0           0
  (total)          21     17         4           0
"
    );
}

#[test]
fn in_place_with_backup_and_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("1.7.24");
    let original = std::fs::read(&src).unwrap();
    let db = dir.path().join("meta.db");
    std::fs::copy(&src, &db).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = dedup(&["--policy", "tagged", "--in-place"], &db);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // the backup: next to the DB, timestamped, identical to the original, same mode
    let backups: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("meta.db.ctrdb-backup-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    let backup = &backups[0];
    assert_eq!(std::fs::read(backup).unwrap(), original);
    for p in [&db, backup] {
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o7777,
            0o600,
            "{}",
            p.display()
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary file left"
    );
    // the DB is the cleaned file
    assert_eq!(dedup(&["--policy", "tagged"], &db).status.code(), Some(0));
    assert_ne!(std::fs::read(&db).unwrap(), original);
    // the printed rollback command restores the original
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("to roll back"))
        .nth(1)
        .expect("rollback command")
        .trim();
    assert!(line.starts_with("mv -f -- "), "{line}");
    let st = Command::new("sh")
        .arg("-c")
        .arg(line)
        .current_dir("/")
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(std::fs::read(&db).unwrap(), original);
    assert!(!backup.exists());
}

#[test]
fn in_place_json_and_explicit_backup_path() {
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("2.1.9");
    let original = std::fs::read(&src).unwrap();
    let db = dir.path().join("meta.db");
    std::fs::copy(&src, &db).unwrap();
    let backup = dir.path().join("my backup.db");
    std::fs::write(&backup, b"precious").unwrap();
    // an existing backup path is refused, nothing changes
    let o = dedup(&["--in-place", "--backup", backup.to_str().unwrap()], &db);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&backup).unwrap(), b"precious");
    assert_eq!(std::fs::read(&db).unwrap(), original);
    std::fs::remove_file(&backup).unwrap();
    let (code, doc) = dedup_json(&["--in-place", "--backup", backup.to_str().unwrap()], &db);
    assert_eq!(code, Some(0));
    assert_eq!(doc.mode, "inPlace");
    let b = doc.backup.as_ref().unwrap();
    assert_eq!(b.sha256, super::common::sha256_hex(&original));
    assert_eq!(std::fs::read(&backup).unwrap(), original);
    let rollback = doc.rollback.as_deref().unwrap();
    assert!(
        rollback.contains("'") && rollback.contains("my backup.db"),
        "{rollback}"
    );
    assert_dump_minus(&backup, &db, &doc.removed());
    // nothing left to remove: the DB is not touched again and no backup is made
    let before = std::fs::read(&db).unwrap();
    let o = dedup(&["--in-place"], &db);
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to remove"));
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[test]
fn locked_database_exits_3_and_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("meta.db");
    std::fs::copy(fixture("2.1.9"), &db).unwrap();
    let before = std::fs::read(&db).unwrap();
    let holder = std::fs::File::open(&db).unwrap();
    holder
        .try_lock()
        .expect("take the lock as containerd would");
    for args in [
        &["--in-place"][..],
        &[][..],
        &["--output", dir.path().join("o.db").to_str().unwrap()][..],
    ] {
        let o = dedup(args, &db);
        assert_eq!(
            o.status.code(),
            Some(3),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // a shared holder (another reader) still blocks --in-place, not the dry run
    drop(holder);
    let reader = std::fs::File::open(&db).unwrap();
    reader.try_lock_shared().unwrap();
    assert_eq!(dedup(&["--in-place"], &db).status.code(), Some(3));
    assert_eq!(dedup(&[], &db).status.code(), Some(1));
    drop(reader);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no backup, no temporary file"
    );
}

#[test]
fn usage_errors() {
    let db = fixture("2.1.9");
    for args in [
        &["--in-place", "--no-lock"][..],
        &["--backup", "/tmp/x"][..],
        &["--force"][..],
        &["--policy", "bogus"][..],
    ] {
        assert_eq!(dedup(args, &db).status.code(), Some(2), "{args:?}");
    }
    // --output onto the input itself (even with --force) is refused; work on a copy
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("meta.db");
    std::fs::copy(&db, &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["--output", copy.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = dedup(&args, &copy);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("input database itself"),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

#[test]
fn namespace_filter_and_keep_glob_on_fixture() {
    let db = fixture("2.1.9");
    let (_, doc) = dedup_json(&["-n", "k8s.io"], &db);
    assert!(doc.removed().iter().all(|(ns, _)| ns == "k8s.io"));
    let d = doc.decision("default", TINY_ID);
    assert_eq!(
        (d.action.as_str(), d.protected_by.clone()),
        ("keep", vec!["outsideNamespace".to_string()])
    );
    assert_eq!(doc.summary.protected, 1);
    let (code, doc) = dedup_json(&["--keep", "sha256:*"], &db);
    assert_eq!(code, Some(0), "every removal of safe is an ID");
    assert_eq!(doc.summary.protected, 4);
    assert!(doc
        .decisions
        .iter()
        .filter(|d| d.reason == "protected")
        .all(|d| d.protected_by == ["keepGlob"]));
}

// ------------------------------------------------------------------ edited fixtures

/// One edited case: its editdb ops, the name to look at, the policy, and the
/// expected decision (action, reason, protections).
struct Case {
    name: &'static str,
    ops: Vec<Vec<Vec<u8>>>,
    ns: &'static str,
    image: &'static str,
    policy: &'static str,
    action: &'static str,
    reason: &'static str,
    protected_by: &'static [&'static str],
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    // a short alias next to the canonical name: removed
    v.push(Case {
        name: "short-alias",
        ops: add_image("default", "tiny:1.0", TINY, 401, &[]),
        ns: "default",
        image: "tiny:1.0",
        policy: "safe",
        action: "remove",
        reason: "nonCanonicalAlias",
        protected_by: &[],
    });
    // the alias is what a container's image field names
    let mut ops = add_image("default", "app:1.0", APP, 555, &[]);
    ops.push(op(&[
        b"put",
        b"v1",
        b"default",
        b"containers",
        b"app-ctr",
        b"image",
        b"app:1.0",
    ]));
    v.push(Case {
        name: "alias-used-by-container",
        ops,
        ns: "default",
        image: "app:1.0",
        policy: "safe",
        action: "keep",
        reason: "protected",
        protected_by: &["usedByContainer"],
    });
    // a content label names the alias (containerd.io/gc.ref.image)
    let mut ops = add_image("default", "tiny:1.0", TINY, 401, &[]);
    ops.push(op(&[
        b"put",
        b"v1",
        b"default",
        b"content",
        b"blob",
        TINY.as_bytes(),
        b"labels",
        b"containerd.io/gc.ref.image",
        b"tiny:1.0",
    ]));
    v.push(Case {
        name: "alias-named-by-gc-ref-image",
        ops,
        ns: "default",
        image: "tiny:1.0",
        policy: "safe",
        action: "keep",
        reason: "protected",
        protected_by: &["namedByGcLabel"],
    });
    // the CRI ID alias is pinned, its siblings are not
    v.push(Case {
        name: "pinned-id",
        ops: vec![op(&[
            b"put",
            b"v1",
            b"k8s.io",
            b"images",
            TINY_ID.as_bytes(),
            b"labels",
            b"io.cri-containerd.pinned",
            b"pinned",
        ])],
        ns: "k8s.io",
        image: TINY_ID,
        policy: "safe",
        action: "keep",
        reason: "protected",
        protected_by: &["pinned"],
    });
    // the alias carries its own GC label
    v.push(Case {
        name: "alias-with-gc-label",
        ops: add_image(
            "default",
            "tiny:1.0",
            TINY,
            401,
            &[("containerd.io/gc.ref.content.extra", APP)],
        ),
        ns: "default",
        image: "tiny:1.0",
        policy: "safe",
        action: "keep",
        reason: "protected",
        protected_by: &["gcLabels"],
    });
    // the same under tagged: an untagged name with a GC label stays
    v.push(Case {
        name: "untagged-with-gc-label",
        ops: vec![op(&[
            b"put",
            b"v1",
            b"k8s.io",
            b"images",
            format!("docker.io/library/tiny@{TINY}").as_bytes(),
            b"labels",
            b"containerd.io/gc.ref.content.extra",
            APP.as_bytes(),
        ])],
        ns: "k8s.io",
        image: "docker.io/library/tiny@sha256:68e65afa778727889f29a63f5c0aec692694722392f5004197358bc8ffbfd04d",
        policy: "tagged",
        action: "keep",
        reason: "protected",
        protected_by: &["gcLabels"],
    });
    v
}

#[test]
fn edited_fixtures_protections() {
    let Some(bin) = oracle_bin("edited_fixtures_protections") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for version in ["1.6.20", "2.1.9"] {
        let src = fixture(version);
        for c in cases() {
            let case = format!("{version}-{}", c.name);
            let db = edited(&bin, dir.path(), &src, &case, &c.ops);
            let (code, doc) = dedup_json(&["--policy", c.policy], &db);
            assert_eq!(code, Some(1), "{case}");
            let d = doc.decision(c.ns, c.image);
            assert_eq!(
                (
                    d.action.as_str(),
                    d.reason.as_str(),
                    d.protected_by
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                ),
                (c.action, c.reason, c.protected_by.to_vec()),
                "{case}: {}",
                d.detail
            );
            assert_eq!(doc.summary.newly_collectable, 0, "{case}");
            let out = dir.path().join(format!("{case}.out.db"));
            let (code, doc2) = dedup_json(
                &["--policy", c.policy, "--output", out.to_str().unwrap()],
                &db,
            );
            assert_eq!(code, Some(0), "{case}: {:?}", doc2.refused);
            assert_dump_minus(&db, &out, &doc2.removed());
            go_check_ok(&bin, &out);
            assert_eq!(
                go_gc(&bin, &out),
                go_gc(&bin, &db),
                "{case}: containerd 1.6.20's GC differs"
            );
        }
    }
}
