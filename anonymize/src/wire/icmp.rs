//! ICMP and ICMPv6 headers: type, code, checksum and the 4 bytes after them.

use super::{need, Truncated};

/// Header length (type, code, checksum and the 4-byte rest of header).
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum.
pub const CHECKSUM_AT: usize = 2;
/// ICMP (v4) redirect: the 4 bytes after the checksum are the gateway's address.
pub const REDIRECT: u8 = 5;

/// ICMP (v4) types whose body quotes the packet that caused them.
pub fn v4_quotes_packet(kind: u8) -> bool {
    matches!(kind, 3 | 4 | 5 | 11 | 12)
}

/// ICMPv6 types whose body quotes the packet that caused them.
pub fn v6_quotes_packet(kind: u8) -> bool {
    matches!(kind, 1..=4)
}

/// ICMP (v4) types whose 4 bytes after the checksum are known fields (identifiers, sequence
/// numbers, pointers, MTUs, counts, the redirect gateway): for other types they are zeroed.
pub fn v4_rest_known(kind: u8) -> bool {
    matches!(kind, 0 | 3 | 4 | 5 | 8..=18 | 42 | 43)
}

/// ICMPv6 types whose 4 bytes after the checksum are known fields: for other types they are
/// zeroed.
pub fn v6_rest_known(kind: u8) -> bool {
    matches!(kind, 1..=4 | 128..=137 | 143 | 160 | 161)
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
        assert!(super::v4_rest_known(8) && !super::v4_rest_known(6) && !super::v4_rest_known(44));
        assert!(
            super::v6_rest_known(135) && !super::v6_rest_known(5) && !super::v6_rest_known(200)
        );
    }
}
