//! `ctrdb repair`: a damaged database written afresh with every record that
//! can be read whole ([`ops::repair`]).

use std::io::Write;

use super::{emit, hash_wanted, note_stale_removed, AppError, ExitStatus, Input};
use crate::cli::RepairArgs;
use crate::oci::{Matcher, Platform};
use crate::ops::repair;
use crate::report::{self, InputInfo};

pub(super) fn run(
    a: &RepairArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let mut input = Input::from_args(&a.input, err)?;
    if a.platform.is_some() && input.root.is_none() {
        return Err(AppError::Usage(
            "--platform chooses which manifest of an image index the re-created content records follow: give --root DIR".into(),
        ));
    }
    let mode = input.write_mode(&a.write);
    let layout = a.format.document_layout();
    let hash = hash_wanted(&a.input, layout.is_some())?;
    // Held until the end of the run: for --in-place, an exclusive lock.
    let file = input.open()?;
    let db = file.db()?;
    file.advise_sequential();
    // The content store beside the database: --root, or the installation
    // the database was found in.
    let content = input.root.clone().map(|root| repair::ContentRoot {
        root,
        platform: Matcher::only(&a.platform.clone().unwrap_or_else(Platform::host)),
    });
    let outcome = repair::run(&file, &db, &mode, content.as_ref())?;
    let stale = outcome
        .written
        .iter()
        .flat_map(|w| &w.stale_removed)
        .chain(outcome.backup.iter().flat_map(|b| &b.stale_removed));
    note_stale_removed(err, stale.map(|p| p.as_path()))?;

    // Damage found is a finding (1) whether or not the copy was written: the
    // operator must read what was recovered and lost.
    let status = if outcome.clean() {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    };
    emit(status, || match layout {
        Some(layout) => {
            let info = InputInfo::new(&input.path, db.data(), hash, Some(db.meta().txid));
            report::repair::write_json(out, layout, info, &input.path, &outcome)
        }
        None => report::repair::write_table(out, &input.path, &outcome),
    })
}
