//! The replay of a regular pcap file in blocks, on two threads.
//!
//! A replay through the ring is a pipeline: the source thread reads, walks the record
//! headers and hashes half of each buffer, the writer thread hashes the rest and writes, and
//! every byte crosses from one core to the other. Here both threads do all of it for their
//! own blocks: each takes the next block of the input (fixed stretches of `len` bytes, read
//! with `pread`), walks its records, hashes its whole digest leaves and writes it with
//! `pwrite` to the file it belongs to, at that file's offset. Measured apart on a 152 MB
//! trace, two threads this way took 0.045-0.048 s against 0.059-0.060 s as a pipeline and
//! 0.048 s for `dd bs=1M`.
//!
//! What must stay in order is done in order, under one lock, block after block:
//! - The walk. A block's records are those that start in it, the last one read on past its
//!   end (the next block's data starts after it). Each record is checked and taken by the
//!   same rules as a copied run ([`Run::take`]), against the one [`Producer`] state, so files
//!   are cut where the other paths cut them. A new file is created (its sequence number
//!   reserved first) by the walk that reaches its first record.
//! - The hand-over. Once a block is written, its bytes go into their file's digest after the
//!   block before (only the pieces of leaves it does not hold whole are hashed there), and a
//!   file that ended in it goes to the writer thread ([`Event::Adopt`], then
//!   [`Event::Close`]), which publishes it as it publishes any file. A write that failed
//!   goes with its file, which is published as partial up to that write, and the replay
//!   stops.
//!
//! Anything the blocks do not copy as it is (a record longer than the snaplen, a bad or cut
//! short record, the end of the file, the packet limit, a stop) ends the walk at that record;
//! the file still open goes to the writer, the reader is moved there, and the replay goes on
//! through the ring, which reports or encodes that record as it always has.

use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex};

use blake3::hazmat::ChainingValue;
use crossbeam_channel::Sender;
use lander_trace::align;
use lander_trace::format::pcap::{FileHeaderRepr, RECORD_HEADER_LEN};
use lander_trace::format::{RecordHead, TraceReader};

use super::copy::{Cut, Run};
use super::Producer;
use crate::engine::error::WriterError;
use crate::engine::ring::{BufferMeta, DIGEST_LEAF};
use crate::engine::rotate::CloseReason;
use crate::engine::writer::{self, Adopted, Event, Failure, FileClose};
use crate::engine::EngineError;

impl Producer {
    /// Replays `reader`'s file (a regular file, read at offsets through `input`) in blocks of
    /// `len` bytes until a record the blocks do not copy, the end, or a stop; then moves the
    /// reader to the first record not replayed. True if a stop was asked for.
    pub(super) fn pump_blocks(
        &mut self,
        reader: &mut TraceReader,
        input: &File,
        len: usize,
    ) -> Result<bool, EngineError> {
        let Some(header) = reader.pcap_header() else {
            return Ok(false);
        };
        let start = reader.offset();
        let len = (len as u64).max(1024);
        tracing::info!(
            "replaying {} in blocks of {} KiB on two threads",
            reader.path(),
            len >> 10
        );
        let events = self.events.clone();
        let lanes = Lanes {
            input,
            name: reader.path().to_string(),
            limit: header.caplen_limit(),
            frac_ns: header.frac_ns(),
            header,
            file_header: self.header.clone(),
            len,
            claims: Mutex::new((0, start / len * len)),
            delta: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            ended: AtomicBool::new(false),
            walked: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            walk: Mutex::new(Walk {
                rec: start,
                end: None,
                stopped: false,
                error: None,
                fd: None,
                producer: self,
            }),
            send: Mutex::new(Send {
                current: None,
                events,
            }),
        };
        std::thread::scope(|s| {
            let other = std::thread::Builder::new()
                .name("lander-blocks".into())
                .spawn_scoped(s, || lanes.lane());
            lanes.lane();
            if let Ok(other) = other {
                let _ = other.join();
            }
        });
        let failed = lanes.failed.into_inner();
        let broken = lanes.broken.into_inner();
        let current = into_inner(lanes.send).current;
        let Walk {
            end,
            stopped,
            error,
            ..
        } = into_inner(lanes.walk);
        // everything handed over was written in turn: the writer takes it even after a
        // thread failed
        if let (Some(file), false) = (current, failed) {
            self.send(Event::Adopt(Box::new(Adopted {
                file,
                failure: None,
            })))?;
        }
        self.sent = self.file.as_ref().map_or(0, |f| f.size);
        self.publish_counts();
        if broken {
            return Err(EngineError::Config(
                "a replay thread stopped unexpectedly".into(),
            ));
        }
        if let Some(e) = error {
            return Err(e);
        }
        if failed {
            return Err(EngineError::WriterGone);
        }
        if self.file.is_some() {
            // the ring path goes on with the open file
            self.make_room(RECORD_HEADER_LEN)?;
        }
        let end = end.expect("the walk ended");
        let mut at = input;
        at.seek(SeekFrom::Start(end))
            .map_err(|source| EngineError::Io {
                what: format!("cannot go on reading {} at byte {end}", reader.path()),
                source,
            })?;
        reader.resume_at(end);
        Ok(stopped)
    }
}

fn into_inner<T>(m: Mutex<T>) -> T {
    m.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// What both threads share.
struct Lanes<'a, 'p> {
    input: &'a File,
    name: String,
    header: FileHeaderRepr,
    limit: u32,
    frac_ns: u64,
    /// The output's file header.
    file_header: Vec<u8>,
    /// Bytes per block.
    len: u64,
    /// The next block's number and where it starts: see [`Lanes::claim`].
    claims: Mutex<(u64, u64)>,
    /// Input offset less file offset of the bytes of the file the walk is in.
    delta: AtomicU64,
    /// A write failed or the writer is gone: the walk stops, later blocks are not handed over.
    failed: AtomicBool,
    /// A thread panicked: the other gives up.
    broken: AtomicBool,
    /// The walk has ended.
    ended: AtomicBool,
    /// Blocks walked, and blocks handed over: the turn of the block after them. A thread
    /// waits for its turn spinning (a wait is short, and waking a sleeper took as long).
    walked: AtomicU64,
    sent: AtomicU64,
    walk: Mutex<Walk<'p>>,
    send: Mutex<Send>,
}

/// The walk, done in block order.
struct Walk<'p> {
    producer: &'p mut Producer,
    /// Input offset of the next record to walk.
    rec: u64,
    /// Where the walk stopped: the first record not replayed.
    end: Option<u64>,
    /// It stopped for a stop request.
    stopped: bool,
    error: Option<EngineError>,
    /// The file the walk is in, to write at offsets.
    fd: Option<Arc<File>>,
}

/// The hand-over, done in block order.
struct Send {
    /// The file being handed over.
    current: Option<writer::OpenFile>,
    events: Sender<Event>,
}

/// A stretch of one block that goes to one file.
struct Segment {
    /// Input offsets of its bytes.
    from: u64,
    to: u64,
    /// File offset of its first byte.
    out: u64,
    fd: Arc<File>,
    /// The file starts here: its header goes first.
    new: Option<writer::OpenFile>,
    meta: BufferMeta,
    /// The file ends after it.
    close: Option<FileClose>,
    leaves: Vec<ChainingValue>,
    leaves_from: u64,
    failure: Option<Failure>,
    /// Its writing began: some of it may be in the file.
    written: bool,
}

/// Bytes of the input from `first`, placed at `at` in `buf`; the records that start before
/// `end` are the block's.
struct Block {
    buf: Vec<u8>,
    at: usize,
    first: u64,
    end: u64,
    delta: u64,
    have: usize,
    eof: bool,
}

/// Marks the replay broken if its thread panics, so the other one does not wait forever.
struct Bail<'l, 'a, 'p>(&'l Lanes<'a, 'p>);

impl Drop for Bail<'_, '_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.broken.store(true, Release);
        }
    }
}

/// Spins until `count` reaches `turn`, or the walk ends (`ended`); false if the other
/// thread panicked.
fn wait_turn(count: &AtomicU64, turn: u64, ended: impl Fn() -> bool, broken: &AtomicBool) -> bool {
    let mut spins = 0u32;
    while count.load(Acquire) != turn && !ended() {
        if broken.load(Acquire) {
            return false;
        }
        spins = spins.saturating_add(1);
        if spins < 1 << 16 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
    true
}

impl<'p> Lanes<'_, 'p> {
    /// One thread's part: blocks until the walk has ended.
    fn lane(&self) {
        let _bail = Bail(self);
        let mut block = Block {
            buf: Vec::new(),
            at: 0,
            first: 0,
            end: 0,
            delta: 0,
            have: 0,
            eof: false,
        };
        let mut segs = Vec::new();
        loop {
            let (j, first, end) = self.claim();
            let read = block.read(self.input, first, end, self.delta.load(Relaxed));
            if !wait_turn(&self.walked, j, || self.ended.load(Acquire), &self.broken) {
                return;
            }
            let mut walk = self.walk.lock().unwrap_or_else(|p| p.into_inner());
            if walk.end.is_some() {
                return;
            }
            match read {
                Ok(()) => self.walk(&mut walk, &mut block, &mut segs),
                Err(e) => stop(&mut walk, Some(self.read_error(first, e))),
            }
            self.ended.store(walk.end.is_some(), Release);
            drop(walk);
            self.walked.store(j + 1, Release);
            for s in &mut segs {
                hash(&block, s);
            }
            if !wait_turn(&self.sent, j, || false, &self.broken) {
                return;
            }
            // Written in turn: a file is only ever written up to where it is whole, so a
            // crash leaves it cut short, never with a hole before a later block.
            for s in &mut segs {
                // nothing after a failed write
                if !self.write(&block, s) {
                    break;
                }
            }
            let mut send = self.send.lock().unwrap_or_else(|p| p.into_inner());
            self.hand_over(&mut send, &block, &mut segs);
            drop(send);
            self.sent.store(j + 1, Release);
        }
    }

    /// The next block: its number, where it starts and where the next one starts. Blocks
    /// start on a digest leaf boundary of the file being written where they can, so each
    /// one hashes its own leaves whole (its first leaf starts in the record the block before
    /// ended with, whose bytes it reads too).
    fn claim(&self) -> (u64, u64, u64) {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        let (j, first) = *claims;
        let mut end = first + self.len;
        if self.len >= 2 * DIGEST_LEAF {
            end -= end.wrapping_sub(self.delta.load(Relaxed)) % DIGEST_LEAF;
        }
        *claims = (j + 1, end);
        (j, first, end)
    }

    fn read_error(&self, at: u64, source: io::Error) -> EngineError {
        EngineError::Io {
            what: format!("cannot read {} at byte {at}", self.name),
            source,
        }
    }

    /// Walks the records that start in `block`, cutting them into segments by file.
    fn walk(&self, st: &mut Walk<'_>, block: &mut Block, segs: &mut Vec<Segment>) {
        segs.clear();
        let p = &mut *st.producer;
        if p.control.writer_failed.load(Relaxed) || self.failed.load(Relaxed) {
            return stop(st, Some(EngineError::WriterGone));
        }
        if p.control.stop.load(Relaxed) {
            st.stopped = true;
            return stop(st, None);
        }
        let block_end = block.end;
        let mut pos = st.rec;
        let mut run = Run::new(p.config.rotate, p.config.snaplen, p.limit - p.packets);
        if p.control.rotate.swap(false, Relaxed) {
            if let Some(file) = p.file.take() {
                let mut s = Segment::new(pos, file.size, st.fd.clone());
                s.close = Some(p.closing(&file, CloseReason::Requested));
                segs.push(s);
            }
        }
        let mut seg = p
            .file
            .as_ref()
            .map(|f| Segment::new(pos, f.size, st.fd.clone()));
        let mut end = None;
        while pos < block_end {
            if run.meta.packets == run.left {
                // the packet limit: the next record is not even read (as the ring path)
                end = Some(None);
                break;
            }
            if let Some(file) = p.file.as_mut() {
                let here = block.first + block.have as u64;
                let until = (block_end - pos) as usize;
                let bytes = block.bytes(pos, here.max(pos));
                pos += run.take_plain(file, bytes, until, self.frac_ns, self.limit) as u64;
                if pos >= block_end {
                    break;
                }
            }
            let h = match self.record_at(block, pos) {
                Ok(Some(h)) => h,
                Ok(None) => {
                    end = Some(None);
                    break;
                }
                Err(e) => {
                    end = Some(Some(e));
                    break;
                }
            };
            let len = h.record_len() as u64;
            if p.file.is_none() {
                match self.create(p, h.ts_ns, pos) {
                    Ok((s, fd)) => {
                        seg = Some(s);
                        st.fd = Some(fd);
                    }
                    Err(e) => {
                        end = Some(Some(e));
                        break;
                    }
                }
            }
            let file = p.file.as_mut().expect("a file is open");
            if run.take(file, h) {
                pos += len;
                // a file full of packets closes now, as a copied run closes it
                if !matches!(run.cut, Some(Cut::Close(_))) {
                    continue;
                }
            }
            match run.cut.take() {
                Some(Cut::Close(reason)) => {
                    let file = p.file.take().expect("a file is open");
                    let close = p.closing(&file, reason);
                    let mut s = seg.take().expect("an open file has a segment");
                    s.close = Some(close);
                    finish(p, &mut run, s, pos, segs);
                }
                _ => {
                    end = Some(None);
                    break;
                }
            }
        }
        if let Some(s) = seg {
            finish(p, &mut run, s, pos, segs);
        }
        p.publish_counts();
        st.rec = pos;
        if let Some(error) = end {
            stop(st, error);
        }
    }

    /// The header of the record at `pos`, once the whole record is in `block`; `None` where
    /// the walk ends: the file ends there or cuts it short, or the record is bad or longer
    /// than the ring could hold (the ring path then says so, as it always has).
    fn record_at(&self, block: &mut Block, pos: u64) -> Result<Option<RecordHead>, EngineError> {
        let reach = |block: &mut Block, to| {
            block
                .reach(self.input, to)
                .map_err(|e| self.read_error(pos, e))
        };
        if !reach(block, pos + RECORD_HEADER_LEN as u64)? {
            return Ok(None);
        }
        let head = block.bytes(pos, pos + RECORD_HEADER_LEN as u64);
        let h = RecordHead::of(&self.header, head.try_into().expect("a record header"));
        let len = h.record_len() as u64;
        if h.caplen > self.limit || len + self.file_header.len() as u64 > self.len {
            return Ok(None);
        }
        Ok(reach(block, pos + len)?.then_some(h))
    }

    /// Starts the next file at a record stamped `ts_ns` at input offset `pos`: creates it
    /// (its sequence number reserved first), and its first segment.
    fn create(
        &self,
        p: &mut Producer,
        ts_ns: u64,
        pos: u64,
    ) -> Result<(Segment, Arc<File>), EngineError> {
        let (open, file) = p.new_file(ts_ns);
        let failed = |e: WriterError| EngineError::Io {
            what: format!("{}: {}", e.path.display(), e.what),
            source: e.source,
        };
        let created =
            writer::OpenFile::create(&open, &p.config.seqs, &p.config.perms).map_err(failed)?;
        let fd = match created.file().try_clone() {
            Ok(fd) => fd,
            Err(source) => {
                created.abort();
                return Err(failed(WriterError {
                    path: open.path.clone(),
                    what: "cannot open the temporary file again".into(),
                    source,
                }));
            }
        };
        let fd = Arc::new(fd);
        self.delta.store(pos - file.size, Relaxed);
        p.counters.set_current(Some(file.name.clone()));
        let mut s = Segment::new(pos, file.size, Some(fd.clone()));
        s.new = Some(created);
        p.file = Some(file);
        Ok((s, fd))
    }

    /// Writes a segment (its file's header first), unless a write failed before; false if
    /// this one fails.
    fn write(&self, block: &Block, s: &mut Segment) -> bool {
        if self.failed.load(Relaxed) {
            return false;
        }
        s.written = true;
        if s.new.is_some() {
            if let Err(error) = s.fd.write_all_at(&self.file_header, 0) {
                s.failure = Some(Failure { offset: 0, error });
                return false;
            }
        }
        if let Err(error) = s.fd.write_all_at(block.bytes(s.from, s.to), s.out) {
            s.failure = Some(Failure {
                offset: s.out,
                error,
            });
            return false;
        }
        true
    }

    /// Adds a written block to its files' digests and counts, and hands over the files that
    /// ended in it.
    fn hand_over(&self, st: &mut Send, block: &Block, segs: &mut Vec<Segment>) {
        for s in segs.drain(..) {
            if self.failed.load(Relaxed) {
                // a file nothing was written to is removed; any other is left for salvage
                if let (Some(new), false) = (s.new, s.written) {
                    new.abort();
                }
                continue;
            }
            if let Some(mut new) = s.new {
                new.take_written(&self.file_header, 0, &[], BufferMeta::default());
                st.current = Some(new);
            }
            let Some(file) = st.current.as_mut() else {
                continue;
            };
            let handed = match s.failure {
                Some(failure) => {
                    self.failed.store(true, Relaxed);
                    let file = st.current.take().expect("a file is open");
                    let failure = Some(failure);
                    let adopted = Event::Adopt(Box::new(Adopted { file, failure }));
                    st.events.send(adopted).is_ok()
                }
                None => {
                    file.take_written(block.bytes(s.from, s.to), s.leaves_from, &s.leaves, s.meta);
                    match s.close {
                        Some(close) => {
                            let file = st.current.take().expect("a file is open");
                            let adopted = Event::Adopt(Box::new(Adopted {
                                file,
                                failure: None,
                            }));
                            st.events.send(adopted).is_ok()
                                && st.events.send(Event::Close(close)).is_ok()
                        }
                        None => true,
                    }
                }
            };
            if !handed {
                self.failed.store(true, Relaxed);
            }
        }
    }
}

/// Ends the walk at the next record.
fn stop(st: &mut Walk<'_>, error: Option<EngineError>) {
    st.end = Some(st.rec);
    if st.error.is_none() {
        st.error = error;
    }
}

/// Hashes a segment's whole digest leaves: from the one it starts in, when the block holds
/// that leaf's start (the end of the record before, in the same file); never the file's
/// first leaf, which is its root when it is its only one.
fn hash(block: &Block, s: &mut Segment) {
    let end = s.to - s.from + s.out;
    let delta = s.from - s.out;
    let held = block
        .first
        .saturating_sub(delta)
        .max(s.out / DIGEST_LEAF * DIGEST_LEAF);
    let mut at = held.div_ceil(DIGEST_LEAF).max(1) * DIGEST_LEAF;
    s.leaves.clear();
    s.leaves_from = at;
    while at + DIGEST_LEAF <= end {
        let leaf = block.bytes(at + delta, at + delta + DIGEST_LEAF);
        s.leaves.push(lander_spool::digest::leaf(at, leaf));
        at += DIGEST_LEAF;
    }
}

/// Ends segment `s` at input offset `to`, with the records `run` took for it.
fn finish(p: &mut Producer, run: &mut Run, mut s: Segment, to: u64, segs: &mut Vec<Segment>) {
    s.to = to;
    s.meta = std::mem::take(&mut run.meta);
    p.packets += s.meta.packets;
    p.totals.bytes += s.meta.bytes;
    p.totals.wire_bytes += s.meta.wire_bytes;
    run.left = p.limit - p.packets;
    segs.push(s);
}

impl Segment {
    fn new(from: u64, out: u64, fd: Option<Arc<File>>) -> Segment {
        Segment {
            from,
            to: from,
            out,
            fd: fd.expect("an open file has a descriptor"),
            new: None,
            meta: BufferMeta::default(),
            close: None,
            leaves: Vec::new(),
            leaves_from: 0,
            failure: None,
            written: false,
        }
    }
}

/// Where in `buf` input offset `first` goes: in step with file offset `first - delta` for
/// the write, moved a cache line on when that would make the read slow.
fn place(buf: &[u8], first: u64, delta: u64) -> usize {
    let at = align::shift(buf.as_ptr(), first.wrapping_sub(delta));
    match align::slow_read(buf[at..].as_ptr(), first) {
        true => at + align::COPY_ALIGN,
        false => at,
    }
}

/// Bytes read past a block's end, so that its last record is seldom read on for.
const READ_PAST: usize = 4096;

impl Block {
    /// Reads the block from input offset `first` to `end`, and a little past it (fewer at
    /// the end of the file).
    ///
    /// The bytes are placed for the file they are likely to go to (input offset less
    /// `delta`): in step with it, and out of the slow band for the read (see
    /// [`lander_trace::align`]).
    fn read(&mut self, input: &File, first: u64, end: u64, delta: u64) -> io::Result<()> {
        let len = (end - first) as usize + READ_PAST;
        if self.buf.len() < len + 2 * align::COPY_ALIGN {
            self.buf = vec![0; len + 2 * align::COPY_ALIGN];
        }
        (self.first, self.end, self.delta) = (first, end, delta);
        self.at = place(&self.buf, first, delta);
        (self.have, self.eof) = (0, false);
        self.fill(input, len)
    }

    /// Reads on until `len` bytes from `first` are here or the file ends.
    fn fill(&mut self, input: &File, len: usize) -> io::Result<()> {
        if self.buf.len() < self.at + len {
            // a record longer than a block: a bigger buffer, the bytes read placed again
            let mut buf = vec![0; len + len / 2 + 2 * align::COPY_ALIGN];
            let at = place(&buf, self.first, self.delta);
            buf[at..at + self.have].copy_from_slice(&self.buf[self.at..self.at + self.have]);
            (self.buf, self.at) = (buf, at);
        }
        while self.have < len && !self.eof {
            let to = &mut self.buf[self.at + self.have..self.at + len];
            match input.read_at(to, self.first + self.have as u64) {
                Ok(0) => self.eof = true,
                Ok(n) => self.have += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether the input up to offset `to` is here, reading on for it if need be.
    fn reach(&mut self, input: &File, to: u64) -> io::Result<bool> {
        let len = (to - self.first) as usize;
        if len > self.have && !self.eof {
            self.fill(input, len)?;
        }
        Ok(len <= self.have)
    }

    /// The bytes from input offset `from` to `to` (both here, unless none are asked for).
    fn bytes(&self, from: u64, to: u64) -> &[u8] {
        if from == to {
            // an empty stretch may lie past what was read (a block inside a long record)
            return &[];
        }
        let i = self.at + (from - self.first) as usize;
        &self.buf[i..i + (to - from) as usize]
    }
}
