//! The `[monitor]` table (thresholds of every check, notification pacing, history) and the
//! `[[notify]]` commands: what serde reads, its defaults, and the validated form.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::check::Validator;
use super::raw::RawUser;
use super::ConfigError;

/// Most notifications one command gets per hour, at most.
pub const MAX_PER_HOUR: u32 = 3600;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawMonitor {
    pub(super) stale_secs: u64,
    pub(super) start_timeout_secs: u64,
    pub(super) silent_secs: u64,
    pub(super) temp_max_age_secs: u64,
    pub(super) lost_grace_secs: f64,
    pub(super) rescan_secs: f64,
    pub(super) poll_secs: u64,
    pub(super) max_backlog: usize,
    pub(super) min_running: usize,
    pub(super) max_drop_fraction: f64,
    pub(super) min_free: String,
    pub(super) remind_secs: u64,
    pub(super) max_per_hour: u32,
    pub(super) arrival_batch_secs: u64,
    pub(super) notify_timeout_secs: u64,
    pub(super) history_days: u64,
    pub(super) in_dispatch: bool,
}

impl Default for RawMonitor {
    fn default() -> Self {
        Self {
            stale_secs: 600,
            start_timeout_secs: 600,
            silent_secs: 3600,
            temp_max_age_secs: 3600,
            lost_grace_secs: 30.0,
            rescan_secs: 1.0,
            poll_secs: 60,
            max_backlog: 10_000,
            min_running: 1,
            max_drop_fraction: 0.001,
            min_free: "5%".into(),
            remind_secs: 86_400,
            max_per_hour: 20,
            arrival_batch_secs: 600,
            notify_timeout_secs: 30,
            history_days: 30,
            in_dispatch: false,
        }
    }
}

/// Least free space on the spool's filesystem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MinFree {
    /// Bytes available to unprivileged writers.
    Bytes(u64),
    /// Percent of the filesystem's size.
    Percent(f64),
}

/// Monitor thresholds and pacing.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// Work waiting longer than this without a job is reported (oldest unprocessed file).
    pub stale_after: Duration,
    /// A job submitted and not started after this is reported.
    pub start_timeout: Duration,
    /// A capture site with no heartbeat and no new raw file for this long is reported silent.
    pub silent_after: Duration,
    /// Temporary files older than this in state directories are removed.
    pub temp_max_age: Duration,
    /// A submitted job with no start marker after this long, unknown to the backend, is lost.
    pub lost_grace: Duration,
    /// Least time between rescans of input directories.
    pub rescan: Duration,
    /// Time between passes of `lander monitor run`.
    pub poll: Duration,
    /// Most files waiting in one stage before it is reported.
    pub max_backlog: usize,
    /// Fewest jobs running in a stage while its work waits past `start_timeout`.
    pub min_running: usize,
    /// Largest share of packets a capture run may drop (kernel, interface, ring, source).
    pub max_drop_fraction: f64,
    /// Least free space on the spool's filesystem.
    pub min_free: MinFree,
    /// A problem still open after this is notified again.
    pub remind_after: Duration,
    /// Most notifications one command gets in an hour (the rest are counted and said later).
    pub max_per_hour: u32,
    /// Arrivals of files for a user are told at most once per this period, in one batch.
    pub arrival_batch: Duration,
    /// A notification command still running after this is killed.
    pub notify_timeout: Duration,
    /// History for the charts is kept this long (downsampled to hours after a day).
    pub history: Duration,
    /// Whether `lander dispatch run` also runs the monitor every `poll`.
    pub in_dispatch: bool,
}

/// What a notification command is told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// A problem began, cleared, or is still open (reminder).
    Problem,
    /// Files arrived in a user's `incoming/` (batched).
    Arrival,
    /// A job of the user failed for good.
    Failure,
}

/// One `[[notify]]` command.
#[derive(Debug, Clone)]
pub struct Notify {
    /// Program and arguments; the event comes as JSON on standard input.
    pub command: Vec<String>,
    /// The user it belongs to; `None`: an operator (told of every problem).
    pub user: Option<String>,
    /// What it is told about.
    pub kinds: Vec<NotifyKind>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    command: Vec<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    events: Option<Vec<NotifyKind>>,
}

impl RawMonitor {
    pub(super) fn validate(&self, v: &Validator<'_>) -> Result<Monitor, ConfigError> {
        let t = "monitor";
        let lost_grace = v.secs_f64(t, "lost_grace_secs", self.lost_grace_secs)?;
        if !(0.0..=1.0).contains(&self.max_drop_fraction) {
            let msg = format!("{:?} is not a fraction from 0 to 1", self.max_drop_fraction);
            return Err(v.invalid(t, "max_drop_fraction", msg));
        }
        let poll = v.secs(t, "poll_secs", self.poll_secs)?;
        Ok(Monitor {
            stale_after: v.secs(t, "stale_secs", self.stale_secs)?,
            start_timeout: v.secs(t, "start_timeout_secs", self.start_timeout_secs)?,
            silent_after: v.secs(t, "silent_secs", self.silent_secs)?,
            temp_max_age: v.secs(t, "temp_max_age_secs", self.temp_max_age_secs)?,
            lost_grace: lost_grace.max(Duration::from_millis(100)),
            rescan: v.secs_f64(t, "rescan_secs", self.rescan_secs)?,
            poll: poll.max(Duration::from_secs(1)),
            max_backlog: v.count(t, "max_backlog", self.max_backlog, 1, usize::MAX)?,
            min_running: v.count(t, "min_running", self.min_running, 0, 1_000_000)?,
            max_drop_fraction: self.max_drop_fraction,
            min_free: min_free(&self.min_free).map_err(|m| v.invalid(t, "min_free", m))?,
            remind_after: v.secs(t, "remind_secs", self.remind_secs)?,
            max_per_hour: v.count(t, "max_per_hour", self.max_per_hour, 1, MAX_PER_HOUR)?,
            arrival_batch: v.secs(t, "arrival_batch_secs", self.arrival_batch_secs)?,
            notify_timeout: v
                .secs(t, "notify_timeout_secs", self.notify_timeout_secs)?
                .max(Duration::from_secs(1)),
            history: v
                .days(t, "history_days", self.history_days)?
                .unwrap_or(Duration::from_secs(86_400)),
            in_dispatch: self.in_dispatch,
        })
    }
}

/// `"5%"` or a size such as `"10GiB"`.
fn min_free(text: &str) -> Result<MinFree, String> {
    if let Some(p) = text.trim().strip_suffix('%') {
        let pct: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a percentage"))?;
        if !(0.0..=100.0).contains(&pct) {
            return Err(format!("{text:?} is not from 0% to 100%"));
        }
        return Ok(MinFree::Percent(pct));
    }
    super::parse_size(text)
        .map(MinFree::Bytes)
        .map_err(|e| format!("{e} (a size like \"10GiB\" or a percentage like \"5%\")"))
}

pub(super) fn validate_notify(
    v: &Validator<'_>,
    raw: &[RawNotify],
    users: &BTreeMap<String, RawUser>,
) -> Result<Vec<Notify>, ConfigError> {
    let mut out = Vec::new();
    for (i, n) in raw.iter().enumerate() {
        let table = format!("notify[{i}]");
        check_argv(v, &table, &n.command)?;
        if let Some(user) = &n.user {
            if !users.contains_key(user) {
                let known: Vec<_> = users.keys().cloned().collect();
                let msg = format!("no such user {user:?} (configured: {})", known.join(", "));
                return Err(at_notify(v, &table, "user", msg));
            }
        }
        let default = match n.user {
            None => vec![NotifyKind::Problem],
            Some(_) => vec![
                NotifyKind::Arrival,
                NotifyKind::Failure,
                NotifyKind::Problem,
            ],
        };
        let mut kinds = n.events.clone().unwrap_or(default);
        kinds.sort();
        kinds.dedup();
        if kinds.is_empty() {
            return Err(at_notify(v, &table, "events", "empty list"));
        }
        out.push(Notify {
            command: n.command.clone(),
            user: n.user.clone(),
            kinds,
        });
    }
    Ok(out)
}

fn check_argv(v: &Validator<'_>, table: &str, argv: &[String]) -> Result<(), ConfigError> {
    v.argv("notify", "command", argv).map_err(|e| match e {
        ConfigError::Invalid { message, .. } => at_notify(v, table, "command", message),
        other => other,
    })
}

/// An error in one `[[notify]]` table (`notify[i]`), at the line of its first such key.
fn at_notify(v: &Validator<'_>, table: &str, key: &str, message: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        path: v.path.to_owned(),
        line: v.line_of("notify", key),
        field: format!("{table}.{key}"),
        message: message.to_string(),
    }
}
