//! A user's stage: `incoming/<site>/` -> claim into `in-process/<site>/` -> the user's
//! processor -> `done/<site>/` (or removed), `failed/<site>/` with the reason, or a retry with
//! backoff. Items are `<site>/<name>`: two sites' files of the same name never meet.
//!
//! Only regular files are taken from `incoming/`: anything else there (a symbolic link, a
//! FIFO, a name the spool cannot take, a file outside a site directory) is quarantined in
//! `state/quarantine/` with a reason, and the pass goes on.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};

use lander_spool::manifest::{is_manifest_name, manifest_path};

use crate::claim::Claim;
use crate::config::{Action, AfterSuccess, Config, User};
use crate::crash;
use crate::fsutil::{self, move_once, remove_if_exists, write_json_atomic};
use crate::layout::{split_item, Spool, StageDirs};
use crate::quarantine;
use crate::record::{JobOutcome, JobRecord};
use crate::stage::{Accept, JobCommand, Policy, Stage};
use crate::window;

/// One user's stage.
#[derive(Debug)]
pub struct UserStage {
    name: String,
    stage_name: String,
    user: User,
    sites: Vec<String>,
    spool: Spool,
    dirs: StageDirs,
    fsync: bool,
}

/// Why a file is in `failed/<site>/`: `failed/<site>/<file>.reason`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FailReason {
    /// The item (`<site>/<file>`).
    pub file: String,
    /// What went wrong.
    pub reason: String,
    /// Unix time it was given up.
    pub time: f64,
}

impl UserStage {
    /// The stage of user `name` in `config`.
    pub fn new(config: &Config, name: &str) -> io::Result<UserStage> {
        let user = config.user(name).map_err(io::Error::other)?.clone();
        let spool = Spool::new(&config.spool);
        let dirs = spool.user_dirs(name);
        let finished = spool.user_state(name).join("finished");
        for site in &user.subscriptions {
            for dir in [
                spool.incoming(name),
                spool.in_process(name),
                spool.done(name),
                spool.failed(name),
                finished.clone(),
                dirs.claims.clone(),
            ] {
                let dir = dir.join(site);
                std::fs::create_dir_all(&dir).map_err(|e| fsutil::with_path(e, &dir))?;
            }
        }
        Ok(UserStage {
            name: name.to_owned(),
            stage_name: format!("user/{name}"),
            sites: user.subscriptions.clone(),
            user,
            spool,
            dirs,
            fsync: config.fsync,
        })
    }

    /// Moves `item` (manifest first) from `from` to `to`; parts moved before are done.
    fn moved(&self, from: &Path, to: &Path, item: &str, step: &str) -> io::Result<()> {
        let parts = [
            (
                manifest_path(&from.join(item)),
                manifest_path(&to.join(item)),
            ),
            (from.join(item), to.join(item)),
        ];
        for (i, (src, dst)) in parts.into_iter().enumerate() {
            if let Some(dir) = dst.parent() {
                std::fs::create_dir_all(dir).map_err(|e| fsutil::with_path(e, dir))?;
            }
            if fsutil::exists(&src) || !fsutil::exists(&dst) {
                move_once(&src, &dst).or_else(|e| match e.kind() {
                    io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                })?;
            }
            if i == 0 {
                crash::point(step);
            }
        }
        Ok(())
    }

    /// Notes that the stage is finished with `item`. Only the marker's existence counts: it
    /// is a hard link to the item's claim, which is released right after (no new file, and the
    /// claim's is kept rather than freed); without a claim, a small file written in place.
    fn mark_finished(&self, item: &str, how: &str) -> io::Result<()> {
        let path = self.spool.finished_marker(&self.name, item);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fsutil::with_path(e, dir))?;
        }
        let linked = match std::fs::hard_link(self.dirs.claim(item), &path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        };
        let written = match (linked, self.fsync) {
            (Ok(()), true) => {
                lander_spool::publish::fsync_dir(path.parent().unwrap_or(Path::new(".")))
            }
            (Ok(()), false) => Ok(()),
            (Err(_), true) => fsutil::write_atomic(&path, how.as_bytes(), true),
            (Err(_), false) => std::fs::write(&path, how).map_err(|e| fsutil::with_path(e, &path)),
        };
        crash::point("user.marked");
        written
    }

    fn finish(&self, item: &str, how: &str) -> io::Result<()> {
        self.mark_finished(item, how)?;
        let in_process = self.spool.in_process(&self.name);
        match self.user.on_success {
            AfterSuccess::Archive => self.moved(
                &in_process,
                &self.spool.done(&self.name),
                item,
                "user.moved-manifest",
            ),
            AfterSuccess::Remove => {
                remove_if_exists(&in_process.join(item))?;
                remove_if_exists(&manifest_path(&in_process.join(item)))
            }
        }
    }

    /// The reason file of a failed item.
    pub fn reason_path(&self, item: &str) -> PathBuf {
        self.spool.failed(&self.name).join(format!("{item}.reason"))
    }

    fn quarantine(&self, dir: &Path, name: &OsStr, reason: &str) {
        let to = self.spool.user_quarantine(&self.name);
        let moved = quarantine::quarantine(&to, &self.stage_name, dir, name, reason, self.fsync);
        if let Err(e) = moved {
            let name = name.to_string_lossy();
            tracing::warn!(stage = self.stage_name, %name, "cannot quarantine: {e}");
        }
    }

    /// Items of one site directory of `incoming/`; what cannot be one is quarantined.
    fn scan_site(&self, site: &str, items: &mut Vec<String>) -> io::Result<()> {
        let dir = self.spool.incoming(&self.name).join(site);
        for (name, why) in entries(&dir)? {
            let lossy = name.to_string_lossy();
            match why {
                None if !is_manifest_name(&lossy) => items.push(format!("{site}/{lossy}")),
                None => {}
                Some(why) => self.quarantine(&dir, &name, &why),
            }
        }
        Ok(())
    }

    /// Entries of `incoming/` itself that are not site directories are quarantined.
    fn scan_top(&self) -> io::Result<()> {
        let dir = self.spool.incoming(&self.name);
        for (name, why) in entries(&dir)? {
            let meta = std::fs::symlink_metadata(dir.join(&name));
            let site_dir = meta.is_ok_and(|m| m.is_dir());
            let known = name
                .to_str()
                .is_some_and(|n| self.sites.iter().any(|s| s == n));
            if !(site_dir && known) {
                let why = why.unwrap_or_else(|| "outside a site directory".into());
                self.quarantine(&dir, &name, &format!("{why} (incoming/<site>/<name>)"));
            }
        }
        Ok(())
    }
}

/// The entries of `dir` but temporaries, each with why it cannot be an item (bad name, not a
/// regular file), if it cannot. A missing directory has none.
fn entries(dir: &Path) -> io::Result<Vec<(std::ffi::OsString, Option<String>)>> {
    let rd = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.map_err(|e| fsutil::with_path(e, dir))?,
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| fsutil::with_path(e, dir))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let why = fsutil::bad_name(&name).or_else(|| match entry.file_type() {
            Ok(t) if t.is_file() => None,
            _ => std::fs::symlink_metadata(entry.path())
                .ok()
                .map(|m| format!("{}, not a regular file", fsutil::kind_of(&m))),
        });
        out.push((name, why));
    }
    Ok(out)
}

impl Stage for UserStage {
    #[allow(clippy::misnamed_getters)] // the stage's name, not the user's
    fn name(&self) -> &str {
        &self.stage_name
    }

    fn dirs(&self) -> &StageDirs {
        &self.dirs
    }

    fn policy(&self) -> Policy {
        Policy {
            retries: self.user.retries,
            backoff: self.user.backoff,
            timeout: self.user.timeout,
        }
    }

    fn scan(&self) -> io::Result<Vec<String>> {
        self.scan_top()?;
        let mut items = Vec::new();
        for site in &self.sites {
            self.scan_site(site, &mut items)?;
        }
        Ok(items)
    }

    fn may_start(&self, now: i64) -> bool {
        let now = match self.user.local_time {
            true => now + crate::sys::local_offset(now),
            false => now,
        };
        window::allowed(&self.user.windows, now)
    }

    fn accept(&self, item: &str, _claim: &Claim) -> io::Result<Accept> {
        let incoming = self.spool.incoming(&self.name);
        if fsutil::exists(&self.spool.finished_marker(&self.name, item)) {
            // A second link of a file already processed (a rerun of the fan-out): drop it.
            remove_if_exists(&manifest_path(&incoming.join(item)))?;
            remove_if_exists(&incoming.join(item))?;
            return Ok(Accept::Drop);
        }
        let entry = incoming.join(item);
        if let Ok(meta) = std::fs::symlink_metadata(&entry) {
            if !meta.is_file() {
                let why = format!("{}, not a regular file", fsutil::kind_of(&meta));
                let (site, name) = split_item(item);
                self.quarantine(&incoming.join(site), OsStr::new(name), &why);
                return Ok(Accept::Drop);
            }
        }
        let in_process = self.spool.in_process(&self.name);
        self.moved(&incoming, &in_process, item, "user.accepted-manifest")?;
        let taken = std::fs::symlink_metadata(in_process.join(item)).is_ok_and(|m| m.is_file());
        Ok(if taken { Accept::Run } else { Accept::Drop })
    }

    fn command(&self, item: &str, job: &str, attempt: u32) -> io::Result<JobCommand> {
        let (site, name) = split_item(item);
        let file = self.spool.in_process(&self.name).join(item);
        let manifest = manifest_path(&file);
        let mut env = self.user.env.clone();
        env.insert("LANDER_FILE".into(), file.to_string_lossy().into_owned());
        env.insert(
            "LANDER_MANIFEST".into(),
            manifest.to_string_lossy().into_owned(),
        );
        env.insert("LANDER_SITE".into(), site.to_owned());
        env.insert("LANDER_NAME".into(), name.to_owned());
        env.insert("LANDER_JOB".into(), job.to_owned());
        env.insert("LANDER_ATTEMPT".into(), attempt.to_string());
        Ok(JobCommand {
            argv: self.user.processor.clone(),
            env,
            counts_from: Some(manifest),
            identity: None,
            run_as: self.user.run_as.clone(),
        })
    }

    fn action(&self, outcome: &JobOutcome) -> Action {
        self.user.action_for(outcome).unwrap_or(Action::Retry)
    }

    fn check(&self, _item: &str, _claim: &Claim, _record: &JobRecord) -> Result<(), String> {
        Ok(())
    }

    fn complete(&self, item: &str, _claim: &Claim, _record: &JobRecord) -> io::Result<()> {
        self.finish(item, "done")
    }

    fn ignore(&self, item: &str) -> io::Result<()> {
        self.finish(item, "ignored")
    }

    /// Temporaries of the stage's own writers that died: quarantine reasons, finished markers
    /// written in place, reasons of failed files.
    fn sweep_scratch(
        &self,
        _in_use: &std::collections::HashSet<String>,
        min_age: std::time::Duration,
    ) -> io::Result<usize> {
        let finished = self.spool.user_state(&self.name).join("finished");
        let mut dirs = vec![self.spool.user_quarantine(&self.name)];
        for site in &self.sites {
            dirs.push(finished.join(site));
            dirs.push(self.spool.failed(&self.name).join(site));
        }
        let mut removed = 0;
        for dir in dirs.iter().filter(|d| fsutil::exists(d)) {
            for left in fsutil::abandoned_temporaries(dir, min_age)? {
                remove_if_exists(&left)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn give_up(&self, item: &str, reason: &str) -> io::Result<bool> {
        let why = FailReason {
            file: item.to_owned(),
            reason: reason.to_owned(),
            time: crate::sys::now(),
        };
        let path = self.reason_path(item);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fsutil::with_path(e, dir))?;
        }
        write_json_atomic(&path, &why, self.fsync)?;
        self.mark_finished(item, "failed")?;
        self.moved(
            &self.spool.in_process(&self.name),
            &self.spool.failed(&self.name),
            item,
            "user.moved-manifest",
        )?;
        Ok(false)
    }
}
