//! Errors of reading and writing traces.
//!
//! A read error names the file, the byte offset of the record or block it concerns, and what
//! was wrong; an I/O error is kept as the source.

use std::io;

use super::FormatError;
use crate::record::{Format, LinkType};

/// Reading a trace failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The source could not be opened or read.
    #[error("{path}{}: {source}", offset_text(*.offset))]
    Io {
        /// File name (or stream name).
        path: String,
        /// Where the read was, if it had started.
        offset: Option<u64>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The input ends inside a record or header.
    #[error(
        "{path}: offset {offset}: truncated at end: needed {needed} bytes, only {available} left"
    )]
    TruncatedAtEnd {
        /// File name.
        path: String,
        /// Start of the incomplete record.
        offset: u64,
        /// Bytes the record needs (from `offset`).
        needed: u64,
        /// Bytes there were.
        available: u64,
    },
    /// A record or block larger than any we accept.
    #[error("{path}: offset {offset}: {what} of {len} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// File name.
        path: String,
        /// Start of the record.
        offset: u64,
        /// Which length.
        what: &'static str,
        /// The length found.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A record or header that cannot be read.
    #[error("{path}: offset {offset}: malformed {format}: {what}")]
    Malformed {
        /// File name.
        path: String,
        /// Start of the record.
        offset: u64,
        /// The format being read.
        format: Format,
        /// What was wrong.
        what: String,
    },
    /// The first bytes are no trace format we know.
    #[error("{path}: not a pcap, pcapng or ERF file ({what})")]
    UnknownFormat {
        /// File name.
        path: String,
        /// What was seen.
        what: String,
    },
}

/// `: offset N` when the read had started, nothing when the source could not be opened.
fn offset_text(offset: Option<u64>) -> String {
    offset.map_or_else(String::new, |o| format!(": offset {o}"))
}

impl ReadError {
    /// Byte offset of the record the error concerns, when known.
    pub fn offset(&self) -> Option<u64> {
        match self {
            ReadError::Io { offset, .. } => *offset,
            ReadError::TruncatedAtEnd { offset, .. }
            | ReadError::RecordTooLarge { offset, .. }
            | ReadError::Malformed { offset, .. } => Some(*offset),
            ReadError::UnknownFormat { .. } => Some(0),
        }
    }

    /// True when the input simply ended inside a record (a file still being written, or cut).
    pub fn is_truncated_at_end(&self) -> bool {
        matches!(self, ReadError::TruncatedAtEnd { .. })
    }

    /// The file name the error concerns.
    pub fn path(&self) -> &str {
        match self {
            ReadError::Io { path, .. }
            | ReadError::TruncatedAtEnd { path, .. }
            | ReadError::RecordTooLarge { path, .. }
            | ReadError::Malformed { path, .. }
            | ReadError::UnknownFormat { path, .. } => path,
        }
    }

    pub(crate) fn from_format(path: &str, offset: u64, format: Format, e: FormatError) -> Self {
        let path = path.to_string();
        match e {
            FormatError::TooLarge { what, len, limit } => ReadError::RecordTooLarge {
                path,
                offset,
                what,
                len,
                limit,
            },
            FormatError::Malformed(what) => ReadError::Malformed {
                path,
                offset,
                format,
                what,
            },
        }
    }
}

/// Encoding or writing a record failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The sink failed.
    #[error("write failed: {0}")]
    Io(#[from] io::Error),
    /// The format cannot carry this link type.
    #[error("{format} cannot carry link type {link_type}")]
    UnsupportedLinkType {
        /// The output format.
        format: Format,
        /// The link type asked for.
        link_type: LinkType,
    },
    /// A record of another link type than the file's.
    #[error("record of link type {record} in a {format} file of link type {file}")]
    LinkTypeMismatch {
        /// The output format.
        format: Format,
        /// The file's link type.
        file: LinkType,
        /// The record's link type.
        record: LinkType,
    },
    /// A length the format cannot represent.
    #[error("{what} of {len} exceeds what {format} can carry ({limit})")]
    TooLarge {
        /// The output format.
        format: Format,
        /// Which length.
        what: &'static str,
        /// The length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A timestamp the format cannot represent.
    #[error("timestamp {ts_ns} ns is out of range for {format}")]
    TimestampOutOfRange {
        /// The output format.
        format: Format,
        /// The timestamp.
        ts_ns: u64,
    },
    /// `encode_into` was given too small a buffer.
    #[error("output buffer of {available} bytes, record needs {needed}")]
    BufferTooSmall {
        /// Bytes the record needs.
        needed: usize,
        /// Bytes given.
        available: usize,
    },
    /// A snaplen of zero.
    #[error("snaplen must be at least 1")]
    ZeroSnaplen,
}
