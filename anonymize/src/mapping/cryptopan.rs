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
        let tail = (self.0 as u64).to_be_bytes();
        let pad_hi = (self.0 >> 64) as u64;
        let addr = u64::from(addr) << 32;
        let mut keep = u64::from(crate::mask::top_mask32(from)) << 32;
        for block in blocks.iter_mut().take((32 - from) as usize) {
            let head = (addr & keep) | (pad_hi & !keep);
            block[..8].copy_from_slice(&head.to_be_bytes());
            block[8..].copy_from_slice(&tail);
            keep = (keep >> 1) | 1 << 63;
        }
    }

    /// The AES inputs for bits `from..128` of an IPv6 address, into `blocks[0..]`.
    pub(crate) fn blocks_v6(&self, addr: u128, from: u32, blocks: &mut [Block]) {
        let mut keep = crate::mask::top_mask128(from);
        for block in blocks.iter_mut().take((128 - from) as usize) {
            *block = Block::from(((addr & keep) | (self.0 & !keep)).to_be_bytes());
            keep = (keep >> 1) | 1 << 127;
        }
    }
}
