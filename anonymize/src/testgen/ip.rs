//! IPv4 with options, IPv6 with extension headers.

use lander_trace::proto::ip as proto;
use lander_trace::synth::build::{self, V4Opts};

impl super::Gen<'_> {
    pub(super) fn ip(&mut self) -> (u8, Vec<u8>) {
        match self.chance(128) {
            true => (proto::IPIP, self.ipv4()),
            false => (proto::IPV6, self.ipv6()),
        }
    }

    pub(super) fn ipv4(&mut self) -> Vec<u8> {
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

    pub(super) fn ipv4_options(&mut self) -> Vec<u8> {
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

    pub(super) fn ipv6(&mut self) -> Vec<u8> {
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
    pub(super) fn ipv6_ext(&mut self, next: u8) -> (u8, Vec<u8>) {
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

    pub(super) fn ipv6_options(&mut self) -> Vec<u8> {
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

    pub(super) fn routing(&mut self, next: u8) -> Vec<u8> {
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
}
