//! Geneve (RFC 8926): an 8-byte header, options, then the payload its protocol type names.

use std::ops::Range;

use super::{be16, need, Bad};

/// The UDP destination port.
pub const PORT: u16 = 6081;
/// Length of the fixed header.
pub const FIXED_LEN: usize = 8;

/// A Geneve header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length with the options.
    pub len: usize,
    /// Protocol type of the payload (an EtherType; 0x6558 for Ethernet).
    pub protocol: u16,
    /// The fixed header as it is written out: reserved bits zeroed.
    pub clean: [u8; FIXED_LEN],
}

impl Header {
    /// The options, zeroed by the walker (a list of zero-length options of class 0).
    pub fn options(&self) -> Range<usize> {
        FIXED_LEN..self.len
    }
}

/// Parses the Geneve header at the start of `buf` (version 0 only).
pub fn parse(buf: &[u8]) -> Result<Header, Bad> {
    need("geneve", buf, FIXED_LEN)?;
    if buf[0] >> 6 != 0 {
        return Err(Bad::Unsupported);
    }
    let len = FIXED_LEN + usize::from(buf[0] & 0x3f) * 4;
    need("geneve options", buf, len)?;
    let mut clean = [0u8; FIXED_LEN];
    clean[..7].copy_from_slice(&buf[..7]);
    clean[1] &= 0xc0;
    Ok(Header {
        len,
        protocol: be16(buf, 2),
        clean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_options() {
        let mut h = vec![0x02u8, 0xff, 0x65, 0x58, 1, 2, 3, 0x77];
        h.extend_from_slice(&[9; 8]);
        for n in 0..16 {
            assert!(parse(&h[..n]).is_err(), "{n}");
        }
        let g = parse(&h).unwrap();
        assert_eq!((g.len, g.protocol, g.options()), (16, 0x6558, 8..16));
        assert_eq!(g.clean, [0x02, 0xc0, 0x65, 0x58, 1, 2, 3, 0]);
        h[0] |= 0x40;
        assert_eq!(parse(&h), Err(Bad::Unsupported));
    }
}
