//! The persisted freelist page.

#![deny(clippy::indexing_slicing)]

use super::bytes::u64_at;
use super::error::{CorruptKind, Corruption, Pgid};
use super::layout::*;
use super::page::{describe_flags, PageKind, Pages};

/// A decoded freelist: the page it occupies and the ids it lists, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Freelist {
    /// The freelist page.
    pub page: Pgid,
    /// Its overflow page count.
    pub overflow: u32,
    /// The listed free page ids, as stored.
    pub ids: Vec<Pgid>,
}

/// Reads the freelist at page `id`, applying the 0xFFFF count rule. The id count is
/// validated against the page's bytes before anything is allocated.
pub(crate) fn read(pages: &Pages<'_>, id: Pgid) -> Result<Freelist, Corruption> {
    let page = pages.page(id)?;
    if page.kind() != Some(PageKind::Freelist) {
        return Err(Corruption::new(
            CorruptKind::FreelistMalformed,
            format!(
                "freelist page {id} is {}, want freelist",
                describe_flags(page.flags)
            ),
        )
        .page(id)
        .offset(page.file_offset));
    }
    let (count, start) = if page.count == FREELIST_COUNT_OVERFLOW {
        let n = u64_at(page.bytes, PAGE_HEADER_SIZE).ok_or_else(|| {
            Corruption::new(
                CorruptKind::FreelistMalformed,
                "freelist count word is missing",
            )
            .page(id)
            .offset(page.file_offset)
        })?;
        (n, PAGE_HEADER_SIZE + 8)
    } else {
        (u64::from(page.count), PAGE_HEADER_SIZE)
    };
    let room = (page.bytes.len().saturating_sub(start) / 8) as u64;
    if count > room {
        return Err(Corruption::new(
            CorruptKind::FreelistMalformed,
            format!("freelist claims {count} ids but its page holds at most {room}"),
        )
        .page(id)
        .offset(page.file_offset));
    }
    let ids = (0..count as usize)
        .filter_map(|i| u64_at(page.bytes, start + 8 * i))
        .collect();
    Ok(Freelist {
        page: id,
        overflow: page.overflow,
        ids,
    })
}
