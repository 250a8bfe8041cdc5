//! `ctrdb refs`: the digest → references map.

use std::io::Write;

use super::{
    damage_in, emit, hash_wanted, ns_selected, require_metadata, resolve_namespaces, status_of,
    tell_damage, AppError, ExitStatus, Input,
};
use crate::analysis::refs;
use crate::cli::RefsArgs;
use crate::containerd::MetaDb;
use crate::report::refs as report;
use crate::report::{hash_alongside, Format};

pub(super) fn run(
    a: &RefsArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    require_metadata(&db, &input.path, "refs")?;
    let namespaces = resolve_namespaces(&db, &input.path, &a.namespaces, true)?;
    let (sha256, (meta, map)) = hash_alongside(
        hash_wanted(&a.input, a.format == Format::Json)?,
        db.data(),
        || {
            let mut meta = MetaDb::decode_records(&db);
            meta.namespaces
                .retain(|n| ns_selected(&namespaces, n.name.0));
            let map = refs::build(&meta);
            (meta, map)
        },
    );
    let damage = damage_in(&meta, &namespaces);
    tell_damage(err, &input.path, &damage)?;
    let status = status_of(&damage);
    // The map borrows from the file, not from the records: those are freed on a
    // second thread while this one writes the output.
    std::thread::scope(|s| {
        s.spawn(move || drop(meta));
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        emit(status, || {
            match a.format {
                _ if a.quiet => report::write_names(&mut out, &map)?,
                Format::Table => report::write_table(&mut out, &map)?,
                Format::Jsonl => report::write_lines(&mut out, &map)?,
                Format::Json => {
                    let info = input.info(&db, sha256).with_damage(damage);
                    report::write_json(&mut out, info, &map, report::JSON_CHUNK)?;
                }
            }
            out.flush()
        })
    })
}
