//! The in-place path for pcap in and pcap out.
//!
//! The reader thread only reads: big blocks of the file straight into a chunk, hashed as they
//! arrive, cut after the last whole record (the rest starts the next chunk). It checks each
//! record's caplen against the file's limit, so the workers find only whole, bounded records.
//!
//! A worker walks each record where it lies in the block, then moves the survivor down over
//! bytes already consumed (the output of a record is never longer than its input) and writes
//! its header there: one copy per packet, no allocation, and the writer sends the chunk's
//! prefix to the file in one call.

use std::io::{self, Read};

use crossbeam_channel::{Receiver, Sender};
use lander_capture::format::pcap::{self, FileHeaderRepr};
use lander_capture::format::{ReadError, WriteError};
use lander_capture::Format;

use super::pipeline::{Chunk, Worker};
use super::ScrubError;

/// Bytes read per chunk.
pub const BLOCK: usize = 1 << 20;

/// How records of the input are laid out and how the output's are written.
#[derive(Clone, Copy, Debug)]
pub(super) struct PcapLayout {
    /// The input's file header.
    header: FileHeaderRepr,
    /// Pcap (µs) or PcapNs.
    out_format: Format,
    /// Records are cut to this many bytes (the output's snaplen).
    snaplen: usize,
}

/// A pcap input positioned after its file header.
pub(super) struct PcapSource {
    pub(super) layout: PcapLayout,
    input: Box<dyn Read + Send>,
    name: String,
    hasher: blake3::Hasher,
}

impl PcapSource {
    /// The source of `input`, whose file header `header` has been read (and fed to `hasher`).
    pub(super) fn new(
        name: &str,
        header: FileHeaderRepr,
        input: Box<dyn Read + Send>,
        hasher: blake3::Hasher,
        out_format: Format,
        snaplen: u32,
    ) -> PcapSource {
        PcapSource {
            layout: PcapLayout {
                header,
                out_format,
                snaplen: snaplen as usize,
            },
            input,
            name: name.to_string(),
            hasher,
        }
    }

    /// Fills chunks with whole records until the input ends; returns the input's hasher.
    pub(super) fn read_blocks(
        mut self,
        free: &Receiver<Chunk>,
        work: Sender<Chunk>,
    ) -> Result<blake3::Hasher, ScrubError> {
        let mut carry: Vec<u8> = Vec::new();
        let mut offset = pcap::HEADER_LEN as u64; // of carry[0] in the file
        let mut seq = 0;
        let Ok(mut chunk) = free.recv() else {
            return Ok(self.hasher);
        };
        loop {
            let start = carry.len();
            if chunk.data.len() < start + BLOCK {
                chunk.data.resize(start + BLOCK, 0);
            }
            chunk.data[..start].copy_from_slice(&carry);
            let read = self.fill(&mut chunk.data[start..start + BLOCK], offset + start as u64)?;
            let avail = start + read;
            let whole = self.whole_records(&chunk.data[..avail], offset)?;
            carry.clear();
            carry.extend_from_slice(&chunk.data[whole..avail]);
            let eof = read < BLOCK;
            if whole > 0 {
                chunk.seq = seq;
                chunk.filled = whole;
                seq += 1;
                offset += whole as u64;
                if work.send(chunk).is_err() || eof {
                    break;
                }
                let Ok(next) = free.recv() else { break };
                chunk = next;
            } else if eof {
                break;
            }
        }
        if !carry.is_empty() {
            return Err(self.truncated(offset, &carry));
        }
        Ok(self.hasher)
    }

    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8], at: u64) -> Result<usize, ScrubError> {
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
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    /// The length of the whole records at the start of `bytes` (which starts at file offset
    /// `offset`); fails on a caplen over the file's limit.
    fn whole_records(&self, bytes: &[u8], offset: u64) -> Result<usize, ScrubError> {
        let header = &self.layout.header;
        let limit = header.caplen_limit();
        let mut pos = 0;
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

const TS_SEC_AT: usize = 0;
const TS_FRAC_AT: usize = 4;
const CAPLEN_AT: usize = 8;
const ORIG_LEN_AT: usize = 12;

impl PcapLayout {
    /// Scrubs the whole records of `chunk.data[..chunk.filled]` in place.
    pub(super) fn process(&self, w: &mut Worker<'_>, chunk: &mut Chunk) {
        let buf = &mut chunk.data[..chunk.filled];
        let tally = &mut chunk.tally;
        let (endian, link) = (self.header.endian, self.header.link_type.0);
        let (mut pos, mut out) = (0, 0);
        while let Some(h) = buf.get(pos..pos + pcap::RECORD_HEADER_LEN) {
            let ts_ns = self.ts_ns(endian.u32(h, TS_SEC_AT), endian.u32(h, TS_FRAC_AT));
            let caplen = endian.u32(h, CAPLEN_AT) as usize;
            let orig = endian.u32(h, ORIG_LEN_AT);
            let start = pos + pcap::RECORD_HEADER_LEN;
            let Some(frame) = buf.get_mut(start..start + caplen) else {
                break;
            };
            pos = start + caplen;
            let outcome = w.walker.walk(link, frame, &w.config.policy, &mut w.anon);
            if !tally.walked(caplen, 0, &outcome, w.config.drop_unparsed) {
                continue;
            }
            let Some((secs, frac)) = self.split(ts_ns) else {
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
        chunk.in_place = Some(out);
    }

    /// The timestamp of a record, as the pcap reader computes it.
    fn ts_ns(&self, secs: u32, frac: u32) -> u64 {
        let unit = match self.header.format {
            Format::PcapNs => 1,
            _ => 1_000,
        };
        u64::from(secs) * 1_000_000_000 + u64::from(frac) * unit
    }

    /// Seconds and fraction of the output, as the pcap encoder writes them.
    fn split(&self, ts_ns: u64) -> Option<(u32, u32)> {
        let secs = u32::try_from(ts_ns / 1_000_000_000).ok()?;
        let sub = (ts_ns % 1_000_000_000) as u32;
        let frac = match self.out_format {
            Format::PcapNs => sub,
            _ => sub / 1_000,
        };
        Some((secs, frac))
    }
}
