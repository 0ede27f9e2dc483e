//! The generous part of address collection: every offset of the raw packet where an IPv4
//! or IPv6 header plausibly starts gives its addresses, whatever the recogniser made of
//! the bytes around it (an unknown tunnel, a payload that carries packets).
//!
//! Plausible IPv4: version 4, a header length of 5 to 15 words that is all there, a total
//! length at least that long that fits in what is left of the packet on the wire, a
//! non-zero TTL, and a header checksum that verifies (checked last: it is the costly test). Plausible IPv6: version
//! 6, the fixed header all there, a payload length that fits in what is left of the packet
//! on the wire, a next header the recogniser knows, and a non-zero hop limit.

use lander_trace::checksum;

use crate::verify::layout::Layout;

/// Payload bytes scanned after the end of the recognised headers (tunnels put their inner
/// header near the start).
pub const SCAN_PAYLOAD: usize = 128;

/// Whether `b` starts with a plausible IPv4 header, in a packet with `wire_left` bytes on
/// the wire from there.
pub fn plausible_v4(b: &[u8], wire_left: usize) -> bool {
    let Some(&vihl) = b.first() else {
        return false;
    };
    let hl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || hl < 20 || b.len() < hl || b[8] == 0 {
        return false;
    }
    let total = usize::from(u16::from_be_bytes([b[2], b[3]]));
    (hl..=wire_left).contains(&total) && checksum::verifies(0, &b[..hl])
}

/// Whether `b` starts with a plausible IPv6 header, in a packet with `wire_left` bytes on
/// the wire from there.
pub fn plausible_v6(b: &[u8], wire_left: usize) -> bool {
    if b.len() < 40 || b[0] >> 4 != 6 || b[7] == 0 {
        return false;
    }
    let payload = usize::from(u16::from_be_bytes([b[4], b[5]]));
    let known = matches!(
        b[6],
        0 | 4 | 6 | 17 | 41 | 43 | 44 | 47 | 50 | 51 | 58 | 59 | 60
    );
    known && 40 + payload <= wire_left
}

/// Notes the addresses of every plausible IP header starting in `from..to` of `data` (a
/// packet of `wire_len` bytes on the wire).
pub fn scan(data: &[u8], from: usize, to: usize, wire_len: usize, layout: &mut Layout) {
    let to = to.min(data.len());
    for at in from..to {
        match data[at] >> 4 {
            4 if plausible_v4(&data[at..], wire_len.saturating_sub(at)) => {
                layout.note4(at + 12);
                layout.note4(at + 16);
            }
            6 if plausible_v6(&data[at..], wire_len.saturating_sub(at)) => {
                layout.note6(at + 8);
                layout.note6(at + 24);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_inside_random_bytes_is_found() {
        let mut ip = [
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 7,
        ];
        let c = checksum::checksum(0, &ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let mut data = vec![0x99u8; 7];
        data.extend_from_slice(&ip);
        data.extend_from_slice(&[0x45; 9]);
        let mut l = Layout::default();
        l.reset(data.len(), false);
        scan(&data, 0, data.len(), data.len(), &mut l);
        assert_eq!(l.extra_v4, vec![7 + 12, 7 + 16]);
        data[7 + 10] ^= 1; // a bad checksum is no header
        l.reset(data.len(), false);
        scan(&data, 0, data.len(), data.len(), &mut l);
        assert!(l.extra_v4.is_empty());
    }
}
