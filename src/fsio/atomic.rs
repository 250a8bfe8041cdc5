//! Writing a new database file safely: write to a temporary file beside the target,
//! sync it and (at the same time, on another thread) verify it by re-reading it, give it
//! the source's mode and owner, rename it into place and sync the directory. On any failure the temporary file is removed, so
//! nothing half-written is ever left at the target. Used by `compact` and `dedup`.
//!
//! The temporary file is `.<target name>.ctrdb-tmp.<pid>.<8 random chars>` in the
//! target's directory. A process killed mid-write (SIGKILL, power loss) leaves it
//! behind; the next [`write_verified`] to the same target removes such files whose
//! pid is no longer running ([`remove_stale_temps`]). Each phase calls a
//! [`crate::fault`] point (`write-begin`, `before-fsync`, `after-fsync`,
//! `after-verify`, `before-rename`, `after-rename`, `before-dir-fsync`; the writer
//! adds `write-pages`) so tests can kill or fail the process there.
//!
//! Error messages leave out their cause; print the chain (`{:#}` in anyhow) to see it.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::ScopedJoinHandle;

use crate::bolt::db::{DbFile, LockMode};
use crate::bolt::error::Error as ReadError;
use crate::bolt::writer::{Mismatch, WriteError};
use crate::bytes::sha256_hex;
use crate::fault;

/// Errors of [`write_verified`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The target exists and overwriting was not allowed (the command line
    /// adds how to allow it).
    #[error("'{0}' already exists")]
    Exists(PathBuf),
    /// The target is the source file itself.
    #[error("'{0}' is the input database itself; write the output to another file")]
    SameAsSource(PathBuf),
    /// The target exists and is not a regular file.
    #[error("'{0}' exists and is not a regular file")]
    NotAFile(PathBuf),
    /// A file-system operation failed.
    #[error("cannot {op} '{path}'")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing the new file failed.
    #[error("writing the new file for '{path}' failed")]
    Write {
        /// The target (the temporary file beside it is removed).
        path: PathBuf,
        /// The cause.
        source: WriteError,
    },
    /// The new file could not be read back.
    #[error("the new file for '{path}' cannot be read back")]
    ReadBack {
        /// The target (the temporary file beside it is removed).
        path: PathBuf,
        /// The cause.
        source: ReadError,
    },
    /// The new file does not hold what was meant to be written.
    #[error("verification of the new file failed: {0}")]
    Verify(#[from] Mismatch),
    /// Verification found another problem.
    #[error("verification of the new file failed: {0}")]
    VerifyOther(String),
    /// A check run by the caller alongside the verification declined the new
    /// file (the message says why); it is removed, not renamed.
    #[error("{0}")]
    Declined(String),
}

/// How the target may be treated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// Replace an existing target (never the source itself unless `replace_source`).
    pub overwrite: bool,
    /// Allow the target to be the source (in-place repair under an exclusive lock).
    pub replace_source: bool,
}

/// The file that was put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Its final path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Stale temporary files of earlier, killed runs that were removed first.
    pub stale_removed: Vec<PathBuf>,
}

/// The prefix of every temporary file written for `target_name`, before the pid.
fn temp_prefix(target_name: &str) -> String {
    format!(".{target_name}.ctrdb-tmp.")
}

/// Whether `name` is one of our temporary files for `target_name`
/// (`.<target_name>.ctrdb-tmp.<pid>.<8 alphanumerics>`); returns its pid.
fn temp_pid(name: &str, target_name: &str) -> Option<u32> {
    let rest = name.strip_prefix(&temp_prefix(target_name))?;
    let (pid, rand) = rest.split_once('.')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if rand.len() != 8 || !rand.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process `pid` exists (in our pid namespace). Errs on the side of
/// "alive" when /proc cannot tell.
fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    match fs::metadata(format!("/proc/{pid}")) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::NotFound || fs::metadata("/proc/self").is_err(),
    }
}

/// Removes temporary files that an earlier run writing `target` left behind when it
/// was killed: regular files in `dir` named exactly
/// `.<target name>.ctrdb-tmp.<pid>.<8 alphanumerics>` whose pid is not running.
/// Nothing else is touched (not other targets' files, not symlinks, not a live
/// run's file). Returns what was removed; failures to remove are ignored (the
/// file is then reported again next time).
pub fn remove_stale_temps(dir: &Path, target_name: &str) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(rd) = fs::read_dir(dir) else {
        return removed;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = temp_pid(name, target_name) else {
            continue;
        };
        if pid_alive(pid) {
            continue;
        }
        let path = e.path();
        // symlink_metadata: never follow a link out of the directory.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file())
            && fs::remove_file(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed
}

/// Writes a new file at `target` through a temporary file:
/// `write(file, path)` fills it (the caller buffers; the file is synced afterwards),
/// `verify(&produced, bytes)` re-reads the written bytes and checks them while a
/// second thread syncs the file; it is renamed only when both have succeeded. The source's
/// mode is copied, its owner too where permitted.
pub fn write_verified<T, V>(
    source: &Path,
    target: &Path,
    opts: OutputOptions,
    write: impl FnOnce(&mut File, &Path) -> Result<T, OutputError>,
    verify: impl FnOnce(&T, &[u8]) -> Result<V, OutputError>,
) -> Result<(T, V, Written), OutputError> {
    let ioerr = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| OutputError::Io { op, path, source }
    };
    let src_meta = fs::metadata(source).map_err(ioerr("stat", source))?;
    match fs::metadata(target) {
        Ok(m) => {
            if m.dev() == src_meta.dev() && m.ino() == src_meta.ino() && !opts.replace_source {
                return Err(OutputError::SameAsSource(target.to_path_buf()));
            }
            if !m.is_file() {
                return Err(OutputError::NotAFile(target.to_path_buf()));
            }
            let is_source = m.dev() == src_meta.dev() && m.ino() == src_meta.ino();
            if !(opts.overwrite || opts.replace_source && is_source) {
                return Err(OutputError::Exists(target.to_path_buf()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(OutputError::Io {
                op: "stat",
                path: target.to_path_buf(),
                source: e,
            })
        }
    }
    let mut staged = Staged::beside(target)?;
    let tmp_path = staged.path().to_path_buf();
    // Errors name the target, not the temporary file the user never asked for
    // (it is removed when `staged` is dropped on the way out).
    let io_tmp = |op: &'static str| ioerr(op, target);
    fault::point("write-begin").map_err(io_tmp("write the new file for"))?;
    let produced = write(staged.file_mut(), target)?;
    fault::point("before-fsync").map_err(io_tmp("sync the new file for"))?;
    // The sync runs on a second thread while this one re-reads and verifies the file:
    // the read-back comes from the page cache either way, and nothing is renamed
    // before both have succeeded.
    let checked = std::thread::scope(|s| {
        let file = staged.file();
        let synced = s.spawn(|| {
            file.sync_all()?;
            fault::point("after-fsync")
        });
        let checked = DbFile::open(&tmp_path, LockMode::Shared)
            .map_err(|source| OutputError::ReadBack {
                path: target.to_path_buf(),
                source,
            })
            .and_then(|f| verify(&produced, f.bytes()));
        let synced = synced
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the sync thread panicked")));
        synced.map_err(io_tmp("sync the new file for"))?;
        checked
    })?;
    fault::point("after-verify").map_err(io_tmp("verify the new file for"))?;
    staged.take_mode_and_owner(&src_meta)?;
    fault::point("before-rename").map_err(ioerr("rename the new file to", target))?;
    let written = staged.commit(opts.overwrite || opts.replace_source, || {
        fault::point("after-rename")?;
        fault::point("before-dir-fsync")
    })?;
    Ok((produced, checked, written))
}

/// A file being written under a temporary name beside its target:
/// `.<target name>.ctrdb-tmp.<pid>.<8 random alphanumerics>`. Dropped before
/// [`Staged::commit`], it is removed; a process killed meanwhile leaves it for
/// [`remove_stale_temps`]. Every file ctrdb writes goes through it.
#[derive(Debug)]
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    dir: PathBuf,
    target: PathBuf,
    stale_removed: Vec<PathBuf>,
}

impl Staged {
    /// Creates the temporary file in `target`'s directory, first removing those
    /// that killed earlier runs left for the same target.
    pub fn beside(target: &Path) -> Result<Staged, OutputError> {
        let name = target
            .file_name()
            .ok_or_else(|| OutputError::NotAFile(target.to_path_buf()))?
            .to_string_lossy()
            .into_owned();
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let stale_removed = remove_stale_temps(&dir, &name);
        let prefix = format!("{}{}.", temp_prefix(&name), std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .rand_bytes(8)
            .tempfile_in(&dir)
            .map_err(|source| OutputError::Io {
                op: "create a temporary file in",
                path: dir.clone(),
                source,
            })?;
        Ok(Staged {
            tmp,
            dir,
            target: target.to_path_buf(),
            stale_removed,
        })
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The open temporary file.
    pub fn file(&self) -> &File {
        self.tmp.as_file()
    }

    /// The open temporary file, for writing.
    pub fn file_mut(&mut self) -> &mut File {
        self.tmp.as_file_mut()
    }

    /// Gives the file `like`'s mode, and its owner where permitted (only root
    /// may give a file away; failing to is not an error).
    pub fn take_mode_and_owner(&self, like: &fs::Metadata) -> Result<(), OutputError> {
        self.file()
            .set_permissions(like.permissions())
            .map_err(|source| OutputError::Io {
                op: "set the mode of the new file for",
                path: self.target.clone(),
                source,
            })?;
        let _ = std::os::unix::fs::fchown(self.file(), Some(like.uid()), Some(like.gid()));
        Ok(())
    }

    /// Renames the file onto its target — replacing an existing one only when
    /// `replace`, atomically either way — runs `after_rename` (a fault hook),
    /// and syncs the directory so the new name is durable.
    pub fn commit(
        self,
        replace: bool,
        after_rename: impl FnOnce() -> std::io::Result<()>,
    ) -> Result<Written, OutputError> {
        let Staged {
            tmp,
            dir,
            target,
            stale_removed,
        } = self;
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| OutputError::Io { op, path, source }
        };
        let size = tmp
            .as_file()
            .metadata()
            .map_err(io("stat the new file for", &target))?
            .len();
        if replace {
            tmp.persist(&target)
                .map_err(|e| io("rename the new file onto", &target)(e.error))?;
        } else {
            tmp.persist_noclobber(&target).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    OutputError::Exists(target.clone())
                } else {
                    io("rename the new file to", &target)(e.error)
                }
            })?;
        }
        after_rename().map_err(io("sync directory", &dir))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync directory", &dir))?;
        Ok(Written {
            path: target,
            size,
            stale_removed,
        })
    }
}

/// A verified copy of a database's bytes, made before it is replaced in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backup {
    /// Where it is.
    pub path: PathBuf,
    /// SHA-256 of its bytes (those of the database when it was copied).
    pub sha256: String,
    /// Stale temporary backups of killed earlier runs that were removed first.
    pub stale_removed: Vec<PathBuf>,
}

impl Backup {
    /// The shell command that puts the backup back in place of `db`:
    /// `mv -f -- <backup> <db>`, each path quoted for a POSIX shell when needed,
    /// byte for byte (a path that is not UTF-8 stays exactly as it is).
    pub fn restore_command(&self, db: &Path) -> OsString {
        let mut cmd = OsString::from("mv -f -- ");
        cmd.push(shell_quote(&self.path));
        cmd.push(" ");
        cmd.push(shell_quote(db));
        cmd
    }
}

/// `p` as one word of a POSIX shell: as it is when it holds only characters no
/// shell treats specially, else in single quotes (inside which every byte is
/// literal), with each `'` written as `'\''`.
fn shell_quote(p: &Path) -> OsString {
    let b = p.as_os_str().as_bytes();
    if !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"/._-+:@,=".contains(c))
    {
        return p.as_os_str().to_os_string();
    }
    let mut q = Vec::with_capacity(b.len().saturating_add(2));
    q.push(b'\'');
    for &c in b {
        if c == b'\'' {
            q.extend_from_slice(b"'\\''");
        } else {
            q.push(c);
        }
    }
    q.push(b'\'');
    OsString::from_vec(q)
}

/// Copies `bytes` (a locked database's) to a new file at `path`, never replacing
/// one: with `source`'s mode and owner, synced, read back and compared by hash,
/// then named and its directory synced — so a killed run never leaves a partial
/// backup under the name.
pub fn write_backup(source: &Path, bytes: &[u8], path: &Path) -> Result<Backup, OutputError> {
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| OutputError::Io {
            op,
            path: p,
            source,
        }
    };
    if fs::symlink_metadata(path).is_ok() {
        return Err(OutputError::Exists(path.to_path_buf()));
    }
    let sha = sha256_hex(bytes);
    let src_meta = fs::metadata(source).map_err(io("stat", source))?;
    let mut staged = Staged::beside(path)?;
    let tmp_path = staged.path().to_path_buf();
    staged
        .file_mut()
        .write_all(bytes)
        .map_err(io("write the backup", path))?;
    staged.take_mode_and_owner(&src_meta)?;
    staged
        .file()
        .sync_all()
        .map_err(io("sync the backup", path))?;
    let back = fs::read(&tmp_path).map_err(io("read back the backup", path))?;
    if sha256_hex(&back) != sha {
        return Err(OutputError::VerifyOther(format!(
            "the backup '{}' does not read back identical",
            path.display()
        )));
    }
    let written = staged.commit(false, || Ok(()))?;
    Ok(Backup {
        path: written.path,
        sha256: sha,
        stale_removed: written.stale_removed,
    })
}

/// Size of one buffer handed to the writing thread of [`write_pipelined`].
pub const PIPE_CHUNK: usize = 2 << 20;
/// Buffers in flight at most: one being filled, one queued, one being written.
const PIPE_BUFFERS: usize = 3;

/// A `Write + Seek` sink whose bytes are written to a file by a second thread
/// (positional writes of [`PIPE_CHUNK`]-byte buffers), so that producing the bytes and
/// the `write` system calls run on both cores. Made by [`write_pipelined`]. Memory is
/// bounded by [`PIPE_BUFFERS`] buffers. A failed write on the worker is reported by the
/// next call that hands it a buffer, and by [`write_pipelined`].
#[derive(Debug)]
pub struct PipeSink<'scope> {
    /// Bytes not yet handed over; they go at file offset `start`.
    cur: Vec<u8>,
    start: u64,
    tx: Option<mpsc::SyncSender<(u64, Vec<u8>)>>,
    back: mpsc::Receiver<Vec<u8>>,
    allocated: usize,
    worker: Option<ScopedJoinHandle<'scope, std::io::Result<()>>>,
}

impl PipeSink<'_> {
    /// Hands the filled part of the current buffer to the worker and gets an empty one.
    fn hand_over(&mut self) -> std::io::Result<()> {
        if self.cur.is_empty() {
            return Ok(());
        }
        let next = match self.back.try_recv() {
            Ok(b) => Some(b),
            Err(_) if self.allocated < PIPE_BUFFERS => {
                self.allocated += 1;
                Some(Vec::with_capacity(PIPE_CHUNK))
            }
            // Wait for the worker to give one back (it holds the others).
            Err(_) => self.back.recv().ok(),
        };
        let Some(mut next) = next else {
            return Err(self.worker_failed());
        };
        next.clear();
        let full = std::mem::replace(&mut self.cur, next);
        let len = full.len() as u64;
        let sent = match &self.tx {
            Some(tx) => tx.send((self.start, full)).is_ok(),
            None => false,
        };
        if !sent {
            return Err(self.worker_failed());
        }
        self.start += len;
        Ok(())
    }

    /// The worker stopped: its error (it stops only on one).
    fn worker_failed(&mut self) -> std::io::Error {
        self.tx = None;
        match self.worker.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => std::io::Error::other("the writing thread panicked"),
            _ => std::io::Error::other("the writing thread stopped"),
        }
    }

    /// Hands over what is left and waits until everything is written.
    fn close(mut self) -> std::io::Result<()> {
        self.hand_over()?;
        self.tx = None;
        match self.worker.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the writing thread panicked")),
            None => Err(std::io::Error::other("the writing thread stopped")),
        }
    }
}

impl Write for PipeSink<'_> {
    fn write(&mut self, mut data: &[u8]) -> std::io::Result<usize> {
        let n = data.len();
        while !data.is_empty() {
            let room = PIPE_CHUNK.saturating_sub(self.cur.len()).max(1);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.cur.extend_from_slice(now);
            data = rest;
            if self.cur.len() >= PIPE_CHUNK {
                self.hand_over()?;
            }
        }
        Ok(n)
    }

    /// Hands the buffered bytes to the worker (without waiting for the write).
    fn flush(&mut self) -> std::io::Result<()> {
        self.hand_over()
    }
}

impl Seek for PipeSink<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let here = self.start + self.cur.len() as u64;
        let to = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => here.checked_add_signed(d),
            SeekFrom::End(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "seek from the end of a pipelined output",
                ))
            }
        };
        let to = to.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek out of range")
        })?;
        if to != here {
            self.hand_over()?;
            self.start = to;
        }
        Ok(to)
    }
}

/// Asks the kernel to start writing `len` bytes at `off` of `file` to the disk
/// now, without waiting (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so the disk
/// works while the rest is still being produced and the final fsync has little
/// left to wait for. Purely a hint: durability still comes from that fsync, and a
/// failure here is ignored (the fsync reports any real I/O error).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn start_writeback(file: &File, off: u64, len: usize) {
    use std::os::fd::AsRawFd;
    let (Ok(off), Ok(len)) = (libc::off64_t::try_from(off), libc::off64_t::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a descriptor that `file` keeps open for the
    // duration of the call; it reads and writes no memory of this process.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), off, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _off: u64, _len: usize) {}

/// Runs `fill` with a [`PipeSink`] writing into `file` from a second thread, and waits
/// until every byte is written. Errors of the writes are reported as
/// [`WriteError::Io`]; an error of `fill` wins over the worker's.
pub fn write_pipelined<R>(
    file: &File,
    fill: impl FnOnce(&mut PipeSink<'_>) -> Result<R, WriteError>,
) -> Result<R, WriteError> {
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::sync_channel::<(u64, Vec<u8>)>(1);
        let (back_tx, back) = mpsc::channel::<Vec<u8>>();
        let worker = s.spawn(move || -> std::io::Result<()> {
            for (off, buf) in rx {
                file.write_all_at(&buf, off)?;
                start_writeback(file, off, buf.len());
                // The sink may be gone already; then the buffer is just freed.
                let _ = back_tx.send(buf);
            }
            Ok(())
        });
        let mut sink = PipeSink {
            cur: Vec::with_capacity(PIPE_CHUNK),
            start: 0,
            tx: Some(tx),
            back,
            allocated: 1,
            worker: Some(worker),
        };
        let r = fill(&mut sink);
        let closed = sink.close();
        let v = r?;
        closed.map_err(|source| WriteError::Io {
            op: "write",
            source,
        })?;
        Ok(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_writes_land_where_they_were_sent() {
        let f = tempfile::tempfile().expect("temp file");
        let big: Vec<u8> = (0..PIPE_CHUNK * 2 + 12345)
            .map(|i| (i % 251) as u8)
            .collect();
        let n = write_pipelined(&f, |sink| {
            let io = |source| WriteError::Io {
                op: "write",
                source,
            };
            sink.write_all(&[0u8; 16]).map_err(io)?;
            sink.write_all(&big).map_err(io)?;
            for i in 0..1000u32 {
                sink.write_all(&i.to_le_bytes()).map_err(io)?;
            }
            assert_eq!(
                sink.stream_position().map_err(io)?,
                16 + big.len() as u64 + 4000
            );
            sink.seek(SeekFrom::Start(0)).map_err(io)?;
            sink.write_all(b"head").map_err(io)?;
            sink.flush().map_err(io)?;
            Ok(7)
        })
        .expect("pipelined write");
        assert_eq!(n, 7);
        let mut want = b"head".to_vec();
        want.extend_from_slice(&[0u8; 12]);
        want.extend_from_slice(&big);
        for i in 0..1000u32 {
            want.extend_from_slice(&i.to_le_bytes());
        }
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut &f, &mut got).expect("read back");
        assert!(got == want, "the file differs from what was written");
    }

    #[test]
    fn pipelined_write_errors_are_reported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("ro");
        fs::write(&path, b"").expect("create");
        let ro = File::open(&path).expect("open read-only");
        let big = vec![1u8; PIPE_CHUNK * 4];
        let r = write_pipelined(&ro, |sink| {
            sink.write_all(&big).map_err(|source| WriteError::Io {
                op: "write",
                source,
            })
        });
        assert!(matches!(r, Err(WriteError::Io { .. })), "{r:?}");
        // An error of the producer wins.
        let r: Result<(), _> = write_pipelined(&ro, |_| Err(WriteError::TooDeep));
        assert!(matches!(r, Err(WriteError::TooDeep)), "{r:?}");
    }

    #[test]
    fn temp_names() {
        assert_eq!(
            temp_pid(".out.db.ctrdb-tmp.1234.aB3dE5gH", "out.db"),
            Some(1234)
        );
        assert_eq!(temp_pid(".out.db.ctrdb-tmp.1234.aB3dE5g", "out.db"), None);
        assert_eq!(temp_pid(".out.db.ctrdb-tmp.12x4.aB3dE5gH", "out.db"), None);
        assert_eq!(temp_pid(".out.db.ctrdb-tmp..aB3dE5gH", "out.db"), None);
        assert_eq!(
            temp_pid(".other.db.ctrdb-tmp.1234.aB3dE5gH", "out.db"),
            None
        );
        assert_eq!(
            temp_pid(".out.db.ctrdb-tmp.1234.aB3dE5gH.x", "out.db"),
            None
        );
        assert_eq!(temp_pid("out.db", "out.db"), None);
    }
}
