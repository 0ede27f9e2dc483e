//! The bounded pipeline: every worker takes a chunk through all its steps, reading it, walking
//! it in place and writing it out, so a chunk's bytes stay in the cache of the core that
//! handles them and no thread waits on another to hand it work.
//!
//! The steps that must keep input order hold a lock each: reading (the next chunk of the
//! input is read under the lock and numbered) and writing (a walked chunk waits in a map
//! until those before it are written, and the worker that finds its turn come writes, and
//! hashes, every chunk whose turn has come). Walking, the bulk of the work, runs unlocked.
//! Chunks come from a fixed pool of `2 * threads + 2`, so memory stays bounded whatever the
//! file size. What a chunk holds and how it is filled and walked belongs to its
//! [`ChunkSource`]: the pcap file scrubbed in place (`pcap.rs`) or any trace record by record
//! (`records.rs`). The pipeline sees only the sequence number, the counts, the output bytes
//! and the input's hash leaves.
//!
//! Each worker owns its [`CachedAnonymizer`] and [`Walker`], built once per thread from the
//! prototype. The output is byte-identical whatever the thread count.
//!
//! Into a file, the writing lock only numbers the bytes: it gives each chunk its offset and
//! queues it. One worker at a time hashes and writes the queued chunks (`pwrite` at their
//! offsets) with the lock let go; a worker that finds another writing leaves its chunks to it
//! and goes back to walking, rather than waiting on the file's lock in the kernel (two writes
//! into one file take turns there, the second spinning).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use blake3::hazmat::ChainingValue;
use crossbeam_channel::{unbounded, Receiver, Sender};
use lander_trace::format::{RecordEncoder, WriteError};
use rayon::prelude::*;

use super::digest::InputTree;
use super::types::{io_at, ScrubConfig, ScrubError, ScrubSummary};
use crate::cache::CachedAnonymizer;
use crate::mapping::Anonymizer;
use crate::walker::{Neutral, Reason, WalkOutcome, Walker};

const REASONS: usize = Reason::ALL.len();
const NEUTRAL: usize = Neutral::ALL.len();

/// One input path: how a worker fills a chunk (under the reading lock) and scrubs it.
pub(super) trait ChunkSource: Send {
    /// What one chunk of this path holds besides the pipeline's own fields.
    type State: ChunkState;
    /// What every worker reads while scrubbing a chunk (shared, read-only).
    type Shape: Sync;

    /// The shape the workers share.
    fn shape(&self) -> Self::Shape;

    /// Fills `chunk` with the next records of the input; false, with the chunk left empty,
    /// when the input has ended.
    fn fill(&mut self, chunk: &mut Chunk<Self::State>) -> Result<bool, ScrubError>;

    /// After the input has ended: fails on a record it cut short; returns the input's hash
    /// when no chunk carries it.
    fn finish(self) -> Result<Option<blake3::Hash>, ScrubError>;

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

/// Runs the pipeline from `source` into `out`, which is `file` where given (chunks are then
/// written at their offsets outside the writing lock); returns the counts, and the BLAKE3 of
/// the input when the source had it hashed.
pub(super) fn run<S: ChunkSource, W: Write + Send>(
    source: S,
    out: &mut W,
    file: Option<&File>,
    out_path: &Path,
    encoder: RecordEncoder,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<(ScrubSummary, Option<blake3::Hash>), ScrubError> {
    let threads = config.threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("scrub-{i}"))
        .build()
        .map_err(|e| io_at(out_path)(std::io::Error::other(e)))?;
    let shape = source.shape();
    let shared = Shared::new(
        source,
        OrderedWriter::new(out, out_path, &encoder)?,
        2 * threads + 2,
        file,
    );
    let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        pool.install(|| {
            (0..threads).into_par_iter().for_each_init(
                || Worker {
                    anon: CachedAnonymizer::new(anon.clone()),
                    walker: Walker::new(),
                    encoder: encoder.clone(),
                    config,
                },
                |worker, _| shared.work(&shape, worker),
            )
        })
    }));
    if worked.is_err() {
        return Err(ScrubError::Panicked);
    }
    let Shared {
        reading, writing, ..
    } = shared;
    let reading = reading.into_inner().map_err(|_| ScrubError::Panicked)?;
    let writing = writing.into_inner().map_err(|_| ScrubError::Panicked)?;
    // a failed write first: the output is what failed, whatever the input did after
    if let Some(e) = writing.error {
        return Err(e);
    }
    if let Some(e) = reading.error {
        return Err(e);
    }
    if !writing.pending.is_empty() || !writing.ready.is_empty() || writing.busy {
        // a chunk left behind one never written: fail rather than publish a file with a hole
        return Err(ScrubError::Panicked);
    }
    let single = reading.source.finish()?;
    let room = writing.room;
    let (summary, mut tree) = writing.writer.finish();
    if let (Some(file), true) = (file, room.grown) {
        // the room allocated past the last write goes: the file ends with its last byte
        file.set_len(summary.file_size).map_err(io_at(out_path))?;
    }
    if let Some(root) = single {
        tree.set_single(root);
    }
    Ok((summary, tree.finish()))
}

/// What the workers share: the input and the output, each under its lock, and the pool of
/// chunks.
struct Shared<'w, S: ChunkSource, W: Write> {
    reading: Mutex<Reading<S>>,
    writing: Mutex<Writing<'w, W, S::State>>,
    /// Set when a step failed or a worker panicked: the others stop at their next step.
    stop: AtomicBool,
    /// Set when a worker panicked, maybe holding a lock with its state half changed: nothing
    /// more is read or written (after a failed read, the chunks read before are written).
    panicked: AtomicBool,
    /// Set when a write at an offset failed: nothing more is written.
    unwritable: AtomicBool,
    free: Pool<S::State>,
    /// The output file, written at offsets outside the writing lock.
    file: Option<&'w File>,
}

/// The chunks not in use: taken by a worker to fill, put back once written.
struct Pool<C> {
    put: Sender<Chunk<C>>,
    take: Receiver<Chunk<C>>,
}

/// The input side: the source, the next chunk's number, how the reading ended.
struct Reading<S> {
    source: S,
    next: u64,
    ended: bool,
    error: Option<ScrubError>,
}

/// The output side: the writer, the walked chunks waiting for their turn, and the numbered
/// ones waiting to be hashed and written at their offsets.
struct Writing<'w, W: Write, C> {
    writer: OrderedWriter<'w, W>,
    pending: BTreeMap<u64, Chunk<C>>,
    /// Numbered chunks with their offsets, in order.
    ready: Vec<(Chunk<C>, u64)>,
    /// Whether a worker is hashing and writing `ready` chunks (with the lock let go).
    busy: bool,
    /// The file's room allocated ahead of the writes, kept by the busy worker meanwhile.
    room: Room,
    error: Option<ScrubError>,
}

/// What a worker does when it leaves [`Shared::work`]: on a panic, it stops the others and
/// wakes one that waits for a chunk (which passes the wake-up on as it leaves).
struct Leaving<'a, 'w, S: ChunkSource, W: Write>(&'a Shared<'w, S, W>);

impl<S: ChunkSource, W: Write> Drop for Leaving<'_, '_, S, W> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.panicked.store(true, Ordering::SeqCst);
            self.0.stop.store(true, Ordering::SeqCst);
            let _ = self.0.free.put.send(Chunk::default());
        }
    }
}

impl<'w, S: ChunkSource, W: Write + Send> Shared<'w, S, W> {
    fn new(source: S, writer: OrderedWriter<'w, W>, chunks: usize, file: Option<&'w File>) -> Self {
        let (put, take) = unbounded();
        for _ in 0..chunks {
            let _ = put.send(Chunk::default());
        }
        Shared {
            reading: Mutex::new(Reading {
                source,
                next: 0,
                ended: false,
                error: None,
            }),
            writing: Mutex::new(Writing {
                writer,
                pending: BTreeMap::new(),
                ready: Vec::new(),
                busy: false,
                room: Room::default(),
                error: None,
            }),
            stop: AtomicBool::new(false),
            panicked: AtomicBool::new(false),
            unwritable: AtomicBool::new(false),
            free: Pool { put, take },
            file,
        }
    }

    /// One worker: takes chunks through reading, walking and writing until the input ends
    /// or a step fails. A worker that leaves puts its chunk back, so a worker waiting for one
    /// always gets one and sees that the run is over.
    fn work(&self, shape: &S::Shape, worker: &mut Worker<'_>) {
        let _leaving = Leaving(self);
        while let Ok(mut chunk) = self.free.take.recv() {
            if self.stop.load(Ordering::SeqCst) || !self.fill(&mut chunk) {
                let _ = self.free.put.send(chunk);
                return;
            }
            S::scrub(shape, worker, &mut chunk);
            self.write(chunk);
        }
    }

    /// `m` locked; `None` once any worker has panicked (a panic in the step `m` guards may
    /// have left its state half changed, and poisons it before the panicking worker's guard
    /// can say so).
    fn locked<'m, T>(&self, m: &'m Mutex<T>) -> Option<MutexGuard<'m, T>> {
        match m.lock() {
            Ok(guard) if !self.panicked.load(Ordering::SeqCst) => Some(guard),
            _ => {
                self.panicked.store(true, Ordering::SeqCst);
                self.stop.store(true, Ordering::SeqCst);
                None
            }
        }
    }

    /// Fills `chunk` with the next part of the input and numbers it; false when the input
    /// has ended or failed.
    fn fill(&self, chunk: &mut Chunk<S::State>) -> bool {
        let Some(mut r) = self.locked(&self.reading) else {
            return false;
        };
        if r.ended {
            return false;
        }
        match r.source.fill(chunk) {
            Ok(true) => {
                chunk.seq = r.next;
                r.next += 1;
                true
            }
            Ok(false) => {
                r.ended = true;
                false
            }
            Err(e) => {
                r.ended = true;
                r.error = Some(e);
                self.stop.store(true, Ordering::SeqCst);
                false
            }
        }
    }

    /// Queues the walked `chunk` and takes every chunk whose turn has come: written (into a
    /// stream) or numbered (into a file), each put back in the pool once written. After a
    /// failed write, nothing more is written.
    fn write(&self, chunk: Chunk<S::State>) {
        let Some(mut w) = self.locked(&self.writing) else {
            self.put_back(chunk);
            return;
        };
        let ours = &mut *w;
        ours.pending.insert(chunk.seq, chunk);
        if ours.error.is_none() {
            while let Some(mut c) = ours.pending.remove(&ours.writer.next) {
                match ours.writer.take(&mut c, self.file.is_some()) {
                    Err(e) => {
                        ours.error = Some(e);
                        self.stop.store(true, Ordering::SeqCst);
                        ours.pending.insert(c.seq, c);
                        break;
                    }
                    Ok(Some(offset)) => ours.ready.push((c, offset)),
                    Ok(None) => self.put_back(c),
                }
            }
        }
        if ours.error.is_some() {
            self.give_back(ours);
        }
        if let (Some(file), false) = (self.file, ours.busy || ours.ready.is_empty()) {
            ours.busy = true;
            self.write_ready(w, file);
        }
    }

    /// The run is over: every waiting chunk goes back, to wake the workers.
    fn give_back(&self, w: &mut Writing<'w, W, S::State>) {
        for (_, c) in std::mem::take(&mut w.pending) {
            self.put_back(c);
        }
        for (c, _) in std::mem::take(&mut w.ready) {
            self.put_back(c);
        }
    }

    /// As the one worker marked `busy`: hashes the ready chunks in order and writes each at
    /// its offset with the lock `w` let go, until none is left; then hands the digest back.
    fn write_ready<'a>(&'a self, mut w: MutexGuard<'a, Writing<'w, W, S::State>>, file: &File) {
        let mut hasher = std::mem::replace(&mut w.writer.hasher, blake3::Hasher::new());
        let mut room = w.room;
        loop {
            let batch = std::mem::take(&mut w.ready);
            if batch.is_empty() {
                w.writer.hasher = hasher;
                w.room = room;
                w.busy = false;
                return;
            }
            drop(w);
            for (mut c, offset) in batch {
                let over =
                    self.unwritable.load(Ordering::SeqCst) || self.panicked.load(Ordering::SeqCst);
                if !over {
                    let bytes = c.state.output_at(offset);
                    hasher.update(bytes);
                    room.make(file, offset + bytes.len() as u64);
                    if let Err(e) = file.write_all_at(bytes, offset) {
                        self.failed_write(bytes.len(), offset, e);
                    }
                }
                self.put_back(c);
            }
            let Some(again) = self.locked(&self.writing) else {
                return;
            };
            w = again;
            if w.error.is_some() {
                self.give_back(&mut w);
            }
        }
    }

    /// Records a write of `len` bytes at `offset` that failed outside the lock (the first
    /// failure is kept).
    fn failed_write(&self, len: usize, offset: u64, e: std::io::Error) {
        self.unwritable.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(mut w) = self.locked(&self.writing) {
            let path = w.writer.path.clone();
            w.error.get_or_insert(ScrubError::Io {
                path,
                source: std::io::Error::new(
                    e.kind(),
                    format!("writing {len} bytes at byte {offset}: {e}"),
                ),
            });
        }
    }

    /// Puts `chunk` back in the pool, cleared.
    fn put_back(&self, mut chunk: Chunk<S::State>) {
        chunk.clear();
        let _ = self.free.put.send(chunk);
    }
}

/// How far ahead of the writes the room of a file is allocated.
pub(super) const ROOM_STEP: u64 = 8 << 20;

/// Room allocated ahead of the writes into a file: each write then lands in blocks the file
/// system has already found, rather than reserving them page by page (on ext4 this takes a
/// third off the write's time). The file is cut back to its last byte when the run ends.
#[derive(Clone, Copy, Default)]
struct Room {
    /// Where the allocated room ends.
    end: u64,
    /// Whether an allocation was asked for (it may have grown the file, even failing).
    grown: bool,
    /// Set when the file system refused: the writes go on without.
    off: bool,
}

impl Room {
    /// Allocates the room of `file` up to at least `to`, in steps of [`ROOM_STEP`].
    fn make(&mut self, file: &File, to: u64) {
        if self.off || to <= self.end {
            return;
        }
        let len = (to - self.end).next_multiple_of(ROOM_STEP);
        self.grown = true;
        match lander_spool::os::preallocate(file, self.end, len) {
            Ok(()) => self.end += len,
            // no room ahead (a full disk, a file system that cannot): each write says for
            // itself whether its bytes fit
            Err(_) => self.off = true,
        }
    }
}

/// Writes chunks in sequence order and keeps the totals.
struct OrderedWriter<'w, W: Write> {
    out: &'w mut W,
    path: PathBuf,
    hasher: blake3::Hasher,
    /// The sequence number of the next chunk to write.
    next: u64,
    reasons: [u64; REASONS],
    neutral: [u64; NEUTRAL],
    total: ScrubSummary,
    input: InputTree,
}

impl<'w, W: Write> OrderedWriter<'w, W> {
    fn new(out: &'w mut W, path: &Path, encoder: &RecordEncoder) -> Result<Self, ScrubError> {
        let mut w = OrderedWriter {
            out,
            path: path.to_owned(),
            hasher: blake3::Hasher::new(),
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

    /// Writes chunk `c`, whose turn it is, and adds its counts; with `numbered`, leaves the
    /// write to the caller and returns the offset the chunk's output goes at.
    fn take<S: ChunkState>(
        &mut self,
        c: &mut Chunk<S>,
        numbered: bool,
    ) -> Result<Option<u64>, ScrubError> {
        self.next += 1;
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
        self.add(&c.tally);
        if numbered {
            // hashed in order by the worker that writes it
            self.total.file_size += c.state.output().len() as u64;
            return Ok(Some(offset));
        }
        self.emit(c.state.output_at(offset))?;
        Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Key, MapOptions, Mapping};
    use lander_trace::{Format, LinkType};
    use std::io::{Read, Seek};

    /// Where a test source panics.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Step {
        Fill,
        Walk,
        Write,
    }

    /// A source of `chunks` chunks, each writing its number (from 1) as 8 bytes, that panics in
    /// `step` on chunk `panic_at`, late (when the other workers have taken the pool's every
    /// other chunk and wait). `fills` counts the calls of `fill`.
    struct Panicky {
        chunks: u64,
        filled: u64,
        panic_at: u64,
        step: Step,
        fills: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    #[derive(Default)]
    struct Numbered {
        bytes: [u8; 8],
        boom: bool,
    }

    impl ChunkState for Numbered {
        fn clear(&mut self) {}
        fn output(&self) -> &[u8] {
            if self.boom {
                panic!("a bug in the write of chunk {:?}", self.bytes);
            }
            &self.bytes
        }
    }

    fn late() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }

    impl ChunkSource for Panicky {
        type State = Numbered;
        type Shape = (u64, Step);

        fn shape(&self) -> (u64, Step) {
            (self.panic_at, self.step)
        }

        fn fill(&mut self, _: &mut Chunk<Numbered>) -> Result<bool, ScrubError> {
            self.fills.fetch_add(1, Ordering::SeqCst);
            if self.step == Step::Fill && self.filled == self.panic_at {
                late();
                panic!("a bug in the read of chunk {}", self.filled);
            }
            self.filled += 1;
            Ok(self.filled <= self.chunks)
        }

        fn finish(self) -> Result<Option<blake3::Hash>, ScrubError> {
            Ok(None)
        }

        fn scrub(at: &(u64, Step), _: &mut Worker<'_>, chunk: &mut Chunk<Numbered>) {
            // numbered from 1: zeros in a file are bytes never written
            chunk.state.bytes = (chunk.seq + 1).to_be_bytes();
            chunk.state.boom = *at == (chunk.seq, Step::Write);
            if *at == (chunk.seq, Step::Walk) {
                late();
                panic!("a bug in the walk of chunk {}", chunk.seq);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// A worker that panics, reading, walking or writing, fails the run as `Panicked`; the
    /// others, whether waiting for a chunk or for their turn to write, are not left waiting;
    /// nothing is read after a panic in a read, and nothing written after the chunks before
    /// the one that panicked (a reader of the output never gets bytes from a state a panic
    /// may have left half changed). The same into a stream and into a file (written at
    /// offsets by one worker at a time, with room allocated ahead).
    #[test]
    fn a_panicking_worker_fails_the_run_and_no_other_waits_forever() {
        let key = Key::generate(Mapping::CryptoPan).unwrap();
        let anon = Anonymizer::new(&key, &MapOptions::default()).unwrap();
        let encoder = RecordEncoder::new(Format::Pcap, LinkType::ETHERNET, 65_535).unwrap();
        let header = encoder.file_header().len();
        for (step, into_file) in [Step::Fill, Step::Walk, Step::Write]
            .into_iter()
            .flat_map(|s| [(s, false), (s, true)])
        {
            for threads in [1, 2, 4, 8] {
                for panic_at in [0, 1, 5, 40] {
                    let (anon, encoder) = (anon.clone(), encoder.clone());
                    let fills = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
                    let counted = fills.clone();
                    let case =
                        format!("{step:?} {threads} threads, chunk {panic_at}, file {into_file}");
                    let (result, out) = super::super::tests::ends(&case, move || {
                        let config = ScrubConfig {
                            threads,
                            ..ScrubConfig::default()
                        };
                        let source = Panicky {
                            chunks: 50,
                            filled: 0,
                            panic_at,
                            step,
                            fills: counted,
                        };
                        let path = Path::new("o");
                        if into_file {
                            let file = tempfile::tempfile().unwrap();
                            let r = run(
                                source,
                                &mut &file,
                                Some(&file),
                                path,
                                encoder,
                                &anon,
                                &config,
                            );
                            let mut out = Vec::new();
                            (&file).seek(std::io::SeekFrom::Start(0)).unwrap();
                            (&file).read_to_end(&mut out).unwrap();
                            return (r.map(|r| r.0), out);
                        }
                        let mut out = Vec::new();
                        let r = run(source, &mut out, None, path, encoder, &anon, &config);
                        (r.map(|r| r.0), out)
                    });
                    assert!(
                        matches!(result, Err(ScrubError::Panicked)),
                        "{case}: {result:?}"
                    );
                    let words: Vec<u64> = out[header..]
                        .chunks(8)
                        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
                        .collect();
                    let written = &words[..words.iter().take_while(|&&w| w != 0).count()];
                    // in order from the first, none from the panicking chunk on, and nothing
                    // past a gap
                    assert!(
                        written.iter().copied().eq(1..=written.len() as u64),
                        "{case}: {written:?}"
                    );
                    assert!(
                        words[written.len()..].iter().all(|&w| w == 0),
                        "{case}: written past a gap"
                    );
                    assert!(written.len() as u64 <= panic_at, "{case}: {written:?}");
                    if step == Step::Fill {
                        assert_eq!(fills.load(Ordering::SeqCst), panic_at + 1, "{case}");
                    }
                }
            }
        }
    }
}
