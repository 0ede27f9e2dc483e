//! The record-by-record path: any format through [`TraceReader`] (pcapng, ERF, format
//! conversions). A worker copies the next records into its chunk (under the reading lock),
//! walks each and encodes the survivors into the chunk's second buffer.

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use lander_trace::format::TraceReader;
use lander_trace::{LinkType, Record, RecordMeta};

use super::interfaces::Interfaces;
use super::pipeline::{Chunk, ChunkSource, ChunkState, Worker};
use super::types::ScrubError;

/// Records per chunk of the record path.
pub const CHUNK_RECORDS: usize = 8192;
/// Captured bytes per chunk of the record path (a chunk closes at whichever limit comes
/// first).
pub const CHUNK_BYTES: usize = 4 << 20;

/// Any trace, record by record; a pcapng output declares its interfaces.
pub(super) struct RecordSource {
    pub(super) reader: TraceReader,
    pub(super) interfaces: Option<Interfaces>,
    /// The reader has given its last record.
    pub(super) ended: bool,
}

/// A chunk of the record path.
#[derive(Default)]
pub(super) struct RecordChunk {
    /// The records' bytes.
    data: Vec<u8>,
    metas: Vec<RecordMeta>,
    /// The encoded output.
    out: Vec<u8>,
    /// Pcapng blocks (SHB, IDB) to write before some records.
    blocks: Vec<u8>,
    /// (record index, start, end) of each run of `blocks`.
    block_spans: Vec<(usize, usize, usize)>,
}

impl ChunkState for RecordChunk {
    fn clear(&mut self) {
        self.data.clear();
        self.metas.clear();
        self.out.clear();
        self.blocks.clear();
        self.block_spans.clear();
    }

    fn output(&self) -> &[u8] {
        &self.out
    }
}

impl RecordChunk {
    fn full(&self) -> bool {
        self.metas.len() >= CHUNK_RECORDS || self.data.len() >= CHUNK_BYTES
    }

    fn push(&mut self, rec: &Record<'_>) {
        self.metas.push(RecordMeta::of(rec, self.data.len()));
        self.data.extend_from_slice(rec.data);
    }

    /// Writes the interface blocks the last record pushed needs before it, and gives it
    /// its output interface id.
    fn declare(&mut self, ifs: &mut Interfaces, reader: &TraceReader, iface: u32, link: LinkType) {
        let start = self.blocks.len();
        let id = ifs.blocks_before(reader, iface, link, &mut self.blocks);
        let index = self.metas.len() - 1;
        self.metas[index].interface = id;
        if self.blocks.len() > start {
            self.block_spans.push((index, start, self.blocks.len()));
        }
    }
}

impl ChunkSource for RecordSource {
    type State = RecordChunk;
    type Shape = ();

    fn shape(&self) {}

    fn fill(&mut self, chunk: &mut Chunk<RecordChunk>) -> Result<bool, ScrubError> {
        while !self.ended {
            let Some(rec) = self.reader.next()? else {
                self.ended = true;
                break;
            };
            chunk.state.push(&rec);
            let (iface, link) = (rec.interface, rec.link_type);
            if let Some(ifs) = self.interfaces.as_mut() {
                chunk.state.declare(ifs, &self.reader, iface, link);
            }
            if chunk.state.full() {
                return Ok(true);
            }
        }
        Ok(!chunk.state.metas.is_empty())
    }

    fn finish(self) -> Result<Option<blake3::Hash>, ScrubError> {
        Ok(None)
    }

    fn scrub(_: &(), w: &mut Worker<'_>, chunk: &mut Chunk<RecordChunk>) {
        let Chunk {
            tally,
            error,
            state,
            ..
        } = chunk;
        let RecordChunk {
            data,
            metas,
            out,
            blocks,
            block_spans,
        } = state;
        let snaplen = w.encoder.snaplen() as usize;
        let mut spans = block_spans.iter().peekable();
        for (i, m) in metas.iter().enumerate() {
            while let Some(&(_, start, end)) = spans.next_if(|s| s.0 == i) {
                out.extend_from_slice(&blocks[start..end]);
            }
            let frame = &mut data[m.start..m.start + m.len];
            let outcome = w
                .walker
                .walk(m.link_type.0, frame, &w.config.policy, &mut w.anon);
            if !tally.walked(m.len, m.drops, &outcome, w.config.drop_unparsed) {
                continue;
            }
            let rec = m.with_data(&frame[..outcome.caplen]);
            if let Err(e) = w.encoder.encode(&rec, out) {
                *error = Some(e);
                return;
            }
            tally.written(m.ts_ns, outcome.caplen.min(snaplen), m.wire_len);
        }
    }
}

/// A reader that hashes what passes through it (the record path: the reader owns it).
pub(super) struct HashingRead<R> {
    pub(super) inner: R,
    pub(super) hasher: Arc<Mutex<blake3::Hasher>>,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}
