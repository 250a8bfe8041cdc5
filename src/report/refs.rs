//! The report of `refs`: the digest → references map. The JSON document is
//! written with its arrays' elements serialized on all threads: each chunk is
//! pretty-printed by serde_json inside a wrapper of the array's depth, so its
//! bytes are exactly those of the whole document's pretty printing.

use std::io::{self, Write};

use rayon::prelude::*;
use serde::Serialize;

use super::table::{cell, human_size};
use super::wire::Json;
use super::{Envelope, InputInfo};
use crate::analysis::refs::{DigestGroup, NameRef, RefsMap, SharedDigest};

/// Groups per parallel serialization task.
pub const JSON_CHUNK: usize = 512;

/// The map's two arrays as JSON object fields.
impl Serialize for Json<'_, RefsMap<'_>> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("groups", &Json(&self.0.groups))?;
        m.serialize_entry("shared", &Json(&self.0.shared))?;
        m.end()
    }
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Line<'r, 'a> {
    Group(Json<'r, DigestGroup<'a>>),
    Shared(Json<'r, SharedDigest<'a>>),
}

/// `--format jsonl`: a line per group (`"type": "group"`), then per shared
/// digest (`"type": "shared"`).
pub fn write_lines(out: &mut dyn Write, map: &RefsMap<'_>) -> io::Result<()> {
    super::write_lines(out, map.groups.iter().map(|g| Line::Group(Json(g))))?;
    super::write_lines(out, map.shared.iter().map(|s| Line::Shared(Json(s))))
}

/// `--format json`: exactly `serde_json::to_writer_pretty` of the envelope with
/// the map's fields, and a newline; `chunk` elements per parallel task.
pub fn write_json(
    out: &mut dyn Write,
    input: InputInfo,
    map: &RefsMap<'_>,
    chunk: usize,
) -> io::Result<()> {
    let head = serde_json::to_vec_pretty(&Envelope::new("refs", input, Empty {}))?;
    let open = head
        .strip_suffix(b"\n}")
        .ok_or_else(|| io::Error::other("unexpected JSON for the report head"))?;
    out.write_all(open)?;
    out.write_all(b",\n  \"groups\": ")?;
    write_field_array(out, "groups", &map.groups, chunk, |c| {
        serde_json::to_vec_pretty(&Field {
            key: "groups",
            value: Json(c),
        })
    })?;
    out.write_all(b",\n  \"shared\": ")?;
    write_field_array(out, "shared", &map.shared, chunk, |c| {
        serde_json::to_vec_pretty(&Field {
            key: "shared",
            value: Json(c),
        })
    })?;
    out.write_all(b"\n}\n")
}

#[derive(Serialize)]
struct Empty {}

/// The array `items`, the value of the top-level field `key`, in serde_json's
/// pretty layout. `field` prints a chunk as `{"<key>": [chunk…]}` — the elements
/// then sit at their depth in the document — and the wrapper is cut off; the
/// chunks are joined with the comma that separates elements.
fn write_field_array<T: Sync>(
    out: &mut dyn Write,
    key: &str,
    items: &[T],
    chunk: usize,
    field: impl Fn(&[T]) -> serde_json::Result<Vec<u8>> + Sync,
) -> io::Result<()> {
    if items.is_empty() {
        return out.write_all(b"[]");
    }
    let prefix = format!("{{\n  \"{key}\": [");
    let suffix = "\n  ]\n}";
    let chunks: Vec<io::Result<Vec<u8>>> = items
        .par_chunks(chunk.max(1))
        .map(|c| field(c).map_err(io::Error::from))
        .collect();
    out.write_all(b"[")?;
    for (k, c) in chunks.into_iter().enumerate() {
        let c = c?;
        let inner = c
            .strip_prefix(prefix.as_bytes())
            .and_then(|r| r.strip_suffix(suffix.as_bytes()))
            .ok_or_else(|| io::Error::other("unexpected JSON for a chunk of the report"))?;
        if k > 0 {
            out.write_all(b",")?;
        }
        out.write_all(inner)?;
    }
    out.write_all(b"\n  ]")
}

/// `{"<key>": value}`.
struct Field<'k, V> {
    key: &'k str,
    value: V,
}

impl<V: Serialize> Serialize for Field<'_, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry(self.key, &self.value)?;
        m.end()
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

/// `--quiet`: every name, one per line, in the map's order (by namespace,
/// then target digest).
pub fn write_names(out: &mut dyn Write, map: &RefsMap<'_>) -> io::Result<()> {
    for n in map.groups.iter().flat_map(|g| &g.names) {
        writeln!(out, "{}", cell(n.name.0))?;
    }
    Ok(())
}

/// The map for people: each group with its names and their flags, then the
/// digests shared across namespaces.
pub fn write_table(out: &mut dyn Write, map: &RefsMap<'_>) -> io::Result<()> {
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
    write_shared(
        out,
        "digests targeted in more than one namespace (never duplicates):",
        &map.shared,
    )
}

/// The digests targeted in more than one namespace, under `heading` (nothing
/// when there are none): `  <digest>  <ns> (<names>), …`.
pub fn write_shared(
    out: &mut dyn Write,
    heading: &str,
    shared: &[SharedDigest<'_>],
) -> io::Result<()> {
    if shared.is_empty() {
        return Ok(());
    }
    writeln!(out, "{heading}")?;
    for s in shared {
        let nss: Vec<String> = s
            .namespaces
            .iter()
            .map(|n| format!("{} ({})", cell(n.namespace.0), n.names))
            .collect();
        writeln!(out, "  {}  {}", cell(s.digest.0), nss.join(", "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::refs;
    use crate::containerd::MetaDb;

    /// The parallel writer's bytes equal serde_json's pretty printer's for the
    /// whole document, on every real fixture and on an empty map, with every
    /// chunk size that splits the arrays differently.
    #[test]
    fn parallel_json_is_serde_pretty_json() {
        crate::testing::for_each_fixture_db(|path, db| {
            let meta = MetaDb::decode_records(db);
            let map = refs::build(&meta);
            let empty = RefsMap::default();
            let info = || InputInfo::with_sha256(path, 1, Some("ab".into()), Some(7));
            for m in [&map, &empty] {
                let mut want = serde_json::to_vec_pretty(&Envelope::new("refs", info(), Json(m)))
                    .expect("serde");
                want.push(b'\n');
                for chunk in [1, 2, 3, JSON_CHUNK] {
                    let mut got = Vec::new();
                    write_json(&mut got, info(), m, chunk).expect("write");
                    assert!(
                        got == want,
                        "{}: chunk {chunk} differs ({} groups)",
                        path.display(),
                        m.groups.len()
                    );
                }
            }
        });
    }
}
