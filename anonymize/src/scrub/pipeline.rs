//! The bounded pipeline: a reader thread fills chunks, rayon workers walk them in place, the
//! writer puts them back in input order.
//!
//! Chunks come from a fixed pool of `2 * threads + 2`, so memory stays bounded whatever the
//! file size. Two sources fill them:
//! - [`Source::Pcap`]: big reads of the raw file straight into the chunk; the worker walks
//!   each record where it lies and moves the survivor down over the bytes already consumed,
//!   so a packet is copied once and the chunk is written with one call;
//! - [`Source::Records`]: any format through [`TraceReader`], records copied into the chunk
//!   and encoded into a second buffer (pcapng, ERF, format conversions).
//!
//! Each worker owns its [`CachedAnonymizer`] and [`Walker`], built once per thread from the
//! prototype. The output is byte-identical whatever the thread count.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use blake3::hazmat::ChainingValue;
use crossbeam_channel::{bounded, Receiver, Sender};
use lander_trace::format::{RecordEncoder, TraceReader, WriteError};
use lander_trace::{LinkType, Record};
use rayon::prelude::*;

use super::digest::InputTree;
use super::interfaces::Interfaces;
use super::pcap::{PcapLayout, PcapSource};
use super::{io_at, ScrubConfig, ScrubError, Summary};
use crate::cache::CachedAnonymizer;
use crate::mapping::Anonymizer;
use crate::walker::{Neutral, Outcome, Reason, Walker};

/// Records per chunk of the record path.
pub const CHUNK_RECORDS: usize = 8192;
/// Captured bytes per chunk of the record path (a chunk closes at whichever limit comes
/// first).
pub const CHUNK_BYTES: usize = 4 << 20;

const REASONS: usize = Reason::ALL.len();
const NEUTRAL: usize = Neutral::ALL.len();

/// Where records come from.
pub(super) enum Source {
    /// A pcap file read in blocks and scrubbed in place.
    Pcap(Box<PcapSource>),
    /// Any trace, record by record; a pcapng output declares its interfaces.
    Records(TraceReader, Option<Interfaces>),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Meta {
    ts_ns: u64,
    wire_len: u32,
    link_type: LinkType,
    interface: u32,
    drops: u32,
    start: usize,
    len: usize,
}

/// Counts of one chunk.
#[derive(Clone, Debug)]
pub(super) struct Tally {
    pub(super) stats: Summary,
    pub(super) reasons: [u64; REASONS],
    pub(super) neutral: [u64; NEUTRAL],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            stats: Summary::default(),
            reasons: [0; REASONS],
            neutral: [0; NEUTRAL],
        }
    }
}

impl Tally {
    /// Counts a walked record of `len` captured bytes; false when it is to be dropped.
    #[inline]
    pub(super) fn walked(&mut self, len: usize, drops: u32, outcome: &Outcome, drop: bool) -> bool {
        self.stats.packets_in += 1;
        self.stats.bytes_in += len as u64;
        self.stats.source_drops += u64::from(drops);
        if !outcome.neutralised.is_empty() {
            outcome
                .neutralised
                .iter()
                .for_each(|n| self.neutral[n as usize] += 1);
        }
        if let Some(reason) = outcome.reason {
            self.reasons[reason as usize] += 1;
            if drop {
                self.stats.dropped += 1;
                return false;
            }
        }
        true
    }

    /// Counts a record written with `caplen` captured bytes.
    #[inline]
    pub(super) fn written(&mut self, ts_ns: u64, caplen: usize, wire_len: u32) {
        let s = &mut self.stats;
        s.packets_out += 1;
        s.bytes_out += caplen as u64;
        s.wire_bytes_out += u64::from(wire_len);
        s.first_ts_ns.get_or_insert(ts_ns);
        s.last_ts_ns = Some(ts_ns);
    }
}

/// A batch of records travelling through the pipeline.
#[derive(Default)]
pub(super) struct Chunk {
    pub(super) seq: u64,
    /// Record path: the records' bytes. Pcap path: the raw block, whole records in
    /// `..filled`; its length only grows, so it is allocated once.
    pub(super) data: Vec<u8>,
    pub(super) filled: usize,
    metas: Vec<Meta>,
    /// Record path: the encoded output.
    out: Vec<u8>,
    /// Record path: pcapng blocks (SHB, IDB) to write before some records.
    blocks: Vec<u8>,
    /// Record path: (record index, start, end) of each run of `blocks`.
    block_spans: Vec<(usize, usize, usize)>,
    /// Pcap path: the output was written over `data[..n]`.
    pub(super) in_place: Option<usize>,
    pub(super) tally: Tally,
    pub(super) error: Option<WriteError>,
    /// Pcap path: the input bytes read into this chunk, to hash.
    pub(super) fresh: Option<Fresh>,
    /// Chaining values of input leaves, in input order.
    pub(super) leaves: Vec<ChainingValue>,
    /// The input's hash, when the input is a single leaf.
    pub(super) single: Option<blake3::Hash>,
}

/// Input bytes first read into a chunk: `data[at..at + len]`, at input offset `offset`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fresh {
    pub(super) at: usize,
    pub(super) len: usize,
    pub(super) offset: u64,
    /// The whole input is in this chunk.
    pub(super) whole_input: bool,
}

impl Chunk {
    fn clear(&mut self) {
        self.filled = 0;
        self.metas.clear();
        self.out.clear();
        self.blocks.clear();
        self.block_spans.clear();
        self.in_place = None;
        self.tally = Tally::default();
        self.error = None;
        self.fresh = None;
        self.leaves.clear();
        self.single = None;
    }

    fn full(&self) -> bool {
        self.metas.len() >= CHUNK_RECORDS || self.data.len() >= CHUNK_BYTES
    }

    fn push(&mut self, rec: &Record<'_>) {
        let start = self.data.len();
        self.data.extend_from_slice(rec.data);
        self.metas.push(Meta {
            ts_ns: rec.ts_ns,
            wire_len: rec.wire_len,
            link_type: rec.link_type,
            interface: rec.interface,
            drops: rec.drops,
            start,
            len: rec.data.len(),
        });
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

    fn output(&self) -> &[u8] {
        match self.in_place {
            Some(n) => &self.data[..n],
            None => &self.out,
        }
    }
}

/// One worker's state: its own cipher, caches and walker, built from the prototype.
pub(super) struct Worker<'a> {
    pub(super) anon: CachedAnonymizer,
    pub(super) walker: Walker,
    pub(super) encoder: RecordEncoder,
    pub(super) config: &'a ScrubConfig,
}

impl Worker<'_> {
    fn process(&mut self, chunk: &mut Chunk, pcap: Option<&PcapLayout>) {
        match pcap {
            Some(layout) => layout.process(self, chunk),
            None => self.process_records(chunk),
        }
    }

    fn process_records(&mut self, chunk: &mut Chunk) {
        let Chunk {
            data,
            metas,
            out,
            tally,
            error,
            blocks,
            block_spans,
            ..
        } = chunk;
        let snaplen = self.encoder.snaplen() as usize;
        let mut spans = block_spans.iter().peekable();
        for (i, m) in metas.iter().enumerate() {
            while let Some(&(_, start, end)) = spans.next_if(|s| s.0 == i) {
                out.extend_from_slice(&blocks[start..end]);
            }
            let frame = &mut data[m.start..m.start + m.len];
            let policy = &self.config.policy;
            let outcome = self
                .walker
                .walk(m.link_type.0, frame, policy, &mut self.anon);
            if !tally.walked(m.len, m.drops, &outcome, self.config.drop_unparsed) {
                continue;
            }
            let rec = Record {
                ts_ns: m.ts_ns,
                wire_len: m.wire_len,
                link_type: m.link_type,
                interface: m.interface,
                drops: m.drops,
                data: &frame[..outcome.caplen],
            };
            if let Err(e) = self.encoder.encode(&rec, out) {
                *error = Some(e);
                return;
            }
            tally.written(m.ts_ns, outcome.caplen.min(snaplen), m.wire_len);
        }
    }
}

/// Runs the pipeline from `source` into `out`; returns the counts, and the BLAKE3 of the
/// input when the workers hashed it (the pcap path).
pub(super) fn run<W: Write>(
    source: Source,
    out: &mut W,
    out_path: &Path,
    encoder: RecordEncoder,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<(Summary, Option<blake3::Hash>), ScrubError> {
    let threads = config.threads.max(1);
    let n_chunks = 2 * threads + 2;
    let (free_tx, free_rx) = bounded::<Chunk>(n_chunks);
    for _ in 0..n_chunks {
        free_tx
            .send(Chunk::default())
            .map_err(|_| ScrubError::Panicked)?;
    }
    let (work_tx, work_rx) = bounded::<Chunk>(n_chunks);
    let (done_tx, done_rx) = bounded::<Chunk>(n_chunks);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("scrub-{i}"))
        .build()
        .map_err(|e| io_at(out_path)(std::io::Error::other(e)))?;
    let mut writer = OrderedWriter::new(out, out_path, &encoder)?;
    let layout = match &source {
        Source::Pcap(p) => Some(p.layout),
        Source::Records(..) => None,
    };
    let single = std::thread::scope(|s| {
        let pcap = layout.as_ref();
        let reading = std::thread::Builder::new()
            .name("scrub-read".into())
            .spawn_scoped(s, move || match source {
                Source::Pcap(p) => p.read_blocks(&free_rx, work_tx),
                Source::Records(r, i) => read_records(r, i, &free_rx, work_tx).map(|()| None),
            })
            .map_err(|e| io_at(out_path)(e))?;
        let encoder = &encoder;
        // the work receiver moves into the workers' thread, so a reader blocked on a full
        // queue is released when the workers stop early
        let working = s.spawn(move || {
            pool.install(|| run_workers(threads, &work_rx, done_tx, anon, encoder, config, pcap))
        });
        let written = writer.run(&done_rx, &free_tx);
        drop(done_rx);
        drop(free_tx);
        let read = reading.join().map_err(|_| ScrubError::Panicked)?;
        working.join().map_err(|_| ScrubError::Panicked)?;
        written?;
        read
    })?;
    let (summary, mut tree) = writer.finish();
    if let Some(root) = single {
        tree.set_single(root);
    }
    let digest = layout.and_then(|_| tree.finish());
    Ok((summary, digest))
}

fn read_records(
    mut reader: TraceReader,
    mut interfaces: Option<Interfaces>,
    free: &Receiver<Chunk>,
    work: Sender<Chunk>,
) -> Result<(), ScrubError> {
    let mut seq = 0;
    let Ok(mut chunk) = free.recv() else {
        return Ok(());
    };
    chunk.data.clear();
    while let Some(rec) = reader.next()? {
        chunk.push(&rec);
        let (iface, link) = (rec.interface, rec.link_type);
        if let Some(ifs) = interfaces.as_mut() {
            chunk.declare(ifs, &reader, iface, link);
        }
        if chunk.full() {
            chunk.seq = seq;
            seq += 1;
            if work.send(chunk).is_err() {
                return Ok(());
            }
            let Ok(next) = free.recv() else { return Ok(()) };
            chunk = next;
            chunk.data.clear();
        }
    }
    if !chunk.metas.is_empty() {
        chunk.seq = seq;
        let _ = work.send(chunk);
    }
    Ok(())
}

fn run_workers(
    threads: usize,
    work: &Receiver<Chunk>,
    done: Sender<Chunk>,
    anon: &Anonymizer,
    encoder: &RecordEncoder,
    config: &ScrubConfig,
    pcap: Option<&PcapLayout>,
) {
    (0..threads).into_par_iter().for_each_init(
        || Worker {
            anon: CachedAnonymizer::new(anon.clone()),
            walker: Walker::new(),
            encoder: encoder.clone(),
            config,
        },
        |worker, _| {
            for mut chunk in work.iter() {
                worker.process(&mut chunk, pcap);
                if done.send(chunk).is_err() {
                    return;
                }
            }
        },
    );
}

/// Writes chunks in sequence order and keeps the totals.
struct OrderedWriter<'w, W: Write> {
    out: &'w mut W,
    path: PathBuf,
    hasher: blake3::Hasher,
    pending: BTreeMap<u64, Chunk>,
    next: u64,
    reasons: [u64; REASONS],
    neutral: [u64; NEUTRAL],
    total: Summary,
    input: InputTree,
}

impl<'w, W: Write> OrderedWriter<'w, W> {
    fn new(out: &'w mut W, path: &Path, encoder: &RecordEncoder) -> Result<Self, ScrubError> {
        let mut w = OrderedWriter {
            out,
            path: path.to_owned(),
            hasher: blake3::Hasher::new(),
            pending: BTreeMap::new(),
            next: 0,
            reasons: [0; REASONS],
            neutral: [0; NEUTRAL],
            total: Summary::default(),
            input: InputTree::default(),
        };
        w.emit(&encoder.file_header())?;
        Ok(w)
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), ScrubError> {
        self.out.write_all(bytes).map_err(io_at(&self.path))?;
        self.hasher.update(bytes);
        self.total.file_size += bytes.len() as u64;
        Ok(())
    }

    fn run(&mut self, done: &Receiver<Chunk>, free: &Sender<Chunk>) -> Result<(), ScrubError> {
        for chunk in done.iter() {
            self.pending.insert(chunk.seq, chunk);
            while let Some(mut c) = self.pending.remove(&self.next) {
                self.next += 1;
                self.take(&mut c)?;
                c.clear();
                let _ = free.send(c);
            }
        }
        Ok(())
    }

    fn take(&mut self, c: &mut Chunk) -> Result<(), ScrubError> {
        if let Some(source) = c.error.take() {
            return Err(ScrubError::Write {
                path: self.path.clone(),
                source,
            });
        }
        c.leaves.iter().for_each(|cv| self.input.push(*cv));
        if let Some(root) = c.single {
            self.input.set_single(root);
        }
        self.out.write_all(c.output()).map_err(io_at(&self.path))?;
        self.hasher.update(c.output());
        self.total.file_size += c.output().len() as u64;
        let (t, s) = (&mut self.total, &c.tally.stats);
        t.packets_in += s.packets_in;
        t.packets_out += s.packets_out;
        t.dropped += s.dropped;
        t.bytes_in += s.bytes_in;
        t.bytes_out += s.bytes_out;
        t.wire_bytes_out += s.wire_bytes_out;
        t.source_drops += s.source_drops;
        if t.first_ts_ns.is_none() {
            t.first_ts_ns = s.first_ts_ns;
        }
        t.last_ts_ns = s.last_ts_ns.or(t.last_ts_ns);
        self.reasons
            .iter_mut()
            .zip(&c.tally.reasons)
            .for_each(|(a, b)| *a += b);
        self.neutral
            .iter_mut()
            .zip(&c.tally.neutral)
            .for_each(|(a, b)| *a += b);
        Ok(())
    }

    fn finish(mut self) -> (Summary, InputTree) {
        self.total.blake3 = self.hasher.finalize().to_hex().to_string();
        for (r, &n) in Reason::ALL.iter().zip(&self.reasons) {
            if n > 0 {
                self.total.reasons.insert(r.name().to_string(), n);
            }
        }
        for (k, &n) in Neutral::ALL.iter().zip(&self.neutral) {
            if n > 0 {
                self.total.neutralised.insert(k.name().to_string(), n);
            }
        }
        (self.total, self.input)
    }
}
