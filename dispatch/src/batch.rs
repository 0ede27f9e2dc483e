//! Array batches: many job attempts handed to the batch system in one submission.
//!
//! Before a dispatcher calls the batch system it writes the batch file (its intent) durably
//! under the stage's `batches/` directory: a unique batch name, which is also the name the batch
//! system knows the array by, and the spec of each task in order. Task `i` of the array reads
//! entry `i` (the job wrapper is given the batch file and picks its entry from
//! `SLURM_ARRAY_TASK_ID`). Once the batch system has answered, the file is rewritten with the
//! array's id. A dispatcher stopped between the two finds the array again by its name and
//! adopts it; one that finds neither the id nor the name in the queue after a grace knows the
//! submission never happened.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{self, write_json_atomic};
use crate::record::read_json;
use crate::sys;

/// The environment variable holding an array task's index (Slurm's).
pub const TASK_ENV: &str = "SLURM_ARRAY_TASK_ID";

/// One submission of several job attempts as one array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The name the batch system knows the array by (unique per batch).
    pub array_name: String,
    /// The stage.
    pub stage: String,
    /// The tasks, by index.
    pub tasks: Vec<Task>,
    /// Host of the dispatcher that wrote it (machine-id and host name).
    pub host: String,
    /// Its pid.
    pub pid: u32,
    /// Unix time of the intent, by the writer's clock.
    pub created: f64,
    /// The batch system's id of the array, once it answered.
    pub array_id: Option<String>,
}

/// One task of a batch: the attempt it runs and where its spec is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The job attempt.
    pub job_id: String,
    /// Its spec (the claim itself for a first attempt).
    pub spec: PathBuf,
}

impl Batch {
    /// A new batch of `tasks` for `stage`, with a fresh unique name.
    pub fn new(stage: &str, tasks: Vec<Task>) -> Batch {
        Batch {
            array_name: array_name(stage),
            stage: stage.to_owned(),
            tasks,
            host: sys::host_id().to_owned(),
            pid: std::process::id(),
            created: sys::now(),
            array_id: None,
        }
    }

    /// The batch system's id of task `index` once the array's id is known (`<array>_<index>`).
    pub fn task_id(&self, index: usize) -> Option<String> {
        self.array_id.as_ref().map(|a| format!("{a}_{index}"))
    }

    /// The file of this batch in `dir`.
    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.json", self.array_name))
    }

    /// Writes the batch file (always synced: it is the record of an intent).
    pub fn write(&self, dir: &Path) -> io::Result<PathBuf> {
        let path = self.path_in(dir);
        write_json_atomic(&path, self, true)?;
        Ok(path)
    }
}

/// A batch name: `lander.<stage>.<nonce>`, characters other than `[A-Za-z0-9._-]` as `_`.
pub fn array_name(stage: &str) -> String {
    let stage: String = stage
        .chars()
        .take(40)
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    format!("lander.{stage}.{}{}", sys::nonce(), sys::nonce())
}

/// Every batch file in `dir` (a missing directory has none). A file that cannot be read as a
/// batch is reported and skipped: one bad file never stops a pass.
pub fn read_all(dir: &Path) -> io::Result<Vec<(PathBuf, Batch)>> {
    let mut out = Vec::new();
    let names = match fsutil::list_names(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for name in names.into_iter().filter(|n| n.ends_with(".json")) {
        let path = dir.join(&name);
        match read_json::<Batch>(&path) {
            Ok(Some(b)) => out.push((path, b)),
            Ok(None) => {}
            Err(e) => tracing::warn!("skipping batch file: {e}"),
        }
    }
    Ok(out)
}

/// The spec path of the array task running this process, when `path` is a batch file;
/// `Ok(Some(path))` unchanged when it is not one, `Ok(None)` when the batch is gone (settled
/// and removed: the task has nothing left to do).
pub fn resolve_spec(path: &Path) -> io::Result<Option<PathBuf>> {
    let doc: Option<serde_json::Value> = match read_json(path) {
        Err(e) if e.kind() == io::ErrorKind::InvalidData => return Ok(Some(path.to_owned())),
        other => other?,
    };
    let Some(doc) = doc else {
        return Ok(None);
    };
    if doc.get("array_name").is_none() {
        return Ok(Some(path.to_owned()));
    }
    let batch: Batch = serde_json::from_value(doc).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    let index = task_index(path)?;
    match batch.tasks.get(index) {
        Some(t) => Ok(Some(t.spec.clone())),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: no task {index} in a batch of {}",
                path.display(),
                batch.tasks.len()
            ),
        )),
    }
}

fn task_index(path: &Path) -> io::Result<usize> {
    let raw = std::env::var(TASK_ENV).unwrap_or_default();
    raw.trim().parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: a batch file, but {TASK_ENV} is {raw:?}",
                path.display()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Batch {
        let tasks = (0..n)
            .map(|i| Task {
                job_id: format!("scrub.a{i}.1"),
                spec: PathBuf::from(format!("/s/claims/a{i}")),
            })
            .collect();
        Batch::new("user:alice bob", tasks)
    }

    #[test]
    fn names_are_unique_and_clean() {
        let (a, b) = (batch(1), batch(1));
        assert_ne!(a.array_name, b.array_name);
        assert!(
            a.array_name.starts_with("lander.user_alice_bob."),
            "{}",
            a.array_name
        );
        assert!(a.array_name.len() < 80);
    }

    /// A batch file reads back exactly what was written, its creation time included (JSON
    /// floats are parsed to the nearest double: serde_json's `float_roundtrip`).
    #[test]
    fn a_batch_reads_back_with_its_exact_creation_time() {
        let tmp = tempfile::tempdir().unwrap();
        for created in [
            1796172555.9441957,
            1796172555.9441955,
            0.1,
            1e-7,
            1234567890.123456,
        ] {
            let dir = tmp.path().join(format!("{created}"));
            std::fs::create_dir(&dir).unwrap();
            let mut b = batch(1);
            b.created = created;
            b.write(&dir).unwrap();
            assert_eq!(read_all(&dir).unwrap()[0].1.created, created);
        }
    }

    #[test]
    fn a_task_finds_its_spec_and_a_plain_spec_is_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let mut b = batch(3);
        let path = b.write(tmp.path()).unwrap();
        assert_eq!(
            read_all(tmp.path()).unwrap(),
            vec![(path.clone(), b.clone())]
        );
        std::env::set_var(TASK_ENV, "2");
        assert_eq!(
            resolve_spec(&path).unwrap(),
            Some(PathBuf::from("/s/claims/a2"))
        );
        std::env::set_var(TASK_ENV, "3");
        assert!(resolve_spec(&path).is_err(), "index past the end");
        let plain = tmp.path().join("x.spec.json");
        std::fs::write(&plain, b"{\"job_id\": \"x\"}").unwrap();
        assert_eq!(resolve_spec(&plain).unwrap(), Some(plain.clone()));
        assert_eq!(resolve_spec(&tmp.path().join("gone.json")).unwrap(), None);
        b.array_id = Some("77".into());
        assert_eq!(b.task_id(2).as_deref(), Some("77_2"));
    }
}
