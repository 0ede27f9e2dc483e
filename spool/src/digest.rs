//! A trace file's BLAKE3, the digest its manifest carries, hashed by more than one thread.
//!
//! BLAKE3 is a tree over 1 KiB chunks: a stretch of the input that starts at a multiple of a
//! power-of-two size and is that long is a whole subtree, whose chaining value anyone can
//! compute on their own ([`leaf`]). [`InputTree`] joins such leaves, in input order, into the
//! root as `blake3::Hasher` joins its chunks; [`StreamDigest`] hashes a stream of bytes as
//! they come and takes in, where the stream reaches a leaf boundary, leaves another thread
//! has already hashed. Either gives exactly `blake3::hash` of the whole input.

use blake3::hazmat::{
    merge_subtrees_non_root, merge_subtrees_root, ChainingValue, HasherExt, Mode,
};

/// The chaining value of the leaf `bytes`, which starts at input offset `offset` (a multiple
/// of the leaf size, which is a power of two and at least 1 KiB). Never the root: the caller
/// makes sure the input has more than this leaf.
pub fn leaf(offset: u64, bytes: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(offset);
    h.update(bytes);
    h.finalize_non_root()
}

/// Joins leaf chaining values, in input order, into the root hash. All leaves but the last
/// are whole and of one size.
#[derive(Debug, Default)]
pub struct InputTree {
    /// Whole subtrees left of the last leaf: (chaining value, leaves), sizes decreasing.
    stack: Vec<(ChainingValue, u64)>,
    last: Option<ChainingValue>,
    root: Option<blake3::Hash>,
}

impl InputTree {
    /// Adds the next leaf.
    pub fn push(&mut self, cv: ChainingValue) {
        let Some(prev) = self.last.replace(cv) else {
            return;
        };
        let mut node = (prev, 1);
        while let Some(&(left, size)) = self.stack.last() {
            if size != node.1 {
                break;
            }
            self.stack.pop();
            node = (
                merge_subtrees_non_root(&left, &node.0, Mode::Hash),
                size * 2,
            );
        }
        self.stack.push(node);
    }

    /// Whether no leaf was pushed.
    pub fn is_empty(&self) -> bool {
        self.last.is_none()
    }

    /// Sets the root of an input that is a single leaf.
    pub fn set_single(&mut self, root: blake3::Hash) {
        self.root = Some(root);
    }

    /// The root hash; `None` when no leaf and no single root was given, or a lone leaf came
    /// as a chaining value.
    pub fn finish(mut self) -> Option<blake3::Hash> {
        if let Some(root) = self.root {
            return Some(root);
        }
        let mut right = self.last?;
        while let Some((left, _)) = self.stack.pop() {
            if self.stack.is_empty() {
                return Some(merge_subtrees_root(&left, &right, Mode::Hash));
            }
            right = merge_subtrees_non_root(&left, &right, Mode::Hash);
        }
        None
    }
}

/// The BLAKE3 of a stream, hashed in leaves of a fixed size; whole leaves hashed elsewhere
/// (by [`leaf`]) can stand in for their bytes.
#[derive(Debug)]
pub struct StreamDigest {
    tree: InputTree,
    leaf_len: u64,
    /// The leaf being filled: its hasher, start and bytes so far. A full leaf stays here
    /// until more input comes, so an input of exactly one leaf still ends as a root.
    cur: blake3::Hasher,
    cur_start: u64,
    cur_len: u64,
}

impl StreamDigest {
    /// A digest in leaves of `leaf_len` bytes (a power of two, at least 1 KiB).
    pub fn new(leaf_len: u64) -> StreamDigest {
        assert!(
            leaf_len.is_power_of_two() && leaf_len >= blake3::CHUNK_LEN as u64,
            "a leaf is a power of two of at least one chunk"
        );
        StreamDigest {
            tree: InputTree::default(),
            leaf_len,
            cur: blake3::Hasher::new(),
            cur_start: 0,
            cur_len: 0,
        }
    }

    /// Bytes taken so far.
    pub fn len(&self) -> u64 {
        self.cur_start + self.cur_len
    }

    /// Whether nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes the next bytes.
    pub fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.cur_len == self.leaf_len {
                self.close_leaf();
            }
            let take = ((self.leaf_len - self.cur_len) as usize).min(bytes.len());
            self.cur.update(&bytes[..take]);
            self.cur_len += take as u64;
            bytes = &bytes[take..];
        }
    }

    /// Takes the next bytes, of which the whole leaves starting at input offset `from` were
    /// already hashed to `leaves` (by [`leaf`] at their input offsets). The chaining values
    /// are used only where they fit the stream (`from` on a leaf boundary inside `bytes`,
    /// past the first leaf, all of them inside `bytes`); otherwise the bytes are hashed here.
    ///
    /// A leaf may also start before `bytes`, in the bytes taken already: leaves before the
    /// one being filled are dropped (taken), and that one's chaining value stands in for the
    /// bytes of it taken so far, which must be the same bytes it was hashed from.
    pub fn update_with_leaves(&mut self, bytes: &[u8], from: u64, leaves: &[ChainingValue]) {
        let (mut from, mut leaves) = (from, leaves);
        while !leaves.is_empty() && from < self.cur_start {
            leaves = &leaves[1..];
            from += self.leaf_len;
        }
        let span = leaves.len() as u64 * self.leaf_len;
        let len = self.len();
        let filling = from > 0 && from == self.cur_start && from < len && !leaves.is_empty();
        if filling && from + span <= len + bytes.len() as u64 {
            // the leaf being filled is among them
            for cv in leaves {
                self.tree.push(*cv);
            }
            self.cur_start = from + span;
            self.cur_len = 0;
            self.cur = fresh_hasher(self.cur_start);
            self.update(&bytes[(from + span - len) as usize..]);
            return;
        }
        let at = from.checked_sub(self.len());
        let fits = at.filter(|&at| {
            !leaves.is_empty()
                && from > 0
                && from.is_multiple_of(self.leaf_len)
                && at + span <= bytes.len() as u64
        });
        let Some(at) = fits else {
            self.update(bytes);
            return;
        };
        let (at, end) = (at as usize, (at + span) as usize);
        self.update(&bytes[..at]);
        if self.cur_len > 0 {
            // `from` is a leaf boundary, so the leaf being filled is now whole.
            self.close_leaf();
        }
        for cv in leaves {
            self.tree.push(*cv);
        }
        self.cur_start = from + span;
        self.cur = fresh_hasher(self.cur_start);
        self.update(&bytes[end..]);
    }

    /// The root hash of everything taken.
    pub fn finalize(mut self) -> blake3::Hash {
        if self.tree.is_empty() && self.cur_start == 0 {
            return self.cur.finalize();
        }
        if self.cur_len > 0 {
            self.tree.push(self.cur.finalize_non_root());
        }
        self.tree
            .finish()
            .expect("an input of more than one leaf has a root")
    }

    fn close_leaf(&mut self) {
        self.tree.push(self.cur.finalize_non_root());
        self.cur_start += self.cur_len;
        self.cur_len = 0;
        self.cur = fresh_hasher(self.cur_start);
    }
}

fn fresh_hasher(offset: u64) -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    if offset > 0 {
        h.set_input_offset(offset);
    }
    h
}

#[cfg(test)]
mod tests;
