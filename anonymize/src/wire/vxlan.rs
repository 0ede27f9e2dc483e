//! VXLAN (RFC 7348): an 8-byte header, then an Ethernet frame.

use super::{need, Bad};

/// The UDP destination port.
pub const PORT: u16 = 4789;
/// Header length.
pub const HEADER_LEN: usize = 8;
/// The I flag: the VNI is valid.
const I: u8 = 0x08;

/// The VXLAN header at the start of `buf` as it is written out: the flags reduced to I,
/// the reserved bytes zeroed (a group-based policy extension's group ID among them), the
/// VNI kept. Without the I flag it is no VXLAN header.
pub fn clean(buf: &[u8]) -> Result<[u8; HEADER_LEN], Bad> {
    need("vxlan", buf, HEADER_LEN)?;
    if buf[0] & I == 0 {
        return Err(Bad::Unsupported);
    }
    Ok([I, 0, 0, 0, buf[4], buf[5], buf[6], 0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header() {
        let h = [0x88u8, 0x01, 0x12, 0x34, 0xab, 0xcd, 0xef, 0x99];
        for n in 0..8 {
            assert!(clean(&h[..n]).is_err());
        }
        assert_eq!(clean(&h).unwrap(), [8, 0, 0, 0, 0xab, 0xcd, 0xef, 0]);
        assert_eq!(clean(&[0u8; 8]), Err(Bad::Unsupported));
    }
}
