//! The state directories of one stage, and the items its claims name.

use std::io;
use std::path::{Path, PathBuf};

use crate::fsutil;

/// The state directories of one stage.
#[derive(Debug, Clone)]
pub struct StageDirs {
    /// Claims, one file per item (items may hold one `/`: a subdirectory).
    pub claims: PathBuf,
    /// Job specs and start markers.
    pub jobs: PathBuf,
    /// Run records.
    pub records: PathBuf,
    /// Job standard output and error.
    pub logs: PathBuf,
    /// Present when the stage is paused.
    pub paused: PathBuf,
    /// Array batch files: the intent of each array submission, then its id.
    pub batches: PathBuf,
}

impl StageDirs {
    /// The state directories under `state` and logs in `logs`.
    pub fn under(state: &Path, logs: PathBuf) -> StageDirs {
        StageDirs {
            claims: state.join("claims"),
            jobs: state.join("jobs"),
            records: state.join("records"),
            logs,
            paused: state.join("paused"),
            batches: state.join("batches"),
        }
    }

    /// Creates the directories.
    pub fn create(&self) -> io::Result<()> {
        for dir in [
            &self.claims,
            &self.jobs,
            &self.records,
            &self.logs,
            &self.batches,
        ] {
            std::fs::create_dir_all(dir).map_err(|e| crate::fsutil::with_path(e, dir))?;
        }
        Ok(())
    }

    /// The claim file of `item`.
    pub fn claim(&self, item: &str) -> PathBuf {
        self.claims.join(item)
    }

    /// The spec file of a job.
    pub fn spec(&self, job: &str) -> PathBuf {
        self.jobs.join(format!("{job}.spec.json"))
    }

    /// The start marker of a job.
    pub fn marker(&self, job: &str) -> PathBuf {
        self.jobs.join(format!("{job}.start.json"))
    }

    /// The heartbeat file of a running job.
    pub fn beat(&self, job: &str) -> PathBuf {
        self.jobs.join(format!("{job}.beat.json"))
    }

    /// Written by job control before it signals a job: the end that follows is a cancel (a
    /// signal without it is the batch system's doing: preemption, `scancel`, a node shutdown).
    pub fn cancel_request(&self, job: &str) -> PathBuf {
        self.jobs.join(format!("{job}.cancel"))
    }

    /// The run record of a job.
    pub fn record(&self, job: &str) -> PathBuf {
        self.records.join(format!("{job}.json"))
    }

    /// Standard output of a job.
    pub fn stdout(&self, job: &str) -> PathBuf {
        self.logs.join(format!("{job}.out"))
    }

    /// Standard error of a job.
    pub fn stderr(&self, job: &str) -> PathBuf {
        self.logs.join(format!("{job}.err"))
    }
}

/// Items with a claim under `dir`: plain files, and files one subdirectory down as `sub/name`.
pub fn list_items(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fsutil::with_path(e, dir)),
    };
    let mut items = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if fsutil::is_temp_name(&name) {
            continue;
        }
        if !entry.file_type()?.is_dir() {
            items.push(name);
            continue;
        }
        for sub in fsutil::list_names(&entry.path())? {
            items.push(format!("{name}/{sub}"));
        }
    }
    Ok(items)
}
