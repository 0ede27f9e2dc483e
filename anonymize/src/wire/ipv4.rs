//! IPv4 header with options.

use super::options::{Action, Family, Fields};
use lander_trace::checksum;

use super::{be16, need, set_be16, Truncated};

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
    pub const MIN_LEN: usize = 20;
}

/// Offset of the header checksum.
pub const CHECKSUM_AT: usize = field::CHECKSUM;
/// Offset of the source address.
pub const SRC_AT: usize = field::SRC;
/// Offset of the destination address.
pub const DST_AT: usize = field::DST;
/// Header length without options.
pub const MIN_LEN: usize = field::MIN_LEN;

/// Why an IPv4 header is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bad {
    /// Fewer bytes than the header claims.
    Truncated(Truncated),
    /// Version not 4 or IHL under 5.
    Malformed,
}

/// An IPv4 header view; `new_checked` covers the options too.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view after checking version, IHL and that the whole header (options included) fits.
    pub fn new_checked(buffer: T) -> Result<Self, Bad> {
        let b = buffer.as_ref();
        need("ipv4", b, field::MIN_LEN).map_err(Bad::Truncated)?;
        if b[field::VER_IHL] >> 4 != 4 || b[field::VER_IHL] & 0x0f < 5 {
            return Err(Bad::Malformed);
        }
        let p = Packet { buffer };
        need("ipv4 options", p.buffer.as_ref(), p.header_len()).map_err(Bad::Truncated)?;
        Ok(p)
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Total length field.
    pub fn total_len(&self) -> usize {
        be16(self.buffer.as_ref(), field::TOTAL_LEN).into()
    }

    /// Fragment offset in 8-byte units.
    pub fn frag_offset(&self) -> u16 {
        be16(self.buffer.as_ref(), field::FLAGS_FRAG) & 0x1fff
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// The options bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::MIN_LEN..self.header_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Recomputes the header checksum.
    pub fn fill_checksum(&mut self) {
        let len = self.header_len();
        let b = self.buffer.as_mut();
        set_be16(b, field::CHECKSUM, 0);
        let c = checksum::checksum(0, &b[..len]);
        set_be16(b, field::CHECKSUM, c);
    }
}

/// What happens to the IPv4 option `opt` (kind byte first, `opt.len()` its whole length).
///
/// Record route, loose and strict source route carry a list of addresses after a pointer;
/// the timestamp option carries timestamps (flag 0) or address and timestamp pairs (flags 1
/// and 3); router alert carries a 2-byte value. Bytes past the last whole entry are zeroed.
/// Every other option, and these with a length they cannot have, is neutralised.
pub fn option_action(opt: &[u8]) -> Action {
    let len = opt.len();
    match (opt.first(), opt.get(3)) {
        (Some(7 | 131 | 137), _) if len >= 3 => Action::Known(Fields::list(Family::V4, 3, 4, len)),
        (Some(68), Some(flags)) => match flags & 0x0f {
            0 => Action::Known(Fields::entries(4, 4, len)),
            1 | 3 => Action::Known(Fields::list(Family::V4, 4, 8, len)),
            _ => Action::Neutralise,
        },
        (Some(148), _) if len == 4 => Action::Known(Fields::KEEP),
        _ => Action::Neutralise,
    }
}

/// Whether `buf` starts with an IPv4 header beyond reasonable doubt (for payloads whose type
/// is not declared, such as MPLS): version 4, IHL at least 5, the whole header present with a
/// right checksum, and a total length that covers the header and fits the bytes present;
/// `may_be_cut` allows a total length past them (the capture may have cut the packet).
pub fn plausible(buf: &[u8], may_be_cut: bool) -> bool {
    let Ok(p) = Packet::new_checked(buf) else {
        return false;
    };
    let (hl, total) = (p.header_len(), p.total_len());
    let checksum_ok = checksum::verifies(0, &buf[..hl]);
    checksum_ok && total >= hl && (total <= buf.len() || may_be_cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(options: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        h[0] = 0x40 | ((20 + options.len()) / 4) as u8;
        h.extend_from_slice(options);
        h
    }

    #[test]
    fn check_len_covers_options() {
        let h = header(&[1, 1, 1, 0]);
        for n in 0..h.len() {
            assert!(Packet::new_checked(&h[..n]).is_err(), "{n}");
        }
        assert_eq!(
            Packet::new_checked(&h[..]).unwrap().options(),
            &[1, 1, 1, 0]
        );
        let mut v6 = h.clone();
        v6[0] = 0x65;
        assert_eq!(Packet::new_checked(&v6[..]).unwrap_err(), Bad::Malformed);
    }

    fn known(opt: &[u8]) -> Fields {
        match option_action(opt) {
            Action::Known(f) => f,
            Action::Neutralise => panic!("{opt:?} neutralised"),
        }
    }

    #[test]
    fn option_fields() {
        let rr = [7, 11, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(known(&rr).addresses().collect::<Vec<_>>(), vec![3, 7]);
        assert_eq!(known(&rr).zero, 11..11);
        let ts = [68, 12, 5, 1, 9, 9, 9, 9, 0, 0, 0, 1];
        assert_eq!(known(&ts).addresses().collect::<Vec<_>>(), vec![4]);
        let ts0 = [68, 10, 5, 0, 9, 9, 9, 9, 7, 7];
        assert_eq!((known(&ts0).count, known(&ts0).zero.clone()), (0, 8..10));
        assert_eq!(known(&[148, 4, 0, 0]), Fields::KEEP);
        for neutral in [
            &[82u8, 12, 0, 1][..],
            &[148, 6, 0, 0, 0, 0],
            &[68, 8, 5, 2],
            &[7, 2],
        ] {
            assert_eq!(option_action(neutral), Action::Neutralise, "{neutral:?}");
        }
    }

    /// A timestamp option of length 4, 5 or 6 made `at + len - 7` wrap: no entry, the rest
    /// zeroed, nothing out of bounds.
    #[test]
    fn short_timestamp_options_have_no_entries() {
        for len in 4..=11 {
            let mut ts = vec![68u8, len as u8, 5, 1];
            ts.resize(len, 0xee);
            let f = known(&ts);
            assert_eq!(f.count, usize::from(len >= 12));
            assert!(f.addresses().all(|o| o + 4 <= len));
            assert_eq!(f.zero, 4..len);
        }
    }

    #[test]
    fn plausibility() {
        let mut h = header(&[]);
        h[2..4].copy_from_slice(&40u16.to_be_bytes());
        h.resize(40, 0);
        let c = checksum::checksum(0, &h[..20]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(plausible(&h, false));
        assert!(!plausible(&h[..39], false));
        assert!(plausible(&h[..39], true));
        h[11] ^= 1;
        assert!(!plausible(&h, true));
    }
}
