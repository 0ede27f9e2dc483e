//! The cleaner: retention of old files by age and size, per class (see
//! [`crate::config::Retention`]), and removal of leftovers older than `monitor.temp_max_age`:
//! temporary files, scratch directories of scrub attempts nobody will finish, job specs and
//! start markers no claim names (a dispatcher stopped between releasing a claim and
//! forgetting its attempt), and manifests in `raw/`, `scrubbed/` and `archive/` whose trace is
//! gone (a capture that discarded a partial file; a trace published manifest first follows
//! within moments).
//!
//! A trace file goes together with its manifest (and, in `failed/`, its reason): they are one
//! unit, aged by the trace file. Nothing that a claim refers to is removed: a claimed item's
//! files, the run record and logs of a job a claim names, an attempt's scratch directory.
//! Under a size limit the oldest units go first until the class is under it.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use lander_spool::manifest::is_manifest_name;
use lander_spool::os;
use lander_spool::publish::parse_temp_name;
use serde::Serialize;

use crate::claim;
use crate::config::{Config, Rule};
use crate::fsutil::{self, remove_if_exists};
use crate::layout::{list_items, Spool, StageDirs};

/// One unit removed (or, in a dry run, to be removed).
#[derive(Debug, Clone, Serialize)]
pub struct Removal {
    /// Class: `scrubbed`, `archive`, `done`, `failed`, `logs`, `records`, `finished`, `temp`,
    /// `work`, `jobs` (specs and start markers), `raw` (manifests).
    pub class: String,
    /// The unit's files (a trace file first, then its manifest and reason).
    pub paths: Vec<PathBuf>,
    /// Bytes of those files.
    pub bytes: u64,
    /// Age in seconds of the unit.
    pub age_secs: f64,
    /// `age`, `size`, `leftover` (a temporary file or scratch directory) or `orphan` (a
    /// manifest whose trace is gone, a spec or start marker no claim names).
    pub why: String,
}

/// What a clean did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CleanReport {
    /// Whether nothing was removed (`--dry-run`).
    pub dry_run: bool,
    /// The units removed.
    pub removed: Vec<Removal>,
    /// Bytes removed.
    pub bytes: u64,
    /// Units due for removal but kept because a claim refers to them.
    pub kept_in_use: usize,
    /// Units that could not be removed, with why.
    pub errors: Vec<String>,
}

/// A trace file with its manifest (and reason), or a single file.
#[derive(Debug, Clone)]
struct Unit {
    key: String,
    paths: Vec<PathBuf>,
    bytes: u64,
    modified: SystemTime,
}

impl Unit {
    fn age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.modified).unwrap_or_default()
    }
}

/// What claims refer to: items and job ids, per stage.
#[derive(Debug, Default)]
struct InUse {
    items: HashSet<String>,
    jobs: HashSet<String>,
}

impl InUse {
    fn of(dirs: &StageDirs) -> io::Result<InUse> {
        let mut in_use = InUse::default();
        for item in list_items(&dirs.claims)? {
            if let Ok(Some(c)) = claim::read(&dirs.claim(&item)) {
                in_use.jobs.insert(c.job.job_id);
            }
            in_use.items.insert(item);
        }
        Ok(in_use)
    }
}

struct Cleaner<'a> {
    config: &'a Config,
    now: SystemTime,
    report: CleanReport,
}

/// Applies the retention of `config` to its spool; with `dry_run`, only reports.
pub fn clean(config: &Config, dry_run: bool) -> io::Result<CleanReport> {
    let mut c = Cleaner {
        config,
        now: SystemTime::now(),
        report: CleanReport {
            dry_run,
            ..CleanReport::default()
        },
    };
    c.scrub_side()?;
    for user in config.users.keys() {
        c.user_side(user)?;
    }
    c.report.bytes = c.report.removed.iter().map(|r| r.bytes).sum();
    Ok(c.report)
}

impl Cleaner<'_> {
    fn scrub_side(&mut self) -> io::Result<()> {
        let spool = Spool::new(&self.config.spool);
        let dirs = Spool::new(&self.config.spool).scrub_dirs();
        let in_use = InUse::of(&dirs)?;
        let r = self.config.retention.clone();
        let mut scrubbed = Vec::new();
        let mut archive = Vec::new();
        for site in &self.config.sites {
            let claimed = |units: Vec<Unit>| -> Vec<(bool, Unit)> {
                let item = |u: &Unit| format!("{site}/{}", trace_name(&u.key));
                let units = units.into_iter();
                units
                    .map(|u| (in_use.items.contains(&item(&u)), u))
                    .collect()
            };
            let (orphans, _) = split_orphans(trace_units(&spool.raw(site))?);
            self.orphans("raw", claimed(orphans));
            let (orphans, units) = split_orphans(trace_units(&spool.scrubbed(site))?);
            self.orphans("scrubbed", claimed(orphans));
            scrubbed.extend(claimed(units));
            let (orphans, units) = split_orphans(trace_units(&spool.archive(site))?);
            self.orphans("archive", claimed(orphans));
            archive.extend(claimed(units));
            self.work_dirs(&spool.scrubbed(site).join(".work"), &in_use)?;
            for dir in [spool.raw(site), spool.scrubbed(site), spool.archive(site)] {
                self.temporaries(&dir)?;
            }
        }
        self.apply("scrubbed", r.scrubbed, scrubbed);
        self.apply("archive", r.archive, archive);
        self.stage_state(&dirs, &in_use)
    }

    fn user_side(&mut self, user: &str) -> io::Result<()> {
        let spool = Spool::new(&self.config.spool);
        let dirs = Spool::new(&self.config.spool).user_dirs(user);
        let in_use = InUse::of(&dirs)?;
        let r = self.config.retention.clone();
        // Users' directories hold one directory per site; items are `<site>/<name>`.
        let finished = spool.user_state(user).join("finished");
        let (mut done, mut failed, mut marks) = (Vec::new(), Vec::new(), Vec::new());
        for site in &self.config.users[user].subscriptions {
            let claimed = |units: Vec<Unit>| -> Vec<(bool, Unit)> {
                let units = units.into_iter();
                let key = |u: &Unit| format!("{site}/{}", u.key);
                units
                    .map(|u| (in_use.items.contains(&key(&u)), u))
                    .collect()
            };
            done.extend(claimed(trace_units(&spool.done(user).join(site))?));
            failed.extend(claimed(trace_units(&spool.failed(user).join(site))?));
            marks.extend(claimed(file_units(&finished.join(site))?));
            for dir in [
                spool.incoming(user),
                spool.in_process(user),
                spool.done(user),
                spool.failed(user),
                finished.clone(),
            ] {
                self.temporaries(&dir.join(site))?;
            }
        }
        self.apply("done", r.done, done);
        self.apply("failed", r.failed, failed);
        self.apply("finished", r.records, marks);
        self.stage_state(&dirs, &in_use)
    }

    /// Run records and logs of one stage, and temporaries in its state directories.
    fn stage_state(&mut self, dirs: &StageDirs, in_use: &InUse) -> io::Result<()> {
        let r = self.config.retention.clone();
        let by_job = |units: Vec<Unit>, suffixes: &[&str]| -> Vec<(bool, Unit)> {
            let job = |key: &str| {
                let stem = suffixes.iter().find_map(|s| key.strip_suffix(s));
                stem.unwrap_or(key).to_owned()
            };
            let units = units.into_iter();
            units
                .map(|u| (in_use.jobs.contains(&job(&u.key)), u))
                .collect()
        };
        let records = by_job(file_units(&dirs.records)?, &[".json"]);
        self.apply("records", r.records, records);
        let logs = by_job(file_units(&dirs.logs)?, &[".out", ".err"]);
        self.apply("logs", r.logs, logs);
        let attempts = by_job(file_units(&dirs.jobs)?, &[".spec.json", ".start.json"]);
        let orphans = attempts.into_iter().filter(|(in_use, _)| !in_use);
        self.orphans("jobs", orphans.collect());
        for dir in [&dirs.claims, &dirs.jobs, &dirs.records, &dirs.logs] {
            self.temporaries(dir)?;
        }
        for sub in subdirs(&dirs.claims)? {
            self.temporaries(&sub)?;
        }
        Ok(())
    }

    /// Removes by age, then by size (oldest first); units a claim refers to stay.
    fn apply(&mut self, class: &str, rule: Rule, mut units: Vec<(bool, Unit)>) {
        units.sort_by_key(|(_, u)| u.modified);
        let mut total: u64 = units.iter().map(|(_, u)| u.bytes).sum();
        for (in_use, unit) in units {
            let old = rule.max_age.is_some_and(|a| unit.age(self.now) > a);
            let over = rule.max_bytes.is_some_and(|m| total > m);
            if !old && !over {
                continue;
            }
            if in_use {
                self.report.kept_in_use += 1;
                continue;
            }
            total = total.saturating_sub(unit.bytes);
            self.remove(class, unit, if old { "age" } else { "size" });
        }
    }

    fn remove(&mut self, class: &str, unit: Unit, why: &str) {
        if !self.report.dry_run {
            for path in &unit.paths {
                let removed = if path.is_dir() {
                    std::fs::remove_dir_all(path).or_else(|e| match e.kind() {
                        io::ErrorKind::NotFound => Ok(()),
                        _ => Err(e),
                    })
                } else {
                    remove_if_exists(path)
                };
                if let Err(e) = removed {
                    self.report.errors.push(format!("{}: {e}", path.display()));
                    return;
                }
            }
        }
        self.report.removed.push(Removal {
            class: class.to_owned(),
            age_secs: unit.age(self.now).as_secs_f64(),
            paths: unit.paths,
            bytes: unit.bytes,
            why: why.to_owned(),
        });
    }

    /// Leftovers older than `monitor.temp_max_age`; those a claim refers to stay.
    fn orphans(&mut self, class: &str, units: Vec<(bool, Unit)>) {
        let grace = self.config.monitor.temp_max_age;
        for (in_use, unit) in units {
            if unit.age(self.now) <= grace {
                continue;
            }
            if in_use {
                self.report.kept_in_use += 1;
                continue;
            }
            self.remove(class, unit, "orphan");
        }
    }

    /// Publication temporaries (`.<final>.<host>.<pid>.<n>.tmp`) whose writers are gone:
    /// written on this host by a process that is dead, or on another host (whose processes
    /// cannot be seen from here) and untouched for longer than `monitor.temp_max_age`. A
    /// writer alive on this host keeps its temporaries however old: a file open for hours on
    /// a quiet link, the room its manifest will be written in. Nothing else is taken: no
    /// other dot name (NFS's `.nfs*`, capture's sequence marks, `.work`, another tool's
    /// files), no link, no directory.
    fn temporaries(&mut self, dir: &Path) -> io::Result<()> {
        let max_age = self.config.monitor.temp_max_age;
        for name in fsutil::list_all(dir)? {
            let Some((_, host, pid)) = parse_temp_name(&name) else {
                continue;
            };
            let Some(unit) = unit_of(dir, &name, &[])? else {
                continue;
            };
            let regular = std::fs::symlink_metadata(&unit.paths[0]).is_ok_and(|m| m.is_file());
            let writer_gone = match host == os::hostname() {
                true => !crate::sys::running(pid),
                false => unit.age(self.now) > max_age,
            };
            if regular && writer_gone {
                self.remove("temp", unit, "leftover");
            }
        }
        Ok(())
    }

    /// Scratch directories of scrub attempts no claim names any more (given up, or left by a
    /// dispatcher that stopped), older than `monitor.temp_max_age`.
    fn work_dirs(&mut self, work: &Path, in_use: &InUse) -> io::Result<()> {
        let max_age = self.config.monitor.temp_max_age;
        for job in subdirs(work)? {
            let name = job.file_name().unwrap_or_default().to_string_lossy();
            if in_use.jobs.contains(name.as_ref()) {
                continue;
            }
            let Some(mut unit) = unit_of(work, &name, &[])? else {
                continue;
            };
            unit.bytes = tree_bytes(&job);
            if unit.age(self.now) > max_age {
                self.remove("work", unit, "leftover");
            }
        }
        Ok(())
    }
}

/// Trace files of `dir` with their manifests and reasons, one unit each; a manifest or reason
/// whose trace is gone is a unit of its own.
fn trace_units(dir: &Path) -> io::Result<Vec<Unit>> {
    let names: HashSet<String> = fsutil::list_names(dir)?.into_iter().collect();
    let mut units = Vec::new();
    for name in &names {
        let companion = is_manifest_name(name) || name.ends_with(".reason");
        let trace = name
            .strip_suffix(".json")
            .or_else(|| name.strip_suffix(".reason"));
        if companion && trace.is_some_and(|t| names.contains(t)) {
            continue; // goes with its trace file
        }
        let with: Vec<String> = [format!("{name}.json"), format!("{name}.reason")]
            .into_iter()
            .filter(|c| !companion && names.contains(c))
            .collect();
        units.extend(unit_of(dir, name, &with)?);
    }
    Ok(units)
}

/// Manifests alone (their trace is gone), and the other units.
fn split_orphans(units: Vec<Unit>) -> (Vec<Unit>, Vec<Unit>) {
    units.into_iter().partition(|u| is_manifest_name(&u.key))
}

/// The trace file a unit stands for: its own name, or its trace's for a companion alone.
fn trace_name(key: &str) -> &str {
    let companion = key
        .strip_suffix(".json")
        .or_else(|| key.strip_suffix(".reason"));
    companion.unwrap_or(key)
}

/// Every regular file of `dir`, one unit each.
fn file_units(dir: &Path) -> io::Result<Vec<Unit>> {
    let mut units = Vec::new();
    for name in fsutil::list_names(dir)? {
        units.extend(unit_of(dir, &name, &[])?);
    }
    Ok(units)
}

/// The unit of `dir/name` with its companions; `None` if it vanished meanwhile.
fn unit_of(dir: &Path, name: &str, with: &[String]) -> io::Result<Option<Unit>> {
    let path = dir.join(name);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fsutil::with_path(e, &path)),
    };
    let mut unit = Unit {
        key: name.to_owned(),
        paths: vec![path],
        bytes: meta.len(),
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    };
    for c in with {
        let p = dir.join(c);
        unit.bytes += std::fs::metadata(&p).map_or(0, |m| m.len());
        unit.paths.push(p);
    }
    Ok(Some(unit))
}

fn subdirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fsutil::with_path(e, dir)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
        }
    }
    Ok(out)
}

fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}
