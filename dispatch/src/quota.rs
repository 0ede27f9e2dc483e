//! Disk use per user against the configured quotas.
//!
//! A user's use is everything under `users/<user>/`, in allocated bytes, each inode counted
//! once however many of the user's names link to it. Scrubbed files reach users as hard links,
//! so most of a user's bytes are usually shared with `scrubbed/`: they are reported apart
//! (removing the user's links frees them only once `scrubbed/` lets them go too).

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Serialize;

use crate::config::Config;
use crate::fsutil::with_path;
use crate::layout::Spool;

/// One user's disk use.
#[derive(Debug, Clone, Serialize)]
pub struct UserUsage {
    /// The user.
    pub user: String,
    /// Distinct files (inodes).
    pub files: u64,
    /// Allocated bytes of those files.
    pub bytes: u64,
    /// Of those, bytes of files also linked from `scrubbed/`.
    pub shared_with_scrubbed: u64,
    /// The user's quota, if any.
    pub quota: Option<u64>,
    /// Whether `bytes` is over the quota.
    pub over: bool,
}

/// Every user's use, and who is over quota.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QuotaReport {
    /// Per user, in name order.
    pub users: Vec<UserUsage>,
    /// Users over their quota.
    pub hogs: Vec<String>,
}

type Inode = (u64, u64);

/// Measures every configured user's directory.
pub fn usage(config: &Config) -> io::Result<QuotaReport> {
    let spool = Spool::new(&config.spool);
    let mut scrubbed = HashSet::new();
    for site in &config.sites {
        walk(&spool.scrubbed(site), &mut |ino, _| {
            scrubbed.insert(ino);
        })?;
    }
    let mut report = QuotaReport::default();
    for (name, user) in &config.users {
        let mut u = user_usage(&spool.user(name), &scrubbed)?;
        u.user = name.clone();
        u.quota = user.quota;
        u.over = user.quota.is_some_and(|q| u.bytes > q);
        if u.over {
            report.hogs.push(name.clone());
        }
        report.users.push(u);
    }
    Ok(report)
}

fn user_usage(dir: &Path, scrubbed: &HashSet<Inode>) -> io::Result<UserUsage> {
    let mut seen = HashSet::new();
    let mut u = UserUsage {
        user: String::new(),
        files: 0,
        bytes: 0,
        shared_with_scrubbed: 0,
        quota: None,
        over: false,
    };
    walk(dir, &mut |ino, bytes| {
        if !seen.insert(ino) {
            return;
        }
        u.files += 1;
        u.bytes += bytes;
        if scrubbed.contains(&ino) {
            u.shared_with_scrubbed += bytes;
        }
    })?;
    Ok(u)
}

/// Calls `f(inode, allocated bytes)` for every regular file under `dir` (not following
/// symbolic links); a missing directory has none.
fn walk(dir: &Path, f: &mut dyn FnMut(Inode, u64)) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(with_path(e, dir)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| with_path(e, dir))?;
        let Ok(meta) = entry.metadata() else {
            continue; // removed meanwhile
        };
        if meta.is_dir() {
            walk(&entry.path(), f)?;
        } else if meta.is_file() {
            f((meta.dev(), meta.ino()), meta.blocks() * 512);
        }
    }
    Ok(())
}
