//! The report of `images`: one row per image record (offline `ctr images ls`),
//! or one per target digest with `--collapse`.

use std::io::{self, Write};

use serde::Serialize;

use super::table::{cell, human_size, labels_cell, write_columns};
use super::wire::{Json, LabelMap};
use super::{Envelope, InputInfo};
use crate::analysis::refs::{DigestGroup, RefClass};
use crate::bytes::Bytes;
use crate::containerd::model::{Labels, Target};
use crate::containerd::Timestamp;

/// One image record with its name's classification.
#[derive(Debug)]
pub struct ImageRow<'r, 'a> {
    /// Namespace.
    pub namespace: Bytes<'a>,
    /// Record name.
    pub name: Bytes<'a>,
    /// Target, `None` when the record has no target bucket.
    pub target: Option<&'r Target<'a>>,
    /// Labels.
    pub labels: &'r Labels<'a>,
    /// Target annotations.
    pub annotations: &'r Labels<'a>,
    /// `createdat`.
    pub created_at: Option<Timestamp>,
    /// `updatedat`.
    pub updated_at: Option<Timestamp>,
    /// Name class.
    pub class: RefClass,
    /// Normalized docker reference.
    pub normalized: Option<String>,
}

/// One record on the wire (an `images --format jsonl` line, `images[]` in json).
impl Serialize for ImageRow<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("namespace", &self.namespace)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("target", &self.target.map(Json))?;
        m.serialize_entry("labels", &LabelMap(self.labels))?;
        m.serialize_entry("annotations", &LabelMap(self.annotations))?;
        m.serialize_entry("createdAt", &self.created_at)?;
        m.serialize_entry("updatedAt", &self.updated_at)?;
        m.serialize_entry("class", &Json(&self.class))?;
        m.serialize_entry("normalized", &self.normalized)?;
        m.end()
    }
}

#[derive(Debug, Serialize)]
struct Images<'r, 'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    images: Option<&'r [ImageRow<'r, 'a>]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<Json<'r, [DigestGroup<'a>]>>,
}

/// `--format json` of the records.
pub fn write_json(
    out: &mut dyn Write,
    input: InputInfo,
    rows: &[ImageRow<'_, '_>],
) -> io::Result<()> {
    let body = Images {
        images: Some(rows),
        groups: None,
    };
    super::write_pretty(out, &Envelope::new("images", input, body))
}

/// `--format json` of the collapsed groups.
pub fn write_groups_json(
    out: &mut dyn Write,
    input: InputInfo,
    groups: &[DigestGroup<'_>],
) -> io::Result<()> {
    let body = Images {
        images: None,
        groups: Some(Json(groups)),
    };
    super::write_pretty(out, &Envelope::new("images", input, body))
}

/// `--format jsonl` of the collapsed groups: one per line.
pub fn write_groups_lines(out: &mut dyn Write, groups: &[DigestGroup<'_>]) -> io::Result<()> {
    super::write_lines(out, groups.iter().map(Json))
}

/// `--quiet`: the names, one per line.
pub fn write_names(out: &mut dyn Write, rows: &[ImageRow<'_, '_>]) -> io::Result<()> {
    for r in rows {
        writeln!(out, "{}", cell(r.name.0))?;
    }
    Ok(())
}

/// The records as a table.
pub fn write_table(out: &mut dyn Write, rows: &[ImageRow<'_, '_>]) -> io::Result<()> {
    let mut table = vec![vec![
        "NAMESPACE".into(),
        "REF".into(),
        "TYPE".into(),
        "DIGEST".into(),
        "SIZE".into(),
        "LABELS".into(),
    ]];
    for r in rows {
        let (ty, dg, sz) = match r.target {
            Some(t) => (cell(t.media_type.0), cell(t.digest.0), human_size(t.size)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        table.push(vec![
            cell(r.namespace.0),
            cell(r.name.0),
            ty,
            dg,
            sz,
            labels_cell(r.labels),
        ]);
    }
    write_columns(out, &table)
}

/// The collapsed groups as a table.
pub fn write_groups_table(out: &mut dyn Write, groups: &[DigestGroup<'_>]) -> io::Result<()> {
    let mut table = vec![vec![
        "NAMESPACE".into(),
        "DIGEST".into(),
        "TYPE".into(),
        "SIZE".into(),
        "NAMES".into(),
    ]];
    for g in groups {
        table.push(vec![
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
    write_columns(out, &table)
}
