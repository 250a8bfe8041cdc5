//! Support for the reliability tests (crash, bad_env, readonly, huge): streaming
//! generators of large valid files written with ctrdb's own `BoltWriter` straight to
//! disk, the subcommand list from `ctrdb help`, bounded child runs and peak RSS.
#![allow(dead_code)]

use std::borrow::Cow;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ctrdb::bolt::writer::{BoltWriter, FreelistMode, WriteSummary, WriterOptions};

/// Writer options of the generated files.
pub fn opts(freelist: FreelistMode) -> WriterOptions {
    WriterOptions {
        page_size: 4096,
        freelist,
        after_txid: 41,
        root_sequence: 0,
    }
}

/// A writer streaming into `path` (through a 1 MiB buffer).
pub type FileWriter<'a> = BoltWriter<'a, BufWriter<File>>;

/// Writes a file at `path` whose content `fill` produces.
pub fn write_file(
    path: &Path,
    o: WriterOptions,
    fill: impl FnOnce(&mut FileWriter<'static>),
) -> WriteSummary {
    let f = File::create(path).expect("create db");
    let mut w = BoltWriter::new(BufWriter::with_capacity(1 << 20, f), o).expect("writer");
    fill(&mut w);
    let (buf, s) = w.finish().expect("finish");
    buf.into_inner().expect("flush").sync_all().expect("sync");
    s
}

fn owned(b: impl Into<Vec<u8>>) -> Cow<'static, [u8]> {
    Cow::Owned(b.into())
}

/// An image record `name` whose target is blob `i`'s digest.
fn image(w: &mut FileWriter<'static>, name: String, i: u64) {
    w.begin_bucket(owned(name), 0).unwrap();
    w.put(owned("createdat"), owned(CREATEDAT.to_vec()))
        .unwrap();
    w.begin_bucket(owned("target"), 0).unwrap();
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    w.put(owned("digest"), owned(format!("sha256:{i:016x}{h:048x}")))
        .unwrap();
    w.put(
        owned("mediatype"),
        owned("application/vnd.oci.image.index.v1+json"),
    )
    .unwrap();
    w.put(owned("size"), owned(varint(1024))).unwrap();
    w.end_bucket().unwrap();
    w.end_bucket().unwrap();
}

/// A `createdat` value as containerd writes it (Go `time.MarshalBinary`).
pub const CREATEDAT: [u8; 15] = [
    1, 0, 0, 0, 0x0e, 0xe2, 0x9b, 0xf6, 0x7d, 0x2d, 0x59, 0x5b, 0x49, 0xff, 0xff,
];

/// Go's `binary.PutVarint` (zig-zag).
pub fn varint(v: i64) -> Vec<u8> {
    let mut u = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::new();
    while u >= 0x80 {
        out.push(u as u8 | 0x80);
        u >>= 7;
    }
    out.push(u as u8);
    out
}

/// A containerd-shaped file of about `mib` MiB: `v1/default/content/blob/sha256:<n>`
/// buckets (createdat, size, a labels bucket, and a 2–6 KiB "payload" value that
/// spills onto overflow pages), plus an images bucket. Cheap to generate
/// (patterned bytes, no randomness beyond an index hash).
pub fn containerd_like(path: &Path, mib: u64) -> WriteSummary {
    // ~6.7 KiB per blob record including overhead.
    let blobs = (mib << 20) / 6700;
    write_file(path, opts(FreelistMode::None), |w| {
        w.begin_bucket(owned("v1"), 0).unwrap();
        w.begin_bucket(owned("default"), 0).unwrap();
        w.begin_bucket(owned("content"), 0).unwrap();
        w.begin_bucket(owned("blob"), 0).unwrap();
        for i in 0..blobs {
            let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            w.begin_bucket(owned(format!("sha256:{i:016x}{h:048x}")), 0)
                .unwrap();
            w.put(owned("createdat"), owned(CREATEDAT.to_vec()))
                .unwrap();
            w.begin_bucket(owned("labels"), 0).unwrap();
            w.put(owned("containerd.io/gc.root"), owned(format!("{h}")))
                .unwrap();
            w.end_bucket().unwrap();
            let n = 2048 + (h >> 40) as usize % 4096;
            let payload: Vec<u8> = (0..n).map(|j| (j as u64 ^ h) as u8).collect();
            w.put(owned("payload"), owned(payload)).unwrap();
            w.put(owned("size"), owned(varint(n as i64))).unwrap();
            w.end_bucket().unwrap();
        }
        w.end_bucket().unwrap();
        w.end_bucket().unwrap();
        w.begin_bucket(owned("images"), 0).unwrap();
        for i in 0..(blobs / 10).max(1) {
            image(w, format!("docker.io/library/img{i:06}:latest"), i);
        }
        // Short aliases of every tenth image (they sort after "docker.io/…"), so
        // `dedup` has names to remove and really rewrites the file.
        for i in (0..(blobs / 10).max(1)).step_by(10) {
            image(w, format!("img{i:06}:latest"), i);
        }
        w.end_bucket().unwrap(); // images
        w.end_bucket().unwrap(); // default
        w.put(owned("version"), owned(varint(3))).unwrap();
        w.end_bucket().unwrap(); // v1
    })
}

/// The subcommands `ctrdb help` lists that read a database: all but `help` and
/// the ones that print ctrdb's own documentation (`completions`, `man`).
pub fn ctrdb_commands() -> Vec<String> {
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .arg("help")
        .output()
        .expect("run ctrdb help");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let mut cmds = Vec::new();
    let mut in_cmds = false;
    for line in text.lines() {
        if line.trim_end() == "Commands:" {
            in_cmds = true;
            continue;
        }
        if in_cmds {
            if line.trim().is_empty() || !line.starts_with("  ") {
                break;
            }
            if line.starts_with("   ") {
                continue;
            }
            if let Some(name) = line.split_whitespace().next() {
                if !["help", "completions", "man"].contains(&name) {
                    cmds.push(name.to_string());
                }
            }
        }
    }
    assert!(
        cmds.iter().any(|c| c == "check"),
        "no commands parsed from `ctrdb help`:\n{text}"
    );
    cmds
}

/// Whether `ctrdb <cmd> --help` mentions `flag` (e.g. `--in-place`).
pub fn has_flag(cmd: &str, flag: &str) -> bool {
    let o = Command::new(env!("CARGO_BIN_EXE_ctrdb"))
        .args([cmd, "--help"])
        .output()
        .expect("run ctrdb");
    String::from_utf8_lossy(&o.stdout).contains(flag)
}

/// The outcome of a bounded child run.
#[derive(Debug)]
pub struct Run {
    /// Exit code; `None` if killed by a signal (or by the time limit).
    pub code: Option<i32>,
    /// Whether the time limit killed it.
    pub timed_out: bool,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn assert_no_panic(&self, what: &str) {
        assert!(
            self.code != Some(101) && !self.stderr.contains("panicked"),
            "{what}: ctrdb panicked: {}",
            self.stderr
        );
    }
}

/// Runs `ctrdb args` with `env`, killing it (our own child) after `limit`.
/// Output goes to files in `scratch` so a large output cannot block a pipe.
pub fn run_bounded(
    args: &[std::ffi::OsString],
    env: &[(&str, &str)],
    scratch: &Path,
    limit: Duration,
) -> Run {
    let out_p = scratch.join(".run.stdout");
    let err_p = scratch.join(".run.stderr");
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctrdb"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(File::create(&out_p).unwrap())
        .stderr(File::create(&err_p).unwrap());
    c.env_remove("CTRDB_FAULT");
    for (k, v) in env {
        c.env(k, v);
    }
    let t = Instant::now();
    let mut child = c.spawn().expect("spawn ctrdb");
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > limit {
            timed_out = true;
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let r = Run {
        code: status.code(),
        timed_out,
        stdout: std::fs::read_to_string(&out_p).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_p).unwrap_or_default(),
        elapsed: t.elapsed(),
    };
    let _ = std::fs::remove_file(out_p);
    let _ = std::fs::remove_file(err_p);
    r
}

/// Files in `dir` whose names mark them as ctrdb temporary files.
pub fn temp_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ctrdb-tmp"))
        .collect();
    v.sort();
    v
}

/// Whether `name` is a temporary file of ours for target `target`:
/// `.<target>.ctrdb-tmp.<pid>.<8 alphanumerics>`.
pub fn is_our_temp(name: &str, target: &str) -> bool {
    let Some(rest) = name.strip_prefix(&format!(".{target}.ctrdb-tmp.")) else {
        return false;
    };
    let Some((pid, rand)) = rest.split_once('.') else {
        return false;
    };
    !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && rand.len() == 8
        && rand.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `args` as `OsString`s, paths included.
pub fn os_args<I, S>(args: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    args.into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect()
}

/// A path as an `OsString` argument.
pub fn p(path: &Path) -> std::ffi::OsString {
    path.as_os_str().to_os_string()
}

/// A temporary directory for one test.
pub fn scratch() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().expect("tempdir");
    let p = d.path().to_path_buf();
    (d, p)
}
