//! The scrub stage: raw file -> `lander-scrub` job -> checked, published scrubbed file ->
//! hardlinks into every subscribed user's `incoming/` -> raw file removed or archived.

use std::io;
use std::path::{Path, PathBuf};

use lander_capture::manifest::{is_manifest_name, manifest_path, Manifest};

use crate::config::{Action, AfterSuccess, Config};
use crate::fsutil::{self, link_or_copy, move_once, remove_if_exists, LinkOutcome};
use crate::record::{Outcome, RunRecord};
use crate::spool::{split_item, Spool};
use crate::stage::{Accept, JobCommand, Policy, Stage, StageDirs};

/// The scrub stage.
#[derive(Debug)]
pub struct ScrubStage {
    config: Config,
    spool: Spool,
    dirs: StageDirs,
    command: Vec<String>,
}

impl ScrubStage {
    /// The stage for `config`; `default_scrub` is the scrub program used when the configuration
    /// names none (normally `lander-scrub` beside the running binary).
    pub fn new(config: Config, default_scrub: PathBuf) -> io::Result<ScrubStage> {
        let spool = Spool::new(&config.spool);
        let state = spool.scrub_state();
        let dirs = StageDirs::under(&state, state.join("logs"));
        for site in &config.sites {
            for dir in [
                dirs.claims.join(site),
                spool.raw(site),
                spool.scrubbed(site),
            ] {
                std::fs::create_dir_all(&dir).map_err(|e| fsutil::with_path(e, &dir))?;
            }
        }
        let command = config
            .scrub
            .command
            .clone()
            .unwrap_or_else(|| vec![default_scrub.to_string_lossy().into_owned()]);
        Ok(ScrubStage {
            config,
            spool,
            dirs,
            command,
        })
    }

    fn output(&self, item: &str, job: &str) -> PathBuf {
        let (site, name) = split_item(item);
        self.spool.work(site, job).join(name)
    }

    fn substitute(&self, arg: &str, input: &Path, output: &Path, item: &str) -> String {
        let s = &self.config.scrub;
        let (site, name) = split_item(item);
        arg.replace("{in}", &input.to_string_lossy())
            .replace("{out}", &output.to_string_lossy())
            .replace("{mapping}", &s.mapping)
            .replace("{key}", &s.key_file.to_string_lossy())
            .replace("{payload}", &s.payload)
            .replace("{checksums}", &s.checksums)
            .replace("{mac}", &s.mac)
            .replace("{mpls}", &s.mpls)
            .replace("{site}", site)
            .replace("{name}", name)
    }

    /// Publishes `src` (and its manifest, first) under `dst`, unless `dst` already exists.
    /// The scratch files are moved, not copied or linked: the attempt's directory is then
    /// left empty.
    fn publish(&self, src: &Path, dst: &Path) -> io::Result<()> {
        for (from, to) in [
            (manifest_path(src), manifest_path(dst)),
            (src.to_owned(), dst.to_owned()),
        ] {
            if to.exists() {
                continue;
            }
            // A rerun after a crash finds `from` moved already and `to` in place.
            fsutil::move_once(&from, &to).or_else(|e| {
                if to.exists() {
                    Ok(())
                } else {
                    Err(fsutil::with_path(e, &from))
                }
            })?;
        }
        if self.config.fsync {
            lander_capture::publish::fsync_dir(dst.parent().unwrap_or(Path::new(".")))?;
        }
        Ok(())
    }

    /// Links a published file into every subscribed user's `incoming/`, once.
    fn fan_out(&self, site: &str, name: &str, published: &Path) -> io::Result<()> {
        for (user, cfg) in &self.config.users {
            if !cfg.subscriptions.iter().any(|s| s == site) || self.user_has(user, name) {
                continue;
            }
            let incoming = self.spool.incoming(user);
            std::fs::create_dir_all(&incoming).map_err(|e| fsutil::with_path(e, &incoming))?;
            let dst = incoming.join(name);
            for (from, to) in [
                (manifest_path(published), manifest_path(&dst)),
                (published.to_owned(), dst.clone()),
            ] {
                if link_or_copy(&from, &to)? == LinkOutcome::Copied {
                    tracing::warn!(from = %from.display(), to = %to.display(), "different filesystems: copied, not linked");
                }
            }
        }
        Ok(())
    }

    /// Whether the user already has (or had) this file anywhere.
    fn user_has(&self, user: &str, name: &str) -> bool {
        let s = &self.spool;
        [
            s.incoming(user),
            s.in_process(user),
            s.done(user),
            s.failed(user),
        ]
        .iter()
        .any(|d| d.join(name).exists())
            || s.finished_marker(user, name).exists()
    }

    fn dispose_raw(&self, site: &str, name: &str) -> io::Result<()> {
        let raw = self.spool.raw(site).join(name);
        let files = [raw.clone(), manifest_path(&raw)];
        match self.config.scrub.raw_after {
            AfterSuccess::Remove => files.iter().try_for_each(|f| remove_if_exists(f)),
            AfterSuccess::Archive => {
                let archive = self.spool.archive(site);
                std::fs::create_dir_all(&archive).map_err(|e| fsutil::with_path(e, &archive))?;
                for f in files.iter().filter(|f| f.exists()) {
                    move_once(f, &archive.join(f.file_name().unwrap_or_default()))?;
                }
                Ok(())
            }
        }
    }
}

/// Checks a scrub output against its manifest: digest, and an anonymization section.
pub fn check_output(out: &Path, verify_digest: bool) -> Result<Manifest, String> {
    let manifest =
        Manifest::read(&manifest_path(out)).map_err(|e| format!("scrub output manifest: {e}"))?;
    if manifest.anonymization.is_none() {
        return Err(format!(
            "{}: manifest has no anonymization section",
            out.display()
        ));
    }
    if verify_digest {
        let digest = file_digest(out).map_err(|e| format!("{}: {e}", out.display()))?;
        if !digest.eq_ignore_ascii_case(&manifest.blake3) {
            return Err(format!(
                "{}: BLAKE3 {digest} does not match manifest {}",
                out.display(),
                manifest.blake3
            ));
        }
    }
    Ok(manifest)
}

/// BLAKE3 of a file, hex.
pub fn file_digest(path: &Path) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

impl Stage for ScrubStage {
    fn name(&self) -> &str {
        "scrub"
    }

    fn dirs(&self) -> &StageDirs {
        &self.dirs
    }

    fn policy(&self) -> Policy {
        let s = &self.config.scrub;
        Policy {
            retries: s.retries,
            backoff: s.backoff,
            timeout: s.timeout,
        }
    }

    fn scan(&self) -> io::Result<Vec<String>> {
        let mut items = Vec::new();
        for site in &self.config.sites {
            for name in fsutil::list_names(&self.spool.raw(site))? {
                if !is_manifest_name(&name) {
                    items.push(format!("{site}/{name}"));
                }
            }
        }
        Ok(items)
    }

    fn accept(&self, item: &str) -> io::Result<Accept> {
        let (site, name) = split_item(item);
        Ok(if self.spool.raw(site).join(name).exists() {
            Accept::Run
        } else {
            Accept::Drop
        })
    }

    fn command(&self, item: &str, job: &str, _attempt: u32) -> io::Result<JobCommand> {
        let (site, name) = split_item(item);
        let input = self.spool.raw(site).join(name);
        let output = self.output(item, job);
        let args = self
            .config
            .scrub
            .args
            .iter()
            .map(|a| self.substitute(a, &input, &output, item));
        Ok(JobCommand {
            argv: self.command.iter().cloned().chain(args).collect(),
            env: self.config.scrub.env.clone(),
            counts_from: Some(manifest_path(&output)),
        })
    }

    fn prepare(&self, item: &str, job: &str) -> io::Result<()> {
        let (site, _) = split_item(item);
        let work = self.spool.work(site, job);
        match std::fs::create_dir(&work) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&work).map_err(|e| fsutil::with_path(e, &work))
            }
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(fsutil::with_path(e, &work)),
            _ => Ok(()),
        }
    }

    fn action(&self, outcome: &Outcome) -> Action {
        match outcome {
            Outcome::Cancelled => Action::Fail,
            _ => Action::Retry,
        }
    }

    fn check(&self, item: &str, record: &RunRecord) -> Result<(), String> {
        let mut out = self.output(item, &record.job_id);
        if !manifest_path(&out).exists() {
            // A dispatcher that stopped after publishing (the scratch files are moved into
            // place) and before releasing the claim: the result to check is the published one.
            let (site, name) = split_item(item);
            let published = self.spool.scrubbed(site).join(name);
            if published.exists() {
                out = published;
            }
        }
        check_output(&out, self.config.scrub.verify_digest).map(drop)
    }

    fn complete(&self, item: &str, record: &RunRecord) -> io::Result<()> {
        let (site, name) = split_item(item);
        let published = self.spool.scrubbed(site).join(name);
        self.publish(&self.output(item, &record.job_id), &published)?;
        self.fan_out(site, name, &published)?;
        self.dispose_raw(site, name)
    }

    fn ignore(&self, _item: &str) -> io::Result<()> {
        Ok(())
    }

    fn give_up(&self, _item: &str, _reason: &str) -> io::Result<bool> {
        Ok(true)
    }

    fn discard_attempt(&self, item: &str, job: &str) -> io::Result<()> {
        let (site, _) = split_item(item);
        let work = self.spool.work(site, job);
        // Mostly empty (its output was moved into place): one rmdir, no directory walk.
        let removed = std::fs::remove_dir(&work).or_else(|_| std::fs::remove_dir_all(&work));
        match removed {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(fsutil::with_path(e, &work)),
            _ => Ok(()),
        }
    }
}
