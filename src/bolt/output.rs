//! Writing a new database file safely: write to a temporary file beside the target,
//! sync it, verify it by re-reading it, give it the source's mode and owner, rename it
//! into place and sync the directory. On any failure the temporary file is removed, so
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

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::db::{DbFile, LockMode};
use super::error::Error as ReadError;
use super::writer::{Mismatch, WriteError};
use crate::fault;

/// Errors of [`write_verified`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// The target exists and overwriting was not allowed.
    #[error("'{0}' already exists (use --force to replace it)")]
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
    #[error("writing '{path}' failed")]
    Write {
        /// The temporary file.
        path: PathBuf,
        /// The cause.
        source: WriteError,
    },
    /// The new file could not be read back.
    #[error("the new file '{path}' cannot be read back")]
    ReadBack {
        /// The temporary file.
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
/// `verify(&produced, bytes)` re-reads the synced bytes and checks them. The source's
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
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(8)
        .tempfile_in(&dir)
        .map_err(ioerr("create a temporary file in", &dir))?;
    let tmp_path = tmp.path().to_path_buf();
    // From here on, returning early drops `tmp`, which removes the file.
    fault::point("write-begin").map_err(ioerr("write", &tmp_path))?;
    let produced = write(tmp.as_file_mut(), &tmp_path)?;
    fault::point("before-fsync").map_err(ioerr("sync", &tmp_path))?;
    tmp.as_file().sync_all().map_err(ioerr("sync", &tmp_path))?;
    fault::point("after-fsync").map_err(ioerr("sync", &tmp_path))?;
    let checked = {
        let f =
            DbFile::open(&tmp_path, LockMode::Shared).map_err(|source| OutputError::ReadBack {
                path: tmp_path.clone(),
                source,
            })?;
        verify(&produced, f.bytes())?
    };
    fault::point("after-verify").map_err(ioerr("verify", &tmp_path))?;
    let size = tmp
        .as_file()
        .metadata()
        .map_err(ioerr("stat", &tmp_path))?
        .len();
    tmp.as_file()
        .set_permissions(src_meta.permissions())
        .map_err(ioerr("set the mode of", &tmp_path))?;
    // Best effort: only root may give a file away, and failing is not an error.
    let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(src_meta.uid()), Some(src_meta.gid()));
    fault::point("before-rename").map_err(ioerr("rename the new file to", target))?;
    if opts.overwrite || opts.replace_source {
        tmp.persist(target).map_err(|e| OutputError::Io {
            op: "rename the new file onto",
            path: target.to_path_buf(),
            source: e.error,
        })?;
    } else {
        tmp.persist_noclobber(target).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                OutputError::Exists(target.to_path_buf())
            } else {
                OutputError::Io {
                    op: "rename the new file to",
                    path: target.to_path_buf(),
                    source: e.error,
                }
            }
        })?;
    }
    fault::point("after-rename").map_err(ioerr("sync directory", &dir))?;
    fault::point("before-dir-fsync").map_err(ioerr("sync directory", &dir))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(ioerr("sync directory", &dir))?;
    Ok((
        produced,
        checked,
        Written {
            path: target.to_path_buf(),
            size,
            stale_removed,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
