//! The `ctrdb` binary: parse arguments, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use ctrdb::app::{self, ExitStatus};
use ctrdb::bytes::escape_controls;
use ctrdb::cli::Cli;

#[cfg(feature = "heap-stats")]
#[global_allocator]
static ALLOC: ctrdb::heapstats::Counting = ctrdb::heapstats::Counting;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if app::stdout_was_closed() {
        eprintln!("ctrdb: error: standard output is closed: the report would be lost");
        return ExitCode::from(ExitStatus::Error as u8);
    }
    let stdout = std::io::stdout();
    // stderr is not held locked for the run: a message from another thread
    // (a progress bar, a worker) would block on the lock forever.
    let result = app::run(cli, &mut stdout.lock(), &mut std::io::stderr());
    let status = match result {
        Ok(s) => s,
        Err(e) if e.is_broken_pipe() => ExitStatus::Clean,
        Err(e) => {
            let err = anyhow::Error::new(e);
            eprintln!("ctrdb: error: {}", escape_controls(&format!("{err:#}")));
            err.downcast_ref::<app::AppError>()
                .map_or(ExitStatus::Error, app::AppError::exit_status)
        }
    };
    #[cfg(feature = "heap-stats")]
    if std::env::var_os("CTRDB_HEAP_STATS").is_some() {
        eprintln!("ctrdb-heap-peak-bytes: {}", ctrdb::heapstats::peak());
    }
    ExitCode::from(status as u8)
}
