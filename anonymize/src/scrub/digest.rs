//! The BLAKE3 of the input, hashed in parallel by the workers.
//!
//! BLAKE3 is a tree: the input is cut into leaves of [`LEAF`] bytes (a power of two, so each
//! leaf is a whole subtree), each leaf is hashed on its own to a chaining value (the worker
//! that scrubs the block holding it, before it rewrites anything), and [`InputTree`] (the spool's) joins the
//! chaining values in input order as `blake3::Hasher` joins its chunks: two adjacent equal
//! subtrees are merged as soon as a later leaf shows they are not the root, and the last
//! leaf, known only at the end, is folded in from the right.

use blake3::hazmat::{ChainingValue, HasherExt};

pub use lander_spool::digest::InputTree;

/// Bytes per leaf.
pub const LEAF: usize = 1 << 19;

/// The chaining values of the leaves of `bytes`, which start at input offset `offset` (a
/// multiple of [`LEAF`]), preceded by `head` (the input's first bytes, when `offset` is 0).
pub fn leaves(head: &[u8], offset: u64, bytes: &[u8], out: &mut Vec<ChainingValue>) {
    let mut at = offset;
    let mut rest = bytes;
    let mut prefix = head;
    while !rest.is_empty() || !prefix.is_empty() {
        let take = (LEAF - prefix.len()).min(rest.len());
        let mut h = blake3::Hasher::new();
        h.set_input_offset(at);
        h.update(prefix);
        h.update(&rest[..take]);
        out.push(h.finalize_non_root());
        at += (prefix.len() + take) as u64;
        rest = &rest[take..];
        prefix = &[];
    }
}

/// The root of an input that is a single leaf.
pub fn single(head: &[u8], bytes: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(head);
    h.update(bytes);
    h.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_hash(input: &[u8], head_len: usize, block: usize) -> Option<blake3::Hash> {
        let (head, body) = input.split_at(head_len);
        if input.len() <= LEAF {
            return Some(single(head, body));
        }
        let mut tree = InputTree::default();
        let mut cvs = Vec::new();
        let first = block - head_len;
        leaves(head, 0, &body[..first.min(body.len())], &mut cvs);
        let mut at = first;
        while at < body.len() {
            let end = (at + block).min(body.len());
            leaves(&[], (head_len + at) as u64, &body[at..end], &mut cvs);
            at = end;
        }
        cvs.into_iter().for_each(|cv| tree.push(cv));
        tree.finish()
    }

    #[test]
    fn parallel_leaves_give_the_blake3_of_the_whole() {
        let input: Vec<u8> = (0..9 * LEAF + 77)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        for len in [
            0,
            24,
            LEAF,
            LEAF + 1,
            2 * LEAF,
            2 * LEAF + 5,
            3 * LEAF,
            4 * LEAF,
            5 * LEAF - 1,
            7 * LEAF + 1000,
            9 * LEAF + 77,
        ] {
            for block in [LEAF, 2 * LEAF] {
                let got = tree_hash(&input[..len], 24.min(len), block);
                assert_eq!(
                    got,
                    Some(blake3::hash(&input[..len])),
                    "len {len} block {block}"
                );
            }
        }
    }
}
