//! The one home of ctrdb's output formats: the JSON reports (versioned,
//! specified in `docs/report.md`) and the tables for people. Nothing below this
//! layer serializes or formats output.
//!
//! [`envelope`] ties a report to the exact input file, [`wire`] holds the JSON
//! forms of byte strings, labels and timestamps, [`table`] the column writer.

pub mod carve;
pub mod check;
pub mod compact;
pub mod containers;
pub mod dedup;
pub mod diff;
pub mod dump;
pub mod envelope;
pub mod findings;
pub mod images;
pub mod inspect;
pub mod refs;
pub mod repair;
pub mod table;
pub mod timeline;
pub mod wire;

pub use envelope::{hash_alongside, Envelope, InputInfo, Tool};
pub use findings::Finding;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Table,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
}

/// Output formats of `dump`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DumpFormat {
    /// Indented tree; printable values quoted, others in hex.
    Table,
    /// One JSON object per bucket or key.
    Jsonl,
    /// Escaping-free lines for diffing: `B <path> seq=<n>` and `K <path> <key> <value>`,
    /// every name, key and value in lower-case hex (an empty value is `-`), path
    /// components joined by `/`.
    Hex,
}

impl Format {
    /// The layout of a command's one JSON document in this format (`None`: a table).
    pub fn document_layout(self) -> Option<Layout> {
        match self {
            Format::Table => None,
            Format::Json => Some(Layout::Pretty),
            Format::Jsonl => Some(Layout::OneLine),
        }
    }
}

/// How a JSON document is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Indented, as `serde_json::to_writer_pretty` writes it.
    Pretty,
    /// On one line.
    OneLine,
}

/// Version of the JSON report format. Bumped on any incompatible change.
pub const REPORT_SCHEMA_VERSION: u32 = 3;

/// For people: the file at `path` is a snapshotter's database, what it holds,
/// and where the metadata database of the same root is.
pub fn snapshotter_note(path: &std::path::Path) -> String {
    let beside = crate::containerd::kind::metadata_db_beside(path)
        .map(|p| format!("; the images, containers and leases are in {}", p.display()))
        .unwrap_or_default();
    format!(
        "{}: its v1 bucket holds snapshots and their parents, not namespaces, so containerd's \
         metadata schema does not apply{beside}",
        crate::containerd::kind::SNAPSHOTTER_DB
    )
}

/// Writes `doc` in `layout`, and a newline.
pub fn write_document<T: serde::Serialize>(
    out: &mut dyn std::io::Write,
    doc: &T,
    layout: Layout,
) -> std::io::Result<()> {
    match layout {
        Layout::Pretty => write_pretty(out, doc),
        Layout::OneLine => write_lines(out, [doc]),
    }
}

/// Writes `doc` as pretty JSON and a newline.
pub fn write_pretty<T: serde::Serialize>(
    out: &mut dyn std::io::Write,
    doc: &T,
) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, doc)?;
    writeln!(out)
}

/// Writes each item as one line of compact JSON.
pub fn write_lines<T: serde::Serialize>(
    out: &mut dyn std::io::Write,
    items: impl IntoIterator<Item = T>,
) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *out, &item)?;
        writeln!(out)?;
    }
    Ok(())
}
