//! The passes of a verification, each a reader thread filling chunks of packets and rayon
//! workers checking them (results taken back in input order):
//! 1. the raw trace: every address it holds ([`check::collect`]);
//! 2. both traces, paired: the checks of each pair ([`check::Checker`]);
//! 3. the raw trace again, only when the output holds informative windows outside the
//!    understood headers that were not found in their own raw packet: those windows are
//!    looked for in every raw payload.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender};
use lander_trace::format::{ReadError, TraceReader};
use lander_trace::{Format, OwnedRecord, Record};
use rayon::prelude::*;

use super::check::{self, Candidate, CheckOutcome, Checker, Packet, Scratch};
use super::global::{Collected, Global};
use super::hash::{IntMap, IntSet};
use super::layout::Layout;
use super::report::{Finding, Kind, Report};
use crate::cache::CachedAnonymizer;
use crate::mapping::Anonymizer;

/// Packets per chunk.
const CHUNK_PACKETS: usize = 8192;
/// Captured bytes per chunk (a chunk closes at whichever limit comes first).
const CHUNK_BYTES: usize = 4 << 20;

/// Opens one of the traces (once per pass).
pub trait Open: Sync {
    /// A reader positioned at the first record.
    fn open(&self) -> Result<TraceReader, ReadError>;
}

impl<F: Fn() -> Result<TraceReader, ReadError> + Sync> Open for F {
    fn open(&self) -> Result<TraceReader, ReadError> {
        self()
    }
}

/// How to verify.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// Findings kept in the report at most (all are counted).
    pub limit: usize,
    /// Worker threads (0: one per CPU).
    pub threads: usize,
    /// The mapping the scrub used: tells fixed points and collisions from leaks.
    pub mapping: Option<Anonymizer>,
    /// Where to show how far it got.
    pub progress: Option<Arc<Progress>>,
    /// Payload windows searched file-wide at most.
    pub max_payload_windows: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            limit: 50,
            threads: 0,
            mapping: None,
            progress: None,
            max_payload_windows: 1 << 22,
        }
    }
}

/// How far a verification got, for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    /// Pass 1, 2 or 3 (0 before the start).
    pub pass: AtomicU8,
    /// Packets read in this pass.
    pub packets: AtomicU64,
    /// Bytes of the file read in this pass (the raw trace in passes 1 and 3, the scrubbed
    /// one in pass 2).
    pub bytes: AtomicU64,
}

impl Progress {
    fn start(&self, pass: u8) {
        self.packets.store(0, Ordering::Relaxed);
        self.bytes.store(0, Ordering::Relaxed);
        self.pass.store(pass, Ordering::Relaxed);
    }
}

/// Why a verification could not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Reading a trace failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A worker thread panicked.
    #[error("a verify worker panicked")]
    Panicked,
    /// The worker threads could not be started.
    #[error("starting the verify workers: {0}")]
    Threads(String),
}

/// Verifies the scrubbed trace `anon` against the raw trace `raw` (both files; `format`
/// names the format of both when it cannot be detected, as for ERF).
pub fn verify_files(
    raw: &Path,
    anon: &Path,
    format: Option<Format>,
    options: &VerifyOptions,
) -> Result<Report, VerifyError> {
    let open = |p: &Path| match format {
        Some(f) => TraceReader::open_with_format(p, f),
        None => TraceReader::open(p),
    };
    verify(&|| open(raw), &|| open(anon), options)
}

/// Verifies the scrubbed trace `anon` against the raw trace `raw`.
pub fn verify(
    raw: &dyn Open,
    anon: &dyn Open,
    options: &VerifyOptions,
) -> Result<Report, VerifyError> {
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let progress = options.progress.clone().unwrap_or_default();
    let (raw_reader, anon_reader) = (raw.open()?, anon.open()?);
    progress.start(1);
    let global = collect_pass(threads, raw_reader, &progress)?;
    let mut report = Report {
        raw_v4_addresses: global.v4.len() as u64,
        raw_v6_addresses: global.v6.len() as u64,
        mapping_checked: options.mapping.is_some(),
        ..Report::default()
    };
    progress.start(2);
    let candidates = pair_pass(
        threads,
        (raw.open()?, anon_reader),
        &global,
        options,
        &progress,
        &mut report,
    )?;
    drop(global);
    if !candidates.is_empty() {
        progress.start(3);
        payload_pass(
            threads,
            raw.open()?,
            &candidates,
            &progress,
            options.limit,
            &mut report,
        )?;
    }
    Ok(report)
}

/// One packet of a chunk: its bytes in the chunk and what the trace says of it.
#[derive(Clone, Copy, Debug)]
struct Item {
    start: usize,
    len: usize,
    link: u32,
    wire_len: u32,
    frame: u64,
}

impl Item {
    fn packet<'a>(&self, data: &'a [u8]) -> Packet<'a> {
        Packet {
            data: &data[self.start..self.start + self.len],
            link: self.link,
            wire_len: self.wire_len,
            frame: self.frame,
        }
    }
}

/// A batch of packets, or of pairs (raw, scrubbed; no raw for an unmatched one).
#[derive(Debug, Default)]
struct Chunk {
    seq: u64,
    data: Vec<u8>,
    raw: Vec<Option<Item>>,
    anon: Vec<Item>,
}

impl Chunk {
    fn clear(&mut self) {
        self.data.clear();
        self.raw.clear();
        self.anon.clear();
    }

    fn full(&self) -> bool {
        self.raw.len() >= CHUNK_PACKETS || self.data.len() >= CHUNK_BYTES
    }

    fn copy(&mut self, r: &Record<'_>, frame: u64) -> Item {
        let start = self.data.len();
        self.data.extend_from_slice(r.data);
        Item {
            start,
            len: r.data.len(),
            link: r.link_type.0,
            wire_len: r.wire_len,
            frame,
        }
    }
}

/// Hands filled chunks to the workers and takes fresh ones.
struct Filler<'a> {
    free: &'a Receiver<Chunk>,
    work: &'a Sender<Chunk>,
    chunk: Option<Chunk>,
    seq: u64,
}

impl Filler<'_> {
    /// The chunk being filled; `None` when the workers stopped.
    fn current(&mut self) -> Option<&mut Chunk> {
        if self.chunk.is_none() {
            let mut c = self.free.recv().ok()?;
            c.clear();
            c.seq = self.seq;
            self.seq += 1;
            self.chunk = Some(c);
        }
        self.chunk.as_mut()
    }

    /// Sends the chunk when full (or when `last`); false when the workers stopped.
    fn flush(&mut self, last: bool) -> bool {
        let ready = self.chunk.as_ref().is_some_and(|c| last || c.full());
        match self.chunk.take() {
            Some(c) if ready && !c.raw.is_empty() => self.work.send(c).is_ok(),
            other => {
                self.chunk = other.filter(|_| !ready);
                true
            }
        }
    }
}

/// Runs `work` over the chunks `produce` fills, on `threads` rayon workers each with its
/// own state from `init`; `consume` takes the results in input order.
fn run_chunks<W, R>(
    threads: usize,
    produce: impl FnOnce(&mut Filler<'_>) -> Result<(), ReadError> + Send,
    init: impl Fn() -> W + Sync + Send,
    work: impl Fn(&mut W, &Chunk) -> R + Sync + Send,
    mut consume: impl FnMut(R),
) -> Result<(), VerifyError>
where
    R: Send,
{
    let n = 2 * threads + 2;
    let (free_tx, free_rx) = bounded::<Chunk>(n);
    for _ in 0..n {
        let _ = free_tx.send(Chunk::default());
    }
    let (work_tx, work_rx) = bounded::<Chunk>(n);
    let (done_tx, done_rx) = bounded::<(R, Chunk)>(n);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("verify-{i}"))
        .build()
        .map_err(|e| VerifyError::Threads(e.to_string()))?;
    std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut filler = Filler {
                free: &free_rx,
                work: &work_tx,
                chunk: None,
                seq: 0,
            };
            produce(&mut filler)
        });
        let workers = s.spawn(move || {
            pool.install(|| {
                (0..threads)
                    .into_par_iter()
                    .for_each_init(&init, |state, _| {
                        for chunk in work_rx.iter() {
                            let r = work(state, &chunk);
                            if done_tx.send((r, chunk)).is_err() {
                                return;
                            }
                        }
                    })
            })
        });
        let mut pending = BTreeMap::new();
        let mut next = 0;
        for (r, chunk) in done_rx.iter() {
            pending.insert(chunk.seq, r);
            let _ = free_tx.send(chunk);
            while let Some(r) = pending.remove(&next) {
                consume(r);
                next += 1;
            }
        }
        drop(free_tx);
        let read = reader.join().map_err(|_| VerifyError::Panicked)?;
        workers.join().map_err(|_| VerifyError::Panicked)?;
        read.map_err(VerifyError::from)
    })
}

fn note(progress: &Progress, reader: &TraceReader, packets: u64) {
    progress.packets.store(packets, Ordering::Relaxed);
    progress.bytes.store(reader.offset(), Ordering::Relaxed);
}

/// Every packet of `reader`, one item each.
fn produce_raw(
    mut reader: TraceReader,
    progress: &Progress,
    f: &mut Filler<'_>,
) -> Result<(), ReadError> {
    let mut frame = 0;
    while let Some(r) = reader.next()? {
        frame += 1;
        let Some(c) = f.current() else { return Ok(()) };
        let item = c.copy(&r, frame);
        c.raw.push(Some(item));
        if c.full() {
            note(progress, &reader, frame);
        }
        if !f.flush(false) {
            return Ok(());
        }
    }
    f.flush(true);
    note(progress, &reader, frame);
    Ok(())
}

/// Pass 1: every address of the raw trace.
fn collect_pass(
    threads: usize,
    reader: TraceReader,
    progress: &Progress,
) -> Result<Global, VerifyError> {
    let mut all = Collected::default();
    run_chunks(
        threads,
        |f| produce_raw(reader, progress, f),
        || (Layout::default(), Scratch::default()),
        |(layout, scratch), chunk| {
            let mut c = Collected::default();
            for item in chunk.raw.iter().flatten() {
                check::collect(&item.packet(&chunk.data), layout, &mut c, scratch);
            }
            c.compact();
            c
        },
        |c| all.append(c),
    )?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| VerifyError::Threads(e.to_string()))?;
    Ok(pool.install(|| all.build()))
}

/// Whether a raw record is the one a scrubbed record came from: same wire length, same
/// timestamp at the coarser resolution of the two files.
fn same_packet(raw: &Record<'_>, anon: &Record<'_>, resolution: u64) -> bool {
    raw.wire_len == anon.wire_len && raw.ts_ns / resolution == anon.ts_ns / resolution
}

/// Raw records read ahead while looking for a match, at most (count and bytes).
const LOOKAHEAD: usize = 1 << 20;
const LOOKAHEAD_BYTES: usize = 256 << 20;

/// The raw side of the pairing: the reader, and the records read ahead of the last match.
struct RawSide {
    reader: TraceReader,
    /// Records read but not matched yet, with their frame numbers.
    ahead: std::collections::VecDeque<(u64, OwnedRecord)>,
    ahead_bytes: usize,
    frames: u64,
}

impl RawSide {
    /// The raw record `anon` came from: searched among the records read ahead, then read
    /// on (up to the lookahead limit). Records before a match were dropped by the scrub and
    /// are forgotten; without a match nothing is forgotten.
    fn find(
        &mut self,
        anon: &Record<'_>,
        resolution: u64,
        chunk: &mut Chunk,
    ) -> Result<Option<Item>, ReadError> {
        if let Some(i) = self
            .ahead
            .iter()
            .position(|(_, r)| same_packet(&r.as_record(), anon, resolution))
        {
            let (frame, rec) = self.ahead.remove(i).unwrap_or_else(|| unreachable!());
            self.forget(i);
            return Ok(Some(chunk.copy(&rec.as_record(), frame)));
        }
        while self.ahead.len() < LOOKAHEAD && self.ahead_bytes < LOOKAHEAD_BYTES {
            let Some(r) = self.reader.next()? else {
                return Ok(None);
            };
            self.frames += 1;
            if same_packet(&r, anon, resolution) {
                let item = chunk.copy(&r, self.frames);
                self.forget(self.ahead.len());
                return Ok(Some(item));
            }
            self.ahead_bytes += r.data.len();
            self.ahead.push_back((self.frames, r.to_owned_record()));
        }
        Ok(None)
    }

    /// Forgets the first `n` records read ahead (dropped by the scrub).
    fn forget(&mut self, n: usize) {
        for (_, r) in self.ahead.drain(..n) {
            self.ahead_bytes -= r.data.len();
        }
    }

    /// Reads to the end; returns the raw packet count.
    fn finish(mut self) -> Result<u64, ReadError> {
        while self.reader.next()?.is_some() {
            self.frames += 1;
        }
        Ok(self.frames)
    }
}

/// Pairs the scrubbed records with raw ones, in order, skipping raw records dropped by
/// the scrub. Returns the raw packet count.
fn produce_pairs(
    raw: TraceReader,
    mut anon: TraceReader,
    progress: &Progress,
    f: &mut Filler<'_>,
) -> Result<u64, ReadError> {
    let resolution = raw
        .format()
        .resolution_ns()
        .max(anon.format().resolution_ns());
    let mut raw = RawSide {
        reader: raw,
        ahead: Default::default(),
        ahead_bytes: 0,
        frames: 0,
    };
    let mut anon_frame = 0;
    while let Some(a) = anon.next()? {
        anon_frame += 1;
        let Some(c) = f.current() else {
            return raw.finish();
        };
        let item = c.copy(&a, anon_frame);
        c.anon.push(item);
        let matched = raw.find(&a, resolution, c)?;
        c.raw.push(matched);
        if c.full() {
            note(progress, &anon, anon_frame);
        }
        if !f.flush(false) {
            return raw.finish();
        }
    }
    f.flush(true);
    note(progress, &anon, anon_frame);
    raw.finish()
}

/// What pass 2 found in one chunk.
struct PairResult {
    outcome: CheckOutcome,
    pairs: u64,
    unmatched: Vec<u64>,
}

/// Pass 2: the checks of every pair. Returns the candidate windows for pass 3.
fn pair_pass(
    threads: usize,
    (raw, anon): (TraceReader, TraceReader),
    global: &Global,
    options: &VerifyOptions,
    progress: &Progress,
    report: &mut Report,
) -> Result<IntMap<u64, Vec<Candidate>>, VerifyError> {
    let mut candidates: IntMap<u64, Vec<Candidate>> = IntMap::default();
    let mut raw_packets = 0;
    let limit = options.limit;
    run_chunks(
        threads,
        |f| {
            raw_packets = produce_pairs(raw, anon, progress, f)?;
            Ok(())
        },
        || Checker::new(global, options.mapping.clone().map(CachedAnonymizer::new)),
        |checker, chunk| {
            let mut r = PairResult {
                outcome: CheckOutcome::default(),
                pairs: 0,
                unmatched: Vec::new(),
            };
            for (a, raw) in chunk.anon.iter().zip(&chunk.raw) {
                r.pairs += 1;
                match raw {
                    Some(raw) => checker.pair(
                        &raw.packet(&chunk.data),
                        &a.packet(&chunk.data),
                        &mut r.outcome,
                    ),
                    None => r.unmatched.push(a.frame),
                }
            }
            checker.finish(&mut r.outcome);
            r
        },
        |r| {
            report.anon_packets += r.pairs;
            report.leaky_packets += r.outcome.leaky_packets;
            report.fixed_points += r.outcome.fixed_points;
            report.collisions += r.outcome.collisions;
            let mut findings = r.outcome.findings;
            for frame in r.unmatched {
                report.unmatched += 1;
                let detail = "no raw record with its timestamp and wire length".to_string();
                findings.push(Finding {
                    frame,
                    raw_frame: None,
                    offset: None,
                    kind: Kind::Unmatched,
                    detail,
                });
            }
            findings.sort_by_key(|f| (f.frame, f.offset));
            findings.into_iter().for_each(|f| report.add(f, limit));
            for c in r.outcome.candidates {
                if report.payload_windows >= options.max_payload_windows as u64 {
                    report.payload_windows_limited = true;
                    break;
                }
                report.payload_windows += 1;
                candidates.entry(c.window).or_default().push(c);
            }
        },
    )?;
    report.raw_packets = raw_packets;
    Ok(candidates)
}

/// Pass 3: the candidate windows in every raw payload; one finding per scrubbed frame.
fn payload_pass(
    threads: usize,
    reader: TraceReader,
    candidates: &IntMap<u64, Vec<Candidate>>,
    progress: &Progress,
    limit: usize,
    report: &mut Report,
) -> Result<(), VerifyError> {
    let mut reported = IntSet::default();
    let mut found = Vec::new();
    run_chunks(
        threads,
        |f| produce_raw(reader, progress, f),
        Layout::default,
        |layout, chunk| {
            let mut out = Vec::new();
            for item in chunk.raw.iter().flatten() {
                check::search_candidates(&item.packet(&chunk.data), layout, candidates, &mut out);
            }
            out
        },
        |out| {
            found.extend(
                out.into_iter()
                    .filter(|f: &Finding| reported.insert(f.frame)),
            )
        },
    )?;
    found.sort_by_key(|f| (f.frame, f.offset));
    report.leaky_packets += found.len() as u64;
    found.into_iter().for_each(|f| report.add(f, limit));
    Ok(())
}
