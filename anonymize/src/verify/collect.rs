//! A walker rewriter that records every address the scrubber's walker shows it and returns
//! it unchanged. The walker's own tests use it; the verifier does not.

use crate::walker::Rewriter;

/// Records the addresses the walker rewrites.
#[derive(Default)]
pub(crate) struct Collect {
    pub(crate) v4: Vec<[u8; 4]>,
    pub(crate) v6: Vec<[u8; 16]>,
}

impl Rewriter for Collect {
    fn v4(&mut self, addr: [u8; 4]) -> [u8; 4] {
        self.v4.push(addr);
        addr
    }

    fn v6(&mut self, addr: [u8; 16]) -> [u8; 16] {
        self.v6.push(addr);
        addr
    }
}
