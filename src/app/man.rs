//! `ctrdb man`: ctrdb(1) in roff, generated from the clap definition. One page
//! holds every command (a section each, with its synopsis and options), so
//! `man ctrdb` answers everything without a page per command to install.

use std::io::Write;

use clap::CommandFactory;
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;

use super::{emit, AppError, ExitStatus, DB_UNDER_ROOT};
use crate::cli::Cli;
use crate::containerd::roots;

pub(super) fn run(out: &mut dyn Write) -> Result<ExitStatus, AppError> {
    let page = page().map_err(AppError::Output)?;
    emit(ExitStatus::Clean, || out.write_all(&page))
}

/// The whole page.
fn page() -> std::io::Result<Vec<u8>> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut page = Vec::new();
    let top = Man::new(cmd.clone()).title("CTRDB");
    top.render_title(&mut page)?;
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    top.render_options_section(&mut page)?;
    // clap_mangen's own list points at a page per command (ctrdb-check(1)),
    // which this single page replaces with a section per command.
    let mut list = Roff::new();
    list.control("SH", ["COMMANDS"]);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        list.control("TP", [])
            .text([bold(name)])
            .text([roman(about)]);
    }
    list.to_writer(&mut page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        Roff::new()
            .control("SH", [name.to_uppercase().as_str()])
            .to_writer(&mut page)?;
        let man = Man::new(sub.clone());
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut part)?;
        }
        page.extend_from_slice(&demote_sections(&part));
    }
    trailer().to_writer(&mut page)?;
    Ok(ascii_only(&page))
}

/// The page with every non-ASCII character as a groff `\[uXXXX]` escape: groff
/// run without a preprocessor (`groff -man`) reads its input as Latin-1 and
/// would garble or warn about UTF-8 (the help text's `→`).
fn ascii_only(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out.into_bytes()
}

/// A command's sections as subsections of its own section: `.SH` control
/// lines become `.SS`. Text lines never start with a bare `.` (roff escapes
/// a leading dot as `\&.`), so only control lines change.
fn demote_sections(roff: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(roff.len());
    for line in roff.split_inclusive(|&b| b == b'\n') {
        match line.strip_prefix(b".SH") {
            Some(rest) => {
                out.extend_from_slice(b".SS");
                out.extend_from_slice(rest);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// EXIT STATUS, FILES and ENVIRONMENT: the contract a script relies on.
fn trailer() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "clean: nothing found, or the operation succeeded"),
        (
            "1",
            "findings (check: problems; dedup dry run: something would be removed)",
        ),
        (
            "2",
            "error: unreadable file, I/O error, bad usage, or a refused operation",
        ),
        (
            "3",
            "the database is in use (locked by another process, such as a running containerd)",
        ),
    ] {
        r.control("TP", [])
            .text([bold(code)])
            .text([roman(meaning)]);
    }
    r.control("SH", ["FILES"]);
    let default = roots::containerd_default();
    r.control("TP", [])
        .text([bold(default.db().display().to_string())])
        .text([roman(format!(
            "the database read when neither DB nor --root is given; under a containerd root DIR it is DIR/{DB_UNDER_ROOT}"
        ))]);
    for i in roots::embedded() {
        r.control("TP", [])
            .text([bold(i.db().display().to_string())])
            .text([roman(format!(
                "{}'s database, read when the default does not exist and no other of these does",
                i.name
            ))]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    r.control("TP", [])
        .text([bold(super::NAMESPACE_ENV)])
        .text([roman(
        "the namespace images and refs list when no -n is given, as for ctr (dedup never reads it)",
    )]);
    r
}
