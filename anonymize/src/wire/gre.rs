//! GRE (RFC 2784 with the key and sequence number of RFC 2890) and the ERSPAN headers that
//! ride on it (types II and III).

use super::{be16, need, Bad};

/// Offset of the checksum (when the C flag is set).
pub const CHECKSUM_AT: usize = 4;
/// Offset of the reserved half-word after the checksum.
pub const RESERVED1_AT: usize = 6;

const C: u8 = 0x80;
const K: u8 = 0x20;
const S: u8 = 0x10;

/// A GRE header: its length and the fields the walker acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Header length (4, plus 4 for each of checksum, key, sequence number).
    pub len: usize,
    /// Protocol type of the payload (an EtherType).
    pub protocol: u16,
    /// A checksum (over header and payload) is present.
    pub checksum: bool,
    /// A sequence number is present (ERSPAN type II needs one).
    pub sequence: bool,
}

/// Parses the GRE header at the start of `buf`: version 0, only the C, K and S flags.
pub fn parse(buf: &[u8]) -> Result<Header, Bad> {
    need("gre", buf, 4)?;
    let (flags, rest) = (buf[0], buf[1]);
    if flags & !(C | K | S) != 0 || rest != 0 {
        return Err(Bad::Unsupported);
    }
    let len = 4 + [C, K, S].iter().filter(|&&f| flags & f != 0).count() * 4;
    need("gre", buf, len)?;
    Ok(Header {
        len,
        protocol: be16(buf, 2),
        checksum: flags & C != 0,
        sequence: flags & S != 0,
    })
}

/// What an ERSPAN header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inner {
    /// An Ethernet frame.
    Ethernet,
    /// An IP packet (ERSPAN III frame type 2).
    Ip,
}

/// An ERSPAN header with its reserved and platform-specific bytes zeroed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erspan {
    /// Header length (8 for type II, 12 or 20 for type III).
    pub len: usize,
    /// The header as it is written out.
    pub clean: [u8; 20],
    /// What follows it.
    pub inner: Inner,
}

/// Parses an ERSPAN type II header (version 1): version and VLAN, class of service,
/// encapsulation type, truncation bit and session ID, 12 reserved bits (zeroed), port index.
pub fn erspan2(buf: &[u8]) -> Result<Erspan, Bad> {
    need("erspan", buf, 8)?;
    if buf[0] >> 4 != 1 {
        return Err(Bad::Unsupported);
    }
    let mut clean = [0u8; 20];
    clean[..8].copy_from_slice(&buf[..8]);
    clean[4] = 0;
    clean[5] &= 0x0f;
    Ok(Erspan {
        len: 8,
        clean,
        inner: Inner::Ethernet,
    })
}

/// Parses an ERSPAN type III header (version 2): version and VLAN, class of service, BSO,
/// truncation bit and session ID, timestamp, security group tag, then P, frame type,
/// hardware ID, direction, granularity and O; with O set an 8-byte platform-specific
/// subheader follows, of which only the platform ID is kept.
pub fn erspan3(buf: &[u8]) -> Result<Erspan, Bad> {
    need("erspan", buf, 12)?;
    if buf[0] >> 4 != 2 {
        return Err(Bad::Unsupported);
    }
    let inner = match (buf[10] >> 2) & 0x1f {
        0 => Inner::Ethernet,
        2 => Inner::Ip,
        _ => return Err(Bad::Unsupported),
    };
    let len = if buf[11] & 1 == 1 { 20 } else { 12 };
    need("erspan", buf, len)?;
    let mut clean = [0u8; 20];
    clean[..12].copy_from_slice(&buf[..12]);
    if len == 20 {
        clean[12] = buf[12] & 0xfc;
    }
    Ok(Erspan { len, clean, inner })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gre_lengths_and_flags() {
        let h = [0xb0u8, 0, 0x08, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2];
        for n in 0..16 {
            assert!(parse(&h[..n]).is_err(), "{n}");
        }
        let p = parse(&h).unwrap();
        assert_eq!(
            (p.len, p.protocol, p.checksum, p.sequence),
            (16, 0x0800, true, true)
        );
        assert_eq!(parse(&[0, 0, 0x86, 0xdd]).unwrap().len, 4);
        for bad in [
            [0x40u8, 0, 8, 0],
            [0x08, 0, 8, 0],
            [0x01, 0, 8, 0],
            [0, 1, 0x88, 0x0b],
        ] {
            assert_eq!(parse(&bad), Err(Bad::Unsupported));
        }
    }

    #[test]
    fn erspan_headers() {
        let ii = [0x10u8, 5, 0x08, 0x01, 0xff, 0xf1, 0x23, 0x45];
        for n in 0..8 {
            assert!(erspan2(&ii[..n]).is_err());
        }
        let e = erspan2(&ii).unwrap();
        assert_eq!(&e.clean[..8], &[0x10, 5, 0x08, 0x01, 0, 0x01, 0x23, 0x45]);
        let mut iii = [0u8; 20];
        iii[0] = 0x20;
        iii[11] = 1;
        iii[12..].copy_from_slice(&[0xff; 8]);
        assert!(erspan3(&iii[..19]).is_err());
        let e = erspan3(&iii).unwrap();
        assert_eq!((e.len, e.inner), (20, Inner::Ethernet));
        assert_eq!(&e.clean[12..], &[0xfc, 0, 0, 0, 0, 0, 0, 0]);
        iii[10] = 2 << 2;
        assert_eq!(erspan3(&iii).unwrap().inner, Inner::Ip);
        iii[10] = 3 << 2;
        assert_eq!(erspan3(&iii), Err(Bad::Unsupported));
        assert_eq!(erspan2(&iii), Err(Bad::Unsupported));
    }
}
