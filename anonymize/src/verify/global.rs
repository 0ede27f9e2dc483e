//! Every raw address of the trace, with the first raw frame that held it: a static hash
//! table (entries sorted by bucket, an index of bucket starts) behind a blocked Bloom filter
//! (two bits in one 64-bit word), so the many lookups that miss (nearly all of them) cost
//! one probe of a bit array, and the rare others two more.

/// Bits of filter per address (two bits set per address: about 1.5 % of misses pass).
const BITS_PER_KEY: usize = 16;
/// Addresses per bucket of the index, on average.
const PER_BUCKET: usize = 4;

/// A key of the tables.
pub trait Key: Copy + Ord + Send + Sync {
    /// A 64-bit digest.
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

#[inline]
fn mix(k: impl Key) -> u64 {
    let h = k.digest().wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 31)
}

/// A static table of (address, first frame).
#[derive(Debug)]
pub struct Table<K> {
    /// Sorted by (bucket, key).
    entries: Vec<(K, u64)>,
    /// `index[b]..index[b + 1]`: the entries of bucket `b`.
    index: Vec<u32>,
    bucket_shift: u32,
    bloom: Vec<u64>,
    bloom_shift: u32,
}

impl<K: Key> Default for Table<K> {
    fn default() -> Self {
        Table::new(Vec::new())
    }
}

fn log2_at_least(n: usize, min: u32) -> u32 {
    n.next_power_of_two().trailing_zeros().max(min)
}

impl<K: Key> Table<K> {
    /// The table of `entries` (in any order, repeats allowed: the lowest frame is kept).
    pub fn new(entries: Vec<(K, u64)>) -> Table<K> {
        let bucket_bits = log2_at_least(entries.len() / PER_BUCKET, 4);
        let bucket_shift = 64 - bucket_bits;
        let bucket = |k: K| (mix(k) >> bucket_shift) as usize;
        // a counting sort by bucket, then each (small) bucket sorted and its repeats dropped
        let mut starts = vec![0u32; (1 << bucket_bits) + 1];
        entries
            .iter()
            .for_each(|&(k, _)| starts[bucket(k) + 1] += 1);
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        let mut placed = vec![None; entries.len()];
        let mut next = starts.clone();
        for e in entries {
            let b = bucket(e.0);
            placed[next[b] as usize] = Some(e);
            next[b] += 1;
        }
        let mut sorted: Vec<(K, u64)> = Vec::with_capacity(placed.len());
        let mut index = Vec::with_capacity(starts.len());
        for b in 0..starts.len() - 1 {
            index.push(sorted.len() as u32);
            let at = sorted.len();
            let span = starts[b] as usize..starts[b + 1] as usize;
            sorted.extend(placed[span].iter().flatten().copied());
            sorted[at..].sort_unstable();
            let mut kept = at;
            for i in at..sorted.len() {
                if i == at || sorted[i].0 != sorted[kept - 1].0 {
                    sorted[kept] = sorted[i];
                    kept += 1;
                }
            }
            sorted.truncate(kept);
        }
        index.push(sorted.len() as u32);
        let bloom_bits = log2_at_least(sorted.len() * BITS_PER_KEY, 10);
        let mut t = Table {
            entries: sorted,
            index,
            bucket_shift,
            bloom: vec![0; 1 << (bloom_bits - 6)],
            bloom_shift: 64 - (bloom_bits - 6),
        };
        for i in 0..t.entries.len() {
            let (word, bits) = t.probe(t.entries[i].0);
            t.bloom[word] |= bits;
        }
        t
    }

    /// The filter word of `k` and its two bits.
    #[inline]
    fn probe(&self, k: K) -> (usize, u64) {
        let h = mix(k);
        let word = (h >> self.bloom_shift) as usize;
        let bits = 1u64 << (h & 63) | 1u64 << ((h >> 6) & 63);
        (word, bits)
    }

    /// The first raw frame that held `k`.
    #[inline]
    pub fn get(&self, k: K) -> Option<u64> {
        let (word, bits) = self.probe(k);
        if self.bloom[word] & bits != bits {
            return None;
        }
        let b = (mix(k) >> self.bucket_shift) as usize;
        let (start, end) = (self.index[b] as usize, self.index[b + 1] as usize);
        self.entries[start..end]
            .iter()
            .find(|e| e.0 == k)
            .map(|e| e.1)
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
        let entries: Vec<(u32, u64)> = (0..10_000u32)
            .map(|i| (i * 7919, u64::from(i % 5) + 1))
            .collect();
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
