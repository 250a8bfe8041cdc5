//! The commands: configuration from the CLI, the library calls, and the exit
//! status. Output goes to the writers passed in so tests can capture it.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::bolt;
use crate::cli::{Cli, Command, InputArgs};
use crate::containerd::roots::{self, Discovery, Installation};
use crate::containerd::MetaDb;
use crate::fsio::atomic::OutputError;
use crate::ops;
use crate::report::{self, InputInfo};

mod check;
mod compact;
mod completions;
mod dedup;
mod dump;
mod images;
mod inspect;
mod man;
mod refs;

pub use crate::containerd::roots::DB_UNDER_ROOT;

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
fn in_use_advice(e: &bolt::Error) -> &'static str {
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
            e @ (ops::Error::InPlace { .. } | ops::Error::Damaged { .. }) => AppError::Operation(e),
        }
    }
}

/// Whether to hash the input (`--hash`): it is recorded in a JSON report's
/// envelope, so with an output that has none (a table, JSON lines of records,
/// a dump) it is refused rather than ignored.
fn hash_wanted(a: &InputArgs, has_envelope: bool) -> Result<bool, AppError> {
    if a.hash && !has_envelope {
        return Err(AppError::Usage(
            "--hash records the input's SHA-256 in the JSON report: use it with --format json"
                .into(),
        ));
    }
    Ok(a.hash)
}

/// Whether the process was started with its standard output closed
/// (`ctrdb check >&-`). Rust's runtime then opens `/dev/null` read-write on
/// descriptor 1, so every write "succeeds" and the report is lost; a user's
/// own `> /dev/null` opens it write-only. Linux's `/proc/self/fdinfo` tells the
/// two apart; where it cannot be read, the output is taken as open.
pub fn stdout_was_closed() -> bool {
    const O_ACCMODE: u32 = 0o3;
    const O_RDWR: u32 = 0o2;
    let is_null = std::fs::read_link("/proc/self/fd/1").is_ok_and(|p| p == Path::new("/dev/null"));
    let flags = std::fs::read_to_string("/proc/self/fdinfo/1")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("flags:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        });
    is_null && flags.is_some_and(|f| f & O_ACCMODE == O_RDWR)
}

/// Runs `write` (a command's output) and returns the command's `status`. A
/// reader that closes the pipe early (`ctrdb check | head`) is not an error:
/// the rest of the output is dropped and the status stays the command's.
fn emit(
    status: ExitStatus,
    write: impl FnOnce() -> std::io::Result<()>,
) -> Result<ExitStatus, AppError> {
    match write() {
        Ok(()) => Ok(status),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(status),
        Err(e) => Err(AppError::Output(e)),
    }
}

/// Tells the user about temporary files of killed earlier runs that were removed.
fn note_stale_removed<'p>(
    err: &mut dyn Write,
    removed: impl IntoIterator<Item = &'p std::path::Path>,
) -> std::io::Result<()> {
    for p in removed {
        writeln!(
            err,
            "ctrdb: note: removed '{}', left behind by an earlier ctrdb run that was killed",
            p.display()
        )?;
    }
    Ok(())
}

/// Where to read the database from, resolved from the arguments.
#[derive(Debug, Clone)]
pub struct Input {
    /// The database path.
    pub path: PathBuf,
    /// The containerd root it was found under (`--root`, or a discovered
    /// installation); `None` for a `DB` path.
    pub root: Option<PathBuf>,
    /// The lock to take.
    pub lock: bolt::LockMode,
}

impl Input {
    /// Resolves `DB`, `--root`, or else the database of the installation this
    /// machine has ([`roots::discover`] over the known ones); a database found
    /// elsewhere than containerd's default is named on `err`.
    pub fn from_args(a: &InputArgs, err: &mut dyn Write) -> Result<Input, AppError> {
        Input::resolve(a, &roots::containerd_default(), &roots::embedded(), err)
    }

    /// [`Input::from_args`] with the candidate installations given: `default`
    /// first, then `others`.
    pub fn resolve(
        a: &InputArgs,
        default: &Installation,
        others: &[Installation],
        err: &mut dyn Write,
    ) -> Result<Input, AppError> {
        let (path, root) = match (&a.db, &a.root) {
            (Some(p), _) => (p.clone(), None),
            (None, Some(root)) => (root.join(DB_UNDER_ROOT), Some(root.clone())),
            (None, None) => match roots::discover(default, others) {
                Discovery::Default(i) => (i.db(), Some(i.root)),
                Discovery::Found(i) => {
                    writeln!(
                        err,
                        "ctrdb: note: no {}; using {}'s database {} (give DB or --root DIR to choose)",
                        default.db().display(),
                        i.name,
                        i.db().display()
                    )?;
                    (i.db(), Some(i.root))
                }
                Discovery::NotFound(tried) => {
                    return Err(AppError::Usage(format!(
                        "no containerd database found; tried {}. Give its path (DB) or the containerd root (--root DIR)",
                        roots::describe(&tried)
                    )))
                }
                Discovery::Several(found) => {
                    return Err(AppError::Usage(format!(
                        "no {}, and several installations have a database: {}. Choose one with --root DIR or DB",
                        default.db().display(),
                        roots::describe(&found)
                    )))
                }
            },
        };
        let lock = if a.no_lock {
            bolt::LockMode::None
        } else {
            bolt::LockMode::Shared
        };
        Ok(Input { path, root, lock })
    }

    /// Opens the file under the configured lock.
    pub fn open(&self) -> Result<bolt::DbFile, AppError> {
        Ok(bolt::DbFile::open(&self.path, self.lock)?)
    }

    /// Resolves the arguments and opens the file under a shared lock (or none
    /// with `--no-lock`).
    pub fn open_args(
        a: &InputArgs,
        err: &mut dyn Write,
    ) -> Result<(Input, bolt::DbFile), AppError> {
        let input = Input::from_args(a, err)?;
        let file = input.open()?;
        Ok((input, file))
    }

    /// The report's record of this input, with its SHA-256 if it was computed.
    pub fn info(&self, db: &bolt::Db<'_>, sha256: Option<String>) -> InputInfo {
        InputInfo::with_sha256(
            &self.path,
            db.data().len() as u64,
            sha256,
            Some(db.meta().txid),
        )
    }
}

/// Refuses a snapshotter's database for a command that reads or writes
/// containerd's metadata records (`what` it would do): there are none to plan
/// or list, and a plan would be invented from its buckets.
fn require_metadata(db: &bolt::Db<'_>, path: &Path, command: &str) -> Result<(), AppError> {
    if crate::containerd::kind::identify(db) != crate::containerd::DbKind::Snapshotter {
        return Ok(());
    }
    let beside = crate::containerd::kind::metadata_db_beside(path)
        .map(|p| format!(" (this root's is {})", p.display()))
        .unwrap_or_default();
    Err(AppError::Refused(format!(
        "{} is {}; `ctrdb {command}` works only on containerd's metadata database{beside}",
        path.display(),
        crate::containerd::kind::SNAPSHOTTER_DB
    )))
}

/// The namespaces a listing is limited to: `-n` as given, else the
/// `CONTAINERD_NAMESPACE` variable when `honour_env` (as `ctr` does), else all
/// (empty). A namespace the file does not have is an error that names those it
/// has: a typo must not look like an empty result.
fn resolve_namespaces(
    db: &bolt::Db<'_>,
    path: &Path,
    given: &[String],
    honour_env: bool,
) -> Result<Vec<String>, AppError> {
    let chosen: Vec<String> = if !given.is_empty() {
        given.to_vec()
    } else if honour_env {
        std::env::var(NAMESPACE_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let listed = crate::containerd::namespaces::namespace_names(db);
    let names = &listed.names;
    let unknown: Vec<&String> = chosen
        .iter()
        .filter(|n| !names.contains(&n.as_bytes()))
        .collect();
    if let Some(first) = unknown.first() {
        let from_env = given.is_empty();
        let has: Vec<String> = names.iter().map(|n| crate::bytes::display(n)).collect();
        return Err(AppError::Usage(format!(
            "no namespace '{}'{} in {}; it has: {}{}",
            crate::bytes::escape_controls(first),
            if from_env {
                format!(" (from {NAMESPACE_ENV})")
            } else {
                String::new()
            },
            path.display(),
            if has.is_empty() {
                "none".to_string()
            } else {
                has.join(", ")
            },
            if listed.damaged {
                " (the file is damaged and may hide others: 'ctrdb check' lists the damage)"
            } else {
                ""
            }
        )));
    }
    Ok(chosen)
}

/// The environment variable `ctr` takes its namespace from.
pub const NAMESPACE_ENV: &str = "CONTAINERD_NAMESPACE";

/// Whether `ns` passes a `-n` filter (empty = all).
fn ns_selected(filter: &[String], ns: &[u8]) -> bool {
    filter.is_empty() || filter.iter().any(|f| f.as_bytes() == ns)
}

/// The damage behind a result read from the namespaces `filter` selects.
fn damage_in(meta: &MetaDb<'_>, filter: &[String]) -> Vec<report::Finding> {
    meta.damage(|ns| ns_selected(filter, ns))
        .into_iter()
        .map(report::Finding::schema)
        .collect()
}

/// A result computed on a damaged tree says so: one warning line on `err` (the
/// result is still written), the first problem named. The command puts
/// `damage` in its JSON envelope and exits 1.
fn tell_damage(
    err: &mut dyn Write,
    path: &Path,
    damage: &[report::Finding],
) -> std::io::Result<()> {
    let Some(first) = damage.first() else {
        return Ok(());
    };
    let more = match damage.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    writeln!(
        err,
        "ctrdb: warning: '{}' is damaged, so this result misses what the damage hides: {}{more}; 'ctrdb check' lists every problem",
        path.display(),
        first.describe(),
    )
}

/// Exit 1 when the result was read from a damaged tree.
fn status_of(damage: &[report::Finding]) -> ExitStatus {
    if damage.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<ExitStatus, AppError> {
    match cli.command {
        Command::Check(a) => check::run(&a, out, err),
        Command::Dump(a) => dump::run(&a, out, err),
        Command::Inspect(a) => inspect::run(&a, out, err),
        Command::Images(a) => images::run(&a, out, err),
        Command::Refs(a) => refs::run(&a, out, err),
        Command::Compact(a) => compact::run(&a, out, err),
        Command::Dedup(a) => dedup::run(&a, out, err),
        Command::Completions(a) => completions::run(&a, out),
        Command::Man => man::run(out),
    }
}
