//! The input of a command: which database (from `DB`, `--root` or discovery),
//! which namespaces, whether it is containerd's metadata, and the damage
//! behind a result read from it.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{AppError, ExitStatus};
use crate::bolt;
use crate::cli::{InputArgs, WriteArgs};
use crate::containerd::roots::{self, Discovery, Installation, DB_UNDER_ROOT};
use crate::containerd::MetaDb;
use crate::ops::Mode;

use crate::report::{self, InputInfo};

/// Where to read the database from, resolved from the arguments.
#[derive(Debug, Clone)]
pub struct Input {
    /// The database path.
    pub path: PathBuf,
    /// The containerd root it was found under (`--root`, or a discovered
    /// installation); `None` for a `DB` path.
    pub root: Option<PathBuf>,
    /// The lock to take.
    pub lock: bolt::LockMode,
}

impl Input {
    /// Resolves `DB`, `--root`, or else the database of the installation this
    /// machine has ([`roots::discover`] over the known ones); a database found
    /// elsewhere than containerd's default is named on `err`.
    pub fn from_args(a: &InputArgs, err: &mut dyn Write) -> Result<Input, AppError> {
        Input::resolve(a, &roots::containerd_default(), &roots::embedded(), err)
    }

    /// [`Input::from_args`] with the candidate installations given: `default`
    /// first, then `others`.
    pub fn resolve(
        a: &InputArgs,
        default: &Installation,
        others: &[Installation],
        err: &mut dyn Write,
    ) -> Result<Input, AppError> {
        let (path, root) = match (&a.db, &a.root) {
            (Some(p), _) => (p.clone(), None),
            (None, Some(root)) => (root.join(DB_UNDER_ROOT), Some(root.clone())),
            (None, None) => match roots::discover(default, others) {
                Discovery::Default(i) => (i.db(), Some(i.root)),
                Discovery::Found(i) => {
                    writeln!(
                        err,
                        "ctrdb: note: no {}; using {}'s database {} (give DB or --root DIR to choose)",
                        default.db().display(),
                        i.name,
                        i.db().display()
                    )?;
                    (i.db(), Some(i.root))
                }
                Discovery::NotFound(tried) => {
                    return Err(AppError::Usage(format!(
                        "no containerd database found; tried {}. Give its path (DB) or the containerd root (--root DIR)",
                        roots::describe(&tried)
                    )))
                }
                Discovery::Several(found) => {
                    return Err(AppError::Usage(format!(
                        "no {}, and several installations have a database: {}. Choose one with --root DIR or DB",
                        default.db().display(),
                        roots::describe(&found)
                    )))
                }
            },
        };
        let lock = if a.no_lock {
            bolt::LockMode::None
        } else {
            bolt::LockMode::Shared
        };
        Ok(Input { path, root, lock })
    }

    /// Opens the file under the configured lock.
    pub fn open(&self) -> Result<bolt::DbFile, AppError> {
        Ok(bolt::DbFile::open(&self.path, self.lock)?)
    }

    /// Resolves the arguments and opens the file under a shared lock (or none
    /// with `--no-lock`).
    pub fn open_args(
        a: &InputArgs,
        err: &mut dyn Write,
    ) -> Result<(Input, bolt::DbFile), AppError> {
        let input = Input::from_args(a, err)?;
        let file = input.open()?;
        Ok((input, file))
    }

    /// What a writing command writes, from `--output OUT [--force]` or
    /// `--in-place [--backup PATH]`. In place, the file is to be locked
    /// exclusively and worked on at its real path: a symlinked meta.db stays
    /// a link to the new file, and the backup and the temporary file share
    /// its filesystem.
    pub fn write_mode(&mut self, w: &WriteArgs) -> Mode {
        if w.in_place {
            self.lock = bolt::LockMode::Exclusive;
            if let Ok(real) = std::fs::canonicalize(&self.path) {
                self.path = real;
            }
            return Mode::InPlace {
                backup: w.backup.clone(),
            };
        }
        match &w.output {
            Some(target) => Mode::Output {
                target: target.clone(),
                overwrite: w.force,
            },
            None => Mode::DryRun,
        }
    }

    /// The report's record of this input, with its SHA-256 if it was computed.
    pub fn info(&self, db: &bolt::Db<'_>, sha256: Option<String>) -> InputInfo {
        InputInfo::with_sha256(
            &self.path,
            db.data().len() as u64,
            sha256,
            Some(db.meta().txid),
        )
    }
}

/// Refuses a snapshotter's database for a command that reads or writes
/// containerd's metadata records (`what` it would do): there are none to plan
/// or list, and a plan would be invented from its buckets.
pub(super) fn require_metadata(
    db: &bolt::Db<'_>,
    path: &Path,
    command: &str,
) -> Result<(), AppError> {
    if crate::containerd::kind::identify(db) != crate::containerd::DbKind::Snapshotter {
        return Ok(());
    }
    let beside = crate::containerd::kind::metadata_db_beside(path)
        .map(|p| format!(" (this root's is {})", p.display()))
        .unwrap_or_default();
    Err(AppError::Refused(format!(
        "{} is {}; `ctrdb {command}` works only on containerd's metadata database{beside}",
        path.display(),
        crate::containerd::kind::SNAPSHOTTER_DB
    )))
}

/// The namespaces a listing is limited to: `-n` as given, else the
/// `CONTAINERD_NAMESPACE` variable when `honour_env` (as `ctr` does), else all
/// (empty). A namespace the file does not have is an error that names those it
/// has: a typo must not look like an empty result.
pub(super) fn resolve_namespaces(
    db: &bolt::Db<'_>,
    path: &Path,
    given: &[String],
    honour_env: bool,
) -> Result<Vec<String>, AppError> {
    let chosen: Vec<String> = if !given.is_empty() {
        given.to_vec()
    } else if honour_env {
        std::env::var(NAMESPACE_ENV)
            .ok()
            .filter(|v| !v.is_empty())
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let listed = crate::containerd::namespaces::namespace_names(db);
    let names = &listed.names;
    let unknown: Vec<&String> = chosen
        .iter()
        .filter(|n| !names.contains(&n.as_bytes()))
        .collect();
    if let Some(first) = unknown.first() {
        let from_env = given.is_empty();
        let has: Vec<String> = names.iter().map(|n| crate::bytes::display(n)).collect();
        return Err(AppError::Usage(format!(
            "no namespace '{}'{} in {}; it has: {}{}",
            crate::bytes::escape_controls(first),
            if from_env {
                format!(" (from {NAMESPACE_ENV})")
            } else {
                String::new()
            },
            path.display(),
            if has.is_empty() {
                "none".to_string()
            } else {
                has.join(", ")
            },
            if listed.damaged {
                " (the file is damaged and may hide others: 'ctrdb check' lists the damage)"
            } else {
                ""
            }
        )));
    }
    Ok(chosen)
}

/// The environment variable `ctr` takes its namespace from.
pub const NAMESPACE_ENV: &str = "CONTAINERD_NAMESPACE";

/// Whether `ns` passes a `-n` filter (empty = all).
pub(super) fn ns_selected(filter: &[String], ns: &[u8]) -> bool {
    filter.is_empty() || filter.iter().any(|f| f.as_bytes() == ns)
}

/// The damage behind a result read from the namespaces `filter` selects.
pub(super) fn damage_in(meta: &MetaDb<'_>, filter: &[String]) -> Vec<report::Finding> {
    meta.damage(|ns| ns_selected(filter, ns))
        .into_iter()
        .map(report::Finding::schema)
        .collect()
}

/// A result computed on a damaged tree says so: one warning line on `err` (the
/// result is still written), the first problem named. The command puts
/// `damage` in its JSON envelope and exits 1.
pub(super) fn tell_damage(
    err: &mut dyn Write,
    path: &Path,
    damage: &[report::Finding],
) -> std::io::Result<()> {
    let Some(first) = damage.first() else {
        return Ok(());
    };
    let more = match damage.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    writeln!(
        err,
        "ctrdb: warning: '{}' is damaged, so this result misses what the damage hides: {}{more}; 'ctrdb check' lists every problem, 'ctrdb repair' rebuilds the file",
        path.display(),
        first.describe(),
    )
}

/// Exit 1 when the result was read from a damaged tree.
pub(super) fn status_of(damage: &[report::Finding]) -> ExitStatus {
    if damage.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    }
}
