//! The verifier's own header recogniser. It shares no code with the scrubber's walker: it
//! reads a packet to learn where addresses sit and which bytes are header fields it
//! understands, never rewrites anything, and is generous where the walker must be strict
//! (it also collects addresses from options the output may not carry, and from every
//! offset where an IPv4 or IPv6 header plausibly sits, see `scan`).
//!
//! Link layers: Ethernet (802.3 with SNAP, VLAN/QinQ tags), MPLS (payload decided by
//! evidence), PPPoE sessions, Linux cooked v1/v2, BSD/OpenBSD loopback, raw IP. Network:
//! IPv4 with options, IPv6 with extension headers, ARP. Transport: TCP with options, UDP,
//! ICMP and ICMPv6 (quotes, redirects, router advertisements, neighbour discovery, MLD).
//! Tunnels: IP-in-IP, 6in4, GRE (key, sequence, checksum; IPv4, IPv6, Ethernet, MPLS,
//! ERSPAN I/II/III, PPP), VXLAN(-GPE), Geneve, GTP-U, L2TPv2 data.
//!
//! Every loop advances by at least one byte and nesting is bounded, so a packet costs at
//! most a few passes over its bytes.

mod ip;
pub(crate) mod scan;
mod transport;
mod tunnel;

use lander_trace::proto::ethertype;

use super::layout::{Class, Layout};

/// Link types, numbered as `LINKTYPE_*`.
mod link {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW: u32 = 101;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const LINUX_SLL2: u32 = 276;
}

/// Nesting of encapsulations and quotes followed at most.
const MAX_DEPTH: u8 = 8;
/// VLAN tags followed at most.
const MAX_TAGS: usize = 8;
/// MPLS labels followed at most.
const MAX_LABELS: usize = 16;

/// What follows an MPLS label stack (a recorded choice).
mod mpls_payload {
    pub const IPV4: u8 = 1;
    pub const IPV6: u8 = 2;
    pub const CONTROL_WORD: u8 = 3;
    pub const ETHERNET: u8 = 4;
    pub const NONE: u8 = 5;
}

/// Reads `data` of link type `link` into `layout` (reset by the caller).
pub fn recognise(link: u32, data: &[u8], layout: &mut Layout) {
    let mut r = Reader {
        b: data,
        l: layout,
        depth: 0,
    };
    r.link(link);
}

/// One packet being read.
pub(super) struct Reader<'a, 'l> {
    pub(super) b: &'a [u8],
    pub(super) l: &'l mut Layout,
    pub(super) depth: u8,
}

impl Reader<'_, '_> {
    /// Walks a kind-length option list (IPv4 and TCP share its shape: 0 ends it, 1 is one
    /// byte of padding), handing each whole option to `each(kind, at, len)`. A malformed
    /// option, or the end-of-list byte, leaves the rest unknown (it must then be zero).
    fn options(&mut self, mut at: usize, end: usize, each: fn(&mut Self, u8, usize, usize)) {
        const EOL: u8 = 0;
        const NOP: u8 = 1;
        let end = end.min(self.b.len());
        while at < end {
            let kind = self.b[at];
            if kind == EOL {
                return;
            }
            if kind == NOP {
                self.l.pad(at, 1);
                at += 1;
                continue;
            }
            let len = self.u8(at + 1).map_or(0, usize::from);
            if len < 2 || at + len > end {
                return;
            }
            each(self, kind, at, len);
            at += len;
        }
    }

    /// Whether `n` bytes are there at `at`.
    #[inline]
    pub(super) fn has(&self, at: usize, n: usize) -> bool {
        at.checked_add(n).is_some_and(|end| end <= self.b.len())
    }

    #[inline]
    pub(super) fn u8(&self, at: usize) -> Option<u8> {
        self.b.get(at).copied()
    }

    #[inline]
    pub(super) fn u16(&self, at: usize) -> Option<u16> {
        let s = self.b.get(at..at.checked_add(2)?)?;
        Some(u16::from_be_bytes([s[0], s[1]]))
    }

    /// Enters one more level of nesting; false when too deep.
    pub(super) fn enter(&mut self, at: usize) -> bool {
        if self.depth >= MAX_DEPTH {
            self.l.stop(at);
            return false;
        }
        self.depth += 1;
        true
    }

    fn link(&mut self, link: u32) {
        match link {
            link::ETHERNET => self.ethernet(0),
            link::RAW | link::IPV4 | link::IPV6 => self.ip_by_version(0),
            link::NULL | link::LOOP => self.loopback(),
            link::LINUX_SLL => self.sll(),
            link::LINUX_SLL2 => self.sll2(),
            _ => self.l.stop(0),
        }
    }

    /// IPv4 or IPv6 by the version nibble.
    pub(super) fn ip_by_version(&mut self, at: usize) {
        match self.u8(at).map(|b| b >> 4) {
            Some(4) => self.ipv4(at),
            Some(6) => self.ipv6(at),
            _ => self.l.stop(at),
        }
    }

    fn loopback(&mut self) {
        let Some(family) = self.b.get(..4) else {
            return self.l.stop(0);
        };
        let le = u32::from_le_bytes([family[0], family[1], family[2], family[3]]);
        let be = u32::from_be_bytes([family[0], family[1], family[2], family[3]]);
        self.l.field(0, 4);
        let v6 = |f: u32| matches!(f, 10 | 24 | 28 | 30);
        match (le, be) {
            (2, _) | (_, 2) => self.ipv4(4),
            (f, _) if v6(f) => self.ipv6(4),
            (_, f) if v6(f) => self.ipv6(4),
            _ => self.l.stop(4),
        }
    }

    /// Linux cooked v1: packet type, ARPHRD type, address length, 8 address bytes, protocol.
    fn sll(&mut self) {
        if !self.has(0, 16) {
            return self.l.stop(0);
        }
        self.l.field(0, 6);
        let halen = self.u16(4).unwrap_or(0);
        self.sll_address(6, halen.into());
        self.l.field(14, 2);
        let proto = self.u16(14).unwrap_or(0);
        self.ethertype(proto, 16);
    }

    /// Linux cooked v2: protocol, reserved, ifindex, ARPHRD, packet type, address length,
    /// 8 address bytes.
    fn sll2(&mut self) {
        if !self.has(0, 20) {
            return self.l.stop(0);
        }
        self.l.field(0, 12);
        let halen = self.u8(11).unwrap_or(0);
        self.sll_address(12, halen.into());
        let proto = self.u16(0).unwrap_or(0);
        self.ethertype(proto, 20);
    }

    /// The 8-byte address field of a cooked header: a 4-byte address is an IPv4 address
    /// (tunnel interfaces); anything else is a hardware address.
    fn sll_address(&mut self, at: usize, halen: usize) {
        match halen {
            4 => {
                self.l.addr4(at);
                self.l.mark(at + 4, 4, Class::Unknown);
            }
            _ => self.l.field(at, 8),
        }
    }

    pub(super) fn ethernet(&mut self, at: usize) {
        if !self.has(at, 14) {
            return self.l.stop(at);
        }
        self.l.field(at, 14);
        let et = self.u16(at + 12).unwrap_or(0);
        if et < 0x0600 {
            return self.llc(at + 14);
        }
        self.ethertype(et, at + 14);
    }

    /// 802.2 LLC; SNAP carries an EtherType.
    fn llc(&mut self, at: usize) {
        if self.b.get(at..at + 3) == Some(&[0xaa, 0xaa, 0x03][..]) && self.has(at, 8) {
            self.l.field(at, 8);
            let et = self.u16(at + 6).unwrap_or(0);
            return self.ethertype(et, at + 8);
        }
        self.l.stop(at)
    }

    pub(super) fn ethertype(&mut self, et: u16, at: usize) {
        match et {
            ethertype::IPV4 => self.ipv4(at),
            ethertype::IPV6 => self.ipv6(at),
            ethertype::ARP => self.arp(at),
            ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD => self.vlan(at),
            ethertype::MPLS | ethertype::MPLS_MC => self.mpls(at),
            ethertype::PPPOE_SESSION => self.pppoe(at),
            ethertype::TEB if self.enter(at) => self.ethernet(at),
            _ => self.l.stop(at),
        }
    }

    fn vlan(&mut self, mut at: usize) {
        for _ in 0..MAX_TAGS {
            if !self.has(at, 4) {
                return self.l.stop(at);
            }
            self.l.field(at, 4);
            let et = self.u16(at + 2).unwrap_or(0);
            at += 4;
            if !matches!(et, ethertype::VLAN | ethertype::QINQ | ethertype::QINQ_OLD) {
                return self.ethertype(et, at);
            }
        }
        self.l.stop(at)
    }

    fn mpls(&mut self, mut at: usize) {
        for _ in 0..MAX_LABELS {
            if !self.has(at, 4) {
                return self.l.stop(at);
            }
            self.l.field(at, 4);
            let bottom = self.b[at + 2] & 1 == 1;
            at += 4;
            if bottom {
                return self.mpls_payload(at);
            }
        }
        self.l.stop(at)
    }

    /// What follows the label stack, by evidence: an IPv4 header whose length fields and
    /// checksum agree, an IPv6 header whose payload length fits, a control word (first
    /// nibble 0) before an Ethernet pseudowire, or an Ethernet frame with a known EtherType.
    fn mpls_payload(&mut self, at: usize) {
        let b = self.b;
        let choice = self.l.choose(|| mpls_evidence(&b[at.min(b.len())..]));
        if !self.enter(at) {
            return;
        }
        match choice {
            mpls_payload::IPV4 => self.ipv4(at),
            mpls_payload::IPV6 => self.ipv6(at),
            mpls_payload::CONTROL_WORD => {
                self.l.field(at, 4);
                self.ethernet(at + 4)
            }
            mpls_payload::ETHERNET => self.ethernet(at),
            _ => self.l.stop(at),
        }
    }
}

/// What the bytes after an MPLS label stack most plausibly are.
fn mpls_evidence(b: &[u8]) -> u8 {
    let Some(&first) = b.first() else {
        return mpls_payload::NONE;
    };
    if first >> 4 == 4 && scan::plausible_v4(b, usize::MAX) {
        return mpls_payload::IPV4;
    }
    if first >> 4 == 6 && scan::plausible_v6(b, usize::MAX) {
        return mpls_payload::IPV6;
    }
    if first >> 4 == 0 {
        return mpls_payload::CONTROL_WORD;
    }
    let known = |et: u16| {
        matches!(
            et,
            ethertype::IPV4
                | ethertype::IPV6
                | ethertype::ARP
                | ethertype::VLAN
                | ethertype::QINQ
                | ethertype::MPLS
        )
    };
    match b.get(12..14) {
        Some(et) if known(u16::from_be_bytes([et[0], et[1]])) => mpls_payload::ETHERNET,
        _ => mpls_payload::NONE,
    }
}

#[cfg(test)]
mod tests;
