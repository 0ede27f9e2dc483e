//! The file scrubber: a bounded pipeline of chunks, reader thread -> rayon workers -> ordered
//! writer.
//!
//! The reader copies records into a chunk (one flat buffer and a table of record metadata),
//! taken from a fixed pool, so at most `2 * threads + 2` chunks exist at once and memory stays
//! bounded whatever the file size. Each worker clones the prototype [`Anonymizer`] once into
//! its own [`CachedAnonymizer`] (cipher and prefix cache per thread), walks every record of a
//! chunk in place and encodes the survivors into the chunk's output buffer. The writer puts
//! chunks back in input order, so the output is byte-identical whatever the thread count.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{bounded, Receiver, Sender};
use lander_capture::format::{ReadError, RecordEncoder, TraceReader, WriteError};
use lander_capture::manifest::{manifest_path, Anonymization, Manifest};
use lander_capture::publish::PendingFile;
use lander_capture::{Format, LinkType, Record};
use rayon::prelude::*;

use crate::cache::CachedAnonymizer;
use crate::mapping::Anonymizer;
use crate::walker::{walk, Checksums, MacPolicy, Payload, Policy, Reason};

/// Records per chunk.
pub const CHUNK_RECORDS: usize = 8192;
/// Captured bytes per chunk (a chunk closes at whichever limit comes first).
pub const CHUNK_BYTES: usize = 4 << 20;
/// Read buffer of the input stream.
const READ_BUFFER: usize = 1 << 20;

/// How to scrub.
#[derive(Clone, Debug)]
pub struct ScrubConfig {
    /// Walker policy: payload, checksums, MACs.
    pub policy: Policy,
    /// Drop packets whose headers could not be parsed whole instead of cutting them.
    pub drop_unparsed: bool,
    /// Worker threads (at least 1).
    pub threads: usize,
    /// Output format; `None` keeps the input's.
    pub format: Option<Format>,
    /// Input format; `None` detects it (ERF has no magic and must be named).
    pub input_format: Option<Format>,
    /// fsync the output and its manifest before publishing.
    pub fsync: bool,
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            policy: Policy::default(),
            drop_unparsed: false,
            threads: 1,
            format: None,
            input_format: None,
            fsync: false,
        }
    }
}

/// Why scrubbing failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrubError {
    /// Reading the input failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Encoding the output failed.
    #[error("{path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: WriteError,
    },
    /// A file system operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A worker thread panicked.
    #[error("a scrub worker panicked")]
    Panicked,
}

fn io_at(path: &Path) -> impl Fn(io::Error) -> ScrubError + '_ {
    move |source| ScrubError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Counts of one scrub run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records read.
    pub packets_in: u64,
    /// Records written.
    pub packets_out: u64,
    /// Records dropped (`--drop-unparsed`).
    pub dropped: u64,
    /// Captured bytes read.
    pub bytes_in: u64,
    /// Captured bytes written.
    pub bytes_out: u64,
    /// Wire bytes of the records written.
    pub wire_bytes_out: u64,
    /// Packets cut or dropped, by reason name.
    pub reasons: BTreeMap<String, u64>,
    /// First and last timestamps written.
    pub first_ts_ns: Option<u64>,
    /// Last timestamp written.
    pub last_ts_ns: Option<u64>,
    /// Sum of the source's loss counters.
    pub source_drops: u64,
    /// Bytes of output (file header included).
    pub file_size: u64,
    /// BLAKE3 of the output.
    pub blake3: String,
}

#[derive(Clone, Copy, Debug)]
struct Meta {
    ts_ns: u64,
    wire_len: u32,
    link_type: LinkType,
    interface: u32,
    drops: u32,
    start: usize,
    len: usize,
}

/// A batch of records travelling through the pipeline.
#[derive(Default)]
struct Chunk {
    seq: u64,
    data: Vec<u8>,
    metas: Vec<Meta>,
    out: Vec<u8>,
    counts: Vec<u64>,
    stats: Summary,
    error: Option<WriteError>,
}

impl Chunk {
    fn clear(&mut self) {
        self.data.clear();
        self.metas.clear();
        self.out.clear();
        self.counts.clear();
        self.counts.resize(Reason::ALL.len(), 0);
        self.stats = Summary::default();
        self.error = None;
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
}

/// One worker's state: its own cipher and caches, built from the prototype.
struct Worker<'a> {
    anon: CachedAnonymizer,
    encoder: RecordEncoder,
    config: &'a ScrubConfig,
    reason_index: HashMap<Reason, usize>,
}

impl Worker<'_> {
    fn process(&mut self, chunk: &mut Chunk) {
        let Chunk {
            data,
            metas,
            out,
            counts,
            stats,
            error,
            ..
        } = chunk;
        for m in metas.iter() {
            let frame = &mut data[m.start..m.start + m.len];
            let outcome = walk(m.link_type.0, frame, &self.config.policy, &mut self.anon);
            stats.packets_in += 1;
            stats.bytes_in += m.len as u64;
            stats.source_drops += u64::from(m.drops);
            if let Some(reason) = outcome.reason {
                counts[self.reason_index[&reason]] += 1;
                if self.config.drop_unparsed {
                    stats.dropped += 1;
                    continue;
                }
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
            stats.packets_out += 1;
            stats.bytes_out += outcome.caplen as u64;
            stats.wire_bytes_out += u64::from(m.wire_len);
            stats.first_ts_ns.get_or_insert(m.ts_ns);
            stats.last_ts_ns = Some(m.ts_ns);
        }
    }
}

/// Scrubs every record of `reader` into `out` (file header first). Returns the counts.
pub fn scrub_stream<W: Write>(
    reader: TraceReader,
    out: &mut W,
    out_path: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
) -> Result<Summary, ScrubError> {
    let threads = config.threads.max(1);
    let format = config.format.unwrap_or(reader.format());
    let write_err = |source| ScrubError::Write {
        path: out_path.to_owned(),
        source,
    };
    let encoder = RecordEncoder::new(format, reader.link_type(), reader.snaplen().max(1))
        .map_err(write_err)?;
    let n_chunks = 2 * threads + 2;
    let (free_tx, free_rx) = bounded::<Chunk>(n_chunks);
    for _ in 0..n_chunks {
        let mut c = Chunk::default();
        c.clear();
        free_tx.send(c).map_err(|_| ScrubError::Panicked)?;
    }
    let (work_tx, work_rx) = bounded::<Chunk>(n_chunks);
    let (done_tx, done_rx) = bounded::<Chunk>(n_chunks);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("scrub-{i}"))
        .build()
        .map_err(|e| io_at(out_path)(io::Error::other(e)))?;
    let mut writer = OrderedWriter::new(out, out_path, &encoder)?;
    std::thread::scope(|s| {
        let reading = s.spawn(move || read_chunks(reader, &free_rx, work_tx));
        let encoder = &encoder;
        // the work receiver moves into the workers' thread, so a reader blocked on a full
        // queue is released when the workers stop early
        let working = s.spawn(move || {
            pool.install(|| run_workers(threads, &work_rx, done_tx, anon, encoder, config))
        });
        let written = writer.run(&done_rx, &free_tx);
        drop(done_rx);
        drop(free_tx);
        let read = reading.join().map_err(|_| ScrubError::Panicked)?;
        working.join().map_err(|_| ScrubError::Panicked)?;
        written?;
        read
    })?;
    Ok(writer.finish())
}

fn read_chunks(
    mut reader: TraceReader,
    free: &Receiver<Chunk>,
    work: Sender<Chunk>,
) -> Result<(), ScrubError> {
    let mut seq = 0;
    let Ok(mut chunk) = free.recv() else {
        return Ok(());
    };
    while let Some(rec) = reader.next()? {
        chunk.push(&rec);
        if chunk.full() {
            chunk.seq = seq;
            seq += 1;
            if work.send(chunk).is_err() {
                return Ok(());
            }
            let Ok(next) = free.recv() else { return Ok(()) };
            chunk = next;
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
) {
    let reason_index: HashMap<Reason, usize> = Reason::ALL
        .iter()
        .enumerate()
        .map(|(i, r)| (*r, i))
        .collect();
    (0..threads).into_par_iter().for_each_init(
        || Worker {
            anon: CachedAnonymizer::new(anon.clone()),
            encoder: encoder.clone(),
            config,
            reason_index: reason_index.clone(),
        },
        |worker, _| {
            for mut chunk in work.iter() {
                worker.process(&mut chunk);
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
    counts: Vec<u64>,
    total: Summary,
}

impl<'w, W: Write> OrderedWriter<'w, W> {
    fn new(out: &'w mut W, path: &Path, encoder: &RecordEncoder) -> Result<Self, ScrubError> {
        let mut w = OrderedWriter {
            out,
            path: path.to_owned(),
            hasher: blake3::Hasher::new(),
            pending: BTreeMap::new(),
            next: 0,
            counts: vec![0; Reason::ALL.len()],
            total: Summary::default(),
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
        self.emit(&c.out)?;
        let (t, s) = (&mut self.total, &c.stats);
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
        self.counts
            .iter_mut()
            .zip(&c.counts)
            .for_each(|(a, b)| *a += b);
        Ok(())
    }

    fn finish(mut self) -> Summary {
        self.total.blake3 = self.hasher.finalize().to_hex().to_string();
        for (r, &n) in Reason::ALL.iter().zip(&self.counts) {
            if n > 0 {
                self.total.reasons.insert(r.name().to_string(), n);
            }
        }
        self.total
    }
}

/// A reader that hashes what passes through it.
struct HashingRead {
    inner: File,
    hasher: Arc<Mutex<blake3::Hasher>>,
}

impl Read for HashingRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut h) = self.hasher.lock() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// What the manifest of a scrubbed file says about how it was made.
#[derive(Clone, Debug, Default)]
pub struct Provenance {
    /// Key id (digest of the key).
    pub key_id: String,
    /// Other settings that change the output.
    pub settings: BTreeMap<String, String>,
}

/// Scrubs the trace file `input` into `output`: the output and its manifest are published
/// atomically (manifest first). Memory stays bounded: the input is streamed, not mapped.
pub fn scrub_file(
    input: &Path,
    output: &Path,
    anon: &Anonymizer,
    config: &ScrubConfig,
    provenance: &Provenance,
) -> Result<(Summary, Manifest), ScrubError> {
    let file = File::open(input).map_err(io_at(input))?;
    let hasher = Arc::new(Mutex::new(blake3::Hasher::new()));
    let source = HashingRead {
        inner: file,
        hasher: Arc::clone(&hasher),
    };
    let name = input.display().to_string();
    let reader =
        TraceReader::from_stream_with(&name, Box::new(source), config.input_format, READ_BUFFER)?;
    let (link, snaplen) = (reader.link_type(), reader.snaplen());
    let format = config.format.unwrap_or(reader.format());
    let mut pending = PendingFile::create(output).map_err(io_at(output))?;
    let summary = {
        let mut out = io::BufWriter::with_capacity(1 << 20, &mut pending.file);
        let summary = scrub_stream(reader, &mut out, output, anon, config)?;
        out.flush().map_err(io_at(output))?;
        summary
    };
    let source_blake3 = hasher
        .lock()
        .map(|h| h.finalize().to_hex().to_string())
        .ok();
    let mut manifest = build_manifest(input, output, format, link, snaplen, &summary);
    manifest.anonymization = Some(Anonymization {
        mapping: anon.mapping().name().to_string(),
        payload: payload_name(config.policy.payload),
        checksums: checksums_name(config.policy.checksums).to_string(),
        key_id: provenance.key_id.clone(),
        settings: settings(config, provenance),
        counts: summary.reasons.clone(),
        source_file: input.file_name().map(|n| n.to_string_lossy().into_owned()),
        source_blake3,
    });
    if config.fsync {
        pending.file.sync_all().map_err(io_at(output))?;
    }
    manifest
        .publish(&manifest_path(output), config.fsync)
        .map_err(io_at(output))?;
    pending.commit(config.fsync).map_err(io_at(output))?;
    Ok((summary, manifest))
}

fn build_manifest(
    input: &Path,
    output: &Path,
    format: Format,
    link: LinkType,
    snaplen: u32,
    s: &Summary,
) -> Manifest {
    let file = output.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut m = Manifest::new(&file.unwrap_or_default(), format, link, snaplen);
    if let Ok(raw) = Manifest::read(&manifest_path(input)) {
        m.site = raw.site;
        m.interface = raw.interface;
        m.seq = raw.seq;
        m.drops = raw.drops;
    }
    m.drops.source = m.drops.source.max(s.source_drops);
    m.packets = s.packets_out;
    m.bytes = s.bytes_out;
    m.wire_bytes = s.wire_bytes_out;
    m.file_size = s.file_size;
    m.first_ts_ns = s.first_ts_ns;
    m.last_ts_ns = s.last_ts_ns;
    m.blake3 = s.blake3.clone();
    m
}

fn settings(config: &ScrubConfig, provenance: &Provenance) -> BTreeMap<String, String> {
    let mut s = provenance.settings.clone();
    let mac = match config.policy.mac {
        MacPolicy::Keep => "keep",
        MacPolicy::Zero => "zero",
        MacPolicy::Scramble(_) => "scramble",
    };
    s.insert("mac".into(), mac.into());
    s.insert("drop_unparsed".into(), config.drop_unparsed.to_string());
    if config.drop_unparsed {
        s.insert("unparsed".into(), "dropped".into());
    }
    s
}

/// The name of a payload policy, as on the command line.
pub fn payload_name(p: Payload) -> String {
    match p {
        Payload::Drop => "drop".into(),
        Payload::Keep(n) => format!("keep:{n}"),
        Payload::Zero => "zero".into(),
    }
}

/// The name of a checksum policy.
pub fn checksums_name(c: Checksums) -> &'static str {
    match c {
        Checksums::Fix => "fix",
        Checksums::Zero => "zero",
        Checksums::Keep => "keep",
    }
}

/// Parses `drop`, `keep:N` or `zero`.
pub fn parse_payload(s: &str) -> Result<Payload, String> {
    match s {
        "drop" => Ok(Payload::Drop),
        "zero" => Ok(Payload::Zero),
        _ => s
            .strip_prefix("keep:")
            .and_then(|n| n.parse().ok())
            .map(Payload::Keep)
            .ok_or_else(|| format!("bad payload policy {s:?} (expected drop, keep:N or zero)")),
    }
}

/// Parses `fix`, `zero` or `keep`.
pub fn parse_checksums(s: &str) -> Result<Checksums, String> {
    match s {
        "fix" => Ok(Checksums::Fix),
        "zero" => Ok(Checksums::Zero),
        "keep" => Ok(Checksums::Keep),
        _ => Err(format!(
            "bad checksum policy {s:?} (expected fix, zero or keep)"
        )),
    }
}
