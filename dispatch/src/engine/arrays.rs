//! Array submission: the attempts readied in a pass go out as arrays at its end, one per
//! `max_tasks` attempts; each array's intent (its batch file) is written durably before the
//! batch system is called. Polling reads the batch files, asks the batch system about every
//! array a stage has out in one call, and adopts an array whose id was never recorded.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{Dispatcher, PassError, PassReport};
use crate::backend::{ArrayQueue, JobState};
use crate::batch::{self, Batch, Task};
use crate::claim::Claim;
use crate::crash;
use crate::ledger::JobRow;
use crate::stage::Stage;
use crate::sys;

/// An attempt readied in this pass, to go out in the pass's arrays.
pub(super) struct Outgoing {
    pub(super) item: String,
    pub(super) spec: PathBuf,
    pub(super) row: JobRow,
    pub(super) time_minutes: Option<u64>,
}

/// What the engine remembers of arrays between passes (only what its own clock measured).
#[derive(Default)]
pub(super) struct Arrays {
    /// Attempts readied in this pass.
    pub(super) outgoing: Vec<Outgoing>,
    /// When this process first saw each batch unresolved (no id, unknown to the queue).
    unresolved_since: HashMap<String, Instant>,
    /// When this process first saw each batch with no active claim left.
    idle_since: HashMap<String, Instant>,
}

/// The backend id of a task whose array's id is not known yet: only ever `Pending`.
fn intent_id(name: &str, index: usize) -> String {
    format!("intent:{name}:{index}")
}

impl<S: Stage> Dispatcher<S> {
    /// Sends the attempts readied in this pass as arrays, intent first.
    pub(super) fn flush_arrays(&mut self, report: &mut PassReport) -> Result<(), PassError> {
        let outgoing = std::mem::take(&mut self.arrays.outgoing);
        let max = self.array_limits.map_or(1, |l| l.max_tasks).max(1);
        for chunk in outgoing.chunks(max) {
            self.submit_chunk(chunk, report)?;
        }
        Ok(())
    }

    fn submit_chunk(
        &mut self,
        chunk: &[Outgoing],
        report: &mut PassReport,
    ) -> Result<(), PassError> {
        let tasks = chunk
            .iter()
            .map(|o| Task {
                job_id: o.row.job_id.clone(),
                spec: o.spec.clone(),
            })
            .collect();
        let mut b = Batch::new(self.stage.name(), tasks);
        let dir = self.stage.dirs().batches.clone();
        // No intent on disk, no submission: the claims stay active with nothing behind them,
        // and once the grace has passed they are queued again as never submitted.
        let path = match b.write(&dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(stage = self.stage.name(), "writing a batch file: {e}");
                report.errors += chunk.len();
                return Ok(());
            }
        };
        crash::point("intended");
        let minutes = chunk.iter().filter_map(|o| o.time_minutes).max();
        let name = b.array_name.clone();
        let id = match self
            .backend
            .submit_array(&name, &path, chunk.len(), minutes)
        {
            Ok(id) => id,
            Err(e) => {
                // The answer may be lost while the array was taken: the batch file decides
                // on a later pass (found by name and adopted, or queued again after the grace).
                tracing::warn!(stage = self.stage.name(), "{e}");
                report.pending += chunk.len();
                return Ok(());
            }
        };
        crash::point("submitted");
        b.array_id = Some(id.clone());
        if let Err(e) = b.write(&dir) {
            tracing::warn!(
                stage = self.stage.name(),
                array = id,
                "recording the array id: {e}"
            );
        }
        report.arrays += 1;
        for (i, o) in chunk.iter().enumerate() {
            let task = format!("{id}_{i}");
            self.backend_ids.insert(o.row.job_id.clone(), task.clone());
            let row = JobRow {
                backend_id: Some(task),
                ..o.row.clone()
            };
            self.ledger.submitted(&row)?;
            report.submitted += 1;
            report.pending += 1;
            tracing::debug!(stage = self.stage.name(), item = o.item, "in array {name}");
        }
        Ok(())
    }

    /// The backend's view of every active claim's job, in one call per kind of job: arrays by
    /// name (adopting those whose id was not recorded), older single jobs by id.
    pub(super) fn poll_jobs(
        &mut self,
        claims: &[(String, PathBuf, Claim)],
    ) -> Result<HashMap<String, JobState>, PassError> {
        self.array_limits = self.backend.arrays();
        self.backend_ids.retain(|_, id| !id.starts_with("intent:"));
        let active: HashSet<&str> = claims
            .iter()
            .filter(|(_, _, c)| c.is_active())
            .map(|(_, _, c)| c.job_id.as_str())
            .collect();
        let mut states = HashMap::new();
        let mut in_array = HashSet::new();
        if self.array_limits.is_some() {
            in_array = self.poll_batches(&active, &mut states)?;
        }
        let mut ids = Vec::new();
        for job in active.iter().filter(|j| !in_array.contains(**j)) {
            // Jobs submitted by an earlier run of this dispatcher (`once`, a restart) are
            // known by the id their submission left in the history.
            if !self.backend_ids.contains_key(*job) {
                if let Some(id) = self.ledger.get(job)?.and_then(|r| r.backend_id) {
                    self.backend_ids.insert((*job).to_owned(), id);
                }
            }
            ids.extend(self.backend_ids.get(*job).cloned());
        }
        if !ids.is_empty() {
            states.extend(self.backend.poll(&ids)?);
        }
        Ok(states)
    }

    /// Reads the batch files, asks for their arrays, and notes each active job's task id.
    /// Returns the jobs found in a batch.
    fn poll_batches(
        &mut self,
        active: &HashSet<&str>,
        states: &mut HashMap<String, JobState>,
    ) -> Result<HashSet<String>, PassError> {
        let dir = self.stage.dirs().batches.clone();
        let mut batches = batch::read_all(&dir)?;
        // A job in two batches (queued again after an unresolved intent) is the later one's.
        batches.sort_by(|a, b| a.1.created.total_cmp(&b.1.created));
        let mut owner: HashMap<&str, usize> = HashMap::new();
        for (n, (_, b)) in batches.iter().enumerate() {
            for t in b
                .tasks
                .iter()
                .filter(|t| active.contains(t.job_id.as_str()))
            {
                owner.insert(t.job_id.as_str(), n);
            }
        }
        let live: HashSet<usize> = owner.values().copied().collect();
        let names: Vec<String> = live
            .iter()
            .map(|&n| batches[n].1.array_name.clone())
            .collect();
        let queue = self.backend.poll_arrays(&names)?;
        let mut found = HashSet::new();
        for (n, (path, b)) in batches.iter().enumerate() {
            if !live.contains(&n) {
                self.collect_idle(path, b);
                continue;
            }
            self.arrays.idle_since.remove(&b.array_name);
            let id = self.array_id(b, &queue);
            let mine = |t: &&Task| owner.get(t.job_id.as_str()) == Some(&n);
            for (i, t) in b.tasks.iter().enumerate().filter(|(_, t)| mine(t)) {
                found.insert(t.job_id.clone());
                let task = match &id {
                    Some(Resolved::Id(id)) => format!("{id}_{i}"),
                    Some(Resolved::Young) => {
                        let task = intent_id(&b.array_name, i);
                        states.insert(task.clone(), JobState::Pending);
                        task
                    }
                    None => continue,
                };
                self.backend_ids.insert(t.job_id.clone(), task);
            }
        }
        states.extend(queue.tasks);
        Ok(found)
    }

    /// The array id of a batch: recorded, or found by name in the queue (then recorded:
    /// adopted); `Young` while an unresolved intent is within the grace; `None` after it (the
    /// submission never happened: its jobs are judged by their claims and markers).
    fn array_id(&mut self, b: &Batch, queue: &ArrayQueue) -> Option<Resolved> {
        if let Some(id) = &b.array_id {
            return Some(Resolved::Id(id.clone()));
        }
        if let Some(id) = queue.ids.get(&b.array_name) {
            let adopted = Batch {
                array_id: Some(id.clone()),
                ..b.clone()
            };
            match adopted.write(&self.stage.dirs().batches) {
                Ok(_) => tracing::info!(
                    stage = self.stage.name(),
                    array = id,
                    "adopted array {} (its id was not recorded)",
                    b.array_name
                ),
                Err(e) => tracing::warn!(stage = self.stage.name(), "adopting array {id}: {e}"),
            }
            self.arrays.unresolved_since.remove(&b.array_name);
            return Some(Resolved::Id(id.clone()));
        }
        let since = *self
            .arrays
            .unresolved_since
            .entry(b.array_name.clone())
            .or_insert_with(Instant::now);
        // The writer's own clock, when it is this host; else the time this process has seen it.
        let age = match b.host == sys::host_id() {
            true => (sys::now() - b.created).max(since.elapsed().as_secs_f64()),
            false => since.elapsed().as_secs_f64(),
        };
        (age < self.opts.lost_grace.as_secs_f64()).then_some(Resolved::Young)
    }

    /// Removes a batch file no active claim has named for the grace period (as seen here).
    fn collect_idle(&mut self, path: &Path, b: &Batch) {
        let since = *self
            .arrays
            .idle_since
            .entry(b.array_name.clone())
            .or_insert_with(Instant::now);
        let own_age = sys::now() - b.created;
        let grace = self.opts.lost_grace.as_secs_f64();
        let idle = since.elapsed().as_secs_f64();
        let aged = (b.host == sys::host_id() && own_age >= grace) || idle >= grace;
        if !aged {
            return;
        }
        for p in [path.to_owned(), path.with_extension("err")] {
            if let Err(e) = crate::fsutil::remove_if_exists(&p) {
                tracing::warn!(stage = self.stage.name(), "removing a settled batch: {e}");
            }
        }
        self.arrays.idle_since.remove(&b.array_name);
        self.arrays.unresolved_since.remove(&b.array_name);
    }
}

enum Resolved {
    Id(String),
    Young,
}
