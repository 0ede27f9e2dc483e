use super::*;
use proptest::prelude::*;

fn input(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Feeds `data` to a digest in pieces of the given lengths; in every piece whose flag is set,
/// the whole leaves past the first leaf of the input are hashed "elsewhere" and handed over
/// as chaining values (with `back`, from the leaf the piece starts in, as a reader that
/// holds bytes before its piece hands them over).
fn stream(data: &[u8], leaf_len: u64, pieces: &[(usize, bool)]) -> blake3::Hash {
    stream_from(data, leaf_len, pieces, false)
}

fn stream_from(data: &[u8], leaf_len: u64, pieces: &[(usize, bool)], back: bool) -> blake3::Hash {
    let mut d = StreamDigest::new(leaf_len);
    let mut at = 0;
    let mut pieces = pieces.iter().copied().cycle();
    while at < data.len() {
        let (len, lend) = pieces.next().expect("cycled");
        let end = (at + len.max(1)).min(data.len());
        let piece = &data[at..end];
        let leaf = leaf_len as usize;
        let first = match back {
            true => (at / leaf).max(1) * leaf,
            false => at.div_ceil(leaf).max(1) * leaf,
        };
        let whole = end.saturating_sub(first) / leaf;
        if lend && whole > 0 {
            let cvs: Vec<_> = (0..whole)
                .map(|k| {
                    let off = first + k * leaf;
                    super::leaf(off as u64, &data[off..off + leaf])
                })
                .collect();
            d.update_with_leaves(piece, first as u64, &cvs);
        } else {
            d.update(piece);
        }
        at = end;
    }
    assert_eq!(d.len(), data.len() as u64);
    d.finalize()
}

#[test]
fn leaves_handed_over_at_every_boundary_give_the_blake3_of_the_whole() {
    let leaf = 1024u64;
    let data = input(37 * 1024 + 5);
    for len in [
        0, 1, 1023, 1024, 1025, 2048, 3072, 4096, 4097, 8192, 9000, 16384, 33000, 37893,
    ] {
        let want = blake3::hash(&data[..len]);
        for piece in [1, 100, 1024, 1500, 3000, 5000, 40000] {
            for lend in [false, true] {
                assert_eq!(
                    stream(&data[..len], leaf, &[(piece, lend)]),
                    want,
                    "len {len} piece {piece} lend {lend}"
                );
            }
        }
    }
}

#[test]
fn leaves_that_do_not_fit_the_stream_are_not_used() {
    let data = input(10 * 1024);
    let want = blake3::hash(&data);
    let wrong = [[0u8; 32]; 2];
    // the first leaf of the input, a start off a boundary, before the stream, past the bytes
    for from in [0, 1, 512, 1023, 3000, 4096] {
        let mut d = StreamDigest::new(1024);
        d.update(&data[..100]);
        d.update_with_leaves(&data[100..3000], from, &wrong);
        d.update(&data[3000..]);
        assert_eq!(d.finalize(), want, "from {from}");
    }
    let mut d = StreamDigest::new(1024);
    d.update(&data[..3000]);
    d.update_with_leaves(&data[3000..4000], 0, &wrong);
    d.update(&data[4000..]);
    assert_eq!(d.finalize(), want, "leaves taken already");
}

#[test]
fn the_leaf_being_filled_can_be_handed_over_whole() {
    let leaf = 1024u64;
    let data = input(37 * 1024 + 5);
    for len in [2048, 2049, 3000, 4096, 9000, 37893] {
        let want = blake3::hash(&data[..len]);
        for piece in [1, 100, 1023, 1500, 3000, 5000] {
            assert_eq!(
                stream_from(&data[..len], leaf, &[(piece, true)], true),
                want,
                "len {len} piece {piece}"
            );
        }
    }
    // and it is trusted: a wrong one changes the digest
    let mut d = StreamDigest::new(1024);
    d.update(&data[..1500]);
    d.update_with_leaves(&data[1500..3000], 1024, &[[0u8; 32]]);
    assert_ne!(d.finalize(), blake3::hash(&data[..3000]));
}

#[test]
fn a_wrong_leaf_that_fits_changes_the_digest() {
    // the chaining values are trusted where they fit: this is what makes the test above mean
    // something
    let data = input(4 * 1024);
    let mut d = StreamDigest::new(1024);
    d.update(&data[..1024]);
    d.update_with_leaves(&data[1024..], 1024, &[[0u8; 32]]);
    assert_ne!(d.finalize(), blake3::hash(&data));
}

proptest! {
    #[test]
    fn any_pieces_and_any_handover_give_the_blake3_of_the_whole(
        len in 0usize..70_000,
        leaf_shift in 10u32..14,
        pieces in proptest::collection::vec((1usize..20_000, any::<bool>()), 1..8),
    ) {
        let data = input(len);
        prop_assert_eq!(stream(&data, 1 << leaf_shift, &pieces), blake3::hash(&data));
        prop_assert_eq!(stream_from(&data, 1 << leaf_shift, &pieces, true), blake3::hash(&data));
    }
}
