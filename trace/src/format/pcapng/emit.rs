//! Writing pcapng blocks: little-endian SHB, IDB (nanosecond `if_tsresol`) and EPB.

use super::{
    field, BYTE_ORDER_MAGIC, ENHANCED_PACKET, IF_TSRESOL, INTERFACE_DESCRIPTION, SECTION_HEADER,
};
use crate::record::LinkType;

/// Length of the SHB [`emit_section_header`] writes.
pub const SECTION_HEADER_LEN: usize = 28;
/// Length of the IDB [`emit_interface`] writes.
pub const INTERFACE_LEN: usize = 32;
/// Framing and fixed fields of an EPB without data.
pub const EPB_OVERHEAD: usize = field::EPB_MIN_LEN;

/// Writes a little-endian SHB (version 1.0, unknown section length, no options).
pub fn emit_section_header(out: &mut [u8]) {
    let len = SECTION_HEADER_LEN as u32;
    out[0..4].copy_from_slice(&SECTION_HEADER.to_le_bytes());
    out[4..8].copy_from_slice(&len.to_le_bytes());
    out[8..12].copy_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
    out[12..14].copy_from_slice(&1u16.to_le_bytes());
    out[14..16].copy_from_slice(&0u16.to_le_bytes());
    out[16..24].copy_from_slice(&(-1i64).to_le_bytes());
    out[24..28].copy_from_slice(&len.to_le_bytes());
}

/// Writes a little-endian IDB with `if_tsresol` = 9 (nanoseconds).
pub fn emit_interface(out: &mut [u8], link_type: LinkType, snaplen: u32) {
    let len = INTERFACE_LEN as u32;
    out[0..4].copy_from_slice(&INTERFACE_DESCRIPTION.to_le_bytes());
    out[4..8].copy_from_slice(&len.to_le_bytes());
    out[8..10].copy_from_slice(&(link_type.0 as u16).to_le_bytes());
    out[10..12].fill(0);
    out[12..16].copy_from_slice(&snaplen.to_le_bytes());
    out[16..18].copy_from_slice(&IF_TSRESOL.to_le_bytes());
    out[18..20].copy_from_slice(&1u16.to_le_bytes());
    out[20..24].copy_from_slice(&[9, 0, 0, 0]);
    out[24..28].fill(0);
    out[28..32].copy_from_slice(&len.to_le_bytes());
}

/// Length of an EPB carrying `caplen` bytes.
pub fn epb_len(caplen: usize) -> usize {
    EPB_OVERHEAD + caplen.next_multiple_of(4)
}

/// Writes a little-endian EPB (nanosecond units) into the first `epb_len(data.len())` bytes.
pub fn emit_enhanced_packet(
    out: &mut [u8],
    interface: u32,
    ts_ns: u64,
    wire_len: u32,
    data: &[u8],
) {
    let total = epb_len(data.len());
    let len = total as u32;
    out[0..4].copy_from_slice(&ENHANCED_PACKET.to_le_bytes());
    out[4..8].copy_from_slice(&len.to_le_bytes());
    out[8..12].copy_from_slice(&interface.to_le_bytes());
    out[12..16].copy_from_slice(&((ts_ns >> 32) as u32).to_le_bytes());
    out[16..20].copy_from_slice(&(ts_ns as u32).to_le_bytes());
    out[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
    out[24..28].copy_from_slice(&wire_len.to_le_bytes());
    let end = field::EPB_DATA + data.len();
    out[field::EPB_DATA..end].copy_from_slice(data);
    out[end..total - 4].fill(0);
    out[total - 4..total].copy_from_slice(&len.to_le_bytes());
}
