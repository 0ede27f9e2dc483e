//! The flips of an address's top [`BITS`] bits, for every value of those bits, built from the
//! key once.
//!
//! The flip of bit `j` depends on the top `j` bits only, so the flips of bits `0..16` are a
//! function of the top 15 bits: a table of 2^15 entries, 64 KiB per IP version (small enough
//! to stay in a core's cache), built with one AES block per distinct prefix (65,535 blocks). A
//! cold address then encrypts only its bits from 16 on.

use aes::Block;

use super::Anonymizer;

/// Address bits whose flips come from the table.
pub(super) const BITS: u32 = 16;

/// Address bits that index the table (the last flip depends on the bits above it only).
pub(super) const INDEX_BITS: u32 = BITS - 1;

/// The tables, indexed by an address's top 15 bits; bit `15 - j` of an entry is bit `j`'s flip.
#[derive(Debug)]
pub(super) struct TopFlips {
    pub(super) v4: Box<[u16]>,
    pub(super) v6: Box<[u16]>,
}

impl TopFlips {
    /// Builds both tables for `anon`'s key and construction.
    pub(super) fn build(anon: &Anonymizer) -> TopFlips {
        TopFlips {
            v4: table(anon, false),
            v6: table(anon, true),
        }
    }
}

/// One table, a level at a time: with `flips` the flips of every `j`-bit prefix's bits as a
/// `j`-bit number, the blocks of bit `j` for all those prefixes are built and encrypted in one
/// batch, and each `j + 1`-bit prefix's entry is its parent's shifted up with the new flip.
fn table(anon: &Anonymizer, v6: bool) -> Box<[u16]> {
    let mut flips = vec![0u16];
    let mut blocks = Vec::with_capacity(1 << (BITS - 1));
    for j in 0..BITS {
        blocks.clear();
        blocks.resize(1 << j, Block::default());
        for (prefix, block) in (0u32..).zip(blocks.iter_mut()) {
            // the prefix's j bits at the top of the address, zeros below (ignored for bit j)
            let top = prefix << (BITS - j);
            let one = std::slice::from_mut(block);
            if v6 {
                anon.blocks_v6(u128::from(top) << (128 - BITS), j, one);
            } else {
                anon.blocks_v4(top << (32 - BITS), j, one);
            }
        }
        anon.encrypt(&mut blocks);
        flips = (0..2 << j)
            .map(|p: usize| {
                let parent = p >> 1;
                let bit = anon.fold(std::slice::from_ref(&blocks[parent]), v6) as u16;
                flips[parent] << 1 | bit
            })
            .collect();
    }
    // entries 2k and 2k + 1 are equal: bit 15 does not change the flips of bits 0..16
    flips.into_iter().step_by(2).collect()
}
