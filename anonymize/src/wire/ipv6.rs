//! IPv6 fixed header and extension headers.

use std::ops::Range;

use super::options::{Action, Family, Fields};
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

/// What happens to the hop-by-hop or destination option `opt` (type byte first,
/// `opt.len()` its whole length): PadN keeps its length with its data zeroed; router alert
/// and jumbo payload are kept; the home address is anonymized; everything else (and these
/// with a length they cannot have) is neutralised.
pub fn option_action(opt: &[u8]) -> Action {
    let len = opt.len();
    match opt.first() {
        Some(1) => Action::Known(Fields {
            zero: 2.min(len)..len,
            ..Fields::KEEP
        }),
        Some(5) if len == 4 => Action::Known(Fields::KEEP),
        Some(0xc2) if len == 6 => Action::Known(Fields::KEEP),
        Some(0xc9) if len == 18 => Action::Known(Fields::list(Family::V6, 2, 16, len)),
        _ => Action::Neutralise,
    }
}

/// The fields of a routing header `hdr` (whole, next header byte first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Routing {
    /// The addresses, and the bytes past them (SRH TLVs, partial entries) to zero.
    pub fields: Fields,
    /// Reserved bytes to zero.
    pub reserved: Range<usize>,
}

/// The fields of the routing header `hdr`; `None` for routing types whose layout is not known
/// to be an address list (0: source route, 2: home address, 4: segment routing).
pub fn routing(hdr: &[u8]) -> Option<Routing> {
    let len = hdr.len();
    let all = Fields::list(Family::V6, 8, 16, len);
    let (count, reserved) = match hdr.get(2)? {
        0 => (all.count, 4..8),
        2 => (all.count.min(1), 4..8),
        4 => (all.count.min(usize::from(*hdr.get(4)?) + 1), 4..4),
        _ => return None,
    };
    let end = 8 + 16 * count;
    Some(Routing {
        fields: Fields {
            count,
            zero: end.min(len)..len,
            ..all
        },
        reserved: reserved.start.min(len)..reserved.end.min(len),
    })
}

/// The integrity check value of an authentication header `hdr` (after next header, length,
/// 2 reserved bytes, SPI and sequence number), zeroed by the walker: a digest over the
/// original addresses is not kept.
pub fn ah_icv(hdr: &[u8]) -> Range<usize> {
    12.min(hdr.len())..hdr.len()
}

/// Whether `buf` holds an IPv6 packet beyond reasonable doubt (for payloads whose type is
/// not declared, such as MPLS): version 6 and a payload length that accounts for the bytes
/// present, up to a trailer of [`MAX_TRAILER`] bytes (an Ethernet FCS) or the padding of a
/// minimum-size Ethernet frame (`buf` of at most 46 bytes). Without a checksum to confirm
/// it, a length that merely fits would take one frame in ~50 for IPv6.
pub fn plausible(buf: &[u8]) -> bool {
    let Ok(p) = Packet::new_checked(buf) else {
        return false;
    };
    let whole = field::HEADER_LEN + p.payload_len();
    whole <= buf.len() && (buf.len() - whole <= MAX_TRAILER || buf.len() <= 46)
}

/// The most bytes after an IPv6 packet of undeclared type that [`plausible`] allows.
pub const MAX_TRAILER: usize = 4;

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
        let mut home = vec![0xc9u8, 16];
        home.extend_from_slice(&[0xaa; 16]);
        match option_action(&home) {
            Action::Known(f) => assert_eq!(f.addresses().collect::<Vec<_>>(), vec![2]),
            Action::Neutralise => panic!(),
        }
        assert_eq!(option_action(&home[..10]), Action::Neutralise);
        assert_eq!(option_action(&[0x3e, 2, 1, 2]), Action::Neutralise);
        assert_eq!(option_action(&[5, 2, 0, 0]), Action::Known(Fields::KEEP));
        let mut rh = vec![6u8, 4, 0, 2, 0, 0, 0, 0];
        rh.extend_from_slice(&[0xbb; 32]);
        let r = routing(&rh).unwrap();
        assert_eq!(r.fields.addresses().collect::<Vec<_>>(), vec![8, 24]);
        assert_eq!((r.fields.zero, r.reserved), (40..40, 4..8));
        assert_eq!(routing_final(&rh), Some(24));
        rh[2] = 4;
        assert_eq!(routing_final(&rh), Some(8));
        rh[4] = 0; // last entry 0: one segment, the rest is TLVs
        let r = routing(&rh).unwrap();
        assert_eq!((r.fields.count, r.fields.zero), (1, 24..40));
        rh[3] = 0;
        assert_eq!(routing_final(&rh), None);
        rh[2] = 3;
        assert!(routing(&rh).is_none());
        assert!(routing(&rh[..2]).is_none());
    }
}
