//! The default of every key the file may leave out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::raw::{RawBackend, RawMonitor, RawQueue, RawScrub, RawSlurm};
use super::types::{Action, AfterSuccess};

pub(super) fn default_true() -> bool {
    true
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

pub(super) fn default_user_timeout() -> u64 {
    3600
}

pub(super) fn default_retries() -> u32 {
    2
}

pub(super) fn default_backoff() -> u64 {
    60
}

pub(super) fn default_on_success() -> AfterSuccess {
    AfterSuccess::Archive
}

pub(super) fn default_retry() -> Action {
    Action::Retry
}

pub(super) fn star() -> String {
    "*".into()
}

impl Default for RawBackend {
    fn default() -> Self {
        let slots = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            kind: "local".into(),
            slots,
            grace_secs: 10,
            slurm: RawSlurm::default(),
        }
    }
}

impl Default for RawQueue {
    fn default() -> Self {
        Self { limit: 1000 }
    }
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
        }
    }
}

pub(super) fn default_state_dir_db() -> PathBuf {
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("/var/lib"));
    base.join("lander").join("dispatch.sqlite")
}

pub(super) fn default_user_db(state_db: &Path) -> String {
    let dir = state_db.parent().unwrap_or(Path::new("."));
    dir.join("user-{user}.sqlite")
        .to_string_lossy()
        .into_owned()
}
