//! The validated configuration: what the rest of the crate reads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::window::Window;

pub use super::monitor::{MinFree, Monitor, Notify, NotifyKind};

/// What happens to a file after a job outcome that is not success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Run it again after a backoff, up to the retry limit; then fail.
    Retry,
    /// Move it to `failed/` with the reason.
    Fail,
    /// Treat it as finished.
    Ignore,
}

/// What happens to a finished input file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterSuccess {
    /// Delete it.
    Remove,
    /// Keep it: users' files go to `done/`, raw files to the archive directory.
    #[serde(alias = "done")]
    Archive,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// Spool root (shared storage).
    pub spool: PathBuf,
    /// SQLite history of the scrub dispatcher (local disk).
    pub state_db: PathBuf,
    /// SQLite history of a user dispatcher: `{user}` is replaced by the user's name.
    pub user_state_db: String,
    /// Fsync state files (claims, records) and published files.
    pub fsync: bool,
    /// Capture sites (directories under `raw/`).
    pub sites: Vec<String>,
    /// Scrub stage settings.
    pub scrub: Scrub,
    /// Users by name.
    pub users: BTreeMap<String, User>,
    /// Batch backend.
    pub backend: BackendConfig,
    /// Most jobs submitted and not finished, per stage; over it the stage stops submitting.
    pub queue_limit: usize,
    /// Monitor thresholds.
    pub monitor: Monitor,
    /// Notification commands (`[[notify]]`).
    pub notify: Vec<Notify>,
    /// Retention of old files.
    pub retention: Retention,
}

/// Scrub stage settings.
#[derive(Debug, Clone)]
pub struct Scrub {
    /// Program and leading arguments; `None` means `lander-scrub` beside the running binary.
    pub command: Option<Vec<String>>,
    /// Argument template: `{in}`, `{out}`, `{mapping}`, `{key}`, `{payload}`, `{checksums}`,
    /// `{mac}`, `{mpls}`.
    pub args: Vec<String>,
    /// Address mapping name.
    pub mapping: String,
    /// Key file.
    pub key_file: PathBuf,
    /// Payload policy.
    pub payload: String,
    /// Checksum policy.
    pub checksums: String,
    /// MAC address policy (`keep`, `zero`, `scramble`, `scramble-keep-oui`).
    pub mac: String,
    /// What follows an MPLS label stack (`auto`, `ip`, `ethernet`, `cut`).
    pub mpls: String,
    /// Environment added to the job's.
    pub env: BTreeMap<String, String>,
    /// Job time limit.
    pub timeout: Duration,
    /// How many times a failed scrub is retried.
    pub retries: u32,
    /// First retry delay (doubled each time).
    pub backoff: Duration,
    /// Check the output's BLAKE3 against its manifest before publishing.
    pub verify_digest: bool,
    /// What happens to the raw file once scrubbed and fanned out.
    pub raw_after: AfterSuccess,
    /// The group users share: scrubbed files are given it and made readable by it only
    /// (0640); `None`: readable by everyone (0644).
    pub scrubbed_group: Option<String>,
}

/// One user's subscription and processor.
#[derive(Debug, Clone)]
pub struct User {
    /// Sites whose scrubbed files this user receives.
    pub subscriptions: Vec<String>,
    /// The processor: argv, never a shell string.
    pub processor: Vec<String>,
    /// Environment added to the processor's.
    pub env: BTreeMap<String, String>,
    /// Processor time limit; the whole process group is ended after it.
    pub timeout: Duration,
    /// How many times a file is retried.
    pub retries: u32,
    /// First retry delay (doubled each time).
    pub backoff: Duration,
    /// What happens to a processed file.
    pub on_success: AfterSuccess,
    /// Action by exit code.
    pub on_exit: BTreeMap<i32, Action>,
    /// Action for exit codes not in `on_exit`.
    pub on_exit_default: Action,
    /// Action when the time limit ended the job.
    pub on_timeout: Action,
    /// Action when the job died of a signal.
    pub on_crash: Action,
    /// Allowed time windows; empty means always.
    pub windows: Vec<Window>,
    /// Whether `windows` are in local time (`timezone = "local"`) rather than UTC.
    pub local_time: bool,
    /// Most bytes the user's directory may hold (`quota = "50GiB"`); checked by `lander quota`.
    pub quota: Option<u64>,
    /// The account the user's processor runs as (`run_as`); a root job wrapper drops to it
    /// (groups, group, user) before it execs the processor.
    pub run_as: Option<String>,
}

/// Which batch backend runs the jobs.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// The batch system.
    pub kind: BackendKind,
    /// Slurm settings (used when `kind` is Slurm).
    pub slurm: Slurm,
    /// Jobs run at once by the local backend.
    pub slots: usize,
    /// Time between TERM and KILL when a job is ended.
    pub grace: Duration,
    /// Time between two heartbeats of a running job (zero: none).
    pub heartbeat: Duration,
    /// How long the spool's filesystem may show an old copy of a file; `None`: from the
    /// spool's mount (`acregmax` for NFS, zero for local filesystems).
    pub attr_cache: Option<Duration>,
}

/// The batch systems jobs can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// Child process groups on the dispatcher's host.
    Local,
    /// Slurm batch jobs.
    Slurm,
}

/// Slurm settings (`[backend.slurm]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slurm {
    /// Partition (`--partition`); the cluster's default when `None`.
    pub partition: Option<String>,
    /// Time limit (`--time`, Slurm's syntax); when `None`, the job's own limit plus its grace
    /// period and a minute.
    pub time_limit: Option<String>,
    /// More `sbatch` arguments, one word each.
    pub extra_args: Vec<String>,
    /// The `sbatch` program.
    pub sbatch: String,
    /// The `squeue` program.
    pub squeue: String,
    /// The `scancel` program.
    pub scancel: String,
    /// The `scontrol` program (reads `MaxArraySize` and `MaxJobCount`).
    pub scontrol: String,
    /// Most tasks of one array running at once (`--array=0-N%K`); 0: no throttle.
    pub array_throttle: usize,
    /// Most tasks in one array; `None`: the cluster's `MaxArraySize`.
    pub max_array_size: Option<usize>,
    /// Most jobs of a stage in the queue; `None`: the cluster's `MaxJobCount`.
    pub max_jobs: Option<usize>,
}

impl Default for Slurm {
    fn default() -> Self {
        Slurm {
            partition: None,
            time_limit: None,
            extra_args: Vec::new(),
            sbatch: "sbatch".into(),
            squeue: "squeue".into(),
            scancel: "scancel".into(),
            scontrol: "scontrol".into(),
            array_throttle: 64,
            max_array_size: None,
            max_jobs: None,
        }
    }
}

/// Retention of old files, per class: `<class>_days` (0, the default, keeps forever) and
/// `<class>_max` (a size like `"50GiB"`: the oldest are removed until the class is under it;
/// none by default). `done` and `failed` limits apply to each user's directory.
#[derive(Debug, Clone, Default)]
pub struct Retention {
    /// Scrubbed files and their manifests.
    pub scrubbed: Rule,
    /// Archived raw files (`raw_after = "archive"`).
    pub archive: Rule,
    /// Users' `done/` files.
    pub done: Rule,
    /// Users' `failed/` files (with their reasons).
    pub failed: Rule,
    /// Job logs.
    pub logs: Rule,
    /// Run records, and users' markers of finished files.
    pub records: Rule,
}

/// How long and how much of one class of files is kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rule {
    /// Files older than this go.
    pub max_age: Option<Duration>,
    /// Past this many bytes, the oldest go.
    pub max_bytes: Option<u64>,
}

impl User {
    /// The action for a job that ended with this outcome (`None` for success).
    pub fn action_for(&self, outcome: &crate::record::JobOutcome) -> Option<Action> {
        use crate::record::JobOutcome;
        match outcome {
            JobOutcome::Success => None,
            JobOutcome::Exit(code) => {
                Some(*self.on_exit.get(code).unwrap_or(&self.on_exit_default))
            }
            JobOutcome::Timeout => Some(self.on_timeout),
            JobOutcome::Signal(_) => Some(self.on_crash),
            JobOutcome::Cancelled => Some(Action::Fail),
            JobOutcome::SpawnFailed(_) => Some(Action::Fail),
        }
    }
}
