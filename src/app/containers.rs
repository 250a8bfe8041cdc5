//! `ctrdb containers`: offline `ctr containers ls` and `ctr containers info
//! --spec` over every namespace.

use std::io::Write;

use super::{
    damage_in, emit, hash_wanted, ns_selected, require_metadata, resolve_namespaces, status_of,
    tell_damage, AppError, ExitStatus, Input,
};
use crate::bytes::escape_controls;
use crate::cli::ContainersArgs;
use crate::containerd::MetaDb;
use crate::report::containers::{self as report, ContainerRow};
use crate::report::{hash_alongside, Format};

pub(super) fn run(
    a: &ContainersArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    require_metadata(&db, &input.path, "containers")?;
    let namespaces = resolve_namespaces(&db, &input.path, &a.namespaces, true)?;
    let (sha256, meta) = hash_alongside(
        hash_wanted(&a.input, a.format == Format::Json)?,
        db.data(),
        || MetaDb::decode_records(&db),
    );
    let mut rows: Vec<ContainerRow<'_, '_>> = meta
        .namespaces
        .iter()
        .filter(|n| ns_selected(&namespaces, n.name.0))
        .flat_map(|n| {
            n.containers.iter().map(move |c| ContainerRow {
                namespace: n.name,
                container: c,
            })
        })
        .collect();
    let damage = damage_in(&meta, &namespaces);
    tell_damage(err, &input.path, &damage)?;
    if let Some(id) = &a.spec {
        rows.retain(|r| r.container.id.0 == id.as_bytes());
        match rows.len() {
            1 => {}
            0 => {
                return Err(AppError::Usage(format!(
                    "no container '{}' in {}{}",
                    escape_controls(id),
                    input.path.display(),
                    if damage.is_empty() {
                        ""
                    } else {
                        " (the file is damaged and may hide it: 'ctrdb check' lists the damage)"
                    }
                )))
            }
            n => {
                let nss: Vec<String> = rows
                    .iter()
                    .map(|r| crate::bytes::display(r.namespace.0))
                    .collect();
                return Err(AppError::Usage(format!(
                    "container '{}' is in {n} namespaces ({}): choose one with -n",
                    escape_controls(id),
                    nss.join(", ")
                )));
            }
        }
    }
    let status = status_of(&damage);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    emit(status, || {
        match (a.format.document_layout(), &a.spec) {
            _ if a.quiet => report::write_ids(&mut out, &rows)?,
            (Some(layout), _) => {
                let info = input.info(&db, sha256.clone()).with_damage(damage.clone());
                report::write_json(&mut out, layout, info, &rows)?
            }
            (None, Some(_)) => {
                if let Some(r) = rows.first() {
                    report::write_spec(&mut out, r)?
                }
            }
            (None, None) => report::write_table(&mut out, &rows)?,
        }
        out.flush()
    })
}
