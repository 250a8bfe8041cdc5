//! `ctrdb dedup`: the arguments into an [`ops::dedup::Job`], the run, its
//! report, and the exit status (a refusal is an error: exit 2).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use super::{
    emit, hash_wanted, note_stale_removed, require_metadata, resolve_namespaces, AppError,
    ExitStatus, Input,
};
use crate::analysis::dedup::PlanOptions;
use crate::cli::DedupArgs;
use crate::ops::dedup::{self as op, Job, Outcome, Refusal};
use crate::report::dedup::{self as report, Request, DESCRIBED};
use crate::report::InputInfo;

/// Files at least this large get a progress spinner (on a terminal, not in JSON mode).
const PROGRESS_MIN_BYTES: usize = 64 << 20;

pub(super) fn run(
    a: &DedupArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let mut input = Input::from_args(&a.input, err)?;
    let mode = input.write_mode(&a.write);
    let layout = a.format.document_layout();
    let json = layout.is_some();
    let hash = hash_wanted(&a.input, json)?;
    let job = Job {
        plan: PlanOptions {
            policy: a.policy,
            keep: a.keep.clone(),
            namespaces: a.namespaces.iter().map(|n| n.as_bytes().to_vec()).collect(),
        },
        mode,
        confirmed: a.yes,
        hash,
    };
    // Held until the end of the run: for --in-place, an exclusive lock.
    let file = input.open()?;
    let db = file.db()?;
    require_metadata(&db, &input.path, "dedup")?;
    // A write planner does not take its scope from the environment: only `-n`.
    resolve_namespaces(&db, &input.path, &a.namespaces, false)?;
    let spinner = spinner(job.mode.writes() && !json && db.data().len() >= PROGRESS_MIN_BYTES);
    let outcome = op::run(&file, &db, &job, &|m| {
        if let Some(p) = &spinner {
            p.set_message(m);
        }
    });
    if let Some(p) = spinner {
        p.finish_and_clear();
    }
    let outcome = outcome?;
    note_stale_removed(err, outcome.stale_removed())?;
    let refused = outcome
        .refused
        .as_ref()
        .map(|r| refusal_message(r, &job, &outcome));
    let keep: Vec<String> = a.keep.iter().map(|g| g.pattern()).collect();
    let req = Request {
        db: &input.path,
        mode: &job.mode,
        namespaces: &a.namespaces,
        keep: &keep,
        refused: refused.as_deref(),
        confirmed: a.yes,
    };
    let status = if job.mode.writes() || outcome.plan.removed_count() == 0 {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    };
    let mut w = std::io::BufWriter::with_capacity(1 << 16, out);
    let status = emit(status, || {
        match layout {
            Some(layout) => {
                let info = InputInfo::new(&input.path, db.data(), hash, Some(db.meta().txid));
                report::write_json(&mut w, layout, info, &req, &outcome)?;
            }
            None => report::write_table(&mut w, &req, &outcome)?,
        }
        w.flush()
    })?;
    match refused {
        Some(why) => Err(AppError::Refused(why)),
        None => Ok(status),
    }
}

/// Why nothing was written, in the words of the command line.
fn refusal_message(r: &Refusal, job: &Job, o: &Outcome<'_>) -> String {
    match r {
        Refusal::GcProof => format!(
            "the plan would make {} record(s) newly collectable by containerd's GC ({}); nothing is written. \
             This is a ctrdb bug or a record ctrdb does not expect: please report it with `--format json`",
            o.impact.newly.len(),
            o.impact.newly.describe(DESCRIBED)
        ),
        Refusal::NeedsConfirmation { removed } => format!(
            "--policy {} would remove {removed} image name(s), among them {} that no kept name replaces; \
             review the dry run and add --yes to write",
            job.plan.policy.name(),
            report::dropped_tags_phrase(&o.plan)
        ),
        Refusal::BackupExists(path) => format!(
            "the backup path '{}' already exists; choose another with --backup PATH",
            path.display()
        ),
    }
}

/// A spinner on stderr, when `wanted` and stderr is a terminal.
fn spinner(wanted: bool) -> Option<indicatif::ProgressBar> {
    if !wanted || !std::io::stderr().is_terminal() {
        return None;
    }
    let p = indicatif::ProgressBar::new_spinner();
    p.enable_steady_tick(Duration::from_millis(120));
    p.set_message("writing");
    Some(p)
}
