//! The order of the report: findings sorted by the bucket walk that found them,
//! so the report depends on the file alone, not on how the walk was split
//! across threads.

#![deny(clippy::indexing_slicing)]

use super::{Finding, MAX_FINDINGS};

/// A finding with what orders it in the report: the path of the page-based bucket
/// (or the root) whose walk found it — inline buckets belong to the walk of the
/// bucket that holds them — and its position in that walk, the element index at
/// each page level from that bucket's root page down (a prefix sorts first, so
/// this is walk order).
pub(super) struct Keyed<'a> {
    pub(super) task: Vec<&'a [u8]>,
    pub(super) tag: Vec<u32>,
    pub(super) finding: Finding,
}

/// The findings of every walker in walk order: by the page-based bucket whose
/// walk found them, then by position in that walk; at most `MAX_FINDINGS + 1`
/// per page-based bucket, as each walker keeps.
pub(super) fn in_walk_order(mut found: Vec<Keyed<'_>>) -> impl Iterator<Item = Finding> + '_ {
    // Stable: findings with equal keys come from one walker, in walk order.
    found.sort_by(|a, b| a.task.cmp(&b.task).then_with(|| a.tag.cmp(&b.tag)));
    let mut task: Option<Vec<&[u8]>> = None;
    let mut kept = 0usize;
    found.into_iter().filter_map(move |k| {
        if task.as_ref() != Some(&k.task) {
            task = Some(k.task);
            kept = 0;
        }
        if kept <= MAX_FINDINGS {
            kept += 1;
            Some(k.finding)
        } else {
            None
        }
    })
}
