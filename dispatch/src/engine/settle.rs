//! Settling claims: what became of each active job (finished, running, lost), and what
//! follows from it: completion, a retry, giving up, or marking the item stuck.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use super::evidence::{on_this_host, wrapper_done, younger_than};
use super::{row_of, Dispatcher, PassError, PassReport, Release};
use crate::backend::JobState;
use crate::claim::{self, Claim, ClaimState};
use crate::config::Action;
use crate::crash;
use crate::heartbeat::Pulse;
use crate::ledger::JobRow;
use crate::record::{read_json, JobIdentity, JobOutcome, JobRecord, StartMarker};
use crate::stage::Stage;
use crate::sys;

/// What became of the job of an active claim.
pub(super) enum Job {
    Finished(JobRecord),
    Running,
    Pending,
    Lost(String),
}

impl<S: Stage> Dispatcher<S> {
    /// What became of the job of an active claim.
    pub(super) fn job_state(
        &mut self,
        c: &Claim,
        states: &HashMap<String, JobState>,
    ) -> io::Result<Job> {
        let dirs = self.stage.dirs();
        let record_path = dirs.record(&c.job.job_id);
        if let Some(rec) = read_json(&record_path)? {
            return Ok(Job::Finished(rec));
        }
        let backend_says = self
            .backend_ids
            .get(&c.job.job_id)
            .and_then(|id| states.get(id))
            .copied()
            .unwrap_or(JobState::Unknown);
        let marker_path = dirs.marker(&c.job.job_id);
        let marker: Option<StartMarker> = match read_json(&marker_path) {
            Ok(m) => m,
            // Created (exclusively) but not written yet: the job is starting. One left so by a
            // wrapper that died at once is a dead job when older than the grace.
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                if younger_than(&marker_path, self.opts.lost_grace) {
                    return Ok(Job::Running);
                }
                Some(StartMarker {
                    job_id: c.job.job_id.clone(),
                    host: sys::hostname().to_owned(),
                    host_id: Some(sys::host_id().to_owned()),
                    pid: 0,
                    pid_start: 0,
                    start: 0.0,
                })
            }
            Err(e) => return Err(e),
        };
        let alive = match &marker {
            // On this host the wrapper's pid is exact evidence.
            Some(m) if on_this_host(m) => {
                (backend_says == JobState::Running && self.backend.exact())
                    || sys::alive(m.pid, m.pid_start)
            }
            // On another host: its heartbeats, and the batch system's word.
            Some(_) => {
                let beat = (self.view)(&dirs.beat(&c.job.job_id));
                let grace = self.beat_grace();
                match self.watch.judge(&c.job.job_id, beat.as_ref(), grace) {
                    Pulse::Alive => true,
                    Pulse::Stale | Pulse::None => backend_says != JobState::Unknown,
                }
            }
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

    pub(super) fn settle(
        &mut self,
        item: &str,
        path: &Path,
        c: Claim,
        states: &HashMap<String, JobState>,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        match self.job_state(&c, states)? {
            Job::Running => report.running += 1,
            Job::Pending => report.pending += 1,
            Job::Finished(rec) => self.settle_record(item, path, c, rec, report)?,
            Job::Lost(reason) => {
                tracing::debug!(
                    stage = self.stage.name(),
                    item,
                    job = c.job.job_id,
                    reason,
                    "lost"
                );
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
    pub(super) fn never_submitted(&self, c: &Claim) -> Result<bool, PassError> {
        let dirs = self.stage.dirs();
        Ok(!self.backend_ids.contains_key(&c.job.job_id)
            && !crate::fsutil::exists(&dirs.marker(&c.job.job_id))
            && self.ledger.get(&c.job.job_id)?.is_none())
    }

    /// Queues the item again without counting an attempt: its job never ran (the dispatcher
    /// that claimed it stopped before submitting), which is no failure of the file.
    pub(super) fn requeue(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let reason = "the dispatcher stopped before submitting it".to_owned();
        let next = Claim {
            state: ClaimState::Waiting,
            // The next attempt gets this one's number again.
            job: JobIdentity {
                attempt: c.job.attempt.saturating_sub(1),
                ..c.job.clone()
            },
            not_before: 0.0,
            reason: Some(reason.clone()),
            ..c.clone()
        };
        // A wrapper the stopped dispatcher spawned may still start: the fence stops it.
        let dirs = self.stage.dirs();
        let (marker, record) = (dirs.marker(&c.job.job_id), dirs.record(&c.job.job_id));
        let grace = self.opts.lost_grace;
        let never_ran = || Ok(wrapper_done(&marker, grace)? && !crate::fsutil::exists(&record));
        if claim::takeover_checked(path, c, &next, self.opts.fsync, never_ran)? {
            tracing::info!(stage = self.stage.name(), item, "{reason}: queued again");
            report.waiting += 1;
        }
        Ok(())
    }

    pub(super) fn settle_record(
        &mut self,
        item: &str,
        path: &Path,
        c: Claim,
        rec: JobRecord,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let reason = match &rec.outcome {
            JobOutcome::Success => match self.stage.check(item, &c, &rec) {
                Ok(()) => return self.succeed(item, path, c, &rec, report),
                Err(reason) => reason,
            },
            other => other.to_string(),
        };
        let action = match &rec.outcome {
            JobOutcome::Success => Action::Retry,
            other => self.stage.action(other),
        };
        self.failed_attempt(item, path, &c, Some(&rec), &reason, action, report)
    }

    pub(super) fn succeed(
        &mut self,
        item: &str,
        path: &Path,
        c: Claim,
        rec: &JobRecord,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        // No new claim generation: the results are put in place idempotently (a second
        // dispatcher acting on the same view finds them there), then the claim is released,
        // after the commit, and the attempt's files after the claim. If they cannot all be put
        // in place, the claim says so and later passes try again (nothing is run again).
        if let Err(e) = self.stage.complete(item, &c, rec) {
            return self.stuck(item, path, &c, rec, &e.to_string(), report);
        }
        crash::point("completed");
        tracing::debug!(
            stage = self.stage.name(),
            item,
            job = c.job.job_id,
            "succeeded"
        );
        report.succeeded += 1;
        self.ledger.finished(rec, "succeeded", None)?;
        self.release.push(Release {
            claim: path.to_owned(),
            attempt: Some((item.to_owned(), c.job.job_id)),
        });
        Ok(())
    }

    /// Marks an item whose results could not all be put in place (once per reason).
    pub(super) fn stuck(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        rec: &JobRecord,
        why: &str,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
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
    pub(super) fn unstick(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let Some(rec) = read_json::<JobRecord>(&self.stage.dirs().record(&c.job.job_id))? else {
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
            attempt: Some((item.to_owned(), c.job.job_id.clone())),
        });
        Ok(())
    }

    /// Finishes an item whose dispatcher stopped between marking it done and releasing it.
    pub(super) fn refinish(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        match read_json::<JobRecord>(&self.stage.dirs().record(&c.job.job_id))? {
            Some(rec) if rec.outcome == JobOutcome::Success => {
                self.ledger.finished(&rec, "succeeded", None)?
            }
            Some(rec) => self.ledger.finished(&rec, "ignored", c.reason.as_deref())?,
            None => {}
        }
        if c.reason.is_some() {
            self.stage.ignore(item)?;
            self.forget_attempt(item, &c.job.job_id)?;
            self.release.push(Release::claim(path));
            return Ok(());
        }
        self.unstick(item, path, c, report)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn failed_attempt(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        rec: Option<&JobRecord>,
        reason: &str,
        action: Action,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let policy = self.stage.policy();
        let retry = action == Action::Retry && c.job.attempt <= policy.retries;
        let next = match (action, retry) {
            (Action::Ignore, _) => Claim {
                state: ClaimState::Done,
                ..c.clone()
            },
            (_, true) => {
                let backoff =
                    policy.backoff.as_secs_f64() * f64::from(1u32 << (c.job.attempt - 1).min(16));
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
        // A job judged lost is judged again under the takeover marker: no heartbeat since the
        // one the verdict rests on, no wrapper of it alive on this host or able to start (one
        // judged never started gets a fence for a start marker), and no record meanwhile.
        let dirs = self.stage.dirs();
        let (record, beat) = (dirs.record(&c.job.job_id), dirs.beat(&c.job.job_id));
        let marker = dirs.marker(&c.job.job_id);
        let judged = self.watch.judged_on(&c.job.job_id);
        let view = std::sync::Arc::clone(&self.view);
        let grace = self.opts.lost_grace;
        let still_lost = || {
            if rec.is_some() {
                return Ok(true);
            }
            let same_beat = judged.is_none_or(|seq| view(&beat).map(|b| b.seq) == seq);
            // The record is looked for after the wrapper: one that wrote it and ended between
            // the two looks is not taken for lost.
            Ok(same_beat && wrapper_done(&marker, grace)? && !crate::fsutil::exists(&record))
        };
        if !claim::takeover_checked(path, c, &next, self.opts.fsync, still_lost)? {
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
                self.forget_attempt(item, &c.job.job_id)?;
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

    /// How long a heartbeat from another host may stand still (the beat interval is added):
    /// the time a network filesystem may show an old copy of its file, and the lost grace.
    fn beat_grace(&self) -> Duration {
        self.opts.attr_cache + self.opts.lost_grace
    }

    pub(super) fn settle_failed(
        &mut self,
        item: &str,
        path: &Path,
        c: &Claim,
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let reason = c.reason.as_deref().unwrap_or("failed");
        if self.stage.give_up(item, reason)? {
            report.failed_items += 1;
            self.listed_failed(c, reason)?;
        } else {
            self.forget_attempt(item, &c.job.job_id)?;
            self.release.push(Release::claim(path));
        }
        Ok(())
    }
}

impl<S: Stage> Dispatcher<S> {
    /// Makes the history say the kept failed claim's attempt failed: a dispatcher killed
    /// between giving the item up and committing left the claim failed and the history without
    /// the row, and `lander jobs` (where an operator finds what to retry) reads the history.
    fn listed_failed(&mut self, c: &Claim, reason: &str) -> Result<(), PassError> {
        let listed = self.ledger.get(&c.job.job_id)?;
        if listed.is_some_and(|r| r.state == "failed") {
            return Ok(());
        }
        let row = JobRow {
            reason: Some(reason.to_owned()),
            ..row_of(c, "failed")
        };
        Ok(self.ledger.set_state(&row)?)
    }
}
