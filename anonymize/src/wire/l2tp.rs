//! L2TPv2 data messages (RFC 2661) over UDP, carrying PPP.

use std::ops::Range;

use super::{be16, need, Bad};

/// The UDP port.
pub const PORT: u16 = 1701;

const T: u8 = 0x80;
const L: u8 = 0x40;
const S: u8 = 0x08;
const O: u8 = 0x02;
const P: u8 = 0x01;

/// An L2TPv2 data message header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header length, offset padding included: the PPP frame starts there.
    pub len: usize,
    /// The message length, when the L flag gives it.
    pub length: Option<usize>,
    /// The flags and version as written out (reserved bits zeroed).
    pub clean: [u8; 2],
    /// The offset padding, zeroed by the walker.
    pub padding: Range<usize>,
}

/// Parses the L2TPv2 header at the start of `buf`: version 2, data messages only (control
/// messages carry host names, challenges and addresses in their AVPs: never walked).
pub fn parse(buf: &[u8]) -> Result<Header, Bad> {
    need("l2tp", buf, 2)?;
    let flags = buf[0];
    if flags & T != 0 || buf[1] & 0x0f != 2 {
        return Err(Bad::Unsupported);
    }
    let mut at = 2;
    let length = (flags & L != 0).then(|| {
        at += 2;
        at - 2
    });
    at += 4; // tunnel and session IDs
    if flags & S != 0 {
        at += 4; // Ns, Nr
    }
    let mut padding = at..at;
    if flags & O != 0 {
        need("l2tp", buf, at + 2)?;
        let size = usize::from(be16(buf, at));
        padding = at + 2..at + 2 + size;
        at = padding.end;
    }
    need("l2tp", buf, at)?;
    Ok(Header {
        len: at,
        length: length.map(|o| usize::from(be16(buf, o))),
        clean: [flags & (L | S | O | P), 2],
        padding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_headers() {
        let plain = [0x00u8, 0x02, 0, 1, 0, 2];
        for n in 0..6 {
            assert!(parse(&plain[..n]).is_err());
        }
        let h = parse(&plain).unwrap();
        assert_eq!((h.len, h.length, h.padding), (6, None, 6..6));
        let full = [
            0x4bu8 | 0x20,
            0xf2,
            0,
            20,
            0,
            1,
            0,
            2,
            0,
            3,
            0,
            4,
            0,
            2,
            0xee,
            0xee,
        ];
        for n in 0..full.len() {
            assert!(parse(&full[..n]).is_err(), "{n}");
        }
        let h = parse(&full).unwrap();
        assert_eq!((h.len, h.length, h.padding), (16, Some(20), 14..16));
        assert_eq!(h.clean, [0x4b, 2]);
        assert_eq!(parse(&[0xc8, 2, 0, 0, 0, 0]), Err(Bad::Unsupported));
        assert_eq!(parse(&[0, 3, 0, 0, 0, 0]), Err(Bad::Unsupported));
    }
}
