//! The packet walker: follows one frame's headers by link type, rewrites every address it
//! finds in place, decides where the frame is cut, and repairs checksums.
//!
//! Fails closed, by allow-list: every header byte written out is a field the walker knows and
//! has handled (an address anonymized, a MAC address under the MAC policy, a port, a length,
//! a flag, a sequence number), or it is replaced by zeros or padding of the same length
//! (IPv4 and TCP no-ops, IPv6 PadN, zeroed reserved bytes, options and digests: counted in
//! [`WalkOutcome::neutralised`]), or the frame is cut before it. A header that cannot be parsed
//! whole (snaplen truncation, malformed lengths, unknown tunnels or extension headers) ends
//! the walk, and the frame is cut where that header starts, after the last header that was
//! fully handled. The [`WalkOutcome`] says why.
//!
//! Tunnels are walked into (GRE with its key, sequence and checksum, Ethernet over GRE,
//! ERSPAN II/III, VXLAN, Geneve, GTP-U, L2TPv2, PPPoE; IP in IP), and the inner packet is held
//! to the same standard. Payloads whose type is only guessed (a tunnel known by its UDP
//! port, whatever follows an MPLS label stack) are walked speculatively: unless they parse
//! to the end of their headers, or run out of bytes after at least one IP header parsed
//! whole, everything is undone and the frame is cut where the guess began.
//!
//! The work per frame is bounded: every loop advances by at least one byte, nesting is
//! limited, and each header, option and label costs one unit of a budget of [`MAX_WORK`];
//! a frame that exhausts it is cut there. Length arithmetic is checked or saturating.
//!
//! Checksums: every checksum the walk passes opens a *scope* (its covered bytes, the checksum
//! field, the pseudo-header addresses). Each write inside a scope adds `~old + new` to the
//! scope's delta. At the end, innermost first, a checksum whose covered bytes all survive the
//! cut is recomputed; one whose bytes were cut is updated incrementally (RFC 1624), so it
//! stays right for the packet as it was on the wire. Writes of inner checksums count as
//! changes in the outer scopes (ICMP errors quoting an IP header, tunnels).

mod checksum;
mod ip;
mod linklayer;
mod mac;
mod options;
mod policy;
mod reason;
mod simple;
mod transport;
mod tunnel;

use crate::cache::CachedAnonymizer;

pub use mac::{scramble as scramble_mac, MacKey, MacPolicy};
pub use policy::{BadPolicy, Checksums, MacMode, MplsPolicy, Payload, Policy};
pub use reason::{Neutral, Neutralised, Reason};

use checksum::Scope;
use mac::MacMemo;

/// Link types the walker follows (numbered as `LINKTYPE_*`).
pub mod link {
    /// BSD loopback, host byte order family.
    pub const NULL: u32 = 0;
    /// Ethernet (also what ERF Ethernet records are read as).
    pub const ETHERNET: u32 = 1;
    /// Raw IP (also ERF IPv4/IPv6 records).
    pub const RAW: u32 = 101;
    /// OpenBSD loopback, network byte order family.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
    /// Every link type the walker follows.
    pub const ALL: [u32; 8] = [NULL, ETHERNET, RAW, LOOP, LINUX_SLL, IPV4, IPV6, LINUX_SLL2];
}

/// Rewrites addresses: the anonymizer, or a collector for leak checks.
pub trait Rewriter {
    /// The replacement of an IPv4 address.
    fn v4(&mut self, addr: [u8; 4]) -> [u8; 4];
    /// The replacement of an IPv6 address.
    fn v6(&mut self, addr: [u8; 16]) -> [u8; 16];
}

impl Rewriter for CachedAnonymizer {
    #[inline]
    fn v4(&mut self, addr: [u8; 4]) -> [u8; 4] {
        self.anon_v4(u32::from_be_bytes(addr)).to_be_bytes()
    }

    #[inline]
    fn v6(&mut self, addr: [u8; 16]) -> [u8; 16] {
        self.anon_v6(u128::from_be_bytes(addr)).to_be_bytes()
    }
}

/// The result of walking one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkOutcome {
    /// The new captured length (the frame is cut there).
    pub caplen: usize,
    /// Where the payload starts (the end of the headers), `caplen` when the walk stopped.
    pub payload_at: usize,
    /// Why the walk stopped early, if it did.
    pub reason: Option<Reason>,
    /// What was replaced by zeros or padding in the bytes kept.
    pub neutralised: Neutralised,
    /// Units of work spent (at most [`MAX_WORK`]).
    pub work: u32,
}

/// Walks `frame` of link type `link`, rewriting it in place under `policy`.
///
/// A loop over many frames keeps one [`Walker`] instead, which saves setting up its state
/// per frame.
pub fn walk<R: Rewriter>(link: u32, frame: &mut [u8], policy: &Policy, rw: &mut R) -> WalkOutcome {
    Walker::new().walk(link, frame, policy, rw)
}

/// The walker's state, kept across frames: checksum scopes and the MAC memo.
#[derive(Clone, Debug)]
pub struct Walker {
    scopes: [Scope; MAX_SCOPES],
    macs: Option<Box<MacMemo>>,
}

impl Default for Walker {
    fn default() -> Self {
        Walker::new()
    }
}

impl Walker {
    /// A walker.
    pub fn new() -> Walker {
        Walker {
            scopes: [Scope::default(); MAX_SCOPES],
            macs: None,
        }
    }

    /// Walks `frame` of link type `link`, rewriting it in place under `policy`.
    #[inline]
    pub fn walk<R: Rewriter>(
        &mut self,
        link: u32,
        frame: &mut [u8],
        policy: &Policy,
        rw: &mut R,
    ) -> WalkOutcome {
        self.walk_with(link, frame, policy, rw, true)
    }

    /// [`Walker::walk`], trying the walk of the simple shape first when `simple` says so
    /// (the tests compare it with the general walk).
    #[inline]
    fn walk_with<R: Rewriter>(
        &mut self,
        link: u32,
        frame: &mut [u8],
        policy: &Policy,
        rw: &mut R,
        simple: bool,
    ) -> WalkOutcome {
        let macs = match policy.mac {
            MacPolicy::Scramble(key) => MacMemo::for_key(&mut self.macs, key, false),
            MacPolicy::ScrambleKeepOui(key) => MacMemo::for_key(&mut self.macs, key, true),
            MacPolicy::Keep | MacPolicy::Zero => None,
        };
        let mut w = Walk {
            buf: frame,
            policy,
            rw,
            scopes: &mut self.scopes,
            n_scopes: 0,
            depth: 0,
            work: 0,
            ip_headers: 0,
            neutral: Neutralised::default(),
            macs,
        };
        if simple {
            if let Some(outcome) = w.simple(link) {
                return outcome;
            }
        }
        let step = w.link(link);
        w.finish(step)
    }
}

/// The most units of work one frame may cost: each header, option, extension header, tag
/// and label costs one.
pub const MAX_WORK: u32 = 1024;
const MAX_SCOPES: usize = 12;
const MAX_DEPTH: u8 = 8;
const MAX_TAGS: usize = 8;
const MAX_LABELS: usize = 16;
const MAX_EXT: usize = 12;

/// The headers parsed whole: payload in `payload_at..payload_end`.
#[derive(Clone, Copy, Debug)]
struct End {
    payload_at: usize,
    payload_end: usize,
}

/// A header that could not be parsed, starting at `at`.
#[derive(Clone, Copy, Debug)]
struct Stop {
    at: usize,
    reason: Reason,
}

type Step = Result<End, Stop>;

fn stop(at: usize, reason: Reason) -> Stop {
    Stop { at, reason }
}

fn end_at(payload_at: usize, payload_end: usize) -> Step {
    Ok(End {
        payload_at,
        payload_end,
    })
}

/// What a speculative walk must restore when its guess is wrong.
struct Saved {
    scopes: [Scope; MAX_SCOPES],
    n_scopes: usize,
    depth: u8,
    ip_headers: u32,
    neutral: Neutralised,
}

struct Walk<'a, R> {
    buf: &'a mut [u8],
    policy: &'a Policy,
    rw: &'a mut R,
    scopes: &'a mut [Scope; MAX_SCOPES],
    n_scopes: usize,
    depth: u8,
    work: u32,
    /// IP headers parsed whole so far.
    ip_headers: u32,
    neutral: Neutralised,
    macs: Option<&'a mut MacMemo>,
}

impl<R: Rewriter> Walk<'_, R> {
    /// The bytes `at..end`, empty where that is no range of the frame.
    #[inline]
    fn bytes(&self, at: usize, end: usize) -> &[u8] {
        self.buf.get(at..end).unwrap_or(&[])
    }

    /// Spends one unit of work on the header or option at `at`.
    #[inline]
    fn tick(&mut self, at: usize) -> Result<(), Stop> {
        if self.work >= MAX_WORK {
            return Err(stop(at, Reason::WorkBound));
        }
        self.work += 1;
        Ok(())
    }

    /// Enters one more level of nesting (a header that can contain another of its kind).
    #[inline]
    fn descend(&mut self, at: usize) -> Result<(), Stop> {
        self.tick(at)?;
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(stop(at, Reason::TooDeep));
        }
        Ok(())
    }

    /// Walks a payload whose type is a guess, starting at `at`. The guess stands when the
    /// walk ends cleanly, or when the bytes ran out after at least one more IP header was
    /// parsed whole; otherwise the checksum scopes and counts are restored and the frame is
    /// cut at `at` for `reason` (the bytes past `at`, rewritten or not, are not kept).
    #[inline(never)]
    fn speculate(&mut self, at: usize, reason: Reason, f: impl FnOnce(&mut Self) -> Step) -> Step {
        let saved = Saved {
            scopes: *self.scopes,
            n_scopes: self.n_scopes,
            depth: self.depth,
            ip_headers: self.ip_headers,
            neutral: self.neutral,
        };
        match f(self) {
            Ok(e) => Ok(e),
            Err(s) if s.reason.is_truncation() && self.ip_headers > saved.ip_headers => Err(s),
            Err(_) => {
                *self.scopes = saved.scopes;
                self.n_scopes = saved.n_scopes;
                self.depth = saved.depth;
                self.ip_headers = saved.ip_headers;
                self.neutral = saved.neutral;
                Err(stop(at, reason))
            }
        }
    }

    /// Applies the MAC policy to the 6-byte address at `at`.
    #[inline]
    fn mac(&mut self, at: usize) {
        if self.policy.mac == MacPolicy::Keep {
            return;
        }
        let Some(&old) = self.buf.get(at..).and_then(|b| b.first_chunk::<6>()) else {
            return;
        };
        let new = match self.macs.as_deref_mut() {
            Some(memo) => memo.get(old),
            None => [0; 6],
        };
        self.put(at, &new);
    }

    /// Zeroes `from..to` when it holds anything but zeros, counting it as `n`.
    fn neutralise_zero(&mut self, from: usize, to: usize, n: Neutral) {
        if self.fill(from, to, 0) {
            self.neutral.insert(n);
        }
    }

    /// Writes `new` at `at` when it differs, counting the change as `n`.
    fn neutralise_put(&mut self, at: usize, new: &[u8], n: Neutral) {
        if self.bytes(at, at + new.len()) != new {
            self.put(at, new);
            self.neutral.insert(n);
        }
    }
}

#[cfg(test)]
mod tests;
