//! `ctrdb dump`: the raw bucket tree.

use std::io::Write;

use super::{hash_wanted, AppError, ExitStatus, Input};
use crate::bolt::{Walk, WalkEvent};
use crate::cli::DumpArgs;
use crate::report::dump as report;

pub(super) fn run(
    a: &DumpArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitStatus, AppError> {
    hash_wanted(&a.input, false)?;
    let (input, file) = Input::open_args(&a.input, err)?;
    let db = file.db()?;
    let base = a.path.clone().unwrap_or_default();
    let mut walk = if base.0.is_empty() {
        Walk::new(&db)?
    } else {
        let b = db.bucket(&base)?.ok_or_else(|| {
            AppError::Usage(format!("no bucket {base} in {}", input.path.display()))
        })?;
        Walk::from_bucket(&db, b)
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    let mut path: Vec<Vec<u8>> = base.0.clone();
    if !base.0.is_empty() {
        report::bucket(&mut out, a.format, &path, walk.root_sequence())?;
    }
    while let Some(ev) = walk.next_event() {
        match ev? {
            WalkEvent::BucketStart { key, sequence, .. } => {
                path.push(key.to_vec());
                report::bucket(&mut out, a.format, &path, sequence)?;
            }
            WalkEvent::BucketEnd => {
                path.pop();
            }
            WalkEvent::Value { key, value } => report::key(&mut out, a.format, &path, key, value)?,
        }
    }
    out.flush()?;
    Ok(ExitStatus::Clean)
}
