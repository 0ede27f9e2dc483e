//! The writer thread: takes filled buffers from the ring, hashes them and writes them
//! (io_uring or plain writes); each finished file goes to the publisher thread with its
//! manifest, so a file's fsync never holds up the writing of the next one.
//!
//! The digest is taken here: a buffer comes back to the source as soon as it is written and
//! is the next one filled (the free list is last in, first out), so it is still in the shared
//! cache when the writer reads it twice (hash, then the kernel's copy into the page cache).
//! A replay, whose source never waits for packets, also hashes half of each buffer's whole
//! digest leaves before handing it over (`lander_spool::digest`): the two threads then share
//! the hashing, which alone took about a third of a replay's CPU time; paired runs of a 2 M
//! packet replay took 0.90x the time of hashing everything here. A live source keeps its
//! time for the interface.
//!
//! Where the file system takes direct writes, whole pages go to the device from the ring's
//! buffers themselves, past the page cache (module `direct`): no copy of the bytes, and no
//! page cache pages to fill. In paired live captures of 64-byte packets on a veth pair, the
//! CPU time per million packets fell from 0.22 s to 0.06-0.07 s (`tcpdump -w`: 0.10-0.11 s).
//!
//! With fsync on, the writer asks for each stretch of a file to be written back as soon as it
//! is written (`sync_file_range`, issued by the publisher thread so the writer never waits on
//! the device), so the disk works while the file is still being filled and the fsync at
//! publication has little left to do.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use blake3::hazmat::ChainingValue;
use crossbeam_channel::{Receiver, TryRecvError};

use super::error::WriterError;
use super::ring::{Buffer, BufferMeta, FreeBuffers, DIGEST_LEAF};
use super::rotate::CloseReason;
use super::stats::Counters;
use lander_spool::digest::StreamDigest;
use lander_spool::manifest::{manifest_path, Manifest};
use lander_spool::perms::Perms;
use lander_spool::publish::PendingFile;
use lander_spool::seq::SeqAllocator;
use lander_trace::record::LinkType;

pub mod direct;
pub mod publisher;
pub mod sync;
pub mod uring;

use direct::{Direct, Take};
use publisher::{Finished, PublishConfig, Publisher};

/// Which write path to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoMode {
    /// io_uring, or fail.
    Uring,
    /// Plain `pwrite`.
    Sync,
    /// io_uring when the kernel allows it, else plain writes (said once in the log).
    Auto,
}

impl FromStr for IoMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uring" | "io_uring" | "io-uring" => Ok(IoMode::Uring),
            "sync" => Ok(IoMode::Sync),
            "auto" => Ok(IoMode::Auto),
            other => Err(format!(
                "unknown I/O mode {other:?} (expected uring, sync or auto)"
            )),
        }
    }
}

/// A write that did not complete.
#[derive(Debug)]
pub struct Failure {
    /// File offset of the buffer whose write failed.
    pub offset: u64,
    /// What the kernel said.
    pub error: io::Error,
}

/// A way of getting buffers onto files. Every buffer handed to [`Backend::submit`] goes back
/// to the free list once the kernel is done with it, whatever the outcome.
pub trait Backend: Send {
    /// `io_uring` or `sync`.
    fn name(&self) -> &'static str;
    /// Starts writing `buf` at `offset` of `fd`.
    fn submit(&mut self, fd: RawFd, offset: u64, buf: Buffer);
    /// Submits what is queued and finishes what has completed; with `wait`, waits for at
    /// least one completion when writes are in flight.
    fn progress(&mut self, wait: bool);
    /// Writes not yet completed.
    fn in_flight(&self) -> usize;
    /// The failures seen since the last call.
    fn take_failures(&mut self) -> Vec<Failure>;
}

/// Builds the backend for `mode`: io_uring with `depth` writes in flight, or plain writes.
pub fn backend(mode: IoMode, depth: usize, free: FreeBuffers) -> io::Result<Box<dyn Backend>> {
    match mode {
        IoMode::Sync => Ok(Box::new(sync::SyncBackend::new(free))),
        IoMode::Uring => Ok(Box::new(uring::UringBackend::new(depth, free)?)),
        IoMode::Auto => match uring::UringBackend::new(depth, free.clone()) {
            Ok(b) => Ok(Box::new(b)),
            Err(e) => {
                tracing::warn!("io_uring unavailable ({e}); using plain writes");
                Ok(Box::new(sync::SyncBackend::new(free)))
            }
        },
    }
}

/// What the source thread tells the writer, in order.
#[derive(Debug)]
pub enum Event {
    /// A new file starts; its data follows.
    Open(FileOpen),
    /// Encoded records of the open file (the first buffer starts with the file header).
    Data(Buffer),
    /// The open file is complete.
    Close(FileClose),
    /// A file the source wrote itself (a replay in blocks, see `producer::blocks`): it is the
    /// open file from now on, as far as it was written, unless a write of it failed.
    Adopt(Box<Adopted>),
}

/// A file written by the source, handed over with its digest and counts so far.
#[derive(Debug)]
pub struct Adopted {
    /// The file.
    pub file: OpenFile,
    /// The first write of it that failed, if one did: the file is then published as partial,
    /// cut back to that write's offset, and the writer stops.
    pub failure: Option<Failure>,
}

/// A file to start.
#[derive(Debug)]
pub struct FileOpen {
    /// Final path.
    pub path: PathBuf,
    /// Sequence number in the run.
    pub seq: u64,
    /// Link type of the file's records.
    pub link_type: LinkType,
}

/// Counters the source knows at the end of a file.
#[derive(Debug, Clone, Copy)]
pub struct FileClose {
    /// Why the file ends.
    pub reason: CloseReason,
    /// Kernel drops during the file, when the source reports them.
    pub kernel_drops: Option<u64>,
    /// Interface drops during the file, when the source reports them.
    pub interface_drops: Option<u64>,
    /// Ring drops during the file.
    pub ring_drops: u64,
}

/// A file the writer published.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    /// Final path.
    pub path: PathBuf,
    /// Packets in it.
    pub packets: u64,
    /// Size in bytes.
    pub size: u64,
    /// Why it ends early, if it does.
    pub partial: Option<String>,
}

/// What the writer thread hands back when it ends.
#[derive(Debug, Default)]
pub struct WriterReport {
    /// Files published, in order.
    pub published: Vec<Published>,
    /// The error that stopped it, if any.
    pub error: Option<WriterError>,
}

/// How the writer publishes files.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// fsync each file (and its directory) before and after the rename.
    pub fsync: bool,
    /// Manifest fields common to every file (format, link type, snaplen, host, site, ...).
    pub template: Manifest,
    /// Mode and group of trace files and manifests.
    pub perms: Perms,
    /// The site's sequence numbers: each file's is reserved when the file is created.
    pub seqs: Arc<SeqAllocator>,
    /// Write whole pages past the page cache where the file system allows (module
    /// `direct`).
    pub direct: bool,
}

/// A file being written: its temporary file, digest and counts so far.
#[derive(Debug)]
pub struct OpenFile {
    pending: PendingFile,
    /// The room its manifest will be written in, taken with the file.
    room: PendingFile,
    seq: u64,
    link_type: LinkType,
    offset: u64,
    hasher: StreamDigest,
    metas: Vec<(u64, BufferMeta)>,
    synced_to: u64,
    /// Its direct side, when its whole pages go past the page cache.
    direct: Option<Direct>,
}

impl OpenFile {
    /// Reserves the sequence number `open.seq` (before any of the file exists, so a crash can
    /// never let the number be used again) and creates the temporary file, and beside it the
    /// room for its manifest (see [`MANIFEST_ROOM`]).
    pub fn create(
        open: &FileOpen,
        seqs: &SeqAllocator,
        perms: &Perms,
    ) -> Result<OpenFile, WriterError> {
        let err = |what: &str, source| WriterError {
            path: open.path.clone(),
            what: what.into(),
            source,
        };
        seqs.reserve(open.seq)
            .map_err(|e| err("cannot raise the sequence mark", io::Error::other(e)))?;
        let mut pending = PendingFile::create_with_perms(&open.path, perms)
            .map_err(|e| err("cannot create the temporary file", e))?;
        // (without its room, the empty file is removed again)
        let room = PendingFile::create_with_perms(&manifest_path(&open.path), perms)
            .and_then(|room| {
                room.file.write_all_at(&[0; MANIFEST_ROOM], 0)?;
                Ok(room)
            })
            .map_err(|e| err("cannot take the room for the manifest", e))?;
        // whatever is written to it is published or left for salvage, never removed by an
        // error path
        pending.keep_when_dropped();
        Ok(OpenFile {
            pending,
            room,
            seq: open.seq,
            link_type: open.link_type,
            offset: 0,
            hasher: StreamDigest::new(DIGEST_LEAF),
            metas: Vec::new(),
            synced_to: 0,
            direct: None,
        })
    }

    /// Removes a file nothing was written to.
    pub fn abort(self) {
        let _ = self.pending.abort();
    }

    /// The temporary file, to write at offsets.
    pub fn file(&self) -> &std::fs::File {
        &self.pending.file
    }

    /// Takes the next `bytes` of the file, written elsewhere, of which the whole digest
    /// leaves from file offset `leaves_from` were hashed to `leaves`; `meta` counts their
    /// records.
    pub fn take_written(
        &mut self,
        bytes: &[u8],
        leaves_from: u64,
        leaves: &[ChainingValue],
        meta: BufferMeta,
    ) {
        self.hasher.update_with_leaves(bytes, leaves_from, leaves);
        if meta.packets > 0 {
            self.metas.push((self.offset, meta));
        }
        self.offset += bytes.len() as u64;
    }
}

/// The writer thread's state.
pub struct Writer {
    config: WriterConfig,
    backend: Box<dyn Backend>,
    free: FreeBuffers,
    counters: Arc<Counters>,
    file: Option<OpenFile>,
    publisher: Option<Publisher>,
    error: Option<WriterError>,
    /// Whether the log said already that direct writes are not taken here.
    said_no_direct: bool,
}

/// Bytes taken for a file's manifest when the file is created (a manifest is under 1 KiB),
/// so that a disk filled afterwards (by the next file, or anyone) cannot keep a file written
/// whole from being published.
pub const MANIFEST_ROOM: usize = 4096;

/// Bytes between early writeback requests when fsync is on.
const WRITEBACK_STEP: u64 = 4 << 20;

impl Writer {
    /// A writer over `backend`, returning buffers to `free`.
    pub fn new(
        config: WriterConfig,
        backend: Box<dyn Backend>,
        free: FreeBuffers,
        counters: Arc<Counters>,
    ) -> Writer {
        let publish = PublishConfig {
            fsync: config.fsync,
            perms: config.perms,
            seqs: config.seqs.clone(),
        };
        Writer {
            publisher: Some(Publisher::start(publish, counters.clone())),
            config,
            backend,
            free,
            counters,
            file: None,
            error: None,
            said_no_direct: false,
        }
    }

    /// Runs until the source hangs up or a write or a publication fails.
    pub fn run(mut self, events: Receiver<Event>) -> WriterReport {
        while let Some(event) = self.next_event(&events) {
            if let Err(e) = self.handle(event) {
                self.error = Some(e);
                break;
            }
        }
        if self.error.is_none() {
            if let Err(e) = self.end_unclosed() {
                self.error = Some(e);
            }
        }
        self.drain();
        let outcome = self.publisher.take().map(Publisher::finish);
        let outcome = outcome.unwrap_or_default();
        WriterReport {
            published: outcome.published,
            // A failed publication stops the writer with a placeholder error; the
            // publisher's own error says what happened.
            error: outcome.error.or(self.error),
        }
    }

    fn next_event(&mut self, events: &Receiver<Event>) -> Option<Event> {
        loop {
            if self.backend.in_flight() == 0 {
                return events.recv().ok();
            }
            match events.try_recv() {
                Ok(e) => return Some(e),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => self.backend.progress(true),
            }
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), WriterError> {
        if self.publisher.as_ref().is_some_and(Publisher::failed) {
            return Err(WriterError {
                path: Default::default(),
                what: "publication failed".into(),
                source: io::Error::other("publication failed"),
            });
        }
        match event {
            Event::Open(open) => self.open(open),
            Event::Data(buf) => self.data(buf),
            Event::Adopt(adopted) => self.adopt(adopted),
            Event::Close(close) => match self.file.take() {
                Some(f) => self.close(f, close),
                None => Ok(()),
            },
        }
    }

    /// The source ended without closing the file: publishes what there is of it.
    fn end_unclosed(&mut self) -> Result<(), WriterError> {
        if self.file.is_none() {
            return Ok(());
        }
        self.drain();
        self.check_failures()?;
        self.settle()?;
        match self.file.take() {
            Some(f) => self
                .finish(f, Cut::End, "the source stopped without closing the file")
                .map(drop),
            None => Ok(()),
        }
    }

    /// Creates the file (see [`OpenFile::create`]) and, where asked for and taken, its
    /// direct side.
    fn open(&mut self, open: FileOpen) -> Result<(), WriterError> {
        let mut file = OpenFile::create(&open, &self.config.seqs, &self.config.perms)?;
        if self.config.direct {
            match Direct::open(file.file()) {
                Ok(Some(d)) => file.direct = Some(d),
                Ok(None) => self.no_direct(&open, "the file system does not take them"),
                Err(e) => self.no_direct(&open, &e.to_string()),
            }
        }
        self.counters.set_current(Some(file_name(&open.path)));
        self.file = Some(file);
        Ok(())
    }

    /// Takes a file the source wrote; publishes it as partial and stops if a write failed.
    fn adopt(&mut self, adopted: Box<Adopted>) -> Result<(), WriterError> {
        let Adopted { file, failure } = *adopted;
        debug_assert!(
            self.file.is_none(),
            "a file is adopted while another is open"
        );
        self.counters
            .set_current(Some(file_name(file.pending.dest_path())));
        self.file = Some(file);
        match failure {
            None => Ok(()),
            Some(failure) => self.failed(vec![failure]),
        }
    }

    fn no_direct(&mut self, open: &FileOpen, why: &str) {
        if !std::mem::replace(&mut self.said_no_direct, true) {
            let dir = open.path.parent().unwrap_or(&open.path);
            tracing::info!(
                "{}: writing through the page cache (no direct writes: {why})",
                dir.display()
            );
        }
    }

    fn data(&mut self, mut buf: Buffer) -> Result<(), WriterError> {
        let Some(f) = self.file.as_mut() else {
            self.free.put(buf);
            return Ok(());
        };
        f.hasher
            .update_with_leaves(buf.filled(), buf.leaves_from, &buf.leaves);
        f.metas.push((f.offset, buf.meta));
        let offset = f.offset;
        f.offset += buf.len() as u64;
        let continued = buf.continued;
        // the device does not keep up: the page cache takes the burst (see `direct`)
        let cached = f.direct.is_some() && !self.free.half_free();
        let write = match f.direct.as_mut() {
            None => Ok(Some((f.pending.file.as_raw_fd(), offset))),
            Some(d) => match d.take(offset, &mut buf, cached) {
                Ok(Take::Direct(at)) => Ok(Some((d.fd(), at))),
                Ok(Take::Carried) => Ok(None),
                // a burst, or a record that left no room to place the buffer: written here
                // and now, so it is in the file before any direct write of the page it shares
                Ok(Take::Buffered) => f
                    .pending
                    .file
                    .write_all_at(buf.filled(), offset)
                    .map(|()| None)
                    .map_err(|e| (offset, e)),
                Err(failed) => Err(failed),
            },
        };
        match write {
            Ok(Some((fd, at))) => self.backend.submit(fd, at, buf),
            Ok(None) => self.free.put(buf),
            Err((offset, error)) => {
                self.free.put(buf);
                return self.failed(vec![Failure { offset, error }]);
            }
        }
        self.backend.progress(false);
        if !continued {
            // the source pauses: what the direct side holds back goes to the file now
            self.settle()?;
        }
        if self.config.fsync {
            self.start_writeback();
        }
        self.check_failures()
    }

    /// Writes what the open file's direct side holds back (see [`Direct::settle`]).
    fn settle(&mut self) -> Result<(), WriterError> {
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let Some(d) = f.direct.as_mut() else {
            return Ok(());
        };
        match d.settle() {
            Ok(()) => Ok(()),
            Err((offset, error)) => self.failed(vec![Failure { offset, error }]),
        }
    }

    /// With fsync on, asks the kernel to start writing back what was just written, so the
    /// disk works while the file fills and the fsync at the end has little left to do. (With
    /// io_uring a write may still be in flight; its pages are then written at the fsync.)
    fn start_writeback(&mut self) {
        let Some(f) = self.file.as_mut() else { return };
        if f.offset >= f.synced_to + WRITEBACK_STEP {
            let len = f.offset - f.synced_to;
            // Served by the publisher thread: the request may wait for the device.
            if let Some(p) = self.publisher.as_mut() {
                p.writeback(f.pending.file.as_raw_fd(), f.synced_to, len);
            }
            f.synced_to = f.offset;
        }
    }

    fn check_failures(&mut self) -> Result<(), WriterError> {
        let failures = self.backend.take_failures();
        if failures.is_empty() {
            return Ok(());
        }
        self.failed(failures)
    }

    /// After failed writes of the open file: publishes what came before the first as
    /// partial, and stops.
    fn failed(&mut self, failures: Vec<Failure>) -> Result<(), WriterError> {
        self.drain();
        let mut all = failures;
        all.extend(self.backend.take_failures());
        let first = all
            .into_iter()
            .min_by_key(|f| f.offset)
            .expect("there is at least one failure");
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        // Written through the ring, a failed write starts at a buffer's start, a record
        // boundary. A direct write starts at the page its buffer's first byte is in, and a
        // carry at the end of a page: everything before is written, and read back to the
        // last whole record (or, if that fails, cut back to the last buffer start).
        let cut = match f.direct {
            Some(_) => match whole_records(f.pending.tmp_path(), first.offset) {
                Ok(whole) => Cut::Counted(whole),
                Err(e) => {
                    tracing::warn!("cannot read back the records before a failed write: {e}");
                    let start = f.metas.iter().map(|(start, _)| *start);
                    Cut::At(start.filter(|s| *s <= first.offset).max().unwrap_or(0))
                }
            },
            None => Cut::At(first.offset),
        };
        let path = f.pending.dest_path().to_owned();
        let reason = format!("write error at byte {}: {}", first.offset, first.error);
        let what = match self.finish(f, cut, &reason)? {
            true => "write failed; the part written before was published as partial",
            false => {
                "write failed before the file held a whole record; nothing of it was published"
            }
        };
        Err(WriterError {
            path,
            what: what.into(),
            source: first.error,
        })
    }

    fn drain(&mut self) {
        while self.backend.in_flight() > 0 {
            self.backend.progress(true);
        }
    }

    fn close(&mut self, f: OpenFile, close: FileClose) -> Result<(), WriterError> {
        self.drain();
        self.file = Some(f);
        self.check_failures()?;
        self.settle()?;
        let Some(f) = self.file.take() else {
            return Ok(());
        };
        let mut manifest = self.manifest_for(&f, f.offset);
        manifest.drops.kernel = close.kernel_drops;
        manifest.drops.interface = close.interface_drops;
        manifest.drops.ring = close.ring_drops;
        manifest.blake3 = f.hasher.finalize().to_hex().to_string();
        self.publish(f.pending, f.room, manifest)
    }

    /// Publishes what was written of a file that ends early: cut back to a record boundary
    /// when a write failed, digest re-read from the file. False if nothing was left to
    /// publish (the file is then removed).
    fn finish(&mut self, mut f: OpenFile, cut: Cut, reason: &str) -> Result<bool, WriterError> {
        if let Some(d) = f.direct.as_mut() {
            // the file ends where it is cut (or at its end, its carry settled already)
            d.forget_carry();
        }
        let (len, counted) = match cut {
            Cut::End => (f.offset, None),
            Cut::At(len) => (len, None),
            Cut::Counted((_, meta)) if meta.packets == 0 => (0, None),
            Cut::Counted((len, meta)) => (len, Some(meta)),
        };
        let path = f.pending.dest_path().to_owned();
        let err = |what: &str, source| WriterError {
            path: path.clone(),
            what: what.into(),
            source,
        };
        if len == 0 {
            let _ = f.pending.abort();
            return Ok(false);
        }
        f.pending
            .file
            .set_len(len)
            .map_err(|e| err("cannot cut the partial file", e))?;
        let mut manifest = self.manifest_for(&f, len);
        if let Some(c) = counted {
            manifest.packets = c.packets;
            manifest.bytes = c.bytes;
            manifest.wire_bytes = c.wire_bytes;
            manifest.first_ts_ns = c.first_ts_ns;
            manifest.last_ts_ns = c.last_ts_ns;
        }
        manifest.partial = Some(reason.to_string());
        manifest.blake3 = hash_prefix(f.pending.tmp_path(), len)
            .map_err(|e| err("cannot re-read the partial file", e))?;
        tracing::warn!("{}: published as partial: {reason}", path.display());
        self.publish(f.pending, f.room, manifest).map(|()| true)
    }

    fn manifest_for(&self, f: &OpenFile, len: u64) -> Manifest {
        let mut sum = BufferMeta::default();
        for (_, m) in f.metas.iter().filter(|(off, _)| *off < len) {
            sum.merge(m);
        }
        let mut m = self.config.template.clone();
        m.link_type = f.link_type.0;
        m.link_type_name = f.link_type.name();
        m.file = file_name(f.pending.dest_path());
        m.seq = Some(f.seq);
        m.packets = sum.packets;
        m.bytes = sum.bytes;
        m.wire_bytes = sum.wire_bytes;
        m.first_ts_ns = sum.first_ts_ns;
        m.last_ts_ns = sum.last_ts_ns;
        m.drops.source = sum.source_drops;
        m.file_size = len;
        m
    }

    /// Hands the file to the publisher thread (manifest first, then the trace file, so a
    /// consumer that sees the trace sees both).
    fn publish(
        &mut self,
        pending: PendingFile,
        room: PendingFile,
        manifest: Manifest,
    ) -> Result<(), WriterError> {
        self.counters.set_current(None);
        // The publisher is only taken out when `run` ends, after the last file.
        if let Some(p) = self.publisher.as_mut() {
            p.publish(Finished {
                pending,
                room,
                manifest,
            });
        }
        Ok(())
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Where a file that ends early is cut.
enum Cut {
    /// At its end: nothing failed.
    End,
    /// At this record boundary.
    At(u64),
    /// At the end of its whole records read back: their length and counts.
    Counted((u64, BufferMeta)),
}

/// The whole records in the first `limit` bytes of a trace file: where the last one ends,
/// and their counts.
fn whole_records(path: &std::path::Path, limit: u64) -> Result<(u64, BufferMeta), String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let name = path.display().to_string();
    let mut reader =
        lander_trace::format::TraceReader::from_stream(&name, Box::new(file.take(limit)))
            .map_err(|e| e.to_string())?;
    let mut meta = BufferMeta::default();
    let mut end = reader.offset();
    // a record cut by the limit ends the reading, as an error or as the end
    while let Ok(Some(rec)) = reader.next() {
        meta.add(rec.ts_ns, rec.data.len(), rec.wire_len, 0);
        end = reader.offset();
    }
    Ok((end, meta))
}

/// BLAKE3 of the first `len` bytes of a file, hex.
fn hash_prefix(path: &std::path::Path, len: u64) -> io::Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    io::copy(&mut file.take(len), &mut hasher)?;
    Ok(hasher.finalize().to_hex().to_string())
}
