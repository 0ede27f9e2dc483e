//! The spool directory layout: where every stage's inputs, outputs and state live.
//!
//! ```text
//! <spool>/raw/<site>/                      finished trace files and their manifests
//! <spool>/archive/<site>/                  raw files kept after scrubbing (raw_after = "archive")
//! <spool>/scrubbed/<site>/                 published scrubbed files and manifests
//! <spool>/scrubbed/<site>/.work/<job>/     one scrub attempt's output, before checking
//! <spool>/state/scrub/{claims/<site>,jobs,records,logs}/, state/scrub/paused
//! <spool>/state/scrub/input/<job>/          the raw file a scrub job reads (a pinned hard link)
//! <spool>/state/scrub/names/<site>/<name>   the digest of the file that had a name
//! <spool>/state/quarantine/<site>/          raw entries that cannot be items, with reasons
//! <spool>/users/<user>/{incoming,in-process,done,failed}/<site>/, users/<user>/logs/
//! <spool>/users/<user>/state/{claims/<site>,jobs,records,finished/<site>,quarantine}/
//! <spool>/users/<user>/state/paused
//! ```
//!
//! Items of both stages are `<site>/<name>`: two sites with the same file name never meet.
//! Readers of the layout (the monitor, the cleaner, job control) find everything here and in
//! [`StageDirs`], without going through the stages or the engine.

use std::path::{Path, PathBuf};

mod stage_dirs;

pub use stage_dirs::{list_items, StageDirs};

/// Paths in the spool.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
}

impl Spool {
    /// The spool at `root`.
    pub fn new(root: &Path) -> Spool {
        Spool {
            root: root.to_owned(),
        }
    }

    /// The spool root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Raw files of a site.
    pub fn raw(&self, site: &str) -> PathBuf {
        self.root.join("raw").join(site)
    }

    /// Archived raw files of a site.
    pub fn archive(&self, site: &str) -> PathBuf {
        self.root.join("archive").join(site)
    }

    /// Published scrubbed files of a site.
    pub fn scrubbed(&self, site: &str) -> PathBuf {
        self.root.join("scrubbed").join(site)
    }

    /// Scratch output of one scrub attempt.
    pub fn work(&self, site: &str, job: &str) -> PathBuf {
        self.scrubbed(site).join(".work").join(job)
    }

    /// State of the scrub stage.
    pub fn scrub_state(&self) -> PathBuf {
        self.root.join("state").join("scrub")
    }

    /// Pinned inputs of scrub jobs.
    pub fn inputs(&self) -> PathBuf {
        self.scrub_state().join("input")
    }

    /// The pinned input of one scrub job.
    pub fn input(&self, job: &str) -> PathBuf {
        self.inputs().join(job)
    }

    /// The registry of used names.
    pub fn names(&self) -> PathBuf {
        self.scrub_state().join("names")
    }

    /// Quarantined raw entries of a site.
    pub fn scrub_quarantine(&self, site: &str) -> PathBuf {
        self.root.join("state").join("quarantine").join(site)
    }

    /// Quarantined entries of a user's `incoming/`.
    pub fn user_quarantine(&self, user: &str) -> PathBuf {
        self.user_state(user).join("quarantine")
    }

    /// A user's directory.
    pub fn user(&self, user: &str) -> PathBuf {
        self.root.join("users").join(user)
    }

    /// A user's `incoming/`.
    pub fn incoming(&self, user: &str) -> PathBuf {
        self.user(user).join("incoming")
    }

    /// A user's `in-process/`.
    pub fn in_process(&self, user: &str) -> PathBuf {
        self.user(user).join("in-process")
    }

    /// A user's `done/`.
    pub fn done(&self, user: &str) -> PathBuf {
        self.user(user).join("done")
    }

    /// A user's `failed/`.
    pub fn failed(&self, user: &str) -> PathBuf {
        self.user(user).join("failed")
    }

    /// A user's job logs.
    pub fn user_logs(&self, user: &str) -> PathBuf {
        self.user(user).join("logs")
    }

    /// State of a user's stage.
    pub fn user_state(&self, user: &str) -> PathBuf {
        self.user(user).join("state")
    }

    /// Marker of an item (`<site>/<name>`) a user's stage has finished with (done, ignored or
    /// failed), so that a second link of it into `incoming/` is recognized as a duplicate.
    pub fn finished_marker(&self, user: &str, item: &str) -> PathBuf {
        self.user_state(user).join("finished").join(item)
    }

    /// The state directories of the scrub stage.
    pub fn scrub_dirs(&self) -> StageDirs {
        let state = self.scrub_state();
        StageDirs::under(&state, state.join("logs"))
    }

    /// The state directories of user `user`'s stage.
    pub fn user_dirs(&self, user: &str) -> StageDirs {
        StageDirs::under(&self.user_state(user), self.user_logs(user))
    }

    /// The state directories of a stage named `scrub` or `user/<name>`; `None` for any other
    /// name (whether the user is configured is the configuration's to say).
    pub fn stage_dirs(&self, stage: &str) -> Option<StageDirs> {
        if stage == "scrub" {
            return Some(self.scrub_dirs());
        }
        let user = stage.strip_prefix("user/")?;
        (!user.is_empty() && !user.contains('/')).then(|| self.user_dirs(user))
    }
}

/// Splits a scrub item `<site>/<file>`.
pub fn split_item(item: &str) -> (&str, &str) {
    item.split_once('/').unwrap_or(("", item))
}
