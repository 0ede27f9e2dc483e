//! One stage's state from its directories: waiting files, claims by state, quarantine.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use crate::claim::{self, ClaimState};
use crate::config::{Config, User};
use crate::fsutil::list_names;
use crate::layout::{list_items, Spool, StageDirs};
use crate::sys;

use super::age_secs;

/// One stage's state, from the filesystem.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageStatus {
    /// `scrub` or `user/<name>`.
    pub stage: String,
    /// Whether it is paused.
    pub paused: bool,
    /// Input files with no claim yet.
    pub waiting_files: usize,
    /// Age in seconds of the oldest of them.
    pub oldest_waiting_secs: f64,
    /// Jobs claimed and running or queued.
    pub active: usize,
    /// Of those, jobs with no start marker yet (queued).
    pub pending: usize,
    /// Of those, jobs submitted and not started for longer than `monitor.start_timeout_secs`.
    pub not_started: usize,
    /// Slurm's reasons for those (`Priority`, `Resources`, ...) with how many jobs have each.
    pub pending_reasons: Vec<(String, usize)>,
    /// Job ids of those.
    #[serde(skip)]
    pub late_jobs: Vec<String>,
    /// Items waiting for a retry.
    pub retrying: usize,
    /// Items given up.
    pub failed: usize,
    /// Items whose job succeeded but whose results could not all be put in place.
    pub stuck: usize,
    /// Entries of its input directories quarantined (not regular files, bad names).
    pub quarantined: usize,
}

pub(super) fn stage_status(
    config: &Config,
    stage: &str,
    dirs: &StageDirs,
    inputs: &[(PathBuf, String)],
) -> io::Result<StageStatus> {
    let mut s = StageStatus {
        stage: stage.to_owned(),
        paused: dirs.paused.exists(),
        ..Default::default()
    };
    let claimed: HashSet<String> = list_items(&dirs.claims)?.into_iter().collect();
    for item in &claimed {
        let Some(c) = claim::read(&dirs.claim(item))? else {
            continue;
        };
        match c.state {
            ClaimState::Active
                if !dirs.marker(&c.job_id).exists() && !dirs.record(&c.job_id).exists() =>
            {
                s.active += 1;
                s.pending += 1;
                if sys::now() - c.claimed_at > config.monitor.start_timeout.as_secs_f64() {
                    s.not_started += 1;
                    s.late_jobs.push(c.job_id.clone());
                }
            }
            ClaimState::Active | ClaimState::Done => s.active += 1,
            ClaimState::Stuck => s.stuck += 1,
            ClaimState::Waiting => s.retrying += 1,
            ClaimState::Failed => s.failed += 1,
        }
    }
    for (path, _) in inputs.iter().filter(|(_, i)| !claimed.contains(i)) {
        s.waiting_files += 1;
        s.oldest_waiting_secs = s.oldest_waiting_secs.max(age_secs(path));
    }
    Ok(s)
}

/// A user's stage, and what its quarantine holds.
pub(super) fn user_stage(
    config: &Config,
    spool: &Spool,
    user: &str,
    cfg: &User,
) -> io::Result<(StageStatus, Vec<crate::quarantine::Reason>)> {
    let mut inputs = Vec::new();
    for site in &cfg.subscriptions {
        let incoming = spool.incoming(user).join(site);
        let names = list_names(&incoming)?;
        inputs.extend(
            names
                .into_iter()
                .filter(|n| !n.ends_with(".json"))
                .map(|n| (incoming.join(&n), format!("{site}/{n}"))),
        );
    }
    let stage = format!("user/{user}");
    let mut s = stage_status(config, &stage, &spool.user_dirs(user), &inputs)?;
    let found = crate::quarantine::list(&spool.user_quarantine(user))?;
    s.quarantined = found.len();
    Ok((s, found))
}
