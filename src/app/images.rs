//! `ctrdb images`: offline `ctr images ls` over every namespace.

use std::io::Write;

use serde::Serialize;

use super::ns_selected;
use crate::report::table::{cell, human_size, labels_cell, write_columns};
use super::{AppError, ExitStatus, Input};
use crate::analysis::refs::{classify, namespace_groups, DigestGroup, RefClass};
use crate::cli::{Format, ImagesArgs};
use crate::containerd::model::{serialize_labels, Labels, Target};
use crate::containerd::{MetaDb, Timestamp};
use crate::report::{hash_alongside, Bytes, InputInfo, Tool, REPORT_SCHEMA_VERSION};

/// One image record on the wire (`images --format jsonl` line, `images[]` in json).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageJson<'a> {
    /// Namespace.
    pub namespace: Bytes<'a>,
    /// Record name.
    pub name: Bytes<'a>,
    /// Target, `null` when the record has no target bucket.
    pub target: Option<&'a Target<'a>>,
    /// Labels.
    #[serde(serialize_with = "serialize_labels")]
    pub labels: &'a Labels<'a>,
    /// Target annotations.
    #[serde(serialize_with = "serialize_labels")]
    pub annotations: &'a Labels<'a>,
    /// `createdat`, RFC 3339 UTC with nanoseconds.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
    /// Name class.
    pub class: RefClass,
    /// Normalized docker reference.
    pub normalized: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ImagesDoc<'a> {
    schema_version: u32,
    tool: Tool,
    command: &'static str,
    input: InputInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    images: Option<Vec<ImageJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Vec<DigestGroup<'a>>>,
}

pub(super) fn run(
    a: &ImagesArgs,
    out: &mut dyn Write,
    _err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let input = Input::from_args(&a.input);
    let file = input.open()?;
    let db = file.db()?;
    let (sha256, meta) =
        hash_alongside(a.input.hash && a.format == Format::Json, db.data(), || {
            MetaDb::decode_records(&db)
        });
    let nss: Vec<_> = meta
        .namespaces
        .iter()
        .filter(|n| ns_selected(&a.namespaces, n.name.0))
        .collect();
    let input_info = || {
        InputInfo::with_sha256(
            &input.path,
            db.data().len() as u64,
            sha256.clone(),
            Some(db.meta().txid),
        )
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    if a.collapse {
        let groups: Vec<DigestGroup<'_>> = nss.iter().flat_map(|n| namespace_groups(n)).collect();
        match a.format {
            Format::Table => {
                let mut rows = vec![vec![
                    "NAMESPACE".into(),
                    "DIGEST".into(),
                    "TYPE".into(),
                    "SIZE".into(),
                    "NAMES".into(),
                ]];
                for g in &groups {
                    rows.push(vec![
                        cell(g.namespace.0),
                        cell(g.digest.0),
                        cell(g.media_type.0),
                        human_size(g.size),
                        g.names
                            .iter()
                            .map(|n| cell(n.name.0))
                            .collect::<Vec<_>>()
                            .join(","),
                    ]);
                }
                write_columns(&mut out, &rows)?;
            }
            Format::Jsonl => write_lines(&mut out, &groups)?,
            Format::Json => write_doc(&mut out, input_info(), None, Some(groups))?,
        }
        out.flush()?;
        return Ok(ExitStatus::Clean);
    }
    let records: Vec<ImageJson<'_>> = nss
        .iter()
        .flat_map(|ns| {
            ns.images.iter().map(move |img| {
                let c = classify(img.name.0, img.target_digest().map(|d| d.0));
                ImageJson {
                    namespace: ns.name,
                    name: img.name,
                    target: img.target.as_ref(),
                    labels: &img.labels,
                    annotations: &img.annotations,
                    created_at: img.created_at,
                    updated_at: img.updated_at,
                    class: c.class,
                    normalized: c.normalized,
                }
            })
        })
        .collect();
    match a.format {
        Format::Table => {
            let mut rows = vec![vec![
                "NAMESPACE".into(),
                "REF".into(),
                "TYPE".into(),
                "DIGEST".into(),
                "SIZE".into(),
                "LABELS".into(),
            ]];
            for r in &records {
                let (ty, dg, sz) = match r.target {
                    Some(t) => (cell(t.media_type.0), cell(t.digest.0), human_size(t.size)),
                    None => ("-".into(), "-".into(), "-".into()),
                };
                rows.push(vec![
                    cell(r.namespace.0),
                    cell(r.name.0),
                    ty,
                    dg,
                    sz,
                    labels_cell(r.labels),
                ]);
            }
            write_columns(&mut out, &rows)?;
        }
        Format::Jsonl => write_lines(&mut out, &records)?,
        Format::Json => write_doc(&mut out, input_info(), Some(records), None)?,
    }
    out.flush()?;
    Ok(ExitStatus::Clean)
}

/// The `--format json` document: the envelope and either the records or the groups.
fn write_doc<'a>(
    out: &mut dyn Write,
    input: InputInfo,
    images: Option<Vec<ImageJson<'_>>>,
    groups: Option<Vec<DigestGroup<'a>>>,
) -> Result<(), AppError> {
    let doc = ImagesDoc {
        schema_version: REPORT_SCHEMA_VERSION,
        tool: Tool::current(),
        command: "images",
        input,
        images,
        groups,
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)?;
    Ok(())
}

/// `--format jsonl`: one object per line.
fn write_lines<T: Serialize>(out: &mut dyn Write, items: &[T]) -> Result<(), AppError> {
    for i in items {
        serde_json::to_writer(&mut *out, i)?;
        writeln!(out)?;
    }
    Ok(())
}
