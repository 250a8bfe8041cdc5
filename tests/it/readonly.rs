//! The read-only promise: every command except an in-place repair leaves
//! the input's bytes, size, mtime and inode unchanged and never takes an exclusive
//! lock on it.
//!
//! Each command `ctrdb help` lists (compact and dedup with `--output`, dedup also as
//! a dry run) runs with `CTRDB_FAULT=after-lock:sleep=500`; while it sleeps holding
//! its lock, this process proves that a shared non-blocking lock succeeds (ctrdb
//! holds at most a shared lock) and an exclusive one fails (it does hold the shared
//! lock). With `--no-lock` it holds none: the exclusive try-lock succeeds.

use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::rel_common::*;

/// Whether `pid` holds a lock listed in /proc/locks.
fn holds_flock(pid: u32) -> bool {
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(&pid.to_string()))
}

#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ino: u64,
    dev: u64,
    mode: u32,
}

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).unwrap();
    Stamp {
        size: m.len(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ino: m.ino(),
        dev: m.dev(),
        mode: m.mode(),
    }
}

/// Every read-only invocation: (label, args without the DB).
fn invocations(out_dir: &Path) -> Vec<(String, Vec<OsString>)> {
    let out = p(&out_dir.join("out.db"));
    let mut v = Vec::new();
    for c in ctrdb_commands() {
        match c.as_str() {
            "compact" => v.push((
                "compact --output".into(),
                os_args(["compact".into(), "--output".into(), out.clone()]),
            )),
            "dedup" => {
                v.push(("dedup (dry run)".into(), os_args(["dedup"])));
                v.push((
                    "dedup --output".into(),
                    os_args(["dedup".into(), "--output".into(), out.clone()]),
                ));
            }
            _ => v.push((c.clone(), os_args([c.as_str()]))),
        }
    }
    v
}

fn run_holding(label: &str, args: &[OsString], db: &Path, no_lock: bool) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctrdb"));
    c.args(args);
    if no_lock {
        c.arg("--no-lock");
    }
    let mut child = c
        .arg(db)
        .env("CTRDB_FAULT", "after-lock:sleep=500")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ctrdb");
    let t0 = Instant::now();
    if no_lock {
        std::thread::sleep(Duration::from_millis(200));
    } else {
        while !holds_flock(child.id()) {
            assert!(
                child.try_wait().unwrap().is_none(),
                "{label}: exited before taking its lock"
            );
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "{label}: never took a lock"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "{label}: not sleeping after its lock any more"
    );
    let f = File::open(db).unwrap();
    match f.try_lock_shared() {
        Ok(()) => f.unlock().unwrap(),
        Err(e) => {
            panic!("{label}: ctrdb holds an exclusive lock on its input (shared try-lock: {e:?})")
        }
    }
    let f2 = File::open(db).unwrap();
    match f2.try_lock() {
        Err(TryLockError::WouldBlock) => assert!(!no_lock, "{label} --no-lock: ctrdb holds a lock"),
        Ok(()) => {
            f2.unlock().unwrap();
            assert!(no_lock, "{label}: ctrdb holds no lock while it reads");
        }
        Err(TryLockError::Error(e)) => panic!("{label}: try_lock: {e}"),
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{label}: exit {:?}: {err}",
        o.status.code()
    );
}

#[test]
fn no_command_but_in_place_changes_or_exclusively_locks_the_input() {
    let (_d, dir) = scratch();
    let (_o, out_dir) = scratch();
    let db = dir.join("meta.db");
    containerd_like(&db, 2);
    let fx = super::common::fixtures();
    // a generated file and the real containerd fixtures (copied: their mtime is ours to watch)
    let mut dbs = vec![db];
    for (name, path) in &fx {
        let copy = dir.join(format!("{name}.db"));
        std::fs::copy(path, &copy).unwrap();
        dbs.push(copy);
    }
    // an old mtime, so that a rewrite within the same second would still show
    for db in &dbs {
        File::options()
            .write(true)
            .open(db)
            .unwrap()
            .set_modified(std::time::UNIX_EPOCH + Duration::from_secs(1_600_000_000))
            .unwrap();
    }
    let mut runs = 0;
    for db in &dbs {
        let bytes = std::fs::read(db).unwrap();
        let before = stamp(db);
        for (label, mut args) in invocations(&out_dir) {
            if label == "diff" {
                // `diff OLD NEW`: the database as both.
                args.push(db.as_os_str().to_owned());
            }
            for no_lock in [false, true] {
                let _ = std::fs::remove_file(out_dir.join("out.db"));
                run_holding(&label, &args, db, no_lock);
                runs += 1;
                assert_eq!(
                    stamp(db),
                    before,
                    "{label} (no_lock {no_lock}) changed the metadata of {}",
                    db.display()
                );
                assert!(
                    std::fs::read(db).unwrap() == bytes,
                    "{label} changed the bytes of {}",
                    db.display()
                );
            }
        }
        assert!(temp_files(&dir).is_empty() && temp_files(&out_dir).is_empty());
    }
    eprintln!(
        "readonly: {runs} runs on {} files: input unchanged, at most a shared lock",
        dbs.len()
    );
}
