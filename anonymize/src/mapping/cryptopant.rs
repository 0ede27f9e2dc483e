//! ISI cryptopANT in AES mode, reimplemented from its published behaviour.
//!
//! The key file gives an AES-128 key and a pad of up to 32 bytes, used raw.
//!
//! IPv4: for bit `j` the 32-bit word `x` keeps the address's top `j` bits and fills the low
//! `32 - j` bits with the top `32 - j` bits of the pad's first word (read little-endian, as the
//! reference reads it on a little-endian host). The AES input is `x` in little-endian byte
//! order followed by pad bytes 4..16; the flip bit is the least significant bit of output
//! byte 0. The class bits of the address are always passed (1 bit for 0/1, 2 for 10, 3 for
//! 110, 4 for 1110, all 32 for 240/4).
//!
//! IPv6: word by word (four 32-bit big-endian words). For bit `j` of word `w` the AES input is
//! the address's words before `w`, then word `w` built as above from the pad's word `w` (read
//! big-endian), then the pad's words after `w`; the flip bit is the least significant bit of
//! output byte 15.

use aes::Block;

use crate::mask::top_mask32;

/// The pad and the words derived from it.
#[derive(Clone, Copy, Debug)]
pub struct Pad {
    bytes: [u8; 16],
    ip4: u32,
    ip6: [u32; 4],
}

impl Pad {
    pub(crate) fn new(pad: &[u8; 32]) -> Pad {
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&pad[..16]);
        let word = |i: usize| [pad[4 * i], pad[4 * i + 1], pad[4 * i + 2], pad[4 * i + 3]];
        Pad {
            bytes,
            ip4: u32::from_le_bytes(word(0)),
            ip6: [0, 1, 2, 3].map(|i| u32::from_be_bytes(word(i))),
        }
    }

    /// The AES input for bit `j` of an IPv4 address.
    pub(crate) fn block_v4(&self, addr: u32, j: u32) -> Block {
        let x = mix(addr, self.ip4, j);
        let mut block = Block::from(self.bytes);
        block[..4].copy_from_slice(&x.to_le_bytes());
        block
    }

    /// The AES inputs for bits `from..32` of an IPv4 address, into `blocks[0..]`.
    pub(crate) fn blocks_v4(&self, addr: u32, from: u32, blocks: &mut [Block]) {
        for (block, j) in blocks.iter_mut().zip(from..32) {
            *block = self.block_v4(addr, j);
        }
    }

    /// The AES inputs for bits `from..128` of an IPv6 address, into `blocks[0..]`.
    pub(crate) fn blocks_v6(&self, addr: u128, from: u32, blocks: &mut [Block]) {
        for (block, j) in blocks.iter_mut().zip(from..128) {
            *block = self.block_v6(addr, j);
        }
    }

    /// The AES input for global bit `g` of an IPv6 address.
    pub(crate) fn block_v6(&self, addr: u128, g: u32) -> Block {
        let w = (g / 32) as usize;
        let word = (addr >> (96 - 32 * w as u32)) as u32;
        let x = mix(word, self.ip6[w], g % 32);
        let mut block = Block::from(self.bytes);
        block[..4 * w].copy_from_slice(&addr.to_be_bytes()[..4 * w]);
        block[4 * w..4 * w + 4].copy_from_slice(&x.to_be_bytes());
        block
    }
}

/// The word's top `j` bits, then the pad's top `32 - j` bits.
fn mix(word: u32, pad: u32, j: u32) -> u32 {
    (word & top_mask32(j)) | pad.checked_shr(j).unwrap_or(0)
}

/// IPv4 class bits always passed: by the top four bits of the address.
pub(crate) fn class_bits(addr: u32) -> u32 {
    match addr >> 28 {
        0..=7 => 1,
        8..=11 => 2,
        12..=13 => 3,
        14 => 4,
        _ => 32,
    }
}
