//! Packet builders: each layer wraps the bytes of the one above it and fills in lengths and
//! checksums, so every generated packet is valid unless it is meant not to be.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::proto::{ethertype, ip as proto};

use crate::checksum::{checksum, sum};

/// TCP flag bits.
pub mod tcp_flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u64 {
    let addrs = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum(&s.octets()) + sum(&d.octets()),
        (s, d) => sum(&v6(s).octets()) + sum(&v6(d).octets()),
    };
    addrs + u64::from(proto) + len as u64
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V6(a) => a,
        IpAddr::V4(a) => a.to_ipv6_mapped(),
    }
}

/// A TCP segment (20-byte header plus `options`, padded to 4 bytes) with a valid checksum.
pub struct Tcp<'a> {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags (see [`tcp_flags`]).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Options (padded with NOPs... zeros to a multiple of 4).
    pub options: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
}

impl Tcp<'_> {
    /// Builds the segment for the given addresses.
    pub fn build(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let opt_len = self.options.len().div_ceil(4) * 4;
        let hlen = 20 + opt_len;
        let mut s = Vec::with_capacity(hlen + self.payload.len());
        s.extend_from_slice(&self.sport.to_be_bytes());
        s.extend_from_slice(&self.dport.to_be_bytes());
        s.extend_from_slice(&self.seq.to_be_bytes());
        s.extend_from_slice(&self.ack.to_be_bytes());
        s.push(((hlen / 4) as u8) << 4);
        s.push(self.flags);
        s.extend_from_slice(&self.window.to_be_bytes());
        s.extend_from_slice(&[0, 0, 0, 0]);
        s.extend_from_slice(self.options);
        s.resize(hlen, 0);
        s.extend_from_slice(self.payload);
        let c = checksum(pseudo_sum(src, dst, proto::TCP, s.len()), &s);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        s
    }
}

/// A UDP datagram with a valid checksum.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut s = Vec::with_capacity(len);
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&(len as u16).to_be_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(payload);
    let mut c = checksum(pseudo_sum(src, dst, proto::UDP, len), &s);
    if c == 0 {
        c = 0xffff;
    }
    s[6..8].copy_from_slice(&c.to_be_bytes());
    s
}

/// An ICMP (v4) message: type, code, the 4 bytes after the checksum, then `body`.
pub fn icmp4(typ: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut s = vec![typ, code, 0, 0];
    s.extend_from_slice(&rest);
    s.extend_from_slice(body);
    let c = checksum(0, &s);
    s[2..4].copy_from_slice(&c.to_be_bytes());
    s
}

/// An ICMPv6 message with a valid checksum for the given addresses.
pub fn icmp6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    typ: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let mut s = vec![typ, code, 0, 0];
    s.extend_from_slice(&rest);
    s.extend_from_slice(body);
    let c = checksum(
        pseudo_sum(src.into(), dst.into(), proto::ICMPV6, s.len()),
        &s,
    );
    s[2..4].copy_from_slice(&c.to_be_bytes());
    s
}

/// IPv4 header fields beyond the addresses.
#[derive(Clone, Copy)]
pub struct V4Opts<'a> {
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub id: u16,
    /// Flags and fragment offset (in 8-byte units), as on the wire.
    pub frag: u16,
    /// Options (padded to 4 bytes).
    pub options: &'a [u8],
    /// Total length to claim instead of the real one (for quoted, cut packets).
    pub total_len: Option<u16>,
}

impl Default for V4Opts<'_> {
    fn default() -> Self {
        V4Opts {
            ttl: 64,
            id: 0,
            frag: 0x4000,
            options: &[],
            total_len: None,
        }
    }
}

/// An IPv4 packet with a valid header checksum.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, o: V4Opts<'_>, payload: &[u8]) -> Vec<u8> {
    let hlen = 20 + o.options.len().div_ceil(4) * 4;
    let total = o.total_len.unwrap_or((hlen + payload.len()) as u16);
    let mut p = Vec::with_capacity(hlen + payload.len());
    p.push(0x40 | (hlen / 4) as u8);
    p.push(0);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&o.id.to_be_bytes());
    p.extend_from_slice(&o.frag.to_be_bytes());
    p.push(o.ttl);
    p.push(protocol);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(o.options);
    p.resize(hlen, 0);
    let c = checksum(0, &p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 packet; `payload` starts with whatever `next` names (extension headers included).
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next: u8, hop: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(40 + payload.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.push(next);
    p.push(hop);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// An IPv6 extension header of the options kind (hop-by-hop, destination) or routing:
/// `next`, length, then `body` padded to a multiple of 8 bytes in all.
pub fn ipv6_ext(next: u8, body: &[u8]) -> Vec<u8> {
    let len = (2 + body.len()).div_ceil(8) * 8;
    let mut h = vec![next, (len / 8 - 1) as u8];
    h.extend_from_slice(body);
    h.resize(len, 0);
    h
}

/// An IPv6 fragment header.
pub fn ipv6_frag(next: u8, offset_units: u16, more: bool, id: u32) -> Vec<u8> {
    let mut h = vec![next, 0];
    h.extend_from_slice(&((offset_units << 3) | u16::from(more)).to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h
}

/// An Ethernet frame with optional VLAN tags (outermost first; the first of two is a QinQ
/// service tag), padded to the 60-byte minimum.
pub fn ethernet(
    dst: [u8; 6],
    src: [u8; 6],
    vlans: &[u16],
    ethertype: u16,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + 4 * vlans.len() + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    for (i, vid) in vlans.iter().enumerate() {
        let tpid = if i == 0 && vlans.len() > 1 {
            ethertype::QINQ
        } else {
            ethertype::VLAN
        };
        f.extend_from_slice(&tpid.to_be_bytes());
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An MPLS label stack entry list (bottom of stack set on the last).
pub fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut s = Vec::with_capacity(4 * labels.len() + payload.len());
    for (i, label) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        s.extend_from_slice(&((label << 12) | (bos << 8) | 64).to_be_bytes());
    }
    s.extend_from_slice(payload);
    s
}

/// An ARP request or reply for IPv4 over Ethernet.
pub fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            proto::UDP,
            V4Opts::default(),
            &[1, 2, 3],
        );
        assert_eq!(checksum(0, &p[..20]), 0);
        assert_eq!(u16::from_be_bytes([p[2], p[3]]), 23);
    }

    #[test]
    fn tcp_checksum_verifies_with_pseudo_header() {
        let (s, d) = (
            IpAddr::from([192, 0, 2, 1]),
            IpAddr::from([198, 51, 100, 7]),
        );
        let seg = Tcp {
            sport: 1234,
            dport: 80,
            seq: 1,
            ack: 0,
            flags: tcp_flags::SYN,
            window: 1024,
            options: &[],
            payload: b"abc",
        }
        .build(s, d);
        assert_eq!(checksum(pseudo_sum(s, d, proto::TCP, seg.len()), &seg), 0);
    }

    #[test]
    fn short_frames_are_padded_to_60_bytes() {
        assert_eq!(
            ethernet([0; 6], [1; 6], &[], ethertype::ARP, &[0; 28]).len(),
            60
        );
        assert_eq!(
            ethernet([0; 6], [1; 6], &[5, 6], ethertype::IPV4, &[0; 100]).len(),
            122
        );
    }
}
