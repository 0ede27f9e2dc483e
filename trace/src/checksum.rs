//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624): the one
//! implementation the synthetic traffic, the walker and the verifier share.

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd last byte is the high
/// byte of a word), not yet folded.
#[inline]
pub fn sum(data: &[u8]) -> u64 {
    // 32-bit big-endian words fold to the same 16-bit one's-complement sum
    let mut acc = 0u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        acc += (w >> 32) + (w & 0xffff_ffff);
    }
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        acc += u64::from(u16::from_be_bytes([p[0], p[1]]));
    }
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a sum into 16 bits.
#[inline]
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The sum of `data` seen from a checksum that starts `rel` bytes before it: bytes at odd
/// distances are the low halves of words, which swaps the folded sum.
#[inline]
pub fn sum_at(data: &[u8], rel: usize) -> u16 {
    let s = fold(sum(data));
    if rel % 2 == 1 {
        s.swap_bytes()
    } else {
        s
    }
}

/// The checksum field for a folded sum of everything it covers (the field taken as zero).
#[inline]
pub fn finish(total: u64) -> u16 {
    !fold(total)
}

/// The checksum field over `data` and a partial sum `initial` (a pseudo-header's).
#[inline]
pub fn checksum(initial: u64, data: &[u8]) -> u16 {
    finish(initial + sum(data))
}

/// Whether `data` (checksum field included) and the partial sum `initial` add up to all
/// ones, as a valid checksum makes them.
#[inline]
pub fn verifies(initial: u64, data: &[u8]) -> bool {
    fold(initial + sum(data)) == 0xffff
}

/// RFC 1624 eqn. 3: the new checksum after the covered data's sum moved by `delta`
/// (`delta` accumulates `~old + new` of every changed word).
#[inline]
pub fn update(old_checksum: u16, delta: u64) -> u16 {
    !fold(u64::from(!old_checksum) + delta)
}

/// The `~old + new` term of one change, for [`update`].
#[inline]
pub fn delta(old: u16, new: u16) -> u64 {
    u64::from(!old) + u64::from(new)
}

/// The sum of the `~old + new` terms of replacing `old` by `new`, word by word, as seen
/// from an even offset (a checksum starting an odd number of bytes before sees the folded
/// value byte-swapped). Both have the same even length.
///
/// A plain loop over word indices: the walker calls this for every address it rewrites,
/// and the iterator chain it replaces was not inlined (its `Zip` constructor and fold showed
/// as 9 % of a mixed trace's scrub).
#[inline]
pub fn words_delta(old: &[u8], new: &[u8]) -> u64 {
    let words = old.len().min(new.len()) / 2;
    let (old, new) = (&old[..words * 2], &new[..words * 2]);
    let mut delta = 0u64;
    for i in 0..words {
        let o = u16::from_be_bytes([old[2 * i], old[2 * i + 1]]);
        let n = u16::from_be_bytes([new[2 * i], new[2 * i + 1]]);
        delta += u64::from(!o) + u64::from(n);
    }
    delta
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(
            fold(sum(&data[..7])),
            fold(sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0x00]))
        );
    }

    #[test]
    fn incremental_matches_full_at_even_and_odd_offsets() {
        let mut data: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37)).collect();
        let mut checksum = finish(sum(&data));
        for (at, new) in [(10usize, &[1u8, 2, 3, 4][..]), (13, &[9, 8, 7][..])] {
            let old = sum_at(&data[at..at + new.len()], at);
            data[at..at + new.len()].copy_from_slice(new);
            let d = delta(old, sum_at(new, at));
            checksum = update(checksum, d);
            assert_eq!(checksum, finish(sum(&data)));
        }
    }

    #[test]
    fn words_delta_sums_each_whole_word_pair() {
        let bytes: Vec<u8> = (0u32..41).map(|i| (i * 89 % 256) as u8).collect();
        for len in 0..=20 {
            for skew in [0, 1] {
                let (old, new) = (&bytes[..len], &bytes[20..20 + len + skew]);
                let mut want = 0u64;
                for w in 0..len / 2 {
                    let o = u16::from_be_bytes([old[2 * w], old[2 * w + 1]]);
                    let n = u16::from_be_bytes([new[2 * w], new[2 * w + 1]]);
                    want += u64::from(!o) + u64::from(n);
                }
                assert_eq!(words_delta(old, new), want, "{len} {skew}");
            }
        }
    }

    #[test]
    fn words_delta_equals_folded_delta() {
        let old = [0x12u8, 0x34, 0xff, 0xff, 0, 0, 0xab, 0xcd];
        let new = [0xffu8, 0xff, 0x00, 0x01, 0x80, 0, 0xab, 0xcd];
        let mut data = old.to_vec();
        let checksum = finish(sum(&data));
        data.copy_from_slice(&new);
        assert_eq!(
            update(checksum, words_delta(&old, &new)),
            finish(sum(&data))
        );
        let folded = |d: u64| u64::from(fold(d)) % 0xffff;
        assert_eq!(
            folded(words_delta(&old, &new)),
            folded(delta(fold(sum(&old)), fold(sum(&new))))
        );
    }
}
