//! The checks: each compares one thing in a [`Status`] with its threshold from `[monitor]`
//! and, when over, yields a [`Problem`] whose id is stable across passes (`<check>:<subject>`),
//! so the same trouble seen again is the same event, not a new one.

use serde::{Deserialize, Serialize};

use crate::config::{Config, MinFree};
use lander_spool::human;

use super::Status;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Needs a look.
    Warning,
    /// Data is or will be lost.
    Critical,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        })
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "warning" => Ok(Severity::Warning),
            "critical" => Ok(Severity::Critical),
            other => Err(format!("unknown severity {other:?}")),
        }
    }
}

/// One problem seen now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable id: `<check>:<subject>`.
    pub id: String,
    /// The check: `silent`, `drops`, `backlog`, `stale`, `starved`, `not_started`, `failed`,
    /// `stuck`, `quarantined`, `disk`, `quota`.
    pub check: String,
    /// What it concerns: a site, a stage (`scrub`, `user/<name>`), `spool`.
    pub subject: String,
    /// How bad.
    pub severity: Severity,
    /// One line for people.
    pub message: String,
    /// The measured value.
    pub value: f64,
    /// The threshold it crossed.
    pub limit: f64,
    /// The user it concerns, if one.
    pub user: Option<String>,
}

struct Found {
    out: Vec<Problem>,
}

impl Found {
    fn add(
        &mut self,
        check: &str,
        subject: &str,
        severity: Severity,
        value: f64,
        limit: f64,
        message: String,
    ) {
        let user = subject.strip_prefix("user/").map(str::to_owned);
        self.out.push(Problem {
            id: format!("{check}:{subject}"),
            check: check.to_owned(),
            subject: subject.to_owned(),
            severity,
            message,
            value,
            limit,
            user,
        });
    }
}

/// Every problem in `st`, critical ones first, then by id.
pub fn evaluate(config: &Config, st: &Status) -> Vec<Problem> {
    let mut f = Found { out: Vec::new() };
    sites(config, st, &mut f);
    stages(config, st, &mut f);
    users(st, &mut f);
    disk(config, st, &mut f);
    let mut out = f.out;
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then_with(|| a.id.cmp(&b.id)));
    out
}

fn sites(config: &Config, st: &Status, f: &mut Found) {
    let m = &config.monitor;
    for s in &st.sites {
        let silent = m.silent_after.as_secs_f64();
        if s.quiet_secs > silent {
            let quiet = if s.quiet_secs.is_finite() {
                format!("for {}", human::duration(s.quiet_secs))
            } else {
                "ever".to_owned()
            };
            let msg = format!(
                "site {}: no heartbeat and no new raw file {quiet} (capture host silent?)",
                s.site
            );
            let value = if s.quiet_secs.is_finite() {
                s.quiet_secs
            } else {
                -1.0
            };
            f.add("silent", &s.site, Severity::Critical, value, silent, msg);
        }
        if s.drop_fraction > m.max_drop_fraction && s.drops > 0 {
            let msg = format!(
                "site {}: capture dropped {} of {} packets ({:.3}%, limit {:.3}%)",
                s.site,
                human::count(s.drops),
                human::count(s.packets + s.drops),
                s.drop_fraction * 100.0,
                m.max_drop_fraction * 100.0
            );
            let (v, l) = (s.drop_fraction, m.max_drop_fraction);
            f.add("drops", &s.site, Severity::Warning, v, l, msg);
        }
    }
}

fn stages(config: &Config, st: &Status, f: &mut Found) {
    let m = &config.monitor;
    for s in &st.stages {
        let name = &s.stage;
        let stale = m.stale_after.as_secs_f64();
        let is_stale = s.waiting_files > 0 && s.oldest_waiting_secs > stale && !s.paused;
        if is_stale {
            let msg = format!(
                "{name}: {} files waiting, oldest {}: is its dispatcher running?",
                s.waiting_files,
                human::duration(s.oldest_waiting_secs)
            );
            f.add(
                "stale",
                name,
                Severity::Warning,
                s.oldest_waiting_secs,
                stale,
                msg,
            );
        }
        if s.waiting_files > m.max_backlog {
            let msg = format!(
                "{name}: backlog of {} files, over the limit of {}",
                human::count(s.waiting_files as u64),
                human::count(m.max_backlog as u64)
            );
            let (v, l) = (s.waiting_files as f64, m.max_backlog as f64);
            f.add("backlog", name, Severity::Warning, v, l, msg);
        }
        let running = s.active.saturating_sub(s.pending);
        let start = m.start_timeout.as_secs_f64();
        // Work waiting past the start timeout with too few jobs on it (when nothing at all
        // took it up past `stale_secs`, `stale` says so already).
        if !s.paused
            && !is_stale
            && s.waiting_files > 0
            && s.oldest_waiting_secs > start
            && running < m.min_running
        {
            let msg = format!(
                "{name}: {running} jobs running while {} files wait (at least {} expected)",
                s.waiting_files, m.min_running
            );
            let (v, l) = (running as f64, m.min_running as f64);
            f.add("starved", name, Severity::Warning, v, l, msg);
        }
        if s.not_started > 0 {
            let mut msg = format!(
                "{name}: {} jobs submitted but not started after {}",
                s.not_started,
                human::duration(start)
            );
            if !s.pending_reasons.is_empty() {
                let why: Vec<String> = s
                    .pending_reasons
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect();
                msg += &format!(" (Slurm says: {})", why.join(", "));
            }
            f.add(
                "not_started",
                name,
                Severity::Warning,
                s.not_started as f64,
                0.0,
                msg,
            );
        }
        if s.active >= config.queue_limit {
            let msg = format!(
                "{name}: {} jobs queued, over the limit of {}",
                s.active, config.queue_limit
            );
            let (v, l) = (s.active as f64, config.queue_limit as f64);
            f.add("queue", name, Severity::Warning, v, l, msg);
        }
        if s.failed > 0 {
            let msg = format!(
                "{name}: {} files given up (lander jobs list --stage {name} --state failed)",
                s.failed
            );
            f.add("failed", name, Severity::Warning, s.failed as f64, 0.0, msg);
        }
        if s.stuck > 0 {
            let msg = format!(
                "{name}: {} files processed but not put in place (lander jobs list --state stuck)",
                s.stuck
            );
            f.add("stuck", name, Severity::Warning, s.stuck as f64, 0.0, msg);
        }
        if s.quarantined > 0 {
            let msg = format!(
                "{name}: {} entries quarantined (not regular files or bad names)",
                s.quarantined
            );
            f.add(
                "quarantined",
                name,
                Severity::Warning,
                s.quarantined as f64,
                0.0,
                msg,
            );
        }
    }
}

fn users(st: &Status, f: &mut Found) {
    for u in st.users.iter().filter(|u| u.over_quota) {
        let quota = u.quota.unwrap_or(0);
        let msg = format!(
            "user/{}: uses {}, over the quota of {}",
            u.user,
            human::bytes(u.bytes),
            human::bytes(quota)
        );
        let subject = format!("user/{}", u.user);
        f.add(
            "quota",
            &subject,
            Severity::Warning,
            u.bytes as f64,
            quota as f64,
            msg,
        );
    }
}

fn disk(config: &Config, st: &Status, f: &mut Found) {
    let Some(d) = st.disk else {
        return;
    };
    let min = config.monitor.min_free;
    if d.below(min) {
        let limit = match min {
            MinFree::Bytes(b) => human::bytes(b),
            MinFree::Percent(p) => format!("{p}%"),
        };
        let msg = format!(
            "spool filesystem: {} free ({:.1}% of {}), below {limit}",
            human::bytes(d.available),
            d.free_percent(),
            human::bytes(d.total)
        );
        let l = match min {
            MinFree::Bytes(b) => b as f64,
            MinFree::Percent(p) => p,
        };
        f.add(
            "disk",
            "spool",
            Severity::Critical,
            d.available as f64,
            l,
            msg,
        );
    }
}
