//! PPP frames (RFC 1661) and PPPoE sessions (RFC 2516).

use super::{be16, need, Bad};

/// PPP protocol number of IPv4.
pub const IPV4: u16 = 0x0021;
/// PPP protocol number of IPv6.
pub const IPV6: u16 = 0x0057;
/// Length of a PPPoE header.
pub const PPPOE_LEN: usize = 6;

/// The PPP header at the start of `buf`: the address and control bytes (0xff 0x03) when
/// `framed` allows them and they are there, then a protocol of one byte (compressed: odd)
/// or two. Returns the header length and the protocol.
pub fn header(buf: &[u8], framed: bool) -> Result<(usize, u16), Bad> {
    let at = if framed && buf.starts_with(&[0xff, 0x03]) {
        2
    } else {
        0
    };
    need("ppp", buf, at + 1)?;
    if buf[at] & 1 == 1 {
        return Ok((at + 1, u16::from(buf[at])));
    }
    need("ppp", buf, at + 2)?;
    Ok((at + 2, be16(buf, at)))
}

/// The payload length of the PPPoE session header at the start of `buf` (version 1, type
/// 1, code 0: discovery packets, which carry names and cookies, are not sessions).
pub fn pppoe_session(buf: &[u8]) -> Result<usize, Bad> {
    need("pppoe", buf, PPPOE_LEN)?;
    if buf[0] != 0x11 || buf[1] != 0 {
        return Err(Bad::Unsupported);
    }
    Ok(usize::from(be16(buf, 4)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        assert_eq!(header(&[0xff, 0x03, 0x00, 0x21], true), Ok((4, IPV4)));
        assert_eq!(header(&[0xff, 0x03, 0x57], true), Ok((3, IPV6)));
        assert_eq!(header(&[0x00, 0x57], false), Ok((2, IPV6)));
        assert_eq!(header(&[0xff, 0x03, 0x00, 0x21], false), Ok((1, 0xff)));
        assert!(header(&[0xff, 0x03], true).is_err());
        assert!(header(&[0x00], false).is_err());
        let s = [0x11u8, 0, 0x12, 0x34, 0, 40];
        for n in 0..6 {
            assert!(pppoe_session(&s[..n]).is_err());
        }
        assert_eq!(pppoe_session(&s), Ok(40));
        assert_eq!(
            pppoe_session(&[0x11, 0x09, 0, 0, 0, 0]),
            Err(Bad::Unsupported)
        );
    }
}
