//! pcapng: a sequence of blocks, each `type, total length, body, total length`.
//!
//! A Section Header Block (SHB) fixes the byte order of everything up to the next SHB and
//! forgets the interfaces of the previous section. Interface Description Blocks (IDB) give each
//! interface its link type, snaplen and timestamp resolution (`if_tsresol`, default µs;
//! power-of-ten or, with the high bit set, power-of-two). Packets come in Enhanced (EPB),
//! Simple (SPB: interface 0, no timestamp) and obsolete Packet Blocks; every other block is
//! skipped. The views never panic once `check_len` has succeeded.

use super::{need, Endian, FormatError, Parsed, MAX_RECORD_LEN};
use crate::record::{LinkType, Record};

mod field {
    pub const BLOCK_TYPE: usize = 0;
    pub const BLOCK_LEN: usize = 4;
    pub const BODY: usize = 8;
    /// Type, length and the trailing length.
    pub const FRAME_LEN: usize = 12;

    pub const SHB_MAGIC: usize = 8;
    pub const SHB_MAJOR: usize = 12;
    pub const SHB_MINOR: usize = 14;
    pub const SHB_MIN_LEN: usize = 28;

    pub const IDB_LINKTYPE: usize = 8;
    pub const IDB_SNAPLEN: usize = 12;
    pub const IDB_OPTIONS: usize = 16;
    pub const IDB_MIN_LEN: usize = 20;

    pub const EPB_INTERFACE: usize = 8;
    pub const EPB_TS_HIGH: usize = 12;
    pub const EPB_TS_LOW: usize = 16;
    pub const EPB_CAPLEN: usize = 20;
    pub const EPB_ORIG_LEN: usize = 24;
    pub const EPB_DATA: usize = 28;
    pub const EPB_MIN_LEN: usize = 32;

    pub const SPB_ORIG_LEN: usize = 8;
    pub const SPB_DATA: usize = 12;
    pub const SPB_MIN_LEN: usize = 16;

    pub const OPB_INTERFACE: usize = 8;
    pub const OPB_DROPS: usize = 10;
}

/// Section Header Block type (the same in both byte orders).
pub const SECTION_HEADER: u32 = 0x0a0d_0d0a;
/// Interface Description Block type.
pub const INTERFACE_DESCRIPTION: u32 = 1;
/// Obsolete Packet Block type.
pub const OBSOLETE_PACKET: u32 = 2;
/// Simple Packet Block type.
pub const SIMPLE_PACKET: u32 = 3;
/// Enhanced Packet Block type.
pub const ENHANCED_PACKET: u32 = 6;
/// The SHB byte-order magic.
pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
/// Option code of `if_tsresol`.
pub const IF_TSRESOL: u16 = 9;
/// Option code of `if_tsoffset`.
pub const IF_TSOFFSET: u16 = 14;
/// Most interfaces one section may describe.
pub const MAX_INTERFACES: usize = 1 << 16;

/// True when `head` starts like a pcapng file.
pub fn detect(head: &[u8]) -> bool {
    head.len() >= 4
        && u32::from_le_bytes([head[0], head[1], head[2], head[3]]) == SECTION_HEADER
        && (head.len() < 12 || shb_endian(head).is_some())
}

fn shb_endian(input: &[u8]) -> Option<Endian> {
    let m: [u8; 4] = input
        .get(field::SHB_MAGIC..field::SHB_MAGIC + 4)?
        .try_into()
        .ok()?;
    if u32::from_le_bytes(m) == BYTE_ORDER_MAGIC {
        Some(Endian::Little)
    } else if u32::from_be_bytes(m) == BYTE_ORDER_MAGIC {
        Some(Endian::Big)
    } else {
        None
    }
}

/// A view of one block.
#[derive(Debug, Clone)]
pub struct Block<T: AsRef<[u8]>> {
    buffer: T,
    endian: Endian,
}

impl<T: AsRef<[u8]>> Block<T> {
    /// Wraps bytes without checks.
    pub fn new_unchecked(buffer: T, endian: Endian) -> Self {
        Block { buffer, endian }
    }

    /// Checks the framing: both lengths agree, are a multiple of 4, at least 12, and all there.
    pub fn check_len(&self) -> Result<(), FormatError> {
        let b = self.buffer.as_ref();
        if b.len() < field::FRAME_LEN {
            return Err(FormatError::malformed("block shorter than 12 bytes"));
        }
        let total = self.total_len() as usize;
        if total < field::FRAME_LEN || !total.is_multiple_of(4) || total > b.len() {
            return Err(FormatError::malformed(format_args!(
                "block total length {total} (of {} bytes)",
                b.len()
            )));
        }
        let trailing = self.endian.u32(b, total - 4);
        if trailing as usize != total {
            return Err(FormatError::malformed(format_args!(
                "block total length {total} but trailing length {trailing}"
            )));
        }
        Ok(())
    }

    /// Wraps bytes after checking the framing.
    pub fn new_checked(buffer: T, endian: Endian) -> Result<Self, FormatError> {
        let b = Self::new_unchecked(buffer, endian);
        b.check_len().map(|()| b)
    }

    /// The block type.
    pub fn block_type(&self) -> u32 {
        self.endian.u32(self.buffer.as_ref(), field::BLOCK_TYPE)
    }

    /// The total length, framing included.
    pub fn total_len(&self) -> u32 {
        self.endian.u32(self.buffer.as_ref(), field::BLOCK_LEN)
    }

    /// The whole block (framing included), `total_len` bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len() as usize]
    }

    /// The body between the leading and trailing length.
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[field::BODY..self.total_len() as usize - 4]
    }
}

/// Timestamp resolution of an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResolution {
    /// Units of 10^-n seconds.
    Pow10(u8),
    /// Units of 2^-n seconds.
    Pow2(u8),
}

impl TsResolution {
    /// Decodes the one-byte `if_tsresol` value.
    pub fn from_option(v: u8) -> TsResolution {
        if v & 0x80 == 0 {
            TsResolution::Pow10(v)
        } else {
            TsResolution::Pow2(v & 0x7f)
        }
    }

    /// Converts a count of units into nanoseconds (saturating).
    #[inline]
    pub fn to_ns(self, units: u64) -> u64 {
        let ns = match self {
            TsResolution::Pow10(9) => return units,
            TsResolution::Pow10(6) => return units.saturating_mul(1_000),
            TsResolution::Pow10(n) if n <= 9 => u128::from(units) * 10u128.pow(9 - u32::from(n)),
            TsResolution::Pow10(n) => 10u128
                .checked_pow(u32::from(n) - 9)
                .map_or(0, |d| u128::from(units) / d),
            TsResolution::Pow2(n) => (u128::from(units) * 1_000_000_000) >> n,
        };
        u64::try_from(ns).unwrap_or(u64::MAX)
    }
}

/// One interface of a section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Link type.
    pub link_type: LinkType,
    /// Snapshot length (0: none).
    pub snaplen: u32,
    /// Timestamp resolution.
    pub tsresol: TsResolution,
    /// Seconds added to every timestamp (`if_tsoffset`).
    pub tsoffset: i64,
}

/// A parsed block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockBody<'a> {
    /// SHB: starts a section.
    SectionHeader {
        /// Byte order of the section.
        endian: Endian,
        /// Major version (1).
        major: u16,
        /// Minor version.
        minor: u16,
    },
    /// IDB.
    InterfaceDescription(Interface),
    /// EPB.
    EnhancedPacket {
        /// Interface id.
        interface: u32,
        /// Timestamp in the interface's units.
        ts_units: u64,
        /// Original length.
        orig_len: u32,
        /// Captured bytes.
        data: &'a [u8],
    },
    /// SPB: data and padding; the caplen follows from the snaplen of interface 0.
    SimplePacket {
        /// Original length.
        orig_len: u32,
        /// Data and padding.
        body: &'a [u8],
    },
    /// The obsolete Packet Block.
    ObsoletePacket {
        /// Interface id.
        interface: u16,
        /// Drops count.
        drops: u16,
        /// Timestamp in the interface's units.
        ts_units: u64,
        /// Original length.
        orig_len: u32,
        /// Captured bytes.
        data: &'a [u8],
    },
    /// Any other block, skipped.
    Other {
        /// Its type.
        block_type: u32,
    },
}

/// Parses the block at the start of `input`; `endian` is the current section's byte order
/// (`None` before the first SHB).
pub fn parse_block(
    endian: Option<Endian>,
    input: &[u8],
) -> Result<Parsed<'_, BlockBody<'_>>, FormatError> {
    if let Some(more) = need(input, 8) {
        return Ok(Parsed::Incomplete { more });
    }
    let is_shb = Endian::Little.u32(input, 0) == SECTION_HEADER;
    let endian = if is_shb {
        if let Some(more) = need(input, 12) {
            return Ok(Parsed::Incomplete { more });
        }
        shb_endian(input).ok_or_else(|| FormatError::malformed("bad byte-order magic in SHB"))?
    } else {
        endian.ok_or_else(|| FormatError::malformed("block before the first section header"))?
    };
    let total = endian.u32(input, field::BLOCK_LEN) as usize;
    if total < field::FRAME_LEN || !total.is_multiple_of(4) {
        return Err(FormatError::malformed(format_args!(
            "block total length {total}"
        )));
    }
    if total > MAX_RECORD_LEN {
        return Err(FormatError::TooLarge {
            what: "block total length",
            len: total as u64,
            limit: MAX_RECORD_LEN as u64,
        });
    }
    if let Some(more) = need(input, total) {
        return Ok(Parsed::Incomplete { more });
    }
    let block = Block::new_checked(&input[..total], endian)?;
    let item = parse_body(&block)?;
    Ok(Parsed::Done {
        item,
        rest: &input[total..],
    })
}

fn parse_body<'a>(block: &Block<&'a [u8]>) -> Result<BlockBody<'a>, FormatError> {
    let b: &'a [u8] = block.buffer;
    let e = block.endian;
    let total = b.len();
    match block.block_type() {
        SECTION_HEADER => {
            min_len(total, field::SHB_MIN_LEN, "SHB")?;
            let major = e.u16(b, field::SHB_MAJOR);
            if major != 1 {
                return Err(FormatError::malformed(format_args!(
                    "unsupported pcapng version {major}"
                )));
            }
            let minor = e.u16(b, field::SHB_MINOR);
            Ok(BlockBody::SectionHeader {
                endian: e,
                major,
                minor,
            })
        }
        INTERFACE_DESCRIPTION => {
            min_len(total, field::IDB_MIN_LEN, "IDB")?;
            parse_interface(e, b).map(BlockBody::InterfaceDescription)
        }
        ENHANCED_PACKET => parse_epb(e, b),
        SIMPLE_PACKET => {
            min_len(total, field::SPB_MIN_LEN, "SPB")?;
            Ok(BlockBody::SimplePacket {
                orig_len: e.u32(b, field::SPB_ORIG_LEN),
                body: &b[field::SPB_DATA..total - 4],
            })
        }
        OBSOLETE_PACKET => parse_opb(e, b),
        block_type => Ok(BlockBody::Other { block_type }),
    }
}

fn min_len(total: usize, min: usize, what: &str) -> Result<(), FormatError> {
    if total < min {
        return Err(FormatError::malformed(format_args!(
            "{what} of {total} bytes, at least {min} needed"
        )));
    }
    Ok(())
}

fn parse_interface(e: Endian, b: &[u8]) -> Result<Interface, FormatError> {
    let mut iface = Interface {
        link_type: LinkType(u32::from(e.u16(b, field::IDB_LINKTYPE))),
        snaplen: e.u32(b, field::IDB_SNAPLEN),
        tsresol: TsResolution::Pow10(6),
        tsoffset: 0,
    };
    for_each_option(
        e,
        &b[field::IDB_OPTIONS..b.len() - 4],
        |code, value| match (code, value.len()) {
            (IF_TSRESOL, 1) => iface.tsresol = TsResolution::from_option(value[0]),
            (IF_TSOFFSET, 8) => iface.tsoffset = e.u64(value, 0) as i64,
            _ => {}
        },
    )?;
    Ok(iface)
}

/// Calls `f(code, value)` for each option up to `opt_endofopt` or the end of `opts`.
pub fn for_each_option(
    e: Endian,
    mut opts: &[u8],
    mut f: impl FnMut(u16, &[u8]),
) -> Result<(), FormatError> {
    while opts.len() >= 4 {
        let code = e.u16(opts, 0);
        let len = usize::from(e.u16(opts, 2));
        if code == 0 {
            break;
        }
        if 4 + len > opts.len() {
            return Err(FormatError::malformed(format_args!(
                "option {code} of {len} bytes runs past the end of its block"
            )));
        }
        f(code, &opts[4..4 + len]);
        opts = &opts[(4 + len).next_multiple_of(4).min(opts.len())..];
    }
    Ok(())
}

fn parse_epb(e: Endian, b: &[u8]) -> Result<BlockBody<'_>, FormatError> {
    min_len(b.len(), field::EPB_MIN_LEN, "EPB")?;
    let caplen = e.u32(b, field::EPB_CAPLEN) as usize;
    let room = b.len() - field::EPB_MIN_LEN;
    if caplen > room {
        return Err(FormatError::malformed(format_args!(
            "EPB caplen {caplen} exceeds its block ({room} bytes of data room)"
        )));
    }
    Ok(BlockBody::EnhancedPacket {
        interface: e.u32(b, field::EPB_INTERFACE),
        ts_units: ts_units(e, b),
        orig_len: e.u32(b, field::EPB_ORIG_LEN),
        data: &b[field::EPB_DATA..field::EPB_DATA + caplen],
    })
}

fn ts_units(e: Endian, b: &[u8]) -> u64 {
    u64::from(e.u32(b, field::EPB_TS_HIGH)) << 32 | u64::from(e.u32(b, field::EPB_TS_LOW))
}

fn parse_opb(e: Endian, b: &[u8]) -> Result<BlockBody<'_>, FormatError> {
    // Same layout as the EPB, with a 16-bit interface id and a 16-bit drops count.
    let BlockBody::EnhancedPacket {
        ts_units,
        orig_len,
        data,
        ..
    } = parse_epb(e, b)?
    else {
        unreachable!("parse_epb returns an EnhancedPacket")
    };
    Ok(BlockBody::ObsoletePacket {
        interface: e.u16(b, field::OPB_INTERFACE),
        drops: e.u16(b, field::OPB_DROPS),
        ts_units,
        orig_len,
        data,
    })
}

/// Reading state: the current section's byte order and interfaces.
#[derive(Clone, Debug, Default)]
pub struct Sections {
    endian: Option<Endian>,
    interfaces: Vec<Interface>,
    sections: u32,
}

impl Sections {
    /// A reader before the first SHB.
    pub fn new() -> Sections {
        Sections::default()
    }

    /// The interfaces of the current section.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Sections seen so far.
    pub fn sections(&self) -> u32 {
        self.sections
    }

    /// Byte order of the current section.
    pub fn endian(&self) -> Option<Endian> {
        self.endian
    }

    /// Parses the next block: `Done { item: Some(record) }` for packets, `None` for others.
    #[inline]
    pub fn step<'a>(
        &mut self,
        input: &'a [u8],
    ) -> Result<Parsed<'a, Option<Record<'a>>>, FormatError> {
        let (body, rest) = match parse_block(self.endian, input)? {
            Parsed::Done { item, rest } => (item, rest),
            Parsed::Incomplete { more } => return Ok(Parsed::Incomplete { more }),
        };
        let item = self.apply(body)?;
        Ok(Parsed::Done { item, rest })
    }

    fn apply<'a>(&mut self, body: BlockBody<'a>) -> Result<Option<Record<'a>>, FormatError> {
        match body {
            BlockBody::SectionHeader { endian, .. } => {
                self.endian = Some(endian);
                self.interfaces.clear();
                self.sections += 1;
                Ok(None)
            }
            BlockBody::InterfaceDescription(iface) => {
                if self.interfaces.len() >= MAX_INTERFACES {
                    return Err(FormatError::malformed("more than 65536 interfaces"));
                }
                self.interfaces.push(iface);
                Ok(None)
            }
            BlockBody::EnhancedPacket {
                interface,
                ts_units,
                orig_len,
                data,
            } => self
                .record(interface, ts_units, orig_len, 0, data)
                .map(Some),
            BlockBody::ObsoletePacket {
                interface,
                drops,
                ts_units,
                orig_len,
                data,
            } => self
                .record(interface.into(), ts_units, orig_len, drops.into(), data)
                .map(Some),
            BlockBody::SimplePacket { orig_len, body } => self.simple(orig_len, body).map(Some),
            BlockBody::Other { .. } => Ok(None),
        }
    }

    fn interface(&self, id: u32) -> Result<&Interface, FormatError> {
        self.interfaces.get(id as usize).ok_or_else(|| {
            FormatError::malformed(format_args!(
                "packet on interface {id}, but the section describes {}",
                self.interfaces.len()
            ))
        })
    }

    fn record<'a>(
        &self,
        interface: u32,
        ts_units: u64,
        wire_len: u32,
        drops: u32,
        data: &'a [u8],
    ) -> Result<Record<'a>, FormatError> {
        let iface = self.interface(interface)?;
        let mut ts_ns = iface.tsresol.to_ns(ts_units);
        if iface.tsoffset != 0 {
            ts_ns = ts_ns.saturating_add_signed(iface.tsoffset.saturating_mul(1_000_000_000));
        }
        Ok(Record {
            ts_ns,
            wire_len,
            link_type: iface.link_type,
            interface,
            drops,
            data,
        })
    }

    fn simple<'a>(&self, orig_len: u32, body: &'a [u8]) -> Result<Record<'a>, FormatError> {
        let iface = self.interface(0)?;
        let mut caplen = orig_len as usize;
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        if caplen > body.len() {
            return Err(FormatError::malformed(format_args!(
                "SPB packet of {caplen} bytes in a block of {} data bytes",
                body.len()
            )));
        }
        Ok(Record {
            ts_ns: 0,
            wire_len: orig_len,
            link_type: iface.link_type,
            interface: 0,
            drops: 0,
            data: &body[..caplen],
        })
    }
}

/// Writing blocks.
pub mod emit;

#[cfg(test)]
mod tests;
