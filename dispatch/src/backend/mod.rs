//! Batch backends: where jobs run. The filesystem is the truth about a job (its start marker
//! and run record); a backend's view is a hint used only to tell a queued job from a lost one.
//!
//! A backend submits one job, polls all of its jobs in one call (never one call per job, which
//! overloads batch controllers), and cancels. The local backend runs jobs as child process
//! groups on this host; a Slurm backend fits the same trait (`sbatch --parsable`,
//! `squeue -h -t all -o '%A|%T'` once per poll, `scancel`).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::record::JobSpec;

pub mod local;
pub mod slurm;

pub use local::LocalBackend;
pub use slurm::SlurmBackend;

/// A backend's view of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting in the backend's queue.
    Pending,
    /// Running.
    Running,
    /// The backend does not know it (finished and forgotten, never submitted, or lost).
    Unknown,
}

/// A backend that failed to do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Starting the job failed.
    #[error("submitting job {job}: {source}")]
    Submit {
        /// The job.
        job: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Cancelling the job failed.
    #[error("cancelling {id}: {source}")]
    Cancel {
        /// The backend's id.
        id: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Asking for job states failed.
    #[error("polling jobs: {0}")]
    Poll(String),
    /// Submitting an array failed (or its answer was lost: the batch file tells).
    #[error("submitting array {name}: {source}")]
    SubmitArray {
        /// The array's name.
        name: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// How a backend that takes arrays wants them cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArrayLimits {
    /// Most tasks in one array.
    pub max_tasks: usize,
}

/// The queue's view of arrays asked for by name, in one call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArrayQueue {
    /// The array id of each name the queue knows.
    pub ids: HashMap<String, String>,
    /// The state of each task the queue knows, by `<array id>_<index>`.
    pub tasks: HashMap<String, JobState>,
}

/// A batch system.
pub trait Backend: Send {
    /// Short name (`local`, `slurm`).
    fn name(&self) -> &'static str;

    /// How many jobs may run at once; `None` when the batch system queues without limit.
    fn capacity(&self) -> Option<usize>;

    /// Submits the job whose spec is at `spec_path`; returns the backend's id for it.
    fn submit(&mut self, spec: &JobSpec, spec_path: &Path) -> Result<String, BackendError>;

    /// The state of each of `ids`, in one call.
    fn poll(&mut self, ids: &[String]) -> Result<HashMap<String, JobState>, BackendError>;

    /// `Some` when the backend takes jobs as arrays ([`Backend::submit_array`]).
    fn arrays(&mut self) -> Option<ArrayLimits> {
        None
    }

    /// Submits an array of `tasks` tasks named `name`; task `i` runs the wrapper with `list`
    /// (a batch file) and its index in the environment. `time_minutes` bounds every task.
    fn submit_array(
        &mut self,
        name: &str,
        list: &Path,
        tasks: usize,
        time_minutes: Option<u64>,
    ) -> Result<String, BackendError> {
        let _ = (list, tasks, time_minutes);
        Err(BackendError::SubmitArray {
            name: name.to_owned(),
            source: std::io::Error::other(format!("the {} backend takes no arrays", self.name())),
        })
    }

    /// The arrays named `names` and their tasks, in one call.
    fn poll_arrays(&mut self, names: &[String]) -> Result<ArrayQueue, BackendError> {
        let _ = names;
        Ok(ArrayQueue::default())
    }

    /// Whether `Running` from [`Backend::poll`] is exact (the backend's own children), so a
    /// job it calls running needs no other evidence.
    fn exact(&self) -> bool {
        false
    }

    /// Whether a submission may be tried now (`false` while backing off after failures).
    fn may_submit(&self) -> bool {
        true
    }

    /// Asks the job to end (TERM to its group, KILL after the grace period).
    fn cancel(&mut self, id: &str) -> Result<(), BackendError>;

    /// Blocks until a job may have ended, or `timeout`.
    fn wait(&mut self, timeout: Duration) {
        std::thread::sleep(timeout);
    }
}
