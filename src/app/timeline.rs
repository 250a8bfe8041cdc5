//! `ctrdb timeline`: every record's creation and last update in time order
//! ([`analysis::timeline`]).

use std::io::Write;

use super::{
    damage_in, emit, hash_wanted, ns_selected, require_metadata, resolve_namespaces, status_of,
    tell_damage, AppError, ExitStatus, Input,
};
use crate::analysis::timeline;
use crate::cli::TimelineArgs;
use crate::containerd::MetaDb;
use crate::report::timeline as report;
use crate::report::{hash_alongside, Format};

pub(super) fn run(
    a: &TimelineArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    require_metadata(&db, &input.path, "timeline")?;
    let namespaces = resolve_namespaces(&db, &input.path, &a.namespaces, true)?;
    let (sha256, meta) = hash_alongside(
        hash_wanted(&a.input, a.format == Format::Json)?,
        db.data(),
        || MetaDb::decode_records(&db),
    );
    let events = timeline::timeline(&meta, |ns| ns_selected(&namespaces, ns));
    let damage = damage_in(&meta, &namespaces);
    tell_damage(err, &input.path, &damage)?;
    let status = status_of(&damage);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    emit(status, || {
        match a.format {
            Format::Table => report::write_table(&mut out, &events)?,
            Format::Jsonl => report::write_lines(&mut out, &events)?,
            Format::Json => {
                let info = input.info(&db, sha256).with_damage(damage);
                report::write_json(&mut out, info, &events)?
            }
        }
        out.flush()
    })
}
