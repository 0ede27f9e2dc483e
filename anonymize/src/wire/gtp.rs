//! GTP-U (3GPP TS 29.281) carrying user IP packets (G-PDU).

use std::ops::Range;

use super::{be16, need, Bad};

/// The UDP port.
pub const PORT: u16 = 2152;
/// Length of the mandatory header.
pub const FIXED_LEN: usize = 8;
/// Message type of a G-PDU (a user packet follows).
pub const G_PDU: u8 = 255;

const E: u8 = 0x04;
const S_PN: u8 = 0x03;

/// A GTP-U header with its extension headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length with the optional fields and extension headers.
    pub len: usize,
    /// End of the message by its length field (relative to the header's start).
    pub end: usize,
    /// The flags byte as written out (the spare bit zeroed).
    pub flags: u8,
    /// The extension headers.
    pub extensions: Range<usize>,
}

/// Parses the GTP-U header at the start of `buf`: version 1, protocol type GTP, message
/// type G-PDU; extension headers followed to their end.
pub fn parse(buf: &[u8]) -> Result<Header, Bad> {
    need("gtp-u", buf, FIXED_LEN)?;
    let flags = buf[0];
    if flags >> 5 != 1 || flags & 0x10 == 0 || buf[1] != G_PDU {
        return Err(Bad::Unsupported);
    }
    let end = FIXED_LEN + usize::from(be16(buf, 2));
    if flags & (E | S_PN) == 0 {
        return Ok(Header {
            len: FIXED_LEN,
            end,
            flags: flags & 0xf7,
            extensions: FIXED_LEN..FIXED_LEN,
        });
    }
    need("gtp-u", buf, FIXED_LEN + 4)?;
    let first = FIXED_LEN + 4;
    let mut last = first;
    if flags & E != 0 {
        for ext in Extensions::new(buf, buf[first - 1], first) {
            last = ext?.end + 1;
        }
    }
    Ok(Header {
        len: last,
        end,
        flags: flags & 0xf7,
        extensions: first..last,
    })
}

/// The extension headers from `at`, the first of type `next`: each yields the range of its
/// contents (between its length byte and its next-type byte), or the error that ends the
/// chain. Each is at least 4 bytes long, so the chain always advances.
#[derive(Clone, Debug)]
pub struct Extensions<'a> {
    buf: &'a [u8],
    next: u8,
    at: usize,
}

impl<'a> Extensions<'a> {
    /// The chain in `buf` starting at `at` with an extension of type `next` (0: none).
    pub fn new(buf: &'a [u8], next: u8, at: usize) -> Self {
        Extensions { buf, next, at }
    }
}

impl Iterator for Extensions<'_> {
    type Item = Result<Range<usize>, Bad>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next == 0 {
            return None;
        }
        let units = usize::from(*self.buf.get(self.at).unwrap_or(&0));
        let len = units * 4;
        if let Err(e) = need("gtp-u extension", self.buf, self.at + len.max(4)) {
            self.next = 0;
            return Some(Err(e.into()));
        }
        if units == 0 {
            self.next = 0;
            return Some(Err(Bad::Unsupported));
        }
        let contents = self.at + 1..self.at + len - 1;
        self.next = self.buf[self.at + len - 1];
        self.at += len;
        Some(Ok(contents))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_extended_headers() {
        let plain = [0x30u8, 255, 0, 20, 1, 2, 3, 4];
        for n in 0..8 {
            assert!(parse(&plain[..n]).is_err());
        }
        let h = parse(&plain).unwrap();
        assert_eq!((h.len, h.end, h.extensions), (8, 28, 8..8));
        // sequence number and two extension headers (PDU session container, then 4 more bytes)
        let ext = [
            0x3eu8, 255, 0, 40, 1, 2, 3, 4, 0, 7, 0, 0x85, 1, 0x10, 9, 0x40, 1, 0xaa, 0xbb, 0,
        ];
        for n in 0..ext.len() {
            assert!(parse(&ext[..n]).is_err(), "{n}");
        }
        let h = parse(&ext).unwrap();
        assert_eq!((h.len, h.extensions, h.flags), (20, 12..20, 0x36));
        let contents: Vec<_> = Extensions::new(&ext, 0x85, 12)
            .map(Result::unwrap)
            .collect();
        assert_eq!(contents, vec![13..15, 17..19]);
        let mut zero_len = ext;
        zero_len[12] = 0;
        assert_eq!(parse(&zero_len), Err(Bad::Unsupported));
        assert_eq!(parse(&[0x30, 1, 0, 0, 0, 0, 0, 0]), Err(Bad::Unsupported));
    }
}
