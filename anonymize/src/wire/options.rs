//! Type-length-value option lists (IPv4 and TCP options, IPv6 hop-by-hop and destination
//! options, segment routing TLVs), and what the walker does with each option's bytes.
//!
//! [`Options`] walks a list and never loops: every item it yields lies strictly after the
//! previous one, at least one byte further on, and it stops at the first option whose length
//! does not fit (yielding it as [`Tlv::Malformed`]: from there to the end nothing is
//! trusted).

use std::ops::Range;

/// How a list encodes single-byte options and lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// IPv4 and TCP: 0 ends the list, 1 is a one-byte no-op, other lengths count the
    /// kind and length bytes.
    EolNop,
    /// IPv6 options and SRH TLVs: 0 is one byte of padding, other lengths do not count
    /// the type and length bytes.
    Pad1,
}

/// One item of an option list, at byte offset `at` of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tlv {
    /// End of option list (IPv4, TCP): everything after it is padding.
    End {
        /// Offset of the end-of-list byte.
        at: usize,
    },
    /// A one-byte option (IPv4/TCP no-op, IPv6 Pad1).
    Single {
        /// Its offset.
        at: usize,
    },
    /// An option with a length byte that fits.
    Option {
        /// Offset of its kind byte.
        at: usize,
        /// The kind (type).
        kind: u8,
        /// Its whole length, kind and length bytes included.
        len: usize,
    },
    /// An option whose length byte is missing, too small or runs past the end: the list
    /// from `at` on cannot be read.
    Malformed {
        /// Offset where reading stopped.
        at: usize,
    },
}

/// An iterator over an option list.
#[derive(Clone, Debug)]
pub struct Options<'a> {
    buf: &'a [u8],
    at: usize,
    style: Style,
    done: bool,
}

impl<'a> Options<'a> {
    /// The options in `buf` (the list only, without the header around it).
    pub fn new(buf: &'a [u8], style: Style) -> Self {
        Self::at(buf, 0, style)
    }

    /// The options in `buf` from offset `at` on (an offset an earlier item gave).
    pub fn at(buf: &'a [u8], at: usize, style: Style) -> Self {
        Options {
            buf,
            at,
            style,
            done: false,
        }
    }

    fn finish(&mut self, item: Tlv) -> Option<Tlv> {
        self.done = true;
        Some(item)
    }
}

impl Iterator for Options<'_> {
    type Item = Tlv;

    fn next(&mut self) -> Option<Tlv> {
        let at = self.at;
        let kind = *self.buf.get(at).filter(|_| !self.done)?;
        match (self.style, kind) {
            (Style::EolNop, 0) => return self.finish(Tlv::End { at }),
            (Style::EolNop, 1) | (Style::Pad1, 0) => {
                self.at = at + 1;
                return Some(Tlv::Single { at });
            }
            _ => {}
        }
        let Some(&len) = self.buf.get(at + 1) else {
            return self.finish(Tlv::Malformed { at });
        };
        let len = match self.style {
            Style::EolNop => usize::from(len),
            Style::Pad1 => usize::from(len) + 2,
        };
        if len < 2 || len > self.buf.len() - at {
            return self.finish(Tlv::Malformed { at });
        }
        self.at = at + len;
        Some(Tlv::Option { at, kind, len })
    }
}

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// 4-byte addresses.
    V4,
    /// 16-byte addresses.
    V6,
}

/// What the walker does with the bytes of one known option, relative to its start: the
/// addresses at `first + i * stride` for `i < count` are anonymized, the bytes in `zero`
/// (parts of no field: trailing partial entries, reserved bytes, digests) are zeroed, and
/// every other byte is a field kept as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    /// Family of the addresses.
    pub family: Family,
    /// Offset of the first address.
    pub first: usize,
    /// Number of addresses.
    pub count: usize,
    /// Distance between addresses.
    pub stride: usize,
    /// Bytes to zero.
    pub zero: Range<usize>,
}

impl Fields {
    /// An option of harmless fields only.
    pub const KEEP: Fields = Fields {
        family: Family::V4,
        first: 0,
        count: 0,
        stride: 4,
        zero: 0..0,
    };

    /// `count` addresses of `family`, `stride` apart from `first`; the bytes from the end
    /// of the last entry to `len` are zeroed.
    pub fn list(family: Family, first: usize, stride: usize, len: usize) -> Fields {
        let count = len.saturating_sub(first) / stride;
        Fields {
            family,
            first,
            count,
            stride,
            zero: (first + count * stride).min(len)..len,
        }
    }

    /// Entries of `stride` harmless bytes from `first` (timestamps); the bytes from the end
    /// of the last whole entry to `len` are zeroed.
    pub fn entries(first: usize, stride: usize, len: usize) -> Fields {
        Fields {
            count: 0,
            ..Fields::list(Family::V4, first, stride, len)
        }
    }

    /// The offsets of the addresses.
    pub fn addresses(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count).map(|i| self.first + i * self.stride)
    }

    /// Length of one address.
    pub fn addr_len(&self) -> usize {
        match self.family {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }
}

/// The verdict on one option: what happens to its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A known option: its fields as [`Fields`] says.
    Known(Fields),
    /// An option the walker does not know (or a known one of the wrong length): replaced
    /// by padding of the same length.
    Neutralise,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(buf: &[u8], style: Style) -> Vec<Tlv> {
        Options::new(buf, style).collect()
    }

    #[test]
    fn eol_nop_lists() {
        let list = [1, 2, 4, 5, 0xb4, 1, 0, 9, 9];
        assert_eq!(
            items(&list, Style::EolNop),
            vec![
                Tlv::Single { at: 0 },
                Tlv::Option {
                    at: 1,
                    kind: 2,
                    len: 4
                },
                Tlv::Single { at: 5 },
                Tlv::End { at: 6 },
            ]
        );
        for bad in [&[7u8][..], &[7, 1], &[7, 0], &[7, 9, 1, 1]] {
            assert_eq!(
                items(bad, Style::EolNop).last(),
                Some(&Tlv::Malformed { at: 0 })
            );
        }
    }

    #[test]
    fn pad1_lists() {
        let list = [0, 1, 0, 5, 2, 0, 0, 0xc9];
        assert_eq!(
            items(&list, Style::Pad1),
            vec![
                Tlv::Single { at: 0 },
                Tlv::Option {
                    at: 1,
                    kind: 1,
                    len: 2
                },
                Tlv::Option {
                    at: 3,
                    kind: 5,
                    len: 4
                },
                Tlv::Malformed { at: 7 },
            ]
        );
    }

    #[test]
    fn every_item_advances_and_stays_inside() {
        // every two-byte prefix pattern over a short list
        for a in 0..=255u8 {
            for b in [0u8, 1, 2, 3, 4, 255] {
                let list = [a, b, a, b, 1, 0];
                for style in [Style::EolNop, Style::Pad1] {
                    let mut last = None;
                    for item in Options::new(&list, style) {
                        let at = match item {
                            Tlv::End { at } | Tlv::Single { at } | Tlv::Malformed { at } => at,
                            Tlv::Option { at, len, .. } => {
                                assert!(at + len <= list.len());
                                at
                            }
                        };
                        assert!(last.is_none_or(|l| at > l));
                        last = Some(at);
                    }
                }
            }
        }
    }

    #[test]
    fn fields_list_never_wraps() {
        for len in 0..40 {
            let f = Fields::list(Family::V4, 4, 8, len);
            assert!(f.zero.start <= f.zero.end && f.zero.end == len);
            assert!(f.addresses().all(|o| o + 4 <= len));
        }
    }
}
