//! `ctrdb completions SHELL`: a completion script generated from the clap
//! definition, so it cannot drift from the options the binary takes.

use std::io::Write;

use clap::CommandFactory;

use super::{emit, AppError, ExitStatus};
use crate::cli::{Cli, CompletionsArgs, Shell};

pub(super) fn run(a: &CompletionsArgs, out: &mut dyn Write) -> Result<ExitStatus, AppError> {
    let shell = match a.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // Generated into memory first: clap_complete panics on a failed write,
    // and a closed pipe (`| head`) must keep the exit status as every command does.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ctrdb", &mut script);
    emit(ExitStatus::Clean, || out.write_all(&script))
}
