//! Per user: files by state (incoming, in-process, done, failed) and disk use against quota.

use std::io;
use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::fsutil::list_names;
use crate::layout::Spool;

/// One user's files and disk use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UserStatus {
    /// The user.
    pub user: String,
    /// Files in `incoming/` (all sites).
    pub incoming: usize,
    /// Files in `in-process/`.
    pub in_process: usize,
    /// Files in `done/`.
    pub done: usize,
    /// Files in `failed/`.
    pub failed: usize,
    /// Bytes used under the user's directory (each inode once).
    pub bytes: u64,
    /// The user's quota, if any.
    pub quota: Option<u64>,
    /// Whether `bytes` is over the quota.
    pub over_quota: bool,
}

/// Trace files (not manifests, not reasons) in `<dir>/<site>/` for every site.
fn count_traces(dir: &Path, sites: &[String]) -> usize {
    let mut n = 0;
    for site in sites {
        let names = list_names(&dir.join(site)).unwrap_or_else(|e| {
            tracing::warn!("{}: {e}", dir.join(site).display());
            Vec::new()
        });
        n += names.iter().filter(|name| !name.ends_with(".json")).count();
    }
    n
}

/// Every configured user's files and disk use (a directory that cannot be listed counts as
/// empty, with a warning).
pub fn user_status(config: &Config) -> io::Result<Vec<UserStatus>> {
    let spool = Spool::new(&config.spool);
    // Disk use needs every file of every user: one unreadable directory leaves it out (with
    // a warning) rather than the whole page.
    let usage = crate::quota::usage(config).unwrap_or_else(|e| {
        tracing::warn!("disk use of users not measured: {e}");
        crate::quota::QuotaReport::default()
    });
    let mut out = Vec::new();
    for (name, cfg) in &config.users {
        let sites = &cfg.subscriptions;
        let u = usage.users.iter().find(|u| &u.user == name);
        out.push(UserStatus {
            user: name.clone(),
            incoming: count_traces(&spool.incoming(name), sites),
            in_process: count_traces(&spool.in_process(name), sites),
            done: count_traces(&spool.done(name), sites),
            failed: count_traces(&spool.failed(name), sites),
            bytes: u.map_or(0, |u| u.bytes),
            quota: cfg.quota,
            over_quota: u.is_some_and(|u| u.over),
        });
    }
    Ok(out)
}
