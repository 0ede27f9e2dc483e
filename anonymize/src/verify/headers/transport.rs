//! TCP with its options, UDP (and the tunnels found by port), ICMP, ICMPv6 and ARP.

use super::Reader;

/// TCP option kinds.
mod tcpopt {
    pub const MSS: u8 = 2;
    pub const WSCALE: u8 = 3;
    pub const SACK_PERMITTED: u8 = 4;
    pub const SACK: u8 = 5;
    pub const TIMESTAMPS: u8 = 8;
    pub const MPTCP: u8 = 30;
    /// MPTCP subtype ADD_ADDR.
    pub const ADD_ADDR: u8 = 3;
}

/// UDP ports of the tunnels followed.
mod port {
    pub const L2TP: u16 = 1701;
    pub const GTP_U: u16 = 2152;
    pub const VXLAN: u16 = 4789;
    pub const VXLAN_GPE: u16 = 4790;
    pub const GENEVE: u16 = 6081;
}

/// ICMP types whose body quotes the offending datagram.
fn icmp4_quotes(t: u8) -> bool {
    matches!(t, 3 | 4 | 5 | 11 | 12)
}

impl Reader<'_, '_> {
    pub(super) fn tcp(&mut self, at: usize) {
        let Some(off) = self.u8(at + 12) else {
            self.l.field(at, 20);
            return self.l.stop(at);
        };
        let hl = usize::from(off >> 4) * 4;
        self.l.field(at, 20);
        if hl < 20 {
            return self.l.stop(at + 20);
        }
        self.tcp_options(at + 20, (at + hl).min(self.b.len()));
        self.l.payload(at + hl);
    }

    fn tcp_options(&mut self, at: usize, end: usize) {
        self.options(at, end, Self::tcp_option);
    }

    fn tcp_option(&mut self, kind: u8, at: usize, len: usize) {
        let known = match kind {
            tcpopt::MSS => len == 4,
            tcpopt::WSCALE => len == 3,
            tcpopt::SACK_PERMITTED => len == 2,
            tcpopt::SACK => len >= 10 && (len - 2).is_multiple_of(8),
            tcpopt::TIMESTAMPS => len == 10,
            tcpopt::MPTCP => return self.mptcp(at, len),
            _ => false,
        };
        if known {
            self.l.field(at, len);
        } else if len == 6 || len == 8 {
            self.l.note4(at + 2);
        } else if len == 18 || len == 20 {
            self.l.note6(at + 2);
        }
    }

    /// MPTCP: ADD_ADDR carries an address (IPv4 for lengths 8, 10, 16, 18; IPv6 for 20,
    /// 22, 28, 30, with a port and/or a truncated HMAC); other subtypes are not allowed out.
    fn mptcp(&mut self, at: usize, len: usize) {
        let subtype = self.u8(at + 2).map_or(0xff, |b| b >> 4);
        if subtype != tcpopt::ADD_ADDR || len < 8 {
            return;
        }
        match len {
            8 | 10 | 16 | 18 => {
                self.l.field(at, len);
                self.l.addr4(at + 4);
            }
            20 | 22 | 28 | 30 => {
                self.l.field(at, len);
                self.l.addr6(at + 4);
            }
            _ => {}
        }
    }

    pub(super) fn udp(&mut self, at: usize) {
        self.l.field(at, 8);
        let (Some(sport), Some(dport)) = (self.u16(at), self.u16(at + 2)) else {
            return self.l.stop(at);
        };
        if !self.has(at, 8) {
            return self.l.stop(at);
        }
        let either = |p: u16| sport == p || dport == p;
        let inner = at + 8;
        let tunnel: Option<fn(&mut Self, usize)> = if either(port::VXLAN) {
            Some(Self::vxlan)
        } else if either(port::VXLAN_GPE) {
            Some(Self::vxlan_gpe)
        } else if either(port::GENEVE) {
            Some(Self::geneve)
        } else if either(port::GTP_U) {
            Some(Self::gtp_u)
        } else if either(port::L2TP) {
            Some(Self::l2tp)
        } else {
            None
        };
        match tunnel {
            Some(inside) if self.has(inner, 1) => {
                if self.enter(inner) {
                    inside(self, inner)
                }
            }
            _ => self.l.payload(inner),
        }
    }

    pub(super) fn icmp4(&mut self, at: usize) {
        let Some(t) = self.u8(at) else {
            return self.l.stop(at);
        };
        self.l.field(at, 8);
        match t {
            5 => {
                self.l.addr4(at + 4); // redirect: the gateway
                self.quote(at + 8, false)
            }
            _ if icmp4_quotes(t) => self.quote(at + 8, false),
            9 => self.router_advertisement(at),
            13 | 14 => {
                self.l.field(at + 8, 12);
                self.l.payload(at + 20)
            }
            _ => self.l.payload(at + 8),
        }
    }

    /// ICMP router advertisement: (address, preference) pairs of `entry size` words.
    fn router_advertisement(&mut self, at: usize) {
        let n = self.u8(at + 4).map_or(0, usize::from);
        let size = self.u8(at + 5).map_or(0, usize::from) * 4;
        if size < 8 {
            return self.l.payload(at + 8);
        }
        let mut a = at + 8;
        for _ in 0..n {
            if !self.has(a, size) {
                break;
            }
            self.l.addr4(a);
            self.l.field(a + 4, size - 4);
            a += size;
        }
        self.l.payload(a)
    }

    /// The datagram quoted by an ICMP error.
    fn quote(&mut self, at: usize, v6: bool) {
        if !self.has(at, 1) {
            return self.l.payload(at);
        }
        if !self.enter(at) {
            return;
        }
        match v6 {
            false => self.ipv4(at),
            true => self.ipv6(at),
        }
    }

    pub(super) fn icmp6(&mut self, at: usize) {
        let Some(t) = self.u8(at) else {
            return self.l.stop(at);
        };
        self.l.field(at, 8);
        match t {
            1..=4 => self.quote(at + 8, true),
            130..=132 => {
                self.l.addr6(at + 8);
                self.l.payload(at + 24)
            }
            133 => self.nd_options(at + 8),
            134 => {
                self.l.field(at + 8, 8);
                self.nd_options(at + 16)
            }
            135 | 136 => {
                self.l.addr6(at + 8);
                self.nd_options(at + 24)
            }
            137 => {
                self.l.addr6(at + 8);
                self.l.addr6(at + 24);
                self.nd_options(at + 40)
            }
            143 => self.mld2_report(at),
            _ => self.l.payload(at + 8),
        }
    }

    /// Neighbour discovery options: link-layer addresses, prefixes, MTU, RDNSS, and the
    /// redirected header (a quote).
    fn nd_options(&mut self, mut at: usize) {
        while let (Some(kind), Some(units)) = (self.u8(at), self.u8(at + 1)) {
            let len = usize::from(units) * 8;
            if len == 0 || !self.has(at, len) {
                return self.l.stop(at);
            }
            match kind {
                1 | 2 | 5 => self.l.field(at, len),
                3 if len == 32 => {
                    self.l.field(at, 16);
                    self.l.addr6(at + 16);
                }
                4 => {
                    self.l.field(at, 8);
                    return self.quote(at + 8, true);
                }
                25 if len >= 24 => {
                    self.l.field(at, 8);
                    let mut a = at + 8;
                    while a + 16 <= at + len {
                        self.l.addr6(a);
                        a += 16;
                    }
                }
                _ => {}
            }
            at += len;
        }
        self.l.payload(at)
    }

    /// MLDv2 report: records of a multicast address and its sources.
    fn mld2_report(&mut self, at: usize) {
        let n = self.u16(at + 6).map_or(0, usize::from);
        let mut a = at + 8;
        for _ in 0..n {
            let (Some(aux), Some(sources)) = (self.u8(a + 1), self.u16(a + 2)) else {
                break;
            };
            let len = 20 + usize::from(sources) * 16 + usize::from(aux) * 4;
            if !self.has(a, len) {
                break;
            }
            self.l.field(a, 4);
            for i in 0..=usize::from(sources) {
                self.l.addr6(a + 4 + i * 16);
            }
            a += len;
        }
        self.l.payload(a)
    }

    pub(super) fn arp(&mut self, at: usize) {
        if !self.has(at, 8) {
            return self.l.stop(at);
        }
        self.l.field(at, 8);
        let hlen = usize::from(self.b[at + 4]);
        let plen = usize::from(self.b[at + 5]);
        let mut a = at + 8;
        for _ in 0..2 {
            self.l.field(a, hlen);
            a += hlen;
            match plen {
                4 => self.l.addr4(a),
                16 => self.l.addr6(a),
                _ => return self.l.stop(at),
            }
            a += plen;
        }
        self.l.payload(a)
    }
}
