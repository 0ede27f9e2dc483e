//! The in-place path for pcap in and pcap out.
//!
//! Filling a chunk only reads: big blocks of the file straight into the chunk, hashed as they
//! arrive, cut after the last whole record (the rest starts the next chunk). It checks each
//! record's caplen against the file's limit, so the workers find only whole, bounded records.
//!
//! A worker walks each record where it lies in the block, then moves the survivor down over
//! bytes already consumed (the output of a record is never longer than its input) and writes
//! its header there: one copy per packet, no allocation, and the writer sends the chunk's
//! prefix to the file in one call.

use std::io::{self, Read};

use lander_trace::align;
use lander_trace::format::pcap::{self, FileHeaderRepr};
use lander_trace::format::{Endian, ReadError, WriteError};
use lander_trace::Format;

use super::digest;
use super::pipeline::{Chunk, ChunkSource, ChunkState, Worker};
use super::types::ScrubError;

/// Bytes read per chunk: two hash leaves, and reads stay aligned to them (the first read
/// stops short by the file header).
pub const BLOCK: usize = 2 * digest::LEAF;

/// How records of the input are laid out and how the output's are written.
#[derive(Clone, Copy, Debug)]
pub(super) struct PcapLayout {
    /// The input's file header.
    header: FileHeaderRepr,
    /// Its bytes.
    head: [u8; pcap::HEADER_LEN],
    /// Pcap (µs) or PcapNs.
    out_format: Format,
    /// Records are cut to this many bytes (the output's snaplen).
    snaplen: usize,
}

/// A pcap input positioned after its file header.
pub(super) struct PcapSource {
    layout: PcapLayout,
    input: Box<dyn Read + Send>,
    name: String,
    /// Hash the input (the workers do, leaf by leaf).
    pub(super) hash: bool,
    /// The start of a record the last chunk could not hold whole.
    carry: Vec<u8>,
    /// Leaves hashed while reading, for the next chunk.
    ready: Vec<blake3::hazmat::ChainingValue>,
    /// The file offset of `carry[0]`.
    offset: u64,
    /// The file offset of the next read.
    read_at: u64,
    /// The input has ended.
    ended: bool,
    /// The input's hash, when it holds only its file header.
    single: Option<blake3::Hash>,
}

/// A chunk of the in-place path.
#[derive(Default)]
pub(super) struct PcapChunk {
    /// The raw block, whole records in `begin..filled`; its length only grows, so it is
    /// allocated once.
    data: Vec<u8>,
    /// Where the records start: less than [`align::COPY_ALIGN`] bytes in, so the read lands
    /// at an address that agrees with its file offset (see [`align`]).
    begin: usize,
    filled: usize,
    /// The output is `data[out..out + written]`: written from the block's start, moved up
    /// by less than a cache line when its write would be a slow copy (`output_at`).
    out: usize,
    written: usize,
    /// The input bytes read into this chunk, to hash.
    fresh: Option<Fresh>,
}

/// Input bytes first read into a chunk: `data[at..at + len]`, at input offset `offset`.
#[derive(Clone, Copy, Debug)]
struct Fresh {
    at: usize,
    len: usize,
    offset: u64,
    /// The whole input is in this chunk.
    whole_input: bool,
}

#[cfg(test)]
impl PcapChunk {
    /// A chunk whose output is `bytes`, with the room a filled block has.
    pub(super) fn for_output(bytes: Vec<u8>) -> PcapChunk {
        let mut chunk = PcapChunk::default();
        chunk.reset_output(&bytes);
        chunk
    }

    /// Puts `bytes` back as the output, from the block's start.
    pub(super) fn reset_output(&mut self, bytes: &[u8]) {
        self.data.resize(bytes.len() + 2 * align::COPY_ALIGN, 0);
        self.data[..bytes.len()].copy_from_slice(bytes);
        self.out = 0;
        self.written = bytes.len();
    }
}

impl ChunkState for PcapChunk {
    fn clear(&mut self) {
        self.begin = 0;
        self.filled = 0;
        self.out = 0;
        self.written = 0;
        self.fresh = None;
    }

    fn output(&self) -> &[u8] {
        &self.data[self.out..self.out + self.written]
    }

    fn output_at(&mut self, offset: u64) -> &[u8] {
        let here = self.data[self.out..].as_ptr();
        if self.written > 0 && align::slow_write(here, offset) {
            // moved by less than a cache line (the block has the room): a copy in memory
            // costs far less than the slow kernel copy
            let to = align::shift(self.data.as_ptr(), offset);
            self.data.copy_within(self.out..self.out + self.written, to);
            self.out = to;
        }
        self.output()
    }
}

impl ChunkSource for PcapSource {
    type State = PcapChunk;
    type Shape = PcapLayout;

    fn shape(&self) -> PcapLayout {
        self.layout
    }

    fn fill(&mut self, chunk: &mut Chunk<PcapChunk>) -> Result<bool, ScrubError> {
        self.fill_block(chunk)
    }

    fn finish(self) -> Result<Option<blake3::Hash>, ScrubError> {
        if !self.carry.is_empty() {
            return Err(self.truncated(self.offset, &self.carry));
        }
        Ok(self.single)
    }

    fn scrub(layout: &PcapLayout, worker: &mut Worker<'_>, chunk: &mut Chunk<PcapChunk>) {
        layout.process(worker, chunk);
    }
}

impl PcapSource {
    /// The source of `input`, whose file header `header` has been read (and fed to `hasher`).
    pub(super) fn new(
        name: &str,
        (header, head): (FileHeaderRepr, [u8; pcap::HEADER_LEN]),
        input: Box<dyn Read + Send>,
        out_format: Format,
        snaplen: u32,
    ) -> PcapSource {
        PcapSource {
            layout: PcapLayout {
                header,
                head,
                out_format,
                snaplen: snaplen as usize,
            },
            input,
            name: name.to_string(),
            hash: true,
            carry: Vec::new(),
            ready: Vec::new(),
            offset: pcap::HEADER_LEN as u64,
            read_at: pcap::HEADER_LEN as u64,
            ended: false,
            single: None,
        }
    }

    /// Fills `chunk` with the whole records of the next block (and the record carried over
    /// from the block before); false when the input has ended.
    fn fill_block(&mut self, chunk: &mut Chunk<PcapChunk>) -> Result<bool, ScrubError> {
        let head_len = pcap::HEADER_LEN as u64;
        while !self.ended {
            let start = self.carry.len();
            let first = self.read_at == head_len;
            let want = if first {
                BLOCK - head_len as usize
            } else {
                BLOCK
            };
            // room to start the records where the read agrees with its file offset, and to
            // move the output into step with its own (`output_at`)
            let room = start + want + 2 * align::COPY_ALIGN;
            if chunk.state.data.len() < room {
                chunk.state.data.resize(room, 0);
            }
            let begin = align::shift(chunk.state.data[start..].as_ptr(), self.read_at);
            let records = &mut chunk.state.data[begin..begin + start + want];
            records[..start].copy_from_slice(&self.carry);
            let (read, whole) = self.read_walking(records, start, self.read_at, self.offset)?;
            let eof = read < want;
            self.ended = eof;
            if read == 0 && first {
                self.single = self.hash.then(|| digest::single(&self.layout.head, &[]));
                return Ok(false);
            }
            let fresh = Fresh {
                at: begin + start,
                len: read,
                offset: self.read_at,
                whole_input: eof && first,
            };
            self.read_at += read as u64;
            let avail = start + read;
            self.carry.clear();
            self.carry
                .extend_from_slice(&chunk.state.data[begin + whole..begin + avail]);
            if whole == 0 {
                // a record longer than a block: hash the bytes here
                if self.hash {
                    self.layout
                        .leaves(fresh, &chunk.state.data, &mut self.ready);
                }
                continue;
            }
            chunk.state.begin = begin;
            chunk.state.filled = begin + whole;
            chunk.state.fresh = (self.hash && read > 0).then_some(fresh);
            chunk.leaves.append(&mut self.ready);
            self.offset += whole as u64;
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn read_full(&mut self, buf: &mut [u8], at: u64) -> Result<usize, ScrubError> {
        let mut n = 0;
        while n < buf.len() {
            match self.input.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(ReadError::Io {
                        path: self.name.clone(),
                        offset: Some(at + n as u64),
                        source,
                    }
                    .into())
                }
            }
        }
        Ok(n)
    }

    /// Reads into `data[start..]` (the input at `at`) until it is full or the input ends, and
    /// finds the whole records in `data` (which starts at file offset `offset`): the bytes
    /// read and the length of the whole records. The records are walked a piece at a time,
    /// right after each piece is read, while its headers are still in the cache (walked
    /// after the whole block, nearly every header was a miss).
    fn read_walking(
        &mut self,
        data: &mut [u8],
        start: usize,
        at: u64,
        offset: u64,
    ) -> Result<(usize, usize), ScrubError> {
        let mut filled = start;
        let mut whole = 0;
        while filled < data.len() {
            let end = (filled + WALK_PIECE).min(data.len());
            let n = self.read_full(&mut data[filled..end], at + (filled - start) as u64)?;
            filled += n;
            whole = self.whole_records(&data[..filled], whole, offset)?;
            if filled < end {
                break;
            }
        }
        Ok((filled - start, whole))
    }

    /// The length of the whole records at the start of `bytes` (which starts at file offset
    /// `offset`), walked on from `pos` (a record boundary); fails on a caplen over the file's
    /// limit.
    fn whole_records(
        &self,
        bytes: &[u8],
        mut pos: usize,
        offset: u64,
    ) -> Result<usize, ScrubError> {
        let header = &self.layout.header;
        let limit = header.caplen_limit();
        while let Some(h) = bytes.get(pos..pos + pcap::RECORD_HEADER_LEN) {
            let caplen = header.endian.u32(h, CAPLEN_AT);
            if caplen > limit {
                return Err(ReadError::RecordTooLarge {
                    path: self.name.clone(),
                    offset: offset + pos as u64,
                    what: "caplen",
                    len: caplen.into(),
                    limit: limit.into(),
                }
                .into());
            }
            let end = pos + pcap::RECORD_HEADER_LEN + caplen as usize;
            if end > bytes.len() {
                break;
            }
            pos = end;
        }
        Ok(pos)
    }

    /// The error for a record cut short by the end of the input.
    fn truncated(&self, offset: u64, rest: &[u8]) -> ScrubError {
        let needed = match rest.get(..pcap::RECORD_HEADER_LEN) {
            Some(h) => {
                pcap::RECORD_HEADER_LEN as u64
                    + u64::from(self.layout.header.endian.u32(h, CAPLEN_AT))
            }
            None => pcap::RECORD_HEADER_LEN as u64,
        };
        ReadError::TruncatedAtEnd {
            path: self.name.clone(),
            offset,
            needed,
            available: rest.len() as u64,
        }
        .into()
    }
}

const CAPLEN_AT: usize = 8;

/// Bytes read before the records in them are walked.
const WALK_PIECE: usize = 64 << 10;

/// Seconds, fraction, caplen and original length of a record header, in the file's byte
/// order (`big`), read in one go.
#[inline]
fn record_fields(h: &[u8; pcap::RECORD_HEADER_LEN], big: bool) -> [u32; 4] {
    let fields: [u32; 4] = std::array::from_fn(|i| {
        u32::from_le_bytes([h[4 * i], h[4 * i + 1], h[4 * i + 2], h[4 * i + 3]])
    });
    match big {
        true => fields.map(u32::swap_bytes),
        false => fields,
    }
}

impl PcapLayout {
    /// Hashes the input bytes `fresh` of `data`: the leaves' chaining values into `out`.
    fn leaves(&self, fresh: Fresh, data: &[u8], out: &mut Vec<blake3::hazmat::ChainingValue>) {
        let bytes = &data[fresh.at..fresh.at + fresh.len];
        let head_len = pcap::HEADER_LEN as u64;
        let (head, offset) = match fresh.offset == head_len {
            true => (&self.head[..], 0),
            false => (&[][..], fresh.offset),
        };
        digest::leaves(head, offset, bytes, out);
    }

    /// Hashes the chunk's fresh input, before anything in it is rewritten.
    fn hash_input(&self, chunk: &mut Chunk<PcapChunk>) {
        let Some(fresh) = chunk.state.fresh else {
            return;
        };
        if fresh.whole_input {
            let bytes = &chunk.state.data[fresh.at..fresh.at + fresh.len];
            chunk.single = Some(digest::single(&self.head, bytes));
        } else {
            self.leaves(fresh, &chunk.state.data, &mut chunk.leaves);
        }
    }

    /// Scrubs the chunk's whole records in place (after hashing the input bytes the chunk
    /// brought).
    fn process(&self, w: &mut Worker<'_>, chunk: &mut Chunk<PcapChunk>) {
        self.hash_input(chunk);
        let buf = &mut chunk.state.data[..chunk.state.filled];
        let tally = &mut chunk.tally;
        let (big, link) = (self.header.endian == Endian::Big, self.header.link_type.0);
        // the output goes from the block's start, never past the record being read
        let (mut pos, mut out) = (chunk.state.begin, 0);
        while let Some(h) = buf.get(pos..).and_then(|b| b.first_chunk()) {
            let [secs, frac, caplen, orig] = record_fields(h, big);
            let ts_ns = self.ts_ns(secs, frac);
            let caplen = caplen as usize;
            let start = pos + pcap::RECORD_HEADER_LEN;
            let Some(frame) = buf.get_mut(start..start + caplen) else {
                break;
            };
            pos = start + caplen;
            let outcome = w.walker.walk(link, frame, &w.config.policy, &mut w.anon);
            if !tally.walked(caplen, 0, &outcome, w.config.drop_unparsed) {
                continue;
            }
            let Some((secs, frac)) = self.split(secs, frac, ts_ns) else {
                chunk.error = Some(WriteError::TimestampOutOfRange {
                    format: self.out_format,
                    ts_ns,
                });
                break;
            };
            let cut = outcome.caplen.min(self.snaplen);
            buf.copy_within(start..start + cut, out + pcap::RECORD_HEADER_LEN);
            pcap::emit_record_header(&mut buf[out..], secs, frac, cut as u32, orig);
            out += pcap::RECORD_HEADER_LEN + cut;
            tally.written(ts_ns, cut, orig);
        }
        chunk.state.written = out;
    }

    /// The timestamp of a record, as the pcap reader computes it.
    fn ts_ns(&self, secs: u32, frac: u32) -> u64 {
        let unit = match self.header.format {
            Format::PcapNs => 1,
            _ => 1_000,
        };
        u64::from(secs) * 1_000_000_000 + u64::from(frac) * unit
    }

    /// Seconds and fraction of the output for a record of `secs` and `frac` at `ts_ns`, as
    /// the pcap encoder writes them: the same when the output counts in the input's unit
    /// and the fraction is under a second.
    #[inline]
    fn split(&self, secs: u32, frac: u32, ts_ns: u64) -> Option<(u32, u32)> {
        let under_a_second = match self.header.format {
            Format::PcapNs => frac < 1_000_000_000,
            _ => frac < 1_000_000,
        };
        if self.out_format == self.header.format && under_a_second {
            return Some((secs, frac));
        }
        self.split_ns(ts_ns)
    }

    /// Seconds and fraction of the output for a record at `ts_ns`.
    fn split_ns(&self, ts_ns: u64) -> Option<(u32, u32)> {
        let secs = u32::try_from(ts_ns / 1_000_000_000).ok()?;
        let sub = (ts_ns % 1_000_000_000) as u32;
        let frac = match self.out_format {
            Format::PcapNs => sub,
            _ => sub / 1_000,
        };
        Some((secs, frac))
    }
}
