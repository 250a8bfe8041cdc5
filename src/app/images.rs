//! `ctrdb images`: offline `ctr images ls` over every namespace.

use std::io::Write;

use super::{
    damage_in, emit, hash_wanted, ns_selected, require_metadata, resolve_namespaces, status_of,
    tell_damage, AppError, ExitStatus, Input,
};
use crate::analysis::refs::{classify, namespace_groups, DigestGroup};
use crate::cli::ImagesArgs;
use crate::containerd::MetaDb;
use crate::report::images::{self as report, ImageRow};
use crate::report::Format;
use crate::report::{self as wire, hash_alongside};

pub(super) fn run(
    a: &ImagesArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    require_metadata(&db, &input.path, "images")?;
    let namespaces = resolve_namespaces(&db, &input.path, &a.namespaces, true)?;
    let (sha256, meta) = hash_alongside(
        hash_wanted(&a.input, a.format == Format::Json)?,
        db.data(),
        || MetaDb::decode_records(&db),
    );
    let nss: Vec<_> = meta
        .namespaces
        .iter()
        .filter(|n| ns_selected(&namespaces, n.name.0))
        .collect();
    let damage = damage_in(&meta, &namespaces);
    tell_damage(err, &input.path, &damage)?;
    let status = status_of(&damage);
    let info = || input.info(&db, sha256.clone()).with_damage(damage.clone());
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    if a.collapse {
        let groups: Vec<DigestGroup<'_>> = nss.iter().flat_map(|n| namespace_groups(n)).collect();
        emit(status, || {
            match a.format {
                Format::Table => report::write_groups_table(&mut out, &groups)?,
                Format::Jsonl => report::write_groups_lines(&mut out, &groups)?,
                Format::Json => report::write_groups_json(&mut out, info(), &groups)?,
            }
            out.flush()
        })
    } else {
        let rows: Vec<ImageRow<'_, '_>> = nss
            .iter()
            .flat_map(|ns| {
                ns.images.iter().map(move |img| {
                    let c = classify(img.name.0, img.target_digest().map(|d| d.0));
                    ImageRow {
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
        emit(status, || {
            match a.format {
                _ if a.quiet => report::write_names(&mut out, &rows)?,
                Format::Table => report::write_table(&mut out, &rows)?,
                Format::Jsonl => wire::write_lines(&mut out, &rows)?,
                Format::Json => report::write_json(&mut out, info(), &rows)?,
            }
            out.flush()
        })
    }
}
