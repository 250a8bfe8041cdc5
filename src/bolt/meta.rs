//! Meta pages: decoding, validation and Go's selection rule.

#![deny(clippy::indexing_slicing)]

use super::bytes::{fnv1a64, slice, u16_at, u32_at, u64_at};
use super::error::{MetaProblem, Pgid};
use super::layout::*;

/// A decoded meta body (pages 0 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Magic number.
    pub magic: u32,
    /// Format version.
    pub version: u32,
    /// Page size in bytes.
    pub page_size: u32,
    /// Unused flags field.
    pub flags: u32,
    /// Root bucket's root page.
    pub root: Pgid,
    /// Root bucket's sequence.
    pub root_sequence: u64,
    /// Freelist page, or [`NO_FREELIST`].
    pub freelist: Pgid,
    /// High-water mark: number of pages in use.
    pub pgid: Pgid,
    /// Transaction id.
    pub txid: u64,
    /// Stored checksum.
    pub checksum: u64,
}

impl Meta {
    /// Decodes the meta body of the page starting at `page[0]`. `None` if the page is
    /// too short.
    pub fn decode(page: &[u8]) -> Option<Meta> {
        Some(Meta {
            magic: u32_at(page, META_MAGIC)?,
            version: u32_at(page, META_VERSION)?,
            page_size: u32_at(page, META_PAGE_SIZE)?,
            flags: u32_at(page, META_FLAGS)?,
            root: u64_at(page, META_ROOT)?,
            root_sequence: u64_at(page, META_ROOT_SEQUENCE)?,
            freelist: u64_at(page, META_FREELIST)?,
            pgid: u64_at(page, META_PGID)?,
            txid: u64_at(page, META_TXID)?,
            checksum: u64_at(page, META_CHECKSUM)?,
        })
    }

    /// Encodes the meta body (without page header), with a freshly computed checksum.
    pub fn encode(&self) -> [u8; META_END - META_OFFSET] {
        let mut b = [0u8; META_END - META_OFFSET];
        let mut put = |at: usize, v: &[u8]| {
            let at = at - META_OFFSET;
            if let Some(d) = b.get_mut(at..at + v.len()) {
                d.copy_from_slice(v);
            }
        };
        put(META_MAGIC, &self.magic.to_le_bytes());
        put(META_VERSION, &self.version.to_le_bytes());
        put(META_PAGE_SIZE, &self.page_size.to_le_bytes());
        put(META_FLAGS, &self.flags.to_le_bytes());
        put(META_ROOT, &self.root.to_le_bytes());
        put(META_ROOT_SEQUENCE, &self.root_sequence.to_le_bytes());
        put(META_FREELIST, &self.freelist.to_le_bytes());
        put(META_PGID, &self.pgid.to_le_bytes());
        put(META_TXID, &self.txid.to_le_bytes());
        let sum = fnv1a64(b.get(..META_CHECKSUM - META_OFFSET).unwrap_or_default());
        if let Some(d) = b.get_mut(META_CHECKSUM - META_OFFSET..) {
            d.copy_from_slice(&sum.to_le_bytes());
        }
        b
    }

    /// Go's `Meta.Validate`: magic, then version, then checksum; nothing else.
    pub fn validate(&self, page: &[u8]) -> Result<(), MetaProblem> {
        if self.magic != MAGIC {
            return Err(MetaProblem::BadMagic(self.magic));
        }
        if self.version != VERSION {
            return Err(MetaProblem::BadVersion(self.version));
        }
        let computed = slice(page, META_OFFSET, META_CHECKSUM - META_OFFSET)
            .map(fnv1a64)
            .ok_or(MetaProblem::Missing)?;
        if computed != self.checksum {
            return Err(MetaProblem::BadChecksum {
                stored: self.checksum,
                computed,
            });
        }
        Ok(())
    }

    /// Whether this meta says no freelist is persisted (`NoFreelistSync`).
    pub fn has_freelist(&self) -> bool {
        self.freelist != NO_FREELIST
    }
}

/// One meta page as found in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSlot {
    /// The decoded body, if the file holds the page at all.
    pub meta: Option<Meta>,
    /// `Ok` if Go would accept it.
    pub validity: Result<(), MetaProblem>,
    /// The page header's id field.
    pub header_id: Option<u64>,
    /// The page header's flags field.
    pub header_flags: Option<u16>,
}

impl MetaSlot {
    fn read(data: &[u8], offset: usize) -> MetaSlot {
        let page = data.get(offset..).unwrap_or(&[]);
        match Meta::decode(page) {
            None => MetaSlot {
                meta: None,
                validity: Err(MetaProblem::Missing),
                header_id: u64_at(page, PAGE_ID),
                header_flags: u16_at(page, PAGE_FLAGS),
            },
            Some(m) => MetaSlot {
                validity: m.validate(page),
                meta: Some(m),
                header_id: u64_at(page, PAGE_ID),
                header_flags: u16_at(page, PAGE_FLAGS),
            },
        }
    }

    /// The meta if it is valid.
    pub fn valid(&self) -> Option<&Meta> {
        self.validity.as_ref().ok().and(self.meta.as_ref())
    }
}

/// Why the selected meta was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaReason {
    /// Both were valid; this one has the higher txid.
    HigherTxid,
    /// Both were valid with the same txid; Go prefers meta 0.
    TieMeta0,
    /// The other meta page is invalid.
    OtherInvalid,
}

impl MetaReason {
    /// A short description.
    pub fn describe(self) -> &'static str {
        match self {
            MetaReason::HigherTxid => "both metas valid; higher txid",
            MetaReason::TieMeta0 => "both metas valid with equal txid; meta 0 wins",
            MetaReason::OtherInvalid => "the other meta is invalid",
        }
    }
}

/// The result of reading both metas and selecting one, as Go's `DB.meta()` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaSelection {
    /// Page size used to locate meta 1.
    pub page_size: u32,
    /// Meta pages 0 and 1.
    pub slots: [MetaSlot; 2],
    /// Index (0 or 1) of the selected meta.
    pub used: usize,
    /// Why it was selected.
    pub reason: MetaReason,
}

impl MetaSelection {
    /// The selected meta.
    pub fn meta(&self) -> Meta {
        // `select` only builds selections whose used slot is valid.
        let slot = self.slots.get(self.used).and_then(|s| s.meta);
        slot.unwrap_or(Meta {
            magic: 0,
            version: 0,
            page_size: 0,
            flags: 0,
            root: 0,
            root_sequence: 0,
            freelist: 0,
            pgid: 0,
            txid: 0,
            checksum: 0,
        })
    }
}

/// Determines the page size as Go's `getPageSize` does: meta 0's if it is valid,
/// else the first valid meta found at `1024 << i` (i = 0..=14).
fn page_size(data: &[u8]) -> Option<u32> {
    if let Some(m) = MetaSlot::read(data, 0).valid() {
        return Some(m.page_size);
    }
    for i in 0..15u32 {
        let pos = 1024usize << i;
        if pos >= data.len().saturating_sub(1024) {
            break;
        }
        let slot = MetaSlot::read(data, pos);
        if let Some(m) = slot.valid() {
            return Some(m.page_size);
        }
    }
    None
}

/// Reads both metas and selects one exactly as Go bbolt does: the valid meta with
/// the higher txid; on a tie meta 0; if one is invalid, the other.
pub(crate) fn select(data: &[u8]) -> Result<MetaSelection, [MetaProblem; 2]> {
    let slot0 = MetaSlot::read(data, 0);
    let ps = page_size(data);
    let slot1 = match ps.and_then(|p| usize::try_from(p).ok()) {
        Some(p) if p >= META_END => MetaSlot::read(data, p),
        _ => MetaSlot {
            meta: None,
            validity: Err(slot1_problem(data)),
            header_id: None,
            header_flags: None,
        },
    };
    let page_size = match ps {
        Some(p) => p,
        None => return Err([problem(&slot0), problem(&slot1)]),
    };
    let (v0, v1) = (slot0.valid().copied(), slot1.valid().copied());
    let (used, reason) = match (v0, v1) {
        (Some(a), Some(b)) if b.txid > a.txid => (1, MetaReason::HigherTxid),
        (Some(a), Some(b)) if a.txid > b.txid => (0, MetaReason::HigherTxid),
        (Some(_), Some(_)) => (0, MetaReason::TieMeta0),
        (Some(_), None) => (0, MetaReason::OtherInvalid),
        (None, Some(_)) => (1, MetaReason::OtherInvalid),
        (None, None) => return Err([problem(&slot0), problem(&slot1)]),
    };
    Ok(MetaSelection {
        page_size,
        slots: [slot0, slot1],
        used,
        reason,
    })
}

fn problem(slot: &MetaSlot) -> MetaProblem {
    slot.validity.clone().err().unwrap_or(MetaProblem::Missing)
}

/// When no page size can be determined, describe meta 1 as it would be at 4096.
fn slot1_problem(data: &[u8]) -> MetaProblem {
    problem(&MetaSlot::read(data, 4096))
}
