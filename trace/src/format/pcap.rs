//! libpcap files: a 24-byte global header, then records of a 16-byte header and the packet.
//!
//! Magic `a1b2c3d4` means microsecond timestamps, `a1b23c4d` nanoseconds; either may appear in
//! both byte orders, which then holds for every field of the file. The views below never panic
//! once `check_len` has succeeded.

use super::{need, Endian, FormatError, Parsed, PCAP_CAPLEN_CAP};
use crate::record::{Format, LinkType, Record};

mod field {
    use std::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION_MAJOR: usize = 4;
    pub const VERSION_MINOR: usize = 6;
    pub const THISZONE: usize = 8;
    pub const SIGFIGS: usize = 12;
    pub const SNAPLEN: usize = 16;
    pub const LINKTYPE: usize = 20;
    pub const HEADER_LEN: usize = 24;

    pub const TS_SEC: usize = 0;
    pub const TS_FRAC: usize = 4;
    pub const CAPLEN: usize = 8;
    pub const ORIG_LEN: usize = 12;
    pub const RECORD_HEADER_LEN: usize = 16;
}

/// Length of the global header.
pub const HEADER_LEN: usize = field::HEADER_LEN;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = field::RECORD_HEADER_LEN;
/// Magic of microsecond files.
pub const MAGIC_US: u32 = 0xa1b2_c3d4;
/// Magic of nanosecond files.
pub const MAGIC_NS: u32 = 0xa1b2_3c4d;

/// The format (µs or ns) a file starting with `head` has, if its magic is a pcap magic.
pub fn detect(head: &[u8]) -> Option<Format> {
    magic(head).map(|(_, f)| f)
}

fn magic(head: &[u8]) -> Option<(Endian, Format)> {
    let m: [u8; 4] = head.get(field::MAGIC)?.try_into().ok()?;
    match (u32::from_le_bytes(m), u32::from_be_bytes(m)) {
        (MAGIC_US, _) => Some((Endian::Little, Format::Pcap)),
        (MAGIC_NS, _) => Some((Endian::Little, Format::PcapNs)),
        (_, MAGIC_US) => Some((Endian::Big, Format::Pcap)),
        (_, MAGIC_NS) => Some((Endian::Big, Format::PcapNs)),
        _ => None,
    }
}

/// A view of the global header.
#[derive(Debug, Clone)]
pub struct FileHeader<T: AsRef<[u8]>> {
    buffer: T,
    endian: Endian,
}

impl<T: AsRef<[u8]>> FileHeader<T> {
    /// Wraps bytes without checks; getters may panic unless [`check_len`](Self::check_len) passed.
    pub fn new_unchecked(buffer: T, endian: Endian) -> Self {
        FileHeader { buffer, endian }
    }

    /// Checks that every byte a getter reads is there: `Err(more)` otherwise.
    pub fn check_len(&self) -> Result<(), usize> {
        need(self.buffer.as_ref(), field::HEADER_LEN).map_or(Ok(()), Err)
    }

    /// Wraps bytes after checking their length.
    pub fn new_checked(buffer: T, endian: Endian) -> Result<Self, usize> {
        let h = Self::new_unchecked(buffer, endian);
        h.check_len().map(|()| h)
    }

    fn u16(&self, at: usize) -> u16 {
        self.endian.u16(self.buffer.as_ref(), at)
    }

    fn u32(&self, at: usize) -> u32 {
        self.endian.u32(self.buffer.as_ref(), at)
    }

    /// Major version (2).
    pub fn version_major(&self) -> u16 {
        self.u16(field::VERSION_MAJOR)
    }

    /// Minor version (4).
    pub fn version_minor(&self) -> u16 {
        self.u16(field::VERSION_MINOR)
    }

    /// Time zone correction (always 0 in practice).
    pub fn thiszone(&self) -> u32 {
        self.u32(field::THISZONE)
    }

    /// Timestamp accuracy (always 0 in practice).
    pub fn sigfigs(&self) -> u32 {
        self.u32(field::SIGFIGS)
    }

    /// The snapshot length.
    pub fn snaplen(&self) -> u32 {
        self.u32(field::SNAPLEN)
    }

    /// The link type (low 16 bits of the field; the upper bits carry FCS information).
    pub fn link_type(&self) -> LinkType {
        LinkType(self.u32(field::LINKTYPE) & 0xffff)
    }
}

/// The global header, parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeaderRepr {
    /// Byte order of every field of the file.
    pub endian: Endian,
    /// [`Format::Pcap`] (µs) or [`Format::PcapNs`].
    pub format: Format,
    /// The snapshot length.
    pub snaplen: u32,
    /// The link type.
    pub link_type: LinkType,
}

impl FileHeaderRepr {
    /// Parses the global header at the start of `input`.
    pub fn parse(input: &[u8]) -> Result<Parsed<'_, FileHeaderRepr>, FormatError> {
        let Some((endian, format)) = magic(input) else {
            if let Some(more) = need(input, 4) {
                return Ok(Parsed::Incomplete { more });
            }
            return Err(FormatError::malformed(format_args!(
                "bad magic {:02x?}",
                &input[..4]
            )));
        };
        let header = match FileHeader::new_checked(input, endian) {
            Ok(h) => h,
            Err(more) => return Ok(Parsed::Incomplete { more }),
        };
        if header.version_major() != 2 {
            return Err(FormatError::malformed(format_args!(
                "unsupported version {}.{}",
                header.version_major(),
                header.version_minor()
            )));
        }
        let item = FileHeaderRepr {
            endian,
            format,
            snaplen: header.snaplen(),
            link_type: header.link_type(),
        };
        Ok(Parsed::Done {
            item,
            rest: &input[field::HEADER_LEN..],
        })
    }

    /// Writes the header (little-endian) into the first [`HEADER_LEN`] bytes of `out`.
    pub fn emit(&self, out: &mut [u8]) {
        let magic = match self.format {
            Format::PcapNs => MAGIC_NS,
            _ => MAGIC_US,
        };
        out[field::MAGIC].copy_from_slice(&magic.to_le_bytes());
        out[4..6].copy_from_slice(&2u16.to_le_bytes());
        out[6..8].copy_from_slice(&4u16.to_le_bytes());
        out[8..16].fill(0);
        out[16..20].copy_from_slice(&self.snaplen.to_le_bytes());
        out[20..24].copy_from_slice(&self.link_type.0.to_le_bytes());
    }

    /// Largest caplen accepted in a record of this file.
    pub fn caplen_limit(&self) -> u32 {
        self.snaplen
            .max(PCAP_CAPLEN_CAP)
            .min(super::MAX_RECORD_LEN as u32)
    }

    /// Nanoseconds per unit of the record's fractional timestamp.
    pub fn frac_ns(&self) -> u64 {
        match self.format {
            Format::PcapNs => 1,
            _ => 1_000,
        }
    }
}

/// A view of a record header.
#[derive(Debug, Clone)]
pub struct RecordHeader<T: AsRef<[u8]>> {
    buffer: T,
    endian: Endian,
}

impl<T: AsRef<[u8]>> RecordHeader<T> {
    /// Wraps bytes without checks.
    pub fn new_unchecked(buffer: T, endian: Endian) -> Self {
        RecordHeader { buffer, endian }
    }

    /// Checks that the 16 header bytes are there: `Err(more)` otherwise.
    pub fn check_len(&self) -> Result<(), usize> {
        need(self.buffer.as_ref(), field::RECORD_HEADER_LEN).map_or(Ok(()), Err)
    }

    /// Wraps bytes after checking their length.
    pub fn new_checked(buffer: T, endian: Endian) -> Result<Self, usize> {
        let h = Self::new_unchecked(buffer, endian);
        h.check_len().map(|()| h)
    }

    fn u32(&self, at: usize) -> u32 {
        self.endian.u32(self.buffer.as_ref(), at)
    }

    /// Seconds.
    pub fn ts_sec(&self) -> u32 {
        self.u32(field::TS_SEC)
    }

    /// Microseconds or nanoseconds, by the file's magic.
    pub fn ts_frac(&self) -> u32 {
        self.u32(field::TS_FRAC)
    }

    /// Captured length.
    pub fn caplen(&self) -> u32 {
        self.u32(field::CAPLEN)
    }

    /// Length on the wire.
    pub fn orig_len(&self) -> u32 {
        self.u32(field::ORIG_LEN)
    }
}

/// Parses one record at the start of `input`.
#[inline]
pub fn parse_record<'a>(
    file: &FileHeaderRepr,
    input: &'a [u8],
) -> Result<Parsed<'a, Record<'a>>, FormatError> {
    let header = match RecordHeader::new_checked(input, file.endian) {
        Ok(h) => h,
        Err(more) => return Ok(Parsed::Incomplete { more }),
    };
    let caplen = header.caplen();
    if caplen > file.caplen_limit() {
        return Err(FormatError::TooLarge {
            what: "caplen",
            len: caplen.into(),
            limit: file.caplen_limit().into(),
        });
    }
    let end = field::RECORD_HEADER_LEN + caplen as usize;
    if let Some(more) = need(input, end) {
        return Ok(Parsed::Incomplete { more });
    }
    let ts_ns =
        u64::from(header.ts_sec()) * 1_000_000_000 + u64::from(header.ts_frac()) * file.frac_ns();
    let item = Record {
        ts_ns,
        wire_len: header.orig_len(),
        link_type: file.link_type,
        interface: 0,
        drops: 0,
        data: &input[field::RECORD_HEADER_LEN..end],
    };
    Ok(Parsed::Done {
        item,
        rest: &input[end..],
    })
}

/// Writes a record header (little-endian) into the first 16 bytes of `out`.
pub fn emit_record_header(out: &mut [u8], ts_sec: u32, ts_frac: u32, caplen: u32, orig: u32) {
    out[0..4].copy_from_slice(&ts_sec.to_le_bytes());
    out[4..8].copy_from_slice(&ts_frac.to_le_bytes());
    out[8..12].copy_from_slice(&caplen.to_le_bytes());
    out[12..16].copy_from_slice(&orig.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const LE_US: [u8; 24] = [
        0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0,
    ];
    const BE_NS: [u8; 24] = [
        0xa1, 0xb2, 0x3c, 0x4d, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 101,
    ];

    fn header(bytes: &[u8]) -> FileHeaderRepr {
        match FileHeaderRepr::parse(bytes).unwrap() {
            Parsed::Done { item, .. } => item,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_both_byte_orders() {
        let le = header(&LE_US);
        assert_eq!(le.endian, Endian::Little);
        assert_eq!(le.format, Format::Pcap);
        assert_eq!(le.snaplen, 65535);
        assert_eq!(le.link_type, LinkType::ETHERNET);
        let be = header(&BE_NS);
        assert_eq!(be.endian, Endian::Big);
        assert_eq!(be.format, Format::PcapNs);
        assert_eq!(be.link_type, LinkType::RAW);
    }

    #[test]
    fn every_truncated_header_is_incomplete() {
        for n in 0..HEADER_LEN {
            let p = FileHeaderRepr::parse(&LE_US[..n]).unwrap();
            assert!(matches!(p, Parsed::Incomplete { more } if more > 0), "{n}");
        }
    }

    #[test]
    fn bad_magic_is_malformed() {
        assert!(FileHeaderRepr::parse(&[0u8; 24]).is_err());
    }

    #[test]
    fn record_round_trip_and_truncation() {
        let file = header(&BE_NS);
        let mut rec = [0u8; 20];
        rec[..16].copy_from_slice(&[0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, 60]);
        rec[16..].copy_from_slice(&[0x45, 0, 0, 20]);
        for n in 0..rec.len() {
            let p = parse_record(&file, &rec[..n]).unwrap();
            let more = if n < 16 { 16 - n } else { 20 - n };
            assert_eq!(p, Parsed::Incomplete { more });
        }
        let Parsed::Done { item, rest } = parse_record(&file, &rec).unwrap() else {
            panic!()
        };
        assert_eq!(item.ts_ns, 1_000_000_005);
        assert_eq!(item.wire_len, 60);
        assert_eq!(item.data, &[0x45, 0, 0, 20]);
        assert!(rest.is_empty());
    }

    #[test]
    fn caplen_over_cap_is_too_large() {
        let file = header(&LE_US);
        let mut rec = [0u8; 16];
        rec[8..12].copy_from_slice(&(PCAP_CAPLEN_CAP + 1).to_le_bytes());
        assert!(matches!(
            parse_record(&file, &rec),
            Err(FormatError::TooLarge { .. })
        ));
    }

    #[test]
    fn emit_then_parse() {
        let repr = FileHeaderRepr {
            endian: Endian::Little,
            format: Format::PcapNs,
            snaplen: 1500,
            link_type: LinkType::LINUX_SLL,
        };
        let mut out = [0u8; 24];
        repr.emit(&mut out);
        assert_eq!(header(&out), repr);
    }
}
