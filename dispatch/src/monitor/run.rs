//! One monitor pass, and the loop of `lander monitor run`: look, record history, reconcile
//! events, note arrivals and failures, deliver notifications.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::sys;

use super::events::{self, Change};
use super::history::{self, Throughput};
use super::notify::{self, Delivery};
use super::store::{Store, StoreError};
use super::{status, tell, Status};

/// A monitor pass that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    /// Reading the spool failed.
    #[error("reading the spool: {0}")]
    Io(#[from] std::io::Error),
    /// The monitor's tables could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one pass saw and did.
#[derive(Debug, Clone, Serialize)]
pub struct PassSummary {
    /// The status it looked at.
    pub status: Status,
    /// Events that began, cleared or were reminded.
    pub changes: Vec<Change>,
    /// Arrival messages queued.
    pub arrivals: usize,
    /// Failure messages queued.
    pub failures: usize,
    /// Notifications delivered and not.
    pub delivery: Delivery,
}

/// The monitor over one configuration and its store.
#[derive(Debug)]
pub struct Monitor {
    config: Config,
    store: Store,
}

/// Files each stage finished in the last `secs` seconds, from the job histories.
pub fn stage_throughput(config: &Config, secs: f64) -> Vec<(String, Throughput)> {
    let since = sys::now() - secs;
    let mut out = vec![(
        "scrub".to_owned(),
        history::throughput(&config.state_db, "scrub", since),
    )];
    for user in config.users.keys() {
        let stage = format!("user/{user}");
        let t = history::throughput(&config.user_db(user), &stage, since);
        out.push((stage, t));
    }
    out
}

impl Monitor {
    /// Opens the store in the configuration's `state_db`.
    pub fn open(config: &Config) -> Result<Monitor, MonitorError> {
        Ok(Monitor {
            config: config.clone(),
            store: Store::open(&config.state_db)?,
        })
    }

    /// The store (for the status page).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// One pass.
    pub fn once(&mut self) -> Result<PassSummary, MonitorError> {
        let st = status(&self.config)?;
        let now = st.time;
        let hourly = stage_throughput(&self.config, 3600.0);
        let keep = self.config.monitor.history.as_secs_f64();
        history::record(&mut self.store, &history::samples(&st, &hourly), now, keep)?;
        let changes = events::reconcile(&self.config, &mut self.store, &st.open, now)?;
        events::log(&changes);
        let arrivals = tell::arrivals(&self.config, &mut self.store, now)?;
        let failures = tell::failures(&self.config, &mut self.store, now)?;
        let delivery = notify::deliver(&self.config, &mut self.store, now)?;
        Ok(PassSummary {
            status: st,
            changes,
            arrivals,
            failures,
            delivery,
        })
    }

    /// Passes every `poll` until `stop` is set; a failed pass is logged and the next one
    /// tried (a busy database or a slow file server passes).
    pub fn run(&mut self, stop: &AtomicBool, mut after: impl FnMut(&PassSummary)) {
        let poll = self.config.monitor.poll;
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            match self.once() {
                Ok(s) => after(&s),
                Err(e) => tracing::error!("monitor pass failed: {e}"),
            }
            while started.elapsed() < poll && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100).min(poll));
            }
        }
    }
}

/// The one-line log of a pass.
pub fn describe(s: &PassSummary) -> String {
    let open = s.status.open.len();
    let began = s
        .changes
        .iter()
        .filter(|c| c.transition == events::Transition::Began)
        .count();
    let cleared = s
        .changes
        .iter()
        .filter(|c| c.transition == events::Transition::Cleared)
        .count();
    format!(
        "monitor pass: {open} problems open ({began} began, {cleared} cleared); notifications \
         {} sent, {} failed, {} held; {} arrival and {} failure messages queued",
        s.delivery.sent, s.delivery.failed, s.delivery.held, s.arrivals, s.failures
    )
}
