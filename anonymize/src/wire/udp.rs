//! UDP header.

use super::{be16, need, Truncated};

/// Header length.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum.
pub const CHECKSUM_AT: usize = 6;

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
    }
}
