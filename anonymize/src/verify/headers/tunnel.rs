//! Tunnels: GRE (and ERSPAN, PPTP's enhanced GRE), VXLAN, VXLAN-GPE, Geneve, GTP-U,
//! L2TPv2 data with PPP, PPPoE sessions.

use super::Reader;

/// GRE flag bits and protocol types beyond the EtherTypes.
mod gre {
    pub const CHECKSUM: u16 = 0x8000;
    pub const ROUTING: u16 = 0x4000;
    pub const KEY: u16 = 0x2000;
    pub const SEQUENCE: u16 = 0x1000;
    pub const ACK: u16 = 0x0080;
    pub const VERSION: u16 = 0x0007;
    pub const ERSPAN_2: u16 = 0x88be;
    pub const ERSPAN_3: u16 = 0x22eb;
    pub const PPP: u16 = 0x880b;
}

impl Reader<'_, '_> {
    pub(super) fn gre(&mut self, at: usize) {
        let (Some(flags), Some(proto)) = (self.u16(at), self.u16(at + 2)) else {
            return self.l.stop(at);
        };
        let version = flags & gre::VERSION;
        if flags & gre::ROUTING != 0 || version > 1 {
            return self.l.stop(at);
        }
        let words = [gre::CHECKSUM, gre::KEY, gre::SEQUENCE]
            .iter()
            .filter(|&&bit| flags & bit != 0)
            .count()
            + usize::from(version == 1 && flags & gre::ACK != 0);
        let len = 4 + 4 * words;
        if !self.has(at, len) {
            return self.l.stop(at);
        }
        self.l.field(at, len);
        let inner = at + len;
        match proto {
            gre::ERSPAN_2 if flags & gre::SEQUENCE != 0 => {
                self.l.field(inner, 8);
                self.ethernet(inner + 8)
            }
            gre::ERSPAN_2 => self.ethernet(inner),
            gre::ERSPAN_3 => self.erspan3(inner),
            gre::PPP => self.ppp(inner),
            _ => self.ethertype(proto, inner),
        }
    }

    /// ERSPAN type III: 12 bytes, and an 8-byte platform subheader when its O bit is set.
    fn erspan3(&mut self, at: usize) {
        let Some(last) = self.u8(at + 11) else {
            return self.l.stop(at);
        };
        let len = if last & 0x01 != 0 { 20 } else { 12 };
        self.l.field(at, len);
        self.ethernet(at + len)
    }

    /// VXLAN: flags, reserved, VNI, reserved; an Ethernet frame follows.
    pub(super) fn vxlan(&mut self, at: usize) {
        if !self.has(at, 8) {
            return self.l.stop(at);
        }
        self.l.field(at, 8);
        self.ethernet(at + 8)
    }

    /// VXLAN-GPE: the next-protocol byte names IPv4 (1), IPv6 (2) or Ethernet (3).
    pub(super) fn vxlan_gpe(&mut self, at: usize) {
        if !self.has(at, 8) {
            return self.l.stop(at);
        }
        self.l.field(at, 8);
        match self.b[at + 3] {
            1 => self.ipv4(at + 8),
            2 => self.ipv6(at + 8),
            3 => self.ethernet(at + 8),
            _ => self.l.stop(at + 8),
        }
    }

    /// Geneve: 8 fixed bytes, options (not understood: they must be zero), a protocol type.
    pub(super) fn geneve(&mut self, at: usize) {
        let (Some(first), Some(proto)) = (self.u8(at), self.u16(at + 2)) else {
            return self.l.stop(at);
        };
        let len = 8 + usize::from(first & 0x3f) * 4;
        if first >> 6 != 0 || !self.has(at, len) {
            return self.l.stop(at);
        }
        self.l.field(at, 8);
        self.ethertype(proto, at + len)
    }

    /// GTP-U: 8 bytes, 4 more when E, S or PN is set, then extension headers; a G-PDU
    /// (type 255) carries an IP packet.
    pub(super) fn gtp_u(&mut self, at: usize) {
        let (Some(flags), Some(kind)) = (self.u8(at), self.u8(at + 1)) else {
            return self.l.stop(at);
        };
        if flags >> 5 != 1 || !self.has(at, 8) {
            return self.l.stop(at);
        }
        self.l.field(at, 8);
        let mut inner = at + 8;
        if flags & 0x07 != 0 {
            if !self.has(inner, 4) {
                return self.l.stop(inner);
            }
            self.l.field(inner, 4);
            let mut next = self.b[inner + 3];
            inner += 4;
            while next != 0 {
                let len = self.u8(inner).map_or(0, usize::from) * 4;
                if len == 0 || !self.has(inner, len) {
                    return self.l.stop(inner);
                }
                self.l.field(inner, 1);
                self.l.field(inner + len - 1, 1);
                if next == 0x85 {
                    self.l.field(inner, len); // PDU session container: QFI and flags
                }
                next = self.b[inner + len - 1];
                inner += len;
            }
        }
        match kind {
            255 => self.ip_by_version(inner),
            _ => self.l.payload(inner),
        }
    }

    /// L2TPv2: control messages are payload; data messages carry PPP.
    pub(super) fn l2tp(&mut self, at: usize) {
        let Some(flags) = self.u16(at) else {
            return self.l.stop(at);
        };
        if flags & 0x000f != 2 {
            return self.l.stop(at);
        }
        let mut len = 6;
        if flags & 0x4000 != 0 {
            len += 2;
        }
        if flags & 0x0800 != 0 {
            len += 4;
        }
        if !self.has(at, len) {
            return self.l.stop(at);
        }
        self.l.field(at, len);
        let mut inner = at + len;
        if flags & 0x0200 != 0 {
            let Some(pad) = self.u16(inner) else {
                return self.l.stop(inner);
            };
            self.l.field(inner, 2);
            inner += 2 + usize::from(pad); // the offset padding stays unknown
        }
        if flags & 0x8000 != 0 {
            return self.l.payload(inner);
        }
        self.ppp(inner)
    }

    /// PPP: an optional FF 03 address/control, then a (possibly compressed) protocol.
    pub(super) fn ppp(&mut self, mut at: usize) {
        if self.b.get(at..at + 2) == Some(&[0xff, 0x03][..]) {
            self.l.field(at, 2);
            at += 2;
        }
        let Some(first) = self.u8(at) else {
            return self.l.stop(at);
        };
        let (proto, len) = match first & 1 {
            1 => (u16::from(first), 1),
            _ => match self.u16(at) {
                Some(p) => (p, 2),
                None => return self.l.stop(at),
            },
        };
        self.l.field(at, len);
        match proto {
            0x0021 => self.ipv4(at + len),
            0x0057 => self.ipv6(at + len),
            _ => self.l.stop(at + len),
        }
    }

    /// PPPoE session: version/type, code, session id, length, then PPP's protocol.
    pub(super) fn pppoe(&mut self, at: usize) {
        if !self.has(at, 8) {
            return self.l.stop(at);
        }
        self.l.field(at, 6);
        self.ppp(at + 6)
    }
}
