//! Prefix-preserving address mappings: Crypto-PAn, cryptopANT and libtrace.
//!
//! All three share one shape. The bit at index `j` (0 = most significant) of the output is the
//! input bit XOR a flip bit, and the flip bit is a function of the input's top `j` bits only:
//! one AES-128 block per bit, built from those `j` bits and a pad. The blocks of one address do
//! not depend on each other, so they are built first and encrypted in one `encrypt_blocks` call
//! (AES-NI pipelines them). The mappings differ in how a block is built and which output bit is
//! the flip bit; see [`cryptopan`] and [`cryptopant`].
//!
//! The flips of an address's top 16 bits depend on its top 15 bits only, so they come from a
//! table built from the key (module `top`): a cold IPv4 address costs 16 blocks, not 32.

pub mod cryptopan;
pub mod cryptopant;
mod top;
#[cfg(target_arch = "x86_64")]
mod vaes;
#[cfg(target_arch = "x86_64")]
pub use vaes::Vaes;

use std::sync::{Arc, OnceLock};

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::{Aes128, Block};

use crate::key::{Key, Mapping};
use crate::prefix::PrefixList;

/// How the AES input blocks are built and the flip bit read, per mapping.
#[derive(Clone, Debug)]
enum Construction {
    /// Crypto-PAn and libtrace: the pad as a 128-bit big-endian number.
    Pan(cryptopan::Pad),
    /// cryptopANT.
    Pant(cryptopant::Pad),
}

/// Options of a mapping beyond its key.
#[derive(Clone, Debug, Default)]
pub struct MapOptions {
    /// High IPv4 bits passed unchanged.
    pub pass4: u8,
    /// High IPv6 bits passed unchanged.
    pub pass6: u8,
    /// Prefixes whose addresses are passed unchanged.
    pub keep: PrefixList,
}

/// A bad mapping option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// `pass4` over 32 or `pass6` over 128.
    #[error("pass bits {bits} out of range for IPv{version} (at most {max})")]
    PassBits {
        /// 4 or 6.
        version: u8,
        /// The value given.
        bits: u8,
        /// The largest allowed.
        max: u8,
    },
}

/// An address mapping with its key schedule: the prototype each worker clones.
#[derive(Clone)]
pub struct Anonymizer {
    mapping: Mapping,
    /// The `aes` crate's cipher: its AES-NI backend (chosen at run time) pipelines eight
    /// blocks; our own eight-lane AES-NI code did no better in paired criterion runs of cold
    /// IPv4 Crypto-PAn (5.1, 5.8, 6.2 M addresses/s against the crate's 6.2, 5.2, 6.1), so
    /// without VAES the crate's safe interface it is.
    cipher: Aes128,
    /// The same key for VAES, two blocks per instruction, where the CPU has it.
    #[cfg(target_arch = "x86_64")]
    vaes: Option<vaes::Vaes>,
    /// With VAES: the inputs of an IPv4 address's bits 16..32, built in registers.
    #[cfg(target_arch = "x86_64")]
    blocks4: Option<vaes::Blocks4>,
    construction: Construction,
    /// The top bits' flips, built on first use and shared by every clone.
    top: Arc<OnceLock<top::TopFlips>>,
    pass4: u32,
    pass6: u32,
    keep: PrefixList,
}

impl std::fmt::Debug for Anonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anonymizer")
            .field("mapping", &self.mapping)
            .field("pass4", &self.pass4)
            .field("pass6", &self.pass6)
            .finish_non_exhaustive()
    }
}

/// Up to 128 AES blocks, one per address bit.
type Blocks = [Block; 128];

impl Anonymizer {
    /// Builds the mapping of `key` with `options`.
    pub fn new(key: &Key, options: &MapOptions) -> Result<Anonymizer, MapError> {
        check_pass(4, options.pass4, 32)?;
        check_pass(6, options.pass6, 128)?;
        let (aes_key, construction) = match key {
            Key::Pan { mapping, bytes } => {
                let cipher = Aes128::new(GenericArray::from_slice(&bytes[..16]));
                let encrypt_pad = *mapping == Mapping::CryptoPan;
                let pad = cryptopan::Pad::new(&cipher, &bytes[16..], encrypt_pad);
                let aes_key: [u8; 16] = std::array::from_fn(|i| bytes[i]);
                (aes_key, Construction::Pan(pad))
            }
            Key::Pant(k) => (k.key, Construction::Pant(cryptopant::Pad::new(&k.pad))),
        };
        let anon = Anonymizer {
            mapping: key.mapping(),
            cipher: Aes128::new(GenericArray::from_slice(&aes_key)),
            #[cfg(target_arch = "x86_64")]
            vaes: vaes::Vaes::new(&aes_key),
            #[cfg(target_arch = "x86_64")]
            blocks4: None,
            construction,
            top: Arc::default(),
            pass4: options.pass4.into(),
            pass6: options.pass6.into(),
            keep: options.keep.clone(),
        };
        #[cfg(target_arch = "x86_64")]
        let anon = Anonymizer {
            blocks4: anon.register_inputs_v4(),
            ..anon
        };
        Ok(anon)
    }

    /// With VAES: the IPv4 inputs of bits 16..32 as registers take them, derived from the
    /// construction's own input builder (and checked against it).
    #[cfg(target_arch = "x86_64")]
    fn register_inputs_v4(&self) -> Option<vaes::Blocks4> {
        // Crypto-PAn puts the address big-endian and flips by the output's top bit,
        // cryptopANT little-endian and by its bottom bit (as `fold` reads them)
        let pan = matches!(self.construction, Construction::Pan(_));
        let input = |addr, j| {
            let mut block = [Block::default()];
            self.blocks_v4(addr, j, &mut block);
            block[0]
        };
        vaes::Blocks4::new(input, pan, !pan)
    }

    /// The mapping.
    pub fn mapping(&self) -> Mapping {
        self.mapping
    }

    /// Anonymizes an IPv4 address (as a big-endian number), without any cache.
    pub fn anon_v4(&self, addr: u32) -> u32 {
        if self.keep.contains_v4(addr) {
            return addr;
        }
        addr ^ self.flips_v4(addr, self.first_bit_v4(addr))
    }

    /// Anonymizes an IPv6 address (as a big-endian number), without any cache.
    pub fn anon_v6(&self, addr: u128) -> u128 {
        if self.keep.contains_v6(addr) {
            return addr;
        }
        addr ^ self.flips_v6(addr, self.pass6)
    }

    /// Inverts [`Anonymizer::anon_v4`].
    ///
    /// Each round fixes at least the highest wrong bit: the flip of bit `j` depends only on
    /// the bits above it, so at most 33 rounds.
    pub fn deanon_v4(&self, anon: u32) -> u32 {
        let mut guess = anon;
        for _ in 0..=32 {
            let diff = self.anon_v4(guess) ^ anon;
            if diff == 0 {
                break;
            }
            guess ^= diff;
        }
        guess
    }

    /// Inverts [`Anonymizer::anon_v6`] (at most 129 rounds).
    pub fn deanon_v6(&self, anon: u128) -> u128 {
        let mut guess = anon;
        for _ in 0..=128 {
            let diff = self.anon_v6(guess) ^ anon;
            if diff == 0 {
                break;
            }
            guess ^= diff;
        }
        guess
    }

    /// Encrypts `blocks` in place (best a multiple of eight: the crate's backend encrypts
    /// a remainder one block after another).
    fn encrypt(&self, blocks: &mut [Block]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(vaes) = &self.vaes {
            return vaes.encrypt(blocks);
        }
        self.cipher.encrypt_blocks(blocks);
    }

    /// Whether `addr` is on the don't-scramble list.
    pub(crate) fn keeps_v4(&self, addr: u32) -> bool {
        self.keep.contains_v4(addr)
    }

    /// Whether `addr` is on the don't-scramble list.
    pub(crate) fn keeps_v6(&self, addr: u128) -> bool {
        self.keep.contains_v6(addr)
    }

    /// Index of the first IPv4 bit that may flip (pass bits and cryptopANT's class bits).
    pub(crate) fn first_bit_v4(&self, addr: u32) -> u32 {
        match &self.construction {
            Construction::Pan(_) => self.pass4,
            Construction::Pant(_) => self.pass4.max(cryptopant::class_bits(addr)),
        }
    }

    /// First IPv6 bit that may flip.
    pub(crate) fn first_bit_v6(&self) -> u32 {
        self.pass6
    }

    /// The flip mask of `addr` for bit indices `from..32` (0 = most significant).
    pub(crate) fn flips_v4(&self, addr: u32, from: u32) -> u32 {
        if let Some(flips) = self.register_flips_v4(addr, from) {
            return flips;
        }
        // the bits after the table's: 16 blocks on the stack, nothing to clear beyond them
        self.flips_v4_with(addr, from, &mut [Block::default(); 32 - top::BITS as usize])
    }

    /// [`Anonymizer::flips_v4`] with the caller's scratch blocks (no per-call initialization).
    pub(crate) fn flips_v4_in(&self, addr: u32, from: u32, scratch: &mut Scratch) -> u32 {
        if let Some(flips) = self.register_flips_v4(addr, from) {
            return flips;
        }
        self.flips_v4_with(addr, from, &mut scratch.0)
    }

    /// The table's flips of the top bits of `addr`, as bits 31..16 of a mask.
    #[inline]
    fn top_flips_v4(&self, addr: u32) -> u32 {
        u32::from(self.top().v4[(addr >> (32 - top::INDEX_BITS)) as usize]) << 16
    }

    /// With VAES, the flips of bits `from..32`: the table's, then the rest with the inputs
    /// built in registers. `None` without VAES.
    #[inline]
    fn register_flips_v4(&self, addr: u32, from: u32) -> Option<u32> {
        #[cfg(target_arch = "x86_64")]
        if let (Some(vaes), Some(blocks4)) = (&self.vaes, &self.blocks4) {
            const { assert!(vaes::BLOCKS4_FROM == top::BITS) };
            if from >= 32 {
                return Some(0);
            }
            let low = vaes.flips4(blocks4, addr);
            return Some((self.top_flips_v4(addr) | low) & (u32::MAX >> from));
        }
        let _ = (addr, from);
        None
    }

    /// The flips of bits `from..32`: the table's, then the rest encrypted in `blocks`.
    #[inline]
    fn flips_v4_with(&self, addr: u32, from: u32, blocks: &mut [Block]) -> u32 {
        if from >= 32 {
            return 0;
        }
        let low = self.encrypted_flips_v4(addr, from.max(top::BITS), blocks);
        (self.top_flips_v4(addr) | low) & (u32::MAX >> from)
    }

    /// The flips of bits `from..32`, one AES block each, encrypted in `blocks` (at least
    /// `32 - from` rounded up to a multiple of eight).
    fn encrypted_flips_v4(&self, addr: u32, from: u32, blocks: &mut [Block]) -> u32 {
        let n = (32 - from) as usize;
        let blocks = &mut blocks[..n.next_multiple_of(PAR_BLOCKS)];
        self.blocks_v4(addr, from, blocks);
        self.encrypt(blocks);
        // the block of bit `from` first: shifting left puts bit 31 at the bottom
        self.fold(&blocks[..n], false) as u32
    }

    /// The AES inputs for bits `from..32` of `addr`, into `blocks[0..]`.
    fn blocks_v4(&self, addr: u32, from: u32, blocks: &mut [Block]) {
        match &self.construction {
            Construction::Pan(pad) => pad.blocks_v4(addr, from, blocks),
            Construction::Pant(pad) => pad.blocks_v4(addr, from, blocks),
        }
    }

    /// The AES inputs for bits `from..128` of `addr`, into `blocks[0..]`.
    fn blocks_v6(&self, addr: u128, from: u32, blocks: &mut [Block]) {
        match &self.construction {
            Construction::Pan(pad) => pad.blocks_v6(addr, from, blocks),
            Construction::Pant(pad) => pad.blocks_v6(addr, from, blocks),
        }
    }

    /// The flip bits of encrypted `blocks`, the first block's the highest (IPv6 when `v6`).
    #[inline]
    fn fold(&self, blocks: &[Block], v6: bool) -> u128 {
        let fold = |bit: fn(&Block) -> u8| {
            blocks
                .iter()
                .fold(0u128, |acc, b| (acc << 1) | u128::from(bit(b)))
        };
        match (&self.construction, v6) {
            (Construction::Pan(_), _) => fold(|b| b[0] >> 7),
            (Construction::Pant(_), false) => fold(|b| b[0] & 1),
            (Construction::Pant(_), true) => fold(|b| b[15] & 1),
        }
    }

    /// The table of the top bits' flips, built on first use.
    fn top(&self) -> &top::TopFlips {
        self.top.get_or_init(|| top::TopFlips::build(self))
    }

    /// The flip mask of `addr` for bit indices `from..128`.
    pub(crate) fn flips_v6(&self, addr: u128, from: u32) -> u128 {
        self.flips_v6_in(addr, from, &mut Scratch::new())
    }

    /// [`Anonymizer::flips_v6`] with the caller's scratch blocks.
    pub(crate) fn flips_v6_in(&self, addr: u128, from: u32, scratch: &mut Scratch) -> u128 {
        if from >= 128 {
            return 0;
        }
        let top = u128::from(self.top().v6[(addr >> (128 - top::INDEX_BITS)) as usize]) << 112;
        let low = self.encrypted_flips_v6(addr, from.max(top::BITS), scratch);
        (top | low) & (u128::MAX >> from)
    }

    /// The flips of bits `from..128`, one AES block each.
    fn encrypted_flips_v6(&self, addr: u128, from: u32, scratch: &mut Scratch) -> u128 {
        let n = (128 - from) as usize;
        let blocks = &mut scratch.0[..n.next_multiple_of(PAR_BLOCKS)];
        self.blocks_v6(addr, from, blocks);
        self.encrypt(blocks);
        self.fold(&blocks[..n], true)
    }
}

/// Blocks AES-NI encrypts in parallel (the `aes` crate's `ParBlocksSize`): a batch is
/// rounded up to a multiple, since a remainder is encrypted one block after another.
const PAR_BLOCKS: usize = 8;

/// Scratch AES blocks for one address, reused across calls. Blocks past those an address
/// needs hold stale inputs; they are encrypted to fill the last parallel batch and ignored.
#[derive(Clone)]
pub(crate) struct Scratch(Blocks);

impl Scratch {
    pub(crate) fn new() -> Scratch {
        Scratch([Block::default(); 128])
    }
}

fn check_pass(version: u8, bits: u8, max: u8) -> Result<(), MapError> {
    if bits > max {
        return Err(MapError::PassBits { version, bits, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anonymizer(mapping: Mapping) -> Anonymizer {
        let key = Key::generate(mapping).unwrap();
        Anonymizer::new(&key, &MapOptions::default()).unwrap()
    }

    #[test]
    fn reverse_round_trips_every_mapping() {
        for mapping in Mapping::ALL {
            let a = anonymizer(mapping);
            for addr in [0u32, 1, 0x0a00_0001, 0xc0a8_0101, 0xffff_ffff, 0xf000_0001] {
                assert_eq!(a.deanon_v4(a.anon_v4(addr)), addr, "{mapping}");
            }
            for addr in [0u128, 1, 0x2001_0db8 << 96, u128::MAX] {
                assert_eq!(a.deanon_v6(a.anon_v6(addr)), addr, "{mapping}");
            }
        }
    }

    static ANONYMIZERS: std::sync::LazyLock<Vec<Anonymizer>> =
        std::sync::LazyLock::new(|| Mapping::ALL.map(anonymizer).to_vec());

    proptest::proptest! {
        /// The key-derived table of the top 16 flips gives what encrypting every bit gives,
        /// for every mapping and every first bit.
        #[test]
        fn top_table_equals_encrypting_every_bit(
            addrs in proptest::collection::vec(proptest::prelude::any::<u128>(), 1..8),
            from4 in 0u32..=32,
            from6 in 0u32..=128,
        ) {
            for (mapping, a) in Mapping::ALL.into_iter().zip(ANONYMIZERS.iter()) {
                let mut scratch = Scratch::new();
                for &addr in &addrs {
                    let v4 = (addr >> 96) as u32;
                    let direct4 = if from4 < 32 { a.encrypted_flips_v4(v4, from4, &mut scratch.0) } else { 0 };
                    proptest::prop_assert_eq!(a.flips_v4_in(v4, from4, &mut scratch), direct4, "{}", mapping);
                    let direct6 = if from6 < 128 { a.encrypted_flips_v6(addr, from6, &mut scratch) } else { 0 };
                    proptest::prop_assert_eq!(a.flips_v6_in(addr, from6, &mut scratch), direct6, "{}", mapping);
                }
            }
        }
    }

    /// Without VAES and the register inputs (the crate's backend, inputs built in memory)
    /// every mapping gives what it gives with them, for every address and option.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_portable_path_gives_what_the_vaes_path_gives() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for mapping in Mapping::ALL {
            let key = Key::generate(mapping).unwrap();
            for pass4 in [0u8, 8, 16, 20, 31, 32] {
                let opts = MapOptions {
                    pass4,
                    pass6: pass4 * 4,
                    ..MapOptions::default()
                };
                let fast = Anonymizer::new(&key, &opts).unwrap();
                let portable = Anonymizer {
                    vaes: None,
                    blocks4: None,
                    top: Arc::default(),
                    ..fast.clone()
                };
                for _ in 0..200 {
                    let v4 = next() as u32;
                    assert_eq!(fast.anon_v4(v4), portable.anon_v4(v4), "{mapping} {pass4}");
                    let v6 = u128::from(next()) << 64 | u128::from(next());
                    assert_eq!(fast.anon_v6(v6), portable.anon_v6(v6), "{mapping} {pass4}");
                }
            }
        }
    }

    /// Every mapping's IPv4 inputs have the `(address & mask) | pad` form the register path
    /// needs, so with VAES every mapping takes it (and the property test above holds it to
    /// the blocks built in memory).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_mapping_builds_its_ipv4_inputs_in_registers_with_vaes() {
        for a in ANONYMIZERS.iter() {
            assert_eq!(a.blocks4.is_some(), a.vaes.is_some(), "{}", a.mapping);
        }
        if ANONYMIZERS[0].vaes.is_none() {
            eprintln!("this CPU lacks VAES/AVX2/AES-NI: the aes crate's backend is used");
        }
    }

    #[test]
    fn pass_bits_keep_the_high_bits() {
        let key = Key::generate(Mapping::CryptoPant).unwrap();
        let opts = MapOptions {
            pass4: 24,
            pass6: 64,
            ..MapOptions::default()
        };
        let a = Anonymizer::new(&key, &opts).unwrap();
        assert_eq!(a.anon_v4(0x0a01_0203) >> 8, 0x000a_0102);
        let v6 = 0x2001_0db8_0001_0002_0003_0004_0005_0006u128;
        assert_eq!(a.anon_v6(v6) >> 64, v6 >> 64);
        let too_many = MapOptions {
            pass4: 33,
            ..MapOptions::default()
        };
        assert!(Anonymizer::new(&key, &too_many).is_err());
    }
}

#[cfg(test)]
mod vectors;
