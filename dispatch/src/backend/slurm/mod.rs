//! The Slurm backend: each job is a batch job that execs the job wrapper with the spec path,
//! or (how the engine submits) a task of a job array whose wrapper reads its spec from the
//! batch file (`array`). The cluster's limits come from `scontrol show config` (`limits`).
//!
//! Submission is `sbatch --parsable` with a batch script on standard input whose one command
//! is the wrapper's argv, each word single-quoted (no file name is ever read by a shell as
//! code). The job name is stable per item and `--dependency=singleton` keeps two copies of
//! one item from running at once; `--no-requeue` leaves retries to the dispatcher (a requeued
//! job would find its own start marker and step aside). All jobs are polled with one `squeue`
//! call. Slurm forgets finished jobs after `MinJobAge`, so a job missing from `squeue` is
//! reported `Unknown`, never finished: its run record decides. An unreachable controller is
//! an error, never a verdict on any job.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use super::{ArrayLimits, ArrayQueue, Backend, BackendError, JobState};
use crate::config::Slurm;
use crate::record::JobSpec;

pub mod array;
pub mod limits;

use limits::{Backoff, Limits};

/// Longest job name submitted (Slurm truncates names in most displays anyway).
const MAX_NAME: usize = 100;

/// Runs jobs as Slurm batch jobs.
#[derive(Debug, Clone)]
pub struct SlurmBackend {
    wrapper: Vec<String>,
    settings: Slurm,
    limits: Option<(Limits, std::time::Instant, bool)>,
    backoff: Backoff,
}

/// How long Slurm's default limits stand in after `scontrol` could not tell.
const LIMITS_RETRY: std::time::Duration = std::time::Duration::from_secs(600);

impl SlurmBackend {
    /// A backend submitting `wrapper + [spec path]` as one batch job per attempt.
    pub fn new(wrapper: Vec<String>, settings: Slurm) -> SlurmBackend {
        SlurmBackend {
            wrapper,
            settings,
            limits: None,
            backoff: Backoff::default(),
        }
    }

    /// The cluster's limits, asked once (`scontrol show config`); Slurm's defaults while the
    /// controller cannot tell (asked again after ten minutes).
    pub fn limits(&mut self) -> Limits {
        match self.limits {
            Some((l, _, true)) => return l,
            Some((l, at, false)) if at.elapsed() < LIMITS_RETRY => return l,
            _ => {}
        }
        let args: Vec<OsString> = vec!["show".into(), "config".into()];
        let (limits, known) = match self.run(&self.settings.scontrol, &args, None) {
            Ok(out) if out.status.success() => (
                limits::parse_config(&String::from_utf8_lossy(&out.stdout)),
                true,
            ),
            Ok(out) => {
                let why = format!("{}: {}", out.status, stderr_text(&out));
                tracing::warn!("scontrol show config: {why}: using Slurm's default limits");
                (Limits::default(), false)
            }
            Err(e) => {
                tracing::warn!("scontrol show config: {e}: using Slurm's default limits");
                (Limits::default(), false)
            }
        };
        self.limits = Some((limits, std::time::Instant::now(), known));
        limits
    }

    /// The `sbatch` arguments for a job (the script comes on standard input).
    pub fn sbatch_args(&self, spec: &JobSpec) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--parsable".into(),
            format!("--job-name={}", job_name(&spec.job.stage, &spec.job.item)).into(),
            "--dependency=singleton".into(),
            "--no-requeue".into(),
            // The job's own output reaches its logs through the wrapper; the wrapper's and
            // Slurm's messages (a cancel, a time limit) go to its standard error log.
            "--open-mode=append".into(),
            "--output=/dev/null".into(),
            flag_path("--error=", spec.stderr.as_os_str()),
        ];
        if let Some(p) = &self.settings.partition {
            args.push(format!("--partition={p}").into());
        }
        match (&self.settings.time_limit, time_minutes(spec)) {
            (Some(t), _) => args.push(format!("--time={t}").into()),
            (None, Some(minutes)) => args.push(format!("--time={minutes}").into()),
            (None, None) => {}
        }
        args.extend(self.settings.extra_args.iter().map(OsString::from));
        args
    }

    /// The batch script: `exec` of the wrapper's argv and the spec path, each word quoted.
    pub fn script(&self, spec_path: &Path) -> Vec<u8> {
        let mut script = b"#!/bin/sh\nexec".to_vec();
        let words = self.wrapper.iter().map(|w| OsStr::new(w.as_str()));
        for word in words.chain(std::iter::once(spec_path.as_os_str())) {
            script.push(b' ');
            script.extend_from_slice(&sh_quote(word.as_bytes()));
        }
        script.push(b'\n');
        script
    }

    fn run(&self, program: &str, args: &[OsString], stdin: Option<&[u8]>) -> io::Result<Output> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("{program}: {e}")))?;
        if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A program that exits without reading its input reports why in its status.
            match pipe.write_all(input) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        child.wait_with_output()
    }
}

/// A stable Slurm job name for `item` of `stage`: readable, other characters than
/// `[A-Za-z0-9._-]` written `_`, and cut with a digest of the full name when long. Two items
/// whose names clash only run one after the other (`singleton`), which is harmless.
pub fn job_name(stage: &str, item: &str) -> String {
    let full = format!("lander.{stage}.{item}");
    let clean: String = full
        .chars()
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    if clean.len() <= MAX_NAME {
        return clean;
    }
    let digest = blake3::hash(full.as_bytes()).to_hex();
    format!(
        "{}.{}",
        &clean[..clean.len().min(MAX_NAME - 17)],
        &digest[..16]
    )
}

/// `--output=`/`--error=` with a path: Slurm expands `%` patterns in these names unless the
/// name holds a backslash, so `%` is doubled.
fn flag_path(flag: &str, path: &OsStr) -> OsString {
    let bytes = path.as_bytes();
    let mut out = flag.as_bytes().to_vec();
    if bytes.contains(&b'\\') {
        out.extend_from_slice(bytes);
    } else {
        for &b in bytes {
            out.push(b);
            if b == b'%' {
                out.push(b'%');
            }
        }
    }
    OsString::from_vec(out)
}

/// The job's time limit in whole minutes when none is configured: the wrapper's own limit
/// and grace period plus a minute, so Slurm never ends a job before the wrapper does.
pub fn time_minutes(spec: &JobSpec) -> Option<u64> {
    if spec.timeout_secs <= 0.0 {
        return None;
    }
    let secs = spec.timeout_secs + spec.grace_secs.max(0.0) + 60.0;
    Some((secs / 60.0).ceil() as u64)
}

/// One word for `sh`: single-quoted, a `'` inside written as `'\''`.
pub fn sh_quote(word: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(word.len() + 2);
    out.push(b'\'');
    for &b in word {
        if b == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(b);
        }
    }
    out.push(b'\'');
    out
}

/// The job id in `sbatch --parsable` output: `jobid[;cluster]`.
pub fn parse_submitted(stdout: &str) -> Option<String> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty())?;
    let id = line.split(';').next()?.trim();
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit() || b == b'_')).then(|| id.to_owned())
}

/// A Slurm job state (`%T`) as the engine sees it.
pub fn state_of(slurm: &str) -> JobState {
    match slurm {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
        | "RESV_DEL_HOLD" => JobState::Pending,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "SIGNALING" | "STAGE_OUT"
        | "RESIZING" => JobState::Running,
        _ => JobState::Unknown,
    }
}

/// Parses `squeue -h -o '%A|%T|%r'` lines into the states of `ids` (absent ones `Unknown`).
pub fn parse_queue(stdout: &str, ids: &[String]) -> HashMap<String, JobState> {
    let mut states: HashMap<String, JobState> = ids
        .iter()
        .map(|id| (id.clone(), JobState::Unknown))
        .collect();
    for line in stdout.lines() {
        let mut fields = line.trim().split('|');
        let (Some(id), Some(state)) = (fields.next(), fields.next()) else {
            continue;
        };
        if let Some(slot) = states.get_mut(id.trim()) {
            *slot = state_of(state.trim());
        }
    }
    states
}

fn stderr_text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// Whether a Slurm command failed only because the job is not known (purged or never there).
fn unknown_job(out: &Output) -> bool {
    stderr_text(out).contains("Invalid job id")
}

impl Backend for SlurmBackend {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn capacity(&self) -> Option<usize> {
        self.settings
            .max_jobs
            .or(self.limits.map(|(l, _, _)| l.max_job_count))
    }

    fn arrays(&mut self) -> Option<ArrayLimits> {
        let cluster = self.limits().max_array_size;
        let max_tasks = self.settings.max_array_size.unwrap_or(cluster).min(cluster);
        Some(ArrayLimits {
            max_tasks: max_tasks.max(1),
        })
    }

    fn submit_array(
        &mut self,
        name: &str,
        list: &Path,
        tasks: usize,
        time_minutes: Option<u64>,
    ) -> Result<String, BackendError> {
        self.sbatch_array(name, list, tasks, time_minutes)
    }

    fn poll_arrays(&mut self, names: &[String]) -> Result<ArrayQueue, BackendError> {
        self.squeue_arrays(names)
    }

    fn may_submit(&self) -> bool {
        self.backoff.ready()
    }

    fn submit(&mut self, spec: &JobSpec, spec_path: &Path) -> Result<String, BackendError> {
        let err = |source| BackendError::Submit {
            job: spec.job.job_id.clone(),
            source,
        };
        let script = self.script(spec_path);
        if script.windows(2).any(|w| w == b"\r\n") {
            return Err(err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "sbatch refuses a script holding CR LF (from a file name)",
            )));
        }
        let out = self
            .run(
                &self.settings.sbatch,
                &self.sbatch_args(spec),
                Some(&script),
            )
            .map_err(err)?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match parse_submitted(&stdout) {
            Some(id) if out.status.success() => Ok(id),
            _ => Err(err(io::Error::other(format!(
                "{} exited with {}: {}{}",
                self.settings.sbatch,
                out.status,
                stderr_text(&out),
                stdout.trim()
            )))),
        }
    }

    fn poll(&mut self, ids: &[String]) -> Result<HashMap<String, JobState>, BackendError> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let args: Vec<OsString> = vec![
            "-h".into(),
            "-t".into(),
            "all".into(),
            "-r".into(),
            "-j".into(),
            ids.join(",").into(),
            "-o".into(),
            "%i|%T|%r".into(),
        ];
        let squeue = &self.settings.squeue;
        let out = self
            .run(squeue, &args, None)
            .map_err(|e| BackendError::Poll(e.to_string()))?;
        if out.status.success() {
            // `%A` of an array task is its own job id: ask by `%i` (`<array>_<index>`).
            return Ok(parse_queue(&String::from_utf8_lossy(&out.stdout), ids));
        }
        // `squeue -j` with only purged ids fails; a list with some drops them silently.
        if unknown_job(&out) {
            return Ok(parse_queue("", ids));
        }
        Err(BackendError::Poll(format!(
            "{squeue} exited with {}: {}",
            out.status,
            stderr_text(&out)
        )))
    }

    fn cancel(&mut self, id: &str) -> Result<(), BackendError> {
        let err = |source| BackendError::Cancel {
            id: id.to_owned(),
            source,
        };
        let out = self
            .run(&self.settings.scancel, &[id.into()], None)
            .map_err(err)?;
        if out.status.success() || unknown_job(&out) {
            return Ok(());
        }
        Err(err(io::Error::other(format!(
            "{} exited with {}: {}",
            self.settings.scancel,
            out.status,
            stderr_text(&out)
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::JobIdentity;

    #[test]
    fn quoting_survives_any_file_name() {
        let q = sh_quote(b"a'b $(rm -rf /) `x` \"y\"\nz");
        assert_eq!(q, b"'a'\\''b $(rm -rf /) `x` \"y\"\nz'".to_vec());
        let out = Command::new("sh")
            .arg("-c")
            .arg(OsStr::from_bytes(&[b"printf %s ", &q[..]].concat()))
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"a'b $(rm -rf /) `x` \"y\"\nz".to_vec());
    }

    #[test]
    fn job_names_are_stable_clean_and_distinct() {
        assert_eq!(job_name("scrub", "s1/a.pcap"), "lander.scrub.s1_a.pcap");
        assert_eq!(job_name("user/alice", "a b"), "lander.user_alice.a_b");
        let long = "x".repeat(500);
        let (a, b) = (
            job_name("scrub", &long),
            job_name("scrub", &format!("{long}y")),
        );
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME);
        assert_ne!(a, b, "long names keep a digest of the full name");
    }

    #[test]
    fn output_paths_escape_percent() {
        let f = flag_path("--output=", OsStr::new("/s/50%.out"));
        assert_eq!(f, OsString::from("--output=/s/50%%.out"));
        let f = flag_path("--output=", OsStr::new("/s/a\\b%.out"));
        assert_eq!(f, OsString::from("--output=/s/a\\b%.out"));
    }

    #[test]
    fn sbatch_output_and_squeue_lines_parse() {
        assert_eq!(parse_submitted("42\n").as_deref(), Some("42"));
        assert_eq!(parse_submitted("42;cluster\n").as_deref(), Some("42"));
        assert_eq!(parse_submitted("Submitted batch job 42\n"), None);
        let ids: Vec<String> = ["1", "2", "3", "4"].map(String::from).to_vec();
        let s = parse_queue(
            "1|PENDING|Priority\n2|RUNNING|None\n3|COMPLETED|None\n",
            &ids,
        );
        assert_eq!(s["1"], JobState::Pending);
        assert_eq!(s["2"], JobState::Running);
        assert_eq!(s["3"], JobState::Unknown);
        assert_eq!(
            s["4"],
            JobState::Unknown,
            "absent is unknown, never finished"
        );
        assert_eq!(s.len(), 4);
    }

    fn spec(dir: &Path) -> JobSpec {
        JobSpec {
            job: JobIdentity {
                job_id: "scrub.s1.a.pcap.1".into(),
                stage: "scrub".into(),
                item: "s1/a.pcap".into(),
                attempt: 1,
            },
            argv: vec!["/bin/true".into()],
            env: Default::default(),
            stdout: dir.join("logs/x.out"),
            stderr: dir.join("logs/x.err"),
            start_marker: dir.join("m"),
            record: dir.join("r"),
            claim: dir.join("c"),
            timeout_secs: 90.0,
            grace_secs: 10.0,
            counts_from: None,
            fsync: false,
            digest: None,
            cancel_request: None,
            heartbeat: None,
            heartbeat_secs: 0.0,
            run_as: None,
        }
    }

    #[test]
    fn submit_passes_options_and_a_quoted_script() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let log = d.join("sbatch.log");
        let sbatch = crate::standin::script(
            d,
            "sbatch",
            &format!("printf '%s\\n' \"$@\" > {log:?}; cat > {log:?}.script; echo '77;c1'"),
        );
        let settings = Slurm {
            partition: Some("p1".into()),
            extra_args: vec!["--qos=low".into()],
            sbatch,
            ..Slurm::default()
        };
        let mut b = SlurmBackend::new(vec!["/opt/lander".into(), "it's".into()], settings);
        let spec_path = d.join("jobs/a'b $(x).spec.json");
        assert_eq!(b.submit(&spec(d), &spec_path).unwrap(), "77");
        let args = std::fs::read_to_string(&log).unwrap();
        let args: Vec<&str> = args.lines().collect();
        for want in [
            "--parsable",
            "--job-name=lander.scrub.s1_a.pcap",
            "--dependency=singleton",
            "--no-requeue",
            "--partition=p1",
            "--time=3",
            "--qos=low",
        ] {
            assert!(args.contains(&want), "{want} in {args:?}");
        }
        let script = std::fs::read(d.join("sbatch.log.script")).unwrap();
        let want = format!(
            "#!/bin/sh\nexec '/opt/lander' 'it'\\''s' '{}/jobs/a'\\''b $(x).spec.json'\n",
            d.display()
        );
        assert_eq!(String::from_utf8(script).unwrap(), want);
    }

    #[test]
    fn an_unreachable_controller_is_an_error_and_purged_jobs_are_unknown() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let down = "echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1";
        let settings = Slurm {
            squeue: crate::standin::script(d, "squeue-down", down),
            sbatch: crate::standin::script(d, "sbatch-down", down),
            ..Slurm::default()
        };
        let mut b = SlurmBackend::new(vec!["w".into()], settings);
        let ids = vec!["5".to_owned()];
        let err = b.poll(&ids).unwrap_err().to_string();
        assert!(err.contains("Unable to contact"), "{err}");
        let err = b.submit(&spec(d), &d.join("s")).unwrap_err().to_string();
        assert!(err.contains("Unable to contact"), "{err}");
        let purged = "echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1";
        let settings = Slurm {
            squeue: crate::standin::script(d, "squeue-purged", purged),
            ..Slurm::default()
        };
        let mut b = SlurmBackend::new(vec!["w".into()], settings);
        assert_eq!(b.poll(&ids).unwrap()["5"], JobState::Unknown);
    }
}
