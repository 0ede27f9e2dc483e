//! Link layers: Ethernet (MACs hiding markers, VLAN tags), Linux cooked headers, ARP,
//! MPLS (IP, pseudowires with and without a control word), PPPoE.

use lander_trace::proto::ethertype;
use lander_trace::synth::build;

use crate::walker::link;

impl super::Gen<'_> {
    pub(super) fn link(&mut self, link: u32) -> Vec<u8> {
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

    pub(super) fn mac(&mut self) -> Vec<u8> {
        let first = [0x0a, 0x45, 0x60, 0x00][self.below(4)];
        let mut m = vec![first];
        m.extend(self.hidden(5));
        if first == 0x0a {
            m = self.hidden(6);
        }
        m
    }

    pub(super) fn ethernet(&mut self) -> Vec<u8> {
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

    pub(super) fn sll(&mut self, v2: bool) -> Vec<u8> {
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
    pub(super) fn l3(&mut self) -> (u16, Vec<u8>) {
        match self.below(8) {
            0 | 1 => (ethertype::IPV4, self.ipv4()),
            2 | 3 => (ethertype::IPV6, self.ipv6()),
            4 => (ethertype::ARP, self.arp()),
            5 if self.nested() => (ethertype::MPLS, self.mpls()),
            6 if self.nested() => (ethertype::PPPOE_SESSION, self.pppoe()),
            _ => (0x88b5, [self.hidden(8), self.payload()].concat()),
        }
    }

    pub(super) fn arp(&mut self) -> Vec<u8> {
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

    pub(super) fn mpls(&mut self) -> Vec<u8> {
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

    pub(super) fn pppoe(&mut self) -> Vec<u8> {
        let (protocol, body) = self.ppp_body();
        let mut h = vec![0x11, 0];
        h.extend(self.num(2));
        h.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        h.extend_from_slice(&protocol.to_be_bytes());
        h.extend(body);
        h
    }

    pub(super) fn ppp_body(&mut self) -> (u16, Vec<u8>) {
        self.depth += 1;
        let b = match self.below(3) {
            0 => (0x0021, self.ipv4()),
            1 => (0x0057, self.ipv6()),
            _ => (0xc021, [self.hidden(8), self.payload()].concat()),
        };
        self.depth -= 1;
        b
    }
}
