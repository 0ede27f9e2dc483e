//! The checks of one pair of packets (raw, scrubbed), and the collection of one raw packet.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::global::{Collected, Global};
use super::hash::{IntMap, IntSet};
use super::headers::{self, scan};
use super::layout::Layout;
use super::report::{Finding, Kind, FIXED_POINT_HINT};
use crate::cache::CachedAnonymizer;

/// Hint appended to an address of the packet found in another of its address fields when
/// no mapping was given (with high bits passed, such a collision happens by chance).
pub const COLLISION_HINT: &str =
    "(may be the mapping's output for the address there: pass --key to check)";

/// Length of the payload runs searched for.
pub const RUN: usize = 8;

/// A raw packet to read.
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    pub data: &'a [u8],
    pub link: u32,
    pub wire_len: u32,
    /// 1-based frame number in its trace.
    pub frame: u64,
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn be128(b: &[u8], at: usize) -> u128 {
    let mut v = [0u8; 16];
    v.copy_from_slice(&b[at..at + 16]);
    u128::from_be_bytes(v)
}

fn uniform4(a: u32) -> bool {
    a == u32::from_ne_bytes([a as u8; 4])
}

fn uniform16(a: u128) -> bool {
    a == u128::from_ne_bytes([a as u8; 16])
}

/// Whether a payload run carries enough information to be searched for.
pub fn informative(run: &[u8]) -> bool {
    let mut counts = [0u8; 256];
    run.iter().for_each(|&b| counts[usize::from(b)] += 1);
    let distinct = counts.iter().filter(|&&c| c > 0).count();
    distinct >= 3 && counts.iter().all(|&c| c <= 4)
}

/// Reads a raw packet: its layout (with choices recorded), and with `scan` the
/// plausible-header scan after the headers.
pub fn read_raw(p: &Packet<'_>, l: &mut Layout, scan: bool) {
    l.reset(p.data.len(), false);
    headers::recognise(p.link, p.data, l);
    if scan {
        let from = l.payload_at;
        let to = from.saturating_add(scan::SCAN_PAYLOAD);
        scan::scan(p.data, from, to, p.wire_len as usize, l);
    }
}

/// The distinct, informative addresses of a raw packet read into `l`.
fn raw_addresses(data: &[u8], l: &Layout, v4: &mut Vec<u32>, v6: &mut Vec<u128>) {
    v4.clear();
    v6.clear();
    for &at in l.v4.iter().chain(&l.extra_v4) {
        let a = be32(data, at);
        if !uniform4(a) && !v4.contains(&a) {
            v4.push(a);
        }
    }
    for &at in l.v6.iter().chain(&l.extra_v6) {
        let a = be128(data, at);
        if !uniform16(a) && !v6.contains(&a) {
            v6.push(a);
        }
    }
}

/// Collects the addresses of one raw packet into `g`.
pub fn collect(p: &Packet<'_>, l: &mut Layout, g: &mut Collected, scratch: &mut Scratch) {
    read_raw(p, l, true);
    raw_addresses(p.data, l, &mut scratch.v4, &mut scratch.v6);
    g.v4.extend(scratch.v4.iter().map(|&a| (a, p.frame)));
    g.v6.extend(scratch.v6.iter().map(|&a| (a, p.frame)));
}

/// Per-worker buffers.
#[derive(Debug, Default)]
pub struct Scratch {
    v4: Vec<u32>,
    v6: Vec<u128>,
    soft: Vec<u32>,
    nonzero: Vec<u32>,
    /// First bytes of `v4` and `v6` (a 256-bit set), to skip windows fast.
    first4: [u64; 4],
    first6: [u64; 4],
}

fn first_bytes(firsts: impl Iterator<Item = u8>) -> [u64; 4] {
    let mut set = [0u64; 4];
    firsts.for_each(|b| set[usize::from(b >> 6)] |= 1 << (b & 63));
    set
}

#[inline]
fn starts(set: &[u64; 4], b: u8) -> bool {
    set[usize::from(b >> 6)] & (1 << (b & 63)) != 0
}

/// A payload window to look for in every raw packet (file-wide, second pass).
#[derive(Clone, Copy, Debug)]
pub struct Candidate {
    pub window: u64,
    pub frame: u64,
    pub raw_frame: u64,
    pub offset: usize,
}

/// What the checks of a batch of pairs found.
#[derive(Debug, Default)]
pub struct CheckOutcome {
    pub findings: Vec<Finding>,
    pub leaky_packets: u64,
    pub fixed_points: u64,
    pub collisions: u64,
    pub candidates: Vec<Candidate>,
}

/// Checks pairs of packets against the raw trace's addresses.
pub struct Checker<'g> {
    pub global: &'g Global,
    pub mapping: Option<CachedAnonymizer>,
    raw: Layout,
    anon: Layout,
    scratch: Scratch,
    /// Address fields of the batch to look up in the raw trace's tables.
    deferred: Vec<Hit>,
    /// Candidates kept per batch at most.
    pub max_candidates: usize,
}

/// Where a hit sits in the output packet.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// Not an address field.
    Elsewhere,
    /// An address field that held `raw` in the raw packet.
    Field { raw: u128 },
    /// An address field with no address at that place in the raw packet.
    NewField,
}

impl<'g> Checker<'g> {
    pub fn new(global: &'g Global, mapping: Option<CachedAnonymizer>) -> Checker<'g> {
        Checker {
            global,
            mapping,
            raw: Layout::default(),
            anon: Layout::default(),
            scratch: Scratch::default(),
            deferred: Vec::new(),
            max_candidates: 1 << 16,
        }
    }

    /// Checks one pair; findings and counts go to `out` (call [`Self::finish`] after the
    /// batch).
    pub fn pair(&mut self, raw: &Packet<'_>, anon: &Packet<'_>, out: &mut CheckOutcome) {
        // the scan's addresses are in the tables already: they are found file-wide
        read_raw(raw, &mut self.raw, false);
        raw_addresses(
            raw.data,
            &self.raw,
            &mut self.scratch.v4,
            &mut self.scratch.v6,
        );
        self.scratch.first4 = first_bytes(self.scratch.v4.iter().map(|a| (a >> 24) as u8));
        self.scratch.first6 = first_bytes(self.scratch.v6.iter().map(|a| (a >> 120) as u8));
        self.anon.replaying(anon.data.len(), &self.raw);
        headers::recognise(anon.link, anon.data, &mut self.anon);
        let before = out.findings.len();
        let mut pair = Pair {
            c: self,
            raw,
            anon,
            out,
            before,
        };
        pair.own_addresses();
        pair.fields_file_wide();
        let (soft, unknown) = pair.c.anon.summary();
        if soft {
            pair.soft_prefix();
            pair.soft_file_wide();
        }
        if unknown {
            pair.unexplained();
        }
        if soft {
            pair.payload_runs();
        }
    }
}

/// A raw address found in an output packet.
#[derive(Clone, Copy, Debug)]
struct Hit {
    at: usize,
    found: u128,
    v6: bool,
    /// The first raw frame that held it.
    from: u64,
    place: Place,
    frame: u64,
    raw_frame: u64,
}

impl Checker<'_> {
    /// The mapping's output for `raw`, when the mapping is at hand.
    fn mapped(&mut self, raw: u128, v6: bool) -> Option<u128> {
        let m = self.mapping.as_mut()?;
        Some(match v6 {
            false => m.anon_v4(raw as u32).into(),
            true => m.anon_v6(raw),
        })
    }

    /// Decides what a hit is: a leak, a fixed point or a collision.
    fn judge(&mut self, h: Hit, out: &mut CheckOutcome) {
        let what = match h.v6 {
            false => format!("IPv4 address {}", Ipv4Addr::from(h.found as u32)),
            true => format!("IPv6 address {}", Ipv6Addr::from(h.found)),
        };
        let origin = match h.from == h.raw_frame {
            true => String::new(),
            false => format!(" of raw frame {}", h.from),
        };
        let mut finding = |kind, detail| {
            out.findings.push(Finding {
                frame: h.frame,
                raw_frame: Some(h.raw_frame),
                offset: Some(h.at),
                kind,
                detail,
            })
        };
        match h.place {
            Place::Field { raw } if raw == h.found => match self.mapped(raw, h.v6) {
                Some(m) if m == raw => out.fixed_points += 1,
                Some(_) => finding(Kind::AddressUnchanged, format!("{what} left unchanged")),
                None => finding(
                    Kind::AddressUnchanged,
                    format!("{what} left unchanged {FIXED_POINT_HINT}"),
                ),
            },
            Place::Field { raw } => match self.mapped(raw, h.v6) {
                Some(m) if m == h.found => out.collisions += 1,
                None if !h.v6 && h.from != h.raw_frame => out.collisions += 1,
                None if !h.v6 => finding(
                    Kind::Address,
                    format!("raw {what} of this packet in another address field {COLLISION_HINT}"),
                ),
                _ => finding(
                    Kind::Address,
                    format!("{what}{origin} in an address field, not the mapping's output"),
                ),
            },
            Place::NewField | Place::Elsewhere => {
                finding(Kind::Address, format!("raw {what}{origin}"))
            }
        }
    }

    /// Ends a batch: looks the deferred address fields up (back to back, so their cache
    /// misses overlap), orders the findings by frame and counts the packets with findings;
    /// candidates of those packets are dropped (they already leak).
    pub fn finish(&mut self, out: &mut CheckOutcome) {
        let deferred = std::mem::take(&mut self.deferred);
        for &(mut h) in &deferred {
            let from = match h.v6 {
                false => self.global.v4.get(h.found as u32),
                true => self.global.v6.get(h.found),
            };
            if let Some(from) = from {
                h.from = from;
                self.judge(h, out);
            }
        }
        self.deferred = deferred;
        self.deferred.clear();
        out.findings.sort_by_key(|f| (f.frame, f.offset));
        let mut frames: Vec<u64> = out.findings.iter().map(|f| f.frame).collect();
        frames.dedup();
        out.leaky_packets = frames.len() as u64;
        out.candidates
            .retain(|c| frames.binary_search(&c.frame).is_err());
    }
}

/// One pair being checked.
struct Pair<'c, 'g, 'p, 'o> {
    c: &'c mut Checker<'g>,
    raw: &'p Packet<'p>,
    anon: &'p Packet<'p>,
    out: &'o mut CheckOutcome,
    /// Findings of other packets already in `out`.
    before: usize,
}

impl Pair<'_, '_, '_, '_> {
    fn finding(&mut self, offset: Option<usize>, kind: Kind, detail: String) {
        self.out.findings.push(Finding {
            frame: self.anon.frame,
            raw_frame: Some(self.raw.frame),
            offset,
            kind,
            detail,
        });
    }

    fn place(&self, at: usize, v6: bool) -> Place {
        let (anon_fields, raw_fields) = match v6 {
            false => (&self.c.anon.v4, &self.c.raw.v4),
            true => (&self.c.anon.v6, &self.c.raw.v6),
        };
        if !anon_fields.contains(&at) {
            return Place::Elsewhere;
        }
        match (raw_fields.contains(&at), v6) {
            (true, false) => Place::Field {
                raw: be32(self.raw.data, at).into(),
            },
            (true, true) => Place::Field {
                raw: be128(self.raw.data, at),
            },
            (false, _) => Place::NewField,
        }
    }

    /// A raw address `found` at `at` of the output, first held by raw frame `from`.
    fn hit(&mut self, at: usize, found: u128, v6: bool, from: u64) {
        let hit = Hit {
            at,
            found,
            v6,
            from,
            place: self.place(at, v6),
            frame: self.anon.frame,
            raw_frame: self.raw.frame,
        };
        self.c.judge(hit, self.out);
    }

    /// The raw packet's own addresses, anywhere in the output.
    fn own_addresses(&mut self) {
        let data = self.anon.data;
        let s = &self.c.scratch;
        let mut hits = [(0usize, 0u128, false); 8];
        let mut n = 0;
        if !s.v4.is_empty() && data.len() >= 4 {
            for at in 0..=data.len() - 4 {
                if starts(&s.first4, data[at]) {
                    let w = be32(data, at);
                    if s.v4.contains(&w) && n < hits.len() {
                        hits[n] = (at, w.into(), false);
                        n += 1;
                    }
                }
            }
        }
        if !s.v6.is_empty() && data.len() >= 16 {
            for at in 0..=data.len() - 16 {
                if starts(&s.first6, data[at]) {
                    let w = be128(data, at);
                    if s.v6.contains(&w) && n < hits.len() {
                        hits[n] = (at, w, true);
                        n += 1;
                    }
                }
            }
        }
        for &(at, w, v6) in &hits[..n] {
            self.hit(at, w, v6, self.raw.frame);
        }
    }

    /// Address fields of the output, to look up in the raw trace's tables at the end of
    /// the batch (an address of another raw packet there).
    fn fields_file_wide(&mut self) {
        let data = self.anon.data;
        for i in 0..self.c.anon.v4.len() {
            let at = self.c.anon.v4[i];
            let w = be32(data, at);
            if !uniform4(w) && !self.c.scratch.v4.contains(&w) {
                self.defer(at, w.into(), false);
            }
        }
        for i in 0..self.c.anon.v6.len() {
            let at = self.c.anon.v6[i];
            let w = be128(data, at);
            if !uniform16(w) && !self.c.scratch.v6.contains(&w) {
                self.defer(at, w, true);
            }
        }
    }

    fn defer(&mut self, at: usize, found: u128, v6: bool) {
        let hit = Hit {
            at,
            found,
            v6,
            from: 0,
            place: self.place(at, v6),
            frame: self.anon.frame,
            raw_frame: self.raw.frame,
        };
        self.c.deferred.push(hit);
    }

    /// `soft[i]`: bytes before `i` outside the understood headers; `nonzero[i]`: non-zero
    /// bytes before `i`.
    fn soft_prefix(&mut self) {
        let Scratch { soft, nonzero, .. } = &mut self.c.scratch;
        soft.clear();
        nonzero.clear();
        soft.push(0);
        nonzero.push(0);
        let (mut s, mut z) = (0, 0);
        for (c, &b) in self.c.anon.classes.iter().zip(self.anon.data) {
            s += u32::from(!c.explained());
            z += u32::from(b != 0);
            soft.push(s);
            nonzero.push(z);
        }
    }

    /// Whether `at..at + len` touches a byte outside the understood headers and holds a
    /// non-zero byte (all-zero windows are never searched).
    #[inline]
    fn touches_soft(&self, at: usize, len: usize) -> bool {
        let (s, z) = (&self.c.scratch.soft, &self.c.scratch.nonzero);
        s[at + len] > s[at] && z[at + len] > z[at]
    }

    /// Windows outside the understood headers holding an address of another raw packet.
    fn soft_file_wide(&mut self) {
        let data = self.anon.data;
        for at in 0..data.len().saturating_sub(3) {
            let w = be32(data, at);
            if !self.touches_soft(at, 4) || uniform4(w) || self.c.scratch.v4.contains(&w) {
                continue;
            }
            if let Some(from) = self.c.global.v4.get(w) {
                self.hit(at, w.into(), false, from);
            }
        }
        for at in 0..data.len().saturating_sub(15) {
            let w = be128(data, at);
            if !self.touches_soft(at, 16) || uniform16(w) || self.c.scratch.v6.contains(&w) {
                continue;
            }
            if let Some(from) = self.c.global.v6.get(w) {
                self.hit(at, w, true, from);
            }
        }
    }

    /// Runs of the raw packet's payload outside the understood headers of the output; the
    /// other windows of a packet with no finding yet become candidates for the file-wide
    /// search. One finding per packet.
    fn payload_runs(&mut self) {
        let data = self.anon.data;
        let raw = self.raw.data;
        let raw_payload = &raw[self.c.raw.payload_at.min(raw.len())..];
        for at in 0..data.len().saturating_sub(RUN - 1) {
            if !self.touches_soft(at, RUN) {
                continue;
            }
            let w = &data[at..at + RUN];
            if w.iter().all(|&b| b == w[0]) || !informative(w) {
                continue;
            }
            let in_place = raw.get(at..at + RUN) == Some(w) && at >= self.c.raw.payload_at;
            if in_place || raw_payload.windows(RUN).any(|r| r == w) {
                let detail = format!("{RUN} bytes of the raw packet's payload ({w:02x?})");
                return self.finding(Some(at), Kind::PayloadRun, detail);
            }
            let clean_so_far = self.out.findings.len() == self.before;
            if clean_so_far && self.out.candidates.len() < self.c.max_candidates {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                self.out.candidates.push(Candidate {
                    window: u64::from_ne_bytes(b),
                    frame: self.anon.frame,
                    raw_frame: self.raw.frame,
                    offset: at,
                });
            }
        }
    }

    /// Check 2: header bytes not understood that are neither zero nor padding.
    fn unexplained(&mut self) {
        for (at, n) in self.c.anon.unexplained(self.anon.data) {
            let bytes = &self.anon.data[at..at + n.min(8)];
            let detail = format!("{n} header bytes not understood, starting {bytes:02x?}");
            self.finding(Some(at), Kind::UnexplainedHeaderByte, detail);
        }
    }
}

/// Looks for the candidate windows in the payload of one raw packet; hits from another
/// packet than the candidate's own are findings.
pub fn search_candidates(
    p: &Packet<'_>,
    l: &mut Layout,
    windows: &IntMap<u64, Vec<Candidate>>,
    out: &mut Vec<Finding>,
) {
    read_raw(p, l, false);
    let payload = &p.data[l.payload_at.min(p.data.len())..];
    if payload.len() < RUN {
        return;
    }
    let mut seen = IntSet::default();
    for (i, w) in payload.windows(RUN).enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        let Some(cands) = windows.get(&u64::from_ne_bytes(b)) else {
            continue;
        };
        for c in cands.iter().filter(|c| c.raw_frame != p.frame) {
            if seen.insert(c.frame) {
                out.push(Finding {
                    frame: c.frame,
                    raw_frame: Some(c.raw_frame),
                    offset: Some(c.offset),
                    kind: Kind::PayloadRun,
                    detail: format!(
                        "{RUN} bytes of the payload of raw frame {} (at its byte {})",
                        p.frame,
                        l.payload_at + i
                    ),
                });
            }
        }
    }
}
