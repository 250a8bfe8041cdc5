//! Locking against a REAL running containerd: ctrdb never waits for containerd's
//! lock and never makes containerd wait for longer than its own run.
//!
//! - Every ctrdb command (taken from `ctrdb help`, so the test grows with the CLI)
//!   run on the live `meta.db` exits within 1 s with code 3 and says the file is in
//!   use by `containerd (pid N ...)`; containerd keeps serving during and after.
//! - A ctrdb that holds its shared lock (`CTRDB_FAULT=after-lock:sleep=3000`) makes
//!   a containerd started meanwhile wait (not serving after ~1 s), and containerd
//!   serves within a few seconds after ctrdb exits.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::common::*;
use super::live::*;

use super::rel_common::ctrdb_commands;

/// Arguments for `ctrdb <cmd> ... DB`: the required options that `ctrdb <cmd>
/// --help`'s usage line shows (outside `[...]`) get a value; an output path goes
/// into `scratch`.
fn command_args(cmd: &str, db: &Path, scratch: &Path) -> Vec<String> {
    let o = ctrdb(&[cmd, "--help"]);
    let help = String::from_utf8_lossy(&o.stdout).into_owned();
    let usage = help
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or("")
        .to_string();
    // drop optional groups: "[OPTIONS]", "[DB]", nested brackets included
    let mut required = String::new();
    let mut depth = 0;
    for ch in usage.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => required.push(ch),
            _ => {}
        }
    }
    let mut args = vec![cmd.to_string()];
    let toks: Vec<&str> = required.split_whitespace().collect();
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        if let Some(flag) = t.strip_prefix("--") {
            let takes_value = toks.get(i + 1).is_some_and(|n| n.starts_with('<'));
            args.push(t.to_string());
            if takes_value {
                match flag {
                    "output" | "out" => args.push(scratch.join(format!("{cmd}.out.db")).display().to_string()),
                    _ => panic!(
                        "`ctrdb {cmd}` requires --{flag} <...>: teach live_lock.rs::command_args a value for it \
                         (usage: {usage})"
                    ),
                }
                i += 1;
            }
        } else if t == "<OLD>" {
            // `diff OLD NEW`: the database as both.
            args.push(db.display().to_string());
        } else if t.starts_with('<') && t != "<DB>" && t != "<NEW>" {
            panic!("`ctrdb {cmd}` requires a positional {t}: teach live_lock.rs::command_args (usage: {usage})");
        }
        i += 1;
    }
    args.push(db.display().to_string());
    args
}

/// Runs ctrdb with `args`, killing it (our own child) after `limit`; returns
/// (exit code, stderr, elapsed). stdout goes to a file so a large dump cannot
/// block on a full pipe.
fn run_ctrdb_bounded(
    args: &[String],
    scratch: &Path,
    limit: Duration,
) -> (Option<i32>, String, Duration) {
    let out = File::create(scratch.join("stdout")).unwrap();
    let err_path = scratch.join("stderr");
    let err = File::create(&err_path).unwrap();
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn ctrdb");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = t.elapsed();
    (
        status.and_then(|s| s.code()),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
        elapsed,
    )
}

fn assert_serves_images(lc: &LiveContainerd, when: &str) {
    let o = lc.ctr(&["-n", "default", "images", "ls", "-q"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("docker.io/library/tiny:1.0"),
        "containerd {} stopped serving {when}: {} {}\n--- log tail:\n{}",
        lc.version(),
        out,
        String::from_utf8_lossy(&o.stderr),
        lc.log_tail(20)
    );
}

#[test]
fn live_every_ctrdb_command_on_a_running_containerd_exits_3_at_once() {
    let cmds = ctrdb_commands();
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let Some(lc) = LiveContainerd::start(v, &fx, &fx.join("meta.db")) else {
            continue;
        };
        let pid = lc.pid().expect("containerd pid");
        let db = lc.db_path();
        let scratch = tempfile::tempdir().unwrap();
        for cmd in &cmds {
            let args = command_args(cmd, &db, scratch.path());
            let (code, err, took) =
                run_ctrdb_bounded(&args, scratch.path(), Duration::from_secs(5));
            eprintln!(
                "live: {v}: ctrdb {} -> {code:?} in {} ms",
                args.join(" "),
                took.as_millis()
            );
            assert!(
                took < Duration::from_secs(1),
                "{v}: ctrdb {args:?} took {took:?} (must not wait for the lock)"
            );
            assert_eq!(
                code,
                Some(3),
                "{v}: ctrdb {args:?} on a live DB: stderr: {err}"
            );
            assert!(
                err.contains("in use"),
                "{v}: ctrdb {args:?}: no 'in use' in: {err}"
            );
            assert!(
                err.contains(&format!("containerd (pid {pid}")),
                "{v}: ctrdb {args:?}: lock holder containerd (pid {pid}) not named in: {err}"
            );
            for f in std::fs::read_dir(scratch.path()).unwrap().flatten() {
                let n = f.file_name().to_string_lossy().into_owned();
                if n.ends_with(".out.db") {
                    eprintln!(
                        "live: note: ctrdb {cmd} left {n} behind on a refused (locked) input"
                    );
                }
            }
            assert_serves_images(&lc, &format!("while ctrdb {cmd} ran"));
        }
        assert_serves_images(&lc, "after every ctrdb command");
        assert_eq!(lc.pid(), Some(pid), "{v}: containerd restarted or died");
    }
}

/// Whether `pid` holds a lock listed in /proc/locks.
fn holds_flock(pid: u32) -> bool {
    std::fs::read_to_string("/proc/locks")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(&pid.to_string()))
}

#[test]
fn live_ctrdb_delays_containerd_start_only_for_its_own_run() {
    const HOLD_MS: u64 = 3000;
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let Some(mut lc) = LiveContainerd::prepare(v, &fx, &fx.join("meta.db")) else {
            continue;
        };
        let db = lc.db_path();

        // 1. ctrdb check takes its shared lock and holds it for HOLD_MS
        let t0 = Instant::now();
        let mut ctrdb = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
            .arg("check")
            .arg(&db)
            .env("CTRDB_FAULT", format!("after-lock:sleep={HOLD_MS}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ctrdb");
        while !holds_flock(ctrdb.id()) {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "{v}: ctrdb never took its lock"
            );
            assert!(
                ctrdb.try_wait().unwrap().is_none(),
                "{v}: ctrdb exited before holding the lock"
            );
            std::thread::sleep(Duration::from_millis(10));
        }

        // 2. containerd is started on the same DB meanwhile
        let t_launch = Instant::now();
        let mut run = lc.spawn_run();
        std::thread::sleep(Duration::from_millis(1000).saturating_sub(t_launch.elapsed()));
        let serving_early = lc.serving();
        let ctrd_pid = lc.pid();
        assert!(
            ctrdb.try_wait().unwrap().is_none(),
            "{v}: ctrdb already exited (before {HOLD_MS} ms)"
        );
        assert!(
            !serving_early,
            "{v}: containerd served 1 s after start although ctrdb held a shared lock on meta.db"
        );
        assert!(
            ctrd_pid.is_some() && run.try_wait().unwrap().is_none(),
            "{v}: containerd is not waiting, it is gone:\n{}",
            lc.log_tail(20)
        );

        // 3. ctrdb finishes its run normally
        let o = ctrdb.wait_with_output().unwrap();
        let t_ctrdb_exit = Instant::now();
        let held = t_ctrdb_exit - t0;
        assert_eq!(
            o.status.code(),
            Some(0),
            "{v}: ctrdb check: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            held >= Duration::from_millis(HOLD_MS),
            "{v}: ctrdb held the lock only {held:?}"
        );

        // 4. containerd serves soon after
        let limit = Duration::from_secs(5);
        while !lc.serving() {
            assert!(
                t_ctrdb_exit.elapsed() < limit,
                "{v}: containerd still not serving {limit:?} after ctrdb exited:\n{}",
                lc.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let delay = t_ctrdb_exit.elapsed();
        let status = run.wait().unwrap();
        assert!(
            status.success(),
            "{v}: live.sh run failed:\n{}",
            lc.log_tail(20)
        );
        assert_eq!(
            lc.pid(),
            ctrd_pid,
            "{v}: the containerd that waited is the one serving"
        );
        assert_serves_images(&lc, "after ctrdb released the lock");
        eprintln!(
            "live: {v}: ctrdb held the lock {} ms; containerd launched {} ms after; served {} ms after ctrdb exited",
            held.as_millis(),
            (t_launch - t0).as_millis(),
            delay.as_millis()
        );
    }
}
