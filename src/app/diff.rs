//! `ctrdb diff`: two snapshots of one node compared record by record
//! ([`analysis::diff`]).

use std::io::Write;

use super::{damage_in, emit, hash_wanted, AppError, ExitStatus, Input};
use crate::analysis::diff;
use crate::cli::{DiffArgs, InputArgs};
use crate::containerd::MetaDb;
use crate::report::diff::{self as report, Summary};

pub(super) fn run(
    a: &DiffArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let args = |db: &std::path::PathBuf| InputArgs {
        db: Some(db.clone()),
        root: None,
        no_lock: a.no_lock,
        hash: a.hash,
    };
    let layout = a.format.document_layout();
    let (old_args, new_args) = (args(&a.old), args(&a.new));
    let hash = hash_wanted(&old_args, layout.is_some())?;
    let (old_input, old_file) = Input::open_args(&old_args, err)?;
    let (new_input, new_file) = Input::open_args(&new_args, err)?;
    let (old, new) = (old_file.db()?, new_file.db()?);
    // A comparison with a damaged tree would report what the damage hides as
    // removed or added: refused, as dedup refuses to plan.
    for (input, db) in [(&old_input, &old), (&new_input, &new)] {
        let meta = MetaDb::decode_records(db);
        if let Some(first) = damage_in(&meta, &a.namespaces).first() {
            return Err(AppError::Refused(format!(
                "'{}' is damaged ({}), so a comparison would count what the damage hides as removed or added; 'ctrdb check' lists the damage, 'ctrdb repair' rebuilds the file",
                input.path.display(),
                first.describe()
            )));
        }
    }
    let selected = |c: &diff::Change<'_>| {
        a.namespaces.is_empty()
            || c.id
                .namespace
                .as_ref()
                .is_some_and(|n| a.namespaces.iter().any(|f| f.as_bytes() == n.as_slice()))
    };
    let mut changes = Vec::new();
    let mut summary = Summary::default();
    diff::diff(&old, &new, |c| {
        if selected(&c) {
            summary.add(&c);
            changes.push(c);
        }
    })
    .map_err(|e| {
        AppError::Refused(format!(
            "{e}; 'ctrdb check' lists the damage, 'ctrdb repair' rebuilds the file"
        ))
    })?;
    let status = if summary.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    };
    let sha = |input: &Input, db: &crate::bolt::Db<'_>| {
        input.info(db, hash.then(|| crate::bytes::sha256_hex(db.data())))
    };
    emit(status, || match layout {
        Some(layout) => report::write_json(
            out,
            layout,
            sha(&old_input, &old),
            sha(&new_input, &new),
            summary,
            &changes,
        ),
        None => report::write_table(out, &old_input.path, &new_input.path, summary, &changes),
    })
}
