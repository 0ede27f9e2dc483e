//! The one model of the status page, built from the spool (the truth), the monitor's tables
//! (when problems began, history) and the job histories (throughput, failures). Text, HTML and
//! JSON are renderings of it; nothing is computed while rendering.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags};
use serde::Serialize;

use crate::config::Config;
use crate::monitor::history::{self, Series, Throughput};
use crate::monitor::run::{stage_throughput, MonitorError};
use crate::monitor::store::{Event, Store};
use crate::monitor::{self, DiskStatus, Severity, SiteStatus, StageStatus, UserStatus};
use crate::sys;

/// How far back the charts go.
pub const CHART_SECS: f64 = 86_400.0;

/// Failures listed.
pub const RECENT_FAILURES: usize = 20;

/// An open problem as shown.
#[derive(Debug, Clone, Serialize)]
pub struct OpenProblem {
    /// Stable id.
    pub id: String,
    /// How bad.
    pub severity: Severity,
    /// What it concerns.
    pub subject: String,
    /// One line for people.
    pub message: String,
    /// Unix time it began (as the monitor recorded it; now when no monitor has seen it yet).
    pub since: f64,
}

/// A stage with its throughput.
#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    /// Its state in the spool.
    #[serde(flatten)]
    pub status: StageStatus,
    /// Files and bytes finished in the last hour.
    pub last_hour: Throughput,
    /// Files and bytes finished in the last day.
    pub last_day: Throughput,
}

/// A job attempt that did not succeed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// Stage.
    pub stage: String,
    /// Item.
    pub item: String,
    /// Job id.
    pub job_id: String,
    /// `failed`, `retry`, `lost`.
    pub state: String,
    /// Why.
    pub reason: Option<String>,
    /// Unix time of its end (or of the last thing known of it).
    pub time: f64,
    /// The command that shows its logs.
    pub logs_command: String,
}

/// The whole page.
#[derive(Debug, Clone, Serialize)]
pub struct Page {
    /// Unix time it was made.
    pub time: f64,
    /// The same, ISO-8601 UTC.
    pub time_iso: String,
    /// Host that made it.
    pub host: String,
    /// The spool.
    pub spool: PathBuf,
    /// Open problems, critical first, then oldest first.
    pub problems: Vec<OpenProblem>,
    /// Problems cleared in the last day, newest first.
    pub cleared: Vec<Event>,
    /// Per capture site.
    pub sites: Vec<SiteStatus>,
    /// Per stage.
    pub stages: Vec<StageView>,
    /// Per user.
    pub users: Vec<UserStatus>,
    /// The spool's filesystem.
    pub disk: Option<DiskStatus>,
    /// Recent attempts that did not succeed, newest first.
    pub failures: Vec<Failure>,
    /// Entries quarantined.
    pub quarantine: Vec<crate::quarantine::Reason>,
    /// Chart series over the last day.
    pub history: Vec<Series>,
    /// Unix time of the monitor's newest sample (none if no monitor has run).
    pub monitor_seen: Option<f64>,
}

impl Page {
    /// Whether a problem is open (`lander status --check`).
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }
}

/// Builds the page.
pub fn build(config: &Config) -> Result<Page, MonitorError> {
    let st = monitor::status(config)?;
    // The monitor's record adds when problems began and the history; without it (no
    // monitor yet, or a database this user cannot read) the page still shows the spool.
    let store = Store::open_read_only(&config.state_db).unwrap_or_else(|e| {
        tracing::warn!("no monitor history: {e}");
        None
    });
    let recorded = store
        .as_ref()
        .map(|s| s.open_events().unwrap_or_default())
        .unwrap_or_default();
    let problems = st
        .open
        .iter()
        .map(|p| OpenProblem {
            id: p.id.clone(),
            severity: p.severity,
            subject: p.subject.clone(),
            message: p.message.clone(),
            since: recorded
                .iter()
                .find(|e| e.id == p.id)
                .map_or(st.time, |e| e.began),
        })
        .collect();
    let (cleared, history) = match &store {
        Some(s) => (
            s.cleared_since(st.time - 86_400.0, 20).unwrap_or_default(),
            history::series(s, st.time - CHART_SECS).unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let monitor_seen = history
        .iter()
        .filter_map(|s| s.points.last().map(|p| p.0))
        .fold(None, |a: Option<f64>, t| Some(a.map_or(t, |a| a.max(t))));
    let hour = stage_throughput(config, 3600.0);
    let day = stage_throughput(config, 86_400.0);
    let stages = st
        .stages
        .iter()
        .map(|s| StageView {
            status: s.clone(),
            last_hour: lookup(&hour, &s.stage),
            last_day: lookup(&day, &s.stage),
        })
        .collect();
    Ok(Page {
        time: st.time,
        time_iso: lander_spool::human::iso8601(st.time as i64),
        host: sys::hostname().to_owned(),
        spool: config.spool.clone(),
        problems,
        cleared,
        sites: st.sites,
        stages,
        users: st.users,
        disk: st.disk,
        failures: recent_failures(config),
        quarantine: st.quarantine,
        history,
        monitor_seen,
    })
}

fn lookup(list: &[(String, Throughput)], stage: &str) -> Throughput {
    list.iter()
        .find(|(s, _)| s == stage)
        .map_or_else(Throughput::default, |(_, t)| *t)
}

fn recent_failures(config: &Config) -> Vec<Failure> {
    let cfg = format!(" --config {}", config.path.display());
    let mut out = failures_in(&config.state_db, &cfg);
    for user in config.users.keys() {
        out.extend(failures_in(&config.user_db(user), &cfg));
    }
    out.sort_by(|a, b| {
        b.time
            .total_cmp(&a.time)
            .then_with(|| a.job_id.cmp(&b.job_id))
    });
    out.truncate(RECENT_FAILURES);
    out
}

/// Recent failures of one history; unreadable or missing histories have none.
fn failures_in(db: &Path, config_arg: &str) -> Vec<Failure> {
    if !db.exists() {
        return Vec::new();
    }
    let read = || -> rusqlite::Result<Vec<Failure>> {
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        conn.busy_timeout(crate::ledger::BUSY_TIMEOUT)?;
        let mut stmt = conn.prepare(
            "SELECT stage, item, job_id, state, reason,
                    COALESCE(ended, started, submitted, 0) AS t FROM jobs
             WHERE state IN ('failed', 'retry', 'lost') ORDER BY t DESC, job_id LIMIT ?1",
        )?;
        let rows = stmt.query_map(params![RECENT_FAILURES as i64], |r| {
            let job_id: String = r.get(2)?;
            Ok(Failure {
                stage: r.get(0)?,
                item: r.get(1)?,
                logs_command: format!("lander jobs logs {job_id}{config_arg}"),
                job_id,
                state: r.get(3)?,
                reason: r.get(4)?,
                time: r.get(5)?,
            })
        })?;
        rows.collect()
    };
    read().unwrap_or_else(|e| {
        tracing::debug!("cannot read {}: {e}", db.display());
        Vec::new()
    })
}
