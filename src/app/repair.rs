//! `ctrdb repair`: a damaged database written afresh with every record that
//! can be read whole ([`ops::repair`]).

use std::io::Write;

use super::{emit, hash_wanted, note_stale_removed, AppError, ExitStatus, Input};
use crate::cli::RepairArgs;
use crate::ops::repair::{self, Mode};
use crate::report::{self, InputInfo};

pub(super) fn run(
    a: &RepairArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    file.advise_sequential();
    let layout = a.format.document_layout();
    let hash = hash_wanted(&a.input, layout.is_some())?;
    let mode = match &a.output {
        Some(target) => Mode::Output {
            target: target.clone(),
            overwrite: a.force,
        },
        None => Mode::DryRun,
    };
    let outcome = repair::run(&db, &input.path, &mode)?;
    if let Some(w) = &outcome.written {
        note_stale_removed(err, w.stale_removed.iter().map(|p| p.as_path()))?;
    }
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
            report::repair::write_json(out, layout, info, &outcome)
        }
        None => report::repair::write_table(out, &input.path, &outcome),
    })
}
