//! TCP header.

use super::{need, Truncated};

/// Offset of the checksum.
pub const CHECKSUM_AT: usize = 16;
/// Header length without options.
pub const MIN_LEN: usize = 20;

/// Why a TCP header is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the data offset claims.
    Truncated(Truncated),
    /// Data offset under 5.
    Malformed,
}

/// The header length (data offset) of the TCP header at the start of `buf`, after checking
/// that the whole header, options included, is there.
pub fn header_len(buf: &[u8]) -> Result<usize, Bad> {
    need("tcp", buf, MIN_LEN).map_err(Bad::Truncated)?;
    let len = usize::from(buf[12] >> 4) * 4;
    if len < MIN_LEN {
        return Err(Bad::Malformed);
    }
    need("tcp options", buf, len).map_err(Bad::Truncated)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncations() {
        let mut h = [0u8; 24];
        h[12] = 6 << 4;
        for n in 0..24 {
            assert!(header_len(&h[..n]).is_err());
        }
        assert_eq!(header_len(&h), Ok(24));
        h[12] = 4 << 4;
        assert_eq!(header_len(&h), Err(Bad::Malformed));
    }
}
