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
use crate::oci::ImageView;

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
    /// With a containerd root: the image's size and platforms as `ctr images
    /// ls` computes them from the content store.
    pub content: Option<ImageView>,
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
        if let Some(v) = &self.content {
            m.serialize_entry("imageSize", &v.size)?;
            m.serialize_entry("platforms", &v.platforms)?;
            m.serialize_entry("contentError", &v.error.as_ref().map(|e| e.to_string()))?;
        }
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

/// The records as a table. With the content store (every row has
/// [`ImageRow::content`]), SIZE and PLATFORMS are `ctr images ls`'s; without
/// it the size is the target descriptor's own (the manifest or index), and
/// the header says so.
pub fn write_table(
    out: &mut dyn Write,
    rows: &[ImageRow<'_, '_>],
    with_content: bool,
) -> io::Result<()> {
    let mut header: Vec<String> = ["NAMESPACE", "REF", "TYPE", "DIGEST"]
        .map(String::from)
        .to_vec();
    if with_content {
        header.extend(["SIZE", "PLATFORMS"].map(String::from));
    } else {
        header.push(TARGET_SIZE.into());
    }
    header.push("LABELS".into());
    let mut table = vec![header];
    for r in rows {
        let (ty, dg, sz) = match r.target {
            Some(t) => (cell(t.media_type.0), cell(t.digest.0), human_size(t.size)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let mut row = vec![cell(r.namespace.0), cell(r.name.0), ty, dg];
        match (&r.content, with_content) {
            (Some(v), _) => {
                row.push(ctr_size(v.size));
                row.push(if v.platforms.is_empty() {
                    "-".into()
                } else {
                    v.platforms.join(",")
                });
            }
            (None, true) => row.extend(["-".to_string(), "-".to_string()]),
            (None, false) => row.push(sz),
        }
        row.push(labels_cell(r.labels));
        table.push(row);
    }
    write_columns(out, &table)
}

/// The size column's header when it is the target descriptor's size (not the
/// image's, which needs the content store: `--root`).
pub const TARGET_SIZE: &str = "TARGET SIZE";

/// A size as `ctr` prints it (containerd's `progress.Bytes`: go-units'
/// `CustomSize("%02.1f %s", size, 1024, B…YiB)`): `1.8 KiB`, `555.0 B`.
pub fn ctr_size(n: i64) -> String {
    const UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut v = n as f64;
    let mut units = UNITS.iter();
    let mut unit = units.next().copied().unwrap_or("B");
    for u in units {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    // Go's width 2 never pads: "0.0" is already three characters.
    format!("{v:.1} {unit}")
}

/// The collapsed groups as a table.
pub fn write_groups_table(out: &mut dyn Write, groups: &[DigestGroup<'_>]) -> io::Result<()> {
    let mut table = vec![vec![
        "NAMESPACE".into(),
        "DIGEST".into(),
        "TYPE".into(),
        TARGET_SIZE.into(),
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
