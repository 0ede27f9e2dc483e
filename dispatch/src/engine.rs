//! The engine: one pass over a stage finds finished, lost and due work from the filesystem,
//! acts on each exactly once (claims and claim takeovers), and submits new jobs within the
//! backend's capacity and the stage's queue limit. `once` is one pass; `run` loops.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backend::{Backend, BackendError, JobState};
use crate::claim::{self, Claim, ClaimState};
use crate::config::Action;
use crate::crash;
use crate::fsutil::{self, remove_if_exists, write_json_atomic};
use crate::ledger::{JobRow, Ledger, LedgerError};
use crate::record::{read_json, JobSpec, Outcome, RunRecord, StartMarker};
use crate::stage::{job_id, Accept, Stage};
use crate::sys;

/// An engine pass that could not finish.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
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

/// Engine settings that are not the stage's.
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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fsync: false,
            queue_limit: 1000,
            lost_grace: Duration::from_secs(30),
            grace: Duration::from_secs(10),
            rescan: Duration::from_secs(1),
        }
    }
}

/// What one pass saw and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PassReport {
    /// Attempts that succeeded and whose results were put in place.
    pub succeeded: usize,
    /// Attempts that failed (and will be retried or were given up).
    pub failed_attempts: usize,
    /// Attempts found lost (killed without a record, or never started).
    pub lost: usize,
    /// Items given up in this pass.
    pub gave_up: usize,
    /// Jobs submitted.
    pub submitted: usize,
    /// Jobs running.
    pub running: usize,
    /// Jobs submitted and not yet started.
    pub pending: usize,
    /// Items waiting for a retry.
    pub waiting: usize,
    /// Items given up earlier (claims marked failed).
    pub failed_items: usize,
    /// Items whose job succeeded but whose results could not all be put in place (tried again
    /// each pass; the reason is in the history).
    pub stuck: usize,
    /// Items whose handling failed in this pass (a file operation): left as they were, the
    /// next pass tries again; the pass went on with the others.
    pub errors: usize,
    /// Items found and not yet claimed.
    pub backlog: usize,
    /// Items let go right after their claim (gone, a copy of a file done, renamed or
    /// quarantined): the next pass rescans.
    pub dropped: usize,
    /// Whether the queue limit stopped submission.
    pub over_limit: bool,
    /// Whether the stage is paused or outside its time windows.
    pub held: bool,
    /// Wall time spent in the pass: the dispatcher's bookkeeping (claims, specs, submission,
    /// records, history, publication, links), never the time waiting for jobs between passes.
    #[serde(skip)]
    pub busy: Duration,
    /// CPU time (user and system) of the dispatcher's thread in the pass.
    #[serde(skip)]
    pub cpu: Duration,
}

impl PassReport {
    /// Jobs in flight.
    pub fn active(&self) -> usize {
        self.running + self.pending
    }

    /// Whether nothing is left to do now or later.
    pub fn quiescent(&self) -> bool {
        self.active() == 0
            && self.waiting == 0
            && self.backlog == 0
            && self.submitted == 0
            && self.dropped == 0
    }
}

enum Job {
    Finished(RunRecord),
    Running,
    Pending,
    Lost(String),
}

/// Runs one stage over one backend.
pub struct Engine<S: Stage> {
    stage: S,
    backend: Box<dyn Backend>,
    ledger: Ledger,
    opts: Options,
    queue: VecDeque<String>,
    last_scan: Option<Instant>,
    backend_ids: HashMap<String, String>,
    release: Vec<Release>,
    warned_limit: bool,
}

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

impl<S: Stage> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("stage", &self.stage.name())
            .finish_non_exhaustive()
    }
}

impl<S: Stage> Engine<S> {
    /// An engine for `stage`, creating its state directories.
    pub fn new(
        stage: S,
        backend: Box<dyn Backend>,
        ledger: Ledger,
        opts: Options,
    ) -> io::Result<Self> {
        stage.dirs().create()?;
        Ok(Engine {
            stage,
            backend,
            ledger,
            opts,
            queue: VecDeque::new(),
            last_scan: None,
            backend_ids: HashMap::new(),
            release: Vec::new(),
            warned_limit: false,
        })
    }

    /// The stage.
    pub fn stage(&self) -> &S {
        &self.stage
    }

    /// The history.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Removes temporary files in the state directories whose writers are gone (dead on this
    /// host, or older than `foreign_age` from another host).
    pub fn sweep(&self, foreign_age: Duration) -> io::Result<usize> {
        let dirs = self.stage.dirs();
        let in_use = self.read_claims()?.into_iter().map(|(_, _, c)| c.job_id);
        let mut removed = self.stage.sweep_scratch(&in_use.collect(), foreign_age)?;
        let mut all = vec![dirs.jobs.clone(), dirs.records.clone(), dirs.claims.clone()];
        all.extend(subdirs(&dirs.claims)?);
        for dir in all {
            for name in fsutil::list_all(&dir)? {
                if name.ends_with(".takeover") && claim::remove_stale_marker(&dir.join(&name))? {
                    removed += 1;
                }
            }
            for left in lander_capture::publish::leftovers(&dir, foreign_age).unwrap_or_default() {
                remove_if_exists(&left.path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// One pass after a sweep of the leftovers of writers that are gone, as `run` starts.
    pub fn once(&mut self) -> Result<PassReport, EngineError> {
        self.sweep(FOREIGN_TEMP_AGE)?;
        self.pass()
    }

    /// Loops passes until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool, idle: Duration) -> Result<(), EngineError> {
        self.sweep(FOREIGN_TEMP_AGE)?;
        while !stop.load(Ordering::Relaxed) {
            let report = match self.pass() {
                Ok(report) => report,
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
    pub fn drain(&mut self, limit: usize) -> Result<PassReport, EngineError> {
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
    pub fn pass(&mut self) -> Result<PassReport, EngineError> {
        let t0 = Instant::now();
        let cpu0 = sys::thread_cpu();
        let now = sys::now();
        let held = self.stage.dirs().paused.exists() || !self.stage.may_start(now as i64);
        let mut report = PassReport {
            held,
            ..PassReport::default()
        };
        let claims = self.read_claims()?;
        let states = self.poll(&claims)?;
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
        self.ledger.commit()?;
        crash::point("committed");
        for r in std::mem::take(&mut self.release) {
            claim::release(&r.claim)?;
            crash::point("released");
            if let Some((item, job)) = r.attempt {
                let forgot = self.forget_attempt(&item, &job).map_err(EngineError::from);
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

    fn poll(
        &mut self,
        claims: &[(String, PathBuf, Claim)],
    ) -> Result<HashMap<String, JobState>, EngineError> {
        let active = claims.iter().filter(|(_, _, c)| c.is_active());
        let mut ids = Vec::new();
        for (_, _, c) in active {
            // Jobs submitted by an earlier run of this dispatcher (`once`, a restart) are
            // known by the id their submission left in the history.
            if !self.backend_ids.contains_key(&c.job_id) {
                if let Some(id) = self.ledger.get(&c.job_id)?.and_then(|r| r.backend_id) {
                    self.backend_ids.insert(c.job_id.clone(), id);
                }
            }
            ids.extend(self.backend_ids.get(&c.job_id).cloned());
        }
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        Ok(self.backend.poll(&ids)?)
    }

    fn free_slots(&self, report: &PassReport) -> usize {
        let active = report.active();
        let by_queue = self.opts.queue_limit.saturating_sub(active);
        match self.backend.capacity() {
            Some(cap) => cap.saturating_sub(active).min(by_queue),
            None => by_queue,
        }
    }

    /// What became of the job of an active claim.
    fn job_state(&self, c: &Claim, states: &HashMap<String, JobState>) -> io::Result<Job> {
        let dirs = self.stage.dirs();
        let record_path = dirs.record(&c.job_id);
        if let Some(rec) = read_json(&record_path)? {
            return Ok(Job::Finished(rec));
        }
        let backend_says = self
            .backend_ids
            .get(&c.job_id)
            .and_then(|id| states.get(id))
            .copied()
            .unwrap_or(JobState::Unknown);
        let marker_path = dirs.marker(&c.job_id);
        let marker: Option<StartMarker> = match read_json(&marker_path) {
            Ok(m) => m,
            // Created (exclusively) but not written yet: the job is starting. One left so by a
            // wrapper that died at once is a dead job when older than the grace.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                if younger_than(&marker_path, self.opts.lost_grace) {
                    return Ok(Job::Running);
                }
                Some(StartMarker {
                    job_id: c.job_id.clone(),
                    host: sys::hostname().to_owned(),
                    pid: 0,
                    pid_start: 0,
                    start: 0.0,
                })
            }
            Err(e) => return Err(e),
        };
        let alive = match &marker {
            Some(m) if m.host == sys::hostname() => {
                backend_says == JobState::Running || sys::alive(m.pid, m.pid_start)
            }
            Some(_) => backend_says != JobState::Unknown,
            None if backend_says != JobState::Unknown => return Ok(Job::Pending),
            None if sys::now() - c.claimed_at < self.opts.lost_grace.as_secs_f64() => {
                return Ok(Job::Pending)
            }
            None => false,
        };
        if alive {
            return Ok(Job::Running);
        }
        // It may have written its record just before it ended: look again.
        if let Some(rec) = read_json(&record_path)? {
            return Ok(Job::Finished(rec));
        }
        Ok(Job::Lost(match marker {
            Some(_) => "lost: the job ended without a run record".into(),
            None => "lost: the job never started".into(),
        }))
    }

    fn settle(
        &mut self,
        item: &str,
        path: &Path,
        c: Claim,
        states: &HashMap<String, JobState>,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        match self.job_state(&c, states)? {
            Job::Running => report.running += 1,
            Job::Pending => report.pending += 1,
            Job::Finished(rec) => self.settle_record(item, path, c, rec, report)?,
            Job::Lost(reason) => {
                report.lost += 1;
                if self.never_submitted(&c)? {
                    return self.requeue(item, path, &c, report);
                }
                self.failed_attempt(item, path, &c, None, &reason, Action::Retry, report)?;
            }
        }
        Ok(())
    }

    /// Whether the claim's job was never handed to the backend: a dispatcher stopped between
    /// claiming and submitting (no history row, no start marker, no backend id).
    fn never_submitted(&self, c: &Claim) -> Result<bool, EngineError> {
        let dirs = self.stage.dirs();
        Ok(!self.backend_ids.contains_key(&c.job_id)
            && !crate::fsutil::exists(&dirs.marker(&c.job_id))
            && self.ledger.get(&c.job_id)?.is_none())
    }

    /// Queues the item again without counting an attempt: its job never ran (the dispatcher
    /// that claimed it stopped before submitting), which is no failure of the file.
    fn requeue(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        let reason = "the dispatcher stopped before submitting it".to_owned();
        let next = Claim {
            state: ClaimState::Waiting,
            // The next attempt gets this one's number again.
            attempt: c.attempt.saturating_sub(1),
            not_before: 0.0,
            reason: Some(reason.clone()),
            ..c.clone()
        };
        if claim::takeover(path, c, &next, self.opts.fsync)? {
            tracing::info!(stage = self.stage.name(), item, "{reason}: queued again");
            report.waiting += 1;
        }
        Ok(())
    }

    fn settle_record(
        &mut self,
        item: &str,
        path: &Path,
        c: Claim,
        rec: RunRecord,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        let reason = match &rec.outcome {
            Outcome::Success => match self.stage.check(item, &c, &rec) {
                Ok(()) => return self.succeed(item, path, c, &rec, report),
                Err(reason) => reason,
            },
            other => other.to_string(),
        };
        let action = match &rec.outcome {
            Outcome::Success => Action::Retry,
            other => self.stage.action(other),
        };
        self.failed_attempt(item, path, &c, Some(&rec), &reason, action, report)
    }

    fn succeed(
        &mut self,
        item: &str,
        path: &Path,
        c: Claim,
        rec: &RunRecord,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        // No new claim generation: the results are put in place idempotently (a second
        // dispatcher acting on the same view finds them there), then the claim is released,
        // after the commit, and the attempt's files after the claim. If they cannot all be put
        // in place, the claim says so and later passes try again (nothing is run again).
        if let Err(e) = self.stage.complete(item, &c, rec) {
            return self.stuck(item, path, &c, rec, &e.to_string(), report);
        }
        crash::point("completed");
        report.succeeded += 1;
        self.ledger.finished(rec, "succeeded", None)?;
        self.release.push(Release {
            claim: path.to_owned(),
            attempt: Some((item.to_owned(), c.job_id)),
        });
        Ok(())
    }

    /// Marks an item whose results could not all be put in place (once per reason).
    fn stuck(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        rec: &RunRecord,
        why: &str,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        report.stuck += 1;
        let reason = format!("completing: {why}");
        if c.state == ClaimState::Stuck && c.reason.as_deref() == Some(reason.as_str()) {
            return Ok(());
        }
        let next = Claim {
            state: ClaimState::Stuck,
            reason: Some(reason.clone()),
            ..c.clone()
        };
        if claim::takeover(path, c, &next, self.opts.fsync)? {
            tracing::warn!(stage = self.stage.name(), item, reason, "stuck");
            self.ledger.finished(rec, "stuck", Some(&reason))?;
        }
        Ok(())
    }

    /// Tries again to put a stuck item's results in place.
    fn unstick(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        let Some(rec) = read_json::<RunRecord>(&self.stage.dirs().record(&c.job_id))? else {
            return Err(io::Error::other(format!(
                "{}: stuck, but its run record is gone",
                path.display()
            ))
            .into());
        };
        if let Err(e) = self.stage.complete(item, c, &rec) {
            return self.stuck(item, path, c, &rec, &e.to_string(), report);
        }
        report.succeeded += 1;
        self.ledger.finished(&rec, "succeeded", None)?;
        self.release.push(Release {
            claim: path.to_owned(),
            attempt: Some((item.to_owned(), c.job_id.clone())),
        });
        Ok(())
    }

    /// Finishes an item whose dispatcher stopped between marking it done and releasing it.
    fn refinish(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        match read_json::<RunRecord>(&self.stage.dirs().record(&c.job_id))? {
            Some(rec) if rec.outcome == Outcome::Success => {
                self.ledger.finished(&rec, "succeeded", None)?
            }
            Some(rec) => self.ledger.finished(&rec, "ignored", c.reason.as_deref())?,
            None => {}
        }
        if c.reason.is_some() {
            self.stage.ignore(item)?;
            self.forget_attempt(item, &c.job_id)?;
            self.release.push(Release::claim(path));
            return Ok(());
        }
        self.unstick(item, path, c, report)
    }

    #[allow(clippy::too_many_arguments)]
    fn failed_attempt(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        rec: Option<&RunRecord>,
        reason: &str,
        action: Action,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        let policy = self.stage.policy();
        let retry = action == Action::Retry && c.attempt <= policy.retries;
        let next = match (action, retry) {
            (Action::Ignore, _) => Claim {
                state: ClaimState::Done,
                ..c.clone()
            },
            (_, true) => {
                let backoff =
                    policy.backoff.as_secs_f64() * f64::from(1u32 << (c.attempt - 1).min(16));
                Claim {
                    state: ClaimState::Waiting,
                    not_before: sys::now() + backoff,
                    ..c.clone()
                }
            }
            (_, false) => Claim {
                state: ClaimState::Failed,
                ..c.clone()
            },
        };
        let next = Claim {
            reason: Some(reason.to_owned()),
            ..next
        };
        if !claim::takeover(path, c, &next, self.opts.fsync)? {
            return Ok(());
        }
        report.failed_attempts += 1;
        let state = match next.state {
            ClaimState::Done => "ignored",
            ClaimState::Waiting => "retry",
            _ => "failed",
        };
        match rec {
            Some(rec) => self.ledger.finished(rec, state, Some(reason))?,
            None => {
                let row = JobRow {
                    reason: Some(reason.to_owned()),
                    ..row_of(c, state)
                };
                self.ledger.set_state(&row)?;
            }
        }
        match next.state {
            ClaimState::Done => {
                self.stage.ignore(item)?;
                self.forget_attempt(item, &c.job_id)?;
                self.release.push(Release::claim(path));
            }
            ClaimState::Failed => {
                tracing::warn!(stage = self.stage.name(), item, reason, "giving up");
                report.gave_up += 1;
                self.settle_failed(item, path, &next, report)?;
            }
            _ => {
                report.waiting += 1;
                tracing::info!(stage = self.stage.name(), item, reason, "will retry");
            }
        }
        Ok(())
    }

    fn settle_failed(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        let reason = c.reason.as_deref().unwrap_or("failed");
        if self.stage.give_up(item, reason)? {
            report.failed_items += 1;
        } else {
            self.forget_attempt(item, &c.job_id)?;
            self.release.push(Release::claim(path));
        }
        Ok(())
    }

    /// Takes over a waiting claim for the next attempt and submits it.
    fn next_attempt(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<bool, EngineError> {
        let (next, spec) = self.new_claim(item, path, c.attempt + 1)?;
        if !claim::takeover(path, c, &next, self.opts.fsync)? {
            return Ok(false);
        }
        self.forget_attempt(item, &c.job_id)?;
        let spec_path = self.stage.dirs().spec(&next.job_id);
        self.start(item, path, &next, &spec, &spec_path, report)
    }

    fn submit_new(
        &mut self,
        claimed: &HashSet<String>,
        mut free: usize,
        report: &mut PassReport,
    ) -> Result<(), EngineError> {
        let mut scanned = false;
        while free > 0 {
            let Some(item) = self.next_candidate(claimed, &mut scanned)? else {
                break;
            };
            match self.submit_one(&item, report) {
                Ok(true) => free -= 1,
                Ok(false) => {}
                Err(e) => isolate(self.stage.name(), &item, Err(e), report)?,
            }
        }
        report.backlog = self.queue.len();
        if report.backlog > 0 && report.active() >= self.opts.queue_limit {
            report.over_limit = true;
            if !self.warned_limit {
                tracing::warn!(
                    stage = self.stage.name(),
                    limit = self.opts.queue_limit,
                    backlog = report.backlog,
                    "queue limit reached: not submitting more jobs"
                );
            }
        }
        self.warned_limit = report.over_limit;
        Ok(())
    }

    /// Claims a new item and submits its first attempt; `false` if another dispatcher has it
    /// or there was nothing to run.
    fn submit_one(&mut self, item: &str, report: &mut PassReport) -> Result<bool, EngineError> {
        let path = self.stage.dirs().claim(item);
        let (c, spec) = self.new_claim(item, &path, 1)?;
        if !claim::try_claim_with_spec(&path, &c, &spec)? {
            return Ok(false);
        }
        crash::point("claimed");
        self.start(item, &path, &c, &spec, &path, report)
    }

    /// A claim for attempt `attempt` on `item`, with a new job id, the identity of the item's
    /// file as the stage finds it now, and the job's spec.
    fn new_claim(&self, item: &str, path: &Path, attempt: u32) -> io::Result<(Claim, JobSpec)> {
        let job = job_id(self.stage.name(), item, attempt);
        let cmd = self.stage.command(item, &job, attempt)?;
        let mut c = Claim::new(self.stage.name(), item, job, attempt);
        c.identity = cmd.identity.clone();
        let spec = self.spec(item, path, &c, cmd);
        Ok((c, spec))
    }

    /// The next item to try; the input directories are rescanned at most once per pass.
    fn next_candidate(
        &mut self,
        claimed: &HashSet<String>,
        scanned: &mut bool,
    ) -> io::Result<Option<String>> {
        let due = self
            .last_scan
            .is_none_or(|t| t.elapsed() >= self.opts.rescan);
        if self.queue.is_empty() && due && !*scanned {
            *scanned = true;
            self.last_scan = Some(Instant::now());
            let mut items = self.stage.scan()?;
            items.retain(|i| !claimed.contains(i));
            items.sort_unstable();
            self.queue.extend(items);
        }
        Ok(self.queue.pop_front())
    }

    /// Readies a claimed item and submits its job; `false` if there was nothing to run.
    /// `spec_path` is the claim itself for a first attempt (it holds the spec), else the spec
    /// file written here.
    fn start(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        spec: &JobSpec,
        spec_path: &Path,
        report: &mut PassReport,
    ) -> Result<bool, EngineError> {
        match self.ready(item, c, spec, spec_path, path) {
            Ok(Accept::Run) => {}
            Ok(Accept::Drop) => {
                self.release.push(Release::claim(path));
                report.dropped += 1;
                self.last_scan = None;
                return Ok(false);
            }
            Err(e) => {
                let reason = e.to_string();
                self.failed_attempt(item, path, c, None, &reason, Action::Retry, report)?;
                return Ok(false);
            }
        }
        crash::point("accepted");
        let mut row = row_of(c, "submitted");
        row.submitted = Some(sys::now());
        row.host = Some(sys::hostname().to_owned());
        match self.backend.submit(spec, spec_path) {
            Ok(id) => {
                crash::point("submitted");
                row.backend_id = Some(id.clone());
                self.backend_ids.insert(c.job_id.clone(), id);
                self.ledger.submitted(&row)?;
                report.submitted += 1;
                report.pending += 1;
                Ok(true)
            }
            Err(e) => {
                let reason = e.to_string();
                self.ledger.submitted(&row)?;
                self.failed_attempt(item, path, c, None, &reason, Action::Retry, report)?;
                Ok(false)
            }
        }
    }

    /// Has the stage accept a claimed item and ready its attempt (scratch, spec file).
    fn ready(
        &self,
        item: &str,
        c: &Claim,
        spec: &JobSpec,
        spec_path: &Path,
        path: &Path,
    ) -> io::Result<Accept> {
        if self.stage.accept(item, c)? == Accept::Drop {
            return Ok(Accept::Drop);
        }
        self.stage.prepare(item, &c.job_id)?;
        if spec_path != path {
            write_json_atomic(spec_path, spec, self.opts.fsync)?;
        }
        Ok(Accept::Run)
    }

    fn spec(&self, item: &str, path: &Path, c: &Claim, cmd: crate::stage::JobCommand) -> JobSpec {
        let dirs = self.stage.dirs();
        let policy = self.stage.policy();
        JobSpec {
            job_id: c.job_id.clone(),
            stage: self.stage.name().to_owned(),
            item: item.to_owned(),
            attempt: c.attempt,
            argv: cmd.argv,
            env: cmd.env,
            stdout: dirs.stdout(&c.job_id),
            stderr: dirs.stderr(&c.job_id),
            start_marker: dirs.marker(&c.job_id),
            record: dirs.record(&c.job_id),
            claim: path.to_owned(),
            timeout_secs: policy.timeout.as_secs_f64(),
            grace_secs: self.opts.grace.as_secs_f64(),
            counts_from: cmd.counts_from,
            fsync: self.opts.fsync,
            digest: c.identity.as_ref().map(|i| i.digest.clone()),
        }
    }

    /// Removes an attempt's spec, start marker and scratch output (its record stays).
    fn forget_attempt(&mut self, item: &str, job: &str) -> io::Result<()> {
        let dirs = self.stage.dirs();
        remove_if_exists(&dirs.spec(job))?;
        remove_if_exists(&dirs.marker(job))?;
        self.backend_ids.remove(job);
        self.stage.discard_attempt(item, job)
    }
}

fn add(total: &mut PassReport, r: &PassReport) {
    total.succeeded += r.succeeded;
    total.failed_attempts += r.failed_attempts;
    total.lost += r.lost;
    total.gave_up += r.gave_up;
    total.submitted += r.submitted;
    total.running = r.running;
    total.pending = r.pending;
    total.waiting = r.waiting;
    total.failed_items = r.failed_items;
    total.stuck = r.stuck;
    total.errors += r.errors;
    total.backlog = r.backlog;
    total.dropped += r.dropped;
    total.over_limit |= r.over_limit;
    total.held = r.held;
    total.busy += r.busy;
    total.cpu += r.cpu;
}

/// Keeps one item's trouble to itself: a file operation that failed for it is logged and
/// counted, and the pass goes on; only trouble with the history (shared by all) ends the pass.
fn isolate(
    stage: &str,
    item: &str,
    result: Result<(), EngineError>,
    report: &mut PassReport,
) -> Result<(), EngineError> {
    match result {
        Err(EngineError::Ledger(e)) => Err(EngineError::Ledger(e)),
        Err(e) => {
            tracing::warn!(stage, item, "{e}");
            report.errors += 1;
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Whether the file at `path` was changed less than `age` ago (a missing file is not).
fn younger_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|a| a < age)
}

fn row_of(c: &Claim, state: &str) -> JobRow {
    JobRow::new(&c.job_id, &c.stage, &c.item, c.attempt, state)
}

fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Items with a claim under `dir`: plain files, and files one subdirectory down as `sub/name`.
pub fn list_items(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fsutil::with_path(e, dir)),
    };
    let mut items = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if fsutil::is_temp_name(&name) {
            continue;
        }
        if !entry.file_type()?.is_dir() {
            items.push(name);
            continue;
        }
        for sub in fsutil::list_names(&entry.path())? {
            items.push(format!("{name}/{sub}"));
        }
    }
    Ok(items)
}
