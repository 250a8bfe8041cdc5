//! Operations that write: verified copies ([`copy`]) and the dedup run with its
//! GC proof ([`dedup`]). They sit above the planners (`analysis`) and the safe
//! write protocol (`fsio`), and below the report and the commands: nothing here
//! formats output or knows the command line.

pub mod copy;
pub mod dedup;

use std::path::{Path, PathBuf};

use crate::bolt;
use crate::fsio::atomic::OutputError;

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
