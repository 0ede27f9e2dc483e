//! AES-128 encryption of eight blocks at a time with AES-NI, for the mappings' batches.
//!
//! The mappings encrypt 16 to 128 independent blocks per address; this runs them eight
//! abreast through the ten rounds without the per-call dispatch and buffer bookkeeping of
//! the generic block-cipher interface. Used only where the CPU has AES-NI (checked at run
//! time); tests check it against the `aes` crate.

#![allow(unsafe_code)]

use aes::Block;
use std::arch::x86_64::{
    __m128i, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128, _mm_loadu_si128,
    _mm_setzero_si128, _mm_shuffle_epi32, _mm_slli_si128, _mm_storeu_si128, _mm_xor_si128,
};

/// Blocks per batch.
pub(crate) const LANES: usize = 8;

/// An expanded AES-128 key, built only where AES-NI is present.
#[derive(Clone, Copy)]
pub(crate) struct AesNi {
    round_keys: [__m128i; 11],
}

impl AesNi {
    /// The key schedule of `key`, or `None` without AES-NI.
    pub(crate) fn new(key: &[u8; 16]) -> Option<AesNi> {
        if !std::is_x86_feature_detected!("aes") {
            return None;
        }
        // SAFETY: AES-NI is present (checked above); SSE2 is part of x86_64.
        Some(unsafe { expand(key) })
    }

    /// Encrypts `blocks` in place; its length is a multiple of [`LANES`].
    pub(crate) fn encrypt(&self, blocks: &mut [Block]) {
        debug_assert_eq!(blocks.len() % LANES, 0);
        for batch in blocks.chunks_exact_mut(LANES) {
            let batch: &mut [Block; LANES] = batch.try_into().expect("chunks_exact");
            // SAFETY: an `AesNi` exists only where AES-NI is present (`new`).
            unsafe { encrypt8(&self.round_keys, batch) };
        }
    }
}

/// FIPS-197 key expansion with `aeskeygenassist`.
#[target_feature(enable = "aes")]
unsafe fn expand(key: &[u8; 16]) -> AesNi {
    let mut rk = [_mm_setzero_si128(); 11];
    // SAFETY: `key` is 16 readable bytes; the load is unaligned.
    rk[0] = unsafe { _mm_loadu_si128(key.as_ptr().cast()) };
    macro_rules! round {
        ($i:literal, $rcon:literal) => {
            rk[$i] = next_key(rk[$i - 1], _mm_aeskeygenassist_si128::<$rcon>(rk[$i - 1]));
        };
    }
    round!(1, 0x01);
    round!(2, 0x02);
    round!(3, 0x04);
    round!(4, 0x08);
    round!(5, 0x10);
    round!(6, 0x20);
    round!(7, 0x40);
    round!(8, 0x80);
    round!(9, 0x1b);
    round!(10, 0x36);
    AesNi { round_keys: rk }
}

#[target_feature(enable = "aes")]
fn next_key(prev: __m128i, assist: __m128i) -> __m128i {
    let assist = _mm_shuffle_epi32::<0xff>(assist);
    let mut key = prev;
    let mut shifted = _mm_slli_si128::<4>(prev);
    key = _mm_xor_si128(key, shifted);
    shifted = _mm_slli_si128::<4>(shifted);
    key = _mm_xor_si128(key, shifted);
    shifted = _mm_slli_si128::<4>(shifted);
    key = _mm_xor_si128(key, shifted);
    _mm_xor_si128(key, assist)
}

#[target_feature(enable = "aes")]
unsafe fn encrypt8(rk: &[__m128i; 11], blocks: &mut [Block; LANES]) {
    let mut state = [_mm_setzero_si128(); LANES];
    for (s, b) in state.iter_mut().zip(blocks.iter()) {
        // SAFETY: a block is 16 readable bytes; the load is unaligned.
        *s = _mm_xor_si128(unsafe { _mm_loadu_si128(b.as_ptr().cast()) }, rk[0]);
    }
    for key in &rk[1..10] {
        for s in state.iter_mut() {
            *s = _mm_aesenc_si128(*s, *key);
        }
    }
    for (s, b) in state.iter().zip(blocks.iter_mut()) {
        // SAFETY: a block is 16 writable bytes; the store is unaligned.
        unsafe { _mm_storeu_si128(b.as_mut_ptr().cast(), _mm_aesenclast_si128(*s, rk[10])) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};

    #[test]
    fn same_blocks_as_the_aes_crate() {
        let Some(_) = AesNi::new(&[0; 16]) else {
            return; // no AES-NI: the generic path is the only one used
        };
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for _ in 0..20 {
            let key: [u8; 16] = std::array::from_fn(|_| next());
            let reference = aes::Aes128::new(GenericArray::from_slice(&key));
            let ni = AesNi::new(&key).unwrap();
            let mut ours: Vec<Block> = (0..24)
                .map(|_| Block::from(std::array::from_fn::<u8, 16, _>(|_| next())))
                .collect();
            let mut theirs = ours.clone();
            ni.encrypt(&mut ours);
            reference.encrypt_blocks(&mut theirs);
            assert_eq!(ours, theirs);
        }
        // FIPS-197 appendix C.1
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let mut blocks = [Block::from([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]); LANES];
        AesNi::new(&key).unwrap().encrypt(&mut blocks);
        let expected = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        assert!(blocks.iter().all(|b| b.as_slice() == expected));
    }
}
