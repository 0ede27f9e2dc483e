//! [`TraceReader`]: owns a source (a memory map, owned bytes, or a bounded stream buffer) and
//! drives the format's pure parser over it, lending one record at a time.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use super::{detect, erf, mmap, pcap, pcapng, FormatError, Parsed, ReadError, MAX_RECORD_LEN};
use crate::align;
use crate::record::{Format, LinkType, OwnedRecord, Record, RecordMeta};

/// Default size of a stream reader's buffer (it grows, up to one record, for larger records).
pub const DEFAULT_STREAM_BUFFER: usize = 1 << 20;

/// Snaplen reported for ERF, which has none.
const ERF_SNAPLEN: u32 = 65_535;

/// Reads the records of one trace.
///
/// `next` lends a [`Record`] that borrows the reader; copy it
/// ([`Record::to_owned_record`]) where several must live at once. An error leaves the reader
/// where it was: calling `next` again reports the same error.
pub struct TraceReader {
    path: String,
    source: Input,
    decoder: Decoder,
    format: Format,
    link_type: LinkType,
    snaplen: u32,
}

impl std::fmt::Debug for TraceReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReader")
            .field("path", &self.path)
            .field("format", &self.format)
            .field("offset", &self.offset())
            .finish_non_exhaustive()
    }
}

impl TraceReader {
    /// Opens a trace file, detecting its format. Regular files are memory-mapped (see the
    /// `mmap` module: only finished, published files may be read this way); pipes, FIFOs and
    /// devices are read as streams.
    pub fn open(path: &Path) -> Result<TraceReader, ReadError> {
        Self::open_inner(path, None)
    }

    /// Opens a trace file of a known format (ERF has no magic to detect).
    pub fn open_with_format(path: &Path, format: Format) -> Result<TraceReader, ReadError> {
        Self::open_inner(path, Some(format))
    }

    /// Reads a trace from a pipe, stdin or socket through a bounded buffer.
    pub fn from_stream(name: &str, reader: Box<dyn Read + Send>) -> Result<TraceReader, ReadError> {
        Self::from_stream_with(name, reader, None, DEFAULT_STREAM_BUFFER)
    }

    /// Reads a stream of a known format (ERF has no magic to detect).
    pub fn from_stream_with_format(
        name: &str,
        reader: Box<dyn Read + Send>,
        format: Format,
    ) -> Result<TraceReader, ReadError> {
        Self::from_stream_with(name, reader, Some(format), DEFAULT_STREAM_BUFFER)
    }

    /// Reads a stream with a given format (or `None` to detect it) and buffer size.
    pub fn from_stream_with(
        name: &str,
        reader: Box<dyn Read + Send>,
        format: Option<Format>,
        buffer: usize,
    ) -> Result<TraceReader, ReadError> {
        Self::build(name.to_string(), Input::stream(reader, buffer), format)
    }

    /// Reads a trace held in memory (tests, fuzzing, benches).
    pub fn from_bytes(
        name: &str,
        bytes: Vec<u8>,
        format: Option<Format>,
    ) -> Result<TraceReader, ReadError> {
        let source = Input::Slice {
            bytes: Bytes::Owned(bytes),
            pos: 0,
        };
        Self::build(name.to_string(), source, format)
    }

    fn open_inner(path: &Path, format: Option<Format>) -> Result<TraceReader, ReadError> {
        let name = path.display().to_string();
        let io_err = |source| ReadError::Io {
            path: name.clone(),
            offset: None,
            source,
        };
        let file = File::open(path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        if !meta.is_file() {
            let source = Input::stream(Box::new(file), DEFAULT_STREAM_BUFFER);
            return Self::build(name, source, format);
        }
        let bytes = if meta.len() == 0 {
            Bytes::Owned(Vec::new())
        } else {
            Bytes::Mapped(mmap::map_readonly(&file).map_err(io_err)?)
        };
        Self::build(name, Input::Slice { bytes, pos: 0 }, format)
    }

    fn build(
        path: String,
        mut source: Input,
        format: Option<Format>,
    ) -> Result<TraceReader, ReadError> {
        source.fill(pcap::HEADER_LEN).map_err(|e| ReadError::Io {
            path: path.clone(),
            offset: Some(0),
            source: e,
        })?;
        let format = match format.or_else(|| detect(source.available())) {
            Some(f) => f,
            None => return Err(unknown_format(path, source.available())),
        };
        let mut reader = TraceReader {
            path,
            source,
            decoder: Decoder::Erf,
            format,
            link_type: LinkType::ETHERNET,
            snaplen: ERF_SNAPLEN,
        };
        match format {
            Format::Pcap | Format::PcapNs => reader.start_pcap()?,
            Format::Pcapng => reader.start_pcapng()?,
            Format::Erf => reader.start_erf(),
        }
        Ok(reader)
    }

    fn start_pcap(&mut self) -> Result<(), ReadError> {
        loop {
            let input = self.source.available();
            let avail = input.len();
            match pcap::FileHeaderRepr::parse(input) {
                Ok(Parsed::Done { item, .. }) => {
                    self.format = item.format;
                    self.link_type = item.link_type;
                    self.snaplen = item.snaplen;
                    self.decoder = Decoder::Pcap(item);
                    self.source.consume(pcap::HEADER_LEN);
                    return Ok(());
                }
                Ok(Parsed::Incomplete { more }) => self.refill_or_truncated(avail, more)?,
                Err(e) => return Err(self.format_error(e)),
            }
        }
    }

    /// Reads the section header and blocks up to the first interface description.
    fn start_pcapng(&mut self) -> Result<(), ReadError> {
        let mut sections = pcapng::Sections::new();
        while sections.interfaces().is_empty() {
            let input = self.source.available();
            let avail = input.len();
            match sections.step(input) {
                Ok(Parsed::Done { item: None, rest }) => {
                    let consumed = avail - rest.len();
                    self.source.consume(consumed);
                }
                Ok(Parsed::Done { item: Some(_), .. }) => break,
                Ok(Parsed::Incomplete { more }) if sections.sections() == 0 => {
                    self.refill_or_truncated(avail, more)?
                }
                Ok(Parsed::Incomplete { more }) => {
                    if !self.refill(avail, more)? {
                        break;
                    }
                }
                Err(e) => return Err(self.format_error(e)),
            }
        }
        if let Some(first) = sections.interfaces().first() {
            self.link_type = first.link_type;
            self.snaplen = first.snaplen;
        }
        self.decoder = Decoder::Pcapng(sections);
        Ok(())
    }

    fn start_erf(&mut self) {
        if let Ok(h) = erf::Header::new_checked(self.source.available()) {
            self.link_type = erf::link_type_of(h.erf_type()).unwrap_or(LinkType::ETHERNET);
        }
    }

    /// The next record; `Ok(None)` at a clean end (the input ends between records).
    // Lending: the record borrows the reader, so this cannot be `Iterator::next`.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> Result<Option<Record<'_>>, ReadError> {
        let (meta, consumed) = loop {
            let input = self.source.available();
            let avail = input.len();
            match self.decoder.step(input) {
                Ok(Parsed::Done {
                    item: Some(rec),
                    rest,
                }) => {
                    let start = rec.data.as_ptr() as usize - input.as_ptr() as usize;
                    break (RecordMeta::of(&rec, start), avail - rest.len());
                }
                Ok(Parsed::Done { item: None, rest }) => self.source.consume(avail - rest.len()),
                Ok(Parsed::Incomplete { more }) => {
                    if !self.refill(avail, more)? {
                        if self.source.changed() {
                            return Err(self.changed_while_read());
                        }
                        // what the refill found counts: a stream read up to a record's
                        // end may still hold the start of a record cut short
                        return match self.source.available().len() {
                            0 => Ok(None),
                            _ => Err(self.truncated(avail, more)),
                        };
                    }
                }
                Err(_) if self.source.changed() => return Err(self.changed_while_read()),
                Err(e) => return Err(self.format_error(e)),
            }
        };
        if self.source.spoiled() {
            return Err(self.changed_while_read());
        }
        let span = self.source.take(consumed);
        Ok(Some(meta.record(span)))
    }

    /// The error for a mapped file that shrank, was written to, or could not be read while it
    /// was read.
    #[cold]
    pub(super) fn changed_while_read(&self) -> ReadError {
        ReadError::Io {
            path: self.path.clone(),
            offset: Some(self.offset()),
            source: io::Error::other(
                "the file changed while it was read (it was truncated or written to, or a page of it could not be read)",
            ),
        }
    }

    /// The next record, copied.
    pub fn next_owned(&mut self) -> Result<Option<OwnedRecord>, ReadError> {
        Ok(self.next()?.map(|r| r.to_owned_record()))
    }

    /// The trace's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Link type of the first interface (pcapng), of the file (pcap), of the first record (ERF).
    pub fn link_type(&self) -> LinkType {
        self.link_type
    }

    /// The snapshot length (of the first interface for pcapng; 65535 for ERF).
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Byte offset of the next record.
    pub fn offset(&self) -> u64 {
        self.source.offset()
    }

    /// Goes on from byte `offset` of a stream whose underlying reader its owner moved there
    /// (a file read elsewhere by blocks up to a record boundary, then sought to it): what the
    /// reader holds is dropped. False for an input that is not a stream.
    pub fn resume_at(&mut self, offset: u64) -> bool {
        let Input::Stream(s) = &mut self.source else {
            return false;
        };
        let to = align::shift(s.buf.as_ptr(), offset);
        s.base = offset.wrapping_sub(to as u64);
        (s.start, s.end, s.eof) = (to, to, false);
        true
    }

    /// The file or stream name.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// pcapng sections begun so far (0 for other formats).
    pub fn sections(&self) -> u32 {
        match &self.decoder {
            Decoder::Pcapng(s) => s.sections(),
            _ => 0,
        }
    }

    /// The pcapng interfaces of the current section (empty for other formats).
    pub fn interfaces(&self) -> &[pcapng::Interface] {
        match &self.decoder {
            Decoder::Pcapng(s) => s.interfaces(),
            _ => &[],
        }
    }

    /// Tries to have `avail + more` bytes available; false at the end of the input.
    fn refill(&mut self, avail: usize, more: usize) -> Result<bool, ReadError> {
        let total = avail + more;
        if total > MAX_RECORD_LEN + pcapng::emit::EPB_OVERHEAD {
            return Err(ReadError::RecordTooLarge {
                path: self.path.clone(),
                offset: self.offset(),
                what: "record",
                len: total as u64,
                limit: MAX_RECORD_LEN as u64,
            });
        }
        self.source.fill(total).map_err(|source| ReadError::Io {
            path: self.path.clone(),
            offset: Some(self.source.offset() + avail as u64),
            source,
        })
    }

    fn refill_or_truncated(&mut self, avail: usize, more: usize) -> Result<(), ReadError> {
        match self.refill(avail, more)? {
            true => Ok(()),
            false => Err(self.truncated(avail, more)),
        }
    }

    fn truncated(&self, avail: usize, more: usize) -> ReadError {
        ReadError::TruncatedAtEnd {
            path: self.path.clone(),
            offset: self.offset(),
            needed: (avail + more) as u64,
            available: self.source.available().len() as u64,
        }
    }

    fn format_error(&self, e: FormatError) -> ReadError {
        ReadError::from_format(&self.path, self.offset(), self.format, e)
    }
}

fn unknown_format(path: String, head: &[u8]) -> ReadError {
    let what = match head.is_empty() {
        true => "empty input".to_string(),
        false => format!("starts with {}", shown_start(&head[..head.len().min(8)])),
    };
    ReadError::UnknownFormat { path, what }
}

/// The first bytes of an unknown input as a reader would recognise them: quoted text when
/// they are printable ASCII (a text file, an HTML error page), else hex.
fn shown_start(head: &[u8]) -> String {
    let printable = |b: &u8| b.is_ascii_graphic() || b.is_ascii_whitespace();
    match head.iter().all(printable) {
        true => format!("{:?}", String::from_utf8_lossy(head)),
        false => head
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// Per-format parsing state.
enum Decoder {
    Pcap(pcap::FileHeaderRepr),
    Pcapng(pcapng::Sections),
    Erf,
}

impl Decoder {
    #[inline]
    fn step<'a>(&mut self, input: &'a [u8]) -> Result<Parsed<'a, Option<Record<'a>>>, FormatError> {
        match self {
            Decoder::Pcap(h) => Ok(match pcap::parse_record(h, input)? {
                Parsed::Done { item, rest } => Parsed::Done {
                    item: Some(item),
                    rest,
                },
                Parsed::Incomplete { more } => Parsed::Incomplete { more },
            }),
            Decoder::Pcapng(s) => s.step(input),
            Decoder::Erf => Ok(match erf::parse_record(input)? {
                Parsed::Done { item, rest } => Parsed::Done {
                    item: item.to_record(),
                    rest,
                },
                Parsed::Incomplete { more } => Parsed::Incomplete { more },
            }),
        }
    }
}

enum Bytes {
    Mapped(mmap::Guarded),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

impl Input {
    /// Whether a mapped file faulted under the reader (cheap: checked per record).
    #[inline]
    pub(super) fn spoiled(&self) -> bool {
        matches!(self, Input::Slice { bytes: Bytes::Mapped(m), .. } if m.spoiled())
    }

    /// Whether a mapped file changed under the reader (checked at its end).
    pub(super) fn changed(&self) -> bool {
        matches!(self, Input::Slice { bytes: Bytes::Mapped(m), .. } if m.changed())
    }
}

/// Where the bytes come from.
enum Input {
    /// The whole input is addressable.
    Slice { bytes: Bytes, pos: usize },
    /// A bounded window over a stream.
    Stream(Stream),
}

struct Stream {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Stream offset of `buf[0]`, modulo 2^64: the bytes are placed so that their addresses
    /// agree with their offsets in the low bits (see [`crate::align`]), and the first of them
    /// can sit past `buf[0]` while being the stream's byte 0. Only `base + start` and
    /// `base + end` are real offsets; sums with it wrap.
    base: u64,
    eof: bool,
}

impl Input {
    fn stream(reader: Box<dyn Read + Send>, buffer: usize) -> Input {
        let buf = vec![0; buffer.max(64) + align::COPY_ALIGN];
        let first = align::shift(buf.as_ptr(), 0);
        Input::Stream(Stream {
            reader,
            buf,
            start: first,
            end: first,
            base: 0u64.wrapping_sub(first as u64),
            eof: false,
        })
    }

    #[inline]
    fn available(&self) -> &[u8] {
        match self {
            Input::Slice { bytes, pos } => &bytes.as_slice()[*pos..],
            Input::Stream(s) => &s.buf[s.start..s.end],
        }
    }

    #[inline]
    fn consume(&mut self, n: usize) {
        match self {
            Input::Slice { pos, .. } => *pos += n,
            Input::Stream(s) => s.start += n,
        }
    }

    /// Consumes `n` bytes and returns them.
    #[inline]
    fn take(&mut self, n: usize) -> &[u8] {
        match self {
            Input::Slice { bytes, pos } => {
                let at = *pos;
                *pos += n;
                &bytes.as_slice()[at..at + n]
            }
            Input::Stream(s) => {
                let at = s.start;
                s.start += n;
                &s.buf[at..at + n]
            }
        }
    }

    fn offset(&self) -> u64 {
        match self {
            Input::Slice { pos, .. } => *pos as u64,
            Input::Stream(s) => s.base.wrapping_add(s.start as u64),
        }
    }

    /// Makes at least `total` bytes available if the input has them.
    fn fill(&mut self, total: usize) -> io::Result<bool> {
        match self {
            Input::Slice { .. } => Ok(self.available().len() >= total),
            Input::Stream(s) => s.fill(total),
        }
    }
}

impl Stream {
    fn fill(&mut self, total: usize) -> io::Result<bool> {
        while self.end - self.start < total {
            if self.eof {
                return Ok(false);
            }
            if self.buf.len() - self.start < total {
                self.compact(total);
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Moves the unread bytes to the front (less than [`align::COPY_ALIGN`] in, where their
    /// addresses agree with their offsets) and grows the buffer to hold `total` bytes after
    /// that place.
    fn compact(&mut self, total: usize) {
        let offset = self.base.wrapping_add(self.start as u64);
        let unread = self.end - self.start;
        if self.buf.len() < total + align::COPY_ALIGN {
            // unread bytes first: growing may move the buffer
            self.buf.copy_within(self.start..self.end, 0);
            self.buf.resize(total + align::COPY_ALIGN, 0);
            (self.start, self.end) = (0, unread);
        }
        let to = align::shift(self.buf.as_ptr(), offset);
        self.buf.copy_within(self.start..self.end, to);
        self.base = offset.wrapping_sub(to as u64);
        self.start = to;
        self.end = to + unread;
    }
}

mod copy;
pub use copy::{CopyStop, RecordHead};

#[cfg(test)]
mod tests;
