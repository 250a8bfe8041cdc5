//! Huge and adversarial but valid files, built at test time with ctrdb's
//! own writer: a bucket of a million keys, 32 KiB keys, 16 MiB values (100 MiB with
//! `CTRDB_HEAVY_TESTS=1`, which also makes the key count 10 M), bucket nesting at the
//! reader's limit (`MAX_BUCKET_DEPTH`) and one deeper, and 10 000 containerd
//! namespaces. Invariant: every read command (and compact) handles each without a
//! panic, with the expected exit code, and within bounded memory — peak RSS (the
//! child's `ru_maxrss`) stays below the mapped file size(s) + 256 MiB, since the
//! input map is file-backed (compact also maps its output to verify it: 2 × size).

use std::ffi::OsString;
use std::path::Path;

use ctrdb::bolt::writer::FreelistMode;
use ctrdb::bolt::MAX_BUCKET_DEPTH;

use super::common::{skip_or_fail, test_name};
use super::rel_common::*;

/// Fixed memory allowance on top of the mapped file(s).
const RSS_BOUND_MIB: u64 = 256;

fn heavy() -> bool {
    std::env::var_os("CTRDB_HEAVY_TESTS").is_some_and(|v| v == "1")
}

fn k(s: impl Into<Vec<u8>>) -> std::borrow::Cow<'static, [u8]> {
    std::borrow::Cow::Owned(s.into())
}

/// What a command is expected to do with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A valid file: check/dump/compact exit 0; the containerd views 0 or 1.
    Valid,
    /// Nested too deep: check reports it (1), dump and compact fail (2) naming the limit.
    TooDeep,
}

/// Runs every command on `db` and checks exit codes and peak RSS; returns a line
/// per command for the report.
fn exercise(label: &str, db: &Path, expect: Expect) -> Vec<String> {
    let size = std::fs::metadata(db).unwrap().len();
    let (_o, out_dir) = scratch();
    let out = out_dir.join("out.db");
    let mut lines = Vec::new();
    for cmd in ctrdb_commands() {
        let mut args: Vec<OsString> = os_args([cmd.as_str()]);
        let mut maps = 1;
        match cmd.as_str() {
            "compact" | "dedup" => {
                args.extend(os_args(["--output".into(), p(&out)]));
                maps = 2;
            }
            "dump" => args.extend(os_args(["--format", "hex"])),
            "diff" => {
                args.push(p(db));
                maps = 2;
            }
            _ => {}
        }
        args.push(p(db));
        let want: &[i32] = match (expect, cmd.as_str()) {
            (Expect::Valid, "check" | "dump" | "compact") => &[0],
            (Expect::Valid, _) => &[0, 1],
            (Expect::TooDeep, "check") => &[1],
            (Expect::TooDeep, "dump" | "compact" | "dedup") => &[2],
            (Expect::TooDeep, _) => &[0, 1, 2],
        };
        let _ = std::fs::remove_file(&out);
        let Some((rss_kib, took, code)) = rss_of(&args, want) else {
            return lines;
        };
        let bound_kib = ((maps * size) >> 10) + (RSS_BOUND_MIB << 10);
        let line = format!(
            "huge: {label} ({} MiB): ctrdb {cmd}: exit {code}, peak RSS {} MiB (bound {} MiB), {} ms",
            size >> 20,
            rss_kib >> 10,
            bound_kib >> 10,
            took.as_millis()
        );
        eprintln!("{line}");
        assert!(rss_kib <= bound_kib, "{line}: over the memory bound");
        if expect == Expect::Valid && cmd == "compact" {
            let c = run_bounded(
                &os_args(["check".into(), p(&out)]),
                &[],
                &out_dir,
                std::time::Duration::from_secs(600),
            );
            assert_eq!(
                c.code,
                Some(0),
                "{label}: the compacted copy does not check clean: {}",
                c.stdout
            );
        }
        assert!(temp_files(&out_dir).is_empty());
        lines.push(line);
    }
    lines
}

/// Peak RSS via /usr/bin/time, asserting the exit code is one of `want`.
fn rss_of(args: &[OsString], want: &[i32]) -> Option<(u64, std::time::Duration, i32)> {
    let time = Path::new("/usr/bin/time");
    if !time.is_file() {
        skip_or_fail(
            &test_name(),
            "/usr/bin/time not installed (Debian package time; .ci/install-deps.sh installs it)",
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let rss_p = dir.path().join("rss");
    let t = std::time::Instant::now();
    let o = std::process::Command::new(time)
        .args(["-f", "%M", "-o"])
        .arg(&rss_p)
        .arg(env!("CARGO_BIN_EXE_ctrdb"))
        .args(args)
        .env_remove("CTRDB_FAULT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run /usr/bin/time");
    let took = t.elapsed();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "ctrdb {args:?} panicked: {err}");
    let code = o.status.code().expect("ctrdb killed by a signal");
    assert!(
        want.contains(&code),
        "ctrdb {args:?}: exit {code}, want one of {want:?}: {err}"
    );
    let rss = std::fs::read_to_string(&rss_p).unwrap();
    let kib = rss
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .expect("peak RSS figure");
    Some((kib, took, code))
}

#[test]
fn a_bucket_with_a_million_keys() {
    let n: u64 = if heavy() { 10_000_000 } else { 1_000_000 };
    let (_d, dir) = scratch();
    let db = dir.join("meta.db");
    write_file(&db, opts(FreelistMode::None), |w| {
        w.begin_bucket(k("many"), 7).unwrap();
        for i in 0..n {
            // big-endian: byte order equals numeric order, as the writer requires
            #[allow(clippy::big_endian_bytes)]
            let key = i.to_be_bytes().to_vec();
            w.put(k(key), k(vec![(i % 251) as u8])).unwrap();
        }
        w.end_bucket().unwrap();
    });
    exercise(&format!("{n} keys in one bucket"), &db, Expect::Valid);
}

#[test]
fn keys_of_32_kib() {
    let n: u32 = if heavy() { 4096 } else { 512 };
    let (_d, dir) = scratch();
    let db = dir.join("meta.db");
    write_file(&db, opts(FreelistMode::Page), |w| {
        w.begin_bucket(k(vec![b'b'; 32 * 1024]), 0).unwrap();
        for i in 0..n {
            let mut key = vec![b'k'; 32 * 1024];
            #[allow(clippy::big_endian_bytes)]
            key[..4].copy_from_slice(&i.to_be_bytes());
            w.put(k(key), k(format!("v{i}"))).unwrap();
        }
        w.end_bucket().unwrap();
    });
    exercise(&format!("{n} keys of 32 KiB"), &db, Expect::Valid);
}

#[test]
fn values_of_16_mib() {
    let mib: usize = if heavy() { 100 } else { 16 };
    let (_d, dir) = scratch();
    let db = dir.join("meta.db");
    write_file(&db, opts(FreelistMode::None), |w| {
        w.begin_bucket(k("big"), 0).unwrap();
        for i in 0..3u8 {
            w.put(
                k(vec![b'a' + i]),
                k(vec![b'x' ^ i; (mib << 20) + usize::from(i)]),
            )
            .unwrap();
        }
        w.put(k("small"), k("value")).unwrap();
        w.end_bucket().unwrap();
    });
    exercise(&format!("3 values of {mib} MiB"), &db, Expect::Valid);
}

fn nested(db: &Path, depth: usize) {
    write_file(db, opts(FreelistMode::Page), |w| {
        for i in 0..depth {
            w.begin_bucket(k(format!("d{i}")), i as u64).unwrap();
        }
        for i in (0..depth).rev() {
            // after the nested bucket's name "d…" in key order
            w.put(k("z"), k(format!("at depth {}", i + 1))).unwrap();
            w.end_bucket().unwrap();
        }
    });
}

#[test]
fn nesting_at_the_readers_limit_and_one_deeper() {
    let (_d, dir) = scratch();
    let ok = dir.join("deep.db");
    nested(&ok, MAX_BUCKET_DEPTH);
    exercise(
        &format!("buckets nested {MAX_BUCKET_DEPTH} deep"),
        &ok,
        Expect::Valid,
    );
    let bad = dir.join("deeper.db");
    nested(&bad, MAX_BUCKET_DEPTH + 1);
    exercise(
        &format!("buckets nested {} deep", MAX_BUCKET_DEPTH + 1),
        &bad,
        Expect::TooDeep,
    );
    // the error says what is wrong
    for cmd in ["check", "dump", "compact"] {
        let mut args = os_args([cmd]);
        if cmd == "compact" {
            args.extend(os_args(["--output".into(), p(&dir.join("out.db"))]));
        }
        args.push(p(&bad));
        let r = run_bounded(&args, &[], &dir, std::time::Duration::from_secs(60));
        let text = format!("{}{}", r.stdout, r.stderr);
        assert!(
            text.contains(&format!("deeper than {MAX_BUCKET_DEPTH}")),
            "ctrdb {cmd}: {text}"
        );
    }
    assert!(!dir.join("out.db").exists());
}

#[test]
fn ten_thousand_namespaces() {
    let n: u32 = if heavy() { 100_000 } else { 10_000 };
    let (_d, dir) = scratch();
    let db = dir.join("meta.db");
    write_file(&db, opts(FreelistMode::None), |w| {
        w.begin_bucket(k("v1"), 0).unwrap();
        let mut names: Vec<String> = (0..n).map(|i| format!("ns-{i}")).collect();
        names.sort();
        for (i, ns) in names.iter().enumerate() {
            let i = i as u64;
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let digest = format!("sha256:{i:016x}{h:048x}");
            w.begin_bucket(k(ns.clone()), 0).unwrap();
            w.begin_bucket(k("content"), 0).unwrap();
            w.begin_bucket(k("blob"), 0).unwrap();
            w.begin_bucket(k(digest.clone()), 0).unwrap();
            w.put(k("createdat"), k(CREATEDAT.to_vec())).unwrap();
            w.put(k("size"), k(varint(1024))).unwrap();
            w.put(k("updatedat"), k(CREATEDAT.to_vec())).unwrap();
            w.end_bucket().unwrap();
            w.end_bucket().unwrap();
            w.end_bucket().unwrap();
            w.begin_bucket(k("images"), 0).unwrap();
            for tag in ["1.0", "latest"] {
                w.begin_bucket(k(format!("docker.io/library/app{}:{tag}", i % 100)), 0)
                    .unwrap();
                w.put(k("createdat"), k(CREATEDAT.to_vec())).unwrap();
                w.begin_bucket(k("target"), 0).unwrap();
                w.put(k("digest"), k(digest.clone())).unwrap();
                w.put(
                    k("mediatype"),
                    k("application/vnd.oci.image.manifest.v1+json"),
                )
                .unwrap();
                w.put(k("size"), k(varint(1024))).unwrap();
                w.end_bucket().unwrap();
                w.put(k("updatedat"), k(CREATEDAT.to_vec())).unwrap();
                w.end_bucket().unwrap();
            }
            w.end_bucket().unwrap();
            w.end_bucket().unwrap();
        }
        w.put(k("version"), k(varint(3))).unwrap();
        w.end_bucket().unwrap();
    });
    exercise(&format!("{n} namespaces"), &db, Expect::Valid);
}
