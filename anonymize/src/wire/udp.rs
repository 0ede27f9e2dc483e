//! UDP header.

use super::{be16, need, Truncated};

/// Header length.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum.
pub const CHECKSUM_AT: usize = 6;

/// Offset of the length field.
pub const LENGTH_AT: usize = 4;

/// A tunnel recognised by its UDP port: only a guess until its payload parses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tunnel {
    /// VXLAN (destination port 4789).
    Vxlan,
    /// Geneve (destination port 6081).
    Geneve,
    /// GTP-U (destination port 2152).
    Gtp,
    /// L2TPv2 (source or destination port 1701).
    L2tp,
}

/// The tunnel the ports of a UDP datagram suggest.
pub fn tunnel(sport: u16, dport: u16) -> Option<Tunnel> {
    match (sport, dport) {
        (_, super::vxlan::PORT) => Some(Tunnel::Vxlan),
        (_, super::geneve::PORT) => Some(Tunnel::Geneve),
        (_, super::gtp::PORT) => Some(Tunnel::Gtp),
        (super::l2tp::PORT, _) | (_, super::l2tp::PORT) => Some(Tunnel::L2tp),
        _ => None,
    }
}

/// Source port, destination port and length of the UDP header at the start of `buf` (whose
/// 8 bytes the caller has checked).
pub fn ports_and_length(buf: &[u8]) -> (u16, u16, usize) {
    (
        be16(buf, 0),
        be16(buf, 2),
        usize::from(be16(buf, LENGTH_AT)),
    )
}

/// The checksum of the UDP header at the start of `buf`, after checking the header is there.
pub fn checksum(buf: &[u8]) -> Result<u16, Truncated> {
    need("udp", buf, HEADER_LEN)?;
    Ok(be16(buf, CHECKSUM_AT))
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncations() {
        let h = [0u8, 1, 0, 2, 0, 8, 0xab, 0xcd];
        for n in 0..8 {
            assert!(super::checksum(&h[..n]).is_err());
        }
        assert_eq!(super::checksum(&h), Ok(0xabcd));
        assert_eq!(super::ports_and_length(&h), (1, 2, 8));
        assert_eq!(super::tunnel(1701, 5), Some(super::Tunnel::L2tp));
        assert_eq!(super::tunnel(4789, 53), None);
    }
}
