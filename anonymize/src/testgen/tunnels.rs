//! Tunnels: GRE (and ERSPAN on it), VXLAN, Geneve, GTP-U, L2TP.

use lander_trace::proto::ethertype;

impl super::Gen<'_> {
    pub(super) fn vxlan(&mut self) -> Vec<u8> {
        let mut h = vec![0x08 | (self.byte() & 0x80)];
        h.extend(self.hidden(3));
        h.extend(self.num(3));
        h.extend(self.hidden(1));
        h.extend(self.ethernet());
        h
    }

    pub(super) fn geneve(&mut self) -> Vec<u8> {
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

    pub(super) fn gtp(&mut self) -> Vec<u8> {
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

    pub(super) fn l2tp(&mut self) -> Vec<u8> {
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

    pub(super) fn gre(&mut self) -> Vec<u8> {
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

    pub(super) fn erspan2(&mut self, gre_flags: u8) -> Vec<u8> {
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

    pub(super) fn erspan3(&mut self) -> Vec<u8> {
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
