//! What a job is told (the job spec) and what it leaves behind (its start marker and its run
//! record), all small JSON files written atomically.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which attempt of which job, on which item: the fields a claim, a job spec and a run record
/// share. Each embeds it flattened, so their files keep the flat layout they always had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobIdentity {
    /// Unique per attempt: `<stage>.<item>.<attempt>` with `/` replaced.
    pub job_id: String,
    /// Stage name (`scrub`, `user:<name>`).
    pub stage: String,
    /// What the job works on (`<site>/<file>` for scrub, `<file>` for users).
    pub item: String,
    /// Attempt number, from 1.
    pub attempt: u32,
}

/// Everything a job wrapper needs to run one attempt, written by the dispatcher before submit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The attempt.
    #[serde(flatten)]
    pub job: JobIdentity,
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// Environment added to the wrapper's own.
    pub env: BTreeMap<String, String>,
    /// Standard output of the job.
    pub stdout: PathBuf,
    /// Standard error of the job.
    pub stderr: PathBuf,
    /// Where the job's start marker goes.
    pub start_marker: PathBuf,
    /// Where the job's run record goes.
    pub record: PathBuf,
    /// The claim that must still name this job when it starts (else it steps aside).
    pub claim: PathBuf,
    /// Time limit in seconds (0: none).
    pub timeout_secs: f64,
    /// Time between TERM and KILL.
    pub grace_secs: f64,
    /// A manifest whose `packets` and `bytes` go into the run record.
    pub counts_from: Option<PathBuf>,
    /// Fsync the record.
    pub fsync: bool,
    /// BLAKE3 of the item's file, when known: the run record carries it on.
    #[serde(default)]
    pub digest: Option<String>,
    /// Where job control notes a cancel before it signals the job. With it, a signal that
    /// ends the job without the note is recorded as a kill (retried), not as a cancel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_request: Option<PathBuf>,
    /// Where the wrapper writes its heartbeats while the job runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<PathBuf>,
    /// Seconds between heartbeats (zero: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub heartbeat_secs: f64,
    /// The account the job's program runs as (a root wrapper drops to it); `None`: the
    /// wrapper's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_as: Option<String>,
}

/// How a job attempt ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum JobOutcome {
    /// Exit status 0.
    Success,
    /// A non-zero exit status.
    Exit(i32),
    /// Killed by a signal it did not ask for (a crash).
    Signal(i32),
    /// Ended by its time limit.
    Timeout,
    /// Ended by `lander jobs cancel`.
    Cancelled,
    /// Could not be started at all.
    SpawnFailed(String),
}

impl fmt::Display for JobOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobOutcome::Success => f.write_str("success"),
            JobOutcome::Exit(c) => write!(f, "exit {c}"),
            JobOutcome::Signal(s) => write!(f, "killed by signal {s}"),
            JobOutcome::Timeout => f.write_str("timeout"),
            JobOutcome::Cancelled => f.write_str("cancelled"),
            JobOutcome::SpawnFailed(e) => write!(f, "could not start: {e}"),
        }
    }
}

/// Written by the job itself when it starts: where it runs, so it can be found again.
///
/// A dispatcher that judges a job never started writes one in its place first, a fence with
/// pid 0 ([`StartMarker::fence`]): the marker is created exclusively, so of the fence and a
/// wrapper that starts late exactly one is made, and the other steps aside.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartMarker {
    /// The job.
    pub job_id: String,
    /// Host the job runs on.
    pub host: String,
    /// The host's stable identity (machine id and host name), which tells two hosts of one
    /// short name apart.
    #[serde(default)]
    pub host_id: Option<String>,
    /// Pid of the job wrapper (also its process group).
    pub pid: u32,
    /// Start time of that pid (clock ticks since boot), to tell a reused pid apart.
    pub pid_start: u64,
    /// Unix time of the start.
    pub start: f64,
}

impl StartMarker {
    /// The marker a dispatcher puts in place of a job it judged never started (pid 0: no
    /// process; it reads as a job that ended), so that no wrapper of it starts after.
    pub fn fence(job_id: &str) -> StartMarker {
        StartMarker {
            job_id: job_id.to_owned(),
            host: crate::sys::hostname().to_owned(),
            host_id: Some(crate::sys::host_id().to_owned()),
            pid: 0,
            pid_start: 0,
            start: crate::sys::now(),
        }
    }

    /// Whether this is a dispatcher's fence, not a wrapper's marker.
    pub fn is_fence(&self) -> bool {
        self.pid == 0
    }
}

/// Written by the job itself when it ends, so its end is known even if no dispatcher watched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The attempt.
    #[serde(flatten)]
    pub job: JobIdentity,
    /// Host it ran on.
    pub host: String,
    /// Pid of the job wrapper.
    pub pid: u32,
    /// Unix time of the start.
    pub start: f64,
    /// Unix time of the end.
    pub end: f64,
    /// How it ended.
    pub outcome: JobOutcome,
    /// Exit status, when it exited.
    pub exit_code: Option<i32>,
    /// Signal, when a signal ended it.
    pub signal: Option<i32>,
    /// Packets in the file worked on, from its manifest.
    pub packets: Option<u64>,
    /// Bytes in the file worked on, from its manifest.
    pub bytes: Option<u64>,
    /// BLAKE3 of the item's file the job was given, when known.
    #[serde(default)]
    pub digest: Option<String>,
}

/// Reads a JSON state file; `Ok(None)` if it does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> std::io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::fsutil::with_path(e, path)),
    }
}

/// Packets and bytes of a trace, from its manifest (any JSON with those two fields).
pub fn counts_from(manifest: &Path) -> (Option<u64>, Option<u64>) {
    let Ok(Some(v)) = read_json::<serde_json::Value>(manifest) else {
        return (None, None);
    };
    (
        v.get("packets").and_then(|x| x.as_u64()),
        v.get("bytes").and_then(|x| x.as_u64()),
    )
}

/// Fields that are zero are left out of the spec, as files written before they existed.
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
