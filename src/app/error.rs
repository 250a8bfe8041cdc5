//! The command layer's errors and the documented exit codes they map to.

use std::path::PathBuf;

use crate::bolt;
use crate::fsio::atomic::OutputError;
use crate::ops;

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: nothing found, or the operation succeeded.
    Clean = 0,
    /// 1: findings (problems, or something a dry run would change).
    Findings = 1,
    /// 2: an error: unreadable input, I/O failure, refused operation, bad usage.
    Error = 2,
    /// 3: the database is locked by another process (containerd is running).
    InUse = 3,
}

/// Errors of the command layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// From the bbolt layer.
    #[error(transparent)]
    Bolt(bolt::Error),
    /// The database is locked by another process (a `bolt::Error::Locked`),
    /// with what to do about it for the kind of lock.
    #[error("{}. {}", .0, in_use_advice(.0))]
    InUse(bolt::Error),
    /// Writing the output failed (the cause follows in the error chain).
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    /// Writing a new database file failed or was declined.
    #[error(transparent)]
    Write(OutputError),
    /// An operation failed; the message says in what state it left the files.
    #[error(transparent)]
    Operation(ops::Error),
    /// The output file exists and `--force` was not given.
    #[error("'{0}' already exists (use --force to replace it)")]
    OutputExists(PathBuf),
    /// An operation refused for safety (the message says why and what to do).
    #[error("refused: {0}")]
    Refused(String),
    /// Bad arguments that clap cannot catch.
    #[error("{0}")]
    Usage(String),
}

impl AppError {
    /// The exit status this error maps to.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            AppError::InUse(_) => ExitStatus::InUse,
            _ => ExitStatus::Error,
        }
    }

    /// Whether the error is a closed output pipe (`ctrdb dump | head`), which is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, AppError::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl From<bolt::Error> for AppError {
    fn from(e: bolt::Error) -> AppError {
        match e {
            e @ bolt::Error::Locked { .. } => AppError::InUse(e),
            e => AppError::Bolt(e),
        }
    }
}

/// What to do about a locked database. containerd holds bbolt's write lock for as
/// long as it runs; a read lock is another reader's (a `ctrdb` or `bbolt`
/// command), which blocks only a writer.
pub(super) fn in_use_advice(e: &bolt::Error) -> &'static str {
    match e {
        bolt::Error::Locked {
            holder: Some(bolt::LockHolder { kind: bolt::LockKind::Read, .. }),
            ..
        } => "A reader holds it (not containerd, which holds a write lock): let it finish, or work on a copy of the file",
        _ => "It is probably a running containerd: stop containerd (and anything embedding it: dockerd, k3s, rke2), or work on a copy of the file",
    }
}

impl From<OutputError> for AppError {
    fn from(e: OutputError) -> AppError {
        match e {
            OutputError::Exists(path) => AppError::OutputExists(path),
            e => AppError::Write(e),
        }
    }
}

impl From<ops::Error> for AppError {
    fn from(e: ops::Error) -> AppError {
        match e {
            ops::Error::Read(e) => e.into(),
            ops::Error::Write(e) => e.into(),
            e @ (ops::Error::InPlace { .. }
            | ops::Error::Damaged { .. }
            | ops::Error::ContentStore { .. }) => AppError::Operation(e),
        }
    }
}
