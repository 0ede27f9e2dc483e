//! The bounded pipeline: a reader thread fills chunks, rayon workers walk them in place, the
//! writer puts them back in input order.
//!
//! Chunks come from a fixed pool of `2 * threads + 2`, so memory stays bounded whatever the
//! file size. What a chunk holds and how it is filled and walked belongs to its
//! [`ChunkSource`]: the pcap file scrubbed in place (`pcap.rs`) or any trace record by record
//! (`records.rs`). The pipeline sees only the sequence number, the counts, the output bytes
//! and the input's hash leaves.
//!
//! Each worker owns its [`CachedAnonymizer`] and [`Walker`], built once per thread from the
//! prototype. The output is byte-identical whatever the thread count.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use blake3::hazmat::ChainingValue;
use crossbeam_channel::{bounded, Receiver, Sender};
use lander_trace::format::{RecordEncoder, WriteError};
use rayon::prelude::*;

use super::digest::InputTree;
use super::types::{io_at, ScrubConfig, ScrubError, ScrubSummary};
use crate::cache::CachedAnonymizer;
use crate::mapping::Anonymizer;
use crate::walker::{Neutral, Reason, WalkOutcome, Walker};

const REASONS: usize = Reason::ALL.len();
const NEUTRAL: usize = Neutral::ALL.len();

/// One input path: how its reader thread fills chunks and how a worker scrubs one.
pub(super) trait ChunkSource: Send {
    /// What one chunk of this path holds besides the pipeline's own fields.
    type State: ChunkState;
    /// What every worker reads while scrubbing a chunk (shared, read-only).
    type Shape: Sync;

    /// The shape the workers share.
    fn shape(&self) -> Self::Shape;

    /// Fills chunks taken from `free` and sends them to `work`, numbered from 0, until the
    /// input ends or the pipeline stops. Returns the input's hash when no chunk carries it.
    fn fill(
        self,
        free: &Receiver<Chunk<Self::State>>,
        work: Sender<Chunk<Self::State>>,
    ) -> Result<Option<blake3::Hash>, ScrubError>;

    /// Scrubs one chunk.
    fn scrub(shape: &Self::Shape, worker: &mut Worker<'_>, chunk: &mut Chunk<Self::State>);
}

/// The per-path part of a chunk.
pub(super) trait ChunkState: Default + Send {
    /// Forgets the chunk's records, keeping its buffers.
    fn clear(&mut self);
    /// The bytes to write for the chunk.
    fn output(&self) -> &[u8];
    /// [`ChunkState::output`], to be written at file offset `offset`: a state may move the
    /// bytes where the kernel copies them fastest (see [`lander_trace::align`]).
    fn output_at(&mut self, _offset: u64) -> &[u8] {
        self.output()
    }
}

/// A batch of records travelling through the pipeline.
#[derive(Default)]
pub(super) struct Chunk<S> {
    /// Position in input order.
    pub(super) seq: u64,
    pub(super) tally: Tally,
    pub(super) error: Option<WriteError>,
    /// Chaining values of input leaves, in input order.
    pub(super) leaves: Vec<ChainingValue>,
    /// The input's hash, when the input is a single leaf.
    pub(super) single: Option<blake3::Hash>,
    /// The path's own state.
    pub(super) state: S,
}

impl<S: ChunkState> Chunk<S> {
    fn clear(&mut self) {
        self.tally = Tally::default();
        self.error = None;
        self.leaves.clear();
        self.single = None;
        self.state.clear();
    }
}

/// Counts of one chunk.
#[derive(Clone, Debug)]
pub(super) struct Tally {
    stats: ScrubSummary,
    reasons: [u64; REASONS],
    neutral: [u64; NEUTRAL],
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            stats: ScrubSummary::default(),
            reasons: [0; REASONS],
            neutral: [0; NEUTRAL],
        }
    }
}

impl Tally {
    /// Counts a walked record of `len` captured bytes; false when it is to be dropped.
    #[inline]
    pub(super) fn walked(
        &mut self,
        len: usize,
        drops: u32,
        outcome: &WalkOutcome,
        drop: bool,
    ) -> bool {
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

/// One worker's state: its own cipher, caches and walker, built from the prototype.
pub(super) struct Worker<'a> {
    pub(super) anon: CachedAnonymizer,
    pub(super) walker: Walker,
    pub(super) encoder: RecordEncoder,
    pub(super) config: &'a ScrubConfig,
}

/// Runs the pipeline from `source` into `out`; returns the counts, and the BLAKE3 of the
/// input when the source had it hashed.
pub(super) fn run<S: ChunkSource, W: Write>(
    source: S,
    out: &mut W,
    out_path: &Path,
    encoder: RecordEncoder,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<(ScrubSummary, Option<blake3::Hash>), ScrubError> {
    let threads = config.threads.max(1);
    let n_chunks = 2 * threads + 2;
    let (free_tx, free_rx) = bounded::<Chunk<S::State>>(n_chunks);
    for _ in 0..n_chunks {
        free_tx
            .send(Chunk::default())
            .map_err(|_| ScrubError::Panicked)?;
    }
    let (work_tx, work_rx) = bounded::<Chunk<S::State>>(n_chunks);
    let (done_tx, done_rx) = bounded::<Chunk<S::State>>(n_chunks);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("scrub-{i}"))
        .build()
        .map_err(|e| io_at(out_path)(std::io::Error::other(e)))?;
    let mut writer = OrderedWriter::new(out, out_path, &encoder)?;
    let shape = source.shape();
    let single = std::thread::scope(|s| {
        let reading = std::thread::Builder::new()
            .name("scrub-read".into())
            .spawn_scoped(s, move || source.fill(&free_rx, work_tx))
            .map_err(|e| io_at(out_path)(e))?;
        let (encoder, shape) = (&encoder, &shape);
        // the work receiver moves into the workers' thread, so a reader blocked on a full
        // queue is released when the workers stop early
        let working = s.spawn(move || {
            pool.install(|| {
                run_workers::<S>(threads, &work_rx, done_tx, anon, encoder, config, shape)
            })
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
    Ok((summary, tree.finish()))
}

fn run_workers<S: ChunkSource>(
    threads: usize,
    work: &Receiver<Chunk<S::State>>,
    done: Sender<Chunk<S::State>>,
    anon: &Anonymizer,
    encoder: &RecordEncoder,
    config: &ScrubConfig,
    shape: &S::Shape,
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
                S::scrub(shape, worker, &mut chunk);
                if done.send(chunk).is_err() {
                    return;
                }
            }
        },
    );
}

/// Writes chunks in sequence order and keeps the totals.
struct OrderedWriter<'w, W: Write, S> {
    out: &'w mut W,
    path: PathBuf,
    hasher: blake3::Hasher,
    pending: BTreeMap<u64, Chunk<S>>,
    next: u64,
    reasons: [u64; REASONS],
    neutral: [u64; NEUTRAL],
    total: ScrubSummary,
    input: InputTree,
}

impl<'w, W: Write, S: ChunkState> OrderedWriter<'w, W, S> {
    fn new(out: &'w mut W, path: &Path, encoder: &RecordEncoder) -> Result<Self, ScrubError> {
        let mut w = OrderedWriter {
            out,
            path: path.to_owned(),
            hasher: blake3::Hasher::new(),
            pending: BTreeMap::new(),
            next: 0,
            reasons: [0; REASONS],
            neutral: [0; NEUTRAL],
            total: ScrubSummary::default(),
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

    fn run(
        &mut self,
        done: &Receiver<Chunk<S>>,
        free: &Sender<Chunk<S>>,
    ) -> Result<(), ScrubError> {
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

    fn take(&mut self, c: &mut Chunk<S>) -> Result<(), ScrubError> {
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
        let offset = self.total.file_size;
        self.emit(c.state.output_at(offset))?;
        self.add(&c.tally);
        Ok(())
    }

    fn add(&mut self, tally: &Tally) {
        let (t, s) = (&mut self.total, &tally.stats);
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
            .zip(&tally.reasons)
            .for_each(|(a, b)| *a += b);
        self.neutral
            .iter_mut()
            .zip(&tally.neutral)
            .for_each(|(a, b)| *a += b);
    }

    fn finish(mut self) -> (ScrubSummary, InputTree) {
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
