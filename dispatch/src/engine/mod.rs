//! The engine: one pass over a stage finds finished, lost and due work from the filesystem,
//! acts on each exactly once (claims and claim takeovers), and submits new jobs within the
//! backend's capacity and the stage's queue limit. `once` is one pass; `run` loops.

mod arrays;
mod evidence;
mod report;
mod settle;
mod submit;
mod sweep;

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::backend::{ArrayLimits, Backend, BackendError};
use crate::claim::{self, Claim, ClaimState};
use crate::crash;
use crate::layout::list_items;
use crate::ledger::{JobRow, Ledger, LedgerError};
use crate::stage::Stage;
use crate::sys;

use report::add;
pub use report::PassReport;

/// An engine pass that could not finish.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The history database failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The backend failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A temporary file of a writer on another host is taken as abandoned after this long.
const FOREIGN_TEMP_AGE: Duration = Duration::from_secs(3600);

/// Dispatcher settings that are not the stage's.
#[derive(Debug, Clone)]
pub struct Options {
    /// Fsync claims, specs and records.
    pub fsync: bool,
    /// Most jobs submitted and not finished; over it the stage stops submitting and reports.
    pub queue_limit: usize,
    /// A job with no start marker after this long, unknown to the backend, is lost.
    pub lost_grace: Duration,
    /// TERM-to-KILL grace of jobs.
    pub grace: Duration,
    /// Least time between two rescans of the input directories while idle.
    pub rescan: Duration,
    /// Time between two heartbeats of a running job (zero: none).
    pub heartbeat: Duration,
    /// How long the spool's filesystem may show an old copy of a file (NFS attribute cache).
    pub attr_cache: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fsync: false,
            queue_limit: 1000,
            lost_grace: Duration::from_secs(30),
            grace: Duration::from_secs(10),
            rescan: Duration::from_secs(1),
            heartbeat: Duration::from_secs(30),
            attr_cache: Duration::ZERO,
        }
    }
}

/// Runs one stage over one backend.
pub struct Dispatcher<S: Stage> {
    stage: S,
    backend: Box<dyn Backend>,
    ledger: Ledger,
    opts: Options,
    queue: VecDeque<String>,
    last_scan: Option<Instant>,
    backend_ids: HashMap<String, String>,
    release: Vec<Release>,
    warned_limit: bool,
    arrays: arrays::Arrays,
    array_limits: Option<ArrayLimits>,
    watch: crate::heartbeat::Watch,
    view: BeatView,
}

/// How a dispatcher reads heartbeat files.
pub type BeatView = std::sync::Arc<dyn Fn(&Path) -> Option<crate::heartbeat::Beat> + Send + Sync>;

/// A claim to release once the pass has committed, with the attempt whose files go after it.
struct Release {
    claim: PathBuf,
    attempt: Option<(String, String)>,
}

impl Release {
    fn claim(path: &Path) -> Release {
        Release {
            claim: path.to_owned(),
            attempt: None,
        }
    }
}

impl<S: Stage> std::fmt::Debug for Dispatcher<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("stage", &self.stage.name())
            .finish_non_exhaustive()
    }
}

impl<S: Stage> Dispatcher<S> {
    /// An engine for `stage`, creating its state directories.
    pub fn new(
        stage: S,
        backend: Box<dyn Backend>,
        ledger: Ledger,
        opts: Options,
    ) -> io::Result<Self> {
        stage.dirs().create()?;
        Ok(Dispatcher {
            stage,
            backend,
            ledger,
            opts,
            queue: VecDeque::new(),
            last_scan: None,
            backend_ids: HashMap::new(),
            release: Vec::new(),
            warned_limit: false,
            arrays: arrays::Arrays::default(),
            array_limits: None,
            watch: crate::heartbeat::Watch::default(),
            view: std::sync::Arc::new(crate::heartbeat::read),
        })
    }

    /// Reads heartbeats through `view` instead of the filesystem directly: tests give a
    /// dispatcher the delayed view an NFS client's attribute cache would.
    pub fn set_beat_view(&mut self, view: BeatView) {
        self.view = view;
    }

    /// The stage.
    pub fn stage(&self) -> &S {
        &self.stage
    }

    /// The history.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// One pass after a sweep of the leftovers of writers that are gone, as `run` starts.
    pub fn once(&mut self) -> Result<PassReport, PassError> {
        self.sweep(FOREIGN_TEMP_AGE)?;
        self.pass()
    }

    /// Loops passes until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool, idle: Duration) -> Result<(), PassError> {
        self.run_with(stop, idle, &mut |_| {})
    }

    /// Loops passes until `stop` is set, calling `on_pass` with each pass's report.
    pub fn run_with(
        &mut self,
        stop: &AtomicBool,
        idle: Duration,
        on_pass: &mut dyn FnMut(&PassReport),
    ) -> Result<(), PassError> {
        self.sweep(FOREIGN_TEMP_AGE)?;
        while !stop.load(Ordering::Relaxed) {
            let report = match self.pass() {
                Ok(report) => {
                    on_pass(&report);
                    report
                }
                Err(e) => {
                    // A daemon outlives passing trouble (a busy database, a slow NFS server);
                    // what the failed pass did not commit is found again on the next one.
                    tracing::error!(stage = self.stage.name(), "pass failed: {e}");
                    self.release.clear();
                    self.ledger.rollback();
                    PassReport {
                        running: 1,
                        ..PassReport::default()
                    }
                }
            };
            let timeout = if report.active() > 0 {
                Duration::from_millis(250)
            } else {
                idle
            };
            self.backend.wait(timeout);
        }
        Ok(())
    }

    /// Loops passes until nothing is left to do or `limit` passes; returns the summed report.
    pub fn drain(&mut self, limit: usize) -> Result<PassReport, PassError> {
        let mut total = PassReport::default();
        for _ in 0..limit {
            let r = self.pass()?;
            add(&mut total, &r);
            if r.quiescent() || (r.held && r.active() == 0) {
                break;
            }
            if r.active() > 0 && r.submitted == 0 && r.succeeded + r.failed_attempts == 0 {
                self.backend.wait(Duration::from_millis(250));
            } else if r.active() == 0 && r.waiting > 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(total)
    }

    /// One pass: settle every claim, then submit new work.
    pub fn pass(&mut self) -> Result<PassReport, PassError> {
        let t0 = Instant::now();
        let cpu0 = sys::thread_cpu();
        let now = sys::now();
        let held = self.stage.dirs().paused.exists() || !self.stage.may_start(now as i64);
        let mut report = PassReport {
            held,
            ..PassReport::default()
        };
        let claims = self.read_claims()?;
        let states = self.poll_jobs(&claims)?;
        self.ledger.begin()?;
        let mut waiting = Vec::new();
        let mut claimed = HashSet::with_capacity(claims.len());
        for (item, path, c) in claims {
            claimed.insert(item.clone());
            let settled = match c.state {
                ClaimState::Active => self.settle(&item, &path, c, &states, &mut report),
                ClaimState::Done => self.refinish(&item, &path, &c, &mut report),
                ClaimState::Stuck => self.unstick(&item, &path, &c, &mut report),
                ClaimState::Waiting => {
                    waiting.push((item.clone(), path, c));
                    Ok(())
                }
                ClaimState::Failed => self.settle_failed(&item, &path, &c, &mut report),
            };
            isolate(self.stage.name(), &item, settled, &mut report)?;
        }
        let mut free = self.free_slots(&report);
        for (item, path, c) in waiting {
            if report.held || c.not_before > now || free == 0 {
                report.waiting += 1;
                continue;
            }
            match self.next_attempt(&item, &path, &c, &mut report) {
                Ok(true) => free -= 1,
                Ok(false) => {}
                Err(e) => isolate(self.stage.name(), &item, Err(e), &mut report)?,
            }
        }
        if !report.held {
            self.submit_new(&claimed, free, &mut report)?;
        }
        self.flush_arrays(&mut report)?;
        self.ledger.commit()?;
        crash::point("committed");
        for r in std::mem::take(&mut self.release) {
            claim::release(&r.claim)?;
            crash::point("released");
            if let Some((item, job)) = r.attempt {
                let forgot = self.forget_attempt(&item, &job).map_err(PassError::from);
                isolate(self.stage.name(), &item, forgot, &mut report)?;
            }
        }
        report.busy = t0.elapsed();
        report.cpu = sys::thread_cpu().saturating_sub(cpu0);
        Ok(report)
    }

    fn read_claims(&self) -> io::Result<Vec<(String, PathBuf, Claim)>> {
        let dir = &self.stage.dirs().claims;
        let mut out = Vec::new();
        for item in list_items(dir)? {
            let path = dir.join(&item);
            // A claim that vanished between listing and reading was released: skip it.
            if let Some(c) = claim::read(&path)? {
                out.push((item, path, c));
            }
        }
        Ok(out)
    }

    fn free_slots(&self, report: &PassReport) -> usize {
        if !self.backend.may_submit() {
            return 0;
        }
        let active = report.active();
        let by_queue = self.opts.queue_limit.saturating_sub(active);
        match self.backend.capacity() {
            Some(cap) => cap.saturating_sub(active).min(by_queue),
            None => by_queue,
        }
    }
}

/// Keeps one item's trouble to itself: a file operation that failed for it is logged and
/// counted, and the pass goes on; only trouble with the history (shared by all) ends the pass.
fn isolate(
    stage: &str,
    item: &str,
    result: Result<(), PassError>,
    report: &mut PassReport,
) -> Result<(), PassError> {
    match result {
        Err(PassError::Ledger(e)) => Err(PassError::Ledger(e)),
        Err(e) => {
            tracing::warn!(stage, item, "{e}");
            report.errors += 1;
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

fn row_of(c: &Claim, state: &str) -> JobRow {
    JobRow::new(
        &c.job.job_id,
        &c.job.stage,
        &c.job.item,
        c.job.attempt,
        state,
    )
}
