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

    /// Asks the job to end (TERM to its group, KILL after the grace period).
    fn cancel(&mut self, id: &str) -> Result<(), BackendError>;

    /// Blocks until a job may have ended, or `timeout`.
    fn wait(&mut self, timeout: Duration) {
        std::thread::sleep(timeout);
    }
}
