//! How ctrdb's output behaves where a shell puts it: a reader that closes the
//! pipe early does not change the exit status, a closed standard output is an
//! error (the report would be lost), a full disk is reported once, and bytes
//! from the file never reach the terminal as control characters.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ctrdb::bolt::writer::WriterOptions;
use ctrdb::bolt::Db;

use super::common::*;
use super::writer_common::{read_tree, write_tree_file, Node};

/// A key with a terminal colour sequence, a backspace and a newline in it.
pub const HOSTILE_KEY: &[u8] = b"evil\x1b[31m\x08\nkey";

/// The newest fixture with an empty bucket `HOSTILE_KEY` in the `default`
/// namespace bucket (a schema warning: a bucket containerd does not write),
/// written with ctrdb's own writer into `dir`.
pub fn fixture_with_a_warning(dir: &Path) -> PathBuf {
    let (_, fx) = fixtures().into_iter().last().unwrap();
    let data = std::fs::read(fx).unwrap();
    let opts = WriterOptions::copy_of(&Db::parse(&data).unwrap()).unwrap();
    let (mut root, _) = read_tree(&data);
    root.bucket_mut(&[b"v1", b"default"], false)
        .entries
        .insert(HOSTILE_KEY.to_vec(), Node::Bucket(Default::default()));
    let p = dir.join("warning.db");
    write_tree_file(&p, &root, opts);
    p
}

/// Runs `ctrdb ARGS DB` with its output into a pipe whose reader has already
/// closed it (as `| head` does once it has read enough): every write fails with
/// `EPIPE`. Returns ctrdb's exit status.
fn status_into_closed_pipe(args: &str, db: &Path) -> Option<i32> {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .args(args.split_whitespace())
        .arg(db)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        o.stderr.is_empty(),
        "{args}: a closed pipe is not an error, but ctrdb said: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.status.code()
}

#[test]
fn a_closed_pipe_keeps_the_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let warned = fixture_with_a_warning(tmp.path());
    let (_, clean) = fixtures().into_iter().last().unwrap();
    for args in ["check", "check --format json", "check --format jsonl"] {
        assert_eq!(status_into_closed_pipe(args, &warned), Some(1), "{args}");
        assert_eq!(status_into_closed_pipe(args, &clean), Some(0), "{args}");
    }
    for args in [
        "dump",
        "dump --format jsonl",
        "dump --format hex",
        "refs --format json",
        "images --format jsonl",
        "inspect --format json",
    ] {
        assert_eq!(status_into_closed_pipe(args, &clean), Some(0), "{args}");
    }
    assert_eq!(
        status_into_closed_pipe("dedup", &clean),
        Some(1),
        "dedup dry run that would remove names"
    );
}

#[test]
fn a_closed_stdout_is_an_error() {
    let (_, clean) = fixtures().into_iter().last().unwrap();
    let script = format!(
        "exec '{}' check '{}' >&-",
        env!("CARGO_BIN_EXE_ctrdb"),
        clean.display()
    );
    let o = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("standard output is closed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Output sent to /dev/null on purpose is not "closed".
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .arg("check")
        .arg(&clean)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_full_disk_is_reported_once() {
    if !Path::new("/dev/full").exists() {
        skip_env(&test_name(), "no /dev/full");
        return;
    }
    let (_, clean) = fixtures().into_iter().last().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .arg("images")
        .arg(&clean)
        .stdout(
            std::fs::File::options()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
}

/// No byte of a name reaches the terminal as a control character, in any
/// table or message; the JSON keeps the bytes (escaped by JSON itself).
#[test]
fn names_from_the_file_never_reach_the_terminal_raw() {
    let tmp = tempfile::tempdir().unwrap();
    let db = fixture_with_a_warning(tmp.path());
    for args in [
        &["check"][..],
        &["inspect"],
        &["dump"],
        &["images"],
        &["refs"],
        &["dedup"],
    ] {
        let o = ctrdb_path(args, &db);
        assert_no_panic(&o, &format!("{args:?}"));
        for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let raw = bytes
                .iter()
                .position(|&b| (b < 0x20 && b != b'\n') || b == 0x7f);
            assert!(
                raw.is_none(),
                "{args:?}: a raw control byte on {stream}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }
    let o = ctrdb_path(&["check"], &db);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(r"evil\x1b[31m\x08\nkey"), "{out}");
    let o = ctrdb_path(&["check", "--format", "json"], &db);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["message"].as_str().unwrap().contains(r"evil\x1b")));
}

/// `--hash` goes into a JSON report's envelope: where the output has none it
/// is refused, not ignored.
#[test]
fn hash_without_a_report_envelope_is_refused() {
    let (_, db) = fixtures().into_iter().last().unwrap();
    for args in [
        &["check", "--hash"][..],
        &["inspect", "--hash"],
        &["images", "--hash"],
        &["images", "--hash", "--format", "jsonl"],
        &["refs", "--hash", "--format", "jsonl"],
        &["dump", "--hash"],
        &["dedup", "--hash"],
    ] {
        let o = ctrdb_path(args, &db);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("--hash"),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let want = sha256_hex(&std::fs::read(&db).unwrap());
    for args in [
        &["check", "--hash", "--format", "jsonl"][..],
        &["inspect", "--hash", "--format", "json"],
        &["dedup", "--hash", "--format", "jsonl"],
    ] {
        let o = ctrdb_path(args, &db);
        assert!(o.status.code().is_some_and(|c| c < 2), "{args:?}");
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["input"]["sha256"], want.as_str(), "{args:?}");
    }
}

/// Every command that writes one report takes `table`, `json` and `jsonl`
/// (the same document on one line).
#[test]
fn every_report_takes_table_json_and_jsonl() {
    let (_, db) = fixtures().into_iter().last().unwrap();
    for cmd in ["check", "inspect", "dedup"] {
        let pretty = ctrdb_path(&[cmd, "--format", "json"], &db);
        let line = ctrdb_path(&[cmd, "--format", "jsonl"], &db);
        assert_eq!(pretty.status.code(), line.status.code(), "{cmd}");
        assert_eq!(
            line.stdout.iter().filter(|&&b| b == b'\n').count(),
            1,
            "{cmd}"
        );
        let mut a: serde_json::Value = serde_json::from_slice(&pretty.stdout).unwrap();
        let mut b: serde_json::Value = serde_json::from_slice(&line.stdout).unwrap();
        // dedup's report carries the time its GC model ran at.
        for v in [&mut a, &mut b] {
            if let Some(gc) = v.get_mut("gc") {
                gc["now"] = serde_json::Value::Null;
            }
        }
        assert_eq!(a, b, "{cmd}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("c.db");
    let o = ctrdb(&[
        "compact",
        db.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["command"], "compact");
}

/// `check --fail-on error` exits 0 on warnings alone; the default counts them.
#[test]
fn check_fail_on_chooses_what_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let warned = fixture_with_a_warning(tmp.path());
    assert_eq!(ctrdb_path(&["check"], &warned).status.code(), Some(1));
    assert_eq!(
        ctrdb_path(&["check", "--fail-on", "warning"], &warned)
            .status
            .code(),
        Some(1)
    );
    let o = ctrdb_path(&["check", "--fail-on", "error"], &warned);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The warning is still reported.
    assert!(String::from_utf8_lossy(&o.stdout).contains("warning[unknown-key]"));
    // An error still fails: a leaf page of the tree zeroed.
    let mut data = std::fs::read(&warned).unwrap();
    let db = Db::parse(&data).unwrap();
    let ps = db.page_size();
    let leaf = tree_pages(&db)
        .into_iter()
        .find(|p| p.id > 3)
        .expect("a tree page");
    let off = leaf.id as usize * ps;
    data[off..off + ps].fill(0);
    let broken = tmp.path().join("broken.db");
    std::fs::write(&broken, &data).unwrap();
    assert_eq!(
        ctrdb_path(&["check", "--fail-on", "error"], &broken)
            .status
            .code(),
        Some(1)
    );
}

/// A failed write names the file the user asked for, never the temporary file
/// beside it (which is removed).
#[test]
fn write_errors_name_the_output_not_the_temporary_file() {
    let (_, db) = fixtures().into_iter().last().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.db");
    for fault in [
        "write-begin:error",
        "before-fsync:error",
        "after-verify:error",
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
            .args([
                "compact",
                db.to_str().unwrap(),
                "--output",
                out.to_str().unwrap(),
            ])
            .env("CTRDB_FAULT", fault)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{fault}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&*out.to_string_lossy()), "{fault}: {err}");
        assert!(!err.contains("ctrdb-tmp"), "{fault}: {err}");
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "{fault}: left a file"
        );
    }
}

/// A failed `--in-place` says in what state it left the database: unchanged,
/// with its backup removed (a full disk gets its space back), or — once the
/// new file was renamed into place — replaced, with the backup named.
#[test]
fn a_failed_in_place_swap_cleans_up_or_names_its_backup() {
    let (_, fx) = fixtures().into_iter().last().unwrap();
    for (fault, replaced) in [
        ("after-backup:error", false),
        ("before-fsync:error", false),
        ("before-rename:error", false),
        ("after-rename:error", true),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("meta.db");
        std::fs::copy(&fx, &db).unwrap();
        let before = std::fs::read(&db).unwrap();
        let backup = tmp.path().join("backup.db");
        let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
            .args(["dedup", db.to_str().unwrap(), "--in-place", "--backup"])
            .arg(&backup)
            .env("CTRDB_FAULT", fault)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{fault}: {err}");
        let now = std::fs::read(&db).unwrap();
        if replaced {
            assert_ne!(now, before, "{fault}: the swap should have happened");
            assert!(
                err.contains("was replaced") && err.contains("backup.db"),
                "{fault}: {err}"
            );
            assert_eq!(std::fs::read(&backup).unwrap(), before, "{fault}");
        } else {
            assert_eq!(now, before, "{fault}: the database changed");
            assert!(err.contains("unchanged"), "{fault}: {err}");
            assert!(!backup.exists(), "{fault}: the backup was left behind");
        }
        let stray: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("ctrdb-tmp"))
            .collect();
        assert!(stray.is_empty(), "{fault}: {stray:?}");
    }
}

/// `-q` prints the names only, one per line: the same names, in the same
/// order, as the records.
#[test]
fn quiet_listings_print_names_only() {
    for (_, db) in fixtures() {
        let o = ctrdb_path(&["images", "-q"], &db);
        assert_eq!(o.status.code(), Some(0));
        let names: Vec<String> = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        let o = ctrdb_path(&["images", "--format", "jsonl"], &db);
        let want: Vec<String> = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert!(!want.is_empty());
        assert_eq!(names, want, "{}", db.display());
        let o = ctrdb_path(&["refs", "-q"], &db);
        let mut refs: Vec<String> = String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        let mut want = want;
        refs.sort();
        want.sort();
        assert_eq!(refs, want, "{}", db.display());
        assert_eq!(
            ctrdb_path(&["images", "-q", "--format", "json"], &db)
                .status
                .code(),
            Some(2)
        );
    }
}

/// A `-n` the file does not have is an error naming the ones it has;
/// `CONTAINERD_NAMESPACE` picks the namespace of a listing as in `ctr`, never
/// the scope of `dedup`.
#[test]
fn namespaces_are_checked_and_taken_from_the_environment() {
    let (_, db) = fixtures().into_iter().last().unwrap();
    for cmd in ["images", "refs", "dedup"] {
        let o = ctrdb_path(&[cmd, "-n", "k8s.i0"], &db);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("no namespace 'k8s.i0'") && err.contains("k8s.io"),
            "{cmd}: {err}"
        );
    }
    let listed = |env: Option<&str>, args: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ctrdb"));
        c.args(args).arg(&db).env_remove("CONTAINERD_NAMESPACE");
        if let Some(ns) = env {
            c.env("CONTAINERD_NAMESPACE", ns);
        }
        c.output().unwrap()
    };
    let namespaces_of = |o: &std::process::Output| {
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["namespace"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        v.dedup();
        v
    };
    let all = listed(None, &["images", "--format", "jsonl"]);
    assert!(namespaces_of(&all).len() > 1);
    let one = listed(Some("k8s.io"), &["images", "--format", "jsonl"]);
    assert_eq!(namespaces_of(&one), ["k8s.io"]);
    let given = listed(
        Some("k8s.io"),
        &["images", "--format", "jsonl", "-n", "default"],
    );
    assert_eq!(namespaces_of(&given), ["default"]);
    let typo = listed(Some("k8s.i0"), &["images"]);
    assert_eq!(typo.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&typo.stderr).contains("CONTAINERD_NAMESPACE"));
    // dedup's scope is -n alone.
    let a = listed(Some("k8s.io"), &["dedup", "--format", "json"]);
    let b = listed(None, &["dedup", "--format", "json"]);
    let decisions = |o: &std::process::Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["decisions"].clone()
    };
    assert_eq!(decisions(&a), decisions(&b));
}

/// A path that is not UTF-8 is reported byte for byte: JSON paths as
/// `{"bytes": …}`, and the rollback command, run by a shell, restores the
/// backup onto the database.
#[test]
fn non_utf8_paths_are_kept_byte_for_byte() {
    use base64::Engine as _;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let (_, fx) = fixtures().into_iter().last().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp
        .path()
        .join(std::ffi::OsString::from_vec(b"node\xff 'q'".to_vec()));
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("meta.db");
    std::fs::copy(&fx, &db).unwrap();
    let original = std::fs::read(&db).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .args(["dedup", "--in-place", "--format", "json"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bytes = |v: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD
            .decode(
                v["bytes"]
                    .as_str()
                    .unwrap_or_else(|| panic!("not bytes: {v}")),
            )
            .unwrap()
    };
    assert_eq!(bytes(&v["input"]["path"]), db.as_os_str().as_bytes());
    assert_eq!(bytes(&v["output"]["path"]), db.as_os_str().as_bytes());
    let backup = bytes(&v["backup"]["path"]);
    assert!(std::path::Path::new(std::ffi::OsStr::from_bytes(&backup)).is_file());
    assert_ne!(std::fs::read(&db).unwrap(), original);
    let rollback = bytes(&v["rollback"]);
    let o = Command::new("sh")
        .arg("-c")
        .arg(std::ffi::OsStr::from_bytes(&rollback))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        original,
        "the rollback restores the input"
    );
}
