//! Claims: the file that says who works on an item, taken with an atomic create.
//!
//! A claim is created with link-based `O_EXCL` semantics (exactly one winner, also across
//! hosts on NFS) and names the current job attempt. A claim whose job is lost or due for a
//! retry is taken over generation by generation: the taker first creates a marker named after
//! the old job (again exactly one winner), checks the claim still names that job, then
//! replaces the claim. No locks, no flock.
//!
//! The first generation of a claim also holds the job spec of the first attempt
//! ([`try_claim_with_spec`]); a job that finishes well needs no further generation: its results
//! are put in place idempotently and the claim is released.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{create_excl, remove_if_exists, write_json_atomic};
use crate::record::{read_json, JobIdentity, JobSpec};

/// The claim on one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The job attempt that owns the item now.
    #[serde(flatten)]
    pub job: JobIdentity,
    /// Host of the dispatcher that made this claim generation.
    pub host: String,
    /// Pid of that dispatcher.
    pub pid: u32,
    /// Unix time this generation was made.
    pub claimed_at: f64,
    /// `active` (the job is queued or running), `waiting` (retry after `not_before`) or
    /// `failed` (given up; `lander jobs retry` revives it).
    pub state: ClaimState,
    /// Earliest time of the next attempt, when waiting.
    #[serde(default)]
    pub not_before: f64,
    /// Why the last attempt did not succeed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The identity of the file the item was when claimed (its content digest and inode), so
    /// that results are never taken for another file under the same name.
    #[serde(default)]
    pub identity: Option<Identity>,
}

/// A file's identity: its content digest, and the inode it was found as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// BLAKE3 of the content, hex.
    pub digest: String,
    /// Device of the inode.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Identity {
    /// Whether `meta` is the inode this identity was taken from.
    pub fn same_inode(&self, meta: &std::fs::Metadata) -> bool {
        use std::os::unix::fs::MetadataExt;
        meta.dev() == self.dev && meta.ino() == self.ino
    }
}

/// The state of a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimState {
    /// The job is queued or running.
    Active,
    /// Waiting for a retry.
    Waiting,
    /// Given up.
    Failed,
    /// The job succeeded; its results are being put in place.
    Done,
    /// The job succeeded, but putting its results in place failed (the reason says why: a
    /// user's directory, a name taken by another file); each pass tries again.
    Stuck,
}

impl Claim {
    /// A fresh, active claim for attempt `attempt` of `job_id`.
    pub fn new(stage: &str, item: &str, job_id: String, attempt: u32) -> Claim {
        Claim {
            job: JobIdentity {
                job_id,
                stage: stage.to_owned(),
                item: item.to_owned(),
                attempt,
            },
            host: crate::sys::hostname().to_owned(),
            pid: std::process::id(),
            claimed_at: crate::sys::now(),
            state: ClaimState::Active,
            not_before: 0.0,
            reason: None,
            identity: None,
        }
    }

    /// Whether the claim's job may run.
    pub fn is_active(&self) -> bool {
        self.state == ClaimState::Active
    }
}

/// Takes the claim at `path` if nobody holds it.
pub fn try_claim(path: &Path, claim: &Claim) -> io::Result<bool> {
    let bytes = serde_json::to_vec(claim).map_err(io::Error::other)?;
    create_excl(path, &bytes)
}

/// Takes the claim at `path` if nobody holds it, with the job spec of its first attempt in the
/// same file: the claim is then also the spec the job wrapper reads, so a fresh item costs one
/// state file, not two. The document holds the fields of both ([`Claim`] and
/// [`JobSpec`] share `job_id`, `stage`, `item` and `attempt`, and each ignores the other's);
/// a later generation of the claim carries no spec, so a stale job that reads it steps aside.
pub fn try_claim_with_spec(path: &Path, claim: &Claim, spec: &JobSpec) -> io::Result<bool> {
    let mut doc = serde_json::to_value(spec).map_err(io::Error::other)?;
    let claim_fields = serde_json::to_value(claim).map_err(io::Error::other)?;
    if let (Some(doc), serde_json::Value::Object(fields)) = (doc.as_object_mut(), claim_fields) {
        doc.extend(fields);
    }
    let bytes = serde_json::to_vec(&doc).map_err(io::Error::other)?;
    create_excl(path, &bytes)
}

/// Reads a claim; `None` if there is none.
pub fn read(path: &Path) -> io::Result<Option<Claim>> {
    read_json(path)
}

/// Replaces the claim held by this process (state changes of its own generation).
pub fn rewrite(path: &Path, claim: &Claim, fsync: bool) -> io::Result<()> {
    write_json_atomic(path, claim, fsync)
}

/// Moves the claim from `old` (as read) to `next`, if no other process changed it first.
///
/// Every change of a claim by whoever finds it (finishing, retrying, taking over a lost job)
/// goes through here, so that of several dispatchers acting on the same view exactly one acts.
pub fn takeover(path: &Path, old: &Claim, next: &Claim, fsync: bool) -> io::Result<bool> {
    takeover_checked(path, old, next, fsync, || Ok(true))
}

/// As [`takeover`], and only if `recheck` still holds once the takeover marker is taken: the
/// evidence a verdict rests on (no run record, no new heartbeat) is read again where no other
/// dispatcher can act on the claim meanwhile.
pub fn takeover_checked(
    path: &Path,
    old: &Claim,
    next: &Claim,
    fsync: bool,
    recheck: impl FnOnce() -> io::Result<bool>,
) -> io::Result<bool> {
    let marker = takeover_marker(path, old);
    let owner = format!("{}:{}", crate::sys::hostname(), std::process::id());
    if !create_excl(&marker, owner.as_bytes())?
        && (!remove_stale_marker(&marker)? || !create_excl(&marker, owner.as_bytes())?)
    {
        return Ok(false);
    }
    let result = match read(path) {
        Ok(Some(current)) if same_generation(&current, old) => match recheck() {
            Ok(true) => rewrite(path, next, fsync).map(|()| true),
            other => other,
        },
        Ok(_) => Ok(false),
        Err(e) => Err(e),
    };
    remove_if_exists(&marker)?;
    result
}

/// Removes a takeover marker left by a process that died between making and removing it
/// (same host: its pid does not run, a zombie included; another host: older than a minute).
/// Returns whether it did.
pub fn remove_stale_marker(marker: &Path) -> io::Result<bool> {
    let Ok(owner) = std::fs::read_to_string(marker) else {
        return Ok(false);
    };
    let (host, pid) = owner.rsplit_once(':').unwrap_or(("", ""));
    let stale = if host == crate::sys::hostname() {
        pid.parse().is_ok_and(|pid| !crate::sys::running(pid))
    } else {
        std::fs::metadata(marker)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 60)
    };
    if stale {
        remove_if_exists(marker)?;
    }
    Ok(stale)
}

fn same_generation(a: &Claim, b: &Claim) -> bool {
    a.job.job_id == b.job.job_id && a.state == b.state && a.not_before == b.not_before
}

/// `.<claim name>.<digest of the job id>.<state>.takeover`: short enough for any item name
/// the spool takes.
fn takeover_marker(path: &Path, old: &Claim) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let state = format!("{:?}", old.state).to_ascii_lowercase();
    let job = blake3::hash(old.job.job_id.as_bytes()).to_hex();
    path.with_file_name(format!(".{name}.{}.{state}.takeover", &job[..16]))
}

/// Gives the item up (its work is finished).
pub fn release(path: &Path) -> io::Result<()> {
    remove_if_exists(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(job: &str) -> Claim {
        Claim::new("scrub", "s/f.pcap", job.to_owned(), 1)
    }

    #[test]
    fn only_one_claim_wins() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pcap");
        assert!(try_claim(&p, &claim("a")).unwrap());
        assert!(!try_claim(&p, &claim("b")).unwrap());
        assert_eq!(read(&p).unwrap().unwrap().job.job_id, "a");
    }

    #[test]
    fn takeover_of_one_generation_happens_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pcap");
        let a = claim("a");
        try_claim(&p, &a).unwrap();
        assert!(takeover(&p, &a, &claim("b"), false).unwrap());
        // A slow second taker of the same generation finds the claim moved on.
        assert!(!takeover(&p, &a, &claim("c"), false).unwrap());
        assert_eq!(read(&p).unwrap().unwrap().job.job_id, "b");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no marker left"
        );
    }

    #[test]
    fn state_change_of_the_same_job_is_a_new_generation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pcap");
        let a = claim("a");
        try_claim(&p, &a).unwrap();
        let waiting = Claim {
            state: ClaimState::Waiting,
            not_before: 5.0,
            ..a.clone()
        };
        assert!(takeover(&p, &a, &waiting, false).unwrap());
        // Someone still holding the old active view cannot act on it any more.
        assert!(!takeover(&p, &a, &claim("x"), false).unwrap());
        assert!(takeover(&p, &waiting, &claim("b"), false).unwrap());
    }

    #[test]
    fn marker_of_a_dead_taker_does_not_block_forever() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pcap");
        let a = claim("a");
        try_claim(&p, &a).unwrap();
        let host = crate::sys::hostname();
        std::fs::write(takeover_marker(&p, &a), format!("{host}:{}", u32::MAX - 1)).unwrap();
        assert!(takeover(&p, &a, &claim("b"), false).unwrap());
    }

    #[test]
    fn a_claim_with_a_spec_reads_as_both() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pcap");
        let c = claim("a");
        let spec = JobSpec {
            job: JobIdentity {
                job_id: "a".into(),
                stage: "scrub".into(),
                item: "s/f.pcap".into(),
                attempt: 1,
            },
            argv: vec!["/bin/true".into()],
            env: Default::default(),
            stdout: "o".into(),
            stderr: "e".into(),
            start_marker: "m".into(),
            record: "r".into(),
            claim: p.clone(),
            timeout_secs: 1.0,
            grace_secs: 1.0,
            counts_from: None,
            fsync: false,
            digest: None,
            cancel_request: None,
            heartbeat: None,
            heartbeat_secs: 0.0,
            run_as: None,
        };
        assert!(try_claim_with_spec(&p, &c, &spec).unwrap());
        assert!(!try_claim_with_spec(&p, &claim("b"), &spec).unwrap());
        // (Times are compared as read: JSON floats need not round-trip to the last bit.)
        let back = read(&p).unwrap().unwrap();
        assert_eq!(
            (back.job.job_id, back.state),
            (c.job.job_id.clone(), c.state)
        );
        let as_spec: JobSpec = read_json(&p).unwrap().unwrap();
        assert_eq!(as_spec, spec);
        // The next generation carries no spec.
        let waiting = Claim {
            state: ClaimState::Waiting,
            ..c.clone()
        };
        assert!(takeover(&p, &c, &waiting, false).unwrap());
        assert!(read_json::<JobSpec>(&p).is_err());
    }

    #[test]
    fn takeover_of_a_released_claim_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.pcap");
        let a = claim("a");
        try_claim(&p, &a).unwrap();
        release(&p).unwrap();
        assert!(!takeover(&p, &a, &claim("b"), false).unwrap());
        assert!(read(&p).unwrap().is_none());
    }
}
