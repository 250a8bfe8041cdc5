//! Crash safety of the commands that write a database: a ctrdb killed at
//! any moment never damages the input and never leaves a partial file at the output.
//!
//! For each writing command in [`COMMANDS`] (each must be listed by `ctrdb help`), on a generated
//! containerd-shaped file (`compact`: ~48 MiB; `dedup`, which shares its write path:
//! ~16 MiB; 96 MiB for all with `CTRDB_HEAVY_TESTS=1`):
//! - every fault point (`CTRDB_FAULT=<point>:abort`; `write-pages`, reached every 64
//!   pages, at every other hit) and SIGKILLs at delays spread over a whole run
//!   (`compact` 100, `dedup` 30; 300 heavy) kill the process: ≥ 200 kills for
//!   `compact` alone;
//! - after each kill: the input is byte-identical (or, in place after the rename,
//!   the new file is complete and the backup holds the old bytes); the output path
//!   holds nothing or the complete, verified file (byte-equal to a reference run,
//!   which checks clean and dumps identical to the input); every leftover is named
//!   `.<OUT>.ctrdb-tmp.<pid>.<rand>`;
//! - every 20 kills (and at the end) a re-run removes all the stale temporary files
//!   and succeeds.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::rel_common::*;

/// How a command writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `--output OUT`: the input is never written.
    Output,
    /// `--in-place --backup BACKUP`: the input is replaced (after a backup).
    InPlace,
}

/// A writing command under test.
#[derive(Debug)]
struct Cmd {
    /// The subcommand; `ctrdb help` must list it.
    sub: &'static str,
    /// A flag `ctrdb <sub> --help` must show.
    needs_flag: &'static str,
    mode: Mode,
}

/// The writing commands. Add a row for a new writer.
const COMMANDS: &[Cmd] = &[
    Cmd {
        sub: "compact",
        needs_flag: "--output",
        mode: Mode::Output,
    },
    Cmd {
        sub: "dedup",
        needs_flag: "--output",
        mode: Mode::Output,
    },
    Cmd {
        sub: "dedup",
        needs_flag: "--in-place",
        mode: Mode::InPlace,
    },
];

/// Fault points every writer passes, in order (`write-pages` is added per hit).
const POINTS_BEFORE_PAGES: &[&str] = &["after-lock", "write-begin"];
const POINTS_AFTER_PAGES: &[&str] = &[
    "before-fsync",
    "after-fsync",
    "after-verify",
    "before-rename",
    "after-rename",
    "before-dir-fsync",
];
/// Points only in-place writers pass.
const POINTS_IN_PLACE: &[&str] = &["after-backup"];

const RERUN_EVERY: usize = 20;

struct Setup {
    dir: PathBuf,
    src: PathBuf,
    out: PathBuf,
    backup: PathBuf,
    orig: Vec<u8>,
    /// What a complete run produces at the target.
    reference: Vec<u8>,
    /// Duration of a complete run.
    full: Duration,
}

fn heavy() -> bool {
    std::env::var_os("CTRDB_HEAVY_TESTS").is_some_and(|v| v == "1")
}

impl Cmd {
    fn name(&self) -> String {
        match self.mode {
            Mode::Output => format!("{} --output", self.sub),
            Mode::InPlace => format!("{} --in-place", self.sub),
        }
    }

    fn offered(&self, cmds: &[String]) -> bool {
        cmds.iter().any(|c| c == self.sub) && has_flag(self.sub, self.needs_flag)
    }

    fn args(&self, s: &Setup) -> Vec<OsString> {
        match self.mode {
            Mode::Output => os_args([self.sub.into(), p(&s.src), "--output".into(), p(&s.out)]),
            Mode::InPlace => os_args([
                self.sub.into(),
                p(&s.src),
                "--in-place".into(),
                "--backup".into(),
                p(&s.backup),
            ]),
        }
    }

    /// The target's file name (what temporary files are named after).
    fn target_names(&self, s: &Setup) -> Vec<String> {
        let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
        match self.mode {
            Mode::Output => vec![name(&s.out)],
            Mode::InPlace => vec![name(&s.src), name(&s.backup)],
        }
    }
}

/// Puts the input back to its original bytes and removes outputs.
fn reset(s: &Setup) {
    if std::fs::read(&s.src).ok().as_deref() != Some(&s.orig[..]) {
        std::fs::write(&s.src, &s.orig).unwrap();
    }
    let _ = std::fs::remove_file(&s.out);
    let _ = std::fs::remove_file(&s.backup);
}

/// The state after a kill is one of the allowed ones; returns whether the target was
/// already replaced.
fn assert_state_after_kill(cmd: &Cmd, s: &Setup, what: &str, max_temps: usize) -> bool {
    let src_now = std::fs::read(&s.src).expect("input still readable");
    let done = match cmd.mode {
        Mode::Output => {
            assert!(src_now == s.orig, "{what}: the input changed");
            match std::fs::read(&s.out) {
                Ok(out) => {
                    assert!(
                        out == s.reference,
                        "{what}: a partial or wrong file at the output path ({} bytes)",
                        out.len()
                    );
                    true
                }
                Err(e) => {
                    assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{what}");
                    false
                }
            }
        }
        Mode::InPlace => {
            let backup = std::fs::read(&s.backup).ok();
            if src_now == s.orig {
                if let Some(b) = &backup {
                    assert!(*b == s.orig, "{what}: a partial backup ({} bytes)", b.len());
                }
                false
            } else {
                assert!(
                    src_now == s.reference,
                    "{what}: the DB is neither the old nor the complete new file"
                );
                assert!(
                    backup.as_deref() == Some(&s.orig[..]),
                    "{what}: DB replaced but the backup is not intact"
                );
                true
            }
        }
    };
    let names = cmd.target_names(s);
    let temps = temp_files(&s.dir);
    for t in &temps {
        assert!(
            names.iter().any(|n| is_our_temp(t, n)),
            "{what}: leftover {t} is not named .<target>.ctrdb-tmp.<pid>.<rand>"
        );
    }
    assert!(
        temps.len() <= max_temps,
        "{what}: {} temporary files, expected at most {max_temps}: {temps:?}",
        temps.len()
    );
    // nothing else appeared
    for e in std::fs::read_dir(&s.dir).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        let known = [&s.src, &s.out, &s.backup]
            .iter()
            .any(|p| p.file_name().unwrap() == e.file_name());
        assert!(
            known || n.contains(".ctrdb-tmp.") || n.starts_with("ref"),
            "{what}: unexpected file {n}"
        );
    }
    done
}

/// Re-runs the command to completion: it removes every stale temporary file, says
/// so, and puts the complete file in place.
fn rerun(cmd: &Cmd, s: &Setup, what: &str) {
    let stale = temp_files(&s.dir);
    reset(s);
    let r = run_bounded(&cmd.args(s), &[], &s.dir, Duration::from_secs(300));
    r.assert_no_panic(what);
    assert_eq!(r.code, Some(0), "{what}: re-run failed: {}", r.stderr);
    assert!(
        temp_files(&s.dir).is_empty(),
        "{what}: re-run left {:?}",
        temp_files(&s.dir)
    );
    for t in &stale {
        assert!(
            r.stderr.contains(t.as_str()),
            "{what}: re-run did not report removing {t}: {}",
            r.stderr
        );
    }
    let target = if cmd.mode == Mode::Output {
        &s.out
    } else {
        &s.src
    };
    assert!(
        std::fs::read(target).unwrap() == s.reference,
        "{what}: re-run result differs from the reference"
    );
    if cmd.mode == Mode::InPlace {
        assert!(
            std::fs::read(&s.backup).unwrap() == s.orig,
            "{what}: backup differs from the original"
        );
    }
    reset(s);
}

/// Builds the input and a reference result (a complete run must succeed).
fn setup(cmd: &Cmd, dir: &Path, mib: u64) -> Setup {
    let src = dir.join("meta.db");
    containerd_like(&src, mib);
    let orig = std::fs::read(&src).unwrap();
    let mut s = Setup {
        dir: dir.to_path_buf(),
        out: dir.join("out.db"),
        backup: dir.join("backup.db"),
        src,
        orig,
        reference: Vec::new(),
        full: Duration::ZERO,
    };
    let r = run_bounded(&cmd.args(&s), &[], dir, Duration::from_secs(300));
    r.assert_no_panic("reference run");
    assert_eq!(
        r.code,
        Some(0),
        "crash {}: the reference run fails: {}",
        cmd.name(),
        r.stderr
    );
    // a complete run's duration: the fastest of three (the first reads a cold file)
    s.full = r.elapsed;
    for _ in 0..2 {
        let _ = std::fs::remove_file(&s.out);
        if cmd.mode == Mode::InPlace {
            std::fs::write(&s.src, &s.orig).unwrap();
            let _ = std::fs::remove_file(&s.backup);
        }
        let r = run_bounded(&cmd.args(&s), &[], dir, Duration::from_secs(300));
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        s.full = s.full.min(r.elapsed);
    }
    let target = if cmd.mode == Mode::Output {
        &s.out
    } else {
        &s.src
    };
    s.reference = std::fs::read(target).unwrap();
    // The reference is valid: check clean, and for a pure copy the same dump.
    let ref_path = dir.join("ref.db");
    std::fs::write(&ref_path, &s.reference).unwrap();
    let c = run_bounded(
        &os_args(["check".into(), p(&ref_path)]),
        &[],
        dir,
        Duration::from_secs(300),
    );
    assert_eq!(c.code, Some(0), "reference check: {}", c.stdout);
    if cmd.sub == "compact" {
        let d1 = run_bounded(
            &os_args(["dump".into(), "--format".into(), "hex".into(), p(&s.src)]),
            &[],
            dir,
            Duration::from_secs(300),
        );
        let d2 = run_bounded(
            &os_args(["dump".into(), "--format".into(), "hex".into(), p(&ref_path)]),
            &[],
            dir,
            Duration::from_secs(300),
        );
        assert_eq!(d1.code, Some(0));
        assert!(
            d1.stdout == d2.stdout && !d1.stdout.is_empty(),
            "reference dump differs from the input's"
        );
    }
    std::fs::remove_file(&ref_path).unwrap();
    assert!(temp_files(dir).is_empty());
    reset(&s);
    s
}

#[derive(Debug, Default)]
struct Tally {
    fault_kills: usize,
    timed_kills: usize,
    timed_completed: usize,
    replaced_before_kill: usize,
    reruns: usize,
}

fn crash_one(cmd: &Cmd) -> Tally {
    let (_keep, dir) = scratch();
    // compact alone reaches 200+ kills; dedup shares the same write path, so its rows
    // run on a smaller file with fewer timed kills by default (full size when heavy).
    let light = !heavy() && cmd.sub != "compact";
    let mib = if heavy() {
        96
    } else if light {
        16
    } else {
        48
    };
    let s = setup(cmd, &dir, mib);
    let name = cmd.name();
    // the writer reaches write-pages each time it crosses a multiple of 64 pages
    let pages = (s.reference.len() / 4096) as u64;
    let mut t = Tally::default();
    let mut since_rerun = 0usize;

    // 1. every fault point, write-pages at each of its hits
    let mut faults: Vec<String> = POINTS_BEFORE_PAGES
        .iter()
        .map(|p| format!("{p}:abort"))
        .collect();
    let hits = pages / ctrdb::fault::WRITE_PAGES_EVERY;
    faults.extend(
        (1..=hits)
            .step_by(2)
            .map(|k| format!("write-pages:abort@{k}")),
    );
    faults.extend(POINTS_AFTER_PAGES.iter().map(|p| format!("{p}:abort")));
    if cmd.mode == Mode::InPlace {
        faults.extend(POINTS_IN_PLACE.iter().map(|p| format!("{p}:abort")));
    }
    for f in &faults {
        let what = format!("{name} with CTRDB_FAULT={f}");
        let r = run_bounded(
            &cmd.args(&s),
            &[("CTRDB_FAULT", f)],
            &s.dir,
            Duration::from_secs(300),
        );
        r.assert_no_panic(&what);
        assert_eq!(
            r.code, None,
            "{what}: the fault point was not reached (exit {:?}): {}",
            r.code, r.stderr
        );
        t.fault_kills += 1;
        since_rerun += 1;
        if assert_state_after_kill(cmd, &s, &what, since_rerun) {
            t.replaced_before_kill += 1;
        }
        let _ = std::fs::remove_file(&s.out);
        if since_rerun == RERUN_EVERY {
            rerun(cmd, &s, &what);
            t.reruns += 1;
            since_rerun = 0;
        }
        reset(&s);
    }

    // 2. SIGKILL at delays spread over a whole run (the last ones may find it done)
    // On a loaded machine a run can be faster than the first estimate: a run that
    // finishes before its kill shrinks the estimate and the same moment is retried.
    let n: u32 = if heavy() {
        300
    } else if light {
        30
    } else {
        100
    };
    let mut full = s.full;
    let mut i = 0;
    let mut attempts = 0;
    while i < n {
        attempts += 1;
        assert!(
            attempts <= 3 * n,
            "{name}: runs keep finishing before their kill"
        );
        let delay = full.mul_f64(f64::from(i) / f64::from(n));
        let what = format!(
            "{name} killed after {} ms (of {} ms)",
            delay.as_millis(),
            full.as_millis()
        );
        let r = run_bounded(&cmd.args(&s), &[], &s.dir, delay);
        r.assert_no_panic(&what);
        if r.timed_out {
            t.timed_kills += 1;
            since_rerun += 1;
            i += 1;
        } else {
            assert_eq!(r.code, Some(0), "{what}: {}", r.stderr);
            t.timed_completed += 1;
            full = full.min(r.elapsed.mul_f64(0.95));
        }
        if assert_state_after_kill(cmd, &s, &what, since_rerun) && r.timed_out {
            t.replaced_before_kill += 1;
        }
        let _ = std::fs::remove_file(&s.out);
        if since_rerun >= RERUN_EVERY {
            rerun(cmd, &s, &what);
            t.reruns += 1;
            since_rerun = 0;
        }
        reset(&s);
    }
    if !temp_files(&s.dir).is_empty() {
        rerun(cmd, &s, &format!("{name}: final re-run"));
        t.reruns += 1;
    }
    assert!(temp_files(&s.dir).is_empty());
    eprintln!(
        "crash: {name}: {} MiB input, full run {} ms: {} fault-point aborts + {} SIGKILLs survived \
         ({} runs finished before their kill; {} kills after the rename), {} re-runs cleaned up",
        s.orig.len() >> 20,
        s.full.as_millis(),
        t.fault_kills,
        t.timed_kills,
        t.timed_completed,
        t.replaced_before_kill,
        t.reruns
    );
    t
}

#[test]
fn killed_writers_never_damage_the_input_nor_leave_a_partial_output() {
    let cmds = ctrdb_commands();
    let mut total = 0;
    for cmd in COMMANDS {
        assert!(
            cmd.offered(&cmds),
            "crash {}: `ctrdb help` does not offer it",
            cmd.name()
        );
        let t = crash_one(cmd);
        total += t.fault_kills + t.timed_kills;
    }
    eprintln!("crash: {total} kills in all");
    assert!(total >= 200, "only {total} kills");
}

/// Stale-temp cleanup touches only our own pattern with a dead pid: other targets'
/// temporaries, a live process's temporary, look-alike names and symlinks stay.
#[test]
fn stale_cleanup_removes_only_dead_runs_of_the_same_target() {
    let (_keep, dir) = scratch();
    let src = dir.join("meta.db");
    containerd_like(&src, 1);
    // a pid that is surely dead: a child we started and reaped
    let mut c = std::process::Command::new("true").spawn().unwrap();
    c.wait().unwrap();
    let dead = c.id();
    let live = std::process::id();
    let stale = format!(".out.db.ctrdb-tmp.{dead}.AbCdEf12");
    let keep = [
        format!(".out.db.ctrdb-tmp.{live}.AbCdEf12"), // a live process
        format!(".other.db.ctrdb-tmp.{dead}.AbCdEf12"), // another target
        format!(".out.db.ctrdb-tmp.{dead}.AbCdEf12.keep"), // not our pattern
        format!(".out.db.ctrdb-tmp.{dead}x.AbCdEf12"), // not a pid
        "out.db.ctrdb-tmp.1.AbCdEf12".to_string(),    // no leading dot
    ];
    std::fs::write(dir.join(&stale), b"partial").unwrap();
    for k in &keep {
        std::fs::write(dir.join(k), b"keep").unwrap();
    }
    let victim = dir.join("victim");
    std::fs::write(&victim, b"victim").unwrap();
    let link = format!(".out.db.ctrdb-tmp.{dead}.LiNk0001");
    std::os::unix::fs::symlink(&victim, dir.join(&link)).unwrap();
    let r = run_bounded(
        &os_args([
            "compact".into(),
            p(&src),
            "-o".into(),
            p(&dir.join("out.db")),
        ]),
        &[],
        &dir,
        Duration::from_secs(120),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains(&stale),
        "removal not reported: {}",
        r.stderr
    );
    assert!(
        !dir.join(&stale).exists(),
        "stale temporary file not removed"
    );
    for k in &keep {
        assert!(dir.join(k).exists(), "{k} was removed");
    }
    assert!(
        dir.join(&link).symlink_metadata().is_ok() && std::fs::read(&victim).unwrap() == b"victim",
        "symlink followed or removed"
    );
}
