//! IPv4 header with options.

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
        let c = super::checksum::finish(super::checksum::sum(&b[..len]));
        set_be16(b, field::CHECKSUM, c);
    }
}

/// Where the addresses inside the IPv4 options are, as byte offsets into the options; `None`
/// when an option is malformed (a length under 2 or past the end).
///
/// Record route, loose and strict source route carry a list of addresses after a pointer;
/// timestamp options with flag 1 or 3 carry address and timestamp pairs.
pub fn option_addresses(options: &[u8], mut each: impl FnMut(usize)) -> Option<()> {
    let mut at = 0;
    while at < options.len() {
        let kind = options[at];
        match kind {
            0 => return Some(()),
            1 => {
                at += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(*options.get(at + 1)?);
        if len < 2 || at + len > options.len() {
            return None;
        }
        match kind {
            7 | 131 | 137 if len >= 3 => (at + 3..at + len - 3).step_by(4).for_each(&mut each),
            68 if len >= 4 && matches!(options[at + 3] & 0x0f, 1 | 3) => {
                (at + 4..at + len - 7).step_by(8).for_each(&mut each)
            }
            _ => {}
        }
        at += len;
    }
    Some(())
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

    #[test]
    fn option_addresses_found() {
        let opts = [0x94, 4, 0, 0, 1, 7, 11, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0];
        let mut found = vec![];
        option_addresses(&opts, |a| found.push(a)).unwrap();
        assert_eq!(found, vec![8, 12]);
        let ts = [68, 12, 5, 1, 9, 9, 9, 9, 0, 0, 0, 1];
        let mut found = vec![];
        option_addresses(&ts, |a| found.push(a)).unwrap();
        assert_eq!(found, vec![4]);
        assert!(option_addresses(&[7, 1], |_| {}).is_none());
        assert!(option_addresses(&[7, 9, 4], |_| {}).is_none());
        assert!(option_addresses(&[7], |_| {}).is_none());
    }
}
