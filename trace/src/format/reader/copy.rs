//! Copying pcap records as they are, for a replay that writes the same encoding: one bulk
//! copy per run of records instead of a parse and an encode per record, with every record
//! checked as [`TraceReader::next`] checks it.

use super::{Decoder, TraceReader};
use crate::format::pcap::{self, FileHeaderRepr, RecordHeader};
use crate::format::{FormatError, ReadError};

/// A record header as the copier shows it to its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHead {
    /// Timestamp, nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Captured bytes.
    pub caplen: u32,
    /// Bytes on the wire.
    pub wire_len: u32,
}

impl RecordHead {
    /// Bytes of the record in the file, header included.
    pub fn record_len(&self) -> usize {
        pcap::RECORD_HEADER_LEN + self.caplen as usize
    }
}

/// Why a [`TraceReader::copy_pcap_records`] call returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyStop {
    /// The input ended cleanly, between records.
    End,
    /// The caller's `take` refused the next record.
    Refused,
    /// The next record (of this many bytes, header included) does not fit in what is left.
    Full(usize),
    /// The next record is bad (too large, or cut short by the end of the input): the next
    /// call reports it.
    Bad,
}

impl TraceReader {
    /// The file header, when the trace is a pcap file.
    pub fn pcap_header(&self) -> Option<FileHeaderRepr> {
        match &self.decoder {
            Decoder::Pcap(h) => Some(*h),
            _ => None,
        }
    }

    /// The next record's header of a pcap trace, without consuming it; `None` at a clean end
    /// (and for other formats).
    pub fn peek_pcap(&mut self) -> Result<Option<RecordHead>, ReadError> {
        let Some(file) = self.pcap_header() else {
            return Ok(None);
        };
        let avail = self.source.available().len();
        if avail < pcap::RECORD_HEADER_LEN
            && !self.refill(avail, pcap::RECORD_HEADER_LEN - avail)?
        {
            return match avail {
                0 => Ok(None),
                _ => Err(self.truncated(avail, pcap::RECORD_HEADER_LEN - avail)),
            };
        }
        Ok(Some(head(&file, self.source.available())))
    }

    /// Copies whole records of a pcap trace into `out`, byte for byte with their headers, in
    /// the file's own encoding, while they fit and `take` accepts them (`take` sees each
    /// record, checked, before it is copied; a refused record stays for the next call).
    /// Returns the bytes copied and why it stopped. A bad record ends the call with what was
    /// copied before it; the next call reports it, as [`TraceReader::next`] would.
    pub fn copy_pcap_records(
        &mut self,
        out: &mut [u8],
        take: &mut dyn FnMut(RecordHead) -> bool,
    ) -> Result<(usize, CopyStop), ReadError> {
        let Some(file) = self.pcap_header() else {
            return Ok((0, CopyStop::End));
        };
        let limit = file.caplen_limit();
        let mut copied = 0;
        loop {
            let input = self.source.available();
            let (run, stop) = walk(&file, limit, input, out.len() - copied, take);
            out[copied..copied + run].copy_from_slice(&input[..run]);
            self.source.consume(run);
            copied += run;
            match stop {
                Walked::Stopped(why) => return Ok((copied, why)),
                Walked::Bad(e) if copied == 0 => return Err(self.format_error(e)),
                Walked::Bad(_) => return Ok((copied, CopyStop::Bad)),
                Walked::Incomplete(more) => {
                    let avail = self.source.available().len();
                    if !self.refill(avail, more)? {
                        return match (avail, copied) {
                            (0, _) => Ok((copied, CopyStop::End)),
                            (_, 0) => Err(self.truncated(avail, more)),
                            _ => Ok((copied, CopyStop::Bad)),
                        };
                    }
                }
            }
        }
    }
}

/// How a walk over the available bytes ended.
enum Walked {
    Stopped(CopyStop),
    /// The next record needs this many more bytes than are available.
    Incomplete(usize),
    Bad(FormatError),
}

/// Walks whole records at the start of `input` that fit in `room` bytes and that `take`
/// accepts: the length of that run, and why it ended.
#[inline]
fn walk(
    file: &FileHeaderRepr,
    limit: u32,
    input: &[u8],
    room: usize,
    take: &mut dyn FnMut(RecordHead) -> bool,
) -> (usize, Walked) {
    let mut pos = 0;
    loop {
        let rest = &input[pos..];
        if rest.len() < pcap::RECORD_HEADER_LEN {
            return (
                pos,
                Walked::Incomplete(pcap::RECORD_HEADER_LEN - rest.len()),
            );
        }
        let h = head(file, rest);
        if h.caplen > limit {
            let e = FormatError::TooLarge {
                what: "caplen",
                len: h.caplen.into(),
                limit: limit.into(),
            };
            return (pos, Walked::Bad(e));
        }
        let len = h.record_len();
        if rest.len() < len {
            return (pos, Walked::Incomplete(len - rest.len()));
        }
        if pos + len > room {
            return (pos, Walked::Stopped(CopyStop::Full(len)));
        }
        if !take(h) {
            return (pos, Walked::Stopped(CopyStop::Refused));
        }
        pos += len;
    }
}

/// The header of the record at the start of `input` (at least a header's length).
#[inline]
fn head(file: &FileHeaderRepr, input: &[u8]) -> RecordHead {
    let h = RecordHeader::new_unchecked(input, file.endian);
    RecordHead {
        ts_ns: u64::from(h.ts_sec()) * 1_000_000_000 + u64::from(h.ts_frac()) * file.frac_ns(),
        caplen: h.caplen(),
        wire_len: h.orig_len(),
    }
}
