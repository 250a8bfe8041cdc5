//! The report of `dedup`: every decision with its reason, the GC impact before
//! and after, and what was written.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::table::{cell, write_aligned, Align};
use std::os::unix::ffi::OsStrExt;

use super::wire::{Json, OsBytes, PathBytes};
use super::{Envelope, InputInfo, Layout};
use crate::analysis::dedup::{Action, Decision, NamespaceSummary, Plan};
use crate::analysis::gc::{Collectable, Impact};
use crate::analysis::refs::SharedDigest;
use crate::bytes::{escape_controls, Bytes};
use crate::ops::dedup::{Mode, Outcome};
use crate::time::Civil;

/// How many collectable records a message lists before "and N more".
pub const DESCRIBED: usize = 5;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Dedup<'r, 'a> {
    policy: &'static str,
    mode: &'static str,
    namespaces: &'r [String],
    keep: &'r [String],
    decisions: Json<'r, [Decision<'a>]>,
    shared: Json<'r, [SharedDigest<'a>]>,
    gc: Gc<'r, 'a>,
    summary: Summary<'r, 'a>,
    warnings: &'r [String],
    refused: Option<&'r str>,
    output: Option<Output>,
    backup: Option<Backup<'r>>,
    rollback: Option<OsBytes>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'r, 'a> {
    names: usize,
    kept: usize,
    removed: usize,
    protected: usize,
    newly_collectable: usize,
    namespaces: Json<'r, [NamespaceSummary<'a>]>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Gc<'r, 'a> {
    rules: &'static str,
    now: String,
    before: Json<'r, Collectable<'a>>,
    after: Json<'r, Collectable<'a>>,
    newly_collectable: Json<'r, Collectable<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Output {
    path: PathBytes,
    size: u64,
    sha256: Option<String>,
    txid: u64,
    removed_buckets: usize,
    buckets: u64,
    keys: u64,
    verified: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Backup<'r> {
    path: PathBytes,
    sha256: &'r str,
}

/// What the command line asked for, as the report repeats it.
#[derive(Debug)]
pub struct Request<'r> {
    /// The database.
    pub db: &'r Path,
    /// What was written.
    pub mode: &'r Mode,
    /// `-n` as given.
    pub namespaces: &'r [String],
    /// `--keep` as given.
    pub keep: &'r [String],
    /// Why the plan was refused, as told to the user.
    pub refused: Option<&'r str>,
    /// `--yes` was given.
    pub confirmed: bool,
}

/// The tags a plan drops, for a sentence: `1 tag (a:1 in default)`, `no tag`,
/// at most [`DESCRIBED`] names and then how many more.
pub fn dropped_tags_phrase(plan: &Plan<'_>) -> String {
    let tags: Vec<String> = plan
        .dropped_tags()
        .map(|d| format!("{} in {}", cell(d.name.0), cell(d.namespace.0)))
        .collect();
    match tags.len() {
        0 => "no tag".into(),
        n => {
            let mut shown = tags
                .iter()
                .take(DESCRIBED)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if n > DESCRIBED {
                shown.push_str(&format!(" and {} more", n - DESCRIBED));
            }
            format!("{n} tag{} ({shown})", if n == 1 { "" } else { "s" })
        }
    }
}

fn mode_name(m: &Mode) -> &'static str {
    match m {
        Mode::DryRun => "dryRun",
        Mode::Output { .. } => "output",
        Mode::InPlace { .. } => "inPlace",
    }
}

/// The JSON report (`--format json` or `jsonl`, as `layout` says).
pub fn write_json(
    out: &mut dyn Write,
    layout: Layout,
    input: InputInfo,
    req: &Request<'_>,
    o: &Outcome<'_>,
) -> io::Result<()> {
    let plan = &o.plan;
    let impact = &o.impact;
    let body = Dedup {
        policy: plan.policy.name(),
        mode: mode_name(req.mode),
        namespaces: req.namespaces,
        keep: req.keep,
        decisions: Json(&plan.decisions),
        shared: Json(&plan.shared),
        gc: Gc {
            rules: impact.rules.name(),
            now: Civil::from_system(impact.now).rfc3339_nanos(),
            before: Json(&impact.before),
            after: Json(&impact.after),
            newly_collectable: Json(&impact.newly),
        },
        summary: Summary {
            names: plan.decisions.len(),
            kept: plan.decisions.len() - plan.removed_count(),
            removed: plan.removed_count(),
            protected: plan.protected_count(),
            newly_collectable: impact.newly.len(),
            namespaces: Json(&plan.namespaces),
        },
        warnings: &plan.warnings,
        refused: req.refused,
        output: o.written.as_ref().map(|w| Output {
            path: PathBytes(w.copy.written.path.clone()),
            size: w.copy.written.size,
            sha256: w.copy.sha256.clone(),
            txid: w.copy.summary.txid,
            removed_buckets: w.removed_buckets,
            buckets: w.copy.compared.buckets,
            keys: w.copy.compared.keys,
            verified: true,
        }),
        backup: o.backup.as_ref().map(|b| Backup {
            path: PathBytes(b.path.clone()),
            sha256: &b.sha256,
        }),
        rollback: o
            .backup
            .as_ref()
            .map(|b| OsBytes(b.restore_command(req.db))),
    };
    super::write_document(out, &Envelope::new("dedup", input, body), layout)
}

/// The report for people.
pub fn write_table(out: &mut dyn Write, req: &Request<'_>, o: &Outcome<'_>) -> io::Result<()> {
    write_plan(out, req.db, &o.plan, &o.impact, req.mode)?;
    if let Some(w) = &o.written {
        writeln!(
            out,
            "wrote {} ({} bytes): {} image record(s) removed; every other bucket, key, value and sequence verified \
             identical to the input",
            w.copy.written.path.display(),
            w.copy.written.size,
            w.removed_buckets
        )?;
    } else if matches!(req.mode, Mode::InPlace { .. }) && req.refused.is_none() {
        writeln!(
            out,
            "nothing to remove: {} left unchanged",
            req.db.display()
        )?;
    }
    if let Some(b) = &o.backup {
        writeln!(out, "backup: {} (sha256 {})", b.path.display(), b.sha256)?;
        // The command's bytes as they are: a path that is not UTF-8 must reach
        // the shell exactly.
        writeln!(out, "to roll back, with containerd stopped:")?;
        out.write_all(b"    ")?;
        out.write_all(b.restore_command(req.db).as_bytes())?;
        writeln!(out)?;
    }
    if !req.mode.writes() && req.refused.is_none() {
        if o.plan.removed_count() > 0 && o.plan.policy.needs_confirmation() && !req.confirmed {
            writeln!(
                out,
                "dry run: nothing written; --policy {} removes {}, so writing (--output OUT or --in-place) needs --yes",
                o.plan.policy.name(),
                dropped_tags_phrase(&o.plan)
            )?;
        } else if o.plan.removed_count() > 0 {
            writeln!(
                out,
                "dry run: nothing written; write with --output OUT or --in-place"
            )?;
        } else {
            writeln!(out, "dry run: nothing to remove")?;
        }
    }
    Ok(())
}

fn write_plan(
    out: &mut dyn Write,
    path: &Path,
    plan: &Plan<'_>,
    impact: &Impact<'_>,
    mode: &Mode,
) -> io::Result<()> {
    writeln!(
        out,
        "{}: policy {} ({})",
        path.display(),
        plan.policy.name(),
        match mode {
            Mode::InPlace { .. } => "in place",
            Mode::Output { .. } => "writing a cleaned copy",
            Mode::DryRun => "dry run",
        }
    )?;
    let mut last: Option<(&Bytes<'_>, Option<&Bytes<'_>>)> = None;
    // Decisions come grouped by (namespace, target digest): a group's size is
    // the length of its run.
    for (i, d) in plan.decisions.iter().enumerate() {
        let key = (&d.namespace, d.target.as_ref().map(|t| &t.digest));
        if last != Some(key) {
            let n = plan.decisions[i..]
                .iter()
                .take_while(|x| (&x.namespace, x.target.as_ref().map(|t| &t.digest)) == key)
                .count();
            let digest = d
                .target
                .as_ref()
                .map_or_else(|| "(no target)".into(), |t| cell(t.digest.0));
            writeln!(
                out,
                "{} {}  ({} name{})",
                cell(d.namespace.0),
                digest,
                n,
                if n == 1 { "" } else { "s" }
            )?;
            last = Some(key);
        }
        let action = match (d.action, d.is_protected()) {
            (Action::Remove, _) => "remove",
            (Action::Keep, true) => "PROTECT",
            (Action::Keep, false) => "keep",
        };
        writeln!(
            out,
            "  {action:<8} {:<12} {}  [{}] {}",
            d.class.name(),
            cell(d.name.0),
            d.reason.name(),
            escape_controls(&d.detail)
        )?;
    }
    super::refs::write_shared(
        out,
        "digests targeted in more than one namespace (never deduplicated across namespaces):",
        &plan.shared,
    )?;
    writeln!(out, "per namespace:")?;
    let count = |n: usize| n.to_string();
    let mut rows = vec![["NAMESPACE", "NAMES", "KEPT", "REMOVED", "PROTECTED"]
        .map(String::from)
        .to_vec()];
    rows.extend(plan.namespaces.iter().map(|n| {
        vec![
            cell(n.namespace.0),
            count(n.names),
            count(n.kept),
            count(n.removed),
            count(n.protected),
        ]
    }));
    // "(total)" cannot be a namespace: containerd's names are letters, digits
    // and inner '.', '_', '-'.
    rows.push(vec![
        "(total)".into(),
        count(plan.decisions.len()),
        count(plan.decisions.len() - plan.removed_count()),
        count(plan.removed_count()),
        count(plan.protected_count()),
    ]);
    let r = Align::Right;
    write_aligned(out, "  ", &rows, &[Align::Left, r, r, r, r])?;
    writeln!(
        out,
        "GC impact (containerd {} rules, at {}):",
        impact.rules.name(),
        Civil::from_system(impact.now).rfc3339_nanos()
    )?;
    writeln!(
        out,
        "  the input as it is: containerd would collect {}",
        impact.before.counts()
    )?;
    if !impact.before.is_empty() {
        writeln!(out, "    ({})", impact.before.describe(DESCRIBED))?;
    }
    writeln!(
        out,
        "  after the plan:     containerd would collect {}",
        impact.after.counts()
    )?;
    writeln!(out, "  newly collectable:  {}", impact.newly.counts())?;
    for w in &plan.warnings {
        writeln!(out, "warning: {}", escape_controls(w))?;
    }
    Ok(())
}
