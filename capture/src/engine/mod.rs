//! The capture engine: sources, the ring of buffers, the writers and rotation.
//!
//! ```text
//!  source thread                                writer thread
//!  CaptureSource::next ──► encode into the ──► Event::Data ──► hash, io_uring / pwrite ──► publish
//!                          current buffer  ◄── free buffers ◄──  (after completion)
//! ```
//!
//! The source thread copies each packet once, with its output record header, into a large
//! preallocated buffer; full buffers go to the writer through a bounded channel and come back
//! once written. Nothing is allocated per packet. A live source never waits: with no free
//! buffer it counts a ring drop. A file source waits.
//!
//! A replay of a regular pcap file whose records the output takes as they are skips the ring:
//! the source thread and one more each read, walk, hash and write their own blocks of the
//! file, in turn where order matters, and hand finished files to the writer thread to publish
//! (`producer::blocks`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lander_spool::manifest::{hostname, now_ns, Manifest};
use lander_spool::perms::Perms;
use lander_spool::seq::SeqAllocator;
use lander_trace::record::Format;

pub mod error;
pub mod producer;
pub mod publication;
pub mod ring;
pub mod rotate;
pub mod salvage;
pub mod source;
pub mod stats;
pub mod sys;
pub mod writer;

use producer::{Producer, ProducerConfig};
use ring::FreeBuffers;
use rotate::RotatePolicy;
use source::{CaptureSource, SourceError};
use stats::{Counters, RunRecord, Snapshot};
use writer::{IoMode, Published, Writer, WriterConfig};

/// Everything the engine needs, validated by the front end.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Where trace files are published.
    pub out_dir: PathBuf,
    /// Site name in file names and manifests.
    pub site: String,
    /// Output format.
    pub format: Format,
    /// Bytes kept of each packet (at most the source's snaplen); `None`: the source's.
    pub snaplen: Option<u32>,
    /// Rotation rules.
    pub rotate: RotatePolicy,
    /// fsync files and directory on publication.
    pub fsync: bool,
    /// Write path. With [`IoMode::Uring`] every write goes through the writer thread's
    /// ring; otherwise a replay of a regular pcap file whose records are written as they are
    /// goes in blocks on two threads (`producer::blocks`), with plain writes.
    pub io: IoMode,
    /// Write whole pages past the page cache where the file system allows
    /// (`writer::direct`).
    pub direct: bool,
    /// Total bytes of ring buffers.
    pub ring_bytes: usize,
    /// Bytes per ring buffer.
    pub buffer_bytes: usize,
    /// Where the run record goes (the spool's state directory), if anywhere.
    pub state_dir: Option<PathBuf>,
    /// Period of the log line and run record.
    pub stats_interval: Duration,
    /// Stop after this many packets.
    pub max_packets: Option<u64>,
    /// Mode and group of trace files and manifests, and of the output directory if the engine
    /// creates it (front ends tighten an existing one with [`Perms::ensure_dir`] first).
    pub perms: Perms,
}

impl EngineConfig {
    /// A configuration with the defaults: pcap, 64 MiB ring of 1 MiB buffers, auto I/O.
    pub fn new(out_dir: PathBuf, site: String) -> EngineConfig {
        EngineConfig {
            out_dir,
            site,
            format: Format::Pcap,
            snaplen: None,
            rotate: RotatePolicy::default(),
            fsync: false,
            io: IoMode::Auto,
            direct: true,
            ring_bytes: 64 << 20,
            buffer_bytes: DEFAULT_BUFFER_BYTES,
            state_dir: None,
            stats_interval: Duration::from_secs(5),
            max_packets: None,
            perms: Perms::RAW,
        }
    }

    fn buffer_count(&self) -> usize {
        (self.ring_bytes / self.buffer_bytes.max(1)).max(2)
    }
}

/// Flags set from outside (signal handlers) and read by the source thread.
#[derive(Debug, Clone, Default)]
pub struct Control {
    /// Read what the source still holds (a live interface's kernel buffer), write and
    /// publish everything, then stop (SIGINT, SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// With `stop`: skip reading what the source still holds (a second SIGINT or SIGTERM).
    /// What was read is still written and published.
    pub hurry: Arc<AtomicBool>,
    /// Close the current file now (SIGHUP).
    pub rotate: Arc<AtomicBool>,
    writer_failed: Arc<AtomicBool>,
}

/// The engine could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The configuration cannot work.
    #[error("{0}")]
    Config(String),
    /// The source failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A record could not be encoded.
    #[error("cannot encode a record: {0}")]
    Encode(String),
    /// The writer stopped (its own error says why).
    #[error("the writer stopped")]
    WriterGone,
    /// Setting up failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The outcome of a capture run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaptureSummary {
    /// Source description.
    pub source: String,
    /// `io_uring` or `sync`.
    pub writer: String,
    /// Wall-clock seconds from start to the last publication.
    pub elapsed_secs: f64,
    /// Packets per second over the run.
    pub pps: f64,
    /// Wire bits per second over the run.
    pub bps: f64,
    /// Final counters.
    pub counters: Snapshot,
    /// Files published, in order.
    pub files: Vec<Published>,
    /// Peak resident memory of the process, bytes.
    pub peak_rss: u64,
    /// What ended the run early, if anything did.
    pub error: Option<String>,
}

/// Bytes per ring buffer, unless configured: small enough that the writer hashes a buffer
/// and copies it to the page cache while it is still in the cache. In alternating live runs
/// at ~0.3 Mpps of 64-byte packets, CPU time per million packets was 0.23-0.26 s with 1 and
/// 2 MiB buffers against 0.32-0.35 s with 4 MiB ones (tcpdump 0.27-0.33 in the same runs);
/// 128 KiB buffers cost more again (a write per buffer). Replays were as fast as with 4 MiB.
const DEFAULT_BUFFER_BYTES: usize = 1 << 20;

/// Ring buffers for a file, pipe or stream source (at most).
const FILE_SOURCE_BUFFERS: usize = 4;

/// Ring buffers a live capture touches before it starts: the few a steady capture cycles
/// through (the free list is last in, first out), so a steady capture takes no page fault.
/// When the writer falls behind (a slow disk, a rotation) and the capture reaches buffers it
/// has not used yet, it faults their pages in once, while the kernel's ring holds the
/// packets; touching the whole ring at every start cost more CPU time than that.
const LIVE_PREFAULT_BUFFERS: usize = 3;

/// Runs a capture from `source` until it ends, `control.stop` is set, or a write fails.
///
/// Errors before the first packet (bad configuration, no io_uring with `--io uring`) are
/// returned; a failure during the run is in [`CaptureSummary::error`], after the part written was
/// published.
pub fn run<S: CaptureSource + ?Sized>(
    config: &EngineConfig,
    source: &mut S,
    control: &Control,
) -> Result<CaptureSummary, EngineError> {
    let seqs = open_seqs(config)?;
    run_with_seqs(config, source, control, seqs)
}

/// The sequence numbers of a capture run into `config.out_dir`: share one allocator between
/// engines that write into the same directory at once (fanout threads), so no two files get
/// the same number.
pub fn open_seqs(config: &EngineConfig) -> Result<Arc<SeqAllocator>, EngineError> {
    if !config.out_dir.is_dir() {
        config
            .perms
            .ensure_dir(&config.out_dir)
            .map_err(|source| EngineError::Io {
                what: "cannot create the output directory".into(),
                source,
            })?;
    }
    let seqs = SeqAllocator::open(&config.out_dir, &config.site, config.perms, config.fsync)
        .map_err(|e| EngineError::Io {
            what: "cannot find the next sequence number".into(),
            source: std::io::Error::other(e),
        })?;
    Ok(Arc::new(seqs))
}

/// [`run`], with sequence numbers from `seqs` (see [`open_seqs`]).
pub fn run_with_seqs<S: CaptureSource + ?Sized>(
    config: &EngineConfig,
    source: &mut S,
    control: &Control,
    seqs: Arc<SeqAllocator>,
) -> Result<CaptureSummary, EngineError> {
    let started = Instant::now();
    let started_ns = now_ns();
    let io_err = |what: &str| {
        let what = what.to_string();
        move |source| EngineError::Io { what, source }
    };
    if !config.out_dir.is_dir() {
        config
            .perms
            .ensure_dir(&config.out_dir)
            .map_err(io_err("cannot create the output directory"))?;
    }
    // A file with the mode and group asked for, at once, rather than at the first packet.
    lander_spool::publish::PendingFile::create_with_perms(
        &config.out_dir.join("probe"),
        &config.perms,
    )
    .and_then(lander_spool::publish::PendingFile::abort)
    .map_err(io_err(
        "cannot create a trace file with the mode and group asked for",
    ))?;
    // A file source waits for free buffers rather than dropping: a few keep the source and
    // the writer both busy, and more would only cost page faults on first use.
    let count = match source.is_live() {
        true => config.buffer_count(),
        false => config.buffer_count().min(FILE_SOURCE_BUFFERS),
    };
    let prefault = match source.is_live() {
        true => LIVE_PREFAULT_BUFFERS,
        false => 0,
    };
    let free = FreeBuffers::allocate(count, config.buffer_bytes, prefault)
        .map_err(io_err("cannot allocate the ring buffers"))?;
    let backend = writer::backend(config.io, count, free.clone())
        .map_err(io_err("cannot set up io_uring"))?;
    let writer_name = backend.name().to_string();
    let snaplen = config
        .snaplen
        .map_or(source.snaplen(), |s| s.min(source.snaplen().max(1)));
    let counters = Arc::new(Counters::default());
    let (tx, rx) = crossbeam_channel::bounded(count + 8);
    let producer = Producer::new(
        ProducerConfig {
            out_dir: config.out_dir.clone(),
            site: config.site.clone(),
            format: config.format,
            snaplen,
            rotate: config.rotate,
            seqs: seqs.clone(),
            max_packets: config.max_packets,
            perms: config.perms,
            // io_uring asked for: every write goes through the writer thread's ring
            blocks: (config.io != IoMode::Uring).then_some(config.buffer_bytes),
        },
        (source.link_type(), source.is_live()),
        free.clone(),
        tx,
        counters.clone(),
        control.clone(),
    )?;
    let mut template = Manifest::new("", config.format, source.link_type(), snaplen);
    template.interface = Some(source.describe());
    template.site = Some(config.site.clone());
    let writer = Writer::new(
        WriterConfig {
            fsync: config.fsync,
            template,
            perms: config.perms,
            seqs,
            direct: config.direct,
        },
        backend,
        free,
        counters.clone(),
    );
    tracing::info!(
        "capturing from {} into {} ({} writer, {} x {} KiB ring, {})",
        source.describe(),
        config.out_dir.display(),
        writer_name,
        count,
        config.buffer_bytes >> 10,
        config.format
    );
    let failed = control.writer_failed.clone();
    let writer_thread = std::thread::Builder::new()
        .name("lander-writer".into())
        .spawn(move || {
            let report = writer.run(rx);
            if report.error.is_some() {
                failed.store(true, Relaxed);
            }
            report
        })
        .map_err(io_err("cannot start the writer thread"))?;
    let reporter = Reporter::start(config, source.describe(), counters.clone(), started_ns);
    let produced = producer.run(source);
    let report = writer_thread
        .join()
        .unwrap_or_else(|_| writer::WriterReport {
            error: Some(error::WriterError {
                path: config.out_dir.clone(),
                what: "the writer thread panicked".into(),
                source: std::io::Error::other("panic"),
            }),
            ..Default::default()
        });
    let error = match (report.error, produced) {
        (Some(e), _) => Some(e.to_string()),
        (None, Err(e)) => Some(e.to_string()),
        (None, Ok(())) => None,
    };
    let elapsed = started.elapsed().as_secs_f64();
    let snapshot = counters.snapshot();
    let summary = CaptureSummary {
        source: source.describe(),
        writer: writer_name,
        elapsed_secs: elapsed,
        pps: snapshot.packets as f64 / elapsed.max(1e-9),
        bps: snapshot.wire_bytes as f64 * 8.0 / elapsed.max(1e-9),
        counters: snapshot,
        files: report.published,
        peak_rss: sys::peak_rss(false),
        error,
    };
    reporter.finish(&summary);
    Ok(summary)
}

/// The periodic log line and run record.
struct Reporter {
    done: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    record: RunRecord,
    state_dir: Option<PathBuf>,
}

impl Reporter {
    fn start(
        config: &EngineConfig,
        source: String,
        counters: Arc<Counters>,
        started_ns: u64,
    ) -> Reporter {
        let record = RunRecord {
            kind: "capture".into(),
            host: hostname(),
            site: config.site.clone(),
            pid: std::process::id(),
            source,
            state: "running".into(),
            started_ns,
            ..RunRecord::default()
        };
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let period = config.stats_interval.max(Duration::from_millis(100));
        let state_dir = config.state_dir.clone();
        let mut rec = record.clone();
        let dir = state_dir.clone();
        let thread = std::thread::Builder::new()
            .name("lander-stats".into())
            .spawn(move || {
                let mut last = (Instant::now(), counters.snapshot());
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(period)
                {
                    let now = (Instant::now(), counters.snapshot());
                    let (pps, bps) = stats::rates(&last.1, &now.1, (now.0 - last.0).as_secs_f64());
                    log_line(pps, bps, &now.1);
                    rec.pps = pps;
                    rec.bps = bps;
                    rec.counters = now.1.clone();
                    rec.updated_ns = now_ns();
                    write_record(dir.as_deref(), &rec);
                    last = now;
                }
            })
            .ok();
        write_record(state_dir.as_deref(), &record);
        Reporter {
            done: Some(tx),
            thread,
            record,
            state_dir,
        }
    }

    fn finish(mut self, summary: &CaptureSummary) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut rec = self.record.clone();
        rec.state = if summary.error.is_some() {
            "failed"
        } else {
            "finished"
        }
        .into();
        rec.pps = summary.pps;
        rec.bps = summary.bps;
        rec.counters = summary.counters.clone();
        rec.updated_ns = now_ns();
        rec.error = summary.error.clone();
        write_record(self.state_dir.as_deref(), &rec);
    }
}

fn log_line(pps: f64, bps: f64, s: &Snapshot) {
    let kernel = s
        .kernel_drops
        .map_or_else(|| "-".to_string(), |k| k.to_string());
    tracing::info!(
        "{:.0} packets/s, {:.1} Mbit/s, kernel drops {}, ring drops {}, file {}",
        pps,
        bps / 1e6,
        kernel,
        s.ring_drops,
        s.current_file.as_deref().unwrap_or("-")
    );
}

fn write_record(dir: Option<&std::path::Path>, rec: &RunRecord) {
    if let Some(dir) = dir {
        if let Err(e) = stats::write_run_record(dir, rec) {
            tracing::warn!("cannot write the run record in {}: {e}", dir.display());
        }
    }
}

#[cfg(test)]
mod tests;
