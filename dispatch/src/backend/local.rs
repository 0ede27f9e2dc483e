//! The local backend: each job is a child process group on this host, N at a time.
//!
//! The child is the job wrapper (`lander dispatch job-wrapper SPEC`), which writes the job's
//! start marker and run record itself; so after a dispatcher restart, running jobs are found
//! again from their markers (pid and pid start time) and finished ones from their records.

use std::collections::{HashMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{Backend, BackendError, JobState};
use crate::record::JobSpec;
use crate::sys;

/// Runs jobs as child process groups.
#[derive(Debug)]
pub struct LocalBackend {
    wrapper: Vec<String>,
    slots: usize,
    ended_tx: mpsc::Sender<String>,
    ended_rx: mpsc::Receiver<String>,
    /// Children of this backend not yet ended: known running without asking `/proc`.
    live: HashSet<String>,
    /// Children of this backend that ended, until the engine stops asking about them.
    ended: HashSet<String>,
}

impl LocalBackend {
    /// A backend running `wrapper + [spec path]` for each job, `slots` at a time.
    pub fn new(wrapper: Vec<String>, slots: usize) -> LocalBackend {
        let (ended_tx, ended_rx) = mpsc::channel();
        LocalBackend {
            wrapper,
            slots,
            ended_tx,
            ended_rx,
            live: HashSet::new(),
            ended: HashSet::new(),
        }
    }

    fn note_ended(&mut self, id: String) {
        self.live.remove(&id);
        self.ended.insert(id);
    }

    fn collect_ended(&mut self) {
        while let Ok(id) = self.ended_rx.try_recv() {
            self.note_ended(id);
        }
    }

    /// The backend id of a local process: `<host>:<pid>:<pid start time>`.
    pub fn id_of(host: &str, pid: u32, start: u64) -> String {
        format!("{host}:{pid}:{start}")
    }

    /// Whether the process named by a local backend id is alive on this host.
    pub fn id_alive(id: &str) -> bool {
        let mut parts = id.rsplitn(3, ':');
        let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let (Ok(start), Ok(pid)) = (start.parse(), pid.parse()) else {
            return false;
        };
        host == sys::hostname() && sys::alive(pid, start)
    }

    fn command(&self, _spec: &JobSpec, spec_path: &Path) -> std::io::Result<Command> {
        let (program, args) = self.wrapper.split_first().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty wrapper")
        })?;
        // The job's own output goes to its logs through the wrapper, which creates them only
        // when there is output; the wrapper's complaints go to the dispatcher's standard error
        // (and to the job's error log).
        let mut cmd = Command::new(program);
        cmd.args(args)
            .arg(spec_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0);
        Ok(cmd)
    }
}

impl Backend for LocalBackend {
    fn name(&self) -> &'static str {
        "local"
    }

    fn capacity(&self) -> Option<usize> {
        Some(self.slots)
    }

    fn exact(&self) -> bool {
        true
    }

    fn submit(&mut self, spec: &JobSpec, spec_path: &Path) -> Result<String, BackendError> {
        let err = |source| BackendError::Submit {
            job: spec.job_id.clone(),
            source,
        };
        let mut child = self
            .command(spec, spec_path)
            .and_then(|mut c| c.spawn())
            .map_err(err)?;
        let pid = child.id();
        let id = Self::id_of(sys::hostname(), pid, sys::start_time(pid).unwrap_or(0));
        let (tx, done) = (self.ended_tx.clone(), id.clone());
        std::thread::spawn(move || {
            let _ = child.wait();
            let _ = tx.send(done);
        });
        self.live.insert(id.clone());
        Ok(id)
    }

    /// Children of this backend are known from their waiters; jobs started by an earlier
    /// dispatcher (adopted after a restart) are looked up in `/proc`.
    fn poll(&mut self, ids: &[String]) -> Result<HashMap<String, JobState>, BackendError> {
        self.collect_ended();
        let state = |id: &String| {
            let running = if self.live.contains(id) {
                true
            } else {
                !self.ended.contains(id) && Self::id_alive(id)
            };
            match running {
                true => JobState::Running,
                false => JobState::Unknown,
            }
        };
        let states = ids.iter().map(|id| (id.clone(), state(id))).collect();
        let asked: HashSet<&String> = ids.iter().collect();
        self.ended.retain(|id| asked.contains(id));
        Ok(states)
    }

    fn cancel(&mut self, id: &str) -> Result<(), BackendError> {
        if !Self::id_alive(id) {
            return Ok(());
        }
        let pid = id
            .rsplit(':')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        sys::kill_group(pid, libc::SIGTERM).map_err(|source| BackendError::Cancel {
            id: id.to_owned(),
            source,
        })
    }

    fn wait(&mut self, timeout: Duration) {
        if let Ok(id) = self.ended_rx.recv_timeout(timeout) {
            self.note_ended(id);
            self.collect_ended();
        }
    }
}
