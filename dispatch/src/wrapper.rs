//! The job wrapper: runs one job attempt and writes its start marker and run record itself,
//! so the dispatcher learns the outcome even if it was down while the job ran.
//!
//! The job runs in its own process group and dies with the wrapper (parent-death signal). A time
//! limit or a cancel ends the whole group: TERM, then KILL after the grace period.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::claim::Claim;
use crate::fsutil::write_json_atomic;
use crate::record::{counts_from, read_json, JobOutcome, JobRecord, JobSpec, StartMarker};
use crate::sys;

/// What the wrapper did.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // made once per job
pub enum Wrapped {
    /// The job ran (or failed to start) and its record was written.
    Ran(JobRecord),
    /// Another copy of this job runs, or the claim no longer names it (it was taken over):
    /// nothing was run or written.
    Superseded,
}

/// Runs the job whose spec is at `spec_path`, as a job's wrapper process does: TERM, INT and
/// HUP cancel it. `Ok(None)` when there was no job to run (superseded before it started). An
/// error is also appended to the job's error log, where `lander jobs logs` looks.
pub fn run_file(spec_path: &Path) -> io::Result<Option<Wrapped>> {
    // An array task is given its batch file and finds its own spec in it.
    let Some(spec_path) = crate::batch::resolve_spec(spec_path)? else {
        return Ok(None);
    };
    let Some(spec) = load_spec(&spec_path)? else {
        return Ok(None);
    };
    let cancel = std::sync::Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&cancel))?;
    }
    run(&spec, &cancel).map(Some).inspect_err(|e| {
        let note = format!("lander job wrapper: {e}\n");
        let _ = open_log(&spec.stderr).and_then(|mut f| f.write_all(note.as_bytes()));
    })
}

/// Runs the job described by `spec`. `cancel` is set from a signal handler (TERM, INT, HUP).
pub fn run(spec: &JobSpec, cancel: &AtomicBool) -> io::Result<Wrapped> {
    let start = sys::now();
    let me = std::process::id();
    let marker = StartMarker {
        job_id: spec.job_id.clone(),
        host: sys::hostname().to_owned(),
        host_id: Some(sys::host_id().to_owned()),
        pid: me,
        pid_start: sys::start_time(me).unwrap_or(0),
        start,
    };
    // The start marker is created exclusively (O_EXCL, one file, no temporary): a second copy
    // of the same job steps aside. A reader that finds it still empty takes the job as starting.
    let bytes = serde_json::to_vec(&marker).map_err(io::Error::other)?;
    if !crate::fsutil::create_new(&spec.start_marker, &bytes, spec.fsync)? {
        return Ok(Wrapped::Superseded);
    }
    if !claim_names_job(spec)? {
        crate::fsutil::remove_if_exists(&spec.start_marker)?;
        return Ok(Wrapped::Superseded);
    }
    let heart = start_heart(spec);
    let (outcome, status) = execute(spec, cancel);
    // No beat after the record: a reader that finds neither takes the job for ended.
    if let Some(heart) = heart {
        heart.stop();
    }
    let outcome = match (&outcome, &spec.cancel_request) {
        // Ended by a signal nobody asked for through job control: the batch system's doing
        // (scancel, preemption, a node going down), a kill to retry, not a cancel.
        (JobOutcome::Cancelled, Some(request)) if !crate::fsutil::exists(request) => {
            JobOutcome::Signal(libc::SIGTERM)
        }
        _ => outcome,
    };
    let (packets, bytes) = match (&outcome, &spec.counts_from) {
        (JobOutcome::Success, Some(m)) => counts_from(m),
        _ => (None, None),
    };
    let record = JobRecord {
        job_id: spec.job_id.clone(),
        stage: spec.stage.clone(),
        item: spec.item.clone(),
        attempt: spec.attempt,
        host: marker.host,
        pid: me,
        start,
        end: sys::now(),
        outcome,
        exit_code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        packets,
        bytes,
        digest: spec.digest.clone(),
    };
    write_json_atomic(&spec.record, &record, spec.fsync)?;
    Ok(Wrapped::Ran(record))
}

/// Starts the job's heartbeats; a heartbeat that cannot be written does not stop the job (its
/// liveness is then judged from the batch system's word and its record).
fn start_heart(spec: &JobSpec) -> Option<crate::heartbeat::Heart> {
    let path = spec.heartbeat.as_ref()?;
    let every = positive_secs(spec.heartbeat_secs)?;
    crate::heartbeat::Heart::start(path, &spec.job_id, every)
        .inspect_err(|e| tracing::warn!("{}: no heartbeats: {e}", spec.job_id))
        .ok()
}

fn claim_names_job(spec: &JobSpec) -> io::Result<bool> {
    let claim: Option<Claim> = read_json(&spec.claim)?;
    Ok(claim.is_some_and(|c| c.job_id == spec.job_id && c.is_active()))
}

/// Reads the job spec at `path`: `None` when there is none to run (the file is gone, or it is
/// a later generation of a claim, which carries no spec): the job was superseded.
pub fn load_spec(path: &Path) -> io::Result<Option<JobSpec>> {
    match read_json::<JobSpec>(path) {
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        other => other,
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Copies a job's output from `pipe` to the log at `path`, creating the log only when the job
/// writes something (most jobs write nothing: no empty log files).
fn copy_lazily(mut pipe: impl Read, path: &Path) {
    let mut buf = [0u8; 16 * 1024];
    let mut log: Option<io::Result<File>> = None;
    loop {
        let n = match pipe.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        // A log that cannot be written does not stop the job: its output is drained and lost.
        if let Ok(file) = log.get_or_insert_with(|| open_log(path)) {
            let _ = file.write_all(&buf[..n]);
        }
    }
}

/// Starts copying the child's standard output and error to their logs.
fn start_copies(child: &mut Child, spec: &JobSpec) -> Vec<JoinHandle<()>> {
    let mut copies = Vec::new();
    if let Some(out) = child.stdout.take() {
        let path = spec.stdout.clone();
        copies.push(std::thread::spawn(move || copy_lazily(out, &path)));
    }
    if let Some(err) = child.stderr.take() {
        let path = spec.stderr.clone();
        copies.push(std::thread::spawn(move || copy_lazily(err, &path)));
    }
    copies
}

/// Waits for the copies to reach the end of the output, but not for a process left behind
/// that still holds the pipes open.
fn finish_copies(copies: Vec<JoinHandle<()>>) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while copies.iter().any(|c| !c.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn execute(spec: &JobSpec, cancel: &AtomicBool) -> (JobOutcome, Option<ExitStatus>) {
    let Some((program, args)) = spec.argv.split_first() else {
        return (JobOutcome::SpawnFailed("empty argv".into()), None);
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Privileges go first: a change of credentials clears the parent-death signal.
    if let Some(name) = &spec.run_as {
        match crate::privilege::prepare(name) {
            Ok(Some(account)) => crate::privilege::drop_to(&mut cmd, &account),
            Ok(None) => {}
            Err(e) => return (JobOutcome::SpawnFailed(format!("run_as {name}: {e}")), None),
        }
    }
    sys::detach_and_die_with_parent(&mut cmd);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return (JobOutcome::SpawnFailed(format!("{program}: {e}")), None),
    };
    let copies = start_copies(&mut child, spec);
    let ended = supervise(child, spec, cancel);
    finish_copies(copies);
    ended
}

/// Waits for the child, ending its process group on timeout or cancel.
fn supervise(
    mut child: std::process::Child,
    spec: &JobSpec,
    cancel: &AtomicBool,
) -> (JobOutcome, Option<ExitStatus>) {
    let pgid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    // A limit too far away to reach (or not a number) is no limit.
    let deadline = positive_secs(spec.timeout_secs).and_then(|t| Instant::now().checked_add(t));
    let grace = positive_secs(spec.grace_secs).unwrap_or(Duration::ZERO);
    loop {
        let tick = Duration::from_millis(100);
        let wait = deadline.map_or(tick, |d| {
            d.saturating_duration_since(Instant::now()).min(tick)
        });
        match rx.recv_timeout(wait) {
            Ok(status) => {
                let signalled = status.as_ref().is_ok_and(|s| s.signal().is_some());
                let ended_by = cancelled_with(signalled, cancel).then_some(JobOutcome::Cancelled);
                return classify(status.ok(), ended_by);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return classify(None, None),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let ended_by = if cancel.load(Ordering::Relaxed) {
            JobOutcome::Cancelled
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            JobOutcome::Timeout
        } else {
            continue;
        };
        let status = end_group(pgid, grace, &rx);
        return classify(status, Some(ended_by));
    }
}

/// `secs` as a duration when it is a positive number of seconds that a duration can hold.
fn positive_secs(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
}

/// Whether the job was cancelled. A cancel that signals every process of the job at once
/// (Slurm's `scancel`) may kill the child before the wrapper's own signal arrives, so a child
/// killed by a signal gives the wrapper's flag a moment to be set.
fn cancelled_with(child_signalled: bool, cancel: &AtomicBool) -> bool {
    let deadline = Instant::now() + Duration::from_millis(300);
    while child_signalled && !cancel.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    cancel.load(Ordering::Relaxed)
}

/// TERM to the group, KILL after `grace`, and the child's status.
fn end_group(
    pgid: u32,
    grace: Duration,
    rx: &mpsc::Receiver<io::Result<ExitStatus>>,
) -> Option<ExitStatus> {
    let _ = sys::kill_group(pgid, libc::SIGTERM);
    if let Ok(status) = rx.recv_timeout(grace) {
        let _ = sys::kill_group(pgid, libc::SIGKILL);
        return status.ok();
    }
    let _ = sys::kill_group(pgid, libc::SIGKILL);
    rx.recv().ok().and_then(Result::ok)
}

fn classify(
    status: Option<ExitStatus>,
    ended_by: Option<JobOutcome>,
) -> (JobOutcome, Option<ExitStatus>) {
    if let Some(outcome) = ended_by {
        return (outcome, status);
    }
    let outcome = match status {
        None => JobOutcome::SpawnFailed("lost the child's status".into()),
        Some(s) if s.success() => JobOutcome::Success,
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => JobOutcome::Exit(code),
            (None, Some(sig)) => JobOutcome::Signal(sig),
            (None, None) => JobOutcome::SpawnFailed("unknown exit status".into()),
        },
    };
    (outcome, status)
}
