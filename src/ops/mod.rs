//! Operations that write: verified copies ([`copy`]) and the dedup run with its
//! GC proof ([`dedup`]). They sit above the planners (`analysis`) and the safe
//! write protocol (`fsio`), and below the report and the commands: nothing here
//! formats output or knows the command line.

pub mod copy;
pub mod dedup;
pub mod repair;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::bolt;
use crate::bolt::DbFile;
use crate::containerd::SchemaFinding;
use crate::fsio::atomic::{Backup, OutputError};
use crate::time::Civil;

/// What a writing operation (`dedup`, `repair`) writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Nothing: the report of what it would do.
    DryRun,
    /// A new file at `target`; `overwrite` allows replacing a file there.
    Output {
        /// Where the copy goes.
        target: PathBuf,
        /// Replace an existing file at `target`.
        overwrite: bool,
    },
    /// The database itself, after a backup (at `backup`, or beside the database
    /// with a UTC time stamp). The file must be open under an exclusive lock;
    /// when there is nothing to change, it is left as it is.
    InPlace {
        /// Where the backup goes.
        backup: Option<PathBuf>,
    },
}

impl Mode {
    /// Whether the run writes a file.
    pub fn writes(&self) -> bool {
        *self != Mode::DryRun
    }
}

/// Errors of an operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input could not be read.
    #[error(transparent)]
    Read(#[from] bolt::Error),
    /// Writing or verifying the new file failed, or it was declined.
    #[error(transparent)]
    Write(#[from] OutputError),
    /// The tree is damaged, so a GC prediction made on it would be wrong (what
    /// the damage hides would count as unreferenced): nothing was planned or
    /// written. `findings` holds the damage, the first one first.
    #[error("the database is damaged ({}{}); its GC predictions would be wrong, so nothing was planned or written ('ctrdb check' lists the damage; 'ctrdb repair' rebuilds the file — repair it first)", .findings.first().map(describe_damage).unwrap_or_default(), more(.findings.len()))]
    Damaged {
        /// The structural findings of the decode.
        findings: Vec<SchemaFinding>,
    },
    /// The content store of `--root` could not be listed.
    #[error("cannot read the content store under '{}': {source}", .root.display())]
    ContentStore {
        /// The containerd root.
        root: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An in-place swap failed after the backup was made.
    #[error("{cause}; {}", in_place_state(*.replaced, .backup, *.backup_removed))]
    InPlace {
        /// Why it failed.
        cause: Box<Error>,
        /// Whether the database had already been replaced.
        replaced: bool,
        /// The backup made before the swap.
        backup: PathBuf,
        /// Whether the backup was removed (only while the database is unchanged).
        backup_removed: bool,
    },
}

/// One damage finding in a sentence: where and what.
pub fn describe_damage(f: &SchemaFinding) -> String {
    let page = f.page.map(|p| format!(", page {p}")).unwrap_or_default();
    format!(
        "bucket {}{page}: {}",
        f.path,
        crate::bytes::escape_controls(&f.message)
    )
}

fn more(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        2 => "; and 1 more problem".into(),
        n => format!("; and {} more problems", n - 1),
    }
}

/// What an operator must know after a failed in-place swap.
fn in_place_state(replaced: bool, backup: &Path, removed: bool) -> String {
    match (replaced, removed) {
        (false, true) => format!(
            "the database is unchanged (its backup '{}' was removed)",
            backup.display()
        ),
        (false, false) => format!(
            "the database is unchanged; its backup '{}' is left and may be removed",
            backup.display()
        ),
        (true, _) => format!(
            "the database was replaced; its backup is '{}'",
            backup.display()
        ),
    }
}

impl From<bolt::Corruption> for Error {
    fn from(c: bolt::Corruption) -> Error {
        Error::Read(bolt::Error::from(c))
    }
}

/// The error of an in-place swap that failed after its backup was made. While
/// the database is still the file the run opened (nothing was renamed onto
/// it), the backup is a copy of an unchanged file: it is removed, so a failed
/// run on a full disk gives its space back. Once the database was replaced,
/// the backup is what restores the previous state: it stays, and the error
/// names it.
pub(crate) fn failed_swap(cause: Error, file: &DbFile, backup: Backup) -> Error {
    let still_original = match (fs::metadata(file.path()), file.file().metadata()) {
        (Ok(now), Ok(opened)) => now.dev() == opened.dev() && now.ino() == opened.ino(),
        _ => false,
    };
    let removed = still_original && fs::remove_file(&backup.path).is_ok();
    Error::InPlace {
        cause: Box::new(cause),
        replaced: !still_original,
        backup: backup.path,
        backup_removed: removed,
    }
}

/// `DB.ctrdb-backup-<UTC time>` beside the database.
pub(crate) fn default_backup_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_os_string();
    s.push(format!(
        ".ctrdb-backup-{}",
        Civil::from_system(SystemTime::now()).file_stamp()
    ));
    PathBuf::from(s)
}
