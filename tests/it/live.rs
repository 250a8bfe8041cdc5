//! A real containerd on a given meta.db (through `tests/oracle/live.sh`): the
//! harness other tests use to ask "does containerd see the same thing?", and its
//! smoke test: a plain byte copy of a fixture's DB must give exactly the listing
//! of the original, for every release (the harness is deterministic).
//!
//! Harness (also used by the compact / dedup tests):
//! - [`LiveContainerd::start`] extracts a fixture's whole containerd root into a
//!   fresh work dir, puts the given DB in as `root/io.containerd.metadata.v1.bolt/meta.db`,
//!   starts that release's containerd (config as the fixture's daemon, root under the
//!   work dir), and waits until it serves and its startup GC has run.
//! - [`LiveContainerd::listing`]: the normalized, timestamp-free `ctr ... ls` of
//!   every namespace plus the blob / ingest / snapshot dirs on disk.
//! - [`compare_startup`]: start once on the original DB, once on a candidate, and
//!   return both listings.
//!
//! Live tests need root and the containerd releases (`.ci/install-deps.sh`); without
//! them they print `SKIP <test>: <reason>` and pass, or fail under
//! `CTRDB_REQUIRE_ORACLES=1` ([`skip_or_fail`]). `CTRDB_SKIP_LIVE=1` skips them on
//! purpose, and is refused together with `CTRDB_REQUIRE_ORACLES=1`;
//! `CTRDB_KEEP_LIVE=1` keeps the work dirs (containerd is still stopped).
//! Live containerds are serialized (one at a time per test process) so that the
//! timing assertions of the lock tests are not disturbed by another start.

#![allow(dead_code)] // harness API for other test modules (compact, dedup)

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use super::common::*;

/// The releases of the committed fixtures (`fixtures/containerd-<version>`).
pub const VERSIONS: [&str; 3] = ["1.6.20", "1.7.24", "2.1.9"];

/// `tests/oracle/live.sh`.
pub fn live_sh() -> PathBuf {
    repo().join("tests/oracle/live.sh")
}

/// `fixtures/containerd-<version>`.
pub fn fixture_dir(version: &str) -> PathBuf {
    fixtures_dir().join(format!("containerd-{version}"))
}

/// The directory with `containerd` and `ctr` of `version`, as `live.sh` picks it:
/// `CTRDB_CONTAINERD_<x_y_z>` if set, else `/usr/bin` for 1.6.20 and
/// `/var/cache/ctrdb-deps/containerd-<version>/usr/bin` for the others.
pub fn containerd_bin_dir(version: &str) -> PathBuf {
    let var = format!("CTRDB_CONTAINERD_{}", version.replace(['.', '-'], "_"));
    if let Some(d) = std::env::var_os(var) {
        return PathBuf::from(d);
    }
    if version == "1.6.20" {
        return PathBuf::from("/usr/bin");
    }
    let deps = std::env::var_os("CTRDB_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/var/cache/ctrdb-deps".into());
    deps.join(format!("containerd-{version}/usr/bin"))
}

/// Why a live containerd of `version` cannot run here, or `None` if it can.
pub fn live_unavailable(version: &str, fixture_dir: &Path) -> Option<String> {
    if std::env::var_os("CTRDB_SKIP_LIVE").is_some_and(|v| !v.is_empty() && v != "0") {
        assert!(
            !oracles_required(),
            "CTRDB_SKIP_LIVE and CTRDB_REQUIRE_ORACLES=1 are both set: \
             live containerd tests cannot be both skipped and required"
        );
        return Some("CTRDB_SKIP_LIVE is set".into());
    }
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective uid
    match std::fs::metadata("/proc/self") {
        Ok(m) if m.uid() == 0 => {}
        Ok(m) => {
            return Some(format!(
                "needs root (uid {}): tar owners, overlayfs, containerd",
                m.uid()
            ))
        }
        Err(e) => return Some(format!("no /proc ({e})")),
    }
    let bin = containerd_bin_dir(version);
    for b in ["containerd", "ctr"] {
        if !bin.join(b).is_file() {
            return Some(format!(
                "containerd {version} not installed ({} missing; run .ci/install-deps.sh or set CTRDB_CONTAINERD_{})",
                bin.join(b).display(),
                version.replace('.', "_")
            ));
        }
    }
    if !fixture_dir.join("root.tar.gz").is_file() {
        return Some(format!("{} has no root.tar.gz", fixture_dir.display()));
    }
    for tool in ["bash", "tar"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} not found in PATH"));
        }
    }
    None
}

// ---------------------------------------------------------------- serialization

static LIVE: Mutex<()> = Mutex::new(());
thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
    static HELD: RefCell<Option<MutexGuard<'static, ()>>> = const { RefCell::new(None) };
}

/// One live containerd (or timing-sensitive live test) at a time per test
/// process. Re-entrant within a thread: nested guards are free.
pub struct SerialGuard(());

pub fn serial() -> SerialGuard {
    if DEPTH.get() == 0 {
        let g = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        HELD.with(|h| *h.borrow_mut() = Some(g));
    }
    DEPTH.set(DEPTH.get() + 1);
    SerialGuard(())
}

impl Drop for SerialGuard {
    fn drop(&mut self) {
        DEPTH.set(DEPTH.get() - 1);
        if DEPTH.get() == 0 {
            HELD.with(|h| h.borrow_mut().take());
        }
    }
}

// ---------------------------------------------------------------- the harness

/// A private, real containerd of one release running on a copy of a DB, with a
/// fixture's content store and snapshotters, in its own work dir. Dropping it
/// stops containerd (and shims it spawned), unmounts under the work dir and
/// removes the work dir.
pub struct LiveContainerd {
    version: String,
    work: PathBuf,
    running: bool,
    // last: released after Drop::drop has stopped containerd
    _serial: SerialGuard,
}

impl LiveContainerd {
    /// Starts containerd `version` on a copy of `db_path` with the root of
    /// `fixture_dir` (`root.tar.gz`); returns once it serves and its startup GC
    /// ran. `None` (after [`skip_or_fail`]) when root or the binaries are
    /// missing; panics if containerd fails to start.
    pub fn start(version: &str, fixture_dir: &Path, db_path: &Path) -> Option<LiveContainerd> {
        let mut lc = Self::prepare(version, fixture_dir, db_path)?;
        lc.run();
        Some(lc)
    }

    /// Like [`start`](Self::start) but does not start containerd yet: the work dir
    /// is ready, `db_path()` is the DB containerd will open. Start it with
    /// [`run`](Self::run) or [`spawn_run`](Self::spawn_run).
    pub fn prepare(version: &str, fixture_dir: &Path, db_path: &Path) -> Option<LiveContainerd> {
        if let Some(why) = live_unavailable(version, fixture_dir) {
            skip_or_fail(&test_name(), &why);
            return None;
        }
        let serial = serial();
        let work = tempfile::Builder::new()
            .prefix("ctrdb-live.")
            .tempdir_in("/tmp")
            .expect("create live work dir")
            .keep();
        let lc = LiveContainerd {
            version: version.to_string(),
            work,
            running: false,
            _serial: serial,
        };
        let o = lc
            .script(&["prepare", version])
            .arg(fixture_dir)
            .arg(db_path)
            .arg(&lc.work)
            .output()
            .expect("run live.sh prepare");
        assert!(
            o.status.success(),
            "live.sh prepare {version} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Some(lc)
    }

    fn script(&self, args: &[&str]) -> Command {
        let mut c = Command::new("bash");
        c.arg(live_sh()).args(args).stdin(Stdio::null());
        c
    }

    /// Starts containerd on the prepared work dir and waits (see `live.sh run`).
    pub fn run(&mut self) {
        let t = Instant::now();
        let o = self
            .script(&["run"])
            .arg(&self.work)
            .output()
            .expect("run live.sh run");
        self.running = true;
        assert!(
            o.status.success(),
            "containerd {} did not start in {}: {}\n--- log tail:\n{}",
            self.version,
            self.work.display(),
            String::from_utf8_lossy(&o.stderr),
            self.log_tail(30)
        );
        eprintln!(
            "live: containerd {} up in {} ms ({})",
            self.version,
            t.elapsed().as_millis(),
            self.work.display()
        );
    }

    /// `live.sh run` in the background (stdout = socket path once serving);
    /// the caller waits for it. Drop stops containerd either way.
    pub fn spawn_run(&mut self) -> Child {
        self.running = true;
        self.script(&["run"])
            .arg(&self.work)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn live.sh run")
    }

    /// The normalized listing (`live.sh listing`).
    pub fn listing(&self) -> String {
        let o = self
            .script(&["listing"])
            .arg(&self.work)
            .output()
            .expect("run live.sh listing");
        assert!(
            o.status.success(),
            "live.sh listing failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).expect("listing is UTF-8")
    }

    /// The release's `ctr` against this containerd's socket.
    pub fn ctr(&self, args: &[&str]) -> Output {
        self.script(&["ctr"])
            .arg(&self.work)
            .args(args)
            .output()
            .expect("run live.sh ctr")
    }

    /// Whether containerd answers (`ctr version`) right now.
    pub fn serving(&self) -> bool {
        self.script(&["serving"])
            .arg(&self.work)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Pid of our containerd, if it is running.
    pub fn pid(&self) -> Option<u32> {
        let o = self
            .script(&["pid"])
            .arg(&self.work)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&o.stdout).trim().parse().ok()
    }

    /// The DB containerd opens (`<work>/root/io.containerd.metadata.v1.bolt/meta.db`).
    pub fn db_path(&self) -> PathBuf {
        self.work
            .join("root/io.containerd.metadata.v1.bolt/meta.db")
    }

    /// The gRPC socket.
    pub fn socket(&self) -> PathBuf {
        self.work.join("containerd.sock")
    }

    /// The work dir (root/, state/, config.toml, containerd.log, ...).
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The last `n` lines of containerd's log.
    pub fn log_tail(&self, n: usize) -> String {
        let log = std::fs::read_to_string(self.work.join("containerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Stops containerd and its shims, unmounts under the work dir (idempotent).
    pub fn stop(&mut self) {
        if self.running {
            let o = self.script(&["stop"]).arg(&self.work).output();
            if !o.as_ref().is_ok_and(|o| o.status.success()) {
                eprintln!("live: stop {} failed: {o:?}", self.work.display());
            }
            self.running = false;
        }
    }
}

impl Drop for LiveContainerd {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("CTRDB_KEEP_LIVE").is_some() {
            eprintln!("live: keeping {}", self.work.display());
            return;
        }
        // clean = stop again (no-op) + unmount + rm -rf, only for a dir with our marker
        let o = self.script(&["clean"]).arg(&self.work).output();
        if !o.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("live: clean {} failed: {o:?}", self.work.display());
        }
    }
}

/// Starts containerd `version` once on `original_db` and once on `candidate_db`
/// (each with a fresh copy of `fixture_dir`'s root, one after the other) and
/// returns `(original listing, candidate listing)` after each one's startup GC.
/// `None` (after [`skip_or_fail`]) when a live containerd cannot run here.
pub fn compare_startup(
    version: &str,
    fixture_dir: &Path,
    original_db: &Path,
    candidate_db: &Path,
) -> Option<(String, String)> {
    let a = LiveContainerd::start(version, fixture_dir, original_db)?.listing();
    let b = LiveContainerd::start(version, fixture_dir, candidate_db)?.listing();
    Some((a, b))
}

/// Lines only in `a` and lines only in `b` (as multisets, order ignored), for
/// assertion messages and "equal except ..." checks.
pub fn diff_listings(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let mut only_b: Vec<&str> = b.lines().collect();
    let mut only_a = Vec::new();
    for l in a.lines() {
        if let Some(i) = only_b.iter().position(|x| *x == l) {
            only_b.remove(i);
        } else {
            only_a.push(l.to_string());
        }
    }
    (only_a, only_b.into_iter().map(String::from).collect())
}

/// Asserts two listings are equal, showing only the differing lines.
pub fn assert_same_listing(what: &str, a: &str, b: &str) {
    if a != b {
        let (only_a, only_b) = diff_listings(a, b);
        panic!(
            "{what}: listings differ\n-- only in the first ({}):\n{}\n-- only in the second ({}):\n{}",
            only_a.len(),
            only_a.join("\n"),
            only_b.len(),
            only_b.join("\n")
        );
    }
}

// ---------------------------------------------------------------- tests

#[test]
fn live_listing_of_unmodified_copy_equals_original() {
    for v in VERSIONS {
        let fx = fixture_dir(v);
        let original = fx.join("meta.db");
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("meta.db");
        std::fs::copy(&original, &copy).unwrap();
        let t = Instant::now();
        let Some((a, b)) = compare_startup(v, &fx, &original, &copy) else {
            continue;
        };
        eprintln!(
            "live: {v}: two starts + listings in {} ms",
            t.elapsed().as_millis()
        );
        // sanity: the listing has the fixture's namespaces and objects
        for must in [
            "## namespace default",
            "## namespace k8s.io",
            "docker.io/library/tiny:1.0 sha256:",
            "# snapshots overlayfs",
            "# blobs/sha256",
        ] {
            assert!(a.contains(must), "{v}: listing lacks {must:?}:\n{a}");
        }
        assert_same_listing(&format!("containerd {v}: original vs byte copy"), &a, &b);
    }
}
