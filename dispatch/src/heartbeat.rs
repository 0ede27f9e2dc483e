//! Heartbeats: a running job's wrapper rewrites a small beat file beside its start marker every
//! few seconds, so any dispatcher on any host can tell a live job from a dead one from shared
//! evidence alone.
//!
//! A beat carries a sequence number and a reading of the writer's own boot clock. Clocks of two
//! hosts are never compared: a reader on the writer's host compares the writer's reading with
//! its own reading of the same clock; a reader on another host watches the sequence number and
//! measures on its own clock how long it has stood still. A beat is stale only after standing
//! still for the grace: twice the beat interval plus the time a network filesystem may show an
//! old copy of a file (its attribute cache: `acregmax`, 60 s by default for NFS).

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::fsutil::write_json_atomic;
use crate::record::read_json;
use crate::sys;

/// NFS's default longest attribute cache time (nfs(5), `acregmax`).
const NFS_DEFAULT_ATTR_CACHE: Duration = Duration::from_secs(60);

/// One heartbeat of a running job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Beat {
    /// The job.
    pub job_id: String,
    /// The writer's host identity ([`sys::host_id`]).
    pub host: String,
    /// Increases by one per beat.
    pub seq: u64,
    /// The writer's boot clock at this beat, in seconds (meaningful on its host only).
    pub clock: f64,
    /// Seconds between beats.
    pub interval: f64,
}

/// The wrapper's beating thread; beats stop when it is dropped.
#[derive(Debug)]
pub struct Heart {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Heart {
    /// Writes a first beat at `path` now (so a failure to write shows before the job runs),
    /// then one every `interval` from a thread.
    pub fn start(path: &Path, job_id: &str, interval: Duration) -> io::Result<Heart> {
        let mut beat = Beat {
            job_id: job_id.to_owned(),
            host: sys::host_id().to_owned(),
            seq: 0,
            clock: sys::boot_clock(),
            interval: interval.as_secs_f64(),
        };
        write_json_atomic(path, &beat, false)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, file) = (Arc::clone(&stop), path.to_owned());
        let thread = std::thread::spawn(move || {
            while sleep_unless(&flag, interval) {
                beat.seq += 1;
                beat.clock = sys::boot_clock();
                // A beat that cannot be written is missed, not fatal: the next one may land.
                if let Err(e) = write_json_atomic(&file, &beat, false) {
                    tracing::warn!("heartbeat: {e}");
                }
            }
        });
        Ok(Heart {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops beating. The beat file stays (fresh for the grace) until the dispatcher settles
    /// the job: a reader between the last beat and the record must not take the job for dead.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Heart {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps `d` in short steps; `false` as soon as `stop` is set.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
    !stop.load(Ordering::Relaxed)
}

/// What a beat file says of its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulse {
    /// Beating within the grace.
    Alive,
    /// Still for longer than the grace.
    Stale,
    /// No beat file (a job from before heartbeats, or not started).
    None,
}

/// A dispatcher's memory of the beats it has seen: each job's last sequence number and when
/// (on this process's clock) it was first seen at that number.
#[derive(Debug, Default)]
pub struct Watch {
    seen: HashMap<String, (u64, Instant)>,
    judged: HashMap<String, Option<u64>>,
}

impl Watch {
    /// Judges the beat of `job` (as read now) with `grace` (see the module docs).
    pub fn judge(&mut self, job: &str, beat: Option<&Beat>, grace: Duration) -> Pulse {
        self.judged.insert(job.to_owned(), beat.map(|b| b.seq));
        let Some(b) = beat else {
            return Pulse::None;
        };
        let grace = grace.as_secs_f64() + 2.0 * b.interval.max(0.0);
        let entry = self
            .seen
            .entry(b.job_id.clone())
            .or_insert((b.seq, Instant::now()));
        if entry.0 != b.seq {
            *entry = (b.seq, Instant::now());
        }
        let still = entry.1.elapsed().as_secs_f64();
        let age = match b.host == sys::host_id() {
            // Same host: the writer's clock is ours; it has been still at least this long.
            true => (sys::boot_clock() - b.clock).max(still),
            false => still,
        };
        match age > grace {
            true => Pulse::Stale,
            false => Pulse::Alive,
        }
    }

    /// The beat a verdict on `job` rested on: `None` when no verdict came from its beats,
    /// `Some(None)` when there was no beat file. Checked again after taking the job's claim
    /// over: a job that beat meanwhile is alive after all.
    pub fn judged_on(&self, job: &str) -> Option<Option<u64>> {
        self.judged.get(job).copied()
    }

    /// Forgets a job.
    pub fn forget(&mut self, job: &str) {
        self.seen.remove(job);
        self.judged.remove(job);
    }
}

/// Reads a beat file; `None` when there is none (or it cannot be read as a beat).
pub fn read(path: &Path) -> Option<Beat> {
    read_json(path).ok().flatten()
}

/// How long a network filesystem may show an old copy of a file under `path`: the mount's
/// `acregmax`/`actimeo` (or NFS's default, 60 s) for NFS, zero for local filesystems.
pub fn attr_cache_of(path: &Path) -> Duration {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    match mount_of(&text, &path) {
        Some((fstype, opts)) if fstype.starts_with("nfs") => attr_cache_from(&opts),
        _ => Duration::ZERO,
    }
}

/// The filesystem type and options of the mount holding `path` (the longest mount point).
fn mount_of(mountinfo: &str, path: &Path) -> Option<(String, String)> {
    let mut best: Option<(usize, String, String)> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(point), Some(fstype)) = (fields.get(4), fields.get(dash + 1)) else {
            continue;
        };
        let opts = [fields.get(5), fields.get(dash + 3)]
            .into_iter()
            .flatten()
            .copied()
            .collect::<Vec<_>>()
            .join(",");
        let len = point.len();
        if path.starts_with(point) && best.as_ref().is_none_or(|b| len >= b.0) {
            best = Some((len, (*fstype).to_owned(), opts));
        }
    }
    best.map(|(_, t, o)| (t, o))
}

fn attr_cache_from(opts: &str) -> Duration {
    let mut secs: Option<u64> = None;
    for opt in opts.split(',') {
        let Some((key, value)) = opt.split_once('=') else {
            if opt == "noac" {
                return Duration::ZERO;
            }
            continue;
        };
        if matches!(key, "acregmax" | "acdirmax" | "actimeo") {
            if let Ok(v) = value.parse::<u64>() {
                secs = Some(secs.map_or(v, |s| s.max(v)));
            }
        }
    }
    secs.map_or(NFS_DEFAULT_ATTR_CACHE, Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfs_mounts_give_their_attribute_cache_time() {
        let info = "22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw\n\
                    40 22 0:40 / /spool rw,relatime - nfs4 srv:/spool rw,vers=4.2,acregmax=30,acdirmax=45\n\
                    41 22 0:41 / /fast rw - nfs srv:/fast rw,noac\n\
                    42 22 0:42 / /plain rw - nfs srv:/plain rw,vers=3\n";
        let at = |p: &str| mount_of(info, Path::new(p)).unwrap();
        assert_eq!(at("/spool/raw").0, "nfs4");
        assert_eq!(
            attr_cache_from(&at("/spool/raw").1),
            Duration::from_secs(45)
        );
        assert_eq!(attr_cache_from(&at("/fast/x").1), Duration::ZERO);
        assert_eq!(attr_cache_from(&at("/plain").1), NFS_DEFAULT_ATTR_CACHE);
        assert_eq!(at("/home").0, "ext4");
        assert_eq!(attr_cache_of(Path::new("/proc")), Duration::ZERO);
    }

    #[test]
    fn a_beat_from_another_host_is_stale_only_after_standing_still_for_the_grace() {
        let mut w = Watch::default();
        let mut b = Beat {
            job_id: "j".into(),
            host: "node7@0123456789ab".into(),
            seq: 5,
            // Another host's clock: far ahead of ours, never compared.
            clock: 1e9,
            interval: 0.0,
        };
        let grace = Duration::from_millis(150);
        assert_eq!(w.judge("j", Some(&b), grace), Pulse::Alive);
        std::thread::sleep(Duration::from_millis(100));
        b.seq = 6;
        assert_eq!(w.judge("j", Some(&b), grace), Pulse::Alive);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(w.judge("j", Some(&b), grace), Pulse::Alive, "still 100 ms");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(w.judge("j", Some(&b), grace), Pulse::Stale);
        assert_eq!(w.judged_on("j"), Some(Some(6)));
        assert_eq!(w.judge("j", None, grace), Pulse::None);
        assert_eq!(w.judged_on("j"), Some(None));
        assert_eq!(w.judged_on("never"), None);
    }

    #[test]
    fn a_beat_from_this_host_is_judged_by_its_clock_at_once() {
        let mut w = Watch::default();
        let b = Beat {
            job_id: "k".into(),
            host: sys::host_id().to_owned(),
            seq: 1,
            clock: sys::boot_clock() - 10.0,
            interval: 1.0,
        };
        assert_eq!(w.judge("k", Some(&b), Duration::from_secs(5)), Pulse::Stale);
        assert_eq!(w.judge("k", Some(&b), Duration::from_secs(9)), Pulse::Alive);
    }

    #[test]
    fn a_heart_beats_until_stopped() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("j.beat.json");
        let heart = Heart::start(&path, "j", Duration::from_millis(60)).unwrap();
        let first = read(&path).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let later = read(&path).unwrap();
        assert!(
            later.seq > first.seq && later.clock > first.clock,
            "{later:?}"
        );
        heart.stop();
        let last = read(&path).unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(read(&path).unwrap(), last, "no beat after stop");
    }
}
