//! ARP for Ethernet and IPv4 (the only variant whose addresses are rewritten).

use super::{be16, need, Truncated};

/// Length of an Ethernet/IPv4 ARP message.
pub const LEN: usize = 28;
/// Sender hardware address.
pub const SHA_AT: usize = 8;
/// Sender protocol address.
pub const SPA_AT: usize = 14;
/// Target hardware address.
pub const THA_AT: usize = 18;
/// Target protocol address.
pub const TPA_AT: usize = 24;

/// Whether the ARP message at the start of `buf` is Ethernet/IPv4 and whole: `Ok(false)` for
/// other hardware or protocol types.
pub fn is_ethernet_ipv4(buf: &[u8]) -> Result<bool, Truncated> {
    need("arp", buf, 8)?;
    let eth_ip = be16(buf, 0) == 1 && be16(buf, 2) == 0x0800 && buf[4] == 6 && buf[5] == 4;
    if eth_ip {
        need("arp", buf, LEN)?;
    }
    Ok(eth_ip)
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncations() {
        let mut m = [0u8; 28];
        m[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
        for n in 0..28 {
            assert!(super::is_ethernet_ipv4(&m[..n]).is_err());
        }
        assert_eq!(super::is_ethernet_ipv4(&m), Ok(true));
        m[1] = 6;
        assert_eq!(super::is_ethernet_ipv4(&m[..8]), Ok(false));
    }
}
