//! The default of every key the file may leave out.

use std::path::{Path, PathBuf};

use super::types::{Action, AfterSuccess};

pub(super) fn default_true() -> bool {
    true
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
