//! Copying pcap records as they are, for a replay that writes the same encoding: one bulk
//! copy per run of records instead of a parse and an encode per record, with every record
//! checked as [`TraceReader::next`] checks it.

use super::{Decoder, TraceReader};
use crate::format::pcap::{self, FileHeaderRepr};
use crate::format::{Endian, FormatError, ReadError};

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
    /// The header of a record of a pcap file with header `file`, from its first 16 bytes
    /// (not checked: see [`FileHeaderRepr::caplen_limit`]).
    #[inline]
    pub fn of(file: &FileHeaderRepr, bytes: &[u8; pcap::RECORD_HEADER_LEN]) -> RecordHead {
        head_of(file, bytes)
    }

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
    /// The next record (of this many bytes at least, header included) does not fit in what
    /// is left, or only in the last 64 KiB of it, left unused so that the next buffer takes
    /// a read straight from the file.
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
            return match self.source.available().len() {
                0 => Ok(None),
                _ => Err(self.truncated(avail, pcap::RECORD_HEADER_LEN - avail)),
            };
        }
        let bytes = self
            .source
            .available()
            .first_chunk::<{ pcap::RECORD_HEADER_LEN }>();
        Ok(bytes.map(|b| head_of(&file, b)))
    }

    /// Copies whole records of a pcap trace into `out`, byte for byte with their headers, in
    /// the file's own encoding, while they fit and `take` accepts them (`take` sees each
    /// record, checked, before it is copied; a refused record stays for the next call).
    /// Returns the bytes copied and why it stopped. A bad record ends the call with what was
    /// copied before it; the next call reports it, as [`TraceReader::next`] would.
    ///
    /// From a stream, once the bytes it holds are used up, the file is read straight into
    /// `out` and the records are checked where they land: the bytes of a run are copied by
    /// the kernel alone. What is not taken goes back to the stream's buffer.
    ///
    /// From a mapped file that changed under the copy (see `mmap.rs`), what was copied is not
    /// the file's: the call fails as [`TraceReader::next`] would.
    pub fn copy_pcap_records<F: FnMut(RecordHead) -> bool>(
        &mut self,
        out: &mut [u8],
        take: &mut F,
    ) -> Result<(usize, CopyStop), ReadError> {
        let copied = self.copy_runs(out, take);
        let ended = matches!(copied, Ok((_, CopyStop::End)) | Err(_));
        if self.source.spoiled() || (ended && self.source.changed()) {
            return Err(self.changed_while_read());
        }
        copied
    }

    /// [`TraceReader::copy_pcap_records`] before the check for a changed file.
    fn copy_runs<F: FnMut(RecordHead) -> bool>(
        &mut self,
        out: &mut [u8],
        take: &mut F,
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
                    if let Some((run, walked)) =
                        self.read_direct(&mut out[copied..], &file, take)?
                    {
                        copied += run;
                        match walked {
                            Walked::Stopped(why) => return Ok((copied, why)),
                            Walked::Bad(e) if copied == 0 => return Err(self.format_error(e)),
                            Walked::Bad(_) => return Ok((copied, CopyStop::Bad)),
                            Walked::Incomplete(_) => continue,
                        }
                    }
                    let avail = self.source.available().len();
                    if copied > 0 && self.stream_ends_later() && out.len() - copied < DIRECT_MIN {
                        // the little room left is not worth a refill of the stream's buffer
                        // (copied again later): the next buffer takes a read straight in
                        return Ok((copied, CopyStop::Full(avail + more)));
                    }
                    if !self.refill(avail, more)? {
                        // what the refill found counts: a stream read up to a record's end
                        // may still hold the start of a record cut short
                        let left = self.source.available().len();
                        return match (left, copied) {
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

impl TraceReader {
    /// A stream not yet read to its end.
    fn stream_ends_later(&self) -> bool {
        matches!(&self.source, super::Input::Stream(s) if !s.eof)
    }

    /// With a stream whose buffer holds at most part of the next record and room for a big
    /// read in `out`: that part, then a read straight into `out` after it, walked in place.
    /// The bytes after the run go back to the stream's buffer. `None` when this does not
    /// apply (a slice input, little room, the end of the stream).
    fn read_direct<F: FnMut(RecordHead) -> bool>(
        &mut self,
        out: &mut [u8],
        file: &FileHeaderRepr,
        take: &mut F,
    ) -> Result<Option<(usize, Walked)>, ReadError> {
        let super::Input::Stream(s) = &mut self.source else {
            return Ok(None);
        };
        let tail = s.end - s.start;
        // what goes back must fit in the stream's buffer, in step (see below)
        let end = out.len().min(s.buf.len() - crate::align::COPY_ALIGN);
        if s.eof || end < tail + DIRECT_MIN {
            return Ok(None);
        }
        let tail_offset = s.base.wrapping_add(s.start as u64);
        if crate::align::slow_read(out.as_ptr(), tail_offset) {
            // a slow copy from the file (see `crate::align`): the stream's buffer, whose
            // reads are in step, and a copy in memory cost less
            return Ok(None);
        }
        out[..tail].copy_from_slice(&s.buf[s.start..s.end]);
        let n = loop {
            match s.reader.read(&mut out[tail..end]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        path: self.path.clone(),
                        offset: Some(tail_offset + tail as u64),
                        source,
                    })
                }
            }
        };
        if n == 0 {
            s.eof = true;
            return Ok(None);
        }
        let total = tail + n;
        let (run, walked) = walk(file, file.caplen_limit(), &out[..total], total, take);
        let rest = &out[run..total];
        let rest_offset = tail_offset.wrapping_add(run as u64);
        // in step with the file, as `Stream::compact` places them (`end` left the room)
        let at = crate::align::shift(s.buf.as_ptr(), rest_offset);
        s.buf[at..at + rest.len()].copy_from_slice(rest);
        s.start = at;
        s.end = at + rest.len();
        s.base = rest_offset.wrapping_sub(at as u64);
        Ok(Some((run, walked)))
    }
}

/// Least room in the caller's buffer for a read straight into it (small in tests, so the
/// property tests' small buffers take this path too).
const DIRECT_MIN: usize = if cfg!(test) { 64 } else { 64 << 10 };

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
fn walk<F: FnMut(RecordHead) -> bool>(
    file: &FileHeaderRepr,
    limit: u32,
    input: &[u8],
    room: usize,
    take: &mut F,
) -> (usize, Walked) {
    let mut pos = 0;
    loop {
        let rest = &input[pos..];
        let Some(bytes) = rest.first_chunk::<{ pcap::RECORD_HEADER_LEN }>() else {
            return (
                pos,
                Walked::Incomplete(pcap::RECORD_HEADER_LEN - rest.len()),
            );
        };
        let h = head_of(file, bytes);
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

/// A record header's fields.
#[inline(always)]
fn head_of(file: &FileHeaderRepr, b: &[u8; pcap::RECORD_HEADER_LEN]) -> RecordHead {
    let word = |i: usize| {
        let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        match file.endian {
            Endian::Little => u32::from_le_bytes(w),
            Endian::Big => u32::from_be_bytes(w),
        }
    };
    RecordHead {
        ts_ns: u64::from(word(0)) * 1_000_000_000 + u64::from(word(4)) * file.frac_ns(),
        caplen: word(8),
        wire_len: word(12),
    }
}
