//! `ctrdb check`: the structural check of the bbolt file and the containerd
//! schema decode, reported together (exit 1 on any finding).

use std::io::Write;

use super::{emit, hash_wanted, AppError, ExitStatus, Input};
use crate::bolt::check::{self, Severity};
use crate::cli::CheckArgs;
use crate::containerd::MetaDb;
use crate::report::check as report;
use crate::report::hash_alongside;
use crate::report::Format;

pub(super) fn run(
    a: &CheckArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    let (sha256, (structure, schema)) = hash_alongside(
        hash_wanted(&a.input, a.format != Format::Table)?,
        db.data(),
        || {
            // One after the other, each parallel inside: on top of each other their
            // heaps would add up, and running them together gains no wall time.
            let structure = check::check(&db);
            (structure, MetaDb::decode(&db))
        },
    );
    let summary = report::summary(&db, &structure, &schema);
    // Severities order from `Error` to `Warning`: a finding counts when it is
    // at least as severe as `--fail-on`. Omitted findings count (their
    // severity is unknown).
    let counts = |s: Severity| s <= a.fail_on;
    let failing = structure.omitted > 0
        || structure.findings.iter().any(|f| counts(f.severity))
        || schema.findings.iter().any(|f| counts(f.severity()));
    let status = if failing {
        ExitStatus::Findings
    } else {
        ExitStatus::Clean
    };
    emit(status, || match a.format.document_layout() {
        None => report::write_table(out, &input.path, &summary, &structure, &schema),
        Some(layout) => {
            let info = input.info(&db, sha256);
            report::write_json(out, info, &summary, &structure, &schema, layout)
        }
    })
}
