//! Operations that write: verified copies ([`copy`]) and the dedup run with its
//! GC proof ([`dedup`]). They sit above the planners (`analysis`) and the safe
//! write protocol (`fsio`), and below the report and the commands: nothing here
//! formats output or knows the command line.

pub mod copy;
pub mod dedup;

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
}

impl From<bolt::Corruption> for Error {
    fn from(c: bolt::Corruption) -> Error {
        Error::Read(bolt::Error::from(c))
    }
}
