//! Shared test support: fixture discovery, the binary, a seeded PRNG, oracle tools,
//! and the one rule for tests that cannot run their comparison here.
//!
//! Skips: a test whose oracle is missing — the Go oracle tools
//! (`CTRDB_ORACLE_BIN`), perfgen (`CTRDB_PERFGEN_BIN`), a containerd release
//! (`CTRDB_CONTAINERD_<x_y_z>`), root for a live containerd, a committed fixture —
//! calls [`skip_or_fail`]: it prints `SKIP <test>: <why>` and the test passes without
//! comparing anything, unless `CTRDB_REQUIRE_ORACLES=1` (set by `.ci/run`), under
//! which it fails. A skip for an environmental reason that is not an oracle and that
//! no install changes (root can write into a 0555 directory) calls [`skip_env`],
//! which never fails and says so.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ctrdb::bolt::testing::{Page, PageKind, Pages};
use ctrdb::bolt::{Bucket, Db, Pgid};

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `containerd-<version>/meta.db` fixtures
/// (`CTRDB_FIXTURES_DIR` overrides it for development).
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("CTRDB_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("fixtures"))
}

/// Every fixture written by real containerd: (name, meta.db path), sorted.
pub fn fixtures() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(fixtures_dir())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with("containerd-"))
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        e.path().join("meta.db"),
                    )
                })
                .filter(|(_, p)| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    assert!(
        v.len() >= 3,
        "expected the three real containerd fixtures under {}, found {v:?}",
        fixtures_dir().display()
    );
    v
}

/// Runs the ctrdb binary.
pub fn ctrdb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        // The caller's namespace variable would change what listings show.
        .env_remove("CONTAINERD_NAMESPACE")
        .args(args)
        .output()
        .expect("run ctrdb")
}

/// Runs the ctrdb binary on a path argument.
pub fn ctrdb_path(args: &[&str], path: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .env_remove("CONTAINERD_NAMESPACE")
        .args(args)
        .arg(path)
        .output()
        .expect("run ctrdb")
}

/// Asserts the process did not panic (exit 101 or a panic message).
pub fn assert_no_panic(o: &Output, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code() != Some(101) && !err.contains("panicked"),
        "{what}: ctrdb panicked: {err}"
    );
}

/// splitmix64: a small deterministic PRNG for seeded tests.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// The next value (same as `next_u64`).
    pub fn next(&mut self) -> u64 {
        self.next_u64()
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with the given percent probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// `n` pseudo-random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// Whether `CTRDB_REQUIRE_ORACLES=1`: every oracle must be present, no oracle
/// test may skip. Unset, empty or `0` is off; any other value is a usage error.
pub fn oracles_required() -> bool {
    match std::env::var("CTRDB_REQUIRE_ORACLES") {
        Err(std::env::VarError::NotPresent) => false,
        Ok(v) if v.is_empty() || v == "0" => false,
        Ok(v) if v == "1" => true,
        v => panic!("CTRDB_REQUIRE_ORACLES must be 0 or 1, not {v:?}"),
    }
}

/// The current test's name (libtest names the thread after the test).
pub fn test_name() -> String {
    match std::thread::current().name() {
        Some(n) if n != "main" => n.to_string(),
        _ => "a test".into(),
    }
}

/// `test` cannot compare against its oracle because of `why` (a missing Go tool,
/// perfgen, containerd release, root, fixture): prints `SKIP <test>: <why>` so the
/// caller can return; under `CTRDB_REQUIRE_ORACLES=1` fails the test instead.
pub fn skip_or_fail(test: &str, why: &str) {
    assert!(
        !oracles_required(),
        "{test}: {why}; CTRDB_REQUIRE_ORACLES=1 forbids skipping a comparison \
         (install with .ci/install-deps.sh or point the CTRDB_* variables at the tools)"
    );
    eprintln!("SKIP {test}: {why}");
}

/// `test` skips a part for an environmental reason that is not an oracle and
/// that no install changes; allowed under `CTRDB_REQUIRE_ORACLES=1`.
pub fn skip_env(test: &str, why: &str) {
    eprintln!("SKIP {test} (environment, not an oracle): {why}");
}

/// The Go oracle tools (of those `tests/oracle/build.sh` builds) these tests run.
pub const ORACLE_TOOLS: [&str; 3] = ["dumpdb", "editdb", "ctrmeta"];

/// Directory with the Go oracle tools (`CTRDB_ORACLE_BIN`, default
/// `/var/cache/ctrdb-deps/bin`), or `None` after [`skip_or_fail`].
pub fn oracle_bin(test: &str) -> Option<PathBuf> {
    tool_dir(
        test,
        "CTRDB_ORACLE_BIN",
        "/var/cache/ctrdb-deps/bin",
        &ORACLE_TOOLS,
        "Go oracle tools",
    )
}

/// The directory `$var` (else `default`) if it holds every one of `tools`, or
/// `None` after [`skip_or_fail`] naming the missing ones.
pub fn tool_dir(
    test: &str,
    var: &str,
    default: &str,
    tools: &[&str],
    what: &str,
) -> Option<PathBuf> {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| !dir.join(t).is_file())
        .collect();
    if missing.is_empty() {
        return Some(dir);
    }
    skip_or_fail(
        test,
        &format!(
            "{what} {missing:?} not found in {} (set {var} or run .ci/install-deps.sh)",
            dir.display()
        ),
    );
    None
}

/// Runs the Go oracle `editdb DB ARGS…` (one edit through Go's bbolt) and
/// asserts it succeeded.
pub fn editdb<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(bin: &Path, db: &Path, args: &[S]) {
    let o = Command::new(bin.join("editdb"))
        .arg(db)
        .args(args)
        .output()
        .expect("run editdb");
    assert!(
        o.status.success(),
        "editdb {} {args:?}: {}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Whether Go's `tx.Check` (`dumpdb -check`) accepts `db`: exit 0 and exactly
/// OK. On a damaged file Go's bbolt may allocate gigabytes or loop, so it runs
/// with its address space capped (`prlimit`, 4 GiB) and is killed after 10 s;
/// a crash or a timeout is a no.
pub fn go_check_passes(bin: &Path, db: &Path) -> bool {
    go_check_passes_within(bin, db, std::time::Duration::from_secs(10), 4 << 30)
}

/// [`go_check_passes`] with its own time limit and address-space cap (bytes).
pub fn go_check_passes_within(
    bin: &Path,
    db: &Path,
    limit: std::time::Duration,
    address_space: u64,
) -> bool {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = Command::new("prlimit")
        .arg(format!("--as={address_space}"))
        .arg(bin.join("dumpdb"))
        .arg("-check")
        .arg(db)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run prlimit dumpdb (util-linux's prlimit is needed)");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait for dumpdb") {
            let mut out = String::new();
            if let Some(mut o) = child.stdout.take() {
                let _ = std::io::Read::read_to_string(&mut o, &mut out);
            }
            return status.success() && out.trim() == "OK";
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Go's `tx.Check` (`dumpdb -check`) must exit 0 and print exactly OK.
pub fn go_check_ok(bin: &Path, db: &Path) {
    let o = Command::new(bin.join("dumpdb"))
        .arg("-check")
        .arg(db)
        .output()
        .expect("run dumpdb");
    assert_eq!(
        (o.status.code(), String::from_utf8_lossy(&o.stdout).trim()),
        (Some(0), "OK"),
        "Go tx.Check on {}: {}",
        db.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A tree page found by walking the file: id, kind, and the bucket it belongs to.
#[derive(Debug, Clone)]
pub struct TreePage {
    pub id: Pgid,
    pub kind: PageKind,
    pub count: u16,
    pub bucket: Vec<Vec<u8>>,
}

/// Every branch/leaf page reachable from the root, in depth-first order.
pub fn tree_pages(db: &Db<'_>) -> Vec<TreePage> {
    let pages = db.pages();
    let mut out = Vec::new();
    let root = db.root().expect("root");
    visit_bucket(&pages, root, Vec::new(), &mut out);
    out
}

fn visit_bucket(pages: &Pages<'_>, b: Bucket<'_>, path: Vec<Vec<u8>>, out: &mut Vec<TreePage>) {
    let Ok(root) = b.root_page() else { return };
    visit_page(pages, root, &path, out);
}

fn visit_page(pages: &Pages<'_>, p: Page<'_>, path: &[Vec<u8>], out: &mut Vec<TreePage>) {
    let kind = p.kind().expect("tree page kind");
    if p.id != 0 {
        out.push(TreePage {
            id: p.id,
            kind,
            count: p.count,
            bucket: path.to_vec(),
        });
    }
    for i in 0..usize::from(p.count) {
        match kind {
            PageKind::Branch => {
                let child = p.branch_element(i).unwrap().child;
                visit_page(pages, pages.page(child).unwrap(), path, out);
            }
            PageKind::Leaf => {
                let e = p.leaf_element(i).unwrap();
                if e.is_bucket() {
                    let b = Bucket::from_value(*pages, e.value, e.value_offset).unwrap();
                    let mut child = path.to_vec();
                    child.push(e.key.to_vec());
                    visit_bucket(pages, b, child, out);
                }
            }
            _ => unreachable!(),
        }
    }
}

/// Writes `v` as a little-endian u16/u32/u64 at `off`.
pub fn put_u16(d: &mut [u8], off: usize, v: u16) {
    d[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u32(d: &mut [u8], off: usize, v: u32) {
    d[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn put_u64(d: &mut [u8], off: usize, v: u64) {
    d[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// SHA-256 of `data` in lower-case hex, computed here (with the `sha2` crate
/// directly), not by the code under test.
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The containerd root real containerd left beside `fixture` (its
/// `root.tar.gz`), unpacked into `dir`; `None` after a skip.
pub fn unpack_root(fixture: &str, dir: &Path) -> Option<PathBuf> {
    let tarball = fixtures_dir().join(fixture).join("root.tar.gz");
    if !tarball.is_file() {
        skip_or_fail(&test_name(), &format!("{} missing", tarball.display()));
        return None;
    }
    let o = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir)
        .output()
        .expect("run tar");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(dir.join("root"))
}
