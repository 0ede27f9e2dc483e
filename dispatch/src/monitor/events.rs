//! Problems seen now against the events open in the store: a new problem begins an event, a
//! problem no longer seen clears it, one still open past `remind_secs` since it was last told
//! is told again. Each change and the notifications it makes are one transaction.

use serde::Serialize;

use crate::config::{Config, NotifyKind};

use super::checks::Problem;
use super::notify;
use super::store::{self, Event, Store, StoreError};

/// What happened to an event in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// The problem was first seen.
    Began,
    /// The problem is gone.
    Cleared,
    /// The problem is still open, `remind_secs` after it was last told.
    Reminder,
}

/// One change, as logged and notified.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// What happened.
    pub transition: Transition,
    /// The event after the change.
    pub event: Event,
}

/// Reconciles the store's open events with `problems` seen at `now`; returns the changes.
pub fn reconcile(
    config: &Config,
    store: &mut Store,
    problems: &[Problem],
    now: f64,
) -> Result<Vec<Change>, StoreError> {
    let remind = config.monitor.remind_after.as_secs_f64();
    store.write(|tx| {
        let open = store::open_in(tx)?;
        let mut changes = Vec::new();
        for p in problems {
            match open.iter().find(|e| e.id == p.id) {
                None => {
                    let event = new_event(p, now);
                    store::insert_event(tx, &event)?;
                    changes.push(Change {
                        transition: Transition::Began,
                        event,
                    });
                }
                Some(e) => {
                    let mut event = e.clone();
                    event.message.clone_from(&p.message);
                    event.severity = p.severity;
                    event.value = p.value;
                    event.limit = p.limit;
                    event.last_seen = now;
                    let due =
                        remind > 0.0 && now - event.last_told.unwrap_or(event.began) >= remind;
                    if due {
                        event.last_told = Some(now);
                        changes.push(Change {
                            transition: Transition::Reminder,
                            event: event.clone(),
                        });
                    }
                    store::update_event(tx, &event)?;
                }
            }
        }
        for e in open
            .iter()
            .filter(|e| !problems.iter().any(|p| p.id == e.id))
        {
            let mut event = e.clone();
            event.cleared = Some(now);
            event.last_told = Some(now);
            store::update_event(tx, &event)?;
            changes.push(Change {
                transition: Transition::Cleared,
                event,
            });
        }
        for c in &changes {
            let payload = notify::problem_payload(c, now);
            for target in notify::targets(config, NotifyKind::Problem, c.event.user.as_deref()) {
                store::enqueue(tx, &target, &payload, now)?;
            }
        }
        Ok(changes)
    })
}

fn new_event(p: &Problem, now: f64) -> Event {
    Event {
        id: p.id.clone(),
        check: p.check.clone(),
        subject: p.subject.clone(),
        severity: p.severity,
        message: p.message.clone(),
        value: p.value,
        limit: p.limit,
        user: p.user.clone(),
        began: now,
        cleared: None,
        last_seen: now,
        last_told: Some(now),
    }
}

/// Writes each change to the log: began and reminders as warnings, clears as info.
pub fn log(changes: &[Change]) {
    for c in changes {
        let e = &c.event;
        match c.transition {
            Transition::Began => tracing::warn!(
                event = e.id,
                severity = %e.severity,
                "problem began: {}",
                e.message
            ),
            Transition::Reminder => tracing::warn!(
                event = e.id,
                severity = %e.severity,
                "problem still open since {}: {}",
                lander_spool::human::iso8601(e.began as i64),
                e.message
            ),
            Transition::Cleared => tracing::info!(
                event = e.id,
                "problem cleared after {}: {}",
                lander_spool::human::duration(now_or(e.cleared) - e.began),
                e.message
            ),
        }
    }
}

fn now_or(t: Option<f64>) -> f64 {
    t.unwrap_or_else(crate::sys::now)
}
