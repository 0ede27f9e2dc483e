//! Every raw address of the trace, with the first raw frame that held it: sorted tables
//! behind a Bloom filter, so the many lookups that miss (nearly all of them) cost one probe
//! of a bit array that fits in cache, and the rare hit a binary search.

use rayon::slice::ParallelSliceMut;

/// Bits of filter per address (one hash: about 6 % of misses pass it).
const BITS_PER_KEY: usize = 16;

/// A key of the tables.
pub trait Key: Copy + Ord + Send + Sync {
    /// A 64-bit digest for the filter.
    fn digest(self) -> u64;
}

impl Key for u32 {
    fn digest(self) -> u64 {
        u64::from(self)
    }
}

impl Key for u128 {
    fn digest(self) -> u64 {
        (self as u64) ^ ((self >> 64) as u64).rotate_left(29)
    }
}

/// A sorted table of (address, frame) with a one-hash Bloom filter in front.
#[derive(Debug)]
pub struct Table<K> {
    entries: Vec<(K, u64)>,
    bloom: Vec<u64>,
    shift: u32,
}

impl<K: Key> Default for Table<K> {
    fn default() -> Self {
        Table::new(Vec::new())
    }
}

impl<K: Key> Table<K> {
    /// The table of `entries` (in any order, repeats allowed: the lowest frame is kept).
    pub fn new(mut entries: Vec<(K, u64)>) -> Table<K> {
        entries.par_sort_unstable();
        entries.dedup_by_key(|e| e.0);
        entries.shrink_to_fit();
        let bits = (entries.len() * BITS_PER_KEY).next_power_of_two().max(1 << 10);
        let mut t = Table {
            entries,
            bloom: vec![0; bits / 64],
            shift: 64 - bits.trailing_zeros(),
        };
        for i in 0..t.entries.len() {
            let bit = t.bit(t.entries[i].0);
            t.bloom[bit / 64] |= 1 << (bit % 64);
        }
        t
    }

    #[inline]
    fn bit(&self, k: K) -> usize {
        (k.digest().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    /// The first raw frame that held `k`.
    #[inline]
    pub fn get(&self, k: K) -> Option<u64> {
        let bit = self.bit(k);
        if self.bloom[bit / 64] & (1 << (bit % 64)) == 0 {
            return None;
        }
        let i = self.entries.binary_search_by_key(&k, |e| e.0).ok()?;
        Some(self.entries[i].1)
    }

    /// Distinct addresses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The raw trace's addresses.
#[derive(Debug, Default)]
pub struct Global {
    /// IPv4.
    pub v4: Table<u32>,
    /// IPv6.
    pub v6: Table<u128>,
}

/// Addresses collected from some packets, not yet a table.
#[derive(Debug, Default)]
pub struct Collected {
    /// IPv4, with their frames.
    pub v4: Vec<(u32, u64)>,
    /// IPv6, with their frames.
    pub v6: Vec<(u128, u64)>,
}

impl Collected {
    /// Sorts and drops repeats (the first frame of each address stays).
    pub fn compact(&mut self) {
        self.v4.sort_unstable();
        self.v4.dedup_by_key(|e| e.0);
        self.v6.sort_unstable();
        self.v6.dedup_by_key(|e| e.0);
    }

    /// Appends `other`.
    pub fn append(&mut self, mut other: Collected) {
        self.v4.append(&mut other.v4);
        self.v6.append(&mut other.v6);
    }

    /// The tables.
    pub fn build(self) -> Global {
        Global {
            v4: Table::new(self.v4),
            v6: Table::new(self.v6),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_find_the_first_frame_and_miss_the_rest() {
        let entries: Vec<(u32, u64)> = (0..10_000u32).map(|i| (i * 7919, u64::from(i % 5) + 1)).collect();
        let mut twice = entries.clone();
        twice.extend(entries.iter().map(|&(a, f)| (a, f + 100)));
        let t = Table::new(twice);
        assert_eq!(t.len(), 10_000);
        for &(a, f) in &entries {
            assert_eq!(t.get(a), Some(f));
        }
        assert_eq!(t.get(1), None);
        assert_eq!(Table::<u128>::default().get(5), None);
    }
}
