//! Bad environments: a full disk, a read-only output directory, an output
//! on another file system, and inputs that are a directory, a symlink, a FIFO,
//! missing or unreadable. Invariant: each gives a clear error naming the path and
//! the cause, exits 2 (a symlink to a good file simply works), never hangs, and
//! leaves nothing behind — no output, no temporary file.
//!
//! Mounts (tmpfs, as root) are undone by a Drop guard; where mounting is not
//! permitted the test falls back to an injected error (`CTRDB_FAULT=<point>:error`)
//! and prints why, and the other-file-system test skips (`common::skip_env`: an
//! environment limit, not an oracle, so also under `CTRDB_REQUIRE_ORACLES=1`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::common::skip_env;
use super::rel_common::*;

const LIMIT: Duration = Duration::from_secs(20);

/// A tmpfs mounted at a fresh directory; unmounted (lazily if busy) on drop.
struct TmpfsMount {
    dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl TmpfsMount {
    /// Mounts a tmpfs of `size` (mount(8) syntax, e.g. `1m`), or says why not.
    fn new(size: &str) -> Result<TmpfsMount, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("mnt");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let o = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "ctrdb-test",
            ])
            .arg(&dir)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ));
        }
        Ok(TmpfsMount {
            dir,
            _parent: parent,
        })
    }

    /// Remounts it read-only.
    fn remount_ro(&self) -> Result<(), String> {
        let o = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .output()
            .map_err(|e| e.to_string())?;
        if o.status.success() {
            Ok(())
        } else {
            Err(format!(
                "mount -o remount,ro failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Every file under `dir` (recursively), relative names.
fn files_under(dir: &Path) -> Vec<String> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path.clone());
            }
            v.push(path.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    v.sort();
    v
}

fn compact_args(src: &Path, out: &Path) -> Vec<OsString> {
    os_args(["compact".into(), p(src), "--output".into(), p(out)])
}

/// Asserts a failed write: exit 2, the message names `names` and `cause`, and `dir`
/// holds exactly `before` afterwards.
fn assert_failed_cleanly(
    r: &Run,
    what: &str,
    names: &[&str],
    cause: &str,
    dir: &Path,
    before: &[String],
) {
    r.assert_no_panic(what);
    assert!(!r.timed_out, "{what}: hung");
    assert_eq!(r.code, Some(2), "{what}: {}", r.stderr);
    for n in names {
        assert!(
            r.stderr.contains(n),
            "{what}: the error does not name {n}: {}",
            r.stderr
        );
    }
    assert!(
        r.stderr.contains(cause),
        "{what}: the error does not say '{cause}': {}",
        r.stderr
    );
    assert_eq!(files_under(dir), before, "{what}: files left behind");
    eprintln!("bad_env: {what}: exit 2: {}", r.stderr.trim());
}

#[test]
fn full_output_filesystem_fails_cleanly() {
    let (_d, dir) = scratch();
    let src = dir.join("meta.db");
    containerd_like(&src, 4);
    let orig = std::fs::read(&src).unwrap();
    match TmpfsMount::new("1m") {
        Ok(m) => {
            let out = m.dir.join("out.db");
            let r = run_bounded(&compact_args(&src, &out), &[], &dir, LIMIT);
            assert_failed_cleanly(
                &r,
                "compact onto a full 1 MiB tmpfs",
                &["out.db"],
                "No space left on device",
                &m.dir,
                &[],
            );
            // after freeing space the same command works (a 16 MiB tmpfs)
            drop(m);
            let big = TmpfsMount::new("16m").expect("second tmpfs");
            let out = big.dir.join("out.db");
            let r = run_bounded(&compact_args(&src, &out), &[], &dir, LIMIT);
            assert_eq!(r.code, Some(0), "{}", r.stderr);
        }
        Err(why) => {
            eprintln!(
                "bad_env: cannot mount a small tmpfs ({why}); injecting a write error instead"
            );
            let out = dir.join("out.db");
            let before = files_under(&dir);
            let r = run_bounded(
                &compact_args(&src, &out),
                &[("CTRDB_FAULT", "write-pages:error@3")],
                &dir,
                LIMIT,
            );
            assert_failed_cleanly(
                &r,
                "compact with an injected write error",
                &["out.db"],
                "injected fault",
                &dir,
                &before,
            );
        }
    }
    assert!(std::fs::read(&src).unwrap() == orig, "input changed");
    // the injected error at each later phase cleans up as well
    let out = dir.join("out.db");
    for point in [
        "write-begin",
        "write-pages",
        "before-fsync",
        "after-fsync",
        "after-verify",
        "before-rename",
    ] {
        let before = files_under(&dir);
        let r = run_bounded(
            &compact_args(&src, &out),
            &[("CTRDB_FAULT", &format!("{point}:error"))],
            &dir,
            LIMIT,
        );
        assert_failed_cleanly(
            &r,
            &format!("compact, error injected at {point}"),
            &["out.db"],
            "injected fault",
            &dir,
            &before,
        );
    }
}

#[test]
fn read_only_output_directory_fails_cleanly() {
    let (_d, dir) = scratch();
    let src = dir.join("meta.db");
    containerd_like(&src, 1);
    let m = TmpfsMount::new("8m").and_then(|m| m.remount_ro().map(|()| m));
    match m {
        Ok(m) => {
            let out = m.dir.join("out.db");
            let r = run_bounded(&compact_args(&src, &out), &[], &dir, LIMIT);
            assert_failed_cleanly(
                &r,
                "compact into a read-only tmpfs",
                &[&m.dir.display().to_string()],
                "Read-only file system",
                &m.dir,
                &[],
            );
        }
        Err(why) => {
            eprintln!("bad_env: cannot mount a read-only tmpfs ({why}); injecting an error at write-begin instead");
            let out = dir.join("out.db");
            let before = files_under(&dir);
            let r = run_bounded(
                &compact_args(&src, &out),
                &[("CTRDB_FAULT", "write-begin:error")],
                &dir,
                LIMIT,
            );
            assert_failed_cleanly(
                &r,
                "compact with an injected create error",
                &["out.db"],
                "injected fault",
                &dir,
                &before,
            );
        }
    }
}

#[test]
fn output_on_another_filesystem_works() {
    let (_d, dir) = scratch();
    let src = dir.join("meta.db");
    containerd_like(&src, 2);
    let m = match TmpfsMount::new("32m") {
        Ok(m) => m,
        Err(why) => {
            skip_env(
                "output_on_another_filesystem_works",
                &format!("no second file system: {why}"),
            );
            return;
        }
    };
    use std::os::unix::fs::MetadataExt;
    assert_ne!(
        std::fs::metadata(&src).unwrap().dev(),
        std::fs::metadata(&m.dir).unwrap().dev()
    );
    let out = m.dir.join("out.db");
    let r = run_bounded(&compact_args(&src, &out), &[], &dir, LIMIT);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let local = dir.join("local.db");
    let r = run_bounded(&compact_args(&src, &local), &[], &dir, LIMIT);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        std::fs::read(&out).unwrap() == std::fs::read(&local).unwrap(),
        "cross-filesystem output differs"
    );
    assert_eq!(files_under(&m.dir), ["out.db"]);
    let r = run_bounded(&os_args(["check".into(), p(&out)]), &[], &dir, LIMIT);
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    // `dedup --in-place --backup <other fs>`: the backup crosses file systems (it is
    // copied, never renamed there) and must be complete; the swap stays local.
    if has_flag("dedup", "--in-place") {
        let orig = std::fs::read(&src).unwrap();
        let backup = m.dir.join("backup.db");
        let args = os_args([
            "dedup".into(),
            p(&src),
            "--in-place".into(),
            "--backup".into(),
            p(&backup),
        ]);
        let r = run_bounded(&args, &[], &dir, LIMIT);
        assert_eq!(
            r.code,
            Some(0),
            "dedup --in-place with a backup on another file system: {}",
            r.stderr
        );
        assert!(
            std::fs::read(&backup).unwrap() == orig,
            "the cross-filesystem backup differs from the original"
        );
        assert!(
            std::fs::read(&src).unwrap() != orig,
            "the database was not rewritten"
        );
        assert_eq!(files_under(&m.dir), ["backup.db", "out.db"]);
        let r = run_bounded(&os_args(["check".into(), p(&src)]), &[], &dir, LIMIT);
        assert_eq!(r.code, Some(0), "{}", r.stdout);
    }
}

/// The commands that read a DB, each as `(name, args before DB, args after DB)`,
/// plus `compact --output` into `out_dir`. Taken from `ctrdb help`. `diff`
/// takes the DB as both its files ([`with_db`]).
fn read_commands(out_dir: &Path) -> Vec<(String, Vec<OsString>)> {
    let mut v = Vec::new();
    for c in ctrdb_commands() {
        match c.as_str() {
            "compact" => v.push((
                c.clone(),
                os_args([
                    "compact".into(),
                    "--output".into(),
                    p(&out_dir.join("out.db")),
                ]),
            )),
            "dedup" => v.push((
                c.clone(),
                os_args([
                    "dedup".into(),
                    "--output".into(),
                    p(&out_dir.join("out.db")),
                ]),
            )),
            _ => v.push((c.clone(), os_args([c.as_str()]))),
        }
    }
    v
}

/// `args` with the DB appended (twice for `diff OLD NEW`).
fn with_db(name: &str, mut args: Vec<OsString>, db: &Path) -> Vec<OsString> {
    if name == "diff" {
        args.push(p(db));
    }
    args.push(p(db));
    args
}

/// Runs every command on `db` and asserts the error names the path and `cause`.
fn every_command_fails(db: &Path, cause: &str, env: &[(&str, &str)], what: &str) {
    let (_o, out_dir) = scratch();
    let (_s, run_dir) = scratch();
    let watch = db.parent().unwrap();
    let before = files_under(watch);
    for (name, args) in read_commands(&out_dir) {
        let args = with_db(&name, args, db);
        let r = run_bounded(&args, env, &run_dir, LIMIT);
        let w = format!("ctrdb {name} on {what}");
        assert_failed_cleanly(&r, &w, &[&db.display().to_string()], cause, &out_dir, &[]);
        assert_eq!(
            files_under(watch),
            before,
            "{w}: files appeared beside the input"
        );
    }
}

#[test]
fn input_is_a_directory() {
    let (_d, dir) = scratch();
    let db = dir.join("meta.db");
    std::fs::create_dir(&db).unwrap();
    every_command_fails(&db, "is a directory", &[], "a directory");
}

#[test]
fn input_is_missing() {
    let (_d, dir) = scratch();
    every_command_fails(
        &dir.join("meta.db"),
        "No such file or directory",
        &[],
        "a missing path",
    );
}

#[test]
fn input_is_a_fifo_and_nothing_hangs() {
    let (_d, dir) = scratch();
    let db = dir.join("meta.db");
    let st = Command::new("mkfifo").arg(&db).status().expect("mkfifo");
    assert!(st.success());
    // run_bounded kills a hung child after LIMIT; the assertion then fails on timed_out
    every_command_fails(&db, "not a regular file", &[], "a FIFO");
}

#[test]
fn input_is_unreadable() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, dir) = scratch();
    let db = dir.join("meta.db");
    containerd_like(&db, 1);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&db).is_ok() {
        eprintln!("bad_env: running as root, mode 000 does not stop reads; injecting a read error after the lock instead");
        every_command_fails(
            &db,
            "injected fault at after-lock",
            &[("CTRDB_FAULT", "after-lock:error")],
            "an unreadable file",
        );
    } else {
        every_command_fails(&db, "Permission denied", &[], "an unreadable file");
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
}

/// A symlinked input is read through the link (decision, docs/reliability.md):
/// reading is the same as reading the target; compact writes its own output.
/// In place (dedup --in-place, when it lands) must not replace the link by a file:
/// it must refuse or write the link's target; this test then checks the link survives.
#[test]
fn input_is_a_symlink() {
    let (_d, dir) = scratch();
    let real = dir.join("real.db");
    containerd_like(&real, 1);
    let orig = std::fs::read(&real).unwrap();
    let link = dir.join("meta.db");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    for (name, args) in read_commands(&dir) {
        let args = with_db(&name, args, &link);
        let r = run_bounded(&args, &[], &dir, LIMIT);
        r.assert_no_panic(&name);
        assert_eq!(
            r.code,
            Some(0),
            "ctrdb {name} through a symlink: {}",
            r.stderr
        );
        let _ = std::fs::remove_file(dir.join("out.db"));
    }
    assert!(std::fs::read(&real).unwrap() == orig);
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    if ctrdb_commands().iter().any(|c| c == "dedup") && has_flag("dedup", "--in-place") {
        let r = run_bounded(
            &os_args([
                "dedup".into(),
                p(&link),
                "--in-place".into(),
                "--backup".into(),
                p(&dir.join("b.db")),
            ]),
            &[],
            &dir,
            LIMIT,
        );
        r.assert_no_panic("dedup --in-place on a symlink");
        assert!(matches!(r.code, Some(0..=2)), "{}", r.stderr);
        assert!(
            link.symlink_metadata().unwrap().file_type().is_symlink(),
            "dedup --in-place replaced the symlink by a regular file"
        );
        assert!(temp_files(&dir).is_empty(), "{:?}", temp_files(&dir));
    }
}
