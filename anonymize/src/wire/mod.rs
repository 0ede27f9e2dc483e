//! Checked views of the headers the walker reads and rewrites, in place.
//!
//! Each protocol has a private `field` module of byte ranges and a view `Packet<T>` over a
//! buffer. The panic contract, once for all of them: `new_checked` (or `check_len`) verifies
//! that the buffer holds every byte any getter or setter reads or writes, variable parts
//! (options, header length fields) included; after it succeeds, no accessor panics.
//! Setters need `T: AsMut<[u8]>`, so the walker rewrites addresses and checksums in the
//! packet's own buffer, without a copy.

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;

/// A buffer shorter than its header needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{layer}: needs {needed} bytes, has {available}")]
pub struct Truncated {
    /// The header that did not fit.
    pub layer: &'static str,
    /// Bytes needed.
    pub needed: usize,
    /// Bytes there.
    pub available: usize,
}

/// Fails with [`Truncated`] unless `buf` holds `needed` bytes.
pub(crate) fn need(layer: &'static str, buf: &[u8], needed: usize) -> Result<(), Truncated> {
    if buf.len() < needed {
        return Err(Truncated {
            layer,
            needed,
            available: buf.len(),
        });
    }
    Ok(())
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn set_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// EtherType values the walker follows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (QinQ).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ tag.
    pub const QINQ_OLD: u16 = 0x9100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
    /// MPLS unicast.
    pub const MPLS: u16 = 0x8847;
    /// MPLS multicast.
    pub const MPLS_MC: u16 = 0x8848;
}

/// IP protocol numbers the walker follows.
pub mod proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4 in IP.
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 in IP (6in4).
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 fragment header.
    pub const FRAGMENT: u8 = 44;
    /// GRE.
    pub const GRE: u8 = 47;
    /// ESP.
    pub const ESP: u8 = 50;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// No next header.
    pub const NONE: u8 = 59;
    /// IPv6 destination options.
    pub const DSTOPTS: u8 = 60;
    /// EtherIP.
    pub const ETHERIP: u8 = 97;
    /// L2TPv3.
    pub const L2TP: u8 = 115;
    /// IPv6 mobility header.
    pub const MOBILITY: u8 = 135;
    /// Host identity protocol.
    pub const HIP: u8 = 139;
    /// Shim6.
    pub const SHIM6: u8 = 140;
}
