//! A user's stage: `incoming/` -> claim into `in-process/` -> the user's processor ->
//! `done/` (or removed), `failed/` with the reason, or a retry with backoff.

use std::io;
use std::path::{Path, PathBuf};

use lander_capture::manifest::{is_manifest_name, manifest_path};

use crate::config::{Action, AfterSuccess, Config, User};
use crate::fsutil::{self, move_once, remove_if_exists, write_json_atomic};
use crate::record::{Outcome, RunRecord};
use crate::spool::Spool;
use crate::stage::{Accept, JobCommand, Policy, Stage, StageDirs};
use crate::window;

/// One user's stage.
#[derive(Debug)]
pub struct UserStage {
    name: String,
    stage_name: String,
    user: User,
    spool: Spool,
    dirs: StageDirs,
    fsync: bool,
}

/// Why a file is in `failed/`: `failed/<file>.reason.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FailReason {
    /// The file.
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
        let dirs = StageDirs::under(&spool.user_state(name), spool.user_logs(name));
        let finished = spool.user_state(name).join("finished");
        for dir in [
            spool.incoming(name),
            spool.in_process(name),
            spool.done(name),
            spool.failed(name),
            finished,
        ] {
            std::fs::create_dir_all(&dir).map_err(|e| fsutil::with_path(e, &dir))?;
        }
        Ok(UserStage {
            name: name.to_owned(),
            stage_name: format!("user/{name}"),
            user,
            spool,
            dirs,
            fsync: config.fsync,
        })
    }

    fn moved(&self, from: &Path, to: &Path, name: &str) -> io::Result<()> {
        for (src, dst) in [
            (
                manifest_path(&from.join(name)),
                manifest_path(&to.join(name)),
            ),
            (from.join(name), to.join(name)),
        ] {
            if src.exists() || !dst.exists() {
                move_once(&src, &dst).or_else(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
            }
        }
        Ok(())
    }

    /// Notes that the stage is finished with `name`. Only the marker's existence counts: it is
    /// a hard link to the item's claim, which is released right after (no new file, and the
    /// claim's is kept rather than freed); without a claim, a small file written in place.
    fn mark_finished(&self, name: &str, how: &str) -> io::Result<()> {
        let path = self.spool.finished_marker(&self.name, name);
        let linked = match std::fs::hard_link(self.dirs.claim(name), &path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        };
        match (linked, self.fsync) {
            (Ok(()), true) => {
                lander_capture::publish::fsync_dir(path.parent().unwrap_or(Path::new(".")))
            }
            (Ok(()), false) => Ok(()),
            (Err(_), true) => fsutil::write_atomic(&path, how.as_bytes(), true),
            (Err(_), false) => std::fs::write(&path, how).map_err(|e| fsutil::with_path(e, &path)),
        }
    }

    fn finish(&self, name: &str, how: &str) -> io::Result<()> {
        self.mark_finished(name, how)?;
        let in_process = self.spool.in_process(&self.name);
        match self.user.on_success {
            AfterSuccess::Archive => self.moved(&in_process, &self.spool.done(&self.name), name),
            AfterSuccess::Remove => {
                remove_if_exists(&in_process.join(name))?;
                remove_if_exists(&manifest_path(&in_process.join(name)))
            }
        }
    }

    /// The reason file of a failed file.
    pub fn reason_path(&self, name: &str) -> PathBuf {
        self.spool.failed(&self.name).join(format!("{name}.reason"))
    }
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
        let mut names = fsutil::list_names(&self.spool.incoming(&self.name))?;
        names.retain(|n| !is_manifest_name(n));
        Ok(names)
    }

    fn may_start(&self, now: i64) -> bool {
        let now = match self.user.local_time {
            true => now + crate::sys::local_offset(now),
            false => now,
        };
        window::allowed(&self.user.windows, now)
    }

    fn accept(&self, name: &str) -> io::Result<Accept> {
        let incoming = self.spool.incoming(&self.name);
        if self.spool.finished_marker(&self.name, name).exists() {
            // A second link of a file already processed (a rerun of the fan-out): drop it.
            remove_if_exists(&manifest_path(&incoming.join(name)))?;
            remove_if_exists(&incoming.join(name))?;
            return Ok(Accept::Drop);
        }
        let in_process = self.spool.in_process(&self.name);
        self.moved(&incoming, &in_process, name)?;
        Ok(if in_process.join(name).exists() {
            Accept::Run
        } else {
            Accept::Drop
        })
    }

    fn command(&self, name: &str, job: &str, attempt: u32) -> io::Result<JobCommand> {
        let file = self.spool.in_process(&self.name).join(name);
        let manifest = manifest_path(&file);
        let mut env = self.user.env.clone();
        env.insert("LANDER_FILE".into(), file.to_string_lossy().into_owned());
        env.insert(
            "LANDER_MANIFEST".into(),
            manifest.to_string_lossy().into_owned(),
        );
        env.insert("LANDER_JOB".into(), job.to_owned());
        env.insert("LANDER_ATTEMPT".into(), attempt.to_string());
        Ok(JobCommand {
            argv: self.user.processor.clone(),
            env,
            counts_from: Some(manifest),
        })
    }

    fn action(&self, outcome: &Outcome) -> Action {
        self.user.action_for(outcome).unwrap_or(Action::Retry)
    }

    fn check(&self, _name: &str, _record: &RunRecord) -> Result<(), String> {
        Ok(())
    }

    fn complete(&self, name: &str, _record: &RunRecord) -> io::Result<()> {
        self.finish(name, "done")
    }

    fn ignore(&self, name: &str) -> io::Result<()> {
        self.finish(name, "ignored")
    }

    fn give_up(&self, name: &str, reason: &str) -> io::Result<bool> {
        let why = FailReason {
            file: name.to_owned(),
            reason: reason.to_owned(),
            time: crate::sys::now(),
        };
        write_json_atomic(&self.reason_path(name), &why, self.fsync)?;
        self.mark_finished(name, "failed")?;
        self.moved(
            &self.spool.in_process(&self.name),
            &self.spool.failed(&self.name),
            name,
        )?;
        Ok(false)
    }
}
