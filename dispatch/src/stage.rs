//! What a stage is to the engine: where its state lives, what work it finds, how one job
//! attempt is run, and what happens to the files when an attempt ends.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use crate::claim::{Claim, Identity};
use crate::config::Action;
use crate::layout::StageDirs;
use crate::record::{JobOutcome, JobRecord};

/// What to do with a freshly claimed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Run a job on it.
    Run,
    /// Nothing to do (it is gone, or a duplicate of finished work): release the claim.
    Drop,
}

/// The command of one job attempt.
#[derive(Debug, Clone, Default)]
pub struct JobCommand {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Environment added.
    pub env: BTreeMap<String, String>,
    /// Manifest whose counts go in the run record.
    pub counts_from: Option<PathBuf>,
    /// The identity of the item's file as found now, kept in the claim.
    pub identity: Option<Identity>,
    /// The account the job runs as (`None`: the wrapper's own).
    pub run_as: Option<String>,
}

/// Retry and time limits of a stage.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// First retry delay, doubled each time.
    pub backoff: Duration,
    /// Job time limit (zero: none).
    pub timeout: Duration,
}

/// One stage of the pipeline.
pub trait Stage {
    /// The stage's name: `scrub` or `user/<name>`.
    fn name(&self) -> &str;
    /// Its state directories.
    fn dirs(&self) -> &StageDirs;
    /// Its retry and time limits.
    fn policy(&self) -> Policy;
    /// Items that may need work (a rescan of the input directories). Entries that cannot be
    /// items (not regular files, names the spool cannot take) are quarantined here.
    fn scan(&self) -> io::Result<Vec<String>>;
    /// Whether new work may start at Unix time `now` (time windows).
    fn may_start(&self, _now: i64) -> bool {
        true
    }
    /// Checks a claimed item and readies it for the claim's job.
    fn accept(&self, item: &str, claim: &Claim) -> io::Result<Accept>;
    /// The command of attempt `job` on `item` (no side effects: it is built before the claim).
    fn command(&self, item: &str, job: &str, attempt: u32) -> io::Result<JobCommand>;
    /// Readies what attempt `job` needs before it is submitted (its scratch directory).
    fn prepare(&self, _item: &str, _job: &str) -> io::Result<()> {
        Ok(())
    }
    /// The action for a failed attempt.
    fn action(&self, outcome: &JobOutcome) -> Action;
    /// Checks the results of a successful attempt without changing anything; `Err` is a reason
    /// to treat the attempt as failed.
    fn check(&self, item: &str, claim: &Claim, record: &JobRecord) -> Result<(), String>;
    /// Puts the results of a successful attempt in place (idempotent: may run again after a
    /// crash, at any step).
    fn complete(&self, item: &str, claim: &Claim, record: &JobRecord) -> io::Result<()>;
    /// Treats the item as finished although its job failed (action `ignore`; idempotent).
    fn ignore(&self, item: &str) -> io::Result<()>;
    /// Gives the item up (idempotent); returns whether its claim stays, marked failed.
    fn give_up(&self, item: &str, reason: &str) -> io::Result<bool>;
    /// Removes what an attempt left that nobody will use (its scratch output).
    fn discard_attempt(&self, _item: &str, _job: &str) -> io::Result<()> {
        Ok(())
    }
    /// Removes scratch of attempts no claim names (`in_use`: the job ids claims name) left by
    /// a dispatcher that stopped, when older than `min_age`; returns how many.
    fn sweep_scratch(
        &self,
        _in_use: &std::collections::HashSet<String>,
        _min_age: Duration,
    ) -> io::Result<usize> {
        Ok(0)
    }
}

/// A new job id for attempt `attempt` on `item` in `stage`:
/// `<stage>.<item>.<attempt>.<token>`, `/` written `.`, a long item cut with a digest of it.
/// The token is new for every id, so a run record of an earlier file under the same name can
/// never be taken for this attempt's.
pub fn job_id(stage: &str, item: &str, attempt: u32) -> String {
    let token = crate::sys::nonce();
    format!("{stage}.{}.{attempt}.{token}", short_item(item)).replace('/', ".")
}

/// `item`, or for a long one its first bytes and a digest of the whole.
fn short_item(item: &str) -> String {
    const KEEP: usize = 48;
    if item.len() <= KEEP + 16 {
        return item.to_owned();
    }
    let mut cut = KEEP;
    while !item.is_char_boundary(cut) {
        cut -= 1;
    }
    let digest = blake3::hash(item.as_bytes()).to_hex();
    format!("{}~{}", &item[..cut], &digest[..12])
}
