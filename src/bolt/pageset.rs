//! The set of pages a walk has entered: the one type every reader uses to
//! refuse a page twice, so no corrupt file can make a walk loop or revisit a
//! shared subtree.
//!
//! A set starts as a short list (one bucket iteration mostly enters a handful
//! of pages, and allocates nothing then) and becomes one bit per page id below
//! the file's bound when it outgrows it; a whole-file walk asks for the bits at
//! once. The bits are atomic words, so threads can share a set of bits
//! ([`PageSet::insert_shared`]); a set owned by one walk uses plain loads and
//! stores through `&mut`.

#![deny(clippy::indexing_slicing)]

use std::sync::atomic::{AtomicU64, Ordering};

use super::error::Pgid;
use super::page::Pages;

/// Ids kept in the list before a set switches to bits.
const FEW: usize = 8;

/// A set of page ids below a bound. Ids at or beyond the bound are never
/// recorded and always insert as new: no page there can be read (the bound
/// covers every page inside the file and below the high-water mark).
#[derive(Debug)]
pub(crate) struct PageSet {
    bound: u64,
    repr: Repr,
}

#[derive(Debug)]
enum Repr {
    Few { ids: [Pgid; FEW], n: usize },
    Bits(Vec<AtomicU64>),
}

/// The number of page ids a set over `pages` must cover: those below the
/// high-water mark that start inside the file (one more, so a page cut short
/// by the end of the file is covered too).
fn bound_of(pages: &Pages<'_>) -> u64 {
    let in_file = (pages.data().len() / pages.page_size()) as u64 + 1;
    pages.hwm().min(in_file)
}

fn bits(bound: u64) -> Vec<AtomicU64> {
    let words = usize::try_from(bound.div_ceil(64)).unwrap_or(0);
    (0..words).map(|_| AtomicU64::new(0)).collect()
}

impl PageSet {
    /// An empty set for one bucket iteration: a short list first.
    pub(crate) fn new(pages: &Pages<'_>) -> PageSet {
        PageSet {
            bound: bound_of(pages),
            repr: Repr::Few {
                ids: [0; FEW],
                n: 0,
            },
        }
    }

    /// An empty set for a whole-file walk: one bit per page from the start, which
    /// [`insert_shared`](Self::insert_shared) needs.
    pub(crate) fn for_file(pages: &Pages<'_>) -> PageSet {
        let bound = bound_of(pages);
        PageSet {
            bound,
            repr: Repr::Bits(bits(bound)),
        }
    }

    /// Records `id`; returns `false` if it was already present.
    pub(crate) fn insert(&mut self, id: Pgid) -> bool {
        if id >= self.bound {
            return true;
        }
        match &mut self.repr {
            Repr::Bits(words) => set_bit(words, id),
            Repr::Few { ids, n } => {
                let held = ids.get(..*n).unwrap_or_default();
                if held.contains(&id) {
                    return false;
                }
                if let Some(slot) = ids.get_mut(*n) {
                    *slot = id;
                    *n += 1;
                    return true;
                }
                let mut words = bits(self.bound);
                for &old in ids.iter() {
                    set_bit(&mut words, old);
                }
                let new = set_bit(&mut words, id);
                self.repr = Repr::Bits(words);
                new
            }
        }
    }

    /// Records `id` in a set that threads share; returns `false` if it was
    /// already present, so exactly one caller sees `true` for each id. The set
    /// must come from [`for_file`](Self::for_file): a short list cannot be
    /// shared, and this answers for it without recording (`true` unless listed).
    pub(crate) fn insert_shared(&self, id: Pgid) -> bool {
        if id >= self.bound {
            return true;
        }
        match &self.repr {
            Repr::Bits(words) => {
                let (w, b) = word_bit(id);
                words
                    .get(w)
                    .is_none_or(|x| x.fetch_or(b, Ordering::Relaxed) & b == 0)
            }
            Repr::Few { .. } => !self.contains(id),
        }
    }

    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: Pgid) -> bool {
        match &self.repr {
            Repr::Bits(words) => {
                let (w, b) = word_bit(id);
                words
                    .get(w)
                    .is_some_and(|x| x.load(Ordering::Relaxed) & b != 0)
            }
            Repr::Few { ids, n } => ids.get(..*n).unwrap_or_default().contains(&id),
        }
    }
}

/// The word index and bit mask of `id`.
fn word_bit(id: Pgid) -> (usize, u64) {
    (
        usize::try_from(id / 64).unwrap_or(usize::MAX),
        1 << (id % 64),
    )
}

/// Sets `id`'s bit through `&mut` (no atomic operation); `false` if it was set.
fn set_bit(words: &mut [AtomicU64], id: Pgid) -> bool {
    let (w, b) = word_bit(id);
    match words.get_mut(w) {
        Some(x) => {
            let x = x.get_mut();
            let was = *x & b != 0;
            *x |= b;
            !was
        }
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_answers_the_same_as_a_list_or_as_bits() {
        let data = vec![0u8; 4096 * 300];
        let pages = Pages::new(&data, 4096, 300);
        let (mut few, all) = (PageSet::new(&pages), PageSet::for_file(&pages));
        let ids = [
            5u64, 9, 5, 0, 299, 300, 12, 13, 14, 15, 16, 17, 9, 18, 299, 64, 63,
        ];
        let mut reference = std::collections::HashSet::new();
        for id in ids {
            let new = id >= 300 || reference.insert(id);
            assert_eq!(few.insert(id), new, "list then bits, id {id}");
            assert_eq!(all.insert_shared(id), new, "shared bits, id {id}");
        }
        for id in 0..310 {
            let held = reference.contains(&id);
            assert_eq!((few.contains(id), all.contains(id)), (held, held), "{id}");
        }
    }
}
