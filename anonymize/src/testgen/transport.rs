//! TCP with options, UDP (plain, tunnels, and tunnel ports carrying something else),
//! ICMP and ICMPv6 (errors quoting packets).

use lander_trace::proto::ip as proto;

impl super::Gen<'_> {
    pub(super) fn transport(&mut self, v6: bool) -> (u8, Vec<u8>) {
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

    pub(super) fn tcp(&mut self) -> Vec<u8> {
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

    pub(super) fn tcp_options(&mut self) -> Vec<u8> {
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

    pub(super) fn add_addr(&mut self) -> Vec<u8> {
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

    pub(super) fn udp(&mut self) -> Vec<u8> {
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

    pub(super) fn icmp4(&mut self) -> Vec<u8> {
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

    pub(super) fn icmp6(&mut self) -> Vec<u8> {
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
    pub(super) fn quoted(&mut self, v6: bool) -> Vec<u8> {
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
}
