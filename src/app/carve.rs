//! `ctrdb carve`: records read from what the newest tree no longer reaches
//! ([`analysis::carve`]).

use std::io::Write;

use super::{
    damage_in, emit, hash_wanted, ns_selected, require_metadata, resolve_namespaces, tell_damage,
    AppError, ExitStatus, Input,
};
use crate::analysis::carve;
use crate::cli::CarveArgs;
use crate::containerd::MetaDb;
use crate::report::carve as report;
use crate::report::{hash_alongside, Format};

pub(super) fn run(
    a: &CarveArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    require_metadata(&db, &input.path, "carve")?;
    let namespaces = resolve_namespaces(&db, &input.path, &a.namespaces, false)?;
    let (sha256, found) = hash_alongside(
        hash_wanted(&a.input, a.format == Format::Json)?,
        db.data(),
        || carve::carve(&db),
    );
    let meta = MetaDb::decode_records(&db);
    let damage = damage_in(&meta, &namespaces);
    tell_damage(err, &input.path, &damage)?;
    let records: Vec<&carve::Carved<'_>> = found
        .records
        .iter()
        .filter(|r| {
            r.id.namespace
                .as_ref()
                .is_none_or(|n| ns_selected(&namespaces, n))
        })
        .collect();
    // Evidence found is a finding; damage makes "deleted" uncertain (the
    // live record may be what the damage hides), so it is one too.
    let status = if records.is_empty() && damage.is_empty() {
        ExitStatus::Clean
    } else {
        ExitStatus::Findings
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    emit(status, || {
        match a.format.document_layout() {
            Some(layout) => {
                let info = input.info(&db, sha256).with_damage(damage);
                report::write_json(&mut out, layout, info, &found, &records)?
            }
            None => report::write_table(&mut out, &found, &records)?,
        }
        out.flush()
    })
}
