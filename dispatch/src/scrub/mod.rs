//! The scrub stage: raw file -> `lander-scrub` job -> checked, published scrubbed file ->
//! hardlinks into every subscribed user's `incoming/<site>/` -> raw file removed or archived.
//!
//! A raw file is taken only as a regular file (never through a link), and by identity: the
//! claim records its digest and inode, the job reads a hard link of that inode pinned in
//! `state/scrub/input/<job>/` (so no entry swapped in after the check is read), and a different
//! file under a name used before is renamed (see [`identity`]) before it is worked on.

use std::io;
use std::path::{Path, PathBuf};

use lander_spool::manifest::{is_manifest_name, manifest_path, Manifest};

use crate::claim::{Claim, Identity};
use crate::config::{Action, Config};
use crate::crash;
use crate::fsutil::{self, remove_if_exists};
use crate::layout::{split_item, Spool, StageDirs};
use crate::quarantine;
use crate::record::{JobOutcome, JobRecord};
use crate::stage::{Accept, JobCommand, Policy, Stage};

pub mod identity;
mod publish;

#[cfg(test)]
mod dispose_tests;

use identity::{digest_at, identify, source_digest, Found, Names};

/// The scrub stage.
#[derive(Debug)]
pub struct ScrubStage {
    config: Config,
    spool: Spool,
    dirs: StageDirs,
    command: Vec<String>,
    names: Names,
    scrubbed_gid: Option<u32>,
}

/// How a raw file's name has been used before.
enum Use {
    /// Never.
    New,
    /// By this very file (same digest): a copy of a file already handled.
    Same,
    /// By another file.
    Other,
}

impl ScrubStage {
    /// The stage for `config`; `default_scrub` is the scrub program used when the configuration
    /// names none (normally `lander-scrub` beside the running binary).
    pub fn new(config: Config, default_scrub: PathBuf) -> io::Result<ScrubStage> {
        let spool = Spool::new(&config.spool);
        let dirs = spool.scrub_dirs();
        let scrubbed_gid = match &config.scrub.scrubbed_group {
            Some(g) => Some(lander_spool::os::group_id(g).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("scrubbed_group {g:?}: no such group ({e})"),
                )
            })?),
            None => None,
        };
        for site in &config.sites {
            fsutil::create_dir_mode(&dirs.claims.join(site), 0o755)?;
            fsutil::create_dir_mode(&spool.raw(site), 0o750)?;
            fsutil::create_dir_mode(&spool.scrubbed(site), 0o755)?;
            if let Some(gid) = scrubbed_gid {
                let dir = spool.scrubbed(site);
                std::os::unix::fs::chown(&dir, None, Some(gid))
                    .map_err(|e| fsutil::with_path(e, &dir))?;
            }
        }
        fsutil::create_dir_mode(&spool.inputs(), 0o700)?;
        let command = config
            .scrub
            .command
            .clone()
            .unwrap_or_else(|| vec![default_scrub.to_string_lossy().into_owned()]);
        Ok(ScrubStage {
            names: Names::new(spool.names()),
            config,
            spool,
            dirs,
            command,
            scrubbed_gid,
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
            .replace("{mapping}", &s.mapping.to_string())
            .replace("{key}", &s.key_file.to_string_lossy())
            .replace("{payload}", &s.payload.to_string())
            .replace("{checksums}", &s.checksums.to_string())
            .replace("{mac}", &s.mac.to_string())
            .replace("{mpls}", &s.mpls.to_string())
            .replace("{site}", site)
            .replace("{name}", name)
    }

    fn quarantine(&self, site: &str, name: &std::ffi::OsStr, reason: &str) -> io::Result<bool> {
        let to = self.spool.scrub_quarantine(site);
        let dir = self.spool.raw(site);
        quarantine::quarantine(&to, "scrub", &dir, name, reason, self.config.fsync)
    }

    /// Raw files of one site; entries that cannot be items are quarantined.
    fn scan_site(&self, site: &str, items: &mut Vec<String>) -> io::Result<()> {
        let dir = self.spool.raw(site);
        let entries = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other.map_err(|e| fsutil::with_path(e, &dir))?,
        };
        for entry in entries {
            let entry = entry.map_err(|e| fsutil::with_path(e, &dir))?;
            let name = entry.file_name();
            let lossy = name.to_string_lossy();
            if lossy.starts_with('.') || (is_manifest_name(&lossy) && name.to_str().is_some()) {
                continue; // temporaries; manifests go with their trace
            }
            let why = match fsutil::bad_name(&name) {
                Some(why) => Some(why),
                None => match entry.file_type() {
                    Ok(t) if t.is_file() => None,
                    Ok(_) => std::fs::symlink_metadata(entry.path())
                        .ok()
                        .map(|m| format!("{}, not a regular file", fsutil::kind_of(&m))),
                    Err(e) => Some(e.to_string()),
                },
            };
            match why {
                None => items.push(format!("{site}/{lossy}")),
                Some(why) => {
                    if let Err(e) = self.quarantine(site, &name, &why) {
                        tracing::warn!(site, name = %lossy, "cannot quarantine: {e}");
                    }
                }
            }
        }
        Ok(())
    }

    /// How the name of the raw file with identity `id` was used before: the registry of
    /// names, else what `scrubbed/` and `archive/` hold under it.
    fn used(&self, site: &str, name: &str, id: &Identity) -> io::Result<Use> {
        let before = match self.names.get(site, name)? {
            Some(d) => Some(d),
            None => self.published_digest(site, name)?,
        };
        Ok(match before {
            None => Use::New,
            Some(d) if d == id.digest => Use::Same,
            Some(_) => Use::Other,
        })
    }

    /// The raw digest behind a completely published scrubbed file, or an archived one.
    fn published_digest(&self, site: &str, name: &str) -> io::Result<Option<String>> {
        let scrubbed = self.spool.scrubbed(site).join(name);
        if fsutil::exists(&scrubbed) {
            if let Some(d) = source_digest(&scrubbed) {
                return Ok(Some(d));
            }
        }
        let archived = self.spool.archive(site).join(name);
        if !fsutil::exists(&archived) {
            return Ok(None);
        }
        let size = std::fs::symlink_metadata(&archived).map_or(0, |m| m.len());
        match identity::manifest_digest(&archived, size) {
            Some(d) => Ok(Some(d)),
            None => digest_at(&archived),
        }
    }

    /// Gives a different file that arrived under a used name the first fresh name free,
    /// manifest first (link, then unlink: nothing is written over). A copy of it under a fresh
    /// name (left by a crash between link and unlink) counts as done.
    fn rename_fresh(&self, site: &str, name: &str, id: &Identity) -> io::Result<String> {
        let dir = self.spool.raw(site);
        for k in 1..1000 {
            let fresh = identity::fresh_name(name, k);
            if fsutil::bad_name(std::ffi::OsStr::new(&fresh)).is_some() {
                break;
            }
            match self.names.get(site, &fresh)? {
                Some(d) if d == id.digest => {}
                Some(_) => continue,
                None if self
                    .published_digest(site, &fresh)?
                    .is_some_and(|d| d != id.digest) =>
                {
                    continue
                }
                None => {}
            }
            let (from, to) = (dir.join(name), dir.join(&fresh));
            if fsutil::exists(&to) && !fsutil::same_entry(&from, &to) {
                continue;
            }
            if fsutil::exists(&manifest_path(&from)) && !fsutil::exists(&manifest_path(&to)) {
                fsutil::move_once(&manifest_path(&from), &manifest_path(&to))?;
            }
            fsutil::move_once(&from, &to)?;
            crash::point("scrub.renamed");
            tracing::warn!(
                site,
                name,
                fresh,
                "a different file under a used name: renamed"
            );
            return Ok(fresh);
        }
        Err(io::Error::other(format!(
            "{}: no fresh name left for a different file under a used name",
            dir.join(name).display()
        )))
    }

    /// Finishes a second copy of a file already handled: its results are in place (what a
    /// crash left undone is done), the copy is disposed of.
    fn finish_duplicate(&self, site: &str, name: &str, id: &Identity) -> io::Result<()> {
        let published = self.spool.scrubbed(site).join(name);
        if fsutil::exists(&published) && fsutil::exists(&manifest_path(&published)) {
            self.fan_out(site, name, &published)?;
        }
        self.names.register(site, name, &id.digest)?;
        self.dispose_raw(site, name, Some(id))
    }

    /// Hard-links the raw file (and its manifest) into the job's private input directory and
    /// checks the link is the inode of the claim's identity; `false` if it is not (the entry
    /// was swapped since).
    fn pin(&self, site: &str, name: &str, job: &str, id: &Identity) -> io::Result<bool> {
        let dir = self.spool.input(job);
        fsutil::create_dir_mode(&dir, 0o700)?;
        let raw = self.spool.raw(site).join(name);
        let pinned = dir.join(name);
        link_here(&raw, &pinned)?;
        let ok = std::fs::symlink_metadata(&pinned).is_ok_and(|m| m.is_file() && id.same_inode(&m));
        if !ok {
            self.unpin(job)?;
            return Ok(false);
        }
        let manifest = manifest_path(&pinned);
        if link_here(&manifest_path(&raw), &manifest).is_ok()
            && !std::fs::symlink_metadata(&manifest).is_ok_and(|m| m.is_file())
        {
            remove_if_exists(&manifest)?;
        }
        crash::point("scrub.pinned");
        Ok(true)
    }

    fn unpin(&self, job: &str) -> io::Result<()> {
        fsutil::remove_tree(&self.spool.input(job)).map(drop)
    }
}

/// Hard-links `from` to `to`; an existing link of the same inode is done.
fn link_here(from: &Path, to: &Path) -> io::Result<()> {
    match std::fs::hard_link(from, to) {
        Err(_) if fsutil::same_entry(from, to) => Ok(()),
        other => other.map_err(|e| fsutil::with_path(e, from)),
    }
}

/// Checks a scrub output against its manifest: digest, and an anonymization section.
pub fn check_output(out: &Path, verify_digest: bool) -> Result<Manifest, String> {
    check_parts(&manifest_path(out), out, verify_digest, None)
}

/// Checks a scrub output `data` against the manifest at `manifest`: an anonymization section,
/// made from the raw file with digest `source` (when both know it), and the data's digest.
fn check_parts(
    manifest: &Path,
    data: &Path,
    verify_digest: bool,
    source: Option<&str>,
) -> Result<Manifest, String> {
    let m = Manifest::read(manifest).map_err(|e| format!("scrub output manifest: {e}"))?;
    let Some(anon) = &m.anonymization else {
        return Err(format!(
            "{}: manifest has no anonymization section",
            manifest.display()
        ));
    };
    if let (Some(made_from), Some(source)) = (&anon.source_blake3, source) {
        if !made_from.eq_ignore_ascii_case(source) {
            return Err(format!(
                "{}: made from BLAKE3 {made_from}, not from the claimed file {source}",
                manifest.display()
            ));
        }
    }
    if verify_digest {
        let digest = file_digest(data).map_err(|e| format!("{}: {e}", data.display()))?;
        if !digest.eq_ignore_ascii_case(&m.blake3) {
            return Err(format!(
                "{}: BLAKE3 {digest} does not match manifest {}",
                data.display(),
                m.blake3
            ));
        }
    }
    Ok(m)
}

/// BLAKE3 of a file, hex.
pub fn file_digest(path: &Path) -> io::Result<String> {
    match fsutil::open_regular(path)? {
        Ok((file, _)) => fsutil::digest_of(&file),
        Err(kind) => Err(io::Error::other(format!("{kind}, not a regular file"))),
    }
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
            self.scan_site(site, &mut items)?;
        }
        Ok(items)
    }

    fn accept(&self, item: &str, claim: &Claim) -> io::Result<Accept> {
        let (site, name) = split_item(item);
        let raw = self.spool.raw(site).join(name);
        let found = identify(&raw)?;
        let Found::Regular(now) = found else {
            if let Found::Other(kind) = found {
                let why = format!("{kind}, not a regular file");
                self.quarantine(site, std::ffi::OsStr::new(name), &why)?;
            }
            return Ok(Accept::Drop);
        };
        // Replaced since the claim was made: the next pass takes it as it is then.
        let Some(id) = claim
            .identity
            .as_ref()
            .filter(|i| i.dev == now.dev && i.ino == now.ino)
        else {
            return Ok(Accept::Drop);
        };
        match self.used(site, name, id)? {
            Use::New => {}
            Use::Same if digest_at(&raw)?.as_deref() == Some(id.digest.as_str()) => {
                self.finish_duplicate(site, name, id)?;
                return Ok(Accept::Drop);
            }
            Use::Same | Use::Other => {
                self.rename_fresh(site, name, id)?;
                return Ok(Accept::Drop);
            }
        }
        Ok(match self.pin(site, name, &claim.job.job_id, id)? {
            true => Accept::Run,
            false => Accept::Drop,
        })
    }

    fn command(&self, item: &str, job: &str, _attempt: u32) -> io::Result<JobCommand> {
        let (site, name) = split_item(item);
        let raw = self.spool.raw(site).join(name);
        let identity = match identify(&raw)? {
            Found::Regular(id) => Some(id),
            Found::Other(_) | Found::Gone => None,
        };
        let input = self.spool.input(job).join(name);
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
            identity,
            run_as: None,
        })
    }

    fn prepare(&self, item: &str, job: &str) -> io::Result<()> {
        let (site, _) = split_item(item);
        let work = self.spool.work(site, job);
        match std::fs::create_dir(&work) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => fsutil::create_dir_mode(&work, 0o750),
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(fsutil::with_path(e, &work)),
            _ => Ok(()),
        }
    }

    fn action(&self, outcome: &JobOutcome) -> Action {
        match outcome {
            JobOutcome::Cancelled => Action::Fail,
            _ => Action::Retry,
        }
    }

    /// Checks the attempt's output wherever each part is: still in the scratch directory, or
    /// already published by a dispatcher that stopped half way (manifest moved, data not yet,
    /// or both), as long as the published part was made from the claimed file.
    fn check(&self, item: &str, claim: &Claim, record: &JobRecord) -> Result<(), String> {
        let (site, name) = split_item(item);
        let work = self.output(item, &record.job.job_id);
        let published = self.spool.scrubbed(site).join(name);
        let source = claim.identity.as_ref().map(|i| i.digest.as_str());
        let verify = self.config.scrub.verify_digest;
        let pick = |w: PathBuf, p: PathBuf| if fsutil::exists(&w) { w } else { p };
        let checked = |work: &Path| {
            let manifest = pick(manifest_path(work), manifest_path(&published));
            let data = pick(work.to_owned(), published.clone());
            check_parts(&manifest, &data, verify, source).map(drop)
        };
        match checked(&work) {
            // Another dispatcher acting on the same view may have moved a part meanwhile.
            Err(_) if !fsutil::exists(&work) || !fsutil::exists(&manifest_path(&work)) => {
                checked(&work)
            }
            other => other,
        }
    }

    fn complete(&self, item: &str, claim: &Claim, record: &JobRecord) -> io::Result<()> {
        let (site, name) = split_item(item);
        let published = self.spool.scrubbed(site).join(name);
        let id = claim.identity.as_ref();
        self.publish(&self.output(item, &record.job.job_id), &published)?;
        self.fan_out(site, name, &published)?;
        if let Some(id) = id {
            self.names.register(site, name, &id.digest)?;
            crash::point("scrub.registered");
        }
        self.dispose_raw(site, name, id)
    }

    fn ignore(&self, _item: &str) -> io::Result<()> {
        Ok(())
    }

    fn give_up(&self, _item: &str, _reason: &str) -> io::Result<bool> {
        Ok(true)
    }

    fn sweep_scratch(
        &self,
        in_use: &std::collections::HashSet<String>,
        min_age: std::time::Duration,
    ) -> io::Result<usize> {
        let mut dirs = vec![self.spool.inputs()];
        dirs.extend(
            self.config
                .sites
                .iter()
                .map(|s| self.spool.scrubbed(s).join(".work")),
        );
        let mut removed = 0;
        for site in &self.config.sites {
            for dir in [
                self.spool.names().join(site),
                self.spool.scrub_quarantine(site),
            ] {
                for l in fsutil::abandoned_temporaries(&dir, min_age).unwrap_or_default() {
                    remove_if_exists(&l)?;
                    removed += 1;
                }
            }
        }
        for dir in dirs {
            for job in fsutil::list_all(&dir)? {
                let path = dir.join(&job);
                let age = std::fs::symlink_metadata(&path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok());
                if in_use.contains(&job) || age.is_none_or(|a| a < min_age) {
                    continue;
                }
                if std::fs::remove_dir_all(&path).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    fn discard_attempt(&self, item: &str, job: &str) -> io::Result<()> {
        let (site, _) = split_item(item);
        let work = self.spool.work(site, job);
        // Mostly empty (its output was moved into place): one rmdir, no directory walk. One
        // still holding NFS silly-renamed files goes in a later sweep.
        fsutil::remove_tree(&work)?;
        self.unpin(job)
    }
}
