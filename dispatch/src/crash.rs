//! Named crash points: with `LANDER_CRASH_AT=<step>` in its environment, a dispatcher kills
//! itself (SIGKILL) when it reaches that step, so tests can stop it between any two steps of
//! publication and check that the next dispatcher resumes to the same end state. Without the
//! variable a crash point costs one comparison.

use std::sync::OnceLock;

/// The environment variable naming the step to crash at.
pub const ENV: &str = "LANDER_CRASH_AT";

/// Every crash point, in the order an item passes them.
pub const STEPS: &[&str] = &[
    // engine, both stages
    "claimed",
    "accepted",
    "submitted",
    "completed",
    "committed",
    "released",
    // scrub stage: accept
    "scrub.pinned",
    "scrub.renamed",
    // scrub stage: complete
    "scrub.published-manifest",
    "scrub.published",
    "scrub.linked-manifest",
    "scrub.fanned-out",
    "scrub.registered",
    "scrub.archived-manifest",
    "scrub.disposed",
    // user stage
    "user.accepted-manifest",
    "user.marked",
    "user.moved-manifest",
];

/// Crash points only a backend that takes arrays reaches: after the batch file (the intent)
/// is written and before the batch system is called.
pub const ARRAY_STEPS: &[&str] = &["intended"];

/// Kills the process if `step` is the configured crash point.
pub fn point(step: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(ENV).ok().filter(|s| !s.is_empty()));
    if at.as_deref() == Some(step) {
        eprintln!("lander: crash point {step}: killing myself");
        crate::sys::kill_self();
    }
}
