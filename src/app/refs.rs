//! `ctrdb refs`: the digest → references map.

use std::io::Write;

use rayon::prelude::*;
use serde::Serialize;

use super::ns_selected;
use crate::report::table::{cell, human_size};
use super::{AppError, ExitStatus, Input};
use crate::analysis::refs::{self, NameRef, RefsMap};
use crate::cli::{Format, RefsArgs};
use crate::containerd::MetaDb;
use crate::report::{hash_alongside, InputInfo, Tool, REPORT_SCHEMA_VERSION};

/// The whole `refs` document as one serde value: what [`write_json_doc`] must
/// reproduce byte for byte (the test's reference).
#[cfg(test)]
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RefsDoc<'a> {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
    #[serde(flatten)]
    map: &'a RefsMap<'a>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Line<'a> {
    Group(&'a refs::DigestGroup<'a>),
    Shared(&'a refs::SharedDigest<'a>),
}

pub(super) fn run(
    a: &RefsArgs,
    out: &mut dyn Write,
    _err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let input = Input::from_args(&a.input);
    let file = input.open()?;
    let db = file.db()?;
    let (sha256, (meta, map)) =
        hash_alongside(a.input.hash && a.format == Format::Json, db.data(), || {
            let mut meta = MetaDb::decode_records(&db);
            meta.namespaces
                .retain(|n| ns_selected(&a.namespaces, n.name.0));
            let map = refs::build(&meta);
            (meta, map)
        });
    // The map borrows from the file, not from the records: those are freed on a
    // second thread while this one writes the output.
    std::thread::scope(|s| {
        s.spawn(move || drop(meta));
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        match a.format {
            Format::Table => print_table(&mut out, &map)?,
            Format::Jsonl => {
                for g in &map.groups {
                    serde_json::to_writer(&mut out, &Line::Group(g))?;
                    writeln!(out)?;
                }
                for s in &map.shared {
                    serde_json::to_writer(&mut out, &Line::Shared(s))?;
                    writeln!(out)?;
                }
            }
            Format::Json => {
                let head = RefsHead {
                    schema_version: REPORT_SCHEMA_VERSION,
                    tool: Tool::current(),
                    command: "refs",
                    input: InputInfo::with_sha256(
                        &input.path,
                        db.data().len() as u64,
                        sha256,
                        Some(db.meta().txid),
                    ),
                };
                write_json_doc(&mut out, &head, &map, JSON_CHUNK)?;
                writeln!(out)?;
            }
        }
        out.flush()?;
        Ok(ExitStatus::Clean)
    })
}

/// The `refs` document's fields before the map.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RefsHead {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
}

/// Groups per parallel serialization task.
const JSON_CHUNK: usize = 512;

/// Writes the document `{head…, "groups": […], "shared": […]}` exactly as
/// `serde_json::to_writer_pretty` writes it, with the arrays' elements
/// serialized on all threads, `chunk` per task.
fn write_json_doc(
    out: &mut dyn Write,
    head: &RefsHead,
    map: &RefsMap<'_>,
    chunk: usize,
) -> std::io::Result<()> {
    let head = serde_json::to_vec_pretty(head)?;
    let open = head
        .strip_suffix(b"\n}")
        .ok_or_else(|| std::io::Error::other("unexpected JSON for the report head"))?;
    out.write_all(open)?;
    out.write_all(b",\n  \"groups\": ")?;
    write_pretty_array(out, &map.groups, 1, chunk)?;
    out.write_all(b",\n  \"shared\": ")?;
    write_pretty_array(out, &map.shared, 1, chunk)?;
    out.write_all(b"\n}")
}

/// Writes `items` as a pretty JSON array value at nesting `depth`, each element
/// serialized straight into its chunk's buffer by [`NestedPretty`] starting one
/// level deeper.
fn write_pretty_array<T: Serialize + Sync>(
    out: &mut dyn Write,
    items: &[T],
    depth: usize,
    chunk: usize,
) -> std::io::Result<()> {
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    let chunks: Vec<std::io::Result<Vec<u8>>> = items
        .par_chunks(chunk.max(1))
        .map(|c| {
            let mut buf = Vec::new();
            for (i, item) in c.iter().enumerate() {
                let mut element = NestedPretty::at(depth + 1);
                element.newline(&mut buf, i > 0)?;
                item.serialize(&mut serde_json::Serializer::with_formatter(
                    &mut buf, element,
                ))?;
            }
            Ok(buf)
        })
        .collect();
    out.write_all(b"[")?;
    for (k, c) in chunks.into_iter().enumerate() {
        if k > 0 {
            out.write_all(b",")?;
        }
        out.write_all(&c?)?;
    }
    NestedPretty::at(depth).newline(out, false)?;
    out.write_all(b"]")
}

/// serde_json's pretty layout (two-space indent, `": "` after keys, every
/// element on its own line, empty arrays and objects as `[]` and `{}`) for a
/// value that sits `level` levels deep in the document, so an element can be
/// serialized in place instead of pretty-printed alone and re-indented.
struct NestedPretty {
    level: usize,
    has_value: bool,
}

impl NestedPretty {
    fn at(level: usize) -> NestedPretty {
        NestedPretty {
            level,
            has_value: false,
        }
    }

    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> std::io::Result<()> {
        self.level = self.level.saturating_sub(1);
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(bracket)
    }

    /// A line break (after a comma if `comma`) and the current indentation.
    fn newline<W: ?Sized + Write>(&mut self, w: &mut W, comma: bool) -> std::io::Result<()> {
        const SPACES: [u8; 64] = [b' '; 64];
        w.write_all(if comma { b",\n" } else { b"\n" })?;
        let mut n = 2 * self.level;
        while n > 0 {
            let k = n.min(SPACES.len());
            w.write_all(SPACES.get(..k).unwrap_or_default())?;
            n -= k;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for NestedPretty {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.newline(w, !first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

fn flags(n: &NameRef<'_>) -> String {
    let mut f = Vec::new();
    if n.managed {
        f.push("managed".to_string());
    }
    if n.pinned {
        f.push("pinned".to_string());
    }
    if n.digest_matches_target == Some(false) {
        f.push("digest≠target".to_string());
    }
    if !n.used_by_containers.is_empty() {
        f.push(format!(
            "containers={}",
            n.used_by_containers
                .iter()
                .map(|c| cell(c.0))
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    if !n.leased_by.is_empty() {
        f.push(format!(
            "leases={}",
            n.leased_by
                .iter()
                .map(|c| cell(c.0))
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    for l in &n.named_by_labels {
        f.push(format!("named-by={}:{}", l.owner, cell(l.key.0)));
    }
    for (k, v) in &n.gc_labels {
        f.push(format!("{}={}", cell(k.0), cell(v.0)));
    }
    if f.is_empty() {
        String::new()
    } else {
        format!("  [{}]", f.join(" "))
    }
}

fn print_table(out: &mut dyn Write, map: &RefsMap<'_>) -> std::io::Result<()> {
    let multi = map.multi_name_groups().count();
    writeln!(
        out,
        "{} target digests, {} with more than one name",
        map.groups.len(),
        multi
    )?;
    for g in &map.groups {
        writeln!(
            out,
            "{} {} {} {}{}  ({} name{})",
            cell(g.namespace.0),
            cell(g.digest.0),
            cell(g.media_type.0),
            human_size(g.size),
            if g.dangling { " DANGLING" } else { "" },
            g.names.len(),
            if g.names.len() == 1 { "" } else { "s" }
        )?;
        for n in &g.names {
            writeln!(
                out,
                "  {:<12} {}  -> {}{}",
                n.class.name(),
                cell(n.name.0),
                n.normalized.as_deref().unwrap_or("-"),
                flags(n)
            )?;
        }
    }
    if !map.shared.is_empty() {
        writeln!(
            out,
            "digests targeted in more than one namespace (never duplicates):"
        )?;
        for s in &map.shared {
            let nss: Vec<String> = s
                .namespaces
                .iter()
                .map(|n| format!("{} ({})", cell(n.namespace.0), n.names))
                .collect();
            writeln!(out, "  {}  {}", cell(s.digest.0), nss.join(", "))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parallel writer's bytes equal serde_json's pretty printer's for the
    /// whole document, on every real fixture, with every chunk size that splits
    /// the arrays differently.
    #[test]
    fn parallel_json_is_serde_pretty_json() {
        super::super::for_each_fixture_db(|path, db| {
            let meta = MetaDb::decode_records(db);
            let map = refs::build(&meta);
            let head = || RefsHead {
                schema_version: REPORT_SCHEMA_VERSION,
                tool: Tool::current(),
                command: "refs",
                input: InputInfo::with_sha256(path, 1, Some("ab".into()), Some(7)),
            };
            let h = head();
            let want = serde_json::to_vec_pretty(&RefsDoc {
                schema_version: h.schema_version,
                tool: h.tool,
                command: h.command,
                input: h.input,
                map: &map,
            })
            .expect("serde");
            let empty = RefsMap::default();
            let want_empty = serde_json::to_vec_pretty(&RefsDoc {
                schema_version: REPORT_SCHEMA_VERSION,
                tool: Tool::current(),
                command: "refs",
                input: head().input,
                map: &empty,
            })
            .expect("serde");
            for chunk in [1, 2, 3, JSON_CHUNK] {
                let mut got = Vec::new();
                write_json_doc(&mut got, &head(), &map, chunk).expect("write");
                assert!(got == want, "{}: chunk {chunk} differs", path.display());
                let mut got = Vec::new();
                write_json_doc(&mut got, &head(), &empty, chunk).expect("write");
                assert!(got == want_empty, "empty map, chunk {chunk}");
            }
        });
    }
}
