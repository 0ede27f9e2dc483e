//! Endace ERF: records of a 16-byte header, optional 8-byte extension headers, and the payload.
//!
//! Header: `ts` (64-bit little-endian fixed point: high 32 bits seconds, low 32 bits the
//! binary fraction), `type` (low 7 bits; bit 7: extension headers follow, each with its own
//! "more" bit 7 in its first byte), `flags` (low 2 bits: port), then big-endian `rlen` (the
//! whole record, header and padding included), `lctr` (loss counter) and `wlen` (length on
//! the wire). Ethernet records carry 2 bytes of offset/pad before the frame; IPv4 and IPv6
//! records carry none; PAD records are skipped. There is no caplen: the captured length is
//! what `rlen` leaves, at most `wlen`. ERF has no magic, so [`plausible`] judges a header.
//! The views never panic once `check_len` has succeeded.

use super::{need, FormatError, Parsed};
use crate::record::{LinkType, Record};

mod field {
    use std::ops::Range;
    pub const TS: Range<usize> = 0..8;
    pub const TYPE: usize = 8;
    pub const FLAGS: usize = 9;
    pub const RLEN: Range<usize> = 10..12;
    pub const LCTR: Range<usize> = 12..14;
    pub const WLEN: Range<usize> = 14..16;
    pub const HEADER_LEN: usize = 16;
    pub const EXT_LEN: usize = 8;
    pub const ETH_PAD: usize = 2;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Length of one extension header.
pub const EXTENSION_LEN: usize = field::EXT_LEN;
/// Length of the Ethernet offset/pad field.
pub const ETH_PAD_LEN: usize = field::ETH_PAD;

/// Ethernet.
pub const TYPE_ETH: u8 = 2;
/// Raw IPv4.
pub const TYPE_IPV4: u8 = 22;
/// Raw IPv6.
pub const TYPE_IPV6: u8 = 23;
/// Padding record.
pub const TYPE_PAD: u8 = 48;
/// Bit 7 of `type`: extension headers follow.
pub const TYPE_EXT: u8 = 0x80;
/// Flags bit 2: variable-length record.
pub const FLAG_VARLEN: u8 = 0x04;

/// A view of the 16-byte record header.
#[derive(Debug, Clone)]
pub struct Header<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Header<T> {
    /// Wraps bytes without checks.
    pub fn new_unchecked(buffer: T) -> Self {
        Header { buffer }
    }

    /// Checks that the 16 header bytes are there: `Err(more)` otherwise.
    pub fn check_len(&self) -> Result<(), usize> {
        need(self.buffer.as_ref(), field::HEADER_LEN).map_or(Ok(()), Err)
    }

    /// Wraps bytes after checking their length.
    pub fn new_checked(buffer: T) -> Result<Self, usize> {
        let h = Self::new_unchecked(buffer);
        h.check_len().map(|()| h)
    }

    fn be16(&self, r: std::ops::Range<usize>) -> u16 {
        let b = &self.buffer.as_ref()[r];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The raw fixed-point timestamp.
    pub fn ts(&self) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.buffer.as_ref()[field::TS]);
        u64::from_le_bytes(v)
    }

    /// The timestamp in nanoseconds (fraction truncated).
    pub fn ts_ns(&self) -> u64 {
        ts_to_ns(self.ts())
    }

    /// The record type (low 7 bits).
    pub fn erf_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE] & 0x7f
    }

    /// True when extension headers follow the header.
    pub fn has_extensions(&self) -> bool {
        self.buffer.as_ref()[field::TYPE] & TYPE_EXT != 0
    }

    /// The flags byte.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    /// The port (interface) number, flags bits 0-1.
    pub fn port(&self) -> u8 {
        self.flags() & 0x03
    }

    /// Record length, header and padding included.
    pub fn rlen(&self) -> u16 {
        self.be16(field::RLEN)
    }

    /// Loss counter.
    pub fn lctr(&self) -> u16 {
        self.be16(field::LCTR)
    }

    /// Length on the wire.
    pub fn wlen(&self) -> u16 {
        self.be16(field::WLEN)
    }
}

/// Converts an ERF fixed-point timestamp into nanoseconds (fraction truncated).
pub fn ts_to_ns(ts: u64) -> u64 {
    let secs = ts >> 32;
    let frac = ts & 0xffff_ffff;
    secs * 1_000_000_000 + ((frac * 1_000_000_000) >> 32)
}

/// Converts nanoseconds into an ERF timestamp that [`ts_to_ns`] turns back into the same value.
pub fn ns_to_ts(ns: u64) -> u64 {
    let secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let frac = (sub << 32).div_ceil(1_000_000_000);
    secs << 32 | frac
}

/// One parsed record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErfRecord<'a> {
    /// Raw fixed-point timestamp.
    pub ts: u64,
    /// Type (low 7 bits).
    pub erf_type: u8,
    /// Flags.
    pub flags: u8,
    /// Record length.
    pub rlen: u16,
    /// Loss counter.
    pub lctr: u16,
    /// Wire length.
    pub wlen: u16,
    /// The extension headers, 8 bytes each.
    pub extensions: &'a [u8],
    /// Everything after the extension headers up to `rlen` (Ethernet pad included).
    pub payload: &'a [u8],
}

impl<'a> ErfRecord<'a> {
    /// The link type the record's type maps to; `None` for PAD and types we do not read.
    pub fn link_type(&self) -> Option<LinkType> {
        link_type_of(self.erf_type)
    }

    /// The packet as a [`Record`]; `None` for PAD and unsupported types.
    pub fn to_record(&self) -> Option<Record<'a>> {
        let link_type = self.link_type()?;
        let pad = if self.erf_type == TYPE_ETH {
            ETH_PAD_LEN
        } else {
            0
        };
        let frame = self.payload.get(pad..)?;
        let caplen = frame.len().min(usize::from(self.wlen));
        Some(Record {
            ts_ns: ts_to_ns(self.ts),
            wire_len: self.wlen.into(),
            link_type,
            interface: u32::from(self.flags & 0x03),
            drops: self.lctr.into(),
            data: &frame[..caplen],
        })
    }
}

/// The link type of an ERF type we read (raw IPv4 and IPv6 both map to `RAW`).
pub fn link_type_of(erf_type: u8) -> Option<LinkType> {
    match erf_type {
        TYPE_ETH => Some(LinkType::ETHERNET),
        TYPE_IPV4 | TYPE_IPV6 => Some(LinkType::RAW),
        _ => None,
    }
}

/// Parses the record at the start of `input`.
#[inline]
pub fn parse_record(input: &[u8]) -> Result<Parsed<'_, ErfRecord<'_>>, FormatError> {
    let h = match Header::new_checked(input) {
        Ok(h) => h,
        Err(more) => return Ok(Parsed::Incomplete { more }),
    };
    let rlen = usize::from(h.rlen());
    if rlen < field::HEADER_LEN {
        return Err(FormatError::malformed(format_args!(
            "rlen {rlen} is shorter than the 16-byte header"
        )));
    }
    if let Some(more) = need(input, rlen) {
        return Ok(Parsed::Incomplete { more });
    }
    let body = &input[field::HEADER_LEN..rlen];
    let ext_len = extensions_len(h.has_extensions(), body)?;
    let payload = &body[ext_len..];
    if h.erf_type() == TYPE_ETH && payload.len() < ETH_PAD_LEN {
        return Err(FormatError::malformed(format_args!(
            "Ethernet record of rlen {rlen} has no room for its 2-byte pad"
        )));
    }
    let item = ErfRecord {
        ts: h.ts(),
        erf_type: h.erf_type(),
        flags: h.flags(),
        rlen: h.rlen(),
        lctr: h.lctr(),
        wlen: h.wlen(),
        extensions: &body[..ext_len],
        payload,
    };
    Ok(Parsed::Done {
        item,
        rest: &input[rlen..],
    })
}

/// Bytes taken by the chain of extension headers at the start of `body`.
fn extensions_len(present: bool, body: &[u8]) -> Result<usize, FormatError> {
    let mut len = 0;
    let mut more = present;
    while more {
        let Some(ext) = body.get(len..len + field::EXT_LEN) else {
            return Err(FormatError::malformed(
                "extension headers run past the record's rlen",
            ));
        };
        more = ext[0] & 0x80 != 0;
        len += field::EXT_LEN;
    }
    Ok(len)
}

/// True when `head` starts with a believable ERF record header: a type we know, an `rlen`
/// that holds the header (and the Ethernet pad), flags without the reserved high bits, and a
/// `wlen` no longer than a jumbo frame.
pub fn plausible(head: &[u8]) -> bool {
    let Ok(h) = Header::new_checked(head) else {
        return false;
    };
    let t = h.erf_type();
    let known = matches!(t, TYPE_ETH | TYPE_IPV4 | TYPE_IPV6 | TYPE_PAD);
    let min = field::HEADER_LEN + if t == TYPE_ETH { ETH_PAD_LEN } else { 0 };
    known
        && usize::from(h.rlen()) >= min
        && h.flags() & 0xc0 == 0
        && (t == TYPE_PAD || (h.wlen() > 0 && h.wlen() <= 16_384))
        && h.ts() >> 32 != 0
}

/// Length of a record written for `caplen` captured bytes of type `erf_type`, padded to 8.
pub fn record_len(erf_type: u8, caplen: usize) -> usize {
    let pad = if erf_type == TYPE_ETH { ETH_PAD_LEN } else { 0 };
    (field::HEADER_LEN + pad + caplen).next_multiple_of(8)
}

/// Writes a record (no extension headers) into the first `record_len(erf_type, data.len())`
/// bytes of `out`. The caller has checked that the lengths fit in 16 bits.
pub fn emit_record(out: &mut [u8], erf_type: u8, ts_ns: u64, port: u8, wlen: u16, data: &[u8]) {
    let rlen = record_len(erf_type, data.len());
    out[field::TS].copy_from_slice(&ns_to_ts(ts_ns).to_le_bytes());
    out[field::TYPE] = erf_type;
    out[field::FLAGS] = (port & 0x03) | FLAG_VARLEN;
    out[field::RLEN].copy_from_slice(&(rlen as u16).to_be_bytes());
    out[field::LCTR].fill(0);
    out[field::WLEN].copy_from_slice(&wlen.to_be_bytes());
    let mut at = field::HEADER_LEN;
    if erf_type == TYPE_ETH {
        out[at..at + ETH_PAD_LEN].fill(0);
        at += ETH_PAD_LEN;
    }
    out[at..at + data.len()].copy_from_slice(data);
    out[at + data.len()..rlen].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth_record() -> Vec<u8> {
        let data = [0xaa; 14];
        let mut v = vec![0u8; record_len(TYPE_ETH, data.len())];
        emit_record(&mut v, TYPE_ETH, 1_700_000_000_123_456_789, 1, 14, &data);
        v
    }

    #[test]
    fn emit_then_parse() {
        let v = eth_record();
        assert_eq!(v.len(), 32);
        assert!(plausible(&v));
        let Parsed::Done { item, rest } = parse_record(&v).unwrap() else {
            panic!()
        };
        assert!(rest.is_empty());
        let r = item.to_record().unwrap();
        assert_eq!(r.ts_ns, 1_700_000_000_123_456_789);
        assert_eq!(r.data, &[0xaa; 14]);
        assert_eq!(r.interface, 1);
        assert_eq!(r.link_type, LinkType::ETHERNET);
    }

    #[test]
    fn every_truncation_is_incomplete() {
        let v = eth_record();
        for n in 0..v.len() {
            assert!(matches!(
                parse_record(&v[..n]).unwrap(),
                Parsed::Incomplete { more } if more > 0
            ));
        }
    }

    #[test]
    fn rlen_zero_is_malformed_not_a_loop() {
        let mut v = eth_record();
        v[10..12].fill(0);
        assert!(parse_record(&v).is_err());
        v[10..12].copy_from_slice(&15u16.to_be_bytes());
        assert!(parse_record(&v).is_err());
    }

    #[test]
    fn extension_headers_are_skipped() {
        let mut v = vec![0u8; 16 + 16 + 4];
        v[0..8].copy_from_slice(&ns_to_ts(5_000_000_000).to_le_bytes());
        v[8] = TYPE_IPV4 | TYPE_EXT;
        v[10..12].copy_from_slice(&36u16.to_be_bytes());
        v[14..16].copy_from_slice(&4u16.to_be_bytes());
        v[16] = 0x80; // first extension, more follow
        v[24] = 0x01; // last extension
        v[32..36].copy_from_slice(&[0x45, 1, 2, 3]);
        let Parsed::Done { item, .. } = parse_record(&v).unwrap() else {
            panic!()
        };
        assert_eq!(item.extensions.len(), 16);
        let r = item.to_record().unwrap();
        assert_eq!(r.data, &[0x45, 1, 2, 3]);
        assert_eq!(r.ts_ns, 5_000_000_000);
        // an extension chain that never ends is malformed
        v[24] = 0x80;
        v[32] = 0x80;
        assert!(parse_record(&v).is_err());
    }

    #[test]
    fn timestamps_round_trip() {
        for ns in [0, 1, 999_999_999, 1_000_000_000, 1_234_567_890_123_456_789] {
            assert_eq!(ts_to_ns(ns_to_ts(ns)), ns);
        }
    }

    #[test]
    fn pad_records_have_no_packet() {
        let mut v = vec![0u8; 24];
        v[8] = TYPE_PAD;
        v[10..12].copy_from_slice(&24u16.to_be_bytes());
        let Parsed::Done { item, .. } = parse_record(&v).unwrap() else {
            panic!()
        };
        assert!(item.to_record().is_none());
    }
}
