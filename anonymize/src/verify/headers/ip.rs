//! IPv4 with its options, IPv6 with its extension headers, and the protocol that follows.

use lander_trace::proto::ip as proto;

use super::Reader;

/// IPv4 option types.
mod opt4 {
    pub const RR: u8 = 7;
    pub const TS: u8 = 68;
    pub const TRACEROUTE: u8 = 82;
    pub const LSRR: u8 = 131;
    pub const SSRR: u8 = 137;
    pub const ROUTER_ALERT: u8 = 148;
}

/// IPv6 hop-by-hop and destination option types.
mod opt6 {
    pub const PAD1: u8 = 0;
    pub const PADN: u8 = 1;
    pub const ROUTER_ALERT: u8 = 5;
    pub const JUMBO: u8 = 0xc2;
    pub const HOME_ADDRESS: u8 = 0xc9;
}

/// Extension headers followed at most.
const MAX_EXT: usize = 16;

impl Reader<'_, '_> {
    pub(super) fn ipv4(&mut self, at: usize) {
        let Some(vihl) = self.u8(at) else {
            return self.l.stop(at);
        };
        let hl = usize::from(vihl & 0x0f) * 4;
        if vihl >> 4 != 4 || hl < 20 {
            return self.l.stop(at);
        }
        self.l.field(at, 12);
        self.l.addr4(at + 12);
        self.l.addr4(at + 16);
        self.ipv4_options(at + 20, at + hl);
        if !self.has(at, hl) {
            return self.l.stop(at + hl);
        }
        let frag_offset = self.u16(at + 6).unwrap_or(0) & 0x1fff;
        if frag_offset != 0 {
            return self.l.payload(at + hl);
        }
        let p = self.b[at + 9];
        self.protocol(p, at + hl);
    }

    fn ipv4_options(&mut self, at: usize, end: usize) {
        self.options(at, end, Self::ipv4_option);
    }

    fn ipv4_option(&mut self, kind: u8, at: usize, len: usize) {
        match kind {
            opt4::RR | opt4::LSRR | opt4::SSRR if len >= 3 => {
                self.l.field(at, 3);
                let mut a = at + 3;
                while a + 4 <= at + len {
                    self.l.addr4(a);
                    a += 4;
                }
            }
            opt4::TS if len >= 4 => self.ipv4_timestamp(at, len),
            opt4::ROUTER_ALERT if len == 4 => self.l.field(at, 4),
            opt4::TRACEROUTE if len == 12 => self.l.note4(at + 8),
            _ => {}
        }
    }

    /// Timestamp option: flag 0 holds timestamps only, flags 1 and 3 address/timestamp pairs.
    fn ipv4_timestamp(&mut self, at: usize, len: usize) {
        let flag = self.b[at + 3] & 0x0f;
        let step = match flag {
            0 => 4,
            1 | 3 => 8,
            _ => return,
        };
        self.l.field(at, 4);
        let mut a = at + 4;
        while a + step <= at + len {
            if step == 8 {
                self.l.addr4(a);
                self.l.field(a + 4, 4);
            } else {
                self.l.field(a, 4);
            }
            a += step;
        }
    }

    pub(super) fn ipv6(&mut self, at: usize) {
        if self.u8(at).map(|b| b >> 4) != Some(6) {
            return self.l.stop(at);
        }
        self.l.field(at, 8);
        self.l.addr6(at + 8);
        self.l.addr6(at + 24);
        if !self.has(at, 40) {
            return self.l.stop(at + 40);
        }
        let next = self.b[at + 6];
        self.ipv6_chain(next, at + 40);
    }

    fn ipv6_chain(&mut self, mut next: u8, mut at: usize) {
        for _ in 0..MAX_EXT {
            match next {
                proto::HOPOPT | proto::DSTOPTS | proto::ROUTING | proto::FRAGMENT => {}
                proto::AH => {}
                _ => return self.protocol(next, at),
            }
            let Some(len) = self.ext_len(next, at) else {
                return self.l.stop(at);
            };
            match next {
                proto::HOPOPT | proto::DSTOPTS => self.ipv6_options(at + 2, at + len),
                proto::ROUTING => {
                    if !self.routing(at, len) {
                        return self.l.stop(at);
                    }
                }
                proto::FRAGMENT => {
                    self.l.field(at, 8);
                    if self.u16(at + 2).unwrap_or(0) >> 3 != 0 {
                        return self.l.payload(at + 8);
                    }
                }
                _ => self.l.field(at, len), // AH: SPI, sequence, ICV
            }
            self.l.field(at, 2);
            next = self.b[at];
            at += len;
        }
        self.l.stop(at)
    }

    /// Length of the extension header at `at`, when it is all there.
    fn ext_len(&self, kind: u8, at: usize) -> Option<usize> {
        let units = usize::from(self.u8(at + 1)?);
        let len = match kind {
            proto::FRAGMENT => 8,
            proto::AH => (units + 2) * 4,
            _ => (units + 1) * 8,
        };
        self.has(at, len).then_some(len)
    }

    fn ipv6_options(&mut self, mut at: usize, end: usize) {
        while at < end {
            let kind = self.b[at];
            if kind == opt6::PAD1 {
                self.l.pad(at, 1);
                at += 1;
                continue;
            }
            let len = self.u8(at + 1).map_or(usize::MAX, usize::from);
            if at + 2 + len > end {
                return; // malformed: the rest stays unknown
            }
            match (kind, len) {
                (opt6::PADN, _) => self.l.pad(at, 2), // contents must be zero
                (opt6::ROUTER_ALERT, 2) | (opt6::JUMBO, 4) => self.l.field(at, 2 + len),
                (opt6::HOME_ADDRESS, 16) => {
                    self.l.field(at, 2);
                    self.l.addr6(at + 2);
                }
                (_, 16) => self.l.note6(at + 2),
                (_, 4) => self.l.note4(at + 2),
                _ => {}
            }
            at += 2 + len;
        }
    }

    /// A routing header of `len` bytes: type 0 and 2 hold addresses, type 4 (SRH) a segment
    /// list and TLVs. False for types whose layout is not known.
    fn routing(&mut self, at: usize, len: usize) -> bool {
        let kind = self.b[at + 2];
        let end = at + len;
        match kind {
            0 | 2 => {
                self.l.field(at, 8);
                let mut a = at + 8;
                while a + 16 <= end {
                    self.l.addr6(a);
                    a += 16;
                }
                true
            }
            4 => {
                self.l.field(at, 8);
                let segments = usize::from(self.b[at + 4]) + 1;
                let mut a = at + 8;
                for _ in 0..segments {
                    if a + 16 > end {
                        break;
                    }
                    self.l.addr6(a);
                    a += 16;
                }
                self.ipv6_options(a, end); // TLVs share the option layout: Pad1, PadN
                true
            }
            _ => false,
        }
    }

    /// The protocol `p` at `at` (after an IP header or extension chain).
    pub(super) fn protocol(&mut self, p: u8, at: usize) {
        match p {
            proto::TCP => self.tcp(at),
            proto::UDP => self.udp(at),
            proto::ICMP => self.icmp4(at),
            proto::ICMPV6 => self.icmp6(at),
            proto::IPIP if self.enter(at) => self.ipv4(at),
            proto::IPV6 if self.enter(at) => self.ipv6(at),
            proto::GRE if self.enter(at) => self.gre(at),
            proto::ESP => {
                self.l.field(at, 8);
                self.l.payload(at + 8)
            }
            proto::AH => self.ipv4_ah(at),
            proto::NONE => self.l.payload(at),
            proto::IPIP | proto::IPV6 | proto::GRE => {} // too deep: stopped by `enter`
            proto::HOPOPT | proto::ROUTING | proto::FRAGMENT | proto::DSTOPTS => {
                self.l.stop(at) // extension headers only after IPv6
            }
            _ => self.l.payload(at), // an unknown transport: its bytes are payload
        }
    }

    /// AH after an IPv4 header.
    fn ipv4_ah(&mut self, at: usize) {
        match self.ext_len(proto::AH, at) {
            Some(len) => {
                self.l.field(at, len);
                let next = self.b[at];
                self.protocol(next, at + len)
            }
            None => self.l.stop(at),
        }
    }
}
