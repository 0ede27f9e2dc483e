//! The packet walker: follows one frame's headers by link type, rewrites every address it
//! finds in place, decides where the frame is cut, and repairs checksums.
//!
//! Fails closed: a header that cannot be parsed whole (snaplen truncation, malformed lengths,
//! unknown tunnels or extension headers) ends the walk, and the frame is cut where that header
//! starts, after the last header that was fully anonymized. The [`Outcome`] says why.
//!
//! Checksums: every checksum the walk passes opens a *scope* (its covered bytes, the checksum
//! field, the pseudo-header addresses). Each write inside a scope adds `~old + new` to the
//! scope's delta. At the end, innermost first, a checksum whose covered bytes all survive the
//! cut is recomputed; one whose bytes were cut is updated incrementally (RFC 1624), so it
//! stays right for the packet as it was on the wire. Writes of inner checksums count as
//! changes in the outer scopes (ICMP errors quoting an IP header).

use crate::cache::CachedAnonymizer;
use crate::wire::checksum::{self, delta, fold, sum, sum_at};
use crate::wire::{arp, ethernet, ethertype, icmp, ipv4, ipv6, proto, tcp, udp};

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
}

/// Rewrites addresses: the anonymizer, or a collector for leak checks.
pub trait Rewriter {
    /// The replacement of an IPv4 address.
    fn v4(&mut self, addr: [u8; 4]) -> [u8; 4];
    /// The replacement of an IPv6 address.
    fn v6(&mut self, addr: [u8; 16]) -> [u8; 16];
}

impl Rewriter for CachedAnonymizer {
    fn v4(&mut self, addr: [u8; 4]) -> [u8; 4] {
        self.anon_v4(u32::from_be_bytes(addr)).to_be_bytes()
    }

    fn v6(&mut self, addr: [u8; 16]) -> [u8; 16] {
        self.anon_v6(u128::from_be_bytes(addr)).to_be_bytes()
    }
}

/// What happens to the bytes after the last transport header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Cut them (the record keeps the original wire length).
    Drop,
    /// Keep the first N bytes.
    Keep(usize),
    /// Keep them, zeroed.
    Zero,
}

/// What happens to checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksums {
    /// Leave them valid (recomputed, or updated incrementally where bytes were cut).
    Fix,
    /// Set them to zero.
    Zero,
    /// Leave the original values.
    Keep,
}

/// What happens to MAC addresses (Ethernet, ARP, Linux cooked headers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacPolicy {
    /// Unchanged.
    Keep,
    /// Zeroed.
    Zero,
    /// XORed with a mask whose multicast bit is clear (unicast stays unicast).
    Scramble([u8; 6]),
}

impl MacPolicy {
    /// Scrambling with `mask` (its multicast bit is cleared).
    pub fn scramble(mut mask: [u8; 6]) -> MacPolicy {
        mask[0] &= 0xfe;
        MacPolicy::Scramble(mask)
    }
}

/// The walker's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Payload policy.
    pub payload: Payload,
    /// Checksum policy.
    pub checksums: Checksums,
    /// MAC policy.
    pub mac: MacPolicy,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            payload: Payload::Drop,
            checksums: Checksums::Fix,
            mac: MacPolicy::Keep,
        }
    }
}

macro_rules! reasons {
    ($($variant:ident = $name:literal,)*) => {
        /// Why a walk stopped before the payload.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason { $(#[doc = $name] $variant,)* }

        impl Reason {
            /// Every reason, in counter order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The name used in summaries and manifests.
            pub fn name(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }
        }
    };
}

reasons! {
    TruncatedLink = "truncated-link",
    TruncatedVlan = "truncated-vlan",
    TruncatedMpls = "truncated-mpls",
    TruncatedIp = "truncated-ip",
    TruncatedIpv4 = "truncated-ipv4",
    TruncatedIpv6 = "truncated-ipv6",
    TruncatedIpv6Ext = "truncated-ipv6-ext",
    TruncatedTcp = "truncated-tcp",
    TruncatedUdp = "truncated-udp",
    TruncatedIcmp = "truncated-icmp",
    TruncatedArp = "truncated-arp",
    MalformedIpv4 = "malformed-ipv4",
    MalformedIpv4Options = "malformed-ipv4-options",
    MalformedIpv6 = "malformed-ipv6",
    MalformedIpv6Ext = "malformed-ipv6-ext",
    MalformedTcp = "malformed-tcp",
    UnknownLink = "unknown-link-type",
    UnknownEthertype = "unknown-ethertype",
    UnknownMplsPayload = "unknown-mpls-payload",
    UnknownRoutingType = "unknown-ipv6-routing-type",
    UnknownIpv6Ext = "unknown-ipv6-ext",
    UnknownTunnel = "unknown-tunnel",
    UnsupportedArp = "unsupported-arp",
    TooDeep = "too-deep",
}

/// The result of walking one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The new captured length (the frame is cut there).
    pub caplen: usize,
    /// Where the payload starts (the end of the headers), `caplen` when the walk stopped.
    pub payload_at: usize,
    /// Why the walk stopped early, if it did.
    pub reason: Option<Reason>,
}

/// Walks `frame` of link type `link`, rewriting it in place under `policy`.
///
/// A loop over many frames keeps one [`Walker`] instead, which saves setting up its state
/// per frame.
pub fn walk<R: Rewriter>(link: u32, frame: &mut [u8], policy: &Policy, rw: &mut R) -> Outcome {
    Walker::new().walk(link, frame, policy, rw)
}

/// The walker's per-frame state, kept across frames.
#[derive(Clone, Debug)]
pub struct Walker {
    scopes: [Scope; MAX_SCOPES],
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
    ) -> Outcome {
        let mut w = Walk {
            buf: frame,
            policy,
            rw,
            scopes: &mut self.scopes,
            n_scopes: 0,
            depth: 0,
        };
        let step = w.link(link);
        w.finish(step)
    }
}

const MAX_SCOPES: usize = 8;
const MAX_DEPTH: u8 = 6;
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

fn end(payload_at: usize, payload_end: usize) -> Step {
    Ok(End {
        payload_at,
        payload_end,
    })
}

/// Where the pseudo-header of a transport checksum takes its addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Pseudo {
    #[default]
    None,
    V4 {
        ip: usize,
        proto: u8,
    },
    V6 {
        /// Offset of the source address.
        src: usize,
        /// Offset of the final destination address.
        dst: usize,
        proto: u8,
    },
}

#[derive(Clone, Copy, Debug, Default)]
struct Scope {
    start: usize,
    /// Declared end of the covered bytes (may lie past the captured bytes).
    end: usize,
    checksum_at: usize,
    pseudo: Pseudo,
    delta: u64,
    udp: bool,
}

/// Offsets collected before rewriting (options, extension headers).
struct Offsets {
    at: [usize; 16],
    n: usize,
    overflow: bool,
}

impl Offsets {
    fn new() -> Self {
        Offsets {
            at: [0; 16],
            n: 0,
            overflow: false,
        }
    }

    fn push(&mut self, off: usize) {
        match self.at.get_mut(self.n) {
            Some(slot) => {
                *slot = off;
                self.n += 1;
            }
            None => self.overflow = true,
        }
    }

    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.at[..self.n].iter().copied()
    }
}

struct Walk<'a, R> {
    buf: &'a mut [u8],
    policy: &'a Policy,
    rw: &'a mut R,
    scopes: &'a mut [Scope; MAX_SCOPES],
    n_scopes: usize,
    depth: u8,
}

impl<R: Rewriter> Walk<'_, R> {
    // ---- link layer ----

    fn link(&mut self, link: u32) -> Step {
        match link {
            link::ETHERNET => self.ethernet(),
            link::RAW => self.ip_by_version(0, self.buf.len(), false),
            link::IPV4 => self.ipv4(0, self.buf.len(), false),
            link::IPV6 => self.ipv6(0, self.buf.len(), false),
            link::LINUX_SLL => self.sll(ethernet::Sll::parse_v1(self.buf)),
            link::LINUX_SLL2 => self.sll(ethernet::Sll::parse_v2(self.buf)),
            link::NULL | link::LOOP => self.loopback(link),
            _ => Err(stop(0, Reason::UnknownLink)),
        }
    }

    fn ethernet(&mut self) -> Step {
        let et = ethernet::Packet::new_checked(&self.buf[..])
            .map_err(|_| stop(0, Reason::TruncatedLink))?
            .ethertype();
        self.mac(0, 6);
        self.mac(6, 6);
        self.ethertype(et, ethernet::HEADER_LEN)
    }

    fn sll(&mut self, sll: Result<ethernet::Sll, crate::wire::Truncated>) -> Step {
        let sll = sll.map_err(|_| stop(0, Reason::TruncatedLink))?;
        self.mac(sll.addr_at, sll.addr_len);
        self.ethertype(sll.protocol, sll.header_len)
    }

    fn loopback(&mut self, link: u32) -> Step {
        let Some(&fam) = self.buf.first_chunk::<4>() else {
            return Err(stop(0, Reason::TruncatedLink));
        };
        let family = match (link, u32::from_le_bytes(fam)) {
            (link::NULL, le) if le <= 0xffff => le,
            _ => u32::from_be_bytes(fam),
        };
        match family {
            2 => self.ipv4(4, self.buf.len(), false),
            10 | 24 | 28 | 30 => self.ipv6(4, self.buf.len(), false),
            _ => Err(stop(4, Reason::UnknownLink)),
        }
    }

    fn ethertype(&mut self, mut et: u16, mut at: usize) -> Step {
        for _ in 0..MAX_TAGS {
            match et {
                ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => {
                    et = ethernet::vlan_next(self.buf, at)
                        .map_err(|_| stop(at, Reason::TruncatedVlan))?;
                    at += ethernet::VLAN_TAG_LEN;
                }
                ethertype::IPV4 => return self.ipv4(at, self.buf.len(), false),
                ethertype::IPV6 => return self.ipv6(at, self.buf.len(), false),
                ethertype::ARP => return self.arp(at),
                ethertype::MPLS | ethertype::MPLS_MC => return self.mpls(at),
                _ => return Err(stop(at, Reason::UnknownEthertype)),
            }
        }
        Err(stop(at, Reason::TooDeep))
    }

    fn mpls(&mut self, mut at: usize) -> Step {
        for _ in 0..MAX_LABELS {
            let bottom =
                ethernet::mpls_bottom(self.buf, at).map_err(|_| stop(at, Reason::TruncatedMpls))?;
            at += ethernet::MPLS_ENTRY_LEN;
            if bottom {
                return match self.buf.get(at).map(|b| b >> 4) {
                    Some(4) => self.ipv4(at, self.buf.len(), false),
                    Some(6) => self.ipv6(at, self.buf.len(), false),
                    Some(_) => Err(stop(at, Reason::UnknownMplsPayload)),
                    None => Err(stop(at, Reason::TruncatedIp)),
                };
            }
        }
        Err(stop(at, Reason::TooDeep))
    }

    fn arp(&mut self, at: usize) -> Step {
        match arp::is_ethernet_ipv4(&self.buf[at..]) {
            Err(_) => Err(stop(at, Reason::TruncatedArp)),
            Ok(false) => Err(stop(at, Reason::UnsupportedArp)),
            Ok(true) => {
                self.mac(at + arp::SHA_AT, 6);
                self.mac(at + arp::THA_AT, 6);
                self.rewrite_v4(at + arp::SPA_AT);
                self.rewrite_v4(at + arp::TPA_AT);
                end(at + arp::LEN, at + arp::LEN)
            }
        }
    }

    // ---- network layer ----

    fn ip_by_version(&mut self, at: usize, end: usize, quoted: bool) -> Step {
        match self.buf.get(at).map(|b| b >> 4) {
            Some(4) => self.ipv4(at, end, quoted),
            Some(6) => self.ipv6(at, end, quoted),
            Some(_) => Err(stop(at, Reason::MalformedIpv4)),
            None => Err(stop(at, Reason::TruncatedIp)),
        }
    }

    fn ipv4(&mut self, at: usize, end: usize, quoted: bool) -> Step {
        self.descend(at)?;
        let p = ipv4::Packet::new_checked(&self.buf[at..end]).map_err(|e| match e {
            ipv4::Bad::Truncated(_) => stop(at, Reason::TruncatedIpv4),
            ipv4::Bad::Malformed => stop(at, Reason::MalformedIpv4),
        })?;
        let (hl, total, frag, protocol) =
            (p.header_len(), p.total_len(), p.frag_offset(), p.protocol());
        if !quoted && total < hl {
            return Err(stop(at, Reason::MalformedIpv4));
        }
        self.open(Scope {
            start: at,
            end: at + hl,
            checksum_at: at + ipv4::CHECKSUM_AT,
            ..Scope::default()
        })?;
        if hl > ipv4::MIN_LEN {
            self.ipv4_options(at, hl)?;
        }
        let addr_delta = self.rewrite_v4(at + ipv4::SRC_AT) + self.rewrite_v4(at + ipv4::DST_AT);
        let declared = at + total.max(hl);
        let body_end = end.min(declared);
        if frag != 0 {
            return end_at(at + hl, body_end);
        }
        let pseudo = Pseudo::V4 {
            ip: at,
            proto: protocol,
        };
        self.transport(at + hl, body_end, declared, pseudo, addr_delta, quoted)
    }

    /// Rewrites the addresses in the options of the IPv4 header at `at` (length `hl`).
    #[inline(never)]
    fn ipv4_options(&mut self, at: usize, hl: usize) -> Result<(), Stop> {
        let mut opts = Offsets::new();
        let options = &self.buf[at + ipv4::MIN_LEN..at + hl];
        if ipv4::option_addresses(options, |o| opts.push(o)).is_none() || opts.overflow {
            return Err(stop(at, Reason::MalformedIpv4Options));
        }
        for o in opts.iter() {
            self.rewrite_v4(at + ipv4::MIN_LEN + o);
        }
        Ok(())
    }

    fn ipv6(&mut self, at: usize, end: usize, quoted: bool) -> Step {
        self.descend(at)?;
        let p = ipv6::Packet::new_checked(&self.buf[at..end]).map_err(|e| match e {
            ipv6::Bad::Truncated(_) => stop(at, Reason::TruncatedIpv6),
            ipv6::Bad::Malformed => stop(at, Reason::MalformedIpv6),
        })?;
        let mut next = p.next_header();
        let declared = match p.payload_len() {
            0 => end,
            len => at + ipv6::HEADER_LEN + len,
        };
        let end = end.min(declared);
        let src_delta = self.rewrite_v6(at + ipv6::SRC_AT);
        // the pseudo-header takes the final destination: the last hop of a routing header
        // with segments left, else the header's destination
        let mut dst = (at + ipv6::DST_AT, self.rewrite_v6(at + ipv6::DST_AT));
        let mut pos = at + ipv6::HEADER_LEN;
        for _ in 0..MAX_EXT {
            match next {
                proto::HOPOPT | proto::DSTOPTS | proto::ROUTING | proto::FRAGMENT | proto::AH => {
                    let ext = ipv6::Ext::parse(next, self.buf.get(pos..end).unwrap_or(&[]))
                        .map_err(|_| stop(pos, Reason::TruncatedIpv6Ext))?;
                    if next == proto::FRAGMENT && self.buf[pos + 2..pos + 4] != [0, 0] {
                        let offset =
                            u16::from_be_bytes([self.buf[pos + 2], self.buf[pos + 3]]) >> 3;
                        if offset != 0 {
                            return end_at(pos + ext.len, end);
                        }
                    }
                    if let Some(last_hop) = self.ext_addresses(next, pos, ext.len)? {
                        dst = last_hop;
                    }
                    pos += ext.len;
                    next = ext.next;
                }
                proto::ESP | proto::NONE => return end_at(pos, end),
                proto::MOBILITY | proto::HIP | proto::SHIM6 => {
                    return Err(stop(pos, Reason::UnknownIpv6Ext))
                }
                _ => {
                    let pseudo = Pseudo::V6 {
                        src: at + ipv6::SRC_AT,
                        dst: dst.0,
                        proto: next,
                    };
                    let addr_delta = src_delta + dst.1;
                    return self.transport(pos, end, declared, pseudo, addr_delta, quoted);
                }
            }
        }
        Err(stop(pos, Reason::TooDeep))
    }

    /// Rewrites the addresses inside an extension header (home address option, routing).
    /// Returns the offset of a routing header's final destination, with the checksum delta
    /// of its rewrite, when segments are left.
    fn ext_addresses(
        &mut self,
        kind: u8,
        pos: usize,
        len: usize,
    ) -> Result<Option<(usize, u64)>, Stop> {
        let hdr = &self.buf[pos..pos + len];
        let mut found = Offsets::new();
        let parsed = match kind {
            proto::HOPOPT | proto::DSTOPTS => {
                ipv6::home_addresses(hdr, |o| found.push(o)).ok_or(Reason::MalformedIpv6Ext)
            }
            proto::ROUTING => {
                ipv6::routing_addresses(hdr, |o| found.push(o)).ok_or(Reason::UnknownRoutingType)
            }
            _ => Ok(()),
        };
        match parsed {
            Err(reason) => Err(stop(pos, reason)),
            Ok(()) if found.overflow => Err(stop(pos, Reason::MalformedIpv6Ext)),
            Ok(()) => {
                let last_hop = match kind {
                    proto::ROUTING => ipv6::routing_final(&self.buf[pos..pos + len]),
                    _ => None,
                };
                let mut found_last = None;
                for o in found.iter() {
                    let d = self.rewrite_v6(pos + o);
                    if Some(o) == last_hop {
                        found_last = Some((pos + o, d));
                    }
                }
                Ok(found_last)
            }
        }
    }

    // ---- transport layer ----

    fn transport(
        &mut self,
        at: usize,
        end: usize,
        declared: usize,
        pseudo: Pseudo,
        addr_delta: u64,
        quoted: bool,
    ) -> Step {
        let protocol = match pseudo {
            Pseudo::V4 { proto, .. } | Pseudo::V6 { proto, .. } => proto,
            Pseudo::None => return end_at(at, end),
        };
        match protocol {
            proto::IPIP => self.ipv4(at, end, quoted),
            proto::IPV6 => self.ipv6(at, end, quoted),
            proto::GRE | proto::ETHERIP | proto::L2TP => Err(stop(at, Reason::UnknownTunnel)),
            _ if quoted => self.quoted_transport(protocol, at, end, declared, pseudo, addr_delta),
            proto::TCP => self.tcp(at, end, declared, pseudo, addr_delta),
            proto::UDP => self.udp(at, end, declared, pseudo, addr_delta),
            proto::ICMP if matches!(pseudo, Pseudo::V4 { .. }) => self.icmp4(at, end, declared),
            proto::ICMPV6 if matches!(pseudo, Pseudo::V6 { .. }) => {
                self.icmp6(at, end, declared, pseudo, addr_delta)
            }
            _ => end_at(at, end),
        }
    }

    /// The transport header of a packet quoted in an ICMP error: often only its first 8
    /// bytes are there. Its checksum is kept right where the header is whole.
    fn quoted_transport(
        &mut self,
        protocol: u8,
        at: usize,
        end: usize,
        declared: usize,
        pseudo: Pseudo,
        d: u64,
    ) -> Step {
        let first8 = end_at((at + icmp::HEADER_LEN).min(end), end);
        match protocol {
            proto::TCP => match tcp::header_len(&self.buf[at..end]) {
                Ok(_) => self.tcp(at, end, declared, pseudo, d),
                Err(_) => first8,
            },
            proto::UDP if end - at >= udp::HEADER_LEN => self.udp(at, end, declared, pseudo, d),
            proto::ICMP | proto::ICMPV6 if end - at >= icmp::HEADER_LEN => {
                self.open_transport(
                    at,
                    declared,
                    icmp::CHECKSUM_AT,
                    pseudo_of_icmp(pseudo),
                    d,
                    false,
                )?;
                first8
            }
            _ => first8,
        }
    }

    fn tcp(&mut self, at: usize, end: usize, declared: usize, pseudo: Pseudo, d: u64) -> Step {
        let hl = tcp::header_len(&self.buf[at..end]).map_err(|e| match e {
            tcp::Bad::Truncated(_) => stop(at, Reason::TruncatedTcp),
            tcp::Bad::Malformed => stop(at, Reason::MalformedTcp),
        })?;
        self.open_transport(at, declared, tcp::CHECKSUM_AT, pseudo, d, false)?;
        end_at(at + hl, end)
    }

    fn udp(&mut self, at: usize, end: usize, declared: usize, pseudo: Pseudo, d: u64) -> Step {
        let sum = udp::checksum(&self.buf[at..end]).map_err(|_| stop(at, Reason::TruncatedUdp))?;
        let optional = matches!(pseudo, Pseudo::V4 { .. }) && sum == 0;
        if !optional {
            self.open_transport(at, declared, udp::CHECKSUM_AT, pseudo, d, true)?;
        }
        end_at(at + udp::HEADER_LEN, end)
    }

    fn icmp4(&mut self, at: usize, end: usize, declared: usize) -> Step {
        let kind = icmp::kind(&self.buf[at..end]).map_err(|_| stop(at, Reason::TruncatedIcmp))?;
        self.open_transport(at, declared, icmp::CHECKSUM_AT, Pseudo::None, 0, false)?;
        let body = at + icmp::HEADER_LEN;
        if kind == 5 {
            self.rewrite_v4(at + 4); // redirect: the gateway
        }
        match kind {
            k if icmp::v4_quotes_packet(k) => self.ip_by_version_v(body, end, 4),
            // router advertisement and the address mask reply carry addresses in the body
            9 | 10 | 17 | 18 => end_at(body, body),
            _ => end_at(body, end),
        }
    }

    fn icmp6(&mut self, at: usize, end: usize, declared: usize, pseudo: Pseudo, d: u64) -> Step {
        let kind = icmp::kind(&self.buf[at..end]).map_err(|_| stop(at, Reason::TruncatedIcmp))?;
        self.open_transport(at, declared, icmp::CHECKSUM_AT, pseudo, d, false)?;
        let body = at + icmp::HEADER_LEN;
        let targets = match kind {
            k if icmp::v6_quotes_packet(k) => return self.ip_by_version_v(body, end, 6),
            0..=129 => return end_at(body, end),
            130..=132 | 135 | 136 => 1,
            137 => 2,
            _ => 0, // other informational messages carry addresses in their bodies: never kept
        };
        let fixed = body + 16 * targets;
        if fixed > end {
            return Err(stop(at, Reason::TruncatedIcmp));
        }
        for i in 0..targets {
            self.rewrite_v6(body + 16 * i);
        }
        end_at(fixed, fixed)
    }

    /// The packet quoted in an ICMP error; it must be of the same IP version.
    fn ip_by_version_v(&mut self, at: usize, end: usize, version: u8) -> Step {
        match self.buf.get(at).map(|b| b >> 4) {
            Some(v) if v == version && version == 4 => self.ipv4(at, end, true),
            Some(v) if v == version => self.ipv6(at, end, true),
            Some(_) if version == 4 => Err(stop(at, Reason::MalformedIpv4)),
            Some(_) => Err(stop(at, Reason::MalformedIpv6)),
            None => end_at(at, at),
        }
    }

    // ---- rewriting ----

    fn descend(&mut self, at: usize) -> Result<(), Stop> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(stop(at, Reason::TooDeep));
        }
        Ok(())
    }

    fn mac(&mut self, at: usize, len: usize) {
        let field = &mut self.buf[at..at + len];
        match self.policy.mac {
            MacPolicy::Keep => {}
            MacPolicy::Zero => field.fill(0),
            MacPolicy::Scramble(mask) if len == 6 => {
                field.iter_mut().zip(mask).for_each(|(b, m)| *b ^= m)
            }
            MacPolicy::Scramble(_) => field.fill(0),
        }
    }

    /// Rewrites the IPv4 address at `at`; returns the checksum delta of the change.
    #[inline]
    fn rewrite_v4(&mut self, at: usize) -> u64 {
        let old: [u8; 4] = self.buf[at..at + 4].try_into().unwrap_or_default();
        let new = self.rw.v4(old);
        self.write(at, &new)
    }

    /// Rewrites the IPv6 address at `at`; returns the checksum delta of the change.
    fn rewrite_v6(&mut self, at: usize) -> u64 {
        let old: [u8; 16] = self.buf[at..at + 16].try_into().unwrap_or_default();
        let new = self.rw.v6(old);
        self.write(at, &new)
    }

    /// Writes the even-length `new` at `at`, adding the change to every open scope that
    /// covers it. Returns the change as seen from an even offset (for pseudo-headers).
    #[inline]
    fn write(&mut self, at: usize, new: &[u8]) -> u64 {
        self.write_in(self.n_scopes, at, new)
    }

    /// [`Walk::write`] accounting the change in the first `scopes` scopes only.
    #[inline]
    fn write_in(&mut self, scopes: usize, at: usize, new: &[u8]) -> u64 {
        let field = &mut self.buf[at..at + new.len()];
        let d = checksum::words_delta(field, new);
        for s in &mut self.scopes[..scopes] {
            if at >= s.start && at < s.end {
                s.delta += if (at - s.start) % 2 == 1 {
                    u64::from(fold(d).swap_bytes())
                } else {
                    d
                };
            }
        }
        field.copy_from_slice(new);
        d
    }

    fn open(&mut self, scope: Scope) -> Result<(), Stop> {
        let slot = self
            .scopes
            .get_mut(self.n_scopes)
            .ok_or(stop(scope.start, Reason::TooDeep))?;
        *slot = scope;
        self.n_scopes += 1;
        Ok(())
    }

    fn open_transport(
        &mut self,
        at: usize,
        declared: usize,
        checksum_at: usize,
        pseudo: Pseudo,
        addr_delta: u64,
        udp: bool,
    ) -> Result<(), Stop> {
        self.open(Scope {
            start: at,
            end: declared.max(at + checksum_at + 2),
            checksum_at: at + checksum_at,
            pseudo,
            delta: addr_delta,
            udp,
        })
    }

    // ---- the cut and the checksums ----

    fn finish(mut self, step: Step) -> Outcome {
        let (caplen, payload_at, reason) = match step {
            Ok(e) => {
                let payload_end = e.payload_end.clamp(e.payload_at, self.buf.len());
                let caplen = match self.policy.payload {
                    Payload::Drop => e.payload_at,
                    Payload::Keep(n) => payload_end.min(e.payload_at.saturating_add(n)),
                    Payload::Zero => {
                        self.zero(e.payload_at, payload_end);
                        payload_end
                    }
                };
                (caplen, e.payload_at, None)
            }
            Err(s) => (s.at, s.at, Some(s.reason)),
        };
        self.checksums(caplen);
        Outcome {
            caplen,
            payload_at,
            reason,
        }
    }

    fn zero(&mut self, from: usize, to: usize) {
        for s in &mut self.scopes[..self.n_scopes] {
            let (a, b) = (from.max(s.start), to.min(s.end));
            if a < b {
                s.delta += delta(sum_at(&self.buf[a..b], a - s.start), 0);
            }
        }
        self.buf[from..to].fill(0);
    }

    fn checksums(&mut self, caplen: usize) {
        if self.policy.checksums == Checksums::Keep {
            return;
        }
        for i in (0..self.n_scopes).rev() {
            let s = self.scopes[i];
            if s.checksum_at + 2 > caplen {
                continue;
            }
            let value = match self.policy.checksums {
                Checksums::Zero => 0,
                _ if s.end <= caplen => self.full_checksum(&s),
                _ => {
                    let old =
                        u16::from_be_bytes([self.buf[s.checksum_at], self.buf[s.checksum_at + 1]]);
                    checksum::update(old, s.delta)
                }
            };
            let value = if s.udp && value == 0 && self.policy.checksums == Checksums::Fix {
                0xffff
            } else {
                value
            };
            // only the scopes around this one (opened before it) are still to be summed
            self.write_in(i, s.checksum_at, &value.to_be_bytes());
        }
    }

    fn full_checksum(&mut self, s: &Scope) -> u16 {
        let at = s.checksum_at;
        let field = u16::from_be_bytes([self.buf[at], self.buf[at + 1]]);
        // the sum with the field as zero: take the field's value out again
        let total = sum(&self.buf[s.start..s.end]) + u64::from(!field) + self.pseudo_sum(s);
        checksum::finish(total)
    }

    fn pseudo_sum(&self, s: &Scope) -> u64 {
        let len = (s.end - s.start) as u64;
        match s.pseudo {
            Pseudo::None => 0,
            Pseudo::V4 { ip, proto } => {
                sum(&self.buf[ip + ipv4::SRC_AT..ip + ipv4::DST_AT + 4]) + u64::from(proto) + len
            }
            Pseudo::V6 { src, dst, proto } => {
                sum(&self.buf[src..src + 16])
                    + sum(&self.buf[dst..dst + 16])
                    + (len >> 16)
                    + (len & 0xffff)
                    + u64::from(proto)
            }
        }
    }
}

/// ICMP has no pseudo-header; ICMPv6 has one.
fn pseudo_of_icmp(pseudo: Pseudo) -> Pseudo {
    match pseudo {
        Pseudo::V4 { .. } => Pseudo::None,
        other => other,
    }
}

fn end_at(payload_at: usize, payload_end: usize) -> Step {
    end(payload_at, payload_end)
}

#[cfg(test)]
#[path = "walker_tests.rs"]
mod tests;
