//! Masks of the top bits of an address word, shared by the mappings, the prefix cache and
//! the don't-scramble list.

/// A mask of the top `bits` bits of a 32-bit word (`bits` in 0..=32).
pub(crate) fn top_mask32(bits: u32) -> u32 {
    u32::MAX.checked_shl(32 - bits).unwrap_or(0)
}

/// A mask of the top `bits` bits of a 128-bit word (`bits` in 0..=128).
pub(crate) fn top_mask128(bits: u32) -> u128 {
    u128::MAX.checked_shl(128 - bits).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(top_mask32(0), 0);
        assert_eq!(top_mask32(32), u32::MAX);
        assert_eq!(top_mask32(8), 0xff00_0000);
        assert_eq!(top_mask128(0), 0);
        assert_eq!(top_mask128(128), u128::MAX);
    }
}
