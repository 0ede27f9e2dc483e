//! AES-128 encryption of a batch of blocks with VAES: two blocks per instruction.
//!
//! The mappings encrypt 16 to 128 independent blocks per cold address, and the AES rounds are
//! most of its cost. The `aes` crate's AES-NI backend runs eight 128-bit blocks abreast; where
//! the CPU has VAES (256-bit AES rounds, with AVX2), this runs sixteen blocks abreast in eight
//! registers, which halves the instructions of the rounds. Used only where the CPU has VAES,
//! AVX2 and AES-NI (checked at run time, once per key); elsewhere the crate's backend is used.
//! Tests hold it to the crate's output and to FIPS-197.

#![allow(unsafe_code)]

use aes::Block;
use std::arch::x86_64::{
    __m128i, __m256i, _mm256_aesenc_epi128, _mm256_aesenclast_epi128, _mm256_and_si256,
    _mm256_broadcastsi128_si256, _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256,
    _mm256_set1_epi32, _mm256_slli_epi16, _mm256_storeu_si256, _mm256_xor_si256, _mm_aesenc_si128,
    _mm_aesenclast_si128, _mm_aeskeygenassist_si128, _mm_loadu_si128, _mm_setzero_si128,
    _mm_shuffle_epi32, _mm_slli_si128, _mm_storeu_si128, _mm_xor_si128,
};

/// Blocks per full batch: eight 256-bit registers of two blocks.
const BATCH: usize = 16;

/// An expanded AES-128 key, built only where VAES, AVX2 and AES-NI are present.
#[derive(Clone, Copy)]
pub struct Vaes {
    /// The round keys, each in both halves of a 256-bit register.
    wide: [__m256i; 11],
    /// The round keys, for a last odd block.
    narrow: [__m128i; 11],
}

impl Vaes {
    /// The key schedule of `key`, or `None` where the CPU lacks VAES, AVX2 or AES-NI.
    pub fn new(key: &[u8; 16]) -> Option<Vaes> {
        if !Vaes::available() {
            return None;
        }
        // SAFETY: the CPU has AES-NI and AVX2 (checked above).
        Some(unsafe { expand(key) })
    }

    /// Whether this CPU has VAES, AVX2 and AES-NI.
    pub fn available() -> bool {
        std::is_x86_feature_detected!("vaes")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("aes")
    }

    /// Encrypts `blocks` in place (any number of them).
    pub fn encrypt(&self, blocks: &mut [Block]) {
        // SAFETY: a `Vaes` exists only where VAES, AVX2 and AES-NI are present (`new`).
        unsafe { encrypt(self, blocks) }
    }
}

/// The AES inputs of bits 16..32 of an IPv4 address, held in registers: each input is
/// `(address & mask) | pad`, two inputs per register, so a cold address builds its sixteen
/// blocks with two instructions per register and never stores them; the flip bits are read
/// with one `movemask` per register.
#[derive(Clone, Copy)]
pub(super) struct Blocks4 {
    /// Which address bits each input keeps; the address's word sits in every 32-bit lane.
    mask: [__m256i; 8],
    /// The rest of each input.
    pad: [__m256i; 8],
    /// The address's bytes stand big-endian in an input's bytes 0..4 (else little-endian).
    big_endian: bool,
    /// The flip is an output byte's least significant bit (else its most significant).
    low_bit: bool,
}

/// Bits of an IPv4 address whose inputs [`Blocks4`] holds: 16..32.
pub(super) const BLOCKS4_FROM: u32 = 16;

impl Blocks4 {
    /// From the mapping's inputs: `input(addr, j)` is the input block of bit `j` of `addr`,
    /// which must be `(word & mask_j) | pad_j` for fixed masks and pads, with the address's
    /// word in the input's first four bytes, big-endian when `big_endian`. The mappings'
    /// inputs have that form by construction; this checks it against the all-zero address
    /// (the pads), the all-one address (the masks), every single-bit address (each address
    /// bit in its own place) and one with every byte distinct, so that a construction of
    /// another form can never take this path: `None` then, and `None` without VAES.
    pub(super) fn new(
        input: impl Fn(u32, u32) -> Block,
        big_endian: bool,
        low_bit: bool,
    ) -> Option<Blocks4> {
        if !Vaes::available() {
            return None;
        }
        let mut mask = [[0u8; 16]; 16];
        let mut pad = [[0u8; 16]; 16];
        for (i, j) in (BLOCKS4_FROM..32).enumerate() {
            let zero: [u8; 16] = input(0, j).into();
            let ones: [u8; 16] = input(u32::MAX, j).into();
            mask[i] = std::array::from_fn(|b| zero[b] ^ ones[b]);
            pad[i] = zero;
            if mask[i][4..].iter().any(|&m| m != 0)
                || mask[i].iter().zip(&pad[i]).any(|(m, p)| m & p != 0)
            {
                return None;
            }
            let probes = (0..32).map(|k| 1u32 << k).chain([0x1234_5678]);
            for probe in probes {
                let word = match big_endian {
                    true => probe.to_be_bytes(),
                    false => probe.to_le_bytes(),
                };
                let want: [u8; 16] = input(probe, j).into();
                let got: [u8; 16] = std::array::from_fn(|b| {
                    let w = if b < 4 { word[b] } else { 0 };
                    (w & mask[i][b]) | pad[i][b]
                });
                if got != want {
                    return None;
                }
            }
        }
        // SAFETY: the CPU has AVX2 (`Vaes::available` above).
        let (mask, pad) = unsafe { (pairs(&mask), pairs(&pad)) };
        Some(Blocks4 {
            mask,
            pad,
            big_endian,
            low_bit,
        })
    }
}

/// Sixteen blocks as eight registers of two.
#[target_feature(enable = "avx2")]
fn pairs(blocks: &[[u8; 16]; 16]) -> [__m256i; 8] {
    // SAFETY: blocks `2k` and `2k + 1` are 32 contiguous readable bytes; unaligned load.
    std::array::from_fn(|k| unsafe { _mm256_loadu_si256(blocks[2 * k..].as_ptr().cast()) })
}

impl Vaes {
    /// The flips of bits 16..32 of `addr` (bit 31 the least significant), with `blocks`.
    pub(super) fn flips4(&self, blocks: &Blocks4, addr: u32) -> u32 {
        // SAFETY: a `Vaes` exists only where VAES, AVX2 and AES-NI are present (`new`).
        unsafe { flips4(self, blocks, addr) }
    }
}

#[target_feature(enable = "aes,avx2,vaes")]
fn flips4(key: &Vaes, b: &Blocks4, addr: u32) -> u32 {
    let word = if b.big_endian {
        addr.swap_bytes()
    } else {
        addr
    };
    let word = _mm256_set1_epi32(word as i32);
    let rk = &key.wide;
    let mut state: [__m256i; 8] = std::array::from_fn(|k| {
        let input = _mm256_or_si256(_mm256_and_si256(word, b.mask[k]), b.pad[k]);
        _mm256_xor_si256(input, rk[0])
    });
    for k in &rk[1..10] {
        for s in state.iter_mut() {
            *s = _mm256_aesenc_epi128(*s, *k);
        }
    }
    let mut flips = 0u32;
    for s in state {
        let mut out = _mm256_aesenclast_epi128(s, rk[10]);
        if b.low_bit {
            // bit 0 of byte 0 of each half to bit 7
            out = _mm256_slli_epi16::<7>(out);
        }
        // byte 0 of the first block is bit 0, of the second bit 16
        let m = _mm256_movemask_epi8(out) as u32;
        flips = flips << 2 | (m & 1) << 1 | (m >> 16 & 1);
    }
    flips
}

/// FIPS-197 key expansion with `aeskeygenassist`.
#[target_feature(enable = "aes,avx2")]
fn expand(key: &[u8; 16]) -> Vaes {
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
    Vaes {
        wide: rk.map(|k| _mm256_broadcastsi128_si256(k)),
        narrow: rk,
    }
}

/// One step of the key schedule: the previous round key's words chained, plus the assist.
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

#[target_feature(enable = "aes,avx2,vaes")]
fn encrypt(key: &Vaes, blocks: &mut [Block]) {
    let mut batches = blocks.chunks_exact_mut(BATCH);
    for batch in &mut batches {
        let batch: &mut [Block; BATCH] = batch.try_into().expect("chunks_exact");
        // SAFETY: sixteen blocks are 256 contiguous bytes (`Block` is `[u8; 16]`).
        unsafe { rounds::<{ BATCH / 2 }>(&key.wide, batch.as_mut_ptr().cast()) };
    }
    let rest = batches.into_remainder();
    let mut pairs = rest.chunks_exact_mut(2);
    for pair in &mut pairs {
        // SAFETY: two blocks are 32 contiguous bytes.
        unsafe { rounds::<1>(&key.wide, pair.as_mut_ptr().cast()) };
    }
    if let [last] = pairs.into_remainder() {
        // SAFETY: a block is 16 readable and writable bytes; the accesses are unaligned.
        unsafe {
            let mut s = _mm_xor_si128(_mm_loadu_si128(last.as_ptr().cast()), key.narrow[0]);
            for k in &key.narrow[1..10] {
                s = _mm_aesenc_si128(s, *k);
            }
            _mm_storeu_si128(
                last.as_mut_ptr().cast(),
                _mm_aesenclast_si128(s, key.narrow[10]),
            );
        }
    }
}

/// The ten rounds over `N` registers of two blocks each, in place at `p`.
///
/// # Safety
/// `p` points to `32 * N` readable and writable bytes.
#[target_feature(enable = "aes,avx2,vaes")]
unsafe fn rounds<const N: usize>(rk: &[__m256i; 11], p: *mut __m256i) {
    let mut state: [__m256i; N] = std::array::from_fn(|i| {
        // SAFETY: register `i < N` is within the caller's `32 * N` bytes; unaligned load.
        _mm256_xor_si256(unsafe { _mm256_loadu_si256(p.add(i)) }, rk[0])
    });
    for k in &rk[1..10] {
        for s in state.iter_mut() {
            *s = _mm256_aesenc_epi128(*s, *k);
        }
    }
    for (i, s) in state.iter().enumerate() {
        // SAFETY: as for the loads; unaligned store.
        unsafe { _mm256_storeu_si256(p.add(i), _mm256_aesenclast_epi128(*s, rk[10])) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};

    /// Whether this CPU runs the VAES path; a machine without it runs only the crate's.
    fn present() -> bool {
        let here = Vaes::available();
        if !here {
            eprintln!("this CPU lacks VAES/AVX2/AES-NI: the aes crate's backend is used");
        }
        here
    }

    #[test]
    fn same_blocks_as_the_aes_crate_for_every_batch_length() {
        if !present() {
            return;
        }
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for len in 0..=40 {
            let key: [u8; 16] = std::array::from_fn(|_| next());
            let reference = aes::Aes128::new(GenericArray::from_slice(&key));
            let ours_key = Vaes::new(&key).unwrap();
            let mut ours: Vec<Block> = (0..len)
                .map(|_| Block::from(std::array::from_fn::<u8, 16, _>(|_| next())))
                .collect();
            let mut theirs = ours.clone();
            ours_key.encrypt(&mut ours);
            reference.encrypt_blocks(&mut theirs);
            assert_eq!(ours, theirs, "{len} blocks");
        }
    }

    #[test]
    fn fips_197_appendix_c1() {
        if !present() {
            return;
        }
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let plain = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        let expected = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        for len in [1, 2, 3, 16, 17, 19] {
            let mut blocks = vec![Block::from(plain); len];
            Vaes::new(&key).unwrap().encrypt(&mut blocks);
            assert!(
                blocks.iter().all(|b| b.as_slice() == expected),
                "{len} blocks"
            );
        }
    }
}
