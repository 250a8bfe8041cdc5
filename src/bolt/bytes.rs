//! Bounds-checked little-endian reads from untrusted bytes.
//!
//! Every read of file bytes in the reader goes through these functions: none can
//! panic, each returns `None` when the requested range is not inside the slice.

/// Returns `data[offset..offset + len]`, or `None` if any part is outside `data`.
#[inline]
pub(crate) fn slice(data: &[u8], offset: usize, len: usize) -> Option<&[u8]> {
    let end = offset.checked_add(len)?;
    data.get(offset..end)
}

/// Reads a fixed-size array at `offset`.
#[inline]
pub(crate) fn array<const N: usize>(data: &[u8], offset: usize) -> Option<[u8; N]> {
    slice(data, offset, N)?.try_into().ok()
}

/// Reads a little-endian `u16` at `offset`.
#[inline]
pub(crate) fn u16_at(data: &[u8], offset: usize) -> Option<u16> {
    array(data, offset).map(u16::from_le_bytes)
}

/// Reads a little-endian `u32` at `offset`.
#[inline]
pub(crate) fn u32_at(data: &[u8], offset: usize) -> Option<u32> {
    array(data, offset).map(u32::from_le_bytes)
}

/// Reads a little-endian `u64` at `offset`.
#[inline]
pub(crate) fn u64_at(data: &[u8], offset: usize) -> Option<u64> {
    array(data, offset).map(u64::from_le_bytes)
}

/// FNV-1a 64-bit hash, as Go's `hash/fnv.New64a` computes it.
pub fn fnv1a64(data: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    data.iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_outside_the_slice_are_none() {
        let d = [1u8, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(u64_at(&d, 0), Some(u64::from_le_bytes(d)));
        assert_eq!(u64_at(&d, 1), None);
        assert_eq!(u32_at(&d, usize::MAX - 1), None);
        assert_eq!(slice(&d, 8, 0), Some(&[][..]));
        assert_eq!(slice(&d, 9, 0), None);
    }

    #[test]
    fn fnv_matches_go_reference_values() {
        // Values from Go's hash/fnv test vectors for New64a.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"ab"), 0x089c4407b545986a);
        assert_eq!(fnv1a64(b"abc"), 0xe71fa2190541574b);
    }
}
