//! Trace formats: pcap, pcapng and ERF, each a pure parser over bytes, a reader and a writer.
//!
//! Every format module ([`pcap`], [`pcapng`], [`erf`]) has the same shape: a private `field`
//! module of byte ranges, checked views over borrowed bytes (`new_unchecked` / `check_len` /
//! `new_checked`; after `check_len` succeeds no getter panics), and a pure parser over `&[u8]`
//! that returns the item and the rest, or how many more bytes it needs ([`Parsed`]).
//!
//! [`TraceReader`] owns the source (a memory map or a bounded stream buffer) and drives the
//! parser; it lends one [`Record`] at a time. [`RecordEncoder`] turns records into bytes
//! without allocating; [`TraceWriter`] writes a whole file through it.
//!
//! Limits: no length taken from the input allocates more than [`MAX_RECORD_LEN`]; pcap records
//! may exceed the file's snaplen up to [`PCAP_CAPLEN_CAP`] (some writers do), no further.

use std::fmt;

pub mod erf;
mod error;
mod mmap;
pub mod pcap;
pub mod pcapng;
#[cfg(test)]
mod proptests;
mod reader;
mod writer;

pub use crate::record::{Format, LinkType, OwnedRecord, Record};
pub use error::{ReadError, WriteError};
pub use reader::{CopyStop, RecordHead, TraceReader, DEFAULT_STREAM_BUFFER};
pub use writer::{RecordEncoder, TraceWriter};

/// The largest record or block any reader buffers (16 MiB).
pub const MAX_RECORD_LEN: usize = 16 << 20;

/// pcap: a record's caplen may exceed the file's snaplen up to this many bytes (256 KiB).
pub const PCAP_CAPLEN_CAP: u32 = 256 << 10;

/// The outcome of a pure parser over a byte slice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed<'a, T> {
    /// A whole item, and the bytes after it.
    Done {
        /// What was parsed.
        item: T,
        /// The input after the item.
        rest: &'a [u8],
    },
    /// The input ends inside an item: `more` bytes beyond the input are needed at least.
    Incomplete {
        /// How many more bytes to supply before parsing again.
        more: usize,
    },
}

impl<T> Parsed<'_, T> {
    /// Bytes the item took from `input`, when done.
    pub fn consumed(&self, input_len: usize) -> Option<usize> {
        match self {
            Parsed::Done { rest, .. } => Some(input_len - rest.len()),
            Parsed::Incomplete { .. } => None,
        }
    }
}

/// What is wrong with some bytes, without file or offset (the reader adds those).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A length field larger than the limit we accept.
    #[error("{what} of {len} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Which length (`caplen`, `block total length`, `rlen`).
        what: &'static str,
        /// The length found.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// Anything else that cannot be read.
    #[error("{0}")]
    Malformed(String),
}

impl FormatError {
    pub(crate) fn malformed(what: impl fmt::Display) -> FormatError {
        FormatError::Malformed(what.to_string())
    }
}

/// `Incomplete` when `input` is shorter than `len`.
pub(crate) fn need(input: &[u8], len: usize) -> Option<usize> {
    (input.len() < len).then(|| len - input.len())
}

/// Byte order of a pcap file or pcapng section, fixed once when its header is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first.
    Big,
}

impl Endian {
    /// Reads a `u16` at `at`; the caller has checked the length.
    #[inline]
    pub fn u16(self, b: &[u8], at: usize) -> u16 {
        let v = [b[at], b[at + 1]];
        match self {
            Endian::Little => u16::from_le_bytes(v),
            Endian::Big => u16::from_be_bytes(v),
        }
    }

    /// Reads a `u32` at `at`; the caller has checked the length.
    #[inline]
    pub fn u32(self, b: &[u8], at: usize) -> u32 {
        let v = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        match self {
            Endian::Little => u32::from_le_bytes(v),
            Endian::Big => u32::from_be_bytes(v),
        }
    }

    /// Reads a `u64` at `at`; the caller has checked the length.
    #[inline]
    pub fn u64(self, b: &[u8], at: usize) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&b[at..at + 8]);
        match self {
            Endian::Little => u64::from_le_bytes(v),
            Endian::Big => u64::from_be_bytes(v),
        }
    }
}

/// Detects a trace format from the first bytes of a file: pcap and pcapng by their magic
/// numbers, ERF (which has none) by the plausibility of its first record header.
pub fn detect(head: &[u8]) -> Option<Format> {
    pcap::detect(head)
        .or_else(|| pcapng::detect(head).then_some(Format::Pcapng))
        .or_else(|| erf::plausible(head).then_some(Format::Erf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_by_magic() {
        assert_eq!(detect(&[0xd4, 0xc3, 0xb2, 0xa1]), Some(Format::Pcap));
        assert_eq!(detect(&[0xa1, 0xb2, 0xc3, 0xd4]), Some(Format::Pcap));
        assert_eq!(detect(&[0x4d, 0x3c, 0xb2, 0xa1]), Some(Format::PcapNs));
        assert_eq!(detect(&[0xa1, 0xb2, 0x3c, 0x4d]), Some(Format::PcapNs));
        assert_eq!(
            detect(&[0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a]),
            Some(Format::Pcapng)
        );
        assert_eq!(detect(b"GET / HTTP/1.1\r\n"), None);
        assert_eq!(detect(&[]), None);
    }

    #[test]
    fn endian_reads() {
        let b = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(Endian::Little.u16(&b, 0), 0x0201);
        assert_eq!(Endian::Big.u32(&b, 0), 0x01020304);
        assert_eq!(Endian::Little.u64(&b, 0), 0x0807060504030201);
    }
}
