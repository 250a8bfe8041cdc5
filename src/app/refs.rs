//! `ctrdb refs`: the digest → references map.

use std::io::Write;

use serde::Serialize;

use super::table::{cell, human_size, ns_selected};
use super::{AppError, ExitStatus, Input};
use crate::analysis::refs::{self, NameRef, RefsMap};
use crate::cli::{Format, RefsArgs};
use crate::containerd::MetaDb;
use crate::report::{hash_alongside, InputInfo, Tool, REPORT_SCHEMA_VERSION};

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
    let (sha256, map) = hash_alongside(a.input.hash && a.format == Format::Json, db.data(), || {
        let mut meta = MetaDb::decode_records(&db);
        meta.namespaces
            .retain(|n| ns_selected(&a.namespaces, n.name.0));
        refs::build(&meta)
    });
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
            let doc = RefsDoc {
                schema_version: REPORT_SCHEMA_VERSION,
                tool: Tool::current(),
                command: "refs",
                input: InputInfo::with_sha256(
                    &input.path,
                    db.data().len() as u64,
                    sha256,
                    Some(db.meta().txid),
                ),
                map: &map,
            };
            serde_json::to_writer_pretty(&mut out, &doc)?;
            writeln!(out)?;
        }
    }
    out.flush()?;
    Ok(ExitStatus::Clean)
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
