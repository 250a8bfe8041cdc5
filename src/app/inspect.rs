//! `ctrdb inspect`: file geometry, schema version, per-namespace counts.

use std::io::Write;

use super::{damage_in, emit, hash_wanted, status_of, tell_damage, AppError, ExitStatus, Input};
use crate::analysis::refs;
use crate::bolt::check;
use crate::cli::InspectArgs;
use crate::containerd::MetaDb;
use crate::report::hash_alongside;
use crate::report::inspect::{self as report, Inspection, NamespaceCounts};
use crate::report::{Finding, Format};
use rayon::prelude::*;

pub(super) fn run(
    a: &InspectArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    let m = db.meta();
    let (sha256, (structure, (meta, multi))) = hash_alongside(
        hash_wanted(&a.input, a.format != Format::Table)?,
        db.data(),
        || {
            // One after the other, each parallel inside (see `check`).
            let structure = check::check(&db);
            let meta = MetaDb::decode(&db);
            let multi: Vec<usize> = meta
                .namespaces
                .par_iter()
                .map(refs::multi_name_digests)
                .collect();
            (structure, (meta, multi))
        },
    );
    // Its page counts come from the structural check, so its errors are damage
    // too (a freelist that overlaps the tree makes the counts wrong).
    let damage: Vec<Finding> = structure
        .findings
        .iter()
        .filter(|f| f.severity == check::Severity::Error)
        .map(Finding::structure)
        .chain(damage_in(&meta, &[]))
        .collect();
    tell_damage(err, &input.path, &damage)?;
    let pages = structure.pages;
    let ps = db.page_size() as u64;
    let file_pages = db.data().len() as u64 / ps.max(1);
    let namespaces = meta
        .namespaces
        .iter()
        .zip(&multi)
        .map(|(n, &multi)| NamespaceCounts {
            name: n.name,
            images: n.images.len(),
            blobs: n.blobs.len(),
            ingests: n.ingests.len(),
            containers: n.containers.len(),
            snapshots: n.snapshot_count(),
            leases: n.leases.len(),
            sandboxes: n.sandboxes.len(),
            digests_with_multiple_names: multi,
        })
        .collect();
    let status = status_of(&damage);
    let info = input.info(&db, sha256).with_damage(damage);
    let doc = Inspection {
        file_size: db.data().len() as u64,
        page_size: db.page_size(),
        file_pages,
        high_water_mark: m.pgid,
        pages_in_use: pages.reachable,
        pages_free: pages.free,
        pages_unused: pages.unused,
        reclaimable_bytes: file_pages
            .saturating_sub(pages.reachable)
            .saturating_mul(ps),
        txid: m.txid,
        meta_used: db.selection().used,
        freelist: m.has_freelist().then_some(m.freelist),
        database: meta.kind,
        containerd_schema_version: meta.schema_version,
        containerd_family: meta.family(m.has_freelist()),
        top_level_buckets: &meta.top_level,
        namespaces,
        digests_with_multiple_names: multi.iter().sum(),
        schema_findings: meta.findings.len(),
    };
    emit(status, || match a.format.document_layout() {
        Some(layout) => report::write_json(out, info, &doc, layout),
        None => report::write_table(out, &input.path, &doc),
    })
}
