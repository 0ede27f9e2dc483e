//! Crypto-PAn (Xu, Fan, Ammar, Moon) and libtrace 4's variant of it.
//!
//! The 32-byte key holds the AES-128 key (bytes 0..16) and a pad (16..32). The reference
//! encrypts the pad once with the key; libtrace 4 uses it raw. For bit `j` the AES input is the
//! address's top `j` bits followed by the pad's remaining `128 - j` bits (the address occupies
//! the high-order end of the 128-bit block), and the flip bit is the most significant bit of
//! the AES output.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt};
use aes::{Aes128, Block};

/// The pad as a big-endian 128-bit number.
#[derive(Clone, Copy, Debug)]
pub struct Pad(u128);

impl Pad {
    /// The pad from the key's second half, AES-encrypted first when `encrypt` (the reference).
    pub(crate) fn new(cipher: &Aes128, raw: &[u8], encrypt: bool) -> Pad {
        let mut block = *GenericArray::from_slice(raw);
        if encrypt {
            cipher.encrypt_block(&mut block);
        }
        Pad(u128::from_be_bytes(block.into()))
    }

    /// The AES inputs for bits `from..32` of an IPv4 address, into `blocks[0..]`. Only the
    /// block's first word depends on the address: the other 12 bytes are the pad's.
    pub(crate) fn blocks_v4(&self, addr: u32, from: u32, blocks: &mut [Block]) {
        let template = self.0.to_be_bytes();
        let pad = (self.0 >> 96) as u32;
        for (block, j) in blocks.iter_mut().zip(from..32) {
            let keep = super::top_mask32(j);
            let mut bytes = template;
            bytes[..4].copy_from_slice(&((addr & keep) | (pad & !keep)).to_be_bytes());
            *block = Block::from(bytes);
        }
    }

    /// The AES inputs for bits `from..128` of an IPv6 address, into `blocks[0..]`.
    pub(crate) fn blocks_v6(&self, addr: u128, from: u32, blocks: &mut [Block]) {
        for (block, j) in blocks.iter_mut().zip(from..128) {
            *block = self.block_v6(addr, j);
        }
    }

    /// The AES input for bit `j` of an IPv6 address.
    pub(crate) fn block_v6(&self, addr: u128, j: u32) -> Block {
        let keep = super::top_mask128(j);
        let input = (addr & keep) | (self.0 & !keep);
        Block::from(input.to_be_bytes())
    }
}
