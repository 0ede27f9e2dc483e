//! Building engines from a configuration, and job control: list, show, logs, cancel, retry,
//! pause, resume. Control acts on the filesystem (claims, markers, flag files), so it works
//! from any host and whether or not a dispatcher is running.

use std::io;
use std::path::{Path, PathBuf};

use crate::backend::{Backend, LocalBackend, SlurmBackend};
use crate::claim::{self, Claim, ClaimState};
use crate::config::{BackendKind, Config};
use crate::engine::{Dispatcher, Options, PassError};
use crate::fsutil;
use crate::layout::{Spool, StageDirs};
use crate::ledger::{JobRow, Ledger, LedgerError};
use crate::record::{read_json, JobRecord, StartMarker};
use crate::scrub::ScrubStage;
use crate::sys;
use crate::user::UserStage;

/// A control request that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A file operation failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The history database failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The job or stage is not known.
    #[error("{0}")]
    NotFound(String),
    /// The job is not in a state that allows the request.
    #[error("{0}")]
    Refused(String),
}

/// The engine options a configuration asks for.
pub fn options(config: &Config) -> Options {
    Options {
        fsync: config.fsync,
        queue_limit: config.queue_limit,
        lost_grace: config.monitor.lost_grace,
        grace: config.backend.grace,
        rescan: config.monitor.rescan,
        heartbeat: config.backend.heartbeat,
        attr_cache: config
            .backend
            .attr_cache
            .unwrap_or_else(|| crate::heartbeat::attr_cache_of(&config.spool)),
    }
}

/// The backend a configuration asks for, running jobs through `wrapper`.
pub fn backend(config: &Config, wrapper: Vec<String>) -> Box<dyn Backend> {
    match config.backend.kind {
        BackendKind::Local => Box::new(LocalBackend::new(wrapper, config.backend.slots)),
        BackendKind::Slurm => Box::new(SlurmBackend::new(wrapper, config.backend.slurm.clone())),
    }
}

/// The scrub engine: jobs run through `wrapper` (argv; the spec path is appended).
pub fn scrub_engine(
    config: &Config,
    wrapper: Vec<String>,
    default_scrub: PathBuf,
) -> Result<Dispatcher<ScrubStage>, PassError> {
    let backend = backend(config, wrapper);
    let ledger = Ledger::open(&config.state_db)?;
    ledger.set_durable(config.fsync)?;
    let stage = ScrubStage::new(config.clone(), default_scrub)?;
    Ok(Dispatcher::new(stage, backend, ledger, options(config))?)
}

/// The engine of user `user`.
pub fn user_engine(
    config: &Config,
    user: &str,
    wrapper: Vec<String>,
) -> Result<Dispatcher<UserStage>, PassError> {
    let backend = backend(config, wrapper);
    let ledger = Ledger::open(&config.user_db(user))?;
    ledger.set_durable(config.fsync)?;
    let stage = UserStage::new(config, user)?;
    Ok(Dispatcher::new(stage, backend, ledger, options(config))?)
}

/// A stage named on the command line: `scrub` or `user/<name>`.
pub fn stage_dirs(config: &Config, stage: &str) -> Result<StageDirs, ControlError> {
    config.stage_dirs(stage).ok_or_else(|| {
        ControlError::NotFound(format!("no stage {stage:?} (stages: scrub, user/<name>)"))
    })
}

/// The history database of a stage.
pub fn stage_db(config: &Config, stage: &str) -> PathBuf {
    match stage.strip_prefix("user/") {
        Some(user) => config.user_db(user),
        None => config.state_db.clone(),
    }
}

/// Pauses a stage: running jobs go on, nothing new starts.
pub fn pause(config: &Config, stage: &str) -> Result<(), ControlError> {
    let dirs = stage_dirs(config, stage)?;
    if let Some(dir) = dirs.paused.parent() {
        std::fs::create_dir_all(dir)?;
    }
    fsutil::write_atomic(
        &dirs.paused,
        format!("paused at {}\n", sys::now()).as_bytes(),
        config.fsync,
    )?;
    Ok(())
}

/// Resumes a paused stage.
pub fn resume(config: &Config, stage: &str) -> Result<(), ControlError> {
    Ok(fsutil::remove_if_exists(
        &stage_dirs(config, stage)?.paused,
    )?)
}

/// Whether a stage is paused.
pub fn is_paused(config: &Config, stage: &str) -> Result<bool, ControlError> {
    Ok(stage_dirs(config, stage)?.paused.exists())
}

/// Everything known about one job attempt.
#[derive(Debug, Clone, serde::Serialize)]
pub struct JobInfo {
    /// The history row.
    pub row: JobRow,
    /// Its run record, if it wrote one.
    pub record: Option<JobRecord>,
    /// Its start marker, while it runs.
    pub marker: Option<StartMarker>,
    /// The item's claim, if the item is still being worked on.
    pub claim: Option<Claim>,
    /// Standard output file.
    pub stdout: PathBuf,
    /// Standard error file.
    pub stderr: PathBuf,
}

/// Finds a job in the scrub history or any user's.
pub fn find(config: &Config, job_id: &str) -> Result<JobInfo, ControlError> {
    let dbs = std::iter::once(config.state_db.clone())
        .chain(config.users.keys().map(|u| config.user_db(u)));
    for db in dbs.filter(|d| d.exists()) {
        if let Some(row) = Ledger::open(&db)?.get(job_id)? {
            return info(config, row);
        }
    }
    Err(ControlError::NotFound(format!(
        "no job {job_id:?} in the history"
    )))
}

fn info(config: &Config, row: JobRow) -> Result<JobInfo, ControlError> {
    let dirs = stage_dirs(config, &row.stage)?;
    Ok(JobInfo {
        record: read_json(&dirs.record(&row.job_id))?,
        // A start marker is empty for a moment after its exclusive create.
        marker: read_json(&dirs.marker(&row.job_id)).unwrap_or(None),
        claim: claim::read(&dirs.claim(&row.item))?,
        stdout: dirs.stdout(&row.job_id),
        stderr: dirs.stderr(&row.job_id),
        row,
    })
}

/// Jobs from the history of `stage` (all stages when `None`), newest first.
pub fn list(
    config: &Config,
    stage: Option<&str>,
    state: Option<&str>,
    limit: usize,
) -> Result<Vec<JobRow>, ControlError> {
    let stages: Vec<String> = match stage {
        Some(s) => vec![s.to_owned()],
        None => std::iter::once("scrub".to_owned())
            .chain(config.users.keys().map(|u| format!("user/{u}")))
            .collect(),
    };
    let mut rows = Vec::new();
    for s in &stages {
        let db = stage_db(config, s);
        if db.exists() {
            rows.extend(Ledger::open(&db)?.list(Some(s), state, limit)?);
        }
    }
    rows.sort_by(|a, b| {
        time_of(b)
            .total_cmp(&time_of(a))
            .then_with(|| a.job_id.cmp(&b.job_id))
    });
    rows.truncate(limit);
    Ok(rows)
}

fn time_of(r: &JobRow) -> f64 {
    r.ended.or(r.started).or(r.submitted).unwrap_or(0.0)
}

/// Cancels a job: a running one is ended (TERM to its group, then KILL) and its record says
/// so; a queued or waiting one is marked failed.
pub fn cancel(config: &Config, job_id: &str) -> Result<String, ControlError> {
    let info = find(config, job_id)?;
    let dirs = stage_dirs(config, &info.row.stage)?;
    let path = dirs.claim(&info.row.item);
    let Some(c) = info.claim.filter(|c| c.job_id == job_id) else {
        return Err(ControlError::Refused(format!(
            "{job_id} is not queued or running"
        )));
    };
    if c.state == ClaimState::Active {
        // The job's end is a cancel (not a kill to retry) only with this note in place first.
        let note = dirs.cancel_request(job_id);
        crate::fsutil::write_json_atomic(&note, &sys::hostname(), config.fsync)?;
    }
    if let Some(done) = cancel_slurm_job(config, &info.row, &c, info.marker.is_some())? {
        return Ok(done);
    }
    match (&c.state, &info.marker) {
        (ClaimState::Active, Some(m)) => {
            if m.host != sys::hostname() {
                return Err(ControlError::Refused(format!(
                    "{job_id} runs on {}: cancel it there",
                    m.host
                )));
            }
            if sys::alive(m.pid, m.pid_start) {
                sys::kill_group(m.pid, libc::SIGTERM)?;
            }
            Ok(format!("{job_id}: asked to stop"))
        }
        (ClaimState::Active | ClaimState::Waiting, _) => {
            let next = Claim {
                state: ClaimState::Failed,
                reason: Some("cancelled".into()),
                ..c.clone()
            };
            if !claim::takeover(&path, &c, &next, config.fsync)? {
                return Err(ControlError::Refused(format!(
                    "{job_id} changed meanwhile: try again"
                )));
            }
            Ok(format!("{job_id}: cancelled before it started"))
        }
        _ => Err(ControlError::Refused(format!(
            "{job_id} is not queued or running"
        ))),
    }
}

/// Cancels an active job through Slurm (`scancel`), from any host; a started job then ends
/// as cancelled, one not started yet is marked failed by the caller. `None` when the job is
/// not a Slurm job.
fn cancel_slurm_job(
    config: &Config,
    row: &JobRow,
    c: &Claim,
    started: bool,
) -> Result<Option<String>, ControlError> {
    let (BackendKind::Slurm, Some(id), ClaimState::Active) =
        (config.backend.kind, row.backend_id.as_deref(), &c.state)
    else {
        return Ok(None);
    };
    SlurmBackend::new(Vec::new(), config.backend.slurm.clone())
        .cancel(id)
        .map_err(io::Error::other)?;
    Ok(started.then(|| format!("{}: asked Slurm to cancel job {id}", row.job_id)))
}

/// Queues another attempt of a job's item that was given up.
pub fn retry(config: &Config, job_id: &str) -> Result<String, ControlError> {
    let info = find(config, job_id)?;
    let item = info.row.item.clone();
    let dirs = stage_dirs(config, &info.row.stage)?;
    if let Some(c) = info.claim {
        if c.state != ClaimState::Failed {
            return Err(ControlError::Refused(format!(
                "{item} is still being worked on ({})",
                c.job_id
            )));
        }
        let next = Claim {
            state: ClaimState::Waiting,
            not_before: 0.0,
            ..c.clone()
        };
        if !claim::takeover(&dirs.claim(&item), &c, &next, config.fsync)? {
            return Err(ControlError::Refused(format!(
                "{item} changed meanwhile: try again"
            )));
        }
        return Ok(format!("{item}: queued again"));
    }
    let Some(user) = info.row.stage.strip_prefix("user/") else {
        return Err(ControlError::Refused(format!("{item} is not failed")));
    };
    requeue_user_file(config, user, &item)
}

fn requeue_user_file(config: &Config, user: &str, item: &str) -> Result<String, ControlError> {
    let spool = Spool::new(&config.spool);
    let failed = spool.failed(user).join(item);
    if !fsutil::exists(&failed) {
        return Err(ControlError::Refused(format!(
            "{item} is not in {}",
            spool.failed(user).display()
        )));
    }
    let incoming = spool.incoming(user).join(item);
    if let Some(dir) = incoming.parent() {
        std::fs::create_dir_all(dir)?;
    }
    fsutil::remove_if_exists(&spool.finished_marker(user, item))?;
    let manifest = lander_spool::manifest::manifest_path(&failed);
    if fsutil::exists(&manifest) {
        fsutil::move_once(&manifest, &lander_spool::manifest::manifest_path(&incoming))?;
    }
    fsutil::move_once(&failed, &incoming)?;
    fsutil::remove_if_exists(&spool.failed(user).join(format!("{item}.reason")))?;
    Ok(format!("{item}: back in {}", incoming.display()))
}

/// The contents of a job's log files.
pub fn logs(
    config: &Config,
    job_id: &str,
) -> Result<(PathBuf, String, PathBuf, String), ControlError> {
    let info = find(config, job_id)?;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Ok((
        info.stdout.clone(),
        read(&info.stdout),
        info.stderr.clone(),
        read(&info.stderr),
    ))
}
