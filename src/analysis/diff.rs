//! Two snapshots of one node compared record by record (`ctrdb diff`).
//!
//! A record is what `repair` keeps whole (`containerd::shape`): an image,
//! container, content blob, ingest, snapshot, lease, sandbox — and a namespace,
//! whose fields are its labels. Its identity is (namespace, kind, id) as
//! `repair` and `carve` report it; its fields are the keys at its top (`labels`,
//! `target`, `createdat`, `spec`, …), each with everything below it.
//!
//! Both trees are walked once, in key order ([`Records`]), and joined record
//! by record: the walks yield records in the same order (the schema's), so
//! memory is one record per side, whatever the files' sizes.

use std::cmp::Ordering;

use crate::bolt::Db;
use crate::containerd::records::{Record, RecordEntry, Records};
use crate::containerd::shape::{RecordId, RecordKind};

/// What happened to a record between the two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Only the new file has it.
    Added,
    /// Only the old file has it.
    Removed,
    /// Both have it, with different fields.
    Changed,
}

impl ChangeKind {
    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
        }
    }
}

/// A field (a key at the top of a record) that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange<'a> {
    /// Its name.
    pub name: &'a [u8],
    /// Its entries in the old record (empty: absent).
    pub old: Vec<RecordEntry<'a>>,
    /// Its entries in the new record.
    pub new: Vec<RecordEntry<'a>>,
}

/// One record that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<'a> {
    /// Its identity.
    pub id: RecordId,
    /// Its kind.
    pub kind: RecordKind,
    /// What happened.
    pub change: ChangeKind,
    /// For a changed record, the fields that differ, in key order.
    pub fields: Vec<FieldChange<'a>>,
}

/// Why two files could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    /// A tree could not be read whole.
    #[error("{which} file: {source}")]
    Read {
        /// `old` or `new`.
        which: &'static str,
        /// The damage met.
        source: crate::bolt::Error,
    },
}

/// The fields in which two versions of a record differ.
fn field_changes<'a>(old: &[RecordEntry<'a>], new: &[RecordEntry<'a>]) -> Vec<FieldChange<'a>> {
    let field = |e: &RecordEntry<'a>| e.0.first().copied().unwrap_or_default();
    let group = |r: &[RecordEntry<'a>]| {
        let mut out: Vec<(&'a [u8], Vec<RecordEntry<'a>>)> = Vec::new();
        for e in r {
            let name = field(e);
            match out.last_mut() {
                Some((n, v)) if *n == name => v.push(e.clone()),
                _ => out.push((name, vec![e.clone()])),
            }
        }
        out
    };
    let (a, b) = (group(old), group(new));
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() || j < b.len() {
        let order = match (a.get(i), b.get(j)) {
            (Some(x), Some(y)) => x.0.cmp(y.0),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                let (name, v) = &a[i];
                out.push(FieldChange {
                    name,
                    old: v.clone(),
                    new: Vec::new(),
                });
                i += 1;
            }
            Ordering::Greater => {
                let (name, v) = &b[j];
                out.push(FieldChange {
                    name,
                    old: Vec::new(),
                    new: v.clone(),
                });
                j += 1;
            }
            Ordering::Equal => {
                let ((name, x), (_, y)) = (&a[i], &b[j]);
                if x != y {
                    out.push(FieldChange {
                        name,
                        old: x.clone(),
                        new: y.clone(),
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The names of the fields in which `new`'s entries differ from `old`'s.
pub fn differing_fields<'a>(old: &[RecordEntry<'a>], new: &[RecordEntry<'a>]) -> Vec<&'a [u8]> {
    field_changes(old, new)
        .into_iter()
        .map(|f| f.name)
        .collect()
}

/// Compares two files record by record; `each` gets every change in walk
/// order (so a caller may keep only some). Both trees must read whole.
pub fn diff<'a>(
    old: &Db<'a>,
    new: &Db<'a>,
    mut each: impl FnMut(Change<'a>),
) -> Result<(), DiffError> {
    let read = |which| move |source| DiffError::Read { which, source };
    let a = Records::new(old).map_err(read("old"))?;
    let b = Records::new(new).map_err(read("new"))?;
    join(a, b, |c, _, _| each(c)).map_err(|(which, source)| DiffError::Read { which, source })
}

/// Joins two record streams: `each` gets every change with the old and new
/// versions of the record (`None` where absent). The error names the stream
/// (`old` or `new`) that could not be read.
pub fn join<'a>(
    mut a: Records<'a>,
    mut b: Records<'a>,
    mut each: impl FnMut(Change<'a>, Option<Record<'a>>, Option<Record<'a>>),
) -> Result<(), (&'static str, crate::bolt::Error)> {
    let mut next_a = || a.next().transpose().map_err(|e| ("old", e));
    let mut next_b = || b.next().transpose().map_err(|e| ("new", e));
    let (mut x, mut y) = (next_a()?, next_b()?);
    let change = |r: &Record<'a>, change, fields| Change {
        id: r.id(),
        kind: r.kind,
        change,
        fields,
    };
    loop {
        let order = match (&x, &y) {
            (None, None) => return Ok(()),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(p), Some(q)) => p.order(q),
        };
        match order {
            Ordering::Less => {
                if let Some(r) = x.take() {
                    each(change(&r, ChangeKind::Removed, Vec::new()), Some(r), None);
                }
                x = next_a()?;
            }
            Ordering::Greater => {
                if let Some(r) = y.take() {
                    each(change(&r, ChangeKind::Added, Vec::new()), None, Some(r));
                }
                y = next_b()?;
            }
            Ordering::Equal => {
                if let (Some(p), Some(q)) = (x.take(), y.take()) {
                    // A key whose kind differs (only outside containerd's
                    // schema) is one record removed and another added.
                    if p.kind != q.kind {
                        each(change(&p, ChangeKind::Removed, Vec::new()), Some(p), None);
                        each(change(&q, ChangeKind::Added, Vec::new()), None, Some(q));
                    } else if p.entries != q.entries {
                        let fields = field_changes(&p.entries, &q.entries);
                        each(change(&q, ChangeKind::Changed, fields), Some(p), Some(q));
                    }
                }
                x = next_a()?;
                y = next_b()?;
            }
        }
    }
}
