//! A per-worker cache in front of a mapping.
//!
//! Each worker owns one [`CachedAnonymizer`], cloned from the prototype [`Anonymizer`], so the
//! cache is keyed by everything that changes the output: the mapping, key and options are fixed
//! per instance, and the entries are keyed by the address or its prefix.
//!
//! Three levels per family, all direct-mapped (a newer entry replaces an older one):
//! - exact addresses;
//! - prefixes (/24 and /16 for IPv4, /64 and /32 for IPv6) holding the flip bits that depend
//!   only on the prefix (bit `j` depends on the top `j` bits, so a /p entry gives bits `0..=p`),
//!   which leaves only the low bits to encrypt on a miss.

use crate::mapping::{top_mask128, top_mask32, Anonymizer};

const EXACT4_BITS: u32 = 12;
const PREFIX4_BITS: u32 = 14;
const EXACT6_BITS: u32 = 12;
const PREFIX6_BITS: u32 = 12;

/// A direct-mapped table of `2^bits` slots.
#[derive(Clone)]
struct Slots<K, V> {
    slots: Vec<Option<(K, V)>>,
    shift: u32,
}

impl<K: Copy + Eq + Into<u128>, V: Copy> Slots<K, V> {
    fn new(bits: u32) -> Self {
        Slots {
            slots: vec![None; 1 << bits],
            shift: 64 - bits,
        }
    }

    fn index(&self, key: K) -> usize {
        let k: u128 = key.into();
        let folded = (k as u64) ^ ((k >> 64) as u64).rotate_left(17);
        (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    fn get(&self, key: K) -> Option<V> {
        match self.slots[self.index(key)] {
            Some((k, v)) if k == key => Some(v),
            _ => None,
        }
    }

    fn put(&mut self, key: K, value: V) {
        let i = self.index(key);
        self.slots[i] = Some((key, value));
    }
}

/// Hit and miss counts of a cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Addresses answered from the exact-address level.
    pub exact_hits: u64,
    /// Addresses completed from a prefix level.
    pub prefix_hits: u64,
    /// Addresses computed from scratch.
    pub misses: u64,
}

/// A mapping with its per-worker cache.
#[derive(Clone)]
pub struct CachedAnonymizer {
    anon: Anonymizer,
    exact4: Slots<u32, u32>,
    p24: Slots<u32, u32>,
    p16: Vec<u32>,
    exact6: Slots<u128, u128>,
    p64: Slots<u64, u128>,
    p32: Slots<u32, u128>,
    stats: CacheStats,
}

impl std::fmt::Debug for CachedAnonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedAnonymizer")
            .field("anon", &self.anon)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Marks a /16 slot as filled: flips of a /16 use only the top 17 bits.
const P16_FILLED: u32 = 1;

impl CachedAnonymizer {
    /// An empty cache in front of `anon`.
    pub fn new(anon: Anonymizer) -> CachedAnonymizer {
        CachedAnonymizer {
            anon,
            exact4: Slots::new(EXACT4_BITS),
            p24: Slots::new(PREFIX4_BITS),
            p16: vec![0; 1 << 16],
            exact6: Slots::new(EXACT6_BITS),
            p64: Slots::new(PREFIX6_BITS),
            p32: Slots::new(PREFIX6_BITS),
            stats: CacheStats::default(),
        }
    }

    /// The mapping behind the cache.
    pub fn anonymizer(&self) -> &Anonymizer {
        &self.anon
    }

    /// Hit and miss counts so far.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Anonymizes an IPv4 address.
    pub fn anon_v4(&mut self, addr: u32) -> u32 {
        if let Some(out) = self.exact4.get(addr) {
            self.stats.exact_hits += 1;
            return out;
        }
        let out = if self.anon.keeps_v4(addr) {
            addr
        } else {
            addr ^ self.flips_v4(addr)
        };
        self.exact4.put(addr, out);
        out
    }

    fn flips_v4(&mut self, addr: u32) -> u32 {
        let first = self.anon.first_bit_v4(addr);
        let m24 = top_mask32(25);
        if let Some(known) = self.p24.get(addr >> 8) {
            self.stats.prefix_hits += 1;
            return known | self.anon.flips_v4(addr, first.max(25));
        }
        let slot = (addr >> 16) as usize;
        let p16 = self.p16[slot];
        let flips = if p16 & P16_FILLED != 0 {
            self.stats.prefix_hits += 1;
            let known = p16 & top_mask32(17);
            known | self.anon.flips_v4(addr, first.max(17))
        } else {
            self.stats.misses += 1;
            let flips = self.anon.flips_v4(addr, first);
            self.p16[slot] = (flips & top_mask32(17)) | P16_FILLED;
            flips
        };
        self.p24.put(addr >> 8, flips & m24);
        flips
    }

    /// Anonymizes an IPv6 address.
    pub fn anon_v6(&mut self, addr: u128) -> u128 {
        if let Some(out) = self.exact6.get(addr) {
            self.stats.exact_hits += 1;
            return out;
        }
        let out = if self.anon.keeps_v6(addr) {
            addr
        } else {
            addr ^ self.flips_v6(addr)
        };
        self.exact6.put(addr, out);
        out
    }

    fn flips_v6(&mut self, addr: u128) -> u128 {
        let first = self.anon.first_bit_v6();
        let p64 = (addr >> 64) as u64;
        let p32 = (addr >> 96) as u32;
        if let Some(known) = self.p64.get(p64) {
            self.stats.prefix_hits += 1;
            return known | self.anon.flips_v6(addr, first.max(65));
        }
        let flips = if let Some(known) = self.p32.get(p32) {
            self.stats.prefix_hits += 1;
            known | self.anon.flips_v6(addr, first.max(33))
        } else {
            self.stats.misses += 1;
            let flips = self.anon.flips_v6(addr, first);
            self.p32.put(p32, flips & top_mask128(33));
            flips
        };
        self.p64.put(p64, flips & top_mask128(65));
        flips
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Key, Mapping};
    use crate::mapping::MapOptions;
    use proptest::prelude::*;

    fn pair(mapping: Mapping, opts: &MapOptions) -> (Anonymizer, CachedAnonymizer) {
        let key = Key::generate(mapping).unwrap();
        let anon = Anonymizer::new(&key, opts).unwrap();
        (anon.clone(), CachedAnonymizer::new(anon))
    }

    proptest! {
        #[test]
        fn cached_equals_uncached_v4(addrs in proptest::collection::vec(any::<u32>(), 1..64),
                                     pass in 0u8..=32, m in 0usize..3) {
            let opts = MapOptions { pass4: pass, ..MapOptions::default() };
            let (plain, mut cached) = pair(Mapping::ALL[m], &opts);
            for &a in &addrs {
                // neighbours share prefixes, so every cache level is exercised
                for b in [a, a ^ 1, a ^ 0x100, a ^ 0x1_0000, a] {
                    prop_assert_eq!(cached.anon_v4(b), plain.anon_v4(b));
                }
            }
        }

        #[test]
        fn cached_equals_uncached_v6(addrs in proptest::collection::vec(any::<u128>(), 1..16),
                                     pass in 0u8..=128, m in 0usize..3) {
            let opts = MapOptions { pass6: pass, ..MapOptions::default() };
            let (plain, mut cached) = pair(Mapping::ALL[m], &opts);
            for &a in &addrs {
                for b in [a, a ^ 1, a ^ (1 << 40), a ^ (1 << 80), a] {
                    prop_assert_eq!(cached.anon_v6(b), plain.anon_v6(b));
                }
            }
        }
    }

    #[test]
    fn keep_list_bypasses_mapping() {
        let mut opts = MapOptions::default();
        opts.keep.add("10.0.0.0/8").unwrap();
        let (_, mut cached) = pair(Mapping::CryptoPan, &opts);
        assert_eq!(cached.anon_v4(0x0a00_0001), 0x0a00_0001);
        assert_eq!(cached.anon_v4(0x0a00_0001), 0x0a00_0001);
        assert_ne!(cached.anon_v4(0x0b00_0001), 0x0b00_0001);
    }
}
