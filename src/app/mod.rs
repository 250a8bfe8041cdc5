//! The commands: configuration from the CLI, the library calls, and the exit
//! status. Output goes to the writers passed in so tests can capture it.

use std::io::Write;
use std::path::Path;

use crate::cli::{Cli, Command, InputArgs};

mod carve;
mod check;
mod compact;
mod completions;
mod containers;
mod dedup;
mod diff;
mod dump;
mod images;
mod inspect;
mod man;
mod refs;
mod repair;
mod timeline;

mod error;
mod input;

pub use error::{AppError, ExitStatus};
use input::{damage_in, ns_selected, require_metadata, resolve_namespaces, status_of, tell_damage};
pub use input::{Input, NAMESPACE_ENV};

pub use crate::containerd::roots::DB_UNDER_ROOT;

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
        Command::Repair(a) => repair::run(&a, out, err),
        Command::Diff(a) => diff::run(&a, out, err),
        Command::Carve(a) => carve::run(&a, out, err),
        Command::Containers(a) => containers::run(&a, out, err),
        Command::Timeline(a) => timeline::run(&a, out, err),
        Command::Completions(a) => completions::run(&a, out),
        Command::Man => man::run(out),
    }
}
