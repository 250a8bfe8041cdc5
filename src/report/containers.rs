//! The report of `containers`: offline `ctr containers ls` and `ctr containers
//! info`, with the stored spec decoded (`docs/report.md`, "containers").

use std::io::{self, Write};

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::table::write_columns;
use super::wire::{map_key, LabelMap};
use super::{Envelope, InputInfo, Layout};
use crate::bytes::{table_cell, Bytes};
use crate::containerd::encoding::AnyValue;
use crate::containerd::model::{Container, Runtime};
use crate::oci::runtime::{json_payload, pod_of};

/// One container, with its namespace.
#[derive(Debug, Clone, Copy)]
pub struct ContainerRow<'r, 'a> {
    /// Its namespace.
    pub namespace: Bytes<'a>,
    /// The record.
    pub container: &'r Container<'a>,
}

/// An `Any` whose payload is JSON, decoded; else its type and size.
struct Payload<'r, 'a>(&'r AnyValue<'a>);

impl Serialize for Payload<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match json_payload(self.0.value) {
            Some(v) => v.serialize(s),
            None => self.0.serialize(s),
        }
    }
}

/// A container's runtime: its name, and its options as an Any (runc's are
/// protobuf, not decoded).
struct RuntimeOut<'r, 'a>(&'r Runtime<'a>);

impl Serialize for RuntimeOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("name", &self.0.name)?;
        m.serialize_entry("options", &self.0.options)?;
        m.end()
    }
}

impl Serialize for ContainerRow<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.container;
        let spec: Option<Value> = c.spec.as_ref().and_then(|a| json_payload(a.value));
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("namespace", &self.namespace)?;
        m.serialize_entry("id", &c.id)?;
        m.serialize_entry("image", &c.image)?;
        m.serialize_entry("runtime", &c.runtime.as_ref().map(RuntimeOut))?;
        m.serialize_entry("snapshotter", &c.snapshotter)?;
        m.serialize_entry("snapshotKey", &c.snapshot_key)?;
        m.serialize_entry("sandboxId", &c.sandbox_id)?;
        m.serialize_entry("labels", &LabelMap(&c.labels))?;
        m.serialize_entry("createdAt", &c.created_at)?;
        m.serialize_entry("updatedAt", &c.updated_at)?;
        let ext: serde_json::Map<String, Value> = c
            .extensions
            .iter()
            .map(|(k, v)| {
                let v = serde_json::to_value(Payload(v)).unwrap_or(Value::Null);
                (map_key(k.0), v)
            })
            .collect();
        m.serialize_entry("extensions", &ext)?;
        match (&spec, &c.spec) {
            (Some(v), _) => m.serialize_entry("spec", v)?,
            (None, Some(any)) => m.serialize_entry("spec", any)?,
            (None, None) => m.serialize_entry("spec", &Value::Null)?,
        }
        let pod = spec.as_ref().and_then(pod_of).map(|p| {
            serde_json::json!({"namespace": p.namespace, "name": p.name, "container": p.container})
        });
        m.serialize_entry("pod", &pod)?;
        m.end()
    }
}

#[derive(Serialize)]
struct Body<'r, 'a> {
    containers: &'r [ContainerRow<'r, 'a>],
}

/// The JSON report (`--format json` or `jsonl`, as `layout` says).
pub fn write_json(
    out: &mut dyn Write,
    layout: Layout,
    input: InputInfo,
    rows: &[ContainerRow<'_, '_>],
) -> io::Result<()> {
    super::write_document(
        out,
        &Envelope::new("containers", input, Body { containers: rows }),
        layout,
    )
}

/// `ctr containers ls`, with the namespace first.
pub fn write_table(out: &mut dyn Write, rows: &[ContainerRow<'_, '_>]) -> io::Result<()> {
    let mut cells = vec![["NAMESPACE", "CONTAINER", "IMAGE", "RUNTIME"]
        .map(String::from)
        .to_vec()];
    for r in rows {
        let c = r.container;
        let text = |b: Option<Bytes<'_>>| b.map_or("-".to_string(), |b| table_cell(b.0));
        cells.push(vec![
            table_cell(r.namespace.0),
            table_cell(c.id.0),
            text(c.image.filter(|i| !i.0.is_empty())),
            text(c.runtime.as_ref().and_then(|r| r.name)),
        ]);
    }
    write_columns(out, &cells)
}

/// The ids, one per line.
pub fn write_ids(out: &mut dyn Write, rows: &[ContainerRow<'_, '_>]) -> io::Result<()> {
    for r in rows {
        out.write_all(r.container.id.0)?;
        writeln!(out)?;
    }
    Ok(())
}

/// `ctr containers info --spec`: the spec as indented JSON (or, when the
/// payload is not JSON, its type and size).
pub fn write_spec(out: &mut dyn Write, row: &ContainerRow<'_, '_>) -> io::Result<()> {
    let v = match &row.container.spec {
        Some(any) => serde_json::to_value(Payload(any)).map_err(io::Error::other)?,
        None => Value::Null,
    };
    serde_json::to_writer_pretty(&mut *out, &v).map_err(io::Error::other)?;
    writeln!(out)
}
