//! `ctrdb compact` end to end: the copy holds the same content and checks clean, the
//! source is never touched, refusals and failures exit 2 and leave nothing behind at
//! OUT (no half-written file, no temporary file), and a locked source exits 3.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::common::{skip_env, skip_or_fail, test_name};
use super::writer_common::*;
use ctrdb::bolt::writer::FreelistMode;

const SHAPE: Shape = Shape {
    max_depth: 4,
    max_entries: 30,
    bucket_percent: 30,
    big_key_percent: 1,
    big_value_percent: 10,
    huge_value_percent: 1,
};

/// A source file in a fresh directory, with some random content.
fn source(seed: u64, fl: FreelistMode) -> (tempfile::TempDir, PathBuf, Tree) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(seed);
    let root = random_root(&mut rng, &SHAPE, 4);
    let src = dir.path().join("meta.db");
    write_tree_file(&src, &root, options(4096, fl));
    (dir, src, root)
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ctrdb-tmp"))
        .collect()
}

#[test]
fn compacts_and_keeps_content_mode_and_source() {
    for fl in [FreelistMode::Page, FreelistMode::None] {
        let (dir, src, root) = source(1, fl);
        std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let before = std::fs::read(&src).expect("read");
        let out = dir.path().join("out.db");
        let o = ctrdb()
            .arg("compact")
            .arg(&src)
            .arg("--output")
            .arg(&out)
            .output()
            .expect("run");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert_eq!(
            o.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            stdout.contains("reclaimed") && stdout.contains("size after"),
            "{stdout}"
        );
        assert_eq!(
            std::fs::read(&src).expect("read"),
            before,
            "source modified"
        );
        let data = std::fs::read(&out).expect("read out");
        assert!(read_tree(&data).0 == root, "content differs");
        let mode = std::fs::metadata(&out).expect("stat").permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640, "mode not kept");
        let c = ctrdb().arg("check").arg(&out).output().expect("run");
        assert_eq!(
            c.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&c.stdout)
        );
        assert!(leftovers(dir.path()).is_empty());
    }
}

#[test]
fn json_report() {
    let (dir, src, root) = source(2, FreelistMode::None);
    let out = dir.path().join("out.db");
    let o = ctrdb()
        .args(["compact", "--format", "json", "--hash", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let data = std::fs::read(&out).expect("read");
    let src_len = std::fs::metadata(&src).expect("stat").len();
    assert_eq!(v["schemaVersion"], 3);
    assert_eq!(v["tool"]["name"], "ctrdb");
    assert_eq!(v["command"], "compact");
    assert_eq!(v["input"]["path"], src.display().to_string());
    assert_eq!(
        v["input"]["sha256"],
        super::common::sha256_hex(&std::fs::read(&src).expect("read"))
    );
    assert_eq!(v["output"]["path"], out.display().to_string());
    assert_eq!(v["output"]["size"], data.len() as u64);
    assert_eq!(v["output"]["sha256"], super::common::sha256_hex(&data));
    assert_eq!(v["sizeBefore"], src_len);
    assert_eq!(v["sizeAfter"], data.len() as u64);
    assert_eq!(v["reclaimed"], src_len as i64 - data.len() as i64);
    assert_eq!(v["pageSize"], 4096);
    assert_eq!(v["freelistMode"], "none");
    let (b, k) = root.counts();
    assert_eq!(
        (v["buckets"].as_u64(), v["keys"].as_u64()),
        (Some(b), Some(k))
    );
    assert_eq!(v["verified"], true);
}

#[test]
fn refuses_existing_output_without_force() {
    let (dir, src, root) = source(3, FreelistMode::Page);
    let out = dir.path().join("out.db");
    std::fs::write(&out, b"precious").expect("write");
    let o = ctrdb()
        .arg("compact")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--force"));
    assert_eq!(std::fs::read(&out).expect("read"), b"precious");
    assert!(leftovers(dir.path()).is_empty());
    let o = ctrdb()
        .arg("compact")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .arg("--force")
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(read_tree(&std::fs::read(&out).expect("read")).0 == root);
}

#[test]
fn refuses_output_that_is_the_input() {
    let (dir, src, _) = source(4, FreelistMode::Page);
    let before = std::fs::read(&src).expect("read");
    let hard = dir.path().join("hardlink.db");
    std::fs::hard_link(&src, &hard).expect("link");
    let soft = dir.path().join("symlink.db");
    std::os::unix::fs::symlink(&src, &soft).expect("symlink");
    for out in [&src, &hard, &soft] {
        for force in [false, true] {
            let mut c = ctrdb();
            c.arg("compact").arg(&src).arg("-o").arg(out);
            if force {
                c.arg("--force");
            }
            let o = c.output().expect("run");
            assert_eq!(
                o.status.code(),
                Some(2),
                "{}: {}",
                out.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(String::from_utf8_lossy(&o.stderr).contains("input database itself"));
            assert_eq!(std::fs::read(&src).expect("read"), before);
        }
    }
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn unwritable_output_directory_exits_2_and_leaves_nothing() {
    let (dir, src, _) = source(5, FreelistMode::Page);
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).expect("mkdir");
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    if std::fs::write(ro.join("probe"), b"").is_ok() {
        skip_env(
            "unwritable_output_directory_exits_2_and_leaves_nothing (read-only directory part)",
            "this user (root) can write into a 0555 directory",
        );
    } else {
        let out = ro.join("out.db");
        let o = ctrdb()
            .arg("compact")
            .arg(&src)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2));
        assert!(!out.exists());
        assert!(leftovers(&ro).is_empty());
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let o = ctrdb()
        .arg("compact")
        .arg(&src)
        .arg("-o")
        .arg(dir.path().join("missing/out.db"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn write_failure_midway_removes_the_temporary_file() {
    // A file-size limit makes a write fail with EFBIG after a few blocks (SIGXFSZ is
    // ignored so the process sees the error), the way a full disk would.
    let (dir, src, _) = source(6, FreelistMode::Page);
    assert!(
        std::fs::metadata(&src).expect("stat").len() > 256 * 1024,
        "source too small for the test"
    );
    let out = dir.path().join("out.db");
    let script = r#"trap '' XFSZ; ulimit -f 200; exec "$0" compact "$1" -o "$2""#;
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_ctrdb"))
        .arg(&src)
        .arg(&out)
        .output()
        .expect("run sh");
    assert_eq!(
        o.status.code(),
        Some(2),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists(), "a half-written output was left");
    assert!(
        leftovers(dir.path()).is_empty(),
        "temporary file left: {:?}",
        leftovers(dir.path())
    );
}

#[test]
fn locked_source_exits_3() {
    let (dir, src, _) = source(7, FreelistMode::Page);
    let holder = std::fs::File::open(&src).expect("open");
    holder.lock().expect("lock");
    let out = dir.path().join("out.db");
    let o = ctrdb()
        .arg("compact")
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!out.exists());
    drop(holder);
}

#[test]
fn go_written_fixtures_compact_to_the_same_content() {
    let dbs = fixture_dbs();
    if dbs.is_empty() {
        skip_or_fail(&test_name(), "no fixtures/*/meta*.db in this checkout");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, db) in dbs.iter().enumerate() {
        let out = dir.path().join(format!("{i}.db"));
        let o = ctrdb()
            .arg("compact")
            .arg(db)
            .arg("-o")
            .arg(&out)
            .output()
            .expect("run");
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}",
            db.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        let c = ctrdb().arg("check").arg(&out).output().expect("run");
        assert_eq!(
            c.status.code(),
            Some(0),
            "{}: {}",
            db.display(),
            String::from_utf8_lossy(&c.stdout)
        );
        let dump = |p: &Path| {
            ctrdb()
                .args(["dump", "--format", "hex"])
                .arg(p)
                .output()
                .expect("dump")
                .stdout
        };
        let (a, b) = (dump(db), dump(&out));
        assert!(!a.is_empty());
        assert!(a == b, "{}: dump of the copy differs", db.display());
        assert!(
            std::fs::metadata(&out).expect("stat").len()
                <= std::fs::metadata(db).expect("stat").len()
        );
        eprintln!("{}: ok", db.display());
    }
}
