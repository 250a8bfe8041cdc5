//! Verification of a copy: the source (through the same filter) and the copy
//! read back, compared event by event.

use super::source::{Filtered, ItemKind};
use crate::bolt::error::BucketPath;
use crate::bolt::walk::{Walk, WalkEvent};

/// Counts from a successful comparison.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompareSummary {
    /// Buckets compared (root excluded).
    pub buckets: u64,
    /// Plain keys compared.
    pub keys: u64,
}

/// The first difference between a source and its copy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the copy differs from the source in bucket {path}: {what}")]
pub struct Mismatch {
    /// Where.
    pub path: BucketPath,
    /// What differs.
    pub what: String,
}

fn describe(ev: Option<&WalkEvent<'_>>) -> String {
    let show = |b: &[u8]| crate::bolt::tree::show(b);
    match ev {
        None => "end of data".into(),
        Some(WalkEvent::BucketStart { key, sequence, .. }) => {
            format!("bucket {} (sequence {sequence})", show(key))
        }
        Some(WalkEvent::Value { key, value }) => {
            format!("key {} ({} byte value)", show(key), value.len())
        }
        Some(WalkEvent::BucketEnd) => "end of bucket".into(),
    }
}

/// Compares a (filtered) source with a copy event by event: every bucket, sequence,
/// key and value, and the root sequence. Read errors on either side are mismatches.
pub fn compare<'a, 'b, F>(
    src: &mut Filtered<'a, F>,
    copy: &mut Walk<'b>,
) -> Result<CompareSummary, Mismatch>
where
    F: FnMut(&[&[u8]], &[u8], ItemKind) -> bool,
{
    let mut sum = CompareSummary::default();
    if src.root_sequence() != copy.root_sequence() {
        return Err(Mismatch {
            path: BucketPath::root(),
            what: format!(
                "root sequence {} vs {}",
                src.root_sequence(),
                copy.root_sequence()
            ),
        });
    }
    loop {
        let a = src.next_event().transpose().map_err(|e| Mismatch {
            path: src.walk.path(),
            what: format!("the source cannot be read: {e}"),
        })?;
        let b = copy.next_event().transpose().map_err(|e| Mismatch {
            path: copy.path(),
            what: format!("the copy cannot be read: {e}"),
        })?;
        let same = match (&a, &b) {
            (None, None) => return Ok(sum),
            (
                Some(WalkEvent::BucketStart {
                    key: k1,
                    sequence: s1,
                    ..
                }),
                Some(WalkEvent::BucketStart {
                    key: k2,
                    sequence: s2,
                    ..
                }),
            ) => {
                sum.buckets += 1;
                k1 == k2 && s1 == s2
            }
            (
                Some(WalkEvent::Value { key: k1, value: v1 }),
                Some(WalkEvent::Value { key: k2, value: v2 }),
            ) => {
                sum.keys += 1;
                k1 == k2 && v1 == v2
            }
            (Some(WalkEvent::BucketEnd), Some(WalkEvent::BucketEnd)) => true,
            _ => false,
        };
        if !same {
            return Err(Mismatch {
                path: copy.path(),
                what: format!(
                    "source has {}, copy has {}",
                    describe(a.as_ref()),
                    describe(b.as_ref())
                ),
            });
        }
    }
}
