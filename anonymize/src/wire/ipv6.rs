//! IPv6 fixed header and extension headers.

use super::{be16, need, Truncated};

mod field {
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const SRC: usize = 8;
    pub const DST: usize = 24;
    pub const HEADER_LEN: usize = 40;
}

/// Offset of the source address.
pub const SRC_AT: usize = field::SRC;
/// Offset of the destination address.
pub const DST_AT: usize = field::DST;
/// Length of the fixed header.
pub const HEADER_LEN: usize = field::HEADER_LEN;

/// Why an IPv6 header is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Fewer than 40 bytes.
    Truncated(Truncated),
    /// Version not 6.
    Malformed,
}

/// An IPv6 fixed header view.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view after checking the version and that 40 bytes are there.
    pub fn new_checked(buffer: T) -> Result<Self, Bad> {
        let b = buffer.as_ref();
        need("ipv6", b, field::HEADER_LEN).map_err(Bad::Truncated)?;
        if b[0] >> 4 != 6 {
            return Err(Bad::Malformed);
        }
        Ok(Packet { buffer })
    }

    /// Payload length field.
    pub fn payload_len(&self) -> usize {
        be16(self.buffer.as_ref(), field::PAYLOAD_LEN).into()
    }

    /// The first next-header value.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[field::NEXT_HEADER]
    }
}

/// An extension header: its type, length and next header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ext {
    /// Next header after this one.
    pub next: u8,
    /// Length of this header in bytes.
    pub len: usize,
}

impl Ext {
    /// Parses the extension header of type `kind` at the start of `buf` (hop-by-hop, routing,
    /// destination options and fragment headers in 8-octet units; AH in 4-octet units).
    pub fn parse(kind: u8, buf: &[u8]) -> Result<Ext, Truncated> {
        need("ipv6 extension header", buf, 8)?;
        let len = match kind {
            super::proto::FRAGMENT => 8,
            super::proto::AH => (usize::from(buf[1]) + 2) * 4,
            _ => (usize::from(buf[1]) + 1) * 8,
        };
        need("ipv6 extension header", buf, len)?;
        Ok(Ext { next: buf[0], len })
    }
}

/// Offsets of home address options (type 0xC9) in a destination options header `hdr`;
/// `None` when the options are malformed.
pub fn home_addresses(hdr: &[u8], mut each: impl FnMut(usize)) -> Option<()> {
    let mut at = 2;
    while at < hdr.len() {
        if hdr[at] == 0 {
            at += 1;
            continue;
        }
        let len = usize::from(*hdr.get(at + 1)?);
        if at + 2 + len > hdr.len() {
            return None;
        }
        if hdr[at] == 0xc9 {
            if len != 16 {
                return None;
            }
            each(at + 2);
        }
        at += 2 + len;
    }
    Some(())
}

/// Offsets of the addresses in a routing header `hdr`; `None` for routing types that are not
/// known to be address lists (0: source route, 2: home address, 4: segment routing).
pub fn routing_addresses(hdr: &[u8], mut each: impl FnMut(usize)) -> Option<()> {
    let count = match hdr[2] {
        0 => (hdr.len() - 8) / 16,
        2 => 1.min((hdr.len() - 8) / 16),
        4 => (usize::from(hdr[4]) + 1).min((hdr.len() - 8) / 16),
        _ => return None,
    };
    (0..count).for_each(|i| each(8 + 16 * i));
    Some(())
}

/// Offset of the final destination in a routing header `hdr` with segments left (RFC 8200
/// 8.1: the upper-layer pseudo-header takes it): the last address of a type 0 header, the
/// home address of type 2, Segment List\[0\] of a segment routing header (RFC 8754: the list
/// is in reverse order). `None` when no segments are left or the type is none of these.
pub fn routing_final(hdr: &[u8]) -> Option<usize> {
    let segments_left = *hdr.get(3)?;
    let count = (hdr.len().checked_sub(8)?) / 16;
    if segments_left == 0 || count == 0 {
        return None;
    }
    match hdr[2] {
        0 => Some(8 + 16 * (count - 1)),
        2 | 4 => Some(8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncations() {
        let mut h = [0u8; 40];
        h[0] = 0x60;
        for n in 0..40 {
            assert!(Packet::new_checked(&h[..n]).is_err());
        }
        assert!(Packet::new_checked(&h[..]).is_ok());
        let ext = [6u8, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        for n in 0..16 {
            assert!(Ext::parse(0, &ext[..n]).is_err());
        }
        assert_eq!(Ext::parse(0, &ext).unwrap(), Ext { next: 6, len: 16 });
        assert_eq!(Ext::parse(44, &ext[..8]).unwrap().len, 8);
    }

    #[test]
    fn options_and_routing() {
        let mut dst = vec![17u8, 2, 1, 0, 0xc9, 16];
        dst.extend_from_slice(&[0xaa; 16]);
        dst.extend_from_slice(&[0, 0]);
        let mut found = vec![];
        home_addresses(&dst[..24], |a| found.push(a)).unwrap();
        assert_eq!(found, vec![6]);
        assert!(home_addresses(&[0, 0, 1, 9], |_| {}).is_none());
        let mut rh = vec![6u8, 4, 0, 2, 0, 0, 0, 0];
        rh.extend_from_slice(&[0xbb; 32]);
        let mut found = vec![];
        routing_addresses(&rh, |a| found.push(a)).unwrap();
        assert_eq!(found, vec![8, 24]);
        assert_eq!(routing_final(&rh), Some(24));
        rh[2] = 4;
        assert_eq!(routing_final(&rh), Some(8));
        rh[3] = 0;
        assert_eq!(routing_final(&rh), None);
        rh[2] = 3;
        assert!(routing_addresses(&rh, |_| {}).is_none());
    }
}
