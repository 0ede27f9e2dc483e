//! A per-worker cache in front of a mapping.
//!
//! Each worker owns one [`CachedAnonymizer`], cloned from the prototype [`Anonymizer`], so the
//! cache is keyed by everything that changes the output: the mapping, key and options are fixed
//! per instance, and the entries are keyed by the address or its prefix.
//!
//! The flip of bit `j` depends only on the top `j` bits, so a prefix's flips are shared by
//! every address under it, and only the bits below a cached prefix are encrypted on a miss.
//! Levels, all sized to stay in L1/L2:
//! - exact addresses, two-way set associative (hot hosts, a flood's victim);
//! - (IPv4 and IPv6: the mapping's own key-derived table gives every address's top 16 flips,
//!   so an IPv4 miss encrypts bits 16..32, exactly two AES-NI batches of eight blocks;)
//! - IPv6: /64, /48 and /32 direct-mapped tables, consulted longest first, so a new host
//!   under a known /64 encrypts 64 blocks and a new /64 under a known /48 encrypts 80.
//!
//! Every slot always holds a valid entry: the tables start filled with the entries of the
//! all-zero address and prefixes, computed once, so no lookup tests a valid flag.

use crate::mapping::{Anonymizer, Scratch};
use crate::mask::top_mask128;

const HOT4_BITS: u32 = 12;
const HOT6_BITS: u32 = 10;
const PREFIX6_BITS: u32 = 10;
/// IPv6 prefix lengths cached, longest first.
const PREFIX6_LENS: [u32; 3] = [64, 48, 32];

fn hash32(key: u32, bits: u32) -> usize {
    (key.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

fn hash128(key: u128, bits: u32) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}

/// One set of a two-way table: the most recently inserted entry first.
#[derive(Clone, Copy)]
struct Set<K, V> {
    keys: [K; 2],
    values: [V; 2],
}

impl<K: Copy + Eq, V: Copy> Set<K, V> {
    fn get(&self, key: K) -> Option<V> {
        if self.keys[0] == key {
            Some(self.values[0])
        } else if self.keys[1] == key {
            Some(self.values[1])
        } else {
            None
        }
    }

    fn put(&mut self, key: K, value: V) {
        self.keys = [key, self.keys[0]];
        self.values = [value, self.values[0]];
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
    scratch: Scratch,
    hot4: Vec<Set<u32, u32>>,
    hot6: Vec<Set<u128, u128>>,
    /// Per prefix length of [`PREFIX6_LENS`]: (prefix, flips of its bits).
    p6: [Vec<(u128, u128)>; 3],
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

impl CachedAnonymizer {
    /// An empty cache in front of `anon`.
    pub fn new(anon: Anonymizer) -> CachedAnonymizer {
        let zero4 = Set {
            keys: [0; 2],
            values: [anon.anon_v4(0); 2],
        };
        let zero6 = Set {
            keys: [0; 2],
            values: [anon.anon_v6(0); 2],
        };
        let flips0 = anon.flips_v6(0, anon.first_bit_v6());
        let p6 = PREFIX6_LENS.map(|len| vec![(0, flips0 & top_mask128(len)); 1 << PREFIX6_BITS]);
        CachedAnonymizer {
            anon,
            scratch: Scratch::new(),
            hot4: vec![zero4; 1 << HOT4_BITS],
            hot6: vec![zero6; 1 << HOT6_BITS],
            p6,
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
    #[inline]
    pub fn anon_v4(&mut self, addr: u32) -> u32 {
        let set = &mut self.hot4[hash32(addr, HOT4_BITS)];
        if let Some(out) = set.get(addr) {
            self.stats.exact_hits += 1;
            return out;
        }
        self.miss_v4(addr)
    }

    #[inline(never)]
    fn miss_v4(&mut self, addr: u32) -> u32 {
        let out = if self.anon.keeps_v4(addr) {
            addr
        } else {
            addr ^ self.flips_v4(addr)
        };
        self.hot4[hash32(addr, HOT4_BITS)].put(addr, out);
        out
    }

    fn flips_v4(&mut self, addr: u32) -> u32 {
        self.stats.misses += 1;
        let first = self.anon.first_bit_v4(addr);
        self.anon.flips_v4_in(addr, first, &mut self.scratch)
    }

    /// Anonymizes an IPv6 address.
    #[inline]
    pub fn anon_v6(&mut self, addr: u128) -> u128 {
        let set = &mut self.hot6[hash128(addr, HOT6_BITS)];
        if let Some(out) = set.get(addr) {
            self.stats.exact_hits += 1;
            return out;
        }
        self.miss_v6(addr)
    }

    #[inline(never)]
    fn miss_v6(&mut self, addr: u128) -> u128 {
        let out = if self.anon.keeps_v6(addr) {
            addr
        } else {
            addr ^ self.flips_v6(addr)
        };
        self.hot6[hash128(addr, HOT6_BITS)].put(addr, out);
        out
    }

    fn flips_v6(&mut self, addr: u128) -> u128 {
        let first = self.anon.first_bit_v6();
        let mut known = None;
        for (level, len) in PREFIX6_LENS.into_iter().enumerate() {
            let prefix = addr & top_mask128(len);
            let (p, flips) = self.p6[level][hash128(prefix, PREFIX6_BITS)];
            if p == prefix {
                known = Some((level, len, flips));
                break;
            }
        }
        let flips = match known {
            Some((_, len, flips)) => {
                self.stats.prefix_hits += 1;
                flips
                    | self
                        .anon
                        .flips_v6_in(addr, first.max(len), &mut self.scratch)
            }
            None => {
                self.stats.misses += 1;
                self.anon.flips_v6_in(addr, first, &mut self.scratch)
            }
        };
        let filled = known.map_or(PREFIX6_LENS.len(), |(level, _, _)| level);
        for (level, len) in PREFIX6_LENS.into_iter().enumerate().take(filled) {
            let prefix = addr & top_mask128(len);
            self.p6[level][hash128(prefix, PREFIX6_BITS)] = (prefix, flips & top_mask128(len));
        }
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
