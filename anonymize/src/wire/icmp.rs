//! ICMP and ICMPv6 headers: type, code, checksum and the 4 bytes after them.

use super::{need, Truncated};

/// Header length (type, code, checksum and the 4-byte rest of header).
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum.
pub const CHECKSUM_AT: usize = 2;

/// ICMP (v4) types whose body quotes the packet that caused them.
pub fn v4_quotes_packet(kind: u8) -> bool {
    matches!(kind, 3 | 4 | 5 | 11 | 12)
}

/// ICMPv6 types whose body quotes the packet that caused them.
pub fn v6_quotes_packet(kind: u8) -> bool {
    matches!(kind, 1..=4)
}

/// The type of the ICMP header at the start of `buf`, after checking the header is there.
pub fn kind(buf: &[u8]) -> Result<u8, Truncated> {
    need("icmp", buf, HEADER_LEN)?;
    Ok(buf[0])
}

#[cfg(test)]
mod tests {
    #[test]
    fn truncations() {
        let h = [3u8, 1, 0, 0, 0, 0, 0, 0];
        for n in 0..8 {
            assert!(super::kind(&h[..n]).is_err());
        }
        assert_eq!(super::kind(&h), Ok(3));
    }
}
