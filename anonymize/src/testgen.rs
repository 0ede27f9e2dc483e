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
//! window of kept bytes can spell a marker or a payload run. After a walk with [`Payload::Drop`](crate::walker::Payload::Drop) and the MAC
//! addresses zeroed, [`Hostile::leaks`] must find nothing.

use std::net::{Ipv4Addr, Ipv6Addr};

use lander_trace::proto::{ethertype, ip as proto};
use lander_trace::synth::build::{self, V4Opts};

use crate::walker::link;

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

    fn byte(&mut self) -> u8 {
        let b = self.choices.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn chance(&mut self, in_256: u8) -> bool {
        self.byte() < in_256
    }

    /// `n` bytes of a kept field: never a marker byte (`0x0a`, `0x63`, `0x50..=0x5f`) nor
    /// a payload byte (`0xe0..=0xef`), so no window of kept bytes spells either, whatever
    /// the choices (a fuzzer that sees the comparisons would otherwise copy a payload run
    /// into a sequence number).
    fn num(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| match self.byte() {
                b @ (0x0a | 0x63 | 0x50..=0x5f | 0xe0..=0xef) => b ^ 0x40,
                b => b,
            })
            .collect()
    }

    fn v4(&mut self) -> [u8; 4] {
        let m = [
            10,
            99,
            MARKER_LOW | (self.byte() & 15),
            MARKER_LOW | (self.byte() & 15),
        ];
        self.v4.push(m);
        m
    }

    fn v6(&mut self) -> [u8; 16] {
        let mut m = [MARKER_LOW; 16];
        m[..2].copy_from_slice(&[0xfd, 0x63]);
        for b in &mut m[2..] {
            *b |= self.byte() & 15;
        }
        self.v6.push(m);
        m
    }

    /// `n` bytes the walker must not keep: markers end to end.
    fn hidden(&mut self, n: usize) -> Vec<u8> {
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
    fn payload(&mut self) -> Vec<u8> {
        let n = 8 + self.below(40);
        self.seed ^= u64::from(self.byte()) << 17 ^ self.payloads.len() as u64;
        let p: Vec<u8> = (0..n)
            .map(|_| PAYLOAD_HIGH | (splitmix(&mut self.seed) >> 60) as u8)
            .collect();
        self.payloads.push(p.clone());
        p
    }

    fn nested(&mut self) -> bool {
        self.depth < MAX_DEPTH
    }

    // ---- link layers ----

    fn link(&mut self, link: u32) -> Vec<u8> {
        match link {
            link::ETHERNET => self.ethernet(),
            link::IPV4 => self.ipv4(),
            link::IPV6 => self.ipv6(),
            link::NULL => [&[2u8, 0, 0, 0][..], &self.ipv4()].concat(),
            link::LOOP => [&[0u8, 0, 0, 24][..], &self.ipv6()].concat(),
            link::LINUX_SLL | link::LINUX_SLL2 => self.sll(link == link::LINUX_SLL2),
            _ => self.ip().1,
        }
    }

    fn mac(&mut self) -> Vec<u8> {
        let first = [0x0a, 0x45, 0x60, 0x00][self.below(4)];
        let mut m = vec![first];
        m.extend(self.hidden(5));
        if first == 0x0a {
            m = self.hidden(6);
        }
        m
    }

    fn ethernet(&mut self) -> Vec<u8> {
        let (dst, src) = (self.mac(), self.mac());
        let mut f = [dst, src].concat();
        for _ in 0..self.below(3) {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend(self.num(2));
        }
        let (et, body) = self.l3();
        f.extend_from_slice(&et.to_be_bytes());
        f.extend(body);
        f
    }

    fn sll(&mut self, v2: bool) -> Vec<u8> {
        let hatype: u16 = [1, 778, 776, 768, 769, 823, 772, 824, 6][self.below(9)];
        let addr_len: u8 = [6, 4, 16, 8, 0][self.below(5)];
        let addr = match (hatype, addr_len) {
            (768 | 776 | 778, 4) => [&self.v4()[..], &self.hidden(4)].concat(),
            _ => self.hidden(8),
        };
        let (et, body) = self.l3();
        let mut h = Vec::new();
        if v2 {
            h.extend_from_slice(&et.to_be_bytes());
            h.extend(self.hidden(2));
            h.extend(self.num(4));
            h.extend_from_slice(&hatype.to_be_bytes());
            h.push(self.num(1)[0]);
            h.push(addr_len);
            h.extend(addr);
        } else {
            h.extend(self.num(2));
            h.extend_from_slice(&hatype.to_be_bytes());
            h.extend_from_slice(&u16::from(addr_len).to_be_bytes());
            h.extend(addr);
            h.extend_from_slice(&et.to_be_bytes());
        }
        h.extend(body);
        h
    }

    /// An EtherType and what it carries.
    fn l3(&mut self) -> (u16, Vec<u8>) {
        match self.below(8) {
            0 | 1 => (ethertype::IPV4, self.ipv4()),
            2 | 3 => (ethertype::IPV6, self.ipv6()),
            4 => (ethertype::ARP, self.arp()),
            5 if self.nested() => (ethertype::MPLS, self.mpls()),
            6 if self.nested() => (ethertype::PPPOE_SESSION, self.pppoe()),
            _ => (0x88b5, [self.hidden(8), self.payload()].concat()),
        }
    }

    fn arp(&mut self) -> Vec<u8> {
        let (sha, tha) = (self.hidden(6), self.hidden(6));
        let (spa, tpa) = (self.v4(), self.v4());
        let mut a = build::arp(
            1 + self.below(2) as u16,
            sha.try_into().unwrap_or_default(),
            spa.into(),
            tha.try_into().unwrap_or_default(),
            tpa.into(),
        );
        if self.chance(32) {
            a[1] = 6; // not Ethernet: never walked
        }
        a
    }

    fn mpls(&mut self) -> Vec<u8> {
        let mut s = Vec::new();
        let labels = 1 + self.below(3);
        for i in 0..labels {
            let mut e = self.num(4);
            e[2] = (e[2] & 0xfe) | u8::from(i + 1 == labels);
            s.extend(e);
        }
        self.depth += 1;
        let body = match self.below(4) {
            0 => self.ipv4(),
            1 => self.ipv6(),
            2 => {
                let mut cw = self.num(4);
                cw[0] &= 0x0f;
                [cw, self.ethernet()].concat()
            }
            _ => self.ethernet(),
        };
        self.depth -= 1;
        s.extend(body);
        s
    }

    fn pppoe(&mut self) -> Vec<u8> {
        let (protocol, body) = self.ppp_body();
        let mut h = vec![0x11, 0];
        h.extend(self.num(2));
        h.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        h.extend_from_slice(&protocol.to_be_bytes());
        h.extend(body);
        h
    }

    fn ppp_body(&mut self) -> (u16, Vec<u8>) {
        self.depth += 1;
        let b = match self.below(3) {
            0 => (0x0021, self.ipv4()),
            1 => (0x0057, self.ipv6()),
            _ => (0xc021, [self.hidden(8), self.payload()].concat()),
        };
        self.depth -= 1;
        b
    }

    // ---- network layer ----

    fn ip(&mut self) -> (u8, Vec<u8>) {
        match self.chance(128) {
            true => (proto::IPIP, self.ipv4()),
            false => (proto::IPV6, self.ipv6()),
        }
    }

    fn ipv4(&mut self) -> Vec<u8> {
        let (src, dst) = (self.v4(), self.v4());
        let mut options = self.ipv4_options();
        options.truncate(40);
        let (protocol, l4) = self.transport(false);
        let frag = if self.chance(16) { 0x0010 } else { 0x4000 };
        let id = self.num(2);
        let o = V4Opts {
            ttl: self.num(1)[0],
            id: u16::from_be_bytes([id[0], id[1]]),
            frag,
            options: &options,
            total_len: None,
        };
        build::ipv4(src.into(), dst.into(), protocol, o, &l4)
    }

    fn ipv4_options(&mut self) -> Vec<u8> {
        let mut o = Vec::new();
        for _ in 0..self.below(4) {
            match self.below(9) {
                0 => o.push(1),
                1 => {
                    let n = 1 + self.below(3);
                    let extra = self.below(4);
                    o.extend_from_slice(&[[7, 131, 137][self.below(3)], (3 + 4 * n + extra) as u8]);
                    o.extend(self.num(1));
                    (0..n).for_each(|_| o.extend(self.v4()));
                    o.extend(self.hidden(extra));
                }
                2 => {
                    let n = self.below(3);
                    let extra = [0, 1, 2, 5][self.below(4)];
                    let flag = [1, 3][self.below(2)];
                    o.extend_from_slice(&[68, (4 + 8 * n + extra) as u8]);
                    o.extend(self.num(1));
                    o.push((self.num(1)[0] & 0xf0) | flag);
                    for _ in 0..n {
                        o.extend(self.v4());
                        o.extend(self.num(4));
                    }
                    o.extend(self.hidden(extra));
                }
                3 => o.extend_from_slice(&[148, 4, 0, 0]),
                4 => {
                    o.extend_from_slice(&[82, 12]);
                    o.extend(self.num(6));
                    o.extend(self.v4());
                }
                5 => {
                    let n = self.below(9);
                    o.extend_from_slice(&[
                        [25, 94, 130, 133, 134, 145][self.below(6)],
                        2 + n as u8,
                    ]);
                    o.extend(self.hidden(n));
                }
                6 => {
                    o.push(0);
                    o.extend(self.hidden(8));
                }
                7 => {
                    o.extend_from_slice(&[7, 60]);
                    o.extend(self.hidden(8));
                }
                _ => {
                    o.extend_from_slice(&[68, 8, 5, 0]);
                    o.extend(self.num(4));
                }
            }
        }
        o
    }

    fn ipv6(&mut self) -> Vec<u8> {
        let (src, dst) = (self.v6(), self.v6());
        let (mut next, l4) = self.transport(true);
        let mut chain = l4;
        for _ in 0..self.below(4) {
            let (kind, hdr) = self.ipv6_ext(next);
            chain = [hdr, chain].concat();
            next = kind;
        }
        let hop = self.num(1)[0];
        build::ipv6(src.into(), dst.into(), next, hop, &chain)
    }

    /// An extension header whose next header is `next`: its type and bytes.
    fn ipv6_ext(&mut self, next: u8) -> (u8, Vec<u8>) {
        match self.below(5) {
            0 | 1 => {
                let kind = [proto::HOPOPT, proto::DSTOPTS][self.below(2)];
                (kind, build::ipv6_ext(next, &self.ipv6_options()))
            }
            2 => (proto::ROUTING, self.routing(next)),
            3 => {
                let more = self.chance(128);
                let id = self.num(4);
                let offset = if self.chance(32) { 3 } else { 0 };
                let frag = build::ipv6_frag(
                    next,
                    offset,
                    more,
                    u32::from_be_bytes(id.try_into().unwrap_or_default()),
                );
                (proto::FRAGMENT, frag)
            }
            _ => {
                let icv = 4 * (1 + self.below(3));
                let mut ah = vec![next, ((12 + icv) / 4 - 2) as u8];
                ah.extend(self.hidden(2));
                ah.extend(self.num(8));
                ah.extend(self.hidden(icv));
                (proto::AH, ah)
            }
        }
    }

    fn ipv6_options(&mut self) -> Vec<u8> {
        let mut o = Vec::new();
        for _ in 0..1 + self.below(4) {
            match self.below(8) {
                0 => o.push(0),
                1 => {
                    let n = self.below(8);
                    o.extend_from_slice(&[1, n as u8]);
                    o.extend(self.hidden(n));
                }
                2 => o.extend([&[5u8, 2][..], &self.num(2)].concat()),
                3 => o.extend([&[0xc2u8, 4][..], &self.num(4)].concat()),
                4 => o.extend([&[0xc9u8, 16][..], &self.v6()].concat()),
                5 => {
                    let n = self.below(20);
                    o.extend_from_slice(&[[0x3e, 0x1e, 0x07, 0x8b, 0x31][self.below(5)], n as u8]);
                    o.extend(self.hidden(n));
                }
                6 => {
                    o.extend_from_slice(&[0x3e, 200]);
                    o.extend(self.hidden(6));
                }
                _ => o.extend([&[0xc9u8, 8][..], &self.hidden(8)].concat()),
            }
        }
        o
    }

    fn routing(&mut self, next: u8) -> Vec<u8> {
        let kind = [0u8, 2, 4, 4, 3][self.below(5)];
        let n = match kind {
            2 => 1,
            _ => 1 + self.below(3),
        };
        let left = self.below(n + 1) as u8;
        let mut body = vec![kind, left];
        match kind {
            4 => {
                body.push((n - 1) as u8);
                body.extend(self.num(3));
            }
            _ => body.extend(self.hidden(4)),
        }
        (0..n).for_each(|_| body.extend(self.v6()));
        if kind == 4 || self.chance(64) {
            let tlvs = 8 * self.below(3);
            body.extend(self.hidden(tlvs));
        }
        build::ipv6_ext(next, &body)
    }

    // ---- transport layer ----

    fn transport(&mut self, v6: bool) -> (u8, Vec<u8>) {
        let tunnels = self.nested();
        match self.below(10) {
            0..=2 => (proto::TCP, self.tcp()),
            3 | 4 => (proto::UDP, self.udp()),
            5 if v6 => (proto::ICMPV6, self.icmp6()),
            5 => (proto::ICMP, self.icmp4()),
            6 if tunnels => (proto::GRE, self.gre()),
            7 if tunnels => {
                self.depth += 1;
                let inner = self.ip();
                self.depth -= 1;
                inner
            }
            _ => (253, [self.hidden(8), self.payload()].concat()),
        }
    }

    fn tcp(&mut self) -> Vec<u8> {
        let mut options = self.tcp_options();
        options.truncate(40);
        options.resize(options.len().div_ceil(4) * 4, 0);
        let mut s = self.num(12);
        s.push((((20 + options.len()) / 4) << 4) as u8);
        s.extend(self.num(7));
        s.extend(options);
        s.extend(self.payload());
        s
    }

    fn tcp_options(&mut self) -> Vec<u8> {
        let mut o = Vec::new();
        for _ in 0..self.below(5) {
            match self.below(10) {
                0 => o.extend([&[2u8, 4][..], &self.num(2)].concat()),
                1 => o.extend_from_slice(&[1, 3, 3, 7, 4, 2]),
                2 => o.extend([&[5u8, 10][..], &self.num(8)].concat()),
                3 => o.extend([&[8u8, 10][..], &self.num(8)].concat()),
                4 => o.extend(self.add_addr()),
                5 => o.extend([&[30u8, 8, 0x20, 0x01][..], &self.num(4)].concat()),
                6 => {
                    let n = self.below(10);
                    o.extend_from_slice(&[
                        [6, 19, 28, 29, 34, 69, 253, 254][self.below(8)],
                        2 + n as u8,
                    ]);
                    o.extend(self.hidden(n));
                }
                7 => {
                    o.push(0);
                    o.extend(self.hidden(8));
                }
                8 => {
                    o.extend_from_slice(&[8, 40]);
                    o.extend(self.hidden(8));
                }
                _ => o.extend([&[2u8, 6][..], &self.hidden(4)].concat()),
            }
        }
        o
    }

    fn add_addr(&mut self) -> Vec<u8> {
        let v6 = self.chance(96);
        let (port, hmac) = (self.chance(128), self.chance(160));
        let len = match v6 {
            true => 20,
            false => 8,
        } + 2 * usize::from(port)
            + 8 * usize::from(hmac);
        let mut o = vec![30, len as u8, 0x30 | if v6 { 6 } else { 4 }];
        o.extend(self.num(1));
        match v6 {
            true => o.extend(self.v6()),
            false => o.extend(self.v4()),
        }
        if port {
            o.extend(self.num(2));
        }
        if hmac {
            o.extend(self.hidden(8));
        }
        o
    }

    fn udp(&mut self) -> Vec<u8> {
        let tunnel = if self.nested() { self.below(6) } else { 5 };
        self.depth += 1;
        let (port, body) = match tunnel {
            0 => (4789, self.vxlan()),
            1 => (6081, self.geneve()),
            2 => (2152, self.gtp()),
            3 => (1701, self.l2tp()),
            4 => (
                [4789, 6081, 2152, 1701][self.below(4)],
                [self.hidden(12), self.payload()].concat(),
            ),
            _ => (5000 + self.below(100) as u16, self.payload()),
        };
        self.depth -= 1;
        let mut s = self.num(2);
        s.extend_from_slice(&port.to_be_bytes());
        s.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
        s.extend(self.num(2));
        s.extend(body);
        s
    }

    fn vxlan(&mut self) -> Vec<u8> {
        let mut h = vec![0x08 | (self.byte() & 0x80)];
        h.extend(self.hidden(3));
        h.extend(self.num(3));
        h.extend(self.hidden(1));
        h.extend(self.ethernet());
        h
    }

    fn geneve(&mut self) -> Vec<u8> {
        let opt_words = self.below(4);
        let (protocol, inner) = match self.below(3) {
            0 => (ethertype::TEB, self.ethernet()),
            1 => (ethertype::IPV4, self.ipv4()),
            _ => (ethertype::IPV6, self.ipv6()),
        };
        let mut h = vec![opt_words as u8, self.byte() & 0xc0 | 0x15];
        h.extend_from_slice(&protocol.to_be_bytes());
        h.extend(self.num(3));
        h.extend(self.hidden(1 + 4 * opt_words));
        h.extend(inner);
        h
    }

    fn gtp(&mut self) -> Vec<u8> {
        let ext = self.chance(128);
        let inner = match self.chance(128) {
            true => self.ipv4(),
            false => self.ipv6(),
        };
        let mut opt = Vec::new();
        if ext {
            opt.extend(self.num(3));
            opt.push(0x85);
            let count = 1 + self.below(2);
            for i in 0..count {
                let units = 1 + self.below(3);
                opt.push(units as u8);
                opt.extend(self.hidden(4 * units - 2));
                opt.push(if i + 1 < count { 0x40 } else { 0 });
            }
        }
        let mut h = vec![0x30 | if ext { 0x04 } else { 0 }, 255];
        h.extend_from_slice(&((opt.len() + inner.len()) as u16).to_be_bytes());
        h.extend(self.num(4));
        h.extend(opt);
        h.extend(inner);
        h
    }

    fn l2tp(&mut self) -> Vec<u8> {
        let (protocol, inner) = self.ppp_body();
        let flags = 0x40 | (self.byte() & 0x0b);
        let pad = if flags & 0x02 != 0 { self.below(9) } else { 0 };
        let mut rest = self.num(4);
        if flags & 0x08 != 0 {
            rest.extend(self.num(4));
        }
        if flags & 0x02 != 0 {
            rest.extend_from_slice(&(pad as u16).to_be_bytes());
            rest.extend(self.hidden(pad));
        }
        rest.extend_from_slice(&[0xff, 0x03]);
        rest.extend_from_slice(&protocol.to_be_bytes());
        rest.extend(inner);
        let mut h = vec![flags, 0x02];
        h.extend_from_slice(&((4 + rest.len()) as u16).to_be_bytes());
        h.extend(rest);
        h
    }

    fn icmp4(&mut self) -> Vec<u8> {
        let quotes = self.nested();
        match self.below(5) {
            0 => [vec![8, 0], self.num(6), self.payload()].concat(),
            1 | 2 if quotes => {
                let kind = [3, 11, 5][self.below(3)];
                let rest = match kind {
                    5 => self.v4().to_vec(),
                    _ => self.num(4),
                };
                [vec![kind, 0], self.num(2), rest, self.quoted(false)].concat()
            }
            3 => [
                vec![[6, 44, 200][self.below(3)], 0],
                self.num(2),
                self.hidden(4),
                self.payload(),
            ]
            .concat(),
            1 | 2 => [vec![0, 0], self.num(6), self.payload()].concat(),
            _ => {
                let mut m = vec![9, 0];
                m.extend(self.num(6));
                m.extend(self.v4());
                m.extend(self.num(4));
                m
            }
        }
    }

    fn icmp6(&mut self) -> Vec<u8> {
        let quotes = self.nested();
        match self.below(5) {
            0 => [vec![128, 0], self.num(6), self.payload()].concat(),
            1 | 2 if quotes => [
                vec![1 + self.below(4) as u8, 0],
                self.num(6),
                self.quoted(true),
            ]
            .concat(),
            3 => [
                vec![135, 0],
                self.num(6),
                self.v6().to_vec(),
                vec![1, 1],
                self.hidden(6),
            ]
            .concat(),
            1 | 2 => [vec![129, 0], self.num(6), self.payload()].concat(),
            _ => [
                vec![[5, 100, 200][self.below(3)], 0],
                self.num(2),
                self.hidden(4),
                self.payload(),
            ]
            .concat(),
        }
    }

    /// The start of a packet quoted by an ICMP error.
    fn quoted(&mut self, v6: bool) -> Vec<u8> {
        self.depth += 1;
        let mut p = match v6 {
            true => self.ipv6(),
            false => self.ipv4(),
        };
        self.depth -= 1;
        let keep = 28 + self.below(256) * p.len() / 256;
        p.truncate(keep);
        p
    }

    fn gre(&mut self) -> Vec<u8> {
        let flags = [0x00, 0x20, 0x10, 0xb0, 0x80, 0x40][self.below(6)];
        self.depth += 1;
        let (protocol, inner) = match self.below(7) {
            0 => (ethertype::IPV4, self.ipv4()),
            1 => (ethertype::IPV6, self.ipv6()),
            2 => (ethertype::TEB, self.ethernet()),
            3 => (ethertype::ERSPAN_II, self.erspan2(flags)),
            4 => (ethertype::ERSPAN_III, self.erspan3()),
            5 => (ethertype::MPLS, self.mpls()),
            _ => (0x88b5, [self.hidden(8), self.payload()].concat()),
        };
        self.depth -= 1;
        let mut h = vec![flags, 0];
        h.extend_from_slice(&protocol.to_be_bytes());
        if flags & 0x80 != 0 {
            h.extend(self.num(2));
            h.extend(self.hidden(2));
        }
        for bit in [0x20, 0x10] {
            if flags & bit != 0 {
                h.extend(self.num(4));
            }
        }
        h.extend(inner);
        h
    }

    fn erspan2(&mut self, gre_flags: u8) -> Vec<u8> {
        if gre_flags & 0x10 == 0 {
            return self.ethernet(); // type I
        }
        let mut h = self.num(4);
        h[0] = 0x10 | (h[0] & 0x0f);
        h.extend(self.hidden(1));
        h.push((self.hidden(1)[0] & 0xf0) | (self.num(1)[0] & 0x0f));
        h.extend(self.num(2));
        h.extend(self.ethernet());
        h
    }

    fn erspan3(&mut self) -> Vec<u8> {
        let mut h = self.num(12);
        h[0] = 0x20 | (h[0] & 0x0f);
        let ip = self.chance(64);
        h[10] = (h[10] & 0x83) | if ip { 2 << 2 } else { 0 };
        let platform = self.chance(128);
        h[11] = (h[11] & 0xfe) | u8::from(platform);
        if platform {
            h.extend(self.hidden(8));
        }
        match ip {
            true => h.extend(self.ipv4()),
            false => h.extend(self.ethernet()),
        }
        h
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
