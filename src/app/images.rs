//! `ctrdb images`: offline `ctr images ls` over every namespace.

use std::io::Write;

use super::{
    damage_in, emit, hash_wanted, ns_selected, require_metadata, resolve_namespaces, status_of,
    tell_damage, AppError, ExitStatus, Input,
};
use crate::analysis::refs::{classify, namespace_groups, DigestGroup};
use crate::bytes::escape_controls;
use crate::cli::ImagesArgs;
use crate::containerd::MetaDb;
use crate::oci::{self, ContentStore, Descriptor, Matcher, Platform, Rules};
use crate::report::images::{self as report, ImageRow};
use crate::report::Format;
use crate::report::{self as wire, hash_alongside};
use rayon::prelude::*;

pub(super) fn run(
    a: &ImagesArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    if a.platform.is_some() && input.root.is_none() {
        return Err(AppError::Usage(
            "--platform chooses the manifest whose size is read from the content store: give --root DIR".into(),
        ));
    }
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
        let platform = Matcher::only(&a.platform.clone().unwrap_or_else(Platform::host));
        // ctr of the release that wrote the file: 1.6 files keep a freelist.
        let rules = if meta.schema_version.is_some_and(|v| v <= 3) && db.meta().has_freelist() {
            Rules::V1_6
        } else {
            Rules::CURRENT
        };
        let rows: Vec<ImageRow<'_, '_>> = nss
            .iter()
            .flat_map(|ns| ns.images.iter().map(move |img| (*ns, img)))
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|(ns, img)| {
                let c = classify(img.name.0, img.target_digest().map(|d| d.0));
                let content = input.root.as_deref().filter(|_| !a.quiet).map(|root| {
                    let store = ContentStore::new(root, |d: &str| ns.blob(d.as_bytes()).is_some());
                    let target = img.target.as_ref().map(|t| Descriptor {
                        media_type: String::from_utf8_lossy(t.media_type.0).into_owned(),
                        digest: String::from_utf8_lossy(t.digest.0).into_owned(),
                        size: t.size,
                        platform: None,
                    });
                    oci::view(&store, &target.unwrap_or_default(), &platform, rules)
                });
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
                    content,
                }
            })
            .collect();
        for r in &rows {
            if let Some(e) = r.content.as_ref().and_then(|v| v.error.as_ref()) {
                writeln!(
                    err,
                    "ctrdb: warning: image {} in {}: {}",
                    escape_controls(&crate::bytes::display(r.name.0)),
                    escape_controls(&crate::bytes::display(r.namespace.0)),
                    escape_controls(&e.to_string())
                )?;
            }
        }
        emit(status, || {
            match a.format {
                _ if a.quiet => report::write_names(&mut out, &rows)?,
                Format::Table => report::write_table(&mut out, &rows, input.root.is_some())?,
                Format::Jsonl => wire::write_lines(&mut out, &rows)?,
                Format::Json => report::write_json(&mut out, info(), &rows)?,
            }
            out.flush()
        })
    }
}
