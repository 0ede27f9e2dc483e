//! Submission: claiming new items and retries within the free slots, readying each attempt
//! (spec, scratch) and handing it to the backend.

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::time::Instant;

use super::{isolate, row_of, Dispatcher, PassError, PassReport, Release};
use crate::claim::{self, Claim};
use crate::config::Action;
use crate::crash;
use crate::fsutil::{remove_if_exists, write_json_atomic};
use crate::record::JobSpec;
use crate::stage::{job_id, Accept, JobCommand, Stage};
use crate::sys;

impl<S: Stage> Dispatcher<S> {
    /// Takes over a waiting claim for the next attempt and submits it.
    pub(super) fn next_attempt(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<bool, PassError> {
        let (next, spec) = self.new_claim(item, path, c.attempt + 1)?;
        if !claim::takeover(path, c, &next, self.opts.fsync)? {
            return Ok(false);
        }
        self.forget_attempt(item, &c.job_id)?;
        let spec_path = self.stage.dirs().spec(&next.job_id);
        self.start(item, path, &next, &spec, &spec_path, report)
    }

    pub(super) fn submit_new(
        &mut self,
        claimed: &HashSet<String>,
        mut free: usize,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
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
    pub(super) fn submit_one(
        &mut self,
        item: &str,
        report: &mut PassReport,
    ) -> Result<bool, PassError> {
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
    pub(super) fn new_claim(
        &self,
        item: &str,
        path: &Path,
        attempt: u32,
    ) -> io::Result<(Claim, JobSpec)> {
        let job = job_id(self.stage.name(), item, attempt);
        let cmd = self.stage.command(item, &job, attempt)?;
        let mut c = Claim::new(self.stage.name(), item, job, attempt);
        c.identity = cmd.identity.clone();
        let spec = self.spec(item, path, &c, cmd);
        Ok((c, spec))
    }

    /// The next item to try; the input directories are rescanned at most once per pass.
    pub(super) fn next_candidate(
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
    pub(super) fn start(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        spec: &JobSpec,
        spec_path: &Path,
        report: &mut PassReport,
    ) -> Result<bool, PassError> {
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
        if self.array_limits.is_some() {
            // Goes out with the pass's arrays (`flush_arrays`), which record it.
            self.arrays.outgoing.push(super::arrays::Outgoing {
                item: item.to_owned(),
                spec: spec_path.to_owned(),
                row,
                time_minutes: crate::backend::slurm::time_minutes(spec),
            });
            return Ok(true);
        }
        match self.backend.submit(spec, spec_path) {
            Ok(id) => {
                crash::point("submitted");
                row.backend_id = Some(id.clone());
                self.backend_ids.insert(c.job_id.clone(), id);
                self.ledger.submitted(&row)?;
                tracing::debug!(stage = self.stage.name(), item, job = c.job_id, "submitted");
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
    pub(super) fn ready(
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

    pub(super) fn spec(&self, item: &str, path: &Path, c: &Claim, cmd: JobCommand) -> JobSpec {
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
            cancel_request: Some(dirs.cancel_request(&c.job_id)),
            heartbeat: Some(dirs.beat(&c.job_id)),
            heartbeat_secs: self.opts.heartbeat.as_secs_f64(),
            run_as: cmd.run_as,
        }
    }

    /// Removes an attempt's spec, start marker and scratch output (its record stays).
    pub(super) fn forget_attempt(&mut self, item: &str, job: &str) -> io::Result<()> {
        let dirs = self.stage.dirs();
        remove_if_exists(&dirs.spec(job))?;
        remove_if_exists(&dirs.marker(job))?;
        remove_if_exists(&dirs.cancel_request(job))?;
        remove_if_exists(&dirs.beat(job))?;
        self.watch.forget(job);
        self.backend_ids.remove(job);
        self.stage.discard_attempt(item, job)
    }
}
