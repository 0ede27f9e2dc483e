//! What one pass saw and did, and the sum over passes.

use std::time::Duration;

use serde::Serialize;

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
    /// Arrays submitted (each one batch-system call holding many jobs).
    pub arrays: usize,
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

impl PassReport {
    /// Whether the pass changed anything (submitted, settled, gave up, failed on an item).
    pub fn did_something(&self) -> bool {
        self.submitted
            + self.succeeded
            + self.failed_attempts
            + self.lost
            + self.gave_up
            + self.errors
            + self.dropped
            > 0
    }

    /// One line for the log: what the pass did, then what is in flight and waiting.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "submitted {}, succeeded {}, failed {}, lost {}, gave up {}; running {}, queued {}, \
             waiting for retry {}, backlog {}",
            self.submitted,
            self.succeeded,
            self.failed_attempts,
            self.lost,
            self.gave_up,
            self.running,
            self.pending,
            self.waiting,
            self.backlog
        );
        if self.errors > 0 {
            out += &format!(", {} items with errors (retried next pass)", self.errors);
        }
        if self.over_limit {
            out += ", queue over its limit";
        }
        if self.held {
            out += ", held (paused or outside its time windows)";
        }
        out
    }
}

/// Adds one pass's report to a running total (counts add up; states are the last pass's).
pub(super) fn add(total: &mut PassReport, r: &PassReport) {
    total.succeeded += r.succeeded;
    total.failed_attempts += r.failed_attempts;
    total.lost += r.lost;
    total.gave_up += r.gave_up;
    total.submitted += r.submitted;
    total.arrays += r.arrays;
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
