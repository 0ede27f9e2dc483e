//! What happened to an event in one pass of the monitor: the change that is logged and told.

use serde::Serialize;

use super::store::Event;

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
