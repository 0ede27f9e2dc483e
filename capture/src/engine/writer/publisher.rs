//! The publisher thread: makes each finished file durable (when asked) and visible, in order,
//! while the writer goes on with the next file.
//!
//! For one file, with fsync: the trace's data (most of which the writer already sent to the
//! disk with early writeback), then the manifest written and fsynced under its temporary
//! name, the manifest renamed, the trace renamed, and one fsync of the directory for both
//! renames. A consumer that sees the trace therefore sees its manifest. Without fsync the
//! same steps run without the fsyncs.
//!
//! No rename replaces anything (`RENAME_NOREPLACE`, or link and unlink on NFS). The file's
//! sequence number was reserved (the site's mark raised) when the writer created it; when a
//! file that is not ours already has the trace's or the manifest's name, the file takes the
//! next number instead, and what was there is left untouched.
//!
//! After a failure nothing more is published: the files handed over later, and the one that
//! failed, stay under their temporary names for the next start to salvage (the capture is
//! stopping anyway; the error says why).
//!
//! The same thread also starts the early writeback the writer asks for (`sync_file_range`
//! blocks while the device queue is full, and the writer must not wait on the disk). Requests
//! and files travel through one channel in order, so a file's writeback requests are served
//! while its descriptor is still open: it is closed only after its publication, which comes
//! later in the channel. (If the writer drops a file after an error, a request still queued
//! can meet a closed or reused descriptor; starting writeback is harmless either way.)

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use super::{Published, WriterError};
use crate::engine::publication::Publication;
use crate::engine::stats::Counters;
use lander_spool::manifest::Manifest;
use lander_spool::perms::Perms;
use lander_spool::publish::PendingFile;
use lander_spool::seq::SeqAllocator;

/// Requests (files and writeback ranges) not yet served, at most (the writer waits beyond
/// that: the disk is then the bottleneck).
const QUEUE: usize = 64;

/// What the publisher thread is asked to do, in order.
#[derive(Debug)]
enum Job {
    /// Start writing back a range of an open file.
    Writeback { fd: RawFd, offset: u64, len: u64 },
    /// Publish a finished file.
    Publish(Box<Finished>),
}

/// A finished file and its manifest, ready to publish.
#[derive(Debug)]
pub struct Finished {
    /// The complete temporary file.
    pub pending: PendingFile,
    /// The room taken for its manifest.
    pub room: PendingFile,
    /// Its manifest (the creation time is set on publication).
    pub manifest: Manifest,
}

/// What publication produced.
#[derive(Debug, Default)]
pub struct PublishOutcome {
    /// Files published, in order.
    pub published: Vec<Published>,
    /// The first failure, after which nothing more was published.
    pub error: Option<WriterError>,
}

/// How files are published.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    /// fsync each file, its manifest and the directory.
    pub fsync: bool,
    /// Mode and group of trace files and manifests.
    pub perms: Perms,
    /// Where a file whose name is taken gets its next sequence number.
    pub seqs: Arc<SeqAllocator>,
}

/// Publishes finished files on its own thread (or inline, if no thread could be started).
#[derive(Debug)]
pub struct Publisher {
    thread: Option<(Sender<Job>, JoinHandle<PublishOutcome>)>,
    inline: PublishOutcome,
    config: PublishConfig,
    counters: Arc<Counters>,
    failed: Arc<AtomicBool>,
}

impl Publisher {
    /// Starts the publisher thread.
    pub fn start(config: PublishConfig, counters: Arc<Counters>) -> Publisher {
        let failed = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::bounded::<Job>(QUEUE);
        let (c, f, conf) = (counters.clone(), failed.clone(), config.clone());
        let thread = std::thread::Builder::new()
            .name("lander-publish".into())
            .spawn(move || {
                let mut outcome = PublishOutcome::default();
                for job in rx {
                    match job {
                        Job::Writeback { fd, offset, len } => {
                            super::sync::start_writeback(fd, offset, len);
                        }
                        Job::Publish(job) => publish_one(*job, &conf, &c, &mut outcome),
                    }
                    if outcome.error.is_some() {
                        f.store(true, Relaxed);
                    }
                }
                outcome
            });
        let thread = match thread {
            Ok(handle) => Some((tx, handle)),
            Err(e) => {
                tracing::warn!("cannot start the publisher thread ({e}); publishing inline");
                None
            }
        };
        Publisher {
            thread,
            inline: PublishOutcome::default(),
            config,
            counters,
            failed,
        }
    }

    /// Asks for writeback of a range of an open file to start; `fd` stays open until the
    /// file is handed over with [`Publisher::publish`].
    pub fn writeback(&mut self, fd: RawFd, offset: u64, len: u64) {
        let job = Job::Writeback { fd, offset, len };
        if let Some((tx, _)) = &self.thread {
            if tx.send(job).is_ok() {
                return;
            }
        }
        super::sync::start_writeback(fd, offset, len);
    }

    /// Hands a finished file over for publication.
    pub fn publish(&mut self, job: Finished) {
        let job = match &self.thread {
            Some((tx, _)) => match tx.send(Job::Publish(Box::new(job))) {
                Ok(()) => return,
                Err(returned) => match returned.into_inner() {
                    Job::Publish(job) => *job,
                    Job::Writeback { .. } => return,
                },
            },
            None => job,
        };
        publish_one(job, &self.config, &self.counters, &mut self.inline);
        if self.inline.error.is_some() {
            self.failed.store(true, Relaxed);
        }
    }

    /// Whether a publication failed (the writer then stops).
    pub fn failed(&self) -> bool {
        self.failed.load(Relaxed)
    }

    /// Waits until everything handed over is published (or failed).
    pub fn finish(mut self) -> PublishOutcome {
        let mut outcome = std::mem::take(&mut self.inline);
        if let Some((tx, handle)) = self.thread.take() {
            drop(tx);
            let threaded = handle.join().unwrap_or_else(|_| PublishOutcome {
                published: Vec::new(),
                error: Some(WriterError {
                    path: Default::default(),
                    what: "the publisher thread panicked".into(),
                    source: io::Error::other("panic"),
                }),
            });
            // Inline publication only happens when the thread is gone, so it comes after.
            let mut all = threaded.published;
            all.append(&mut outcome.published);
            outcome.published = all;
            outcome.error = threaded.error.or(outcome.error);
        }
        outcome
    }
}

fn publish_one(
    job: Finished,
    config: &PublishConfig,
    counters: &Counters,
    outcome: &mut PublishOutcome,
) {
    let Finished {
        mut pending,
        room,
        mut manifest,
    } = job;
    if outcome.error.is_some() {
        // Complete, but nothing is published after a failure: left for the next start to
        // salvage, never removed.
        keep(pending);
        return;
    }
    if config.fsync {
        if let Err(source) = pending.file.sync_all() {
            outcome.error = Some(WriterError {
                path: pending.dest_path().to_owned(),
                what: "cannot fsync the trace file".into(),
                source,
            });
            return keep(pending);
        }
    }
    let (size, packets, partial) = (
        manifest.file_size,
        manifest.packets,
        manifest.partial.clone(),
    );
    let how = Publication {
        fsync: config.fsync,
        perms: config.perms,
        seqs: Some(&config.seqs),
    };
    match how.publish(&mut pending, &mut manifest, Some(room)) {
        Ok(path) => {
            tracing::debug!("published {} ({packets} packets)", path.display());
            counters.files.fetch_add(1, Relaxed);
            counters.file_bytes.fetch_add(size, Relaxed);
            outcome.published.push(Published {
                path,
                packets,
                size,
                partial,
            });
        }
        Err(e) => {
            outcome.error = Some(e);
            keep(pending);
        }
    }
}

fn keep(pending: PendingFile) {
    let tmp = pending.keep();
    tracing::warn!("{} is left for the next start to salvage", tmp.display());
}
