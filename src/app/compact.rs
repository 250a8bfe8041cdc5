//! `ctrdb compact`: a fresh, gap-free copy of the database, verified before it
//! is put in place ([`ops::copy::compact`]).

use std::io::Write;

use super::{emit, hash_wanted, note_stale_removed, AppError, ExitStatus, Input};
use crate::cli::CompactArgs;
use crate::ops;
use crate::report::{self, InputInfo};

pub(super) fn run(
    a: &CompactArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    file.advise_sequential();
    let layout = a.format.document_layout();
    let hash = hash_wanted(&a.input, layout.is_some())?;
    let copied = ops::copy::compact(&db, &input.path, &a.output, a.force, hash)?;
    note_stale_removed(
        err,
        copied.written.stale_removed.iter().map(|p| p.as_path()),
    )?;
    emit(ExitStatus::Clean, || match layout {
        Some(layout) => {
            let info = InputInfo::new(&input.path, db.data(), hash, Some(db.meta().txid));
            report::compact::write_json(out, layout, info, &db, &copied)
        }
        None => report::compact::write_table(out, &input.path, &db, &copied),
    })
}
