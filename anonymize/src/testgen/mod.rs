//! Hostile frames for the walker's leak property test and its structure-aware fuzz target.
//!
//! A frame is built from a stream of choices (bytes from proptest or libFuzzer; zeros once
//! they run out, which picks the simplest branch everywhere, so every stream ends). Every
//! address is a *marker* (`10.99.x.y`, or `fd63:...` for IPv6, the low bytes from
//! `0x50..=0x5f`), and so is every byte the walker must not keep: unknown options and their
//! data, padding, bytes after an end-of-list, reserved fields, digests, link-layer and
//! cooked-header addresses, tunnel options and extension headers. Payloads are random bytes
//! of `0xe0..=0xef`. The fields the walker keeps (ports, sequence numbers, keys,
//! identifiers) are drawn from bytes that are neither marker nor payload bytes, so no
//! window of kept bytes can spell a marker or a payload run. After a walk with
//! [`Payload::Drop`](crate::walker::Payload::Drop) and the MAC addresses zeroed,
//! [`Hostile::leaks`] must find nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::walker::link;

mod ip;
mod links;
mod transport;
mod tunnels;

/// A generated frame and what it hides.
#[derive(Clone, Debug)]
pub struct Hostile {
    /// Its link type.
    pub link: u32,
    /// The frame.
    pub frame: Vec<u8>,
    /// The IPv4 markers it holds.
    pub v4: Vec<[u8; 4]>,
    /// The IPv6 markers it holds.
    pub v6: Vec<[u8; 16]>,
    /// Its payloads.
    pub payloads: Vec<Vec<u8>>,
}

/// Length of the payload runs searched for.
pub const RUN: usize = 8;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

impl Hostile {
    /// The markers and payload runs of the frame found in `out`, described.
    pub fn leaks(&self, out: &[u8]) -> Vec<String> {
        let mut found = Vec::new();
        for m in self.v4.iter().filter(|m| contains(out, &m[..])) {
            found.push(format!("IPv4 marker {}", Ipv4Addr::from(*m)));
        }
        for m in self.v6.iter().filter(|m| contains(out, &m[..])) {
            found.push(format!("IPv6 marker {}", Ipv6Addr::from(*m)));
        }
        for p in &self.payloads {
            if let Some(w) = p.windows(RUN).find(|w| contains(out, w)) {
                found.push(format!("payload run {w:02x?}"));
            }
        }
        found
    }
}

/// The frame `choices` describe.
pub fn generate(choices: &[u8]) -> Hostile {
    let mut g = Gen {
        choices,
        at: 0,
        depth: 0,
        seed: 0x9e37_79b9_7f4a_7c15,
        v4: Vec::new(),
        v6: Vec::new(),
        payloads: Vec::new(),
    };
    let link = link::ALL[g.below(8)];
    let mut frame = g.link(link);
    if g.chance(48) {
        let keep = g.below(256) * frame.len() / 256;
        frame.truncate(keep);
    }
    Hostile {
        link,
        frame,
        v4: g.v4,
        v6: g.v6,
        payloads: g.payloads,
    }
}

const MARKER_LOW: u8 = 0x50;
const PAYLOAD_HIGH: u8 = 0xe0;
const MAX_DEPTH: u8 = 3;

struct Gen<'a> {
    choices: &'a [u8],
    at: usize,
    depth: u8,
    seed: u64,
    v4: Vec<[u8; 4]>,
    v6: Vec<[u8; 16]>,
    payloads: Vec<Vec<u8>>,
}

impl Gen<'_> {
    // ---- choices and fillers ----

    pub(super) fn byte(&mut self) -> u8 {
        let b = self.choices.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    pub(super) fn chance(&mut self, in_256: u8) -> bool {
        self.byte() < in_256
    }

    /// `n` bytes of a kept field: never a marker byte (`0x0a`, `0x63`, `0x50..=0x5f`) nor
    /// a payload byte (`0xe0..=0xef`), so no window of kept bytes spells either, whatever
    /// the choices (a fuzzer that sees the comparisons would otherwise copy a payload run
    /// into a sequence number).
    pub(super) fn num(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| match self.byte() {
                b @ (0x0a | 0x63 | 0x50..=0x5f | 0xe0..=0xef) => b ^ 0x40,
                b => b,
            })
            .collect()
    }

    pub(super) fn v4(&mut self) -> [u8; 4] {
        let m = [
            10,
            99,
            MARKER_LOW | (self.byte() & 15),
            MARKER_LOW | (self.byte() & 15),
        ];
        self.v4.push(m);
        m
    }

    pub(super) fn v6(&mut self) -> [u8; 16] {
        let mut m = [MARKER_LOW; 16];
        m[..2].copy_from_slice(&[0xfd, 0x63]);
        for b in &mut m[2..] {
            *b |= self.byte() & 15;
        }
        self.v6.push(m);
        m
    }

    /// `n` bytes the walker must not keep: markers end to end.
    pub(super) fn hidden(&mut self, n: usize) -> Vec<u8> {
        let mut h = Vec::with_capacity(n + 16);
        while h.len() < n {
            match n - h.len() >= 16 && self.chance(64) {
                true => h.extend_from_slice(&self.v6()),
                false => h.extend_from_slice(&self.v4()),
            }
        }
        h.truncate(n);
        h
    }

    /// A random payload of 8 to 47 bytes, from `0xe0..=0xef` (4 random bits a byte: an
    /// 8-byte run is one of 2^32).
    pub(super) fn payload(&mut self) -> Vec<u8> {
        let n = 8 + self.below(40);
        self.seed ^= u64::from(self.byte()) << 17 ^ self.payloads.len() as u64;
        let p: Vec<u8> = (0..n)
            .map(|_| PAYLOAD_HIGH | (splitmix(&mut self.seed) >> 60) as u8)
            .collect();
        self.payloads.push(p.clone());
        p
    }

    pub(super) fn nested(&mut self) -> bool {
        self.depth < MAX_DEPTH
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
