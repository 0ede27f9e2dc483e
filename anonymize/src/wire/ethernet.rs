//! Ethernet II, 802.1Q/802.1ad tags, MPLS label stack entries, Linux cooked capture (v1, v2).

use super::{be16, need, Truncated};

mod field {
    use std::ops::Range;
    pub const DST: Range<usize> = 0..6;
    pub const SRC: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
}

/// Length of an Ethernet header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Length of a VLAN tag after the EtherType it replaces (TCI, next EtherType).
pub const VLAN_TAG_LEN: usize = 4;
/// Length of one MPLS label stack entry.
pub const MPLS_ENTRY_LEN: usize = 4;
/// Length of a Linux cooked capture (v1) header.
pub const SLL_LEN: usize = 16;
/// Length of a Linux cooked capture v2 header.
pub const SLL2_LEN: usize = 20;

/// An Ethernet header view.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view after checking the header fits.
    pub fn new_checked(buffer: T) -> Result<Self, Truncated> {
        need("ethernet", buffer.as_ref(), field::HEADER_LEN)?;
        Ok(Packet { buffer })
    }

    /// The EtherType (or 802.3 length).
    pub fn ethertype(&self) -> u16 {
        be16(self.buffer.as_ref(), field::ETHERTYPE)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// The destination address, writable.
    pub fn dst_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::DST]
    }

    /// The source address, writable.
    pub fn src_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::SRC]
    }
}

/// The EtherType after a VLAN tag that starts at `tag` (the byte after the tagged EtherType).
pub fn vlan_next(buf: &[u8], tag: usize) -> Result<u16, Truncated> {
    need("802.1Q tag", buf, tag + VLAN_TAG_LEN)?;
    Ok(be16(buf, tag + 2))
}

/// Whether the MPLS label stack entry at `at` is the bottom of the stack.
///
/// What follows the stack is not declared; see the walker for how it is decided.
pub fn mpls_bottom(buf: &[u8], at: usize) -> Result<bool, Truncated> {
    need("MPLS label", buf, at + MPLS_ENTRY_LEN)?;
    Ok(buf[at + 2] & 1 == 1)
}

/// Length of the link-layer address field of a Linux cooked header.
pub const SLL_ADDR_FIELD: usize = 8;

/// A Linux cooked capture header: where its link-layer address lies and the protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sll {
    /// Byte offset of the link-layer address field (8 bytes).
    pub addr_at: usize,
    /// The address length the header gives (may exceed the field).
    pub addr_len: usize,
    /// The ARPHRD type.
    pub hatype: u16,
    /// Protocol (an EtherType for Ethernet-like devices).
    pub protocol: u16,
    /// Header length.
    pub header_len: usize,
    /// Offset of 2 reserved bytes (v2), zeroed by the walker.
    pub reserved_at: Option<usize>,
}

/// What the link-layer address of a Linux cooked header is, by the interface's ARPHRD type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SllAddr {
    /// A 6-byte IEEE 802 MAC address (Ethernet, 802.11, FDDI, token ring).
    Mac,
    /// The IPv4 address of a tunnel endpoint (IPIP, SIT, GRE).
    V4,
    /// Anything else, the 8 bytes kept of an IPv6 tunnel endpoint among them: zeroed.
    Other,
}

/// The kind of address an interface of ARPHRD type `hatype` puts in the cooked header, with
/// `len` the length the header gives.
pub fn sll_addr(hatype: u16, len: usize) -> SllAddr {
    match (hatype, len) {
        // ETHER, EETHER, IEEE802, FDDI, IEEE802_TR, IEEE80211, _PRISM, _RADIOTAP
        (1 | 2 | 6 | 774 | 800 | 801 | 802 | 803, 6) => SllAddr::Mac,
        // TUNNEL (IPIP), SIT, IPGRE
        (768 | 776 | 778, 4) => SllAddr::V4,
        _ => SllAddr::Other,
    }
}

impl Sll {
    /// Parses a v1 header (`LINKTYPE_LINUX_SLL`).
    pub fn parse_v1(buf: &[u8]) -> Result<Sll, Truncated> {
        need("linux cooked header", buf, SLL_LEN)?;
        Ok(Sll {
            addr_at: 6,
            addr_len: usize::from(be16(buf, 4)),
            hatype: be16(buf, 2),
            protocol: be16(buf, 14),
            header_len: SLL_LEN,
            reserved_at: None,
        })
    }

    /// Parses a v2 header (`LINKTYPE_LINUX_SLL2`).
    pub fn parse_v2(buf: &[u8]) -> Result<Sll, Truncated> {
        need("linux cooked v2 header", buf, SLL2_LEN)?;
        Ok(Sll {
            addr_at: 12,
            addr_len: usize::from(buf[11]),
            hatype: be16(buf, 8),
            protocol: be16(buf, 0),
            header_len: SLL2_LEN,
            reserved_at: Some(2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_truncation_is_an_error() {
        let frame = [0u8; 14];
        for n in 0..14 {
            assert!(Packet::new_checked(&frame[..n]).is_err());
        }
        assert!(Packet::new_checked(&frame[..]).is_ok());
        let sll = [0u8; 20];
        for n in 0..16 {
            assert!(Sll::parse_v1(&sll[..n]).is_err());
        }
        for n in 0..20 {
            assert!(Sll::parse_v2(&sll[..n]).is_err());
        }
        assert!(vlan_next(&sll, 17).is_err());
        assert_eq!(sll_addr(1, 6), SllAddr::Mac);
        assert_eq!(sll_addr(1, 8), SllAddr::Other);
        assert_eq!(sll_addr(778, 4), SllAddr::V4);
        assert_eq!(sll_addr(823, 16), SllAddr::Other);
        assert_eq!(sll_addr(772, 6), SllAddr::Other);
        assert!(mpls_bottom(&sll, 17).is_err());
    }
}
