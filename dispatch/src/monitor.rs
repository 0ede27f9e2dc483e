//! The monitor: what each stage holds and what looks wrong — work nobody picked up (no
//! dispatcher running), jobs that never started, too much queued, silent capture sites.

use std::io;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;

use crate::claim::{self, ClaimState};
use crate::config::Config;
use crate::fsutil::list_names;
use crate::layout::{list_items, Spool, StageDirs};
use crate::sys;

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
    /// Of those, jobs with no start marker (queued or never started).
    pub not_started: usize,
    /// Items waiting for a retry.
    pub retrying: usize,
    /// Items given up.
    pub failed: usize,
    /// Items whose job succeeded but whose results could not all be put in place.
    pub stuck: usize,
    /// Entries of its input directories quarantined (not regular files, bad names).
    pub quarantined: usize,
}

/// The whole picture.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Status {
    /// Unix time of the report.
    pub time: f64,
    /// Per stage.
    pub stages: Vec<StageStatus>,
    /// What needs attention, one line each.
    pub problems: Vec<String>,
    /// Everything quarantined, with why.
    pub quarantine: Vec<crate::quarantine::Reason>,
}

fn age_secs(path: &Path) -> f64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

fn stage_status(
    config: &Config,
    stage: &str,
    dirs: &StageDirs,
    inputs: &[(std::path::PathBuf, String)],
) -> io::Result<StageStatus> {
    let mut s = StageStatus {
        stage: stage.to_owned(),
        paused: dirs.paused.exists(),
        ..Default::default()
    };
    let claimed: std::collections::HashSet<String> =
        list_items(&dirs.claims)?.into_iter().collect();
    for item in &claimed {
        let Some(c) = claim::read(&dirs.claim(item))? else {
            continue;
        };
        match c.state {
            ClaimState::Active
                if !dirs.marker(&c.job.job_id).exists() && !dirs.record(&c.job.job_id).exists() =>
            {
                s.active += 1;
                if sys::now() - c.claimed_at > config.monitor.start_timeout.as_secs_f64() {
                    s.not_started += 1;
                }
            }
            ClaimState::Active | ClaimState::Done => s.active += 1,
            ClaimState::Stuck => s.stuck += 1,
            ClaimState::Waiting => s.retrying += 1,
            ClaimState::Failed => s.failed += 1,
        }
    }
    for (path, item) in inputs.iter().filter(|(_, i)| !claimed.contains(i)) {
        let _ = item;
        s.waiting_files += 1;
        s.oldest_waiting_secs = s.oldest_waiting_secs.max(age_secs(path));
    }
    Ok(s)
}

/// Collects the status of every stage and the problems seen.
pub fn status(config: &Config) -> io::Result<Status> {
    let spool = Spool::new(&config.spool);
    let mut st = Status {
        time: sys::now(),
        ..Default::default()
    };
    let mut raw = Vec::new();
    for site in &config.sites {
        let names = list_names(&spool.raw(site))?;
        let traces: Vec<_> = names
            .into_iter()
            .filter(|n| !n.ends_with(".json"))
            .collect();
        let newest = traces
            .iter()
            .map(|n| age_secs(&spool.raw(site).join(n)))
            .fold(f64::INFINITY, f64::min);
        let dir_age = age_secs(&spool.raw(site));
        if traces.is_empty() && dir_age > config.monitor.silent_after.as_secs_f64()
            || newest.is_finite() && newest > config.monitor.silent_after.as_secs_f64()
        {
            st.problems.push(format!(
                "site {site}: no new raw file for {:.0} s (capture host silent?)",
                newest.min(dir_age)
            ));
        }
        raw.extend(
            traces
                .into_iter()
                .map(|n| (spool.raw(site).join(&n), format!("{site}/{n}"))),
        );
    }
    let mut scrub = stage_status(config, "scrub", &spool.scrub_dirs(), &raw)?;
    for site in &config.sites {
        let found = crate::quarantine::list(&spool.scrub_quarantine(site))?;
        scrub.quarantined += found.len();
        st.quarantine.extend(found);
    }
    st.stages.push(scrub);
    for (user, cfg) in &config.users {
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
        let mut s = stage_status(
            config,
            &format!("user/{user}"),
            &spool.user_dirs(user),
            &inputs,
        )?;
        let found = crate::quarantine::list(&spool.user_quarantine(user))?;
        s.quarantined = found.len();
        st.quarantine.extend(found);
        st.stages.push(s);
    }
    for s in &st.stages {
        if s.waiting_files > 0
            && s.oldest_waiting_secs > config.monitor.stale_after.as_secs_f64()
            && !s.paused
        {
            st.problems.push(format!(
                "{}: {} files waiting, oldest {:.0} s: is its dispatcher running?",
                s.stage, s.waiting_files, s.oldest_waiting_secs
            ));
        }
        if s.not_started > 0 {
            st.problems.push(format!(
                "{}: {} jobs submitted but not started",
                s.stage, s.not_started
            ));
        }
        if s.active >= config.queue_limit {
            st.problems.push(format!(
                "{}: {} jobs queued, over the limit of {}",
                s.stage, s.active, config.queue_limit
            ));
        }
        if s.failed > 0 {
            st.problems
                .push(format!("{}: {} files given up", s.stage, s.failed));
        }
        if s.stuck > 0 {
            st.problems.push(format!(
                "{}: {} files processed but not put in place (lander jobs list --state stuck)",
                s.stage, s.stuck
            ));
        }
        if s.quarantined > 0 {
            st.problems.push(format!(
                "{}: {} entries quarantined (not regular files or bad names)",
                s.stage, s.quarantined
            ));
        }
    }
    Ok(st)
}

/// A static HTML page of a status.
pub fn html(st: &Status) -> String {
    let mut out = String::from(
        "<!doctype html><meta charset=utf-8><title>LANDER status</title>\n<h1>LANDER status</h1>\n",
    );
    out += &format!(
        "<p>at {:.0} (Unix time)</p>\n<h2>Problems</h2>\n<ul>\n",
        st.time
    );
    for p in &st.problems {
        out += &format!("<li>{}</li>\n", escape(p));
    }
    if st.problems.is_empty() {
        out += "<li>none</li>\n";
    }
    out += "</ul>\n<h2>Stages</h2>\n<table border=1>\n<tr><th>stage<th>paused<th>waiting files<th>oldest (s)<th>active<th>not started<th>retrying<th>failed</tr>\n";
    for s in &st.stages {
        out += &format!(
            "<tr><td>{}<td>{}<td>{}<td>{:.0}<td>{}<td>{}<td>{}<td>{}</tr>\n",
            escape(&s.stage),
            s.paused,
            s.waiting_files,
            s.oldest_waiting_secs,
            s.active,
            s.not_started,
            s.retrying,
            s.failed
        );
    }
    out += "</table>\n<h2>Quarantine</h2>\n<ul>\n";
    for q in &st.quarantine {
        out += &format!(
            "<li>{} {}/{}: {}</li>\n",
            escape(&q.stage),
            escape(&q.dir.to_string_lossy()),
            escape(&q.name),
            escape(&q.reason)
        );
    }
    out + "</ul>\n"
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
