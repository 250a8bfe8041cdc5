//! Command-line definition (clap derive). Values are parsed into the library's
//! types here, at the boundary (`--policy` into [`Policy`], `--keep` into
//! [`Glob`]); [`crate::app`] turns the rest into plain configuration.

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analysis::dedup::{Glob, Policy};
use crate::bolt::check::Severity;
use crate::bolt::BucketPath;
use crate::oci::Platform;
use crate::report::{DumpFormat, Format};

fn parse_glob(pattern: &str) -> Result<Glob, std::convert::Infallible> {
    Ok(Glob::new(pattern))
}

fn parse_platform(s: &str) -> Result<Platform, String> {
    Platform::parse(s)
        .ok_or_else(|| format!("'{s}' is not OS/ARCH or OS/ARCH/VARIANT (e.g. linux/arm64/v8)"))
}

/// Offline inspection, checking and repair of containerd's metadata database.
///
/// ctrdb reads meta.db (a bbolt file) directly, with containerd stopped or on a
/// copy. It never waits for a lock: if containerd holds the file it exits at once
/// with code 3.
///
/// Exit codes: 0 clean, 1 findings, 2 error, 3 database in use.
#[derive(Debug, Parser)]
#[command(name = "ctrdb", version, about, long_about)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Structural check of the bbolt file (like `bbolt check`, but it keeps going
    /// and reports every problem with its page, offset and bucket path).
    Check(CheckArgs),
    /// Print the raw bucket tree: keys, values (text or hex) and bucket sequences.
    Dump(DumpArgs),
    /// File geometry, schema version and containerd family, per-namespace record counts.
    Inspect(InspectArgs),
    /// List image records of every namespace (offline `ctr images ls`; with
    /// --root, SIZE and PLATFORMS as ctr computes them from the content store,
    /// else the target's own size).
    Images(ImagesArgs),
    /// The digest → references map: every name per target digest, classified and flagged.
    Refs(RefsArgs),
    /// Write a compact copy of the database (like `bbolt compact`): every bucket,
    /// sequence, key and value, with no free pages. The copy is verified against the
    /// source before it is put in place; the source is never modified.
    Compact(CompactArgs),
    /// Remove redundant image names under a safety policy. Without --output or
    /// --in-place this is a dry run: every name kept, removed or protected and why,
    /// and what containerd's GC would collect before and after (exit 1 when
    /// something would be removed). See docs/dedup.md.
    Dedup(DedupArgs),
    /// Repair a damaged database: a fresh, valid copy that keeps every record
    /// that can be read whole, from the newest tree or the other meta page's.
    /// Without --output this is a dry run: what is damaged, what each record
    /// would come from, what is lost (exit 1 when anything is damaged). A
    /// lease holds what the repaired file would let containerd's GC delete.
    /// See docs/repair.md.
    Repair(RepairArgs),
    /// Records carved from what the newest tree no longer reaches: the other
    /// meta page's tree and leaf pages no tree reaches, placed only where
    /// containerd's schema and the live records place them. Each is deleted
    /// or an older version of a live record. See docs/forensics.md.
    Carve(CarveArgs),
    /// List container records of every namespace (offline `ctr containers ls`);
    /// in JSON each with its runtime spec decoded. `--spec ID` prints one
    /// container's spec, as `ctr containers info --spec` does.
    Containers(ContainersArgs),
    /// Every record's creation and last update in time order: images,
    /// containers, content, snapshots, leases, sandboxes (one event a line).
    Timeline(TimelineArgs),
    /// Compare two snapshots of one node's database record by record: the
    /// images, containers, content, snapshots, leases, sandboxes, ingests and
    /// namespaces added, removed or changed (with the fields that differ).
    /// Exit 1 when they differ. See docs/forensics.md.
    Diff(DiffArgs),
    /// Print a shell completion script on standard output (install: see README).
    Completions(CompletionsArgs),
    /// Print the manual page, ctrdb(1), as roff on standard output
    /// (`ctrdb man | man -l -`).
    Man,
}

/// `ctrdb completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// The shells `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (with the bash-completion package).
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Where the database is and how to open it.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Path to meta.db [default: /var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db].
    #[arg(value_name = "DB")]
    pub db: Option<PathBuf>,

    /// A containerd root directory; the database is
    /// DIR/io.containerd.metadata.v1.bolt/meta.db (`images` also reads image
    /// sizes and platforms from its content store, as `ctr images ls`).
    #[arg(long, value_name = "DIR", conflicts_with = "db")]
    pub root: Option<PathBuf>,

    /// Do not lock the file; read it into memory instead of mapping it. Only for
    /// copies (e.g. on read-only media). UNSAFE on a live file: a running
    /// containerd may change it while it is read, giving a torn, meaningless view.
    #[arg(long)]
    pub no_lock: bool,

    /// In JSON reports, record the SHA-256 of the input (`input.sha256`) and of a
    /// written file (`output.sha256`). Off by default: hashing reads the whole
    /// file once more and costs about as much as the analysis (~0.7 s per GB).
    #[arg(long)]
    pub hash: bool,
}

/// `ctrdb check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// The least severe finding that makes the exit status 1: `warning` (any
    /// finding) or `error` (warnings alone exit 0, for monitoring).
    #[arg(long, value_enum, value_name = "SEVERITY", default_value = "warning")]
    pub fail_on: Severity,
}

/// `ctrdb dump`.
#[derive(Debug, Args)]
pub struct DumpArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Only this bucket and below, e.g. `v1/k8s.io/images`. Names are written as
    /// ctrdb prints them: a `/` inside a name as `\x2f`, any byte as `\xNN`.
    #[arg(long, value_name = "BUCKET/PATH")]
    pub path: Option<BucketPath>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = DumpFormat::Table)]
    pub format: DumpFormat,
}

/// `ctrdb inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `ctrdb images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Only these namespaces (repeatable) [default: $CONTAINERD_NAMESPACE if set,
    /// else all]. A namespace the file does not have is an error.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// One row per target digest (per namespace) with all its names.
    #[arg(long)]
    pub collapse: bool,

    /// With a containerd root: the platform whose manifest an index's SIZE
    /// counts [default: this machine's, as for ctr]; e.g. linux/arm64/v8 for a
    /// root copied from an arm64 node.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<Platform>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Print the image names only, one per line.
    #[arg(short, long, conflicts_with_all = ["format", "collapse"])]
    pub quiet: bool,
}

/// `ctrdb refs`.
#[derive(Debug, Args)]
pub struct RefsArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Only these namespaces (repeatable) [default: $CONTAINERD_NAMESPACE if set,
    /// else all]. A namespace the file does not have is an error.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Print the image names only, one per line, grouped by target digest.
    #[arg(short, long, conflicts_with = "format")]
    pub quiet: bool,
}

/// `ctrdb compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Where to write the compacted copy (never the input itself).
    #[arg(long, short = 'o', value_name = "OUT")]
    pub output: PathBuf,

    /// Replace OUT if it exists.
    #[arg(long)]
    pub force: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// Where a writing command (`dedup`, `repair`) writes: nowhere (a dry run), a
/// new file, or the database itself.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Write the new file to OUT (verified before it is put in place; the input
    /// is never touched).
    #[arg(long, short = 'o', value_name = "OUT", conflicts_with = "in_place")]
    pub output: Option<PathBuf>,

    /// Replace OUT if it exists.
    #[arg(long, requires = "output")]
    pub force: bool,

    /// Replace the database itself (containerd must be stopped): exclusive lock,
    /// timestamped backup next to it, verified new file, atomic rename; a
    /// database with nothing to change is left as it is.
    #[arg(long, conflicts_with = "no_lock")]
    pub in_place: bool,

    /// Where --in-place puts the backup [default: DB.ctrdb-backup-<UTC time>];
    /// refused if it exists.
    #[arg(long, value_name = "PATH", requires = "in_place")]
    pub backup: Option<PathBuf>,
}

/// `ctrdb carve`.
#[derive(Debug, Args)]
pub struct CarveArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Only these namespaces (repeatable) [default: all]. A namespace the file
    /// does not have is an error.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `ctrdb containers`.
#[derive(Debug, Args)]
pub struct ContainersArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Only these namespaces (repeatable) [default: $CONTAINERD_NAMESPACE if set,
    /// else all]. A namespace the file does not have is an error.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Print the decoded runtime spec of the container ID (in JSON: the
    /// container alone). With several namespaces selected, the ID must be in
    /// exactly one.
    #[arg(long, value_name = "ID")]
    pub spec: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Print the container ids only, one per line.
    #[arg(short, long, conflicts_with_all = ["format", "spec"])]
    pub quiet: bool,
}

/// `ctrdb timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Only these namespaces (repeatable) [default: $CONTAINERD_NAMESPACE if set,
    /// else all]. A namespace the file does not have is an error.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Output format (`jsonl`: one event per line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `ctrdb diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older snapshot's meta.db.
    #[arg(value_name = "OLD")]
    pub old: PathBuf,

    /// The newer snapshot's meta.db.
    #[arg(value_name = "NEW")]
    pub new: PathBuf,

    /// Only these namespaces (repeatable) [default: all].
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    /// Do not lock the files; read them into memory instead of mapping them.
    /// Only for copies: a running containerd may change a live file while it
    /// is read.
    #[arg(long)]
    pub no_lock: bool,

    /// In JSON reports, record the SHA-256 of both inputs.
    #[arg(long)]
    pub hash: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `ctrdb repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub write: WriteArgs,

    /// With a containerd root: the platform the node pulled images for
    /// [default: this machine's]. Of an image index, the manifest a pull for it
    /// fetched is followed when lost content records are re-created from the
    /// content store; e.g. linux/arm64/v8 for a root copied from an arm64 node.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", value_parser = parse_platform)]
    pub platform: Option<Platform>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

/// `--fail-on` of `check`: the checker's severities.
impl ValueEnum for Severity {
    fn value_variants<'a>() -> &'a [Self] {
        &[Severity::Error, Severity::Warning]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

/// `--policy` of `dedup` (docs/dedup.md): parsed straight into the planner's type.
impl ValueEnum for Policy {
    fn value_variants<'a>() -> &'a [Self] {
        &[Policy::Safe, Policy::Tagged, Policy::OnePerDigest]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Policy::Safe => {
                "Non-canonical aliases (`nginx:latest` beside `docker.io/library/nginx:latest`) \
                 and CRI image-ID aliases (`sha256:<id>`) beside a kept `repo@digest`"
            }
            Policy::Tagged => {
                "`safe`, plus the untagged names (`repo@digest`, `sha256:<id>`) of every \
                 target that keeps a tag (nerdctl's --kube-hide-dupe, at rest). Pods pinned \
                 by digest then need a re-pull"
            }
            Policy::OnePerDigest => {
                "One name per target (containers', pinned, tag, repo@digest, ID, other). \
                 Drops tags: writing needs --yes"
            }
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}

/// `ctrdb dedup`.
#[derive(Debug, Args)]
pub struct DedupArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Which names are redundant.
    #[arg(long, value_enum, default_value = "safe")]
    pub policy: Policy,

    /// Keep every name matching GLOB (`*`, `?`; matched against the name as
    /// stored and its normalized form). Repeatable.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub keep: Vec<Glob>,

    /// Only deduplicate in these namespaces (repeatable); names elsewhere stay.
    #[arg(short = 'n', long = "namespace", value_name = "NS")]
    pub namespaces: Vec<String>,

    #[command(flatten)]
    pub write: WriteArgs,

    /// Confirm a plan that drops tags (needed to write with --policy one-per-digest).
    #[arg(long)]
    pub yes: bool,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}
