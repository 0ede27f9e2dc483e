//! What serde reads from the file: every table and key, with their defaults
//! (`defaults`); unknown keys are errors. Nothing here is checked beyond its type.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use super::defaults::{
    default_backoff, default_on_success, default_retries, default_retry, default_true,
    default_user_timeout, star,
};
use super::monitor::{RawMonitor, RawNotify};
use super::types::{Action, AfterSuccess};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) spool: PathBuf,
    pub(super) state_db: Option<PathBuf>,
    pub(super) user_state_db: Option<String>,
    #[serde(default = "default_true")]
    pub(super) fsync: bool,
    pub(super) sites: Vec<String>,
    #[serde(default)]
    pub(super) scrub: RawScrub,
    #[serde(default)]
    pub(super) users: BTreeMap<String, RawUser>,
    #[serde(default)]
    pub(super) backend: RawBackend,
    #[serde(default)]
    pub(super) queue: RawQueue,
    #[serde(default)]
    pub(super) monitor: RawMonitor,
    #[serde(default)]
    pub(super) notify: Vec<RawNotify>,
    #[serde(default)]
    pub(super) retention: RawRetention,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawScrub {
    pub(super) command: Option<Vec<String>>,
    pub(super) args: Vec<String>,
    pub(super) mapping: String,
    pub(super) key_file: PathBuf,
    pub(super) payload: String,
    pub(super) checksums: String,
    pub(super) mac: String,
    pub(super) mpls: String,
    pub(super) env: BTreeMap<String, String>,
    pub(super) timeout_secs: u64,
    pub(super) retries: u32,
    pub(super) backoff_secs: u64,
    pub(super) verify_digest: bool,
    pub(super) raw_after: AfterSuccess,
    pub(super) scrubbed_group: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub(super) subscriptions: Vec<String>,
    pub(super) processor: Vec<String>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default = "default_user_timeout")]
    pub(super) timeout_secs: u64,
    #[serde(default = "default_retries")]
    pub(super) retries: u32,
    #[serde(default = "default_backoff")]
    pub(super) backoff_secs: u64,
    #[serde(default = "default_on_success")]
    pub(super) on_success: AfterSuccess,
    #[serde(default)]
    pub(super) on_exit: BTreeMap<String, Action>,
    #[serde(default = "default_retry")]
    pub(super) on_timeout: Action,
    #[serde(default = "default_retry")]
    pub(super) on_crash: Action,
    #[serde(default)]
    pub(super) windows: Vec<RawWindow>,
    #[serde(default)]
    pub(super) timezone: Option<String>,
    #[serde(default)]
    pub(super) quota: Option<String>,
    #[serde(default)]
    pub(super) run_as: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWindow {
    #[serde(default = "star")]
    pub(super) days: String,
    #[serde(default = "star")]
    pub(super) hours: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawBackend {
    pub(super) kind: String,
    pub(super) slots: usize,
    pub(super) grace_secs: u64,
    pub(super) heartbeat_secs: f64,
    pub(super) attr_cache_secs: Option<f64>,
    pub(super) slurm: RawSlurm,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawSlurm {
    pub(super) partition: Option<String>,
    pub(super) time_limit: Option<String>,
    pub(super) extra_args: Vec<String>,
    pub(super) sbatch: Option<String>,
    pub(super) squeue: Option<String>,
    pub(super) scancel: Option<String>,
    pub(super) scontrol: Option<String>,
    pub(super) array_throttle: Option<usize>,
    pub(super) max_array_size: Option<usize>,
    pub(super) max_jobs: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawQueue {
    pub(super) limit: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRetention {
    pub(super) scrubbed_days: u64,
    pub(super) scrubbed_max: Option<String>,
    pub(super) archive_days: u64,
    pub(super) archive_max: Option<String>,
    pub(super) done_days: u64,
    pub(super) done_max: Option<String>,
    pub(super) failed_days: u64,
    pub(super) failed_max: Option<String>,
    pub(super) logs_days: u64,
    pub(super) logs_max: Option<String>,
    pub(super) records_days: u64,
    pub(super) records_max: Option<String>,
}

impl Default for RawScrub {
    fn default() -> Self {
        let args = [
            "--mapping",
            "{mapping}",
            "--key",
            "{key}",
            "--payload",
            "{payload}",
        ];
        let args2 = [
            "--checksums",
            "{checksums}",
            "--mac",
            "{mac}",
            "--mpls",
            "{mpls}",
            "{in}",
            "{out}",
        ];
        Self {
            command: None,
            args: args.iter().chain(&args2).map(|s| (*s).to_owned()).collect(),
            mapping: "cryptopan".into(),
            key_file: PathBuf::from("/etc/lander/key"),
            payload: "zero".into(),
            checksums: "fix".into(),
            mac: "keep".into(),
            mpls: "auto".into(),
            env: BTreeMap::new(),
            timeout_secs: 3600,
            retries: 3,
            backoff_secs: 30,
            verify_digest: true,
            raw_after: AfterSuccess::Remove,
            scrubbed_group: None,
        }
    }
}

impl Default for RawBackend {
    fn default() -> Self {
        let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            kind: "local".into(),
            slots,
            grace_secs: 10,
            heartbeat_secs: 30.0,
            attr_cache_secs: None,
            slurm: RawSlurm::default(),
        }
    }
}

impl Default for RawQueue {
    fn default() -> Self {
        Self { limit: 1000 }
    }
}
