//! Writing a new database file safely: write to a temporary file beside the target,
//! sync it, verify it by re-reading it, give it the source's mode and owner, rename it
//! into place and sync the directory. On any failure the temporary file is removed, so
//! nothing half-written is ever left at the target. Used by `compact` and `dedup`.
//!
//! Error messages leave out their cause; print the chain (`{:#}` in anyhow) to see it.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::db::{DbFile, LockMode};
use super::error::Error as ReadError;
use super::writer::{Mismatch, WriteError};

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
        Err(e) => return Err(OutputError::Io { op: "stat", path: target.to_path_buf(), source: e }),
    }
    let name =
        target.file_name().ok_or_else(|| OutputError::NotAFile(target.to_path_buf()))?.to_string_lossy().into_owned();
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!(".{name}.ctrdb-tmp.{}.", std::process::id());
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .rand_bytes(8)
        .tempfile_in(&dir)
        .map_err(ioerr("create a temporary file in", &dir))?;
    let tmp_path = tmp.path().to_path_buf();
    // From here on, returning early drops `tmp`, which removes the file.
    let produced = write(tmp.as_file_mut(), &tmp_path)?;
    tmp.as_file().sync_all().map_err(ioerr("sync", &tmp_path))?;
    let checked = {
        let f = DbFile::open(&tmp_path, LockMode::Shared)
            .map_err(|source| OutputError::ReadBack { path: tmp_path.clone(), source })?;
        verify(&produced, f.bytes())?
    };
    let size = tmp.as_file().metadata().map_err(ioerr("stat", &tmp_path))?.len();
    tmp.as_file().set_permissions(src_meta.permissions()).map_err(ioerr("set the mode of", &tmp_path))?;
    // Best effort: only root may give a file away, and failing is not an error.
    let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(src_meta.uid()), Some(src_meta.gid()));
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
                OutputError::Io { op: "rename the new file to", path: target.to_path_buf(), source: e.error }
            }
        })?;
    }
    File::open(&dir).and_then(|d| d.sync_all()).map_err(ioerr("sync directory", &dir))?;
    Ok((produced, checked, Written { path: target.to_path_buf(), size }))
}
